//! Runs the client workers of a workload until told to stop.
//!
//! A worker performs one operation at a time under its process number,
//! unless it pipelines (`pipeline` > 1): then it keeps up to `pipeline`
//! send ops in flight on its producer. A process has at most one
//! operation outstanding in a history, so each in-flight slot is a
//! process of its own: the worker takes `pipeline` process numbers beside
//! its own, sends under a free one, and takes the number back when that
//! op's delivery reports are in (its completion is recorded then, by the
//! task awaiting them, not when the worker next looks). A slot whose op
//! ended `info` continues under a fresh number (Jepsen's rule). The
//! worker's own process keeps doing everything else (assign, poll) while
//! sends are in flight, so reads overlap writes as they would in an
//! application. Transactions never pipeline: a transactional producer has
//! one transaction open at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gregor_history::{Key, Offset, Recorder};
use rdkafka::producer::FutureProducer;
use tokio::sync::watch;

use crate::client::{Client, ClientError, Outcome};
use crate::generator::{GenConfig, Generator, Op};
use crate::keymap::KeyMap;
use crate::settings::ClientSettings;
use crate::topic::{ensure_topic, TopicSpec};

/// Everything that defines a workload.
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    pub gen: GenConfig,
    pub settings: ClientSettings,
    pub keymap: KeyMap,
    pub topic: TopicSpec,
    /// Worker processes running at once.
    pub concurrency: u64,
    /// Target operations per second over all workers.
    pub rate: f64,
    /// Crash and recreate each client this often (`crash-clients`).
    pub crash_every: Option<Duration>,
    /// All workers send through one producer (more batching, as a single
    /// application would); otherwise each worker has its own, as Jepsen's
    /// clients do. Ignored with transactions.
    pub shared_producer: bool,
    /// Process number of the first worker (the others follow; renumbered
    /// processes come after all of them).
    pub first_process: u64,
    /// Send ops each worker keeps in flight (1: one op at a time).
    pub pipeline: u64,
}

/// Counters shared with progress displays.
#[derive(Debug, Default)]
pub struct Progress {
    pub ops: AtomicU64,
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
    /// Nanoseconds (history time) of the first completed op.
    pub first_ok_ns: AtomicU64,
    /// Per key, the next offset the workload's consumers would read: one
    /// past the highest offset an `ok` read returned (where the consumers
    /// are, for their lag when they commit nothing). Filled by whoever
    /// relays the events (`gregor run`'s client supervisor).
    pub positions: Mutex<BTreeMap<Key, Offset>>,
}

impl Progress {
    /// Moves the consumers' positions past what an `ok` event read.
    pub fn note_reads(&self, e: &gregor_history::Event) {
        if e.kind != gregor_history::EventType::Ok {
            return;
        }
        let mut pos = None;
        for m in e.mops() {
            if let gregor_history::Mop::Poll { reads: Some(r) } = m {
                let pos = pos.get_or_insert_with(|| {
                    self.positions.lock().unwrap_or_else(|p| p.into_inner())
                });
                for (k, pairs) in r {
                    if let Some(o) = pairs.iter().map(|(o, _)| *o).max() {
                        let x = pos.entry(*k).or_insert(0);
                        *x = (*x).max(o + 1);
                    }
                }
            }
        }
    }
}

/// What the workers leave behind for final reads.
#[derive(Debug, Default)]
pub struct WorkloadEnd {
    /// Highest offset any op saw per key (acknowledged sends and polls).
    pub highest: BTreeMap<Key, Offset>,
    /// Every key the generator handed out.
    pub keys: Vec<Key>,
    /// The next free process number.
    pub next_process: u64,
    /// Client errors that stopped a worker (bad configuration).
    pub errors: Vec<String>,
}

