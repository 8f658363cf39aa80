//! Finding short, classified cycles inside one strongly connected component.
//!
//! Like Elle, we search for each anomaly class in turn (G0, G1c, G-single,
//! G-nonadjacent, G2-item; each plain, then `-process`, then `-realtime`),
//! each restricted to the relationships that class may use. A search starts
//! from a *pivot* edge of a relationship the class requires (an rw edge for
//! the anti-dependency classes, a wr edge for G1c, the process/realtime edge
//! for the G0 variants) and runs a breadth-first search back to the
//! pivot's source over (vertex, constraint state) pairs, so the first cycle
//! found is the shortest one through that pivot that satisfies the class.
//! Only pivots whose ends lie in one SCC of the class's subgraph are tried,
//! and a step budget bounds the work; when it runs out the search reports a
//! timeout instead of running forever.

use std::collections::HashMap;

use super::graph::{Builder, Graph, PROCESS, REALTIME, RW, WR, WW};

/// The data-dependency part of a cycle's class, in Elle's order of search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Data {
    G0,
    G1c,
    GSingle,
    GNonadjacent,
    G2Item,
}

impl Data {
    pub const ALL: [Data; 5] = [
        Data::G0,
        Data::G1c,
        Data::GSingle,
        Data::GNonadjacent,
        Data::G2Item,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Data::G0 => "G0",
            Data::G1c => "G1c",
            Data::GSingle => "G-single",
            Data::GNonadjacent => "G-nonadjacent",
            Data::G2Item => "G2-item",
        }
    }
}

/// Whether a cycle needs process-order or realtime-order edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variant {
    Plain,
    Process,
    Realtime,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Plain, Variant::Process, Variant::Realtime];

    pub fn suffix(self) -> &'static str {
        match self {
            Variant::Plain => "",
            Variant::Process => "-process",
            Variant::Realtime => "-realtime",
        }
    }
}

/// One anomaly class to search for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub data: Data,
    pub variant: Variant,
}

const RW_COUNT: u8 = 0b11;
const HAS_WR: u8 = 1 << 2;
const HAS_VAR: u8 = 1 << 3;
const LAST_RW: u8 = 1 << 4;
const FIRST_RW: u8 = 1 << 5;

impl Spec {
    pub fn name(&self) -> String {
        format!("{}{}", self.data.name(), self.variant.suffix())
    }

    fn allowed(&self) -> u8 {
        let base = match self.data {
            Data::G0 => WW,
            Data::G1c => WW | WR,
            _ => WW | WR | RW,
        };
        base | match self.variant {
            Variant::Plain => 0,
            Variant::Process => PROCESS,
            // Process order is implied by realtime order, so a realtime
            // cycle may use both.
            Variant::Realtime => PROCESS | REALTIME,
        }
    }

    fn variant_bit(&self) -> u8 {
        match self.variant {
            Variant::Plain => 0,
            Variant::Process => PROCESS,
            Variant::Realtime => REALTIME,
        }
    }

    /// The relationship a search starts from. Searching the classes in
    /// order makes the first pivot inside the class's sub-SCC succeed for
    /// G0 and G1c: e.g. when no plain G1c cycle exists, every ww/wr/process
    /// cycle through a wr edge must use a process edge.
    fn pivot(&self) -> u8 {
        if self.data >= Data::GSingle {
            RW
        } else if self.data == Data::G1c {
            WR
        } else if self.variant != Variant::Plain {
            self.variant_bit()
        } else {
            WW
        }
    }

    /// Relationships every cycle of this class uses at least once.
    fn required(&self) -> u8 {
        let data = match self.data {
            Data::G0 => WW,
            Data::G1c => WR,
            _ => RW,
        };
        data | self.variant_bit()
    }

    /// The constraint state after following an edge of relationship `bit`.
    fn step(&self, s: u8, bit: u8) -> Option<u8> {
        if bit & self.allowed() == 0 {
            return None;
        }
        let mut s = s;
        if bit == RW {
            let rw = s & RW_COUNT;
            match self.data {
                Data::GSingle if rw >= 1 => return None,
                Data::GNonadjacent if s & LAST_RW != 0 => return None,
                _ => {}
            }
            s = (s & !RW_COUNT) | (rw + 1).min(2) | LAST_RW;
        } else {
            s &= !LAST_RW;
        }
        if bit == WR {
            s |= HAS_WR;
        }
        if bit == self.variant_bit() {
            s |= HAS_VAR;
        }
        Some(s)
    }

    /// Whether a closed cycle with state `s` belongs to this class.
    fn accept(&self, s: u8) -> bool {
        let rw = s & RW_COUNT;
        let rw_ok = match self.data {
            Data::G0 | Data::G1c => rw == 0,
            Data::GSingle => rw == 1,
            Data::GNonadjacent => rw == 2 && !(s & LAST_RW != 0 && s & FIRST_RW != 0),
            Data::G2Item => rw == 2,
        };
        rw_ok
            && (self.data != Data::G1c || s & HAS_WR != 0)
            && (self.variant == Variant::Plain || s & HAS_VAR != 0)
    }
}

