//! `gregor compare A B`: did run B regress against run A?
//!
//! Pure: two check results (with their run metadata) in, a [`Comparison`]
//! out — one [`Row`] per compared number, side by side, each with the
//! threshold it was held to and whether B crossed it. B regressed when any
//! row did. Thresholds have defaults ([`Thresholds::default`]) that flags
//! override.
//!
//! What counts as worse (each threshold below is a field of [`Thresholds`],
//! where its default lives, and a flag of `compare`, `run --baseline` and
//! `certify --baseline` of the same name):
//!
//! - the verdict: `valid` > `unknown` > `invalid`; B worse than A regresses;
//! - every anomaly type either side has: a type the model forbids
//!   (`bad-types`) that B has and A has not, or B's count above A's by more
//!   than `anomaly-tolerance` (relative) plus `anomaly-floor`;
//! - lost, unseen and duplicated rates: B above A by more than
//!   `rate-tolerance` (absolute; default 0: any increase);
//! - per function, p50 and p99 latency of `ok` operations, and their p99
//!   outside fault windows: B above A by more than `latency-tolerance`
//!   (relative) plus `latency-floor-ms`; p99.9 by more than
//!   `tail-latency-tolerance` plus `latency-floor-ms`; p99 inside fault
//!   windows by more than `fault-latency-tolerance` plus
//!   `fault-latency-floor-ms`;
//! - per function, the worst unavailability over fault windows (a window
//!   the function never recovered from counts to the end of the history):
//!   `unavailable-tolerance` plus `unavailable-floor-s`;
//! - per function, the worst recovery time (from a heal to the first
//!   success after it; windows after which the function never ran again
//!   are left to the unavailability): `recovery-tolerance` plus
//!   `recovery-floor-s`;
//! - the worst time to a new leader (`new-leader-tolerance` plus
//!   `new-leader-floor-s`) and the worst consumer rebalance
//!   (`rebalance-tolerance` plus `rebalance-floor-s`) over fault windows;
//! - throughput (`ok` operations per workload second): B below A by more
//!   than `throughput-tolerance` (relative).
//!
//! Numbers only one side has are listed but never regress.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use gregor_checkers::availability::{Availability, FnAvailability, WindowAvailability};
use gregor_checkers::{CheckResult, Latency, Validity};
use gregor_history::RunMeta;
use serde::Serialize;

/// A threshold given on the command line: a finite number at least 0.
pub fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?}: must be a number at least 0")),
    }
}

