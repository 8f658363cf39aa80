//! Grudges: who must not hear from whom (Jepsen's term), and the usual
//! partition shapes built from them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// For each node, the set of nodes whose packets it must not receive.
///
/// A grudge is directional: `cut(a, b)` drops packets from `b` to `a` only.
/// The shapes below are all symmetric (both directions cut), which is what a
/// TCP connection notices as a partition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grudge(BTreeMap<usize, BTreeSet<usize>>);

impl Grudge {
    /// No grudge: everyone hears everyone.
    pub fn new() -> Self {
        Self::default()
    }

    /// `node` stops hearing from `from`.
    pub fn cut(&mut self, node: usize, from: usize) -> &mut Self {
        if node != from {
            self.0.entry(node).or_default().insert(from);
        }
        self
    }

    /// `a` and `b` stop hearing from each other.
    pub fn cut_both(&mut self, a: usize, b: usize) -> &mut Self {
        self.cut(a, b).cut(b, a)
    }

    /// A complete partition into `components`: every node hears only the
    /// nodes of its own component. Nodes not listed are untouched.
    pub fn complete(components: &[Vec<usize>]) -> Self {
        let mut g = Grudge::new();
        for (i, side) in components.iter().enumerate() {
            for (j, other) in components.iter().enumerate() {
                if i != j {
                    for &a in side {
                        for &b in other {
                            g.cut(a, b);
                        }
                    }
                }
            }
        }
        g
    }

    /// `node` alone against the other `n - 1` nodes.
    pub fn isolate(n: usize, node: usize) -> Self {
        let rest: Vec<usize> = (0..n).filter(|&i| i != node).collect();
        Self::complete(&[vec![node], rest])
    }

    /// Nodes `0..n/2` against `n/2..n` (with an odd `n`, the first half is
    /// the smaller one, as in Jepsen's `partition-halves`).
    pub fn halves(n: usize) -> Self {
        let (a, b) = (0..n).partition(|&i| i < n / 2);
        Self::complete(&[a, b])
    }

    /// The given `minority` against every other node.
    pub fn minority(n: usize, minority: &[usize]) -> Self {
        let majority: Vec<usize> = (0..n).filter(|i| !minority.contains(i)).collect();
        Self::complete(&[minority.to_vec(), majority])
    }

    /// A random split into a minority of `n/2` nodes and a majority, drawn
    /// from `seed` (the same seed always gives the same split).
    pub fn random_halves(n: usize, seed: u64) -> Self {
        let mut nodes: Vec<usize> = (0..n).collect();
        let mut state = seed;
        // Fisher–Yates with SplitMix64.
        for i in (1..nodes.len()).rev() {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let j = (z % (i as u64 + 1)) as usize;
            nodes.swap(i, j);
        }
        let minority = &nodes[..n / 2];
        Self::minority(n, minority)
    }

    /// Jepsen's bridge: the other nodes split into two halves that cannot
    /// hear each other, while `bridge` hears (and is heard by) both.
    pub fn bridge(n: usize, bridge: usize) -> Self {
        let others: Vec<usize> = (0..n).filter(|&i| i != bridge).collect();
        let (a, b) = others.split_at(others.len() / 2);
        Self::complete(&[a.to_vec(), b.to_vec()])
    }

    /// True when nobody holds a grudge.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeSet::is_empty)
    }

    /// The nodes `node` must not hear from.
    pub fn hated_by(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        self.0.get(&node).into_iter().flatten().copied()
    }

    /// Every `(receiver, sender)` pair whose packets are dropped.
    pub fn pairs(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.0
            .iter()
            .flat_map(|(&to, froms)| froms.iter().map(move |&from| (to, from)))
    }

    /// The largest node index mentioned, if any.
    pub fn max_node(&self) -> Option<usize> {
        self.pairs().map(|(a, b)| a.max(b)).max()
    }

    /// The groups of nodes that still hear each other, when the grudge is a
    /// complete partition; for display in nemesis events.
    pub fn components(&self, n: usize) -> Vec<Vec<usize>> {
        let mut seen = vec![false; n];
        let mut out = Vec::new();
        for start in 0..n {
            if seen[start] {
                continue;
            }
            let mut group = vec![start];
            seen[start] = true;
            for (other, seen_other) in seen.iter_mut().enumerate().skip(start + 1) {
                let split = self.0.get(&start).is_some_and(|s| s.contains(&other))
                    || self.0.get(&other).is_some_and(|s| s.contains(&start));
                if !*seen_other && !split {
                    *seen_other = true;
                    group.push(other);
                }
            }
            out.push(group);
        }
        out
    }
}

impl fmt::Display for Grudge {
    /// E.g. `0 ignores {1, 2}; 1 ignores {0}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no grudge");
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(n, s)| {
                let s: Vec<String> = s.iter().map(ToString::to_string).collect();
                format!("{n} ignores {{{}}}", s.join(", "))
            })
            .collect();
        f.write_str(&parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hears(g: &Grudge, node: usize, from: usize) -> bool {
        !g.hated_by(node).any(|x| x == from)
    }

    #[test]
    fn isolating_a_node_cuts_it_from_everyone_both_ways() {
        let g = Grudge::isolate(3, 0);
        assert!(!hears(&g, 0, 1) && !hears(&g, 1, 0));
        assert!(!hears(&g, 0, 2) && !hears(&g, 2, 0));
        assert!(hears(&g, 1, 2) && hears(&g, 2, 1));
        assert_eq!(g.components(3), vec![vec![0], vec![1, 2]]);
        assert_eq!(
            g.to_string(),
            "0 ignores {1, 2}; 1 ignores {0}; 2 ignores {0}"
        );
    }

    #[test]
    fn halves_put_the_smaller_half_first() {
        let g = Grudge::halves(5);
        assert_eq!(g.components(5), vec![vec![0, 1], vec![2, 3, 4]]);
    }

    #[test]
    fn random_halves_are_reproducible_and_leave_a_majority() {
        let a = Grudge::random_halves(5, 7);
        assert_eq!(a, Grudge::random_halves(5, 7));
        let sizes: Vec<usize> = a.components(5).iter().map(Vec::len).collect();
        let mut sorted = sizes.clone();
        sorted.sort();
        assert_eq!(sorted, vec![2, 3]);
        let distinct: BTreeSet<Vec<Vec<usize>>> = (0..20)
            .map(|s| Grudge::random_halves(5, s).components(5))
            .collect();
        assert!(distinct.len() > 1, "every seed gave the same split");
    }

    #[test]
    fn a_bridge_node_hears_both_sides_which_do_not_hear_each_other() {
        let g = Grudge::bridge(5, 2);
        for other in [0, 1, 3, 4] {
            assert!(hears(&g, 2, other) && hears(&g, other, 2));
        }
        assert!(!hears(&g, 0, 3) && !hears(&g, 4, 1));
        assert!(hears(&g, 0, 1) && hears(&g, 3, 4));
    }

    #[test]
    fn a_given_minority_is_cut_from_the_majority() {
        let g = Grudge::minority(5, &[1, 3]);
        assert_eq!(g.components(5), vec![vec![0, 2, 4], vec![1, 3]]);
        assert_eq!(g.max_node(), Some(4));
    }

    #[test]
    fn one_way_cuts_are_one_way_and_self_cuts_are_ignored() {
        let mut g = Grudge::new();
        g.cut(0, 1).cut(2, 2);
        assert!(!hears(&g, 0, 1));
        assert!(hears(&g, 1, 0));
        assert_eq!(g.pairs().collect::<Vec<_>>(), vec![(0, 1)]);
        assert!(Grudge::new().is_empty());
    }
}
