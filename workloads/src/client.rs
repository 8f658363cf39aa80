//! The rdkafka client of one worker process, and the history it records.
//!
//! A [`Client`] owns one producer and one consumer, the way Jepsen's Kafka
//! client does, and performs one [`Op`] at a time: it records the `invoke`,
//! runs the operation with a timeout, and records exactly one of `ok`,
//! `fail` (certainly did not happen) or `info` (unknown). After an `info`
//! the caller must drop the client and continue under a new process number.
//!
//! A `fail`ed or `info` op that read something (an aborted transaction, on
//! purpose or after an error) rolls its consumer back to the first offset
//! it read of each key ([`FirstReads`]), as Jepsen's client does: its reads
//! did not happen, so the process's next read must start there again, or
//! the checker would see the process skip the values it read in vain
//! (`poll-skip`). Kafka does not rewind a consumer after an abort by itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use gregor_history::{EventType, Key, Mop, Offset, Process, Recorder, Val, Value, F};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientContext, Offset as RdOffset, TopicPartitionList};

use crate::generator::{GenMop, Op};
use crate::keymap::KeyMap;
use crate::settings::{ClientSettings, CommitMode};

/// Errors building a client (bad configuration); operation failures are
/// recorded in the history instead.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot create the {what} client: {source}")]
    Create {
        what: &'static str,
        #[source]
        source: KafkaError,
    },
    #[error("transactional producer {id}: init_transactions failed: {source}")]
    InitTxn {
        id: String,
        #[source]
        source: KafkaError,
    },
}

/// Consumer context that remembers rebalances and async commit results so
/// they can be attached to the next recorded operation.
#[derive(Default)]
pub struct RecordingContext {
    notes: Mutex<Vec<serde_json::Value>>,
    keymap: Option<KeyMap>,
}

impl RecordingContext {
    fn keys(&self, tpl: &TopicPartitionList) -> Vec<Key> {
        let Some(km) = &self.keymap else {
            return vec![];
        };
        tpl.elements()
            .iter()
            .filter_map(|e| km.key(e.topic(), e.partition()))
            .collect()
    }

    fn note(&self, v: serde_json::Value) {
        self.notes.lock().unwrap_or_else(|p| p.into_inner()).push(v);
    }

    fn take(&self) -> Vec<serde_json::Value> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ClientContext for RecordingContext {
    /// librdkafka's warnings about consumer positions reset by the broker
    /// ("offset reset (at offset 107, broker 111) to BEGINNING: fetch failed
    /// due to requested offset not available on the broker …") are kept as
    /// client notes: they explain a poll that goes backwards.
    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        if fac == "OFFSET" {
            self.note(serde_json::json!({ "offset-reset": message }));
        }
    }
}

impl ConsumerContext for RecordingContext {
    fn post_rebalance(&self, _c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        let v = match r {
            Rebalance::Assign(tpl) => {
                serde_json::json!({"rebalance": "assign", "keys": self.keys(tpl)})
            }
            Rebalance::Revoke(tpl) => {
                serde_json::json!({"rebalance": "revoke", "keys": self.keys(tpl)})
            }
            Rebalance::Error(e) => {
                serde_json::json!({"rebalance": "error", "error": e.to_string()})
            }
        };
        self.note(v);
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        offsets: &TopicPartitionList,
    ) {
        let v = match result {
            Ok(()) => serde_json::json!({"async-commit": "ok", "keys": self.keys(offsets)}),
            Err(e) => serde_json::json!({"async-commit": "error", "error": e.to_string()}),
        };
        self.note(v);
    }
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fail,
    Info,
}

/// What the caller learns from a completed operation (for the generator).
#[derive(Debug, Default)]
pub struct Learned {
    pub acked: Vec<(Key, Offset)>,
    pub read: Vec<(Key, Offset)>,
}

type Consumer_ = StreamConsumer<RecordingContext>;

/// The first offset an operation read of each key: where its consumer goes
/// back to when the operation fails or ends unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FirstReads(BTreeMap<Key, Offset>);

