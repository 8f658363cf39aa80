//! Lag as a fault, on real Apache Kafka (3 KRaft nodes, jars from Maven
//! Central): client quotas and replication throttles set through the admin
//! API and gone after the heal, consumers stalled, and the lag each one
//! causes visible in the run directory while the run stays valid.
//!
//! Ports 19800-19899, each cluster at a base ending in 1 (19801, 19811…):
//! the tansu tests in `modes.rs` use the bases ending in 0 of the same
//! range with one port each.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gregor_deploy::{wire, Cluster, ClusterKind, ClusterSpec};
use gregor_harness::nemesis::{lag, Breakage, Fault, NemesisConfig};
use gregor_history::{History, Process, Recorder};

/// Stops the cluster when a test ends, also when it panics.
struct Guard(Arc<Mutex<Cluster>>);

impl Drop for Guard {
    fn drop(&mut self) {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let _ = c.down();
    }
}

fn kafka(base: u16, dir: &std::path::Path) -> Arc<Mutex<Cluster>> {
    let spec = ClusterSpec::new(ClusterKind::Kafka, dir.join("c")).with_base_port(base);
    match Cluster::up(spec) {
        Ok(c) => Arc::new(Mutex::new(c)),
        Err(e) => panic!(
            "cannot start a 3-node Apache Kafka cluster (needs java and the jars: \
             `gregor cluster fetch`): {e}"
        ),
    }
}

/// `f()` once it satisfies `done` (quotas and configs reach every broker's
/// metadata cache a moment after the controller took them), or after 15 s.
fn eventually<T: std::fmt::Debug>(mut f: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = f();
        if done(&v) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn on_kafka_quotas_and_replication_throttles_are_set_and_gone_after_the_heal() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = kafka(19801, dir.path());
    let _guard = Guard(cluster.clone());
    let addrs: Vec<String> = cluster
        .lock()
        .unwrap()
        .nodes()
        .iter()
        .map(|n| n.direct_addr())
        .collect();
    let topic = "gregor-lagfault-t".to_string();
    wire::create_topic(&addrs[0], &topic, 2, 3, Duration::from_secs(20)).unwrap();
    let history = dir.path().join("history.jsonl");
    let rec = Recorder::create_at(&history, Instant::now()).unwrap();
    let cfg = NemesisConfig {
        throttle_rate: 2048,
        client_id: Some("gregor-lagtest".into()),
        topics: vec![topic.clone()],
        ..NemesisConfig::default()
    };
    let client = Some("gregor-lagtest".to_string());
    let mut b = Breakage::new(cluster.clone(), Some(rec.clone()));
    let all = [0, 1, 2];

    b.apply(Fault::FetchThrottle, &all, &cfg, 0);
    b.apply(Fault::ProduceThrottle, &all, &cfg, 0);
    let mut quotas = eventually(
        || lag::client_quotas(&addrs, client.clone()).unwrap(),
        |q| q.len() == 2,
    );
    quotas.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        quotas,
        vec![
            ("consumer_byte_rate".to_string(), 2048.0),
            ("producer_byte_rate".to_string(), 2048.0)
        ]
    );
    assert!(
        lag::client_quotas(&addrs, None).unwrap().is_empty(),
        "the default client entity is left alone"
    );

    b.apply(Fault::ReplicationThrottle, &[1], &cfg, 0);
    let set = eventually(
        || lag::replication_throttle_in_force(&addrs, std::slice::from_ref(&topic)).unwrap(),
        |s| s.len() == 8,
    );
    let rates = set
        .iter()
        .filter(|(_, k, v)| k.ends_with("throttled.rate") && v == "2048")
        .count();
    let replicas = set
        .iter()
        .filter(|(_, k, v)| k.ends_with("throttled.replicas") && v == "*")
        .count();
    assert_eq!((rates, replicas), (6, 2), "{set:?}");
    assert!(!b.is_healed());

    b.heal_all();
    assert!(b.is_healed());
    assert_eq!(
        eventually(
            || lag::client_quotas(&addrs, client.clone()).unwrap(),
            Vec::is_empty
        ),
        vec![],
        "quotas left after the heal"
    );
    assert_eq!(
        eventually(
            || lag::replication_throttle_in_force(&addrs, std::slice::from_ref(&topic)).unwrap(),
            Vec::is_empty
        ),
        vec![],
        "throttle configs left after the heal"
    );
    rec.flush().unwrap();
    let events: Vec<(String, Option<String>)> = History::read(&history)
        .unwrap()
        .events
        .into_iter()
        .filter(|e| e.process == Process::Nemesis)
        .map(|e| (e.f.as_str().to_string(), e.error))
        .collect();
    let fs: Vec<&str> = events.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fs,
        vec![
            "start-fetch-throttle",
            "start-produce-throttle",
            "start-replication-throttle",
            "stop-fetch-throttle",
            "stop-produce-throttle",
            "stop-replication-throttle"
        ]
    );
    assert!(
        events.iter().all(|(_, e)| e.is_none()),
        "an admin request failed: {events:?}"
    );
}

