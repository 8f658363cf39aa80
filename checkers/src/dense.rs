//! The one table keyed by `(key, value)` that the analyses share.
//!
//! Values are usually small integers, numbered densely and unique across
//! keys, so a table indexed by the value answers most lookups without
//! hashing (and with far fewer cache misses than a hash map); each entry
//! also says which key owns it. A pair that does not fit there (its value
//! already taken by another key, a value outside the table's span, or a key
//! the entry cannot name) is hashed in a side map, the spill.
//!
//! The table is stored in chunks of [`CHUNK`] entries, allocated as values
//! land in them, over a span of values fixed at creation: from 0, or from
//! just below the first value stored. Within the span a chunk is always
//! allocated before an entry of it is first written, so an empty entry (or
//! a missing chunk) there means "no pair", without asking the spill.
//!
//! Users: the queue analysis's per-value records ([`crate::compact::Vals`],
//! 16-byte packed entries naming the key by a 16-bit slot), and the
//! transactional analysis's writer index and its linear-time acyclicity
//! proof (the first writer of each `(key, value)`).

use gregor_history::Val;

use crate::hash::FxHashMap;

/// What a table entry holds: a record that knows which key owns it.
pub(crate) trait Cell: Copy {
    /// An unused entry.
    const VACANT: Self;
    fn is_vacant(&self) -> bool;
    /// Whether this (non-vacant) entry is the pair of key `k`.
    fn is_for(&self, k: u64) -> bool;
    /// Whether an entry can name key `k` (else its pairs are spilled).
    fn fits(_k: u64) -> bool {
        true
    }
}

pub(crate) const CHUNK_BITS: u32 = 14;
/// Entries per chunk.
pub(crate) const CHUNK: usize = 1 << CHUNK_BITS;

/// `(key, value) -> C`; see the module docs.
pub(crate) struct DenseTable<C: Cell> {
    /// Chunk `i` holds values `(base + i) << CHUNK_BITS ..`.
    chunks: Vec<Option<Box<[C]>>>,
    /// First chunk of the span; `None` until the first store when the span
    /// starts below the first value.
    base: Option<u64>,
    /// Chunks in the span.
    span_chunks: u64,
    spill: FxHashMap<(u64, Val), C>,
    len: usize,
}

impl<C: Cell> DenseTable<C> {
    /// A table for values `0 .. span` (rounded up to whole chunks).
    pub(crate) fn from_zero(span: u64) -> DenseTable<C> {
        DenseTable {
            base: Some(0),
            ..DenseTable::below_first(span)
        }
    }

    /// A table whose span of `span` values starts one chunk below the
    /// first value stored.
    pub(crate) fn below_first(span: u64) -> DenseTable<C> {
        DenseTable {
            chunks: Vec::new(),
            base: None,
            span_chunks: span.div_ceil(CHUNK as u64),
            spill: FxHashMap::default(),
            len: 0,
        }
    }

    /// (chunk, index) of `v` in the table, if inside the span.
    #[inline]
    fn place(&self, v: Val) -> Option<(usize, usize)> {
        let c = (v >> CHUNK_BITS).checked_sub(self.base?)?;
        (c < self.span_chunks).then_some((c as usize, (v as usize) & (CHUNK - 1)))
    }

    /// The entry of `(k, v)`, if any.
    #[inline]
    pub(crate) fn get(&self, k: u64, v: Val) -> Option<&C> {
        if let Some((c, i)) = self.place(v).filter(|_| C::fits(k)) {
            let Some(Some(ch)) = self.chunks.get(c) else {
                return None;
            };
            let e = &ch[i];
            if e.is_vacant() {
                return None;
            }
            if e.is_for(k) {
                return Some(e);
            }
        }
        self.spill.get(&(k, v))
    }

    /// The table entry for `v` (allocating its chunk), if inside the span.
    #[inline]
    fn table_entry(&mut self, k: u64, v: Val) -> Option<&mut C> {
        if !C::fits(k) {
            return None;
        }
        if self.base.is_none() {
            self.base = Some((v >> CHUNK_BITS).saturating_sub(1));
        }
        let (c, i) = self.place(v)?;
        if c >= self.chunks.len() {
            self.chunks.resize_with(c + 1, || None);
        }
        let ch = self.chunks[c].get_or_insert_with(|| vec![C::VACANT; CHUNK].into_boxed_slice());
        Some(&mut ch[i])
    }

    /// Stores `cell` as the entry of `(k, v)`, replacing any.
    #[inline]
    pub(crate) fn store(&mut self, k: u64, v: Val, cell: C) {
        if let Some(e) = self.table_entry(k, v) {
            if e.is_vacant() || e.is_for(k) {
                let new = e.is_vacant();
                *e = cell;
                self.len += usize::from(new);
                return;
            }
        }
        if self.spill.insert((k, v), cell).is_none() {
            self.len += 1;
        }
    }

