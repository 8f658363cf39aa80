//! Linearizability (WGL-style, as Knossos's `wgl`) and its use on consumer
//! group committed offsets.
//!
//! [`wgl::check`] decides whether a concurrent history of one object is
//! linearizable against a [`Model`], with a step budget that turns "too
//! hard" into [`Linearizability::Unknown`] instead of running forever. Histories of
//! many independent objects are checked per object (P-compositionality:
//! a history is linearizable iff each object's sub-history is).
//!
//! [`check_commits`] applies it to the committed offsets of the consumer
//! group: per key, a [`Register`] that `commit` operations write and
//! `committed` fetches read. A `fail`ed commit did not happen; an `info`
//! (or never completed) commit may have taken effect at any time after its
//! invocation, or not at all; fetches that did not return `ok` say nothing.
//!
//! Results: `committed-offsets-nonlinearizable` when some key's commits
//! and fetches admit no linearization, and `linearizability-unknown` when
//! the search ran out of budget for a key. The caller must map the latter
//! to validity "unknown", not to valid or invalid.

pub mod wgl;

use std::collections::{BTreeMap, HashMap};

use gregor_history::{EventType, History, Key, Mop, Offset, Process};
use serde_json::json;

use crate::hash::FxHashMap;
use crate::CheckOpts;
pub use wgl::{Entry, Failure, Linearizability, Model};

/// Anomaly type: some key's committed offsets are not linearizable.
pub const NONLINEARIZABLE: &str = "committed-offsets-nonlinearizable";
/// Anomaly type: the search gave up; validity must be "unknown".
pub const UNKNOWN: &str = "linearizability-unknown";
/// Default search steps per key.
pub const DEFAULT_BUDGET: u64 = 2_000_000;

/// A register holding an optional value (`None`: never written).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Register(pub Option<u64>);

/// Operations on a [`Register`], with their results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    Write(u64),
    /// A read that returned this value.
    Read(Option<u64>),
}

impl Model for Register {
    type Op = RegisterOp;
    fn step(&self, op: &RegisterOp) -> Option<Register> {
        match *op {
            RegisterOp::Write(v) => Some(Register(Some(v))),
            RegisterOp::Read(v) => (v == self.0).then_some(*self),
        }
    }
}

/// A compare-and-set register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CasRegister(pub Option<i64>);

/// Operations on a [`CasRegister`], with their results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CasOp {
    Write(i64),
    Read(Option<i64>),
    /// `Cas(expected, new)` that succeeded.
    Cas(i64, i64),
    /// `Cas(expected, new)` that reported failure: the value was not `expected`.
    CasFailed(i64, i64),
}

impl Model for CasRegister {
    type Op = CasOp;
    fn step(&self, op: &CasOp) -> Option<CasRegister> {
        match *op {
            CasOp::Write(v) => Some(CasRegister(Some(v))),
            CasOp::Read(v) => (v == self.0).then_some(*self),
            CasOp::Cas(old, new) => (self.0 == Some(old)).then_some(CasRegister(Some(new))),
            CasOp::CasFailed(old, _) => (self.0 != Some(old)).then_some(*self),
        }
    }
}

/// Checks consumer-group committed offsets; returns (anomaly type, witness).
pub fn check_commits(history: &History, _opts: &CheckOpts) -> Vec<(String, serde_json::Value)> {
    check_commits_with(history, DEFAULT_BUDGET)
}

/// What one per-key register operation came from, for explanations.
#[derive(Clone, Copy, Debug)]
struct Origin {
    process: Process,
    kind: EventType,
    call_time: u64,
    ret_time: Option<u64>,
}

