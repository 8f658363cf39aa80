//! `gregor monitor` against a real Apache Kafka cluster (3 KRaft nodes)
//! named by `GREGOR_TEST_KAFKA_BOOTSTRAP` (`host:port,...`); the tests fail,
//! never skip, when it is unset.
//!
//! What an on-call engineer would notice:
//! - a group that stops consuming shows lag rising in records and seconds
//!   and turns STOP (no member) or STALL (a member that does not move);
//! - a group that keeps up stays OK, and an idle group (lag 0, nothing
//!   produced) stays OK — never STOP;
//! - `/metrics` parses with a Prometheus text parser and holds
//!   kafka-lag-exporter's series for the group;
//! - lag in seconds is the record's own inside compressed batches;
//! - the dashboard renders in headless Chromium, shows the group and
//!   redraws with the next poll;
//! - on a 3-node cluster of the test's own, a killed broker is down while
//!   the others are up, and stays listed (down) once fenced;
//! - groups and topics that go away leave no state behind;
//! - bad flags, secured clusters and unreachable brokers give clear errors.
//!
//! Each test uses topics and groups of its own (`mon-<test>-<pid>-<n>`), and
//! the monitor is filtered to them, so tests share the cluster in parallel.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gregor_harness::monitor::server::{MonitorServer, Shared};
use gregor_harness::monitor::{GroupStatus, Monitor, MonitorConfig, PartitionStatus, Snapshot};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn bootstrap() -> String {
    common::shared_kafka()
}