impl FirstReads {
    /// Notes the records one read returned (in the order they came); only
    /// the first offset of each key counts.
    pub fn note(&mut self, reads: &BTreeMap<Key, Vec<(Offset, Val)>>) {
        for (&k, records) in reads {
            if let Some(&(o, _)) = records.first() {
                self.0.entry(k).or_insert(o);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Where to seek, per key: the first offset read, for the keys still
    /// held (a key given up since cannot be sought, and its next reader
    /// starts afresh anyway).
    pub fn targets(&self, held: &BTreeSet<Key>) -> BTreeMap<Key, Offset> {
        self.0
            .iter()
            .filter(|(k, _)| held.contains(k))
            .map(|(&k, &o)| (k, o))
            .collect()
    }
}

/// One worker process's producer and consumer.
pub struct Client {
    pub process: u64,
    settings: ClientSettings,
    keymap: KeyMap,
    rec: Arc<Recorder>,
    producer: Arc<FutureProducer>,
    consumer: Arc<Consumer_>,
    /// Keys held by assignment.
    held: BTreeSet<Key>,
    /// Next offset to read per held key.
    positions: BTreeMap<Key, Offset>,
    pub created: Instant,
    /// Final reads mark their events `"final": true` (they read from the
    /// beginning on purpose; realtime lag leaves them out).
    final_reads: bool,
}

fn kafka_error_is_definite(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::InvalidRecord
        )
    )
}

/// One send's delivery: its offset (`None` when the broker does not say,
/// as with `acks=0`), or (definitely failed?, message).
type Delivery = Result<Option<Offset>, (bool, String)>;

/// A send handed to librdkafka, or refused at once (definitely not sent).
type Pending = Result<rdkafka::producer::DeliveryFuture, String>;

/// Hands the sends to the producer without waiting.
fn enqueue(producer: &FutureProducer, keymap: &KeyMap, sends: &[(Key, Val)]) -> Vec<Pending> {
    sends
        .iter()
        .map(|&(key, value)| {
            let topic = keymap.topic(key);
            let (k, v) = (key.to_string(), value.to_string());
            let record = FutureRecord::to(&topic)
                .partition(keymap.partition(key))
                .key(&k)
                .payload(&v);
            producer.send_result(record).map_err(|(e, _)| e.to_string())
        })
        .collect()
}

/// Waits up to `timeout` for every delivery report.
async fn await_deliveries(pending: Vec<Pending>, timeout: Duration) -> Vec<Delivery> {
    let mut early: Vec<Option<(bool, String)>> = Vec::with_capacity(pending.len());
    let mut futs = Vec::with_capacity(pending.len());
    for p in pending {
        match p {
            Ok(f) => {
                futs.push(Some(f));
                early.push(None);
            }
            Err(e) => {
                futs.push(None);
                early.push(Some((true, e)));
            }
        }
    }
    let all = join_all(futs.into_iter().map(|f| async move {
        match f {
            Some(f) => Some(f.await),
            None => None,
        }
    }));
    let results = match tokio::time::timeout(timeout, all).await {
        Ok(r) => r,
        Err(_) => {
            return early
                .into_iter()
                .map(|e| {
                    Err(e.unwrap_or((false, "timed out waiting for the delivery report".into())))
                })
                .collect()
        }
    };
    results
        .into_iter()
        .zip(early)
        .map(|(r, e)| match (r, e) {
            (_, Some(e)) => Err(e),
            (Some(Ok(Ok(d))), None) => Ok((d.offset >= 0).then_some(d.offset as Offset)),
            (Some(Ok(Err((e, _)))), None) => Err((kafka_error_is_definite(&e), e.to_string())),
            (Some(Err(_)), None) | (None, None) => Err((false, "delivery report lost".into())),
        })
        .collect()
}

/// How a send op ends given its deliveries: `ok` if all were acknowledged,
/// `fail` if all certainly failed, else `info`.
fn send_completion(
    sends: &[(Key, Val)],
    results: &[Delivery],
) -> (EventType, Value, Option<String>, Outcome, Learned) {
    let mut learned = Learned::default();
    let offsets: Vec<Option<Offset>> = results
        .iter()
        .map(|r| r.as_ref().ok().copied().flatten())
        .collect();
    let errors: Vec<&(bool, String)> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    if errors.is_empty() {
        for (i, &(k, _)) in sends.iter().enumerate() {
            if let Some(o) = offsets[i] {
                learned.acked.push((k, o));
            }
        }
        let v = Client::send_mops(sends, Some(&offsets));
        (EventType::Ok, v, None, Outcome::Ok, learned)
    } else if errors.len() == sends.len() && errors.iter().all(|(definite, _)| *definite) {
        let v = Client::send_mops(sends, None);
        (
            EventType::Fail,
            v,
            Some(errors[0].1.clone()),
            Outcome::Fail,
            learned,
        )
    } else {
        let v = Client::send_mops(sends, None);
        (
            EventType::Info,
            v,
            Some(errors[0].1.clone()),
            Outcome::Info,
            learned,
        )
    }
}

impl Client {
    /// Builds the clients of `process`. Transactional producers are
    /// initialised here (`init_transactions`), which fences older producers
    /// with the same transactional id.
    pub async fn new(
        process: u64,
        worker: u64,
        settings: &ClientSettings,
        keymap: &KeyMap,
        rec: Arc<Recorder>,
    ) -> Result<Client, ClientError> {
        Self::with_producer(process, worker, settings, keymap, rec, None).await
    }

