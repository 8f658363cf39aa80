//! The report's charts, built from a [`Timeline`] with [`crate::svg`].

use std::collections::BTreeMap;

use gregor_history::{Key, Offset, RunMeta};

use crate::model::{KeyObs, Outcome, Timeline};
use crate::nemesis::Window;
use crate::svg::{Band, Chart, Marker, Series, Style};

/// One rendered chart.
#[derive(Clone, Debug)]
pub struct Plot {
    /// File name under `plots/`, e.g. `latency.svg`.
    pub file: String,
    pub title: String,
    /// One sentence saying how to read it.
    pub caption: String,
    pub svg: String,
    pub points_total: usize,
    pub points_drawn: usize,
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

fn color(f_index: usize, o: Outcome) -> &'static str {
    let pal = match o {
        Outcome::Ok => OK_COLORS,
        Outcome::Fail => FAIL_COLORS,
        Outcome::Info => INFO_COLORS,
    };
    pal[f_index % pal.len()]
}

fn marker(o: Outcome) -> Marker {
    match o {
        Outcome::Ok => Marker::Circle,
        Outcome::Fail => Marker::Cross,
        Outcome::Info => Marker::Triangle,
    }
}

fn dash(o: Outcome) -> Option<&'static str> {
    match o {
        Outcome::Ok => None,
        Outcome::Fail => Some("3 2"),
        Outcome::Info => Some("7 3"),
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
            title: format!(
                "{} from {:.3} s to {:.3} s ({})",
                w.label(),
                secs(w.start_ns),
                secs(w.end_ns),
                match &w.closed_by {
                    Some(h) => format!("healed by {h}"),
                    None => "never healed: runs to the end of the history".to_string(),
                }
            ),
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

fn time_chart(id: &str, title: &str, y_label: &str, t: &Timeline, windows: &[Window]) -> Chart {
    let mut c = Chart::new(id, title, "time since start (s)", y_label);
    c.x_range = Some((0.0, secs(t.end_ns).max(1e-3)));
    c.bands = bands(windows);
    c
}

fn finish(file: &str, caption: &str, c: &Chart) -> Plot {
    let r = c.render();
    Plot {
        file: file.to_string(),
        title: c.title.clone(),
        caption: caption.to_string(),
        svg: r.svg,
        points_total: r.points_total,
        points_drawn: r.points_drawn,
    }
}

/// Latency of every completed operation against its invoke time.
pub fn latency(t: &Timeline, windows: &[Window]) -> Plot {
    let mut c = time_chart(
        "latency",
        "Latency over time",
        "latency (ms, log scale)",
        t,
        windows,
    );
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
                    color: color(fi, o).to_string(),
                    style: Style::Points(marker(o)),
                    points,
                    tooltips: Vec::new(),
                });
            }
        }
    }
    finish(
        "latency.svg",
        "Each completed operation at its invoke time; height is its latency. Shaded: nemesis fault windows.",
        &c,
    )
}

/// The bucket width for throughput: 1 s, widened so a run has at most 2,000 buckets.
pub fn bucket_secs(end_ns: u64) -> u64 {
    (secs(end_ns) / 2000.0).ceil().max(1.0) as u64
}