/// A cycle: `ops[i] -rels[i]-> ops[(i + 1) % len]`, vertices as graph ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle {
    pub ops: Vec<u32>,
    pub rels: Vec<u8>,
}

impl Cycle {
    /// Elle's classification of a cycle by the relationships it uses.
    pub fn classify(&self) -> (Data, Variant) {
        let count = |b: u8| self.rels.iter().filter(|&&r| r == b).count();
        let rw = count(RW);
        let n = self.rels.len();
        let adjacent_rw = (0..n).any(|i| self.rels[i] == RW && self.rels[(i + 1) % n] == RW);
        let data = if rw == 1 {
            Data::GSingle
        } else if rw > 1 {
            if adjacent_rw {
                Data::G2Item
            } else {
                Data::GNonadjacent
            }
        } else if count(WR) > 0 {
            Data::G1c
        } else {
            Data::G0
        };
        let variant = if count(REALTIME) > 0 {
            Variant::Realtime
        } else if count(PROCESS) > 0 {
            Variant::Process
        } else {
            Variant::Plain
        };
        (data, variant)
    }
}

/// What the search of one SCC produced.
#[derive(Debug, Default)]
pub struct SccResult {
    pub cycles: Vec<Cycle>,
    /// Classes not (fully) searched because the budget ran out.
    pub timed_out: Vec<String>,
}

/// A SCC re-indexed locally, with its internal edges only.
struct Local<'a> {
    global: &'a [u32],
    g: Graph,
}

enum SearchResult {
    Found(Cycle),
    None,
    Timeout,
}

/// Searches one SCC (sorted global vertex ids) for every class of cycle,
/// reporting at most one cycle per data class (its weakest variant).
pub fn search_scc(g: &Graph, scc: &[u32], budget: &mut u64) -> SccResult {
    let local_of: HashMap<u32, u32> = scc
        .iter()
        .enumerate()
        .map(|(i, &v)| (v, i as u32))
        .collect();
    let mut b = Builder::new(scc.len());
    let mut present = 0u8;
    for (i, &v) in scc.iter().enumerate() {
        for (w, r) in g.out(v) {
            if let Some(&j) = local_of.get(&w) {
                b.link(i as u32, j, r);
                present |= r;
            }
        }
    }
    let local = Local {
        global: scc,
        g: b.build(),
    };
    let mut res = SccResult::default();
    let mut reported: Vec<Data> = Vec::new();
    'data: for data in Data::ALL {
        for variant in Variant::ALL {
            if reported.contains(&data) {
                continue 'data;
            }
            let spec = Spec { data, variant };
            if spec.required() & !present != 0 {
                continue;
            }
            match search_spec(&local, &spec, budget) {
                SearchResult::Found(c) => {
                    let (d, _) = c.classify();
                    if !reported.contains(&d) {
                        reported.push(d);
                        res.cycles.push(c);
                    }
                    continue 'data;
                }
                SearchResult::None => {}
                SearchResult::Timeout => {
                    res.timed_out.push(spec.name());
                }
            }
        }
    }
    res
}

fn search_spec(local: &Local<'_>, spec: &Spec, budget: &mut u64) -> SearchResult {
    let g = &local.g;
    let n = g.len();
    let allowed = spec.allowed();
    // SCCs of the class's subgraph: a qualifying cycle lies inside one.
    let mut sub = Builder::new(n);
    for v in 0..n as u32 {
        for (w, r) in g.out(v) {
            if r & allowed != 0 {
                sub.link(v, w, r & allowed);
            }
        }
    }
    let sub = sub.build();
    let mut comp = vec![u32::MAX; n];
    for (ci, c) in sub.nontrivial_sccs().iter().enumerate() {
        for &v in c {
            comp[v as usize] = ci as u32;
        }
    }
    let pivot = spec.pivot();
    let mut seen = vec![0u64; n];
    let mut touched: Vec<u32> = Vec::new();
    for u in 0..n as u32 {
        if comp[u as usize] == u32::MAX {
            continue;
        }
        for (v, r) in sub.out(u) {
            if r & pivot == 0 || comp[v as usize] != comp[u as usize] {
                continue;
            }
            let Some(mut s0) = spec.step(0, pivot) else {
                continue;
            };
            if pivot == RW {
                s0 |= FIRST_RW;
            }
            match bfs(
                &sub,
                &comp,
                spec,
                u,
                v,
                pivot,
                s0,
                &mut seen,
                &mut touched,
                budget,
            ) {
                SearchResult::Found(c) => {
                    let ops = c.ops.iter().map(|&x| local.global[x as usize]).collect();
                    return SearchResult::Found(Cycle { ops, rels: c.rels });
                }
                SearchResult::Timeout => return SearchResult::Timeout,
                SearchResult::None => {}
            }
        }
    }
    SearchResult::None
}

