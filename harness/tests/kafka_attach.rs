//! End-to-end runs of the `gregor` binary attached to a real Apache Kafka
//! cluster (3 KRaft nodes) named by `GREGOR_TEST_KAFKA_BOOTSTRAP`
//! (`host:port,...`). They fail, never skip, when it is unset.
//!
//! - two runs on one cluster each get a topic and group of their own, and
//!   the second is as valid as the first (a shared topic once gave the
//!   second run hundreds of false duplicates);
//! - a transactional run that aborts often rolls its consumers back after
//!   every aborted read, so the checker finds no `poll-skip`;
//! - a pipelined send workload records every send with its own process;
//! - `gregor cluster clean` lists the runs' topics, deletes nothing without
//!   `--yes`, and deletes them with it.
//!
//! Each test uses a topic prefix of its own, so they can share a cluster
//! and run in parallel.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output};

use gregor_history::{EventType, History, Mop, Process, RunMeta, F};
use serde_json::Value as Json;

mod common;
use common::{describe, repo};

fn bootstrap() -> String {
    common::shared_kafka()
}

struct Run {
    out: Output,
    dir: PathBuf,
    results: Json,
    history: History,
    meta: RunMeta,
}

impl Run {
    fn describe(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("logs/harness.log")).unwrap_or_default();
        format!(
            "{}\n--- harness.log\n{log}\n--- results\n{:#}",
            describe(&self.out),
            self.results
        )
    }

    fn assert_valid(&self) {
        assert_eq!(self.out.status.code(), Some(0), "{}", self.describe());
        assert_eq!(
            self.results["valid"],
            Json::Bool(true),
            "{}",
            self.describe()
        );
    }

    fn anomaly_count(&self, name: &str) -> u64 {
        self.results["anomalies"][name]["count"]
            .as_u64()
            .unwrap_or(0)
    }

    fn run_id(&self) -> String {
        self.meta.extra["run-id"]
            .as_str()
            .expect("meta.json names the run id")
            .to_string()
    }
}

