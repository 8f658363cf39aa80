//! Fault-finding on real Apache Kafka: each test starts its own 3-node
//! KRaft cluster (jars from Maven Central, the default version) through
//! `gregor run`, drives a workload under one kind of fault, and asserts
//! what Kafka must keep under safe settings — or that gregor catches Kafka
//! breaking a promise it never made under unsafe ones. Ports are chosen by
//! the run (the first free block from 19092). If Kafka breaks a promise
//! under safe settings the test fails with the witness: that is a finding,
//! never a reason to weaken a checker. Each test has its own block of
//! ports from 18000 (two runs choosing the first free block at once could
//! pick the same one).

mod common;
use common::{run_yaml, Finished};

use gregor_history::ClusterSample;

/// The anomalies that mean acknowledged data went missing or got mixed up.
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

/// The sampled partition states of the run (broker truth).
fn samples(r: &Finished) -> Vec<ClusterSample> {
    std::fs::read_to_string(r.dir.join(gregor_history::cluster::CLUSTER_SAMPLES_FILE))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Leaders of each key over the samples: true if any key changed leader.
fn some_leader_moved(samples: &[ClusterSample]) -> bool {
    let mut first: std::collections::BTreeMap<u64, i32> = Default::default();
    samples.iter().flat_map(|s| &s.partitions).any(|p| {
        let was = *first.entry(p.key).or_insert(p.leader);
        p.leader >= 0 && was >= 0 && was != p.leader
    })
}

#[test]
fn the_default_run_with_broker_kills_on_kafka_is_valid() {
    let r = run_yaml(
        "kafka-kill",
        "seed: 3\ntime-limit: 25\ncluster: {base-port: 18000}\n\
         workload: {concurrency: 4, rate: 100, keys: 4, final-time-limit: 60}\n\
         nemesis: {faults: [kill], interval: 8, duration: 4}\n",
    );
    assert_eq!(r.out.status.code(), Some(0), "{}", r.describe());
    assert_eq!(r.results["valid"], serde_json::json!(true));
    assert_no_loss(&r);
    let fs = r.nemesis_fs();
    assert!(fs.iter().any(|f| f == "kill"), "{fs:?}");
    let offsets = std::fs::read_to_string(r.dir.join("broker-offsets.json")).unwrap();
    let offsets: Vec<gregor_history::BrokerOffsets> = serde_json::from_str(&offsets).unwrap();
    assert_eq!(offsets.len(), 4, "one log per key: {offsets:?}");
    assert!(offsets.iter().all(|o| o.log_end > 0), "{offsets:?}");
}

#[test]
fn safe_settings_lose_nothing_under_leader_kill_pause_and_partition() {
    // acks=all, idempotence, RF 3, min ISR 2, manual (sync) commits. Pauses
    // and partitions outlast the broker session timeout (9 s), so the
    // controller fences the leader and elects another.
    let r = run_yaml(
        "kafka-safe-leader-faults",
        "seed: 11\ntime-limit: 75\ncluster: {base-port: 18030}\n\
         workload: {concurrency: 4, rate: 120, keys: 4, op-timeout: 20, final-time-limit: 90}\n\
         client: {acks: all, idempotence: true, commit: sync}\n\
         topic: {replication: 3, configs: {min.insync.replicas: \"2\"}}\n\
         nemesis: {faults: [leader-kill, leader-pause, leader-partition], interval: 16, \
                   duration: 11, jitter: 0}\n",
    );
    assert_no_loss(&r);
    let dups = r.count("duplicate");
    if dups > 0 {
        eprintln!(
            "duplicates under safe settings: {dups} of {} acknowledged; e.g. {}",
            r.stat("acknowledged"),
            r.witness("duplicate")
        );
    }
    let fs = r.nemesis_fs();
    for f in ["kill", "pause", "start-leader-partition"] {
        assert!(fs.iter().any(|x| x == f), "no {f} in {fs:?}");
    }
    let s = samples(&r);
    assert!(
        some_leader_moved(&s),
        "the brokers never reported a new leader: {} sample(s)",
        s.len()
    );
    // Only duplicates (with their witness above) may make it invalid.
    let bad: Vec<String> = r
        .bad_types()
        .into_iter()
        .filter(|t| t != "duplicate")
        .collect();
    assert!(bad.is_empty(), "{bad:?}\n{}", r.describe());
}

#[test]
fn acks_1_with_a_paused_leader_loses_acknowledged_writes_and_gregor_finds_them() {
    // A leader paused (SIGSTOP) past the session timeout is fenced and
    // replaced; when it wakes it still believes it leads for a moment and
    // acknowledges (acks=1) the produce requests queued at it, then
    // truncates them away as a follower of the new leader. Many sends in
    // flight at the paused leader make this certain, not luck.
    let r = run_yaml(
        "kafka-acks1-leader-pause",
        "seed: 5\ntime-limit: 50\ncluster: {base-port: 18060}\ntopic: {partitions: 3}\n\
         workload: {concurrency: 4, pipeline: 32, rate: 5000, keys: 3, mix: {send: 4, poll: 1}, \
                    op-timeout: 40, final-time-limit: 90}\n\
         client: {acks: \"1\", idempotence: false}\n\
         nemesis: {faults: [leader-pause], interval: 22, duration: 15, jitter: 0}\n",
    );
    let found = r.count("lost-write") + r.count("inconsistent-offsets");
    assert!(
        found > 0,
        "no lost or overwritten acknowledged write found\n{}",
        r.describe()
    );
    eprintln!(
        "acks=1 finding: lost-write {} (e.g. {}), inconsistent-offsets {} (e.g. {}) of {} acknowledged",
        r.count("lost-write"),
        r.witness("lost-write"),
        r.count("inconsistent-offsets"),
        r.witness("inconsistent-offsets"),
        r.stat("acknowledged")
    );
    assert_eq!(r.out.status.code(), Some(1), "{}", r.describe());
}

#[test]
fn transactions_under_leader_kill_keep_read_committed_isolation() {
    let r = run_yaml(
        "kafka-txn-leader-kill",
        "seed: 9\ntime-limit: 40\ncluster: {base-port: 18090}\n\
         workload: {concurrency: 4, rate: 60, keys: 4, txn: true, abort-probability: 0.2, \
                    op-timeout: 20, final-time-limit: 90}\n\
         client: {isolation-level: read_committed}\n\
         nemesis: {faults: [leader-kill], interval: 12, duration: 6, jitter: 0}\n",
    );
    let types = r.anomaly_types();
    for kind in [
        "G1a",
        "G0",
        "G1c",
        "G0-process",
        "G1c-process",
        "G0-realtime",
        "G1c-realtime",
    ] {
        assert!(
            !types.iter().any(|t| t == kind),
            "{kind}: {}\n{}",
            r.witness(kind),
            r.describe()
        );
    }
    assert_no_loss(&r);
    let txns = |kind| {
        r.history
            .events
            .iter()
            .filter(|e| e.f == gregor_history::F::Txn && e.kind == kind)
            .count()
    };
    let txn_ok = txns(gregor_history::EventType::Ok);
    let txn_fail = txns(gregor_history::EventType::Fail);
    assert!(
        txn_ok >= 20,
        "only {txn_ok} committed transactions\n{}",
        r.describe()
    );
    assert!(txn_fail >= 1, "no aborted transaction\n{}", r.describe());
    assert!(
        r.bad_types().is_empty(),
        "{:?}\n{}",
        r.bad_types(),
        r.describe()
    );
}

#[test]
fn unclean_leader_election_after_the_isr_shrank_to_the_leader_loses_acknowledged_writes() {
    // acks=1, min ISR 1, unclean election on (the controller runs it every
    // second instead of every 5 minutes). The leader's followers are cut
    // off (their links to it blackholed) until the ISR is the leader alone,
    // it keeps acknowledging, then it is killed: only a stale follower is
    // left, the controller elects it uncleanly, and the old leader
    // truncates what only it had when it comes back.
    let r = run_yaml(
        "kafka-unclean-election",
        "seed: 13\ntime-limit: 60\n\
         cluster: {base-port: 18120, broker-configs: {unclean.leader.election.enable: \"true\", \
                   unclean.leader.election.interval.ms: \"1000\", replica.lag.time.max.ms: \"4000\"}}\n\
         topic: {partitions: 1, replication: 3, \
                 configs: {min.insync.replicas: \"1\", unclean.leader.election.enable: \"true\"}}\n\
         workload: {concurrency: 4, pipeline: 8, rate: 1000, keys: 1, mix: {send: 4, poll: 1}, \
                    max-writes-per-key: 10000000, op-timeout: 20, final-time-limit: 90}\n\
         client: {acks: \"1\", idempotence: false}\n\
         nemesis: {faults: [lagging-leader-kill], interval: 30, duration: 24, jitter: 0}\n",
    );
    let fs = r.nemesis_fs();
    for f in ["start-blackhole", "kill", "stop-blackhole", "start"] {
        assert!(fs.iter().any(|x| x == f), "no {f} in {fs:?}");
    }
    let found = r.count("lost-write") + r.count("inconsistent-offsets");
    eprintln!(
        "unclean election finding: lost-write {} (e.g. {}), inconsistent-offsets {} (e.g. {}) of {} acknowledged",
        r.count("lost-write"),
        r.witness("lost-write"),
        r.count("inconsistent-offsets"),
        r.witness("inconsistent-offsets"),
        r.stat("acknowledged")
    );
    assert!(found > 0, "no loss found\n{}", r.describe());
}

#[test]
fn every_other_fault_heals_on_kafka_and_safe_settings_lose_nothing() {
    // Controller kill, link faults on client links and a network partition
    // of random halves, in turn (stop is in the rolling restart, pause in
    // the leader faults above).
    let r = run_yaml(
        "kafka-every-fault",
        "seed: 17\ntime-limit: 80\ncluster: {base-port: 18150}\n\
         workload: {concurrency: 4, rate: 80, keys: 4, op-timeout: 20, final-time-limit: 90}\n\
         nemesis: {faults: [controller-kill, bandwidth, reset, blackhole, partition], \
                   partition: random-halves, interval: 9, duration: 4, jitter: 0, \
                   bandwidth: 20000}\n",
    );
    let fs = r.nemesis_fs();
    for f in [
        "kill",
        "start",
        "start-bandwidth",
        "stop-bandwidth",
        "start-reset",
        "start-blackhole",
        "start-partition",
        "stop-partition",
    ] {
        assert!(
            fs.iter().any(|x| x == f),
            "no {f} in {fs:?}\n{}",
            r.describe()
        );
    }
    assert_no_loss(&r);
    assert!(
        r.bad_types().is_empty(),
        "{:?}\n{}",
        r.bad_types(),
        r.describe()
    );
}

#[test]
fn a_rolling_restart_of_every_kafka_node_loses_nothing() {
    let r = run_yaml(
        "kafka-rolling-restart",
        "seed: 19\ntime-limit: 60\ncluster: {base-port: 18180}\n\
         workload: {concurrency: 4, rate: 80, keys: 4, op-timeout: 20, final-time-limit: 90}\n\
         nemesis: {faults: [rolling-restart], interval: 5, duration: 1, jitter: 0}\n",
    );
    let fs = r.nemesis_fs();
    let stops = fs.iter().filter(|f| *f == "stop").count();
    let starts = fs.iter().filter(|f| *f == "start").count();
    assert!(stops >= 3 && starts == stops, "{fs:?}\n{}", r.describe());
    assert_no_loss(&r);
    assert!(
        r.bad_types().is_empty(),
        "{:?}\n{}",
        r.bad_types(),
        r.describe()
    );
}
