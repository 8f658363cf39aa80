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
    /// How many operations were linearized.
    pub depth: usize,
    /// Ids of the last (up to [`FAILURE_TAIL`]) operations linearized, in order.
    pub linearized: Vec<u64>,
    /// The model state after them.
    pub state: M,
    /// The operation that returned while no order could place it.
    pub stuck: u64,
}

/// The verdict of a search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Linearizability<M> {
    Linearizable,
    Nonlinearizable(Failure<M>),
    /// The step budget ran out first.
    Unknown {
        steps: u64,
    },
}

const NIL: usize = usize::MAX;

/// How many of the linearized operations a [`Failure`] keeps.
pub const FAILURE_TAIL: usize = 16;

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
pub fn check<M: Model>(init: &M, entries: &[Entry<M::Op>], budget: u64) -> Linearizability<M> {
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
    // The set of linearized ops is kept as a 128-bit Zobrist hash (XOR of a
    // random code per op), so a cache lookup costs O(1) rather than
    // O(ops / 64); two different sets collide with probability ~2^-128.
    let codes: Vec<u128> = (0..entries.len() as u64).map(zobrist).collect();
    let mut lin = Linearized {
        codes: &codes,
        set: 0,
    };
    let mut cache: HashSet<(u128, M)> = HashSet::new();
    let mut remaining = entries.iter().filter(|e| e.ret.is_some()).count();
    let mut stack: Vec<(usize, M)> = Vec::new();
    let mut state = init.clone();
    let mut best: Option<Failure<M>> = None;
    let mut entry = nodes[0].next;
    let mut steps = 0u64;
    loop {
        if remaining == 0 {
            return Linearizability::Linearizable;
        }
        steps += 1;
        if steps > budget {
            return Linearizability::Unknown { steps: budget };
        }
        if entry == NIL {
            // Unreachable while an ok op remains (its return is in the
            // list), but treat it as a dead end rather than trusting that.
            match stack.pop() {
                Some((e, s)) => {
                    entry = undo(&mut nodes, &mut lin, &mut remaining, e);
                    state = s;
                    continue;
                }
                None => break,
            }
        }
        let node = &nodes[entry];
        if node.is_call {
            let op = node.op;
            if let Some(next) = state.step(&entries[op].op) {
                if cache.insert((lin.with(op), next.clone())) {
                    lin.toggle(op);
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
            }
            entry = nodes[entry].next;
        } else {
            if best.as_ref().is_none_or(|b| stack.len() > b.depth) {
                let tail = stack.len().saturating_sub(FAILURE_TAIL);
                best = Some(Failure {
                    depth: stack.len(),
                    linearized: stack[tail..]
                        .iter()
                        .map(|&(e, _)| entries[nodes[e].op].id)
                        .collect(),
                    state: state.clone(),
                    stuck: entries[node.op].id,
                });
            }
            match stack.pop() {
                Some((e, s)) => {
                    entry = undo(&mut nodes, &mut lin, &mut remaining, e);
                    state = s;
                }
                None => break,
            }
        }
    }
    match best {
        Some(f) => Linearizability::Nonlinearizable(f),
        // Only reachable if nothing could ever be tried; report the first op.
        None => Linearizability::Nonlinearizable(Failure {
            depth: 0,
            linearized: Vec::new(),
            state: init.clone(),
            stuck: entries.first().map_or(0, |e| e.id),
        }),
    }
}

/// The set of linearized operations, as a Zobrist hash.
struct Linearized<'a> {
    codes: &'a [u128],
    set: u128,
}

impl Linearized<'_> {
    fn with(&self, op: usize) -> u128 {
        self.set ^ self.codes[op]
    }
    fn toggle(&mut self, op: usize) {
        self.set ^= self.codes[op];
    }
}

/// A well-mixed 128-bit code for op `i` (splitmix64, twice).
fn zobrist(i: u64) -> u128 {
    fn mix(z: u64) -> u64 {
        let z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let a = mix(i);
    ((a as u128) << 64) | mix(a ^ 0xD6E8_FEB8_6659_FD93) as u128
}

/// Puts the linearized op of call node `e` back into the list; returns the
/// entry to try next.
fn undo(nodes: &mut [Node], lin: &mut Linearized<'_>, remaining: &mut usize, e: usize) -> usize {
    let r = nodes[e].ret;
    if r != NIL {
        unlift(nodes, r);
        *remaining += 1;
    }
    unlift(nodes, e);
    lin.toggle(nodes[e].op);
    nodes[e].next
}
