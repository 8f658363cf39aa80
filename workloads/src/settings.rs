//! Client settings: what the producers and consumers are configured with.

use std::collections::BTreeMap;
use std::time::Duration;

use gregor_history::{Acks, ClientMeta, IsolationLevel, SubVia};
use rdkafka::ClientConfig;

/// How consumers commit offsets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitMode {
    /// Never commit (assign mode reads from the beginning).
    #[default]
    None,
    /// `enable.auto.commit=true`.
    Auto,
    /// Commit after each poll, waiting for the answer (recorded as `commit`).
    Sync,
    /// Commit after each poll without waiting (recorded as `commit`).
    Async,
}

impl std::str::FromStr for CommitMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(CommitMode::None),
            "auto" => Ok(CommitMode::Auto),
            "sync" => Ok(CommitMode::Sync),
            "async" => Ok(CommitMode::Async),
            _ => Err(format!(
                "unknown commit mode {s:?} (expected none, auto, sync or async)"
            )),
        }
    }
}

impl std::fmt::Display for CommitMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CommitMode::None => "none",
            CommitMode::Auto => "auto",
            CommitMode::Sync => "sync",
            CommitMode::Async => "async",
        })
    }
}

/// Where a consumer without a position starts (`auto.offset.reset`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoOffsetReset {
    #[default]
    Earliest,
    Latest,
}

impl AutoOffsetReset {
    pub fn as_str(self) -> &'static str {
        match self {
            AutoOffsetReset::Earliest => "earliest",
            AutoOffsetReset::Latest => "latest",
        }
    }
}

impl std::str::FromStr for AutoOffsetReset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "earliest" => Ok(AutoOffsetReset::Earliest),
            "latest" => Ok(AutoOffsetReset::Latest),
            _ => Err(format!("{s:?} is not one of earliest, latest")),
        }
    }
}

/// What a transactional client does after a transaction's commit (or a
/// send inside it) failed with an error that leaves its fate unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxnRecovery {
    /// Abort the transaction and reuse the producer (what librdkafka's
    /// examples do); a successful abort records the op as `fail`. Exposed
    /// to the delayed-EndTxn race (KAFKA-17754) for clients without
    /// transaction version 2, such as librdkafka.
    #[default]
    Abort,
    /// Jepsen's proposed mitigation: record the op as `info`, drop the
    /// producer and build a new one (`init_transactions` bumps the epoch
    /// and fences whatever the old one still had in flight).
    Rebuild,
}

impl std::str::FromStr for TxnRecovery {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "abort" => Ok(TxnRecovery::Abort),
            "rebuild" => Ok(TxnRecovery::Rebuild),
            _ => Err(format!("{s:?} is not one of abort, rebuild")),
        }
    }
}

impl std::fmt::Display for TxnRecovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TxnRecovery::Abort => "abort",
            TxnRecovery::Rebuild => "rebuild",
        })
    }
}

/// Producer properties librdkafka knows under two names.
const PRODUCER_ALIASES: [(&str, &str); 3] = [
    ("delivery.timeout.ms", "message.timeout.ms"),
    ("linger.ms", "queue.buffering.max.ms"),
    ("retries", "message.send.max.retries"),
];

/// The `client.id` of gregor's clients, unless `client.common` sets one
/// (quota faults throttle this id).
pub const CLIENT_ID: &str = "gregor";

/// Everything a worker needs to build its clients.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    pub bootstrap: String,
    pub acks: Acks,
    pub idempotence: bool,
    pub txn: bool,
    pub sub_via: SubVia,
    pub commit: CommitMode,
    pub isolation_level: IsolationLevel,
    /// Where a consumer without a position starts.
    pub auto_offset_reset: AutoOffsetReset,
    /// New assignments start from the beginning (true) or from the group's
    /// committed offsets (false).
    pub from_beginning: bool,
    /// After a transaction failed with an unknown outcome.
    pub txn_recovery: TxnRecovery,
    /// An operation not completed by then is recorded as `info`.
    pub op_timeout: Duration,
    /// How long a poll waits for its first record.
    pub poll_timeout: Duration,
    pub group_id: String,
    /// Extra librdkafka properties: `common` apply to both, then the
    /// client-specific ones.
    pub common: BTreeMap<String, String>,
    pub producer: BTreeMap<String, String>,
    pub consumer: BTreeMap<String, String>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            bootstrap: "127.0.0.1:9092".into(),
            acks: Acks::All,
            idempotence: true,
            txn: false,
            sub_via: SubVia::Assign,
            commit: CommitMode::None,
            isolation_level: IsolationLevel::ReadUncommitted,
            auto_offset_reset: AutoOffsetReset::Earliest,
            from_beginning: true,
            txn_recovery: TxnRecovery::Abort,
            op_timeout: Duration::from_secs(10),
            poll_timeout: Duration::from_millis(500),
            group_id: "gregor".into(),
            common: BTreeMap::new(),
            producer: BTreeMap::new(),
            consumer: BTreeMap::new(),
        }
    }
}