/// On a fresh cluster the first group commit creates `__consumer_offsets`
/// (50 partitions) and coordinators answer COORDINATOR_LOAD_IN_PROGRESS for
/// a while: wait once, before any test polls, until a committed group is
/// listed with no error.
fn warm_up() {
    static WARM: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut done = WARM.lock().unwrap_or_else(|p| p.into_inner());
    if *done {
        return;
    }
    let prefix = unique("warmup");
    let (topic, group) = (format!("{prefix}-t"), format!("{prefix}-g"));
    rt().block_on(async {
        create_topic(&topic, 1).await;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let c = group_client(&group);
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, 0, Offset::Offset(0))
                .unwrap();
            if c.commit(&tpl, CommitMode::Sync).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "cannot commit offsets on the test cluster"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mut m = monitor(&prefix);
        loop {
            let s = m.poll().await;
            if s.errors.is_empty() && s.group_partitions_of(&group).count() == 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the test cluster's group coordinators never settled: {:?}",
                s.errors
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    *done = true;
}

/// A name no other test (or earlier run) uses.
fn unique(test: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000;
    format!(
        "mon-{test}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn admin() -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("admin client")
}

/// Creates `topic` with 3 replicas through gregor's one CreateTopics
/// request ([`gregor_deploy::wire::create_topic`]), waiting for it.
async fn create_topic(topic: &str, partitions: i32) {
    let (addr, t) = (
        bootstrap()
            .split(',')
            .next()
            .unwrap_or_default()
            .to_string(),
        topic.to_string(),
    );
    let code = tokio::task::spawn_blocking(move || {
        gregor_deploy::wire::create_topic(&addr, &t, partitions, 3, Duration::from_secs(30))
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("cannot create topic {topic}: {e}"));
    assert_eq!(code, 0, "cannot create topic {topic}: error code {code}");
}

fn producer() -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("linger.ms", "0")
        .create()
        .expect("producer")
}

/// Sends `n` records to each of `partitions` and waits until every one is
/// delivered.
fn produce(p: &BaseProducer, topic: &str, partitions: i32, n: usize) {
    for part in 0..partitions {
        for i in 0..n {
            let payload = format!("v{i}");
            p.send(
                BaseRecord::<(), _>::to(topic)
                    .partition(part)
                    .payload(&payload),
            )
            .unwrap_or_else(|(e, _)| panic!("send to {topic}: {e}"));
        }
    }
    p.flush(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("flush to {topic}: {e}"));
}

fn group_client(group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer")
}

/// Commits `offsets` [(partition, offset)] of `topic` for `group` (a
/// group without members, as a stopped application leaves it).
fn commit(group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let c = group_client(group);
    commit_with(&c, topic, offsets);
}

fn commit_with(c: &BaseConsumer, topic: &str, offsets: &[(i32, i64)]) {
    let mut tpl = TopicPartitionList::new();
    for &(p, o) in offsets {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))
            .unwrap();
    }
    c.commit(&tpl, CommitMode::Sync)
        .unwrap_or_else(|e| panic!("commit {offsets:?} on {topic}: {e}"));
}

/// A monitor of only `prefix`'s groups and topics, configured by `f`.
fn monitor_with(prefix: &str, f: impl FnOnce(&mut MonitorConfig)) -> Monitor {
    let m = monitor(prefix);
    let mut c = m.config().clone();
    f(&mut c);
    Monitor::new(c)
}

/// A monitor of only `prefix`'s groups and topics.
fn monitor(prefix: &str) -> Monitor {
    let bs = MonitorConfig::parse_bootstrap(&bootstrap()).unwrap();
    let mut c = MonitorConfig::new(&bs);
    c.groups =
        Some(MonitorConfig::regex("--groups", &format!("{}.*", regex::escape(prefix))).unwrap());
    c.topics =
        Some(MonitorConfig::regex("--topics", &format!("{}.*", regex::escape(prefix))).unwrap());
    c.cluster_name = "test".into();
    c.status_window = 6;
    Monitor::new(c)
}

/// Polls until `done` holds for the snapshot (at most `limit`), 1 s apart,
/// running `between` before each poll; returns every snapshot.
async fn poll_until(
    m: &mut Monitor,
    limit: usize,
    mut between: impl FnMut(usize),
    done: impl Fn(&Snapshot) -> bool,
) -> Vec<Snapshot> {
    let mut out = Vec::new();
    for i in 0..limit {
        between(i);
        let s = m.poll().await;
        let stop = done(&s);
        out.push(s);
        if stop {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    out
}

fn describe(snaps: &[Snapshot], group: &str) -> String {
    let mut s = String::new();
    for (i, snap) in snaps.iter().enumerate() {
        s.push_str(&format!(
            "poll {i}: group {:?}, errors {:?}\n",
            snap.group(group)
                .map(|g| (&g.state, g.status, g.sum_lag, g.max_lag_seconds)),
            snap.errors
        ));
        for gp in snap.group_partitions_of(group) {
            s.push_str(&format!(
                "   {}/{} committed {} latest {:?} lag {:?} lag_s {:?} ({:?}) {} member {:?}\n",
                gp.topic,
                gp.partition,
                gp.committed,
                gp.latest,
                gp.lag,
                gp.lag_seconds,
                gp.lag_seconds_source,
                gp.status,
                gp.client_id
            ));
        }
    }
    s
}

#[test]
fn a_group_that_stops_consuming_shows_rising_lag_in_records_and_seconds_and_turns_stop() {
    warm_up();
    let prefix = unique("stop");
    let (topic, group) = (format!("{prefix}-t"), format!("{prefix}-g"));
    rt().block_on(async {
        create_topic(&topic, 2).await;
        let p = producer();
        produce(&p, &topic, 2, 20);
        commit(&group, &topic, &[(0, 10), (1, 10)]);
        let started = Instant::now();
        let started_unix =
            gregor_harness::monitor::unix_ms(std::time::SystemTime::now()) as f64 / 1000.0;
        let mut m = monitor(&prefix);
        let snaps = poll_until(
            &mut m,
            15,
            |_| produce(&p, &topic, 2, 5),
            |s| {
                s.group(&group)
                    .is_some_and(|g| g.status == GroupStatus::Err)
            },
        )
        .await;
        // A second monitor that interpolates only (kafka-lag-exporter's way).
        let mut interp = monitor_with(&prefix, |c| c.exact_lag_seconds = false);
        let mut interpolated = Vec::new();
        for _ in 0..3 {
            interpolated.push(interp.poll().await);
            produce(&p, &topic, 2, 5);
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        let d = describe(&snaps, &group);
        let last = snaps.last().unwrap();
        let g = last
            .group(&group)
            .unwrap_or_else(|| panic!("group not seen\n{d}"));
        assert_eq!(g.status, GroupStatus::Err, "{d}");
        for gp in last.group_partitions_of(&group) {
            assert_eq!(
                gp.status,
                PartitionStatus::Stop,
                "no member holds it: STOP\n{d}"
            );
        }
        // Lag in records rises at every poll, by what was produced.
        let lags: Vec<i64> = snaps
            .iter()
            .filter_map(|s| s.group(&group))
            .map(|g| g.sum_lag)
            .collect();
        assert!(lags.len() >= 3, "{d}");
        assert!(
            lags.windows(2).all(|w| w[1] == w[0] + 10),
            "lag +10 per poll: {lags:?}\n{d}"
        );
        assert_eq!(lags[0], 2 * (25 - 10), "{d}");
        // Lag in seconds: the age of record 10, read exactly, rising with
        // the clock and no older than the test.
        let secs: Vec<f64> = snaps
            .iter()
            .filter_map(|s| s.group(&group))
            .map(|g| g.max_lag_seconds)
            .collect();
        assert!(
            secs.windows(2).all(|w| w[1] > w[0]),
            "lag seconds rise: {secs:?}\n{d}"
        );
        let age = started.elapsed().as_secs_f64();
        assert!(
            *secs.last().unwrap() <= age + 1.0 && *secs.last().unwrap() >= age - 3.0,
            "lag seconds {secs:?} vs the records' age {age:.1}s\n{d}"
        );
        for gp in last.group_partitions_of(&group) {
            assert_eq!(
                gp.lag_seconds_source,
                gregor_harness::monitor::lag::Source::Exact,
                "{d}"
            );
        }
        // Without record timestamps the lag in seconds is estimated from
        // the log end's history: unknown at the first poll (one point says
        // nothing), then known, positive, rising, never exact.
        let di = describe(&interpolated, &group);
        assert!(
            interpolated[0]
                .group_partitions_of(&group)
                .all(|gp| gp.lag_seconds.is_none()),
            "{di}"
        );
        // An estimate, not a measurement: extrapolated from a young window
        // of bursty production it may even dip between polls (as
        // kafka-lag-exporter's does), so only its order of magnitude is
        // checked against the records' true age.
        for s in &interpolated[1..] {
            let est = s.group(&group).unwrap().max_lag_seconds;
            let age = (s.time_ms as f64 / 1000.0) - started_unix;
            assert!(
                est > age / 3.0 && est < age * 3.0,
                "estimate {est:.1}s vs true age {age:.1}s\n{di}"
            );
        }
        for gp in interpolated.last().unwrap().group_partitions_of(&group) {
            assert_ne!(
                gp.lag_seconds_source,
                gregor_harness::monitor::lag::Source::Exact,
                "{di}"
            );
            assert_ne!(
                gp.lag_seconds_source,
                gregor_harness::monitor::lag::Source::None,
                "{di}"
            );
        }
    });
}

#[test]
fn lag_seconds_inside_compressed_batches_are_the_records_own() {
    // One batch per codec (zstd too in the unit tests: this librdkafka is
    // built without it) of 40 records stamped a second apart, the first
    // 100 s ago; the group sits at record 30, 70 s old. The batch's first
    // timestamp would say 100 s: only decompressing gives 70 s.
    warm_up();
    let prefix = unique("codec");
    let codecs = ["gzip", "snappy", "lz4"];
    rt().block_on(async {
        let topic = format!("{prefix}-t");
        create_topic(&topic, codecs.len() as i32).await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let t0 = now - 100_000;
        for (part, codec) in codecs.iter().enumerate() {
            let p: BaseProducer = ClientConfig::new()
                .set("bootstrap.servers", bootstrap())
                .set("compression.type", *codec)
                .set("linger.ms", "1000")
                .create()
                .unwrap();
            for i in 0..40i64 {
                let payload = format!("record {i} of a compressible batch {}", "x".repeat(50));
                p.send(
                    BaseRecord::<(), _>::to(&topic)
                        .partition(part as i32)
                        .payload(&payload)
                        .timestamp(t0 + i * 1000),
                )
                .unwrap_or_else(|(e, _)| panic!("send: {e}"));
            }
            p.flush(Duration::from_secs(30)).unwrap();
        }
        let group = format!("{prefix}-g");
        let at: Vec<(i32, i64)> = (0..codecs.len() as i32).map(|p| (p, 30)).collect();
        commit(&group, &topic, &at);
        let mut m = monitor(&prefix);
        let snaps = poll_until(
            &mut m,
            10,
            |_| {},
            |s| s.group_partitions_of(&group).count() == codecs.len(),
        )
        .await;
        let d = describe(&snaps, &group);
        let last = snaps.last().unwrap();
        assert_eq!(
            last.group_partitions_of(&group).count(),
            codecs.len(),
            "{d}"
        );
        for gp in last.group_partitions_of(&group) {
            let codec = codecs[gp.partition as usize];
            assert_eq!(
                gp.lag_seconds_source,
                gregor_harness::monitor::lag::Source::Exact,
                "{codec}\n{d}"
            );
            let expect = (last.time_ms - (t0 + 30_000)) as f64 / 1000.0;
            let got = gp.lag_seconds.unwrap();
            assert!(
                (got - expect).abs() < 0.01,
                "{codec}: {got} s, the record at 30 is {expect} s old\n{d}"
            );
        }
    });
}

#[test]
fn a_member_that_holds_its_partitions_but_does_not_commit_turns_stall() {
    warm_up();
    let prefix = unique("stall");
    let (topic, group) = (format!("{prefix}-t"), format!("{prefix}-g"));
    rt().block_on(async {
        create_topic(&topic, 1).await;
        let p = producer();
        produce(&p, &topic, 1, 20);
        // A live member: subscribed, polling, never committing after 5.
        let stop = Arc::new(AtomicBool::new(false));
        let (g2, t2, stop2) = (group.clone(), topic.clone(), stop.clone());
        let member = std::thread::spawn(move || {
            let c = ClientConfig::new()
                .set("bootstrap.servers", bootstrap())
                .set("group.id", &g2)
                .set("client.id", "stuck-consumer")
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", "earliest")
                .create::<BaseConsumer>()
                .unwrap();
            c.subscribe(&[&t2]).unwrap();
            let mut committed = false;
            while !stop2.load(Ordering::Relaxed) {
                let _ = c.poll(Duration::from_millis(200));
                if !committed && !c.assignment().map(|a| a.count() == 0).unwrap_or(true) {
                    commit_with(&c, &t2, &[(0, 5)]);
                    committed = true;
                }
            }
        });
        let mut m = monitor(&prefix);
        let snaps = poll_until(
            &mut m,
            25,
            |_| produce(&p, &topic, 1, 3),
            |s| {
                s.group_partitions_of(&group)
                    .any(|gp| gp.status == PartitionStatus::Stall)
            },
        )
        .await;
        stop.store(true, Ordering::Relaxed);
        member.join().unwrap();
        let d = describe(&snaps, &group);
        let last = snaps.last().unwrap();
        let gp = last
            .group_partitions_of(&group)
            .next()
            .unwrap_or_else(|| panic!("no committed offset seen\n{d}"));
        assert_eq!(gp.status, PartitionStatus::Stall, "{d}");
        assert_eq!(gp.client_id, "stuck-consumer", "the member is named\n{d}");
        assert!(!gp.host.is_empty(), "{d}");
        // librdkafka's member id is the client id and a UUID; the one the
        // partition names is the group's only member.
        assert!(
            gp.member_id.starts_with("stuck-consumer-"),
            "member id {:?}\n{d}",
            gp.member_id
        );
        let members: Vec<&str> = last
            .group(&group)
            .unwrap()
            .members
            .iter()
            .map(|m| m.member_id.as_str())
            .collect();
        assert_eq!(members, vec![gp.member_id.as_str()], "{d}");
        assert_eq!(last.group(&group).unwrap().status, GroupStatus::Err, "{d}");
        assert!(gp.lag.unwrap() > 15, "{d}");
    });
}

#[test]
fn a_group_that_keeps_up_stays_ok_and_an_idle_group_is_never_stop() {
    warm_up();
    let prefix = unique("ok");
    let topic = format!("{prefix}-t");
    let (busy, idle) = (format!("{prefix}-busy"), format!("{prefix}-idle"));
    let idle_topic = format!("{prefix}-quiet");
    rt().block_on(async {
        create_topic(&topic, 2).await;
        create_topic(&idle_topic, 2).await;
        let p = producer();
        produce(&p, &idle_topic, 2, 7);
        commit(&idle, &idle_topic, &[(0, 7), (1, 7)]);
        let mut m = monitor(&prefix);
        let mut total = 0i64;
        let snaps = poll_until(
            &mut m,
            8,
            |_| {
                total += 4;
                produce(&p, &topic, 2, 4);
                commit(&busy, &topic, &[(0, total), (1, total)]);
            },
            |_| false,
        )
        .await;
        for g in [&busy, &idle] {
            let d = describe(&snaps, g);
            for s in &snaps {
                let gs = s.group(g).unwrap_or_else(|| panic!("{g} not seen\n{d}"));
                assert_eq!(gs.status, GroupStatus::Ok, "{d}");
                assert_eq!(gs.sum_lag, 0, "{d}");
                assert_eq!(gs.max_lag_seconds, 0.0, "{d}");
                for gp in s.group_partitions_of(g) {
                    assert_eq!(gp.status, PartitionStatus::Ok, "{d}");
                }
            }
        }
        let last = snaps.last().unwrap();
        assert_eq!(last.group_partitions_of(&busy).count(), 2);
        assert_eq!(
            last.group_partitions_of(&busy).next().unwrap().committed,
            32,
            "{}",
            describe(&snaps, &busy)
        );
    });
}

/// GET `path` from `addr`; (status code, body).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s =
        std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}

#[test]
fn metrics_parse_with_a_prometheus_parser_and_hold_kafka_lag_exporter_series() {
    warm_up();
    let prefix = unique("metrics");
    let (topic, group) = (format!("{prefix}-t"), format!("{prefix}-g"));
    let snap = rt().block_on(async {
        create_topic(&topic, 3).await;
        let p = producer();
        produce(&p, &topic, 3, 10);
        commit(&group, &topic, &[(0, 4), (1, 10), (2, 0)]);
        let mut m = monitor(&prefix);
        m.poll().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        m.poll().await
    });
    let shared = Arc::new(Mutex::new(Shared::default()));
    shared.lock().unwrap().update(snap.clone());
    let server = MonitorServer::bind("127.0.0.1:0", shared).unwrap();
    let addr = server.addr().unwrap().to_string();
    server.spawn();
    let (code, body) = http_get(&addr, "/metrics");
    assert_eq!(code, 200, "{body}");
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("/metrics does not parse: {e}\n{body}"));
    let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                ref other => panic!("{name}: {other:?}"),
            })
    };
    let g = group.as_str();
    let t = topic.as_str();
    for (part, lag) in [("0", 6.0), ("1", 0.0), ("2", 10.0)] {
        let l = [
            ("group", g),
            ("topic", t),
            ("partition", part),
            ("cluster_name", "test"),
        ];
        assert_eq!(
            value("kafka_consumergroup_group_lag", &l),
            Some(lag),
            "partition {part}\n{body}"
        );
        assert!(
            value("kafka_consumergroup_group_offset", &l).is_some(),
            "{body}"
        );
        assert!(
            value("kafka_consumergroup_group_lag_seconds", &l).is_some(),
            "{body}"
        );
        let pl = [("topic", t), ("partition", part)];
        assert_eq!(
            value("kafka_partition_latest_offset", &pl),
            Some(10.0),
            "{body}"
        );
        assert_eq!(
            value("kafka_partition_earliest_offset", &pl),
            Some(0.0),
            "{body}"
        );
        assert_eq!(value("gregor_partition_isr_size", &pl), Some(3.0), "{body}");
        assert_eq!(
            value("gregor_partition_under_replicated", &pl),
            Some(0.0),
            "{body}"
        );
        assert_eq!(value("gregor_partition_offline", &pl), Some(0.0), "{body}");
    }
    assert_eq!(
        value("kafka_consumergroup_group_sum_lag", &[("group", g)]),
        Some(16.0),
        "{body}"
    );
    assert_eq!(
        value("kafka_consumergroup_group_max_lag", &[("group", g)]),
        Some(10.0),
        "{body}"
    );
    assert_eq!(
        value(
            "kafka_consumergroup_group_topic_sum_lag",
            &[("group", g), ("topic", t)]
        ),
        Some(16.0),
        "{body}"
    );
    assert!(value("kafka_consumergroup_group_max_lag_seconds", &[("group", g)]).unwrap() > 0.0);
    assert_eq!(
        value(
            "gregor_consumergroup_status",
            &[("group", g), ("status", "OK")]
        ),
        Some(1.0),
        "two polls are too few for an alarm\n{body}"
    );
    assert_eq!(
        value(
            "gregor_consumergroup_status",
            &[("group", g), ("status", "ERR")]
        ),
        Some(0.0)
    );
    let ups: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "gregor_broker_up")
        .collect();
    assert_eq!(ups.len(), 3, "{body}");
    assert!(ups
        .iter()
        .all(|s| matches!(s.value, prometheus_parse::Value::Gauge(v) if v == 1.0)));
    assert!(
        value("gregor_monitor_poll_duration_seconds", &[]).is_some(),
        "{body}"
    );
    assert_eq!(
        value("gregor_monitor_poll_errors", &[]),
        Some(0.0),
        "{body}"
    );

    // /api/state carries the same snapshot for the dashboard.
    let (code, state) = http_get(&addr, "/api/state");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(v["snapshot"]["groups"][0]["group"], g, "{state}");
    assert_eq!(http_get(&addr, "/nope").0, 404);
}

