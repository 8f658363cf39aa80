//! Lag in seconds: how old the oldest record a group has not consumed is.
//!
//! Exact when the timestamp of the record at the committed offset could be
//! read (`now - timestamp`), compressed batches included (decompressed).
//! When only the batch's header could be read (a batch cut short by the
//! fetch size, or a codec that failed), the batch's first timestamp is used
//! and the source says `batch`: an upper bound, older than the record by at
//! most the batch's span (the producer's `linger.ms`). Otherwise interpolated from the partition's
//! recent (log end offset, time) points, as kafka-lag-exporter does: find
//! when the log end passed the committed offset, and the lag is the time
//! since. Below the oldest point the time is extrapolated with the
//! window's average production rate, but never further back than
//! [`MAX_EXTRAPOLATION`] times the window's span; past that (or when the
//! window shows no production) the answer is a lower bound: at least as
//! old as the window.
//!
//! The window is capped: when full, the point whose removal leaves the
//! smallest gap is dropped, so a long window thins out instead of
//! forgetting its past (a group hours behind still gets a lag in seconds).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// How far below the window extrapolation may reach, in window spans.
pub const MAX_EXTRAPOLATION: f64 = 10.0;

/// How a lag in seconds was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// From the timestamp of the record at the committed offset.
    Exact,
    /// From the first timestamp of the batch holding the record (the
    /// batch could not be read record by record): an upper bound.
    Batch,
    /// Between two points of the window.
    Interpolated,
    /// Below the window, with its production rate.
    Extrapolated,
    /// At least this old (the window cannot say more).
    LowerBound,
    /// Caught up (lag 0).
    CaughtUp,
    /// Unknown (no points, no latest offset).
    None,
}

/// A capped window of (log end offset, time) points of one partition;
/// each point is the first time the log end was seen at that offset.
#[derive(Debug, Clone)]
pub struct LagWindow {
    points: VecDeque<(i64, i64)>,
    cap: usize,
    /// When the log end was last observed (it may have stayed put since
    /// the last point).
    last_seen_ms: i64,
}

impl LagWindow {
    /// An empty window keeping at most `cap` points (at least 2).
    pub fn new(cap: usize) -> LagWindow {
        LagWindow {
            points: VecDeque::with_capacity(cap.clamp(2, 64)),
            cap: cap.max(2),
            last_seen_ms: 0,
        }
    }

    /// Points held.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no point is held.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The points, oldest first.
    pub fn points(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.points.iter().copied()
    }

    /// Records that the log end was `offset` at `time_ms`. An offset below
    /// the last point (topic recreated, log truncated) restarts the window.
    pub fn push(&mut self, offset: i64, time_ms: i64) {
        self.last_seen_ms = self.last_seen_ms.max(time_ms);
        match self.points.back() {
            Some(&(o, _)) if offset == o => return,
            Some(&(o, _)) if offset < o => self.points.clear(),
            Some(&(_, t)) if time_ms < t => return, // clock went back: ignore
            _ => {}
        }
        if self.points.len() >= self.cap {
            self.thin();
        }
        self.points.push_back((offset, time_ms));
    }

    /// Drops the inner point whose removal leaves the smallest time gap.
    fn thin(&mut self) {
        let n = self.points.len();
        if n < 3 {
            self.points.pop_front();
            return;
        }
        let mut best = 1;
        let mut best_gap = i64::MAX;
        for i in 1..n - 1 {
            let gap = self.points[i + 1].1 - self.points[i - 1].1;
            if gap < best_gap {
                best_gap = gap;
                best = i;
            }
        }
        self.points.remove(best);
    }

    /// When the log end first reached `offset` (ms), and how that was found.
    pub fn time_of(&self, offset: i64) -> Option<(f64, Source)> {
        let first = *self.points.front()?;
        let last = *self.points.back()?;
        if offset > last.0 {
            return None;
        }
        // First point at or past `offset`.
        let idx = self.points.partition_point(|&(o, _)| o < offset);
        if idx > 0 {
            let (o0, t0) = self.points[idx - 1];
            let (o1, t1) = self.points[idx];
            let f = (offset - o0) as f64 / (o1 - o0) as f64;
            return Some((t0 as f64 + f * (t1 - t0) as f64, Source::Interpolated));
        }
        if offset == first.0 {
            return Some((first.1 as f64, Source::Interpolated));
        }
        // Below the window: extrapolate with the average rate.
        let span = (last.1 - first.1) as f64;
        let produced = (last.0 - first.0) as f64;
        if span > 0.0 && produced > 0.0 {
            let back = (first.0 - offset) as f64 * span / produced;
            if back <= MAX_EXTRAPOLATION * span {
                return Some((first.1 as f64 - back, Source::Extrapolated));
            }
            return Some((
                first.1 as f64 - MAX_EXTRAPOLATION * span,
                Source::LowerBound,
            ));
        }
        Some((first.1 as f64, Source::LowerBound))
    }
}

/// A record's timestamp as a fetch read it: the record's own
/// ([`Source::Exact`]) or its batch's first ([`Source::Batch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordTs {
    pub ms: i64,
    pub source: Source,
}

