//! Real tansu clusters: start, inspect, break and stop them.
//!
//! These tests need the tansu binary (`find_tansu()`: `$GREGOR_TANSU`, PATH,
//! `~/.cargo/bin/tansu`). Without it they fail, on purpose: CI installs it
//! with `cargo install --locked tansu@0.6.0 --features libsql`.
//! Each test uses its own temporary directory and its own ports (19100-19299).

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

#[path = "support/records.rs"]
mod records;

use gregor_deploy::cluster::check_port_free;
use gregor_deploy::wire;
use gregor_deploy::{find_tansu, Cluster, ClusterKind, ClusterSpec, DeployError, ProcessStatus};

fn require_tansu() {
    assert!(
        find_tansu().is_some(),
        "the tansu binary was not found (looked at $GREGOR_TANSU, PATH, ~/.cargo/bin/tansu); \
         install it with `cargo install --locked tansu@0.6.0 --features libsql`"
    );
}

/// Stops the cluster when a test ends, even when it fails.
struct Guard(Cluster);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.down();
    }
}

impl std::ops::Deref for Guard {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.0
    }
}

impl std::ops::DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut Cluster {
        &mut self.0
    }
}

fn up(kind: ClusterKind, brokers: usize, base_port: u16, dir: &Path) -> Guard {
    require_tansu();
    let spec = ClusterSpec::new(kind, dir)
        .with_brokers(brokers)
        .with_base_port(base_port);
    match Cluster::up(spec) {
        Ok(c) => Guard(c),
        Err(e) => panic!("cluster up failed: {e}"),
    }
}

/// Pids of every process whose command line contains `needle`.
fn pids_with_cmdline(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        let state = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = state
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'));
        if cmdline.contains(needle) && !zombie {
            pids.push(pid);
        }
    }
    pids
}

fn listener_marker(port: u16) -> String {
    format!("--listener-url tcp://127.0.0.1:{port} ")
}

fn all_answering(cluster: &Cluster) -> bool {
    cluster
        .status()
        .iter()
        .all(|s| s.answering && s.process == ProcessStatus::Running)
}

#[test]
fn three_brokers_share_one_store_and_all_answer_kafka_requests() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = up(ClusterKind::Tansu, 3, 19100, dir.path());
    assert_eq!(
        cluster.bootstrap(),
        "127.0.0.1:19100,127.0.0.1:19101,127.0.0.1:19102"
    );
    let names: Vec<&str> = cluster.nodes().iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["broker-0", "broker-1", "broker-2"]);
    let status = cluster.status();
    assert_eq!(status.len(), 3);
    for s in &status {
        assert!(s.accepting && s.answering, "{s:?}");
        assert_eq!(s.process, ProcessStatus::Running);
    }
    for node in cluster.nodes() {
        assert_eq!(
            wire::api_versions(&node.addr(), Duration::from_secs(2)).unwrap(),
            0
        );
        assert!(node.log.exists(), "log {} missing", node.log.display());
    }
    assert!(
        dir.path().join("data/tansu.db").is_file(),
        "the shared sqlite store exists"
    );
    assert_eq!(cluster.storage_url(), Some("sqlite://tansu.db"));
}

#[test]
fn a_second_up_returns_the_running_cluster_and_starts_no_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let first = up(ClusterKind::Tansu, 3, 19110, dir.path());
    let pids: Vec<Option<u32>> = first.nodes().iter().map(|n| n.pid).collect();

    let spec = ClusterSpec::new(ClusterKind::Tansu, dir.path()).with_base_port(19110);
    let second = Cluster::up(spec).unwrap();
    assert!(
        second.already_up(),
        "second up must report the cluster as already up"
    );
    assert!(!first.already_up());
    let again: Vec<Option<u32>> = second.nodes().iter().map(|n| n.pid).collect();
    assert_eq!(again, pids);
    for (i, node) in second.nodes().iter().enumerate() {
        assert_eq!(
            pids_with_cmdline(&listener_marker(node.port)),
            vec![pids[i].unwrap()],
            "exactly one broker process on port {}",
            node.port
        );
    }

    // Another shape in the same directory is refused, not started beside it.
    let other = ClusterSpec::new(ClusterKind::Tansu, dir.path())
        .with_base_port(19110)
        .with_brokers(2);
    let err = Cluster::up(other).unwrap_err();
    assert!(matches!(err, DeployError::Mismatch { .. }), "{err}");
}

