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
    // The new topic reaches every broker's metadata a moment after it is
    // created (seconds on a loaded machine): wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while isr_sizes(&addrs) != vec![3, 3, 3] && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
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

/// What a stand-in Grafana and Pushgateway received: (method, url, auth, body).
type Received = Arc<Mutex<Vec<(String, String, Option<String>, String)>>>;

/// A local HTTP server recording every request; answers 200.
fn recorder() -> (String, Received) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", server.server_addr().to_ip().unwrap());
    let got: Received = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            let auth = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("Authorization"))
                .map(|h| h.value.to_string());
            g.lock()
                .unwrap()
                .push((req.method().to_string(), req.url().to_string(), auth, body));
            let _ = req.respond(tiny_http::Response::from_string("{\"id\":1}"));
        }
    });
    (addr, got)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Faults in force, from the history: (fault, start s, end s).
/// The run's fault windows (the checkers' definition), in seconds.
fn windows(h: &History) -> Vec<(String, f64, f64)> {
    use gregor_checkers::nemesis;
    let end = h.events.iter().map(|e| e.time).max().unwrap_or(0);
    nemesis::windows(&nemesis::actions(h), end)
        .into_iter()
        .filter(|w| w.closed_by.is_some())
        .map(|w| (w.name, w.start_ns as f64 / 1e9, w.end_ns as f64 / 1e9))
        .collect()
}