    /// The entry of `(k, v)`, made by `make` if there is none (the first
    /// one stored stays).
    #[inline]
    pub(crate) fn get_or_insert_with(&mut self, k: u64, v: Val, make: impl FnOnce() -> C) -> &C {
        let mut make = Some(make);
        let mut made = || make.take().map(|f| f()).unwrap_or(C::VACANT);
        // The table entry is looked up again to return it: the borrow
        // checker cannot see that the spill is untouched by the first.
        let in_table = match self.table_entry(k, v) {
            Some(e) if e.is_vacant() => {
                *e = made();
                self.len += 1;
                true
            }
            Some(e) => e.is_for(k),
            None => false,
        };
        if in_table {
            let (c, i) = self.place(v).expect("in the table");
            return &self.chunks[c].as_ref().expect("allocated")[i];
        }
        let len = &mut self.len;
        self.spill.entry((k, v)).or_insert_with(|| {
            *len += 1;
            made()
        })
    }

    /// Every pair and its entry: table first (by value), then the spill.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Option<u64>, Val, &C)> + '_ {
        let base = self.base.unwrap_or(0);
        self.chunks
            .iter()
            .enumerate()
            .filter_map(|(c, ch)| ch.as_ref().map(|ch| (c, ch)))
            .flat_map(move |(c, ch)| {
                ch.iter()
                    .enumerate()
                    .filter(|(_, e)| !e.is_vacant())
                    .map(move |(i, e)| (None, ((base + c as u64) << CHUNK_BITS) | i as u64, e))
            })
            .chain(self.spill.iter().map(|(&(k, v), e)| (Some(k), v, e)))
    }

    /// Pairs stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes (the spill estimated).
    pub(crate) fn bytes(&self) -> usize {
        let chunk = CHUNK * std::mem::size_of::<C>();
        self.chunks.iter().flatten().count() * chunk
            + self.chunks.capacity() * 8
            + self.spill.capacity() * (16 + std::mem::size_of::<C>() + 8)
    }
}

/// An entry naming its key in full: `(key, what)`, `what == u32::MAX`
/// meaning vacant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Keyed {
    pub(crate) key: u64,
    pub(crate) what: u32,
}

impl Cell for Keyed {
    const VACANT: Keyed = Keyed {
        key: 0,
        what: u32::MAX,
    };
    #[inline]
    fn is_vacant(&self) -> bool {
        self.what == u32::MAX
    }
    #[inline]
    fn is_for(&self, k: u64) -> bool {
        self.key == k
    }
}

/// `(key, value) -> u32`, the first one stored kept: who first wrote each
/// pair. (`u32::MAX` cannot be stored.)
pub(crate) struct FirstWriter(DenseTable<Keyed>);

impl FirstWriter {
    /// For values up to about `span`; others are hashed.
    pub(crate) fn new(span: u64) -> FirstWriter {
        FirstWriter(DenseTable::from_zero(span))
    }

    #[inline]
    pub(crate) fn get(&self, k: u64, v: Val) -> Option<u32> {
        self.0.get(k, v).map(|e| e.what)
    }

    /// The writer of `(k, v)`, `make` giving it if there is none yet.
    #[inline]
    pub(crate) fn get_or_insert_with(&mut self, k: u64, v: Val, make: impl FnOnce() -> u32) -> u32 {
        self.0
            .get_or_insert_with(k, v, || Keyed {
                key: k,
                what: make(),
            })
            .what
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_sharing_a_value_across_keys_are_all_found() {
        let mut t = FirstWriter::new(100);
        assert_eq!(t.get_or_insert_with(1, 7, || 10), 10);
        // Value 7 on another key: spilled, still found.
        assert_eq!(t.get_or_insert_with(2, 7, || 20), 20);
        // The first writer stays.
        assert_eq!(t.get_or_insert_with(1, 7, || 30), 10);
        // Far outside the span: hashed.
        assert_eq!(t.get_or_insert_with(1, 1 << 40, || 40), 40);
        assert_eq!(t.get(1, 7), Some(10));
        assert_eq!(t.get(2, 7), Some(20));
        assert_eq!(t.get(3, 7), None);
        assert_eq!(t.get(1, 8), None);
        assert_eq!(t.get(1, 1 << 40), Some(40));
        assert_eq!(t.0.len(), 3);
        let mut all: Vec<(u64, u32)> = t.0.iter().map(|(_, v, e)| (v, e.what)).collect();
        all.sort_unstable();
        assert_eq!(all, vec![(7, 10), (7, 20), (1 << 40, 40)]);
    }

    #[test]
    fn a_span_below_the_first_value_stores_later_values_in_place() {
        let mut t: DenseTable<Keyed> = DenseTable::below_first(4 * CHUNK as u64);
        let first = 5 * CHUNK as u64 + 3;
        t.store(1, first, Keyed { key: 1, what: 1 });
        t.store(1, first - CHUNK as u64, Keyed { key: 1, what: 2 });
        t.store(1, 1, Keyed { key: 1, what: 3 }); // below the span: hashed
        t.store(1, first, Keyed { key: 1, what: 4 }); // replaced
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(1, first).map(|e| e.what), Some(4));
        assert_eq!(t.get(1, first - CHUNK as u64).map(|e| e.what), Some(2));
        assert_eq!(t.get(1, 1).map(|e| e.what), Some(3));
        assert_eq!(t.spill.len(), 1);
    }
}
