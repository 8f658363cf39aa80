//! The queue analysis (Jepsen's `jepsen.tests.kafka` checker, minus cycles).
//!
//! One pass over the history, then small passes over what it collected;
//! everything is linear in the history (plus one sort per key):
//!
//! 1. **Collect** (the only walk over the events). Pair invocations with
//!    completions (latencies), count ops, and for every `(key, value)`
//!    record who sent it and how that send ended (`ok`, `info`, `fail`), the
//!    lowest and highest offsets it was observed at (an acknowledged send's
//!    offset, every poll's offsets) and who first read it. Each key keeps
//!    the `(offset, value)` pairs observed and a staircase of "some offset
//!    ≥ m known to exist since time t" for realtime lag. Each process's
//!    consecutive reads and sends of a key are compared as they come
//!    (`nonmonotonic-poll`, `nonmonotonic-send` and their within-one-op
//!    `int-` variants), and a transaction polling its own send is a
//!    `precommitted-read`. A comparison that needs the final version order —
//!    did a read jump over known records (`poll-skip`, `int-poll-skip`,
//!    `int-send-skip`)? where did a send with no acknowledged offset land? —
//!    is kept as a small deferred record.
//! 2. **Orders.** Each key's pairs are sorted once into its *version order*:
//!    the distinct offsets observed. Kafka offsets may be sparse (e.g. around
//!    transaction markers), so positions are compared by dense index, i.e.
//!    by how many known records lie between them. Two values at one offset
//!    are `inconsistent-offsets`.
//! 3. **Deferred.** The deferred comparisons are decided.
//! 4. **Per value.** A sweep over the value table finds `duplicate`s (one
//!    value at several offsets), aborted reads (`G1a`), and acknowledged
//!    sends nobody read: `lost-write` when a poll read past them (Jepsen's
//!    bound: the highest first offset of any value an `ok` poll returned),
//!    `unseen` otherwise.
//!
//! Crashed ops (Jepsen's `must-have-committed?`): an `info` send or txn may
//! still have happened. Once an `ok` read returns a value it sent (for a
//! transaction, any of its values: it commits all or nothing; a plain send
//! op's records are proven one by one) it did: its values are held to the
//! promises of acknowledged sends (`lost-write`, `unseen`) and the offsets
//! its completion reported join the version orders (so they can be
//! `inconsistent-offsets`, or place its sends for the send-order checks).
//! Witnesses about such a value carry `proved-by`. A poll that crashed
//! after returning records (its `info` completion lists them) still read
//! them: they are held to read order and move its process past them
//! (`poll-skip`, `nonmonotonic-poll` and their `int-` variants). Only `ok`
//! reads prove a send or make a failed send an aborted read (`G1a`).
//!
//! Process rules (Jepsen's): an `assign` or `subscribe` (ok or info) keeps
//! the process's last read and send positions only for the keys it still
//! holds; a process renumbered after an `info` is a new process and starts
//! fresh. An op whose event carries `"rebalance-log": [{"keys": [..]}, ..]`
//! is not held to internal read order (`int-poll-skip`,
//! `int-nonmonotonic-poll`) for the keys rebalanced during it.

use std::collections::BTreeMap;

use gregor_history::ops::{Invoke, Pair, Pairing};
use gregor_history::{Event, EventType, History, Key, Mop, Offset, Process, Val, Value, F};

use crate::compact::{Cursor, Latencies, Order, Staircase, ValInfo, Vals, WStatus, NONE, NO_OFF};
use crate::hash::{FxHashMap, FxHashSet};
use crate::witness::{Found, Kind, Witness, NO_OP};
use crate::{Latency, Stats};

/// Why a crashed (`info`) op counts as having happened: an `ok` read
/// (at `reader`) returned `value` of `key`, which the op sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Proof {
    pub crashed: u32,
    pub reader: u32,
    pub key: Key,
    pub value: Val,
}

/// Everything known about one key.
#[derive(Default)]
struct KeyState {
    key: Key,
    /// Observed `(offset, value)` pairs: the version order.
    order: Order,
    /// Highest offset observed.
    max_off: Option<Offset>,
    /// `(m, t)`: since time `t` some offset `>= m` was known to exist; `m`
    /// strictly increasing.
    known: Staircase,
    /// Highest first-offset of a value read by an ok poll, with its reader.
    bound: Option<(Offset, Val, u32)>,
    /// Worst realtime lag of a poll of this key (ns).
    worst_lag: u64,
    /// Whether some ok poll was by a process holding this key.
    polled: bool,
}

impl KeyState {
    /// How many known records lie strictly between offsets `a < b`.
    fn between(&self, a: Offset, b: Offset) -> usize {
        self.order.between(a, b)
    }

    /// The first record strictly after offset `a`.
    fn record_after(&self, a: Offset) -> Option<(Offset, Val)> {
        self.order.record_after(a)
    }
}

/// Per-process state.
#[derive(Default)]
struct ProcState {
    /// Realtime lag: key slot -> (highest offset read + 1, cursor into the
    /// key's `known` staircase: the first step at or past it, and the
    /// catch-up mark: one past the highest offset known to exist when the
    /// process began to hold the key). The first two only grow, so the
    /// cursor advances amortized O(1) per poll and key. While the next
    /// offset is below the mark the process is catching up on records older
    /// than its holding of the key (a client renumbered after a crash
    /// re-reading from the start, a partition moved to it by a rebalance):
    /// its lag then is catch-up lag, reported apart from the cluster's.
    held: FxHashMap<u32, (Offset, Cursor, Offset)>,
    /// Key slot -> (last offset read, its value, position of that op).
    reads: FxHashMap<u32, (Offset, Val, u32)>,
    /// Key slot -> (position of the last send or `NO_OFF` if not yet known,
    /// its value, position of that op).
    sends: FxHashMap<u32, (Offset, Val, u32)>,
    subscribed: bool,
}