#[test]
fn on_kafka_a_paused_follower_leaves_the_isr_and_stays_out_while_replication_is_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = ClusterSpec::new(ClusterKind::Kafka, dir.path().join("c")).with_base_port(19811);
    spec.broker_configs
        .insert("replica.lag.time.max.ms".into(), "3000".into());
    let cluster = Arc::new(Mutex::new(Cluster::up(spec).unwrap_or_else(|e| {
        panic!("cannot start a 3-node Apache Kafka cluster (`gregor cluster fetch`): {e}")
    })));
    let _guard = Guard(cluster.clone());
    let addrs: Vec<String> = cluster
        .lock()
        .unwrap()
        .nodes()
        .iter()
        .map(|n| n.direct_addr())
        .collect();
    let topic = "gregor-lagfault-isr".to_string();
    wire::create_topic(&addrs[0], &topic, 3, 3, Duration::from_secs(20)).unwrap();
    let topics = vec![topic.clone()];
    let isr_sizes = |addrs: &[String]| -> Vec<usize> {
        lag::isrs(addrs, &topics)
            .unwrap()
            .iter()
            .map(|(_, _, isr)| isr.len())
            .collect()
    };
    assert_eq!(isr_sizes(&addrs), vec![3, 3, 3]);
    // Writes, ~40 KB/s: a follower throttled to 1 KB/s cannot catch up.
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let producer: BaseProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", addrs.join(","))
            .set("acks", "1")
            .create()
            .unwrap();
        let (writing, topic) = (writing.clone(), topic.clone());
        std::thread::spawn(move || {
            let payload = vec![b'x'; 400];
            let mut n = 0u64;
            while writing.load(std::sync::atomic::Ordering::SeqCst) {
                let key = n.to_string();
                let _ = producer.send(BaseRecord::to(&topic).key(&key).payload(&payload));
                producer.poll(Duration::from_millis(10));
                n += 1;
            }
            let _ = producer.flush(Duration::from_secs(10));
            n
        })
    };
    let cfg = NemesisConfig {
        throttle_rate: 1024,
        topics: topics.clone(),
        ..NemesisConfig::default()
    };
    let mut b = Breakage::new(cluster.clone(), None);
    b.apply(Fault::ReplicationThrottle, &[2], &cfg, 0);
    let t = Instant::now();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let out = b.lag_follower(2, &topics, &stop, Duration::from_secs(20));
    let took = t.elapsed();
    let others = &addrs[..2];
    let during = isr_sizes(others);
    eprintln!(
        "replication-throttle: follower out of the ISR after {:.1}s; ISR sizes while throttled {during:?}",
        took.as_secs_f64()
    );
    assert!(out, "broker 2 never left the ISR within 20 s");
    assert!(
        during.iter().any(|&n| n < 3),
        "the ISR is whole again while throttled: {during:?}"
    );
    // Still out a few seconds later: its catch-up is throttled.
    std::thread::sleep(Duration::from_secs(5));
    let later = isr_sizes(others);
    eprintln!("ISR sizes 5 s later, still throttled: {later:?}");
    assert!(
        later.iter().any(|&n| n < 3),
        "the follower caught up although throttled: {later:?}"
    );
    b.heal_all();
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    let written = writer.join().unwrap();
    eprintln!("records written during the test: {written}");
    // Healed: the follower catches up and the ISR is whole again.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut after = isr_sizes(&addrs);
    while after.iter().any(|&n| n < 3) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        after = isr_sizes(&addrs);
    }
    assert_eq!(
        after,
        vec![3, 3, 3],
        "the ISR did not recover after the heal"
    );
    assert_eq!(
        eventually(
            || lag::replication_throttle_in_force(&addrs, &topics).unwrap(),
            Vec::is_empty
        ),
        vec![]
    );
}
