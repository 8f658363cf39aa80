//! Transactions: sends and polls inside one, committed or aborted, the
//! offsets of the reads sent to the transaction.

use super::*;

impl Client {
    pub(super) async fn blocking_txn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&FutureProducer) -> rdkafka::error::KafkaResult<T> + Send + 'static,
    ) -> Result<T, KafkaError> {
        let p = self.producer.clone();
        tokio::task::spawn_blocking(move || f(&p))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }

    pub(super) fn txn_value(
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
    pub(super) async fn txn(&mut self, f: F, mops: &[GenMop], abort: bool) -> (Outcome, Learned) {
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
        // After an error, with `txn-recovery: rebuild`: no abort. The
        // transaction's fate is unknown (a delayed EndTxn or produce may
        // still land), so the op is `info`, and the caller drops this
        // client: its successor's init_transactions fences this epoch.
        if let (Some((_, why)), TxnRecovery::Rebuild) = (&failure, self.settings.txn_recovery) {
            let why = format!("{why}; producer dropped (txn-recovery: rebuild)");
            self.roll_back(&first).await;
            self.log(EventType::Info, f.clone(), none, Some(why));
            return (Outcome::Info, Learned::default());
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
}
