//! Keys to topic-partitions, a bijection.
//!
//! Key `k` lives in partition `k % P` of topic `prefix` when `k < P`, and of
//! topic `prefix-{k / P}` otherwise (keys retired by the generator's write
//! cap move on to fresh topics, created on demand). A run's prefix is
//! `<topic.name>-<run id>` ([`crate::runid`]), so rotated topics keep the
//! run id too.

use std::collections::BTreeMap;

use gregor_history::{Key, TopicPartition};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMap {
    pub prefix: String,
    pub partitions: u32,
}

impl KeyMap {
    pub fn new(prefix: impl Into<String>, partitions: u32) -> KeyMap {
        KeyMap {
            prefix: prefix.into(),
            partitions: partitions.max(1),
        }
    }

    /// The topic holding key `k`.
    pub fn topic(&self, k: Key) -> String {
        let group = k / self.partitions as u64;
        if group == 0 {
            self.prefix.clone()
        } else {
            format!("{}-{group}", self.prefix)
        }
    }

    pub fn partition(&self, k: Key) -> i32 {
        (k % self.partitions as u64) as i32
    }

    pub fn topic_partition(&self, k: Key) -> TopicPartition {
        TopicPartition {
            topic: self.topic(k),
            partition: self.partition(k),
        }
    }

    /// The key of a topic-partition, if it is one of ours.
    pub fn key(&self, topic: &str, partition: i32) -> Option<Key> {
        if partition < 0 || partition as u32 >= self.partitions {
            return None;
        }
        let group = if topic == self.prefix {
            0
        } else {
            let rest = topic.strip_prefix(&self.prefix)?.strip_prefix('-')?;
            let g: u64 = rest.parse().ok()?;
            if g == 0 || rest.starts_with('0') {
                return None;
            }
            g
        };
        Some(group * self.partitions as u64 + partition as u64)
    }

    /// The mapping of the given keys, for run metadata.
    pub fn table(&self, keys: impl IntoIterator<Item = Key>) -> BTreeMap<Key, TopicPartition> {
        keys.into_iter()
            .map(|k| (k, self.topic_partition(k)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_topic_partitions_map_both_ways() {
        let m = KeyMap::new("gregor", 4);
        for k in 0..40 {
            assert_eq!(m.key(&m.topic(k), m.partition(k)), Some(k));
        }
        assert_eq!(m.topic(3), "gregor");
        assert_eq!(m.topic(5), "gregor-1");
        assert_eq!(m.key("other", 0), None);
        assert_eq!(m.key("gregor-01", 0), None);
        assert_eq!(m.key("gregor", 4), None);
    }
}
