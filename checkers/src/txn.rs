//! Transactional analysis (Elle-style) of send, poll and txn operations.
//!
//! Every `ok` (and, as a writer, every `info`) `send`, `poll` or `txn`
//! operation becomes a vertex of a dependency graph, as in Jepsen's Kafka
//! test. A crashed (`info`) op counts once a read proves it happened (an
//! `ok` poll returned a value it sent; for a transaction, any of its
//! values): the offsets its completion reported then join the version
//! orders, as do the records every poll returned, crashed ones included.
//! The edges:
//!
//! - **wr**: A sent value v to key k and B polled it;
//! - **ww** (only with `ww_deps`, Jepsen's `:ww-deps`): A sent the value just
//!   before B's value in k's version order, the order of values by offset
//!   learned from acknowledged sends and polls;
//! - **rw** (only with [`TxnOpts::rw_deps`]): B's last read of k was the
//!   version just before the one A sent. Jepsen's Kafka test leaves these
//!   out because a poll returns a bounded batch, not a snapshot of the log,
//!   so "B did not see A's value" is no proof that B came first; `check`
//!   therefore never infers them;
//! - **process**: the same process ran A, then B;
//! - **realtime**: A completed before B was invoked. As in Elle, B is linked
//!   only to the *frontier* of ops that completed without a completed
//!   successor yet, so the edges stay linear in the history size.
//!
//! Most histories have no cycle at all, and the process and realtime edges
//! are most of the graph (they grow with concurrency), so the graph is only
//! built when a cycle is possible: without ww/rw inference, one pass first
//! tries to place every op at a point of its own lifetime so that every wr
//! edge goes forward in time (`quick`), which proves the graph acyclic;
//! otherwise the data edges plus a linear "time chain" standing in for both
//! orders are tested for a cycle (`may_cycle`). Only if that finds one is
//! the exact graph built and searched as below, so results never change.
//!
//! Strongly connected components are found with an iterative Tarjan; in each
//! one, a breadth-first search finds a short cycle per class and names it like Elle:
//! `G0` (ww only), `G1c` (ww + wr, at least one wr), `G-single` (exactly one
//! rw), `G-nonadjacent` (several rw, none adjacent), `G2-item` (several rw,
//! some adjacent), each with a `-process` or `-realtime` suffix when the
//! cycle needs process- or realtime-order edges (Elle's names, so results
//! compare with Jepsen's; Elle's `G2` proper needs predicate reads, which a
//! log does not have, so item-level anti-dependency cycles are `G2-item`).
//! At most one cycle per class and SCC is reported, the weakest variant.
//!
//! A witness is `{"explanation", "ops", "cycle", "steps", "cycle-length",
//! "scc-size"}`: `ops` are history indices in cycle order, `cycle` the
//! operations themselves, and `steps[i]` explains the edge from `ops[i]` to
//! `ops[i+1]` (the last one closes the cycle) with its type, key, value and
//! offset. Past [`MAX_DETAILED_WITNESSES`] cycles of one type, witnesses are
//! compact (explanation, ops, edge types), and cycles longer than
//! [`MAX_WITNESS_EDGES`] list only their first edges.
//!
//! A search that runs out of its step budget yields a `cycle-search-timeout`
//! entry ([`SEARCH_TIMEOUT`]) whose `unsearched` field names the classes not
//! searched: the caller must turn that into validity "unknown" (Elle does
//! the same) if any of those classes would be a bad anomaly, unless another
//! anomaly already makes the history invalid.

mod graph;
mod quick;
mod search;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use gregor_history::{Event, EventType, History, Key, Mop, Offset, Process, Val, F};
use serde_json::{json, Value as Json};

use crate::CheckOpts;
use graph::{rel_name, Builder, PROCESS, REALTIME, RW, WR, WW};
use search::{Data, Variant};

/// The anomaly type reported when cycle search ran out of budget.
pub const SEARCH_TIMEOUT: &str = "cycle-search-timeout";

/// Every anomaly type this analysis can report: each cycle class in each
/// variant (`G0`, `G0-process`, `G0-realtime`, `G1c`, …), then
/// [`SEARCH_TIMEOUT`].
pub fn anomaly_types() -> Vec<String> {
    let mut out: Vec<String> = Data::ALL
        .iter()
        .flat_map(|d| {
            Variant::ALL
                .iter()
                .map(move |v| format!("{}{}", d.name(), v.suffix()))
        })
        .collect();
    out.push(SEARCH_TIMEOUT.to_string());
    out
}

