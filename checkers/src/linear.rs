//! Linearizability (WGL-style): being written.
use gregor_history::History;

use crate::CheckOpts;

/// Checks consumer-group committed offsets; returns (anomaly type, witness).
pub fn check_commits(_history: &History, _opts: &CheckOpts) -> Vec<(String, serde_json::Value)> {
    Vec::new()
}
