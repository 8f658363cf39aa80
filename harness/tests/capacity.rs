//! `gregor capacity` on real Apache Kafka: the shared test cluster
//! (`GREGOR_TEST_KAFKA_BOOTSTRAP`; the tests fail, never skip, without it)
//! and a local 3-node cluster with faults during the steps.
//!
//! - a short ramp on a healthy cluster sustains every step (limits far
//!   above what loopback needs), and every output is there and agrees:
//!   capacity.json, capacity.prom, capacity.txt, both plots;
//! - a limit no cluster can meet ends the ramp after its first step with
//!   no sustainable rate and exit 1;
//! - faults during the steps are recorded in history.jsonl and named by
//!   the step they started in, and the ramp still ends with a report.

use std::path::Path;
use std::process::{Command, Output};

use gregor_history::capacity::{CapacityReport, CAPACITY_FILE, QUANTILES};

mod common;
use common::{describe, repo};

fn capacity(store: &Path, args: &[&str]) -> (Output, Option<CapacityReport>, std::path::PathBuf) {
    let out = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .arg("capacity")
        .args(args)
        .arg("--store")
        .arg(store)
        .env("CI", "true")
        .current_dir(repo())
        .output()
        .expect("gregor runs");
    let dir = std::fs::canonicalize(store.join("latest")).unwrap_or_default();
    let report = std::fs::read_to_string(dir.join(CAPACITY_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    (out, report, dir)
}

#[test]
fn a_short_ramp_on_kafka_sustains_every_step_and_writes_every_output() {
    let store = tempfile::tempdir().unwrap();
    let bootstrap = common::shared_kafka();
    let (out, report, dir) = capacity(
        store.path(),
        &[
            "--bootstrap",
            &bootstrap,
            "--start-rate",
            "200",
            "--step-factor",
            "2",
            "--max-rate",
            "800",
            "--step-secs",
            "3",
            "--p99-limit-ms",
            "3000",
            "--error-limit",
            "0.01",
        ],
    );
    let report = report.unwrap_or_else(|| panic!("no capacity.json\n{}", describe(&out)));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let rates: Vec<f64> = report.steps.iter().map(|s| s.offered_rate).collect();
    assert_eq!(rates, vec![200.0, 400.0, 800.0], "{}", describe(&out));
    for s in &report.steps {
        assert!(s.sustained, "step {s:?}\n{}", describe(&out));
        assert_eq!(s.sent, (s.offered_rate * 3.0) as u64, "{s:?}");
        assert_eq!(
            s.acked + s.errors,
            s.sent,
            "every record is acked or failed: {s:?}"
        );
        assert_eq!(s.latency_ms.len(), 4, "{s:?}");
        assert!(
            s.latency_ms.windows(2).all(|w| w[0] <= w[1]),
            "quantiles ascend: {s:?}"
        );
        assert!(s.latency_ms[0] > 0.0, "a real ack takes time: {s:?}");
    }
    assert_eq!(report.sustainable_rate, Some(800.0));
    assert!(report.stopped.contains("max-rate"), "{}", report.stopped);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("highest sustainable rate: 800 records/s"),
        "{stdout}"
    );
    let prom = std::fs::read_to_string(dir.join("capacity.prom")).unwrap();
    let scrape = prometheus_parse::Scrape::parse(prom.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("capacity.prom does not parse: {e}\n{prom}"));
    let value = |metric: &str, labels: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .and_then(|s| match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => Some(v),
                _ => None,
            })
    };
    assert_eq!(
        value("gregor_capacity_sustainable_rate", &[]),
        Some(800.0),
        "{prom}"
    );
    // Every step's series agree with capacity.json.
    for s in &report.steps {
        let step = (s.index + 1).to_string();
        let at = [("step", step.as_str())];
        assert_eq!(
            value("gregor_capacity_step_offered_rate", &at),
            Some(s.offered_rate),
            "{prom}"
        );
        assert_eq!(
            value("gregor_capacity_step_sustained", &at),
            Some(1.0),
            "{prom}"
        );
        assert_eq!(
            value("gregor_capacity_step_errors", &at),
            Some(s.errors as f64),
            "{prom}"
        );
        let p99 = value(
            "gregor_capacity_step_latency_seconds",
            &[("step", step.as_str()), ("quantile", "0.99")],
        )
        .unwrap_or_else(|| panic!("no p99 for step {step}\n{prom}"));
        let i = QUANTILES.iter().position(|q| *q == 0.99).unwrap();
        assert!(
            (s.latency_ms[i] / 1000.0 - p99).abs() < 1e-9,
            "step {step}: p99 {p99} s, capacity.json {} ms\n{prom}",
            s.latency_ms[i]
        );
    }
    for f in [
        "capacity.txt",
        "scenario.yaml",
        "plots/capacity.svg",
        "plots/capacity.png",
        "plots/capacity-throughput.svg",
    ] {
        let len = std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{f} is missing or empty in {}", dir.display());
    }
}

