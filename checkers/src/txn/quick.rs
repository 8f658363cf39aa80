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

use gregor_history::{EventType, History, Key, Mop, Val};

use super::relevant;
use crate::dense::FirstWriter;

/// One pass over the events: the same operations (and the same first
/// writer of each value) as the full analysis, then one check per read.
pub(super) fn acyclic_by_time(h: &History) -> bool {
    let n = h.events.len();
    // (key, value) -> invocation position of its first writer.
    let mut writers = FirstWriter::new(4 * n as u64 + 1024);
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
                writers.get_or_insert_with(*key, *value, || inv as u32);
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
    for p in gregor_history::ops::pairs(&h.events) {
        let (kind, f) = match p.complete_at {
            Some(c) => (h.events[c].kind, &h.events[c].f),
            None => (EventType::Info, &h.events[p.start_at()].f),
        };
        if relevant(f) && kind != EventType::Fail {
            add(
                p.start_at(),
                p.complete_at,
                kind == EventType::Ok,
                &mut reads,
            );
        }
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