    /// Like [`Client::new`], but sends through `shared` when given (one
    /// producer for every worker: more batching, no per-worker producer
    /// state; not for transactions, whose ids are per worker).
    pub async fn with_producer(
        process: u64,
        worker: u64,
        settings: &ClientSettings,
        keymap: &KeyMap,
        rec: Arc<Recorder>,
        shared: Option<Arc<FutureProducer>>,
    ) -> Result<Client, ClientError> {
        let txn_id = settings
            .txn
            .then(|| format!("{}-txn-{worker}", settings.group_id));
        let producer = match shared.filter(|_| txn_id.is_none()) {
            Some(p) => p,
            None => Arc::new(
                settings
                    .producer_config(txn_id.as_deref())
                    .create()
                    .map_err(|source| ClientError::Create {
                        what: "producer",
                        source,
                    })?,
            ),
        };
        if let Some(id) = txn_id {
            let p = producer.clone();
            let timeout = settings.op_timeout;
            tokio::task::spawn_blocking(move || p.init_transactions(timeout))
                .await
                .expect("init_transactions task")
                .map_err(|source| ClientError::InitTxn { id, source })?;
        }
        let ctx = RecordingContext {
            notes: Mutex::default(),
            keymap: Some(keymap.clone()),
        };
        let consumer: Consumer_ = settings
            .consumer_config()
            .create_with_context(ctx)
            .map_err(|source| ClientError::Create {
                what: "consumer",
                source,
            })?;
        Ok(Client {
            process,
            settings: settings.clone(),
            keymap: keymap.clone(),
            rec,
            producer,
            consumer: Arc::new(consumer),
            held: BTreeSet::new(),
            positions: BTreeMap::new(),
            created: Instant::now(),
            final_reads: false,
        })
    }

    fn p(&self) -> Process {
        Process::Client(self.process)
    }

    fn log(&self, kind: EventType, f: F, value: Value, error: Option<String>) {
        let mut extra = Vec::new();
        if self.final_reads {
            extra.push(("final".to_string(), serde_json::Value::Bool(true)));
        }
        if kind != EventType::Invoke {
            let notes = self.consumer.context().take();
            if !notes.is_empty() {
                // Rebalances also go where the checkers look for them
                // (Jepsen's `rebalance-log`): the keys moved during this op
                // are not held to read order within it.
                let rebalances: Vec<serde_json::Value> = notes
                    .iter()
                    .filter(|n| n.get("rebalance").is_some() && n.get("keys").is_some())
                    .cloned()
                    .collect();
                if !rebalances.is_empty() {
                    extra.push((
                        "rebalance-log".to_string(),
                        serde_json::Value::Array(rebalances),
                    ));
                }
                extra.push(("client-notes".to_string(), serde_json::Value::Array(notes)));
            }
        }
        self.rec.log(gregor_history::Event {
            index: 0,
            time: 0,
            process: self.p(),
            kind,
            f,
            value,
            error,
            extra,
        });
    }

    /// Performs one operation, recording its invocation and completion.
    pub async fn perform(&mut self, op: &Op) -> (Outcome, Learned) {
        match op {
            Op::Poll => self.poll_op().await,
            // A transactional producer sends only inside a transaction
            // (outside one, librdkafka refuses: "Erroneous state"), so a
            // send op of a transactional workload is a transaction of
            // sends, as in Jepsen's client.
            Op::Send(sends) if self.settings.txn => {
                let mops: Vec<GenMop> = sends
                    .iter()
                    .map(|&(key, value)| GenMop::Send { key, value })
                    .collect();
                self.txn(F::Send, &mops, false).await
            }
            Op::Send(sends) => self.send(sends).await,
            Op::Txn { mops, abort } => self.txn(F::Txn, mops, *abort).await,
            Op::Assign(keys) => (self.assign(keys), Learned::default()),
            Op::Subscribe(keys) => (self.subscribe(keys), Learned::default()),
        }
    }

    /// Records a client crash: the caller must continue under a new process.
    pub fn crash(&self) {
        self.log(EventType::Invoke, F::Crash, Value::None, None);
        self.log(
            EventType::Info,
            F::Crash,
            Value::None,
            Some("client crashed on purpose".into()),
        );
    }

