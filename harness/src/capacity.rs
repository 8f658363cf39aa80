//! `gregor capacity`: how much produce load the cluster takes before
//! latency or errors break.
//!
//! The ramp offers records in steps of fixed rate (`start-rate`, then
//! multiplied by `step-factor`, up to `max-rate`), each for `step-secs`,
//! *open loop*: record *i* of a step is due at `i / rate` seconds and its
//! latency is measured from that due time to its acknowledgement, so a
//! cluster that falls behind shows it as latency instead of quietly
//! lowering the offered rate (no coordinated omission). A step is
//! sustained when its p99 latency, its ratio of failed sends and its
//! acknowledged rate (from its first completion to its last) stay within
//! the limits.
//! After the first step that is not sustained, `refine` more steps bisect
//! between it and the last one that was. The highest sustained offered
//! rate is the answer.
//!
//! Records go through one librdkafka producer (`ThreadedProducer`, the
//! scenario's client settings: acks, idempotence, `client.producer`
//! overrides) to a topic of the run's own, spread evenly over its
//! partitions. Latencies go to an HDR histogram per step (1 µs to 10 min,
//! 3 significant digits). Optional faults (`--nemesis`, a local cluster
//! only) run during the steps as they do in `gregor run`, recorded in the
//! run's `history.jsonl`; each step lists the faults that started in it.
//!
//! The run directory holds `capacity.json` ([`CapacityReport`]),
//! `capacity.prom` (Prometheus text), `plots/capacity.svg|png` and the
//! table printed at the end.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use gregor_history::capacity::{
    CapacityLimits, CapacityReport, CapacityStep, CAPACITY_FILE, QUANTILES,
};
use gregor_history::{Event, EventType, Process, Recorder};
use gregor_workloads::{ensure_topic, RunId, TopicSpec};
use hdrhistogram::Histogram;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::scenario::CapacitySection;
use crate::{run, ui};

/// The ramp's defaults: one definition, shown by `--help` and the README.
pub mod defaults {
    pub const START_RATE: f64 = 1000.0;
    pub const STEP_FACTOR: f64 = 1.5;
    pub const MAX_RATE: f64 = 1_000_000.0;
    pub const STEP_SECS: f64 = 10.0;
    pub const P99_LIMIT_MS: f64 = 100.0;
    pub const ERROR_LIMIT: f64 = 0.001;
    pub const MIN_ACHIEVED_RATIO: f64 = 0.95;
    pub const VALUE_BYTES: usize = 100;
    pub const REFINE: usize = 2;
    /// How long a step's records may take to complete after it ends.
    pub const DRAIN_SECS: f64 = 30.0;
}

/// The ramp, resolved from the scenario's `capacity:` section.
#[derive(Clone, Debug, PartialEq)]
pub struct Ramp {
    pub start_rate: f64,
    pub step_factor: f64,
    pub max_rate: f64,
    pub step: Duration,
    pub limits: CapacityLimits,
    pub value_bytes: usize,
    pub refine: usize,
    pub drain: Duration,
}

impl Ramp {
    pub fn from_section(c: &CapacitySection) -> Ramp {
        use defaults::*;
        Ramp {
            start_rate: c.start_rate.unwrap_or(START_RATE),
            step_factor: c.step_factor.unwrap_or(STEP_FACTOR),
            max_rate: c.max_rate.unwrap_or(MAX_RATE),
            step: Duration::from_secs_f64(c.step_secs.unwrap_or(STEP_SECS)),
            limits: CapacityLimits {
                p99_ms: c.p99_limit_ms.unwrap_or(P99_LIMIT_MS),
                error_ratio: c.error_limit.unwrap_or(ERROR_LIMIT),
                min_achieved_ratio: MIN_ACHIEVED_RATIO,
            },
            value_bytes: c.value_bytes.unwrap_or(VALUE_BYTES),
            refine: c.refine.unwrap_or(REFINE),
            drain: Duration::from_secs_f64(DRAIN_SECS),
        }
    }
}

