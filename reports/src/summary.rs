//! The facts every output shares (verdict, counts, anomalies, key stats)
//! and the terminal / Markdown summaries built from them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use gregor_checkers::{CheckResult, Validity};
use gregor_history::Example;

use crate::model::{Outcome, Timeline};
use crate::ReportInput;

/// One anomaly type as the summaries show it.
#[derive(Clone, Debug, PartialEq)]
pub struct AnomalyRow {
    pub name: String,
    pub count: u64,
    pub bad: bool,
    /// The first example's explanation, if any.
    pub first: Option<String>,
    /// History indices of the first example's ops.
    pub first_ops: Vec<u64>,
}

/// The verdict, counts, anomalies and key numbers of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Facts {
    pub valid: Validity,
    pub verdict: String,
    pub headline: String,
    /// f -> outcome -> count.
    pub counts: BTreeMap<String, BTreeMap<Outcome, u64>>,
    pub anomalies: Vec<AnomalyRow>,
    /// (label, value) pairs.
    pub stats: Vec<(String, String)>,
    pub report_html: PathBuf,
}

/// `VALID`, `INVALID` or `UNKNOWN`.
pub fn verdict_word(v: Validity) -> &'static str {
    match v {
        Validity::True => "VALID",
        Validity::False => "INVALID",
        Validity::Unknown => "UNKNOWN",
    }
}

/// The one-line verdict: the word and why.
pub fn verdict_line(r: &CheckResult) -> String {
    let allowed: Vec<&str> = r
        .anomaly_types
        .iter()
        .filter(|t| !r.bad_types.contains(t))
        .map(String::as_str)
        .collect();
    let word = verdict_word(r.valid);
    match r.valid {
        Validity::True if allowed.is_empty() => format!("{word}: no anomalies found"),
        Validity::True => format!(
            "{word}: only anomalies the Kafka model allows ({})",
            allowed.join(", ")
        ),
        Validity::False => format!("{word}: {}", r.bad_types.join(", ")),
        Validity::Unknown if r.bad_types.is_empty() => {
            format!("{word}: the history cannot support a verdict")
        }
        Validity::Unknown => format!(
            "{word}: the history cannot support a verdict (bad: {})",
            r.bad_types.join(", ")
        ),
    }
}

/// The explanation of an anomaly example, or a compact form of it.
pub fn explanation(example: &Example) -> String {
    if !example.explanation.is_empty() {
        return example.explanation.clone();
    }
    let s = example.to_json().to_string();
    if s.chars().count() > 200 {
        s.chars().take(199).collect::<String>() + "…"
    } else {
        s
    }
}

fn pct(count: u64, rate: f64, denom: u64) -> String {
    let r = if rate > 0.0 || denom == 0 {
        rate
    } else {
        count as f64 / denom as f64
    };
    if denom == 0 && count == 0 {
        return format!("{count}");
    }
    format!("{count} ({:.3}%)", r * 100.0)
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.2} ms")
    }
}

impl Facts {
    pub fn gather(input: &ReportInput, timeline: &Timeline) -> Facts {
        let r = input.result;
        let mut counts = timeline.counts();
        if counts.is_empty() {
            // No client events in the history given: fall back to the checker's counts.
            for (f, m) in &r.stats.ops {
                for (k, n) in m {
                    let o = match k.as_str() {
                        "ok" => Outcome::Ok,
                        "fail" => Outcome::Fail,
                        "info" => Outcome::Info,
                        _ => continue,
                    };
                    *counts.entry(f.clone()).or_default().entry(o).or_default() += n;
                }
            }
        }
        let mut names: Vec<&String> = r.anomalies.keys().collect();
        for t in &r.anomaly_types {
            if !names.contains(&t) {
                names.push(t);
            }
        }
        names.sort_by(|a, b| {
            r.bad_types
                .contains(b)
                .cmp(&r.bad_types.contains(a))
                .then(a.cmp(b))
        });
        let anomalies = names
            .into_iter()
            .map(|n| {
                let g = r.anomalies.get(n);
                let first = g.and_then(|g| g.examples.first());
                AnomalyRow {
                    name: n.clone(),
                    count: g.map_or(0, |g| g.count.max(g.examples.len() as u64)),
                    bad: r.bad_types.contains(n),
                    first: first.map(explanation),
                    first_ops: first.map(|e| e.ops.clone()).unwrap_or_default(),
                }
            })
            .collect();

        let s = &r.stats;
        let mut stats = vec![
            ("acknowledged".to_string(), s.acknowledged.to_string()),
            ("lost".to_string(), pct(s.lost, s.lost_rate, s.acknowledged)),
            (
                "unseen".to_string(),
                pct(s.unseen, s.unseen_rate, s.acknowledged),
            ),
            (
                "duplicated".to_string(),
                pct(s.duplicated, s.duplicated_rate, s.acknowledged),
            ),
        ];
        // "12 ms (key 3, op 456)".
        let lag_text = |l: Option<f64>, key: Option<u64>, op: Option<u64>| {
            let mut text = l.map_or("-".to_string(), ms);
            let at: Vec<String> = key
                .map(|k| format!("key {k}"))
                .into_iter()
                .chain(op.map(|o| format!("op {o}")))
                .collect();
            if l.is_some() && !at.is_empty() {
                let _ = write!(text, " ({})", at.join(", "));
            }
            text
        };
        stats.push((
            "worst realtime lag".to_string(),
            lag_text(
                s.worst_realtime_lag_ms,
                s.worst_realtime_lag_key,
                s.worst_realtime_lag_op,
            ),
        ));
        if s.worst_catchup_lag_ms.is_some() {
            stats.push((
                "worst catch-up lag".to_string(),
                lag_text(
                    s.worst_catchup_lag_ms,
                    s.worst_catchup_lag_key,
                    s.worst_catchup_lag_op,
                ),
            ));
        }
        for f in ["send", "poll"] {
            let v = match s.latency.get(f).filter(|l| l.count > 0) {
                Some(l) => format!("p50 {}, p99 {}", ms(l.p50), ms(l.p99)),
                None => "-".to_string(),
            };
            stats.push((format!("{f} latency"), v));
        }
        let mut headline = String::from("gregor");
        if let Some(m) = input.meta {
            if !m.scenario.is_empty() {
                let _ = write!(headline, " — scenario {}", m.scenario);
            }
            let _ = write!(headline, ", seed {}", m.seed);
            if !m.cluster.is_empty() {
                let _ = write!(headline, ", cluster {}", m.cluster);
            }
        }
        let _ = write!(
            headline,
            " ({} events, {:.1} s)",
            input.history.len(),
            timeline.end_ns as f64 / 1e9
        );
        Facts {
            valid: r.valid,
            verdict: verdict_line(r),
            headline,
            counts,
            anomalies,
            stats,
            report_html: input.run_dir.join("report.html"),
        }
    }

