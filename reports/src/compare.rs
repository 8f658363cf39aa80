//! `gregor compare A B`: did run B regress against run A?
//!
//! Pure: two check results (with their run metadata) in, a [`Comparison`]
//! out — one [`Row`] per compared number, side by side, each with the
//! threshold it was held to and whether B crossed it. B regressed when any
//! row did. Thresholds have defaults ([`Thresholds::default`]) that flags
//! override.
//!
//! What counts as worse:
//!
//! - the verdict: `valid` > `unknown` > `invalid`; B worse than A regresses;
//! - anomaly types the model forbids (`bad-types`) that B has and A has not;
//! - lost, unseen and duplicated rates: B above A by more than
//!   `rate` (absolute; default 0: any increase);
//! - per function, p99 latency of `ok` operations: B above A by more than
//!   `latency` (relative, default 50%) plus `latency-floor-ms` (default 5);
//! - per function, the worst unavailability over fault windows: B above A
//!   by more than `unavailable` (relative, default 50%) plus
//!   `unavailable-floor-s` (default 1 s);
//! - throughput (`ok` operations per workload second): B below A by more
//!   than `throughput` (relative, default 20%).
//!
//! Numbers only one side has are listed but never regress.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use gregor_checkers::{CheckResult, Validity};
use gregor_history::RunMeta;
use serde::Serialize;

/// How much worse B may be before it counts as a regression.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Thresholds {
    pub rate: f64,
    pub latency: f64,
    pub latency_floor_ms: f64,
    pub unavailable: f64,
    pub unavailable_floor_s: f64,
    pub throughput: f64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            rate: 0.0,
            latency: 0.5,
            latency_floor_ms: 5.0,
            unavailable: 0.5,
            unavailable_floor_s: 1.0,
            throughput: 0.2,
        }
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
    let bad_a: BTreeSet<&String> = ra.bad_types.iter().collect();
    let all_bad: BTreeSet<&String> = ra.bad_types.iter().chain(&rb.bad_types).collect();
    for kind in all_bad {
        let count = |r: &CheckResult| r.anomalies.get(kind.as_str()).map_or(0, |g| g.count);
        rows.push(Row {
            metric: format!("anomaly {kind}"),
            a: Some(count(ra).to_string()),
            b: Some(count(rb).to_string()),
            limit: "no new forbidden type".into(),
            regressed: rb.bad_types.contains(kind) && !bad_a.contains(kind),
        });
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
            limit: format!("<= A + {}", t.rate),
            regressed: vb > va + t.rate + 1e-12,
        });
    }
    let fs: BTreeSet<&String> = ra
        .stats
        .latency
        .keys()
        .chain(rb.stats.latency.keys())
        .collect();
    for f in fs {
        let la = ra.stats.latency.get(f.as_str()).map(|l| l.p99);
        let lb = rb.stats.latency.get(f.as_str()).map(|l| l.p99);
        let limit = la.map(|x| x * (1.0 + t.latency) + t.latency_floor_ms);
        rows.push(Row {
            metric: format!("{f} p99 latency (ms)"),
            a: la.map(|x| format!("{x:.2}")),
            b: lb.map(|x| format!("{x:.2}")),
            limit: limit.map_or("-".into(), |l| format!("<= {l:.2}")),
            regressed: matches!((lb, limit), (Some(b), Some(l)) if b > l),
        });
    }
    let worst = |r: &CheckResult| -> BTreeMap<String, f64> {
        r.stats
            .availability
            .as_ref()
            .map(|a| a.worst_unavailable_s.clone())
            .unwrap_or_default()
    };
    let (wa, wb) = (worst(ra), worst(rb));
    let fs: BTreeSet<&String> = wa.keys().chain(wb.keys()).collect();
    for f in fs {
        let (ua, ub) = (wa.get(f).copied(), wb.get(f).copied());
        let limit = ua.map(|x| x * (1.0 + t.unavailable) + t.unavailable_floor_s);
        rows.push(Row {
            metric: format!("{f} worst unavailability (s)"),
            a: ua.map(|x| format!("{x:.3}")),
            b: ub.map(|x| format!("{x:.3}")),
            limit: limit.map_or("-".into(), |l| format!("<= {l:.3}")),
            regressed: matches!((ub, limit), (Some(b), Some(l)) if b > l),
        });
    }
    let (ta, tb) = (throughput(ra, a.meta), throughput(rb, b.meta));
    let limit = ta.map(|x| x * (1.0 - t.throughput));
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
    use gregor_checkers::{AnomalyGroup, Latency, Stats};

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
}
