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
