//! Run ids: every run writes to topics and consumer groups of its own.
//!
//! A run's topic is `<prefix>-<run id>` (`topic.name` is the prefix, by
//! default [`DEFAULT_TOPIC_PREFIX`]); keys rotated onto fresh topics keep it
//! (`<prefix>-<run id>-<n>`, see [`crate::KeyMap`]), and so do the
//! consumer groups (`<prefix>-<run id>`, `…-final`) and transactional ids
//! (`…-txn-<worker>`). Two runs against one cluster therefore never read
//! each other's records, and a value can never collide with one an earlier
//! run wrote: every run starts from an empty topic.
//!
//! A run id is the run's start as a UTC timestamp plus a random suffix:
//! `20261202T044512Z-3fa9c1`. The timestamp lets `gregor cluster clean`
//! pick runs by age without asking the cluster when a topic was made.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `topic.name` when a scenario does not set it.
pub const DEFAULT_TOPIC_PREFIX: &str = "gregor";

/// Characters of the timestamp part: `YYYYMMDDTHHMMSSZ`.
const STAMP_LEN: usize = 16;
/// Hex digits of the random part.
const SUFFIX_LEN: usize = 6;

/// A run's id; see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(String);

impl RunId {
    /// A fresh id for a run starting now.
    pub fn generate() -> RunId {
        RunId::at(SystemTime::now(), rand::random::<u32>())
    }

    /// The id of a run started at `t`, with `random`'s low 24 bits as suffix.
    pub fn at(t: SystemTime, random: u32) -> RunId {
        // 2026-12-02T04:45:12Z -> 20261202T044512Z
        let stamp: String = humantime::format_rfc3339_seconds(t)
            .to_string()
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        RunId(format!("{stamp}-{:06x}", random & 0x00ff_ffff))
    }

    /// Parses an id as [`RunId::at`] writes it.
    pub fn parse(s: &str) -> Option<RunId> {
        let (stamp, suffix) = s.split_at_checked(STAMP_LEN)?;
        let suffix = suffix.strip_prefix('-')?;
        if suffix.len() != SUFFIX_LEN || !suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        stamp_secs(stamp)?;
        Some(RunId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// When the run started (to the second).
    pub fn started(&self) -> SystemTime {
        let secs = stamp_secs(&self.0[..STAMP_LEN]).unwrap_or(0);
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// The base name of the run's topic and consumer group.
    pub fn topic(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.0)
    }

    /// The run that made `name` (a topic or group id) under `prefix`:
    /// `<prefix>-<run id>` optionally followed by `-<anything>`.
    pub fn of(prefix: &str, name: &str) -> Option<RunId> {
        let rest = name.strip_prefix(prefix)?.strip_prefix('-')?;
        let len = STAMP_LEN + 1 + SUFFIX_LEN;
        let (id, tail) = rest.split_at_checked(len)?;
        if !(tail.is_empty() || tail.starts_with('-')) {
            return None;
        }
        RunId::parse(id)
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Seconds since the epoch of `YYYYMMDDTHHMMSSZ`, if it is one.
fn stamp_secs(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != STAMP_LEN || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    if !s[..8]
        .bytes()
        .chain(s[9..15].bytes())
        .all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    );
    let t = humantime::parse_rfc3339(&rfc3339).ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_id_is_its_utc_start_and_a_random_suffix() {
        // 2026-12-02 04:45:12 UTC
        let t = UNIX_EPOCH + Duration::from_secs(1_796_186_712);
        let id = RunId::at(t, 0x003f_a9c1);
        assert_eq!(id.as_str(), "20261202T044512Z-3fa9c1");
        assert_eq!(id.started(), t);
        assert_eq!(RunId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.topic("gregor"), "gregor-20261202T044512Z-3fa9c1");
    }

    #[test]
    fn two_runs_started_in_the_same_second_get_different_ids() {
        let a = RunId::generate();
        let b = RunId::generate();
        // 24 random bits: a clash would take 1 in 16 million.
        assert_ne!(a, b);
    }

    #[test]
    fn topics_groups_and_rotated_topics_name_their_run() {
        let id = RunId::parse("20261202T044512Z-3fa9c1").unwrap();
        for name in [
            "gregor-20261202T044512Z-3fa9c1",
            "gregor-20261202T044512Z-3fa9c1-7",
            "gregor-20261202T044512Z-3fa9c1-final",
            "gregor-20261202T044512Z-3fa9c1-txn-3",
        ] {
            assert_eq!(RunId::of("gregor", name), Some(id.clone()), "{name}");
        }
        for name in [
            "gregor",
            "gregor-1",
            "other-20261202T044512Z-3fa9c1",
            "gregor-20261202T044512Z-3fa9c1x",
            "gregor-20261302T044512Z-3fa9c1",
            "gregor-20261202T044512Z-3fa9",
            "__consumer_offsets",
        ] {
            assert_eq!(RunId::of("gregor", name), None, "{name}");
        }
        // A prefix that is itself a run's prefix plus more is not confused.
        assert_eq!(
            RunId::of("gregor", "gregor-x-20261202T044512Z-3fa9c1"),
            None
        );
    }
}
