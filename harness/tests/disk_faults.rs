//! Disk faults on real Apache Kafka: every node's log directory on a lazy
//! disk (a FUSE filesystem that forgets what was not fsynced), through
//! `gregor run`. A power loss of a node (`lose-unfsynced`) drops what its
//! disk held unsynced — Kafka does not fsync its logs per write, so a
//! restarted node comes back with less than it acknowledged and must
//! recover from its replicas; with acks=all and min ISR 2 no acknowledged
//! write may be lost when one node at a time loses power. If Kafka loses
//! one all the same, the test fails with the witness: a finding.
//!
//! These need /dev/fuse (and root or fusermount3); without it they fail,
//! naming what is missing. Ports 18400-18499.

mod common;
use common::{run_yaml, Finished};

const LOSS: [&str; 3] = ["lost-write", "unseen", "inconsistent-offsets"];

fn assert_no_loss(r: &Finished) {
    for kind in LOSS {
        assert_eq!(
            r.count(kind),
            0,
            "{kind}: {}\n{}",
            r.witness(kind),
            r.describe()
        );
    }
    assert!(r.stat("acknowledged") > 50, "{}", r.describe());
}

fn needs_fuse() {
    if let Err(e) = gregor_deploy::lazyfs::check_available() {
        panic!("the disk faults need FUSE: {e}");
    }
}

/// Nemesis events named `f`: (value, error).
fn events(r: &Finished, f: &str) -> Vec<(String, Option<String>)> {
    r.history
        .events
        .iter()
        .filter(|e| e.process == gregor_history::Process::Nemesis && e.f.as_str() == f)
        .map(|e| {
            let v = match &e.value {
                gregor_history::Value::Json(j) => j.to_string(),
                other => format!("{other:?}"),
            };
            (v, e.error.clone())
        })
        .collect()
}

/// The unsynced bytes each power loss dropped, from the run's stderr.
fn dropped_bytes(r: &Finished) -> Vec<u64> {
    String::from_utf8_lossy(&r.out.stderr)
        .lines()
        .filter_map(|l| {
            let rest = l.split("lose-unfsynced: ").nth(1)?;
            rest.split(" lost ").nth(1)?.split(' ').next()?.parse().ok()
        })
        .collect()
}

#[test]
fn a_disk_fault_without_lazy_disks_is_refused_before_anything_starts() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(["run", "--nemesis", "lose-unfsynced", "--print-plan"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("lose-unfsynced") && err.contains("cluster.lazy-disk: true"),
        "{err}"
    );
}

#[test]
fn power_loss_of_the_leader_with_acks_all_and_min_isr_2_loses_no_acknowledged_write() {
    needs_fuse();
    let r = run_yaml(
        "kafka-lose-unfsynced",
        "seed: 23\ntime-limit: 60\ncluster: {base-port: 18400, lazy-disk: true}\n\
         workload: {concurrency: 4, rate: 120, keys: 4, op-timeout: 20, final-time-limit: 90}\n\
         client: {acks: all, idempotence: true}\n\
         topic: {replication: 3, configs: {min.insync.replicas: \"2\"}}\n\
         nemesis: {faults: [lose-unfsynced], target: leader, interval: 15, duration: 8, \
                   jitter: 0}\n",
    );
    // A power loss every ~15 s, each followed by a ~13 s restart: two or
    // three in the minute.
    let losses = events(&r, "lose-unfsynced");
    assert!(losses.len() >= 2, "{losses:?}\n{}", r.describe());
    assert!(
        losses.iter().all(|(_, e)| e.is_none()),
        "{losses:?}\n{}",
        r.describe()
    );
    assert!(
        events(&r, "start").len() >= losses.len(),
        "every power loss is followed by a restart\n{}",
        r.describe()
    );
    // The fault tested something: the leader's disk held unsynced data.
    let dropped = dropped_bytes(&r);
    eprintln!(
        "unsynced bytes dropped per power loss: {dropped:?}; {} acknowledged",
        r.stat("acknowledged")
    );
    assert!(
        dropped.iter().any(|&b| b > 0),
        "{dropped:?}\n{}",
        r.describe()
    );
    // The history is checkable, and under these settings it is valid.
    assert_ne!(
        r.results["valid"],
        serde_json::json!("unknown"),
        "{}",
        r.describe()
    );
    assert_no_loss(&r);
    let dups = r.count("duplicate");
    if dups > 0 {
        eprintln!(
            "duplicates: {dups} of {} acknowledged; e.g. {}",
            r.stat("acknowledged"),
            r.witness("duplicate")
        );
    }
    let bad: Vec<String> = r
        .bad_types()
        .into_iter()
        .filter(|t| t != "duplicate")
        .collect();
    assert!(bad.is_empty(), "{bad:?}\n{}", r.describe());
}