#[test]
fn a_limit_no_cluster_meets_ends_the_ramp_with_no_rate_and_exit_1() {
    let store = tempfile::tempdir().unwrap();
    let bootstrap = common::shared_kafka();
    let (out, report, _) = capacity(
        store.path(),
        &[
            "--bootstrap",
            &bootstrap,
            "--start-rate",
            "100",
            "--step-secs",
            "1",
            "--p99-limit-ms",
            "0.001",
        ],
    );
    let report = report.unwrap_or_else(|| panic!("no capacity.json\n{}", describe(&out)));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(report.steps.len(), 1, "{report:?}");
    assert!(!report.steps[0].sustained);
    assert!(
        report.steps[0].why.as_deref().unwrap_or("").contains("p99"),
        "{report:?}"
    );
    assert_eq!(report.sustainable_rate, None);
    assert!(report.stopped.contains("first step"), "{}", report.stopped);
}

#[test]
fn bad_capacity_flags_are_errors_naming_the_field() {
    let store = tempfile::tempdir().unwrap();
    let (out, _, _) = capacity(
        store.path(),
        &["--bootstrap", "127.0.0.1:1", "--step-factor", "0.5"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("capacity.step-factor"), "{err}");
}

#[test]
fn faults_during_the_steps_are_recorded_and_named_by_step() {
    let store = tempfile::tempdir().unwrap();
    let scenario = store.path().join("cap.yaml");
    std::fs::write(
        &scenario,
        "cluster: {kind: kafka, base-port: 17000}\n\
         nemesis: {faults: [pause], interval: 2, duration: 1.5, target: one}\n\
         capacity: {start-rate: 200, step-factor: 2, max-rate: 400, step-secs: 4, p99-limit-ms: 60000, error-limit: 0.5}\n",
    )
    .unwrap();
    let (out, report, dir) = capacity(store.path(), &[scenario.to_str().unwrap()]);
    let report = report.unwrap_or_else(|| panic!("no capacity.json\n{}", describe(&out)));
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{}",
        describe(&out)
    );
    // Pauses may slow the first step past a limit (then the ramp ends);
    // either way every step has a measurement.
    assert!(!report.steps.is_empty(), "{report:?}");
    assert!(
        report.steps.iter().all(|s| s.acked + s.errors == s.sent),
        "{report:?}"
    );
    let faults: Vec<&String> = report.steps.iter().flat_map(|s| &s.faults).collect();
    assert!(
        faults.iter().any(|f| f.as_str() == "pause"),
        "a pause started during the steps: {report:?}\n{}",
        describe(&out)
    );
    let history = gregor_history::History::read(&dir.join("history.jsonl")).unwrap();
    let fs: Vec<String> = history
        .events
        .iter()
        .filter(|e| e.process == gregor_history::Process::Nemesis)
        .map(|e| e.f.to_string())
        .collect();
    assert!(fs.iter().any(|f| f == "pause"), "{fs:?}");
    // Healed at the end: the last nemesis action resumes what it paused.
    assert!(
        fs.iter()
            .any(|f| f.contains("resume") || f.contains("heal")),
        "{fs:?}"
    );
    // The local cluster was stopped.
    assert!(
        std::net::TcpStream::connect("127.0.0.1:17000").is_err(),
        "the local cluster is still up"
    );
}