/// `gregor run` with `yaml` on the test cluster, in `store`.
fn run(store: &std::path::Path, name: &str, yaml: &str) -> Run {
    let scenario = store.join(format!("{name}.yaml"));
    std::fs::write(
        &scenario,
        format!("name: {name}\nnemesis: {{faults: []}}\n{yaml}"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .arg("run")
        .arg(&scenario)
        .arg("--bootstrap")
        .arg(bootstrap())
        .arg("--store")
        .arg(store.join("runs"))
        .env("CI", "true")
        .current_dir(repo())
        .output()
        .expect("gregor runs");
    let dir = std::fs::canonicalize(store.join("runs/latest")).expect("a run directory");
    let results = std::fs::read_to_string(dir.join("results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Json::Null);
    let history = History::read(&dir.join("history.jsonl"))
        .unwrap_or_else(|e| panic!("history of {name}: {e}\n{}", describe(&out)));
    let meta = RunMeta::read(&dir.join("meta.json")).expect("meta.json");
    Run {
        out,
        dir,
        results,
        history,
        meta,
    }
}

fn clean(prefix: &str, yes: bool) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gregor"));
    c.args([
        "cluster",
        "clean",
        "--bootstrap",
        &bootstrap(),
        "--prefix",
        prefix,
    ]);
    if yes {
        c.arg("--yes");
    }
    c.output().expect("gregor cluster clean runs")
}

/// A prefix no other test run uses.
fn prefix(test: &str) -> String {
    format!("t{}-{test}", std::process::id())
}

#[test]
fn two_runs_on_one_cluster_never_see_each_other_and_clean_removes_both() {
    let store = tempfile::tempdir().unwrap();
    let p = prefix("two");
    let yaml = format!("time-limit: 8\nseed: 7\ntopic: {{name: {p}}}\nworkload: {{rate: 200}}\n");
    // The same seed twice: the same values, which on a shared topic would
    // be duplicates.
    let a = run(store.path(), "first", &yaml);
    a.assert_valid();
    let b = run(store.path(), "second", &yaml);
    b.assert_valid();
    assert_eq!(b.anomaly_count("duplicate"), 0, "{}", b.describe());
    assert_ne!(a.run_id(), b.run_id());
    let (ta, tb) = (&a.meta.keys[&0].topic, &b.meta.keys[&0].topic);
    assert_eq!(*ta, format!("{p}-{}", a.run_id()));
    assert_eq!(*tb, format!("{p}-{}", b.run_id()));
    // Each run read only values it sent itself, although both handed out
    // the same values (from 0): a shared topic would mix them.
    for r in [&a, &b] {
        let mut sent = BTreeSet::new();
        let mut read = BTreeSet::new();
        for e in r
            .history
            .events
            .iter()
            .filter(|e| e.kind != EventType::Invoke)
        {
            for m in e.mops() {
                match m {
                    Mop::Send { value, .. } => {
                        sent.insert(*value);
                    }
                    Mop::Poll { reads: Some(rs) } => {
                        read.extend(rs.iter().flat_map(|(_, p)| p.iter().map(|(_, v)| *v)))
                    }
                    _ => {}
                }
            }
        }
        assert!(!read.is_empty(), "{}", r.describe());
        let foreign: Vec<_> = read.difference(&sent).take(10).collect();
        assert!(foreign.is_empty(), "read values it never sent: {foreign:?}");
    }

    // clean: lists both runs, deletes nothing without --yes ...
    let dry = clean(&p, false);
    let text = String::from_utf8_lossy(&dry.stdout).to_string();
    assert_eq!(dry.status.code(), Some(0), "{}", describe(&dry));
    assert!(
        text.contains(ta.as_str()) && text.contains(tb.as_str()) && text.contains("--yes"),
        "{}",
        describe(&dry)
    );
    let again = clean(&p, false);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains(tb.as_str()),
        "a dry run deleted something: {}",
        describe(&again)
    );
    // ... and deletes them with it.
    let wet = clean(&p, true);
    assert_eq!(wet.status.code(), Some(0), "{}", describe(&wet));
    assert!(
        String::from_utf8_lossy(&wet.stdout).contains("deleted"),
        "{}",
        describe(&wet)
    );
    // Deletion is asynchronous in Kafka: give the metadata a moment.
    let mut left = String::new();
    for _ in 0..20 {
        let after = clean(&p, false);
        left = String::from_utf8_lossy(&after.stdout).to_string();
        if !left.contains(ta.as_str()) && !left.contains(tb.as_str()) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("topics still listed after clean --yes:\n{left}");
}

#[test]
fn aborted_transactions_roll_their_consumers_back_so_no_poll_is_skipped() {
    let store = tempfile::tempdir().unwrap();
    let p = prefix("txn");
    // 4 keys: the queue checker (as of this commit) loses a process's
    // place in a key when one op reads 8 or more keys and then that key
    // again in a later poll of the same op, and reports a false poll-skip;
    // fewer keys keep this test about rollback.
    let r = run(
        store.path(),
        "txn-aborts",
        &format!(
            "time-limit: 15\nseed: 11\ntopic: {{name: {p}}}\n\
             workload: {{txn: true, rate: 100, abort-probability: 0.4, concurrency: 4, keys: 4}}\n"
        ),
    );
    // Aborts happened, read something, and were rolled back.
    let aborted_reads = r
        .history
        .events
        .iter()
        .filter(|e| e.f == F::Txn && e.kind == EventType::Fail)
        .filter(|e| {
            e.extra("client-notes")
                .and_then(|n| n.as_array())
                .is_some_and(|n| n.iter().any(|x| x.get("rolled-back-to").is_some()))
        })
        .count();
    assert!(
        aborted_reads > 0,
        "no aborted txn read anything: {}",
        r.describe()
    );
    assert_eq!(r.anomaly_count("poll-skip"), 0, "{}", r.describe());
    r.assert_valid();
    let _ = clean(&p, true);
}

#[test]
fn a_pipelined_workload_records_each_send_under_its_own_process() {
    let store = tempfile::tempdir().unwrap();
    let p = prefix("pipe");
    let r = run(
        store.path(),
        "pipelined",
        &format!(
            "time-limit: 8\nseed: 3\ntopic: {{name: {p}}}\n\
             workload: {{rate: 2000, concurrency: 2, pipeline: 16, mix: {{send: 4, poll: 1}}}}\n"
        ),
    );
    r.assert_valid();
    // At most one op outstanding per process, and more than one send in
    // flight at a time overall.
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    let mut sends_open = 0usize;
    let mut most_sends_open = 0usize;
    let mut send_processes = BTreeSet::new();
    for e in &r.history.events {
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            assert!(
                open.insert(p, e.index as usize).is_none(),
                "process {p} has two ops open at {}",
                e.index
            );
            if e.f == F::Send {
                sends_open += 1;
                most_sends_open = most_sends_open.max(sends_open);
                send_processes.insert(p);
            }
        } else {
            open.remove(&p);
            if e.f == F::Send {
                sends_open -= 1;
            }
        }
    }
    assert!(
        most_sends_open > 2,
        "pipelining kept {most_sends_open} sends in flight"
    );
    assert!(send_processes.len() >= 16, "{send_processes:?}");
    let _ = clean(&p, true);
}
