//! gregor's checkers: pure analyses of a history.
//!
//! [`check`] runs every analysis over a [`History`] and folds what they find
//! into one [`CheckResult`] — the `gregor check --json` object:
//!
//! - the queue analysis ([`queue`]): Jepsen's `jepsen.tests.kafka` checks —
//!   version orders, `inconsistent-offsets`, `duplicate`, `lost-write`,
//!   `unseen`, `poll-skip`, `nonmonotonic-poll`, `nonmonotonic-send` and their
//!   `int-` variants, `G1a`, `precommitted-read` — plus the [`Stats`];
//! - transactional cycles ([`txn`]) and committed-offset linearizability
//!   ([`linear`]).
//!
//! [`stream::check_file`] checks a history file in one streaming pass, in
//! memory that grows with keys and values, not events (soak-sized
//! histories; `gregor check --stream`): the same queue and committed-offset
//! results, without the transactional cycle search.
//!
//! [`online::OnlineChecker`] checks a history while it is recorded: live
//! counts of what a prefix already proves, `--fail-fast`, and a final
//! verdict equal to [`check`]'s.
//!
//! Every anomaly type is reported with its full count and a few minimal
//! witnesses (history indices, process, key, offsets, values and a one-line
//! explanation). Types the Kafka model allows (see [`is_allowed`]) are
//! reported but do not make the history invalid.

pub mod availability;
mod compact;
mod dense;
pub mod edn;
mod hash;
pub mod linear;
pub mod nemesis;
pub mod online;
pub mod queue;
pub mod stream;
pub mod timeline;
pub mod txn;
mod witness;

pub use witness::MAX_EXAMPLES;

use std::collections::BTreeMap;

use gregor_history::{History, Key, Offset, RunMeta, SubVia};
use serde::{Deserialize, Serialize};

/// Options that change what counts as an anomaly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckOpts {
    /// Consumers used `subscribe`: `poll-skip` and `nonmonotonic-poll` allowed.
    pub subscribe: bool,
    /// Infer write-write dependencies from offset order (`G1c*` allowed).
    pub ww_deps: bool,
    /// Final reads did not reach the end of every key (skipped after a
    /// second signal, cut off by their time limit, or failed), or never
    /// happened (the run directory's `meta.json` has no `final-reads`
    /// record: gregor was killed before them): an `unseen`
    /// write may be slow rather than lost, so `unseen` alone makes the
    /// verdict `unknown` instead of `false`.
    pub final_reads_incomplete: bool,
    /// Producers used `acks=0`: an `ok` send only means it was handed to
    /// the client, so `lost-write` and `unseen` are reported but allowed.
    pub acks_zero: bool,
    /// The brokers' metadata sampled during the run (`cluster-samples.jsonl`),
    /// for leader-election times per fault window; empty when not sampled.
    pub cluster_samples: Vec<gregor_history::ClusterSample>,
}

impl CheckOpts {
    pub fn from_meta(m: &RunMeta) -> CheckOpts {
        CheckOpts {
            subscribe: m.client.sub_via == SubVia::Subscribe,
            ww_deps: m.ww_deps,
            // No record at all: the run was cut short (gregor killed)
            // before its final reads, which it records when they end.
            final_reads_incomplete: m
                .extra
                .get("final-reads")
                .and_then(|v| v.as_str())
                .is_none_or(|v| !matches!(v, "complete" | "none needed")),
            acks_zero: m.client.acks == gregor_history::Acks::Zero,
            cluster_samples: Vec::new(),
        }
    }
}

/// `true`, `false` or `"unknown"` in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    True,
    False,
    Unknown,
}

impl Validity {
    /// The exit code of the `gregor check` contract: 0, 1 or 2.
    pub fn exit_code(self) -> i32 {
        match self {
            Validity::True => 0,
            Validity::False => 1,
            Validity::Unknown => 2,
        }
    }
}

impl Serialize for Validity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Validity::True => s.serialize_bool(true),
            Validity::False => s.serialize_bool(false),
            Validity::Unknown => s.serialize_str("unknown"),
        }
    }
}

