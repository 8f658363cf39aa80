//! The brokers' own view of a run, kept beside the clients' history so that
//! reports and checkers can tell what a client saw from what the cluster
//! said: leader, replicas, ISR and leader epoch of every partition of the
//! run, sampled over time (`cluster-samples.jsonl`, one [`ClusterSample`]
//! a line, written when something changed), and each partition's log start
//! and end offsets at the end of the run (`broker-offsets.json`, a list of
//! [`BrokerOffsets`]).

use serde::{Deserialize, Serialize};

use crate::event::Key;

/// File name of the sampled partition states in a run directory.
pub const CLUSTER_SAMPLES_FILE: &str = "cluster-samples.jsonl";
/// File name of the end-of-run log offsets in a run directory.
pub const BROKER_OFFSETS_FILE: &str = "broker-offsets.json";
/// File name of the lag and replication samples of a run (`gregor run`'s
/// monitor), one [`MonitorSample`] a line.
pub const MONITOR_FILE: &str = "monitor.jsonl";

/// One sample of the run's consumer lag and partition health.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MonitorSample {
    /// Nanoseconds since the history's time zero.
    pub time: u64,
    pub partitions: Vec<PartitionHealth>,
    pub lag: Vec<ConsumerLag>,
}

/// A partition of the run: replication health and log end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PartitionHealth {
    pub key: Key,
    pub topic: String,
    pub partition: i32,
    /// Node id of the leader, -1 when there is none.
    pub leader: i32,
    pub replicas: usize,
    pub isr: usize,
    /// The high watermark (None: not readable this sample).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_end: Option<i64>,
}

/// How far a consumer is behind on one partition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ConsumerLag {
    pub group: String,
    /// `positions`: the next offset the workload's consumers would read
    /// (one past the highest offset an `ok` poll returned), as recorded;
    /// `committed`: the group's committed offset, as the brokers report it.
    pub source: String,
    pub key: Key,
    pub topic: String,
    pub partition: i32,
    pub position: i64,
    pub log_end: i64,
    /// `log_end - position`, never negative.
    pub lag: i64,
    /// Age of the oldest unread record, seconds (interpolated from the
    /// partition's (log end, time) samples; `None` when unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
}

/// Reads a `monitor.jsonl` (bad lines skipped; a missing file is empty).
pub fn read_monitor_samples(path: &std::path::Path) -> Vec<MonitorSample> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// What one broker reported about one partition of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PartitionState {
    pub key: Key,
    pub topic: String,
    pub partition: i32,
    /// Node id of the leader, -1 when there is none.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offline: Vec<i32>,
    /// Partition error code (0 when fine; 5 LEADER_NOT_AVAILABLE...).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub error: i16,
}

fn is_zero(v: &i16) -> bool {
    *v == 0
}

/// One sample: when, whom gregor asked, and what it said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClusterSample {
    /// Nanoseconds since the history's time zero.
    pub time: u64,
    /// `host:port` of the broker that answered.
    pub asked: String,
    /// Node ids of the brokers it listed.
    pub brokers: Vec<i32>,
    pub partitions: Vec<PartitionState>,
}

/// A partition's log as the brokers report it at the end of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BrokerOffsets {
    pub key: Key,
    pub topic: String,
    pub partition: i32,
    /// First offset still in the log.
    pub log_start: i64,
    /// The high watermark: one past the last committed offset.
    pub log_end: i64,
}

/// Reads `cluster-samples.jsonl` of a run directory, in time order. A
/// missing file is no samples; a line that does not parse is an error
/// naming the file and line.
pub fn read_samples(run_dir: &std::path::Path) -> Result<Vec<ClusterSample>, String> {
    let path = run_dir.join(CLUSTER_SAMPLES_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<ClusterSample>(line) {
            Ok(s) => out.push(s),
            // A run killed mid-write leaves a partial last line.
            Err(_) if i + 1 == text.lines().count() && !text.ends_with('\n') => break,
            Err(e) => return Err(format!("{}:{}: {e}", path.display(), i + 1)),
        }
    }
    out.sort_by_key(|s| s.time);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_round_trip_in_kebab_case() {
        let s = ClusterSample {
            time: 5,
            asked: "127.0.0.1:19092".into(),
            brokers: vec![0, 1, 2],
            partitions: vec![PartitionState {
                key: 3,
                topic: "gregor-x".into(),
                partition: 3,
                leader: 1,
                leader_epoch: 4,
                replicas: vec![1, 2, 0],
                isr: vec![1, 2],
                offline: vec![],
                error: 0,
            }],
        };
        let text = serde_json::to_string(&s).unwrap();
        assert!(
            text.contains("\"leader-epoch\":4") && !text.contains("offline"),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<ClusterSample>(&text).unwrap(), s);
    }
}
