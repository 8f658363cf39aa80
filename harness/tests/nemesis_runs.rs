//! Whole `gregor run`s with network faults: everything the nemesis broke is
//! healed and everything it built (namespaces, nft tables, proxies, broker
//! processes) is gone afterwards, also when the run is interrupted by
//! SIGINT in the middle of a partition. Ports 19700-19799.
//!
//! These runs put brokers in network namespaces: they need root and
//! nftables, and print "skipped: ..." without them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gregor_deploy::process::ProcessId;
use gregor_history::{History, Process};

fn supported() -> bool {
    assert!(
        gregor_deploy::find_tansu().is_some(),
        "tansu is not installed: run `bash scripts/deps.sh` first"
    );
    match gregor_deploy::netns::check_support() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

fn spawn(scenario: &Path, store: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ])
        .env("CI", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gregor starts")
}

/// Broker processes recorded in the run's cluster state right now.
fn broker_pids(store: &Path) -> Vec<ProcessId> {
    let Ok(text) = std::fs::read_to_string(store.join("latest/cluster/cluster.json")) else {
        return vec![];
    };
    let Ok(state) = serde_json::from_str::<serde_json::Value>(&text) else {
        return vec![];
    };
    state["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| {
            Some(ProcessId {
                pid: n["pid"].as_u64()? as u32,
                start_ticks: n["start_ticks"].as_u64()?,
            })
        })
        .collect()
}

fn nemesis_fs(history: &Path) -> Vec<(String, String)> {
    let Ok(h) = History::read(history) else {
        return vec![];
    };
    h.events
        .iter()
        .filter(|e| e.process == Process::Nemesis)
        .map(|e| {
            let v = match &e.value {
                gregor_history::Value::Json(j) => j.to_string(),
                other => format!("{other:?}"),
            };
            (e.f.as_str().to_string(), v)
        })
        .collect()
}

/// Waits for `child`, collecting the broker pids it records meanwhile.
/// Calls `during` once, when `history` first shows a nemesis event `f`.
fn watch(
    child: &mut Child,
    store: &Path,
    trigger: Option<&str>,
    mut during: impl FnMut(),
    timeout: Duration,
) -> (std::process::ExitStatus, BTreeSet<(u32, u64)>) {
    let history = store.join("latest/history.jsonl");
    let mut pids = BTreeSet::new();
    let mut fired = trigger.is_none();
    let end = Instant::now() + timeout;
    loop {
        pids.extend(
            broker_pids(store)
                .into_iter()
                .map(|p| (p.pid, p.start_ticks)),
        );
        if !fired
            && nemesis_fs(&history)
                .iter()
                .any(|(f, _)| Some(f.as_str()) == trigger)
        {
            fired = true;
            during();
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, pids);
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("gregor did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(150));
    }
}

fn assert_nothing_left(gregor_pid: u32, pids: &BTreeSet<(u32, u64)>, ports: std::ops::Range<u16>) {
    let prefix = format!("r{gregor_pid}-");
    let out = |cmd: &str, args: &[&str]| {
        String::from_utf8_lossy(&Command::new(cmd).args(args).output().unwrap().stdout).into_owned()
    };
    let ns = out("ip", &["netns", "list"]);
    assert!(
        !ns.contains(&format!("gregor-{prefix}")),
        "namespaces left: {ns}"
    );
    let tables = out("nft", &["list", "tables"]);
    assert!(
        !tables.contains(&format!("gregor_r{gregor_pid}_")),
        "nft tables left: {tables}"
    );
    let links = out("ip", &["-o", "link", "show"]);
    assert!(
        !links.contains(&format!("gregor:{prefix}")),
        "interfaces left: {links}"
    );
    assert!(!pids.is_empty(), "the run recorded its brokers");
    for &(pid, start_ticks) in pids {
        let p = ProcessId { pid, start_ticks };
        assert!(
            !p.is_alive(),
            "broker process {pid} (running or stopped) left"
        );
    }
    for port in ports {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} (proxy or broker) still taken"
        );
    }
}

