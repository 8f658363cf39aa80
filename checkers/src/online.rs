//! Online checking: events are fed one by one as a run records them.
//!
//! [`OnlineChecker`] validates each event ([`gregor_history::Validator`]),
//! keeps it, and runs *live detectors* for the anomaly types that a prefix
//! of the history can already prove — whatever comes later cannot undo
//! them:
//!
//! - `inconsistent-offsets`: two values observed at one offset of a key
//!   (acknowledged sends and polls);
//! - `duplicate`: one value observed at two offsets;
//! - `G1a`: an `ok` read of a value whose send failed;
//! - `precommitted-read`: a transaction polled back its own send;
//! - `int-nonmonotonic-poll`: within one (`ok` or crashed) poll, a key's
//!   read did not move forward.
//!
//! Every live detection is also found by the offline check of the whole
//! history, so live counts never exceed the final ones and a live finding of
//! a type [`crate::is_allowed`] rejects means the final verdict is `false`
//! — which is what `--fail-fast` acts on. The other types (lost and unseen
//! writes, skips, orders, cycles) need the end of the history and are
//! decided by [`OnlineChecker::finish`], which runs the offline [`check`]
//! over the events it kept: the final verdict of an online check is the
//! offline verdict of the same history, by construction (and a property
//! test feeds generated histories through both).
//!
//! Memory: the events (as the offline check; not with
//! [`OnlineChecker::detectors_only`], what `gregor run` uses since it checks
//! its file at the end), plus a few map entries per observed `(key,
//! offset)` and `(key, value)`, and one invocation per process.

use std::collections::BTreeMap;

use gregor_history::ops::{Outcome, Pairing};
use gregor_history::{Event, EventType, History, Key, Malformed, Mop, Offset, Val, F};

use crate::hash::{FxHashMap, FxHashSet};
use crate::{check, is_allowed, CheckOpts, CheckResult};

/// Checks a history as it grows; see the module docs.
pub struct OnlineChecker {
    opts: CheckOpts,
    /// The events taken, unless [`OnlineChecker::detectors_only`].
    events: Vec<Event>,
    keep_events: bool,
    taken: usize,
    validator: gregor_history::Validator,
    /// Outstanding invocations, with their micro-ops.
    pending: Pairing<Vec<Mop>>,
    /// (key, offset) -> first value seen there, and whether a second one
    /// was already counted.
    at_offset: FxHashMap<(Key, Offset), (Val, bool)>,
    /// (key, value) -> first offset seen, and whether a second was counted.
    offset_of: FxHashMap<(Key, Val), (Offset, bool)>,
    /// (key, value) -> how its send ended (an `ok` send is never overridden).
    sent: FxHashMap<(Key, Val), Outcome>,
    /// Values some `ok` read returned.
    ok_read: FxHashSet<(Key, Val)>,
    /// Values already counted as `G1a`.
    g1a: FxHashSet<(Key, Val)>,
    counts: BTreeMap<&'static str, u64>,
    /// The first live finding of a type the options do not allow: (type,
    /// history index of the event that revealed it).
    first_bad: Option<(&'static str, u64)>,
}

impl OnlineChecker {
    pub fn new(opts: CheckOpts) -> OnlineChecker {
        OnlineChecker {
            opts,
            events: Vec::new(),
            keep_events: true,
            taken: 0,
            validator: gregor_history::Validator::new(),
            pending: Pairing::new(),
            at_offset: FxHashMap::default(),
            offset_of: FxHashMap::default(),
            sent: FxHashMap::default(),
            ok_read: FxHashSet::default(),
            g1a: FxHashSet::default(),
            counts: BTreeMap::new(),
            first_bad: None,
        }
    }

    /// Live detectors only: the events are not kept (a run checks its
    /// history file at the end anyway), so memory grows with the values
    /// and offsets observed, not with the events; [`OnlineChecker::finish`]
    /// and [`OnlineChecker::check_now`] then see no events.
    pub fn detectors_only(opts: CheckOpts) -> OnlineChecker {
        OnlineChecker {
            keep_events: false,
            ..OnlineChecker::new(opts)
        }
    }

