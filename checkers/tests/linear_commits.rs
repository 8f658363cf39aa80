//! Linearizability of consumer-group committed offsets.

use gregor_checkers::linear::{self, NONLINEARIZABLE, UNKNOWN};
use gregor_checkers::CheckOpts;
use gregor_history::History;
use serde_json::Value;

#[derive(Default)]
struct H {
    lines: Vec<String>,
}

impl H {
    fn ev(&mut self, p: u64, kind: &str, f: &str, value: &str) -> u64 {
        let i = self.lines.len() as u64;
        self.lines.push(format!(
            r#"{{"index":{i},"time":{},"process":{p},"type":"{kind}","f":"{f}","value":{value}}}"#,
            (i + 1) * 1_000_000
        ));
        i
    }
    fn commit(&mut self, p: u64, offsets: &str, outcome: &str) -> u64 {
        let v = format!(r#"[["commit",{offsets}]]"#);
        self.ev(p, "invoke", "commit", &v);
        self.ev(p, outcome, "commit", &v)
    }
    fn invoke_commit(&mut self, p: u64, offsets: &str) -> u64 {
        self.ev(p, "invoke", "commit", &format!(r#"[["commit",{offsets}]]"#))
    }
    fn fetch(&mut self, p: u64, keys: &str, result: &str) -> u64 {
        self.ev(
            p,
            "invoke",
            "committed",
            &format!(r#"[["committed",{keys}]]"#),
        );
        self.ev(
            p,
            "ok",
            "committed",
            &format!(r#"[["committed",{result}]]"#),
        )
    }
    fn check(&self) -> Vec<(String, Value)> {
        let h = History::parse_str(&(self.lines.join("\n") + "\n")).expect("test history parses");
        linear::check_commits(&h, &CheckOpts::default())
    }
}

#[test]
fn fetches_that_return_the_last_commit_are_linearizable() {
    let mut h = H::default();
    h.fetch(0, r#"{"1":null}"#, r#"{"1":null}"#);
    h.commit(0, r#"{"1":5,"2":7}"#, "ok");
    h.fetch(1, r#"{"1":null,"2":null}"#, r#"{"1":5,"2":7}"#);
    h.commit(0, r#"{"1":9}"#, "ok");
    h.fetch(1, r#"{"1":null,"2":null}"#, r#"{"1":9,"2":7}"#);
    assert_eq!(h.check(), vec![]);
}

#[test]
fn a_fetch_that_goes_back_to_an_older_commit_is_reported_with_its_ops() {
    let mut h = H::default();
    let c5 = h.commit(0, r#"{"1":5}"#, "ok");
    let c8 = h.commit(0, r#"{"1":8}"#, "ok");
    let bad = h.fetch(1, r#"{"1":null}"#, r#"{"1":5}"#);
    let found = h.check();
    assert_eq!(found.len(), 1, "{found:?}");
    let (ty, w) = &found[0];
    assert_eq!(ty, NONLINEARIZABLE);
    assert_eq!(w["key"], 1);
    let ops: Vec<u64> = w["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(ops.contains(&bad), "{ops:?}");
    assert_eq!(w["linearized"], serde_json::json!([c5, c8]));
    assert_eq!(w["committed-offset"], 8);
    assert_eq!(w["stuck-op"]["index"], bad);
    let text = w["explanation"].as_str().unwrap();
    assert!(
        text.contains(&format!("fetch op {bad} returned committed offset 5")),
        "{text}"
    );
    assert!(text.contains("committed offset was 8"), "{text}");
}

#[test]
fn a_fetch_concurrent_with_a_commit_may_return_either_offset() {
    let mut h = H::default();
    h.commit(0, r#"{"1":5}"#, "ok");
    h.invoke_commit(0, r#"{"1":8}"#);
    h.fetch(1, r#"{"1":null}"#, r#"{"1":5}"#);
    h.fetch(2, r#"{"1":null}"#, r#"{"1":8}"#);
    h.ev(0, "ok", "commit", r#"[["commit",{"1":8}]]"#);
    assert_eq!(h.check(), vec![]);
}

#[test]
fn an_indefinite_commit_may_have_happened_but_a_failed_one_did_not() {
    let mut h = H::default();
    h.commit(0, r#"{"1":5}"#, "info");
    h.fetch(1, r#"{"1":null}"#, r#"{"1":5}"#);
    assert_eq!(h.check(), vec![]);

    let mut h = H::default();
    h.commit(0, r#"{"1":5}"#, "fail");
    let bad = h.fetch(1, r#"{"1":null}"#, r#"{"1":5}"#);
    let found = h.check();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, NONLINEARIZABLE);
    assert_eq!(found[0].1["stuck-op"]["index"], bad);
    assert!(found[0].1["explanation"]
        .as_str()
        .unwrap()
        .contains("before any commit took effect"));
}

#[test]
fn a_fetch_returning_null_after_a_commit_completed_is_a_lost_commit() {
    let mut h = H::default();
    h.commit(0, r#"{"3":12}"#, "ok");
    h.fetch(1, r#"{"3":null}"#, r#"{"3":null}"#);
    let found = h.check();
    assert_eq!(found.len(), 1);
    assert!(found[0].1["explanation"]
        .as_str()
        .unwrap()
        .contains("returned committed offset nothing (null)"));
}

#[test]
fn keys_are_checked_independently() {
    let mut h = H::default();
    h.commit(0, r#"{"1":5,"2":6}"#, "ok");
    h.fetch(1, r#"{"1":null,"2":null}"#, r#"{"1":5,"2":4}"#);
    let found = h.check();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1["key"], 2);
}

#[test]
fn a_search_that_runs_out_of_budget_says_unknown() {
    let mut h = H::default();
    h.commit(0, r#"{"1":5}"#, "ok");
    h.fetch(1, r#"{"1":null}"#, r#"{"1":5}"#);
    let hist = History::parse_str(&(h.lines.join("\n") + "\n")).unwrap();
    let found = linear::check_commits_with(&hist, 1);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, UNKNOWN);
    assert!(found[0].1["explanation"]
        .as_str()
        .unwrap()
        .contains("unknown"));
}

#[test]
fn histories_without_commits_have_nothing_to_check() {
    let mut h = H::default();
    h.ev(0, "invoke", "poll", r#"[["poll"]]"#);
    h.ev(0, "ok", "poll", r#"[["poll",{"1":[[0,1]]}]]"#);
    h.commit(0, r#"{"1":1}"#, "ok");
    assert_eq!(h.check(), vec![]);
}