/// Chooses the next rate to offer from the steps so far; `None` ends the
/// ramp, with the reason. Pure, so the search is tested without a cluster.
pub fn next_rate(ramp: &Ramp, steps: &[CapacityStep]) -> Result<f64, String> {
    let Some(last) = steps.last() else {
        return Ok(ramp.start_rate.min(ramp.max_rate));
    };
    let best = steps
        .iter()
        .filter(|s| s.sustained)
        .map(|s| s.offered_rate)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    let first_failure = steps.iter().position(|s| !s.sustained);
    match first_failure {
        None => {
            if last.offered_rate >= ramp.max_rate {
                return Err(format!(
                    "reached max-rate {} with every step sustained",
                    ramp.max_rate
                ));
            }
            Ok((last.offered_rate * ramp.step_factor).min(ramp.max_rate))
        }
        Some(i) => {
            let refined = steps.len() - 1 - i;
            let why = steps[i].why.clone().unwrap_or_default();
            if refined >= ramp.refine {
                return Err(format!(
                    "limit crossed at {} records/s: {why}",
                    steps[i].offered_rate
                ));
            }
            let Some(best) = best else {
                return Err(format!(
                    "the first step ({} records/s) was not sustained: {why}",
                    steps[0].offered_rate
                ));
            };
            // The lowest unsustained rate above the best sustained one.
            let worst = steps
                .iter()
                .filter(|s| !s.sustained && s.offered_rate > best)
                .map(|s| s.offered_rate)
                .fold(f64::INFINITY, f64::min);
            if !worst.is_finite() || worst - best < 1.0 {
                return Err(format!(
                    "limit crossed at {} records/s: {why}",
                    steps[i].offered_rate
                ));
            }
            Ok(((best + worst) / 2.0).round())
        }
    }
}

/// Judges a measured step against the limits; sets `sustained` and `why`.
pub fn judge(step: &mut CapacityStep, limits: &CapacityLimits) {
    let mut why = Vec::new();
    match step.p99_ms() {
        Some(p99) if p99 > limits.p99_ms => {
            why.push(format!("p99 {p99:.1} ms > {} ms", limits.p99_ms))
        }
        None => why.push("no record was acknowledged".to_string()),
        _ => {}
    }
    if step.error_ratio() > limits.error_ratio {
        why.push(format!(
            "{} of {} sends failed ({:.3}% > {:.3}%)",
            step.errors,
            step.sent,
            step.error_ratio() * 100.0,
            limits.error_ratio * 100.0
        ));
    }
    if step.achieved_rate < step.offered_rate * limits.min_achieved_ratio {
        why.push(format!(
            "acknowledged {:.0}/s of {:.0}/s offered",
            step.achieved_rate, step.offered_rate
        ));
    }
    step.sustained = why.is_empty();
    step.why = (!why.is_empty()).then(|| why.join("; "));
}

/// Per-step counters the delivery callback fills.
struct StepStats {
    hist: Histogram<u64>,
    acked: u64,
    errors: u64,
    first_done: Option<Instant>,
    last_done: Option<Instant>,
}

impl StepStats {
    fn new() -> StepStats {
        StepStats {
            // 1 µs .. 10 min at 3 significant digits.
            hist: Histogram::new_with_bounds(1, 600_000_000, 3).expect("static bounds are valid"),
            acked: 0,
            errors: 0,
            first_done: None,
            last_done: None,
        }
    }
}

/// A record's step and due time, handed back on delivery.
struct Due {
    step: usize,
    at: Instant,
}