/// A `gregor monitor` child and the address it listens on.
struct Child {
    child: std::process::Child,
    addr: String,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_monitor(args: &[&str]) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .arg("monitor")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("CI", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = Arc::new(Mutex::new(String::new()));
    let s2 = stderr.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("dashboard http://").nth(1) {
                let _ = tx.send(rest.split('/').next().unwrap_or("").to_string());
            }
            s2.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            panic!(
                "gregor monitor printed no address: {}",
                stderr.lock().unwrap()
            )
        });
    Child {
        child,
        addr,
        stderr,
    }
}

#[test]
fn the_dashboard_renders_in_headless_chromium_and_shows_the_group_with_its_chart() {
    warm_up();
    let prefix = unique("dash");
    let (topic, group) = (format!("{prefix}-t"), format!("{prefix}-g"));
    rt().block_on(async {
        create_topic(&topic, 2).await;
        produce(&producer(), &topic, 2, 10);
    });
    commit(&group, &topic, &[(0, 3), (1, 3)]);
    let pattern = format!("{}.*", regex::escape(&prefix));
    let m = spawn_monitor(&[
        "--bootstrap",
        &bootstrap(),
        "--interval",
        "1",
        "--groups",
        &pattern,
        "--topics",
        &pattern,
    ]);
    // Wait for a poll that saw the group.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = http_get(&m.addr, "/metrics");
        if body.contains(&group) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "group never in /metrics: {}",
            m.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let dom = common::chromium_dom(&format!("http://{}/", m.addr));
    assert!(
        dom.contains(&format!("<tr data-group=\"{group}\" data-status=\"")),
        "the status table shows the group:\n{dom}"
    );
    assert!(
        dom.contains(&format!("class=\"lag-chart\" data-group=\"{group}\"")),
        "a lag chart for the group:\n{dom}"
    );
    assert!(dom.contains("<polyline"), "the chart has lines:\n{dom}");
    assert!(
        dom.contains("<td class=\"num\">14</td>"),
        "the group's lag (2 partitions x 7 records) is shown:\n{dom}"
    );
    assert!(dom.contains("up"), "brokers shown:\n{dom}");
    assert!(
        dom.contains("<div id=\"meta\">last poll "),
        "the page drew the monitor's state:\n{dom}"
    );
}

