//! Burrow's consumer status rules over a sliding window, without fixed
//! thresholds.
//!
//! Each group-partition keeps its last N samples (time, committed offset,
//! log end offset). The rules, in order:
//!
//! 1. **REWIND**: the committed offset went backwards inside the window
//!    (an offset reset, or a consumer that lost its place).
//! 2. **OK**: the lag is 0 now. An idle partition (no new records, every
//!    record consumed) is never STOP or STALL — Burrow's best-known false
//!    alarm, where a caught-up consumer of a quiet topic stops committing
//!    and is reported STOPPED.
//! 3. Only the samples since the group last had lag 0 count (Burrow takes
//!    "any zero lag in the window means OK", which hides a consumer that
//!    caught up and then died until the zero leaves the window). Fewer
//!    than [`MIN_SAMPLES`] samples: OK (not enough evidence).
//! 4. **STOP** / **STALL**: the committed offset did not move across those
//!    samples while there was lag. STOP when no member holds the partition
//!    (nobody consumes it); STALL when a member holds it and does not move
//!    (a stuck consumer).
//! 5. **WARN**: the committed offset moves, but the lag never shrinks
//!    between two samples and ends higher than it began: the consumer is
//!    slower than the producers. A lag that stays constant is a consumer
//!    keeping up with a pipeline in flight, not a warning (Burrow warns on
//!    it, a second known false alarm).
//! 6. Otherwise **OK**.
//!
//! A group is ERR if any partition is STOP, STALL or REWIND; WARN if any is
//! WARN; else OK.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Samples needed since the last zero lag before a partition can be
/// anything but OK.
pub const MIN_SAMPLES: usize = 3;

/// A group-partition's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PartitionStatus {
    Ok,
    Warn,
    Stall,
    Stop,
    Rewind,
}

impl PartitionStatus {
    /// Every status, in order of severity.
    pub const ALL: [PartitionStatus; 5] = [
        PartitionStatus::Ok,
        PartitionStatus::Warn,
        PartitionStatus::Stall,
        PartitionStatus::Stop,
        PartitionStatus::Rewind,
    ];

    /// The name shown and used as a label value.
    pub fn name(self) -> &'static str {
        match self {
            PartitionStatus::Ok => "OK",
            PartitionStatus::Warn => "WARN",
            PartitionStatus::Stall => "STALL",
            PartitionStatus::Stop => "STOP",
            PartitionStatus::Rewind => "REWIND",
        }
    }

    /// Whether it makes the group ERR.
    pub fn is_error(self) -> bool {
        matches!(
            self,
            PartitionStatus::Stall | PartitionStatus::Stop | PartitionStatus::Rewind
        )
    }
}

impl std::fmt::Display for PartitionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A group's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum GroupStatus {
    Ok,
    Warn,
    Err,
}

impl GroupStatus {
    /// Every status, in order of severity.
    pub const ALL: [GroupStatus; 3] = [GroupStatus::Ok, GroupStatus::Warn, GroupStatus::Err];

    /// The worst of its partitions.
    pub fn of(parts: &[PartitionStatus]) -> GroupStatus {
        if parts.iter().any(|p| p.is_error()) {
            GroupStatus::Err
        } else if parts.contains(&PartitionStatus::Warn) {
            GroupStatus::Warn
        } else {
            GroupStatus::Ok
        }
    }

    /// The name shown and used as a label value.
    pub fn name(self) -> &'static str {
        match self {
            GroupStatus::Ok => "OK",
            GroupStatus::Warn => "WARN",
            GroupStatus::Err => "ERR",
        }
    }
}

impl std::fmt::Display for GroupStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One observation of a group-partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub time_ms: i64,
    pub committed: i64,
    /// The log end offset (None: not readable at that poll).
    pub latest: Option<i64>,
}

impl Sample {
    fn lag(&self) -> Option<i64> {
        self.latest.map(|l| (l - self.committed).max(0))
    }
}