/// `u64::MAX` (`NO_OFF`) as a varint would take 10 bytes; shift by one.
fn enc_off(o: Offset) -> u64 {
    o.wrapping_add(1)
}

fn dec_off(x: u64) -> Offset {
    x.wrapping_sub(1)
}

impl ProcState {
    /// The state of a crashed process, packed: varints, a few bytes per
    /// key instead of hash-map entries. A process renumbered after an
    /// `info` never comes back in a well-behaved history, but if it does,
    /// [`ProcState::decode`] restores it exactly.
    fn encode(&self) -> Box<[u8]> {
        use crate::compact::put_varint as put;
        let mut b = Vec::new();
        b.push(u8::from(self.subscribed));
        put(&mut b, self.held.len() as u64);
        for (&slot, (next, c, mark)) in &self.held {
            put(&mut b, u64::from(slot));
            put(&mut b, enc_off(*next));
            c.encode(&mut b);
            put(&mut b, enc_off(*mark));
        }
        for m in [&self.reads, &self.sends] {
            put(&mut b, m.len() as u64);
            for (&slot, &(o, v, pos)) in m {
                put(&mut b, u64::from(slot));
                put(&mut b, enc_off(o));
                put(&mut b, v);
                put(&mut b, u64::from(pos));
            }
        }
        b.into_boxed_slice()
    }

    fn decode(b: &[u8]) -> ProcState {
        use crate::compact::get_varint as get;
        let mut at = 1;
        let mut st = ProcState {
            subscribed: b.first() == Some(&1),
            ..Default::default()
        };
        let n = get(b, &mut at);
        for _ in 0..n {
            let slot = get(b, &mut at) as u32;
            let next = dec_off(get(b, &mut at));
            let c = Cursor::decode(b, &mut at);
            let mark = dec_off(get(b, &mut at));
            st.held.insert(slot, (next, c, mark));
        }
        for which in 0..2 {
            let n = get(b, &mut at);
            for _ in 0..n {
                let slot = get(b, &mut at) as u32;
                let o = dec_off(get(b, &mut at));
                let v = get(b, &mut at);
                let pos = get(b, &mut at) as u32;
                let m = if which == 0 {
                    &mut st.reads
                } else {
                    &mut st.sends
                };
                m.insert(slot, (o, v, pos));
            }
        }
        st
    }
}

/// Reads of one key that jumped over the same offsets `(a, b)` (a skip if
/// a record is known there at the end): how many, and the earliest witness
/// (by the ops involved). Processes crossing the same hole in the offsets
/// (a transaction marker, say) share one group, so the state grows with
/// the holes crossed, not with the reads. Only the earliest witness of a
/// group can become an example.
struct SkipGroup {
    count: u32,
    ops: [u32; 2],
    values: [Val; 2],
}

/// A comparison of two consecutive reads or sends of one key whose verdict
/// needs the final version order (are there known records between them? at
/// which offset did a send with no acknowledged offset land?).
struct Deferred {
    kind: Kind,
    slot: u32,
    ops: [u32; 2],
    /// `(offset, value)`; offset `NO_OFF` = resolve from the value.
    a: (Offset, Val),
    b: (Offset, Val),
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

/// Per-event working state of pass 1: per-process positions, and buffers
/// reused from one op to the next.
#[derive(Default)]
struct Scratch {
    procs: FxHashMap<u64, ProcState>,
    /// Processes whose last op crashed (`info`), their state packed.
    crashed: FxHashMap<u64, Box<[u8]>>,
    known_scratch: Vec<(u32, Offset)>,
    /// Per op: key slot -> (last offset read, its value, highest offset).
    op_reads: Vec<(u32, Offset, Val, Offset)>,
    op_read_idx: FxHashMap<u32, usize>,
    /// Per op: key slot -> (position of last send or NO_OFF, its value).
    op_sends: Vec<(u32, Offset, Val)>,
    sent: FxHashSet<(Key, Val)>,
    rebalanced: Vec<Key>,
}

struct Analyzer {
    /// Events taken so far (the next event's position).
    taken: u32,
    scratch: Scratch,
    vals: Vals,
    key_slots: FxHashMap<Key, u32>,
    keys: Vec<KeyState>,
    found: Found,
    deferred: Vec<Deferred>,
    /// Deferred read skips, by (within one op, key slot, a, b).
    skips: FxHashMap<(bool, u32, Offset, Offset), SkipGroup>,
    /// Sends of `info` ops: (completion position, key slot, value, offset the
    /// completion reported, whether the op is a transaction). What they
    /// reported counts only once a read proves the op happened
    /// ([`Analyzer::prove_info`]).
    info_sends: Vec<(u32, u32, Val, Option<Offset>, bool)>,
    /// Proven `info` op (completion position) -> the read that proved it.
    proofs: FxHashMap<u32, Proof>,
    /// Send micro-ops of proven `info` ops.
    proven_sends: u64,
    /// Key -> slot for small keys, without hashing (`NONE` = no slot).
    dense_slots: Vec<u32>,
    // stats
    ops: [[u64; 4]; NF],
    other_ops: BTreeMap<String, [u64; 4]>,
    lat: [Latencies; NF],
    other_lat: BTreeMap<String, Latencies>,
    acknowledged: u64,
    completed_polls: u64,
    /// (lag, key, history index of the poll).
    worst_lag: Option<(u64, Key, u64)>,
    /// The same for catch-up lag (see [`ProcState::held`]).
    worst_catchup: Option<(u64, Key, u64)>,
    /// The run over time ([`crate::timeline`]).
    tl: crate::timeline::Builder,
    consume: FxHashMap<(u64, Key, Val), u32>,
}

/// Runs the queue analysis.
pub fn analyze(h: &History) -> Analysis {
    let mut a = Analyzer::new();
    let mut pairing = Pairing::new();
    let events = &h.events[..];
    for (i, e) in events.iter().enumerate() {
        let invoke = pairing
            .push(i, e)
            .filter(Pair::completed)
            .and_then(|p| p.invoke)
            .map(|inv| (inv.at as u32, inv.time));
        a.step(e, invoke, |inv| events[inv as usize].mops());
    }
    a.finalize().render(events)
}

/// The queue analysis fed one event at a time, holding none of them: its
/// memory grows with the keys, the values observed and the operations
/// outstanding, not with the events (see [`crate::stream`]).
///
/// [`QueueStream::finish`] gives the same counts, statistics and kept
/// witnesses as [`analyze`] of the same events; rendering the witnesses
/// needs a few facts about the operations they name (history index,
/// process, type), which the caller looks up once at the end
/// ([`Finished::wanted_ops`], [`Finished::render`]).
pub struct QueueStream {
    a: Analyzer,
    /// Outstanding invocations with their micro-ops (a completion without
    /// micro-ops of its own echoes them).
    pending: Pairing<Vec<Mop>>,
}

impl Default for QueueStream {
    fn default() -> Self {
        QueueStream::new()
    }
}

impl QueueStream {
    pub fn new() -> QueueStream {
        QueueStream {
            a: Analyzer::new(),
            pending: Pairing::new(),
        }
    }