    fn send_mops(sends: &[(Key, Val)], offsets: Option<&[Option<Offset>]>) -> Value {
        Value::Mops(
            sends
                .iter()
                .enumerate()
                .map(|(i, &(key, value))| Mop::Send {
                    key,
                    value,
                    offset: offsets.and_then(|o| o[i]),
                })
                .collect(),
        )
    }

    /// Enqueues the sends and waits for their delivery reports.
    async fn deliver(&self, sends: &[(Key, Val)]) -> Vec<Delivery> {
        let pending = enqueue(&self.producer, &self.keymap, sends);
        await_deliveries(pending, self.settings.op_timeout).await
    }

    async fn send(&mut self, sends: &[(Key, Val)]) -> (Outcome, Learned) {
        self.log(
            EventType::Invoke,
            F::Send,
            Self::send_mops(sends, None),
            None,
        );
        let results = self.deliver(sends).await;
        let (kind, value, error, outcome, learned) = send_completion(sends, &results);
        self.log(kind, F::Send, value, error);
        (outcome, learned)
    }

    /// A send op of `process` (one of a pipelining worker's in-flight
    /// slots, see [`crate::runner`]) through this client's producer: the
    /// invoke is recorded and the records enqueued now, in call order; the
    /// returned future awaits the delivery reports and records the
    /// completion the moment they are in. No consumer notes are attached:
    /// they belong to the client's own process.
    pub fn send_detached(
        &self,
        process: u64,
        sends: Vec<(Key, Val)>,
    ) -> impl std::future::Future<Output = (Outcome, Learned)> + Send + 'static {
        let rec = self.rec.clone();
        let record = move |kind, value, error| {
            rec.log(gregor_history::Event {
                index: 0,
                time: 0,
                process: Process::Client(process),
                kind,
                f: F::Send,
                value,
                error,
                extra: Vec::new(),
            })
        };
        record(EventType::Invoke, Self::send_mops(&sends, None), None);
        let pending = enqueue(&self.producer, &self.keymap, &sends);
        let timeout = self.settings.op_timeout;
        async move {
            let results = await_deliveries(pending, timeout).await;
            let (kind, value, error, outcome, learned) = send_completion(&sends, &results);
            record(kind, value, error);
            (outcome, learned)
        }
    }

    /// Waits up to `first_wait` for a record, then takes the records already
    /// fetched without waiting again (at most 1000), as one Kafka `poll`
    /// does. (Waiting for a quiet gap instead kept a poll open as long as
    /// other workers kept writing: a poll took 20 ms at least and often
    /// hundreds, and a worker spent most of its time in polls.)
    async fn receive(
        &mut self,
        first_wait: Duration,
    ) -> (BTreeMap<Key, Vec<(Offset, Val)>>, Vec<String>) {
        let mut reads: BTreeMap<Key, Vec<(Offset, Val)>> = BTreeMap::new();
        let mut problems = Vec::new();
        let started = Instant::now();
        let mut wait = first_wait;
        let mut n = 0usize;
        while n < 1000 && started.elapsed() < first_wait + Duration::from_secs(1) {
            match tokio::time::timeout(wait, self.consumer.recv()).await {
                Err(_) => break,
                Ok(Err(e)) => {
                    problems.push(e.to_string());
                    if problems.len() > 3 {
                        break;
                    }
                }
                Ok(Ok(m)) => {
                    let key = self.keymap.key(m.topic(), m.partition());
                    let val = m
                        .payload()
                        .and_then(|p| std::str::from_utf8(p).ok())
                        .and_then(|s| s.parse::<Val>().ok());
                    match (key, val) {
                        (Some(k), Some(v)) => {
                            let o = m.offset().max(0) as Offset;
                            reads.entry(k).or_default().push((o, v));
                            self.positions.insert(k, o + 1);
                            n += 1;
                        }
                        _ => problems.push(format!(
                            "foreign record at {}/{}@{} ignored",
                            m.topic(),
                            m.partition(),
                            m.offset()
                        )),
                    }
                    wait = Duration::ZERO;
                }
            }
        }
        (reads, problems)
    }

    async fn poll_op(&mut self) -> (Outcome, Learned) {
        self.log(
            EventType::Invoke,
            F::Poll,
            Value::Mops(vec![Mop::Poll { reads: None }]),
            None,
        );
        let (reads, problems) = self.receive(self.settings.poll_timeout).await;
        let learned = Learned {
            read: reads
                .iter()
                .filter_map(|(k, v)| v.iter().map(|(o, _)| *o).max().map(|o| (*k, o)))
                .collect(),
            ..Default::default()
        };
        let any = !reads.is_empty();
        let value = Value::Mops(vec![Mop::Poll {
            reads: Some(reads.into_iter().collect()),
        }]);
        let err = (!problems.is_empty()).then(|| problems.join("; "));
        self.log(EventType::Ok, F::Poll, value, err);
        if any {
            self.after_poll_commit().await;
        }
        (Outcome::Ok, learned)
    }

