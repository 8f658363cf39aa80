//! Client operations: each invoke paired with its completion. One pairing
//! for every consumer that wants operations rather than events (reports'
//! timelines, availability per fault window).
//!
//! Rules: a completion closes the open invoke of its process; a second
//! invoke on a process with one open means the first never completed (it
//! counts as `info`, never completed); a completion without an invoke is
//! an operation that starts and ends at its completion; invokes still open
//! at the end of the history never completed. Nemesis events are not
//! client operations.

use std::collections::HashMap;

use crate::{EventType, History, Process, F};

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Ok,
    Fail,
    /// Unknown: an `info` completion, or an invoke never completed.
    Info,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        }
    }
    pub const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::Fail, Outcome::Info];
}

/// One client operation.
#[derive(Clone, Debug, PartialEq)]
pub struct OpSpan {
    pub process: u64,
    pub f: F,
    pub outcome: Outcome,
    pub invoke_ns: u64,
    /// `None` when the invoke was never completed.
    pub complete_ns: Option<u64>,
    /// Position in `History::events` of the invoke, if there was one.
    pub invoke_at: Option<usize>,
    /// Position in `History::events` of the completion, if there was one.
    pub complete_at: Option<usize>,
}

impl OpSpan {
    pub fn latency_ns(&self) -> Option<u64> {
        self.complete_ns.map(|c| c.saturating_sub(self.invoke_ns))
    }
}

/// The client operations of `h`, ordered by invoke time (ties: history
/// order).
pub fn client_ops(h: &History) -> Vec<OpSpan> {
    let mut open: HashMap<u64, usize> = HashMap::new();
    let mut ops = Vec::new();
    let never = |h: &History, j: usize, p: u64| OpSpan {
        process: p,
        f: h.events[j].f.clone(),
        outcome: Outcome::Info,
        invoke_ns: h.events[j].time,
        complete_ns: None,
        invoke_at: Some(j),
        complete_at: None,
    };
    for (i, e) in h.events.iter().enumerate() {
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            if let Some(prev) = open.insert(p, i) {
                ops.push(never(h, prev, p));
            }
            continue;
        }
        let invoke_at = open.remove(&p);
        ops.push(OpSpan {
            process: p,
            f: e.f.clone(),
            outcome: match e.kind {
                EventType::Ok => Outcome::Ok,
                EventType::Fail => Outcome::Fail,
                _ => Outcome::Info,
            },
            invoke_ns: invoke_at.map_or(e.time, |j| h.events[j].time),
            complete_ns: Some(e.time),
            invoke_at,
            complete_at: Some(i),
        });
    }
    let mut pending: Vec<(u64, usize)> = open.into_iter().collect();
    pending.sort_unstable_by_key(|&(_, j)| j);
    for (p, j) in pending {
        ops.push(never(h, j, p));
    }
    ops.sort_by_key(|o| (o.invoke_ns, o.invoke_at.or(o.complete_at)));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_completions_with_invokes_and_keeps_the_unfinished() {
        let h = History::parse_str(
            r#"{"index":0,"time":10,"type":"invoke","process":0,"f":"send","value":[["send",1,5]]}
{"index":1,"time":12,"type":"invoke","process":1,"f":"poll","value":[["poll"]]}
{"index":2,"time":20,"type":"ok","process":0,"f":"send","value":[["send",1,[0,5]]]}
{"index":3,"time":25,"type":"info","process":"nemesis","f":"kill","value":null}
{"index":4,"time":30,"type":"invoke","process":1,"f":"poll","value":[["poll"]]}
{"index":5,"time":40,"type":"fail","process":1,"f":"poll","value":[["poll"]]}
{"index":6,"time":50,"type":"invoke","process":2,"f":"send","value":[["send",2,6]]}"#,
        )
        .unwrap();
        let ops = client_ops(&h);
        let brief: Vec<(u64, &str, u64, Option<u64>)> = ops
            .iter()
            .map(|o| (o.process, o.outcome.as_str(), o.invoke_ns, o.complete_ns))
            .collect();
        assert_eq!(
            brief,
            vec![
                (0, "ok", 10, Some(20)),
                // Invoked again before completing: never completed.
                (1, "info", 12, None),
                (1, "fail", 30, Some(40)),
                (2, "info", 50, None),
            ]
        );
        assert_eq!(ops[0].latency_ns(), Some(10));
        assert_eq!(ops[0].complete_at, Some(2));
    }
}