#[test]
fn the_dashboard_redraws_with_the_next_poll() {
    // The page fetches /api/state every interval and redraws. Chromium's
    // virtual time runs the page's timers faster than real polls come, so
    // a stand-in server hands the page the monitor's real state after one
    // poll on its first fetch and after a second poll on the next ones.
    warm_up();
    let prefix = unique("redraw");
    let (topic, group) = (format!("{prefix}-t"), format!("{prefix}-g"));
    let (first, second) = rt().block_on(async {
        create_topic(&topic, 1).await;
        produce(&producer(), &topic, 1, 10);
        commit(&group, &topic, &[(0, 3)]);
        let mut m = monitor(&prefix);
        let mut shared = Shared {
            interval_ms: 1000,
            ..Shared::default()
        };
        let s1 = m.poll().await;
        assert_eq!(s1.group(&group).map(|g| g.sum_lag), Some(7), "{s1:?}");
        shared.update(s1);
        let first = shared.state_json();
        produce(&producer(), &topic, 1, 25);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let s2 = m.poll().await;
            let lag = s2.group(&group).map(|g| g.sum_lag);
            if lag == Some(32) || Instant::now() > deadline {
                assert_eq!(lag, Some(32), "{s2:?}");
                shared.update(s2);
                break;
            }
        }
        (first, shared.state_json())
    });
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = server.server_addr().to_ip().unwrap().to_string();
    let fetches = Arc::new(Mutex::new(0usize));
    let f2 = fetches.clone();
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let body = match req.url() {
                "/api/state" => {
                    let mut n = f2.lock().unwrap();
                    *n += 1;
                    if *n == 1 {
                        first.clone()
                    } else {
                        second.clone()
                    }
                }
                _ => gregor_harness::monitor::server::DASHBOARD.to_string(),
            };
            let _ = req.respond(tiny_http::Response::from_string(body).with_header(
                tiny_http::Header::from_bytes("Content-Type", "text/html; charset=utf-8").unwrap(),
            ));
        }
    });
    let dom = common::chromium_dom(&format!("http://{addr}/"));
    let n = *fetches.lock().unwrap();
    assert!(n >= 2, "the page fetched the state {n} time(s):\n{dom}");
    assert!(
        dom.contains("<td class=\"num\">32</td>") && !dom.contains("<td class=\"num\">7</td>"),
        "the table shows the second poll's lag (32), not the first's (7):\n{dom}"
    );
    // The group's chart holds both polls: a line through two points.
    let chart = dom
        .split(&format!("class=\"lag-chart\" data-group=\"{group}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no chart for the group:\n{dom}"));
    let points = chart
        .split("points=\"")
        .nth(1)
        .and_then(|p| p.split('"').next())
        .unwrap_or_else(|| panic!("no polyline:\n{chart}"));
    assert_eq!(
        points.split_whitespace().count(),
        2,
        "two polls, two points: {points:?}"
    );
}

