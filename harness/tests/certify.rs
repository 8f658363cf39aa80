//! `gregor certify` on the shared Apache Kafka test cluster
//! (`GREGOR_TEST_KAFKA_BOOTSTRAP`; fails, never skips, without it): a
//! two-cell suite runs into one certificate (JSON, HTML linking each
//! cell's report, JUnit with one case per cell), `--resume` runs nothing
//! twice, `--baseline` compares cell by cell, and a cell whose expectation
//! is wrong fails the suite with exit 1 and a JUnit failure saying why.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{describe, repo};

fn certify(store: &Path, suite: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gregor"))
        .arg("certify")
        .arg(suite)
        .arg("--store")
        .arg(store)
        .args(extra)
        .env("CI", "true")
        .current_dir(repo())
        .output()
        .expect("gregor runs")
}

fn certificate(store: &Path, suite: &str) -> (std::path::PathBuf, serde_json::Value) {
    let dir = std::fs::canonicalize(store.join("certify").join(suite).join("latest"))
        .expect("a certificate directory");
    let c = serde_json::from_str(&std::fs::read_to_string(dir.join("certificate.json")).unwrap())
        .unwrap();
    (dir, c)
}

#[test]
fn a_suite_certifies_resumes_and_compares_cell_by_cell() {
    let store = tempfile::tempdir().unwrap();
    let suite = store.path().join("tiny.yaml");
    std::fs::write(
        &suite,
        format!(
            "name: tiny\n\
             base: {{time-limit: 6, cluster: {{bootstrap: \"{}\"}}, nemesis: {{faults: []}}}}\n\
             matrix:\n  clients:\n    - {{name: safe, acks: all, idempotence: true}}\n    - {{name: plain, acks: all, idempotence: false}}\n  seeds: [7]\n",
            common::shared_kafka()
        ),
    )
    .unwrap();
    let out = certify(store.path(), &suite, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let (dir, c) = certificate(store.path(), "tiny");
    let cells = c["cells"].as_array().unwrap();
    let ids: Vec<&str> = cells.iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["default-none-safe-s7", "default-none-plain-s7"]);
    for cell in cells {
        assert_eq!(cell["verdict"], "valid", "{cell}");
        assert_eq!(cell["passed"], true, "{cell}");
        let report = dir
            .join(cell["run-dir"].as_str().unwrap())
            .join("report.html");
        assert!(report.is_file(), "{} missing", report.display());
    }
    assert_eq!(c["exit-code"], 0);
    let html = std::fs::read_to_string(dir.join("certificate.html")).unwrap();
    assert!(html.contains("CERTIFIED: suite tiny"), "{html}");
    assert_eq!(html.matches("/report.html\">").count(), 2, "{html}");
    // What a browser shows: the verdict and one linked row per cell.
    let dom = common::chromium_dom(&format!(
        "file://{}",
        dir.join("certificate.html").display()
    ));
    assert!(dom.contains("CERTIFIED: suite tiny"), "{dom}");
    assert_eq!(dom.matches("<tr class=\"pass\">").count(), 2, "{dom}");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 2, "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");

    // --resume: every cell is done, nothing runs again.
    let before = std::fs::read_dir(dir.join("cells/default-none-safe-s7"))
        .unwrap()
        .count();
    let out = certify(store.path(), &suite, &["--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("done before").count(), 2, "{err}");
    let after = std::fs::read_dir(dir.join("cells/default-none-safe-s7"))
        .unwrap()
        .count();
    assert_eq!(before, after, "no new run of a finished cell");

    // Two certificates compare cell by cell; one with itself never regresses.
    let cmp = |a: &Path, b: &Path| {
        Command::new(env!("CARGO_BIN_EXE_gregor"))
            .arg("compare")
            .arg(a)
            .arg(b)
            .output()
            .unwrap()
    };
    let out = cmp(&dir, &dir);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("default-none-safe-s7") && text.contains("B did not regress"),
        "{text}"
    );
    let a_run = dir.join(cells[0]["run-dir"].as_str().unwrap());
    let out = cmp(&dir, &a_run);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a certificate and a run: {}",
        describe(&out)
    );

    // --baseline: a second certificate compared with the first, cell by cell.
    let out = certify(store.path(), &suite, &["--baseline", dir.to_str().unwrap()]);
    let (dir2, c2) = certificate(store.path(), "tiny");
    assert_ne!(dir, dir2, "a new certificate");
    assert_eq!(c2["baseline"], dir.to_str().unwrap());
    // Two 6 s runs on a shared, busy cluster may differ in latency; the
    // comparison must have run (rows exist) and be reflected in the code.
    let regressed = c2["cells"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| !x["regressions"].as_array().unwrap().is_empty());
    assert_eq!(
        out.status.code(),
        Some(if regressed { 1 } else { 0 }),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_cell_that_misses_its_expectation_fails_the_suite_with_the_reason() {
    let store = tempfile::tempdir().unwrap();
    let suite = store.path().join("wrong.yaml");
    std::fs::write(
        &suite,
        format!(
            "name: wrong\n\
             base: {{time-limit: 5, cluster: {{bootstrap: \"{}\"}}, nemesis: {{faults: []}}}}\n\
             matrix:\n  clients:\n    - {{name: said-unsafe, acks: all, expect: invalid}}\n",
            common::shared_kafka()
        ),
    )
    .unwrap();
    let out = certify(store.path(), &suite, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let (dir, c) = certificate(store.path(), "wrong");
    assert_eq!(c["cells"][0]["verdict"], "valid");
    assert_eq!(c["cells"][0]["passed"], false);
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("<failure"), "{junit}");
    assert!(junit.contains("expected Invalid, got valid"), "{junit}");
    let html = std::fs::read_to_string(dir.join("certificate.html")).unwrap();
    assert!(html.contains("FAILED: suite wrong"), "{html}");
}

#[test]
fn a_bad_suite_is_an_error_naming_the_field() {
    let store = tempfile::tempdir().unwrap();
    let suite = store.path().join("bad.yaml");
    std::fs::write(
        &suite,
        "name: bad\nmatrix:\n  clients: [{name: a, acks: \"2\"}]\n",
    )
    .unwrap();
    let out = certify(store.path(), &suite, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("client.acks") && err.contains("bad.yaml"),
        "{err}"
    );
}

#[test]
fn run_with_a_baseline_compares_after_checking() {
    let store = tempfile::tempdir().unwrap();
    // A baseline so slow and so scarce that no healthy run regresses on it.
    let base = store.path().join("baseline");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(
        base.join("results.json"),
        serde_json::json!({
            "valid": true, "anomaly-types": [], "bad-types": [], "anomalies": {},
            "stats": {"ops": {"send": {"ok": 1}}, "latency": {
                "send": {"count": 1, "p50": 1e6, "p90": 1e6, "p99": 1e6, "p999": 1e6, "max": 1e6},
                "poll": {"count": 1, "p50": 1e6, "p90": 1e6, "p99": 1e6, "p999": 1e6, "max": 1e6}}}
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        base.join("meta.json"),
        serde_json::json!({"extra": {"workload-seconds": 1000.0}}).to_string(),
    )
    .unwrap();
    let run = |baseline: &Path| {
        Command::new(env!("CARGO_BIN_EXE_gregor"))
            .args([
                "run",
                "--time-limit",
                "4",
                "--bootstrap",
                &common::shared_kafka(),
            ])
            .arg("--baseline")
            .arg(baseline)
            .arg("--store")
            .arg(store.path().join("runs"))
            .env("CI", "true")
            .current_dir(repo())
            .output()
            .expect("gregor runs")
    };
    let out = run(&base);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("B did not regress"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("send p99 latency")),
        "{stdout}"
    );
    // A baseline that is not a checked run directory: exit 3 before running.
    let out = run(&store.path().join("nope"));
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--baseline"),
        "{}",
        describe(&out)
    );
}
