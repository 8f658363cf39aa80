//! Anomaly witnesses: compact while the analysis runs, rendered to JSON with a
//! one-line explanation only for the few examples kept per type.

use std::collections::BinaryHeap;

use gregor_history::{EventType, Key, Offset, Val};

use crate::queue::Ops;
pub(crate) use crate::queue::Proof;
use serde_json::{json, Value as Json};

/// Examples kept per anomaly type; `count` is always the full count.
pub const MAX_EXAMPLES: usize = 8;

/// "No such op" in a witness's op slots.
pub const NO_OP: u32 = u32::MAX;

/// The anomaly types this module finds, in a fixed order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    InconsistentOffsets,
    Duplicate,
    LostWrite,
    Unseen,
    PollSkip,
    NonmonotonicPoll,
    IntPollSkip,
    IntNonmonotonicPoll,
    NonmonotonicSend,
    IntSendSkip,
    IntNonmonotonicSend,
    G1a,
    PrecommittedRead,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::InconsistentOffsets,
        Kind::Duplicate,
        Kind::LostWrite,
        Kind::Unseen,
        Kind::PollSkip,
        Kind::NonmonotonicPoll,
        Kind::IntPollSkip,
        Kind::IntNonmonotonicPoll,
        Kind::NonmonotonicSend,
        Kind::IntSendSkip,
        Kind::IntNonmonotonicSend,
        Kind::G1a,
        Kind::PrecommittedRead,
    ];

    /// Jepsen's name for the type.
    pub fn name(self) -> &'static str {
        match self {
            Kind::InconsistentOffsets => "inconsistent-offsets",
            Kind::Duplicate => "duplicate",
            Kind::LostWrite => "lost-write",
            Kind::Unseen => "unseen",
            Kind::PollSkip => "poll-skip",
            Kind::NonmonotonicPoll => "nonmonotonic-poll",
            Kind::IntPollSkip => "int-poll-skip",
            Kind::IntNonmonotonicPoll => "int-nonmonotonic-poll",
            Kind::NonmonotonicSend => "nonmonotonic-send",
            Kind::IntSendSkip => "int-send-skip",
            Kind::IntNonmonotonicSend => "int-nonmonotonic-send",
            Kind::G1a => "G1a",
            Kind::PrecommittedRead => "precommitted-read",
        }
    }
}

/// One anomaly, in a compact form. The meaning of the slots depends on the
/// kind; see [`Witness::render`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness {
    pub kind: Kind,
    /// Positions (in `History::events`) of the operations involved.
    pub ops: [u32; 2],
    pub key: Key,
    pub offsets: [Option<Offset>; 2],
    pub values: [Option<Val>; 2],
    /// Kind-specific number: skipped values, distinct offsets, etc.
    pub n: u64,
    /// Further offsets or values (inconsistent offsets, duplicate offsets,
    /// one skipped record), filled in for kept examples only.
    pub more: Vec<(Offset, Val)>,
    /// When the value at the heart of the anomaly was sent by a crashed
    /// (`info`) op: the read that proved the op happened.
    pub proof: Option<Proof>,
}

impl Witness {
    pub fn new(kind: Kind, key: Key) -> Witness {
        Witness {
            kind,
            ops: [NO_OP, NO_OP],
            key,
            offsets: [None, None],
            values: [None, None],
            n: 0,
            more: Vec::new(),
            proof: None,
        }
    }

    fn sort_key(&self) -> (u32, u32, Key, Offset, Val) {
        (
            self.ops[0],
            self.ops[1],
            self.key,
            self.offsets[0].unwrap_or(u64::MAX),
            self.values[0].unwrap_or(u64::MAX),
        )
    }

