//! What the reports draw straight from a history: its client operations
//! (each one a point of the latency chart) and per-key offset observations
//! (the offset charts). Judgments and statistics come from the checkers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gregor_history::{EventType, History, Key, Mop, Offset, Process, Val};

pub use gregor_history::ops::Outcome;

/// One client operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub f: String,
    pub outcome: Outcome,
    pub invoke_ns: u64,
    /// `None` when the invoke was never completed.
    pub complete_ns: Option<u64>,
}

impl Op {
    pub fn latency_ns(&self) -> Option<u64> {
        self.complete_ns.map(|c| c.saturating_sub(self.invoke_ns))
    }
}

/// The client operations of a history, paired once ([`gregor_history::ops`]),
/// for the charts that draw every operation (latency) and for the counts.
/// Time series and statistics (lag, unseen, throughput, quantiles) are the
/// checkers' ([`gregor_checkers::timeline`], `stats`), not derived here.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pub ops: Vec<Op>,
    /// Time of the last event, ns.
    pub end_ns: u64,
}

impl Timeline {
    /// Pairs the client operations of a history.
    pub fn from_history(h: &History) -> Timeline {
        let end_ns = h.events.iter().map(|e| e.time).max().unwrap_or(0);
        let ops = gregor_history::ops::client_ops(h)
            .iter()
            .map(|o| Op {
                f: o.f.to_string(),
                outcome: o.outcome,
                invoke_ns: o.invoke_ns,
                complete_ns: o.complete_ns,
            })
            .collect();
        Timeline { ops, end_ns }
    }

    /// Operation counts: f -> outcome -> n (an invocation never completed
    /// counts as `info`).
    pub fn counts(&self) -> BTreeMap<String, BTreeMap<Outcome, u64>> {
        let mut m: BTreeMap<String, BTreeMap<Outcome, u64>> = BTreeMap::new();
        for o in &self.ops {
            *m.entry(o.f.clone())
                .or_default()
                .entry(o.outcome)
                .or_default() += 1;
        }
        m
    }
}

/// What was observed at the offsets of one key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyObs {
    /// Offset -> distinct values observed there (from acknowledged sends and polls).
    pub at: BTreeMap<Offset, BTreeSet<Val>>,
}

impl KeyObs {
    /// Offsets at which more than one value was observed.
    pub fn inconsistent_offsets(&self) -> BTreeSet<Offset> {
        self.at
            .iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(o, _)| *o)
            .collect()
    }
    /// Values observed at more than one offset.
    pub fn duplicated_values(&self) -> BTreeSet<Val> {
        let mut where_: HashMap<Val, usize> = HashMap::new();
        for vals in self.at.values() {
            for v in vals {
                *where_.entry(*v).or_default() += 1;
            }
        }
        where_
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(v, _)| v)
            .collect()
    }
}

/// Offset observations for the given keys only.
pub fn key_observations(h: &History, keys: &BTreeSet<Key>) -> BTreeMap<Key, KeyObs> {
    let mut out: BTreeMap<Key, KeyObs> = keys.iter().map(|k| (*k, KeyObs::default())).collect();
    for e in h
        .events
        .iter()
        .filter(|e| e.kind == EventType::Ok && e.process != Process::Nemesis)
    {
        for m in e.mops() {
            match m {
                Mop::Send {
                    key,
                    value,
                    offset: Some(o),
                } => {
                    if let Some(obs) = out.get_mut(key) {
                        obs.at.entry(*o).or_default().insert(*value);
                    }
                }
                Mop::Poll { reads: Some(reads) } => {
                    for (k, pairs) in reads {
                        if let Some(obs) = out.get_mut(k) {
                            for &(o, v) in pairs {
                                obs.at.entry(o).or_default().insert(v);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Every key that appears in a send or a poll, with how many records mention it.
pub fn key_activity(h: &History) -> BTreeMap<Key, u64> {
    let mut m: BTreeMap<Key, u64> = BTreeMap::new();
    for e in h.events.iter().filter(|e| e.kind == EventType::Ok) {
        for mop in e.mops() {
            match mop {
                Mop::Send { key, .. } => *m.entry(*key).or_default() += 1,
                Mop::Poll { reads: Some(r) } => {
                    for (k, p) in r {
                        *m.entry(*k).or_default() += p.len() as u64;
                    }
                }
                _ => {}
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = r#"{"index":0,"time":1000000,"process":0,"type":"invoke","f":"send","value":[["send",1,10]]}
{"index":1,"time":3000000,"process":0,"type":"ok","f":"send","value":[["send",1,[0,10]]]}
{"index":2,"time":2000000,"process":1,"type":"invoke","f":"poll","value":[["poll"]]}
{"index":3,"time":4000000,"process":1,"type":"ok","f":"poll","value":[["poll",{"1":[[0,10]]}]]}
{"index":4,"time":5000000,"process":1,"type":"invoke","f":"poll","value":[["poll"]]}
{"index":5,"time":9000000,"process":1,"type":"ok","f":"poll","value":[["poll",{"1":[[0,10]]}]]}
{"index":6,"time":9500000,"process":0,"type":"invoke","f":"send","value":[["send",1,11]]}
{"index":7,"time":10000000,"process":0,"type":"ok","f":"send","value":[["send",1,[1,11]]]}
{"index":8,"time":11000000,"process":2,"type":"invoke","f":"send","value":[["send",2,12]]}
{"index":9,"time":20000000,"process":0,"type":"invoke","f":"send","value":[["send",1,13]]}
{"index":10,"time":21000000,"process":0,"type":"fail","f":"send","value":[["send",1,13]]}
"#;

    #[test]
    fn pending_invokes_count_as_info() {
        let t = Timeline::from_history(&History::parse_str(H).unwrap());
        let c = t.counts();
        assert_eq!(c["send"][&Outcome::Ok], 2);
        assert_eq!(c["send"][&Outcome::Fail], 1);
        assert_eq!(c["send"][&Outcome::Info], 1);
        assert_eq!(c["poll"][&Outcome::Ok], 2);
        assert_eq!(t.end_ns, 21_000_000);
    }

    #[test]
    fn observations_flag_inconsistent_offsets_and_duplicates() {
        let h = History::parse_str(
            r#"{"index":0,"time":1,"process":1,"type":"ok","f":"poll","value":[["poll",{"3":[[0,1],[1,2],[2,1]]}]]}
{"index":1,"time":2,"process":2,"type":"ok","f":"poll","value":[["poll",{"3":[[1,5]],"4":[[0,9]]}]]}
"#,
        )
        .unwrap();
        let obs = key_observations(&h, &[3].into_iter().collect());
        assert_eq!(obs.len(), 1);
        assert_eq!(obs[&3].inconsistent_offsets(), [1].into_iter().collect());
        assert_eq!(obs[&3].duplicated_values(), [1].into_iter().collect());
        assert_eq!(key_activity(&h)[&3], 4);
    }
}
