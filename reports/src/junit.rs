//! `junit.xml`: one test suite `gregor`, one test case per anomaly class.
//!
//! Every class of the design's anomaly table is listed, plus any other type
//! the result mentions. A class fails when the checker counts it as bad
//! (with the count and example explanations), is skipped when the verdict is
//! unknown, and passes otherwise (found-but-allowed classes say so in
//! `system-out`).

use std::fmt::Write as _;

use gregor_checkers::{CheckResult, Validity};

use crate::summary::{example_ops, explanation, verdict_line};
use crate::xml::escape;

/// The anomaly classes of DESIGN.md's table, always reported.
pub const KNOWN_TYPES: &[&str] = &[
    "lost-write",
    "unseen",
    "duplicate",
    "inconsistent-offsets",
    "nonmonotonic-send",
    "int-nonmonotonic-send",
    "poll-skip",
    "int-poll-skip",
    "nonmonotonic-poll",
    "int-nonmonotonic-poll",
    "int-send-skip",
    "G1a",
    "precommitted-read",
    "G0",
    "G1c",
    "G-single",
    "G2",
];

/// Examples quoted per failing class.
const EXAMPLES: usize = 5;

/// The classes the suite lists: the known ones, then the result's others, sorted.
pub fn classes(r: &CheckResult) -> Vec<String> {
    let mut out: Vec<String> = KNOWN_TYPES.iter().map(|s| s.to_string()).collect();
    let mut extra: Vec<&String> = r
        .anomalies
        .keys()
        .chain(&r.anomaly_types)
        .chain(&r.bad_types)
        .filter(|t| !KNOWN_TYPES.contains(&t.as_str()))
        .collect();
    extra.sort();
    extra.dedup();
    out.extend(extra.into_iter().cloned());
    out
}

/// Why a verdict is unknown, for skipped test cases.
pub fn unknown_reason(r: &CheckResult, truncated: Option<&str>, client_ops: usize) -> String {
    let mut s = verdict_line(r);
    if client_ops == 0 {
        s.push_str("; the history has no client operations");
    }
    if let Some(t) = truncated {
        let _ = write!(s, "; {t}");
    }
    s
}

/// Renders the JUnit XML document.
pub fn render(r: &CheckResult, unknown_reason: &str, elapsed_secs: f64) -> String {
    let classes = classes(r);
    let failures = classes.iter().filter(|c| r.bad_types.contains(c)).count();
    let skipped = if r.valid == Validity::Unknown {
        classes.len() - failures
    } else {
        0
    };
    let mut s = String::new();
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        r#"<testsuites name="gregor" tests="{}" failures="{failures}" errors="0" skipped="{skipped}" time="{elapsed_secs:.3}">"#,
        classes.len()
    );
    let _ = writeln!(
        s,
        r#"  <testsuite name="gregor" tests="{}" failures="{failures}" errors="0" skipped="{skipped}" time="{elapsed_secs:.3}">"#,
        classes.len()
    );
    let _ = writeln!(
        s,
        r#"    <properties><property name="valid" value="{}"/><property name="verdict" value="{}"/></properties>"#,
        match r.valid {
            Validity::True => "true",
            Validity::False => "false",
            Validity::Unknown => "unknown",
        },
        escape(&verdict_line(r))
    );
    for c in &classes {
        let group = r.anomalies.get(c);
        let count = group.map_or(0, |g| g.count.max(g.examples.len() as u64));
        let _ = write!(
            s,
            r#"    <testcase classname="gregor.anomalies" name="{}" time="0">"#,
            escape(c)
        );
        if r.bad_types.contains(c) {
            let mut body = format!(
                "{count} {c} anomal{} found",
                if count == 1 { "y" } else { "ies" }
            );
            for (i, e) in group
                .map(|g| g.examples.as_slice())
                .unwrap_or_default()
                .iter()
                .take(EXAMPLES)
                .enumerate()
            {
                let ops = example_ops(e);
                let _ = write!(body, "\n{}. {}", i + 1, explanation(e));
                if !ops.is_empty() {
                    let _ = write!(
                        body,
                        " (ops {})",
                        ops.iter()
                            .map(|o| o.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
            let first = group
                .and_then(|g| g.examples.first())
                .map(explanation)
                .unwrap_or_default();
            let message = if first.is_empty() {
                format!("{count} {c}")
            } else {
                format!("{count} {c}: {first}")
            };
            let _ = write!(
                s,
                "\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    ",
                escape(c),
                escape(&message),
                escape(&body)
            );
        } else if r.valid == Validity::Unknown {
            let _ = write!(
                s,
                "\n      <skipped message=\"{}\"/>\n    ",
                escape(unknown_reason)
            );
        } else if count > 0 {
            let _ = write!(
                s,
                "\n      <system-out>{}</system-out>\n    ",
                escape(&format!(
                    "{count} {c} found, allowed by the Kafka model for this run"
                ))
            );
        }
        s.push_str("</testcase>\n");
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_checkers::{AnomalyGroup, Stats};

    fn result(valid: Validity, explanation: &str) -> CheckResult {
        let mut anomalies = std::collections::BTreeMap::new();
        anomalies.insert(
            "G1a".to_string(),
            AnomalyGroup {
                count: 2,
                examples: vec![serde_json::json!({"explanation": explanation, "ops": [4]})],
            },
        );
        CheckResult {
            valid,
            anomaly_types: vec!["G1a".into()],
            bad_types: vec!["G1a".into()],
            anomalies,
            stats: Stats::default(),
        }
    }

    #[test]
    fn hostile_explanations_still_make_well_formed_xml() {
        let r = result(Validity::False, "read ]]> <x a='1'> & \u{1}\u{8} \"q\"");
        let xml = render(&r, "", 0.5);
        let doc = roxmltree::Document::parse(&xml).expect("well-formed");
        let f = doc
            .descendants()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert!(f
            .text()
            .unwrap()
            .contains("read ]]> <x a='1'> & \u{FFFD}\u{FFFD} \"q\" (ops 4)"));
        assert_eq!(f.parent().unwrap().attribute("name"), Some("G1a"));
    }

    #[test]
    fn a_bad_type_still_fails_when_the_verdict_is_unknown_and_the_rest_are_skipped() {
        let r = result(Validity::Unknown, "x");
        let xml = render(&r, "validity unknown: no polls completed", 0.0);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let suite = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .unwrap();
        assert_eq!(suite.attribute("failures"), Some("1"));
        assert_eq!(
            suite.attribute("skipped"),
            Some(&*(KNOWN_TYPES.len() - 1).to_string())
        );
        assert!(xml.contains(r#"<skipped message="validity unknown: no polls completed"/>"#));
    }
}
