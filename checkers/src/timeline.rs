//! The run over time, as the checkers saw it: realtime lag (the cluster's,
//! and a new holder's catch-up apart from it), acknowledged writes not yet
//! read, and completions per function and outcome, in time buckets.
//!
//! This is the one source of every time series the reports draw (they lay
//! it out; they do not re-derive it from the history), so the lag in the
//! stats and the lag plotted are the same quantity.
//!
//! Buckets start [`FIRST_BUCKET_NS`] wide; when the run outgrows
//! [`MAX_BUCKETS`] of them, neighbours merge pairwise (the width doubles).
//! Merging keeps the maximum of lag and unseen counts and sums completions,
//! so thinning never hides an outlier. Memory is bounded whatever the run's
//! length (a soak checked by streaming holds the same few kilobytes).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The width of a bucket until the run outgrows [`MAX_BUCKETS`].
pub const FIRST_BUCKET_NS: u64 = 100_000_000;
/// At most this many buckets; beyond, the width doubles.
pub const MAX_BUCKETS: usize = 2048;

/// Time series of a run, in buckets of `bucket_ms`: bucket `i` covers
/// `[i·bucket_ms, (i+1)·bucket_ms)` ms of history time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Timeline {
    pub bucket_ms: u64,
    /// Worst realtime lag of the cluster (ms) among polls invoked in the
    /// bucket; `null` where no poll was invoked or every poll was catching
    /// up. The definition of `stats.worst-realtime-lag-ms`, whose maximum
    /// this series reaches.
    pub realtime_lag_ms: Vec<Option<f64>>,
    /// Worst catch-up lag (ms) among polls invoked in the bucket: the same
    /// measure for a process still reading records that already existed
    /// when it began to hold the key (a client renumbered after a crash, a
    /// partition moved by a rebalance). `stats.worst-catchup-lag-ms`.
    pub catchup_lag_ms: Vec<Option<f64>>,
    /// The most acknowledged sends that no `ok` poll had returned yet, at
    /// any moment in the bucket.
    pub unseen: Vec<u64>,
    /// f -> outcome (`ok`, `fail`, `info`) -> client operations completed
    /// in each bucket.
    pub completed: BTreeMap<String, BTreeMap<String, Vec<u64>>>,
    /// Latency quantiles of `ok` client operations by invocation time, on a
    /// coarser grid of its own (enough operations per bucket for a p99).
    pub latency: LatencyOverTime,
}

/// Latency quantiles per time bucket: bucket `i` holds the `ok` operations
/// invoked in `[i·bucket_ms, (i+1)·bucket_ms)`.
///
/// Quantiles are nearest-rank over a log-scale histogram per bucket
/// (64 sub-bins per power of two: within 0.8 % of the exact value, in a
/// few hundred bytes per bucket whatever the number of operations); the
/// maximum is exact. The run's overall quantiles (`stats.latency`) are exact.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct LatencyOverTime {
    pub bucket_ms: u64,
    /// f -> its series.
    pub by_f: BTreeMap<String, Quantiles>,
}

/// p50, p99 and max (ms) per bucket; `null` where no `ok` operation of
/// that function was invoked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Quantiles {
    pub p50: Vec<Option<f64>>,
    pub p99: Vec<Option<f64>>,
    pub max: Vec<Option<f64>>,
}

impl Timeline {
    /// The bucket width in seconds.
    pub fn bucket_secs(&self) -> f64 {
        self.bucket_ms as f64 / 1e3
    }

    /// The middle of bucket `i`, in seconds.
    pub fn mid_secs(&self, i: usize) -> f64 {
        (i as f64 + 0.5) * self.bucket_secs()
    }

    /// Number of buckets.
    pub fn len(&self) -> usize {
        self.unseen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.unseen.is_empty()
    }
}

const NONE: u64 = u64::MAX;

/// The first width of a latency bucket, and at most this many of them.
pub const FIRST_LATENCY_BUCKET_NS: u64 = 100_000_000;
pub const MAX_LATENCY_BUCKETS: usize = 256;

/// The log-scale bin of a duration: exact below 64 ns, then 64 sub-bins per
/// power of two.
fn bin(v: u64) -> u16 {
    if v < 64 {
        return v as u16;
    }
    let e = 63 - v.leading_zeros() as u64; // >= 6
    let m = (v >> (e - 6)) & 63;
    (64 + (e - 6) * 64 + m) as u16
}

/// The middle of bin `b`'s range.
fn bin_mid(b: u16) -> u64 {
    let b = u64::from(b);
    if b < 64 {
        return b;
    }
    let (e, m) = ((b - 64) / 64 + 6, (b - 64) % 64);
    let width = 1u64 << (e - 6);
    ((64 + m) << (e - 6)) + width / 2
}