struct Shared {
    cfg: WorkloadConfig,
    rec: Arc<Recorder>,
    gen: Mutex<Generator>,
    highest: Mutex<BTreeMap<Key, Offset>>,
    /// Topics known to exist.
    topics: tokio::sync::Mutex<BTreeSet<String>>,
    next_process: AtomicU64,
    progress: Arc<Progress>,
    /// One producer for all workers (`shared_producer`), else `None`.
    producer: Option<Arc<FutureProducer>>,
}

impl Shared {
    /// Counts a completed op for progress displays.
    fn count(&self, outcome: Outcome) {
        let p = &self.progress;
        p.ops.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Outcome::Ok => {
                if p.ok.fetch_add(1, Ordering::Relaxed) == 0 {
                    p.first_ok_ns.store(self.rec.now(), Ordering::Relaxed);
                }
            }
            Outcome::Fail => {
                p.fail.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Info => {
                p.info.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn learn(&self, acked: &[(Key, Offset)], read: &[(Key, Offset)]) {
        self.gen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .completed(acked, read);
        let mut h = self.highest.lock().unwrap_or_else(|p| p.into_inner());
        for &(k, o) in acked.iter().chain(read) {
            let e = h.entry(k).or_insert(o);
            *e = (*e).max(o);
        }
    }

    /// Creates the topics of rotated keys before they are used.
    async fn ensure_topics(&self, op: &Op) {
        let keys: Vec<Key> = match op {
            Op::Send(s) => s.iter().map(|(k, _)| *k).collect(),
            Op::Txn { mops, .. } => mops
                .iter()
                .filter_map(|m| match m {
                    crate::generator::GenMop::Send { key, .. } => Some(*key),
                    _ => None,
                })
                .collect(),
            Op::Assign(k) | Op::Subscribe(k) => k.clone(),
            Op::Poll => vec![],
        };
        let mut known = self.topics.lock().await;
        for k in keys {
            let t = self.cfg.keymap.topic(k);
            if !known.contains(&t) {
                // Failure here shows up as failed sends in the history.
                let _ = ensure_topic(
                    &self.cfg.settings,
                    &t,
                    &self.cfg.topic,
                    Duration::from_secs(10),
                )
                .await;
                known.insert(t);
            }
        }
    }
}

/// A new client for a worker (at its start or after its client crashed).
/// A transactional producer cannot initialise while the brokers are down
/// or paused: keep trying (no op is open, so nothing is recorded) until it
/// can or the workload stops (`None`). Configuration errors end the worker.
async fn recreate(
    shared: &Shared,
    process: u64,
    worker: u64,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<Client>, ClientError> {
    let cfg = &shared.cfg;
    loop {
        match Client::with_producer(
            process,
            worker,
            &cfg.settings,
            &cfg.keymap,
            shared.rec.clone(),
            shared.producer.clone(),
        )
        .await
        {
            Ok(c) => return Ok(Some(c)),
            Err(e @ ClientError::Create { .. }) => return Err(e),
            Err(ClientError::InitTxn { .. }) => {
                if *stop.borrow() {
                    return Ok(None);
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => return Ok(None),
                }
            }
        }
    }
}

/// Replaces a crashed client by a new one under a fresh process number,
/// which takes over the old one's keys (`always`: even when it held none).
/// `None` when the run stops first.
async fn renumber(
    shared: &Arc<Shared>,
    old: Client,
    worker: u64,
    stop: &mut watch::Receiver<bool>,
    always: bool,
) -> Result<Option<Client>, ClientError> {
    let process = shared.next_process.fetch_add(1, Ordering::SeqCst);
    let held: Vec<Key> = old.held().iter().copied().collect();
    drop(old);
    let Some(mut client) = recreate(shared, process, worker, stop).await? else {
        return Ok(None);
    };
    if always || !held.is_empty() {
        let op = if shared.cfg.gen.subscribe {
            Op::Subscribe(held)
        } else {
            Op::Assign(held)
        };
        client.perform(&op).await;
    }
    Ok(Some(client))
}

/// The in-flight slots of a pipelining worker: one process number each.
struct Slots {
    /// Process numbers with no op outstanding.
    free: Vec<u64>,
    total: usize,
    done_tx: tokio::sync::mpsc::UnboundedSender<(u64, Outcome)>,
    done_rx: tokio::sync::mpsc::UnboundedReceiver<(u64, Outcome)>,
}

impl Slots {
    fn new(shared: &Shared, n: u64) -> Slots {
        let free: Vec<u64> = (0..n)
            .map(|_| shared.next_process.fetch_add(1, Ordering::SeqCst))
            .rev()
            .collect();
        let (done_tx, done_rx) = tokio::sync::mpsc::unbounded_channel();
        Slots {
            total: free.len(),
            free,
            done_tx,
            done_rx,
        }
    }

    /// A slot whose op completed is free again, under a fresh number if
    /// the op ended `info`.
    fn give_back(&mut self, shared: &Shared, process: u64, outcome: Outcome) {
        let p = if outcome == Outcome::Info {
            shared.next_process.fetch_add(1, Ordering::SeqCst)
        } else {
            process
        };
        self.free.push(p);
    }

    /// A free slot's process number, waiting for one if all are busy;
    /// `None` if the run stops first.
    async fn take(&mut self, shared: &Shared, stop: &mut watch::Receiver<bool>) -> Option<u64> {
        while let Ok((p, o)) = self.done_rx.try_recv() {
            self.give_back(shared, p, o);
        }
        loop {
            if let Some(p) = self.free.pop() {
                return Some(p);
            }
            tokio::select! {
                Some((p, o)) = self.done_rx.recv() => self.give_back(shared, p, o),
                _ = stop.changed() => return None,
            }
        }
    }

    /// Waits (up to `limit`) until no op is in flight.
    async fn drain(&mut self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.free.len() < self.total {
            match tokio::time::timeout_at(deadline, self.done_rx.recv()).await {
                Ok(Some((p, _))) => self.free.push(p),
                _ => break,
            }
        }
    }
}

async fn worker(
    shared: Arc<Shared>,
    worker: u64,
    mut stop: watch::Receiver<bool>,
    stall: watch::Receiver<bool>,
) -> Result<(), ClientError> {
    let cfg = &shared.cfg;
    let interval = if cfg.rate > 0.0 {
        Duration::from_secs_f64(cfg.concurrency as f64 / cfg.rate)
    } else {
        Duration::ZERO
    };
    let process = cfg.first_process + worker;
    let Some(mut client) = recreate(&shared, process, worker, &mut stop).await? else {
        return Ok(());
    };
    let initial = shared
        .gen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .initial_keys();
    // A workload that never reads leaves its consumers unassigned: an
    // assigned consumer fetches in the background whether or not anyone
    // polls it, and that load on the brokers is not the workload's.
    let reads = cfg.gen.poll_weight > 0 || cfg.gen.txn_weight > 0;
    if reads {
        let first = if cfg.gen.subscribe {
            Op::Subscribe(initial)
        } else {
            Op::Assign(initial)
        };
        client.perform(&first).await;
    }
    let mut slots =
        (cfg.pipeline > 1 && !cfg.settings.txn).then(|| Slots::new(&shared, cfg.pipeline));
    // Stagger workers so they do not all fire at once.
    let mut next = Instant::now() + interval.mul_f64(worker as f64 / cfg.concurrency.max(1) as f64);
    loop {
        if *stop.borrow() {
            break;
        }
        let now = Instant::now();
        if next > now {
            tokio::select! {
                _ = tokio::time::sleep(next - now) => {}
                _ = stop.changed() => break,
            }
        }
        next = next.max(Instant::now() - interval) + interval;
        if let Some(every) = cfg.crash_every {
            if client.created.elapsed() >= every {
                client.crash();
                match renumber(&shared, client, worker, &mut stop, true).await? {
                    Some(c) => client = c,
                    None => break,
                }
                continue;
            }
        }
        let op = shared
            .gen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_op();
        // A stalled consumer does not poll: its reads are skipped (not
        // recorded: an op never invoked leaves no trace to misjudge), its
        // sends go on, so the lag grows.
        if *stall.borrow() && op.reads() {
            continue;
        }
        shared.ensure_topics(&op).await;
        if let (Some(slots), Op::Send(sends)) = (&mut slots, &op) {
            let Some(process) = slots.take(&shared, &mut stop).await else {
                break;
            };
            let done = client.send_detached(process, sends.clone());
            let (sh, tx) = (shared.clone(), slots.done_tx.clone());
            tokio::spawn(async move {
                let (outcome, learned) = done.await;
                sh.learn(&learned.acked, &learned.read);
                sh.count(outcome);
                let _ = tx.send((process, outcome));
            });
            continue;
        }
        let (outcome, learned) = client.perform(&op).await;
        shared.learn(&learned.acked, &learned.read);
        shared.count(outcome);
        if outcome == Outcome::Info {
            // Jepsen's convention: the client is considered crashed and
            // the worker continues under a new process number.
            match renumber(&shared, client, worker, &mut stop, false).await? {
                Some(c) => client = c,
                None => break,
            }
        }
    }
    if let Some(slots) = &mut slots {
        // Let the sends in flight complete (each within the op timeout),
        // so that their completions are recorded.
        slots
            .drain(cfg.settings.op_timeout + Duration::from_secs(1))
            .await;
    }
    Ok(())
}

/// Runs `cfg.concurrency` workers until `stop` turns true, then returns
/// what final reads need. The topic must exist already.
pub async fn run_workers(
    cfg: WorkloadConfig,
    rec: Arc<Recorder>,
    stop: watch::Receiver<bool>,
    progress: Arc<Progress>,
) -> WorkloadEnd {
    let (_never, stall) = watch::channel(false);
    run_workers_stallable(cfg, rec, stop, stall, progress).await
}

/// [`run_workers`] whose consumers stop polling while `stall` is true
/// (the `consumer-stall` fault): ops that read are skipped, sends go on.
pub async fn run_workers_stallable(
    cfg: WorkloadConfig,
    rec: Arc<Recorder>,
    stop: watch::Receiver<bool>,
    stall: watch::Receiver<bool>,
    progress: Arc<Progress>,
) -> WorkloadEnd {
    let first_topic = cfg.keymap.topic(0);
    let producer = if cfg.shared_producer && !cfg.settings.txn {
        match cfg
            .settings
            .producer_config(None)
            .create::<FutureProducer>()
        {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                return WorkloadEnd {
                    errors: vec![format!("cannot create the shared producer: {e}")],
                    ..Default::default()
                }
            }
        }
    } else {
        None
    };
    let shared = Arc::new(Shared {
        producer,
        gen: Mutex::new(Generator::new(cfg.gen.clone())),
        next_process: AtomicU64::new(cfg.first_process + cfg.concurrency),
        highest: Mutex::new(BTreeMap::new()),
        topics: tokio::sync::Mutex::new([first_topic].into_iter().collect()),
        rec,
        progress,
        cfg,
    });
    let handles: Vec<_> = (0..shared.cfg.concurrency)
        .map(|w| tokio::spawn(worker(shared.clone(), w, stop.clone(), stall.clone())))
        .collect();
    let mut errors = Vec::new();
    for h in handles {
        match h.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e.to_string()),
            Err(e) => errors.push(format!("worker panicked: {e}")),
        }
    }
    let keys = shared
        .gen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .all_keys()
        .collect();
    let highest = shared
        .highest
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    WorkloadEnd {
        highest,
        keys,
        next_process: shared.next_process.load(Ordering::SeqCst),
        errors,
    }
}