#[test]
fn on_kafka_lag_faults_show_as_lag_and_isr_under_their_windows_and_the_run_stays_valid() {
    use std::io::Read as _;
    let (grafana, annotations) = recorder();
    let (pushgateway, pushes) = recorder();
    let listen = format!("127.0.0.1:{}", free_port());
    let store = tempfile::tempdir().unwrap();
    let scenario = store.path().join("lag.yaml");
    std::fs::write(
        &scenario,
        "name: kafka-lag-faults\nseed: 23\ntime-limit: 62\n\
         cluster: {base-port: 19821, broker-configs: {replica.lag.time.max.ms: \"3000\"}}\n\
         workload: {concurrency: 4, rate: 120, keys: 4, op-timeout: 20, final-time-limit: 90}\n\
         nemesis: {faults: [consumer-stall, fetch-throttle, produce-throttle, replication-throttle], \
                   interval: 14, duration: 8, jitter: 0, throttle-rate: 512}\n",
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gregor"))
        .arg("run")
        .arg(&scenario)
        .arg("--store")
        .arg(store.path().join("runs"))
        .args([
            "--listen",
            &listen,
            "--grafana",
            &grafana,
            "--pushgateway",
            &pushgateway,
        ])
        .env("CI", "true")
        .env("GREGOR_GRAFANA_TOKEN", "test-token")
        .current_dir(common::repo())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("gregor runs");
    // Scrape /metrics while the workload runs (the cluster takes 20-40 s
    // to start, minutes on a loaded machine): until the run ends.
    let mut scraped = None;
    while scraped.is_none() && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_secs(2));
        let Ok(mut s) = std::net::TcpStream::connect(&listen) else {
            continue;
        };
        use std::io::Write as _;
        let _ = write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        let lines: Vec<std::io::Result<String>> = body.lines().map(|l| Ok(l.to_string())).collect();
        let parsed = prometheus_parse::Scrape::parse(lines.into_iter()).expect("/metrics parses");
        let done = parsed
            .samples
            .iter()
            .find(|s| s.metric == "gregor_run_ops" && s.labels.get("outcome") == Some("done"))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .unwrap_or(0.0);
        if done > 20.0 {
            scraped = Some((parsed, body));
        }
    }
    let out = child.wait_with_output().unwrap();
    let describe = format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (scrape, body) = scraped.unwrap_or_else(|| panic!("never scraped a busy run\n{describe}"));
    let anomaly_types: Vec<&str> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "gregor_run_anomalies")
        .filter_map(|s| s.labels.get("type"))
        .collect();
    assert!(
        anomaly_types.contains(&"duplicate") && anomaly_types.contains(&"G1a"),
        "{body}"
    );
    assert!(body.contains("kafka_partition_latest_offset"), "{body}");

    assert_eq!(out.status.code(), Some(0), "{describe}");
    let dir = store.path().join("runs/latest");
    let h = History::read(&dir.join("history.jsonl")).unwrap();
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    for kind in ["lost-write", "unseen", "inconsistent-offsets"] {
        assert!(
            results["anomalies"].get(kind).is_none(),
            "{kind}\n{describe}"
        );
    }
    let w = windows(&h);
    eprintln!("fault windows: {w:?}");
    for f in [
        "consumer-stall",
        "fetch-throttle",
        "produce-throttle",
        "replication-throttle",
    ] {
        assert!(w.iter().any(|(x, _, _)| x == f), "no {f} window in {w:?}");
    }
    let errors: Vec<String> = h
        .events
        .iter()
        .filter(|e| e.process == Process::Nemesis && e.error.is_some())
        .map(|e| format!("{}: {:?}", e.f.as_str(), e.error))
        .collect();
    assert!(errors.is_empty(), "nemesis errors: {errors:?}");

    // Throttles slow, never lose: mean latency of ok ops of `f` invoked
    // inside each window against the 5 s before it.
    let mean_latency = |f: gregor_history::F, a: f64, b: f64| -> (f64, usize) {
        let mut invoked: std::collections::HashMap<gregor_history::Process, f64> =
            Default::default();
        let mut lat = Vec::new();
        for e in &h.events {
            let t = e.time as f64 / 1e9;
            match e.kind {
                gregor_history::EventType::Invoke if e.f == f => {
                    invoked.insert(e.process, t);
                }
                gregor_history::EventType::Ok if e.f == f => {
                    if let Some(t0) = invoked.remove(&e.process) {
                        if t0 >= a && t0 < b {
                            lat.push(t - t0);
                        }
                    }
                }
                _ => {}
            }
        }
        let n = lat.len();
        (lat.iter().sum::<f64>() / n.max(1) as f64 * 1000.0, n)
    };
    for (fault, f) in [
        ("fetch-throttle", gregor_history::F::Poll),
        ("produce-throttle", gregor_history::F::Send),
    ] {
        let (_, a, b) = w.iter().find(|(x, _, _)| x == fault).unwrap().clone();
        let (before, nb) = mean_latency(f.clone(), a - 5.0, a);
        let (inside, ni) = mean_latency(f.clone(), a, b);
        eprintln!(
            "{fault} {a:.1}-{b:.1}s: mean {} latency {inside:.1} ms over {ni} ops, {before:.1} ms over {nb} ops in the 5 s before",
            f.as_str()
        );
        if fault == "produce-throttle" {
            // The brokers hold each throttled produce response back: the
            // sends of the window wait far longer than those before it
            // (measured: 391–539 ms against 16–46 ms; a loaded machine slows
            // both, the throttle's delay is the brokers').
            assert!(
                ni > 0 && nb > 0,
                "no acknowledged sends to compare ({ni} in the window, {nb} before)"
            );
            assert!(
                inside >= 2.0 * before && inside >= before + 100.0,
                "produce-throttle did not slow the sends: mean {inside:.1} ms in the window \
                 against {before:.1} ms before"
            );
        }
    }
    // Consumer stall: no poll invoked inside the window, and lag grows.
    let (_, s0, s1) = w
        .iter()
        .find(|(x, _, _)| x == "consumer-stall")
        .unwrap()
        .clone();
    let polls_inside = h
        .events
        .iter()
        .filter(|e| {
            let t = e.time as f64 / 1e9;
            e.kind == gregor_history::EventType::Invoke
                && e.f == gregor_history::F::Poll
                && t > s0 + 1.0
                && t < s1
        })
        .count();
    assert_eq!(polls_inside, 0, "consumers polled while stalled");
    let samples = gregor_history::cluster::read_monitor_samples(
        &dir.join(gregor_history::cluster::MONITOR_FILE),
    );
    assert!(samples.len() > 30, "{} monitor samples", samples.len());
    let lag_at = |t: f64| -> i64 {
        samples
            .iter()
            .filter(|s| (s.time as f64 / 1e9 - t).abs() < 0.6)
            .flat_map(|s| {
                s.lag
                    .iter()
                    .filter(|l| l.source == "positions")
                    .map(|l| l.lag)
            })
            .sum()
    };
    let max_in = |a: f64, b: f64, f: &dyn Fn(&gregor_history::cluster::MonitorSample) -> f64| {
        samples
            .iter()
            .filter(|s| {
                let t = s.time as f64 / 1e9;
                t >= a && t <= b
            })
            .map(f)
            .fold(0.0, f64::max)
    };
    let total_lag = |s: &gregor_history::cluster::MonitorSample| -> f64 {
        s.lag
            .iter()
            .filter(|l| l.source == "positions")
            .map(|l| l.lag as f64)
            .sum()
    };
    let worst_secs = |s: &gregor_history::cluster::MonitorSample| -> f64 {
        s.lag
            .iter()
            .filter(|l| l.source == "positions")
            .filter_map(|l| l.lag_seconds)
            .fold(0.0, f64::max)
    };
    let before = max_in(s0 - 5.0, s0, &total_lag);
    let during = max_in(s0, s1 + 0.5, &total_lag);
    let during_secs = max_in(s0, s1 + 0.5, &worst_secs);
    eprintln!(
        "consumer-stall {s0:.1}-{s1:.1}s: lag before {before} records, during up to {during} records and {during_secs:.1}s; at the end of the window {}",
        lag_at(s1)
    );
    assert!(
        during >= before + 50.0 && during_secs >= 3.0,
        "lag did not grow while stalled: before {before}, during {during} ({during_secs:.1}s)"
    );
    // Fetch throttle: the consumers fall behind under their quota, in
    // records and in seconds, against the few seconds before the window
    // (their median: a fault before may still be draining at its start).
    // Measured: 6–8 records (0.1–0.3 s) before, up to 136–168 records
    // (7.5–7.8 s) in it.
    let (_, f0, f1) = w
        .iter()
        .find(|(x, _, _)| x == "fetch-throttle")
        .unwrap()
        .clone();
    let median_in = |a: f64, b: f64, f: &dyn Fn(&gregor_history::cluster::MonitorSample) -> f64| {
        let mut v: Vec<f64> = samples
            .iter()
            .filter(|s| {
                let t = s.time as f64 / 1e9;
                t >= a && t <= b
            })
            .map(f)
            .collect();
        v.sort_by(|x, y| x.total_cmp(y));
        v.get(v.len() / 2).copied()
    };
    let before = median_in(f0 - 4.0, f0, &total_lag)
        .unwrap_or_else(|| panic!("no monitor sample in the 4 s before fetch-throttle"));
    let before_secs = median_in(f0 - 4.0, f0, &worst_secs).unwrap_or(0.0);
    let during = max_in(f0, f1 + 0.5, &total_lag);
    let during_secs = max_in(f0, f1 + 0.5, &worst_secs);
    eprintln!(
        "fetch-throttle {f0:.1}-{f1:.1}s: lag before {before} records ({before_secs:.1}s), during up to {during} records ({during_secs:.1}s)"
    );
    assert!(
        during >= before + 50.0 && during >= 3.0 * before && during_secs >= before_secs + 2.0,
        "lag did not grow under fetch-throttle: before {before} records ({before_secs:.1}s), \
         during up to {during} ({during_secs:.1}s)"
    );
    // Replication throttle: some partition's ISR below 3 in the window.
    let (_, r0, r1) = w
        .iter()
        .find(|(x, _, _)| x == "replication-throttle")
        .unwrap()
        .clone();
    let inside: Vec<_> = samples
        .iter()
        .filter(|s| {
            let t = s.time as f64 / 1e9;
            t >= r0 && t <= r1 + 0.5
        })
        .collect();
    // A paused broker must not silence the monitor (it is avoided after
    // one unanswered request): samples go on through the window.
    assert!(
        inside.len() as f64 >= (r1 - r0) / 2.0,
        "{} monitor samples in the {:.1} s replication-throttle window",
        inside.len(),
        r1 - r0
    );
    let min_isr = inside
        .iter()
        .flat_map(|s| s.partitions.iter().map(|p| p.isr))
        .min()
        .unwrap_or(3);
    eprintln!(
        "replication-throttle {r0:.1}-{r1:.1}s: smallest ISR {min_isr} in {} samples",
        inside.len()
    );
    assert!(min_isr < 3, "no ISR shrank under replication-throttle");
    for plot in ["consumer-lag", "consumer-lag-seconds", "isr-size"] {
        assert!(
            dir.join(format!("plots/{plot}.svg")).exists(),
            "no {plot} plot"
        );
    }

    // Grafana got each nemesis action, tagged with its fault, with the token.
    let ann = annotations.lock().unwrap().clone();
    let nemesis_events = h
        .events
        .iter()
        .filter(|e| e.process == Process::Nemesis)
        .count();
    assert_eq!(ann.len(), nemesis_events, "{ann:?}");
    for (method, url, auth, body) in &ann {
        assert_eq!(
            (method.as_str(), url.as_str()),
            ("POST", "/api/annotations")
        );
        assert_eq!(auth.as_deref(), Some("Bearer test-token"));
        let j: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(j["tags"][0], "gregor", "{body}");
    }
    assert!(ann
        .iter()
        .any(|(_, _, _, b)| b.contains("\"consumer-stall\"")));
    // The Pushgateway got the verdict and counts once, under the run id.
    let p = pushes.lock().unwrap().clone();
    assert_eq!(p.len(), 1, "{p:?}");
    let (method, url, _, body) = &p[0];
    assert_eq!(method, "PUT");
    assert!(url.starts_with("/metrics/job/gregor/instance/"), "{url}");
    let lines: Vec<std::io::Result<String>> = body.lines().map(|l| Ok(l.to_string())).collect();
    let pushed = prometheus_parse::Scrape::parse(lines.into_iter()).expect("push parses");
    let get = |m: &str, kind: Option<&str>| {
        pushed
            .samples
            .iter()
            .find(|s| s.metric == m && kind.is_none_or(|k| s.labels.get("kind") == Some(k)))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    assert_eq!(get("gregor_run_valid", None), Some(1.0), "{body}");
    assert!(
        get("gregor_run_sends", Some("acknowledged")).unwrap_or(0.0) > 100.0,
        "{body}"
    );
    assert_eq!(get("gregor_run_sends", Some("lost")), Some(0.0), "{body}");
    assert!(
        get("gregor_run_throughput_ops_per_second", None).unwrap_or(0.0) > 10.0,
        "{body}"
    );
    assert!(body.contains("gregor_run_latency_seconds"), "{body}");
}
