//! Well-formedness of a history, checked as events arrive.
//!
//! A checker can only trust a history whose operations pair up: every
//! client completion answers the one invocation its process has
//! outstanding, with the same `f`, and indices grow in file order. A
//! history that breaks these rules was not written by gregor's recorder (or
//! was edited, or two runs were concatenated): judging it would produce
//! verdicts about operations that never existed, so it is an error naming
//! the line instead. The nemesis is exempt from pairing (it logs bare
//! `info` events for its actions).
//!
//! [`Validator`] is incremental so that the reader, `gregor check
//! --follow` and the online checker share it; its state is one entry per
//! process with an operation outstanding.

use std::collections::HashMap;

use crate::event::{Event, EventType, Process, F};

/// Why an event breaks the history's rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("index {index} repeats or goes back (the previous event had index {previous})")]
    Index { index: u64, previous: u64 },
    #[error(
        "process {process} invokes {f} while its {outstanding} invoked at index {at} is still outstanding"
    )]
    SecondInvoke {
        process: u64,
        f: String,
        outstanding: String,
        at: u64,
    },
    #[error("{kind} {f} by process {process} completes no invocation")]
    Unmatched {
        process: u64,
        kind: &'static str,
        f: String,
    },
    #[error(
        "{kind} {f} by process {process} completes a different operation: {invoked} invoked at index {at}"
    )]
    FDiffers {
        process: u64,
        kind: &'static str,
        f: String,
        invoked: String,
        at: u64,
    },
}

/// Checks events one by one; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct Validator {
    last_index: Option<u64>,
    /// Client process -> (f, index) of its outstanding invocation: small
    /// process numbers in a table, the rest hashed.
    dense: Vec<Option<(F, u64)>>,
    sparse: HashMap<u64, (F, u64)>,
    outstanding: usize,
}

/// Process numbers below this are tracked in a table.
const DENSE: u64 = 1 << 20;

impl Validator {
    pub fn new() -> Validator {
        Validator::default()
    }

    /// Accepts the next event of the history, or says why it cannot follow
    /// the events before it.
    pub fn push(&mut self, e: &Event) -> Result<(), Malformed> {
        if let Some(previous) = self.last_index {
            if e.index <= previous {
                return Err(Malformed::Index {
                    index: e.index,
                    previous,
                });
            }
        }
        self.last_index = Some(e.index);
        let Process::Client(p) = e.process else {
            return Ok(());
        };
        let outstanding = self.take(p);
        if e.kind == EventType::Invoke {
            if let Some((f, at)) = outstanding {
                let err = Malformed::SecondInvoke {
                    process: p,
                    f: e.f.to_string(),
                    outstanding: f.to_string(),
                    at,
                };
                self.put(p, (f, at));
                return Err(err);
            }
            self.put(p, (e.f.clone(), e.index));
            return Ok(());
        }
        match outstanding {
            // A bare note (Jepsen logs `{:type :info, :f :crash}` when a
            // worker dies between operations; clients may log other names):
            // it completes nothing and claims nothing.
            None if e.kind == EventType::Info && !e.f.has_mops() && !is_keys(&e.f) => Ok(()),
            None => Err(Malformed::Unmatched {
                process: p,
                kind: e.kind.as_str(),
                f: e.f.to_string(),
            }),
            Some((f, at)) if f != e.f => Err(Malformed::FDiffers {
                process: p,
                kind: e.kind.as_str(),
                f: e.f.to_string(),
                invoked: f.to_string(),
                at,
            }),
            Some(_) => Ok(()),
        }
    }

    fn take(&mut self, p: u64) -> Option<(F, u64)> {
        let x = if p < DENSE {
            self.dense.get_mut(p as usize).and_then(Option::take)
        } else {
            self.sparse.remove(&p)
        };
        if x.is_some() {
            self.outstanding -= 1;
        }
        x
    }

    fn put(&mut self, p: u64, x: (F, u64)) {
        self.outstanding += 1;
        if p < DENSE {
            if self.dense.len() <= p as usize {
                self.dense.resize(p as usize + 1, None);
            }
            self.dense[p as usize] = Some(x);
        } else {
            self.sparse.insert(p, x);
        }
    }

    /// Processes with an invocation still outstanding (they count as `info`).
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }
}

fn is_keys(f: &F) -> bool {
    matches!(f, F::Assign | F::Subscribe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Value;

    fn ev(index: u64, p: u64, kind: EventType, f: F) -> Event {
        Event {
            index,
            time: index,
            process: Process::Client(p),
            kind,
            f,
            value: Value::None,
            error: None,
            extra: vec![],
        }
    }

    #[test]
    fn paired_operations_and_bare_nemesis_events_are_accepted() {
        let mut v = Validator::new();
        v.push(&ev(0, 1, EventType::Invoke, F::Send)).unwrap();
        v.push(&ev(1, 2, EventType::Invoke, F::Poll)).unwrap();
        let mut n = ev(2, 0, EventType::Info, F::Other("kill".into()));
        n.process = Process::Nemesis;
        v.push(&n).unwrap();
        v.push(&ev(3, 1, EventType::Info, F::Send)).unwrap();
        v.push(&ev(5, 2, EventType::Ok, F::Poll)).unwrap();
        v.push(&ev(6, 2, EventType::Info, F::Crash)).unwrap();
        assert_eq!(v.outstanding(), 0);
    }

    #[test]
    fn each_malformation_is_named() {
        let mut v = Validator::new();
        v.push(&ev(0, 1, EventType::Invoke, F::Send)).unwrap();
        let e = v.push(&ev(0, 2, EventType::Invoke, F::Send)).unwrap_err();
        assert!(matches!(e, Malformed::Index { index: 0, .. }), "{e}");
        let e = v.push(&ev(1, 1, EventType::Invoke, F::Poll)).unwrap_err();
        assert!(e.to_string().contains("still outstanding"), "{e}");
        let e = v.push(&ev(2, 1, EventType::Ok, F::Poll)).unwrap_err();
        assert!(e.to_string().contains("different operation"), "{e}");
        let e = v.push(&ev(3, 7, EventType::Ok, F::Poll)).unwrap_err();
        assert!(e.to_string().contains("completes no invocation"), "{e}");
        let e = v.push(&ev(4, 7, EventType::Info, F::Send)).unwrap_err();
        assert!(e.to_string().contains("completes no invocation"), "{e}");
    }
}
