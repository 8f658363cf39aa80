//! gregor's checkers (skeleton: the public result types are stable; the
//! analyses are being written).

pub mod edn;
pub mod linear;
pub mod txn;

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
}

impl CheckOpts {
    pub fn from_meta(m: &RunMeta) -> CheckOpts {
        CheckOpts { subscribe: m.client.sub_via == SubVia::Subscribe, ww_deps: m.ww_deps }
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
    /// Each example is an object with at least `"explanation"` (one line a
    /// person can act on) and `"ops"` (history indices).
    pub examples: Vec<serde_json::Value>,
}

/// Latency quantiles of one operation kind, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Numbers users act on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Stats {
    /// f -> type -> count, e.g. `{"send": {"ok": 10, "info": 1}}`.
    pub ops: BTreeMap<String, BTreeMap<String, u64>>,
    pub acknowledged: u64,
    pub lost: u64,
    pub unseen: u64,
    pub duplicated: u64,
    pub lost_rate: f64,
    pub unseen_rate: f64,
    pub duplicated_rate: f64,
    /// Key -> highest offset observed.
    pub key_end_offsets: BTreeMap<Key, Offset>,
    /// Longest time an acknowledged write stayed invisible to later polls.
    pub worst_realtime_lag_ms: Option<f64>,
    /// f -> latency of its `ok` completions.
    pub latency: BTreeMap<String, Latency>,
    pub events: u64,
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

/// Runs every checker over a history.
pub fn check(history: &History, _opts: &CheckOpts) -> CheckResult {
    let mut stats = Stats { events: history.len() as u64, ..Default::default() };
    for e in &history.events {
        *stats.ops.entry(e.f.to_string()).or_default().entry(e.kind.as_str().to_string()).or_default() += 1;
    }
    CheckResult {
        valid: Validity::Unknown,
        anomaly_types: vec![],
        bad_types: vec![],
        anomalies: BTreeMap::new(),
        stats,
    }
}
