//! The consumer context: rebalances and async commit results remembered
//! for the next recorded operation.

use super::*;

/// Consumer context that remembers rebalances and async commit results so
/// they can be attached to the next recorded operation.
#[derive(Default)]
pub struct RecordingContext {
    pub(super) notes: Mutex<Vec<serde_json::Value>>,
    pub(super) keymap: Option<KeyMap>,
}

impl RecordingContext {
    fn keys(&self, tpl: &TopicPartitionList) -> Vec<Key> {
        let Some(km) = &self.keymap else {
            return vec![];
        };
        tpl.elements()
            .iter()
            .filter_map(|e| km.key(e.topic(), e.partition()))
            .collect()
    }

    pub(super) fn note(&self, v: serde_json::Value) {
        self.notes.lock().unwrap_or_else(|p| p.into_inner()).push(v);
    }

    pub(super) fn take(&self) -> Vec<serde_json::Value> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ClientContext for RecordingContext {
    /// librdkafka's warnings about consumer positions reset by the broker
    /// ("offset reset (at offset 107, broker 111) to BEGINNING: fetch failed
    /// due to requested offset not available on the broker …") are kept as
    /// client notes: they explain a poll that goes backwards.
    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        if fac == "OFFSET" {
            self.note(serde_json::json!({ "offset-reset": message }));
        }
    }
}

impl ConsumerContext for RecordingContext {
    fn post_rebalance(&self, _c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        let v = match r {
            Rebalance::Assign(tpl) => {
                serde_json::json!({"rebalance": "assign", "keys": self.keys(tpl)})
            }
            Rebalance::Revoke(tpl) => {
                serde_json::json!({"rebalance": "revoke", "keys": self.keys(tpl)})
            }
            Rebalance::Error(e) => {
                serde_json::json!({"rebalance": "error", "error": e.to_string()})
            }
        };
        self.note(v);
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        offsets: &TopicPartitionList,
    ) {
        let v = match result {
            Ok(()) => serde_json::json!({"async-commit": "ok", "keys": self.keys(offsets)}),
            Err(e) => serde_json::json!({"async-commit": "error", "error": e.to_string()}),
        };
        self.note(v);
    }
}