struct Ctx {
    steps: Arc<Mutex<Vec<StepStats>>>,
    done: Arc<AtomicU64>,
}

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = Box<Due>;

    fn delivery(&self, result: &DeliveryResult<'_>, due: Box<Due>) {
        let now = Instant::now();
        let mut steps = self.steps.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = steps.get_mut(due.step) {
            match result {
                Ok(_) => {
                    let us = now.saturating_duration_since(due.at).as_micros() as u64;
                    s.hist.saturating_record(us.max(1));
                    s.acked += 1;
                }
                Err(_) => s.errors += 1,
            }
            s.first_done.get_or_insert(now);
            s.last_done = Some(now);
        }
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// The producer and what its delivery callback fills.
struct Driver {
    producer: ThreadedProducer<Ctx>,
    steps: Arc<Mutex<Vec<StepStats>>>,
    done: Arc<AtomicU64>,
    topic: String,
    partitions: u32,
}

/// Offers `rate` records/s for `ramp.step`, waits for them to complete,
/// and measures the step.
fn run_step(
    d: &Driver,
    index: usize,
    rate: f64,
    ramp: &Ramp,
    stop: &AtomicBool,
    on_tick: &mut dyn FnMut(Duration, u64),
) -> CapacityStep {
    let (producer, ctx_steps, done, topic, partitions) = (
        &d.producer,
        &d.steps,
        &d.done,
        d.topic.as_str(),
        d.partitions,
    );
    ctx_steps
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(StepStats::new());
    let value = vec![b'g'; ramp.value_bytes];
    let start = Instant::now();
    let total = (rate * ramp.step.as_secs_f64()).round() as u64;
    let done_before = done.load(Ordering::Relaxed);
    let mut sent = 0u64;
    let mut refused = 0u64;
    let mut last_tick = start;
    while sent + refused < total && !stop.load(Ordering::SeqCst) {
        let i = sent + refused;
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        let now = Instant::now();
        if due > now {
            std::thread::sleep((due - now).min(Duration::from_millis(1)));
            continue;
        }
        let key = (i % partitions as u64).to_string();
        let record = BaseRecord::with_opaque_to(
            topic,
            Box::new(Due {
                step: index,
                at: due,
            }),
        )
        .partition((i % partitions as u64) as i32)
        .key(&key)
        .payload(&value);
        match producer.send(record) {
            Ok(()) => sent += 1,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                // The client cannot hold more: a failed send, counted.
                refused += 1
            }
            Err(_) => refused += 1,
        }
        if now.duration_since(last_tick) >= Duration::from_millis(250) {
            last_tick = now;
            on_tick(start.elapsed(), sent + refused);
        }
    }
    let offered_for = start.elapsed();
    // Drain: every record of the step completes (acked or failed) or the
    // drain time runs out; what is still open then counts as failed.
    let drain_start = Instant::now();
    while done.load(Ordering::Relaxed) - done_before < sent
        && drain_start.elapsed() < ramp.drain
        && !stop.load(Ordering::SeqCst)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let steps = ctx_steps.lock().unwrap_or_else(|p| p.into_inner());
    let s = &steps[index];
    let open = sent.saturating_sub(s.acked + s.errors);
    let last = s.last_done.unwrap_or(start + offered_for);
    let drain_seconds = last
        .saturating_duration_since(start + offered_for)
        .as_secs_f64();
    // Acknowledged rate: acks over the time between the first and the last
    // completion, less the spread of the latency (p99 - p50): a cluster that
    // keeps up acknowledges at the offered rate whatever its steady latency
    // and jitter; one that falls behind stretches the span by its latency
    // growth, which the spread only partly covers.
    let spread = if s.acked > 0 {
        (s.hist.value_at_quantile(0.99) - s.hist.value_at_quantile(0.5)) as f64 / 1e6
    } else {
        0.0
    };
    let span = match (s.first_done, s.last_done) {
        (Some(a), Some(b)) => (b.saturating_duration_since(a).as_secs_f64() - spread)
            .max(offered_for.as_secs_f64() * 0.5),
        _ => 0.0,
    };
    let achieved_rate = if s.acked >= 2 && span > 0.0 {
        (s.acked - 1) as f64 / span
    } else {
        0.0
    };
    let mut step = CapacityStep {
        index,
        offered_rate: rate,
        achieved_rate,
        seconds: offered_for.as_secs_f64(),
        drain_seconds,
        sent: sent + refused,
        acked: s.acked,
        errors: s.errors + refused + open,
        latency_ms: if s.acked > 0 {
            QUANTILES
                .iter()
                .map(|q| s.hist.value_at_quantile(*q) as f64 / 1000.0)
                .collect()
        } else {
            Vec::new()
        },
        max_latency_ms: s.hist.max() as f64 / 1000.0,
        sustained: false,
        why: None,
        faults: Vec::new(),
    };
    judge(&mut step, &ramp.limits);
    step
}

/// What a capacity run leaves.
pub struct CapacityOutcome {
    pub run_dir: PathBuf,
    pub report: CapacityReport,
}

