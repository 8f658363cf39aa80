//! Who wrote each (key, value), and every key's version order: the index
//! the graph's edges and the explanations are read from.

use super::*;
use crate::dense::FirstWriter;

pub(super) const NO_SLOT: u32 = u32::MAX;
pub(super) const EMPTY: u64 = u64::MAX;
pub(super) const CONFLICT: u64 = u64::MAX - 1;

/// A written value: who wrote it and, once the log is known, where it sits
/// in its key's version order.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    pub(super) op: u32,
    pub(super) value: Val,
    /// First offset the value was seen at (`EMPTY` if never).
    pub(super) offset: Offset,
    /// Neighbouring written values in the version order.
    pub(super) prev: u32,
    pub(super) next: u32,
}

pub(super) struct Index {
    /// (key, value) -> slot of its (first) writer.
    pub(super) writer_of: FirstWriter,
    pub(super) slots: Vec<Slot>,
}

impl Index {
    pub(super) fn writer(&self, k: Key, v: Val) -> Option<&Slot> {
        self.writer_of.get(k, v).map(|s| &self.slots[s as usize])
    }

    pub(super) fn slot(&self, s: u32) -> Option<&Slot> {
        self.slots.get(s as usize)
    }

    /// Indexes writers and, with ww or rw inference, each key's version
    /// order (linking ww edges as it goes).
    pub(super) fn build(h: &History, ops: &[Op], o: &TxnOpts, b: &mut Builder) -> Index {
        let (mut max_value, mut writes) = (None, 0usize);
        for op in ops {
            for (_, v, _) in op.sends(h) {
                max_value = max_value.max(Some(v));
                writes += 1;
            }
        }
        // Values indexed in place when they are dense enough; the rest hashed.
        let span = match max_value {
            Some(m) if m < 4 * writes as u64 + 1024 => m + 1,
            _ => 0,
        };
        let mut writer_of = FirstWriter::new(span);
        let mut slots = Vec::new();
        for (id, op) in ops.iter().enumerate() {
            for (k, v, _) in op.sends(h) {
                writer_of.get_or_insert_with(k, v, || {
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
    pub(super) fn chain(&mut self, k: Key, log: &[(Offset, Val)], ww: bool, b: &mut Builder) {
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

    pub(super) fn link_data(&self, h: &History, ops: &[Op], o: &TxnOpts, b: &mut Builder) {
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
    pub(super) fn next_after_read(&self, k: Key, pairs: &[(Offset, Val)]) -> Option<&Slot> {
        let &(_, v) = pairs.iter().max_by_key(|(off, _)| *off)?;
        self.slot(self.writer(k, v)?.next)
    }
}

/// One key's log from every (offset, value) observation: sorted by offset,
/// one entry per offset, offsets claimed by two different values dropped.
/// Dense offsets (the usual case) are placed in an array in linear time.
pub(super) fn version_log(pairs: Vec<(Offset, Val)>) -> Vec<(Offset, Val)> {
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