#[test]
fn down_from_another_handle_stops_exactly_the_recorded_pids() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = up(ClusterKind::Tansu, 3, 19120, dir.path());
    let pids: Vec<u32> = cluster.nodes().iter().filter_map(|n| n.pid).collect();
    assert_eq!(pids.len(), 3);
    let bystander = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();

    // As `gregor cluster down` would: load the state file and stop.
    let mut loaded = Cluster::load(dir.path())
        .unwrap()
        .expect("state file written by up");
    loaded.down().unwrap();

    for (node, pid) in cluster.nodes().iter().zip(&pids) {
        let left = pids_with_cmdline(&listener_marker(node.port));
        assert!(
            left.is_empty(),
            "{} (pid {pid}) still running after down: {left:?}",
            node.name
        );
    }
    for port in 19120..19123 {
        check_port_free("127.0.0.1", port, "test").unwrap();
    }
    assert!(
        Cluster::load(dir.path()).unwrap().is_none(),
        "state file removed"
    );
    let mut bystander = bystander;
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "an unrelated process survived down"
    );
    bystander.kill().unwrap();
    bystander.wait().unwrap();
    drop(cluster); // its down() finds nothing left to stop
}

#[test]
fn a_port_in_use_is_named_and_nothing_is_started() {
    require_tansu();
    let dir = tempfile::tempdir().unwrap();
    let _squatter = TcpListener::bind("127.0.0.1:19131").unwrap();
    let spec = ClusterSpec::new(ClusterKind::Tansu, dir.path()).with_base_port(19130);
    let err = Cluster::up(spec).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, DeployError::PortInUse { port: 19131, .. }),
        "{msg}"
    );
    assert!(msg.contains("19131") && msg.contains("broker-1"), "{msg}");
    assert!(
        pids_with_cmdline(&listener_marker(19130)).is_empty(),
        "broker-0 was not started"
    );
    assert!(
        Cluster::load(dir.path()).unwrap().is_none(),
        "no state left behind"
    );
}

#[test]
fn a_killed_broker_stops_answering_and_answers_again_after_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = up(ClusterKind::Tansu, 3, 19140, dir.path());
    let old_pid = cluster.nodes()[1].pid.unwrap();

    cluster.kill(1).unwrap();
    assert!(!cluster.is_running(1));
    let status = cluster.status();
    assert_eq!(status[1].process, ProcessStatus::Down);
    assert!(
        !status[1].accepting && !status[1].answering,
        "{:?}",
        status[1]
    );
    assert!(
        status[0].answering && status[2].answering,
        "the others keep answering"
    );
    assert!(pids_with_cmdline(&listener_marker(19141)).is_empty());
    // the state file agrees, for other processes
    let loaded = Cluster::load(dir.path()).unwrap().unwrap();
    assert_eq!(loaded.nodes()[1].pid, None);

    cluster.start(1).unwrap();
    assert!(cluster.is_running(1));
    let new_pid = cluster.nodes()[1].pid.unwrap();
    assert_ne!(new_pid, old_pid);
    assert!(all_answering(&cluster));
    assert_eq!(
        Cluster::load(dir.path()).unwrap().unwrap().nodes()[1].pid,
        Some(new_pid)
    );

    // graceful stop works the same way
    cluster.stop(2).unwrap();
    assert!(!cluster.is_running(2));
    cluster.start(2).unwrap();
    assert!(all_answering(&cluster));

    let err = cluster.kill(7).unwrap_err().to_string();
    assert!(err.contains("no node 7") && err.contains("3 node"), "{err}");
}

