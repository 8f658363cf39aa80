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
    pub acks: String,
    pub idempotence: bool,
    pub txn: bool,
    pub sub_via: SubVia,
    pub isolation_level: String,
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
