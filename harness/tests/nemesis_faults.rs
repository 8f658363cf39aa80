//! The nemesis against real clusters, driven in-process: partitions
//! through network namespaces, latency through the fault proxies, leader
//! kills, clock skew — on tansu (ports 19600-19699) and on Apache Kafka
//! (ports 19500-19599), where brokers replicate, elect leaders and fence
//! each other, so each fault must show its effect in the brokers' own
//! metadata. Each test starts its own cluster in its own temporary directory.
//!
//! Partition tests need root and nftables, the clock-skew tests libfaketime
//! (`apt-get install faketime`); without them they fail naming what is
//! missing (CI's machine has all three).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gregor_deploy::{wire, Cluster, ClusterKind, ClusterSpec};
use gregor_harness::nemesis::{
    self, net, Breakage, Fault, LinkSettings, NemesisConfig, Net, Target,
};
use gregor_history::{History, Process, Recorder};

/// Stops the cluster when a test ends, also when it panics.
struct Guard(Arc<Mutex<Cluster>>);

impl Drop for Guard {
    fn drop(&mut self) {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let _ = c.down();
    }
}

struct Setup {
    _guard: Guard,
    _dir: tempfile::TempDir,
    cluster: Arc<Mutex<Cluster>>,
    net: Arc<Net>,
    rec: Arc<Recorder>,
    history: std::path::PathBuf,
    rt: tokio::runtime::Runtime,
}

impl Setup {
    /// A 3-broker tansu cluster from `base`, behind proxies and/or in namespaces.
    fn start(base: u16, proxied: bool, netns: bool) -> Option<Setup> {
        assert!(
            gregor_deploy::find_tansu().is_some(),
            "tansu is not installed: run `bash scripts/deps.sh --tansu` first"
        );
        Some(Setup::start_kind(ClusterKind::Tansu, base, proxied, netns))
    }

    /// A 3-node cluster of `kind` from `base`, behind proxies and/or in namespaces.
    fn start_kind(kind: ClusterKind, base: u16, proxied: bool, netns: bool) -> Setup {
        let topology = if netns {
            match net::create_topology(3) {
                Ok(t) => Some(t),
                Err(e) => panic!(
                    "partition tests need root, iproute2 and nftables \
                     (network namespaces, veth, a bridge): {e}"
                ),
            }
        } else {
            None
        };
        let dir = tempfile::tempdir().unwrap();
        let spec = ClusterSpec::new(kind, dir.path().join("c"))
            .with_base_port(base)
            .with_network(net::network_spec(proxied, topology.as_ref()));
        let rt = tokio::runtime::Runtime::new().unwrap();
        let net = Arc::new(rt.block_on(Net::start(&spec, topology, 7)).unwrap());
        let cluster = Arc::new(Mutex::new(Cluster::up(spec).expect("cluster up")));
        let history = dir.path().join("history.jsonl");
        let rec = Recorder::create_at(&history, Instant::now()).unwrap();
        Setup {
            _guard: Guard(cluster.clone()),
            _dir: dir,
            cluster,
            net,
            rec,
            history,
            rt,
        }
    }

    fn breakage(&self) -> Breakage {
        Breakage::new(self.cluster.clone(), Some(self.rec.clone())).with_net(Some(self.net.clone()))
    }

    fn addr(&self, i: usize) -> String {
        self.cluster.lock().unwrap().nodes()[i].addr()
    }

    /// The nemesis events so far, as (f, targets).
    fn nemesis_events(&self) -> Vec<(String, String)> {
        self.rec.flush().unwrap();
        History::read(&self.history)
            .unwrap()
            .events
            .iter()
            .filter(|e| e.process == Process::Nemesis)
            .map(|e| {
                (
                    e.f.as_str().to_string(),
                    match &e.value {
                        gregor_history::Value::Json(j) => j.to_string(),
                        other => format!("{other:?}"),
                    },
                )
            })
            .collect()
    }

    fn down(self) {
        self.cluster.lock().unwrap().down().unwrap();
        let prefix = self.net.prefix().map(str::to_string);
        let Setup { net, rt, .. } = self;
        drop(net);
        drop(rt);
        if let Some(p) = prefix {
            assert_no_namespace_left(&p);
        }
    }
}