    fn position_list(&self, keys: &BTreeMap<Key, Offset>) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for (&k, &o) in keys {
            let _ = tpl.add_partition_offset(
                &self.keymap.topic(k),
                self.keymap.partition(k),
                RdOffset::Offset(o as i64),
            );
        }
        tpl
    }

    /// Manual commit after a poll that read something (sync: recorded as a
    /// `commit` op; async: issued, its result noted on a later op).
    async fn after_poll_commit(&mut self) {
        match self.settings.commit {
            CommitMode::None | CommitMode::Auto => {}
            CommitMode::Async => {
                // librdkafka delivers the result of a manual async commit
                // only to a C `offset_commit_cb`, never as the event
                // rdkafka listens for, so `commit_callback` would never
                // see it: commit synchronously on a blocking thread the
                // worker does not wait for, and note the result.
                let tpl = self.position_list(&self.positions);
                let c = self.consumer.clone();
                tokio::task::spawn_blocking(move || {
                    let r = c.commit(&tpl, rdkafka::consumer::CommitMode::Sync);
                    c.context().commit_callback(r, &tpl);
                });
            }
            CommitMode::Sync => {
                let offsets = self.positions.clone();
                let tpl = self.position_list(&offsets);
                self.log(
                    EventType::Invoke,
                    F::Commit,
                    Value::Mops(vec![Mop::Commit {
                        offsets: offsets.clone(),
                    }]),
                    None,
                );
                let c = self.consumer.clone();
                let r = tokio::task::spawn_blocking(move || {
                    c.commit(&tpl, rdkafka::consumer::CommitMode::Sync)
                })
                .await;
                let value = Value::Mops(vec![Mop::Commit { offsets }]);
                match r {
                    Ok(Ok(())) => self.log(EventType::Ok, F::Commit, value, None),
                    Ok(Err(e)) => self.log(EventType::Info, F::Commit, value, Some(e.to_string())),
                    Err(e) => self.log(EventType::Info, F::Commit, value, Some(e.to_string())),
                }
                self.committed_op().await;
            }
        }
    }

    /// Fetches the group's committed offsets of the held keys (recorded).
    pub async fn committed_op(&mut self) {
        let keys: Vec<Key> = self.held.iter().copied().collect();
        let ask: BTreeMap<Key, Option<Offset>> = keys.iter().map(|k| (*k, None)).collect();
        self.log(
            EventType::Invoke,
            F::Committed,
            Value::Mops(vec![Mop::Committed {
                offsets: ask.clone(),
            }]),
            None,
        );
        let mut tpl = TopicPartitionList::new();
        for &k in &keys {
            tpl.add_partition(&self.keymap.topic(k), self.keymap.partition(k));
        }
        let c = self.consumer.clone();
        let timeout = self.settings.op_timeout;
        let r = tokio::task::spawn_blocking(move || c.committed_offsets(tpl, timeout)).await;
        match r {
            Ok(Ok(tpl)) => {
                let mut got: BTreeMap<Key, Option<Offset>> = BTreeMap::new();
                for e in tpl.elements() {
                    if let Some(k) = self.keymap.key(e.topic(), e.partition()) {
                        let o = match e.offset() {
                            RdOffset::Offset(o) if o >= 0 => Some(o as Offset),
                            _ => None,
                        };
                        got.insert(k, o);
                    }
                }
                self.log(
                    EventType::Ok,
                    F::Committed,
                    Value::Mops(vec![Mop::Committed { offsets: got }]),
                    None,
                );
            }
            Ok(Err(e)) => self.log(
                EventType::Fail,
                F::Committed,
                Value::Mops(vec![Mop::Committed { offsets: ask }]),
                Some(e.to_string()),
            ),
            Err(e) => self.log(
                EventType::Fail,
                F::Committed,
                Value::Mops(vec![Mop::Committed { offsets: ask }]),
                Some(e.to_string()),
            ),
        }
    }

    /// Assigns `keys`: held keys keep their position, new ones start from
    /// the beginning (or the committed offset when not `from_beginning`).
    pub fn assign(&mut self, keys: &[Key]) -> Outcome {
        self.log(
            EventType::Invoke,
            F::Assign,
            Value::Keys(keys.to_vec()),
            None,
        );
        let mut tpl = TopicPartitionList::new();
        for &k in keys {
            let off = match self.positions.get(&k) {
                Some(&o) if self.held.contains(&k) => RdOffset::Offset(o as i64),
                _ if self.settings.from_beginning => RdOffset::Beginning,
                _ => RdOffset::Stored,
            };
            let _ = tpl.add_partition_offset(&self.keymap.topic(k), self.keymap.partition(k), off);
        }
        match self.consumer.assign(&tpl) {
            Ok(()) => {
                let new: BTreeSet<Key> = keys.iter().copied().collect();
                self.positions.retain(|k, _| new.contains(k));
                self.held = new;
                self.log(EventType::Ok, F::Assign, Value::Keys(keys.to_vec()), None);
                Outcome::Ok
            }
            Err(e) => {
                self.log(
                    EventType::Fail,
                    F::Assign,
                    Value::Keys(keys.to_vec()),
                    Some(e.to_string()),
                );
                Outcome::Fail
            }
        }
    }

    /// Subscribes to the topics of `keys`; the group decides which keys this
    /// process then holds (rebalances are noted on later ops).
    pub fn subscribe(&mut self, keys: &[Key]) -> Outcome {
        self.log(
            EventType::Invoke,
            F::Subscribe,
            Value::Keys(keys.to_vec()),
            None,
        );
        let topics: BTreeSet<String> = keys.iter().map(|k| self.keymap.topic(*k)).collect();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        match self.consumer.subscribe(&topics) {
            Ok(()) => {
                self.held = keys.iter().copied().collect();
                self.positions.clear();
                self.log(
                    EventType::Ok,
                    F::Subscribe,
                    Value::Keys(keys.to_vec()),
                    None,
                );
                Outcome::Ok
            }
            Err(e) => {
                self.log(
                    EventType::Fail,
                    F::Subscribe,
                    Value::Keys(keys.to_vec()),
                    Some(e.to_string()),
                );
                Outcome::Fail
            }
        }
    }

    async fn blocking_txn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&FutureProducer) -> rdkafka::error::KafkaResult<T> + Send + 'static,
    ) -> Result<T, KafkaError> {
        let p = self.producer.clone();
        tokio::task::spawn_blocking(move || f(&p))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }

    fn txn_value(
        mops: &[GenMop],
        offsets: &[Option<Offset>],
        reads: &[Option<gregor_history::Reads>],
        done: bool,
    ) -> Value {
        let mut si = 0;
        let mut pi = 0;
        Value::Mops(
            mops.iter()
                .map(|m| match m {
                    GenMop::Send { key, value } => {
                        let o = if done {
                            offsets.get(si).copied().flatten()
                        } else {
                            None
                        };
                        si += 1;
                        Mop::Send {
                            key: *key,
                            value: *value,
                            offset: o,
                        }
                    }
                    GenMop::Poll => {
                        let r = if done {
                            reads.get(pi).cloned().flatten()
                        } else {
                            None
                        };
                        pi += 1;
                        Mop::Poll {
                            reads: if done {
                                Some(r.unwrap_or_default())
                            } else {
                                None
                            },
                        }
                    }
                })
                .collect(),
        )
    }

    /// Performs `mops` in one transaction, recorded as an op `f` (`txn`,
    /// or `send` for a send op of a transactional workload).
    async fn txn(&mut self, f: F, mops: &[GenMop], abort: bool) -> (Outcome, Learned) {
        let none = Self::txn_value(mops, &[], &[], false);
        self.log(EventType::Invoke, f.clone(), none.clone(), None);
        if let Err(e) = self.blocking_txn(|p| p.begin_transaction()).await {
            self.log(
                EventType::Fail,
                f.clone(),
                none,
                Some(format!("begin_transaction: {e}")),
            );
            return (Outcome::Fail, Learned::default());
        }
        let mut offsets = Vec::new();
        let mut reads = Vec::new();
        let mut learned = Learned::default();
        let mut first = FirstReads::default();
        let mut failure: Option<(bool, String)> = None;
        for m in mops {
            match m {
                GenMop::Send { key, value } => {
                    let r = self.deliver(&[(*key, *value)]).await.remove(0);
                    match r {
                        Ok(o) => {
                            offsets.push(o);
                            if let Some(o) = o {
                                learned.acked.push((*key, o));
                            }
                        }
                        Err((_, msg)) => {
                            offsets.push(None);
                            failure = Some((false, format!("send: {msg}")));
                            break;
                        }
                    }
                }
                GenMop::Poll => {
                    let (r, _) = self.receive(Duration::from_millis(100)).await;
                    first.note(&r);
                    for (k, v) in &r {
                        if let Some(o) = v.iter().map(|(o, _)| *o).max() {
                            learned.read.push((*k, o));
                        }
                    }
                    reads.push(Some(r.into_iter().collect::<Vec<_>>()));
                }
            }
        }
        if failure.is_none() && !abort && !self.positions.is_empty() {
            let tpl = self.position_list(&self.positions);
            if let Some(meta) = self.consumer.group_metadata() {
                let t = self.settings.op_timeout;
                if let Err(e) = self
                    .blocking_txn(move |p| p.send_offsets_to_transaction(&tpl, &meta, t))
                    .await
                {
                    failure = Some((false, format!("send_offsets_to_transaction: {e}")));
                }
            }
        }
        let t = self.settings.op_timeout;
        if failure.is_none() && !abort {
            match self.blocking_txn(move |p| p.commit_transaction(t)).await {
                Ok(()) => {
                    let v = Self::txn_value(mops, &offsets, &reads, true);
                    self.log(EventType::Ok, f.clone(), v, None);
                    return (Outcome::Ok, learned);
                }
                Err(e) => failure = Some((false, format!("commit_transaction: {e}"))),
            }
        }
        // Abort: requested, or after an error. A successful abort means the
        // transaction's writes are certainly invisible to read_committed.
        let why = failure
            .as_ref()
            .map(|f| f.1.clone())
            .unwrap_or_else(|| "aborted on purpose".into());
        let aborted = self.blocking_txn(move |p| p.abort_transaction(t)).await;
        // Either way the reads did not count: read them again.
        self.roll_back(&first).await;
        match aborted {
            Ok(()) => {
                self.log(EventType::Fail, f.clone(), none, Some(why));
                (
                    Outcome::Fail,
                    Learned {
                        acked: vec![],
                        read: learned.read,
                    },
                )
            }
            Err(e) => {
                self.log(
                    EventType::Info,
                    f.clone(),
                    none,
                    Some(format!("{why}; abort_transaction: {e}")),
                );
                (Outcome::Info, Learned::default())
            }
        }
    }

    /// Seeks the consumer back to the first offsets a failed op read, so
    /// that the next read starts there; the positions follow. What happened
    /// is noted on the op's completion (`client-notes`: `rolled-back-to`,
    /// or `rollback-error`).
    async fn roll_back(&mut self, first: &FirstReads) {
        let targets = first.targets(&self.held);
        if targets.is_empty() {
            return;
        }
        let tpl = self.position_list(&targets);
        let c = self.consumer.clone();
        let timeout = self.settings.op_timeout;
        let r = tokio::task::spawn_blocking(move || c.seek_partitions(tpl, timeout)).await;
        let mut errors = Vec::new();
        match r {
            Ok(Ok(tpl)) => {
                for e in tpl.elements() {
                    if let Err(err) = e.error() {
                        errors.push(format!("{}/{}: {err}", e.topic(), e.partition()));
                    }
                }
            }
            Ok(Err(e)) => errors.push(e.to_string()),
            Err(e) => errors.push(e.to_string()),
        }
        let ctx = self.consumer.context();
        if errors.is_empty() {
            self.positions.extend(targets.iter().map(|(&k, &o)| (k, o)));
            ctx.note(serde_json::json!({ "rolled-back-to": targets }));
        } else {
            ctx.note(
                serde_json::json!({ "rollback-error": errors.join("; "), "targets": targets }),
            );
        }
    }

    /// The consumer's keys (by assignment or subscription).
    pub fn held(&self) -> &BTreeSet<Key> {
        &self.held
    }
}