/// Runs the ramp of plan `s` (its cluster, client settings, topic,
/// nemesis and `capacity:` section) into a run directory under `store_dir`.
pub async fn capacity(
    s: &crate::plan::RunPlan,
    store_dir: &Path,
    log: &ui::Log,
) -> anyhow::Result<CapacityOutcome> {
    let ramp = Ramp::from_section(&s.capacity);
    let run_dir = run::open_run_dir(s, store_dir, "capacity", log)?;

    let interrupted = Arc::new(AtomicBool::new(false));
    run::spawn_signal_watch(interrupted.clone(), Arc::new(AtomicBool::new(false)));
    let target = run::bring_up(s, &run_dir, log)?;
    let result = ramp_on(s, &ramp, &run_dir, &target, log, interrupted).await;
    target.down_if_started(log);
    let report = result?;
    Ok(CapacityOutcome { run_dir, report })
}

async fn ramp_on(
    s: &crate::plan::RunPlan,
    ramp: &Ramp,
    run_dir: &Path,
    target: &run::Target_,
    log: &ui::Log,
    interrupted: Arc<AtomicBool>,
) -> anyhow::Result<CapacityReport> {
    let run_id = RunId::generate();
    let settings = run::client_settings(s, &target.bootstrap, &run_id);
    settings
        .validate()
        .context("the client settings of the scenario")?;
    let wl = run::workload_config(s, settings.clone(), &run_id);
    let topic = format!("{}-capacity", wl.keymap.topic(0));
    let partitions = wl.topic.partitions;
    let spec = TopicSpec {
        partitions,
        ..wl.topic.clone()
    };
    let info = ensure_topic(&settings, &topic, &spec, Duration::from_secs(30))
        .await
        .with_context(|| format!("cannot set up topic {topic}"))?;
    log.line(&format!(
        "topic {} ready: {} partitions, replication factor {}",
        info.name, info.partitions, info.replication
    ));

    let rec =
        Recorder::create(&run_dir.join("history.jsonl")).context("cannot create history.jsonl")?;
    let nemesis_stop = Arc::new(AtomicBool::new(false));
    let nemesis = run::spawn_nemesis(
        s,
        target,
        &settings,
        &wl,
        rec.clone(),
        nemesis_stop.clone(),
        None,
        log,
    )?;
    let faults: Vec<String> = s.nemesis.faults.iter().map(|f| f.to_string()).collect();

    let steps_stats = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicU64::new(0));
    let mut cfg = settings.producer_config(None);
    // Large enough a queue that the client, not the queue, is measured.
    cfg.set("queue.buffering.max.messages", "1000000");
    let producer: ThreadedProducer<Ctx> = cfg
        .create_with_context(Ctx {
            steps: steps_stats.clone(),
            done: done.clone(),
        })
        .context("cannot create the producer")?;

    // Warm-up, not measured: the producer's id, every partition's leader
    // and a connection to each broker exist before the first step, so its
    // first records do not pay for them.
    let warm_start = Instant::now();
    for p in 0..partitions {
        let record = BaseRecord::with_opaque_to(
            &topic,
            Box::new(Due {
                step: usize::MAX,
                at: Instant::now(),
            }),
        )
        .partition(p as i32)
        .key("warm-up")
        .payload("warm-up");
        if let Err((e, _)) = producer.send(record) {
            return Err(anyhow!("cannot send a warm-up record: {e}"));
        }
    }
    while done.load(Ordering::Relaxed) < partitions as u64 && warm_start.elapsed() < ramp.drain {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    log.line(&format!(
        "producer warmed up in {:.2}s ({} of {partitions} warm-up records completed)",
        warm_start.elapsed().as_secs_f64(),
        done.load(Ordering::Relaxed)
    ));

    let ramp2 = ramp.clone();
    let log_fancy = log.fancy && !log.quiet;
    let tap = rec.tap();
    let stop = interrupted.clone();
    let driver = Driver {
        producer,
        steps: steps_stats,
        done: done.clone(),
        topic: topic.clone(),
        partitions,
    };
    // The ramp runs on a thread of its own: the schedule needs sub-ms sleeps.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let handle = std::thread::Builder::new()
        .name("capacity".into())
        .spawn(move || {
            let mut steps: Vec<CapacityStep> = Vec::new();
            let stopped = loop {
                if stop.load(Ordering::SeqCst) {
                    break "interrupted".to_string();
                }
                let rate = match next_rate(&ramp2, &steps) {
                    Ok(r) => r,
                    Err(why) => break why,
                };
                let bar = log_fancy.then(|| {
                    let b = indicatif::ProgressBar::new(ramp2.step.as_secs().max(1));
                    b.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{spinner} step {prefix} [{bar:30}] {pos}/{len}s {msg}",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    b.set_prefix(format!("{} at {rate:.0}/s", steps.len() + 1));
                    b
                });
                let mut step = run_step(
                    &driver,
                    steps.len(),
                    rate,
                    &ramp2,
                    &stop,
                    &mut |elapsed, n| {
                        if let Some(b) = &bar {
                            b.set_position(elapsed.as_secs());
                            b.set_message(format!("{n} records"));
                        }
                    },
                );
                if let Some(b) = bar {
                    b.finish_and_clear();
                }
                step.faults = nemesis_since(&tap);
                let _ = tx.send(step_line(&step));
                steps.push(step);
            };
            driver.producer.flush(Duration::from_secs(10)).ok();
            (steps, stopped)
        })?;
    // Lines from the ramp thread, as they come.
    let (steps, stopped) = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        while let Ok(l) = rx.recv() {
            lines.push(l);
        }
        (lines, handle.join())
    })
    .await
    .map_err(|e| anyhow!("the capacity thread failed: {e}"))
    .and_then(|(lines, joined)| {
        for l in &lines {
            log.line(l);
        }
        joined.map_err(|_| anyhow!("the capacity thread panicked"))
    })?;
    nemesis_stop.store(true, Ordering::SeqCst);
    if let Some(t) = nemesis {
        if t.join().is_err() {
            log.line("warning: the nemesis thread panicked; healing from here");
            run::heal_all(target, &rec);
        }
    }
    rec.flush().context("cannot write history.jsonl")?;

    let mut report = CapacityReport {
        limits: ramp.limits.clone(),
        value_bytes: ramp.value_bytes,
        partitions,
        acks: settings.acks,
        idempotence: settings.idempotence,
        cluster: target.label.clone(),
        faults,
        sustainable_rate: None,
        stopped,
        steps,
    };
    report.sustainable_rate = report.best().map(|b| b.offered_rate);
    write_outputs(run_dir, &report, log)?;
    Ok(report)
}

