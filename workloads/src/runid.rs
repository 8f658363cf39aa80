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
        let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        RunId(format!(
            "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z-{:06x}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            random & 0x00ff_ffff
        ))
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
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, sec) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + sec).ok()
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Day count since 1970-01-01 of a civil date (Howard Hinnant).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

    #[test]
    fn dates_convert_both_ways_across_leap_years() {
        for days in [-1, 0, 59, 60, 365, 11_016, 19_782, 20_789, 47_482] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }
}
