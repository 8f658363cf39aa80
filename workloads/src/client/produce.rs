//! Sends: records handed to librdkafka, delivery reports awaited, and the
//! send op's completion (ok only if every send was acknowledged).

use super::*;

pub(super) fn kafka_error_is_definite(e: &KafkaError) -> bool {
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
pub(super) type Delivery = Result<Option<Offset>, (bool, String)>;

/// A send handed to librdkafka, or refused at once (definitely not sent).
pub(super) type Pending = Result<rdkafka::producer::DeliveryFuture, String>;

/// Hands the sends to the producer without waiting.
pub(super) fn enqueue(
    producer: &FutureProducer,
    keymap: &KeyMap,
    sends: &[(Key, Val)],
) -> Vec<Pending> {
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
pub(super) async fn await_deliveries(pending: Vec<Pending>, timeout: Duration) -> Vec<Delivery> {
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
pub(super) fn send_completion(
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
    pub(super) fn send_mops(sends: &[(Key, Val)], offsets: Option<&[Option<Offset>]>) -> Value {
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
    pub(super) async fn deliver(&self, sends: &[(Key, Val)]) -> Vec<Delivery> {
        let pending = enqueue(&self.producer, &self.keymap, sends);
        await_deliveries(pending, self.settings.op_timeout).await
    }

    pub(super) async fn send(&mut self, sends: &[(Key, Val)]) -> (Outcome, Learned) {
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
}
