//! The queue analysis (Jepsen's `jepsen.tests.kafka` checker, minus cycles).
//!
//! Two passes over the history, both linear:
//!
//! 1. **Collect.** Pair invocations with completions (latencies), count ops,
//!    and for every `(key, value)` record who wrote it and how that send ended
//!    (`ok`, `info`, `fail`), which offsets it was observed at (an acknowledged
//!    send's offset, every poll's offsets) and who first read it. Each key
//!    keeps the `(offset, value)` pairs observed and a staircase of "offset
//!    ≥ i known to exist since time t" used for realtime lag.
//! 2. **Orders.** Each key's pairs are sorted once into its *version order*:
//!    the distinct offsets observed (Kafka offsets may be sparse, e.g. around
//!    transaction markers, so positions are compared by dense index, i.e. by
//!    how many known records lie between them). Two values at one offset are
//!    `inconsistent-offsets`; one value at several offsets is a `duplicate`.
//! 3. **Per process.** A second walk over the completions checks each
//!    process's consecutive reads and sends of a key against the version
//!    order (`poll-skip`, `nonmonotonic-poll`, `nonmonotonic-send` and their
//!    within-one-op `int-` variants) and transactions reading their own
//!    writes (`precommitted-read`).
//! 4. **Per value.** A sweep over the value table finds aborted reads (`G1a`),
//!    and acknowledged sends nobody read: `lost-write` when a later offset of
//!    the key was read, `unseen` otherwise.
//!
//! Process rules (Jepsen's): an `assign` or `subscribe` (ok or info) keeps
//! the process's last read and send positions only for the keys it still
//! holds; a process renumbered after an `info` is a new process and starts
//! fresh.

use std::collections::BTreeMap;

use gregor_history::{Event, EventType, History, Key, Mop, Offset, Process, Val, F};

use crate::hash::{FxHashMap, FxHashSet};
use crate::witness::{Found, Kind, Witness, NO_OP};
use crate::{Latency, Stats};

const NONE: u32 = u32::MAX;
const NO_OFF: Offset = u64::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WStatus {
    Unknown,
    Ok,
    Info,
    Fail,
}

/// Everything known about one `(key, value)`.
#[derive(Clone, Copy, Debug)]
struct ValInfo {
    /// Position of the completion of the op that sent it.
    writer: u32,
    status: WStatus,
    /// Offset the acknowledgement reported.
    send_off: Offset,
    /// Lowest and highest offsets it was observed at (`NO_OFF` if never).
    first_off: Offset,
    last_off: Offset,
    /// First completion of any type whose reads include it.
    reader: u32,
    /// First `ok` completion whose reads include it.
    ok_reader: u32,
}

impl Default for ValInfo {
    fn default() -> Self {
        ValInfo {
            writer: NONE,
            status: WStatus::Unknown,
            send_off: NO_OFF,
            first_off: NO_OFF,
            last_off: NO_OFF,
            reader: NONE,
            ok_reader: NONE,
        }
    }
}

/// Everything known about one key.
#[derive(Default)]
struct KeyState {
    key: Key,
    /// Observed `(offset, value)` pairs; sorted and deduplicated after pass 1.
    log: Vec<(Offset, Val)>,
    /// Distinct observed offsets, ascending (after pass 1).
    offsets: Vec<Offset>,
    /// Highest offset observed.
    max_off: Option<Offset>,
    /// `(m, t)`: since time `t` some offset `>= m` was known to exist; `m`
    /// strictly increasing.
    known: Vec<(Offset, u64)>,
    /// Highest first-offset of a value read by an ok poll, with its reader.
    bound: Option<(Offset, Val, u32)>,
}

impl KeyState {
    /// How many known records lie strictly between offsets `a < b`.
    fn between(&self, a: Offset, b: Offset) -> usize {
        if b <= a.saturating_add(1) {
            return 0;
        }
        let hi = self.offsets.partition_point(|&o| o < b);
        let lo = self.offsets.partition_point(|&o| o <= a);
        hi.saturating_sub(lo)
    }

    /// The first record strictly after offset `a`.
    fn record_after(&self, a: Offset) -> Option<(Offset, Val)> {
        let i = self.log.partition_point(|&(o, _)| o <= a);
        self.log.get(i).copied()
    }
}

