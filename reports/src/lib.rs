//! gregor's reports: what a person reads after a run.
//!
//! From a history, its check result and (optionally) the run metadata,
//! [`write_all`] writes into the run directory:
//!
//! * `report.html` — one self-contained page: the verdict, run metadata,
//!   operation counts, anomalies with examples, stats, the plots (inline
//!   SVG) and the nemesis timeline. No scripts, no external assets.
//! * `junit.xml` — one test suite `gregor`, one test case per property the
//!   checkers check ([`junit`], through `quick-junit`).
//! * `summary.md` — the terminal summary ([`summary_text`]) in Markdown,
//!   then the plots as PNG images.
//! * `plots/*.svg` and `plots/*.png` — latency (raw and quantiles over
//!   time), throughput, realtime lag, unseen writes, and values by offset for
//!   every key an anomaly names plus the busiest keys ([`plots`]), drawn with
//!   plotters ([`chart`]) and thinned to at most ~12,000 marks each.
//!
//! Rendering is pure: nothing is read here but the font file; `gregor report
//! RUN_DIR` reads the run directory and calls [`write_all`] again.
//! [`write_all`] also refreshes the store's `index.html` ([`index`]) when
//! the run directory sits in a run store.

pub mod chart;
pub mod compare;
pub mod fonts;
pub mod html;
pub mod index;
pub mod junit;
pub mod model;
/// Nemesis actions and fault windows (defined once, in the checkers).
pub use gregor_checkers::nemesis;
pub mod plots;
pub mod summary;
pub mod xml;

use std::collections::BTreeSet;
use std::fmt::Write as _;
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
    #[error(transparent)]
    Chart(#[from] chart::ChartError),
    #[error("junit.xml: {0}")]
    Junit(#[from] quick_junit::SerializeError),
}

/// Keys that get a values-by-offset plot when no anomaly names a key: the
/// busiest ones, up to this many in all.
pub const OFFSET_PLOT_KEYS: usize = 4;
/// At most this many keys named by anomalies get a plot (examples are
/// capped per type, so this is only reached by many cycle types at once).
pub const MAX_ANOMALY_KEY_PLOTS: usize = 64;

/// The terminal summary printed after a run or a check.
pub fn summary_text(input: &ReportInput) -> String {
    let t = Timeline::from_history(input.history);
    Facts::gather(input, &t).text()
}

/// Everything rendered, in memory: file name (relative to the run directory) and contents.
pub fn render_all(input: &ReportInput) -> Result<Vec<(PathBuf, Vec<u8>)>, ReportError> {
    let started = Instant::now();
    let h = input.history;
    let timeline = Timeline::from_history(h);
    let facts = Facts::gather(input, &timeline);
    let actions = nemesis::actions(h);
    let windows = nemesis::windows(&actions, timeline.end_ns);

    let mut plots = vec![
        plots::latency(&timeline, &windows)?,
        plots::latency_quantiles(&input.result.stats.timeline, &timeline, &windows)?,
        plots::throughput(&input.result.stats.timeline, &timeline, &windows)?,
        plots::realtime_lag(&input.result.stats.timeline, &timeline, &windows)?,
        plots::unseen(&input.result.stats.timeline, &timeline, &windows)?,
    ];
    let samples = gregor_history::cluster::read_monitor_samples(
        &input.run_dir.join(gregor_history::cluster::MONITOR_FILE),
    );
    plots.extend(plots::monitor(&samples, timeline.end_ns, &windows)?);
    plots.extend(plots::availability(
        input.result.stats.availability.as_ref(),
        &timeline,
        &windows,
    )?);
    let akeys = anomaly_keys(input.result);
    let n = akeys.len().clamp(OFFSET_PLOT_KEYS, MAX_ANOMALY_KEY_PLOTS);
    let keys = plots::pick_keys(&akeys, &model::key_activity(h), n);
    let obs = model::key_observations(h, &keys.iter().copied().collect::<BTreeSet<Key>>());
    for k in &keys {
        if let Some(o) = obs.get(k).filter(|o| !o.at.is_empty()) {
            plots.push(plots::key_offsets(
                *k,
                o,
                input.meta,
                akeys.contains(k),
                None,
            )?);
            if let Some(z) = plots::zoom_range(o) {
                plots.push(plots::key_offsets(
                    *k,
                    o,
                    input.meta,
                    akeys.contains(k),
                    Some(z),
                )?);
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
    let mut out = vec![(
        PathBuf::from("report.html"),
        html::render(&page).into_bytes(),
    )];
    let reason = junit::unknown_reason(input.result, truncated, client_ops);
    out.push((
        PathBuf::from("junit.xml"),
        junit::render(input.result, &reason, started.elapsed())?.into_bytes(),
    ));
    let mut md = facts.markdown();
    // PNGs, for viewers that do not show SVG (CI artifacts, chat).
    md.push_str("\n## Plots\n\n");
    for p in &plots {
        let _ = writeln!(
            md,
            "![{}](plots/{}.png)\n",
            p.title.replace(['[', ']'], ""),
            p.name
        );
    }
    out.push((PathBuf::from("summary.md"), md.into_bytes()));
    for p in plots {
        let dir = Path::new("plots");
        out.push((dir.join(format!("{}.svg", p.name)), p.svg.into_bytes()));
        out.push((dir.join(format!("{}.png", p.name)), p.png));
    }
    Ok(out)
}

/// Writes `report.html`, `junit.xml`, `summary.md`, `plots/*.svg` and
/// `plots/*.png` into the run directory; returns the paths written. When the
/// run directory is in a run store (`STORE/<scenario>/<time>/` with
/// `STORE/latest`), the store's `index.html` is regenerated too (a failure
/// there is not an error of this run: it is printed on stderr).
pub fn write_all(input: &ReportInput) -> Result<Vec<PathBuf>, ReportError> {
    let files = render_all(input)?;
    let plots_dir = input.run_dir.join("plots");
    std::fs::create_dir_all(&plots_dir).map_err(|source| ReportError::CreateDir {
        path: plots_dir.clone(),
        source,
    })?;
    let mut written = Vec::with_capacity(files.len());
    for (rel, bytes) in files {
        let path = input.run_dir.join(rel);
        std::fs::write(&path, bytes).map_err(|source| ReportError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    if let Some(store) = index::store_of(input.run_dir) {
        if let Err(e) = index::write_index(&store) {
            eprintln!("warning: {e}");
        }
    }
    Ok(written)
}

/// Keys named by anomaly examples (their key, keys, and the keys of a
/// cycle's steps), bad types first.
pub fn anomaly_keys(r: &CheckResult) -> Vec<Key> {
    let mut types: Vec<&String> = r.anomalies.keys().collect();
    types.sort_by_key(|t| !r.bad_types.contains(t));
    let mut out = Vec::new();
    for t in types {
        for e in &r.anomalies[t].examples {
            for k in e.all_keys() {
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
    }
    out
}
