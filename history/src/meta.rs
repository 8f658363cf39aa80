//! Run metadata (`meta.json` in a run directory): what a checker needs to
//! know about how the history was produced, besides the history itself.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::event::Key;

/// How consumers obtained their partitions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubVia {
    #[default]
    Assign,
    Subscribe,
}

/// The producer's `acks`: how many replicas acknowledge a write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Acks {
    /// `acks=0`: no answer at all (nothing acknowledged can be promised).
    #[serde(rename = "0")]
    Zero,
    /// `acks=1`: the leader alone.
    #[serde(rename = "1")]
    One,
    /// `acks=all` (`-1`): every in-sync replica.
    #[default]
    #[serde(rename = "all", alias = "-1")]
    All,
}

impl std::str::FromStr for Acks {
    type Err = String;
    fn from_str(s: &str) -> Result<Acks, String> {
        match s {
            "0" => Ok(Acks::Zero),
            "1" => Ok(Acks::One),
            "all" | "-1" => Ok(Acks::All),
            _ => Err(format!("acks {s:?} is not one of 0, 1, all, -1")),
        }
    }
}

impl std::fmt::Display for Acks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Acks::Zero => "0",
            Acks::One => "1",
            Acks::All => "all",
        })
    }
}

/// The consumers' `isolation.level`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IsolationLevel {
    #[default]
    ReadUncommitted,
    /// Only records of committed transactions are returned.
    ReadCommitted,
}

impl std::str::FromStr for IsolationLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<IsolationLevel, String> {
        match s {
            "read_uncommitted" => Ok(IsolationLevel::ReadUncommitted),
            "read_committed" => Ok(IsolationLevel::ReadCommitted),
            _ => Err(format!(
                "isolation level {s:?} is not read_uncommitted or read_committed"
            )),
        }
    }
}

impl std::fmt::Display for IsolationLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        })
    }
}

/// The topic-partition a key maps to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

/// Client settings that change what a checker may call an anomaly.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct ClientMeta {
    pub acks: Acks,
    pub idempotence: bool,
    pub txn: bool,
    pub sub_via: SubVia,
    pub isolation_level: IsolationLevel,
    pub auto_commit: bool,
}

/// Metadata of one run, written before the first event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct RunMeta {
    pub gregor_version: String,
    pub scenario: String,
    pub seed: u64,
    /// UTC wall-clock time of history time zero (RFC 3339).
    pub started_at: String,
    pub cluster: String,
    pub bootstrap: String,
    /// Key -> topic-partition (a bijection).
    pub keys: BTreeMap<Key, TopicPartition>,
    pub client: ClientMeta,
    /// Infer write-write dependencies from offset order (Jepsen's `ww-deps`).
    pub ww_deps: bool,
    /// Free-form: versions, nemesis settings, anything worth keeping.
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Errors reading or writing metadata.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid run metadata: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

impl RunMeta {
    pub fn read(path: &Path) -> Result<RunMeta, MetaError> {
        let p = path.display().to_string();
        let s = std::fs::read_to_string(path).map_err(|source| MetaError::Io {
            path: p.clone(),
            source,
        })?;
        serde_json::from_str(&s).map_err(|source| MetaError::Json { path: p, source })
    }

    pub fn write(&self, path: &Path) -> Result<(), MetaError> {
        let p = path.display().to_string();
        let s = serde_json::to_string_pretty(self).expect("metadata always serializes");
        std::fs::write(path, s + "\n").map_err(|source| MetaError::Io { path: p, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = RunMeta {
            seed: 7,
            scenario: "queue".into(),
            ..Default::default()
        };
        m.keys.insert(
            3,
            TopicPartition {
                topic: "t".into(),
                partition: 3,
            },
        );
        m.client.sub_via = SubVia::Subscribe;
        let p = dir.path().join("meta.json");
        m.write(&p).unwrap();
        assert_eq!(RunMeta::read(&p).unwrap(), m);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("\"sub-via\": \"subscribe\""), "{text}");
    }
}

#[cfg(test)]
mod typed_settings_tests {
    use super::*;

    #[test]
    fn acks_and_isolation_read_as_kafka_spells_them_and_write_back_the_same() {
        let m: ClientMeta = serde_json::from_str(
            r#"{"acks": "-1", "isolation-level": "read_committed", "sub-via": "subscribe"}"#,
        )
        .unwrap();
        assert_eq!(m.acks, Acks::All);
        assert_eq!(m.isolation_level, IsolationLevel::ReadCommitted);
        let back = serde_json::to_value(&m).unwrap();
        assert_eq!(back["acks"], "all");
        assert_eq!(back["isolation-level"], "read_committed");
        for (s, a) in [("0", Acks::Zero), ("1", Acks::One), ("all", Acks::All)] {
            assert_eq!(s.parse::<Acks>().unwrap(), a);
            assert_eq!(a.to_string(), s);
        }
        let e = "2".parse::<Acks>().unwrap_err();
        assert!(e.contains("\"2\""), "{e}");
        assert!(serde_json::from_str::<ClientMeta>(r#"{"acks": "most"}"#).is_err());
    }
}
