//! Compact state for the queue analysis, so that a soak-sized history fits
//! in memory that grows with its values, not its events (see
//! [`crate::stream`]):
//!
//! - [`Vals`]: per `(key, value)` a 20-byte record, in chunks indexed by the
//!   value (values are usually numbered densely), with the rare extras
//!   (a second offset, an offset beyond `u32`, a first `ok` reader other
//!   than the first reader) in side maps;
//! - [`Order`]: per key, its version order as one `u32` per offset (the
//!   value there), with offsets holding several values, values beyond
//!   `u32` and offsets far from the others in side maps;
//! - [`Staircase`]: per key, the realtime-lag steps "some offset ≥ m known
//!   since t", delta- and varint-encoded (a few bytes per step), read by
//!   forward-only cursors;
//! - [`Latencies`]: durations in sorted, delta- and varint-encoded runs,
//!   merged once for exact nearest-rank quantiles.

use std::collections::{BTreeMap, BinaryHeap};

use gregor_history::{Offset, Val};

use crate::dense::{Cell, DenseTable};
use crate::hash::FxHashMap;

// ------------------------------------------------------------------ Vals

/// How a value's send ended, as the queue analysis sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WStatus {
    Unknown,
    Ok,
    Info,
    /// Sent by an `info` op that an `ok` read proved happened.
    InfoProven,
    Fail,
}

impl WStatus {
    /// Whether the send certainly happened: acknowledged, or proven.
    pub(crate) fn happened(self) -> bool {
        matches!(self, WStatus::Ok | WStatus::InfoProven)
    }
    fn code(self) -> u8 {
        match self {
            WStatus::Unknown => 0,
            WStatus::Ok => 1,
            WStatus::Info => 2,
            WStatus::InfoProven => 3,
            WStatus::Fail => 4,
        }
    }
    fn from_code(c: u8) -> WStatus {
        match c & 7 {
            1 => WStatus::Ok,
            2 => WStatus::Info,
            3 => WStatus::InfoProven,
            4 => WStatus::Fail,
            _ => WStatus::Unknown,
        }
    }
}

pub(crate) const NONE: u32 = u32::MAX;
pub(crate) const NO_OFF: Offset = u64::MAX;

/// Everything known about one `(key, value)`, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ValInfo {
    /// Position of the completion of the op that sent it.
    pub writer: u32,
    pub status: WStatus,
    /// Lowest and highest offsets it was observed at (`NO_OFF` if never).
    pub first_off: Offset,
    pub last_off: Offset,
    /// First completion of any type whose reads include it.
    pub reader: u32,
    /// First `ok` completion whose reads include it.
    pub ok_reader: u32,
}

impl Default for ValInfo {
    fn default() -> Self {
        ValInfo {
            writer: NONE,
            status: WStatus::Unknown,
            first_off: NO_OFF,
            last_off: NO_OFF,
            reader: NONE,
            ok_reader: NONE,
        }
    }
}

/// `last_off` differs from `first_off`: it is in [`Vals::last`].
const MULTI: u8 = 1 << 3;
/// `ok_reader` is `reader`.
const OKR_SAME: u8 = 1 << 4;
/// `ok_reader` is in [`Vals::ok_reader`] (neither `NONE` nor `reader`).
const OKR_MAP: u8 = 1 << 5;
/// `first_off` does not fit the `u32`: it is in [`Vals::wide`].
const WIDE: u8 = 1 << 6;
/// `first` of a value never observed at an offset.
const NO_OFF32: u32 = u32::MAX;

/// One `(key, value)`, packed: 15 bytes, 16 with alignment.
#[derive(Clone, Copy)]
struct Packed {
    writer: u32,
    reader: u32,
    first: u32,
    /// Key slot; [`VACANT`] while the entry is unused (slots from
    /// `VACANT` on are always spilled).
    slot: u16,
    flags: u8,
}

const VACANT: u16 = u16::MAX;
const EMPTY: Packed = Packed {
    writer: NONE,
    reader: NONE,
    first: NO_OFF32,
    slot: VACANT,
    flags: 0,
};

impl Cell for Packed {
    const VACANT: Packed = EMPTY;
    #[inline]
    fn is_vacant(&self) -> bool {
        self.slot == VACANT
    }
    #[inline]
    fn is_for(&self, k: u64) -> bool {
        u64::from(self.slot) == k
    }
    #[inline]
    fn fits(k: u64) -> bool {
        k < u64::from(VACANT)
    }
}