impl<'de> Deserialize<'de> for Validity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(true) => Ok(Validity::True),
            serde_json::Value::Bool(false) => Ok(Validity::False),
            serde_json::Value::String(s) if s == "unknown" => Ok(Validity::Unknown),
            other => Err(serde::de::Error::custom(format!("bad validity {other}"))),
        }
    }
}

/// All anomalies of one type: how many, and a few minimal witnesses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnomalyGroup {
    pub count: u64,
    /// Each example ([`gregor_history::Example`]) has an explanation (one
    /// line a person can act on), the history indices of its ops, its key
    /// or keys and, for cycles, steps naming theirs; the rest is in its
    /// `detail`. Queue examples
    /// that involve crashed (`info`) ops list them in `"crashed-ops"`; when
    /// the value at the heart of the anomaly was sent by a crashed op,
    /// `"proved-by": {"crashed-op", "read-op", "key", "value"}` names the
    /// `ok` read that proved the op happened.
    pub examples: Vec<gregor_history::Example>,
}

/// Latency quantiles of one operation kind, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    #[serde(default)]
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    /// The 1-based nearest rank of quantile `p` among `n` values: the one
    /// quantile definition of results.
    pub fn rank(p: f64, n: usize) -> usize {
        ((p * n as f64).ceil() as usize).clamp(1, n.max(1))
    }

    /// Nearest-rank quantiles of durations in nanoseconds, reported in ms
    /// (`None` for no durations). The one latency statistic of results.
    pub fn of(d: &mut [u64]) -> Option<Latency> {
        if d.is_empty() {
            return None;
        }
        d.sort_unstable();
        let q = |p: f64| d[Latency::rank(p, d.len()) - 1] as f64 / 1e6;
        Some(Latency {
            count: d.len() as u64,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: d[d.len() - 1] as f64 / 1e6,
        })
    }
}

