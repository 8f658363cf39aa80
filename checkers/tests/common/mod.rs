//! Small builders that make hand-written histories readable.
#![allow(dead_code)]

use gregor_history::{Event, EventType, History, Key, Mop, Offset, Process, Val, Value, F};

/// Builds a history event by event; each event is 1 ms after the previous.
#[derive(Default)]
pub struct Hb {
    pub events: Vec<Event>,
    pub time: u64,
}

/// An acknowledged send micro-op.
pub fn s(key: Key, value: Val, offset: Offset) -> Mop {
    Mop::Send {
        key,
        value,
        offset: Some(offset),
    }
}

/// A poll micro-op with its results.
pub fn r(reads: &[(Key, &[(Offset, Val)])]) -> Mop {
    Mop::Poll {
        reads: Some(reads.iter().map(|(k, p)| (*k, p.to_vec())).collect()),
    }
}

/// The invocation form of micro-ops: sends without offsets, polls unread.
pub fn invocation_of(mops: &[Mop]) -> Vec<Mop> {
    mops.iter()
        .map(|m| match m {
            Mop::Send { key, value, .. } => Mop::Send {
                key: *key,
                value: *value,
                offset: None,
            },
            Mop::Poll { .. } => Mop::Poll { reads: None },
            other => other.clone(),
        })
        .collect()
}

impl Hb {
    pub fn new() -> Hb {
        Hb::default()
    }

    /// Appends one event; returns its index.
    pub fn push(&mut self, p: u64, kind: EventType, f: F, value: Value) -> u64 {
        let index = self.events.len() as u64;
        self.time += 1_000_000;
        self.events.push(Event {
            index,
            time: self.time,
            process: Process::Client(p),
            kind,
            f,
            value,
            error: None,
            extra: vec![],
        });
        index
    }

    /// Lets `ms` milliseconds pass.
    pub fn wait(&mut self, ms: u64) {
        self.time += ms * 1_000_000;
    }

    /// An invocation then its completion; returns the completion's index.
    pub fn op(&mut self, p: u64, kind: EventType, f: F, mops: Vec<Mop>) -> u64 {
        self.push(
            p,
            EventType::Invoke,
            f.clone(),
            Value::Mops(invocation_of(&mops)),
        );
        let done = if kind == EventType::Ok {
            mops
        } else {
            invocation_of(&mops)
        };
        self.push(p, kind, f, Value::Mops(done))
    }

    pub fn send(&mut self, p: u64, key: Key, value: Val, offset: Offset) -> u64 {
        self.op(p, EventType::Ok, F::Send, vec![s(key, value, offset)])
    }

    pub fn send_fail(&mut self, p: u64, key: Key, value: Val) -> u64 {
        self.op(
            p,
            EventType::Fail,
            F::Send,
            vec![Mop::Send {
                key,
                value,
                offset: None,
            }],
        )
    }

    pub fn send_info(&mut self, p: u64, key: Key, value: Val) -> u64 {
        self.op(
            p,
            EventType::Info,
            F::Send,
            vec![Mop::Send {
                key,
                value,
                offset: None,
            }],
        )
    }

    pub fn poll(&mut self, p: u64, reads: &[(Key, &[(Offset, Val)])]) -> u64 {
        self.op(p, EventType::Ok, F::Poll, vec![r(reads)])
    }

    pub fn txn(&mut self, p: u64, kind: EventType, mops: Vec<Mop>) -> u64 {
        self.op(p, kind, F::Txn, mops)
    }

    fn keys_op(&mut self, p: u64, f: F, keys: &[Key]) -> u64 {
        self.push(p, EventType::Invoke, f.clone(), Value::Keys(keys.to_vec()));
        self.push(p, EventType::Ok, f, Value::Keys(keys.to_vec()))
    }

    pub fn assign(&mut self, p: u64, keys: &[Key]) -> u64 {
        self.keys_op(p, F::Assign, keys)
    }

    pub fn subscribe(&mut self, p: u64, keys: &[Key]) -> u64 {
        self.keys_op(p, F::Subscribe, keys)
    }

    pub fn history(&self) -> History {
        History::new(self.events.clone())
    }
}

/// A random but well-formed history: processes interleave invocations and
/// completions of sends, polls and txns with arbitrary offsets and values
/// (so every kind of anomaly turns up), completions of every type, crashed
/// workers renumbered, some assigns.
pub fn random_history(steps: &[(u8, u8, u8, u8)]) -> Vec<Event> {
    let mut h = Hb::new();
    let mut proc_of = [0u64, 1, 2, 3];
    let mut next_proc = 4;
    let mut pending: [Option<(F, Vec<Mop>)>; 4] = Default::default();
    // Each value is sent once (the history format's rule); reads return
    // any value, sent or not.
    let mut next_val = 0u64;
    let mut fresh = || {
        next_val += 1;
        next_val
    };
    for &(w, a, b, c) in steps {
        let w = w as usize % 4;
        let p = proc_of[w];
        match pending[w].take() {
            None => {
                let (f, mops) = match a % 5 {
                    0 | 1 => (F::Send, vec![s(b as u64 % 3, fresh(), 0)]),
                    2 | 3 => (F::Poll, vec![r(&[])]),
                    _ => (
                        F::Txn,
                        vec![
                            s(b as u64 % 3, fresh(), 0),
                            r(&[]),
                            s(c as u64 % 3, fresh(), 0),
                        ],
                    ),
                };
                if a % 11 == 0 {
                    h.push(
                        p,
                        EventType::Invoke,
                        F::Assign,
                        Value::Keys(vec![b as u64 % 3]),
                    );
                    h.push(p, EventType::Ok, F::Assign, Value::Keys(vec![b as u64 % 3]));
                    continue;
                }
                h.push(
                    p,
                    EventType::Invoke,
                    f.clone(),
                    Value::Mops(invocation_of(&mops)),
                );
                pending[w] = Some((f, mops));
            }
            Some((f, mops)) => {
                let kind = match a % 7 {
                    0 => EventType::Fail,
                    1 => EventType::Info,
                    _ => EventType::Ok,
                };
                let done: Vec<Mop> = mops
                    .into_iter()
                    .enumerate()
                    .map(|(i, m)| match m {
                        Mop::Send { key, value, .. } => Mop::Send {
                            key,
                            value,
                            offset: (kind != EventType::Fail
                                && !(b as usize + i).is_multiple_of(3))
                            .then_some((c as u64 + i as u64) % 8),
                        },
                        Mop::Poll { .. } => {
                            let k = (b as u64 + i as u64) % 3;
                            let start = c as u64 % 8;
                            let n = a as u64 % 4;
                            let pairs: Vec<(u64, u64)> = (0..n)
                                .map(|j| {
                                    (
                                        (start + j + (b as u64 % 2) * j) % 9,
                                        (c as u64 + j * 5 + b as u64) % 40,
                                    )
                                })
                                .collect();
                            Mop::Poll {
                                reads: Some(vec![(k, pairs)]),
                            }
                        }
                        other => other,
                    })
                    .collect();
                let done = if kind == EventType::Fail && a % 2 == 0 {
                    invocation_of(&done)
                } else {
                    done
                };
                h.push(p, kind, f, Value::Mops(done));
                if kind == EventType::Info {
                    proc_of[w] = next_proc;
                    next_proc += 1;
                }
            }
        }
    }
    h.events
}