/// Names of the nemesis actions recorded since the last call.
fn nemesis_since(tap: &std::sync::mpsc::Receiver<Event>) -> Vec<String> {
    tap.try_iter()
        .filter(|e| e.process == Process::Nemesis && e.kind == EventType::Info)
        .map(|e| e.f.to_string())
        .collect()
}

fn step_line(s: &CapacityStep) -> String {
    format!(
        "step {}: offered {:.0}/s, acknowledged {:.0}/s, p50 {} ms, p99 {} ms, errors {}/{} — {}",
        s.index + 1,
        s.offered_rate,
        s.achieved_rate,
        s.latency_at(0.5).map_or("-".into(), |v| format!("{v:.1}")),
        s.p99_ms().map_or("-".into(), |v| format!("{v:.1}")),
        s.errors,
        s.sent,
        match &s.why {
            None => "sustained".to_string(),
            Some(w) => format!("not sustained: {w}"),
        }
    )
}

/// The table printed at the end (and saved as `capacity.txt`).
pub fn table(r: &CapacityReport) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:>4} {:>11} {:>11} {:>9} {:>9} {:>9} {:>10} {:>9}  verdict\n",
        "step", "offered/s", "acked/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "faults"
    ));
    let mut order: Vec<&CapacityStep> = r.steps.iter().collect();
    order.sort_by(|a, b| a.offered_rate.total_cmp(&b.offered_rate));
    let q = |s: &CapacityStep, x: f64| {
        s.latency_at(x)
            .map_or("-".to_string(), |v| format!("{v:.2}"))
    };
    for s in order {
        out.push_str(&format!(
            "{:>4} {:>11.0} {:>11.0} {:>9} {:>9} {:>9} {:>10} {:>9}  {}\n",
            s.index + 1,
            s.offered_rate,
            s.achieved_rate,
            q(s, 0.5),
            q(s, 0.99),
            q(s, 0.999),
            s.errors,
            s.faults.len(),
            s.why.as_deref().unwrap_or("sustained")
        ));
    }
    out.push_str(&match r.sustainable_rate {
        Some(v) => format!(
            "highest sustainable rate: {v:.0} records/s of {} bytes (p99 <= {} ms, errors <= {}%)\n",
            r.value_bytes,
            r.limits.p99_ms,
            r.limits.error_ratio * 100.0
        ),
        None => "no step was sustainable\n".to_string(),
    });
    out.push_str(&format!("ramp ended: {}\n", r.stopped));
    out
}

