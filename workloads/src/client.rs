//! The rdkafka client of one worker process, and the history it records.
//!
//! A [`Client`] owns one producer and one consumer, the way Jepsen's Kafka
//! client does, and performs one [`Op`] at a time: it records the `invoke`,
//! runs the operation with a timeout, and records exactly one of `ok`,
//! `fail` (certainly did not happen) or `info` (unknown). After an `info`
//! the caller must drop the client and continue under a new process number.

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
            Op::Send(sends) => self.send(sends).await,
            Op::Poll => self.poll_op().await,
            Op::Txn { mops, abort } => self.txn(mops, *abort).await,
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
    /// Returns per send: Ok(offset) (`None` when the broker does not say,
    /// as with `acks=0`), or Err((definite, message)).
    async fn deliver(&self, sends: &[(Key, Val)]) -> Vec<Result<Option<Offset>, (bool, String)>> {
        let mut futs = Vec::with_capacity(sends.len());
        let mut early: Vec<Option<(bool, String)>> = Vec::with_capacity(sends.len());
        for &(key, value) in sends {
            let topic = self.keymap.topic(key);
            let (k, v) = (key.to_string(), value.to_string());
            let record = FutureRecord::to(&topic)
                .partition(self.keymap.partition(key))
                .key(&k)
                .payload(&v);
            match self.producer.send_result(record) {
                Ok(f) => {
                    futs.push(Some(f));
                    early.push(None);
                }
                Err((e, _)) => {
                    futs.push(None);
                    early.push(Some((true, e.to_string())));
                }
            }
        }
        let pending = join_all(futs.into_iter().map(|f| async move {
            match f {
                Some(f) => Some(f.await),
                None => None,
            }
        }));
        let results = match tokio::time::timeout(self.settings.op_timeout, pending).await {
            Ok(r) => r,
            Err(_) => {
                return early
                    .into_iter()
                    .map(|e| {
                        Err(e
                            .unwrap_or((false, "timed out waiting for the delivery report".into())))
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

    async fn send(&mut self, sends: &[(Key, Val)]) -> (Outcome, Learned) {
        self.log(
            EventType::Invoke,
            F::Send,
            Self::send_mops(sends, None),
            None,
        );
        let results = self.deliver(sends).await;
        let mut learned = Learned::default();
        let offsets: Vec<Option<Offset>> = results
            .iter()
            .map(|r| r.as_ref().ok().copied().flatten())
            .collect();
        let errors: Vec<&(bool, String)> =
            results.iter().filter_map(|r| r.as_ref().err()).collect();
        if errors.is_empty() {
            for (i, &(k, _)) in sends.iter().enumerate() {
                if let Some(o) = offsets[i] {
                    learned.acked.push((k, o));
                }
            }
            self.log(
                EventType::Ok,
                F::Send,
                Self::send_mops(sends, Some(&offsets)),
                None,
            );
            (Outcome::Ok, learned)
        } else if errors.len() == sends.len() && errors.iter().all(|(definite, _)| *definite) {
            self.log(
                EventType::Fail,
                F::Send,
                Self::send_mops(sends, None),
                Some(errors[0].1.clone()),
            );
            (Outcome::Fail, learned)
        } else {
            self.log(
                EventType::Info,
                F::Send,
                Self::send_mops(sends, None),
                Some(errors[0].1.clone()),
            );
            (Outcome::Info, learned)
        }
    }

    /// Receives records until none arrives for a short while.
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
                    wait = Duration::from_millis(20);
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

    async fn txn(&mut self, mops: &[GenMop], abort: bool) -> (Outcome, Learned) {
        let none = Self::txn_value(mops, &[], &[], false);
        self.log(EventType::Invoke, F::Txn, none.clone(), None);
        if let Err(e) = self.blocking_txn(|p| p.begin_transaction()).await {
            self.log(
                EventType::Fail,
                F::Txn,
                none,
                Some(format!("begin_transaction: {e}")),
            );
            return (Outcome::Fail, Learned::default());
        }
        let mut offsets = Vec::new();
        let mut reads = Vec::new();
        let mut learned = Learned::default();
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
                    self.log(EventType::Ok, F::Txn, v, None);
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
        match self.blocking_txn(move |p| p.abort_transaction(t)).await {
            Ok(()) => {
                self.log(EventType::Fail, F::Txn, none, Some(why));
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
                    F::Txn,
                    none,
                    Some(format!("{why}; abort_transaction: {e}")),
                );
                (Outcome::Info, Learned::default())
            }
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