/// Final reads: a fresh process assigns every key from the beginning and
/// polls (each poll recorded) until it has read, for every key, at least up
/// to `targets[key]`, or `deadline` passes. Returns the keys not reached.
pub async fn final_reads(
    process: u64,
    settings: &ClientSettings,
    keymap: &KeyMap,
    rec: Arc<Recorder>,
    targets: &BTreeMap<Key, Offset>,
    also: &[Key],
    deadline: Instant,
) -> Result<BTreeMap<Key, Offset>, ClientError> {
    let mut s = settings.clone();
    s.commit = CommitMode::None;
    s.from_beginning = true;
    s.txn = false;
    s.group_id = format!("{}-final", settings.group_id);
    let mut c = Client::new(process, u64::MAX, &s, keymap, rec).await?;
    c.final_reads = true;
    let mut keys: Vec<Key> = targets.keys().copied().collect();
    keys.extend(also.iter().copied().filter(|k| !targets.contains_key(k)));
    keys.sort_unstable();
    let mut missing: BTreeMap<Key, Offset> = targets.clone();
    if keys.is_empty() {
        return Ok(missing);
    }
    // Sends whose offsets the workers never learned (acks=0, sends after
    // the last poll of a key) are below the high watermark: read up to it.
    // Not with transactions: the last offset may be a commit or abort
    // marker, which no consumer ever returns.
    let tps: Vec<(Key, String, i32)> = keys
        .iter()
        .filter(|_| !settings.txn)
        .map(|&k| (k, keymap.topic(k), keymap.partition(k)))
        .collect();
    let consumer = c.consumer.clone();
    let marks = tokio::task::spawn_blocking(move || {
        tps.into_iter()
            .filter_map(|(k, t, p)| {
                consumer
                    .fetch_watermarks(&t, p, Duration::from_secs(5))
                    .ok()
                    .map(|(low, high)| (k, low, high))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    for (k, low, high) in marks {
        if high > low && high > 0 {
            let last = (high - 1) as Offset;
            // Keys with no known offset (acks=0) are read to the watermark.
            let t = missing.entry(k).or_insert(last);
            *t = (*t).max(last);
        }
    }
    if c.assign(&keys) != Outcome::Ok {
        return Ok(missing);
    }
    let mut read_high: BTreeMap<Key, Offset> = BTreeMap::new();
    while !missing.is_empty() && Instant::now() < deadline {
        let (_, learned) = c.poll_op().await;
        for (k, o) in learned.read {
            let e = read_high.entry(k).or_insert(o);
            *e = (*e).max(o);
        }
        missing.retain(|k, target| read_high.get(k).is_none_or(|r| r < target));
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(pairs: &[(Key, &[(Offset, Val)])]) -> BTreeMap<Key, Vec<(Offset, Val)>> {
        pairs.iter().map(|(k, r)| (*k, r.to_vec())).collect()
    }

    #[test]
    fn a_failed_op_goes_back_to_the_first_offset_it_read_of_each_key() {
        let mut first = FirstReads::default();
        assert!(first.is_empty());
        // Two polls in one transaction: key 1 read at 5..6, then 7; key 2
        // only in the second poll.
        first.note(&reads(&[(1, &[(5, 50), (6, 60)])]));
        first.note(&reads(&[(1, &[(7, 70)]), (2, &[(3, 30)])]));
        let held: BTreeSet<Key> = [1, 2].into_iter().collect();
        assert_eq!(
            first.targets(&held),
            [(1, 5), (2, 3)].into_iter().collect::<BTreeMap<_, _>>()
        );
    }

    #[test]
    fn the_first_offset_is_the_first_returned_even_when_a_later_one_is_lower() {
        // A consumer sent backwards within one op (an offset reset) must
        // come back to where the op began, not to the lowest offset.
        let mut first = FirstReads::default();
        first.note(&reads(&[(4, &[(9, 90), (0, 1)])]));
        first.note(&reads(&[(4, &[(1, 2)])]));
        let held: BTreeSet<Key> = [4].into_iter().collect();
        assert_eq!(first.targets(&held).get(&4), Some(&9));
    }

    #[test]
    fn a_send_op_is_ok_only_if_every_send_was_acknowledged() {
        let sends = [(1, 10), (2, 20)];
        let (kind, _, err, outcome, learned) = send_completion(&sends, &[Ok(Some(5)), Ok(Some(7))]);
        assert_eq!((kind, outcome, err), (EventType::Ok, Outcome::Ok, None));
        assert_eq!(learned.acked, vec![(1, 5), (2, 7)]);
        // All certainly refused: fail. One unknown among them: info.
        let refused = || Err((true, "queue full".to_string()));
        let (kind, ..) = send_completion(&sends, &[refused(), refused()]);
        assert_eq!(kind, EventType::Fail);
        let timed_out = Err((false, "timed out".to_string()));
        let (kind, _, err, outcome, learned) = send_completion(&sends, &[Ok(Some(5)), timed_out]);
        assert_eq!((kind, outcome), (EventType::Info, Outcome::Info));
        assert_eq!(err.as_deref(), Some("timed out"));
        assert!(
            learned.acked.is_empty(),
            "nothing learned from an unknown op"
        );
    }

    #[test]
    fn keys_no_longer_held_and_keys_never_read_are_not_sought() {
        let mut first = FirstReads::default();
        first.note(&reads(&[(1, &[(5, 50)]), (2, &[]), (3, &[(8, 80)])]));
        let held: BTreeSet<Key> = [1, 2].into_iter().collect();
        assert_eq!(
            first.targets(&held),
            [(1, 5)].into_iter().collect::<BTreeMap<_, _>>()
        );
    }
}
