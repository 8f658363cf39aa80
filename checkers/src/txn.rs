//! Transactional analysis (Elle-style): being written.
use gregor_history::History;

use crate::CheckOpts;

/// Finds dependency cycles between operations; returns (anomaly type, witness).
pub fn check(_history: &History, _opts: &CheckOpts) -> Vec<(String, serde_json::Value)> {
    Vec::new()
}