/// Cycles of one type that get a fully explained witness; later ones (the
/// caller keeps only a few examples, but counts them all) get a compact
/// witness naming the ops and the edge types, which is much cheaper when a
/// history holds tens of thousands of, say, `G0` cycles.
pub const MAX_DETAILED_WITNESSES: usize = 64;

/// Edges a cycle witness lists in `ops`, `cycle` and `steps` at most.
pub const MAX_WITNESS_EDGES: usize = 1000;
/// Edges a cycle witness spells out in its `explanation` text at most.
const MAX_TEXT_EDGES: usize = 12;

/// Default number of edge steps the cycle search may take per SCC.
pub const DEFAULT_SEARCH_BUDGET: u64 = 20_000_000;

/// Which dependencies to infer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnOpts {
    /// Infer ww edges from the per-key version (offset) order.
    pub ww_deps: bool,
    /// Infer rw anti-dependency edges (unsound for plain Kafka polls; see
    /// the module docs).
    pub rw_deps: bool,
    /// Add process-order edges.
    pub process_edges: bool,
    /// Add realtime-order edges.
    pub realtime_edges: bool,
    /// Edge steps the cycle search may take per strongly connected component.
    pub search_budget: u64,
}

impl TxnOpts {
    /// What `check` uses: Jepsen's Kafka graph (wr, ww under `ww_deps`,
    /// process and realtime), no rw inference.
    pub fn from_check_opts(o: &CheckOpts) -> TxnOpts {
        TxnOpts {
            ww_deps: o.ww_deps,
            rw_deps: false,
            process_edges: true,
            realtime_edges: true,
            search_budget: DEFAULT_SEARCH_BUDGET,
        }
    }
}

/// Finds dependency cycles between operations; returns (anomaly type, witness).
pub fn check(history: &History, opts: &CheckOpts) -> Vec<(String, serde_json::Value)> {
    check_with(history, &TxnOpts::from_check_opts(opts))
}

/// Like [`check`], with every inference switch explicit.
pub fn check_with(history: &History, opts: &TxnOpts) -> Vec<(String, serde_json::Value)> {
    if !opts.ww_deps && !opts.rw_deps && quick::acyclic_by_time(history) {
        return Vec::new();
    }
    let ops = collect_ops(history);
    if ops.ops.is_empty() {
        return Vec::new();
    }
    let mut b = Builder::new(ops.ops.len());
    let ix = Index::build(history, &ops.ops, opts, &mut b);
    ix.link_data(history, &ops.ops, opts, &mut b);
    if !may_cycle(history, &ops, opts, &b) {
        // The usual case of a valid history: no cycle, nothing to search
        // or explain, and no process or realtime edges to build.
        return Vec::new();
    }
    link_orders(history, &ops, opts, &mut b);
    let g = b.build();
    let mut out = Vec::new();
    let mut per_type: HashMap<String, usize> = HashMap::new();
    for scc in g.nontrivial_sccs() {
        let mut budget = opts.search_budget;
        let res = search::search_scc(&g, &scc, &mut budget);
        for c in &res.cycles {
            let (data, variant) = c.classify();
            let name = format!("{}{}", data.name(), variant.suffix());
            let seen = per_type.entry(name.clone()).or_default();
            *seen += 1;
            let w = if *seen <= MAX_DETAILED_WITNESSES {
                explain_cycle(history, &ops.ops, &ix, c, &name, data, variant, scc.len())
            } else {
                compact_cycle(history, &ops.ops, c, &name, scc.len())
            };
            out.push((name, w));
        }
        if !res.timed_out.is_empty() {
            let sample: Vec<u64> = scc
                .iter()
                .take(20)
                .map(|&v| ops.ops[v as usize].index(history))
                .collect();
            out.push((
                SEARCH_TIMEOUT.to_string(),
                json!({
                    "explanation": format!(
                        "{} operations depend on each other in a cycle, but the search for {} cycles among them \
                         ran out of its budget of {} steps; whether those anomalies occurred is unknown. \
                         Re-run the check with a larger budget or look at these operations' keys",
                        scc.len(),
                        res.timed_out.join(", "),
                        opts.search_budget
                    ),
                    "ops": sample,
                    "scc-size": scc.len(),
                    "unsearched": res.timed_out,
                }),
            ));
        }
    }
    out
}

// ------------------------------------------------------------------ hashing

/// A small multiplicative hasher (FxHash) for integer keys: the default
/// SipHash costs more than the rest of graph construction.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

// ---------------------------------------------------------------------- ops

/// One operation: an invocation and its completion.
#[derive(Clone, Copy, Debug)]
struct Op {
    inv: usize,
    /// Position of the completion event; `None` for an invoke never completed.
    comp: Option<usize>,
    ok: bool,
}