/// How much worse B may be before it counts as a regression. "Relative"
/// tolerances are fractions of A's number (0.5: 50% more); each "floor" is
/// added to the limit so tiny numbers do not regress on noise. With the
/// `clap` feature, the fields are command-line flags of the same names,
/// with the defaults of [`Thresholds::DEFAULT`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(rename_all = "kebab-case")]
pub struct Thresholds {
    /// Allowed absolute increase of the lost, unseen and duplicated rates.
    #[cfg_attr(feature = "clap", arg(long, value_name = "FRACTION", value_parser = non_negative, default_value_t = Thresholds::DEFAULT.rate_tolerance))]
    pub rate_tolerance: f64,
    /// Allowed relative increase of any anomaly type's count ...
    #[cfg_attr(feature = "clap", arg(long, value_name = "FRACTION", value_parser = non_negative, default_value_t = Thresholds::DEFAULT.anomaly_tolerance))]
    pub anomaly_tolerance: f64,
    /// ... plus this many anomalies.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N", value_parser = non_negative, default_value_t = Thresholds::DEFAULT.anomaly_floor))]
    pub anomaly_floor: f64,
    /// Allowed relative increase of p50 and p99 latency (overall and outside fault windows) ...
    #[cfg_attr(feature = "clap", arg(long, value_name = "FRACTION", value_parser = non_negative, default_value_t = Thresholds::DEFAULT.latency_tolerance))]
    pub latency_tolerance: f64,
    /// Allowed relative increase of p99.9 latency ...
    #[cfg_attr(feature = "clap", arg(long, value_name = "FRACTION", value_parser = non_negative, default_value_t = Thresholds::DEFAULT.tail_latency_tolerance))]
    pub tail_latency_tolerance: f64,
    /// ... each plus this many milliseconds.
    #[cfg_attr(feature = "clap", arg(long, value_name = "MS", value_parser = non_negative, default_value_t = Thresholds::DEFAULT.latency_floor_ms))]
    pub latency_floor_ms: f64,
    /// Allowed relative increase of p99 latency inside fault windows ...
    #[cfg_attr(feature = "clap", arg(long, value_name = "FRACTION", value_parser = non_negative, default_value_t = Thresholds::DEFAULT.fault_latency_tolerance))]
    pub fault_latency_tolerance: f64,
    /// ... plus this many milliseconds.
    #[cfg_attr(feature = "clap", arg(long, value_name = "MS", value_parser = non_negative, default_value_t = Thresholds::DEFAULT.fault_latency_floor_ms))]
    pub fault_latency_floor_ms: f64,
    /// Allowed relative increase of the worst unavailability ...
    #[cfg_attr(feature = "clap", arg(long, value_name = "FRACTION", value_parser = non_negative, default_value_t = Thresholds::DEFAULT.unavailable_tolerance))]
    pub unavailable_tolerance: f64,
    /// ... plus this many seconds.
    #[cfg_attr(feature = "clap", arg(long, value_name = "SECS", value_parser = non_negative, default_value_t = Thresholds::DEFAULT.unavailable_floor_s))]
    pub unavailable_floor_s: f64,
    /// Allowed relative increase of the worst recovery after a heal ...
    #[cfg_attr(feature = "clap", arg(long, value_name = "FRACTION", value_parser = non_negative, default_value_t = Thresholds::DEFAULT.recovery_tolerance))]
    pub recovery_tolerance: f64,
    /// ... plus this many seconds.
    #[cfg_attr(feature = "clap", arg(long, value_name = "SECS", value_parser = non_negative, default_value_t = Thresholds::DEFAULT.recovery_floor_s))]
    pub recovery_floor_s: f64,
    /// Allowed relative increase of the worst time to a new leader ...
    #[cfg_attr(feature = "clap", arg(long, value_name = "FRACTION", value_parser = non_negative, default_value_t = Thresholds::DEFAULT.new_leader_tolerance))]
    pub new_leader_tolerance: f64,
    /// ... plus this many seconds.
    #[cfg_attr(feature = "clap", arg(long, value_name = "SECS", value_parser = non_negative, default_value_t = Thresholds::DEFAULT.new_leader_floor_s))]
    pub new_leader_floor_s: f64,
    /// Allowed relative increase of the worst consumer rebalance ...
    #[cfg_attr(feature = "clap", arg(long, value_name = "FRACTION", value_parser = non_negative, default_value_t = Thresholds::DEFAULT.rebalance_tolerance))]
    pub rebalance_tolerance: f64,
    /// ... plus this many seconds.
    #[cfg_attr(feature = "clap", arg(long, value_name = "SECS", value_parser = non_negative, default_value_t = Thresholds::DEFAULT.rebalance_floor_s))]
    pub rebalance_floor_s: f64,
    /// Allowed relative drop of throughput (ok operations per second).
    #[cfg_attr(feature = "clap", arg(long, value_name = "FRACTION", value_parser = non_negative, default_value_t = Thresholds::DEFAULT.throughput_tolerance))]
    pub throughput_tolerance: f64,
}

