//! Client operations: each invoke paired with its completion. One pairing
//! for every consumer that wants operations rather than events: the
//! checkers (queue, transactions, committed offsets, the online and
//! streaming checks), reports' timelines, availability per fault window
//! and the harness's relay of client events.
//!
//! Rules: a completion closes the open invoke of its process; a second
//! invoke on a process with one open means the first never completed (it
//! counts as `info`, never completed); a completion without an invoke is
//! an operation that starts and ends at its completion; invokes still open
//! at the end of the history never completed. Nemesis events are not
//! client operations.
//!
//! [`Pairing`] applies these rules one event at a time and holds only the
//! open invokes (one per process at most), so it serves streaming
//! consumers as well as [`client_ops`], which is built on it.

use crate::hash::FxHashMap;
use crate::{Event, EventType, History, Process, F};

/// How an operation ended: the one ok/fail/info outcome of the workspace.
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

    /// The outcome a completion of this type reports (`None` for an invoke).
    pub fn of(kind: EventType) -> Option<Outcome> {
        match kind {
            EventType::Invoke => None,
            EventType::Ok => Some(Outcome::Ok),
            EventType::Fail => Some(Outcome::Fail),
            EventType::Info => Some(Outcome::Info),
        }
    }

    /// The completion type that records this outcome.
    pub fn event_type(self) -> EventType {
        match self {
            Outcome::Ok => EventType::Ok,
            Outcome::Fail => EventType::Fail,
            Outcome::Info => EventType::Info,
        }
    }
}

/// An invoke still waiting for its completion, as [`Pairing`] keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct Invoke<T = ()> {
    /// Position of the invoke in the stream of events (0 = first).
    pub at: usize,
    /// Its `time`.
    pub time: u64,
    /// What the consumer chose to keep of it (micro-ops, the event, ...).
    pub data: T,
}

/// One client operation, as soon as the pairing knows how it ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair<T = ()> {
    pub process: u64,
    /// Its invoke, if there was one (a completion may come without).
    pub invoke: Option<Invoke<T>>,
    /// Position of its completion; `None`: the invoke never completed.
    pub complete_at: Option<usize>,
}

impl<T> Pair<T> {
    /// Position of the invoke, if any.
    pub fn invoke_at(&self) -> Option<usize> {
        self.invoke.as_ref().map(|i| i.at)
    }

    /// Where the operation starts: its invoke, or else its completion.
    pub fn start_at(&self) -> usize {
        self.invoke_at().or(self.complete_at).unwrap_or_default()
    }

    /// Whether a completion closed it.
    pub fn completed(&self) -> bool {
        self.complete_at.is_some()
    }
}

/// Pairs invokes with completions, one event at a time (see the module
/// docs for the rules). `T` is what the consumer keeps of each open invoke
/// (nothing by default): a streaming consumer that holds no events keeps
/// the invoke's micro-ops here, for a completion that only echoes them.
///
/// It holds one entry per process with an open invoke, hashed with the
/// workspace's fast hasher; positions and times of invokes are kept so
/// that pairing never reaches back into the history (with many processes
/// an invoke is far behind its completion, out of cache).
#[derive(Clone, Debug)]
pub struct Pairing<T = ()> {
    open: FxHashMap<u64, Invoke<T>>,
}

impl<T> Default for Pairing<T> {
    fn default() -> Self {
        Pairing {
            open: FxHashMap::default(),
        }
    }
}

impl Pairing<()> {
    /// Takes event `at` (its position in the stream) and returns the
    /// operation it ends, if any: for a completion, the operation it
    /// completes; for an invoke, the previous invoke of its process, which
    /// will never complete. Nemesis events end nothing.
    #[inline]
    pub fn push(&mut self, at: usize, e: &Event) -> Option<Pair> {
        self.push_with(at, e, |_| ())
    }
}

impl<T> Pairing<T> {
    pub fn new() -> Pairing<T> {
        Pairing::default()
    }

    /// [`Pairing::push`], keeping `keep(e)` with an invoke.
    #[inline]
    pub fn push_with(
        &mut self,
        at: usize,
        e: &Event,
        keep: impl FnOnce(&Event) -> T,
    ) -> Option<Pair<T>> {
        let Process::Client(p) = e.process else {
            return None;
        };
        if e.kind == EventType::Invoke {
            let data = keep(e);
            self.invoke(
                p,
                Invoke {
                    at,
                    time: e.time,
                    data,
                },
            )
        } else {
            Some(self.complete(p, at))
        }
    }

    /// An invoke of client process `p` (for consumers that take events
    /// apart themselves): returns the previous open invoke of `p`, which
    /// never completed.
    #[inline]
    pub fn invoke(&mut self, p: u64, inv: Invoke<T>) -> Option<Pair<T>> {
        self.open.insert(p, inv).map(|prev| Pair {
            process: p,
            invoke: Some(prev),
            complete_at: None,
        })
    }