impl Op {
    fn event<'h>(&self, h: &'h History) -> &'h Event {
        &h.events[self.comp.unwrap_or(self.inv)]
    }
    fn index(&self, h: &History) -> u64 {
        self.event(h).index
    }
    /// Micro-ops: the completion's if `ok`; for `info`, whichever side has them.
    fn mops<'h>(&self, h: &'h History) -> &'h [Mop] {
        let c = self.event(h).mops();
        if self.ok || !c.is_empty() {
            c
        } else {
            h.events[self.inv].mops()
        }
    }
    /// Micro-ops whose reads can be trusted (ok ops only).
    fn reads<'h>(&self, h: &'h History) -> impl Iterator<Item = (Key, &'h [(Offset, Val)])> + 'h {
        let mops = if self.ok { self.event(h).mops() } else { &[] };
        mops.iter()
            .filter_map(|m| match m {
                Mop::Poll { reads: Some(r) } => {
                    Some(r.iter().map(|(k, pairs)| (*k, pairs.as_slice())))
                }
                _ => None,
            })
            .flatten()
    }
    /// Every poll result, also of a crashed (`info`) op: what a poll
    /// returned is in the log whether or not its op completed.
    fn all_reads<'h>(
        &self,
        h: &'h History,
    ) -> impl Iterator<Item = (Key, &'h [(Offset, Val)])> + 'h {
        self.event(h)
            .mops()
            .iter()
            .filter_map(|m| match m {
                Mop::Poll { reads: Some(r) } => {
                    Some(r.iter().map(|(k, pairs)| (*k, pairs.as_slice())))
                }
                _ => None,
            })
            .flatten()
    }
    fn sends<'h>(&self, h: &'h History) -> impl Iterator<Item = (Key, Val, Option<Offset>)> + 'h {
        self.mops(h).iter().filter_map(|m| match m {
            Mop::Send { key, value, offset } => Some((*key, *value, *offset)),
            _ => None,
        })
    }
}

struct Ops {
    ops: Vec<Op>,
    /// Event position -> op invoked there ([`NO_OP`] if none).
    at_inv: Vec<u32>,
    /// Event position -> ok op completed there ([`NO_OP`] if none).
    at_ok: Vec<u32>,
}

const NO_OP: u32 = u32::MAX;

fn relevant(f: &F) -> bool {
    matches!(f, F::Send | F::Poll | F::Txn)
}

fn collect_ops(h: &History) -> Ops {
    let mut pending: FxMap<Process, usize> = FxMap::default();
    let mut ops = Vec::new();
    for (i, e) in h.events.iter().enumerate() {
        if e.process == Process::Nemesis {
            continue;
        }
        match e.kind {
            EventType::Invoke => {
                // A second invoke before a completion leaves the first one
                // indefinite.
                if let Some(prev) = pending.insert(e.process, i) {
                    if relevant(&h.events[prev].f) {
                        ops.push(Op {
                            inv: prev,
                            comp: None,
                            ok: false,
                        });
                    }
                }
            }
            EventType::Ok | EventType::Info | EventType::Fail => {
                let inv = pending.remove(&e.process).unwrap_or(i);
                if relevant(&e.f) && e.kind != EventType::Fail {
                    ops.push(Op {
                        inv,
                        comp: Some(i),
                        ok: e.kind == EventType::Ok,
                    });
                }
            }
        }
    }
    let mut left: Vec<usize> = pending
        .into_values()
        .filter(|&i| relevant(&h.events[i].f))
        .collect();
    left.sort_unstable();
    ops.extend(left.into_iter().map(|inv| Op {
        inv,
        comp: None,
        ok: false,
    }));
    let mut at_inv = vec![NO_OP; h.events.len()];
    let mut at_ok = vec![NO_OP; h.events.len()];
    for (id, op) in ops.iter().enumerate() {
        at_inv[op.inv] = id as u32;
        if let (true, Some(c)) = (op.ok, op.comp) {
            at_ok[c] = id as u32;
        }
    }
    Ops { ops, at_inv, at_ok }
}

// -------------------------------------------------------------------- index

const NO_SLOT: u32 = u32::MAX;
const EMPTY: u64 = u64::MAX;
const CONFLICT: u64 = u64::MAX - 1;

/// A written value: who wrote it and, once the log is known, where it sits
/// in its key's version order.
#[derive(Clone, Copy, Debug)]
struct Slot {
    op: u32,
    value: Val,
    /// First offset the value was seen at (`EMPTY` if never).
    offset: Offset,
    /// Neighbouring written values in the version order.
    prev: u32,
    next: u32,
}

