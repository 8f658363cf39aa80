//! The results browser: `STORE/index.html`, one row per run of a run store
//! (`STORE/<scenario>/<UTC time>/`), newest first.
//!
//! Each row shows the scenario, start time, cluster (and version when the
//! metadata names one), the verdict with the bad anomaly types, and the
//! numbers users compare between runs: keys, events, acknowledged sends and
//! how many were lost, unseen or duplicated (with rates). A run without
//! `results.json` is listed as `incomplete` (still running, or killed before
//! its check). A text box and a verdict menu filter the rows (a few lines of
//! inline script; without scripts every row is shown). Like `report.html`,
//! the page loads nothing from the network; links are relative, so the page
//! works from the file system and through `gregor serve`.
//!
//! Only `meta.json` and `results.json` of each run are read; a run whose
//! files are unreadable is still listed, with what could be read.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::xml::escape;

/// Errors writing the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{path}: cannot list the run store: {source}")]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot write the run index: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One run of the store, as the index shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunRow {
    /// Path relative to the store, e.g. `quick-kill/2026-12-02T043802.123Z`.
    pub rel: String,
    pub scenario: String,
    pub started_at: String,
    pub cluster: String,
    /// `valid`, `invalid`, `unknown` or `incomplete` (no results.json).
    pub verdict: String,
    pub bad_types: Vec<String>,
    pub keys: Option<u64>,
    pub events: Option<u64>,
    pub acknowledged: Option<u64>,
    pub lost: Option<u64>,
    pub unseen: Option<u64>,
    pub duplicated: Option<u64>,
    pub lost_rate: Option<f64>,
    pub unseen_rate: Option<f64>,
    pub duplicated_rate: Option<f64>,
    pub has_report: bool,
}

/// The store a run directory belongs to: its grandparent, if that holds a
/// `latest` link (as every store `gregor run` writes does).
pub fn store_of(run_dir: &Path) -> Option<PathBuf> {
    let run_dir = std::fs::canonicalize(run_dir).ok()?;
    let store = run_dir.parent()?.parent()?;
    std::fs::symlink_metadata(store.join("latest"))
        .is_ok()
        .then(|| store.to_path_buf())
}