    /// Takes the next event of the history.
    pub fn push(&mut self, mut e: Event) {
        let at = self.a.taken as usize;
        match e.process {
            Process::Client(p) if e.kind == EventType::Invoke => {
                self.a.step(&e, None, |_| &[]);
                let data = match std::mem::replace(&mut e.value, Value::None) {
                    Value::Mops(m) => m,
                    _ => Vec::new(),
                };
                // A displaced invoke never completed: nothing to analyze.
                let _ = self.pending.invoke(
                    p,
                    Invoke {
                        at,
                        time: e.time,
                        data,
                    },
                );
            }
            Process::Client(p) => {
                let pair = self.pending.complete(p, at);
                let invoke = pair.invoke.as_ref().map(|i| (i.at as u32, i.time));
                let mops: &[Mop] = pair.invoke.as_ref().map_or(&[], |i| &i.data[..]);
                self.a.step(&e, invoke, |_| mops);
            }
            Process::Nemesis => self.a.step(&e, None, |_| &[]),
        }
    }

    /// Events taken so far.
    pub fn len(&self) -> u64 {
        u64::from(self.a.taken)
    }

    pub fn is_empty(&self) -> bool {
        self.a.taken == 0
    }

    /// Decides everything that needed the end of the history.
    pub fn finish(self) -> Finished {
        self.a.finalize()
    }
}

/// What an operation named by a witness looks like, for rendering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpRef {
    pub index: u64,
    pub process: Process,
    pub kind: EventType,
    /// Whether its function carries micro-ops (send, poll, txn, ...).
    pub has_mops: bool,
}

impl OpRef {
    pub fn of(e: &Event) -> OpRef {
        OpRef {
            index: e.index,
            process: e.process,
            kind: e.kind,
            has_mops: e.f.has_mops(),
        }
    }
}

/// Looks operations up by position in the history (0 = first event).
pub trait Ops {
    fn op(&self, pos: u32) -> Option<OpRef>;
}

impl Ops for [Event] {
    fn op(&self, pos: u32) -> Option<OpRef> {
        self.get(pos as usize).map(OpRef::of)
    }
}

impl Ops for std::collections::HashMap<u32, OpRef> {
    fn op(&self, pos: u32) -> Option<OpRef> {
        self.get(&pos).copied()
    }
}

/// The queue analysis after its last event, before its witnesses are
/// rendered.
pub struct Finished {
    groups: Vec<(Kind, u64, Vec<Witness>)>,
    stats: Stats,
    has_completed_poll: bool,
}

impl Finished {
    /// Positions of the operations the kept witnesses name.
    pub fn wanted_ops(&self) -> Vec<u32> {
        let mut out: Vec<u32> = self
            .groups
            .iter()
            .flat_map(|g| &g.2)
            .flat_map(|w| {
                let p = w.proof.map(|p| [p.crashed, p.reader]).unwrap_or([NO_OP; 2]);
                [w.ops[0], w.ops[1], p[0], p[1]]
            })
            .filter(|&p| p != NO_OP)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The result, witnesses rendered with what `ops` says about the
    /// operations they name.
    pub fn render<O: Ops + ?Sized>(self, ops: &O) -> Analysis {
        let anomalies = self
            .groups
            .into_iter()
            .map(|(kind, count, ws)| {
                (
                    kind.name(),
                    count,
                    ws.iter().map(|w| w.render(ops)).collect(),
                )
            })
            .collect();
        Analysis {
            anomalies,
            stats: self.stats,
            has_completed_poll: self.has_completed_poll,
        }
    }
}

/// Keys below this get a slot without hashing.
const DENSE_KEYS: u64 = 1 << 16;

fn key_slot(
    dense: &mut Vec<u32>,
    slots: &mut FxHashMap<Key, u32>,
    keys: &mut Vec<KeyState>,
    k: Key,
) -> u32 {
    if k < DENSE_KEYS {
        if let Some(&s) = dense.get(k as usize) {
            if s != NONE {
                return s;
            }
        }
    }
    let s = *slots.entry(k).or_insert_with(|| {
        keys.push(KeyState {
            key: k,
            ..Default::default()
        });
        (keys.len() - 1) as u32
    });
    if k < DENSE_KEYS {
        if dense.len() <= k as usize {
            dense.resize(k as usize + 1, NONE);
        }
        dense[k as usize] = s;
    }
    s
}

/// Records that `v` was observed at offset `o` of key `ks`.
#[inline]
fn observe(vi: &mut ValInfo, ks: &mut KeyState, o: Offset, v: Val) {
    if vi.first_off == NO_OFF {
        vi.first_off = o;
        vi.last_off = o;
        ks.order.add(o, v);
    } else if o < vi.first_off {
        vi.first_off = o;
        ks.order.add(o, v);
    } else if o > vi.last_off {
        vi.last_off = o;
        ks.order.add(o, v);
    } else if o != vi.first_off && o != vi.last_off {
        ks.order.add(o, v);
    }
    if ks.max_off.is_none_or(|m| o > m) {
        ks.max_off = Some(o);
    }
}

impl Analyzer {
    fn new() -> Analyzer {
        Analyzer {
            taken: 0,
            scratch: Scratch::default(),
            vals: Vals::default(),
            key_slots: FxHashMap::default(),
            keys: Vec::new(),
            found: Found::default(),
            deferred: Vec::new(),
            skips: FxHashMap::default(),
            info_sends: Vec::new(),
            proofs: FxHashMap::default(),
            proven_sends: 0,
            dense_slots: Vec::new(),
            ops: [[0; 4]; NF],
            other_ops: BTreeMap::new(),
            lat: Default::default(),
            other_lat: BTreeMap::new(),
            acknowledged: 0,
            completed_polls: 0,
            worst_lag: None,
            worst_catchup: None,
            tl: Default::default(),
            consume: FxHashMap::default(),
        }
    }