/// Values the table spans from the first one (beyond: hashed).
const SPAN: u64 = 1 << 34;

/// `(key slot, value) -> ValInfo`; see the module docs. The packed records
/// live in the checkers' one `(key, value)` table ([`DenseTable`]).
pub(crate) struct Vals {
    table: DenseTable<Packed>,
    last: FxHashMap<(u32, Val), Offset>,
    ok_reader: FxHashMap<(u32, Val), u32>,
    wide: FxHashMap<(u32, Val), Offset>,
}

impl Default for Vals {
    fn default() -> Self {
        Vals {
            table: DenseTable::below_first(SPAN),
            last: FxHashMap::default(),
            ok_reader: FxHashMap::default(),
            wide: FxHashMap::default(),
        }
    }
}

impl Vals {
    #[inline]
    fn packed(&self, slot: u32, v: Val) -> Option<&Packed> {
        self.table.get(u64::from(slot), v)
    }

    /// The record of `(slot, v)`, if any.
    #[inline]
    pub fn get(&self, slot: u32, v: Val) -> Option<ValInfo> {
        self.packed(slot, v).map(|p| self.decode(slot, v, p))
    }

    /// The record of `(slot, v)`, default if absent.
    #[inline]
    pub fn load(&self, slot: u32, v: Val) -> ValInfo {
        self.get(slot, v).unwrap_or_default()
    }

    fn decode(&self, slot: u32, v: Val, p: &Packed) -> ValInfo {
        let first_off = if p.flags & WIDE != 0 {
            self.wide.get(&(slot, v)).copied().unwrap_or(NO_OFF)
        } else if p.first == NO_OFF32 {
            NO_OFF
        } else {
            u64::from(p.first)
        };
        let last_off = if p.flags & MULTI != 0 {
            self.last.get(&(slot, v)).copied().unwrap_or(first_off)
        } else {
            first_off
        };
        let ok_reader = if p.flags & OKR_SAME != 0 {
            p.reader
        } else if p.flags & OKR_MAP != 0 {
            self.ok_reader.get(&(slot, v)).copied().unwrap_or(NONE)
        } else {
            NONE
        };
        ValInfo {
            writer: p.writer,
            status: WStatus::from_code(p.flags),
            first_off,
            last_off,
            reader: p.reader,
            ok_reader,
        }
    }

    /// Stores the record of `(slot, v)`.
    #[inline]
    pub fn store(&mut self, slot: u32, v: Val, vi: &ValInfo) {
        let narrow = slot < u32::from(VACANT);
        let mut flags = vi.status.code();
        let first = if vi.first_off == NO_OFF {
            NO_OFF32
        } else if vi.first_off < u64::from(NO_OFF32) {
            vi.first_off as u32
        } else {
            flags |= WIDE;
            self.wide.insert((slot, v), vi.first_off);
            NO_OFF32
        };
        if vi.last_off != vi.first_off {
            flags |= MULTI;
            self.last.insert((slot, v), vi.last_off);
        }
        if vi.ok_reader != NONE {
            if vi.ok_reader == vi.reader {
                flags |= OKR_SAME;
            } else {
                flags |= OKR_MAP;
                self.ok_reader.insert((slot, v), vi.ok_reader);
            }
        }
        let p = Packed {
            slot: if narrow { slot as u16 } else { VACANT },
            writer: vi.writer,
            reader: vi.reader,
            first,
            flags,
        };
        // The side maps are written above and never need removal: a
        // record only gains a second offset, a wide offset is never
        // replaced by a narrow one as the lowest (lower offsets are
        // narrower), and the first ok reader never changes.
        self.table.store(u64::from(slot), v, p);
    }

    /// Every pair and its record: table first, then spilled pairs.
    pub fn iter(&self) -> impl Iterator<Item = (u32, Val, ValInfo)> + '_ {
        self.table.iter().map(|(k, v, p)| {
            let s = k.map_or(u32::from(p.slot), |k| k as u32);
            (s, v, self.decode(s, v, p))
        })
    }

    /// Pairs recorded.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Heap bytes of the table (side maps estimated).
    pub fn bytes(&self) -> usize {
        self.table.bytes() + (self.last.len() + self.ok_reader.len() + self.wide.len()) * 32
    }
}

// ----------------------------------------------------------------- Order

