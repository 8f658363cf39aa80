//! End-to-end runs of the `gregor` binary against the embedded tansu
//! cluster, and `gregor cluster up/status/down` of both cluster kinds.
//! The tansu tests need the tansu binary (`scripts/deps.sh --tansu`;
//! `find_tansu` looks at $GREGOR_TANSU, PATH and ~/.cargo/bin) and fail
//! loudly without it. Runs on Apache Kafka are in kafka_faults.rs.

mod common;
use common::{describe, repo};

use std::path::Path;
use std::process::{Command, Output};

use gregor_history::{EventType, History, Process};

fn gregor(args: &[&str], store: &Path) -> Output {
    assert!(
        gregor_deploy::find_tansu().is_some(),
        "tansu is not installed: run `bash .ci/install-tansu` first"
    );
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["--store", store.to_str().unwrap()]);
    plain(&a)
}

fn plain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(args)
        .env("CI", "true")
        .current_dir(repo())
        .output()
        .expect("gregor runs")
}

fn results(store: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(store.join("latest/results.json")).expect("results.json written");
    serde_json::from_str(&text).expect("results.json is JSON")
}

/// Every invoke is followed by exactly one completion of the same process
/// before that process invokes again; indices are 0, 1, 2, ...
fn assert_well_formed(h: &History) {
    let mut open: std::collections::HashMap<u64, usize> = Default::default();
    for (i, e) in h.events.iter().enumerate() {
        assert_eq!(e.index, i as u64, "index of line {}", i + 1);
        let Process::Client(p) = e.process else {
            continue;
        };
        match e.kind {
            EventType::Invoke => {
                assert!(
                    open.insert(p, i).is_none(),
                    "process {p} invoked at {i} with an op still open"
                );
            }
            _ => {
                let inv = open
                    .remove(&p)
                    .unwrap_or_else(|| panic!("completion at {i} without invoke"));
                assert_eq!(
                    h.events[inv].f, e.f,
                    "completion at {i} has another f than its invoke"
                );
            }
        }
    }
}

/// tansu finding, seen in 1 of 4 CI runs under load (never in 15 runs
/// alone): a consumer holding a key by assignment read it up to offset 106,
/// then its next read of that key went back to offset 0
/// (`nonmonotonic-poll`). The checker reports it and the run is invalid;
/// librdkafka's offset-reset warnings are now recorded as client notes to
/// explain such a witness. What must hold on every run is tested here: no
/// acknowledged write lost or unseen, no duplicate, no two values at one
/// offset, no other anomaly — and an invalid verdict only for consumers
/// going backwards.
const TANSU_CONSUMER_REWINDS: [&str; 2] = ["nonmonotonic-poll", "poll-skip"];

#[test]
fn a_run_with_broker_kills_on_the_shared_sqlite_cluster_loses_nothing() {
    let store = tempfile::tempdir().unwrap();
    let out = gregor(&["run", "scenarios/quick-kill.yaml"], store.path());
    let r = results(store.path());
    let bad: Vec<String> = serde_json::from_value(r["bad-types"].clone()).unwrap();
    for t in &bad {
        assert!(
            TANSU_CONSUMER_REWINDS.contains(&t.as_str()),
            "anomaly {t}: {}\n{r:#}",
            describe(&out)
        );
        eprintln!("tansu finding: {t}: {:#}", r["anomalies"][t]);
    }
    let expected = if bad.is_empty() {
        (0, serde_json::json!(true))
    } else {
        (1, serde_json::json!(false))
    };
    assert_eq!(
        out.status.code(),
        Some(expected.0),
        "{}\n{r:#}",
        describe(&out)
    );
    assert_eq!(r["valid"], expected.1);
    for t in ["lost", "unseen", "duplicated"] {
        assert_eq!(r["stats"][t], serde_json::json!(0), "{t}: {r:#}");
    }

    let run = store.path().join("latest");
    let h = History::read(&run.join("history.jsonl")).unwrap();
    assert!(h.truncated_tail.is_none());
    assert_well_formed(&h);
    let kills = h
        .events
        .iter()
        .filter(|e| e.process == Process::Nemesis && e.f.as_str() == "kill")
        .count();
    let starts = h
        .events
        .iter()
        .filter(|e| e.process == Process::Nemesis && e.f.as_str() == "start")
        .count();
    assert!(
        kills >= 2,
        "expected at least two kills in 25 s, saw {kills}"
    );
    let nemesis: Vec<String> = h
        .events
        .iter()
        .filter(|e| e.process == Process::Nemesis)
        .map(|e| e.to_json())
        .collect();
    assert_eq!(
        kills,
        starts,
        "every killed broker is restarted:\n{}",
        nemesis.join("\n")
    );
    let acked = r["stats"]["acknowledged"].as_u64().unwrap();
    assert!(acked > 200, "only {acked} acknowledged sends");
    for f in [
        "scenario.yaml",
        "meta.json",
        "report.html",
        "junit.xml",
        "summary.md",
    ] {
        assert!(run.join(f).exists(), "{f} missing from the run directory");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("report.html"),
        "the summary names the report: {stdout}"
    );

    // The saved run checks the same offline, with the contract's JSON.
    let check = plain(&["check", run.to_str().unwrap(), "--json"]);
    assert_eq!(
        check.status.code(),
        Some(expected.0),
        "{}",
        describe(&check)
    );
    let j: serde_json::Value =
        serde_json::from_slice(&check.stdout).expect("exactly one JSON object");
    assert_eq!(j["valid"], expected.1);
    assert_eq!(j["stats"]["acknowledged"], r["stats"]["acknowledged"]);
}