/// (key, value) -> slot. Values are usually small integers unique across
/// keys, so a table indexed by value answers most lookups without hashing
/// (and with far fewer cache misses); pairs that do not fit there (a value
/// reused on another key, or values too sparse for a table) are hashed.
struct WriterIndex {
    dense: Vec<(Key, u32)>,
    spill: FxMap<(Key, Val), u32>,
}

impl WriterIndex {
    fn new(max_value: Option<Val>, writes: usize) -> WriterIndex {
        let len = match max_value {
            Some(m) if m < 4 * writes as u64 + 1024 => m as usize + 1,
            _ => 0,
        };
        WriterIndex {
            dense: vec![(0, NO_SLOT); len],
            spill: FxMap::default(),
        }
    }

    fn get(&self, k: Key, v: Val) -> Option<u32> {
        match self.dense.get(v as usize) {
            Some(&(_, NO_SLOT)) => None,
            Some(&(dk, s)) if dk == k => Some(s),
            _ => self.spill.get(&(k, v)).copied(),
        }
    }

    /// Inserts a slot for (k, v) unless one exists; `make` creates it.
    fn insert_with(&mut self, k: Key, v: Val, make: impl FnOnce() -> u32) {
        match self.dense.get_mut(v as usize) {
            Some(e) if e.1 == NO_SLOT => *e = (k, make()),
            Some(e) if e.0 == k => {}
            _ => {
                self.spill.entry((k, v)).or_insert_with(make);
            }
        }
    }
}

struct Index {
    /// (key, value) -> slot of its (first) writer.
    writer_of: WriterIndex,
    slots: Vec<Slot>,
}

impl Index {
    fn writer(&self, k: Key, v: Val) -> Option<&Slot> {
        self.writer_of.get(k, v).map(|s| &self.slots[s as usize])
    }

    fn slot(&self, s: u32) -> Option<&Slot> {
        self.slots.get(s as usize)
    }

    /// Indexes writers and, with ww or rw inference, each key's version
    /// order (linking ww edges as it goes).
    fn build(h: &History, ops: &[Op], o: &TxnOpts, b: &mut Builder) -> Index {
        let (mut max_value, mut writes) = (None, 0usize);
        for op in ops {
            for (_, v, _) in op.sends(h) {
                max_value = max_value.max(Some(v));
                writes += 1;
            }
        }
        let mut writer_of = WriterIndex::new(max_value, writes);
        let mut slots = Vec::new();
        for (id, op) in ops.iter().enumerate() {
            for (k, v, _) in op.sends(h) {
                writer_of.insert_with(k, v, || {
                    slots.push(Slot {
                        op: id as u32,
                        value: v,
                        offset: EMPTY,
                        prev: NO_SLOT,
                        next: NO_SLOT,
                    });
                    slots.len() as u32 - 1
                });
            }
        }
        let mut ix = Index { writer_of, slots };
        if o.ww_deps || o.rw_deps {
            // Jepsen's version orders: the offsets reported by sends that
            // certainly happened (`ok`, or `info` proven by an `ok` read of
            // any value the op sent), and every poll, crashed ones included.
            let mut read = vec![false; ix.slots.len()];
            for op in ops.iter().filter(|op| op.ok) {
                for (k, pairs) in op.reads(h) {
                    for &(_, v) in pairs {
                        if let Some(s) = ix.writer_of.get(k, v) {
                            read[s as usize] = true;
                        }
                    }
                }
            }
            let mut per_key: FxMap<Key, Vec<(Offset, Val)>> = FxMap::default();
            for (id, op) in ops.iter().enumerate() {
                let was_read = |k: Key, v: Val| {
                    ix.writer_of
                        .get(k, v)
                        .is_some_and(|s| read[s as usize] && ix.slots[s as usize].op == id as u32)
                };
                // A transaction commits all its records or none; the
                // records of a plain send op land independently.
                let txn = op.event(h).f == F::Txn;
                let whole = op.ok || (txn && op.sends(h).any(|(k, v, _)| was_read(k, v)));
                for (k, v, off) in op.sends(h) {
                    if let Some(off) = off {
                        if whole || was_read(k, v) {
                            per_key.entry(k).or_default().push((off, v));
                        }
                    }
                }
                for (k, pairs) in op.all_reads(h) {
                    per_key.entry(k).or_default().extend_from_slice(pairs);
                }
            }
            let mut keys: Vec<Key> = per_key.keys().copied().collect();
            keys.sort_unstable();
            for k in keys {
                let pairs = per_key.remove(&k).unwrap_or_default();
                let log = version_log(pairs);
                ix.chain(k, &log, o.ww_deps, b);
            }
        }
        ix
    }

