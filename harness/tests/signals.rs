//! A run that is interrupted still ends well: SIGINT stops the workload,
//! heals, checks what was recorded and stops the brokers; `kill -9` of the
//! harness leaves a history `gregor check` accepts and brokers that
//! `gregor cluster down` (run anywhere, without `--dir`) finds and stops.
//!
//! They need the tansu binary (see run_embedded.rs) and fail loudly without.

mod common;
use common::{describe, repo};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use gregor_history::History;

/// Starts `gregor run` on a long one-broker scenario on `port`.
fn start(store: &Path, port: u16, faults: &str) -> Child {
    assert!(
        gregor_deploy::find_tansu().is_some(),
        "tansu is not installed: run `bash .ci/install-tansu` first"
    );
    let scenario = store.join("long.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: long\nseed: 3\ntime-limit: 120\n\
             cluster: {{kind: tansu, brokers: 1, base-port: {port}}}\n\
             workload: {{concurrency: 3, rate: 60, keys: 3, final-time-limit: 20}}\n\
             nemesis: {{faults: [{faults}], interval: 3, duration: 2.5, jitter: 0}}\n"
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_gregor"))
        .arg("run")
        .arg(&scenario)
        .arg("--store")
        .arg(store.join("runs"))
        .env("CI", "true")
        // A registry of this test's own: `cluster down` below must find
        // this run's cluster, and only this test's.
        .env("GREGOR_STATE_DIR", store.join("state"))
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gregor starts")
}

/// Waits until the run's history has at least `n` events and its cluster
/// state names running brokers; returns the run directory and broker pids.
fn wait_for_history(
    store: &Path,
    n: usize,
    child: &mut Child,
    also: impl Fn(&str) -> bool,
) -> (PathBuf, Vec<i32>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("gregor exited early: {status}");
        }
        let dir = store.join("runs/latest");
        let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap_or_default();
        let events = text.lines().count();
        let pids = broker_pids(&dir.join("cluster"));
        if events >= n && !pids.is_empty() && also(&text) {
            // Resolve the `latest` link: the run directory itself.
            return (std::fs::canonicalize(&dir).unwrap(), pids);
        }
        assert!(
            Instant::now() < deadline,
            "no history after 60 s ({events} events)"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The broker pids recorded in `dir/cluster.json`.
fn broker_pids(dir: &Path) -> Vec<i32> {
    let Ok(text) = std::fs::read_to_string(dir.join(gregor_deploy::STATE_FILE)) else {
        return vec![];
    };
    let Ok(j) = serde_json::from_str::<serde_json::Value>(&text) else {
        return vec![];
    };
    j["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["pid"].as_i64())
        .map(|p| p as i32)
        .collect()
}

/// Whether `pid` is a live process (not a zombie).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

fn wait_output(child: Child, limit: Duration) -> Output {
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(o) => o.expect("gregor output"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("gregor did not exit within {limit:?}");
        }
    }
}

#[test]
fn sigint_stops_the_run_heals_checks_and_stops_the_brokers() {
    let store = tempfile::tempdir().unwrap();
    // The only broker is paused for 2.5 s every 3 s; the interrupt comes
    // while it is paused, and the run must resume it before it checks.
    let mut child = start(store.path(), 19950, "pause");
    let paused_now = |text: &str| {
        let pauses = text.matches(r#""f":"pause""#).count();
        pauses > 0 && pauses > text.matches(r#""f":"resume""#).count()
    };
    let (run, pids) = wait_for_history(store.path(), 100, &mut child, paused_now);
    let t = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("signal sent");
    let out = wait_output(child, Duration::from_secs(60));
    let code = out.status.code();
    assert!(
        matches!(code, Some(0..=2)),
        "a verdict code after SIGINT\n{}",
        describe(&out)
    );
    assert!(
        t.elapsed() < Duration::from_secs(50),
        "the 120 s run stopped early, not at its time limit"
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap())
            .expect("results.json is JSON");
    let verdict = match code {
        Some(0) => serde_json::json!(true),
        Some(1) => serde_json::json!(false),
        _ => serde_json::json!("unknown"),
    };
    assert_eq!(results["valid"], verdict, "exit code and results agree");
    let h = History::read(&run.join("history.jsonl")).unwrap();
    assert!(h.len() >= 100);
    assert!(h.truncated_tail.is_none());
    // Healed: every pause has its resume.
    let count = |f: &str| {
        h.events
            .iter()
            .filter(|e| e.process == gregor_history::Process::Nemesis && e.f.as_str() == f)
            .count()
    };
    assert!(count("pause") >= 1);
    assert_eq!(count("pause"), count("resume"), "every pause healed");
    for pid in &pids {
        assert!(!alive(*pid), "broker pid {pid} still running after SIGINT");
    }
    let log = std::fs::read_to_string(run.join("logs/harness.log")).unwrap();
    assert!(log.contains("interrupted"), "{log}");
}

#[test]
fn after_kill_9_the_history_checks_and_cluster_down_stops_the_orphans() {
    let store = tempfile::tempdir().unwrap();
    let mut child = start(store.path(), 19960, "");
    let (run, pids) = wait_for_history(store.path(), 100, &mut child, |_| true);
    child.kill().unwrap();
    child.wait().unwrap();
    // The client child notices its stdin closing and exits; the brokers
    // are orphans, still serving.
    for pid in &pids {
        assert!(alive(*pid), "broker pid {pid} died with the harness");
    }
    let check = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(["check", run.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(
        matches!(check.status.code(), Some(0..=2)),
        "gregor check accepts a history cut by kill -9\n{}",
        describe(&check)
    );
    let j: serde_json::Value =
        serde_json::from_slice(&check.stdout).expect("exactly one JSON object");
    assert!(
        j["stats"]["acknowledged"].as_u64().unwrap_or(0) > 0,
        "{j:#}"
    );

    // `gregor cluster down` from elsewhere, without --dir: the store is not
    // where it looks by default, the registry of started clusters is.
    let elsewhere = tempfile::tempdir().unwrap();
    let down = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(["cluster", "down"])
        .env("GREGOR_STATE_DIR", store.path().join("state"))
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(0), "{}", describe(&down));
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("left by gregor process")
            || String::from_utf8_lossy(&down.stdout).contains("left by gregor process"),
        "{}",
        describe(&down)
    );
    for pid in &pids {
        assert!(
            !alive(*pid),
            "broker pid {pid} survived `gregor cluster down`"
        );
    }
}
