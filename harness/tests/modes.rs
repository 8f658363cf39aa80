//! Every producer and consumer mode of the workload, run by the `gregor`
//! binary against two healthy clusters, no faults: a one-broker tansu
//! cluster of its own (module `tansu`, base ports in 19800-19999), and the
//! shared 3-node Apache Kafka cluster that `scripts/test.sh` starts (module
//! `kafka`, `GREGOR_TEST_KAFKA_BOOTSTRAP`; every run has a topic and groups
//! of its own). Modes: acks 0 / 1 / all, idempotence on and off, assign and
//! subscribe, commit none / auto / sync / async, transactions, deliberate
//! client crashes, key rotation, and topic settings the cluster cannot
//! satisfy.
//!
//! Each test writes its own scenario, runs it in its own temporary store,
//! and asserts that the history is well formed and that the checkers pass.
//! Where tansu mishandles a feature, the test pins the broker's actual
//! behaviour and says so ("tansu finding").
//!
//! The tansu tests need the tansu binary, the Kafka tests the shared
//! cluster; both fail loudly without.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Command, Output};

use gregor_history::{Event, EventType, History, Mop, Process, RunMeta, F};
use serde_json::Value as Json;

mod common;
use common::repo;

/// A finished run: its exit status, results and history.
struct Run {
    out: Output,
    dir: PathBuf,
    results: Json,
    history: History,
    meta: RunMeta,
    _store: tempfile::TempDir,
}