impl Thresholds {
    /// The defaults: the one place they are written down.
    pub const DEFAULT: Thresholds = Thresholds {
        rate_tolerance: 0.0,
        anomaly_tolerance: 1.0,
        anomaly_floor: 10.0,
        latency_tolerance: 0.5,
        tail_latency_tolerance: 1.0,
        latency_floor_ms: 5.0,
        fault_latency_tolerance: 1.0,
        fault_latency_floor_ms: 100.0,
        unavailable_tolerance: 0.5,
        unavailable_floor_s: 1.0,
        recovery_tolerance: 0.5,
        recovery_floor_s: 1.0,
        new_leader_tolerance: 0.5,
        new_leader_floor_s: 1.0,
        rebalance_tolerance: 0.5,
        rebalance_floor_s: 2.0,
        throughput_tolerance: 0.2,
    };
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds::DEFAULT
    }
}

/// One compared number.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Row {
    pub metric: String,
    pub a: Option<String>,
    pub b: Option<String>,
    /// What B was held to, in words.
    pub limit: String,
    pub regressed: bool,
}

/// The whole comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub thresholds: Thresholds,
    pub rows: Vec<Row>,
    pub regressed: bool,
}

impl Comparison {
    /// The rows B regressed on, each as `metric: A -> B`.
    pub fn regressions(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.regressed)
            .map(|r| {
                format!(
                    "{}: {} -> {}",
                    r.metric,
                    r.a.as_deref().unwrap_or("-"),
                    r.b.as_deref().unwrap_or("-")
                )
            })
            .collect()
    }
}

/// One side: a name (its run directory), its result and metadata.
pub struct Side<'a> {
    pub name: &'a str,
    pub result: &'a CheckResult,
    pub meta: Option<&'a RunMeta>,
}

fn rank(v: Validity) -> u8 {
    match v {
        Validity::True => 2,
        Validity::Unknown => 1,
        Validity::False => 0,
    }
}

fn word(v: Validity) -> &'static str {
    match v {
        Validity::True => "valid",
        Validity::Unknown => "unknown",
        Validity::False => "invalid",
    }
}

/// `ok` operations per second of workload, when the metadata says how long
/// the workload ran.
pub fn throughput(r: &CheckResult, m: Option<&RunMeta>) -> Option<f64> {
    let secs = m?.extra.get("workload-seconds")?.as_f64()?;
    if secs <= 0.0 {
        return None;
    }
    let ok: u64 = r.stats.ops.values().filter_map(|by| by.get("ok")).sum();
    Some(ok as f64 / secs)
}

/// A row for a number where more is worse: B regresses above
/// `A * (1 + tolerance) + floor`; `digits` after the point.
fn more_is_worse(
    metric: String,
    a: Option<f64>,
    b: Option<f64>,
    (tolerance, floor): (f64, f64),
    digits: usize,
) -> Row {
    let limit = a.map(|x| x * (1.0 + tolerance) + floor);
    Row {
        metric,
        a: a.map(|x| format!("{x:.digits$}")),
        b: b.map(|x| format!("{x:.digits$}")),
        limit: limit.map_or("-".into(), |l| format!("<= {l:.digits$}")),
        regressed: matches!((b, limit), (Some(b), Some(l)) if b > l + 1e-12),
    }
}

/// Per function, the largest of `pick` over the windows that have one.
fn worst_per_f(
    av: Option<&Availability>,
    pick: impl Fn(&FnAvailability) -> Option<f64>,
) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for w in av.map_or(&[][..], |a| &a.windows[..]) {
        for (f, fa) in &w.by_f {
            if let Some(x) = pick(fa) {
                let e = out.entry(f.clone()).or_insert(x);
                *e = e.max(x);
            }
        }
    }
    out
}

/// The largest of `pick` over the windows that have one.
fn worst_window(
    av: Option<&Availability>,
    pick: impl Fn(&WindowAvailability) -> Option<f64>,
) -> Option<f64> {
    av.map_or(&[][..], |a| &a.windows[..])
        .iter()
        .filter_map(pick)
        .reduce(f64::max)
}