/// Numbers users act on.
///
/// `acknowledged` counts acknowledged sends (send micro-ops in `ok` send or
/// txn operations). `lost` and `unseen` split the acknowledged (or proven,
/// see `info_proven`) sends no poll ever returned: `lost` when a later offset of the key was read (the
/// `lost-write` anomaly), `unseen` otherwise. `duplicated` counts values
/// stored at more than one offset. Rates are relative to `acknowledged`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Stats {
    /// f -> type -> count, e.g. `{"send": {"ok": 10, "info": 1}}`.
    pub ops: BTreeMap<String, BTreeMap<String, u64>>,
    pub acknowledged: u64,
    /// Send micro-ops of crashed (`info`) ops that a read proved happened
    /// (Jepsen's rule: an `ok` read returned a value the op sent). They are
    /// held to the same promises as acknowledged sends: `lost` and `unseen`
    /// include them, and rates are relative to `acknowledged + info-proven`.
    pub info_proven: u64,
    pub lost: u64,
    pub unseen: u64,
    pub duplicated: u64,
    pub lost_rate: f64,
    pub unseen_rate: f64,
    pub duplicated_rate: f64,
    /// Key -> highest offset observed.
    pub key_end_offsets: BTreeMap<Key, Offset>,
    /// Worst realtime lag, in ms: how long, at least, a poll's view of a key
    /// was stale when the poll began.
    ///
    /// Precisely (Jepsen's definition): for an `ok` poll (or txn with a poll)
    /// `P` by process `p` invoked at time `t`, and each key `k` that `p`
    /// holds (assigned, or read since its last `subscribe`), let `o` be the
    /// highest offset of `k` that `p` has read so far, `P` included (−1 if
    /// none), and let `T` be the completion time of the earliest `ok`
    /// operation that proved some offset `> o` of `k` existed (an
    /// acknowledged send at that offset, or a poll that returned it). The lag
    /// of `(P, k)` is `max(0, t − T)`: a record newer than anything `p` had
    /// read was acknowledged at least that long before `P` began, and `P`
    /// still did not return it. `None` when no poll completed.
    ///
    /// Jepsen counts every `(P, k)`; gregor leaves out those where `p` is
    /// still catching up on `k` (its next offset below what was known to
    /// exist when it began to hold `k`): they are `worst-catchup-lag-ms`,
    /// so a client that restarts from offset 0 after a crash is not read
    /// as minutes of lag of the cluster. `final` reads count in neither.
    pub worst_realtime_lag_ms: Option<f64>,
    /// Key of the worst realtime lag.
    pub worst_realtime_lag_key: Option<Key>,
    /// History index of the poll that showed the worst realtime lag.
    pub worst_realtime_lag_op: Option<u64>,
    /// Key -> worst realtime lag (ms) of polls by processes holding it
    /// (same definition as `worst_realtime_lag_ms`, per key).
    pub realtime_lag_by_key_ms: BTreeMap<Key, f64>,
    /// Worst catch-up lag, in ms: the realtime lag of a poll by a process
    /// still reading records of a key that already existed when it began
    /// to hold the key (a client renumbered after a crash that re-reads
    /// from the start, a partition a rebalance moved to it). Left out of
    /// `worst-realtime-lag-ms`, which is the cluster's lag: how long a
    /// caught-up consumer waited for new records. `None` when no poll was
    /// catching up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_catchup_lag_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_catchup_lag_key: Option<Key>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_catchup_lag_op: Option<u64>,
    /// The run over time: realtime and catch-up lag, unseen writes and
    /// completions per time bucket ([`timeline`]); what the reports plot.
    pub timeline: timeline::Timeline,
    /// f -> latency of its `ok` completions (invocation to completion).
    pub latency: BTreeMap<String, Latency>,
    pub events: u64,
    /// `ok` polls (and txns containing a poll).
    pub completed_polls: u64,
    /// Distinct `(key, value)` pairs some poll returned.
    pub read_values: u64,
    /// Consume counts under `subscribe`: for polls by subscribed processes,
    /// times one process consumed one `(key, value)` -> how many such pairs.
    /// With exactly-once consumption every pair is consumed once.
    pub subscribe_consume_counts: BTreeMap<u64, u64>,
    /// `(process, key, value)` pairs a subscribed process consumed more than
    /// once.
    pub subscribe_reconsumed: u64,
    /// Availability and recovery per fault window, and latency inside and
    /// outside fault windows ([`availability`]); absent without faults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability: Option<availability::Availability>,
    /// Analyses this check did not run, e.g. `["cycles"]` for a streaming
    /// check ([`stream`]), which leaves the transactional cycle search out.
    /// Absent from the JSON when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unchecked: Vec<String>,
}

/// What a check found; serialized as the `gregor check --json` object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CheckResult {
    pub valid: Validity,
    pub anomaly_types: Vec<String>,
    pub bad_types: Vec<String>,
    pub anomalies: BTreeMap<String, AnomalyGroup>,
    pub stats: Stats,
}

/// Whether the Kafka model allows an anomaly type under these options:
/// `G0*` and `int-send-skip` always; `poll-skip` and `nonmonotonic-poll`
/// when consumers `subscribe` (rebalances move positions); `G1c*` when
/// write-write dependencies are inferred.
pub fn is_allowed(kind: &str, opts: &CheckOpts) -> bool {
    kind == "int-send-skip"
        || kind.starts_with("G0")
        || (opts.subscribe && (kind == "poll-skip" || kind == "nonmonotonic-poll"))
        || (opts.ww_deps && kind.starts_with("G1c"))
        || (opts.acks_zero && (kind == "lost-write" || kind == "unseen"))
}

