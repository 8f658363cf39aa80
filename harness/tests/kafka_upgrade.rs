//! A rolling upgrade of real Apache Kafka, 3.9.1 → 4.1.1 (both from Maven
//! Central), while the workload runs, checked as one history: every node
//! is upgraded in turn and rejoins, `metadata.version` is finalized (and
//! read back from the cluster), and the history is valid; a rolling
//! downgrade within a release (4.1.1 → 4.1.0) is valid too.

use std::process::Command;

use gregor_history::{EventType, History, Process, Value};

mod common;
use common::{describe, repo};

/// `gregor run` of scenario `yaml` into `store`: its output, run
/// directory, and a description (output and harness log) for messages.
fn run_scenario(
    store: &std::path::Path,
    yaml: &str,
) -> (std::process::Output, std::path::PathBuf, String) {
    let scenario = store.join("scenario.yaml");
    std::fs::write(&scenario, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .arg("run")
        .arg(&scenario)
        .arg("--store")
        .arg(store)
        .env("CI", "true")
        .current_dir(repo())
        .output()
        .expect("gregor runs");
    let dir = std::fs::canonicalize(store.join("latest")).expect("a run directory");
    let log = std::fs::read_to_string(dir.join("logs/harness.log")).unwrap_or_default();
    let ctx = format!("{}\n--- harness.log\n{log}", describe(&out));
    (out, dir, ctx)
}

#[test]
fn a_rolling_upgrade_from_3_9_to_4_1_inside_one_valid_history() {
    let store = tempfile::tempdir().unwrap();
    let (out, dir, ctx) = run_scenario(
        store.path(),
        "name: upgrade-test\n\
         time-limit: 40\n\
         cluster: {kind: kafka, kafka-version: 3.9.1, base-port: 17100}\n\
         topic: {replication: 3, configs: {min.insync.replicas: \"2\"}}\n\
         nemesis: {faults: [], upgrade: {from: 3.9.1, to: 4.1.1, at: 5, settle: 2}}\n",
    );
    assert_eq!(out.status.code(), Some(0), "valid run expected\n{ctx}");
    let h = History::read(&dir.join("history.jsonl")).unwrap();
    let steps: Vec<(EventType, String, Option<String>)> = h
        .events
        .iter()
        .filter(|e| e.process == Process::Nemesis && e.f.to_string() == "upgrade")
        .map(|e| {
            let node = match &e.value {
                Value::Json(v) => v["node"].as_str().unwrap_or("").to_string(),
                _ => String::new(),
            };
            (e.kind, node, e.error.clone())
        })
        .collect();
    let expected: Vec<(EventType, String, Option<String>)> = (0..3)
        .flat_map(|i| {
            [
                (EventType::Invoke, format!("broker-{i}"), None),
                (EventType::Info, format!("broker-{i}"), None),
            ]
        })
        .collect();
    assert_eq!(
        steps, expected,
        "each node upgraded in turn, without error\n{ctx}"
    );
    let fin: Vec<_> = h
        .events
        .iter()
        .filter(|e| e.f.to_string() == "finalize-metadata-version" && e.kind == EventType::Info)
        .collect();
    assert_eq!(fin.len(), 1, "{ctx}");
    assert_eq!(fin[0].error, None, "finalize failed\n{ctx}");
    // metadata.version read back from the cluster: raised from 3.9's level
    // to the highest the 4.1.1 brokers support.
    let levels = |e: &gregor_history::Event, path: &[&str]| -> Option<i64> {
        let Value::Json(v) = &e.value else {
            return None;
        };
        path.iter().try_fold(v, |v, k| v.get(k))?.as_i64()
    };
    let invoke = h
        .events
        .iter()
        .find(|e| e.f.to_string() == "finalize-metadata-version" && e.kind == EventType::Invoke)
        .expect("a finalize invoke");
    let before = levels(invoke, &["metadata-version-before"]).expect("a level before");
    let after = levels(fin[0], &["metadata-version", "finalized"]).expect("a level after");
    let max = levels(fin[0], &["metadata-version", "supported-max"]);
    assert!(
        after > before && Some(after) == max,
        "metadata.version {before} -> {after} (4.1.1 supports {max:?})\n{ctx}"
    );
    // Workload ops happened while nodes were being upgraded.
    let (first, last) = (
        h.events
            .iter()
            .find(|e| e.f.to_string() == "upgrade")
            .unwrap()
            .time,
        h.events
            .iter()
            .rfind(|e| e.f.to_string() == "upgrade")
            .unwrap()
            .time,
    );
    let during = h
        .events
        .iter()
        .filter(|e| matches!(e.process, Process::Client(_)) && e.kind == EventType::Ok)
        .filter(|e| e.time > first && e.time < last)
        .count();
    assert!(
        during > 100,
        "only {during} ok ops during the upgrade\n{ctx}"
    );
    // Every broker's own log: started on 3.9.1, last started on 4.1.1.
    for i in 0..3 {
        let log = std::fs::read_to_string(dir.join(format!("logs/broker-{i}.log"))).unwrap();
        let versions: Vec<&str> = log
            .lines()
            .filter_map(|l| l.split("INFO Kafka version: ").nth(1))
            .filter_map(|v| v.split_whitespace().next())
            .collect();
        assert_eq!(versions.first(), Some(&"3.9.1"), "broker-{i}: {versions:?}");
        assert_eq!(versions.last(), Some(&"4.1.1"), "broker-{i}: {versions:?}");
    }
}

#[test]
fn a_rolling_config_change_restarts_each_node_with_the_setting_and_stays_valid() {
    let store = tempfile::tempdir().unwrap();
    let (out, dir, ctx) = run_scenario(
        store.path(),
        "name: rolling-config-test\n\
         time-limit: 20\n\
         cluster: {kind: kafka, base-port: 17200}\n\
         topic: {replication: 3, configs: {min.insync.replicas: \"2\"}}\n\
         nemesis: {faults: [], rolling-config: {configs: {log.retention.hours: \"200\"}, at: 3, settle: 2}}\n",
    );
    assert_eq!(out.status.code(), Some(0), "valid run expected\n{ctx}");
    let h = History::read(&dir.join("history.jsonl")).unwrap();
    let done: Vec<(String, Option<String>)> = h
        .events
        .iter()
        .filter(|e| e.f.to_string() == "rolling-config" && e.kind == EventType::Info)
        .map(|e| {
            let node = match &e.value {
                Value::Json(v) => v["node"].as_str().unwrap_or("").to_string(),
                _ => String::new(),
            };
            (node, e.error.clone())
        })
        .collect();
    let expected: Vec<(String, Option<String>)> =
        (0..3).map(|i| (format!("broker-{i}"), None)).collect();
    assert_eq!(done, expected, "{ctx}");
    // Each broker's last start printed the new setting.
    for i in 0..3 {
        let log = std::fs::read_to_string(dir.join(format!("logs/broker-{i}.log"))).unwrap();
        let last = log
            .lines()
            .rfind(|l| l.trim_start().starts_with("log.retention.hours = "));
        assert_eq!(
            last.map(str::trim),
            Some("log.retention.hours = 200"),
            "broker-{i}"
        );
    }
}

#[test]
fn a_rolling_downgrade_within_a_release_is_valid_and_never_finalized() {
    let store = tempfile::tempdir().unwrap();
    let (out, dir, ctx) = run_scenario(
        store.path(),
        "name: downgrade-test\n\
         time-limit: 35\n\
         cluster: {kind: kafka, kafka-version: 4.1.1, base-port: 17300}\n\
         topic: {replication: 3, configs: {min.insync.replicas: \"2\"}}\n\
         nemesis: {faults: [], upgrade: {to: 4.1.0, at: 3, settle: 2}}\n",
    );
    assert_eq!(out.status.code(), Some(0), "valid run expected\n{ctx}");
    let h = History::read(&dir.join("history.jsonl")).unwrap();
    let steps: Vec<(String, Option<String>)> = h
        .events
        .iter()
        .filter(|e| e.process == Process::Nemesis && e.kind == EventType::Info)
        .filter(|e| e.f.to_string() != "start")
        .map(|e| (e.f.to_string(), e.error.clone()))
        .collect();
    let expected: Vec<(String, Option<String>)> =
        (0..3).map(|_| ("downgrade".to_string(), None)).collect();
    assert_eq!(steps, expected, "three downgrade steps, no finalize\n{ctx}");
    for i in 0..3 {
        let log = std::fs::read_to_string(dir.join(format!("logs/broker-{i}.log"))).unwrap();
        let last = log
            .lines()
            .filter_map(|l| l.split("INFO Kafka version: ").nth(1))
            .filter_map(|v| v.split_whitespace().next())
            .next_back();
        assert_eq!(last, Some("4.1.0"), "broker-{i}");
    }
}
