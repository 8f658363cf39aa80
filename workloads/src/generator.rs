//! The operation generator: pure and seeded.
//!
//! Given a seed, the same sequence of [`Generator::next_op`] and
//! [`Generator::completed`] calls yields the same operations. It never talks
//! to a cluster. It chooses among sends, polls, transactions and
//! (occasionally) reassignments; values are unique across the whole run, so
//! unique per key; keys are rotated after a cap on writes so per-key
//! histories stay short enough to check; and it leans toward keys that have
//! values sent but not yet read, so that reads find what writes did.

use std::collections::{BTreeMap, BTreeSet};

use gregor_history::{Key, Offset, Val};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One micro-operation the generator asks for inside a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GenMop {
    Send { key: Key, value: Val },
    Poll,
}

/// An operation for a worker to perform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Produce each (key, value).
    Send(Vec<(Key, Val)>),
    /// Read whatever is available from the held keys.
    Poll,
    /// A transaction mixing sends and polls; `abort` asks to abort it at the end.
    Txn { mops: Vec<GenMop>, abort: bool },
    /// Take these keys by assignment.
    Assign(Vec<Key>),
    /// Subscribe to these keys' topics.
    Subscribe(Vec<Key>),
}

impl Op {
    /// Whether the op reads (a poll, or a transaction with a poll in it):
    /// what a stalled consumer does not do.
    pub fn reads(&self) -> bool {
        match self {
            Op::Poll => true,
            Op::Txn { mops, .. } => mops.iter().any(|m| matches!(m, GenMop::Poll)),
            _ => false,
        }
    }
}

/// How operations are mixed.
#[derive(Clone, Debug, PartialEq)]
pub struct GenConfig {
    pub seed: u64,
    /// Number of keys in play at once.
    pub keys: u64,
    /// Writes per key before it is retired and replaced by a fresh key
    /// (`None`: never).
    pub max_writes_per_key: Option<u64>,
    /// Relative weights of send, poll and txn operations.
    pub send_weight: u32,
    pub poll_weight: u32,
    pub txn_weight: u32,
    /// Most sends in one send op; most micro-ops in one txn.
    pub max_mops: usize,
    /// Probability that a txn is aborted.
    pub abort_probability: f64,
    /// Probability that an op is a reassignment (assign or subscribe).
    pub reassign_probability: f64,
    /// Use subscribe rather than assign for reassignments.
    pub subscribe: bool,
    /// Probability of picking a key with sent-but-unread values.
    pub unread_bias: f64,
    /// First value to hand out (a restarted client process continues above
    /// the values an earlier one used, so values stay unique).
    pub first_value: Val,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 0,
            keys: 8,
            max_writes_per_key: Some(10_000),
            send_weight: 1,
            poll_weight: 1,
            txn_weight: 0,
            max_mops: 3,
            abort_probability: 0.1,
            reassign_probability: 0.01,
            subscribe: false,
            unread_bias: 0.5,
            first_value: 0,
        }
    }
}

/// The seeded generator. Wrap it in a mutex to share it between workers.
pub struct Generator {
    cfg: GenConfig,
    rng: ChaCha8Rng,
    /// Keys currently in play.
    active: Vec<Key>,
    next_key: Key,
    next_value: Val,
    writes: BTreeMap<Key, u64>,
    /// Highest offset known acknowledged per key, and highest offset read.
    acked_high: BTreeMap<Key, Offset>,
    read_high: BTreeMap<Key, Offset>,
}

impl Generator {
    pub fn new(cfg: GenConfig) -> Generator {
        let keys = cfg.keys.max(1);
        Generator {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            active: (0..keys).collect(),
            next_key: keys,
            next_value: cfg.first_value,
            writes: BTreeMap::new(),
            acked_high: BTreeMap::new(),
            read_high: BTreeMap::new(),
            cfg,
        }
    }

    pub fn config(&self) -> &GenConfig {
        &self.cfg
    }

    /// Keys currently in play, in ascending order.
    pub fn active_keys(&self) -> &[Key] {
        &self.active
    }

    /// Every key handed out so far (active or retired).
    pub fn all_keys(&self) -> std::ops::Range<Key> {
        0..self.next_key
    }

    /// The initial assignment of a worker: all active keys.
    pub fn initial_keys(&self) -> Vec<Key> {
        self.active.clone()
    }

    fn unread_keys(&self) -> Vec<Key> {
        self.active
            .iter()
            .copied()
            .filter(|k| match (self.acked_high.get(k), self.read_high.get(k)) {
                (Some(a), Some(r)) => a > r,
                (Some(_), None) => true,
                _ => false,
            })
            .collect()
    }

    fn pick_key(&mut self) -> Key {
        if self.rng.random_bool(self.cfg.unread_bias.clamp(0.0, 1.0)) {
            let unread = self.unread_keys();
            if !unread.is_empty() {
                return unread[self.rng.random_range(0..unread.len())];
            }
        }
        self.active[self.rng.random_range(0..self.active.len())]
    }

    fn fresh_value(&mut self, key: Key) -> Val {
        let v = self.next_value;
        self.next_value += 1;
        let w = self.writes.entry(key).or_insert(0);
        *w += 1;
        if let Some(cap) = self.cfg.max_writes_per_key {
            if *w >= cap {
                if let Some(pos) = self.active.iter().position(|k| *k == key) {
                    self.active[pos] = self.next_key;
                    self.next_key += 1;
                    self.active.sort_unstable();
                }
            }
        }
        v
    }