/// No record at this offset.
const O_EMPTY: u32 = u32::MAX;
/// Several values, or one that does not fit: see [`Order::many`].
const O_MANY: u32 = u32::MAX - 1;
/// The dense range may hold this many slots beyond four per record.
const SLACK: u64 = 4096;

/// One key's version order: which values were observed at which offsets.
#[derive(Default)]
pub(crate) struct Order {
    /// Offset of `dense[0]`.
    base: u64,
    /// Value code per offset from `base`.
    dense: Vec<u32>,
    /// Offsets outside the dense range -> value code.
    far: BTreeMap<Offset, u32>,
    /// Offsets whose code is [`O_MANY`] -> every value there, ascending.
    many: BTreeMap<Offset, Vec<Val>>,
    /// Offsets holding a record (dense or far).
    filled: u64,
}

impl Order {
    fn code_mut(&mut self, o: Offset) -> &mut u32 {
        if self.dense.is_empty() && self.far.is_empty() {
            self.base = o;
        }
        // The dense range stays within four slots per record (plus some
        // slack), so it holds mostly records and `between` scans stay short.
        let room = 4 * (self.filled + 1) + SLACK;
        if o < self.base {
            let shift = self.base - o;
            if shift + self.dense.len() as u64 <= room {
                // Grow the dense range downwards.
                let mut d = Vec::with_capacity(shift as usize + self.dense.len());
                d.resize(shift as usize, O_EMPTY);
                d.extend_from_slice(&self.dense);
                self.dense = d;
                self.base = o;
                self.absorb_far();
            } else {
                return self.far.entry(o).or_insert(O_EMPTY);
            }
        }
        let i = o - self.base;
        let len = self.dense.len() as u64;
        if i < len {
            return &mut self.dense[i as usize];
        }
        if i + 1 > room {
            return self.far.entry(o).or_insert(O_EMPTY);
        }
        let i = i as usize;
        if i >= self.dense.capacity() {
            // Grow by an eighth: at most 12.5% slack on a long order.
            let want = (i + 1).max(self.dense.len() + self.dense.len() / 8 + 64);
            self.dense.reserve_exact(want - self.dense.len());
        }
        self.dense.resize(i + 1, O_EMPTY);
        self.absorb_far();
        &mut self.dense[i]
    }

    /// Moves the sparse entries the dense range now covers into it.
    fn absorb_far(&mut self) {
        if self.far.is_empty() {
            return;
        }
        let end = self.base + self.dense.len() as u64;
        let inside: Vec<Offset> = self.far.range(self.base..end).map(|(&o, _)| o).collect();
        for o in inside {
            if let Some(c) = self.far.remove(&o) {
                self.dense[(o - self.base) as usize] = c;
            }
        }
    }

    /// Records that `v` was observed at offset `o`.
    #[inline]
    pub fn add(&mut self, o: Offset, v: Val) {
        let code = *self.code_mut(o);
        let new = if code == O_EMPTY {
            self.filled += 1;
            if v < u64::from(O_MANY) {
                v as u32
            } else {
                self.many.insert(o, vec![v]);
                O_MANY
            }
        } else if code == O_MANY {
            let vs = self.many.entry(o).or_default();
            if let Err(i) = vs.binary_search(&v) {
                vs.insert(i, v);
            }
            return;
        } else if u64::from(code) != v {
            let mut vs = vec![u64::from(code), v];
            vs.sort_unstable();
            self.many.insert(o, vs);
            O_MANY
        } else {
            return;
        };
        *self.code_mut(o) = new;
    }

    /// Heap bytes held (side maps estimated).
    pub fn bytes(&self) -> usize {
        self.dense.capacity() * 4 + self.far.len() * 40 + self.many.len() * 64
    }

    fn values(&self, o: Offset, code: u32) -> Vec<Val> {
        match code {
            O_EMPTY => Vec::new(),
            O_MANY => self.many.get(&o).cloned().unwrap_or_default(),
            c => vec![u64::from(c)],
        }
    }

    fn code(&self, o: Offset) -> u32 {
        match o.checked_sub(self.base) {
            Some(i) if (i as usize) < self.dense.len() && i < self.dense.len() as u64 => {
                self.dense[i as usize]
            }
            _ => self.far.get(&o).copied().unwrap_or(O_EMPTY),
        }
    }