impl ClientSettings {
    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            .set("client.id", CLIENT_ID)
            .set("socket.timeout.ms", "5000")
            .set("reconnect.backoff.max.ms", "1000")
            .set("topic.metadata.refresh.interval.ms", "5000")
            .set("log_level", "4");
        for (k, v) in &self.common {
            c.set(k, v);
        }
        c
    }

    /// librdkafka producer configuration; `txn_id` for transactional clients.
    pub fn producer_config(&self, txn_id: Option<&str>) -> ClientConfig {
        let mut c = self.base();
        let delivery = self.op_timeout.as_millis().max(1000).to_string();
        c.set("acks", self.acks.to_string())
            .set(
                "enable.idempotence",
                if self.idempotence { "true" } else { "false" },
            )
            .set("delivery.timeout.ms", &delivery)
            .set("request.timeout.ms", "3000")
            .set("linger.ms", "1");
        if let Some(id) = txn_id {
            c.set("transactional.id", id)
                .set("transaction.timeout.ms", "60000");
        }
        for (k, v) in &self.producer {
            // librdkafka aliases: a property set under either name replaces
            // gregor's default under the other. (ClientConfig is a hash map
            // handed over in no fixed order, so with both names set either
            // value could win, differently in different processes.)
            if let Some(other) = PRODUCER_ALIASES
                .iter()
                .find_map(|&(a, b)| (k == a).then_some(b).or((k == b).then_some(a)))
            {
                c.remove(other);
            }
            c.set(k, v);
        }
        c
    }

    /// librdkafka consumer configuration.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", &self.group_id)
            .set(
                "enable.auto.commit",
                if self.commit == CommitMode::Auto {
                    "true"
                } else {
                    "false"
                },
            )
            .set("enable.auto.offset.store", "true")
            .set("auto.offset.reset", self.auto_offset_reset.as_str())
            .set("isolation.level", self.isolation_level.to_string())
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "100")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000");
        for (k, v) in &self.consumer {
            c.set(k, v);
        }
        c
    }

    /// Builds (without connecting) a producer and a consumer from these
    /// settings, so that a property librdkafka rejects is reported once,
    /// before a run, rather than by every worker.
    pub fn validate(&self) -> Result<(), crate::ClientError> {
        use rdkafka::consumer::BaseConsumer;
        use rdkafka::producer::BaseProducer;
        let txn_id = self.txn.then(|| format!("{}-txn-check", self.group_id));
        self.producer_config(txn_id.as_deref())
            .create::<BaseProducer>()
            .map_err(|source| crate::ClientError::Create {
                what: "producer",
                source,
            })?;
        self.consumer_config()
            .create::<BaseConsumer>()
            .map_err(|source| crate::ClientError::Create {
                what: "consumer",
                source,
            })?;
        Ok(())
    }

    /// What a checker needs to know of these settings.
    pub fn meta(&self) -> ClientMeta {
        ClientMeta {
            acks: self.acks,
            idempotence: self.idempotence,
            txn: self.txn,
            sub_via: self.sub_via,
            isolation_level: self.isolation_level,
            auto_commit: self.commit == CommitMode::Auto,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_property_librdkafka_rejects_is_an_error_naming_it() {
        let mut s = ClientSettings::default();
        assert!(s.validate().is_ok());
        s.producer.insert("no.such.property".into(), "x".into());
        let e = s.validate().unwrap_err().to_string();
        assert!(
            e.contains("producer") && e.contains("no.such.property"),
            "{e}"
        );
        let mut s = ClientSettings {
            acks: Acks::Zero,
            ..ClientSettings::default()
        };
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("producer") && e.contains("idempotence"), "{e}");
        s.idempotence = false;
        s.consumer
            .insert("isolation.level".into(), "sometimes".into());
        let e = s.validate().unwrap_err().to_string();
        assert!(
            e.contains("consumer") && e.contains("isolation.level"),
            "{e}"
        );
    }

    #[test]
    fn passthrough_properties_override_the_defaults() {
        let mut s = ClientSettings::default();
        s.producer.insert("linger.ms".into(), "20".into());
        s.common.insert("client.id".into(), "mine".into());
        let p = s.producer_config(Some("t-1"));
        assert_eq!(p.get("linger.ms"), Some("20"));
        assert_eq!(p.get("client.id"), Some("mine"));
        assert_eq!(p.get("acks"), Some("all"));
        assert_eq!(p.get("transactional.id"), Some("t-1"));
        let c = s.consumer_config();
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("client.id"), Some("mine"));
    }

    #[test]
    fn a_property_set_under_its_alias_replaces_the_default_under_the_other_name() {
        // gregor sets delivery.timeout.ms from op-timeout; a transactional
        // scenario with transaction.timeout.ms 1000 must lower it through
        // message.timeout.ms, and nothing of the default may be left.
        let mut s = ClientSettings {
            txn: true,
            ..ClientSettings::default()
        };
        s.producer
            .insert("transaction.timeout.ms".into(), "1000".into());
        s.producer
            .insert("message.timeout.ms".into(), "1000".into());
        s.producer.insert("socket.timeout.ms".into(), "1000".into());
        let p = s.producer_config(Some("t-1"));
        assert_eq!(p.get("delivery.timeout.ms"), None);
        assert_eq!(p.get("message.timeout.ms"), Some("1000"));
        // Builds every time, whatever order the map hands it over in.
        for _ in 0..20 {
            s.validate().unwrap();
        }
    }
}
