//! Send-only throughput: gregor's recorded workload against a bare rdkafka
//! producer loop with the same settings, against the same cluster, in one
//! run, in both of gregor's modes:
//!
//! - one at a time: C tasks, each with its own producer and one send in
//!   flight, against `run_workers` with C workers (`pipeline: 1`, a
//!   producer per worker, as Jepsen's clients have). Goal: gregor records
//!   at least 80% of the bare loop's sends/s.
//! - pipelined: C tasks, each with its own producer and N sends in flight,
//!   against C workers with `pipeline: N`. Goal: at least 50%.
//!
//! `cargo bench -p gregor-workloads --bench producer`
//! Environment: `GREGOR_BENCH_BOOTSTRAP` (an existing cluster, e.g. a
//! 3-node Kafka; default: a one-broker tansu started here),
//! `GREGOR_BENCH_SECS` (per side, default 10), `GREGOR_BENCH_CONCURRENCY`
//! (workers / tasks, default 4), `GREGOR_BENCH_PIPELINE` (sends in flight
//! per pipelining worker, default 64), `GREGOR_BENCH_ACKS` (default all),
//! `GREGOR_BENCH_ROUNDS` (default 2: the sides alternate so drift in the
//! broker's speed hits them alike). Every bench run writes to a fresh topic.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use gregor_deploy::{Cluster, ClusterKind, ClusterSpec};
use gregor_history::Recorder;
use gregor_workloads::{
    ensure_topic, run_workers, ClientSettings, GenConfig, KeyMap, Progress, RunId, TopicSpec,
    WorkloadConfig,
};
use rdkafka::producer::{FutureProducer, FutureRecord};