#[test]
fn a_paused_broker_answers_nothing_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = up(ClusterKind::Tansu, 1, 19160, dir.path());
    let addr = cluster.nodes()[0].addr();

    cluster.pause(0).unwrap();
    assert!(cluster.is_paused(0));
    assert!(cluster.is_running(0), "a paused broker is still running");
    let silent = wire::api_versions(&addr, Duration::from_secs(1));
    assert!(silent.is_err(), "paused broker replied: {silent:?}");
    assert_eq!(cluster.status()[0].process, ProcessStatus::Paused);
    assert!(!cluster.status()[0].answering);

    cluster.resume(0).unwrap();
    assert!(!cluster.is_paused(0));
    assert_eq!(
        wire::api_versions(&addr, Duration::from_secs(5)).unwrap(),
        0
    );

    cluster.kill(0).unwrap();
    let err = cluster.pause(0).unwrap_err();
    assert!(matches!(err, DeployError::NotRunning { .. }), "{err}");
}

#[test]
fn acknowledged_records_survive_kill_9_of_every_broker_and_a_fresh_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = up(ClusterKind::Tansu, 3, 19180, dir.path());
    let addrs: Vec<String> = cluster.nodes().iter().map(|n| n.addr()).collect();
    let timeout = Duration::from_secs(10);
    assert_eq!(
        wire::create_topic(&addrs[0], "durable", 2, 1, timeout).unwrap(),
        0
    );
    let values: [&[u8]; 3] = [b"v1", b"v2", b"v3"];
    let acked = records::produce(&addrs[0], "durable", 1, &values, -1, timeout).unwrap();
    assert_eq!(acked.error_code, 0, "{acked:?}");
    let more = records::produce(&addrs[1], "durable", 1, &[b"v4"], -1, timeout).unwrap();
    assert_eq!(
        more.base_offset,
        acked.base_offset + 3,
        "brokers append to one shared log"
    );

    let expected: Vec<(i64, Vec<u8>)> = [b"v1", b"v2", b"v3", b"v4"]
        .iter()
        .enumerate()
        .map(|(i, v)| (acked.base_offset + i as i64, v.to_vec()))
        .collect();
    let read = |addr: &str| -> Vec<(i64, Vec<u8>)> {
        let got = records::fetch(addr, "durable", 1, acked.base_offset, timeout).unwrap();
        assert_eq!(got.error_code, 0, "{got:?}");
        got.records
            .into_iter()
            .map(|r| (r.offset, r.value.unwrap_or_default()))
            .collect()
    };
    assert_eq!(
        read(&addrs[2]),
        expected,
        "a write through broker-0 is read through broker-2"
    );

    for i in 0..3 {
        cluster.kill(i).unwrap();
    }
    assert!(cluster
        .status()
        .iter()
        .all(|s| s.process == ProcessStatus::Down));
    let db = dir.path().join("data/tansu.db");
    assert!(
        std::fs::metadata(&db).unwrap().len() > 0,
        "sqlite store kept"
    );

    // All processes are gone, so the state is stale: up starts a new cluster on the same store.
    let spec = ClusterSpec::new(ClusterKind::Tansu, dir.path()).with_base_port(19180);
    let mut again = Guard(Cluster::up(spec).unwrap());
    assert!(!again.already_up());
    assert!(all_answering(&again));
    for node in again.nodes() {
        let meta = wire::metadata(&node.addr(), &["durable"], timeout).unwrap();
        let topic = &meta.topics[0];
        assert_eq!(
            (topic.name.as_str(), topic.error_code),
            ("durable", 0),
            "{meta:?}"
        );
        assert_eq!(topic.partitions.len(), 2);
        assert_eq!(
            read(&node.addr()),
            expected,
            "records after kill -9 via {}",
            node.name
        );
    }
    again.down().unwrap();
}

