//! Send-only throughput: gregor's recorded workload against a bare rdkafka
//! producer loop with the same settings, against the same one-broker tansu
//! cluster, in one run. The goal: gregor records at least 80% of
//! the bare loop's ops/s.
//!
//! Three sides, each with C sends in flight: the bare loop on one shared
//! producer, the bare loop with a producer per task, and gregor's
//! `run_workers` (a producer per worker process, as Jepsen's clients
//! have). The second isolates gregor's own per-op cost (generator,
//! recording) from the cost of its topology: one producer batches the C
//! in-flight sends into fewer Produce requests, which tansu (one SQLite
//! transaction per request) rewards.
//!
//! `cargo bench -p gregor-workloads --bench producer`
//! Environment: `GREGOR_BENCH_SECS` (per side, default 10),
//! `GREGOR_BENCH_CONCURRENCY` (in-flight sends, default 8),
//! `GREGOR_BENCH_ACKS` (default all), `GREGOR_BENCH_ROUNDS` (default 2:
//! bare, gregor, bare, gregor — alternated so drift in the broker's speed
//! hits both sides alike).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gregor_deploy::{Cluster, ClusterKind, ClusterSpec};
use gregor_history::Recorder;
use gregor_workloads::{
    ensure_topic, run_workers, ClientSettings, GenConfig, KeyMap, Progress, TopicSpec,
    WorkloadConfig,
};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

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

/// The bare loop: `c` tasks, each with one send in flight at a time, on
/// one shared FutureProducer (`shared`) or one each (as gregor's worker
/// processes have), configured exactly as gregor's producers are.
async fn bare(
    settings: &ClientSettings,
    keymap: &KeyMap,
    c: u64,
    secs: f64,
    shared: bool,
) -> (u64, f64) {
    let make = || -> Arc<FutureProducer> {
        Arc::new(
            settings
                .producer_config(None)
                .create()
                .expect("bare producer"),
        )
    };
    let one = make();
    let producers: Vec<Arc<FutureProducer>> = (0..c)
        .map(|_| if shared { one.clone() } else { make() })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..c)
        .map(|w| {
            let (p, stop, ok, km) = (
                producers[w as usize].clone(),
                stop.clone(),
                ok.clone(),
                keymap.clone(),
            );
            tokio::spawn(async move {
                let mut v: u64 = w << 40;
                while !stop.load(Ordering::Relaxed) {
                    // Keys spread at random over the partitions, as
                    // gregor's generator spreads them: sending in lockstep
                    // to one partition would let librdkafka batch all the
                    // tasks' sends into one request, which no workload does.
                    let key = splitmix(v) % PARTITIONS as u64;
                    let topic = km.topic(key);
                    let (k, val) = (key.to_string(), v.to_string());
                    let r = FutureRecord::to(&topic)
                        .partition(km.partition(key))
                        .key(&k)
                        .payload(&val);
                    if p.send(r, Timeout::Never).await.is_ok() {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    v += 1;
                }
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
    secs: f64,
    seed: u64,
    shared_producer: bool,
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
        shared_producer,
        first_process: 0,
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

fn main() {
    let secs: f64 = env("GREGOR_BENCH_SECS", 10.0);
    let c: u64 = env("GREGOR_BENCH_CONCURRENCY", 8);
    let rounds: u64 = env("GREGOR_BENCH_ROUNDS", 2);
    let acks: String = env("GREGOR_BENCH_ACKS", "all".to_string());
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = ClusterSpec::new(ClusterKind::Tansu, dir.path().join("cluster"))
        .with_brokers(1)
        .with_base_port(PORT);
    let mut cluster = Cluster::up(spec).expect("a one-broker tansu cluster (is tansu installed?)");
    let settings = ClientSettings {
        bootstrap: cluster.bootstrap(),
        acks: acks.clone(),
        idempotence: acks == "all",
        ..ClientSettings::default()
    };
    let keymap = KeyMap::new("bench", PARTITIONS);
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
            "send-only, acks={acks}, idempotence={}, {c} in flight, {secs} s per side, {rounds} round(s)",
            settings.idempotence
        );
        let (mut bare_n, mut bare_t, mut greg_n, mut greg_t) = (0, 0.0, 0, 0.0);
        let (mut own_n, mut own_t) = (0, 0.0);
        let (mut gs_n, mut gs_t) = (0, 0.0);
        for round in 0..rounds {
            let (n, t) = bare(&settings, &keymap, c, secs, true).await;
            println!("  round {round}: bare loop, 1 shared producer   {n:>8} sends in {t:.1} s = {:>8.0} ops/s", n as f64 / t);
            bare_n += n;
            bare_t += t;
            let (n, t) = bare(&settings, &keymap, c, secs, false).await;
            println!("  round {round}: bare loop, {c} producers        {n:>8} sends in {t:.1} s = {:>8.0} ops/s", n as f64 / t);
            own_n += n;
            own_t += t;
            let (n, t, events) = gregor(&settings, &keymap, c, secs, 2 * round + 1, false).await;
            println!("  round {round}: gregor, a producer per worker  {n:>8} sends in {t:.1} s = {:>8.0} ops/s ({events} events recorded)", n as f64 / t);
            greg_n += n;
            greg_t += t;
            let (n, t, events) = gregor(&settings, &keymap, c, secs, 2 * round + 2, true).await;
            println!("  round {round}: gregor, shared producer        {n:>8} sends in {t:.1} s = {:>8.0} ops/s ({events} events recorded)", n as f64 / t);
            gs_n += n;
            gs_t += t;
        }
        let (b, o, g) = (bare_n as f64 / bare_t, own_n as f64 / own_t, greg_n as f64 / greg_t);
        let gs = gs_n as f64 / gs_t;
        println!("bare, shared producer {b:.0} ops/s; bare, a producer per task {o:.0} ops/s; gregor per worker {g:.0} ops/s; gregor shared {gs:.0} ops/s");
        println!("same producer layout: gregor (shared) = {:.1}% of the shared-producer loop; gregor (per worker) = {:.1}% of the producer-per-task loop (goal >= 80%)", 100.0 * gs / b, 100.0 * g / o);
    });
    let _ = cluster.down();
}
