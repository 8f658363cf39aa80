//! The dependency graph: operations as vertices, relationship bitmasks on
//! edges, stored as compressed adjacency (CSR), with an iterative Tarjan.

/// Write-write: the source wrote the version before the target's.
pub const WW: u8 = 1;
/// Write-read: the target read a value the source wrote.
pub const WR: u8 = 2;
/// Read-write (anti-dependency): the source read the version the target
/// overwrote next.
pub const RW: u8 = 4;
/// Process order: same process, the source completed before the target.
pub const PROCESS: u8 = 8;
/// Realtime order: the source completed before the target was invoked.
pub const REALTIME: u8 = 16;

/// Human name of a single relationship bit.
pub fn rel_name(bit: u8) -> &'static str {
    match bit {
        WW => "ww",
        WR => "wr",
        RW => "rw",
        PROCESS => "process",
        REALTIME => "realtime",
        _ => "?",
    }
}

/// Collects edges, then freezes into a [`Graph`].
#[derive(Default)]
pub struct Builder {
    n: usize,
    edges: Vec<(u32, u32, u8)>,
}

impl Builder {
    pub fn new(n: usize) -> Builder {
        Builder {
            n,
            edges: Vec::new(),
        }
    }

    /// Adds `a -> b` with relationship `rel`; self-edges are dropped.
    pub fn link(&mut self, a: u32, b: u32, rel: u8) {
        if a != b {
            self.edges.push((a, b, rel));
        }
    }

    /// Per vertex: whether some edge so far starts or ends there.
    pub fn touched(&self) -> Vec<bool> {
        let mut t = vec![false; self.n];
        for &(a, b, _) in &self.edges {
            t[a as usize] = true;
            t[b as usize] = true;
        }
        t
    }

    /// Whether the edges so far, plus `extra` edges over `extra_nodes` more
    /// vertices (numbered from the builder's vertex count), contain a cycle.
    ///
    /// A cheap yes/no test (no relationships, no components kept) used to
    /// skip building the full graph when a history has no cycle at all.
    pub fn has_cycle_with(&self, extra_nodes: usize, extra: &[(u32, u32)]) -> bool {
        let n = self.n + extra_nodes;
        let mut start = vec![0u32; n + 1];
        for &(a, _, _) in &self.edges {
            start[a as usize + 1] += 1;
        }
        for &(a, _) in extra {
            start[a as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut targets = vec![0u32; self.edges.len() + extra.len()];
        let pairs = self.edges.iter().map(|&(a, b, _)| (a, b));
        for (a, b) in pairs.chain(extra.iter().copied()) {
            let slot = &mut fill[a as usize];
            targets[*slot as usize] = b;
            *slot += 1;
        }
        drop(fill);
        has_cycle(&start, &targets)
    }

    /// Counting-sort the edges by source into CSR form (linear time).
    /// Parallel edges between one pair stay separate; that only costs a
    /// little redundant work in searches.
    pub fn build(self) -> Graph {
        let mut start = vec![0u32; self.n + 1];
        for &(a, _, _) in &self.edges {
            start[a as usize + 1] += 1;
        }
        for i in 0..self.n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut targets = vec![0u32; self.edges.len()];
        let mut rels = vec![0u8; self.edges.len()];
        for &(a, b, r) in &self.edges {
            let slot = fill[a as usize] as usize;
            targets[slot] = b;
            rels[slot] = r;
            fill[a as usize] += 1;
        }
        Graph {
            start,
            targets,
            rels,
        }
    }
}

/// Whether a CSR graph has a directed cycle: an iterative depth-first
/// search with three colours (a back edge to a vertex still on the path
/// closes a cycle).
fn has_cycle(start: &[u32], targets: &[u32]) -> bool {
    const WHITE: u8 = 0;
    const GREY: u8 = 1;
    const BLACK: u8 = 2;
    let n = start.len() - 1;
    let mut colour = vec![WHITE; n];
    // (vertex, next edge position)
    let mut call: Vec<(u32, u32)> = Vec::new();
    for root in 0..n {
        if colour[root] != WHITE || start[root] == start[root + 1] {
            continue;
        }
        colour[root] = GREY;
        call.push((root as u32, start[root]));
        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            if *pos < start[v as usize + 1] {
                let w = targets[*pos as usize] as usize;
                *pos += 1;
                match colour[w] {
                    WHITE => {
                        colour[w] = GREY;
                        call.push((w as u32, start[w]));
                    }
                    GREY => return true,
                    _ => {}
                }
            } else {
                colour[v as usize] = BLACK;
                call.pop();
            }
        }
    }
    false
}

/// An immutable directed graph in CSR form.
pub struct Graph {
    start: Vec<u32>,
    targets: Vec<u32>,
    rels: Vec<u8>,
}

impl Graph {
    pub fn len(&self) -> usize {
        self.start.len() - 1
    }