/// The last samples of one group-partition (capped).
#[derive(Debug, Clone)]
pub struct StatusWindow {
    samples: VecDeque<Sample>,
    cap: usize,
}

impl StatusWindow {
    /// An empty window of at most `cap` samples (at least [`MIN_SAMPLES`]).
    pub fn new(cap: usize) -> StatusWindow {
        let cap = cap.max(MIN_SAMPLES);
        StatusWindow {
            samples: VecDeque::with_capacity(cap),
            cap,
        }
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Adds a sample, dropping the oldest when full.
    pub fn push(&mut self, s: Sample) {
        if self.samples.len() >= self.cap {
            self.samples.pop_front();
        }
        self.samples.push_back(s);
        self.samples.make_contiguous();
    }

    /// The status by the rules of the module doc; `owned`: a group member
    /// holds the partition.
    pub fn evaluate(&self, owned: bool) -> PartitionStatus {
        let (a, b) = self.samples.as_slices();
        if b.is_empty() {
            evaluate(a, owned)
        } else {
            let v: Vec<Sample> = self.samples.iter().copied().collect();
            evaluate(&v, owned)
        }
    }
}

/// Burrow's rules over `samples` (oldest first); see the module doc.
pub fn evaluate(samples: &[Sample], owned: bool) -> PartitionStatus {
    let Some(last) = samples.last() else {
        return PartitionStatus::Ok;
    };
    // 1. REWIND: the committed offset went backwards.
    if samples.windows(2).any(|w| w[1].committed < w[0].committed) {
        return PartitionStatus::Rewind;
    }
    // 2. Caught up now.
    let Some(last_lag) = last.lag() else {
        return PartitionStatus::Ok;
    };
    if last_lag == 0 {
        return PartitionStatus::Ok;
    }
    // 3. Since the last time it had lag 0, with known lags only.
    let start = samples
        .iter()
        .rposition(|s| s.lag() == Some(0))
        .map(|i| i + 1)
        .unwrap_or(0);
    let mut recent = samples[start..]
        .iter()
        .filter_map(|s| s.lag().map(|l| (s.committed, l)));
    let Some(first) = recent.next() else {
        return PartitionStatus::Ok;
    };
    let (mut n, mut moved, mut never_shrinks, mut prev) = (1usize, false, true, first.1);
    for (c, l) in recent {
        n += 1;
        moved |= c != first.0;
        never_shrinks &= l >= prev;
        prev = l;
    }
    if n < MIN_SAMPLES {
        return PartitionStatus::Ok;
    }
    // 4. Not moving while lagging.
    if !moved {
        return if owned {
            PartitionStatus::Stall
        } else {
            PartitionStatus::Stop
        };
    }
    // 5. Moving, but falling behind at every step.
    if never_shrinks && last_lag > first.1 {
        return PartitionStatus::Warn;
    }
    PartitionStatus::Ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use PartitionStatus::*;

    /// Samples one second apart from (committed, latest) pairs.
    fn s(pairs: &[(i64, i64)]) -> Vec<Sample> {
        pairs
            .iter()
            .enumerate()
            .map(|(i, &(c, l))| Sample {
                time_ms: i as i64 * 1000,
                committed: c,
                latest: Some(l),
            })
            .collect()
    }

    #[test]
    fn a_consumer_that_keeps_up_is_ok() {
        let w = s(&[(0, 10), (10, 20), (20, 25), (25, 40), (40, 41)]);
        assert_eq!(evaluate(&w, true), Ok);
    }

    #[test]
    fn an_idle_partition_with_lag_zero_is_never_stop() {
        // Burrow's best-known false alarm: nothing produced, nothing to
        // commit, the offset never moves, and no member holds it.
        let w = s(&[(100, 100); 10]);
        assert_eq!(evaluate(&w, false), Ok);
        assert_eq!(evaluate(&w, true), Ok);
    }

    #[test]
    fn a_group_that_stopped_with_records_waiting_is_stop_without_members() {
        let w = s(&[(50, 60), (50, 70), (50, 80), (50, 90)]);
        assert_eq!(evaluate(&w, false), Stop);
    }

    #[test]
    fn a_member_that_holds_the_partition_and_does_not_move_is_stall() {
        let w = s(&[(50, 60), (50, 70), (50, 80), (50, 90)]);
        assert_eq!(evaluate(&w, true), Stall);
    }

    #[test]
    fn a_stuck_consumer_is_stall_even_when_producers_are_quiet() {
        // Lag fixed (nothing new produced) but records are waiting.
        let w = s(&[(50, 90); 5]);
        assert_eq!(evaluate(&w, true), Stall);
    }

    #[test]
    fn a_consumer_that_caught_up_and_then_died_is_not_hidden_by_an_old_zero() {
        // Burrow's "any zero lag in the window is OK" would call this OK
        // until the zero leaves the window.
        let w = s(&[(10, 10), (10, 20), (10, 30), (10, 40)]);
        assert_eq!(evaluate(&w, false), Stop);
    }

    #[test]
    fn a_slow_consumer_falling_behind_at_every_step_is_warn() {
        let w = s(&[(0, 10), (5, 20), (10, 30), (15, 40), (20, 50)]);
        assert_eq!(evaluate(&w, true), Warn);
    }

    #[test]
    fn a_constant_lag_with_a_moving_consumer_is_ok_not_warn() {
        // Burrow warns when the lag "stays the same": a consumer with a
        // steady pipeline in flight would be WARN forever.
        let w = s(&[(0, 5), (10, 15), (20, 25), (30, 35), (40, 45)]);
        assert_eq!(evaluate(&w, true), Ok);
    }

    #[test]
    fn a_lag_that_shrinks_once_is_not_warn() {
        let w = s(&[(0, 10), (5, 20), (18, 25), (20, 35), (25, 45)]);
        assert_eq!(evaluate(&w, true), Ok);
    }

    #[test]
    fn a_committed_offset_going_back_is_rewind() {
        let w = s(&[(100, 200), (120, 200), (20, 200), (30, 200)]);
        assert_eq!(evaluate(&w, true), Rewind);
    }

    #[test]
    fn too_few_samples_are_ok_not_an_alarm() {
        // A consumer that commits every few seconds looks frozen between
        // two commits: two samples prove nothing.
        let w = s(&[(50, 60), (50, 70)]);
        assert_eq!(evaluate(&w, false), Ok);
        assert_eq!(evaluate(&[], false), Ok);
    }

    #[test]
    fn an_unknown_log_end_is_not_an_alarm() {
        let mut w = s(&[(50, 60), (50, 70), (50, 80)]);
        w.push(Sample {
            time_ms: 9000,
            committed: 50,
            latest: None,
        });
        assert_eq!(evaluate(&w, false), Ok);
    }

    #[test]
    fn the_window_is_capped_and_forgets_old_samples() {
        let mut w = StatusWindow::new(4);
        for (i, (c, l)) in [(100, 100), (10, 20), (10, 30), (10, 40), (10, 50), (10, 60)]
            .into_iter()
            .enumerate()
        {
            w.push(Sample {
                time_ms: i as i64,
                committed: c,
                latest: Some(l),
            });
        }
        assert_eq!(w.len(), 4);
        // The rewind from 100 to 10 has left the window.
        assert_eq!(w.evaluate(false), Stop);
    }

    #[test]
    fn a_group_is_the_worst_of_its_partitions() {
        assert_eq!(GroupStatus::of(&[Ok, Ok]), GroupStatus::Ok);
        assert_eq!(GroupStatus::of(&[Ok, Warn]), GroupStatus::Warn);
        assert_eq!(GroupStatus::of(&[Warn, Stall]), GroupStatus::Err);
        assert_eq!(GroupStatus::of(&[Rewind]), GroupStatus::Err);
        assert_eq!(GroupStatus::of(&[]), GroupStatus::Ok);
    }
}
