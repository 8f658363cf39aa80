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
    for c in [
        "run", "check", "report", "cluster", "serve", "capacity", "compare", "monitor", "lazyfs",
    ] {
        assert!(t.contains(&format!("  {c} ")), "help lacks {c}: {t}");
    }
    for sub in [
        &["run", "--help"][..],
        &["check", "--help"],
        &["report", "--help"],
        &["cluster", "--help"],
        &["cluster", "up", "--help"],
        &["serve", "--help"],
        &["capacity", "--help"],
        &["compare", "--help"],
        &["certify", "--help"],
        &["monitor", "--help"],
        &["lazyfs", "--help"],
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

/// A GET over plain TCP: (status code, whole response).
fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr)?;
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    c.read_to_end(&mut raw)?;
    let out = String::from_utf8_lossy(&raw).into_owned();
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, out))
}

#[test]
fn report_lists_the_run_in_the_store_index_and_serve_serves_it_on_loopback() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    let run = store.join("dup").join("2026-12-02T050000.000Z");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("history.jsonl"), DUPLICATE).unwrap();
    std::os::unix::fs::symlink("dup/2026-12-02T050000.000Z", store.join("latest")).unwrap();

    let o = gregor(&["report", run.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for f in [
        "report.html",
        "junit.xml",
        "plots/latency.svg",
        "plots/latency.png",
    ] {
        assert!(run.join(f).is_file(), "{f} written");
    }
    let index = std::fs::read_to_string(store.join("index.html")).expect("store/index.html");
    assert!(
        index.contains("dup/2026-12-02T050000.000Z/report.html"),
        "{index}"
    );
    assert!(index.contains(r#"data-verdict="invalid""#) && index.contains("duplicate"));

    // A free loopback port for the server.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args([
            "serve",
            "--store",
            store.to_str().unwrap(),
            "--listen",
            &addr,
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("gregor serve starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let got = loop {
        match http_get(&addr, "/") {
            Ok(r) => break Ok(r),
            Err(e) if std::time::Instant::now() > deadline => break Err(e),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    };
    let report = http_get(&addr, "/latest/report.html");
    let png = http_get(&addr, "/latest/plots/latency.png");
    let _ = child.kill();
    let _ = child.wait();
    let (code, body) = got.expect("gregor serve answers");
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("gregor runs") && body.contains("dup"),
        "{body}"
    );
    let (code, body) = report.unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("<h1>INVALID</h1>"), "the run's report");
    let (code, body) = png.unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("Content-Type: image/png"), "{body}");
}

/// A run directory holding only a results.json and a meta.json.
fn fixture_run(dir: &Path, valid: &str, bad: &[&str], send_p99: f64, secs: f64) {
    std::fs::create_dir_all(dir).unwrap();
    let anomalies: serde_json::Map<String, serde_json::Value> = bad
        .iter()
        .map(|b| {
            (
                b.to_string(),
                serde_json::json!({"count": 3, "examples": []}),
            )
        })
        .collect();
    let results = serde_json::json!({
        "valid": if valid == "unknown" { serde_json::json!("unknown") } else { serde_json::json!(valid == "true") },
        "anomaly-types": bad, "bad-types": bad, "anomalies": anomalies,
        "stats": {
            "ops": {"send": {"ok": 1000}, "poll": {"ok": 900}},
            "acknowledged": 1000, "lost": 0, "unseen": 0, "duplicated": 0,
            "lost-rate": if bad.is_empty() { 0.0 } else { 0.003 },
            "unseen-rate": 0.0, "duplicated-rate": 0.0,
            "latency": {"send": {"count": 1000, "p50": 2.0, "p90": 5.0, "p99": send_p99, "max": 40.0}}
        }
    });
    std::fs::write(dir.join("results.json"), results.to_string()).unwrap();
    let meta = serde_json::json!({"scenario": "fixture", "extra": {"workload-seconds": secs}});
    std::fs::write(dir.join("meta.json"), meta.to_string()).unwrap();
}

#[test]
fn compare_says_whether_b_regressed_with_the_exit_code_of_the_contract() {
    let d = tempfile::tempdir().unwrap();
    let (a, same, worse, slower) = (
        d.path().join("a"),
        d.path().join("same"),
        d.path().join("worse"),
        d.path().join("slower"),
    );
    fixture_run(&a, "true", &[], 10.0, 60.0);
    fixture_run(&same, "true", &[], 12.0, 61.0);
    fixture_run(&worse, "false", &["lost-write"], 10.0, 60.0);
    fixture_run(&slower, "true", &[], 30.0, 60.0);
    let s = |p: &Path| p.to_str().unwrap().to_string();

    let o = gregor(&["compare", &s(&a), &s(&same)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("B did not regress"), "{}", text(&o));

    let o = gregor(&["compare", &s(&a), &s(&worse)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    for line in ["verdict", "anomaly lost-write", "lost rate"] {
        assert!(
            t.lines()
                .any(|l| l.starts_with(line) && l.ends_with("REGRESSED")),
            "{line} regressed: {t}"
        );
    }

    // 30 ms > 10 * 1.5 + 5 = 20 ms; with --latency-tolerance 3 (40 + 5 ms) it passes.
    let o = gregor(&["compare", &s(&a), &s(&slower), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["regressed"], serde_json::json!(true));
    let rows: Vec<&serde_json::Value> = j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["regressed"] == serde_json::json!(true))
        .collect();
    assert_eq!(rows.len(), 1, "{j}");
    assert_eq!(rows[0]["metric"], "send p99 latency (ms)");
    let o = gregor(&["compare", &s(&a), &s(&slower), "--latency-tolerance", "3"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let o = gregor(&["compare", &s(&a), &s(&d.path().join("nope"))]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("nope/results.json"), "{}", text(&o));
    let o = gregor(&["compare", &s(&a), &s(&same), "--latency-tolerance=-1"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

/// A certificate directory with one cell per `(id, send p99)`, each cell's
/// run a fixture run.
fn fixture_certificate(dir: &Path, cells: &[(&str, f64)]) {
    let rows: Vec<serde_json::Value> = cells
        .iter()
        .map(|(id, p99)| {
            fixture_run(&dir.join("cells").join(id), "true", &[], *p99, 60.0);
            serde_json::json!({
                "id": id, "version": null, "faults": ["kill"], "client": "safe",
                "seed": 1, "expect": "valid", "run-dir": format!("cells/{id}"),
                "verdict": "valid", "passed": true, "seconds": 60.0
            })
        })
        .collect();
    let cert = serde_json::json!({
        "suite": "fixture", "started-at": "2026-12-02T00:00:00Z",
        "cells": rows, "exit-code": 0
    });
    std::fs::write(dir.join("certificate.json"), cert.to_string()).unwrap();
}

#[test]
fn compare_of_two_certificates_exits_1_naming_the_one_cell_that_regressed() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    fixture_certificate(&a, &[("c1", 10.0), ("c2", 10.0)]);
    fixture_certificate(&b, &[("c1", 10.0), ("c2", 30.0)]);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let o = gregor(&["compare", &s(&a), &s(&b)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    let bad: Vec<&str> = t.lines().filter(|l| l.contains("REGRESSED")).collect();
    assert_eq!(bad.len(), 1, "{t}");
    assert!(
        bad[0].starts_with("c2 ") && bad[0].contains("send p99 latency (ms): 10.00 -> 30.00"),
        "{t}"
    );
    let o = gregor(&["compare", &s(&a), &s(&a)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The same threshold flags as for runs.
    let o = gregor(&["compare", &s(&a), &s(&b), "--latency-tolerance", "3"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
