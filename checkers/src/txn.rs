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

mod explain;
mod graph;
mod index;
mod quick;
mod search;

use std::collections::HashMap;

use gregor_history::{Event, EventType, History, Key, Mop, Offset, Process, Val, F};
use serde_json::{json, Value as Json};

use crate::CheckOpts;
use explain::{compact_cycle, explain_cycle};
use graph::{rel_name, Builder, PROCESS, REALTIME, RW, WR, WW};
use index::Index;
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

/// Maps keyed by integers, with the checkers' one hasher ([`crate::hash`]).
type FxMap<K, V> = crate::hash::FxHashMap<K, V>;

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
    // Failed ops certainly did not happen: only their invokes matter (a
    // never-completed one is indefinite, like an `info`).
    let ops: Vec<Op> = gregor_history::ops::pairs(&h.events)
        .filter_map(|p| {
            let (kind, f) = match p.complete_at {
                Some(c) => (h.events[c].kind, &h.events[c].f),
                None => (EventType::Info, &h.events[p.start_at()].f),
            };
            (relevant(f) && kind != EventType::Fail).then(|| Op {
                inv: p.start_at(),
                comp: p.complete_at,
                ok: kind == EventType::Ok,
            })
        })
        .collect();
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

// ------------------------------------------------------------------- orders

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
