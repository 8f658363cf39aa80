//! What the reports need from a history, derived in a few linear passes:
//! client operations (invokes paired with completions), realtime lag of
//! acknowledged sends, the number of acknowledged-but-unread writes over
//! time, and per-key offset observations.

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

/// Realtime lag of one acknowledged send.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lag {
    pub key: Key,
    pub value: Val,
    pub ack_ns: u64,
    /// Until the first poll invoked after the ack that returned it completed,
    /// or until the end of the history if none did.
    pub lag_ns: u64,
    pub seen: bool,
}

/// Everything the plots and tables derive from the history.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pub ops: Vec<Op>,
    /// Time of the last event, ns.
    pub end_ns: u64,
    pub lags: Vec<Lag>,
    /// `(time, count)` after each change of the number of acknowledged sends
    /// not yet returned by any poll.
    pub unseen_steps: Vec<(u64, u64)>,
}

impl Timeline {
    /// Derives the timeline from a history.
    pub fn from_history(h: &History) -> Timeline {
        let end_ns = h.events.iter().map(|e| e.time).max().unwrap_or(0);
        // (key, value) -> ack time of the acknowledged send.
        let mut acked: HashMap<(Key, Val), u64> = HashMap::new();
        // Polls as (invoke time, completion time, event index).
        let mut polls: Vec<(u64, u64, usize)> = Vec::new();
        let spans = gregor_history::ops::client_ops(h);
        let mut ops = Vec::with_capacity(spans.len());
        for o in &spans {
            ops.push(Op {
                f: o.f.to_string(),
                outcome: o.outcome,
                invoke_ns: o.invoke_ns,
                complete_ns: o.complete_ns,
            });
            let (Outcome::Ok, Some(i)) = (o.outcome, o.complete_at) else {
                continue;
            };
            let e = &h.events[i];
            let mut has_poll = false;
            for m in e.mops() {
                match m {
                    Mop::Send { key, value, .. } => {
                        let t = acked.entry((*key, *value)).or_insert(e.time);
                        *t = (*t).min(e.time);
                    }
                    Mop::Poll { reads: Some(_) } => has_poll = true,
                    _ => {}
                }
            }
            if has_poll {
                polls.push((o.invoke_ns, e.time, i));
            }
        }
        // In completion order, as the history holds them.
        polls.sort_by_key(|&(_, _, i)| i);

        // First completion of a poll invoked after the ack (lag), and first
        // completion of any poll (unseen count).
        let mut seen_after: HashMap<(Key, Val), u64> = HashMap::new();
        let mut first_read: HashMap<(Key, Val), u64> = HashMap::new();
        for &(inv, comp, i) in &polls {
            for m in h.events[i].mops() {
                let Mop::Poll { reads: Some(reads) } = m else {
                    continue;
                };
                for (k, pairs) in reads {
                    for &(_, v) in pairs {
                        let Some(&ack) = acked.get(&(*k, v)) else {
                            continue;
                        };
                        let fr = first_read.entry((*k, v)).or_insert(comp);
                        *fr = (*fr).min(comp);
                        if inv > ack {
                            let s = seen_after.entry((*k, v)).or_insert(comp);
                            *s = (*s).min(comp);
                        }
                    }
                }
            }
        }
        let mut lags: Vec<Lag> = acked
            .iter()
            .map(
                |(&(key, value), &ack_ns)| match seen_after.get(&(key, value)) {
                    Some(&c) => Lag {
                        key,
                        value,
                        ack_ns,
                        lag_ns: c.saturating_sub(ack_ns),
                        seen: true,
                    },
                    None => Lag {
                        key,
                        value,
                        ack_ns,
                        lag_ns: end_ns.saturating_sub(ack_ns),
                        seen: false,
                    },
                },
            )
            .collect();
        lags.sort_by_key(|l| (l.ack_ns, l.key, l.value));

        let mut deltas: Vec<(u64, i64)> = Vec::with_capacity(acked.len() * 2);
        for (kv, &ack) in &acked {
            match first_read.get(kv) {
                Some(&r) if r <= ack => {}
                Some(&r) => {
                    deltas.push((ack, 1));
                    deltas.push((r, -1));
                }
                None => deltas.push((ack, 1)),
            }
        }
        deltas.sort_unstable();
        let mut unseen_steps: Vec<(u64, u64)> = Vec::new();
        let mut count: i64 = 0;
        for (t, d) in deltas {
            count += d;
            let c = count.max(0) as u64;
            match unseen_steps.last_mut() {
                Some(last) if last.0 == t => last.1 = c,
                _ => unseen_steps.push((t, c)),
            }
        }
        Timeline {
            ops,
            end_ns,
            lags,
            unseen_steps,
        }
    }

    /// Operation counts: f -> outcome -> n.
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

    /// The longest realtime lag, in ms.
    pub fn worst_lag_ms(&self) -> Option<f64> {
        self.lags
            .iter()
            .map(|l| l.lag_ns)
            .max()
            .map(|ns| ns as f64 / 1e6)
    }

    /// Latency quantile (ms) of the `ok` completions of `f`, nearest-rank.
    pub fn latency_quantile_ms(&self, f: &str, q: f64) -> Option<f64> {
        let mut v: Vec<u64> = self
            .ops
            .iter()
            .filter(|o| o.f == f && o.outcome == Outcome::Ok)
            .filter_map(|o| o.latency_ns())
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1] as f64 / 1e6)
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
    fn lag_counts_only_polls_invoked_after_the_ack() {
        let t = Timeline::from_history(&History::parse_str(H).unwrap());
        // Value 10 acked at 3 ms; the poll invoked at 2 ms does not count, the one
        // invoked at 5 ms returned it at 9 ms: lag 6 ms.
        let l10 = t.lags.iter().find(|l| l.value == 10).unwrap();
        assert_eq!((l10.lag_ns, l10.seen), (6_000_000, true));
        // Value 11 is never read: its lag runs to the end (21 ms).
        let l11 = t.lags.iter().find(|l| l.value == 11).unwrap();
        assert_eq!((l11.lag_ns, l11.seen), (11_000_000, false));
        assert_eq!(t.worst_lag_ms(), Some(11.0));
    }

    #[test]
    fn unseen_counts_rise_at_acks_and_fall_at_first_reads() {
        let t = Timeline::from_history(&History::parse_str(H).unwrap());
        // 10 was read (by the early poll) at 4 ms, one ms after its ack at 3 ms.
        assert_eq!(
            t.unseen_steps,
            vec![(3_000_000, 1), (4_000_000, 0), (10_000_000, 1)]
        );
    }

    #[test]
    fn pending_invokes_count_as_info_and_latencies_use_ok_ops() {
        let t = Timeline::from_history(&History::parse_str(H).unwrap());
        let c = t.counts();
        assert_eq!(c["send"][&Outcome::Ok], 2);
        assert_eq!(c["send"][&Outcome::Fail], 1);
        assert_eq!(c["send"][&Outcome::Info], 1);
        assert_eq!(c["poll"][&Outcome::Ok], 2);
        assert_eq!(t.latency_quantile_ms("send", 0.5), Some(0.5));
        assert_eq!(t.latency_quantile_ms("send", 0.99), Some(2.0));
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