#[test]
fn groups_and_topics_that_go_away_leave_no_state_behind() {
    warm_up();
    let prefix = unique("churn");
    rt().block_on(async {
        let mut m = monitor(&prefix);
        let p = producer();
        let mut peak = 0;
        for round in 0..3 {
            let topics: Vec<String> = (0..3).map(|i| format!("{prefix}-r{round}-t{i}")).collect();
            let groups: Vec<String> = (0..4).map(|i| format!("{prefix}-r{round}-g{i}")).collect();
            for t in &topics {
                create_topic(t, 2).await;
                produce(&p, t, 2, 3);
            }
            for g in &groups {
                for t in &topics {
                    commit(g, t, &[(0, 1), (1, 2)]);
                }
            }
            // Several polls: windows fill up to their caps, not beyond.
            for _ in 0..8 {
                produce(&p, &topics[0], 2, 1);
                m.poll().await;
            }
            let size = m.state_size();
            assert_eq!(size.group_partition_windows, 4 * 3 * 2, "{size:?}");
            assert_eq!(size.partition_windows, 3 * 2, "{size:?}");
            assert!(
                size.group_partition_samples <= 4 * 3 * 2 * 6,
                "capped: {size:?}"
            );
            assert!(size.partition_points <= 3 * 2 * 60, "{size:?}");
            peak = peak.max(size.group_partition_windows);
            // Everything of this round goes away.
            let a = admin();
            let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
            let gs: Vec<&str> = groups.iter().map(String::as_str).collect();
            for r in a.delete_groups(&gs, &opts).await.unwrap() {
                r.unwrap();
            }
            let ts: Vec<&str> = topics.iter().map(String::as_str).collect();
            for r in a.delete_topics(&ts, &opts).await.unwrap() {
                r.unwrap();
            }
            // Deleted topics may linger in metadata for a moment.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let s = m.poll().await;
                let size = m.state_size();
                if size.group_partition_windows == 0 && size.partition_windows == 0 {
                    assert!(s.groups.is_empty() && s.group_partitions.is_empty());
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "state left after deleting round {round}: {size:?}, groups {:?}",
                    s.groups.iter().map(|g| &g.group).collect::<Vec<_>>()
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        assert_eq!(peak, 24);
        assert_eq!(m.state_size().cached_timestamps, 0);
    });
}

#[test]
fn bad_flags_and_secured_clusters_are_clear_errors_with_exit_3() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gregor"))
            .arg("monitor")
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&[
        "--bootstrap",
        "127.0.0.1:1",
        "--groups",
        "(unclosed",
        "--once",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", common::describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--groups"),
        "{}",
        common::describe(&o)
    );
    let o = run(&[
        "--bootstrap",
        "127.0.0.1:1",
        "-X",
        "security.protocol=SASL_SSL",
        "--once",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", common::describe(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("security.protocol=SASL_SSL") && err.contains("not supported"),
        "{err}"
    );
    let o = run(&["--bootstrap", "127.0.0.1:1", "-X", "nonsense", "--once"]);
    assert_eq!(o.status.code(), Some(3), "{}", common::describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("-X nonsense"),
        "{}",
        common::describe(&o)
    );
    let o = run(&[
        "--bootstrap",
        "127.0.0.1:1",
        "-X",
        "request.timeout.ms=soon",
        "--once",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", common::describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("request.timeout.ms=soon"),
        "{}",
        common::describe(&o)
    );
    let o = run(&["--bootstrap", "127.0.0.1:1", "--interval", "0", "--once"]);
    assert_eq!(o.status.code(), Some(3), "{}", common::describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--interval"),
        "{}",
        common::describe(&o)
    );
    let o = run(&["--bootstrap", "127.0.0.1:1", "--listen", "not-an-address"]);
    assert_eq!(o.status.code(), Some(3), "{}", common::describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not-an-address"),
        "{}",
        common::describe(&o)
    );
}

#[test]
fn an_unreachable_cluster_is_reported_in_json_and_metrics_and_the_monitor_keeps_running() {
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = l.local_addr().unwrap().to_string();
    drop(l);
    let o = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(["monitor", "--bootstrap", &dead, "--once", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", common::describe(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "--json prints JSON even when down: {e}\n{}",
            common::describe(&o)
        )
    });
    assert_eq!(v["brokers"][0]["up"], false, "{v}");
    assert_eq!(v["brokers"][0]["addr"], dead.as_str(), "{v}");
    assert!(v["errors"][0].as_str().unwrap().contains(&dead), "{v}");
    assert!(String::from_utf8_lossy(&o.stderr).contains(&dead));

    let m = spawn_monitor(&["--bootstrap", &dead, "--interval", "0.5"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (code, body) = http_get(&m.addr, "/metrics");
        if code == 200 {
            break body;
        }
        assert!(Instant::now() < deadline, "no metrics");
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_millis(1500));
    let mut child = m;
    assert!(
        child.child.try_wait().unwrap().is_none(),
        "the monitor keeps running"
    );
    assert!(body.contains("gregor_broker_up{"), "{body}");
    assert!(body.contains("} 0\n"), "{body}");
    let errors: HashMap<&str, &str> = body
        .lines()
        .filter(|l| l.starts_with("gregor_monitor_poll_errors"))
        .filter_map(|l| l.rsplit_once(' '))
        .collect();
    assert!(errors.values().any(|v| *v != "0"), "{body}");
    let log = child.stderr.lock().unwrap().clone();
    assert!(log.contains("cannot reach the cluster"), "{log}");
    let _ = &mut child;
}

/// Stops a cluster of the test's own when the test ends, also on panic.
struct ClusterGuard(gregor_deploy::Cluster);

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        let _ = self.0.down();
    }
}

