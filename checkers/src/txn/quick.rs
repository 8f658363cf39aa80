//! A linear-time proof that a history's dependency graph has no cycle, for
//! the common case of a valid history, so that the graph is never built.
//!
//! Give every operation a point in time `t` inside its own lifetime
//! (between its invocation and its completion): its invocation if it sends,
//! else (a pure reader, always `ok`) its completion. Process-order and
//! realtime-order edges go from an op that completed to one invoked later,
//! so they always lead from a smaller `t` to a larger one. If every wr edge
//! does too (the writer's invocation comes before the reader's point,
//! which holds whenever nobody reads a value before its send was invoked),
//! then every edge of the graph increases `t` and no cycle can exist. If
//! some wr edge does not, the proof fails and the caller builds the graph.
//!
//! Only wr edges are covered: with ww or rw inference the caller skips this.

use gregor_history::{EventType, History, Key, Mop, Process, Val};

use super::{relevant, FxMap};

/// One pass over the events: the same operations (and the same first
/// writer of each value) as the full analysis, then one check per read.
pub(super) fn acyclic_by_time(h: &History) -> bool {
    let n = h.events.len();
    let mut pending: FxMap<Process, usize> = FxMap::default();
    let mut writers = Writers::new(n);
    // Reads of values with no writer yet: (key, value, reader's point,
    // reader's invocation). A value's first writer never changes once
    // known, so other reads are checked on the spot.
    let mut reads: Vec<(Key, Val, u32, u32)> = Vec::new();
    let mut holds = true;
    if n >= u32::MAX as usize {
        return false;
    }
    // Records one op, in the full analysis's op order.
    let mut add = |inv: usize, comp: Option<usize>, ok: bool, reads: &mut Vec<_>| {
        let at = comp.unwrap_or(inv);
        let c = h.events[at].mops();
        let sends = if ok || !c.is_empty() {
            c
        } else {
            h.events[inv].mops()
        };
        let mut sent = false;
        for m in sends {
            if let Mop::Send { key, value, .. } = m {
                writers.insert(*key, *value, inv as u32);
                sent = true;
            }
        }
        if ok {
            let t = if sent { inv } else { at } as u32;
            for m in c {
                if let Mop::Poll { reads: Some(r) } = m {
                    for (k, pairs) in r {
                        for &(_, v) in pairs {
                            match writers.get(*k, v) {
                                Some(w) => holds &= before(w, t, inv as u32),
                                None => reads.push((*k, v, t, inv as u32)),
                            }
                        }
                    }
                }
            }
        }
    };
    for (i, e) in h.events.iter().enumerate() {
        if e.process == Process::Nemesis {
            continue;
        }
        match e.kind {
            EventType::Invoke => {
                if let Some(prev) = pending.insert(e.process, i) {
                    if relevant(&h.events[prev].f) {
                        add(prev, None, false, &mut reads);
                    }
                }
            }
            EventType::Ok | EventType::Info | EventType::Fail => {
                let inv = pending.remove(&e.process).unwrap_or(i);
                if relevant(&e.f) && e.kind != EventType::Fail {
                    add(inv, Some(i), e.kind == EventType::Ok, &mut reads);
                }
            }
        }
    }
    let mut left: Vec<usize> = pending
        .into_values()
        .filter(|&i| relevant(&h.events[i].f))
        .collect();
    left.sort_unstable();
    for inv in left {
        add(inv, None, false, &mut reads);
    }
    holds
        && reads.iter().all(|&(k, v, t, inv)| match writers.get(k, v) {
            Some(w) => before(w, t, inv),
            None => true,
        })
}

/// Whether a wr edge from the writer invoked at `w` to the reader with
/// point `t`, invoked at `inv`, increases the time point (or is no edge).
#[inline]
fn before(w: u32, t: u32, inv: u32) -> bool {
    // A writer's point is its invocation: equal to the reader's invocation
    // only when the reader is the writer (a self-edge, which is dropped).
    w < t || w == inv
}

/// (key, value) -> invocation position of its first writer. Values are
/// usually small integers unique across keys: a table indexed by value
/// answers those without hashing; the rest are hashed.
struct Writers {
    dense: Vec<(Key, u32)>,
    limit: usize,
    spill: FxMap<(Key, Val), u32>,
}

const NONE: u32 = u32::MAX;

impl Writers {
    fn new(events: usize) -> Writers {
        Writers {
            dense: Vec::new(),
            limit: 4 * events + 1024,
            spill: FxMap::default(),
        }
    }

    fn get(&self, k: Key, v: Val) -> Option<u32> {
        match self.dense.get(v as usize) {
            Some(&(_, NONE)) => None,
            Some(&(dk, w)) if dk == k => Some(w),
            _ => self.spill.get(&(k, v)).copied(),
        }
    }

    /// Keeps the first writer of each pair.
    fn insert(&mut self, k: Key, v: Val, w: u32) {
        if v < self.limit as u64 && v as usize >= self.dense.len() {
            let len = (v as usize + 1).max(2 * self.dense.len()).min(self.limit);
            self.dense.resize(len, (0, NONE));
        }
        match self.dense.get_mut(v as usize) {
            // The table grows before a value below `limit` is first seen,
            // so an empty entry means no writer yet (none was hashed).
            Some(e) if e.1 == NONE => *e = (k, w),
            Some(e) if e.0 == k => {}
            _ => {
                self.spill.entry((k, v)).or_insert(w);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(lines: &[&str]) -> History {
        History::parse_str(&lines.join("\n")).expect("history")
    }

    #[test]
    fn a_send_then_a_poll_of_it_is_proven_acyclic() {
        let h = hist(&[
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":[["send",1,5]]}"#,
            r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"poll","value":[["poll"]]}"#,
            r#"{"index":2,"time":3,"process":0,"type":"ok","f":"send","value":[["send",1,[0,5]]]}"#,
            r#"{"index":3,"time":4,"process":1,"type":"ok","f":"poll","value":[["poll",{"1":[[0,5]]}]]}"#,
        ]);
        assert!(acyclic_by_time(&h));
    }

    #[test]
    fn two_transactions_reading_each_others_writes_are_not_proven_acyclic() {
        let h = hist(&[
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"txn","value":[["send",1,5],["poll"]]}"#,
            r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"txn","value":[["send",2,6],["poll"]]}"#,
            r#"{"index":2,"time":3,"process":0,"type":"ok","f":"txn","value":[["send",1,[0,5]],["poll",{"2":[[0,6]]}]]}"#,
            r#"{"index":3,"time":4,"process":1,"type":"ok","f":"txn","value":[["send",2,[0,6]],["poll",{"1":[[0,5]]}]]}"#,
        ]);
        assert!(!acyclic_by_time(&h));
    }

    #[test]
    fn a_poll_returning_a_value_sent_only_after_it_completed_is_not_proven_acyclic() {
        // Realtime order closes the cycle: the poll finished before the
        // send of the value it returned was invoked.
        let h = hist(&[
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"poll","value":[["poll"]]}"#,
            r#"{"index":1,"time":2,"process":1,"type":"ok","f":"poll","value":[["poll",{"1":[[0,5]]}]]}"#,
            r#"{"index":2,"time":3,"process":0,"type":"invoke","f":"send","value":[["send",1,5]]}"#,
            r#"{"index":3,"time":4,"process":0,"type":"ok","f":"send","value":[["send",1,[0,5]]]}"#,
        ]);
        assert!(!acyclic_by_time(&h));
    }
}
