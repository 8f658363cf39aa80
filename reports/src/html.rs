//! `report.html`: one self-contained page (inline CSS and SVG, no scripts,
//! no external assets; the plots also link to their SVG and PNG files) with the verdict, run metadata, counts, anomalies,
//! stats, plots and the nemesis timeline.

use std::fmt::Write as _;

use gregor_checkers::{CheckResult, Validity};
use gregor_history::RunMeta;

use crate::model::Outcome;
use crate::nemesis::{Action, Window};
use crate::plots::Plot;
use crate::summary::{explanation, verdict_word, Facts};
use crate::xml::escape;

/// Examples shown per anomaly type.
const EXAMPLES: usize = 8;
/// Nemesis actions listed before the table is cut.
const MAX_ACTIONS: usize = 1000;

const CSS: &str = r#"
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:0;color:#1f2937;background:#f8fafc}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
header.verdict{padding:22px 24px;color:#fff}
header.verdict h1{margin:0;font-size:44px;letter-spacing:1px}
header.verdict p{margin:6px 0 0;font-size:16px}
.valid{background:#15803d}.invalid{background:#b91c1c}.unknown{background:#b45309}
h2{border-bottom:2px solid #e5e7eb;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0;background:#fff}
th,td{border:1px solid #e5e7eb;padding:4px 10px;text-align:left;vertical-align:top;font-size:14px}
th{background:#f1f5f9}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td:first-child{color:#b91c1c;font-weight:bold}
.tag{display:inline-block;padding:0 6px;border-radius:3px;font-size:12px;color:#fff}
.tag.bad{background:#b91c1c}.tag.allowed{background:#6b7280}
figure{margin:16px 0;background:#fff;border:1px solid #e5e7eb;padding:8px;overflow-x:auto}
figure svg{max-width:100%;height:auto}
figcaption{font-size:13px;color:#4b5563;margin-top:4px}
ol.examples{margin:0;padding-left:20px}
code,pre{font-family:"DejaVu Sans Mono",monospace;font-size:12px}
pre{white-space:pre-wrap;word-break:break-all;margin:2px 0}
.muted{color:#6b7280;font-size:13px}
.warn{background:#fef3c7;border:1px solid #f59e0b;padding:8px 12px}
"#;

/// Everything the page shows.
pub struct Page<'a> {
    pub facts: &'a Facts,
    pub result: &'a CheckResult,
    pub meta: Option<&'a RunMeta>,
    pub plots: &'a [Plot],
    pub actions: &'a [Action],
    pub windows: &'a [Window],
    pub events: usize,
    pub truncated: Option<&'a str>,
}

fn class_of(v: Validity) -> &'static str {
    match v {
        Validity::True => "valid",
        Validity::False => "invalid",
        Validity::Unknown => "unknown",
    }
}

fn secs(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1e9)
}

/// Renders the page.
pub fn render(p: &Page) -> String {
    let f = p.facts;
    let mut s =
        String::with_capacity(64 * 1024 + p.plots.iter().map(|x| x.svg.len()).sum::<usize>());
    let title = p
        .meta
        .map(|m| m.scenario.as_str())
        .filter(|t| !t.is_empty())
        .unwrap_or("run");
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>gregor: {} — {}</title><style>{CSS}</style></head><body>\n",
        escape(title),
        verdict_word(f.valid)
    );
    let _ = write!(
        s,
        "<header class=\"verdict {}\" id=\"verdict\"><h1>{}</h1><p>{}</p><p>{}</p></header>\n<main>\n",
        class_of(f.valid),
        verdict_word(f.valid),
        escape(&f.verdict),
        escape(&f.headline)
    );
    if let Some(t) = p.truncated {
        let _ = writeln!(s, "<p class=\"warn\">History: {}</p>", escape(t));
    }
    meta_section(&mut s, p.meta);
    counts_section(&mut s, f);
    anomalies_section(&mut s, p.result);
    stats_section(&mut s, f, p.events);
    let _ = writeln!(s, "<h2 id=\"plots\">Plots</h2>");
    if p.plots.iter().any(|x| !x.text) {
        let _ = writeln!(
            s,
            "<p class=\"warn\">{}</p>",
            escape(&crate::fonts::missing_font_message())
        );
    }
    for plot in p.plots {
        let _ = writeln!(
            s,
            "<figure class=\"plot\" id=\"plot-{n}\">{}<figcaption>{} <span class=\"muted\">(<a href=\"plots/{n}.svg\">svg</a>, <a href=\"plots/{n}.png\">png</a>{})</span></figcaption></figure>",
            plot.svg,
            escape(&plot.caption),
            if plot.points_drawn < plot.points_total {
                format!("; {} of {} points drawn", plot.points_drawn, plot.points_total)
            } else {
                String::new()
            },
            n = escape(&plot.name),
        );
    }
    availability_section(&mut s, p.result);
    nemesis_section(&mut s, p.actions, p.windows);
    let _ = writeln!(
        s,
        "<p class=\"muted\">Rendered by gregor-reports {} from the history and the check result; nothing here is loaded from the network.</p>",
        env!("CARGO_PKG_VERSION")
    );
    s.push_str("</main></body></html>\n");
    s
}

fn row(s: &mut String, k: &str, v: &str) {
    let _ = writeln!(s, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
}

fn meta_section(s: &mut String, meta: Option<&RunMeta>) {
    let _ = writeln!(s, "<h2 id=\"run\">Run</h2>");
    let Some(m) = meta else {
        let _ = writeln!(
            s,
            "<p class=\"muted\">No run metadata (meta.json) was given.</p>"
        );
        return;
    };
    s.push_str("<table>\n");
    row(s, "scenario", &m.scenario);
    row(s, "seed", &m.seed.to_string());
    row(s, "started at", &m.started_at);
    row(s, "cluster", &m.cluster);
    row(s, "bootstrap", &m.bootstrap);
    row(s, "gregor version", &m.gregor_version);
    let c = &m.client;
    row(s, "acks", &c.acks.to_string());
    row(s, "idempotence", &c.idempotence.to_string());
    row(s, "transactions", &c.txn.to_string());
    row(
        s,
        "consumers via",
        &format!("{:?}", c.sub_via).to_lowercase(),
    );
    row(s, "isolation level", &c.isolation_level.to_string());
    row(s, "auto commit", &c.auto_commit.to_string());
    row(s, "ww-deps", &m.ww_deps.to_string());
    let topics: std::collections::BTreeSet<&str> =
        m.keys.values().map(|tp| tp.topic.as_str()).collect();
    row(
        s,
        "keys",
        &format!(
            "{} (topics: {})",
            m.keys.len(),
            topics.into_iter().collect::<Vec<_>>().join(", ")
        ),
    );
    for (k, v) in &m.extra {
        let mut t = readable(v, false);
        if t.chars().count() > 300 {
            t = t.chars().take(299).collect::<String>() + "…";
        }
        row(s, k, &t);
    }
    s.push_str("</table>\n");
}

/// A JSON value as a person reads it: strings bare, lists joined by commas,
/// objects as `key: value` pairs joined by semicolons (nested ones in
/// parentheses), empty and `null` values left out. The nemesis section of
/// a scenario reads "faults: kill, pause; interval: 10; …", not as JSON.
fn readable(v: &serde_json::Value, nested: bool) -> String {
    use serde_json::Value as J;
    match v {
        J::Null => "none".into(),
        J::String(x) => x.clone(),
        J::Array(a) => a
            .iter()
            .map(|x| readable(x, true))
            .collect::<Vec<_>>()
            .join(", "),
        J::Object(o) => {
            let parts: Vec<String> = o
                .iter()
                .filter(|(_, x)| match x {
                    J::Null => false,
                    J::Array(a) => !a.is_empty(),
                    J::Object(m) => !m.is_empty(),
                    _ => true,
                })
                .map(|(k, x)| format!("{k}: {}", readable(x, true)))
                .collect();
            let body = parts.join("; ");
            if nested && !body.is_empty() {
                format!("({body})")
            } else {
                body
            }
        }
        other => other.to_string(),
    }
}

fn counts_section(s: &mut String, f: &Facts) {
    let _ = writeln!(s, "<h2 id=\"counts\">Operations</h2>");
    if f.counts.is_empty() {
        let _ = writeln!(s, "<p>No client operations.</p>");
        return;
    }
    s.push_str("<table><tr><th>f</th><th>ok</th><th>fail</th><th>info</th><th>total</th></tr>\n");
    for (name, m) in &f.counts {
        let g = |o| m.get(&o).copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(name),
            g(Outcome::Ok),
            g(Outcome::Fail),
            g(Outcome::Info),
            m.values().sum::<u64>()
        );
    }
    s.push_str("</table>\n<p class=\"muted\">info: outcome unknown (timeout, lost connection, or never completed).</p>\n");
}

fn anomalies_section(s: &mut String, r: &CheckResult) {
    let _ = writeln!(s, "<h2 id=\"anomalies\">Anomalies</h2>");
    let mut names: Vec<&String> = r.anomalies.keys().collect();
    for t in &r.anomaly_types {
        if !names.contains(&t) {
            names.push(t);
        }
    }
    if names.is_empty() {
        let _ = writeln!(s, "<p>None found.</p>");
        return;
    }
    names.sort_by(|a, b| {
        r.bad_types
            .contains(b)
            .cmp(&r.bad_types.contains(a))
            .then(a.cmp(b))
    });
    s.push_str("<table><tr><th>type</th><th>count</th><th></th><th>examples</th></tr>\n");
    for n in names {
        let bad = r.bad_types.contains(n);
        let g = r.anomalies.get(n);
        let count = g.map_or(0, |g| g.count.max(g.examples.len() as u64));
        let _ = write!(
            s,
            "<tr class=\"{}\" id=\"anomaly-{}\"><td>{}</td><td class=\"n\">{}</td><td><span class=\"tag {}\">{}</span></td><td>",
            if bad { "bad" } else { "allowed" },
            escape(n),
            escape(n),
            count,
            if bad { "bad" } else { "allowed" },
            if bad { "bad" } else { "allowed" }
        );
        let examples = g.map(|g| g.examples.as_slice()).unwrap_or_default();
        if !examples.is_empty() {
            s.push_str("<ol class=\"examples\">");
            for e in examples.iter().take(EXAMPLES) {
                let ops = &e.ops;
                let _ = write!(s, "<li>{}", escape(&explanation(e)));
                if !ops.is_empty() {
                    let _ = write!(
                        s,
                        " <span class=\"muted\">ops {}</span>",
                        ops.iter()
                            .map(|o| o.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                let json = serde_json::to_string(e).unwrap_or_default();
                let json = if json.chars().count() > 2000 {
                    json.chars().take(1999).collect::<String>() + "…"
                } else {
                    json
                };
                let _ = write!(s, "<details><summary class=\"muted\">details</summary><pre>{}</pre></details></li>", escape(&json));
            }
            s.push_str("</ol>");
            if examples.len() > EXAMPLES {
                let _ = write!(
                    s,
                    "<span class=\"muted\">and {} more examples in results.json</span>",
                    examples.len() - EXAMPLES
                );
            }
        }
        s.push_str("</td></tr>\n");
    }
    s.push_str("</table>\n");
}

fn stats_section(s: &mut String, f: &Facts, events: usize) {
    let _ = writeln!(s, "<h2 id=\"stats\">Stats</h2>\n<table>");
    for (k, v) in &f.stats {
        row(s, k, v);
    }
    row(s, "events", &events.to_string());
    s.push_str("</table>\n");
}

fn opt_s(v: Option<f64>) -> String {
    v.map_or("never".to_string(), |x| format!("{x:.3}"))
}

/// Availability per fault window and latency inside/outside faults, as the
/// checkers computed them (`stats.availability`).
fn availability_section(s: &mut String, r: &CheckResult) {
    let Some(a) = &r.stats.availability else {
        return;
    };
    let _ = writeln!(
        s,
        "<h2 id=\"availability\">Availability per fault window</h2>\n<p class=\"muted\">For operations invoked in each window: \
         <em>unavailable</em> runs from the first failure's completion to the completion of the first success invoked after it; \
         <em>stalled</em> is the longest stretch overlapping the window in which operations were outstanding and none succeeded (hung operations included); \
         <em>recovery</em> from the heal to the first success invoked after it; <em>new leader</em> from the fault to the first \
         metadata sample with another leader.</p>"
    );
    s.push_str("<table><tr><th>fault</th><th>from (s)</th><th>to (s)</th><th>f</th><th>ok</th><th>failed</th><th>unavailable (s)</th><th>stalled (s)</th><th>recovery (s)</th><th>new leader (s)</th><th>rebalance (s)</th></tr>\n");
    for w in &a.windows {
        for (f, x) in &w.by_f {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td class=\"n\">{:.3}</td><td class=\"n\">{:.3}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.3}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&match &w.target {
                    Some(t) => format!("{} {t}", w.fault),
                    None => w.fault.clone(),
                }),
                w.start_s,
                w.end_s,
                escape(f),
                x.ok,
                x.failed,
                opt_s(x.unavailable_s),
                x.stalled_s,
                opt_s(x.recovery_s),
                w.new_leader_s.map_or("-".to_string(), |v| format!("{v:.3}")),
                w.rebalance_s.map_or("-".to_string(), |v| format!("{v:.3}")),
            );
        }
    }
    s.push_str("</table>\n");
    let _ = writeln!(
        s,
        "<h3>Latency of ok operations inside and outside fault windows (ms)</h3>"
    );
    s.push_str("<table><tr><th>f</th><th>where</th><th>count</th><th>p50</th><th>p99</th><th>p99.9</th><th>max</th></tr>\n");
    let fs: std::collections::BTreeSet<&String> = a
        .latency_in_faults
        .keys()
        .chain(a.latency_outside_faults.keys())
        .collect();
    for f in fs {
        for (place, l) in [
            ("in faults", a.latency_in_faults.get(f)),
            ("outside faults", a.latency_outside_faults.get(f)),
        ] {
            if let Some(l) = l {
                let _ = writeln!(
                    s,
                    "<tr><td>{}</td><td>{place}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td></tr>",
                    escape(f),
                    l.count,
                    l.p50,
                    l.p99,
                    l.p999,
                    l.max
                );
            }
        }
    }
    s.push_str("</table>\n");
}

fn nemesis_section(s: &mut String, actions: &[Action], windows: &[Window]) {
    let _ = writeln!(s, "<h2 id=\"nemesis\">Nemesis timeline</h2>");
    if actions.is_empty() {
        let _ = writeln!(s, "<p>The nemesis did nothing in this run.</p>");
        return;
    }
    let _ = writeln!(
        s,
        "<h3>Fault windows</h3>\n<p class=\"muted\">A window runs from a fault's invoke to the completion of the heal that matches it \
         (<code>start</code> heals kills, <code>resume</code> pauses, <code>heal</code> and <code>stop-X</code> network faults and <code>start-X</code>; \
         same target first). A fault never healed runs to the end of the history.</p>"
    );
    if windows.is_empty() {
        let _ = writeln!(s, "<p>No fault windows.</p>");
    } else {
        s.push_str("<table><tr><th>fault</th><th>from (s)</th><th>to (s)</th><th>duration (s)</th><th>ended by</th></tr>\n");
        for w in windows {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                escape(&w.label()),
                secs(w.start_ns),
                secs(w.end_ns),
                secs(w.end_ns.saturating_sub(w.start_ns)),
                escape(w.closed_by.as_deref().unwrap_or("end of history"))
            );
        }
        s.push_str("</table>\n");
    }
    let _ = writeln!(s, "<h3>Actions</h3>");
    s.push_str("<table><tr><th>invoked (s)</th><th>completed (s)</th><th>f</th><th>target</th><th>outcome</th><th>index</th></tr>\n");
    for a in actions.iter().take(MAX_ACTIONS) {
        let outcome = match &a.error {
            Some(e) => format!("{} ({e})", a.outcome),
            None => a.outcome.to_string(),
        };
        let _ = writeln!(
            s,
            "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            secs(a.start_ns),
            secs(a.end_ns),
            escape(&a.f),
            escape(a.target.as_deref().unwrap_or("")),
            escape(&outcome),
            a.index
        );
    }
    s.push_str("</table>\n");
    if actions.len() > MAX_ACTIONS {
        let _ = writeln!(
            s,
            "<p class=\"muted\">{} more actions not listed.</p>",
            actions.len() - MAX_ACTIONS
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_settings_read_as_lists_not_json() {
        let v = serde_json::json!({
            "faults": ["kill", "pause"],
            "interval": 10,
            "targets": null,
            "upgrade": {"from": "3.9.1", "to": "4.1.1"},
            "empty": []
        });
        assert_eq!(
            readable(&v, false),
            "faults: kill, pause; interval: 10; upgrade: (from: 3.9.1; to: 4.1.1)"
        );
        assert_eq!(readable(&serde_json::json!("x"), false), "x");
    }
}