#[test]
fn on_a_cluster_of_its_own_a_killed_broker_is_down_and_stays_while_it_is_registered() {
    // Its own 3-node cluster (ports 19831-19836): one broker is killed.
    // At once it is down (refuses connections) while the others are up;
    // seconds later the controller fences it and it leaves the metadata,
    // but it is still registered: the monitor keeps showing it down, well
    // past the polls after which a broker that left would be forgotten.
    use gregor_deploy::{Cluster, ClusterKind, ClusterSpec};
    use gregor_harness::monitor::FORGET_BROKER_AFTER_POLLS;
    let dir = tempfile::tempdir().unwrap();
    let spec = ClusterSpec::new(ClusterKind::Kafka, dir.path().join("c")).with_base_port(19831);
    let mut cluster = ClusterGuard(Cluster::up(spec).unwrap_or_else(|e| {
        panic!("cannot start a 3-node Apache Kafka cluster (`gregor cluster fetch`): {e}")
    }));
    let addrs: Vec<String> = cluster.0.nodes().iter().map(|n| n.addr()).collect();
    let mut config = MonitorConfig::new(&addrs);
    config.request_timeout = Duration::from_secs(3);
    let mut m = Monitor::new(config);
    let up = |s: &Snapshot| -> Vec<(String, bool)> {
        let mut v: Vec<(String, bool)> = s.brokers.iter().map(|b| (b.addr.clone(), b.up)).collect();
        v.sort();
        v
    };
    let all_up: Vec<(String, bool)> = addrs.iter().map(|a| (a.clone(), true)).collect();
    // One runtime: the monitor's connections live in it.
    let rt = rt();
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = m.poll().await;
            if up(&s) == all_up {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not all brokers up: {:?}",
                s.brokers
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let victim = addrs[2].clone();
    cluster.0.kill(2).unwrap();
    let expected: Vec<(String, bool)> = addrs.iter().map(|a| (a.clone(), *a != victim)).collect();
    // Poll for 25 s, 1 s apart: through the broker session timeout (9 s)
    // and many more than FORGET_BROKER_AFTER_POLLS polls after it.
    let mut log = Vec::new();
    let mut fenced_polls = 0;
    rt.block_on(async {
        let until = Instant::now() + Duration::from_secs(25);
        while Instant::now() < until {
            let s = m.poll().await;
            let v = s.brokers.iter().find(|b| b.addr == victim);
            log.push(format!(
                "{:.3}s: {:?} victim error {:?}",
                s.poll_seconds,
                up(&s),
                v.and_then(|b| b.error.clone())
            ));
            assert_eq!(up(&s), expected, "{}", log.join("\n"));
            if v.and_then(|b| b.error.as_deref())
                .is_some_and(|e| e.starts_with("fenced"))
            {
                fenced_polls += 1;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    eprintln!("{}", log.join("\n"));
    assert!(
        fenced_polls > FORGET_BROKER_AFTER_POLLS,
        "the killed broker was seen fenced in {fenced_polls} poll(s):\n{}",
        log.join("\n")
    );
}

/// The benchmark of item 9: one full poll of 10,000 group-partitions (100
/// groups x 100 partitions) against the test cluster. Ignored by default
/// (it creates a 100-partition topic); run it with
/// `cargo test --release -p gregor-harness --test monitor -- --ignored --nocapture bench_`.
#[test]
#[ignore]
fn bench_one_full_poll_of_10000_group_partitions() {
    warm_up();
    let prefix = unique("bench");
    let topic = format!("{prefix}-t");
    let groups: Vec<String> = (0..100).map(|i| format!("{prefix}-g{i:03}")).collect();
    rt().block_on(async {
        create_topic(&topic, 100).await;
        produce(&producer(), &topic, 100, 20);
        let t = Instant::now();
        for (i, g) in groups.iter().enumerate() {
            // Groups at 10 different offsets: lagging, with record
            // timestamps to read.
            let offsets: Vec<(i32, i64)> = (0..100).map(|p| (p, (i % 10) as i64 + 5)).collect();
            commit(g, &topic, &offsets);
        }
        println!(
            "setup: 100 groups committed in {:.1}s",
            t.elapsed().as_secs_f64()
        );
        let mut m = monitor(&prefix);
        let mut times = Vec::new();
        for k in 0..12 {
            let s = m.poll().await;
            assert_eq!(s.group_partitions.len(), 10_000, "errors: {:?}", s.errors);
            assert!(s.errors.is_empty(), "{:?}", s.errors);
            let exact = s
                .group_partitions
                .iter()
                .filter(|g| g.lag_seconds_source == gregor_harness::monitor::lag::Source::Exact)
                .count();
            let phases: Vec<String> = s
                .poll_phases
                .iter()
                .map(|(p, t)| format!("{p} {:.1}ms", t * 1000.0))
                .collect();
            println!(
                "poll {k}: {:.3}s for {} group-partitions ({} with exact lag seconds): {}",
                s.poll_seconds,
                s.group_partitions.len(),
                exact,
                phases.join(", ")
            );
            times.push(s.poll_seconds);
        }
        let mut steady = times[1..].to_vec();
        steady.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = steady[steady.len() / 2];
        println!(
            "BENCH full poll of 10,000 group-partitions: first (cold: connections, 1,000 record \
             timestamps) {:.3}s, steady median {:.3}s ({:.0} offsets/s end to end), fastest \
             {:.3}s, slowest {:.3}s",
            times[0],
            median,
            10_000.0 / median,
            steady[0],
            steady[steady.len() - 1]
        );
        let a = admin();
        let opts = AdminOptions::new();
        let gs: Vec<&str> = groups.iter().map(String::as_str).collect();
        let _ = a.delete_groups(&gs, &opts).await;
        let _ = a.delete_topics(&[&topic], &opts).await;
    });
}