    /// The JSON example: `ops` (history indices), `process`, `key`,
    /// offsets/values, and a one-line `explanation`.
    pub fn render<O: Ops + ?Sized>(&self, events: &O) -> Json {
        let idx = |pos: u32| events.op(pos).map(|e| e.index);
        let op = |pos: u32| match idx(pos) {
            Some(i) => format!("op {i}"),
            None => "an unknown op".to_string(),
        };
        let proc_of = |pos: u32| events.op(pos).map(|e| e.process);
        let ops: Vec<u64> = self
            .ops
            .iter()
            .filter(|&&p| p != NO_OP)
            .filter_map(|&p| idx(p))
            .collect();
        let k = self.key;
        let o = |i: usize| {
            self.offsets[i].map_or("an unknown offset".to_string(), |o| format!("offset {o}"))
        };
        let v = |i: usize| self.values[i].map_or("?".to_string(), |v| v.to_string());
        let process = proc_of(self.ops[0]);
        let p = process.map_or_else(|| "?".into(), |p| p.to_string());
        let first_skipped = self.more.first().map_or(String::new(), |(so, sv)| {
            format!(" (e.g. value {sv} at offset {so})")
        });
        let acked = if self.proof.is_some() {
            "it happened although its op crashed"
        } else {
            "it was acknowledged"
        };
        let explanation = match self.kind {
            Kind::InconsistentOffsets => {
                let vals: Vec<String> = self.more.iter().map(|(_, v)| v.to_string()).collect();
                format!(
                    "offset {} of key {k} holds different values {} in different observations (e.g. {} and {}); a partition offset must hold one record",
                    self.offsets[0].unwrap_or(0),
                    vals.join(", "),
                    op(self.ops[0]),
                    op(self.ops[1]),
                )
            }
            Kind::Duplicate => {
                let offs: Vec<String> = self.more.iter().map(|(o, _)| o.to_string()).collect();
                let sent = if self.ops[0] == NO_OP {
                    "its send is not in the history".to_string()
                } else {
                    format!("it was sent once, by {}", op(self.ops[0]))
                };
                let read = if self.ops[1] == NO_OP {
                    String::new()
                } else {
                    format!(" and first read by {}", op(self.ops[1]))
                };
                format!(
                    "value {} of key {k} is stored at {} offsets ({}); {sent}{read}, so the log holds a duplicate",
                    v(0),
                    self.n,
                    offs.join(", "),
                )
            }
            Kind::LostWrite => format!(
                "{} sent {} to key {k} at {} and {acked}; no poll returned it, though {} read {} (value {}) of key {k}",
                op(self.ops[0]),
                v(0),
                o(0),
                op(self.ops[1]),
                o(1),
                v(1),
            ),
            Kind::Unseen => match self.offsets[1] {
                Some(hi) => format!(
                    "{} sent {} to key {k} ({}) and {acked}, but no poll ever returned it; polls of key {k} only reached offset {hi}",
                    op(self.ops[0]),
                    v(0),
                    o(0),
                ),
                None => format!(
                    "{} sent {} to key {k} ({}) and {acked}, but no poll ever returned any record of key {k}",
                    op(self.ops[0]),
                    v(0),
                    o(0),
                ),
            },
            Kind::PollSkip => format!(
                "process {p} read key {k} up to {} (value {}) in {}, then its next read of key {k} in {} started at {} (value {}), skipping {} record(s){first_skipped}",
                o(0),
                v(0),
                op(self.ops[0]),
                op(self.ops[1]),
                o(1),
                v(1),
                self.n,
            ),
            Kind::NonmonotonicPoll => format!(
                "process {p} read key {k} up to {} (value {}) in {}, then its next read of key {k} in {} went back to {} (value {})",
                o(0),
                v(0),
                op(self.ops[0]),
                op(self.ops[1]),
                o(1),
                v(1),
            ),
            Kind::IntPollSkip => format!(
                "{} read key {k} at {} (value {}) and next at {} (value {}), skipping {} record(s){first_skipped} within one poll",
                op(self.ops[0]),
                o(0),
                v(0),
                o(1),
                v(1),
                self.n,
            ),
            Kind::IntNonmonotonicPoll => format!(
                "{} read key {k} at {} (value {}) and then at {} (value {}) within one poll: the second read is not after the first",
                op(self.ops[0]),
                o(0),
                v(0),
                o(1),
                v(1),
            ),
            Kind::NonmonotonicSend => format!(
                "process {p} sent {} to key {k} which landed at {} ({}), then sent {} which landed at {} ({}): a later send got an earlier position",
                v(0),
                o(0),
                op(self.ops[0]),
                v(1),
                o(1),
                op(self.ops[1]),
            ),
            Kind::IntSendSkip => format!(
                "{} sent {} to key {k} at {} and then {} at {}, with {} other record(s){first_skipped} between them",
                op(self.ops[0]),
                v(0),
                o(0),
                v(1),
                o(1),
                self.n,
            ),
            Kind::IntNonmonotonicSend => format!(
                "{} sent {} to key {k} (landed at {}) and then {} (landed at {}): within one operation the later send got an earlier position",
                op(self.ops[0]),
                v(0),
                o(0),
                v(1),
                o(1),
            ),
            Kind::G1a => format!(
                "{} read {} from key {k} at {}, but the send of {} ({}) failed: an aborted write was visible",
                op(self.ops[1]),
                v(0),
                o(0),
                v(0),
                op(self.ops[0]),
            ),
            Kind::PrecommittedRead => format!(
                "transaction {} sent {} to key {k} and then polled it back ({}) before committing: its own uncommitted write was visible",
                op(self.ops[0]),
                v(0),
                o(0),
            ),
        };
        let mut m = serde_json::Map::new();
        m.insert("ops".into(), json!(ops));
        // The process of the first op: the reader or sender that misbehaved,
        // or the writer of a lost, unseen, duplicated or aborted value.
        if let Some(pr) = process {
            // As in the history: an integer, or "nemesis".
            m.insert("process".into(), json!(pr));
        }
        m.insert("key".into(), json!(k));
        match self.kind {
            Kind::InconsistentOffsets => {
                m.insert("offset".into(), json!(self.offsets[0]));
                m.insert(
                    "values".into(),
                    json!(self.more.iter().map(|x| x.1).collect::<Vec<_>>()),
                );
            }
            Kind::Duplicate => {
                m.insert("value".into(), json!(self.values[0]));
                m.insert(
                    "offsets".into(),
                    json!(self.more.iter().map(|x| x.0).collect::<Vec<_>>()),
                );
                m.insert("count".into(), json!(self.n));
            }
            Kind::LostWrite => {
                m.insert("value".into(), json!(self.values[0]));
                m.insert("offset".into(), json!(self.offsets[0]));
                m.insert("max-read-offset".into(), json!(self.offsets[1]));
                m.insert("max-read-value".into(), json!(self.values[1]));
            }
            Kind::Unseen => {
                m.insert("value".into(), json!(self.values[0]));
                m.insert("offset".into(), json!(self.offsets[0]));
                m.insert("max-read-offset".into(), json!(self.offsets[1]));
            }
            Kind::G1a | Kind::PrecommittedRead => {
                m.insert("value".into(), json!(self.values[0]));
                m.insert("offset".into(), json!(self.offsets[0]));
            }
            _ => {
                m.insert("offsets".into(), json!(self.offsets));
                m.insert("values".into(), json!(self.values));
                if matches!(
                    self.kind,
                    Kind::PollSkip | Kind::IntPollSkip | Kind::IntSendSkip
                ) {
                    m.insert("skipped".into(), json!(self.n));
                    if let Some((so, sv)) = self.more.first() {
                        m.insert("first-skipped".into(), json!([so, sv]));
                    }
                }
            }
        }
        let mut explanation = explanation;
        // Crashed ops whose effects count: what proved a crashed send, and
        // which polls crashed after returning what they read.
        let mut crashed: Vec<u64> = Vec::new();
        if let Some(pr) = &self.proof {
            if let (Some(c), Some(r)) = (idx(pr.crashed), idx(pr.reader)) {
                crashed.push(c);
                m.insert(
                    "proved-by".into(),
                    json!({"crashed-op": c, "read-op": r, "key": pr.key, "value": pr.value}),
                );
                explanation.push_str(&format!(
                    "; op {c} crashed (info), but op {r} read value {} of key {} that it sent, so it happened",
                    pr.value, pr.key
                ));
            }
        }
        for &pos in &self.ops {
            let Some(e) = events.op(pos) else {
                continue;
            };
            if e.kind == EventType::Info && !crashed.contains(&e.index) {
                crashed.push(e.index);
                if e.has_mops && self.proof.is_none_or(|pr| pr.crashed != pos) {
                    explanation.push_str(&format!(
                        "; op {} crashed (info) after it returned what it reported, which counts",
                        e.index
                    ));
                }
            }
        }
        if !crashed.is_empty() {
            m.insert("crashed-ops".into(), json!(crashed));
        }
        m.insert("explanation".into(), json!(explanation));
        Json::Object(m)
    }
}