/// One row per function of either map, with its quantile `q`.
fn per_f_rows(
    rows: &mut Vec<Row>,
    what: &str,
    la: &BTreeMap<String, Latency>,
    lb: &BTreeMap<String, Latency>,
    q: fn(&Latency) -> f64,
    t: (f64, f64),
) {
    let fs: BTreeSet<&String> = la.keys().chain(lb.keys()).collect();
    for f in fs {
        rows.push(more_is_worse(
            format!("{f} {what} (ms)"),
            la.get(f).map(q),
            lb.get(f).map(q),
            t,
            2,
        ));
    }
}

/// One row per function of either map.
fn per_f_secs(
    rows: &mut Vec<Row>,
    what: &str,
    wa: &BTreeMap<String, f64>,
    wb: &BTreeMap<String, f64>,
    t: (f64, f64),
) {
    let fs: BTreeSet<&String> = wa.keys().chain(wb.keys()).collect();
    for f in fs {
        rows.push(more_is_worse(
            format!("{f} {what} (s)"),
            wa.get(f).copied(),
            wb.get(f).copied(),
            t,
            3,
        ));
    }
}

/// Compares B against A.
pub fn compare(a: &Side, b: &Side, t: &Thresholds) -> Comparison {
    let mut rows = Vec::new();
    let (ra, rb) = (a.result, b.result);
    rows.push(Row {
        metric: "verdict".into(),
        a: Some(word(ra.valid).into()),
        b: Some(word(rb.valid).into()),
        limit: "no worse".into(),
        regressed: rank(rb.valid) < rank(ra.valid),
    });
    let kinds: BTreeSet<&String> = ra
        .anomalies
        .keys()
        .chain(rb.anomalies.keys())
        .chain(&ra.bad_types)
        .chain(&rb.bad_types)
        .collect();
    for kind in kinds {
        let count = |r: &CheckResult| r.anomalies.get(kind.as_str()).map_or(0, |g| g.count);
        let (na, nb) = (count(ra), count(rb));
        let new_forbidden = rb.bad_types.contains(kind) && !ra.bad_types.contains(kind);
        let mut row = more_is_worse(
            format!("anomaly {kind}"),
            Some(na as f64),
            Some(nb as f64),
            (t.anomaly_tolerance, t.anomaly_floor),
            0,
        );
        if rb.bad_types.contains(kind) {
            row.limit = format!("{}; not new (forbidden)", row.limit);
        }
        row.regressed |= new_forbidden;
        rows.push(row);
    }
    for (name, va, vb) in [
        ("lost rate", ra.stats.lost_rate, rb.stats.lost_rate),
        ("unseen rate", ra.stats.unseen_rate, rb.stats.unseen_rate),
        (
            "duplicated rate",
            ra.stats.duplicated_rate,
            rb.stats.duplicated_rate,
        ),
    ] {
        rows.push(Row {
            metric: name.into(),
            a: Some(format!("{va:.6}")),
            b: Some(format!("{vb:.6}")),
            limit: format!("<= A + {}", t.rate_tolerance),
            regressed: vb > va + t.rate_tolerance + 1e-12,
        });
    }
    let (la, lb) = (&ra.stats.latency, &rb.stats.latency);
    let usual = (t.latency_tolerance, t.latency_floor_ms);
    per_f_rows(&mut rows, "p50 latency", la, lb, |l| l.p50, usual);
    per_f_rows(&mut rows, "p99 latency", la, lb, |l| l.p99, usual);
    let tail = (t.tail_latency_tolerance, t.latency_floor_ms);
    per_f_rows(&mut rows, "p99.9 latency", la, lb, |l| l.p999, tail);
    let (aa, ab) = (
        ra.stats.availability.as_ref(),
        rb.stats.availability.as_ref(),
    );
    let empty = BTreeMap::new();
    let (in_a, in_b, out_a, out_b) = (
        aa.map_or(&empty, |a| &a.latency_in_faults),
        ab.map_or(&empty, |a| &a.latency_in_faults),
        aa.map_or(&empty, |a| &a.latency_outside_faults),
        ab.map_or(&empty, |a| &a.latency_outside_faults),
    );
    let faults = (t.fault_latency_tolerance, t.fault_latency_floor_ms);
    per_f_rows(
        &mut rows,
        "p99 latency in faults",
        in_a,
        in_b,
        |l| l.p99,
        faults,
    );
    per_f_rows(
        &mut rows,
        "p99 latency outside faults",
        out_a,
        out_b,
        |l| l.p99,
        usual,
    );
    let worst = |av: Option<&Availability>| {
        av.map(|a| a.worst_unavailable_s.clone())
            .unwrap_or_default()
    };
    per_f_secs(
        &mut rows,
        "worst unavailability",
        &worst(aa),
        &worst(ab),
        (t.unavailable_tolerance, t.unavailable_floor_s),
    );
    let stalled =
        |av: Option<&Availability>| av.map(|a| a.worst_stalled_s.clone()).unwrap_or_default();
    // A stall is unavailability that hung instead of failing: the same
    // thresholds.
    per_f_secs(
        &mut rows,
        "worst stall",
        &stalled(aa),
        &stalled(ab),
        (t.unavailable_tolerance, t.unavailable_floor_s),
    );
    per_f_secs(
        &mut rows,
        "worst recovery",
        &worst_per_f(aa, |f| f.recovery_s),
        &worst_per_f(ab, |f| f.recovery_s),
        (t.recovery_tolerance, t.recovery_floor_s),
    );
    // Per window, not per function: rows only when either side has one.
    for (metric, pick, tol) in [
        (
            "worst new-leader time (s)",
            (|w| w.new_leader_s) as fn(&WindowAvailability) -> Option<f64>,
            (t.new_leader_tolerance, t.new_leader_floor_s),
        ),
        (
            "worst rebalance time (s)",
            |w| w.rebalance_s,
            (t.rebalance_tolerance, t.rebalance_floor_s),
        ),
    ] {
        let (wa, wb) = (worst_window(aa, pick), worst_window(ab, pick));
        if wa.is_some() || wb.is_some() {
            rows.push(more_is_worse(metric.into(), wa, wb, tol, 3));
        }
    }
    let (ta, tb) = (throughput(ra, a.meta), throughput(rb, b.meta));
    let limit = ta.map(|x| x * (1.0 - t.throughput_tolerance));
    rows.push(Row {
        metric: "throughput (ok ops/s)".into(),
        a: ta.map(|x| format!("{x:.1}")),
        b: tb.map(|x| format!("{x:.1}")),
        limit: limit.map_or("-".into(), |l| format!(">= {l:.1}")),
        regressed: matches!((tb, limit), (Some(b), Some(l)) if b < l),
    });
    let regressed = rows.iter().any(|r| r.regressed);
    Comparison {
        a: a.name.to_string(),
        b: b.name.to_string(),
        thresholds: t.clone(),
        rows,
        regressed,
    }
}

