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
use crate::settings::{ClientSettings, CommitMode, TxnRecovery};

mod consume;
mod context;
mod final_reads;
mod produce;
mod txn;

pub use consume::FirstReads;
pub use context::RecordingContext;
pub use final_reads::final_reads;
#[cfg(test)]
use produce::send_completion;

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

/// How an operation ended: the history's one ok/fail/info outcome.
pub use gregor_history::ops::Outcome;

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

    pub(super) fn p(&self) -> Process {
        Process::Client(self.process)
    }

    pub(super) fn log(&self, kind: EventType, f: F, value: Value, error: Option<String>) {
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

    /// The consumer's keys (by assignment or subscription).
    pub fn held(&self) -> &BTreeSet<Key> {
        &self.held
    }
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