/// Ordering by sort key only, so a heap can keep the earliest examples.
struct ByKey(Witness);
impl PartialEq for ByKey {
    fn eq(&self, o: &Self) -> bool {
        self.0.sort_key() == o.0.sort_key()
    }
}
impl Eq for ByKey {}
impl PartialOrd for ByKey {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for ByKey {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.sort_key().cmp(&o.0.sort_key())
    }
}

/// All anomalies of one kind: the full count and the earliest few witnesses
/// (by history position), whatever order they were found in.
#[derive(Default)]
pub struct Capped {
    pub count: u64,
    heap: BinaryHeap<ByKey>,
}

impl Capped {
    pub fn push(&mut self, w: Witness) {
        self.push_counted(w, 1);
    }

    /// `n` anomalies, of which `w` is the earliest.
    pub fn push_counted(&mut self, w: Witness, n: u64) {
        self.count += n;
        if self.heap.len() < MAX_EXAMPLES {
            self.heap.push(ByKey(w));
        } else if let Some(top) = self.heap.peek() {
            if w.sort_key() < top.0.sort_key() {
                self.heap.pop();
                self.heap.push(ByKey(w));
            }
        }
    }

    /// The kept witnesses, earliest first.
    pub fn into_sorted(self) -> Vec<Witness> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|b| b.0)
            .collect()
    }
}

/// One [`Capped`] per [`Kind`].
pub struct Found {
    groups: Vec<Capped>,
}

impl Default for Found {
    fn default() -> Self {
        Found {
            groups: Kind::ALL.iter().map(|_| Capped::default()).collect(),
        }
    }
}

impl Found {
    pub fn push(&mut self, w: Witness) {
        self.groups[w.kind as usize].push(w);
    }

    /// `n` anomalies of `w`'s kind, of which `w` is the earliest.
    pub fn push_counted(&mut self, w: Witness, n: u64) {
        self.groups[w.kind as usize].push_counted(w, n);
    }

    /// `(kind, count, earliest witnesses)` for every kind found at least once.
    pub fn into_groups(self) -> Vec<(Kind, u64, Vec<Witness>)> {
        Kind::ALL
            .iter()
            .zip(self.groups)
            .filter(|(_, g)| g.count > 0)
            .map(|(k, g)| (*k, g.count, g.into_sorted()))
            .collect()
    }
}
