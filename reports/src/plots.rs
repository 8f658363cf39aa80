//! The report's charts, built from the checkers' timeline and results
//! ([`CTimeline`]), the paired operations ([`Timeline`]) and samples, and
//! drawn by [`crate::chart`] (plotters) as SVG and PNG.

use std::collections::BTreeMap;

use gregor_history::{Key, Offset, RunMeta};
use plotters::style::RGBColor;

use crate::chart::{hex, Band, Chart, ChartError, Dash, Marker, Series, Style};
use gregor_checkers::timeline::Timeline as CTimeline;

use crate::model::{KeyObs, Outcome, Timeline};
use crate::nemesis::Window;

/// One rendered chart.
#[derive(Clone, Debug)]
pub struct Plot {
    /// File stem under `plots/`, e.g. `latency` for `latency.svg` and `latency.png`.
    pub name: String,
    pub title: String,
    /// One sentence saying how to read it.
    pub caption: String,
    pub svg: String,
    pub png: Vec<u8>,
    pub points_total: usize,
    pub points_drawn: usize,
    /// Whether the chart has text (a font was found).
    pub text: bool,
}

const OK_COLORS: &[&str] = &[
    "#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#8c564b", "#4b5563",
];
const FAIL_COLORS: &[&str] = &[
    "#d62728", "#e377c2", "#a50f15", "#fb6a4a", "#b91c1c", "#db2777",
];
const INFO_COLORS: &[&str] = &[
    "#ff7f0e", "#bcbd22", "#b8860b", "#f59e0b", "#a16207", "#ca8a04",
];

fn color(f_index: usize, o: Outcome) -> RGBColor {
    let pal = match o {
        Outcome::Ok => OK_COLORS,
        Outcome::Fail => FAIL_COLORS,
        Outcome::Info => INFO_COLORS,
    };
    hex(pal[f_index % pal.len()])
}

fn marker(o: Outcome) -> Marker {
    match o {
        Outcome::Ok => Marker::Circle,
        Outcome::Fail => Marker::Cross,
        Outcome::Info => Marker::Triangle,
    }
}