fn read_json(p: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

/// Reads one run directory; `None` if it is not one (no meta.json, no history).
pub fn read_run(store: &Path, dir: &Path) -> Option<RunRow> {
    let meta = read_json(&dir.join("meta.json"));
    if meta.is_none() && !dir.join("history.jsonl").is_file() {
        return None;
    }
    let rel = dir
        .strip_prefix(store)
        .unwrap_or(dir)
        .to_string_lossy()
        .into_owned();
    let mut row = RunRow {
        rel: rel.clone(),
        scenario: rel.split('/').next().unwrap_or_default().to_string(),
        started_at: rel.rsplit('/').next().unwrap_or_default().to_string(),
        verdict: "incomplete".into(),
        has_report: dir.join("report.html").is_file(),
        ..Default::default()
    };
    if let Some(m) = &meta {
        let s = |k: &str| m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        if let Some(v) = s("scenario") {
            row.scenario = v.to_string();
        }
        if let Some(v) = s("started_at") {
            row.started_at = v.to_string();
        }
        row.cluster = s("cluster").unwrap_or_default().to_string();
        let extra = m.get("extra");
        for k in ["cluster-version", "kafka-version", "version"] {
            if let Some(v) = extra.and_then(|e| e.get(k)).and_then(Value::as_str) {
                if !row.cluster.contains(v) {
                    row.cluster = format!("{} {v}", row.cluster).trim().to_string();
                }
                break;
            }
        }
        row.keys = m
            .get("keys")
            .and_then(Value::as_object)
            .map(|k| k.len() as u64);
    }
    if let Some(r) = read_json(&dir.join("results.json")) {
        row.verdict = match r.get("valid") {
            Some(Value::Bool(true)) => "valid",
            Some(Value::Bool(false)) => "invalid",
            _ => "unknown",
        }
        .into();
        row.bad_types = r
            .get("bad-types")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let st = r.get("stats");
        let u = |k: &str| st.and_then(|s| s.get(k)).and_then(Value::as_u64);
        let f = |k: &str| st.and_then(|s| s.get(k)).and_then(Value::as_f64);
        row.events = u("events");
        row.acknowledged = u("acknowledged");
        row.lost = u("lost");
        row.unseen = u("unseen");
        row.duplicated = u("duplicated");
        row.lost_rate = f("lost-rate");
        row.unseen_rate = f("unseen-rate");
        row.duplicated_rate = f("duplicated-rate");
    }
    Some(row)
}

/// Every run of the store, newest first (by start time, then path).
pub fn scan(store: &Path) -> Result<Vec<RunRow>, IndexError> {
    let list = |p: &Path| -> Result<Vec<PathBuf>, IndexError> {
        let rd = std::fs::read_dir(p).map_err(|source| IndexError::List {
            path: p.to_path_buf(),
            source,
        })?;
        Ok(rd
            .filter_map(Result::ok)
            // Real directories only: `latest` is a link to one of them.
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect())
    };
    let mut rows = Vec::new();
    for scenario in list(store)? {
        for run in list(&scenario).unwrap_or_default() {
            if let Some(r) = read_run(store, &run) {
                rows.push(r);
            }
        }
    }
    rows.sort_by(|a, b| {
        b.started_at
            .cmp(&a.started_at)
            .then_with(|| b.rel.cmp(&a.rel))
    });
    Ok(rows)
}

/// Regenerates `STORE/index.html`; returns its path.
pub fn write_index(store: &Path) -> Result<PathBuf, IndexError> {
    let rows = scan(store)?;
    let latest = std::fs::read_link(store.join("latest"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let html = render(&rows, latest.as_deref());
    let path = store.join("index.html");
    let tmp = store.join(".index.html.tmp");
    let werr = |source| IndexError::Write {
        path: path.clone(),
        source,
    };
    std::fs::write(&tmp, html).map_err(werr)?;
    std::fs::rename(&tmp, &path).map_err(werr)?;
    Ok(path)
}

const CSS: &str = r#"
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:0;color:#1f2937;background:#f8fafc}
main{max-width:1400px;margin:0 auto;padding:16px 24px 48px}
h1{margin:8px 0 4px}
table{border-collapse:collapse;margin:12px 0;background:#fff;width:100%}
th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top;font-size:13px}
th{background:#f1f5f9;position:sticky;top:0}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.v{display:inline-block;padding:1px 8px;border-radius:3px;color:#fff;font-weight:bold}
.v.valid{background:#15803d}.v.invalid{background:#b91c1c}.v.unknown{background:#b45309}.v.incomplete{background:#6b7280}
.muted{color:#6b7280;font-size:12px}
.filters{display:flex;gap:12px;align-items:center;margin-top:8px}
input,select{font-size:14px;padding:3px 6px}
"#;

const SCRIPT: &str = r#"
(function(){
  var q=document.getElementById('q'),v=document.getElementById('verdict-filter'),n=document.getElementById('shown');
  function apply(){
    var t=q.value.toLowerCase(),w=v.value,c=0;
    document.querySelectorAll('tr.run').forEach(function(r){
      var ok=(!t||r.textContent.toLowerCase().indexOf(t)>=0)&&(!w||r.dataset.verdict===w);
      r.style.display=ok?'':'none'; if(ok)c++;
    });
    n.textContent=c;
  }
  q.addEventListener('input',apply); v.addEventListener('change',apply); apply();
})();
"#;

fn num(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

fn count_rate(n: Option<u64>, rate: Option<f64>) -> String {
    match (n, rate) {
        (Some(n), Some(r)) if n > 0 => format!("{n} ({:.3}%)", r * 100.0),
        (Some(n), _) => n.to_string(),
        _ => String::new(),
    }
}

/// The page.
pub fn render(rows: &[RunRow], latest: Option<&str>) -> String {
    let mut s = String::with_capacity(4096 + rows.len() * 600);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>gregor runs</title><style>{CSS}</style></head><body><main>\n<h1>gregor runs</h1>\n"
    );
    let count = |v: &str| rows.iter().filter(|r| r.verdict == v).count();
    let _ = writeln!(
        s,
        "<p class=\"muted\" id=\"totals\">{} run{}: {} valid, {} invalid, {} unknown, {} incomplete{}</p>",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        count("valid"),
        count("invalid"),
        count("unknown"),
        count("incomplete"),
        latest
            .map(|l| format!(
                "; latest: <a href=\"latest/report.html\">{}</a>",
                escape(l)
            ))
            .unwrap_or_default()
    );
    s.push_str(
        "<div class=\"filters\"><input id=\"q\" type=\"search\" placeholder=\"filter: scenario, cluster, anomaly…\" size=\"40\">\
         <select id=\"verdict-filter\"><option value=\"\">any verdict</option><option>valid</option><option>invalid</option>\
         <option>unknown</option><option>incomplete</option></select><span class=\"muted\"><span id=\"shown\"></span> shown</span></div>\n",
    );
    if rows.is_empty() {
        s.push_str("<p>No runs yet.</p>\n");
    }
    s.push_str(
        "<table id=\"runs\"><thead><tr><th>started (UTC)</th><th>scenario</th><th>cluster</th><th>verdict</th>\
         <th>keys</th><th>events</th><th>acknowledged</th><th>lost</th><th>unseen</th><th>duplicated</th><th>files</th></tr></thead><tbody>\n",
    );
    for r in rows {
        let href = |f: &str| escape(&format!("{}/{f}", r.rel));
        let verdict = if r.bad_types.is_empty() {
            format!("<span class=\"v {0}\">{0}</span>", escape(&r.verdict))
        } else {
            format!(
                "<span class=\"v {0}\">{0}</span> <span class=\"muted\">{1}</span>",
                escape(&r.verdict),
                escape(&r.bad_types.join(", "))
            )
        };
        let first = if r.has_report {
            format!(
                "<a href=\"{}\">{}</a>",
                href("report.html"),
                escape(&r.started_at)
            )
        } else {
            escape(&r.started_at)
        };
        let _ = writeln!(
            s,
            "<tr class=\"run\" data-verdict=\"{}\"><td>{first}</td><td>{}</td><td>{}</td><td>{verdict}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td><a href=\"{}\">dir</a>{}</td></tr>",
            escape(&r.verdict),
            escape(&r.scenario),
            escape(&r.cluster),
            num(r.keys),
            num(r.events),
            num(r.acknowledged),
            count_rate(r.lost, r.lost_rate),
            count_rate(r.unseen, r.unseen_rate),
            count_rate(r.duplicated, r.duplicated_rate),
            href(""),
            if r.has_report {
                format!(
                    " <a href=\"{}\">junit</a> <a href=\"{}\">summary</a>",
                    href("junit.xml"),
                    href("summary.md")
                )
            } else {
                String::new()
            }
        );
    }
    s.push_str("</tbody></table>\n");
    let _ = write!(
        s,
        "<p class=\"muted\">Regenerated after every run and by <code>gregor report</code>; serve with <code>gregor serve</code>.</p>\n<script>{SCRIPT}</script>\n</main></body></html>\n"
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(store: &Path, rel: &str, started: &str, results: Option<&str>) -> PathBuf {
        let d = store.join(rel);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("meta.json"),
            format!(
                r#"{{"scenario":"{}","started_at":"{started}","cluster":"tansu x3","keys":{{"0":{{"topic":"t","partition":0}},"1":{{"topic":"t","partition":1}}}},"extra":{{"cluster-version":"0.6.0"}}}}"#,
                rel.split('/').next().unwrap()
            ),
        )
        .unwrap();
        if let Some(r) = results {
            std::fs::write(d.join("results.json"), r).unwrap();
        }
        d
    }

    #[test]
    fn runs_are_listed_newest_first_with_verdicts_and_rates() {
        let t = tempfile::tempdir().unwrap();
        let store = t.path();
        run(
            store,
            "quick-kill/2026-01-01T000000.000Z",
            "2026-01-01T00:00:00.000Z",
            Some(
                r#"{"valid":true,"bad-types":[],"stats":{"acknowledged":100,"lost":0,"events":400}}"#,
            ),
        );
        let newest = run(
            store,
            "memory-loss/2026-02-01T000000.000Z",
            "2026-02-01T00:00:00.000Z",
            Some(
                r#"{"valid":false,"bad-types":["lost-write"],"stats":{"acknowledged":200,"lost":3,"lost-rate":0.015}}"#,
            ),
        );
        run(
            store,
            "txn/2025-12-01T000000.000Z",
            "2025-12-01T00:00:00.000Z",
            None,
        );
        std::os::unix::fs::symlink("memory-loss/2026-02-01T000000.000Z", store.join("latest"))
            .unwrap();
        assert_eq!(
            store_of(&newest).as_deref(),
            Some(&*std::fs::canonicalize(store).unwrap())
        );

        let rows = scan(store).unwrap();
        let order: Vec<&str> = rows.iter().map(|r| r.scenario.as_str()).collect();
        assert_eq!(
            order,
            ["memory-loss", "quick-kill", "txn"],
            "newest first, latest link not listed twice"
        );
        assert_eq!(rows[0].verdict, "invalid");
        assert_eq!(rows[0].cluster, "tansu x3 0.6.0");
        assert_eq!(rows[0].keys, Some(2));
        assert_eq!(rows[2].verdict, "incomplete");

        let path = write_index(store).unwrap();
        let html = std::fs::read_to_string(path).unwrap();
        assert!(html.contains("3 runs: 1 valid, 1 invalid, 0 unknown, 1 incomplete"));
        assert!(html.contains("3 (1.500%)"), "lost count with its rate");
        assert!(html.contains(r#"data-verdict="invalid""#) && html.contains("lost-write"));
        assert!(html.contains("latest/report.html"));
        let first_row = html.find("memory-loss").unwrap();
        assert!(first_row < html.find("quick-kill").unwrap());
    }

    #[test]
    fn a_directory_outside_a_store_has_no_store() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        std::fs::create_dir_all(&d).unwrap();
        assert_eq!(store_of(&d), None);
    }
}