    /// Takes the next event. Returns the types this event revealed that
    /// make the verdict `false` (empty if none), or why the event cannot
    /// follow the ones before it (the history is malformed: exit 3).
    pub fn push(&mut self, e: Event) -> Result<Vec<&'static str>, Malformed> {
        self.validator.push(&e)?;
        let at = self.taken;
        self.taken += 1;
        let mut found: Vec<&'static str> = Vec::new();
        let paired = self.pending.push_with(at, &e, |e| e.mops().to_vec());
        if let Some(pair) = paired.filter(|p| p.completed()) {
            if matches!(e.f, F::Send | F::Poll | F::Txn) {
                self.completion(&e, pair.invoke.map(|i| i.data), &mut found);
            }
        }
        let index = e.index;
        if self.keep_events {
            self.events.push(e);
        }
        let mut bad = Vec::new();
        for kind in found {
            *self.counts.entry(kind).or_default() += 1;
            if !is_allowed(kind, &self.opts) {
                if self.first_bad.is_none() {
                    self.first_bad = Some((kind, index));
                }
                if !bad.contains(&kind) {
                    bad.push(kind);
                }
            }
        }
        Ok(bad)
    }

    fn completion(&mut self, e: &Event, inv: Option<Vec<Mop>>, found: &mut Vec<&'static str>) {
        let own = e.mops();
        // A completion without micro-ops (fail, info) means its invocation's.
        let mops: &[Mop] = match &inv {
            Some(m) if own.is_empty() => m,
            _ => own,
        };
        let ok = e.kind == EventType::Ok;
        let reads_count = ok || e.kind == EventType::Info;
        let status = match e.kind {
            EventType::Ok => Outcome::Ok,
            EventType::Info => Outcome::Info,
            _ => Outcome::Fail,
        };
        let is_txn = e.f == F::Txn;
        let rebalanced = rebalanced_keys(e);
        let mut own_sends: Vec<(Key, Val)> = Vec::new();
        // Key -> last offset read within this op.
        let mut last: Vec<(Key, Offset)> = Vec::new();
        for m in mops {
            match m {
                Mop::Send { key, value, offset } => {
                    let kv = (*key, *value);
                    if is_txn {
                        own_sends.push(kv);
                    }
                    let s = self.sent.entry(kv).or_insert(status);
                    if *s != Outcome::Ok {
                        *s = status;
                    }
                    if ok {
                        if let Some(o) = offset {
                            self.observe(*key, *o, *value, found);
                        }
                    }
                    if status == Outcome::Fail && self.ok_read.contains(&kv) && self.g1a.insert(kv)
                    {
                        found.push("G1a");
                    }
                }
                Mop::Poll { reads: Some(reads) } => {
                    for (k, pairs) in reads {
                        for &(_, v) in pairs {
                            if is_txn && own_sends.contains(&(*k, v)) {
                                found.push("precommitted-read");
                            }
                        }
                        if pairs.is_empty() {
                            continue;
                        }
                        let exempt = rebalanced.contains(k);
                        let at = last.iter().position(|x| x.0 == *k);
                        let mut prev = at.map(|i| last[i].1);
                        for &(o, v) in pairs {
                            self.observe(*k, o, v, found);
                            if ok {
                                let kv = (*k, v);
                                if self.ok_read.insert(kv)
                                    && self.sent.get(&kv) == Some(&Outcome::Fail)
                                    && self.g1a.insert(kv)
                                {
                                    found.push("G1a");
                                }
                            }
                            if reads_count {
                                if let Some(a) = prev.filter(|_| !exempt) {
                                    if o <= a {
                                        found.push("int-nonmonotonic-poll");
                                    }
                                }
                                prev = Some(o);
                            }
                        }
                        if let Some(&(lo, _)) = pairs.last() {
                            match at {
                                Some(i) => last[i].1 = lo,
                                None => last.push((*k, lo)),
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Value `v` observed at offset `o` of key `k`.
    fn observe(&mut self, k: Key, o: Offset, v: Val, found: &mut Vec<&'static str>) {
        let slot = self.at_offset.entry((k, o)).or_insert((v, false));
        if slot.0 != v && !slot.1 {
            slot.1 = true;
            found.push("inconsistent-offsets");
        }
        let slot = self.offset_of.entry((k, v)).or_insert((o, false));
        if slot.0 != o && !slot.1 {
            slot.1 = true;
            found.push("duplicate");
        }
    }

    /// Live counts per anomaly type (only the types listed in the module
    /// docs; each at most the final count).
    pub fn counts(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts
    }

    /// The first live finding that makes the verdict `false`: its type and
    /// the history index of the event that revealed it.
    pub fn first_bad(&self) -> Option<(&'static str, u64)> {
        self.first_bad
    }

    /// Events taken so far (kept or not).
    pub fn len(&self) -> usize {
        self.taken
    }

    pub fn is_empty(&self) -> bool {
        self.taken == 0
    }

    /// The live counts on one line, e.g. `G1a 1, duplicate 2` (empty if
    /// none), for progress lines.
    pub fn summary(&self) -> String {
        summarize(&self.counts)
    }

    /// The full offline check of everything taken so far.
    pub fn check_now(&self) -> CheckResult {
        check(&History::new(self.events.clone()), &self.opts)
    }

    /// Ends the online check: the offline [`check`] of the whole history.
    pub fn finish(self) -> CheckResult {
        check(&History::new(self.events), &self.opts)
    }

    /// The events taken so far.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Ends the online check without checking: the events taken, e.g. to
    /// check them with options learned only at the end (a run records how
    /// its final reads ended last).
    pub fn into_events(self) -> Vec<Event> {
        self.events
    }
}

fn rebalanced_keys(e: &Event) -> Vec<Key> {
    let mut out = Vec::new();
    if let Some(serde_json::Value::Array(log)) = e.extra("rebalance-log") {
        for entry in log {
            if let Some(keys) = entry.get("keys").and_then(|k| k.as_array()) {
                out.extend(keys.iter().filter_map(|k| k.as_u64()));
            }
        }
    }
    out
}

/// What one [`Follower::poll`] read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Events taken.
    pub events: usize,
    /// Types found live that make the verdict `false`.
    pub bad: Vec<&'static str>,
}

/// Follows a growing JSONL history file (`gregor check --follow`): each
/// [`Follower::poll`] takes the complete lines appended since the last one
/// into an [`OnlineChecker`]. A line that does not parse or breaks the
/// history's rules is an error naming the file and line, as for a whole
/// file.
pub struct Follower {
    path: std::path::PathBuf,
    file: std::fs::File,
    /// Bytes read but not yet taken: an incomplete last line, or (after a
    /// fail-fast stop) the lines after the bad event.
    buf: Vec<u8>,
    lineno: usize,
    checker: OnlineChecker,
}

impl Follower {
    pub fn open(
        path: &std::path::Path,
        opts: CheckOpts,
    ) -> Result<Follower, gregor_history::HistoryError> {
        let file =
            std::fs::File::open(path).map_err(|source| gregor_history::HistoryError::Io {
                path: path.into(),
                source,
            })?;
        Ok(Follower {
            path: path.into(),
            file,
            buf: Vec::new(),
            lineno: 0,
            checker: OnlineChecker::new(opts),
        })
    }

    /// Takes the complete lines appended since the last call. With
    /// `stop_at_bad`, stops right after the first event that reveals a bad
    /// type (the rest stays unread).
    pub fn poll(&mut self, stop_at_bad: bool) -> Result<Step, gregor_history::HistoryError> {
        use std::io::Read;
        let mut chunk = [0u8; 1 << 16];
        loop {
            let n =
                self.file
                    .read(&mut chunk)
                    .map_err(|source| gregor_history::HistoryError::Io {
                        path: self.path.clone(),
                        source,
                    })?;
            if n == 0 {
                break;
            }
            self.buf.extend_from_slice(&chunk[..n]);
            if self.buf.len() > 1 << 22 {
                break;
            }
        }
        let mut step = Step::default();
        let mut at = 0;
        while let Some(nl) = self.buf[at..].iter().position(|&b| b == b'\n') {
            let raw = &self.buf[at..at + nl];
            at += nl + 1;
            self.lineno += 1;
            let bad_line = |message: String| gregor_history::HistoryError::Parse {
                path: self.path.clone(),
                line: self.lineno,
                message,
            };
            let text = std::str::from_utf8(raw)
                .map_err(|_| bad_line("not valid UTF-8".into()))?
                .trim();
            if text.is_empty() {
                continue;
            }
            let e = Event::from_json(text).map_err(|e| bad_line(e.to_string()))?;
            let bad = self.checker.push(e).map_err(|m| bad_line(m.to_string()))?;
            step.events += 1;
            let stop = stop_at_bad && !bad.is_empty();
            step.bad.extend(bad);
            if stop {
                break;
            }
        }
        self.buf.drain(..at);
        Ok(step)
    }

    pub fn checker(&self) -> &OnlineChecker {
        &self.checker
    }

    /// Ends following: the checker, and a warning if the file ends in an
    /// incomplete line (ignored, as the whole-file reader does).
    pub fn finish(self) -> (OnlineChecker, Option<String>) {
        // After a fail-fast stop, complete lines may remain: not a tail.
        let from = self
            .buf
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let tail = self.buf[from..]
            .iter()
            .any(|b| !b.is_ascii_whitespace())
            .then(|| {
                format!(
                    "{}:{}: last line is incomplete and was ignored",
                    self.path.display(),
                    self.lineno + self.buf[..from].iter().filter(|&&b| b == b'\n').count() + 1
                )
            });
        (self.checker, tail)
    }
}

/// What a [`Live`] check has seen so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveStatus {
    pub events: usize,
    /// Live count per anomaly type (see the module docs).
    pub counts: BTreeMap<&'static str, u64>,
    /// The first live finding that makes the verdict `false`: (type,
    /// history index).
    pub first_bad: Option<(&'static str, u64)>,
    /// The history broke its rules at this event (a recorder bug): live
    /// checking stopped; the final check will report the error.
    pub malformed: Option<String>,
}

impl LiveStatus {
    /// `G1a 1, duplicate 2`, or empty.
    pub fn summary(&self) -> String {
        summarize(&self.counts)
    }
}

/// Counts per anomaly type on one line: `G1a 1, duplicate 2`, or empty.
fn summarize(counts: &BTreeMap<&'static str, u64>) -> String {
    counts
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An online check on its own thread, fed by a channel of events (e.g.
/// `Recorder::tap` during `gregor run`); [`Live::status`] is cheap to poll
/// from a progress line, a metrics endpoint or a fail-fast watcher.
pub struct Live {
    status: std::sync::Arc<std::sync::Mutex<LiveStatus>>,
    thread: std::thread::JoinHandle<OnlineChecker>,
}

impl Live {
    /// Starts checking the events `rx` delivers, until every sender is
    /// gone, keeping them for [`OnlineChecker::finish`].
    pub fn spawn(rx: std::sync::mpsc::Receiver<Event>, opts: CheckOpts) -> Live {
        Self::spawn_checker(rx, OnlineChecker::new(opts))
    }

    /// Like [`Live::spawn`] with [`OnlineChecker::detectors_only`]: what
    /// `gregor run` wants (it checks its history file at the end), so a
    /// soak does not hold its history twice.
    pub fn spawn_detectors(rx: std::sync::mpsc::Receiver<Event>, opts: CheckOpts) -> Live {
        Self::spawn_checker(rx, OnlineChecker::detectors_only(opts))
    }

    fn spawn_checker(rx: std::sync::mpsc::Receiver<Event>, checker: OnlineChecker) -> Live {
        let status = std::sync::Arc::new(std::sync::Mutex::new(LiveStatus::default()));
        let shared = status.clone();
        let thread = std::thread::spawn(move || {
            let mut c = checker;
            let mut broken = false;
            for e in rx {
                if broken {
                    continue;
                }
                let index = e.index;
                let r = c.push(e);
                let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
                match r {
                    Ok(_) => {
                        s.events = c.len();
                        if s.counts != *c.counts() {
                            s.counts = c.counts().clone();
                        }
                        s.first_bad = c.first_bad();
                    }
                    Err(m) => {
                        s.malformed = Some(format!("event {index}: {m}"));
                        broken = true;
                    }
                }
            }
            c
        });
        Live { status, thread }
    }

    /// A snapshot of what was found so far.
    pub fn status(&self) -> LiveStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits for the channel to close (drop the recorder, or its tap's
    /// sender side) and returns the checker, e.g. for
    /// [`OnlineChecker::finish`].
    pub fn join(self) -> OnlineChecker {
        self.thread
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }
}