/// A sparse histogram: (bin, count) sorted by bin, and the exact maximum.
#[derive(Clone, Default)]
struct Hist {
    bins: Vec<(u16, u32)>,
    n: u64,
    max: u64,
}

impl Hist {
    fn add(&mut self, v: u64) {
        let b = bin(v);
        match self.bins.binary_search_by_key(&b, |x| x.0) {
            Ok(i) => self.bins[i].1 += 1,
            Err(i) => self.bins.insert(i, (b, 1)),
        }
        self.n += 1;
        self.max = self.max.max(v);
    }

    fn merge(mut self, other: Hist) -> Hist {
        for (b, c) in other.bins {
            match self.bins.binary_search_by_key(&b, |x| x.0) {
                Ok(i) => self.bins[i].1 += c,
                Err(i) => self.bins.insert(i, (b, c)),
            }
        }
        self.n += other.n;
        self.max = self.max.max(other.max);
        self
    }

    /// Nearest-rank quantile `q` (ns), never above the exact maximum.
    fn quantile(&self, q: f64) -> Option<u64> {
        if self.n == 0 {
            return None;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0u64;
        for &(b, c) in &self.bins {
            seen += u64::from(c);
            if seen >= rank {
                return Some(bin_mid(b).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// Latency histograms per function and bucket.
struct LatGrid {
    width: u64,
    by_f: BTreeMap<String, Vec<Hist>>,
}

impl Default for LatGrid {
    fn default() -> Self {
        LatGrid {
            width: FIRST_LATENCY_BUCKET_NS,
            by_f: BTreeMap::new(),
        }
    }
}

impl LatGrid {
    /// Coarsens (merging neighbours, doubling the width) until `t` falls
    /// inside the grid.
    fn reach(&mut self, t: u64) {
        while (t / self.width) as usize >= MAX_LATENCY_BUCKETS {
            self.width *= 2;
            for v in self.by_f.values_mut() {
                let mut it = std::mem::take(v).into_iter();
                while let Some(a) = it.next() {
                    v.push(match it.next() {
                        Some(b) => a.merge(b),
                        None => a,
                    });
                }
            }
        }
    }

    fn add(&mut self, f: &str, invoke: u64, d: u64) {
        self.reach(invoke);
        let i = (invoke / self.width) as usize;
        let v = match self.by_f.get_mut(f) {
            Some(v) => v,
            None => self.by_f.entry(f.to_string()).or_default(),
        };
        if v.len() <= i {
            v.resize(i + 1, Hist::default());
        }
        v[i].add(d);
    }

    /// The series, each as long as the history (`end`, ns).
    fn finish(mut self, end: u64) -> LatencyOverTime {
        if self.by_f.is_empty() {
            return LatencyOverTime::default();
        }
        self.reach(end);
        let n = (end / self.width) as usize + 1;
        let ms = |x: Option<u64>| x.map(|ns| ns as f64 / 1e6);
        let by_f = std::mem::take(&mut self.by_f)
            .into_iter()
            .map(|(f, mut v)| {
                v.resize(n.max(v.len()), Hist::default());
                let q = Quantiles {
                    p50: v.iter().map(|h| ms(h.quantile(0.5))).collect(),
                    p99: v.iter().map(|h| ms(h.quantile(0.99))).collect(),
                    max: v.iter().map(|h| ms((h.n > 0).then_some(h.max))).collect(),
                };
                (f, q)
            })
            .collect();
        LatencyOverTime {
            bucket_ms: self.width / 1_000_000,
            by_f,
        }
    }
}

/// Builds a [`Timeline`] from events in any time order.
pub(crate) struct Builder {
    width: u64,
    lag: Vec<u64>,
    catchup: Vec<u64>,
    unseen_max: Vec<u64>,
    /// The unseen count at the last change inside each bucket (`NONE`: no
    /// change there; the count carries over).
    unseen_end: Vec<u64>,
    unseen_now: u64,
    /// (f, outcome slot) -> completions per bucket.
    /// Looked up by `&str`: no allocation per event.
    completed: BTreeMap<String, [Vec<u64>; 3]>,
    lat: LatGrid,
    end: u64,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            width: FIRST_BUCKET_NS,
            lag: Vec::new(),
            catchup: Vec::new(),
            unseen_max: Vec::new(),
            unseen_end: Vec::new(),
            unseen_now: 0,
            completed: BTreeMap::new(),
            lat: LatGrid::default(),
            end: 0,
        }
    }
}

/// Merges neighbours pairwise.
fn halve(v: &mut Vec<u64>, merge: impl Fn(u64, u64) -> u64) {
    let n = v.len().div_ceil(2);
    for i in 0..n {
        let a = v[2 * i];
        let b = v.get(2 * i + 1).copied();
        v[i] = match b {
            Some(b) => merge(a, b),
            None => a,
        };
    }
    v.truncate(n);
}

fn max_opt(a: u64, b: u64) -> u64 {
    match (a, b) {
        (NONE, x) | (x, NONE) => x,
        (a, b) => a.max(b),
    }
}

pub(crate) const OUTCOMES: [&str; 3] = ["ok", "fail", "info"];

impl Builder {
    /// The bucket of time `t`, growing (and if need be coarsening) the series.
    fn bucket(&mut self, t: u64) -> usize {
        self.end = self.end.max(t);
        while (t / self.width) as usize >= MAX_BUCKETS {
            self.width *= 2;
            halve(&mut self.lag, max_opt);
            halve(&mut self.catchup, max_opt);
            halve(&mut self.unseen_max, u64::max);
            halve(&mut self.unseen_end, |a, b| if b == NONE { a } else { b });
            for v in self.completed.values_mut().flatten() {
                halve(v, |a, b| a + b);
            }
        }
        let i = (t / self.width) as usize;
        if i >= self.unseen_max.len() {
            let n = i + 1;
            self.lag.resize(n, NONE);
            self.catchup.resize(n, NONE);
            self.unseen_max.resize(n, 0);
            self.unseen_end.resize(n, NONE);
        }
        i
    }

    /// A poll invoked at `t` lagged `cluster` and `catchup` ns (worst over
    /// its keys; `None`: no key of that kind).
    pub fn poll(&mut self, t: u64, cluster: Option<u64>, catchup: Option<u64>) {
        let i = self.bucket(t);
        if let Some(l) = cluster {
            self.lag[i] = max_opt(self.lag[i], l);
        }
        if let Some(l) = catchup {
            self.catchup[i] = max_opt(self.catchup[i], l);
        }
    }

    /// The unseen count changed by `delta` at `t`.
    pub fn unseen(&mut self, t: u64, delta: i64) {
        self.unseen_now = self.unseen_now.saturating_add_signed(delta);
        let i = self.bucket(t);
        self.unseen_max[i] = self.unseen_max[i].max(self.unseen_now);
        self.unseen_end[i] = self.unseen_now;
    }

    /// A client operation `f` completed at `t` with outcome slot `o`
    /// (index into [`OUTCOMES`]).
    pub fn completed(&mut self, t: u64, f: &str, o: usize) {
        let i = self.bucket(t);
        let by_outcome = match self.completed.get_mut(f) {
            Some(x) => x,
            None => self.completed.entry(f.to_string()).or_default(),
        };
        let v = &mut by_outcome[o];
        if v.len() <= i {
            v.resize(i + 1, 0);
        }
        v[i] += 1;
    }

    /// An `ok` client operation `f` invoked at `invoke` took `d` ns.
    pub fn latency(&mut self, f: &str, invoke: u64, d: u64) {
        self.lat.add(f, invoke, d);
    }

    /// Notes the time of an event (the series reach the end of the history).
    pub fn saw(&mut self, t: u64) {
        if t > self.end {
            self.bucket(t);
        }
    }

    pub fn finish(mut self) -> Timeline {
        let n = if self.end == 0 && self.unseen_max.is_empty() {
            0
        } else {
            self.bucket(self.end) + 1
        };
        let ms = |v: &[u64]| -> Vec<Option<f64>> {
            v.iter()
                .map(|&x| (x != NONE).then(|| x as f64 / 1e6))
                .collect()
        };
        let mut unseen = Vec::with_capacity(n);
        let mut carried = 0;
        for i in 0..n {
            if self.unseen_end[i] == NONE {
                unseen.push(carried);
            } else {
                unseen.push(self.unseen_max[i].max(carried));
                carried = self.unseen_end[i];
            }
        }
        let mut completed: BTreeMap<String, BTreeMap<String, Vec<u64>>> = BTreeMap::new();
        for (f, by_outcome) in self.completed {
            let m = completed.entry(f).or_default();
            for (o, mut v) in by_outcome.into_iter().enumerate() {
                if !v.is_empty() {
                    v.resize(n, 0);
                    m.insert(OUTCOMES[o].to_string(), v);
                }
            }
        }
        Timeline {
            bucket_ms: self.width / 1_000_000,
            realtime_lag_ms: ms(&self.lag[..n]),
            catchup_lag_ms: ms(&self.catchup[..n]),
            unseen,
            completed,
            latency: self.lat.finish(self.end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn lag_and_catchup_are_kept_apart_and_the_worst_per_bucket_wins() {
        let mut b = Builder::default();
        b.poll(S / 20, Some(3_000_000), None);
        b.poll(S / 20 + 1, Some(5_000_000), Some(60 * S));
        b.poll(S / 2, None, None);
        let t = b.finish();
        assert_eq!(t.bucket_ms, 100);
        assert_eq!(t.realtime_lag_ms[0], Some(5.0));
        assert_eq!(t.catchup_lag_ms[0], Some(60_000.0));
        assert_eq!(t.realtime_lag_ms[5], None, "a poll with no lag of its kind");
        assert_eq!(t.len(), 6);
    }

    #[test]
    fn unseen_counts_carry_over_quiet_buckets_and_keep_their_peak() {
        let mut b = Builder::default();
        b.unseen(S / 10, 1); // bucket 1: 1
        b.unseen(S / 10 + 5, 1); // 2
        b.unseen(S / 10 + 9, -1); // 1 at the end of bucket 1
        b.unseen(S / 2 + 1, -1); // bucket 5: 0
        b.saw(S);
        let t = b.finish();
        assert_eq!(t.unseen[..7], [0, 2, 1, 1, 1, 1, 0]);
    }

    #[test]
    fn long_runs_coarsen_without_losing_peaks_or_counts() {
        let mut b = Builder::default();
        let hour = 3600 * S;
        for i in 0..3600u64 {
            b.completed(i * S, "send", 0);
            b.poll(i * S, Some(if i == 1234 { 9 * S } else { S / 100 }), None);
        }
        b.unseen(1234 * S, 500);
        b.unseen(1234 * S + 1, -500);
        b.saw(hour);
        let t = b.finish();
        assert!(t.len() <= MAX_BUCKETS, "{} buckets", t.len());
        assert!(t.bucket_ms >= 1000);
        let lag_peak = t
            .realtime_lag_ms
            .iter()
            .flatten()
            .fold(0.0f64, |a, &b| a.max(b));
        assert_eq!(lag_peak, 9000.0);
        assert_eq!(t.unseen.iter().max(), Some(&500));
        assert_eq!(*t.unseen.last().unwrap(), 0);
        let sends: u64 = t.completed["send"]["ok"].iter().sum();
        assert_eq!(sends, 3600);
        assert_eq!(t.completed["send"]["ok"].len(), t.len());
    }

    #[test]
    fn bins_hold_values_within_a_percent() {
        for v in [
            0u64,
            1,
            63,
            64,
            65,
            1000,
            123_456,
            9_999_999_999,
            u64::MAX / 3,
        ] {
            let m = bin_mid(bin(v));
            let err = (m as f64 - v as f64).abs() / (v.max(1) as f64);
            assert!(err <= 1.0 / 64.0, "{v} -> {m}");
        }
        assert!(bin(u64::MAX) > bin(u64::MAX / 2));
    }

    #[test]
    fn latency_quantiles_per_bucket_are_nearest_rank_and_the_max_exact() {
        let mut b = Builder::default();
        // Bucket 0: 1..=100 ms; bucket 3: one op of 2.5 s.
        for ms in 1..=100u64 {
            b.latency("send", 0, ms * 1_000_000);
        }
        b.latency("send", 3 * S / 10, 2_500_000_123);
        b.saw(S / 2);
        let t = b.finish();
        let l = &t.latency;
        assert_eq!(l.bucket_ms, 100);
        let q = &l.by_f["send"];
        assert_eq!(q.p50.len(), 6, "as long as the history");
        let close = |a: f64, b: f64| (a - b).abs() / b < 0.01;
        assert!(close(q.p50[0].unwrap(), 50.0), "{:?}", q.p50[0]);
        assert!(close(q.p99[0].unwrap(), 99.0), "{:?}", q.p99[0]);
        assert_eq!(q.max[0], Some(100.0));
        assert_eq!(q.max[3], Some(2500.000123), "exact");
        assert_eq!(q.p50[1], None);
    }

    #[test]
    fn latency_buckets_coarsen_for_long_runs() {
        let mut b = Builder::default();
        for i in 0..3600u64 {
            b.latency("poll", i * S, if i == 3000 { 60 * S } else { S / 1000 });
        }
        b.saw(3600 * S);
        let t = b.finish();
        let q = &t.latency.by_f["poll"];
        assert!(q.max.len() <= MAX_LATENCY_BUCKETS);
        assert_eq!(
            q.max.iter().flatten().fold(0.0f64, |a, &b| a.max(b)),
            60_000.0
        );
    }

    #[test]
    fn an_empty_history_has_an_empty_timeline() {
        let t = Builder::default().finish();
        assert!(t.is_empty());
        assert!(t.realtime_lag_ms.is_empty() && t.completed.is_empty());
    }
}