    /// Outgoing `(target, rels)` of `v`.
    pub fn out(&self, v: u32) -> impl Iterator<Item = (u32, u8)> + '_ {
        let (s, e) = (
            self.start[v as usize] as usize,
            self.start[v as usize + 1] as usize,
        );
        self.targets[s..e]
            .iter()
            .copied()
            .zip(self.rels[s..e].iter().copied())
    }

    /// Strongly connected components with more than one vertex (a vertex
    /// never links to itself), by Tarjan's algorithm with an explicit stack
    /// so that million-operation histories cannot overflow the call stack.
    pub fn nontrivial_sccs(&self) -> Vec<Vec<u32>> {
        const UNSEEN: u32 = u32::MAX;
        let n = self.len();
        let mut index = vec![UNSEEN; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack: Vec<u32> = Vec::new();
        // (vertex, next edge position)
        let mut call: Vec<(u32, u32)> = Vec::new();
        let mut next_index = 0u32;
        let mut out = Vec::new();
        for root in 0..n as u32 {
            if index[root as usize] != UNSEEN {
                continue;
            }
            call.push((root, self.start[root as usize]));
            index[root as usize] = next_index;
            low[root as usize] = next_index;
            next_index += 1;
            stack.push(root);
            on_stack[root as usize] = true;
            while let Some(&mut (v, ref mut pos)) = call.last_mut() {
                let end = self.start[v as usize + 1];
                if *pos < end {
                    let w = self.targets[*pos as usize];
                    *pos += 1;
                    if index[w as usize] == UNSEEN {
                        index[w as usize] = next_index;
                        low[w as usize] = next_index;
                        next_index += 1;
                        stack.push(w);
                        on_stack[w as usize] = true;
                        call.push((w, self.start[w as usize]));
                    } else if on_stack[w as usize] {
                        low[v as usize] = low[v as usize].min(index[w as usize]);
                    }
                    continue;
                }
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    low[parent as usize] = low[parent as usize].min(low[v as usize]);
                }
                if low[v as usize] == index[v as usize] {
                    let mut comp = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w as usize] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if comp.len() > 1 {
                        comp.sort_unstable();
                        out.push(comp);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(n: usize, edges: &[(u32, u32)]) -> Graph {
        let mut b = Builder::new(n);
        for &(x, y) in edges {
            b.link(x, y, WW);
        }
        b.build()
    }

    #[test]
    fn tarjan_finds_each_cycle_and_ignores_acyclic_parts() {
        let g = graph(
            7,
            &[
                (0, 1),
                (1, 2),
                (2, 0),
                (2, 3),
                (3, 4),
                (4, 5),
                (5, 4),
                (6, 0),
            ],
        );
        let mut sccs = g.nontrivial_sccs();
        sccs.sort();
        assert_eq!(sccs, vec![vec![0, 1, 2], vec![4, 5]]);
    }

    #[test]
    fn cycle_test_sees_cycles_through_extra_vertices_only_when_they_close() {
        let mut b = Builder::new(3);
        b.link(0, 1, WR);
        // 1 -> 3 -> 0 closes a cycle through the extra vertex 3.
        assert!(b.has_cycle_with(1, &[(1, 3), (3, 0)]));
        // 1 -> 3 -> 2 does not.
        assert!(!b.has_cycle_with(1, &[(1, 3), (3, 2)]));
        assert!(!b.has_cycle_with(0, &[]));
        b.link(1, 0, WW);
        assert!(b.has_cycle_with(0, &[]));
    }

    #[test]
    fn tarjan_survives_a_path_of_a_million_vertices() {
        let n = 1_000_000u32;
        let mut b = Builder::new(n as usize);
        for i in 0..n - 1 {
            b.link(i, i + 1, WR);
        }
        b.link(n - 1, 0, WR);
        let sccs = b.build().nontrivial_sccs();
        assert_eq!(sccs.len(), 1);
        assert_eq!(sccs[0].len(), n as usize);
    }
}
