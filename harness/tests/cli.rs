//! The command line as a user meets it, without a cluster.

use std::path::Path;
use std::process::{Command, Output};

fn gregor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(args)
        .env("CI", "true")
        .output()
        .expect("gregor runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn help_lists_the_working_commands_and_nothing_else() {
    let o = gregor(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let t = text(&o);
    for c in ["run", "check", "report", "cluster"] {
        assert!(t.contains(&format!("  {c} ")), "help lacks {c}: {t}");
    }
    for c in ["compare", "monitor"] {
        assert!(
            !t.contains(&format!("  {c} ")),
            "help lists {c}, which does not exist yet: {t}"
        );
    }
    for sub in [
        &["run", "--help"][..],
        &["check", "--help"],
        &["report", "--help"],
        &["cluster", "--help"],
        &["cluster", "up", "--help"],
    ] {
        let o = gregor(sub);
        assert_eq!(o.status.code(), Some(0), "{sub:?}");
        assert!(
            text(&o).len() > 200,
            "{sub:?} help is too thin: {}",
            text(&o)
        );
    }
}

#[test]
fn a_bad_flag_exits_3() {
    let o = gregor(&["run", "--acks", "2"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = gregor(&[
        "run",
        "--nemesis",
        "kill,explode",
        "--bootstrap",
        "127.0.0.1:1",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("explode") && text(&o).contains("rolling-restart"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_bad_scenario_names_file_line_and_field_and_exits_3() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bad.yaml");
    std::fs::write(&p, "name: x\nworkload:\n  rate: 10\n  concurency: 3\n").unwrap();
    let o = gregor(&["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    let t = text(&o);
    assert!(
        t.contains("bad.yaml") && t.contains("concurency") && t.contains('4'),
        "{t}"
    );
    let o = gregor(&["run", "/nonexistent/scenario.yaml"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).contains("/nonexistent/scenario.yaml"));
}

#[test]
fn an_unreachable_cluster_is_an_error_with_exit_3() {
    let d = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there.
    let o = gregor(&[
        "run",
        "--bootstrap",
        "127.0.0.1:1",
        "--time-limit",
        "5",
        "--store",
        d.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("127.0.0.1:1"), "{}", text(&o));
}

const VALID: &str = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":[["send",0,1]]}
{"index":1,"time":2,"process":0,"type":"ok","f":"send","value":[["send",0,[0,1]]]}
{"index":2,"time":3,"process":1,"type":"invoke","f":"poll","value":[["poll"]]}
{"index":3,"time":4,"process":1,"type":"ok","f":"poll","value":[["poll",{"0":[[0,1]]}]]}
"#;

const DUPLICATE: &str = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":[["send",0,1]]}
{"index":1,"time":2,"process":0,"type":"ok","f":"send","value":[["send",0,[0,1]]]}
{"index":2,"time":3,"process":1,"type":"invoke","f":"poll","value":[["poll"]]}
{"index":3,"time":4,"process":1,"type":"ok","f":"poll","value":[["poll",{"0":[[0,1],[1,1]]}]]}
"#;

fn check_json(history: &str) -> (Option<i32>, serde_json::Value) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("history.jsonl");
    std::fs::write(&p, history).unwrap();
    let o = gregor(&["check", p.to_str().unwrap(), "--json"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "exactly one JSON line: {stdout}"
    );
    (
        o.status.code(),
        serde_json::from_str(stdout.trim()).expect("JSON"),
    )
}

#[test]
fn check_follows_the_exit_code_contract() {
    let (code, j) = check_json(VALID);
    assert_eq!(code, Some(0), "{j:#}");
    assert_eq!(j["valid"], serde_json::json!(true));
    let (code, j) = check_json(DUPLICATE);
    assert_eq!(code, Some(1), "{j:#}");
    assert_eq!(j["valid"], serde_json::json!(false));
    assert!(
        j["bad-types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "duplicate"),
        "{j:#}"
    );
    assert!(j["anomalies"]["duplicate"]["count"].as_u64().unwrap() >= 1);
    let (code, j) = check_json("");
    assert_eq!(code, Some(2), "an empty history supports no verdict: {j:#}");
    assert_eq!(j["valid"], serde_json::json!("unknown"));
    let (code, j) = check_json("{\"index\":0,");
    assert_eq!(
        code,
        Some(2),
        "a torn single line is an empty history: {j:#}"
    );
    let (code, j) = check_json("not json\n{}\n");
    assert_eq!(code, Some(3), "{j:#}");
    assert!(
        j["error"].as_str().unwrap().contains(":1:"),
        "the error names the line: {j:#}"
    );
}

#[test]
fn check_of_a_missing_path_exits_3_naming_it() {
    let o = gregor(&["check", "/nonexistent/run"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).contains("/nonexistent/run"), "{}", text(&o));
    assert!(Path::new(env!("CARGO_BIN_EXE_gregor")).exists());
}