    /// Links consecutive written values of one key's log (offset order, one
    /// value per offset); a value seen again at a later offset keeps its
    /// first place, and a value nobody is known to have written breaks the
    /// chain rather than being bridged.
    fn chain(&mut self, k: Key, log: &[(Offset, Val)], ww: bool, b: &mut Builder) {
        let mut prev = NO_SLOT;
        for &(off, v) in log {
            let Some(s) = self.writer_of.get(k, v) else {
                prev = NO_SLOT;
                continue;
            };
            if self.slots[s as usize].offset != EMPTY {
                continue; // a duplicate: keep its first offset
            }
            self.slots[s as usize].offset = off;
            if prev != NO_SLOT {
                self.slots[s as usize].prev = prev;
                self.slots[prev as usize].next = s;
                if ww {
                    b.link(self.slots[prev as usize].op, self.slots[s as usize].op, WW);
                }
            }
            prev = s;
        }
    }

    fn link_data(&self, h: &History, ops: &[Op], o: &TxnOpts, b: &mut Builder) {
        for (id, op) in ops.iter().enumerate() {
            let id = id as u32;
            for (k, pairs) in op.reads(h) {
                for &(_, v) in pairs {
                    if let Some(w) = self.writer(k, v) {
                        b.link(w.op, id, WR);
                    }
                }
                if o.rw_deps {
                    if let Some(next) = self.next_after_read(k, pairs) {
                        b.link(id, next.op, RW);
                    }
                }
            }
        }
    }

    /// The written value following the last one `pairs` read of key `k`.
    fn next_after_read(&self, k: Key, pairs: &[(Offset, Val)]) -> Option<&Slot> {
        let &(_, v) = pairs.iter().max_by_key(|(off, _)| *off)?;
        self.slot(self.writer(k, v)?.next)
    }
}

/// One key's log from every (offset, value) observation: sorted by offset,
/// one entry per offset, offsets claimed by two different values dropped.
/// Dense offsets (the usual case) are placed in an array in linear time.
fn version_log(pairs: Vec<(Offset, Val)>) -> Vec<(Offset, Val)> {
    let (Some(lo), Some(hi)) = (
        pairs.iter().map(|p| p.0).min(),
        pairs.iter().map(|p| p.0).max(),
    ) else {
        return Vec::new();
    };
    let range = hi - lo + 1;
    let sentinel_free = pairs.iter().all(|&(_, v)| v < CONFLICT);
    if sentinel_free && range <= 4 * pairs.len() as u64 + 1024 {
        let mut at = vec![EMPTY; range as usize];
        for &(off, v) in &pairs {
            let x = &mut at[(off - lo) as usize];
            if *x == EMPTY {
                *x = v;
            } else if *x != v {
                *x = CONFLICT;
            }
        }
        return at
            .into_iter()
            .enumerate()
            .filter(|&(_, v)| v < CONFLICT)
            .map(|(i, v)| (lo + i as u64, v))
            .collect();
    }
    let mut pairs = pairs;
    pairs.sort_unstable();
    pairs.dedup();
    let mut out: Vec<(Offset, Val)> = Vec::with_capacity(pairs.len());
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i + 1;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        if j == i + 1 {
            out.push(pairs[i]);
        }
        i = j;
    }
    out
}

/// Whether the dependency graph can have a cycle at all, decided without
/// building its process and realtime edges (the bulk of the graph, growing
/// with concurrency).
///
/// Both orders put an `ok` op's completion before another op's invocation,
/// so a *time chain* stands in for them: one extra vertex per `ok`
/// completion, in history order, each linked to the next; an `ok` op links
/// to its completion's vertex, and the latest vertex before an op's
/// invocation links to the op. Op `A` then reaches op `B` through the chain
/// exactly when `A` completed `ok` before `B` was invoked, which includes
/// every process and realtime edge (and their transitive closure), in
/// about three edges per op. Since a cycle needs a data edge (the orders
/// alone follow time), ops without data edges are left off the chain. The
/// answer over-approximates (a `true` is re-checked on the exact graph) but
/// never misses a cycle of the exact graph.
fn may_cycle(h: &History, ops: &Ops, o: &TxnOpts, b: &Builder) -> bool {
    let n = ops.ops.len() as u32;
    let mut extra: Vec<(u32, u32)> = Vec::new();
    let mut chain = 0u32;
    if o.process_edges || o.realtime_edges {
        let data = b.touched();
        let mut last: Option<u32> = None;
        for i in 0..h.events.len() {
            let id = ops.at_inv[i];
            if id != NO_OP && data[id as usize] {
                if let Some(t) = last {
                    extra.push((t, id));
                }
            }
            let id = ops.at_ok[i];
            if id != NO_OP && data[id as usize] {
                let t = n + chain;
                chain += 1;
                extra.push((id, t));
                if let Some(p) = last {
                    extra.push((p, t));
                }
                last = Some(t);
            }
        }
    }
    b.has_cycle_with(chain as usize, &extra)
}