/// The lag in seconds of a group at `committed` on a partition whose log
/// ends at `latest`, at `now_ms`: from `record_ts` (the timestamp of the
/// record at `committed`) when known, else from the window.
pub fn lag_seconds(
    committed: i64,
    latest: i64,
    now_ms: i64,
    record_ts: Option<RecordTs>,
    window: Option<&LagWindow>,
) -> (Option<f64>, Source) {
    if committed >= latest {
        return (Some(0.0), Source::CaughtUp);
    }
    if let Some(ts) = record_ts.filter(|t| t.ms > 0) {
        return (Some(((now_ms - ts.ms) as f64 / 1000.0).max(0.0)), ts.source);
    }
    // The record at `committed` was appended when the log end moved from
    // `committed` to `committed + 1`.
    match window.and_then(|w| w.time_of(committed + 1)) {
        // "At least 0 s" says nothing: unknown (the window is too young).
        Some((t, Source::LowerBound)) if now_ms as f64 - t <= 0.0 => (None, Source::None),
        Some((t, source)) => (Some(((now_ms as f64 - t) / 1000.0).max(0.0)), source),
        None => (None, Source::None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(points: &[(i64, i64)]) -> LagWindow {
        let mut w = LagWindow::new(60);
        for &(o, t) in points {
            w.push(o, t);
        }
        w
    }

    #[test]
    fn a_caught_up_group_has_zero_seconds_of_lag() {
        let w = window(&[(0, 0), (100, 10_000)]);
        assert_eq!(
            lag_seconds(100, 100, 20_000, None, Some(&w)),
            (Some(0.0), Source::CaughtUp)
        );
    }

    #[test]
    fn lag_seconds_interpolate_between_the_points_around_the_committed_offset() {
        // 10 records/s: offset 50 was appended at t=5 s (end moved 50 -> 51
        // at 5.1 s).
        let w = window(&[(0, 0), (100, 10_000), (200, 20_000)]);
        let (s, src) = lag_seconds(50, 200, 20_000, None, Some(&w));
        assert_eq!(src, Source::Interpolated);
        assert!((s.unwrap() - 14.9).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn a_flat_log_end_keeps_the_time_it_was_first_reached() {
        // The log end reached 100 at 10 s and stayed: a group at 99 is 10 s
        // behind at 20 s, not 0 s behind because the end was still 100 at 19 s.
        let mut w = window(&[(0, 0), (100, 10_000)]);
        for t in (11..20).map(|s| s * 1000) {
            w.push(100, t);
        }
        assert_eq!(w.len(), 2);
        let (s, _) = lag_seconds(99, 100, 20_000, None, Some(&w));
        assert!((s.unwrap() - 10.0).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn below_the_window_lag_seconds_extrapolate_with_the_window_rate() {
        // 10 records/s from 1000 at 100 s to 1100 at 110 s; offset 899 was
        // appended 10 s before the first point.
        let w = window(&[(1000, 100_000), (1100, 110_000)]);
        let (s, src) = lag_seconds(899, 1100, 110_000, None, Some(&w));
        assert_eq!(src, Source::Extrapolated);
        assert!((s.unwrap() - 20.0).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn extrapolation_stops_at_ten_window_spans_and_says_lower_bound() {
        let w = window(&[(1_000_000, 100_000), (1_000_100, 110_000)]);
        let (s, src) = lag_seconds(0, 1_000_100, 110_000, None, Some(&w));
        assert_eq!(src, Source::LowerBound);
        assert!((s.unwrap() - 110.0).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn a_window_without_production_gives_a_lower_bound() {
        let w = window(&[(500, 100_000)]);
        let (s, src) = lag_seconds(10, 500, 160_000, None, Some(&w));
        assert_eq!(src, Source::LowerBound);
        assert_eq!(s, Some(60.0));
    }

    #[test]
    fn a_window_of_one_fresh_point_cannot_tell_the_lag_in_seconds() {
        let w = window(&[(500, 100_000)]);
        assert_eq!(
            lag_seconds(10, 500, 100_000, None, Some(&w)),
            (None, Source::None)
        );
    }

    #[test]
    fn an_exact_record_timestamp_wins_over_the_window() {
        let w = window(&[(0, 0), (100, 10_000)]);
        let exact = RecordTs {
            ms: 2_000,
            source: Source::Exact,
        };
        let (s, src) = lag_seconds(50, 100, 30_000, Some(exact), Some(&w));
        assert_eq!(src, Source::Exact);
        assert_eq!(s, Some(28.0));
    }

    #[test]
    fn a_batch_timestamp_wins_over_the_window_and_says_batch() {
        let w = window(&[(0, 0), (100, 10_000)]);
        let batch = RecordTs {
            ms: 1_500,
            source: Source::Batch,
        };
        let (s, src) = lag_seconds(50, 100, 30_000, Some(batch), Some(&w));
        assert_eq!(src, Source::Batch);
        assert_eq!(s, Some(28.5));
        assert_eq!(serde_json::to_string(&src).unwrap(), "\"batch\"");
    }

    #[test]
    fn no_window_and_no_timestamp_is_unknown_not_zero() {
        assert_eq!(lag_seconds(5, 10, 1000, None, None), (None, Source::None));
    }

    #[test]
    fn a_truncated_log_restarts_the_window() {
        let w = window(&[(100, 0), (200, 1000), (5, 2000)]);
        assert_eq!(w.points().collect::<Vec<_>>(), vec![(5, 2000)]);
    }

    #[test]
    fn a_full_window_thins_out_and_keeps_its_oldest_point() {
        let mut w = LagWindow::new(10);
        for i in 0..1000 {
            w.push(i * 10, i * 1000);
        }
        assert_eq!(w.len(), 10, "capped");
        let pts: Vec<_> = w.points().collect();
        assert_eq!(pts[0], (0, 0), "the oldest point survives thinning");
        assert_eq!(pts[9], (9990, 999_000));
        // Interpolation over the thinned window is still right for a
        // steady rate.
        let (s, _) = lag_seconds(5000, 9990, 999_000, None, Some(&w));
        assert!((s.unwrap() - 498.9).abs() < 1e-6, "{s:?}");
    }
}