/// Like [`check_commits`], with an explicit step budget per key.
pub fn check_commits_with(history: &History, budget: u64) -> Vec<(String, serde_json::Value)> {
    let mut per_key: BTreeMap<Key, Vec<Entry<RegisterOp>>> = BTreeMap::new();
    let mut origin: FxHashMap<u64, Origin> = FxHashMap::default();
    let is_offsets = |m: &Mop| matches!(m, Mop::Commit { .. } | Mop::Committed { .. });
    let mut add = |inv: usize, comp: Option<usize>| {
        let ie = &history.events[inv];
        let ce = comp.map(|c| &history.events[c]);
        let kind = ce.map_or(EventType::Info, |c| c.kind);
        if kind == EventType::Fail {
            return;
        }
        let id = ce.map_or_else(|| ie.index, |c| c.index);
        let ret = if kind == EventType::Ok {
            comp.map(|c| c as u64)
        } else {
            None
        };
        // Writes: from the completion if ok, else from the invocation.
        let value_src = match (kind, ce) {
            (EventType::Ok, Some(c)) => c,
            (_, Some(c)) if c.mops().iter().any(is_offsets) => c,
            _ => ie,
        };
        let mut used = false;
        for m in value_src.mops() {
            match m {
                Mop::Commit { offsets } => {
                    for (&k, &off) in offsets {
                        per_key.entry(k).or_default().push(Entry {
                            id,
                            op: RegisterOp::Write(off),
                            call: inv as u64,
                            ret,
                        });
                        used = true;
                    }
                }
                Mop::Committed { offsets } if kind == EventType::Ok => {
                    for (&k, &off) in offsets {
                        per_key.entry(k).or_default().push(Entry {
                            id,
                            op: RegisterOp::Read(off),
                            call: inv as u64,
                            ret,
                        });
                        used = true;
                    }
                }
                _ => {}
            }
        }
        if used {
            origin.insert(
                id,
                Origin {
                    process: ie.process,
                    kind,
                    call_time: ie.time,
                    ret_time: ce.map(|c| c.time),
                },
            );
        }
    };
    // A completion without an invoke has no call point in this model: it
    // is left out, as it always was.
    for p in gregor_history::ops::pairs(&history.events) {
        if let Some(inv) = p.invoke_at() {
            add(inv, p.complete_at);
        }
    }

    let mut out = Vec::new();
    for (key, entries) in per_key {
        if !entries.iter().any(|e| matches!(e.op, RegisterOp::Read(_))) {
            continue; // nothing observed: trivially linearizable
        }
        match wgl::check(&Register(None), &entries, budget) {
            Linearizability::Linearizable => {}
            Linearizability::Unknown { steps } => out.push((
                UNKNOWN.to_string(),
                json!({
                    "explanation": format!(
                        "key {key}: the linearizability search over {} commits and committed-offset fetches gave up \
                         after {steps} steps; whether the group's committed offsets were linearizable is unknown. \
                         Check a shorter history or raise the budget",
                        entries.len()
                    ),
                    "key": key,
                    "ops": entries.iter().take(20).map(|e| e.id).collect::<Vec<_>>(),
                    "op-count": entries.len(),
                    "steps": steps,
                }),
            )),
            Linearizability::Nonlinearizable(f) => out.push((NONLINEARIZABLE.to_string(), explain(key, &entries, &f, &origin))),
        }
    }
    out
}

fn show(v: Option<Offset>) -> String {
    v.map_or("nothing (null)".to_string(), |o| o.to_string())
}

fn describe(e: &Entry<RegisterOp>, o: Option<&Origin>) -> serde_json::Value {
    let (f, value) = match e.op {
        RegisterOp::Write(v) => ("commit", json!(v)),
        RegisterOp::Read(v) => ("committed", json!(v)),
    };
    json!({
        "index": e.id,
        "f": f,
        "value": value,
        "type": o.map(|o| o.kind.as_str()),
        "process": o.map(|o| o.process),
        "invoked": o.map(|o| o.call_time),
        "completed": o.and_then(|o| o.ret_time),
    })
}

fn explain(
    key: Key,
    entries: &[Entry<RegisterOp>],
    f: &Failure<Register>,
    origin: &FxHashMap<u64, Origin>,
) -> serde_json::Value {
    let by_id: HashMap<u64, &Entry<RegisterOp>> = entries.iter().map(|e| (e.id, e)).collect();
    let stuck = by_id.get(&f.stuck).copied();
    // Operations that overlap the stuck one, or could still take effect.
    let concurrent: Vec<u64> = stuck
        .map(|s| {
            entries
                .iter()
                .filter(|e| {
                    e.id != s.id
                        && e.call <= s.ret.unwrap_or(u64::MAX)
                        && e.ret.is_none_or(|r| r >= s.call)
                })
                .map(|e| e.id)
                .collect()
        })
        .unwrap_or_default();
    let what = match stuck.map(|s| s.op) {
        Some(RegisterOp::Read(v)) => {
            format!("fetch op {} returned committed offset {}", f.stuck, show(v))
        }
        Some(RegisterOp::Write(v)) => format!("commit op {} of offset {v}", f.stuck),
        None => format!("op {}", f.stuck),
    };
    let after = if f.linearized.is_empty() {
        "before any commit took effect".to_string()
    } else {
        let tail: Vec<String> = f
            .linearized
            .iter()
            .rev()
            .take(5)
            .rev()
            .map(|i| format!("op {i}"))
            .collect();
        format!(
            "after the longest consistent order found ({}{})",
            if f.depth > 5 { "..., " } else { "" },
            tail.join(", ")
        )
    };
    let mut ops: Vec<u64> = f.linearized.iter().rev().take(8).rev().copied().collect();
    for &i in &concurrent {
        if !ops.contains(&i) {
            ops.push(i);
        }
    }
    if !ops.contains(&f.stuck) {
        ops.push(f.stuck);
    }
    json!({
        "explanation": format!(
            "key {key}: the consumer group's committed offsets are not linearizable: the {what}, but {after} the \
             committed offset was {}, and no order of the operations that overlap it (ops {}) explains that value. \
             A committed offset was lost, reverted or read stale",
            show(f.state.0),
            if concurrent.is_empty() { "none".to_string() } else {
                concurrent.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
            }
        ),
        "key": key,
        "ops": ops,
        "linearized": f.linearized,
        "linearized-count": f.depth,
        "committed-offset": f.state.0,
        "stuck-op": stuck.map(|s| describe(s, origin.get(&s.id))),
        "concurrent-ops": concurrent
            .iter()
            .filter_map(|i| by_id.get(i))
            .map(|e| describe(e, origin.get(&e.id)))
            .collect::<Vec<_>>(),
    })
}