    /// How many offsets strictly between `a < b` hold a record.
    pub fn between(&self, a: Offset, b: Offset) -> usize {
        if b <= a.saturating_add(1) {
            return 0;
        }
        let end = self.base + self.dense.len() as u64;
        let lo = (a + 1).max(self.base);
        let hi = b.min(end);
        let mut n = 0;
        if lo < hi {
            n += self.dense[(lo - self.base) as usize..(hi - self.base) as usize]
                .iter()
                .filter(|&&c| c != O_EMPTY)
                .count();
        }
        n + self
            .far
            .range(a + 1..b)
            .filter(|(_, &c)| c != O_EMPTY)
            .count()
    }

    /// The first record strictly after offset `a` (its lowest value).
    pub fn record_after(&self, a: Offset) -> Option<(Offset, Val)> {
        let end = self.base + self.dense.len() as u64;
        let mut best: Option<Offset> = None;
        let from = a.saturating_add(1).max(self.base);
        if from < end {
            best = self.dense[(from - self.base) as usize..]
                .iter()
                .position(|&c| c != O_EMPTY)
                .map(|i| from + i as u64);
        }
        if let Some((&o, _)) = self
            .far
            .range(a.saturating_add(1)..)
            .find(|(_, &c)| c != O_EMPTY)
        {
            best = Some(best.map_or(o, |b| b.min(o)));
        }
        let o = best?;
        self.values(o, self.code(o)).first().map(|&v| (o, v))
    }

    /// Offsets holding two or more values, with the values, ascending.
    pub fn inconsistent(&self) -> impl Iterator<Item = (Offset, &[Val])> + '_ {
        self.many
            .iter()
            .filter(|(_, vs)| vs.len() > 1)
            .map(|(&o, vs)| (o, &vs[..]))
    }

    /// Every `(offset, value)` with value `v`, ascending (for examples).
    pub fn offsets_of(&self, v: Val) -> Vec<(Offset, Val)> {
        let mut out: Vec<(Offset, Val)> = Vec::new();
        let dense = self
            .dense
            .iter()
            .enumerate()
            .map(|(i, &c)| (self.base + i as u64, c));
        for (o, c) in dense.chain(self.far.iter().map(|(&o, &c)| (o, c))) {
            if c == O_EMPTY {
                continue;
            }
            if (c == O_MANY && self.many.get(&o).is_some_and(|vs| vs.contains(&v)))
                || u64::from(c) == v
            {
                out.push((o, v));
            }
        }
        out.sort_unstable();
        out
    }
}

// ------------------------------------------------------------- Staircase

pub(crate) fn put_varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

#[inline]
pub(crate) fn get_varint(b: &[u8], pos: &mut usize) -> u64 {
    let mut x = 0u64;
    let mut shift = 0;
    while let Some(&c) = b.get(*pos) {
        *pos += 1;
        x |= u64::from(c & 0x7f) << shift;
        if c < 0x80 {
            break;
        }
        shift += 7;
    }
    x
}

fn zigzag(d: i64) -> u64 {
    ((d << 1) ^ (d >> 63)) as u64
}

fn unzigzag(x: u64) -> i64 {
    ((x >> 1) as i64) ^ -((x & 1) as i64)
}

/// `(m, t)` steps, `m` strictly increasing: since time `t` some offset
/// `>= m` was known to exist. Encoded as varint deltas.
#[derive(Default)]
pub(crate) struct Staircase {
    bytes: Vec<u8>,
    last: Option<(Offset, u64)>,
}

/// A forward-only position in a [`Staircase`]: the first step not yet
/// passed, and the step before it (for delta decoding).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cursor {
    pos: u32,
    /// `m + 1` and `t` of the step before `pos` (0, 0 at the start).
    m1: u64,
    t: u64,
}

impl Cursor {
    /// Appends the cursor to `out` (varints).
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, u64::from(self.pos));
        put_varint(out, self.m1);
        put_varint(out, self.t);
    }

    /// Reads a cursor [`Cursor::encode`] wrote.
    pub fn decode(b: &[u8], at: &mut usize) -> Cursor {
        Cursor {
            pos: get_varint(b, at) as u32,
            m1: get_varint(b, at),
            t: get_varint(b, at),
        }
    }
}