/// Per-process state of the first pass (realtime lag).
#[derive(Default)]
struct LagProc {
    /// Key slot -> (highest offset read + 1, cursor into the key's `known`
    /// staircase: the first step at or past it). Both only grow, so the
    /// cursor advances amortized O(1) per poll and key.
    held: FxHashMap<u32, (Offset, usize)>,
}

/// Per-process state of the second pass.
#[derive(Default)]
struct Proc {
    /// Key slot -> (last offset read, its value, position of that op).
    reads: FxHashMap<u32, (Offset, Val, u32)>,
    /// Key slot -> (position of last send, its value, position of that op).
    sends: FxHashMap<u32, (Offset, Val, u32)>,
    subscribed: bool,
}

const NF: usize = 9;
fn f_slot(f: &F) -> Option<usize> {
    Some(match f {
        F::Send => 0,
        F::Poll => 1,
        F::Txn => 2,
        F::Assign => 3,
        F::Subscribe => 4,
        F::Crash => 5,
        F::Commit => 6,
        F::Committed => 7,
        F::Other(_) => return None,
    })
}
const F_NAMES: [&str; NF] = [
    "send",
    "poll",
    "txn",
    "assign",
    "subscribe",
    "crash",
    "commit",
    "committed",
    "",
];
const T_NAMES: [&str; 4] = ["invoke", "ok", "fail", "info"];
fn t_slot(t: EventType) -> usize {
    match t {
        EventType::Invoke => 0,
        EventType::Ok => 1,
        EventType::Fail => 2,
        EventType::Info => 3,
    }
}

/// What the queue analysis hands back to [`crate::check`].
pub struct Analysis {
    /// `(type, full count, rendered examples)` per anomaly type found.
    pub anomalies: Vec<(&'static str, u64, Vec<serde_json::Value>)>,
    pub stats: Stats,
    /// At least one `ok` poll (or txn with a poll) completed.
    pub has_completed_poll: bool,
}

struct Analyzer<'h> {
    events: &'h [Event],
    vals: FxHashMap<(Key, Val), ValInfo>,
    key_slots: FxHashMap<Key, u32>,
    keys: Vec<KeyState>,
    /// Completion position -> invocation position, only where the completion
    /// carries no micro-ops of its own (info/fail echo the invocation).
    fallback: FxHashMap<u32, u32>,
    found: Found,
    // stats
    ops: [[u64; 4]; NF],
    other_ops: BTreeMap<String, [u64; 4]>,
    lat: [Vec<u64>; NF],
    other_lat: BTreeMap<String, Vec<u64>>,
    acknowledged: u64,
    completed_polls: u64,
    worst_lag: Option<(u64, Key, u32)>,
    consume: FxHashMap<(u64, Key, Val), u32>,
}

/// Runs the queue analysis.
pub fn analyze(h: &History) -> Analysis {
    let mut a = Analyzer {
        events: &h.events,
        vals: FxHashMap::default(),
        key_slots: FxHashMap::default(),
        keys: Vec::new(),
        fallback: FxHashMap::default(),
        found: Found::default(),
        ops: [[0; 4]; NF],
        other_ops: BTreeMap::new(),
        lat: Default::default(),
        other_lat: BTreeMap::new(),
        acknowledged: 0,
        completed_polls: 0,
        worst_lag: None,
        consume: FxHashMap::default(),
    };
    let t = std::time::Instant::now();
    a.collect();
    let t1 = t.elapsed();
    a.orders();
    let t2 = t.elapsed();
    a.per_process();
    let t3 = t.elapsed();
    let (lost, unseen, duplicated) = a.per_value();
    let t4 = t.elapsed();
    let r = a.finish(lost, unseen, duplicated);
    if std::env::var("GREGOR_PROFILE").is_ok() {
        eprintln!(
            "PROFILE collect {t1:?} orders {t2:?} per_process {t3:?} per_value {t4:?} finish {:?}",
            t.elapsed()
        );
    }
    r
}

fn key_slot(slots: &mut FxHashMap<Key, u32>, keys: &mut Vec<KeyState>, k: Key) -> u32 {
    *slots.entry(k).or_insert_with(|| {
        keys.push(KeyState {
            key: k,
            ..Default::default()
        });
        (keys.len() - 1) as u32
    })
}