    fn sends(&mut self, n: usize) -> Vec<(Key, Val)> {
        (0..n)
            .map(|_| {
                let k = self.pick_key();
                (k, self.fresh_value(k))
            })
            .collect()
    }

    fn random_keys(&mut self) -> Vec<Key> {
        let mut ks = BTreeSet::new();
        let n = self.rng.random_range(1..=self.active.len());
        while ks.len() < n {
            ks.insert(self.active[self.rng.random_range(0..self.active.len())]);
        }
        ks.into_iter().collect()
    }

    /// The next operation to perform.
    pub fn next_op(&mut self) -> Op {
        if self
            .rng
            .random_bool(self.cfg.reassign_probability.clamp(0.0, 1.0))
        {
            let keys = self.random_keys();
            return if self.cfg.subscribe {
                Op::Subscribe(keys)
            } else {
                Op::Assign(keys)
            };
        }
        let total = self.cfg.send_weight + self.cfg.poll_weight + self.cfg.txn_weight;
        let roll = self.rng.random_range(0..total.max(1));
        let max = self.cfg.max_mops.max(1);
        if roll < self.cfg.send_weight {
            let n = self.rng.random_range(1..=max);
            Op::Send(self.sends(n))
        } else if roll < self.cfg.send_weight + self.cfg.poll_weight {
            Op::Poll
        } else {
            let n = self.rng.random_range(1..=max);
            let mops = (0..n)
                .map(|_| {
                    if self.rng.random_bool(0.5) {
                        let (key, value) = self.sends(1)[0];
                        GenMop::Send { key, value }
                    } else {
                        GenMop::Poll
                    }
                })
                .collect();
            let abort = self
                .rng
                .random_bool(self.cfg.abort_probability.clamp(0.0, 1.0));
            Op::Txn { mops, abort }
        }
    }

    /// Tells the generator what an acknowledged send or a poll learned, so
    /// it can lean toward keys with unread values.
    pub fn completed(&mut self, acked: &[(Key, Offset)], read: &[(Key, Offset)]) {
        for &(k, o) in acked {
            let e = self.acked_high.entry(k).or_insert(o);
            *e = (*e).max(o);
        }
        for &(k, o) in read {
            let e = self.read_high.entry(k).or_insert(o);
            *e = (*e).max(o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cfg: GenConfig, n: usize) -> Vec<Op> {
        let mut g = Generator::new(cfg);
        (0..n)
            .map(|i| {
                let op = g.next_op();
                if let Op::Send(s) = &op {
                    let acked: Vec<_> = s.iter().map(|(k, _)| (*k, i as u64)).collect();
                    g.completed(&acked, &[]);
                }
                op
            })
            .collect()
    }

    #[test]
    fn the_same_seed_and_completions_give_the_same_ops() {
        let cfg = GenConfig {
            seed: 42,
            txn_weight: 1,
            ..Default::default()
        };
        assert_eq!(run(cfg.clone(), 500), run(cfg.clone(), 500));
        let other = GenConfig {
            seed: 43,
            ..cfg.clone()
        };
        assert_ne!(run(cfg, 500), run(other, 500));
    }

    #[test]
    fn values_are_never_reused() {
        let ops = run(
            GenConfig {
                seed: 1,
                txn_weight: 2,
                ..Default::default()
            },
            2000,
        );
        let mut seen = BTreeSet::new();
        for op in ops {
            let vals: Vec<Val> = match op {
                Op::Send(s) => s.into_iter().map(|(_, v)| v).collect(),
                Op::Txn { mops, .. } => mops
                    .into_iter()
                    .filter_map(|m| match m {
                        GenMop::Send { value, .. } => Some(value),
                        GenMop::Poll => None,
                    })
                    .collect(),
                _ => vec![],
            };
            for v in vals {
                assert!(seen.insert(v), "value {v} generated twice");
            }
        }
    }

    #[test]
    fn keys_are_retired_after_their_write_cap() {
        let cfg = GenConfig {
            seed: 3,
            keys: 2,
            max_writes_per_key: Some(5),
            poll_weight: 0,
            ..Default::default()
        };
        let mut per_key: BTreeMap<Key, u64> = BTreeMap::new();
        for op in run(cfg, 200) {
            if let Op::Send(s) = op {
                for (k, _) in s {
                    *per_key.entry(k).or_default() += 1;
                }
            }
        }
        assert!(per_key.len() > 10, "keys rotated: {per_key:?}");
        assert!(
            per_key.values().all(|&n| n <= 5),
            "a key exceeded the cap: {per_key:?}"
        );
    }

    #[test]
    fn reassignments_use_subscribe_only_when_asked() {
        let cfg = GenConfig {
            seed: 9,
            reassign_probability: 0.2,
            ..Default::default()
        };
        let ops = run(cfg.clone(), 300);
        assert!(ops.iter().any(|o| matches!(o, Op::Assign(_))));
        assert!(!ops.iter().any(|o| matches!(o, Op::Subscribe(_))));
        let ops = run(
            GenConfig {
                subscribe: true,
                ..cfg
            },
            300,
        );
        assert!(ops.iter().any(|o| matches!(o, Op::Subscribe(_))));
    }
}