impl Staircase {
    /// Adds a step if `m` is above the last one.
    #[inline]
    pub fn push(&mut self, m: Offset, t: u64) {
        if self.last.is_some_and(|(lm, _)| m <= lm) {
            return;
        }
        let (pm1, pt) = self.last.map_or((0, 0), |(lm, lt)| (lm + 1, lt));
        if self.bytes.capacity() - self.bytes.len() < 20 {
            // Grow by an eighth: little slack on a long staircase.
            let more = (self.bytes.len() / 8).max(64);
            self.bytes.reserve_exact(more);
        }
        put_varint(&mut self.bytes, m + 1 - pm1);
        put_varint(&mut self.bytes, zigzag(t.wrapping_sub(pt) as i64));
        self.last = Some((m, t));
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// The highest offset known to exist so far.
    pub fn top(&self) -> Option<Offset> {
        self.last.map(|(m, _)| m)
    }

    /// Decodes the step at `c` without passing it.
    #[inline]
    fn peek(&self, c: &Cursor) -> Option<(Offset, u64, Cursor)> {
        if c.pos as usize >= self.bytes.len() {
            return None;
        }
        let mut p = c.pos as usize;
        let m1 = c.m1 + get_varint(&self.bytes, &mut p);
        let t =
            c.t.wrapping_add(unzigzag(get_varint(&self.bytes, &mut p)) as u64);
        Some((
            m1 - 1,
            t,
            Cursor {
                pos: p as u32,
                m1,
                t,
            },
        ))
    }

    /// The time of the first step with `m >= next`, moving `c` to it.
    #[inline]
    pub fn seek(&self, c: &mut Cursor, next: Offset) -> Option<u64> {
        while let Some((m, t, after)) = self.peek(c) {
            if m >= next {
                return Some(t);
            }
            *c = after;
        }
        None
    }
}

// ------------------------------------------------------------- Latencies

/// Durations kept per run before the run is sorted and encoded.
const RUN: usize = 1 << 18;

/// Durations (ns), for exact nearest-rank quantiles in little memory.
#[derive(Default)]
pub(crate) struct Latencies {
    cur: Vec<u64>,
    /// Sorted runs, each as varint deltas.
    runs: Vec<(usize, Vec<u8>)>,
    n: usize,
}

impl Latencies {
    #[inline]
    pub fn push(&mut self, d: u64) {
        self.n += 1;
        self.cur.push(d);
        if self.cur.len() >= RUN {
            self.seal();
        }
    }

    fn seal(&mut self) {
        self.cur.sort_unstable();
        let mut b = Vec::with_capacity(self.cur.len() + self.cur.len() / 2);
        let mut prev = 0;
        for &d in &self.cur {
            put_varint(&mut b, d - prev);
            prev = d;
        }
        b.shrink_to_fit();
        self.runs.push((self.cur.len(), b));
        self.cur.clear();
    }

    pub fn len(&self) -> usize {
        self.n
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        self.cur.capacity() * 8 + self.runs.iter().map(|r| r.1.capacity()).sum::<usize>()
    }