/// Types that leave the verdict open rather than failing it: a search
/// that ran out of budget (`cycle-search-timeout` when a class it did not
/// finish could be bad; `linearizability-unknown`), and `unseen` when final
/// reads did not complete.
fn is_uncertain(kind: &str, opts: &CheckOpts, found: &BTreeMap<String, AnomalyGroup>) -> bool {
    match kind {
        "linearizability-unknown" => true,
        "unseen" => opts.final_reads_incomplete,
        "cycle-search-timeout" => {
            let unsearched = found
                .get(kind)
                .into_iter()
                .flat_map(|g| &g.examples)
                .flat_map(|w| {
                    w.get("unsearched")
                        .and_then(|u| u.as_array())
                        .cloned()
                        .unwrap_or_default()
                });
            let mut any = false;
            for class in unsearched {
                any = true;
                if class.as_str().is_some_and(|c| !is_allowed(c, opts)) {
                    return true;
                }
            }
            // No list of classes: assume the worst.
            !any
        }
        _ => false,
    }
}

/// Every anomaly type [`check`] can report, in a fixed order: the queue
/// analysis's types, the transactional cycle classes, then the
/// committed-offset types. Reports list one property per entry.
pub fn anomaly_types() -> Vec<String> {
    let mut out: Vec<String> = witness::Kind::ALL
        .iter()
        .map(|k| k.name().to_string())
        .collect();
    out.extend(txn::anomaly_types());
    out.push(linear::NONLINEARIZABLE.to_string());
    out.push(linear::UNKNOWN.to_string());
    out
}

/// Histories at least this long are checked on two threads.
const PARALLEL_FROM: usize = 50_000;

/// Runs every checker over a history.
///
/// Validity is `false` if any type that [`is_allowed`] rejects was found;
/// otherwise `unknown` when the history cannot support a verdict (it is
/// empty, or no poll completed, so nothing was ever observed), else `true`.
/// Without a completed poll, unread acknowledged sends are counted in the
/// stats but not reported as `unseen`.
pub fn check(history: &History, opts: &CheckOpts) -> CheckResult {
    // The analyses are independent: on a large history, run the cycle and
    // committed-offset checks beside the queue analysis.
    let others = |_: ()| {
        let mut v = txn::check(history, opts);
        v.extend(linear::check_commits(history, opts));
        v
    };
    let (q, others) = if history.len() >= PARALLEL_FROM {
        std::thread::scope(|s| {
            let t = s.spawn(|| others(()));
            let q = queue::analyze(history);
            let o = t.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            (q, o)
        })
    } else {
        (queue::analyze(history), others(()))
    };
    let mut result = assemble(q, others, history.is_empty(), opts);
    let a = availability::analyze(history, &opts.cluster_samples);
    result.stats.availability = (!a.windows.is_empty()).then_some(a);
    result
}

/// Folds what the analyses found into one result (shared by [`check`] and
/// [`stream::check_file`]).
fn assemble(
    q: queue::Analysis,
    others: Vec<(String, serde_json::Value)>,
    empty: bool,
    opts: &CheckOpts,
) -> CheckResult {
    let mut anomalies: BTreeMap<String, AnomalyGroup> = BTreeMap::new();
    for (kind, count, examples) in q.anomalies {
        if kind == "unseen" && !q.has_completed_poll {
            continue;
        }
        let examples = examples
            .into_iter()
            .map(gregor_history::Example::from_json)
            .collect();
        anomalies.insert(kind.to_string(), AnomalyGroup { count, examples });
    }
    for (kind, witness) in others {
        let g = anomalies.entry(kind).or_default();
        g.count += 1;
        if g.examples.len() < MAX_EXAMPLES {
            g.examples.push(gregor_history::Example::from_json(witness));
        }
    }
    let anomaly_types: Vec<String> = anomalies.keys().cloned().collect();
    let uncertain = |k: &str| is_uncertain(k, opts, &anomalies);
    let bad_types: Vec<String> = anomaly_types
        .iter()
        .filter(|k| !is_allowed(k, opts) && !uncertain(k))
        .cloned()
        .collect();
    let valid = if !bad_types.is_empty() {
        Validity::False
    } else if empty || !q.has_completed_poll || anomaly_types.iter().any(|k| uncertain(k)) {
        Validity::Unknown
    } else {
        Validity::True
    };
    CheckResult {
        valid,
        anomaly_types,
        bad_types,
        anomalies,
        stats: q.stats,
    }
}