/// Records that `v` was observed at offset `o` of key `ks`.
#[inline]
fn observe(vi: &mut ValInfo, ks: &mut KeyState, o: Offset, v: Val) {
    if vi.first_off == NO_OFF {
        vi.first_off = o;
        vi.last_off = o;
        ks.log.push((o, v));
    } else if o < vi.first_off {
        vi.first_off = o;
        ks.log.push((o, v));
    } else if o > vi.last_off {
        vi.last_off = o;
        ks.log.push((o, v));
    } else if o != vi.first_off && o != vi.last_off {
        ks.log.push((o, v));
    }
    if ks.max_off.is_none_or(|m| o > m) {
        ks.max_off = Some(o);
    }
}

impl<'h> Analyzer<'h> {
    /// The micro-ops describing a completion: its own, or its invocation's.
    fn mops_of(&self, pos: u32) -> &'h [Mop] {
        let events = self.events;
        let e = &events[pos as usize];
        if e.mops().is_empty() {
            if let Some(&i) = self.fallback.get(&pos) {
                return events[i as usize].mops();
            }
        }
        e.mops()
    }

    // ------------------------------------------------------------ pass 1

    fn collect(&mut self) {
        let events = self.events;
        let mut pending: FxHashMap<u64, u32> = FxHashMap::default();
        let mut lag: FxHashMap<u64, LagProc> = FxHashMap::default();
        let mut known_scratch: Vec<(u32, Offset)> = Vec::new();
        let mut read_scratch: Vec<(u32, Offset)> = Vec::new();
        for (pos, e) in events.iter().enumerate() {
            let pos = pos as u32;
            match f_slot(&e.f) {
                Some(s) => self.ops[s][t_slot(e.kind)] += 1,
                None => self.other_ops.entry(e.f.to_string()).or_default()[t_slot(e.kind)] += 1,
            }
            let Process::Client(p) = e.process else {
                continue;
            };
            if e.kind == EventType::Invoke {
                pending.insert(p, pos);
                continue;
            }
            let inv = pending.remove(&p);
            let invoke_time = inv.map_or(e.time, |i| events[i as usize].time);
            if e.kind == EventType::Ok {
                let d = e.time.saturating_sub(invoke_time);
                match f_slot(&e.f) {
                    Some(s) => self.lat[s].push(d),
                    None => self.other_lat.entry(e.f.to_string()).or_default().push(d),
                }
            }
            match e.f {
                F::Send | F::Poll | F::Txn => {}
                F::Assign | F::Subscribe => {
                    if e.kind == EventType::Ok {
                        if let gregor_history::Value::Keys(ks) = &e.value {
                            let st = lag.entry(p).or_default();
                            if e.f == F::Subscribe {
                                // Subscribed consumers get partitions by
                                // rebalance: a key is held once it is read.
                                st.held.clear();
                            } else {
                                let mut slots: Vec<u32> = ks
                                    .iter()
                                    .map(|&k| key_slot(&mut self.key_slots, &mut self.keys, k))
                                    .collect();
                                slots.sort_unstable();
                                st.held.retain(|s, _| slots.binary_search(s).is_ok());
                                for s in slots {
                                    st.held.entry(s).or_insert((0, 0));
                                }
                            }
                        }
                    }
                    continue;
                }
                _ => continue,
            }
            if e.mops().is_empty() {
                if let Some(i) = inv {
                    self.fallback.insert(pos, i);
                }
            }
            let mops = self.mops_of(pos);
            let ok = e.kind == EventType::Ok;
            let status = match e.kind {
                EventType::Ok => WStatus::Ok,
                EventType::Info => WStatus::Info,
                _ => WStatus::Fail,
            };
            let mut has_poll = false;
            known_scratch.clear();
            read_scratch.clear();
            for mop in mops {
                match mop {
                    Mop::Send { key, value, offset } => {
                        let slot = key_slot(&mut self.key_slots, &mut self.keys, *key);
                        let vi = self.vals.entry((*key, *value)).or_default();
                        if vi.status != WStatus::Ok {
                            vi.writer = pos;
                            vi.status = status;
                        }
                        if ok {
                            self.acknowledged += 1;
                            if let Some(o) = *offset {
                                vi.send_off = o;
                                observe(vi, &mut self.keys[slot as usize], o, *value);
                                known_scratch.push((slot, o));
                            }
                        }
                    }
                    Mop::Poll { reads } => {
                        has_poll = true;
                        let Some(reads) = reads else { continue };
                        for (k, pairs) in reads {
                            let slot = key_slot(&mut self.key_slots, &mut self.keys, *k);
                            let ks = &mut self.keys[slot as usize];
                            let mut hi: Option<Offset> = None;
                            for &(o, v) in pairs {
                                let vi = self.vals.entry((*k, v)).or_default();
                                if vi.reader == NONE {
                                    vi.reader = pos;
                                }
                                if ok && vi.ok_reader == NONE {
                                    vi.ok_reader = pos;
                                }
                                observe(vi, ks, o, v);
                                hi = Some(hi.map_or(o, |h| h.max(o)));
                            }
                            if let (true, Some(h)) = (ok, hi) {
                                known_scratch.push((slot, h));
                                read_scratch.push((slot, h));
                            }
                        }
                    }
                    _ => {}
                }
            }
            if !ok {
                continue;
            }
            for &(slot, o) in &known_scratch {
                let ks = &mut self.keys[slot as usize];
                if ks.known.last().is_none_or(|&(m, _)| o > m) {
                    ks.known.push((o, e.time));
                }
            }
            if has_poll {
                self.completed_polls += 1;
                let st = lag.entry(p).or_default();
                for &(slot, o) in &read_scratch {
                    let h = st.held.entry(slot).or_insert((0, 0));
                    h.0 = h.0.max(o.saturating_add(1));
                }
                for (&slot, cur) in st.held.iter_mut() {
                    let ks = &self.keys[slot as usize];
                    let (next, j) = (cur.0, &mut cur.1);
                    while *j < ks.known.len() && ks.known[*j].0 < next {
                        *j += 1;
                    }
                    if let Some(&(_, t)) = ks.known.get(*j) {
                        let l = invoke_time.saturating_sub(t);
                        if l > 0 && self.worst_lag.is_none_or(|(w, _, _)| l > w) {
                            self.worst_lag = Some((l, ks.key, pos));
                        }
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------ orders

    fn orders(&mut self) {
        let mut order: Vec<u32> = (0..self.keys.len() as u32).collect();
        order.sort_unstable_by_key(|&s| self.keys[s as usize].key);
        for s in order {
            let ks = &mut self.keys[s as usize];
            ks.log.sort_unstable();
            ks.log.dedup();
            ks.offsets = Vec::with_capacity(ks.log.len());
            let mut i = 0;
            while i < ks.log.len() {
                let o = ks.log[i].0;
                let mut j = i + 1;
                while j < ks.log.len() && ks.log[j].0 == o {
                    j += 1;
                }
                ks.offsets.push(o);
                if j - i > 1 {
                    let mut w = Witness::new(Kind::InconsistentOffsets, ks.key);
                    w.offsets[0] = Some(o);
                    w.more = ks.log[i..j].to_vec();
                    // Who observed the first two values there.
                    for (n, &(_, v)) in ks.log[i..j].iter().take(2).enumerate() {
                        if let Some(vi) = self.vals.get(&(ks.key, v)) {
                            w.ops[n] = if vi.reader != NONE && vi.send_off != o {
                                vi.reader
                            } else {
                                vi.writer
                            };
                        }
                    }
                    self.found.push(w);
                }
                i = j;
            }
            ks.offsets.shrink_to_fit();
        }
    }

    // ------------------------------------------------------------ pass 2

    fn slot(&self, k: Key) -> Option<u32> {
        self.key_slots.get(&k).copied()
    }

    fn per_process(&mut self) {
        let events = self.events;
        let mut procs: FxHashMap<u64, Proc> = FxHashMap::default();
        // Per-op scratch: key slot -> (last offset, last value).
        let mut op_reads: Vec<(u32, Offset, Val)> = Vec::new();
        let mut op_read_idx: FxHashMap<u32, usize> = FxHashMap::default();
        let mut op_sends: Vec<(u32, Option<Offset>, Val)> = Vec::new();
        let mut sent: FxHashSet<(Key, Val)> = FxHashSet::default();
        for (pos, e) in events.iter().enumerate() {
            let pos = pos as u32;
            let Process::Client(p) = e.process else {
                continue;
            };
            if e.kind == EventType::Invoke {
                continue;
            }
            match e.f {
                F::Assign | F::Subscribe => {
                    if matches!(e.kind, EventType::Ok | EventType::Info) {
                        if let gregor_history::Value::Keys(ks) = &e.value {
                            let mut held: Vec<u32> =
                                ks.iter().filter_map(|&k| self.slot(k)).collect();
                            held.sort_unstable();
                            let st = procs.entry(p).or_default();
                            st.reads.retain(|s, _| held.binary_search(s).is_ok());
                            st.sends.retain(|s, _| held.binary_search(s).is_ok());
                            if e.kind == EventType::Ok {
                                st.subscribed = e.f == F::Subscribe;
                            }
                        }
                    }
                    continue;
                }
                F::Send | F::Poll | F::Txn => {}
                _ => continue,
            }
            let mops = self.mops_of(pos);
            let ok = e.kind == EventType::Ok;
            let is_txn = e.f == F::Txn;
            let st = procs.entry(p).or_default();
            op_reads.clear();
            op_sends.clear();
            if is_txn {
                sent.clear();
            }
            for mop in mops {
                match mop {
                    Mop::Send { key, value, offset } => {
                        if is_txn {
                            sent.insert((*key, *value));
                        }
                        if e.kind == EventType::Fail {
                            continue;
                        }
                        let Some(slot) = self.slot(*key) else {
                            continue;
                        };
                        let position = offset.or_else(|| {
                            self.vals
                                .get(&(*key, *value))
                                .and_then(|vi| (vi.first_off != NO_OFF).then_some(vi.first_off))
                        });
                        let ks = &self.keys[slot as usize];
                        match op_sends.iter_mut().find(|x| x.0 == slot) {
                            None => {
                                if let (Some(b), Some(&(a, va, apos))) =
                                    (position, st.sends.get(&slot))
                                {
                                    if b <= a {
                                        let mut w = Witness::new(Kind::NonmonotonicSend, *key);
                                        w.ops = [apos, pos];
                                        w.offsets = [Some(a), Some(b)];
                                        w.values = [Some(va), Some(*value)];
                                        self.found.push(w);
                                    }
                                }
                                op_sends.push((slot, position, *value));
                            }
                            Some(prev) => {
                                if let (Some(a), Some(b)) = (prev.1, position) {
                                    let kind = if b <= a {
                                        Some((Kind::IntNonmonotonicSend, 0))
                                    } else {
                                        let n = ks.between(a, b);
                                        (n > 0).then_some((Kind::IntSendSkip, n))
                                    };
                                    if let Some((kind, n)) = kind {
                                        let mut w = Witness::new(kind, *key);
                                        w.ops = [pos, NO_OP];
                                        w.offsets = [Some(a), Some(b)];
                                        w.values = [Some(prev.2), Some(*value)];
                                        w.n = n as u64;
                                        if kind == Kind::IntSendSkip {
                                            w.more.extend(ks.record_after(a));
                                        }
                                        self.found.push(w);
                                    }
                                }
                                prev.1 = position;
                                prev.2 = *value;
                            }
                        }
                    }
                    Mop::Poll { reads: Some(reads) } => {
                        for (k, pairs) in reads {
                            if is_txn && !sent.is_empty() {
                                for &(o, v) in pairs {
                                    if sent.contains(&(*k, v)) {
                                        let mut w = Witness::new(Kind::PrecommittedRead, *k);
                                        w.ops = [pos, NO_OP];
                                        w.offsets[0] = Some(o);
                                        w.values[0] = Some(v);
                                        self.found.push(w);
                                    }
                                }
                            }
                            if !ok || pairs.is_empty() {
                                continue;
                            }
                            let Some(slot) = self.slot(*k) else { continue };
                            let ks = &self.keys[slot as usize];
                            let (o0, v0) = pairs[0];
                            let prev = match op_read_idx.get(&slot) {
                                Some(&i) => Some((op_reads[i].1, op_reads[i].2, true)),
                                None => st.reads.get(&slot).map(|&(o, v, _)| (o, v, false)),
                            };
                            if let Some((a, va, internal)) = prev {
                                let apos = if internal { pos } else { st.reads[&slot].2 };
                                check_read_pair(
                                    &mut self.found,
                                    ks,
                                    [apos, pos],
                                    internal,
                                    (a, va),
                                    (o0, v0),
                                );
                            }
                            for w in pairs.windows(2) {
                                check_read_pair(&mut self.found, ks, [pos, pos], true, w[0], w[1]);
                            }
                            let (ol, vl) = pairs[pairs.len() - 1];
                            match op_read_idx.get(&slot) {
                                Some(&i) => {
                                    op_reads[i].1 = ol;
                                    op_reads[i].2 = vl;
                                }
                                None => {
                                    op_read_idx.insert(slot, op_reads.len());
                                    op_reads.push((slot, ol, vl));
                                }
                            }
                            if st.subscribed {
                                for &(_, v) in pairs {
                                    *self.consume.entry((p, *k, v)).or_default() += 1;
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            for &(slot, o, v) in &op_reads {
                st.reads.insert(slot, (o, v, pos));
                op_read_idx.remove(&slot);
            }
            if matches!(e.kind, EventType::Ok | EventType::Info) {
                for &(slot, o, v) in &op_sends {
                    match o {
                        Some(o) => {
                            st.sends.insert(slot, (o, v, pos));
                        }
                        None => {
                            st.sends.remove(&slot);
                        }
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------ pass 3

    /// Returns (lost, unseen, duplicated) counts.
    fn per_value(&mut self) -> (u64, u64, u64) {
        for (&(k, v), vi) in &self.vals {
            if vi.ok_reader != NONE && vi.first_off != NO_OFF {
                if let Some(&s) = self.key_slots.get(&k) {
                    let ks = &mut self.keys[s as usize];
                    if ks
                        .bound
                        .is_none_or(|(b, bv, _)| (vi.first_off, v) > (b, bv))
                    {
                        ks.bound = Some((vi.first_off, v, vi.ok_reader));
                    }
                }
            }
        }
        let (mut lost, mut unseen, mut dup) = (0, 0, 0);
        for (&(k, v), vi) in &self.vals {
            let ks = self.key_slots.get(&k).map(|&s| &self.keys[s as usize]);
            if vi.first_off != NO_OFF && vi.last_off != vi.first_off {
                dup += 1;
                let mut w = Witness::new(Kind::Duplicate, k);
                w.ops = [vi.writer, vi.reader];
                w.values[0] = Some(v);
                w.n = 2;
                w.offsets = [Some(vi.first_off), Some(vi.last_off)];
                self.found.push(w);
            }
            if vi.status == WStatus::Fail && vi.ok_reader != NONE {
                let mut w = Witness::new(Kind::G1a, k);
                w.ops = [vi.writer, vi.ok_reader];
                w.values[0] = Some(v);
                w.offsets[0] = (vi.first_off != NO_OFF).then_some(vi.first_off);
                self.found.push(w);
            }
            if vi.status == WStatus::Ok && vi.reader == NONE {
                let off = (vi.send_off != NO_OFF).then_some(vi.send_off);
                let bound = ks.and_then(|ks| ks.bound);
                match (off, bound) {
                    (Some(o), Some((b, bv, breader))) if o <= b => {
                        lost += 1;
                        let mut w = Witness::new(Kind::LostWrite, k);
                        w.ops = [vi.writer, breader];
                        w.values = [Some(v), Some(bv)];
                        w.offsets = [Some(o), Some(b)];
                        self.found.push(w);
                    }
                    _ => {
                        unseen += 1;
                        let mut w = Witness::new(Kind::Unseen, k);
                        w.ops = [vi.writer, NO_OP];
                        w.values[0] = Some(v);
                        w.offsets = [off, bound.map(|b| b.0)];
                        self.found.push(w);
                    }
                }
            }
        }
        (lost, unseen, dup)
    }

    // ------------------------------------------------------------ results

    fn finish(mut self, lost: u64, unseen: u64, duplicated: u64) -> Analysis {
        let mut stats = Stats {
            events: self.events.len() as u64,
            ..Default::default()
        };
        for (s, row) in self.ops.iter().enumerate().take(NF - 1) {
            put_counts(&mut stats.ops, F_NAMES[s], row);
        }
        for (f, row) in &self.other_ops {
            put_counts(&mut stats.ops, f, row);
        }
        for (name, d) in F_NAMES.iter().zip(self.lat.iter_mut()).take(NF - 1) {
            if let Some(l) = latency(d) {
                stats.latency.insert(name.to_string(), l);
            }
        }
        for (f, v) in self.other_lat.iter_mut() {
            if let Some(l) = latency(v) {
                stats.latency.insert(f.clone(), l);
            }
        }
        stats.acknowledged = self.acknowledged;
        stats.lost = lost;
        stats.unseen = unseen;
        stats.duplicated = duplicated;
        let rate = |n: u64| {
            if self.acknowledged == 0 {
                0.0
            } else {
                n as f64 / self.acknowledged as f64
            }
        };
        stats.lost_rate = rate(lost);
        stats.unseen_rate = rate(unseen);
        stats.duplicated_rate = rate(duplicated);
        for ks in &self.keys {
            if let Some(m) = ks.max_off {
                stats.key_end_offsets.insert(ks.key, m);
            }
        }
        stats.worst_realtime_lag_ms = self.worst_lag.map(|(l, _, _)| l as f64 / 1e6).or(
            // Polls happened but never lagged: the lag is zero.
            (self.completed_polls > 0).then_some(0.0),
        );
        stats.worst_realtime_lag_key = self.worst_lag.map(|(_, k, _)| k);
        stats.worst_realtime_lag_op = self
            .worst_lag
            .map(|(_, _, pos)| self.events[pos as usize].index);
        stats.completed_polls = self.completed_polls;
        stats.read_values = self.vals.values().filter(|vi| vi.reader != NONE).count() as u64;
        for &c in self.consume.values() {
            *stats.subscribe_consume_counts.entry(c as u64).or_default() += 1;
            if c > 1 {
                stats.subscribe_reconsumed += 1;
            }
        }
        let mut anomalies = Vec::new();
        for (kind, count, mut ws) in self.found.into_groups() {
            if kind == Kind::Duplicate {
                // Every offset the value is at, for the kept examples only.
                for w in &mut ws {
                    if let (Some(&s), Some(v)) = (self.key_slots.get(&w.key), w.values[0]) {
                        w.more = self.keys[s as usize]
                            .log
                            .iter()
                            .filter(|x| x.1 == v)
                            .copied()
                            .collect();
                        w.n = w.more.len() as u64;
                    }
                }
            }
            let examples = ws.iter().map(|w| w.render(self.events)).collect();
            anomalies.push((kind.name(), count, examples));
        }
        Analysis {
            anomalies,
            stats,
            has_completed_poll: self.completed_polls > 0,
        }
    }
}

/// Compares two consecutive reads `a` then `b` of one key by one process.
fn check_read_pair(
    found: &mut Found,
    ks: &KeyState,
    ops: [u32; 2],
    internal: bool,
    a: (Offset, Val),
    b: (Offset, Val),
) {
    let (kind, n) = if b.0 <= a.0 {
        (
            if internal {
                Kind::IntNonmonotonicPoll
            } else {
                Kind::NonmonotonicPoll
            },
            0,
        )
    } else {
        let n = ks.between(a.0, b.0);
        if n == 0 {
            return;
        }
        (
            if internal {
                Kind::IntPollSkip
            } else {
                Kind::PollSkip
            },
            n,
        )
    };
    let mut w = Witness::new(kind, ks.key);
    w.ops = if internal { [ops[1], NO_OP] } else { ops };
    w.offsets = [Some(a.0), Some(b.0)];
    w.values = [Some(a.1), Some(b.1)];
    w.n = n as u64;
    if n > 0 {
        w.more.extend(ks.record_after(a.0));
    }
    found.push(w);
}

fn put_counts(out: &mut BTreeMap<String, BTreeMap<String, u64>>, f: &str, row: &[u64; 4]) {
    if row.iter().all(|&c| c == 0) {
        return;
    }
    let m = out.entry(f.to_string()).or_default();
    for (t, &c) in row.iter().enumerate() {
        if c > 0 {
            m.insert(T_NAMES[t].to_string(), c);
        }
    }
}

/// Nearest-rank quantiles of durations in nanoseconds, reported in ms.
fn latency(d: &mut [u64]) -> Option<Latency> {
    if d.is_empty() {
        return None;
    }
    d.sort_unstable();
    let q = |p: f64| {
        let rank = ((p * d.len() as f64).ceil() as usize).clamp(1, d.len());
        d[rank - 1] as f64 / 1e6
    };
    Some(Latency {
        count: d.len() as u64,
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        max: d[d.len() - 1] as f64 / 1e6,
    })
}