impl Run {
    fn describe(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("logs/harness.log")).unwrap_or_default();
        let clients =
            std::fs::read_to_string(self.dir.join("logs/clients.log")).unwrap_or_default();
        format!(
            "{}\n--- harness.log\n{log}\n--- clients.log (tail)\n{}\n--- results\n{:#}",
            common::describe(&self.out),
            tail(&clients, 2000),
            self.results
        )
    }

    fn client_events(&self) -> impl Iterator<Item = &Event> {
        self.history
            .events
            .iter()
            .filter(|e| matches!(e.process, Process::Client(_)))
    }

    fn count(&self, f: F, kind: EventType) -> usize {
        self.client_events()
            .filter(|e| e.f == f && e.kind == kind)
            .count()
    }

    fn stat(&self, name: &str) -> u64 {
        self.results["stats"][name].as_u64().unwrap_or(0)
    }

    /// Asserts exit 0 and `valid: true`, with everything needed to debug.
    fn assert_valid(&self) {
        assert_eq!(self.out.status.code(), Some(0), "{}", self.describe());
        assert_eq!(
            self.results["valid"],
            Json::Bool(true),
            "{}",
            self.describe()
        );
    }

    /// Errors of completions of `f` with type `kind`, distinct, sorted.
    fn errors(&self, f: F, kind: EventType) -> Vec<String> {
        let mut v: Vec<String> = self
            .client_events()
            .filter(|e| e.f == f && e.kind == kind)
            .filter_map(|e| e.error.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Every `ok` send's offsets.
    fn ok_send_offsets(&self) -> Vec<Option<u64>> {
        self.client_events()
            .filter(|e| e.f == F::Send && e.kind == EventType::Ok)
            .flat_map(|e| e.mops().iter())
            .filter_map(|m| match m {
                Mop::Send { offset, .. } => Some(*offset),
                _ => None,
            })
            .collect()
    }

    /// Records read by ok polls (and ok txns), over all processes.
    fn records_read(&self) -> usize {
        self.client_events()
            .filter(|e| e.kind == EventType::Ok)
            .flat_map(|e| e.mops().iter())
            .map(|m| match m {
                Mop::Poll { reads: Some(r) } => r.iter().map(|(_, p)| p.len()).sum(),
                _ => 0,
            })
            .sum()
    }

    /// Every (key, value) an ok op read, in history order.
    fn values_read(&self) -> Vec<(u64, u64)> {
        self.client_events()
            .filter(|e| e.kind == EventType::Ok)
            .flat_map(|e| e.mops().iter())
            .flat_map(|m| match m {
                Mop::Poll { reads: Some(reads) } => reads
                    .iter()
                    .flat_map(|(k, pairs)| pairs.iter().map(move |(_, v)| (*k, *v)))
                    .collect(),
                _ => vec![],
            })
            .collect()
    }

    /// The `client-notes` entries recorded on completions.
    fn notes(&self) -> Vec<&Json> {
        self.client_events()
            .filter_map(|e| e.extra("client-notes"))
            .filter_map(|v| v.as_array())
            .flatten()
            .collect()
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Where a mode runs: a one-broker tansu cluster of its own on a base
/// port, or the shared Apache Kafka cluster.
#[derive(Clone, Copy, Debug)]
enum On {
    Tansu(u16),
    Kafka,
}

impl On {
    /// The scenario's `cluster:` line.
    fn cluster(self) -> String {
        match self {
            On::Tansu(port) => {
                assert!(
                    gregor_deploy::find_tansu().is_some(),
                    "tansu is not installed: run `bash scripts/deps.sh --tansu` first"
                );
                format!("cluster: {{kind: tansu, brokers: 1, base-port: {port}}}\n")
            }
            On::Kafka => format!("cluster: {{bootstrap: \"{}\"}}\n", common::shared_kafka()),
        }
    }

    /// Brokers in the cluster.
    fn brokers(self) -> u32 {
        match self {
            On::Tansu(_) => 1,
            On::Kafka => 3,
        }
    }
}

/// Runs `gregor run` on a scenario made of `yaml` plus the cluster `on`,
/// no faults, unless `yaml` says otherwise.
fn run(on: On, name: &str, yaml: &str) -> Run {
    let store = tempfile::tempdir().unwrap();
    let scenario = store.path().join(format!("{name}.yaml"));
    let mut text = format!("name: {name}\nseed: 5\n");
    if !yaml.contains("cluster:") {
        text += &on.cluster();
    }
    if !yaml.contains("nemesis:") {
        text += "nemesis: {faults: []}\n";
    }
    if !yaml.lines().any(|l| l.starts_with("time-limit:")) {
        text += "time-limit: 8\n";
    }
    text += yaml;
    std::fs::write(&scenario, &text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .arg("run")
        .arg(&scenario)
        .arg("--store")
        .arg(store.path().join("runs"))
        .env("CI", "true")
        .current_dir(repo())
        .output()
        .expect("gregor runs");
    let dir = store.path().join("runs/latest");
    let results = std::fs::read_to_string(dir.join("results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Json::Null);
    let history = History::read(&dir.join("history.jsonl")).unwrap_or_else(|e| {
        panic!(
            "history of {name}: {e}\nexit {:?}\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let meta = RunMeta::read(&dir.join("meta.json")).expect("meta.json written");
    let r = Run {
        out,
        dir,
        results,
        history,
        meta,
        _store: store,
    };
    eprintln!(
        "{name}: {}",
        std::fs::read_to_string(r.dir.join("logs/harness.log")).unwrap_or_default()
    );
    assert_well_formed(&r);
    r
}

/// Indices are 0, 1, 2, ...; times never go back; every invoke is followed
/// by exactly one completion of the same f before its process invokes
/// again; a process that got `info` never invokes again (it is renumbered);
/// and no client op is left open at the end.
fn assert_well_formed(r: &Run) {
    let h = &r.history;
    assert!(h.truncated_tail.is_none(), "truncated history");
    let mut open: HashMap<u64, usize> = HashMap::new();
    let mut crashed: HashMap<u64, usize> = HashMap::new();
    let mut last_time = 0;
    for (i, e) in h.events.iter().enumerate() {
        assert_eq!(e.index, i as u64, "index of line {}", i + 1);
        assert!(e.time >= last_time, "time goes back at line {}", i + 1);
        last_time = e.time;
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            assert!(
                !crashed.contains_key(&p),
                "process {p} invoked at {i} after its info at {}",
                crashed[&p]
            );
            assert!(
                open.insert(p, i).is_none(),
                "process {p} invoked at {i} with an op still open"
            );
        } else {
            let inv = open
                .remove(&p)
                .unwrap_or_else(|| panic!("completion at {i} without invoke\n{}", r.describe()));
            assert_eq!(h.events[inv].f, e.f, "completion at {i} of another f");
            if e.kind == EventType::Info && e.f != F::Commit {
                crashed.insert(p, i);
            }
        }
    }
    assert!(open.is_empty(), "ops left open: {open:?}");
}

const WORKLOAD: &str = "concurrency: 3, rate: 60, keys: 3, final-time-limit: 20";

fn plain_run(on: On, name: &str, client: &str) -> Run {
    run(
        on,
        name,
        &format!("workload: {{{WORKLOAD}}}\nclient: {{{client}}}\n"),
    )
}

/// The checks every valid produce/consume run must pass.
fn assert_sends_and_reads(r: &Run) {
    r.assert_valid();
    let acked = r.stat("acknowledged");
    assert!(
        acked >= 50,
        "only {acked} acknowledged sends\n{}",
        r.describe()
    );
    assert_eq!(r.stat("lost"), 0);
    assert_eq!(r.stat("unseen"), 0);
    assert_eq!(r.stat("duplicated"), 0);
    assert!(r.records_read() as u64 >= acked, "{}", r.describe());
}

// ------------------------------------------------------------------ acks

fn acks_all_with_idempotence_is_valid_and_every_send_has_an_offset(on: On) {
    let r = plain_run(on, "acks-all-idem", "acks: all, idempotence: true");
    assert_sends_and_reads(&r);
    let offsets = r.ok_send_offsets();
    assert!(offsets.iter().all(Option::is_some), "{offsets:?}");
    assert_eq!(r.meta.client.acks, gregor_history::Acks::All);
    assert!(r.meta.client.idempotence);
    assert_eq!(r.count(F::Send, EventType::Info), 0, "{}", r.describe());
}

fn acks_all_without_idempotence_is_valid(on: On) {
    let r = plain_run(on, "acks-all-plain", "acks: all, idempotence: false");
    assert_sends_and_reads(&r);
    assert!(r.ok_send_offsets().iter().all(Option::is_some));
    assert!(!r.meta.client.idempotence);
}

fn acks_1_is_valid_and_every_send_has_an_offset(on: On) {
    let r = plain_run(on, "acks-1", "acks: '1', idempotence: false");
    assert_sends_and_reads(&r);
    assert!(r.ok_send_offsets().iter().all(Option::is_some));
    assert_eq!(r.meta.client.acks, gregor_history::Acks::One);
}

fn acks_0_sends_have_no_offsets_and_final_reads_still_find_every_value(on: On) {
    // Idempotence is off by default with acks 0 (librdkafka needs acks=all).
    let r = plain_run(on, "acks-0", "acks: '0'");
    assert!(!r.meta.client.idempotence);
    assert_sends_and_reads(&r);
    let offsets = r.ok_send_offsets();
    assert!(!offsets.is_empty());
    assert!(
        offsets.iter().all(Option::is_none),
        "acks=0 learns no offsets, so none may be recorded (not 0): {:?}",
        &offsets[..offsets.len().min(20)]
    );
}

#[test]
fn acks_0_with_idempotence_is_refused_before_the_run() {
    // librdkafka refuses to create such a producer; gregor says so at once
    // instead of restarting a client process that cannot start.
    let out = run_refused(
        "acks-0-idem",
        "cluster: {kind: tansu, brokers: 1, base-port: 19840}\nclient: {acks: '0', idempotence: true}\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("client.idempotence") && err.contains("acks"),
        "{err}"
    );
}

// -------------------------------------------------------------- consumers

fn subscribe_without_commits_is_valid_and_records_rebalances(on: On) {
    let r = plain_run(on, "subscribe", "sub-via: subscribe, commit: none");
    assert_sends_and_reads(&r);
    assert!(r.count(F::Subscribe, EventType::Ok) >= 3);
    let assigned = r
        .notes()
        .into_iter()
        .filter(|n| n["rebalance"] == "assign")
        .count();
    assert!(assigned >= 1, "no rebalance noted\n{}", r.describe());
    // The same rebalances, where the checker looks for them.
    let logged: usize = r
        .client_events()
        .filter_map(|e| e.extra("rebalance-log"))
        .filter_map(|v| v.as_array())
        .flatten()
        .filter(|n| n["rebalance"] == "assign" && n["keys"].is_array())
        .count();
    assert_eq!(logged, assigned);
}

fn assign_with_sync_commits_records_commits_and_committed_offsets(on: On) {
    let r = plain_run(on, "assign-sync", "sub-via: assign, commit: sync");
    assert_sends_and_reads(&r);
    let commits = r.count(F::Commit, EventType::Ok);
    let fetched = r.count(F::Committed, EventType::Ok);
    assert!(commits >= 5, "{}", r.describe());
    assert!(fetched >= 5, "{}", r.describe());
    assert_committed_follow_commits(&r);
}

fn subscribe_with_sync_commits_records_commits_and_committed_offsets(on: On) {
    let r = plain_run(on, "subscribe-sync", "sub-via: subscribe, commit: sync");
    assert_sends_and_reads(&r);
    assert!(r.count(F::Commit, EventType::Ok) >= 5, "{}", r.describe());
    assert!(
        r.count(F::Committed, EventType::Ok) >= 5,
        "{}",
        r.describe()
    );
    assert_committed_follow_commits(&r);
}

/// Every committed offset a fetch returns was committed (invoked) for
/// that key by some process of the group before the fetch completed. (The
/// workers share one group, so one's commit may overwrite another's with a
/// lower offset: the linearizability checker judges the order.)
fn assert_committed_follow_commits(r: &Run) {
    let mut committed: HashMap<u64, std::collections::BTreeSet<u64>> = HashMap::new();
    let mut checked = 0;
    for e in r.client_events() {
        match (&e.f, e.kind, e.mops().first()) {
            (F::Commit, EventType::Invoke, Some(Mop::Commit { offsets })) => {
                for (k, o) in offsets {
                    committed.entry(*k).or_default().insert(*o);
                }
            }
            (F::Committed, EventType::Ok, Some(Mop::Committed { offsets })) => {
                for (k, got) in offsets {
                    if let Some(got) = got {
                        assert!(
                            committed.get(k).is_some_and(|s| s.contains(got)),
                            "key {k}: fetched committed offset {got} that no one committed\n{}",
                            r.describe()
                        );
                        checked += 1;
                    }
                }
            }
            _ => {}
        }
    }
    assert!(checked >= 5, "too few committed offsets fetched: {checked}");
}

fn subscribe_with_async_commits_notes_their_results(on: On) {
    let r = plain_run(on, "subscribe-async", "sub-via: subscribe, commit: async");
    assert_sends_and_reads(&r);
    let commits: Vec<&Json> = r
        .notes()
        .into_iter()
        .filter(|n| n.get("async-commit").is_some())
        .collect();
    assert!(
        !commits.is_empty(),
        "no async commit noted\n{}",
        r.describe()
    );
    assert!(
        commits.iter().all(|n| n["async-commit"] == "ok"),
        "{commits:?}"
    );
}

fn subscribe_with_auto_commit_is_valid(on: On) {
    let r = plain_run(on, "subscribe-auto", "sub-via: subscribe, commit: auto");
    assert_sends_and_reads(&r);
    assert!(r.meta.client.auto_commit);
    assert_eq!(
        r.count(F::Commit, EventType::Ok),
        0,
        "auto commits are not ops"
    );
}

#[test]
fn an_op_that_outlives_its_timeout_is_info_and_the_worker_goes_on_renumbered() {
    // The only broker is paused (SIGSTOP) for 2 s every 4 s; ops time out
    // after 1 s. The 2 s between pauses leave room, even on a loaded CI
    // machine, for the renumbered clients to get sends acknowledged.
    let r = run(
        On::Tansu(19945),
        "op-timeout",
        &format!(
            "workload: {{{WORKLOAD}, op-timeout: 1}}\n\
             nemesis: {{faults: [pause], interval: 4, duration: 2, jitter: 0}}\n"
        ),
    );
    let infos: Vec<&Event> = r
        .client_events()
        .filter(|e| e.kind == EventType::Info && e.f == F::Send)
        .collect();
    assert!(!infos.is_empty(), "{}", r.describe());
    // Either gregor's own op timeout or librdkafka's delivery timeout
    // (delivery.timeout.ms follows op-timeout) fires first: both unknown.
    assert_eq!(
        r.errors(F::Send, EventType::Info)
            .iter()
            .filter(|e| !matches!(
                e.as_str(),
                "timed out waiting for the delivery report"
                    | "Message production error: MessageTimedOut (Local: Message timed out)"
            ))
            .count(),
        0,
        "{:?}",
        r.errors(F::Send, EventType::Info)
    );
    assert_eq!(
        r.count(F::Send, EventType::Fail),
        0,
        "timeouts are never fail"
    );
    // Each info retires its process; work continues under higher numbers.
    let max_process = r.client_events().filter_map(|e| e.process.client()).max();
    assert!(max_process >= Some(3), "{}", r.describe());
    assert!(
        matches!(r.out.status.code(), Some(0..=2)),
        "{}",
        r.describe()
    );
    assert!(r.stat("acknowledged") > 0);
}

// ----------------------------------------------------------- transactions

#[test]
fn transactions_with_read_committed() {
    let r = run(
        On::Tansu(19900),
        "txn",
        "workload: {concurrency: 3, rate: 40, keys: 3, txn: true, final-time-limit: 20}\n\
         client: {isolation-level: read_committed}\n",
    );
    assert_eq!(
        r.meta.client.isolation_level,
        gregor_history::IsolationLevel::ReadCommitted
    );
    assert!(r.meta.client.txn);
    // tansu finding: init_transactions works (InitProducerId), sends inside
    // a transaction are acknowledged, but librdkafka finds no EndTxn in
    // tansu's ApiVersions, so neither commit nor abort can finish: every
    // transaction that wrote ends `info` with this error, and only
    // read-only transactions (nothing to end on the broker) commit.
    const NO_END_TXN: &str =
        "EndTxnRequest (KIP-98) not supported by broker, requires broker version >= 0.11.0";
    let done: Vec<&Event> = r
        .client_events()
        .filter(|e| e.f == F::Txn && e.kind != EventType::Invoke)
        .collect();
    // Every txn completion carries its micro-ops (sends with null offsets
    // when not ok).
    let writers: Vec<&Event> = done
        .iter()
        .copied()
        .filter(|e| e.mops().iter().any(|m| matches!(m, Mop::Send { .. })))
        .collect();
    assert!(writers.len() >= 5, "{}", r.describe());
    for e in &writers {
        assert_eq!(e.kind, EventType::Info, "{e:?}");
        assert!(
            e.error.as_deref().is_some_and(|m| m.contains(NO_END_TXN)),
            "{:?}",
            e.error
        );
    }
    let ok = r.count(F::Txn, EventType::Ok);
    assert!(ok >= 1, "{}", r.describe());
    assert_eq!(r.count(F::Txn, EventType::Fail), 0);
    // tansu finding: read_committed does not hide them. Every value sent
    // by a transaction that never ended (all its sends delivered, then
    // EndTxn impossible) is returned to read_committed consumers, as if
    // committed. The checker cannot object (an info write may be visible),
    // so the history is valid, but isolation is not what Kafka promises.
    let read: std::collections::BTreeSet<(u64, u64)> = r.values_read().into_iter().collect();
    let never_ended: Vec<(u64, u64)> = writers
        .iter()
        .filter(|e| !e.error.as_deref().unwrap_or("").starts_with("send:"))
        .flat_map(|e| e.mops().iter())
        .filter_map(|m| match m {
            Mop::Send { key, value, .. } => Some((*key, *value)),
            _ => None,
        })
        .collect();
    assert!(!never_ended.is_empty());
    let hidden: Vec<&(u64, u64)> = never_ended.iter().filter(|kv| !read.contains(kv)).collect();
    assert!(
        hidden.is_empty(),
        "read_committed hid {} of {} values of unended transactions: {hidden:?}",
        hidden.len(),
        never_ended.len()
    );
    r.assert_valid();
}

// ------------------------------------------------------- workload features

fn crash_clients_recreates_clients_under_new_process_numbers(on: On) {
    let r = run(
        on,
        "crash-clients",
        &format!("workload: {{{WORKLOAD}, crash-clients: 2}}\n"),
    );
    assert_sends_and_reads(&r);
    let crashes: Vec<u64> = r
        .client_events()
        .filter(|e| e.f == F::Crash && e.kind == EventType::Info)
        .filter_map(|e| e.process.client())
        .collect();
    assert!(crashes.len() >= 6, "3 workers, 8 s, every 2 s: {crashes:?}");
    // A crashed process never appears again; its worker goes on as a new one.
    let processes: std::collections::BTreeSet<u64> = r
        .client_events()
        .filter_map(|e| e.process.client())
        .collect();
    assert!(processes.len() > 3 + crashes.len() - 1, "{processes:?}");
}

fn key_rotation_creates_new_topics_on_demand(on: On) {
    let r = run(on, "rotation",
        "workload: {concurrency: 3, rate: 80, keys: 2, max-writes-per-key: 20, final-time-limit: 20}\n\
         topic: {partitions: 2}\n",
    );
    assert_sends_and_reads(&r);
    let mut per_key: BTreeMap<u64, u64> = BTreeMap::new();
    for e in r.client_events() {
        if e.f == F::Send && e.kind == EventType::Ok {
            for m in e.mops() {
                if let Mop::Send { key, .. } = m {
                    *per_key.entry(*key).or_default() += 1;
                }
            }
        }
    }
    assert!(per_key.len() >= 6, "keys rotated: {per_key:?}");
    assert!(per_key.values().all(|&n| n <= 20), "{per_key:?}");
    // Keys beyond the first topic's partitions live in topics made on demand.
    let high = *per_key.keys().last().unwrap();
    let tp = r
        .meta
        .keys
        .get(&high)
        .expect("the key table names every key");
    // ... named after the run's own topic: `<prefix>-<run id>-<n>`.
    let base = &r.meta.keys.get(&0).expect("key 0 mapped").topic;
    assert!(base.starts_with("gregor-2"), "the run's topic: {base}");
    assert!(
        tp.topic.starts_with(&format!("{base}-")),
        "{tp:?} under {base}"
    );
}

/// Runs `gregor run` on a scenario expected to fail before any workload.
fn run_refused(name: &str, yaml: &str) -> Output {
    let store = tempfile::tempdir().unwrap();
    let scenario = store.path().join(format!("{name}.yaml"));
    std::fs::write(&scenario, format!("name: {name}\n{yaml}")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_gregor"))
        .arg("run")
        .arg(&scenario)
        .arg("--store")
        .arg(store.path().join("runs"))
        .env("CI", "true")
        .output()
        .expect("gregor runs")
}

/// tansu finding: tansu 0.6 accepts CreateTopics with replication factor 5
/// on a one-broker cluster and then reports 5 replicas per partition in
/// Metadata; gregor refuses it itself (exit 3, before any workload) rather
/// than certify a replication that cannot exist. Kafka refuses it too.
fn a_replication_factor_above_the_brokers_is_a_clear_error(on: On) {
    let out = run_refused(
        "rf",
        &format!(
            "time-limit: 5\n{}nemesis: {{faults: []}}\ntopic: {{replication: 5}}\n",
            on.cluster()
        ),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("replication factor 5")
            && err.contains(&format!("only {} broker", on.brokers())),
        "{err}"
    );
}

#[test]
fn a_librdkafka_property_it_rejects_is_a_clear_error_before_the_workload() {
    let out = run_refused(
        "bad-property",
        "time-limit: 5\ncluster: {kind: tansu, brokers: 1, base-port: 19975}\n\
         nemesis: {faults: []}\nclient: {producer: {no.such.property: x}}\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("cannot create the producer client") && err.contains("no.such.property"),
        "{err}"
    );
    assert!(!err.contains("client process died"), "{err}");
}

fn topic_configs_and_an_explicit_replication_factor_are_accepted_and_recorded(on: On) {
    let r = run(on, "topic-configs",
        &format!(
            "workload: {{{WORKLOAD}}}\n\
             topic: {{replication: 1, configs: {{min.insync.replicas: '1', retention.ms: '3600000'}}}}\n"
        ),
    );
    assert_sends_and_reads(&r);
    assert_eq!(r.meta.extra["replication-factor"], serde_json::json!(1));
}

// ------------------------------------------------------------ Kafka only

fn transactions_commit_and_abort_with_read_committed(on: On) {
    let r = run(
        on,
        "txn-kafka",
        "workload: {concurrency: 3, rate: 40, keys: 3, txn: true, abort-probability: 0.3, \
                    final-time-limit: 30}\n\
         client: {isolation-level: read_committed}\n",
    );
    assert!(r.meta.client.txn);
    let ok = r.count(F::Txn, EventType::Ok);
    let aborted = r.count(F::Txn, EventType::Fail);
    assert!(ok >= 10, "{ok} committed\n{}", r.describe());
    assert!(aborted >= 1, "no transaction aborted\n{}", r.describe());
    // read_committed never returns a value of an aborted transaction.
    let aborted_values: std::collections::BTreeSet<(u64, u64)> = r
        .client_events()
        .filter(|e| e.f == F::Txn && e.kind == EventType::Fail)
        .flat_map(|e| e.mops().iter())
        .filter_map(|m| match m {
            Mop::Send { key, value, .. } => Some((*key, *value)),
            _ => None,
        })
        .collect();
    let read: Vec<(u64, u64)> = r
        .values_read()
        .into_iter()
        .filter(|kv| aborted_values.contains(kv))
        .collect();
    assert!(read.is_empty(), "aborted values read: {read:?}");
    r.assert_valid();
}

/// Each mode as two tests: `tansu::NAME` on its own one-broker tansu
/// cluster (base port given), `kafka::NAME` on the shared Kafka cluster.
macro_rules! on_both {
    ($($name:ident = $port:expr;)*) => {
        mod tansu {
            $( #[test] fn $name() { super::$name(super::On::Tansu($port)) } )*
        }
        mod kafka {
            $( #[test] fn $name() { super::$name(super::On::Kafka) } )*
            #[test]
            fn transactions_commit_and_abort_with_read_committed() {
                super::transactions_commit_and_abort_with_read_committed(super::On::Kafka)
            }
        }
    };
}

on_both! {
    acks_all_with_idempotence_is_valid_and_every_send_has_an_offset = 19800;
    acks_all_without_idempotence_is_valid = 19810;
    acks_1_is_valid_and_every_send_has_an_offset = 19820;
    acks_0_sends_have_no_offsets_and_final_reads_still_find_every_value = 19830;
    subscribe_without_commits_is_valid_and_records_rebalances = 19850;
    assign_with_sync_commits_records_commits_and_committed_offsets = 19860;
    subscribe_with_sync_commits_records_commits_and_committed_offsets = 19870;
    subscribe_with_async_commits_notes_their_results = 19880;
    subscribe_with_auto_commit_is_valid = 19890;
    crash_clients_recreates_clients_under_new_process_numbers = 19910;
    key_rotation_creates_new_topics_on_demand = 19920;
    topic_configs_and_an_explicit_replication_factor_are_accepted_and_recorded = 19940;
    a_replication_factor_above_the_brokers_is_a_clear_error = 19930;
}