    /// A completion of client process `p` at position `at`.
    #[inline]
    pub fn complete(&mut self, p: u64, at: usize) -> Pair<T> {
        Pair {
            process: p,
            invoke: self.open.remove(&p),
            complete_at: Some(at),
        }
    }

    /// The open invoke of process `p`, if any.
    pub fn open_invoke(&self, p: u64) -> Option<&Invoke<T>> {
        self.open.get(&p)
    }

    /// How many invokes are open.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// The invokes still open, which never completed, in stream order.
    pub fn finish(self) -> Vec<Pair<T>> {
        let mut left: Vec<Pair<T>> = self
            .open
            .into_iter()
            .map(|(p, inv)| Pair {
                process: p,
                invoke: Some(inv),
                complete_at: None,
            })
            .collect();
        left.sort_unstable_by_key(|o| o.start_at());
        left
    }
}

/// Every client operation of a slice of events, in the order the
/// [`Pairing`] learns how each ended: completions and displaced invokes in
/// history order, then the invokes open at the end.
pub fn pairs(events: &[Event]) -> Pairs<'_> {
    Pairs {
        events: events.iter().enumerate(),
        pairing: Some(Pairing::new()),
        left: Vec::new().into_iter(),
    }
}

/// The iterator [`pairs`] returns.
pub struct Pairs<'h> {
    events: std::iter::Enumerate<std::slice::Iter<'h, Event>>,
    /// `None` once the events ran out.
    pairing: Option<Pairing>,
    left: std::vec::IntoIter<Pair>,
}

impl Iterator for Pairs<'_> {
    type Item = Pair;

    #[inline]
    fn next(&mut self) -> Option<Pair> {
        let Some(pairing) = self.pairing.as_mut() else {
            return self.left.next();
        };
        for (i, e) in self.events.by_ref() {
            if let Some(p) = pairing.push(i, e) {
                return Some(p);
            }
        }
        self.left = self
            .pairing
            .take()
            .map(Pairing::finish)
            .unwrap_or_default()
            .into_iter();
        self.left.next()
    }
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

    /// The operation a [`Pair`] of `events` describes.
    pub fn of(events: &[Event], pair: &Pair) -> OpSpan {
        let (f, outcome, complete_ns) = match pair.complete_at {
            Some(c) => {
                let e = &events[c];
                (
                    e.f.clone(),
                    Outcome::of(e.kind).unwrap_or(Outcome::Info),
                    Some(e.time),
                )
            }
            None => (events[pair.start_at()].f.clone(), Outcome::Info, None),
        };
        OpSpan {
            process: pair.process,
            f,
            outcome,
            invoke_ns: pair
                .invoke
                .as_ref()
                .map_or_else(|| complete_ns.unwrap_or_default(), |i| i.time),
            complete_ns,
            invoke_at: pair.invoke_at(),
            complete_at: pair.complete_at,
        }
    }
}

/// The client operations of `h`, ordered by invoke time (ties: history
/// order).
pub fn client_ops(h: &History) -> Vec<OpSpan> {
    let mut ops: Vec<OpSpan> = pairs(&h.events)
        .map(|p| OpSpan::of(&h.events, &p))
        .collect();
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

    #[test]
    fn the_pairing_closes_each_op_once_and_leaves_nemesis_events_alone() {
        let h = History::parse_str(
            r#"{"index":0,"time":1,"type":"invoke","process":0,"f":"send","value":[["send",1,5]]}
{"index":1,"time":2,"type":"info","process":"nemesis","f":"kill","value":null}
{"index":2,"time":3,"type":"ok","process":1,"f":"poll","value":[["poll",{}]]}
{"index":3,"time":4,"type":"invoke","process":0,"f":"send","value":[["send",1,6]]}
{"index":4,"time":5,"type":"invoke","process":2,"f":"send","value":[["send",1,7]]}
{"index":5,"time":6,"type":"invoke","process":3,"f":"send","value":[["send",1,8]]}
{"index":6,"time":7,"type":"info","process":0,"f":"send","value":[["send",1,6]]}"#,
        )
        .unwrap();
        let mut pg: Pairing<u64> = Pairing::new();
        let mut got = Vec::new();
        for (i, e) in h.events.iter().enumerate() {
            if let Some(p) = pg.push_with(i, e, |e| e.time * 10) {
                got.push((p.process, p.invoke.map(|i| (i.at, i.data)), p.complete_at));
            }
        }
        assert_eq!(
            got,
            vec![
                // A completion without an invoke starts at its completion.
                (1, None, Some(2)),
                // Invoked again: the first send never completed.
                (0, Some((0, 10)), None),
                (0, Some((3, 40)), Some(6)),
            ]
        );
        assert_eq!(pg.open_count(), 2);
        let left: Vec<(u64, Option<usize>)> = pg
            .finish()
            .into_iter()
            .map(|p| (p.process, p.invoke_at()))
            .collect();
        assert_eq!(
            left,
            vec![(2, Some(4)), (3, Some(5))],
            "open at the end, in history order"
        );
        assert_eq!(pairs(&h.events).count(), 5);
    }
}