/// Breadth-first search from `v` (reached from `u` by `pivot`) back to `u`.
#[allow(clippy::too_many_arguments)]
fn bfs(
    g: &Graph,
    comp: &[u32],
    spec: &Spec,
    u: u32,
    v: u32,
    pivot: u8,
    s0: u8,
    seen: &mut [u64],
    touched: &mut Vec<u32>,
    budget: &mut u64,
) -> SearchResult {
    for &t in touched.iter() {
        seen[t as usize] = 0;
    }
    touched.clear();
    // (vertex, state, parent entry, relationship used to get here)
    let mut queue: Vec<(u32, u8, u32, u8)> = vec![(v, s0, u32::MAX, pivot)];
    seen[v as usize] |= 1 << s0;
    touched.push(v);
    let c = comp[u as usize];
    let mut head = 0usize;
    while head < queue.len() {
        let (x, s, _, _) = queue[head];
        for (y, rels) in g.out(x) {
            if comp[y as usize] != c {
                continue;
            }
            let mut bits = rels;
            while bits != 0 {
                let bit = bits & bits.wrapping_neg();
                bits &= !bit;
                if *budget == 0 {
                    return SearchResult::Timeout;
                }
                *budget -= 1;
                let Some(ns) = spec.step(s, bit) else {
                    continue;
                };
                if y == u {
                    if spec.accept(ns) {
                        return SearchResult::Found(unwind(&queue, head, u, bit));
                    }
                    continue;
                }
                if seen[y as usize] & (1 << ns) != 0 {
                    continue;
                }
                if seen[y as usize] == 0 {
                    touched.push(y);
                }
                seen[y as usize] |= 1 << ns;
                queue.push((y, ns, head as u32, bit));
            }
        }
        head += 1;
    }
    SearchResult::None
}

fn unwind(queue: &[(u32, u8, u32, u8)], last: usize, u: u32, closing: u8) -> Cycle {
    // Walk parents back to the pivot's target, then prepend the pivot source.
    let mut ops = Vec::new();
    let mut rels = Vec::new();
    let mut i = last as u32;
    let mut into_next = closing;
    loop {
        let (x, _, parent, rel) = queue[i as usize];
        ops.push(x);
        rels.push(into_next);
        into_next = rel;
        if parent == u32::MAX {
            break;
        }
        i = parent;
    }
    ops.push(u);
    rels.push(into_next);
    ops.reverse();
    rels.reverse();
    Cycle { ops, rels }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: usize, edges: &[(u32, u32, u8)]) -> SccResult {
        let mut b = Builder::new(n);
        for &(x, y, r) in edges {
            b.link(x, y, r);
        }
        let g = b.build();
        let sccs = g.nontrivial_sccs();
        assert_eq!(sccs.len(), 1);
        let mut budget = 1_000_000;
        search_scc(&g, &sccs[0], &mut budget)
    }

    fn names(r: &SccResult) -> Vec<String> {
        r.cycles
            .iter()
            .map(|c| {
                let (d, v) = c.classify();
                format!("{}{}", d.name(), v.suffix())
            })
            .collect()
    }

    #[test]
    fn cycles_are_walked_in_edge_order_with_their_relationships() {
        let r = run(3, &[(0, 1, WR), (1, 2, WW), (2, 0, WR)]);
        assert_eq!(r.cycles.len(), 1);
        let c = &r.cycles[0];
        assert_eq!(c.ops.len(), 3);
        for i in 0..3 {
            let (a, b) = (c.ops[i], c.ops[(i + 1) % 3]);
            let want = match (a, b) {
                (0, 1) | (2, 0) => WR,
                (1, 2) => WW,
                _ => panic!("not an edge: {a}->{b}"),
            };
            assert_eq!(c.rels[i], want);
        }
    }

    #[test]
    fn a_shortcut_gives_the_shorter_cycle() {
        let r = run(
            4,
            &[(0, 1, WW), (1, 2, WW), (2, 3, WW), (3, 0, WW), (2, 0, WW)],
        );
        assert_eq!(names(&r), vec!["G0"]);
        assert_eq!(r.cycles[0].ops.len(), 3);
    }

    #[test]
    fn two_adjacent_anti_dependencies_are_g2_item_and_separated_ones_nonadjacent() {
        assert_eq!(names(&run(2, &[(0, 1, RW), (1, 0, RW)])), vec!["G2-item"]);
        let r = run(4, &[(0, 1, RW), (1, 2, WR), (2, 3, RW), (3, 0, WR)]);
        assert_eq!(names(&r), vec!["G-nonadjacent"]);
    }

    #[test]
    fn an_exhausted_budget_is_reported_not_hidden() {
        let mut b = Builder::new(2);
        b.link(0, 1, WW);
        b.link(1, 0, WW);
        let g = b.build();
        let mut budget = 0;
        let r = search_scc(&g, &[0, 1], &mut budget);
        assert!(r.cycles.is_empty());
        assert_eq!(r.timed_out, vec!["G0".to_string()]);
    }
}