fn dash(o: Outcome) -> Dash {
    match o {
        Outcome::Ok => Dash::Solid,
        Outcome::Fail => Dash::Short,
        Outcome::Info => Dash::Long,
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Shaded bands for fault windows.
pub fn bands(windows: &[Window]) -> Vec<Band> {
    windows
        .iter()
        .map(|w| Band {
            x0: secs(w.start_ns),
            x1: secs(w.end_ns),
            label: w.label(),
        })
        .collect()
}

/// The functions in the order they get colors: send, poll, txn, then the rest by name.
fn f_order(t: &Timeline) -> Vec<String> {
    let mut fs: Vec<String> = t.counts().into_keys().collect();
    let rank = |f: &str| {
        ["send", "poll", "txn"]
            .iter()
            .position(|x| *x == f)
            .unwrap_or(3)
    };
    fs.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    fs
}

fn time_chart(title: &str, y_label: &str, t: &Timeline, windows: &[Window]) -> Chart {
    let mut c = Chart::new(title, "time since start (s)", y_label);
    c.x_range = Some((0.0, secs(t.end_ns).max(1e-3)));
    c.bands = bands(windows);
    c
}

fn finish(name: &str, caption: &str, c: &Chart) -> Result<Plot, ChartError> {
    let r = c.render()?;
    Ok(Plot {
        name: name.to_string(),
        title: c.title.clone(),
        caption: caption.to_string(),
        svg: r.svg,
        png: r.png,
        points_total: r.points_total,
        points_drawn: r.points_drawn,
        text: r.text,
    })
}

/// Latency of every completed operation against its invoke time.
pub fn latency(t: &Timeline, windows: &[Window]) -> Result<Plot, ChartError> {
    let mut c = time_chart("Latency over time", "latency (ms, log scale)", t, windows);
    c.y_log = true;
    for (fi, f) in f_order(t).iter().enumerate() {
        for o in Outcome::ALL {
            let points: Vec<(f64, f64)> = t
                .ops
                .iter()
                .filter(|op| &op.f == f && op.outcome == o)
                .filter_map(|op| {
                    op.latency_ns()
                        .map(|l| (secs(op.invoke_ns), (l as f64 / 1e6).max(1e-3)))
                })
                .collect();
            if !points.is_empty() {
                c.series.push(Series {
                    name: format!("{f} {}", o.as_str()),
                    color: color(fi, o),
                    style: Style::Points(marker(o)),
                    points,
                    keep_all: false,
                });
            }
        }
    }
    finish(
        "latency",
        "Each completed operation at its invoke time; height is its latency. Shaded: nemesis fault windows.",
        &c,
    )
}

/// Latency quantiles of `ok` operations per time bucket, per function (the
/// checkers' series, [`gregor_checkers::timeline::LatencyOverTime`]).
pub fn latency_quantiles(
    tl: &CTimeline,
    t: &Timeline,
    windows: &[Window],
) -> Result<Plot, ChartError> {
    let lat = &tl.latency;
    let width = lat.bucket_ms as f64 / 1e3;
    let mut c = time_chart(
        &format!(
            "Latency quantiles over time ({} buckets)",
            secs_label(width)
        ),
        "latency (ms, log scale)",
        t,
        windows,
    );
    c.y_log = true;
    for (fi, f) in f_order(t).iter().enumerate() {
        let Some(q) = lat.by_f.get(f) else {
            continue;
        };
        let ok = hex(OK_COLORS[fi % OK_COLORS.len()]);
        for (label, v, d) in [
            ("p50", &q.p50, Dash::Solid),
            ("p99", &q.p99, Dash::Short),
            ("max", &q.max, Dash::Long),
        ] {
            let points: Vec<(f64, f64)> = v
                .iter()
                .enumerate()
                .filter_map(|(i, x)| x.map(|ms| ((i as f64 + 0.5) * width, ms.max(1e-3))))
                .collect();
            if points.is_empty() {
                continue;
            }
            c.series.push(Series::new(
                &format!("{f} {label}"),
                ok,
                Style::Line {
                    dash: d,
                    step: false,
                },
                points,
            ));
        }
    }
    finish(
        "latency-quantiles",
        "Median (solid), 99th percentile (short dashes) and maximum (long dashes) latency of ok operations invoked in each time bucket, by function (nearest rank, within 1%; the maximum exact).",
        &c,
    )
}

/// Completed operations per second, by function and outcome, from the
/// checkers' timeline.
pub fn throughput(tl: &CTimeline, t: &Timeline, windows: &[Window]) -> Result<Plot, ChartError> {
    let width = tl.bucket_secs();
    let title = format!("Throughput ({} buckets)", secs_label(width));
    let mut c = time_chart(&title, "completed ops/s", t, windows);
    for (fi, f) in f_order(t).iter().enumerate() {
        let Some(by) = tl.completed.get(f) else {
            continue;
        };
        for o in Outcome::ALL {
            let Some(v) = by.get(o.as_str()).filter(|v| v.iter().any(|&n| n > 0)) else {
                continue;
            };
            let points = v
                .iter()
                .enumerate()
                .map(|(i, &k)| (tl.mid_secs(i), k as f64 / width))
                .collect();
            c.series.push(Series {
                name: format!("{f} {}", o.as_str()),
                color: color(fi, o),
                style: Style::Line {
                    dash: dash(o),
                    step: false,
                },
                points,
                keep_all: false,
            });
        }
    }
    finish(
        "throughput",
        "Operations completed per second, by function and outcome (ok solid, fail short dashes, info long dashes).",
        &c,
    )
}

/// `0.1 s`, `1 s`, `12.8 s` (numbers as the charts' axes write them).
fn secs_label(s: f64) -> String {
    format!("{} s", crate::chart::fmt_num(s))
}

/// Realtime lag over time: the cluster's, and catch-up apart from it (the
/// checkers' definition and series: `stats.worst-realtime-lag-ms` is the
/// peak of the first).
pub fn realtime_lag(tl: &CTimeline, t: &Timeline, windows: &[Window]) -> Result<Plot, ChartError> {
    let mut c = time_chart(
        &format!(
            "Realtime lag (worst per {} of polls)",
            secs_label(tl.bucket_secs())
        ),
        "lag (s)",
        t,
        windows,
    );
    let series = |v: &[Option<f64>]| -> Vec<(f64, f64)> {
        v.iter()
            .enumerate()
            .filter_map(|(i, l)| l.map(|ms| (tl.mid_secs(i), ms / 1e3)))
            .collect()
    };
    let cluster = series(&tl.realtime_lag_ms);
    let catchup = series(&tl.catchup_lag_ms);
    if !cluster.is_empty() {
        c.series.push(Series {
            name: "cluster (caught-up consumers)".into(),
            color: hex("#1f77b4"),
            style: Style::Points(Marker::Circle),
            points: cluster,
            keep_all: false,
        });
    }
    if !catchup.is_empty() {
        c.series.push(Series {
            name: "catch-up (new holder of a key)".into(),
            color: hex("#ff7f0e"),
            style: Style::Points(Marker::Triangle),
            points: catchup,
            keep_all: false,
        });
    }
    finish(
        "realtime-lag",
        "Realtime lag of a poll: how long before it began a record newer than anything its process had read of a key was known to exist (Jepsen's definition), the worst per bucket. Blue: consumers that had caught up, the cluster's lag (its peak is the worst realtime lag in the stats). Orange: processes still reading records older than their holding of the key (a client restarted after a crash, a partition moved by a rebalance), shown apart.",
        &c,
    )
}

/// Acknowledged sends not yet returned by any poll, over time (the
/// checkers' series).
pub fn unseen(tl: &CTimeline, t: &Timeline, windows: &[Window]) -> Result<Plot, ChartError> {
    let mut c = time_chart("Acknowledged writes not yet read", "writes", t, windows);
    if tl.unseen.iter().any(|&n| n > 0) {
        let w = tl.bucket_secs();
        let mut points: Vec<(f64, f64)> = Vec::with_capacity(tl.len() + 1);
        points.extend(
            tl.unseen
                .iter()
                .enumerate()
                .map(|(i, &n)| (i as f64 * w, n as f64)),
        );
        if let Some(&(_, last)) = points.last() {
            points.push((tl.len() as f64 * w, last));
        }
        c.series.push(Series {
            name: "unseen".into(),
            color: hex("#7c3aed"),
            style: Style::Line {
                dash: Dash::Solid,
                step: true,
            },
            points,
            keep_all: false,
        });
    }
    finish(
        "unseen",
        &format!(
            "The most acknowledged sends that no poll had returned yet, per {}; what is left at the end was never read.",
            secs_label(tl.bucket_secs())
        ),
        &c,
    )
}

/// Availability gaps per fault window, as the checkers measured them
/// (`stats.availability`): each point is one function's gap in one window,
/// at the time of its first failure and as high as the gap lasted (until
/// the first success invoked after it). `None` without fault windows.
pub fn availability(
    a: Option<&gregor_checkers::availability::Availability>,
    t: &Timeline,
    windows: &[Window],
) -> Result<Option<Plot>, ChartError> {
    let Some(a) = a.filter(|a| !a.windows.is_empty()) else {
        return Ok(None);
    };
    let mut c = time_chart(
        "Unavailability per fault window",
        "unavailable (s)",
        t,
        windows,
    );
    let end = secs(t.end_ns);
    for (fi, f) in f_order(t).iter().enumerate() {
        let (mut gaps, mut never) = (Vec::new(), Vec::new());
        for w in &a.windows {
            let Some(x) = w.by_f.get(f) else { continue };
            let Some(from) = x.unavailable_from_s else {
                continue;
            };
            match x.unavailable_s {
                Some(d) => gaps.push((from, d)),
                None => never.push((from, (end - from).max(0.0))),
            }
        }
        for (points, what, o, m) in [
            (
                gaps,
                "first failure to first success",
                Outcome::Ok,
                Marker::Circle,
            ),
            (
                never,
                "never available again (until the end)",
                Outcome::Fail,
                Marker::Triangle,
            ),
        ] {
            if !points.is_empty() {
                c.series.push(Series {
                    name: format!("{f}: {what}"),
                    color: color(fi, o),
                    style: Style::Points(m),
                    points,
                    keep_all: true,
                });
            }
        }
    }
    finish(
        "availability",
        "For each fault window and function: when the first operation invoked in the window failed (x) and how long until an operation invoked after that failure succeeded (y). Triangles: never again until the end of the history. The table under \"Availability per fault window\" has the numbers.",
        &c,
    )
    .map(Some)
}

/// Values observed at each offset of one key.
///
/// With `zoom`, only offsets in that inclusive range are drawn (a close-up of
/// the first marked offset of a long log, see [`zoom_range`]).
pub fn key_offsets(
    key: Key,
    obs: &KeyObs,
    meta: Option<&RunMeta>,
    anomalous: bool,
    zoom: Option<(Offset, Offset)>,
) -> Result<Plot, ChartError> {
    let tp = meta
        .and_then(|m| m.keys.get(&key))
        .map(|tp| format!(" ({}/{})", tp.topic, tp.partition))
        .unwrap_or_default();
    let flag = if anomalous { " — has anomalies" } else { "" };
    let (id, zoom_title) = match zoom {
        Some((a, b)) => (
            format!("offsets-key-{key}-zoom"),
            format!(", offsets {a}–{b}"),
        ),
        None => (format!("offsets-key-{key}"), String::new()),
    };
    let mut c = Chart::new(
        &format!("Key {key}{tp}: values by offset{zoom_title}{flag}"),
        "offset",
        "value",
    );
    let (lo, hi) = zoom.unwrap_or_else(|| {
        (
            obs.at.keys().next().copied().unwrap_or(0),
            obs.at.keys().next_back().copied().unwrap_or(0),
        )
    });
    // A little room so the first and last offsets do not sit on the frame.
    let pad = ((hi - lo) as f64 * 0.02).max(0.5);
    c.x_range = Some((lo as f64 - pad, hi as f64 + pad));
    let bad_offsets = obs.inconsistent_offsets();
    let dups = obs.duplicated_values();
    let mut normal = Vec::new();
    let mut incons = Vec::new();
    let mut dup = Vec::new();
    for (&o, vals) in obs.at.range(lo..=hi) {
        for &v in vals {
            let p = (o as f64, v as f64);
            if bad_offsets.contains(&o) {
                incons.push(p);
            } else if dups.contains(&v) {
                dup.push(p);
            } else {
                normal.push(p);
            }
        }
    }
    for (name, color, m, pts) in [
        ("value at offset", "#1f77b4", Marker::Circle, normal),
        ("inconsistent offset", "#d62728", Marker::Cross, incons),
        ("duplicated value", "#ff7f0e", Marker::Diamond, dup),
    ] {
        if pts.is_empty() {
            continue;
        }
        let mut series = Series::new(name, hex(color), Style::Points(m), pts);
        // Marked points are all drawn, as long as there are not too many.
        series.keep_all = m != Marker::Circle && series.points.len() <= 5000;
        c.series.push(series);
    }
    finish(
        &id,
        "Every value observed at each offset of this key (by sends and polls). A clean log is one rising line; red crosses mark offsets holding two values, orange diamonds values stored at two offsets.",
        &c,
    )
}

/// Picks up to `n` keys to draw: keys named by anomaly examples first, then the busiest.
pub fn pick_keys(anomaly_keys: &[Key], activity: &BTreeMap<Key, u64>, n: usize) -> Vec<Key> {
    let mut out: Vec<Key> = Vec::new();
    for k in anomaly_keys {
        if out.len() < n && !out.contains(k) {
            out.push(*k);
        }
    }
    let mut busy: Vec<(&Key, &u64)> = activity.iter().collect();
    busy.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (k, _) in busy {
        if out.len() >= n {
            break;
        }
        if !out.contains(k) {
            out.push(*k);
        }
    }
    out
}

/// Offsets to show in a close-up of a long key log: 30 either side of the
/// first offset holding two values or a duplicated value; `None` when nothing
/// is marked or the whole log is short enough to read.
pub fn zoom_range(obs: &KeyObs) -> Option<(Offset, Offset)> {
    let (&first, _) = obs.at.first_key_value()?;
    let (&last, _) = obs.at.last_key_value()?;
    if last - first <= 120 {
        return None;
    }
    let dups = obs.duplicated_values();
    let marked = obs
        .at
        .iter()
        .find(|(_, v)| v.len() > 1 || v.iter().any(|x| dups.contains(x)))?
        .0;
    Some((
        marked.saturating_sub(30).max(first),
        (marked + 30).min(last),
    ))
}

/// `gregor capacity`'s charts: latency quantiles against the offered rate
/// (`capacity`), and acknowledged against offered rate
/// (`capacity-throughput`).
pub fn capacity(r: &gregor_history::capacity::CapacityReport) -> Result<Vec<Plot>, ChartError> {
    use gregor_history::capacity::QUANTILES;
    let mut steps: Vec<_> = r.steps.iter().collect();
    steps.sort_by(|a, b| a.offered_rate.total_cmp(&b.offered_rate));
    let mut lat = Chart::new(
        "Send latency by offered rate",
        "offered rate (records/s)",
        "latency from due time to ack (ms, log scale)",
    );
    lat.y_log = true;
    let colors = ["#2ca02c", "#1f77b4", "#d62728", "#9467bd"];
    for (qi, q) in QUANTILES.iter().enumerate() {
        let points: Vec<(f64, f64)> = steps
            .iter()
            .filter_map(|s| Some((s.offered_rate, s.latency_ms.get(qi)?.max(1e-3))))
            .collect();
        lat.series.push(Series::new(
            &format!("p{}", q * 100.0),
            hex(colors[qi % colors.len()]),
            Style::Line {
                dash: Dash::Solid,
                step: false,
            },
            points,
        ));
    }
    if let (Some(first), Some(last)) = (steps.first(), steps.last()) {
        lat.series.push(Series::new(
            &format!("p99 limit {} ms", r.limits.p99_ms),
            hex("#444444"),
            Style::Line {
                dash: Dash::Short,
                step: false,
            },
            vec![
                (first.offered_rate, r.limits.p99_ms),
                (last.offered_rate, r.limits.p99_ms),
            ],
        ));
    }
    let failed: Vec<(f64, f64)> = steps
        .iter()
        .filter(|s| !s.sustained)
        .filter_map(|s| Some((s.offered_rate, s.p99_ms()?.max(1e-3))))
        .collect();
    if !failed.is_empty() {
        let mut s = Series::new(
            "not sustained",
            hex("#d62728"),
            Style::Points(Marker::Cross),
            failed,
        );
        s.keep_all = true;
        lat.series.push(s);
    }
    let mut thr = Chart::new(
        "Acknowledged rate by offered rate",
        "offered rate (records/s)",
        "acknowledged rate (records/s)",
    );
    thr.series.push(Series::new(
        "acknowledged",
        hex("#1f77b4"),
        Style::Points(Marker::Circle),
        steps
            .iter()
            .map(|s| (s.offered_rate, s.achieved_rate))
            .collect(),
    ));
    if let (Some(first), Some(last)) = (steps.first(), steps.last()) {
        thr.series.push(Series::new(
            "offered (ideal)",
            hex("#888888"),
            Style::Line {
                dash: Dash::Short,
                step: false,
            },
            vec![
                (first.offered_rate, first.offered_rate),
                (last.offered_rate, last.offered_rate),
            ],
        ));
    }
    Ok(vec![
        finish(
            "capacity",
            "Latency quantiles of each step against the rate it offered; crosses mark steps that crossed a limit.",
            &lat,
        )?,
        finish(
            "capacity-throughput",
            "Acknowledged records per second of each step against the rate it offered; below the dashed line the cluster fell behind.",
            &thr,
        )?,
    ])
}

/// The series of a per-key quantity over the run monitor's samples.
fn per_key(
    samples: &[gregor_history::cluster::MonitorSample],
    value: impl Fn(&gregor_history::cluster::MonitorSample, Key) -> Option<f64>,
) -> BTreeMap<Key, Vec<(f64, f64)>> {
    let mut keys: Vec<Key> = samples
        .iter()
        .flat_map(|s| s.partitions.iter().map(|p| p.key))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .map(|k| {
            let pts = samples
                .iter()
                .filter_map(|s| value(s, k).map(|v| (secs(s.time), v)))
                .collect();
            (k, pts)
        })
        .collect()
}

fn monitor_chart(
    title: &str,
    y_label: &str,
    end_ns: u64,
    windows: &[Window],
    series: BTreeMap<Key, Vec<(f64, f64)>>,
    label: impl Fn(Key) -> String,
) -> Chart {
    let mut c = Chart::new(title, "time since start (s)", y_label);
    c.x_range = Some((0.0, secs(end_ns).max(1e-3)));
    c.bands = bands(windows);
    for (i, (k, pts)) in series.into_iter().enumerate() {
        if pts.is_empty() {
            continue;
        }
        c.series.push(Series::new(
            &label(k),
            hex(OK_COLORS[i % OK_COLORS.len()]),
            Style::Line {
                dash: Dash::Solid,
                step: true,
            },
            pts,
        ));
    }
    c
}

/// The workload consumers' lag per key (partition), in offsets and in
/// seconds, and each partition's ISR size, from the run monitor's samples
/// (`monitor.jsonl`), under the fault windows. Empty without samples.
pub fn monitor(
    samples: &[gregor_history::cluster::MonitorSample],
    end_ns: u64,
    windows: &[Window],
) -> Result<Vec<Plot>, ChartError> {
    if samples.is_empty() {
        return Ok(vec![]);
    }
    let lag_of = |source: &'static str, secs_: bool| {
        move |s: &gregor_history::cluster::MonitorSample, k: Key| {
            s.lag
                .iter()
                .find(|l| l.key == k && l.source == source)
                .and_then(|l| {
                    if secs_ {
                        l.lag_seconds
                    } else {
                        Some(l.lag as f64)
                    }
                })
        }
    };
    let key_label = |k: Key| format!("key {k}");
    let mut out = Vec::new();
    let c = monitor_chart(
        "Consumer lag (offsets)",
        "records behind the log end",
        end_ns,
        windows,
        per_key(samples, lag_of("positions", false)),
        key_label,
    );
    out.push(finish(
        "consumer-lag",
        "Per key (partition), once a second: the log end offset minus the workload consumers' position (one past the highest offset an ok read returned). It grows while consumers stall or fetches are throttled.",
        &c,
    )?);
    let c = monitor_chart(
        "Consumer lag (seconds)",
        "age of the oldest unread record (s)",
        end_ns,
        windows,
        per_key(samples, lag_of("positions", true)),
        key_label,
    );
    out.push(finish(
        "consumer-lag-seconds",
        "Per key: how long ago the log end passed the consumers' position, interpolated from the partition's sampled (log end, time) points as kafka-lag-exporter does.",
        &c,
    )?);
    let committed = per_key(samples, lag_of("committed", false));
    if committed.values().any(|p| !p.is_empty()) {
        let c = monitor_chart(
            "Consumer group lag (committed offsets)",
            "records behind the log end",
            end_ns,
            windows,
            committed,
            key_label,
        );
        out.push(finish(
            "group-lag",
            "Per key: the log end offset minus the group's committed offset, as the brokers report them.",
            &c,
        )?);
    }
    let isr = per_key(samples, |s, k| {
        s.partitions
            .iter()
            .find(|p| p.key == k)
            .map(|p| p.isr as f64)
    });
    let mut c = monitor_chart(
        "ISR size",
        "in-sync replicas",
        end_ns,
        windows,
        isr,
        key_label,
    );
    let max = samples
        .iter()
        .flat_map(|s| s.partitions.iter().map(|p| p.replicas))
        .max()
        .unwrap_or(1);
    c.y_range = Some((0.0, max as f64 + 0.5));
    out.push(finish(
        "isr-size",
        "Per key (partition): how many replicas the brokers list as in sync, sampled once a second. Below the replication factor, the partition is under-replicated.",
        &c,
    )?);
    Ok(out)
}

#[cfg(test)]
mod monitor_tests {
    use super::*;
    use gregor_history::cluster::{ConsumerLag, MonitorSample, PartitionHealth};

    fn sample(t: u64, lag: i64, isr: usize) -> MonitorSample {
        MonitorSample {
            time: t * 1_000_000_000,
            partitions: vec![PartitionHealth {
                key: 0,
                topic: "t".into(),
                partition: 0,
                leader: 1,
                replicas: 3,
                isr,
                log_end: Some(100 + lag),
            }],
            lag: vec![ConsumerLag {
                group: "g".into(),
                source: "positions".into(),
                key: 0,
                topic: "t".into(),
                partition: 0,
                position: 100,
                log_end: 100 + lag,
                lag,
                lag_seconds: Some(lag as f64 / 10.0),
            }],
        }
    }

    #[test]
    fn lag_and_isr_are_plotted_under_the_fault_windows_only_when_sampled() {
        assert!(monitor(&[], 10, &[]).unwrap().is_empty());
        let s: Vec<MonitorSample> = (0..10)
            .map(|t| sample(t, t as i64 * 10, 3 - (t % 2) as usize))
            .collect();
        let w = vec![Window {
            name: "consumer-stall".into(),
            target: Some("consumers".into()),
            start_ns: 2_000_000_000,
            end_ns: 6_000_000_000,
            closed_by: Some("stop-consumer-stall".into()),
        }];
        let plots = monitor(&s, 10_000_000_000, &w).unwrap();
        let names: Vec<&str> = plots.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["consumer-lag", "consumer-lag-seconds", "isr-size"]
        );
        assert!(
            plots.iter().all(|p| p.points_total >= 10),
            "every sample drawn"
        );
    }
}

