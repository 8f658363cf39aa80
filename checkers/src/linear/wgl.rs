//! The Wing & Gong / Lowe linearizability search over one model.
//!
//! Calls and returns are kept in a doubly linked list in time order. The
//! search repeatedly tries to linearize the earliest call it can reach
//! before the first pending return; each success lifts that operation out
//! of the list and pushes it on a stack, each dead end (a return reached
//! whose operation is still pending) pops the stack and tries the next
//! call. Configurations (set of linearized ops, model state) already seen
//! are cached, so no configuration is explored twice. Operations without a
//! return (indefinite, `info`) may be linearized at any point after their
//! call, or never.

use std::collections::HashSet;
use std::hash::Hash;

/// A sequential specification: a state and how operations change it.
pub trait Model: Clone + Eq + Hash {
    /// An operation with its observed result.
    type Op;
    /// The state after `op`, or `None` if `op`'s result is impossible here.
    fn step(&self, op: &Self::Op) -> Option<Self>;
}

/// One operation of a (sub)history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<O> {
    /// How the caller names the operation (e.g. its history index).
    pub id: u64,
    pub op: O,
    /// When it was invoked.
    pub call: u64,
    /// When it returned; `None` if it never did (it may or may not have
    /// taken effect, at any time after `call`).
    pub ret: Option<u64>,
}

/// Why a history is not linearizable: the deepest configuration reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure<M> {
    /// Ids of the operations linearized, in order.
    pub linearized: Vec<u64>,
    /// The model state after them.
    pub state: M,
    /// The operation that returned while no order could place it.
    pub stuck: u64,
}

/// The verdict of a search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<M> {
    Linearizable,
    Nonlinearizable(Failure<M>),
    /// The step budget ran out first.
    Unknown {
        steps: u64,
    },
}

const NIL: usize = usize::MAX;

struct Node {
    op: usize,
    is_call: bool,
    /// For a call: its return node, if any.
    ret: usize,
    prev: usize,
    next: usize,
}

fn lift(nodes: &mut [Node], i: usize) {
    let (p, n) = (nodes[i].prev, nodes[i].next);
    nodes[p].next = n;
    if n != NIL {
        nodes[n].prev = p;
    }
}

fn unlift(nodes: &mut [Node], i: usize) {
    let (p, n) = (nodes[i].prev, nodes[i].next);
    nodes[p].next = i;
    if n != NIL {
        nodes[n].prev = i;
    }
}

/// Checks `entries` against `init`, taking at most `budget` search steps.
pub fn check<M: Model>(init: &M, entries: &[Entry<M::Op>], budget: u64) -> Outcome<M> {
    // Time-ordered events; on ties calls come first (treated as concurrent).
    let mut evs: Vec<(u64, bool, usize)> = Vec::with_capacity(entries.len() * 2);
    for (i, e) in entries.iter().enumerate() {
        evs.push((e.call, false, i));
        if let Some(r) = e.ret {
            evs.push((r.max(e.call), true, i));
        }
    }
    evs.sort_unstable();
    // Node 0 is the head sentinel.
    let mut nodes: Vec<Node> = vec![Node {
        op: NIL,
        is_call: false,
        ret: NIL,
        prev: NIL,
        next: NIL,
    }];
    let mut call_node = vec![NIL; entries.len()];
    for &(_, is_ret, op) in &evs {
        let i = nodes.len();
        let prev = i - 1;
        nodes[prev].next = i;
        nodes.push(Node {
            op,
            is_call: !is_ret,
            ret: NIL,
            prev,
            next: NIL,
        });
        if is_ret {
            nodes[call_node[op]].ret = i;
        } else {
            call_node[op] = i;
        }
    }
    let words = entries.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, M)> = HashSet::new();
    let mut remaining = entries.iter().filter(|e| e.ret.is_some()).count();
    let mut stack: Vec<(usize, M)> = Vec::new();
    let mut state = init.clone();
    let mut best: Option<Failure<M>> = None;
    let mut entry = nodes[0].next;
    let mut steps = 0u64;
    loop {
        if remaining == 0 {
            return Outcome::Linearizable;
        }
        steps += 1;
        if steps > budget {
            return Outcome::Unknown { steps: budget };
        }
        if entry == NIL {
            // Unreachable while an ok op remains (its return is in the
            // list), but treat it as a dead end rather than trusting that.
            match stack.pop() {
                Some((e, s)) => {
                    entry = undo(
                        &mut nodes,
                        &mut linearized,
                        &mut remaining,
                        &mut state,
                        e,
                        s,
                    );
                    continue;
                }
                None => break,
            }
        }
        let node = &nodes[entry];
        if node.is_call {
            let op = node.op;
            if let Some(next) = state.step(&entries[op].op) {
                linearized[op / 64] |= 1 << (op % 64);
                if cache.insert((linearized.clone(), next.clone())) {
                    let prev_state = std::mem::replace(&mut state, next);
                    stack.push((entry, prev_state));
                    lift(&mut nodes, entry);
                    let r = nodes[entry].ret;
                    if r != NIL {
                        lift(&mut nodes, r);
                        remaining -= 1;
                    }
                    entry = nodes[0].next;
                    continue;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            entry = nodes[entry].next;
        } else {
            if best
                .as_ref()
                .is_none_or(|b| stack.len() > b.linearized.len())
            {
                best = Some(Failure {
                    linearized: stack
                        .iter()
                        .map(|&(e, _)| entries[nodes[e].op].id)
                        .collect(),
                    state: state.clone(),
                    stuck: entries[node.op].id,
                });
            }
            match stack.pop() {
                Some((e, s)) => {
                    entry = undo(
                        &mut nodes,
                        &mut linearized,
                        &mut remaining,
                        &mut state,
                        e,
                        s,
                    );
                }
                None => break,
            }
        }
    }
    match best {
        Some(f) => Outcome::Nonlinearizable(f),
        // Only reachable if nothing could ever be tried; report the first op.
        None => Outcome::Nonlinearizable(Failure {
            linearized: Vec::new(),
            state: init.clone(),
            stuck: entries.first().map_or(0, |e| e.id),
        }),
    }
}

/// Pops one linearized op back into the list; returns the entry to try next.
fn undo<M: Model>(
    nodes: &mut [Node],
    linearized: &mut [u64],
    remaining: &mut usize,
    state: &mut M,
    e: usize,
    s: M,
) -> usize {
    let op = nodes[e].op;
    let r = nodes[e].ret;
    if r != NIL {
        unlift(nodes, r);
        *remaining += 1;
    }
    unlift(nodes, e);
    linearized[op / 64] &= !(1 << (op % 64));
    *state = s;
    nodes[e].next
}