#[test]
fn tansu_accepts_replication_factor_three_and_reports_each_broker_as_every_replica() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = up(ClusterKind::Tansu, 3, 19200, dir.path());
    let timeout = Duration::from_secs(10);
    let code = wire::create_topic(&cluster.nodes()[0].addr(), "rf3", 3, 3, timeout).unwrap();
    assert_eq!(code, 0, "CreateTopics with replication factor 3 accepted");
    for node in cluster.nodes() {
        let meta = wire::metadata(&node.addr(), &["rf3"], timeout).unwrap();
        eprintln!("metadata from {}: {meta:?}", node.name);
        // Each broker lists only itself (node 111, its own address) ...
        assert_eq!(meta.brokers.len(), 1, "{meta:?}");
        assert_eq!(meta.brokers[0].port, node.port as i32);
        let me = meta.brokers[0].node_id;
        // ... and names itself leader, every replica and every in-sync replica.
        let topic = &meta.topics[0];
        assert_eq!(topic.partitions.len(), 3);
        for p in &topic.partitions {
            assert_eq!(p.leader, me);
            assert_eq!(p.replicas, vec![me; 3]);
            assert_eq!(p.isr, vec![me; 3]);
        }
    }
}

#[test]
fn the_memory_cluster_forgets_everything_when_its_broker_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = up(ClusterKind::TansuMemory, 1, 19220, dir.path());
    assert_eq!(cluster.nodes().len(), 1);
    let addr = cluster.nodes()[0].addr();
    let timeout = Duration::from_secs(10);
    assert_eq!(
        wire::create_topic(&addr, "ephemeral", 1, 1, timeout).unwrap(),
        0
    );
    let before = wire::metadata(&addr, &["ephemeral"], timeout).unwrap();
    assert_eq!(before.topics[0].error_code, 0);

    cluster.kill(0).unwrap();
    cluster.start(0).unwrap();
    let after = wire::metadata(&addr, &["ephemeral"], timeout).unwrap();
    assert_eq!(
        after.topics[0].error_code, 3,
        "UNKNOWN_TOPIC_OR_PARTITION after restart: {after:?}"
    );
    assert!(
        !dir.path().join("data/tansu.db").exists(),
        "no shared store written"
    );
}

/// Child half of the next test: start a cluster, then wait to be killed.
fn run_as_child_if_asked() -> bool {
    let Some(dir) = std::env::var_os("GREGOR_DEPLOY_TEST_CHILD_DIR") else {
        return false;
    };
    let spec = ClusterSpec::new(ClusterKind::Tansu, dir).with_base_port(19240);
    Cluster::up(spec).unwrap_or_else(|e| panic!("child up failed: {e}"));
    std::thread::sleep(Duration::from_secs(120));
    true
}

#[test]
fn brokers_outlive_the_process_that_started_them_and_another_can_stop_them() {
    if run_as_child_if_asked() {
        return;
    }
    require_tansu();
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "brokers_outlive_the_process_that_started_them_and_another_can_stop_them",
            "--nocapture",
        ])
        .env("GREGOR_DEPLOY_TEST_CHILD_DIR", dir.path())
        .spawn()
        .unwrap();
    // Wait until the child's cluster is fully up (all three pids recorded, all answering).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let cluster = loop {
        if let Some(c) = Cluster::load(dir.path()).unwrap() {
            if c.nodes().iter().all(|n| n.pid.is_some()) && all_answering(&c) {
                break c;
            }
        }
        assert!(child.try_wait().unwrap().is_none(), "child exited early");
        assert!(
            std::time::Instant::now() < deadline,
            "child never brought the cluster up"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut guard = Guard(cluster);

    child.kill().unwrap(); // SIGKILL, like a crashed harness
    child.wait().unwrap();
    assert!(
        all_answering(&guard),
        "brokers died with their parent: {:?}",
        guard.status()
    );

    guard.down().unwrap();
    for port in 19240..19243 {
        assert!(
            pids_with_cmdline(&listener_marker(port)).is_empty(),
            "port {port} broker left"
        );
    }
}