    /// Everything after the last event: proofs of crashed ops, version
    /// orders, deferred comparisons, the per-value sweep, statistics.
    fn finalize(mut self) -> Finished {
        if std::env::var_os("GREGOR_QUEUE_SIZES").is_some() {
            self.report_sizes();
        }
        self.prove_info();
        self.orders();
        self.resolve_deferred();
        let (lost, unseen, duplicated) = self.per_value();
        self.finish(lost, unseen, duplicated)
    }

    /// Diagnostics (`GREGOR_QUEUE_SIZES=1`): how big each part of the
    /// state is at the end of pass 1, on stderr.
    fn report_sizes(&self) {
        let procs = &self.scratch.procs;
        let crashed: usize = self.scratch.crashed.values().map(|b| b.len() + 40).sum();
        let proc_entries: usize = procs
            .values()
            .map(|p| p.held.len() + p.reads.len() + p.sends.len())
            .sum();
        let order: usize = self.keys.iter().map(|k| k.order.bytes()).sum();
        let stairs: usize = self.keys.iter().map(|k| k.known.bytes()).sum();
        eprintln!(
            "queue state: {} values ({} MB), version orders {} MB, staircases {} MB, \
             {} deferred ({} MB), {} processes with {} per-key entries, {} crashed ({} MB), \
             {} info sends, \
             {} latencies ({} MB)",
            self.vals.len(),
            self.vals.bytes() / 1_000_000,
            order / 1_000_000,
            stairs / 1_000_000,
            self.deferred.len() + self.skips.len(),
            (self.deferred.len() * std::mem::size_of::<Deferred>() + self.skips.capacity() * 48)
                / 1_000_000,
            procs.len(),
            proc_entries,
            self.scratch.crashed.len(),
            crashed / 1_000_000,
            self.info_sends.len(),
            self.lat.iter().map(|l| l.len()).sum::<usize>(),
            self.lat.iter().map(|l| l.bytes()).sum::<usize>() / 1_000_000,
        );
    }

    // ------------------------------------------------------------ pass 1

    fn slot_of(&mut self, k: Key) -> u32 {
        key_slot(
            &mut self.dense_slots,
            &mut self.key_slots,
            &mut self.keys,
            k,
        )
    }

    /// Takes the next event (pass 1). For a completion, `invoke` is the
    /// (position, time) of the invocation it answers (as the history's
    /// [`Pairing`] found it), and `inv_mops` gives that invocation's
    /// micro-ops (used when the completion carries none of its own:
    /// info/fail echo the invocation).
    fn step<'m>(
        &mut self,
        e: &'m Event,
        invoke: Option<(u32, u64)>,
        inv_mops: impl FnOnce(u32) -> &'m [Mop],
    ) {
        let pos = self.taken;
        self.taken += 1;
        self.tl.saw(e.time);
        if e.process.client().is_some() && e.kind != EventType::Invoke {
            self.tl.completed(e.time, e.f.as_str(), t_slot(e.kind) - 1);
        }
        match f_slot(&e.f) {
            Some(s) => self.ops[s][t_slot(e.kind)] += 1,
            None => self.other_ops.entry(e.f.to_string()).or_default()[t_slot(e.kind)] += 1,
        }
        let mut sc = std::mem::take(&mut self.scratch);
        let client = e.process.client().filter(|_| e.kind != EventType::Invoke);
        if let Some(p) = client.filter(|_| !sc.crashed.is_empty()) {
            if let Some(b) = sc.crashed.remove(&p) {
                sc.procs.insert(p, ProcState::decode(&b));
            }
        }
        self.complete(pos, e, invoke, inv_mops, &mut sc);
        if let Some(p) = client.filter(|_| e.kind == EventType::Info) {
            // Crashed: the worker continues under a new process number.
            if let Some(st) = sc.procs.remove(&p) {
                sc.crashed.insert(p, st.encode());
            }
        }
        self.scratch = sc;
    }