/// Completed operations per second, per f and outcome.
pub fn throughput(t: &Timeline, windows: &[Window]) -> Plot {
    let width = bucket_secs(t.end_ns);
    let width_ns = width * 1_000_000_000;
    let n = (t.end_ns / width_ns + 1) as usize;
    let title = if width == 1 {
        "Throughput (1 s buckets)".to_string()
    } else {
        format!("Throughput ({width} s buckets)")
    };
    let mut c = time_chart("throughput", &title, "completed ops/s", t, windows);
    for (fi, f) in f_order(t).iter().enumerate() {
        for o in Outcome::ALL {
            let mut buckets = vec![0u64; n];
            let mut any = false;
            for op in t.ops.iter().filter(|op| &op.f == f && op.outcome == o) {
                if let Some(cns) = op.complete_ns {
                    buckets[((cns / width_ns) as usize).min(n - 1)] += 1;
                    any = true;
                }
            }
            if any {
                let points = buckets
                    .iter()
                    .enumerate()
                    .map(|(i, &k)| ((i as f64 + 0.5) * width as f64, k as f64 / width as f64))
                    .collect();
                c.series.push(Series {
                    name: format!("{f} {}", o.as_str()),
                    color: color(fi, o).to_string(),
                    style: Style::Line {
                        dash: dash(o),
                        step: false,
                    },
                    points,
                    tooltips: Vec::new(),
                });
            }
        }
    }
    finish(
        "throughput.svg",
        "Operations completed per second, by function and outcome (ok solid, fail short dashes, info long dashes).",
        &c,
    )
}

/// Realtime lag of each acknowledged send.
pub fn realtime_lag(t: &Timeline, windows: &[Window]) -> Plot {
    let mut c = time_chart(
        "realtime-lag",
        "Realtime lag of acknowledged sends",
        "lag (s)",
        t,
        windows,
    );
    let seen: Vec<(f64, f64)> = t
        .lags
        .iter()
        .filter(|l| l.seen)
        .map(|l| (secs(l.ack_ns), secs(l.lag_ns)))
        .collect();
    let never: Vec<(f64, f64)> = t
        .lags
        .iter()
        .filter(|l| !l.seen)
        .map(|l| (secs(l.ack_ns), secs(l.lag_ns)))
        .collect();
    if !seen.is_empty() {
        c.series.push(Series {
            name: "read by a later poll".into(),
            color: "#1f77b4".into(),
            style: Style::Points(Marker::Circle),
            points: seen,
            tooltips: Vec::new(),
        });
    }
    if !never.is_empty() {
        c.series.push(Series {
            name: "never read (until end)".into(),
            color: "#d62728".into(),
            style: Style::Points(Marker::Triangle),
            points: never,
            tooltips: Vec::new(),
        });
    }
    finish(
        "realtime-lag.svg",
        "For each acknowledged send (at its ack time): how long until a poll invoked after the ack returned it, or until the end of the history if none did. (The worst realtime lag in the stats is the checker's Jepsen definition: how stale a poll's view was when it began.)",
        &c,
    )
}

/// Acknowledged sends not yet returned by any poll, over time.
pub fn unseen(t: &Timeline, windows: &[Window]) -> Plot {
    let mut c = time_chart(
        "unseen",
        "Acknowledged writes not yet read",
        "writes",
        t,
        windows,
    );
    if !t.unseen_steps.is_empty() {
        let mut points: Vec<(f64, f64)> = Vec::with_capacity(t.unseen_steps.len() + 2);
        points.push((0.0, 0.0));
        points.extend(t.unseen_steps.iter().map(|&(ts, n)| (secs(ts), n as f64)));
        let last = points.last().map_or(0.0, |p| p.1);
        points.push((secs(t.end_ns), last));
        c.series.push(Series {
            name: "unseen".into(),
            color: "#7c3aed".into(),
            style: Style::Line {
                dash: None,
                step: true,
            },
            points,
            tooltips: Vec::new(),
        });
    }
    finish(
        "unseen.svg",
        "How many acknowledged sends no poll had returned yet, at each moment; what is left at the end was never read.",
        &c,
    )
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
) -> Plot {
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
        &id,
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
        let mut series = Series::new(name, color, Style::Points(m), pts);
        // Marked points get a tooltip each, as long as there are few of them.
        if m != Marker::Circle && series.points.len() <= 500 {
            series.tooltips = series
                .points
                .iter()
                .map(|&(o, v)| format!("{name}: key {key}, offset {o}, value {v}"))
                .collect();
        }
        c.series.push(series);
    }
    finish(
        &format!("{id}.svg"),
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
