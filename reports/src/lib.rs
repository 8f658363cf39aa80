//! gregor's reports: what a person reads after a run.
//!
//! From a history, its check result and (optionally) the run metadata,
//! [`write_all`] writes into the run directory:
//!
//! * `report.html` — one self-contained page: the verdict, run metadata,
//!   operation counts, anomalies with examples, stats, the plots (inline
//!   SVG) and the nemesis timeline. No scripts, no external assets.
//! * `junit.xml` — one test suite `gregor`, one test case per anomaly class
//!   ([`junit`]).
//! * `summary.md` — the terminal summary ([`summary_text`]) in Markdown.
//! * `plots/*.svg` — latency, throughput, realtime lag, unseen writes, and
//!   values by offset for a few keys ([`plots`]), drawn by the small SVG
//!   module [`svg`] and thinned to at most ~20,000 marks each.
//!
//! Rendering is pure: nothing is read here; `gregor report RUN_DIR` reads the
//! run directory and calls [`write_all`] again.

pub mod html;
pub mod junit;
pub mod model;
pub mod nemesis;
pub mod plots;
pub mod summary;
pub mod svg;
pub mod xml;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use gregor_checkers::CheckResult;
use gregor_history::{History, Key, RunMeta};

use crate::model::Timeline;
use crate::summary::Facts;

/// What a report is made from.
#[derive(Clone, Copy, Debug)]
pub struct ReportInput<'a> {
    pub run_dir: &'a Path,
    pub history: &'a History,
    pub meta: Option<&'a RunMeta>,
    pub result: &'a CheckResult,
}

/// Errors writing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: cannot create directory: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How many keys get a values-by-offset plot.
pub const OFFSET_PLOT_KEYS: usize = 4;

/// The terminal summary printed after a run or a check.
pub fn summary_text(input: &ReportInput) -> String {
    let t = Timeline::from_history(input.history);
    Facts::gather(input, &t).text()
}

/// Everything rendered, in memory: file name (relative to the run directory) and contents.
pub fn render_all(input: &ReportInput) -> Vec<(PathBuf, String)> {
    let started = Instant::now();
    let h = input.history;
    let timeline = Timeline::from_history(h);
    let facts = Facts::gather(input, &timeline);
    let actions = nemesis::actions(h);
    let windows = nemesis::windows(&actions, timeline.end_ns);

    let mut plots = vec![
        plots::latency(&timeline, &windows),
        plots::throughput(&timeline, &windows),
        plots::realtime_lag(&timeline, &windows),
        plots::unseen(&timeline, &windows),
    ];
    let akeys = anomaly_keys(input.result);
    let keys = plots::pick_keys(&akeys, &model::key_activity(h), OFFSET_PLOT_KEYS);
    let obs = model::key_observations(h, &keys.iter().copied().collect::<BTreeSet<Key>>());
    for k in &keys {
        if let Some(o) = obs.get(k).filter(|o| !o.at.is_empty()) {
            plots.push(plots::key_offsets(
                *k,
                o,
                input.meta,
                akeys.contains(k),
                None,
            ));
            if let Some(z) = plots::zoom_range(o) {
                plots.push(plots::key_offsets(
                    *k,
                    o,
                    input.meta,
                    akeys.contains(k),
                    Some(z),
                ));
            }
        }
    }

    let client_ops = timeline.ops.len();
    let truncated = h.truncated_tail.as_deref();
    let page = html::Page {
        facts: &facts,
        result: input.result,
        meta: input.meta,
        plots: &plots,
        actions: &actions,
        windows: &windows,
        events: h.len(),
        truncated,
    };
    let mut out = vec![(PathBuf::from("report.html"), html::render(&page))];
    let reason = junit::unknown_reason(input.result, truncated, client_ops);
    out.push((
        PathBuf::from("junit.xml"),
        junit::render(input.result, &reason, started.elapsed().as_secs_f64()),
    ));
    out.push((PathBuf::from("summary.md"), facts.markdown()));
    for p in plots {
        out.push((Path::new("plots").join(&p.file), p.svg));
    }
    out
}

/// Writes `report.html`, `junit.xml`, `summary.md` and `plots/*.svg` into the
/// run directory; returns the paths written.
pub fn write_all(input: &ReportInput) -> Result<Vec<PathBuf>, ReportError> {
    let files = render_all(input);
    let plots_dir = input.run_dir.join("plots");
    std::fs::create_dir_all(&plots_dir).map_err(|source| ReportError::CreateDir {
        path: plots_dir.clone(),
        source,
    })?;
    let mut written = Vec::with_capacity(files.len());
    for (rel, text) in files {
        let path = input.run_dir.join(rel);
        std::fs::write(&path, text).map_err(|source| ReportError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Keys named by anomaly examples (`"key"` or `"keys"`), bad types first.
pub fn anomaly_keys(r: &CheckResult) -> Vec<Key> {
    let as_key = |v: &serde_json::Value| match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    };
    let mut types: Vec<&String> = r.anomalies.keys().collect();
    types.sort_by_key(|t| !r.bad_types.contains(t));
    let mut out = Vec::new();
    for t in types {
        for e in &r.anomalies[t].examples {
            let mut ks: Vec<Key> = e.get("key").and_then(as_key).into_iter().collect();
            if let Some(serde_json::Value::Array(a)) = e.get("keys") {
                ks.extend(a.iter().filter_map(as_key));
            }
            for k in ks {
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
    }
    out
}