#[test]
fn a_killed_memory_broker_loses_acknowledged_writes_and_gregor_says_so() {
    let store = tempfile::tempdir().unwrap();
    let out = gregor(&["run", "scenarios/memory-loss.yaml"], store.path());
    let r = results(store.path());
    assert_eq!(out.status.code(), Some(1), "{}\n{r:#}", describe(&out));
    assert_eq!(r["valid"], serde_json::json!(false));
    let lost =
        r["stats"]["lost"].as_u64().unwrap_or(0) + r["stats"]["unseen"].as_u64().unwrap_or(0);
    assert!(
        lost > 0,
        "the checker must see acknowledged writes the restarted broker forgot: {r:#}"
    );
    let bad: Vec<String> = serde_json::from_value(r["bad-types"].clone()).unwrap();
    assert!(
        bad.iter()
            .any(|t| t == "lost-write" || t == "unseen" || t == "inconsistent-offsets"),
        "bad types {bad:?}"
    );
}

#[test]
fn cluster_up_is_idempotent_and_down_stops_exactly_its_kafka_nodes() {
    cluster_up_down("kafka", "19450");
}

#[test]
fn cluster_up_is_idempotent_and_down_stops_exactly_its_tansu_brokers() {
    assert!(
        gregor_deploy::find_tansu().is_some(),
        "tansu is not installed: run `bash scripts/deps.sh --tansu` first"
    );
    cluster_up_down("tansu", "19470");
}

fn cluster_up_down(kind: &str, port: &str) {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("c");
    let dir_s = dir.to_str().unwrap();
    let up = plain(&[
        "cluster",
        "up",
        "--cluster",
        kind,
        "--dir",
        dir_s,
        "--base-port",
        port,
    ]);
    assert_eq!(up.status.code(), Some(0), "{}", describe(&up));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cluster.json")).unwrap()).unwrap();
    let pids: Vec<u64> = state["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["pid"].as_u64())
        .collect();
    assert_eq!(pids.len(), 3, "three brokers: {state:#}");
    let again = plain(&[
        "cluster",
        "up",
        "--cluster",
        kind,
        "--dir",
        dir_s,
        "--base-port",
        port,
    ]);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already up"),
        "{}",
        describe(&again)
    );
    let status = plain(&["cluster", "status", "--dir", dir_s]);
    let s = String::from_utf8_lossy(&status.stdout);
    assert_eq!(s.matches("answering").count(), 3, "{s}");
    let down = plain(&["cluster", "down", "--dir", dir_s]);
    assert_eq!(down.status.code(), Some(0), "{}", describe(&down));
    for p in pids {
        assert!(
            !Path::new(&format!("/proc/{p}")).exists()
                || std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "broker pid {p} still alive after down"
        );
    }
}