fn answers(addr: &str) -> bool {
    wire::answers_api_versions(addr, Duration::from_millis(800))
}

fn eventually(what: &str, timeout: Duration, f: impl Fn() -> bool) {
    let end = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < end, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_no_namespace_left(prefix: &str) {
    let out = |cmd: &str, args: &[&str]| {
        String::from_utf8_lossy(
            &std::process::Command::new(cmd)
                .args(args)
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned()
    };
    let ns = out("ip", &["netns", "list"]);
    assert!(
        !ns.contains(&format!("gregor-{prefix}-")),
        "namespaces left: {ns}"
    );
    let tables = out("nft", &["list", "tables"]);
    let table = format!("gregor_{}", prefix.replace('-', "_"));
    assert!(!tables.contains(&table), "nft table left: {tables}");
}

#[test]
fn a_partitioned_broker_is_unreachable_from_the_other_side_and_answers_again_after_heal() {
    let Some(s) = Setup::start(19600, false, true) else {
        return;
    };
    let addrs: Vec<String> = (0..3).map(|i| s.addr(i)).collect();
    assert!(
        addrs.iter().all(|a| answers(a)),
        "all brokers answer first: {addrs:?}"
    );
    assert!(
        addrs[1].starts_with("10.231."),
        "brokers live in namespaces: {addrs:?}"
    );
    let cfg = NemesisConfig::default(); // shape: isolate the targets
    let mut b = s.breakage();
    b.apply(Fault::Partition, &[1], &cfg, 0);

    // The clients' side (the root namespace) no longer reaches broker-1...
    assert!(
        !answers(&addrs[1]),
        "isolated broker-1 still answers the clients"
    );
    assert!(
        answers(&addrs[0]) && answers(&addrs[2]),
        "the others still answer"
    );
    // ...nor do the other brokers (tansu brokers never call each other, but
    // a Kafka broker in broker-0's namespace could not reach broker-1).
    let topo = s.net.topology().unwrap();
    let port = s.cluster.lock().unwrap().nodes()[1].port;
    let to1 = std::net::SocketAddr::from((topo.node_addr(1), port));
    let to2 = std::net::SocketAddr::from((topo.node_addr(2), port + 1));
    assert!(
        topo.connect_from(0, to1, Duration::from_secs(1)).is_err(),
        "peer reaches isolated broker"
    );
    assert!(
        topo.connect_from(0, to2, Duration::from_secs(1)).is_ok(),
        "peers on the same side talk"
    );
    assert!(
        s.cluster.lock().unwrap().is_running(1),
        "a partition does not stop the process"
    );

    b.heal_all();
    assert!(b.is_healed());
    eventually(
        "broker-1 answers after heal",
        Duration::from_secs(10),
        || answers(&addrs[1]),
    );
    assert!(topo.connect_from(0, to1, Duration::from_secs(1)).is_ok());
    assert_eq!(
        s.nemesis_events(),
        vec![
            ("start-partition".to_string(), r#"["broker-1"]"#.to_string()),
            ("stop-partition".to_string(), r#"["broker-1"]"#.to_string()),
        ]
    );
    drop(b);
    s.down();
}

/// Median of five ApiVersions round trips (each on a new connection).
fn round_trip(addr: &str) -> Duration {
    let mut v: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            wire::api_versions(addr, Duration::from_secs(10)).expect("ApiVersions answered");
            t.elapsed()
        })
        .collect();
    v.sort();
    v[2]
}

#[test]
fn the_nemesis_delay_adds_the_configured_latency_to_round_trips_of_its_target_only() {
    let s = Setup::start(19620, true, false).unwrap();
    let (delay, jitter) = (Duration::from_millis(200), Duration::from_millis(20));
    let cfg = NemesisConfig {
        link: LinkSettings {
            delay,
            jitter,
            ..LinkSettings::default()
        },
        ..NemesisConfig::default()
    };
    let (a0, a2) = (s.addr(0), s.addr(2));
    let direct2 = s.cluster.lock().unwrap().nodes()[2].direct_addr();
    assert_ne!(a2, direct2, "clients are given the proxy, not the broker");
    let before = round_trip(&a2);
    let mut b = s.breakage();
    b.apply(Fault::Delay, &[2], &cfg, 0);
    let during = round_trip(&a2);
    let other = round_trip(&a0);
    let unproxied = round_trip(&direct2);
    b.heal_all();
    let after = round_trip(&a2);
    eprintln!(
        "round trip through broker-2's proxy: before {before:?}, with delay {delay:?}±{jitter:?} \
         {during:?}, after heal {after:?}; broker-0 meanwhile {other:?}, broker-2 direct {unproxied:?}"
    );
    // A request and its answer are each held back delay±jitter: the round
    // trip grows by 2·(delay±jitter), plus scheduling noise (500 ms allowed).
    let low = 2 * (delay - jitter);
    let high = before + 2 * (delay + jitter) + Duration::from_millis(500);
    assert!(
        during >= low && during <= high,
        "{during:?} not in [{low:?}, {high:?}]"
    );
    assert!(other < low, "broker-0 was slowed too: {other:?}");
    assert!(
        unproxied < low,
        "the broker itself was slowed: {unproxied:?}"
    );
    assert!(after < low, "still slow after heal: {after:?}");
    assert_eq!(
        s.nemesis_events(),
        vec![
            ("start-delay".to_string(), r#"["broker-2"]"#.to_string()),
            ("stop-delay".to_string(), r#"["broker-2"]"#.to_string()),
        ]
    );
    drop(b);
    s.down();
}

/// The leader of partition 0 of `topic`, as the first answering broker of
/// the bootstrap list reports it: (node id, advertised host:port).
fn leader(addrs: &[String], topic: &str) -> Option<(i32, String)> {
    for a in addrs {
        let Ok(md) = wire::metadata(a, &[topic], Duration::from_secs(2)) else {
            continue;
        };
        let p = md
            .topics
            .iter()
            .find(|t| t.name == topic)?
            .partitions
            .first()?
            .clone();
        let b = md.brokers.iter().find(|b| b.node_id == p.leader)?;
        return Some((b.node_id, format!("{}:{}", b.host, b.port)));
    }
    None
}

#[test]
fn a_leader_kill_on_tansu_moves_the_reported_leader_to_a_live_broker() {
    let s = Setup::start(19640, false, false).unwrap();
    let addrs: Vec<String> = (0..3).map(|i| s.addr(i)).collect();
    assert_eq!(
        wire::create_topic(&addrs[0], "lk", 1, 1, Duration::from_secs(5)).unwrap(),
        0
    );
    let (id_before, before) = leader(&addrs, "lk").expect("a leader");
    // tansu: every broker calls itself node 111 and claims every partition,
    // so "the leader" is whichever broker answered the metadata request.
    assert_eq!(id_before, 111);
    let lookup_addrs = addrs.clone();
    let cfg = NemesisConfig {
        faults: vec![Fault::LeaderKill],
        interval: Duration::from_millis(300),
        duration: Duration::from_secs(4),
        jitter: 0.0,
        leader_of: Some(Arc::new(move || leader(&lookup_addrs, "lk").map(|l| l.1))),
        ..NemesisConfig::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (c, r, st) = (s.cluster.clone(), s.rec.clone(), stop.clone());
    let thread = std::thread::spawn(move || nemesis::run(cfg, c, r, st));
    eventually("the leader is killed", Duration::from_secs(10), || {
        s.nemesis_events().iter().any(|(f, _)| f == "kill")
    });
    let killed = s.nemesis_events()[0].1.clone();
    let (id_during, during) = leader(&addrs, "lk").expect("a leader while one broker is down");
    stop.store(true, Ordering::SeqCst);
    thread.join().unwrap();
    let i = addrs.iter().position(|a| *a == before).unwrap();
    assert_eq!(
        killed,
        format!(r#"["broker-{i}"]"#),
        "the reported leader was the one killed"
    );
    assert_ne!(during, before, "metadata still names the killed broker");
    assert!(answers(&during), "the new leader {during} answers");
    assert_eq!(
        id_during, 111,
        "and, being tansu, calls itself node 111 too"
    );
    let fs: Vec<String> = s.nemesis_events().into_iter().map(|e| e.0).collect();
    assert_eq!(fs, vec!["kill", "start"]);
    assert!(answers(&before), "the killed leader was restarted");
    s.down();
}

#[test]
fn a_clock_skewed_broker_runs_under_libfaketime_and_is_restarted_without_it() {
    if let Err(e) = gregor_deploy::faketime::library() {
        panic!("the clock-skew fault needs libfaketime (apt-get install faketime): {e}");
    }
    let s = Setup::start(19660, false, false).unwrap();
    let cfg = NemesisConfig {
        clock_skew: -3600,
        target: Target::Node(1),
        ..NemesisConfig::default()
    };
    let env_of = |s: &Setup| {
        let pid = s.cluster.lock().unwrap().nodes()[1].pid.expect("running");
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        (
            String::from_utf8_lossy(&env)
                .split('\0')
                .any(|v| v == "FAKETIME=-3600"),
            maps.contains("libfaketime"),
        )
    };
    let mut b = s.breakage();
    b.apply(Fault::ClockSkew, &[1], &cfg, 0);
    assert_eq!(
        env_of(&s),
        (true, true),
        "broker-1 runs with FAKETIME and libfaketime loaded"
    );
    assert!(answers(&s.addr(1)), "a skewed broker still answers");
    b.heal_all();
    assert_eq!(env_of(&s), (false, false), "restarted with the real clock");
    assert!(answers(&s.addr(1)));
    let fs: Vec<String> = s.nemesis_events().into_iter().map(|e| e.0).collect();
    assert_eq!(fs, vec!["start-clock-skew", "stop-clock-skew"]);
    drop(b);
    s.down();
}

#[test]
fn a_leader_partition_cuts_the_reported_leader_off_until_the_nemesis_stops() {
    let Some(s) = Setup::start(19680, false, true) else {
        return;
    };
    let addrs: Vec<String> = (0..3).map(|i| s.addr(i)).collect();
    assert_eq!(
        wire::create_topic(&addrs[0], "lp", 1, 1, Duration::from_secs(5)).unwrap(),
        0
    );
    let (_, before) = leader(&addrs, "lp").expect("a leader");
    let lookup_addrs = addrs.clone();
    let cfg = NemesisConfig {
        faults: vec![Fault::LeaderPartition],
        interval: Duration::from_millis(300),
        duration: Duration::from_secs(30),
        jitter: 0.0,
        leader_of: Some(Arc::new(move || leader(&lookup_addrs, "lp").map(|l| l.1))),
        net: Some(s.net.clone()),
        ..NemesisConfig::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (c, r, st) = (s.cluster.clone(), s.rec.clone(), stop.clone());
    let thread = std::thread::spawn(move || nemesis::run(cfg, c, r, st));
    eventually("the leader is partitioned", Duration::from_secs(10), || {
        !s.nemesis_events().is_empty()
    });
    let i = addrs.iter().position(|a| *a == before).unwrap();
    let others: Vec<&String> = addrs.iter().filter(|a| **a != before).collect();
    assert!(
        !answers(&before),
        "the partitioned leader {before} still answers clients"
    );
    assert!(
        others.iter().all(|a| answers(a)),
        "the other brokers answer"
    );
    stop.store(true, Ordering::SeqCst);
    thread.join().unwrap();
    assert!(answers(&before), "healed when the nemesis stopped");
    let name = format!(r#"["broker-{i}"]"#);
    assert_eq!(
        s.nemesis_events(),
        vec![
            ("start-leader-partition".to_string(), name.clone()),
            ("stop-leader-partition".to_string(), name),
        ]
    );
    s.down();
}

// ------------------------------------------------------------ Apache Kafka

/// The node ids the brokers at `addrs` list as live (unfenced), asked of
/// each in turn; empty when none answers.
fn live_brokers(addrs: &[String]) -> Vec<i32> {
    addrs
        .iter()
        .find_map(|a| wire::metadata(a, &[], Duration::from_secs(2)).ok())
        .map(|m| {
            let mut ids: Vec<i32> = m.brokers.iter().map(|b| b.node_id).collect();
            ids.sort_unstable();
            ids
        })
        .unwrap_or_default()
}

/// Partition 0 of `topic` as the first of `addrs` that answers reports it.
fn partition0(addrs: &[String], topic: &str) -> Option<wire::PartitionMeta> {
    addrs.iter().find_map(|a| {
        let md = wire::metadata(a, &[topic], Duration::from_secs(2)).ok()?;
        md.topics
            .into_iter()
            .find(|t| t.name == topic)?
            .partitions
            .into_iter()
            .next()
    })
}

#[test]
fn on_kafka_an_isolated_broker_is_fenced_by_the_others_and_rejoins_after_heal() {
    let s = Setup::start_kind(ClusterKind::Kafka, 19500, false, true);
    let addrs: Vec<String> = (0..3).map(|i| s.addr(i)).collect();
    assert_eq!(live_brokers(&addrs), vec![0, 1, 2]);
    let cfg = NemesisConfig::default(); // shape: isolate the targets
    let mut b = s.breakage();
    b.apply(Fault::Partition, &[1], &cfg, 0);
    // Cut from clients and from the controller quorum: once its session
    // times out (9 s) the others fence it and stop listing it.
    let others = vec![addrs[0].clone(), addrs[2].clone()];
    eventually(
        "broker-1 fenced by the majority",
        Duration::from_secs(60),
        || live_brokers(&others) == vec![0, 2],
    );
    assert!(!answers(&addrs[1]), "isolated broker-1 answers clients");
    // Its controller listener is unreachable from a peer's namespace.
    let topo = s.net.topology().unwrap();
    let cport = s.cluster.lock().unwrap().nodes()[1]
        .controller_port
        .unwrap();
    let to1 = std::net::SocketAddr::from((topo.node_addr(1), cport));
    assert!(
        topo.connect_from(0, to1, Duration::from_secs(1)).is_err(),
        "a peer reaches the isolated broker's controller listener"
    );
    b.heal_all();
    eventually(
        "broker-1 registered again after heal",
        Duration::from_secs(60),
        || live_brokers(&addrs) == vec![0, 1, 2],
    );
    drop(b);
    s.down();
}

#[test]
fn on_kafka_a_delay_slows_client_round_trips_of_its_target_only() {
    let s = Setup::start_kind(ClusterKind::Kafka, 19520, true, false);
    let delay = Duration::from_millis(200);
    let cfg = NemesisConfig {
        link: LinkSettings {
            delay,
            jitter: Duration::from_millis(20),
            ..LinkSettings::default()
        },
        ..NemesisConfig::default()
    };
    let (a0, a2) = (s.addr(0), s.addr(2));
    let mut b = s.breakage();
    b.apply(Fault::Delay, &[2], &cfg, 0);
    let during = round_trip(&a2);
    let other = round_trip(&a0);
    b.heal_all();
    let after = round_trip(&a2);
    eprintln!("kafka broker-2 round trip: {during:?} delayed, {after:?} after; broker-0 {other:?}");
    assert!(during >= 2 * Duration::from_millis(180), "{during:?}");
    assert!(other < Duration::from_millis(360), "{other:?}");
    assert!(after < Duration::from_millis(360), "{after:?}");
    drop(b);
    s.down();
}

/// A nemesis of `fault` aimed at the leader of a fresh RF-3 topic `topic`:
/// the topic, its partition 0 before the fault, the stop flag and thread.
struct LeaderNemesis {
    addrs: Vec<String>,
    before: wire::PartitionMeta,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl LeaderNemesis {
    fn start(s: &Setup, topic: &'static str, fault: Fault, duration: Duration) -> LeaderNemesis {
        let addrs: Vec<String> = (0..3).map(|i| s.addr(i)).collect();
        assert_eq!(
            wire::create_topic(&addrs[0], topic, 1, 3, Duration::from_secs(30)).unwrap(),
            0
        );
        eventually("a leader with a full ISR", Duration::from_secs(30), || {
            partition0(&addrs, topic).is_some_and(|p| p.leader >= 0 && p.isr.len() == 3)
        });
        let before = partition0(&addrs, topic).unwrap();
        let lookup_addrs = addrs.clone();
        let cfg = NemesisConfig {
            faults: vec![fault],
            interval: Duration::from_millis(300),
            duration,
            jitter: 0.0,
            leader_of: Some(Arc::new(move || leader(&lookup_addrs, topic).map(|l| l.1))),
            net: Some(s.net.clone()),
            ..NemesisConfig::default()
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (c, r, st) = (s.cluster.clone(), s.rec.clone(), stop.clone());
        let thread = std::thread::spawn(move || nemesis::run(cfg, c, r, st));
        eventually("the nemesis acts", Duration::from_secs(10), || {
            !s.nemesis_events().is_empty()
        });
        LeaderNemesis {
            addrs,
            before,
            stop,
            thread,
        }
    }

    /// Stops the nemesis (it heals) and waits until the ISR is whole again.
    fn stop(self, topic: &str) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap();
        eventually(
            "the old leader rejoins the ISR",
            Duration::from_secs(60),
            || partition0(&self.addrs, topic).is_some_and(|p| p.isr.len() == 3),
        );
    }
}

#[test]
fn on_kafka_a_leader_kill_makes_the_controller_elect_another_replica() {
    let s = Setup::start_kind(ClusterKind::Kafka, 19540, false, false);
    let n = LeaderNemesis::start(&s, "lk", Fault::LeaderKill, Duration::from_secs(20));
    let before = n.before.clone();
    assert_eq!(
        s.nemesis_events()[0],
        (
            "kill".to_string(),
            format!(r#"["broker-{}"]"#, before.leader)
        ),
        "the nemesis killed the leader the brokers reported"
    );
    eventually("a new leader is elected", Duration::from_secs(30), || {
        partition0(&n.addrs, "lk").is_some_and(|p| {
            p.leader >= 0 && p.leader != before.leader && p.leader_epoch > before.leader_epoch
        })
    });
    let during = partition0(&n.addrs, "lk").unwrap();
    assert!(!during.isr.contains(&before.leader), "{during:?}");
    n.stop("lk");
    s.down();
}

/// The wall-clock time of a log4j line `[2026-12-02 05:01:02,345] ...`, in
/// seconds since the epoch (UTC, as the JVM here logs).
fn log_line_time(line: &str) -> Option<i64> {
    let stamp = line.strip_prefix('[')?.get(..19)?;
    let t = humantime::parse_rfc3339_weak(stamp).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64)
}

#[test]
fn on_kafka_a_clock_skew_shifts_the_jvms_own_wall_clock() {
    if let Err(e) = gregor_deploy::faketime::library() {
        panic!("the clock-skew fault needs libfaketime (apt-get install faketime): {e}");
    }
    let s = Setup::start_kind(ClusterKind::Kafka, 19560, false, false);
    let skew = 3600;
    let cfg = NemesisConfig {
        clock_skew: skew,
        target: Target::Node(1),
        ..NemesisConfig::default()
    };
    let log = s.cluster.lock().unwrap().nodes()[1].log.clone();
    let mut b = s.breakage();
    b.apply(Fault::ClockSkew, &[1], &cfg, 0);
    s.rec.flush().unwrap();
    assert!(
        answers(&s.addr(1)),
        "a skewed node answers; history: {}\nlog tail: {}",
        std::fs::read_to_string(&s.history).unwrap_or_default(),
        gregor_deploy::process::log_tail(&log, 30)
    );
    // The node's own log lines after the restart carry the skewed time: the
    // JVM reads the wall clock through libc, where libfaketime sits.
    let text = std::fs::read_to_string(&log).unwrap();
    let last_start = text.rfind("=== gregor: starting").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let stamped = text[last_start..]
        .lines()
        .rev()
        .find_map(log_line_time)
        .expect("a timestamped log line after the restart");
    let shift = stamped - now;
    assert!(
        (skew - 120..=skew + 120).contains(&shift),
        "log time {stamped} is {shift} s from now, not ~{skew} s"
    );
    b.heal_all();
    assert!(answers(&s.addr(1)));
    drop(b);
    s.down();
}

#[test]
fn on_kafka_a_partitioned_leader_loses_its_leadership_to_a_replica_on_the_majority_side() {
    let s = Setup::start_kind(ClusterKind::Kafka, 19580, false, true);
    let n = LeaderNemesis::start(&s, "lp", Fault::LeaderPartition, Duration::from_secs(60));
    let old = n.before.leader;
    let majority: Vec<String> = (0..3)
        .filter(|&i| i != old as usize)
        .map(|i| n.addrs[i].clone())
        .collect();
    eventually(
        "the majority elects another leader",
        Duration::from_secs(60),
        || partition0(&majority, "lp").is_some_and(|p| p.leader >= 0 && p.leader != old),
    );
    n.stop("lp");
    s.down();
}