    fn count_rows(&self) -> Vec<[String; 5]> {
        self.counts
            .iter()
            .map(|(f, m)| {
                let g = |o| m.get(&o).copied().unwrap_or(0);
                let total: u64 = m.values().sum();
                [
                    f.clone(),
                    g(Outcome::Ok).to_string(),
                    g(Outcome::Fail).to_string(),
                    g(Outcome::Info).to_string(),
                    total.to_string(),
                ]
            })
            .collect()
    }

    /// The terminal summary.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.headline);
        let _ = writeln!(s, "Operations:");
        let header = [
            "f".to_string(),
            "ok".into(),
            "fail".into(),
            "info".into(),
            "total".into(),
        ];
        let rows = self.count_rows();
        let w: Vec<usize> = (0..5)
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].len())
                    .chain([header[i].len()])
                    .max()
                    .unwrap_or(1)
            })
            .collect();
        if rows.is_empty() {
            let _ = writeln!(s, "  (no client operations)");
        } else {
            for r in std::iter::once(&header).chain(rows.iter()) {
                let _ = writeln!(
                    s,
                    "  {:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {:>w4$}",
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    w0 = w[0],
                    w1 = w[1],
                    w2 = w[2],
                    w3 = w[3],
                    w4 = w[4]
                );
            }
        }
        let _ = writeln!(s, "Anomalies:");
        if self.anomalies.is_empty() {
            let _ = writeln!(s, "  none");
        }
        let nw = self
            .anomalies
            .iter()
            .map(|a| a.name.len())
            .max()
            .unwrap_or(0);
        let cw = self
            .anomalies
            .iter()
            .map(|a| a.count.to_string().len())
            .max()
            .unwrap_or(0);
        for a in &self.anomalies {
            let _ = write!(
                s,
                "  {:<nw$}  {:>cw$}  {:<7}",
                a.name,
                a.count,
                if a.bad { "BAD" } else { "allowed" }
            );
            if let Some(e) = &a.first {
                let _ = write!(s, "  e.g. {e}");
            }
            if !a.first_ops.is_empty() {
                let _ = write!(s, " (ops {})", join(&a.first_ops));
            }
            s.push('\n');
        }
        let _ = writeln!(s, "Stats:");
        let sw = self.stats.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in &self.stats {
            let _ = writeln!(s, "  {k:<sw$}  {v}");
        }
        let _ = writeln!(s, "Verdict: {}", self.verdict);
        let _ = writeln!(s, "Report: {}", self.report_html.display());
        s
    }

    /// The same content as [`Facts::text`], in Markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# {}\n", md(&self.headline));
        let _ = writeln!(s, "**Verdict: {}**\n", md(&self.verdict));
        let _ = writeln!(s, "## Operations\n");
        let rows = self.count_rows();
        if rows.is_empty() {
            let _ = writeln!(s, "No client operations.\n");
        } else {
            let _ = writeln!(
                s,
                "| f | ok | fail | info | total |\n| --- | ---: | ---: | ---: | ---: |"
            );
            for r in rows {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} |",
                    md(&r[0]),
                    r[1],
                    r[2],
                    r[3],
                    r[4]
                );
            }
            s.push('\n');
        }
        let _ = writeln!(s, "## Anomalies\n");
        if self.anomalies.is_empty() {
            let _ = writeln!(s, "None.\n");
        } else {
            let _ = writeln!(s, "| type | count | verdict | first example | ops |\n| --- | ---: | --- | --- | --- |");
            for a in &self.anomalies {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} |",
                    md(&a.name),
                    a.count,
                    if a.bad { "**bad**" } else { "allowed" },
                    a.first.as_deref().map(md).unwrap_or_default(),
                    join(&a.first_ops)
                );
            }
            s.push('\n');
        }
        let _ = writeln!(s, "## Stats\n\n| stat | value |\n| --- | --- |");
        for (k, v) in &self.stats {
            let _ = writeln!(s, "| {} | {} |", md(k), md(v));
        }
        let _ = writeln!(s, "\nReport: [{0}]({0})", self.report_html.display());
        s
    }
}

fn join(v: &[u64]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Escapes text for a Markdown table cell.
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' | '*' | '_' | '`' | '<' | '>' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
