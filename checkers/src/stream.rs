//! Checking a soak-sized history in bounded memory: one streaming pass.
//!
//! [`check_file`] reads a history file one event at a time (the same reader
//! and validation as [`gregor_history::History::read`]) and never holds the
//! events: the queue analysis ([`crate::queue::QueueStream`]) keeps, per
//! key, its version order and realtime-lag staircase; per observed value, a
//! packed record of how its send ended and where and whether it was read;
//! per process, its last read and send positions and its outstanding
//! invocation. Everything that needs "later" knowledge (lost writes need
//! the highest offset read per key at the end, unseen writes the final
//! reads, skips the final version order) is decided at the end from that
//! state, not from the events. The committed-offset check keeps only the
//! `commit` and `committed` operations (a handful per run).
//!
//! The result equals [`crate::check`]'s for the same file — anomaly types,
//! counts, examples, validity and statistics (both run one analyzer) —
//! except that the
//! transactional cycle search is not run (see below) and
//! `stats.unchecked` says so. A property test over generated histories
//! (`tests/stream.rs`) holds the two paths to it.
//!
//! Examples name operations by history index and process: the kept
//! witnesses are rendered after a second, partial read of the file that
//! stops at the last operation they name — only when something was found.
//!
//! ## Transactional cycles
//!
//! Elle's cycle search needs the whole dependency graph: every `ok` (and
//! proven crashed) `send`, `poll` and `txn` is a vertex, with its wr, ww,
//! process and realtime edges, and the search walks strongly connected
//! components over all of them. That is memory per operation, not per key,
//! so a streaming check leaves it out and lists `"cycles"` in
//! `stats.unchecked`; `gregor check` without `--stream` runs it. What it
//! costs, measured by `cargo bench -p gregor-checkers --bench check` with
//! `GREGOR_BENCH_TXN_GRAPH=1` (the exact graph always built); on a 1M
//! history without transactions the quick acyclicity proof holds it to
//! 9 B/event, on top of the ~216 B/event of the events it needs.
//!
//! ## Memory and speed (`cargo bench -p gregor-checkers --bench stream`)
//!
//! On a generated 100M-event history (13.5 GB, 23.8M acknowledged values,
//! 2 busy shared cores): 303 s, 0.33 M events/s (a bare serde parse of the
//! file took 322 s), peak RSS 1.42 GB = 14.2 B per event = 59.6 B per
//! acknowledged value. The in-memory check of a 1M-event history holds
//! 266 B per event. More in the README and `NOTES-stream.md`.

use std::collections::HashMap;
use std::path::Path;

use gregor_history::ops::Pairing;
use gregor_history::{Event, EventType, History, HistoryError, Mop, Process, F};

use crate::queue::{OpRef, QueueStream};
use crate::{assemble, linear, CheckOpts, CheckResult};

/// The result of a streaming check and what the reader noticed.
#[derive(Debug)]
pub struct Streamed {
    pub result: CheckResult,
    /// The warning about an incomplete last line, if any.
    pub truncated_tail: Option<String>,
    /// Whether the history holds `txn` operations (whose cycles this check
    /// did not search).
    pub has_txns: bool,
}

/// Checks a history file in one streaming pass; see the module docs.
pub fn check_file(path: &Path, opts: &CheckOpts) -> Result<Streamed, HistoryError> {
    let mut c = StreamChecker::new();
    let truncated_tail = History::stream(path, &mut |e| {
        c.push(e);
        true
    })?;
    let (finished, commits, has_txns) = c.parts();
    let wanted = finished.wanted_ops();
    let mut ops: HashMap<u32, OpRef> = HashMap::new();
    if let Some(&last) = wanted.last() {
        let mut pos: u32 = 0;
        History::stream(path, &mut |e| {
            if wanted.binary_search(&pos).is_ok() {
                ops.insert(pos, OpRef::of(&e));
            }
            pos += 1;
            pos <= last
        })?;
    }
    let q = finished.render(&ops);
    let empty = q.stats.events == 0;
    let others = linear::check_commits(&History::new(commits), opts);
    let mut result = assemble(q, others, empty, opts);
    result.stats.unchecked.push("cycles".to_string());
    // Availability per fault window pairs every operation: in-memory only.
    result.stats.unchecked.push("availability".to_string());
    Ok(Streamed {
        result,
        truncated_tail,
        has_txns,
    })
}

/// Feeds events to the streaming queue analysis and keeps the few events
/// the committed-offset check needs.
pub struct StreamChecker {
    queue: QueueStream,
    /// `commit` / `committed` invocations and their completions.
    commits: Vec<Event>,
    /// Outstanding invocations, and whether each was kept.
    commit_pending: Pairing<bool>,
    has_txns: bool,
}

impl Default for StreamChecker {
    fn default() -> Self {
        StreamChecker::new()
    }
}

impl StreamChecker {
    pub fn new() -> StreamChecker {
        StreamChecker {
            queue: QueueStream::new(),
            commits: Vec::new(),
            commit_pending: Pairing::new(),
            has_txns: false,
        }
    }

    /// Takes the next event (validated by the caller).
    pub fn push(&mut self, e: Event) {
        self.has_txns |= e.f == F::Txn;
        let at = self.queue.len() as usize;
        let keep_invoke = |e: &Event| {
            let offsets = e
                .mops()
                .iter()
                .any(|m| matches!(m, Mop::Commit { .. } | Mop::Committed { .. }));
            offsets || matches!(e.f, F::Commit | F::Committed)
        };
        let pair = self.commit_pending.push_with(at, &e, keep_invoke);
        let keep = match e.process {
            // An invoke: kept if it is about offsets.
            Process::Client(p) if e.kind == EventType::Invoke => {
                self.commit_pending.open_invoke(p).is_some_and(|i| i.data)
            }
            // A completion: kept with its invoke.
            _ => pair.is_some_and(|p| p.invoke.is_some_and(|i| i.data)),
        };
        if keep {
            self.commits.push(e.clone());
        }
        self.queue.push(e);
    }

    /// Events taken so far.
    pub fn len(&self) -> u64 {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn parts(self) -> (crate::queue::Finished, Vec<Event>, bool) {
        (self.queue.finish(), self.commits, self.has_txns)
    }
}