#[cfg(test)]
mod timeline_tests {
    use super::*;

    /// The lag chart draws the checkers' series as they are: one point per
    /// bucket that has a value, cluster and catch-up apart.
    #[test]
    fn lag_unseen_and_throughput_charts_draw_the_checkers_series() {
        let tl = CTimeline {
            bucket_ms: 1000,
            realtime_lag_ms: vec![Some(5.0), None, Some(7000.0), Some(2.0)],
            catchup_lag_ms: vec![None, Some(60_000.0), None, None],
            unseen: vec![0, 3, 1, 0],
            completed: [(
                "send".to_string(),
                [("ok".to_string(), vec![10, 0, 4, 2])]
                    .into_iter()
                    .collect(),
            )]
            .into_iter()
            .collect(),
            latency: gregor_checkers::timeline::LatencyOverTime {
                bucket_ms: 2000,
                by_f: [(
                    "send".to_string(),
                    gregor_checkers::timeline::Quantiles {
                        p50: vec![Some(3.0), None],
                        p99: vec![Some(9.0), None],
                        max: vec![Some(12.0), None],
                    },
                )]
                .into_iter()
                .collect(),
            },
        };
        let t = Timeline {
            ops: vec![crate::model::Op {
                f: "send".into(),
                outcome: Outcome::Ok,
                invoke_ns: 0,
                complete_ns: Some(1),
            }],
            end_ns: 4_000_000_000,
        };
        let lag = realtime_lag(&tl, &t, &[]).unwrap();
        assert_eq!(lag.points_total, 4, "3 cluster points and 1 catch-up");
        assert!(lag.svg.contains("catch-up"), "its legend names it");
        let u = unseen(&tl, &t, &[]).unwrap();
        assert_eq!(u.points_total, 5, "a step per bucket and the end");
        let th = throughput(&tl, &t, &[]).unwrap();
        assert_eq!(th.points_total, 4);
        assert!(th.title.contains("1 s buckets"), "{}", th.title);
        let q = latency_quantiles(&tl, &t, &[]).unwrap();
        assert_eq!(q.points_total, 3, "p50, p99 and max of the one bucket");
        assert!(q.title.contains("2 s buckets"), "{}", q.title);
    }
}