/// The report as Prometheus text (OpenMetrics), for a pushgateway or a
/// node-exporter textfile collector.
pub fn prometheus_text(r: &CapacityReport) -> String {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;
    type G = Gauge<f64, AtomicU64>;
    type L = Vec<(String, String)>;
    let mut reg = <Registry>::default();
    let best = G::default();
    best.set(r.sustainable_rate.unwrap_or(0.0));
    reg.register(
        "gregor_capacity_sustainable_rate",
        "Highest offered records per second that stayed within the limits (0: none)",
        best,
    );
    let offered = Family::<L, G>::default();
    let achieved = Family::<L, G>::default();
    let latency = Family::<L, G>::default();
    let errors = Family::<L, G>::default();
    let sustained = Family::<L, G>::default();
    for s in &r.steps {
        let step = vec![("step".to_string(), (s.index + 1).to_string())];
        offered.get_or_create(&step).set(s.offered_rate);
        achieved.get_or_create(&step).set(s.achieved_rate);
        errors.get_or_create(&step).set(s.errors as f64);
        sustained
            .get_or_create(&step)
            .set(if s.sustained { 1.0 } else { 0.0 });
        for (q, v) in QUANTILES.iter().zip(&s.latency_ms) {
            let mut l = step.clone();
            l.push(("quantile".into(), q.to_string()));
            latency.get_or_create(&l).set(v / 1000.0);
        }
    }
    reg.register(
        "gregor_capacity_step_offered_rate",
        "Records per second a step offered",
        offered,
    );
    reg.register(
        "gregor_capacity_step_achieved_rate",
        "Acknowledged records per second of a step",
        achieved,
    );
    reg.register(
        "gregor_capacity_step_latency_seconds",
        "Send latency quantiles of a step, from due time to acknowledgement",
        latency,
    );
    reg.register(
        "gregor_capacity_step_errors",
        "Failed sends of a step",
        errors,
    );
    reg.register(
        "gregor_capacity_step_sustained",
        "1 if the step stayed within the limits",
        sustained,
    );
    let mut out = String::new();
    // Encoding into a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}

fn write_outputs(run_dir: &Path, r: &CapacityReport, log: &ui::Log) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(r).context("cannot serialize the capacity report")?;
    std::fs::write(run_dir.join(CAPACITY_FILE), json).context("cannot write capacity.json")?;
    std::fs::write(run_dir.join("capacity.prom"), prometheus_text(r))
        .context("cannot write capacity.prom")?;
    let t = table(r);
    std::fs::write(run_dir.join("capacity.txt"), &t).context("cannot write capacity.txt")?;
    match gregor_reports::plots::capacity(r) {
        Ok(plots) => {
            let dir = run_dir.join("plots");
            std::fs::create_dir_all(&dir).context("cannot create plots/")?;
            for plot in plots {
                std::fs::write(dir.join(format!("{}.svg", plot.name)), &plot.svg)?;
                std::fs::write(dir.join(format!("{}.png", plot.name)), &plot.png)?;
            }
        }
        Err(e) => log.line(&format!("warning: cannot draw the capacity plot: {e}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> Ramp {
        Ramp::from_section(&CapacitySection {
            start_rate: Some(1000.0),
            step_factor: Some(2.0),
            max_rate: Some(16000.0),
            refine: Some(2),
            ..Default::default()
        })
    }

    fn step(i: usize, rate: f64, p99: f64, errors: u64, acked_ratio: f64) -> CapacityStep {
        let mut s = CapacityStep {
            index: i,
            offered_rate: rate,
            achieved_rate: rate * acked_ratio,
            seconds: 10.0,
            drain_seconds: 0.0,
            sent: 10_000,
            acked: 10_000 - errors,
            errors,
            latency_ms: vec![p99 / 4.0, p99 / 2.0, p99, p99 * 2.0],
            max_latency_ms: p99 * 3.0,
            sustained: false,
            why: None,
            faults: vec![],
        };
        judge(&mut s, &ramp().limits);
        s
    }

    #[test]
    fn the_documented_defaults_are_the_ramp_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/default.yaml");
        let documented = crate::scenario::Scenario::load(std::path::Path::new(path)).unwrap();
        assert_eq!(
            Ramp::from_section(&documented.capacity),
            Ramp::from_section(&CapacitySection::default())
        );
    }

    #[test]
    fn judge_names_every_limit_crossed() {
        let ok = step(0, 1000.0, 20.0, 0, 1.0);
        assert!(ok.sustained, "{:?}", ok.why);
        let slow = step(0, 1000.0, 250.0, 0, 1.0);
        assert!(!slow.sustained);
        assert!(slow
            .why
            .as_deref()
            .unwrap()
            .contains("p99 250.0 ms > 100 ms"));
        let lossy = step(0, 1000.0, 20.0, 50, 1.0);
        assert!(lossy
            .why
            .as_deref()
            .unwrap()
            .contains("50 of 10000 sends failed"));
        let behind = step(0, 1000.0, 20.0, 0, 0.5);
        assert!(behind
            .why
            .as_deref()
            .unwrap()
            .contains("acknowledged 500/s of 1000/s"));
    }

    #[test]
    fn the_ramp_multiplies_then_bisects_then_stops() {
        let r = ramp();
        let mut steps = vec![];
        assert_eq!(next_rate(&r, &steps), Ok(1000.0));
        steps.push(step(0, 1000.0, 10.0, 0, 1.0));
        assert_eq!(next_rate(&r, &steps), Ok(2000.0));
        steps.push(step(1, 2000.0, 10.0, 0, 1.0));
        assert_eq!(next_rate(&r, &steps), Ok(4000.0));
        steps.push(step(2, 4000.0, 500.0, 0, 1.0));
        // Bisect between 2000 (sustained) and 4000 (not).
        assert_eq!(next_rate(&r, &steps), Ok(3000.0));
        steps.push(step(3, 3000.0, 10.0, 0, 1.0));
        assert_eq!(next_rate(&r, &steps), Ok(3500.0));
        steps.push(step(4, 3500.0, 500.0, 0, 1.0));
        // Two refinements done: stop; the best is 3000.
        let end = next_rate(&r, &steps).unwrap_err();
        assert!(end.contains("limit crossed at 4000"), "{end}");
        let best = steps
            .iter()
            .filter(|s| s.sustained)
            .map(|s| s.offered_rate)
            .fold(0.0, f64::max);
        assert_eq!(best, 3000.0);
    }

    #[test]
    fn a_first_step_that_fails_ends_the_ramp_with_no_rate() {
        let r = ramp();
        let steps = vec![step(0, 1000.0, 900.0, 0, 1.0)];
        let end = next_rate(&r, &steps).unwrap_err();
        assert!(
            end.contains("first step (1000 records/s) was not sustained"),
            "{end}"
        );
    }

    #[test]
    fn max_rate_caps_the_ramp() {
        let r = ramp();
        let steps: Vec<_> = [1000.0, 2000.0, 4000.0, 8000.0, 16000.0]
            .iter()
            .enumerate()
            .map(|(i, &x)| step(i, x, 10.0, 0, 1.0))
            .collect();
        let end = next_rate(&r, &steps).unwrap_err();
        assert!(end.contains("reached max-rate 16000"), "{end}");
    }

    #[test]
    fn prometheus_text_holds_the_rate_and_per_step_quantiles() {
        let steps = vec![
            step(0, 1000.0, 10.0, 0, 1.0),
            step(1, 2000.0, 300.0, 0, 1.0),
        ];
        let r = CapacityReport {
            limits: ramp().limits,
            value_bytes: 100,
            partitions: 6,
            acks: gregor_history::Acks::All,
            idempotence: true,
            cluster: "test".into(),
            faults: vec![],
            sustainable_rate: Some(1000.0),
            stopped: "x".into(),
            steps,
        };
        let text = prometheus_text(&r);
        assert!(
            text.contains("gregor_capacity_sustainable_rate 1000.0"),
            "{text}"
        );
        assert!(
            text.contains("gregor_capacity_step_latency_seconds{step=\"2\",quantile=\"0.99\"} 0.3"),
            "{text}"
        );
        let t = table(&r);
        assert!(
            t.contains("highest sustainable rate: 1000 records/s"),
            "{t}"
        );
    }
}