const PORT: u16 = 19990;
const PARTITIONS: u32 = 8;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A well-mixed hash of `x` (SplitMix64's finalizer).
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The bare loop: `c` tasks, each with a producer of its own configured
/// exactly as gregor's are, keeping `window` sends in flight.
async fn bare(
    settings: &ClientSettings,
    keymap: &KeyMap,
    c: u64,
    window: usize,
    secs: f64,
) -> (u64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..c)
        .map(|w| {
            let p: FutureProducer = settings
                .producer_config(None)
                .create()
                .expect("bare producer");
            let (stop, ok, km) = (stop.clone(), ok.clone(), keymap.clone());
            tokio::spawn(async move {
                let mut v: u64 = w << 40;
                let mut inflight = FuturesUnordered::new();
                while !stop.load(Ordering::Relaxed) {
                    while inflight.len() < window {
                        // Keys spread at random over the partitions, as
                        // gregor's generator spreads them.
                        let key = splitmix(v) % PARTITIONS as u64;
                        let topic = km.topic(key);
                        let (k, val) = (key.to_string(), v.to_string());
                        let r = FutureRecord::to(&topic)
                            .partition(km.partition(key))
                            .key(&k)
                            .payload(&val);
                        match p.send_result(r) {
                            Ok(f) => inflight.push(f),
                            Err(_) => break, // queue full: wait for one
                        }
                        v += 1;
                    }
                    if let Some(Ok(Ok(_))) = inflight.next().await {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
                while inflight.next().await.is_some() {}
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let n = ok.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for t in tasks {
        let _ = t.await;
    }
    (n, elapsed)
}

/// gregor's runner: send-only generator, unlimited rate, every op recorded.
async fn gregor(
    settings: &ClientSettings,
    keymap: &KeyMap,
    c: u64,
    pipeline: u64,
    secs: f64,
    seed: u64,
) -> (u64, f64, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("history.jsonl");
    let rec = Recorder::create(&path).expect("history file");
    let cfg = WorkloadConfig {
        gen: GenConfig {
            seed,
            keys: PARTITIONS as u64,
            max_writes_per_key: None,
            send_weight: 1,
            poll_weight: 0,
            txn_weight: 0,
            max_mops: 1,
            reassign_probability: 0.0,
            first_value: seed << 40,
            ..GenConfig::default()
        },
        settings: settings.clone(),
        keymap: keymap.clone(),
        topic: TopicSpec {
            partitions: PARTITIONS,
            ..TopicSpec::default()
        },
        concurrency: c,
        rate: 0.0,
        crash_every: None,
        shared_producer: false,
        first_process: 0,
        pipeline,
    };
    let progress = Arc::new(Progress::default());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let run = tokio::spawn(run_workers(cfg, rec.clone(), rx, progress.clone()));
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let n = progress.ok.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let _ = tx.send(true);
    let end = run.await.expect("workers");
    assert!(end.errors.is_empty(), "{:?}", end.errors);
    rec.flush().expect("history written");
    let events = rec.len();
    (n, elapsed, events)
}

#[derive(Default)]
struct Tally(u64, f64);

impl Tally {
    fn add(&mut self, n: u64, t: f64) -> f64 {
        self.0 += n;
        self.1 += t;
        n as f64 / t
    }
    fn rate(&self) -> f64 {
        self.0 as f64 / self.1.max(1e-9)
    }
}

fn main() {
    let secs: f64 = env("GREGOR_BENCH_SECS", 10.0);
    let c: u64 = env("GREGOR_BENCH_CONCURRENCY", 4);
    let n: u64 = env("GREGOR_BENCH_PIPELINE", 64);
    let rounds: u64 = env("GREGOR_BENCH_ROUNDS", 2);
    let acks: gregor_history::Acks = env("GREGOR_BENCH_ACKS", gregor_history::Acks::All);
    let attach: Option<String> = std::env::var("GREGOR_BENCH_BOOTSTRAP").ok();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cluster = match &attach {
        Some(_) => None,
        None => {
            let spec = ClusterSpec::new(ClusterKind::Tansu, dir.path().join("cluster"))
                .with_brokers(1)
                .with_base_port(PORT);
            Some(Cluster::up(spec).expect("a one-broker tansu cluster (is tansu installed?)"))
        }
    };
    let bootstrap = match (&attach, &cluster) {
        (Some(b), _) => b.clone(),
        (None, Some(c)) => c.bootstrap(),
        (None, None) => unreachable!("a cluster was started"),
    };
    let settings = ClientSettings {
        bootstrap: bootstrap.clone(),
        acks,
        idempotence: acks == gregor_history::Acks::All,
        ..ClientSettings::default()
    };
    let keymap = KeyMap::new(RunId::generate().topic("bench"), PARTITIONS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        ensure_topic(
            &settings,
            &keymap.topic(0),
            &TopicSpec {
                partitions: PARTITIONS,
                ..TopicSpec::default()
            },
            Duration::from_secs(30),
        )
        .await
        .expect("topic");
        println!(
            "send-only on {bootstrap} (topic {}), acks={acks}, idempotence={}, {c} worker(s), pipeline {n}, {secs} s per side, {rounds} round(s)",
            keymap.topic(0),
            settings.idempotence
        );
        let (mut b1, mut g1, mut bn, mut gn) = (Tally::default(), Tally::default(), Tally::default(), Tally::default());
        for round in 0..rounds {
            let (k, t) = bare(&settings, &keymap, c, 1, secs).await;
            let r = b1.add(k, t);
            println!("  round {round}: bare, 1 in flight per producer     {k:>8} sends in {t:.1} s = {r:>8.0}/s");
            let (k, t, ev) = gregor(&settings, &keymap, c, 1, secs, 4 * round + 1).await;
            let r = g1.add(k, t);
            println!("  round {round}: gregor, pipeline 1                 {k:>8} sends in {t:.1} s = {r:>8.0}/s ({ev} events recorded)");
            let (k, t) = bare(&settings, &keymap, c, n as usize, secs).await;
            let r = bn.add(k, t);
            println!("  round {round}: bare, {n} in flight per producer    {k:>8} sends in {t:.1} s = {r:>8.0}/s");
            let (k, t, ev) = gregor(&settings, &keymap, c, n, secs, 4 * round + 3).await;
            let r = gn.add(k, t);
            println!("  round {round}: gregor, pipeline {n}                {k:>8} sends in {t:.1} s = {r:>8.0}/s ({ev} events recorded)");
        }
        println!(
            "one at a time: gregor {:.0}/s = {:.1}% of bare {:.0}/s (goal >= 80%); per worker {:.0}/s vs {:.0}/s",
            g1.rate(), 100.0 * g1.rate() / b1.rate(), b1.rate(), g1.rate() / c as f64, b1.rate() / c as f64
        );
        println!(
            "pipelined ({n} in flight): gregor {:.0}/s = {:.1}% of bare {:.0}/s (goal >= 50%)",
            gn.rate(), 100.0 * gn.rate() / bn.rate(), bn.rate()
        );
    });
    if let Some(c) = cluster.as_mut() {
        let _ = c.down();
    }
}