    fn complete<'m>(
        &mut self,
        pos: u32,
        e: &'m Event,
        invoke: Option<(u32, u64)>,
        inv_mops: impl FnOnce(u32) -> &'m [Mop],
        sc: &mut Scratch,
    ) {
        let Scratch {
            procs,
            crashed: _,
            known_scratch,
            op_reads,
            op_read_idx,
            op_sends,
            sent,
            rebalanced,
        } = sc;
        {
            let Process::Client(p) = e.process else {
                return;
            };
            if e.kind == EventType::Invoke {
                return;
            }
            let (inv, invoke_time) = match invoke {
                Some((i, t)) => (Some(i), t),
                None => (None, e.time),
            };
            if e.kind == EventType::Ok {
                let d = e.time.saturating_sub(invoke_time);
                self.tl.latency(e.f.as_str(), invoke_time, d);
                match f_slot(&e.f) {
                    Some(s) => self.lat[s].push(d),
                    None => self.other_lat.entry(e.f.to_string()).or_default().push(d),
                }
            }
            match e.f {
                F::Send | F::Poll | F::Txn => {}
                F::Assign | F::Subscribe => {
                    if let (EventType::Ok | EventType::Info, gregor_history::Value::Keys(ks)) =
                        (e.kind, &e.value)
                    {
                        let mut held: Vec<u32> = ks.iter().map(|&k| self.slot_of(k)).collect();
                        held.sort_unstable();
                        let st = procs.entry(p).or_default();
                        st.reads.retain(|s, _| held.binary_search(s).is_ok());
                        st.sends.retain(|s, _| held.binary_search(s).is_ok());
                        if e.kind == EventType::Ok {
                            st.subscribed = e.f == F::Subscribe;
                            if st.subscribed {
                                // Subscribed consumers get partitions by
                                // rebalance: a key is held once it is read.
                                st.held.clear();
                            } else {
                                st.held.retain(|s, _| held.binary_search(s).is_ok());
                                for s in held {
                                    let mark =
                                        self.keys[s as usize].known.top().map_or(0, |m| m + 1);
                                    st.held.entry(s).or_insert((0, Cursor::default(), mark));
                                }
                            }
                        }
                    }
                    return;
                }
                _ => return,
            }
            let mops = match inv {
                Some(i) if e.mops().is_empty() => inv_mops(i),
                _ => e.mops(),
            };
            let ok = e.kind == EventType::Ok;
            // What a crashed poll returned still happened: its reads are
            // held to read order and move its process past them.
            let reads_count = ok || e.kind == EventType::Info;
            let is_txn = e.f == F::Txn;
            let status = match e.kind {
                EventType::Ok => WStatus::Ok,
                EventType::Info => WStatus::Info,
                _ => WStatus::Fail,
            };
            let st = procs.entry(p).or_default();
            let mut has_poll = false;
            known_scratch.clear();
            op_reads.clear();
            op_sends.clear();
            if is_txn && !sent.is_empty() {
                sent.clear();
            }
            rebalance_keys(e, rebalanced);
            for mop in mops {
                match mop {
                    Mop::Send { key, value, offset } => {
                        let (key, value) = (*key, *value);
                        if is_txn {
                            sent.insert((key, value));
                        }
                        let slot = key_slot(
                            &mut self.dense_slots,
                            &mut self.key_slots,
                            &mut self.keys,
                            key,
                        );
                        let mut vi = self.vals.load(slot, value);
                        if ok && vi.status != WStatus::Ok && vi.ok_reader == NONE {
                            // Acknowledged and not read yet.
                            self.tl.unseen(e.time, 1);
                        }
                        if vi.status != WStatus::Ok {
                            vi.writer = pos;
                            vi.status = status;
                        }
                        if ok {
                            self.acknowledged += 1;
                            if let Some(o) = *offset {
                                observe(&mut vi, &mut self.keys[slot as usize], o, value);
                                known_scratch.push((slot, o));
                            }
                        }
                        self.vals.store(slot, value, &vi);
                        if status == WStatus::Fail {
                            continue;
                        }
                        if status == WStatus::Info {
                            self.info_sends.push((pos, slot, value, *offset, is_txn));
                        }
                        // A crashed op's reported offset counts only if the
                        // op is proven: resolve it from the value at the end.
                        let here = (if ok { offset.unwrap_or(NO_OFF) } else { NO_OFF }, value);
                        match op_sends.iter_mut().find(|x| x.0 == slot) {
                            None => {
                                if let Some(&(ao, av, apos)) = st.sends.get(&slot) {
                                    compare_sends(
                                        &mut self.found,
                                        &mut self.deferred,
                                        Kind::NonmonotonicSend,
                                        key,
                                        slot,
                                        [apos, pos],
                                        (ao, av),
                                        here,
                                    );
                                }
                                op_sends.push((slot, here.0, here.1));
                            }
                            Some(prev) => {
                                compare_sends(
                                    &mut self.found,
                                    &mut self.deferred,
                                    Kind::IntNonmonotonicSend,
                                    key,
                                    slot,
                                    [pos, NO_OP],
                                    (prev.1, prev.2),
                                    here,
                                );
                                prev.1 = here.0;
                                prev.2 = here.1;
                            }
                        }
                    }
                    Mop::Poll { reads } => {
                        has_poll = true;
                        let Some(reads) = reads else { continue };
                        for (k, pairs) in reads {
                            let k = *k;
                            if is_txn && !sent.is_empty() {
                                for &(o, v) in pairs {
                                    if sent.contains(&(k, v)) {
                                        let mut w = Witness::new(Kind::PrecommittedRead, k);
                                        w.ops = [pos, NO_OP];
                                        w.offsets[0] = Some(o);
                                        w.values[0] = Some(v);
                                        self.found.push(w);
                                    }
                                }
                            }
                            if pairs.is_empty() {
                                continue;
                            }
                            let slot = key_slot(
                                &mut self.dense_slots,
                                &mut self.key_slots,
                                &mut self.keys,
                                k,
                            );
                            // Where this op (or else this process) left off.
                            let idx = if op_reads.len() < 8 {
                                op_reads.iter().position(|x| x.0 == slot)
                            } else {
                                op_read_idx.get(&slot).copied()
                            };
                            let mut prev: Option<((Offset, Val), [u32; 2], bool)> = match idx {
                                Some(i) => {
                                    Some(((op_reads[i].1, op_reads[i].2), [pos, NO_OP], true))
                                }
                                None => st
                                    .reads
                                    .get(&slot)
                                    .map(|&(o, v, apos)| ((o, v), [apos, pos], false)),
                            };
                            // A rebalance during the op voids its internal
                            // order for the keys it moved (Jepsen's rule).
                            let exempt = !rebalanced.is_empty() && rebalanced.contains(&k);
                            let ks = &mut self.keys[slot as usize];
                            let mut hi: Offset = 0;
                            for &(o, v) in pairs {
                                let mut vi = self.vals.load(slot, v);
                                if vi.reader == NONE {
                                    vi.reader = pos;
                                }
                                if ok && vi.ok_reader == NONE {
                                    vi.ok_reader = pos;
                                    if vi.status == WStatus::Ok {
                                        self.tl.unseen(e.time, -1);
                                    }
                                }
                                observe(&mut vi, ks, o, v);
                                self.vals.store(slot, v, &vi);
                                hi = hi.max(o);
                                if reads_count {
                                    if let Some((a, ops, internal)) =
                                        prev.filter(|x| !(x.2 && exempt))
                                    {
                                        compare_reads(
                                            &mut self.found,
                                            &mut self.skips,
                                            internal,
                                            k,
                                            slot,
                                            ops,
                                            a,
                                            (o, v),
                                        );
                                    }
                                    prev = Some(((o, v), [pos, NO_OP], true));
                                }
                            }
                            if !reads_count {
                                continue;
                            }
                            if ok {
                                known_scratch.push((slot, hi));
                            }
                            let (lo, lv) = pairs[pairs.len() - 1];
                            match idx {
                                Some(i) => {
                                    let r = &mut op_reads[i];
                                    (r.1, r.2, r.3) = (lo, lv, r.3.max(hi));
                                }
                                None => {
                                    op_reads.push((slot, lo, lv, hi));
                                    match op_reads.len() {
                                        // From the 8th key on, lookups use the index:
                                        // it must hold every key the op read so far.
                                        8 => op_read_idx.extend(
                                            op_reads.iter().enumerate().map(|(i, r)| (r.0, i)),
                                        ),
                                        n if n > 8 => {
                                            op_read_idx.insert(slot, n - 1);
                                        }
                                        _ => {}
                                    }
                                }
                            }
                            if ok && st.subscribed {
                                for &(_, v) in pairs {
                                    *self.consume.entry((p, k, v)).or_default() += 1;
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            if !op_read_idx.is_empty() {
                op_read_idx.clear();
            }
            if matches!(e.kind, EventType::Ok | EventType::Info) {
                for &(slot, o, v) in op_sends.iter() {
                    st.sends.insert(slot, (o, v, pos));
                }
            }
            if reads_count {
                for &(slot, o, v, _) in op_reads.iter() {
                    st.reads.insert(slot, (o, v, pos));
                }
            }
            if !ok {
                return;
            }
            for &(slot, o) in known_scratch.iter() {
                let ks = &mut self.keys[slot as usize];
                ks.known.push(o, e.time);
            }
            // Final reads start from the beginning on purpose: they say
            // nothing about how far behind consumers were during the run.
            let final_read = e.extra("final") == Some(&serde_json::Value::Bool(true));
            if has_poll {
                self.completed_polls += 1;
                for &(slot, _, _, hi) in op_reads.iter() {
                    let h = st.held.entry(slot).or_insert_with(|| {
                        let mark = self.keys[slot as usize].known.top().map_or(0, |m| m + 1);
                        (0, Cursor::default(), mark)
                    });
                    h.0 = h.0.max(hi.saturating_add(1));
                }
                let (mut cluster, mut catchup) = (None::<u64>, None::<u64>);
                for (&slot, cur) in st.held.iter_mut() {
                    let ks = &mut self.keys[slot as usize];
                    ks.polled = true;
                    let (next, c, mark) = (cur.0, &mut cur.1, cur.2);
                    let found = ks.known.seek(c, next);
                    let Some(t) = found.filter(|_| !final_read) else {
                        continue;
                    };
                    let l = invoke_time.saturating_sub(t);
                    if next < mark {
                        catchup = Some(catchup.map_or(l, |x| x.max(l)));
                        if l > 0 && self.worst_catchup.is_none_or(|(w, _, _)| l > w) {
                            self.worst_catchup = Some((l, ks.key, e.index));
                        }
                        continue;
                    }
                    cluster = Some(cluster.map_or(l, |x| x.max(l)));
                    ks.worst_lag = ks.worst_lag.max(l);
                    if l > 0 && self.worst_lag.is_none_or(|(w, _, _)| l > w) {
                        self.worst_lag = Some((l, ks.key, e.index));
                    }
                }
                if !final_read {
                    // Caught up on every key it holds: no lag at all.
                    let cluster = cluster.or(catchup.is_none().then_some(0));
                    self.tl.poll(invoke_time, cluster, catchup);
                }
            }
        }
    }

    // ------------------------------------------------------------ info

    /// Jepsen's rule for crashed ops: an `info` txn happened if an `ok` read
    /// returned any value it sent (a transaction commits all its records or
    /// none); a record of a plain `send` op happened if it was read itself
    /// (separate records of one `send` op succeed or fail independently).
    /// What happened counts as written (lost or unseen if nobody reads it),
    /// and the offsets the completion reported join the version orders.
    fn prove_info(&mut self) {
        let sends = std::mem::take(&mut self.info_sends);
        let mut i = 0;
        while i < sends.len() {
            let (pos, txn) = (sends[i].0, sends[i].4);
            let mut j = i + 1;
            // A transaction is proven as a whole, a send record by record.
            while txn && j < sends.len() && sends[j].0 == pos {
                j += 1;
            }
            let op = &sends[i..j];
            let proof = op.iter().find_map(|&(_, slot, v, _, _)| {
                self.vals
                    .get(slot, v)
                    .filter(|vi| vi.ok_reader != NONE)
                    .map(|vi| Proof {
                        crashed: pos,
                        reader: vi.ok_reader,
                        key: self.keys[slot as usize].key,
                        value: v,
                    })
            });
            if let Some(proof) = proof {
                self.proofs.insert(pos, proof);
                for &(_, slot, v, off, _) in op {
                    let mut vi = self.vals.load(slot, v);
                    if vi.writer != pos || vi.status != WStatus::Info {
                        continue;
                    }
                    vi.status = WStatus::InfoProven;
                    self.proven_sends += 1;
                    if let Some(o) = off {
                        observe(&mut vi, &mut self.keys[slot as usize], o, v);
                    }
                    self.vals.store(slot, v, &vi);
                }
            }
            i = j;
        }
    }
}

/// The proof for a value's writer, if it is a proven crashed op.
fn proof_of(proofs: &FxHashMap<u32, Proof>, vi: &ValInfo) -> Option<Proof> {
    if vi.status == WStatus::InfoProven {
        proofs.get(&vi.writer).copied()
    } else {
        None
    }
}

impl Analyzer {
    // ------------------------------------------------------------ orders

    fn orders(&mut self) {
        for s in 0..self.keys.len() {
            let ks = &self.keys[s];
            for (o, vals) in ks.order.inconsistent() {
                let mut w = Witness::new(Kind::InconsistentOffsets, ks.key);
                w.offsets[0] = Some(o);
                w.more = vals.iter().map(|&v| (o, v)).collect();
                // Who observed the first two values there.
                for (n, &v) in vals.iter().take(2).enumerate() {
                    if let Some(vi) = self.vals.get(s as u32, v) {
                        w.ops[n] = if vi.status.happened() || vi.reader == NONE {
                            vi.writer
                        } else {
                            vi.reader
                        };
                        if w.proof.is_none() && vi.status.happened() && vi.reader == NONE {
                            w.proof = proof_of(&self.proofs, &vi);
                        }
                    }
                }
                self.found.push(w);
            }
        }
    }

    // ------------------------------------------------------------ deferred

    /// Decides the comparisons that needed the final version order.
    fn resolve_deferred(&mut self) {
        for ((internal, slot, a, b), g) in std::mem::take(&mut self.skips) {
            let ks = &self.keys[slot as usize];
            let n = ks.between(a, b);
            if n == 0 {
                continue;
            }
            let kind = if internal {
                Kind::IntPollSkip
            } else {
                Kind::PollSkip
            };
            let mut w = Witness::new(kind, ks.key);
            w.ops = g.ops;
            w.offsets = [Some(a), Some(b)];
            w.values = [Some(g.values[0]), Some(g.values[1])];
            w.n = n as u64;
            w.more.extend(ks.record_after(a));
            self.found.push_counted(w, u64::from(g.count));
        }
        for d in std::mem::take(&mut self.deferred) {
            let ks = &self.keys[d.slot as usize];
            let resolve = |(o, v): (Offset, Val)| -> Option<Offset> {
                if o != NO_OFF {
                    return Some(o);
                }
                self.vals
                    .get(d.slot, v)
                    .and_then(|vi| (vi.first_off != NO_OFF).then_some(vi.first_off))
            };
            let (Some(a), Some(b)) = (resolve(d.a), resolve(d.b)) else {
                continue;
            };
            let kind = match d.kind {
                Kind::NonmonotonicSend => (b <= a).then_some((Kind::NonmonotonicSend, 0)),
                Kind::IntNonmonotonicSend if b <= a => Some((Kind::IntNonmonotonicSend, 0)),
                Kind::IntNonmonotonicSend => {
                    let n = ks.between(a, b);
                    (n > 0).then_some((Kind::IntSendSkip, n))
                }
                // (Read skips are grouped in `skips` instead.)
                kind => {
                    let n = ks.between(a, b);
                    (n > 0).then_some((kind, n))
                }
            };
            if let Some((kind, n)) = kind {
                let mut w = Witness::new(kind, ks.key);
                w.ops = d.ops;
                w.offsets = [Some(a), Some(b)];
                w.values = [Some(d.a.1), Some(d.b.1)];
                w.n = n as u64;
                if n > 0 {
                    w.more.extend(ks.record_after(a));
                }
                self.found.push(w);
            }
        }
    }

    // ------------------------------------------------------------ pass 3

    /// Returns (lost, unseen, duplicated) counts.
    fn per_value(&mut self) -> (u64, u64, u64) {
        for (s, v, vi) in self.vals.iter() {
            if vi.ok_reader != NONE && vi.first_off != NO_OFF {
                {
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
        for (s, v, vi) in self.vals.iter() {
            let ks = Some(&self.keys[s as usize]);
            let k = self.keys[s as usize].key;
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
            if vi.status.happened() && vi.reader == NONE {
                let proof = proof_of(&self.proofs, &vi);
                let off = (vi.first_off != NO_OFF).then_some(vi.first_off);
                let bound = ks.and_then(|ks| ks.bound);
                match (off, bound) {
                    (Some(o), Some((b, bv, breader))) if o <= b => {
                        lost += 1;
                        let mut w = Witness::new(Kind::LostWrite, k);
                        w.ops = [vi.writer, breader];
                        w.values = [Some(v), Some(bv)];
                        w.offsets = [Some(o), Some(b)];
                        w.proof = proof;
                        self.found.push(w);
                    }
                    _ => {
                        unseen += 1;
                        let mut w = Witness::new(Kind::Unseen, k);
                        w.ops = [vi.writer, NO_OP];
                        w.values[0] = Some(v);
                        w.offsets = [off, bound.map(|b| b.0)];
                        w.proof = proof;
                        self.found.push(w);
                    }
                }
            }
        }
        (lost, unseen, dup)
    }

    // ------------------------------------------------------------ results

    fn finish(mut self, lost: u64, unseen: u64, duplicated: u64) -> Finished {
        let mut stats = Stats {
            events: u64::from(self.taken),
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
        stats.info_proven = self.proven_sends;
        stats.lost = lost;
        stats.unseen = unseen;
        stats.duplicated = duplicated;
        let held = self.acknowledged + self.proven_sends;
        let rate = |n: u64| {
            if held == 0 {
                0.0
            } else {
                n as f64 / held as f64
            }
        };
        stats.lost_rate = rate(lost);
        stats.unseen_rate = rate(unseen);
        stats.duplicated_rate = rate(duplicated);
        for ks in &self.keys {
            if let Some(m) = ks.max_off {
                stats.key_end_offsets.insert(ks.key, m);
            }
            if ks.polled {
                stats
                    .realtime_lag_by_key_ms
                    .insert(ks.key, ks.worst_lag as f64 / 1e6);
            }
        }
        stats.worst_realtime_lag_ms = self.worst_lag.map(|(l, _, _)| l as f64 / 1e6).or(
            // Polls happened but never lagged: the lag is zero.
            (self.completed_polls > 0).then_some(0.0),
        );
        stats.worst_realtime_lag_key = self.worst_lag.map(|(_, k, _)| k);
        stats.worst_realtime_lag_op = self.worst_lag.map(|(_, _, index)| index);
        stats.worst_catchup_lag_ms = self.worst_catchup.map(|(l, _, _)| l as f64 / 1e6);
        stats.worst_catchup_lag_key = self.worst_catchup.map(|(_, k, _)| k);
        stats.worst_catchup_lag_op = self.worst_catchup.map(|(_, _, index)| index);
        stats.timeline = std::mem::take(&mut self.tl).finish();
        stats.completed_polls = self.completed_polls;
        stats.read_values = self
            .vals
            .iter()
            .filter(|(_, _, vi)| vi.reader != NONE)
            .count() as u64;
        for &c in self.consume.values() {
            *stats.subscribe_consume_counts.entry(c as u64).or_default() += 1;
            if c > 1 {
                stats.subscribe_reconsumed += 1;
            }
        }
        let mut groups = Vec::new();
        for (kind, count, mut ws) in self.found.into_groups() {
            if kind == Kind::Duplicate {
                // Every offset the value is at, for the kept examples only.
                for w in &mut ws {
                    if let (Some(&s), Some(v)) = (self.key_slots.get(&w.key), w.values[0]) {
                        w.more = self.keys[s as usize].order.offsets_of(v);
                        w.n = w.more.len() as u64;
                    }
                }
            }
            groups.push((kind, count, ws));
        }
        Finished {
            groups,
            stats,
            has_completed_poll: self.completed_polls > 0,
        }
    }
}

/// The keys a client logged as rebalanced during this op
/// (`"rebalance-log": [{"keys": [..]}, ..]`, Jepsen's form), into `out`.
fn rebalance_keys(e: &Event, out: &mut Vec<Key>) {
    out.clear();
    if e.extra.is_empty() {
        return;
    }
    if let Some(serde_json::Value::Array(log)) = e.extra("rebalance-log") {
        for entry in log {
            if let Some(keys) = entry.get("keys").and_then(|k| k.as_array()) {
                out.extend(keys.iter().filter_map(|k| k.as_u64()));
            }
        }
    }
}

/// Compares two consecutive reads `a` then `b` of one key by one process
/// (`internal`: within one op). Going back is decided now; a jump over
/// offsets is deferred until the version order is known.
#[allow(clippy::too_many_arguments)]
#[inline]
fn compare_reads(
    found: &mut Found,
    skips: &mut FxHashMap<(bool, u32, Offset, Offset), SkipGroup>,
    internal: bool,
    key: Key,
    slot: u32,
    ops: [u32; 2],
    a: (Offset, Val),
    b: (Offset, Val),
) {
    if b.0 <= a.0 {
        let kind = if internal {
            Kind::IntNonmonotonicPoll
        } else {
            Kind::NonmonotonicPoll
        };
        let mut w = Witness::new(kind, key);
        w.ops = ops;
        w.offsets = [Some(a.0), Some(b.0)];
        w.values = [Some(a.1), Some(b.1)];
        found.push(w);
    } else if b.0 > a.0 + 1 {
        let kind = if internal {
            Kind::IntPollSkip
        } else {
            Kind::PollSkip
        };
        let g = skips
            .entry((kind == Kind::IntPollSkip, slot, a.0, b.0))
            .or_insert(SkipGroup {
                count: 0,
                ops,
                values: [a.1, b.1],
            });
        g.count += 1;
        if (ops, a.1) < (g.ops, g.values[0]) {
            g.ops = ops;
            g.values = [a.1, b.1];
        }
    }
}

/// Compares two consecutive sends of one key by one process: `kind` is
/// `NonmonotonicSend` across ops, `IntNonmonotonicSend` within one.
#[allow(clippy::too_many_arguments)]
#[inline]
fn compare_sends(
    found: &mut Found,
    deferred: &mut Vec<Deferred>,
    kind: Kind,
    key: Key,
    slot: u32,
    ops: [u32; 2],
    a: (Offset, Val),
    b: (Offset, Val),
) {
    let known = a.0 != NO_OFF && b.0 != NO_OFF;
    if known && b.0 <= a.0 {
        let mut w = Witness::new(kind, key);
        w.ops = ops;
        w.offsets = [Some(a.0), Some(b.0)];
        w.values = [Some(a.1), Some(b.1)];
        found.push(w);
    } else if !known || (kind == Kind::IntNonmonotonicSend && b.0 > a.0 + 1) {
        deferred.push(Deferred {
            kind,
            slot,
            ops,
            a,
            b,
        });
    }
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

/// [`Latency::of`] over compact latencies: the same nearest ranks.
fn latency(d: &mut Latencies) -> Option<Latency> {
    let n = d.len();
    if n == 0 {
        return None;
    }
    let rank = |p: f64| Latency::rank(p, n);
    let mut ranks = [rank(0.5), rank(0.9), rank(0.99), rank(0.999), n];
    ranks.sort_unstable();
    let vals = d.at_ranks(&ranks);
    let at = |r: usize| {
        let i = ranks.iter().position(|&x| x == r).unwrap_or(0);
        vals.get(i).copied().unwrap_or(0) as f64 / 1e6
    };
    Some(Latency {
        count: n as u64,
        p50: at(rank(0.5)),
        p90: at(rank(0.9)),
        p99: at(rank(0.99)),
        p999: at(rank(0.999)),
        max: at(n),
    })
}