#[test]
fn a_full_and_a_slow_disk_on_one_node_heal_and_lose_nothing() {
    needs_fuse();
    let r = run_yaml(
        "kafka-disk-full-slow",
        "seed: 29\ntime-limit: 50\ncluster: {base-port: 18430, lazy-disk: true}\n\
         workload: {concurrency: 4, rate: 100, keys: 4, op-timeout: 20, final-time-limit: 90}\n\
         client: {acks: all, idempotence: true}\n\
         topic: {replication: 3, configs: {min.insync.replicas: \"2\"}}\n\
         nemesis: {faults: [disk-full, disk-slow], target: leader, interval: 15, duration: 8, \
                   jitter: 0, disk-slow-ms: 50}\n",
    );
    let fs = r.nemesis_fs();
    for f in [
        "start-disk-full",
        "stop-disk-full",
        "start-disk-slow",
        "stop-disk-slow",
    ] {
        assert!(
            fs.iter().any(|x| x == f),
            "no {f} in {fs:?}\n{}",
            r.describe()
        );
    }
    for f in [
        "start-disk-full",
        "stop-disk-full",
        "start-disk-slow",
        "stop-disk-slow",
    ] {
        assert!(
            events(&r, f).iter().all(|(_, e)| e.is_none()),
            "{f}: {:?}\n{}",
            events(&r, f),
            r.describe()
        );
    }
    eprintln!("nemesis: {fs:?}");
    assert_ne!(
        r.results["valid"],
        serde_json::json!("unknown"),
        "{}",
        r.describe()
    );
    assert_no_loss(&r);
    let bad: Vec<String> = r
        .bad_types()
        .into_iter()
        .filter(|t| t != "duplicate")
        .collect();
    assert!(bad.is_empty(), "{bad:?}\n{}", r.describe());
}

#[test]
fn a_lazy_disk_whose_server_was_killed_leaves_a_stale_mount_that_unmount_detaches() {
    needs_fuse();
    let dir = tempfile::tempdir().unwrap();
    let (backing, mnt) = (dir.path().join("b"), dir.path().join("m"));
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let gregor = env!("CARGO_BIN_EXE_gregor");
    let mut server = std::process::Command::new(gregor)
        .args(["lazyfs", "mount"])
        .arg(&backing)
        .arg(&mnt)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !gregor_deploy::lazyfs::is_mounted(&mnt) {
        assert!(std::time::Instant::now() < deadline, "not mounted in 10 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::write(mnt.join("f"), b"x").unwrap();
    let ctl = std::process::Command::new(gregor)
        .args(["lazyfs", "ctl"])
        .arg(&mnt)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&ctl.stdout);
    assert!(status.contains("dirty-bytes=4096"), "{status}");
    // kill -9: nobody serves the mount any more
    server.kill().unwrap();
    server.wait().unwrap();
    let e = std::fs::metadata(mnt.join("f")).unwrap_err();
    assert_eq!(
        e.raw_os_error(),
        Some(nix::errno::Errno::ENOTCONN as i32),
        "{e}"
    );
    assert!(
        gregor_deploy::lazyfs::is_mounted(&mnt),
        "stale, still mounted"
    );
    let out = std::process::Command::new(gregor)
        .args(["lazyfs", "unmount"])
        .arg(&mnt)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::describe(&out));
    assert!(!gregor_deploy::lazyfs::is_mounted(&mnt));
    // what was never fsynced is not in the backing directory
    assert_eq!(std::fs::read(backing.join("f")).unwrap(), b"");
    assert!(std::fs::read_dir(&mnt).unwrap().next().is_none());
}

#[test]
fn sigterm_makes_the_lazyfs_server_unmount() {
    needs_fuse();
    let dir = tempfile::tempdir().unwrap();
    let (backing, mnt) = (dir.path().join("b"), dir.path().join("m"));
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(["lazyfs", "mount"])
        .arg(&backing)
        .arg(&mnt)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !gregor_deploy::lazyfs::is_mounted(&mnt) {
        assert!(std::time::Instant::now() < deadline, "not mounted in 10 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = server.wait().unwrap();
    assert!(st.success(), "{st:?}");
    assert!(!gregor_deploy::lazyfs::is_mounted(&mnt));
}

#[test]
fn a_power_loss_of_every_node_at_once_loses_acknowledged_writes_and_gregor_reports_it() {
    // Kafka does not fsync its logs per write (log.flush.interval.* are
    // off by default): acks=all is durable only while some replica keeps
    // its page cache. All three nodes losing power together come back with
    // the run's partitions empty, and new writes reuse the old offsets.
    needs_fuse();
    let r = run_yaml(
        "kafka-lose-unfsynced-all",
        "seed: 31\ntime-limit: 25\ncluster: {base-port: 18470, lazy-disk: true}\n\
         workload: {concurrency: 4, rate: 120, keys: 4, op-timeout: 20, final-time-limit: 20}\n\
         client: {acks: all, idempotence: true}\n\
         topic: {replication: 3, configs: {min.insync.replicas: \"2\"}}\n\
         nemesis: {faults: [lose-unfsynced], target: all, interval: 20, duration: 8, \
                   jitter: 0}\n",
    );
    let losses = events(&r, "lose-unfsynced");
    assert_eq!(losses.len(), 1, "{losses:?}\n{}", r.describe());
    assert!(
        losses[0].0.contains("broker-0") && losses[0].0.contains("broker-2"),
        "{losses:?}"
    );
    assert!(
        events(&r, "start").iter().all(|(_, e)| e.is_none()),
        "the three nodes restart together\n{}",
        r.describe()
    );
    let bad = r.bad_types();
    eprintln!(
        "power loss of every node: {bad:?}; inconsistent-offsets {} (e.g. {}); lost-write {}; \
         {} acknowledged",
        r.count("inconsistent-offsets"),
        r.witness("inconsistent-offsets"),
        r.count("lost-write"),
        r.stat("acknowledged")
    );
    assert_eq!(
        r.results["valid"],
        serde_json::json!(false),
        "{}",
        r.describe()
    );
    assert_eq!(r.out.status.code(), Some(1), "{}", r.describe());
    assert!(
        bad.iter().any(|t| LOSS.contains(&t.as_str())),
        "{bad:?}\n{}",
        r.describe()
    );
}