/// Process-order and realtime-order edges, in one pass over the events.
fn link_orders(h: &History, ops: &Ops, o: &TxnOpts, b: &mut Builder) {
    let mut last_of: FxMap<Process, u32> = FxMap::default();
    let mut frontier: Vec<u32> = Vec::new();
    let mut in_frontier = vec![false; ops.ops.len()];
    // For each op: the range of frontier ops linked to it when it began.
    let mut preds: Vec<(u32, u32)> = vec![(0, 0); ops.ops.len()];
    let mut pred_store: Vec<u32> = Vec::new();
    for (i, e) in h.events.iter().enumerate() {
        let id = ops.at_inv[i];
        if id != NO_OP {
            if o.process_edges {
                if let Some(&p) = last_of.get(&e.process) {
                    b.link(p, id, PROCESS);
                }
            }
            if o.realtime_edges {
                let s = pred_store.len() as u32;
                for &p in &frontier {
                    b.link(p, id, REALTIME);
                    pred_store.push(p);
                }
                preds[id as usize] = (s, pred_store.len() as u32);
            }
        }
        let id = ops.at_ok[i];
        if id != NO_OP {
            last_of.insert(e.process, id);
            if o.realtime_edges {
                let (s, t) = preds[id as usize];
                for &p in &pred_store[s as usize..t as usize] {
                    in_frontier[p as usize] = false;
                }
                frontier.retain(|&p| in_frontier[p as usize]);
                frontier.push(id);
                in_frontier[id as usize] = true;
            }
        }
        // A failed or indefinite op never becomes a process-order source (an
        // indefinite one may take effect later), but the ops its process ran
        // before and after it stay ordered.
    }
}

// -------------------------------------------------------------- explaining

fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

fn describe_op(h: &History, op: &Op) -> Json {
    let e = op.event(h);
    json!({
        "index": e.index,
        "process": e.process,
        "type": e.kind.as_str(),
        "f": e.f.as_str(),
        "value": serde_json::to_value(e).ok().and_then(|v| v.get("value").cloned()).unwrap_or(Json::Null),
    })
}

fn explain_step(h: &History, ops: &[Op], ix: &Index, a: u32, b: u32, rel: u8) -> Json {
    let (oa, ob) = (&ops[a as usize], &ops[b as usize]);
    let (ia, ib) = (oa.index(h), ob.index(h));
    let mut m = serde_json::Map::new();
    m.insert("type".into(), json!(rel_name(rel)));
    m.insert("from".into(), json!(ia));
    m.insert("to".into(), json!(ib));
    let text = match rel {
        WR => ob
            .reads(h)
            .flat_map(|(k, pairs)| pairs.iter().map(move |&(off, v)| (k, off, v)))
            .find(|&(k, _, v)| ix.writer(k, v).is_some_and(|w| w.op == a))
            .map(|(k, off, v)| {
                m.insert("key".into(), json!(k));
                m.insert("value".into(), json!(v));
                m.insert("offset".into(), json!(off));
                format!("op {ia} sent {v} to key {k}, and op {ib} polled it at offset {off} (wr)")
            }),
        WW => ob
            .sends(h)
            .find_map(|(k, v2, _)| {
                let s2 = ix.writer(k, v2).filter(|s| s.op == b)?;
                let s1 = ix.slot(s2.prev).filter(|s| s.op == a)?;
                Some((k, *s1, *s2))
            })
            .map(|(k, s1, s2)| {
                let (v1, v2) = (s1.value, s2.value);
                m.insert("key".into(), json!(k));
                m.insert("value".into(), json!(v1));
                m.insert("value'".into(), json!(v2));
                m.insert("offset".into(), json!(s1.offset));
                m.insert("offset'".into(), json!(s2.offset));
                format!(
                    "op {ia} sent {v1} to key {k} at offset {}, the version just before {v2} at offset {} \
                     which op {ib} sent (ww)",
                    s1.offset, s2.offset
                )
            }),
        RW => oa
            .reads(h)
            .find_map(|(k, pairs)| {
                let &(off, v) = pairs.iter().max_by_key(|(off, _)| *off)?;
                let next = ix.next_after_read(k, pairs).filter(|s| s.op == b)?;
                Some((k, off, v, *next))
            })
            .map(|(k, off, v, next)| {
                m.insert("key".into(), json!(k));
                m.insert("value".into(), json!(v));
                m.insert("value'".into(), json!(next.value));
                m.insert("offset".into(), json!(off));
                m.insert("offset'".into(), json!(next.offset));
                format!(
                    "op {ia} polled key {k} up to {v} at offset {off} but not the next version {} at offset {}, \
                     which op {ib} sent (rw)",
                    next.value, next.offset
                )
            }),
        PROCESS => {
            let p = oa.event(h).process;
            m.insert("process".into(), json!(p));
            Some(format!("process {p} completed op {ia} before it invoked op {ib} (process)"))
        }
        REALTIME => {
            let t1 = oa.event(h).time;
            let t2 = h.events[ob.inv].time;
            m.insert("completed".into(), json!(t1));
            m.insert("invoked".into(), json!(t2));
            Some(format!("op {ia} completed at {} before op {ib} was invoked at {} (realtime)", ms(t1), ms(t2)))
        }
        _ => None,
    };
    m.insert(
        "explanation".into(),
        json!(text.unwrap_or_else(|| format!("op {ia} precedes op {ib} ({})", rel_name(rel)))),
    );
    Json::Object(m)
}

