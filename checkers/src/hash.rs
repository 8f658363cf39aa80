//! A small, fast, deterministic hasher for integer keys (FxHash style).
//!
//! The analysis does tens of millions of lookups keyed by `(key, value)`
//! integers; SipHash would dominate the run time, and a fixed hasher also
//! makes map iteration order (and so the choice of capped examples)
//! reproducible from run to run.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// FxHash-style hasher: rotate, xor, multiply per word.
#[derive(Clone, Copy, Default)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(buf));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // Fold the high bits down: hashbrown picks buckets from the low bits.
        self.hash ^ (self.hash >> 29)
    }
}

pub type FxBuild = BuildHasherDefault<FxHasher>;
pub type FxHashMap<K, V> = HashMap<K, V, FxBuild>;
pub type FxHashSet<K> = HashSet<K, FxBuild>;

/// A `(key, value)` pair whose hash keeps nearby values of one key in nearby
/// buckets: runs of 64 consecutive values share a randomly placed, aligned
/// run of buckets. Consumers read a key's values mostly in increasing
/// order, so lookups walk memory instead of jumping across a table that is
/// far larger than the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyVal(pub u64, pub u64);

impl std::hash::Hash for KeyVal {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        let block = (self.0.rotate_left(5).wrapping_mul(SEED) ^ (self.1 >> 6)).wrapping_mul(SEED);
        let block = block ^ (block >> 32);
        // Within a run, the value's low bits xor the run's: consecutive
        // values stay in the run, and values with a common stride (all
        // multiples of 64, say) still spread over all positions.
        state.write_u64((block & !63) | ((self.1 ^ block) & 63));
    }
}

/// Passes a precomputed `u64` hash through.
#[derive(Clone, Copy, Default)]
pub struct PassHasher(u64);

impl Hasher for PassHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(SEED);
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type KeyValMap<V> = HashMap<KeyVal, V, BuildHasherDefault<PassHasher>>;

/// `(key, value) -> V`. Values below `limit` (usually small integers,
/// unique across keys) index a table directly, which answers most lookups
/// with one memory access and no hashing; a pair whose value is too large,
/// or whose table entry another key took first, is hashed instead.
pub struct ValTable<V> {
    /// Entry `v`: (key, data), key [`VACANT`] while unused.
    dense: Vec<(u64, V)>,
    limit: usize,
    spill: KeyValMap<V>,
}

/// Marks an unused table entry; pairs with this key are always hashed.
const VACANT: u64 = u64::MAX;

impl<V: Default> ValTable<V> {
    /// A table indexing values below `limit` directly (it grows on demand,
    /// to the largest such value seen).
    pub fn new(limit: usize) -> ValTable<V> {
        ValTable {
            dense: Vec::new(),
            limit,
            spill: KeyValMap::default(),
        }
    }

    /// The data of `(k, v)`, inserted as default if absent.
    #[inline]
    pub fn entry(&mut self, k: u64, v: u64) -> &mut V {
        let i = v as usize;
        if k != VACANT && v < self.limit as u64 {
            if i >= self.dense.len() {
                let len = (i + 1).max(2 * self.dense.len()).min(self.limit);
                self.dense.resize_with(len, || (VACANT, V::default()));
            }
            let held = self.dense[i].0;
            if held == k || held == VACANT {
                let e = &mut self.dense[i];
                e.0 = k;
                return &mut e.1;
            }
        }
        self.spill.entry(KeyVal(k, v)).or_default()
    }

    /// The data of `(k, v)`, if present.
    #[inline]
    pub fn get(&self, k: u64, v: u64) -> Option<&V> {
        if k != VACANT {
            match self.dense.get(v as usize) {
                Some((held, x)) if *held == k => return Some(x),
                // Below `limit` a pair is hashed only when another key took
                // its entry first.
                Some((VACANT, _)) => return None,
                _ => {}
            }
        }
        self.spill.get(&KeyVal(k, v))
    }

    /// Every pair and its data, table first, then hashed pairs.
    pub fn iter(&self) -> impl Iterator<Item = (KeyVal, &V)> + '_ {
        self.dense
            .iter()
            .enumerate()
            .filter(|(_, (k, _))| *k != VACANT)
            .map(|(v, (k, x))| (KeyVal(*k, v as u64), x))
            .chain(self.spill.iter().map(|(kv, x)| (*kv, x)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_table_keeps_pairs_apart_whatever_their_keys_and_values() {
        let mut t: ValTable<u32> = ValTable::new(100);
        *t.entry(1, 5) += 1;
        *t.entry(2, 5) += 10; // entry 5 taken by key 1: hashed
        *t.entry(1, 5) += 1;
        *t.entry(3, 1000) += 7; // beyond the limit: hashed
        *t.entry(VACANT, 3) += 4; // the marker key: hashed
        assert_eq!(t.get(1, 5), Some(&2));
        assert_eq!(t.get(2, 5), Some(&10));
        assert_eq!(t.get(3, 1000), Some(&7));
        assert_eq!(t.get(VACANT, 3), Some(&4));
        assert_eq!(t.get(1, 6), None);
        assert_eq!(t.get(1, 50), None);
        assert_eq!(t.get(2, 1000), None);
        let mut all: Vec<(u64, u64, u32)> = t.iter().map(|(KeyVal(k, v), x)| (k, v, *x)).collect();
        all.sort_unstable();
        assert_eq!(
            all,
            vec![(1, 5, 2), (2, 5, 10), (3, 1000, 7), (VACANT, 3, 4)]
        );
    }
    use std::hash::BuildHasher;

    fn h(k: u64, v: u64) -> u64 {
        BuildHasherDefault::<PassHasher>::default().hash_one(KeyVal(k, v))
    }

    #[test]
    fn consecutive_values_of_a_key_share_a_run_of_buckets() {
        for v in 128..192 {
            assert_eq!(h(3, v) >> 6, h(3, 128) >> 6);
        }
        assert_ne!(h(3, 128) >> 6, h(3, 192) >> 6);
        assert_ne!(h(3, 128) >> 6, h(4, 128) >> 6);
    }

    #[test]
    fn strided_values_still_use_every_position_in_a_run() {
        let positions: std::collections::HashSet<u64> =
            (0..4096).map(|i| h(1, i * 64) & 63).collect();
        assert!(positions.len() > 60, "{}", positions.len());
    }
}