    /// The values at 1-based ranks `ranks` (ascending), in order.
    pub fn at_ranks(&mut self, ranks: &[usize]) -> Vec<u64> {
        if self.runs.is_empty() {
            self.cur.sort_unstable();
            return ranks.iter().map(|&r| self.cur[r - 1]).collect();
        }
        if !self.cur.is_empty() {
            self.seal();
        }
        // k-way merge of the runs.
        struct Head {
            v: u64,
            run: usize,
        }
        impl PartialEq for Head {
            fn eq(&self, o: &Self) -> bool {
                self.v == o.v
            }
        }
        impl Eq for Head {}
        impl PartialOrd for Head {
            fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Ord for Head {
            fn cmp(&self, o: &Self) -> std::cmp::Ordering {
                o.v.cmp(&self.v)
            }
        }
        let mut state: Vec<(usize, usize, u64)> = vec![(0, 0, 0); self.runs.len()];
        let mut heap = BinaryHeap::new();
        let runs = &self.runs;
        let next = |run: usize, st: &mut Vec<(usize, usize, u64)>| -> Option<u64> {
            let (taken, pos, prev) = &mut st[run];
            if *taken >= runs[run].0 {
                return None;
            }
            *taken += 1;
            *prev += get_varint(&runs[run].1, pos);
            Some(*prev)
        };
        for run in 0..runs.len() {
            if let Some(v) = next(run, &mut state) {
                heap.push(Head { v, run });
            }
        }
        let mut out = Vec::with_capacity(ranks.len());
        let mut rank = 0;
        let mut want = ranks.iter().peekable();
        while let Some(Head { v, run }) = heap.pop() {
            rank += 1;
            while want.peek() == Some(&&rank) {
                out.push(v);
                want.next();
            }
            if want.peek().is_none() {
                break;
            }
            if let Some(v) = next(run, &mut state) {
                heap.push(Head { v, run });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_record_round_trips_through_its_packed_form() {
        let mut t = Vals::default();
        let cases = [
            ValInfo::default(),
            ValInfo {
                writer: 3,
                status: WStatus::InfoProven,
                first_off: 7,
                last_off: 9,
                reader: 11,
                ok_reader: 12,
            },
            ValInfo {
                writer: 3,
                status: WStatus::Ok,
                first_off: 1 << 40,
                last_off: 1 << 41,
                reader: 11,
                ok_reader: 11,
            },
        ];
        for (i, vi) in cases.iter().enumerate() {
            t.store(2, 100 + i as u64, vi);
            t.store(3, 100 + i as u64, vi); // same value, other key: spilled
            t.store(1, (1 << 50) + i as u64, vi); // far value: spilled
            t.store(70_000, 200 + i as u64, vi); // wide slot: spilled
            assert_eq!(t.get(70_000, 200 + i as u64), Some(*vi));
            assert_eq!(t.get(2, 100 + i as u64), Some(*vi));
            assert_eq!(t.get(3, 100 + i as u64), Some(*vi));
            assert_eq!(t.get(1, (1 << 50) + i as u64), Some(*vi));
        }
        assert_eq!(t.get(2, 99), None);
        assert_eq!(t.len(), 12);
        assert_eq!(t.iter().count(), 12);
    }

    #[test]
    fn an_order_counts_records_between_offsets_near_and_far() {
        let mut o = Order::default();
        for (off, v) in [(10, 1), (11, 2), (13, 3), (5_000_000, 4), (2, 9), (13, 8)] {
            o.add(off, v);
        }
        assert_eq!(o.between(10, 13), 1);
        assert_eq!(o.between(1, 14), 4);
        assert_eq!(o.between(13, 6_000_000), 1);
        assert_eq!(o.record_after(11), Some((13, 3)));
        assert_eq!(o.record_after(13), Some((5_000_000, 4)));
        assert_eq!(o.record_after(5_000_000), None);
        let inc: Vec<(u64, Vec<u64>)> = o.inconsistent().map(|(a, b)| (a, b.to_vec())).collect();
        assert_eq!(inc, vec![(13, vec![3, 8])]);
        assert_eq!(o.offsets_of(8), vec![(13, 8)]);
        // The dense range grows over offsets first kept as far ones.
        let mut o = Order::default();
        o.add(0, 1);
        o.add(3_000_000, 2);
        o.add(3_000_000, 3);
        for off in 1..=3_000_001 {
            o.add(off, 10 + off);
        }
        assert_eq!(o.offsets_of(2), vec![(3_000_000, 2)]);
        assert_eq!(o.between(2_999_999, 3_000_001), 1);
        assert_eq!(o.inconsistent().count(), 1);
        assert_eq!(o.inconsistent().next().map(|x| x.1.len()), Some(3));
    }

    #[test]
    fn a_staircase_answers_like_a_list_of_steps() {
        let mut s = Staircase::default();
        let steps = [(0u64, 100u64), (3, 90), (4, 200), (10, 5000)];
        for &(m, t) in &steps {
            s.push(m, t);
            s.push(m, t + 1); // not above: ignored
        }
        let mut c = Cursor::default();
        assert_eq!(s.seek(&mut c, 0), Some(100));
        assert_eq!(s.seek(&mut c, 2), Some(90));
        assert_eq!(s.seek(&mut c, 4), Some(200));
        assert_eq!(s.seek(&mut c, 5), Some(5000));
        assert_eq!(s.seek(&mut c, 11), None);
    }

    #[test]
    fn latency_ranks_are_exact_across_runs() {
        let mut l = Latencies::default();
        let n = RUN * 2 + 17;
        for i in 0..n as u64 {
            l.push((i * 7919) % n as u64);
        }
        assert_eq!(
            l.at_ranks(&[1, 2, n / 2, n]),
            vec![0, 1, (n / 2 - 1) as u64, n as u64 - 1]
        );
    }
}