fn meaning(data: Data, variant: Variant) -> String {
    let d = match data {
        Data::G0 => "Their writes were ordered one way on one key and the other way on another, so the writes \
                     of these operations were not applied atomically (write cycle)",
        Data::G1c => "Information flowed in a circle: each operation (transitively) observed the others' writes, \
                      which no order of committed transactions allows (circular information flow)",
        Data::GSingle => "One read missed a write that, through the other dependencies, happened before it \
                          (read skew); snapshot isolation forbids this",
        Data::GNonadjacent | Data::G2Item => "Reads missed each other's writes in a circle (anti-dependency \
                                              cycle); serializability forbids this",
    };
    let v = match variant {
        Variant::Plain => "",
        Variant::Process => "; the cycle closes only through the order in which one process ran its operations",
        Variant::Realtime => "; the cycle closes only through realtime order (an operation finished before another began)",
    };
    format!("{d}{v}")
}

#[allow(clippy::too_many_arguments)]
fn explain_cycle(
    h: &History,
    ops: &[Op],
    ix: &Index,
    c: &search::Cycle,
    name: &str,
    data: Data,
    variant: Variant,
    scc_size: usize,
) -> Json {
    let n = c.ops.len();
    // Very long cycles keep their first edges only (a witness must stay
    // readable and small); `cycle-length` tells the whole size.
    let shown = n.min(MAX_WITNESS_EDGES);
    let steps: Vec<Json> = (0..shown)
        .map(|i| explain_step(h, ops, ix, c.ops[i], c.ops[(i + 1) % n], c.rels[i]))
        .collect();
    let indices: Vec<u64> = c.ops.iter().map(|&v| ops[v as usize].index(h)).collect();
    let chain: Vec<String> = if n <= MAX_TEXT_EDGES {
        indices
            .iter()
            .chain(indices.first())
            .map(|i| i.to_string())
            .collect()
    } else {
        let mut c: Vec<String> = indices[..MAX_TEXT_EDGES]
            .iter()
            .map(|i| i.to_string())
            .collect();
        c.push(format!("... ({n} ops in all)"));
        c.push(indices[0].to_string());
        c
    };
    let mut why: Vec<String> = steps
        .iter()
        .take(MAX_TEXT_EDGES)
        .filter_map(|s| {
            s.get("explanation")
                .and_then(|e| e.as_str())
                .map(str::to_string)
        })
        .collect();
    if n > MAX_TEXT_EDGES {
        why.push(format!(
            "and {} more steps (`steps` lists the first {shown})",
            n - MAX_TEXT_EDGES
        ));
    }
    let mut w = json!({
        "explanation": format!(
            "{name}: ops {} form a dependency cycle, so no order of them explains what they observed: {}. {}",
            chain.join(" -> "),
            why.join("; "),
            meaning(data, variant)
        ),
        "ops": indices[..shown],
        "cycle": c.ops[..shown].iter().map(|&v| describe_op(h, &ops[v as usize])).collect::<Vec<_>>(),
        "steps": steps,
        "cycle-length": n,
        "scc-size": scc_size,
    });
    if shown < n {
        w["truncated"] = json!(format!("only the first {shown} of {n} edges are listed"));
    }
    w
}

