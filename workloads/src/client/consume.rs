//! Reads: polls, positions, commits, assignment and subscription, and the
//! rollback of a failed op's reads ([`FirstReads`]).

use super::*;

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

impl Client {
    /// Waits up to `first_wait` for a record, then takes the records already
    /// fetched without waiting again (at most 1000), as one Kafka `poll`
    /// does. (Waiting for a quiet gap instead kept a poll open as long as
    /// other workers kept writing: a poll took 20 ms at least and often
    /// hundreds, and a worker spent most of its time in polls.)
    pub(super) async fn receive(
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

    pub(super) async fn poll_op(&mut self) -> (Outcome, Learned) {
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

    pub(super) fn position_list(&self, keys: &BTreeMap<Key, Offset>) -> TopicPartitionList {
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
    pub(super) async fn after_poll_commit(&mut self) {
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

    /// Seeks the consumer back to the first offsets a failed op read, so
    /// that the next read starts there; the positions follow. What happened
    /// is noted on the op's completion (`client-notes`: `rolled-back-to`,
    /// or `rollback-error`).
    pub(super) async fn roll_back(&mut self, first: &FirstReads) {
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
}
