//! `junit.xml`: one test suite `gregor`, one test case per property the
//! checkers check, written with `quick-junit`.
//!
//! The properties are [`gregor_checkers::anomaly_types`] (the checkers' own
//! list, so a new checker shows up here without an edit), plus any other type
//! the result mentions. A property fails when the checker counts its type as
//! bad (message: the count and the first witness's explanation; body: the
//! witnesses' explanations and ops), is skipped when the verdict is unknown,
//! and passes otherwise (found-but-allowed types say so in `system-out`).

use std::fmt::Write as _;
use std::time::Duration;

use gregor_checkers::{CheckResult, Validity};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::summary::{explanation, verdict_line};

/// Examples quoted per failing property.
const EXAMPLES: usize = 5;

/// The properties the suite lists: the checkers' types, then the result's others, sorted.
pub fn classes(r: &CheckResult) -> Vec<String> {
    let mut out = gregor_checkers::anomaly_types();
    let mut extra: Vec<&String> = r
        .anomalies
        .keys()
        .chain(&r.anomaly_types)
        .chain(&r.bad_types)
        .filter(|t| !out.contains(t))
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
pub fn render(
    r: &CheckResult,
    unknown_reason: &str,
    elapsed: Duration,
) -> Result<String, quick_junit::SerializeError> {
    let mut suite = TestSuite::new("gregor");
    suite.set_time(elapsed);
    suite.add_property(Property::new(
        "valid",
        match r.valid {
            Validity::True => "true",
            Validity::False => "false",
            Validity::Unknown => "unknown",
        },
    ));
    suite.add_property(Property::new("verdict", verdict_line(r)));
    for c in classes(r) {
        let group = r.anomalies.get(&c);
        let count = group.map_or(0, |g| g.count.max(g.examples.len() as u64));
        let status = if r.bad_types.contains(&c) {
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
                let ops = &e.ops;
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
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_type(c.as_str());
            st.set_message(if first.is_empty() {
                format!("{count} {c}")
            } else {
                format!("{count} {c}: {first}")
            });
            st.set_description(body);
            st
        } else if r.valid == Validity::Unknown {
            let mut st = TestCaseStatus::skipped();
            st.set_message(unknown_reason);
            st
        } else {
            TestCaseStatus::success()
        };
        let mut tc = TestCase::new(c.as_str(), status);
        tc.set_classname("gregor.anomalies");
        tc.set_time(Duration::ZERO);
        if count > 0 && !r.bad_types.contains(&c) && r.valid != Validity::Unknown {
            tc.set_system_out(format!(
                "{count} {c} found, allowed by the Kafka model for this run"
            ));
        }
        suite.add_test_case(tc);
    }
    let mut report = Report::new("gregor");
    report.set_time(elapsed);
    report.add_test_suite(suite);
    report.to_string()
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
                examples: vec![gregor_history::Example::new(explanation, vec![4])],
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
        let xml = render(&r, "", Duration::from_millis(500)).unwrap();
        let doc = roxmltree::Document::parse(&xml).expect("well-formed");
        let f = doc
            .descendants()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert!(f
            .text()
            .unwrap()
            .contains("read ]]> <x a='1'> &  \"q\" (ops 4)"));
        assert_eq!(f.parent().unwrap().attribute("name"), Some("G1a"));
    }

    #[test]
    fn a_bad_type_still_fails_when_the_verdict_is_unknown_and_the_rest_are_skipped() {
        let r = result(Validity::Unknown, "x");
        let xml = render(&r, "validity unknown: no polls completed", Duration::ZERO).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let suite = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .unwrap();
        assert_eq!(suite.attribute("failures"), Some("1"));
        assert_eq!(
            suite.attribute("skipped"),
            Some(&*(gregor_checkers::anomaly_types().len() - 1).to_string())
        );
        assert!(xml.contains(r#"<skipped message="validity unknown: no polls completed"/>"#));
    }
}