/// A cheap witness: the ops and relationship of each edge, no per-edge text.
fn compact_cycle(h: &History, ops: &[Op], c: &search::Cycle, name: &str, scc_size: usize) -> Json {
    let n = c.ops.len();
    let shown = n.min(MAX_WITNESS_EDGES);
    let indices: Vec<u64> = c.ops[..shown]
        .iter()
        .map(|&v| ops[v as usize].index(h))
        .collect();
    let rels: Vec<&str> = c.rels[..shown].iter().map(|&r| rel_name(r)).collect();
    let text: Vec<String> = (0..shown.min(MAX_TEXT_EDGES))
        .map(|i| format!("{} -{}->", indices[i], rels[i]))
        .collect();
    json!({
        "explanation": format!(
            "{name}: ops {} {}{} form a dependency cycle; the first {MAX_DETAILED_WITNESSES} {name} witnesses \
             explain each edge",
            text.join(" "),
            if n > MAX_TEXT_EDGES { "... " } else { "" },
            indices[0]
        ),
        "ops": indices,
        "rels": rels,
        "cycle-length": n,
        "scc-size": scc_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: deterministic random histories.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
        }
    }

    /// A small random history of sends, polls and txns over few keys and
    /// values, with reads of values sent earlier, later or never, ops left
    /// pending, failed or indefinite: cycles of every kind show up.
    fn random_history(rng: &mut Rng) -> History {
        let procs = 1 + rng.below(4);
        let mut pending: Vec<Option<(String, String)>> = vec![None; procs as usize];
        let mut lines = Vec::new();
        for i in 0..(4 + rng.below(16)) {
            let p = rng.below(procs) as usize;
            let head = format!(r#"{{"index":{i},"time":{i},"process":{p},"#);
            match pending[p].take() {
                None => {
                    let f = ["send", "poll", "txn"][rng.below(3) as usize];
                    let (k, v) = (rng.below(2), rng.below(6));
                    let inv = match f {
                        "send" => format!(r#"[["send",{k},{v}]]"#),
                        "poll" => r#"[["poll"]]"#.to_string(),
                        _ => format!(r#"[["send",{k},{v}],["poll"]]"#),
                    };
                    lines.push(format!(
                        r#"{head}"type":"invoke","f":"{f}","value":{inv}}}"#
                    ));
                    let (rk, rv) = (rng.below(2), rng.below(6));
                    let ok = match f {
                        "send" => format!(r#"[["send",{k},[{v},{v}]]]"#),
                        "poll" => format!(r#"[["poll",{{"{rk}":[[{rv},{rv}]]}}]]"#),
                        _ => {
                            format!(r#"[["send",{k},[{v},{v}]],["poll",{{"{rk}":[[{rv},{rv}]]}}]]"#)
                        }
                    };
                    pending[p] = Some((f.to_string(), ok));
                }
                Some((f, ok)) => {
                    let t = ["ok", "ok", "ok", "info", "fail"][rng.below(5) as usize];
                    lines.push(format!(r#"{head}"type":"{t}","f":"{f}","value":{ok}}}"#));
                }
            }
        }
        History::parse_str(&lines.join("\n")).expect("generated history parses")
    }

    fn exact_has_cycle(h: &History, opts: &TxnOpts) -> bool {
        let ops = collect_ops(h);
        let mut b = Builder::new(ops.ops.len());
        let ix = Index::build(h, &ops.ops, opts, &mut b);
        ix.link_data(h, &ops.ops, opts, &mut b);
        link_orders(h, &ops, opts, &mut b);
        !b.build().nontrivial_sccs().is_empty()
    }

    #[test]
    fn the_fast_acyclicity_tests_never_miss_a_cycle_of_the_exact_graph() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut cyclic, mut proven) = (0, 0);
        for _ in 0..3000 {
            let h = random_history(&mut rng);
            for ww_deps in [false, true] {
                let opts = TxnOpts {
                    ww_deps,
                    ..TxnOpts::from_check_opts(&CheckOpts::default())
                };
                let exact = exact_has_cycle(&h, &opts);
                let ops = collect_ops(&h);
                let mut b = Builder::new(ops.ops.len());
                let ix = Index::build(&h, &ops.ops, &opts, &mut b);
                ix.link_data(&h, &ops.ops, &opts, &mut b);
                let chained = may_cycle(&h, &ops, &opts, &b);
                assert!(!exact || chained, "time chain missed a cycle");
                if !ww_deps && quick::acyclic_by_time(&h) {
                    proven += 1;
                    assert!(!exact, "certificate accepted a cyclic history");
                }
                cyclic += exact as usize;
                // Whatever path it takes, the check reports cycles exactly
                // when the exact graph has one.
                assert_eq!(exact, !check_with(&h, &opts).is_empty());
            }
        }
        // The generator exercises both outcomes.
        assert!(
            cyclic > 100 && proven > 100,
            "cyclic {cyclic}, proven {proven}"
        );
    }
}