/// The comparison as a plain-text table.
pub fn text(c: &Comparison) -> String {
    let w = c
        .rows
        .iter()
        .map(|r| r.metric.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut s = String::new();
    let _ = writeln!(s, "A: {}\nB: {}", c.a, c.b);
    let _ = writeln!(
        s,
        "{:w$}  {:>14}  {:>14}  {:>16}  result",
        "metric", "A", "B", "B limit"
    );
    for r in &c.rows {
        let _ = writeln!(
            s,
            "{:w$}  {:>14}  {:>14}  {:>16}  {}",
            r.metric,
            r.a.as_deref().unwrap_or("-"),
            r.b.as_deref().unwrap_or("-"),
            r.limit,
            if r.regressed { "REGRESSED" } else { "ok" }
        );
    }
    let n = c.rows.iter().filter(|r| r.regressed).count();
    let _ = writeln!(
        s,
        "{}",
        if c.regressed {
            format!("B regressed on {n} of {} metrics", c.rows.len())
        } else {
            format!("B did not regress ({} metrics compared)", c.rows.len())
        }
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_checkers::{AnomalyGroup, Stats};

    fn result(valid: Validity, p99: f64, lost_rate: f64, bad: &[&str]) -> CheckResult {
        let mut stats = Stats {
            lost_rate,
            ..Default::default()
        };
        stats.latency.insert(
            "send".into(),
            Latency {
                count: 100,
                p50: p99 / 2.0,
                p90: p99 * 0.8,
                p99,
                p999: p99,
                max: p99,
            },
        );
        stats
            .ops
            .insert("send".into(), [("ok".to_string(), 1000u64)].into());
        let mut anomalies = BTreeMap::new();
        for b in bad {
            anomalies.insert(
                b.to_string(),
                AnomalyGroup {
                    count: 2,
                    examples: vec![],
                },
            );
        }
        CheckResult {
            valid,
            anomaly_types: bad.iter().map(|s| s.to_string()).collect(),
            bad_types: bad.iter().map(|s| s.to_string()).collect(),
            anomalies,
            stats,
        }
    }

    fn meta(secs: f64) -> RunMeta {
        let mut m = RunMeta::default();
        m.extra
            .insert("workload-seconds".into(), serde_json::json!(secs));
        m
    }

    fn cmp(a: &CheckResult, b: &CheckResult, ma: f64, mb: f64) -> Comparison {
        let (ma, mb) = (meta(ma), meta(mb));
        compare(
            &Side {
                name: "A",
                result: a,
                meta: Some(&ma),
            },
            &Side {
                name: "B",
                result: b,
                meta: Some(&mb),
            },
            &Thresholds::default(),
        )
    }

    fn regressed(c: &Comparison) -> Vec<&str> {
        c.rows
            .iter()
            .filter(|r| r.regressed)
            .map(|r| r.metric.as_str())
            .collect()
    }

    #[test]
    fn the_same_run_does_not_regress() {
        let a = result(Validity::True, 10.0, 0.0, &[]);
        let c = cmp(&a, &a, 10.0, 10.0);
        assert!(!c.regressed, "{}", text(&c));
        assert!(text(&c).contains("B did not regress"));
    }

    #[test]
    fn a_new_forbidden_anomaly_and_a_worse_verdict_regress() {
        let a = result(Validity::True, 10.0, 0.0, &[]);
        let b = result(Validity::False, 10.0, 0.01, &["lost-write"]);
        let c = cmp(&a, &b, 10.0, 10.0);
        assert!(c.regressed);
        assert_eq!(
            regressed(&c),
            vec!["verdict", "anomaly lost-write", "lost rate"],
            "{}",
            text(&c)
        );
        // The other way round is an improvement, not a regression.
        assert!(!cmp(&b, &a, 10.0, 10.0).regressed);
    }

    #[test]
    fn latency_and_throughput_regress_only_past_their_thresholds() {
        let a = result(Validity::True, 10.0, 0.0, &[]);
        // 10 ms * 1.5 + 5 = 20 ms allowed.
        assert!(!cmp(&a, &result(Validity::True, 19.9, 0.0, &[]), 10.0, 10.0).regressed);
        let slow = cmp(&a, &result(Validity::True, 20.5, 0.0, &[]), 10.0, 10.0);
        assert_eq!(regressed(&slow), vec!["send p99 latency (ms)"]);
        // 1000 ok ops in 10 s vs in 13 s: 100/s vs 76.9/s < 80/s.
        let fewer = cmp(&a, &a, 10.0, 13.0);
        assert_eq!(
            regressed(&fewer),
            vec!["throughput (ok ops/s)"],
            "{}",
            text(&fewer)
        );
        assert!(!cmp(&a, &a, 10.0, 12.0).regressed);
    }

    #[test]
    fn worse_unavailability_regresses() {
        let with = |worst: f64| {
            let mut r = result(Validity::True, 10.0, 0.0, &[]);
            let mut av = gregor_checkers::availability::Availability::default();
            av.worst_unavailable_s.insert("send".into(), worst);
            r.stats.availability = Some(av);
            r
        };
        // 2 s * 1.5 + 1 = 4 s allowed.
        assert!(!cmp(&with(2.0), &with(3.9), 10.0, 10.0).regressed);
        let c = cmp(&with(2.0), &with(6.0), 10.0, 10.0);
        assert_eq!(regressed(&c), vec!["send worst unavailability (s)"]);
    }

    fn latency(p50: f64, p99: f64, p999: f64) -> Latency {
        Latency {
            count: 100,
            p50,
            p90: p99,
            p99,
            p999,
            max: p999,
        }
    }

    fn with_latency(p50: f64, p99: f64, p999: f64) -> CheckResult {
        let mut r = result(Validity::True, 10.0, 0.0, &[]);
        r.stats
            .latency
            .insert("send".into(), latency(p50, p99, p999));
        r
    }

    #[test]
    fn p50_and_p99_9_latency_regress_each_past_their_own_threshold() {
        let a = with_latency(4.0, 10.0, 20.0);
        // p50: 4 * 1.5 + 5 = 11 allowed; p99.9: 20 * 2 + 5 = 45 allowed.
        assert!(!cmp(&a, &with_latency(10.9, 10.0, 44.0), 10.0, 10.0).regressed);
        let c = cmp(&a, &with_latency(11.5, 10.0, 20.0), 10.0, 10.0);
        assert_eq!(regressed(&c), vec!["send p50 latency (ms)"], "{}", text(&c));
        let c = cmp(&a, &with_latency(4.0, 10.0, 46.0), 10.0, 10.0);
        assert_eq!(
            regressed(&c),
            vec!["send p99.9 latency (ms)"],
            "{}",
            text(&c)
        );
        // The tail's tolerance is its own flag.
        let tight = Thresholds {
            tail_latency_tolerance: 0.5,
            ..Thresholds::default()
        };
        let b = with_latency(4.0, 10.0, 40.0);
        assert!(!cmp(&a, &b, 10.0, 10.0).regressed);
        assert_eq!(
            regressed(&cmp_with(&a, &b, &tight)),
            vec!["send p99.9 latency (ms)"]
        );
    }

    fn cmp_with(a: &CheckResult, b: &CheckResult, t: &Thresholds) -> Comparison {
        let m = meta(10.0);
        compare(
            &Side {
                name: "A",
                result: a,
                meta: Some(&m),
            },
            &Side {
                name: "B",
                result: b,
                meta: Some(&m),
            },
            t,
        )
    }

    /// A result with one fault window whose send side is `by_f`, and the
    /// given latency inside and outside fault windows.
    fn with_window(
        by_f: FnAvailability,
        new_leader_s: Option<f64>,
        rebalance_s: Option<f64>,
        p99_in: f64,
        p99_out: f64,
    ) -> CheckResult {
        let mut r = result(Validity::True, 10.0, 0.0, &[]);
        let mut av = Availability::default();
        av.windows.push(WindowAvailability {
            fault: "kill".into(),
            start_s: 10.0,
            end_s: 20.0,
            by_f: [("send".to_string(), by_f)].into(),
            new_leader_s,
            rebalance_s,
            ..Default::default()
        });
        av.latency_in_faults
            .insert("send".into(), latency(p99_in, p99_in, p99_in));
        av.latency_outside_faults
            .insert("send".into(), latency(p99_out, p99_out, p99_out));
        r.stats.availability = Some(av);
        r
    }

    fn recovered_in(s: f64) -> FnAvailability {
        FnAvailability {
            ok: 10,
            recovery_s: Some(s),
            unavailable_s: Some(0.0),
            ..Default::default()
        }
    }

    #[test]
    fn latency_inside_and_outside_fault_windows_regress_apart() {
        let a = with_window(recovered_in(1.0), None, None, 200.0, 10.0);
        // In faults: 200 * 2 + 100 = 500 allowed; outside: 10 * 1.5 + 5 = 20.
        let ok = with_window(recovered_in(1.0), None, None, 490.0, 19.0);
        assert!(
            !cmp(&a, &ok, 10.0, 10.0).regressed,
            "{}",
            text(&cmp(&a, &ok, 10.0, 10.0))
        );
        let c = cmp(
            &a,
            &with_window(recovered_in(1.0), None, None, 510.0, 10.0),
            10.0,
            10.0,
        );
        assert_eq!(
            regressed(&c),
            vec!["send p99 latency in faults (ms)"],
            "{}",
            text(&c)
        );
        let c = cmp(
            &a,
            &with_window(recovered_in(1.0), None, None, 200.0, 21.0),
            10.0,
            10.0,
        );
        assert_eq!(
            regressed(&c),
            vec!["send p99 latency outside faults (ms)"],
            "{}",
            text(&c)
        );
    }

    #[test]
    fn slower_recovery_new_leader_and_rebalance_regress() {
        let a = with_window(recovered_in(2.0), Some(2.0), Some(4.0), 10.0, 10.0);
        // Each 2 s (4 s) * 1.5 + 1 s (2 s): 4 s, 4 s, 8 s allowed.
        let same = with_window(recovered_in(3.9), Some(3.9), Some(7.9), 10.0, 10.0);
        assert!(
            !cmp(&a, &same, 10.0, 10.0).regressed,
            "{}",
            text(&cmp(&a, &same, 10.0, 10.0))
        );
        let c = cmp(
            &a,
            &with_window(recovered_in(4.5), Some(2.0), Some(4.0), 10.0, 10.0),
            10.0,
            10.0,
        );
        assert_eq!(
            regressed(&c),
            vec!["send worst recovery (s)"],
            "{}",
            text(&c)
        );
        let c = cmp(
            &a,
            &with_window(recovered_in(2.0), Some(4.5), Some(4.0), 10.0, 10.0),
            10.0,
            10.0,
        );
        assert_eq!(
            regressed(&c),
            vec!["worst new-leader time (s)"],
            "{}",
            text(&c)
        );
        let c = cmp(
            &a,
            &with_window(recovered_in(2.0), Some(2.0), Some(9.0), 10.0, 10.0),
            10.0,
            10.0,
        );
        assert_eq!(
            regressed(&c),
            vec!["worst rebalance time (s)"],
            "{}",
            text(&c)
        );
        // A side that never saw a leader change or a rebalance only lists them.
        let none = with_window(recovered_in(2.0), None, None, 10.0, 10.0);
        let c = cmp(&none, &a, 10.0, 10.0);
        assert!(!c.regressed, "{}", text(&c));
        assert!(text(&c).contains("worst rebalance time (s)"));
    }

    #[test]
    fn counts_of_allowed_anomalies_regress_past_their_threshold() {
        let with = |n: u64| {
            let mut r = result(Validity::True, 10.0, 0.0, &[]);
            r.anomaly_types = vec!["poll-skip".into()];
            r.anomalies.insert(
                "poll-skip".into(),
                AnomalyGroup {
                    count: n,
                    examples: vec![],
                },
            );
            r
        };
        // 10 * 2 + 10 = 30 allowed.
        assert!(!cmp(&with(10), &with(30), 10.0, 10.0).regressed);
        let c = cmp(&with(10), &with(31), 10.0, 10.0);
        assert_eq!(regressed(&c), vec!["anomaly poll-skip"], "{}", text(&c));
        // A type only B has, allowed by the model, counts from 0.
        let clean = result(Validity::True, 10.0, 0.0, &[]);
        assert!(!cmp(&clean, &with(10), 10.0, 10.0).regressed);
        let strict = Thresholds {
            anomaly_floor: 0.0,
            ..Thresholds::default()
        };
        assert_eq!(
            regressed(&cmp_with(&clean, &with(1), &strict)),
            vec!["anomaly poll-skip"]
        );
    }
}