fn write_scenario(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("scenario.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_run_mixing_process_link_and_partition_faults_heals_each_and_leaves_nothing_behind() {
    if !supported() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        "name: mixed\nseed: 3\ntime-limit: 14\n\
         cluster: {kind: tansu, brokers: 3, base-port: 19700}\n\
         workload: {concurrency: 3, rate: 60, keys: 3, final-time-limit: 20}\n\
         nemesis: {faults: [partition, delay, kill], interval: 4, duration: 2, jitter: 0, \
         target: one, delay-ms: 50}\n",
    );
    let store = dir.path().join("store");
    let mut child = spawn(&scenario, &store);
    let pid = child.id();
    let (status, pids) = watch(&mut child, &store, None, || {}, Duration::from_secs(120));
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    // Valid, or invalid only by the consumer rewinds tansu sometimes shows
    // under kills (see run_embedded.rs): nothing lost, nothing duplicated.
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(store.join("latest/results.json")).expect("results.json"),
    )
    .expect("results are JSON");
    let bad: Vec<String> = serde_json::from_value(results["bad-types"].clone()).unwrap();
    assert!(
        bad.iter()
            .all(|t| t == "nonmonotonic-poll" || t == "poll-skip"),
        "anomalies {bad:?}: {err}"
    );
    let want = if bad.is_empty() { 0 } else { 1 };
    assert_eq!(status.code(), Some(want), "verdict exit code: {err}");
    let fs: Vec<String> = nemesis_fs(&store.join("latest/history.jsonl"))
        .into_iter()
        .map(|e| e.0)
        .collect();
    // the faults in turn, each healed before the next
    assert_eq!(
        fs[..6],
        [
            "start-partition",
            "stop-partition",
            "start-delay",
            "stop-delay",
            "kill",
            "start"
        ],
        "{fs:?}"
    );
    assert!(
        err.contains("network namespaces") && err.contains("behind fault proxies"),
        "{err}"
    );
    assert_nothing_left(pid, &pids, 19700..19706);
}

#[test]
fn sigint_in_the_middle_of_a_partition_heals_it_and_removes_namespaces_and_brokers() {
    if !supported() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        "name: interrupted\nseed: 5\ntime-limit: 90\n\
         cluster: {kind: tansu, brokers: 3, base-port: 19740}\n\
         workload: {concurrency: 2, rate: 40, keys: 2, final-time-limit: 10}\n\
         nemesis: {faults: [partition], interval: 1, duration: 80, jitter: 0, \
         target: broker-1}\n",
    );
    let store = dir.path().join("store");
    let mut child = spawn(&scenario, &store);
    let pid = child.id();
    let interrupted_at = std::cell::Cell::new(None);
    let (status, pids) = watch(
        &mut child,
        &store,
        Some("start-partition"),
        || {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGINT,
            )
            .expect("signal sent");
            interrupted_at.set(Some(Instant::now()));
        },
        Duration::from_secs(90),
    );
    let stopped_after = interrupted_at
        .get()
        .expect("the partition started")
        .elapsed();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(
        status.code().is_some(),
        "gregor exited by itself, not by the signal: {err}"
    );
    assert!(err.contains("interrupted"), "{err}");
    let events = nemesis_fs(&store.join("latest/history.jsonl"));
    assert_eq!(
        events,
        vec![
            ("start-partition".to_string(), r#"["broker-1"]"#.to_string()),
            ("stop-partition".to_string(), r#"["broker-1"]"#.to_string()),
        ],
        "the partition was healed and recorded as such"
    );
    assert!(
        store.join("latest/results.json").is_file(),
        "the interrupted run was checked"
    );
    eprintln!("gregor finished {stopped_after:?} after SIGINT");
    assert_nothing_left(pid, &pids, 19740..19746);
}

#[test]
fn gregor_cluster_heal_removes_what_a_killed_gregor_left_mid_partition() {
    if !supported() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        "name: killed\nseed: 8\ntime-limit: 90\n\
         cluster: {kind: tansu, brokers: 3, base-port: 19780}\n\
         workload: {concurrency: 2, rate: 40, keys: 2}\n\
         nemesis: {faults: [partition], interval: 1, duration: 80, jitter: 0, target: broker-0}\n",
    );
    let store = dir.path().join("store");
    let mut child = spawn(&scenario, &store);
    let pid = child.id();
    let (status, pids) = watch(
        &mut child,
        &store,
        Some("start-partition"),
        || {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .expect("signal sent")
        },
        Duration::from_secs(60),
    );
    assert_eq!(status.code(), None, "killed by the signal");
    let ns = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        ns.contains(&format!("gregor-r{pid}-")),
        "a killed gregor leaves its namespaces: {ns}"
    );
    // A live run's namespaces (this test process owns one) are kept.
    let live = gregor_harness::nemesis::net::create_topology(1).unwrap();
    // The run directory is found through store/latest.
    let run_dir = std::fs::canonicalize(store.join("latest")).unwrap();
    let heal = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(["cluster", "heal", "--dir"])
        .arg(run_dir.join("cluster"))
        .env("CI", "true")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&heal.stdout),
        String::from_utf8_lossy(&heal.stderr)
    );
    assert_eq!(heal.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("r{pid}-")),
        "heal names the leftovers: {text}"
    );
    let ns = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        ns.contains(&live.namespace(0).unwrap()),
        "heal removed the namespaces of a live gregor: {ns}\n{text}"
    );
    live.destroy().unwrap();
    // The brokers lived in the namespaces: removing them stops the brokers.
    assert_nothing_left(pid, &pids, 19780..19783);
    stop_orphaned_clients(&run_dir);
}

/// The `gregor __clients` child of a SIGKILLed gregor can outlive it until
/// its next write to the closed pipe: stop the one of this test's run now.
fn stop_orphaned_clients(run_dir: &Path) {
    let needle = run_dir.join("scenario.yaml").display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("__clients") && cmdline.contains(&needle) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
