//! Scenario files: what to run, in YAML.
//!
//! Every field is optional; a missing one takes the default shown in
//! `scenarios/default.yaml`. Unknown keys and bad values are errors that name
//! the file, the line and the field. Command-line flags override the file.

use std::collections::BTreeMap;
use std::path::Path;

use gregor_deploy::kafka::KafkaVersion;
use serde::{Deserialize, Serialize};

/// Errors loading a scenario.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Yaml { path: String, message: String },
    #[error("{path}: field `{field}`: {message}")]
    Invalid {
        path: String,
        field: String,
        message: String,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Scenario {
    /// Name of the scenario (the run store folder).
    pub name: Option<String>,
    /// Seed of the generator and the nemesis schedule.
    pub seed: Option<u64>,
    /// Seconds of workload (and faults) before healing and final reads.
    pub time_limit: Option<f64>,
    pub cluster: ClusterSection,
    pub topic: TopicSection,
    pub workload: WorkloadSection,
    pub client: ClientSection,
    pub nemesis: NemesisSection,
    pub checker: CheckerSection,
    /// `gregor capacity`'s ramp (ignored by `gregor run`).
    pub capacity: CapacitySection,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ClusterSection {
    /// `kafka` (default), `tansu` or `tansu-memory`.
    pub kind: Option<String>,
    /// Apache Kafka version to run, from Maven Central (default: gregor's
    /// pinned version); ignored with `kafka-home`.
    pub kafka_version: Option<String>,
    /// Broker settings written into every Kafka node's `server.properties`,
    /// over gregor's defaults (e.g. `unclean.leader.election.enable: "true"`).
    pub broker_configs: BTreeMap<String, String>,
    /// Brokers to start (local clusters).
    pub brokers: Option<usize>,
    /// Use an existing cluster at these `host:port`s instead of starting one.
    pub bootstrap: Option<String>,
    /// Apache Kafka installation (for `kind: kafka`); else `$KAFKA_HOME`.
    pub kafka_home: Option<String>,
    /// First client port of a local cluster (default: first free from 19092).
    pub base_port: Option<u16>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TopicSection {
    /// Prefix of the run's topics: each run writes to `<name>-<run id>`.
    pub name: Option<String>,
    pub partitions: Option<u32>,
    /// Replication factor; default: as many as the cluster supports, up to 3.
    pub replication: Option<u32>,
    /// Topic configs, e.g. `min.insync.replicas: "2"`.
    pub configs: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct WorkloadSection {
    /// Worker processes (each with a producer and a consumer).
    pub concurrency: Option<u64>,
    /// Operations per second over all workers.
    pub rate: Option<f64>,
    /// Keys in play at once.
    pub keys: Option<u64>,
    /// Writes per key before it is replaced by a fresh key.
    pub max_writes_per_key: Option<u64>,
    /// Relative weights of send, poll and txn operations.
    pub mix: Option<Mix>,
    /// Most micro-ops per send or txn op.
    pub max_mops: Option<usize>,
    /// Transactions (`txn` ops, a transactional id per worker).
    pub txn: Option<bool>,
    pub abort_probability: Option<f64>,
    /// Probability that an op reassigns (or resubscribes) a worker's keys.
    pub reassign_probability: Option<f64>,
    /// Seconds between deliberate client crashes (none by default).
    pub crash_clients: Option<f64>,
    /// One producer shared by every worker (more batching) instead of one
    /// per worker (Jepsen's model); not with transactions.
    pub shared_producer: Option<bool>,
    /// Send ops each worker keeps in flight, each under a process number of
    /// its own (1: one op at a time, as Jepsen's clients). Not with `txn`.
    pub pipeline: Option<u64>,
    /// Seconds before an op is recorded as `info`.
    pub op_timeout: Option<f64>,
    /// Seconds allowed for final reads.
    pub final_time_limit: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    #[serde(default)]
    pub send: u32,
    #[serde(default)]
    pub poll: u32,
    #[serde(default)]
    pub txn: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ClientSection {
    /// `0`, `1` or `all`.
    pub acks: Option<String>,
    pub idempotence: Option<bool>,
    /// `assign` or `subscribe`.
    pub sub_via: Option<String>,
    /// `none`, `auto`, `sync` or `async`.
    pub commit: Option<String>,
    /// `read_committed` or `read_uncommitted`.
    pub isolation_level: Option<String>,
    /// `earliest` or `latest`.
    pub auto_offset_reset: Option<String>,
    /// New assignments read from the beginning (true) or the committed offset.
    pub from_beginning: Option<bool>,
    /// librdkafka properties passed through as they are.
    pub producer: BTreeMap<String, String>,
    pub consumer: BTreeMap<String, String>,
    pub common: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct NemesisSection {
    /// Fault names, e.g. `[kill, pause]`; `[]` for none.
    pub faults: Option<Vec<String>>,
    /// Mean seconds between the start of one fault and the next.
    pub interval: Option<f64>,
    /// Seconds a fault lasts before it is healed (default: half the interval).
    pub duration: Option<f64>,
    /// Random extra fraction of the interval, 0..1.
    pub jitter: Option<f64>,
    /// Which brokers a fault hits: `one` (random), `minority`, `majority`,
    /// `all`, `broker-N`, `leader` (of key 0's partition) or `controller`
    /// (the active KRaft controller; Apache Kafka only).
    pub target: Option<String>,
    /// Seconds per fault, overriding `duration`, e.g. `{partition: 10}`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub durations: BTreeMap<String, f64>,
    /// `rotate` (default: the faults in turn) or `random`.
    pub schedule: Option<String>,
    /// Shape of `partition`: `isolate` (default: the targets cut off from
    /// the other brokers and the clients), `halves`, `random-halves`, `bridge`.
    pub partition: Option<String>,
    /// Link faults hit traffic from `clients`, `peers` or `all` (default).
    pub link_scope: Option<String>,
    /// `delay`: added latency per chunk each way, in ms (default 100).
    pub delay_ms: Option<f64>,
    /// `delay`: jitter, in ms (default 10).
    pub jitter_ms: Option<f64>,
    /// `bandwidth`: bytes per second each way (default 100000).
    pub bandwidth: Option<u64>,
    /// `clock-skew`: wall-clock offset in seconds, negative for behind (default 300).
    pub clock_skew: Option<f64>,
    /// `fetch-throttle`, `produce-throttle`, `replication-throttle`: bytes
    /// per second (client quota, per broker; replication rate, per broker;
    /// default 1024).
    pub throttle_rate: Option<u64>,
    /// A rolling upgrade (or downgrade) of the local Kafka cluster during
    /// the workload.
    pub upgrade: Option<UpgradeSection>,
    /// Broker settings changed node by node during the workload.
    pub rolling_config: Option<RollingConfigSection>,
}

/// `nemesis.rolling-config`: see [`crate::nemesis::upgrade`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RollingConfigSection {
    /// Broker settings each node takes over the cluster's.
    pub configs: BTreeMap<String, String>,
    /// Seconds into the workload the first node goes (default 10).
    pub at: Option<f64>,
    /// Seconds between one node rejoining and the next going (default 5).
    pub settle: Option<f64>,
}

/// `nemesis.upgrade`: see [`crate::nemesis::upgrade`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct UpgradeSection {
    /// The version every node ends on (Maven Central's jars).
    pub to: String,
    /// Must equal the cluster's version when given (a check on the file).
    pub from: Option<String>,
    /// Seconds into the workload the first node goes (default 10).
    pub at: Option<f64>,
    /// Seconds between one node rejoining and the next going (default 5).
    pub settle: Option<f64>,
    /// Raise `metadata.version` once every node runs a newer version (default true).
    pub finalize: Option<bool>,
}

/// The ramp of `gregor capacity`; defaults in [`crate::capacity::defaults`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct CapacitySection {
    /// Records per second offered by the first step.
    pub start_rate: Option<f64>,
    /// Each step offers this many times the rate of the one before.
    pub step_factor: Option<f64>,
    /// No step offers more than this.
    pub max_rate: Option<f64>,
    /// Seconds each step offers records for.
    pub step_secs: Option<f64>,
    /// A step is sustained while its p99 latency stays at most this.
    pub p99_limit_ms: Option<f64>,
    /// ... and its failed sends at most this fraction of its sends.
    pub error_limit: Option<f64>,
    /// Bytes per record value.
    pub value_bytes: Option<usize>,
    /// Steps that bisect between the last sustained rate and the first not.
    pub refine: Option<usize>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct CheckerSection {
    /// Infer write-write dependencies from offset order (Jepsen's ww-deps).
    pub ww_deps: Option<bool>,
    /// End the workload at the first anomaly the online checker proves
    /// invalid (then heal, final reads and the full check as usual).
    pub fail_fast: Option<bool>,
}

impl Scenario {
    /// Parses YAML text; `path` names the source in messages.
    pub fn parse(text: &str, path: &str) -> Result<Scenario, ScenarioError> {
        if text.trim().is_empty() {
            return Ok(Scenario::default());
        }
        let s: Scenario = serde_saphyr::from_str(text).map_err(|e| ScenarioError::Yaml {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        s.validate(path)?;
        Ok(s)
    }

    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: p.clone(),
            source,
        })?;
        Self::parse(&text, &p)
    }

    /// Checks values that the types alone do not constrain.
    pub fn validate(&self, path: &str) -> Result<(), ScenarioError> {
        let bad = |field: &str, message: String| {
            Err(ScenarioError::Invalid {
                path: path.to_string(),
                field: field.to_string(),
                message,
            })
        };
        let one_of =
            |field: &str, v: &Option<String>, allowed: &[&str]| -> Result<(), ScenarioError> {
                match v {
                    Some(x) if !allowed.contains(&x.as_str()) => {
                        bad(field, format!("{x:?} is not one of {}", allowed.join(", ")))
                    }
                    _ => Ok(()),
                }
            };
        one_of(
            "cluster.kind",
            &self.cluster.kind,
            &["tansu", "tansu-memory", "kafka"],
        )?;
        if let Some(v) = &self.cluster.kafka_version {
            if let Err(e) = gregor_deploy::kafka::KafkaVersion::parse(v) {
                return bad("cluster.kafka-version", e.to_string());
            }
        }
        one_of("client.acks", &self.client.acks, &["0", "1", "all", "-1"])?;
        if let (Some(a @ ("0" | "1")), Some(true)) =
            (self.client.acks.as_deref(), self.client.idempotence)
        {
            return bad(
                "client.idempotence",
                format!("idempotent producers need acks: all, not {a:?} (librdkafka refuses the combination); set idempotence: false"),
            );
        }
        one_of(
            "client.sub-via",
            &self.client.sub_via,
            &["assign", "subscribe"],
        )?;
        one_of(
            "client.commit",
            &self.client.commit,
            &["none", "auto", "sync", "async"],
        )?;
        one_of(
            "client.isolation-level",
            &self.client.isolation_level,
            &["read_committed", "read_uncommitted"],
        )?;
        one_of(
            "client.auto-offset-reset",
            &self.client.auto_offset_reset,
            &["earliest", "latest"],
        )?;
        if let Some(t) = self.time_limit {
            if !(t > 0.0 && t.is_finite()) {
                return bad(
                    "time-limit",
                    format!("{t} is not a positive number of seconds"),
                );
            }
        }
        for (field, v) in [
            ("workload.rate", self.workload.rate),
            ("workload.op-timeout", self.workload.op_timeout),
            ("workload.final-time-limit", self.workload.final_time_limit),
            ("nemesis.interval", self.nemesis.interval),
            ("nemesis.duration", self.nemesis.duration),
            ("capacity.start-rate", self.capacity.start_rate),
            ("capacity.max-rate", self.capacity.max_rate),
            ("capacity.step-secs", self.capacity.step_secs),
            ("capacity.p99-limit-ms", self.capacity.p99_limit_ms),
        ] {
            if let Some(v) = v {
                if !(v > 0.0 && v.is_finite()) {
                    return bad(field, format!("{v} must be a positive number"));
                }
            }
        }
        for (field, v) in [
            (
                "workload.abort-probability",
                self.workload.abort_probability,
            ),
            (
                "workload.reassign-probability",
                self.workload.reassign_probability,
            ),
            ("nemesis.jitter", self.nemesis.jitter),
            ("capacity.error-limit", self.capacity.error_limit),
        ] {
            if let Some(v) = v {
                if !(0.0..=1.0).contains(&v) {
                    return bad(field, format!("{v} is not between 0 and 1"));
                }
            }
        }
        if let Some(f) = self.capacity.step_factor {
            if !(f > 1.0 && f.is_finite()) {
                return bad(
                    "capacity.step-factor",
                    format!("{f} must be a number above 1"),
                );
            }
        }
        if let (Some(a), Some(b)) = (self.capacity.start_rate, self.capacity.max_rate) {
            if a > b {
                return bad(
                    "capacity.start-rate",
                    format!("{a} is above capacity.max-rate {b}"),
                );
            }
        }
        if self.capacity.value_bytes == Some(0) {
            return bad("capacity.value-bytes", "must be at least 1".into());
        }
        if self.workload.concurrency == Some(0) {
            return bad("workload.concurrency", "must be at least 1".into());
        }
        if self.workload.pipeline == Some(0) {
            return bad("workload.pipeline", "must be at least 1".into());
        }
        if self.workload.pipeline.is_some_and(|n| n > 1) && self.workload.txn == Some(true) {
            return bad(
                "workload.pipeline",
                "transactions cannot be pipelined (a transactional producer has one transaction open at a time); use 1 with txn".into(),
            );
        }
        if self.workload.keys == Some(0) {
            return bad("workload.keys", "must be at least 1".into());
        }
        if self.topic.partitions == Some(0) {
            return bad("topic.partitions", "must be at least 1".into());
        }
        if let Some(n) = &self.topic.name {
            // The prefix of the run's topics `<name>-<run id>[-<n>]`, which
            // Kafka limits to 249 characters of these.
            let ok = |b: u8| b.is_ascii_alphanumeric() || b"._-".contains(&b);
            if n.is_empty() || n.len() > 200 || !n.bytes().all(ok) {
                return bad(
                    "topic.name",
                    format!("{n:?} is not a usable topic prefix (1 to 200 of a-z A-Z 0-9 . _ -)"),
                );
            }
        }
        if let Some(r) = &self.nemesis.rolling_config {
            if self.nemesis.upgrade.is_some() {
                return bad(
                    "nemesis.rolling-config",
                    "one rolling change per run: drop nemesis.upgrade or nemesis.rolling-config"
                        .into(),
                );
            }
            if r.configs.is_empty() {
                return bad(
                    "nemesis.rolling-config.configs",
                    "names no broker setting".into(),
                );
            }
            if self.cluster.bootstrap.is_some()
                || matches!(self.cluster.kind.as_deref(), Some(k) if k != "kafka")
            {
                return bad(
                    "nemesis.rolling-config",
                    "needs a local Apache Kafka cluster (no cluster.bootstrap, cluster.kind kafka)"
                        .into(),
                );
            }
        }
        if let Some(u) = &self.nemesis.upgrade {
            if let Err(e) = gregor_deploy::kafka::KafkaVersion::parse(&u.to) {
                return bad("nemesis.upgrade.to", e.to_string());
            }
            if self.cluster.bootstrap.is_some() || self.cluster.kafka_home.is_some() {
                return bad(
                    "nemesis.upgrade",
                    "needs a local cluster run from Maven Central's jars (no cluster.bootstrap, no cluster.kafka-home)".into(),
                );
            }
            if matches!(self.cluster.kind.as_deref(), Some(k) if k != "kafka") {
                return bad(
                    "nemesis.upgrade",
                    "only Apache Kafka clusters change versions".into(),
                );
            }
            let current = self
                .cluster
                .kafka_version
                .clone()
                .unwrap_or_else(|| gregor_deploy::DEFAULT_KAFKA_VERSION.to_string());
            if let Some(from) = &u.from {
                if *from != current {
                    return bad(
                        "nemesis.upgrade.from",
                        format!(
                            "{from} is not the cluster's version {current} (cluster.kafka-version)"
                        ),
                    );
                }
            }
            if u.to == current {
                return bad(
                    "nemesis.upgrade.to",
                    format!("{} is already the cluster's version; set cluster.kafka-version to the version to start from", u.to),
                );
            }
            if let Err(message) = downgrade_allowed(&current, &u.to) {
                return bad("nemesis.upgrade.to", message);
            }
            let older = matches!(
                (KafkaVersion::parse(&u.to), KafkaVersion::parse(&current)),
                (Ok(to), Ok(from)) if to < from
            );
            if older && u.finalize == Some(true) {
                return bad(
                    "nemesis.upgrade.finalize",
                    "a downgrade is never finalized: Kafka cannot lower metadata.version".into(),
                );
            }
            for (field, v) in [
                ("nemesis.upgrade.at", u.at),
                ("nemesis.upgrade.settle", u.settle),
            ] {
                if v.is_some_and(|v| !(v >= 0.0 && v.is_finite())) {
                    return bad(field, "must be a number of seconds, at least 0".into());
                }
            }
        }
        if self.cluster.brokers == Some(0) {
            return bad("cluster.brokers", "must be at least 1".into());
        }
        if let Some(m) = &self.workload.mix {
            if m.send + m.poll + m.txn == 0 {
                return bad("workload.mix", "all weights are zero".into());
            }
        }
        if let Some(faults) = &self.nemesis.faults {
            for f in faults {
                if crate::nemesis::Fault::parse(f).is_none() {
                    return bad(
                        "nemesis.faults",
                        format!(
                            "unknown fault {f:?}; known faults: {}",
                            crate::nemesis::Fault::NAMES.join(", ")
                        ),
                    );
                }
            }
        }
        if let Some(t) = &self.nemesis.target {
            if crate::nemesis::Target::parse(t).is_none() {
                return bad(
                    "nemesis.target",
                    format!(
                        "unknown target {t:?}; use {}",
                        crate::nemesis::Target::NAMES
                    ),
                );
            }
        }
        if let Err(crate::nemesis::NemesisError::Invalid { field, message }) =
            crate::nemesis::NemesisConfig::from_section(&self.nemesis, 0)
        {
            return bad(&format!("nemesis.{field}"), message);
        }
        Ok(())
    }
}

/// Whether Kafka lets a cluster running `from` go back to `to` (`Ok` when
/// `to` is not older). A cluster's `metadata.version` is its release's
/// (`MAJOR.MINOR`: a new cluster is formatted at it, an upgrade finalizes
/// to it), never lowered, and a broker refuses to start on a
/// `metadata.version` newer than its own release knows. So a downgrade
/// stays within its release (4.1.1 → 4.1.0); across major versions (4.x →
/// 3.x) it is impossible besides, since 3.x reads no 4.x `metadata.version`.
pub fn downgrade_allowed(from: &str, to: &str) -> Result<(), String> {
    let (Ok(f), Ok(t)) = (KafkaVersion::parse(from), KafkaVersion::parse(to)) else {
        return Ok(());
    };
    if t >= f || t.release() == f.release() {
        return Ok(());
    }
    let why = if t.major < f.major {
        format!(
            "Kafka {to} cannot read the metadata.version of a {}.x cluster (KRaft metadata of a newer major version)",
            f.major
        )
    } else {
        format!(
            "the cluster's metadata.version is {}.{}'s (its storage formatted by {from}) and Kafka {to} only knows versions up to {}.{}'s",
            f.major, f.minor, t.major, t.minor
        )
    };
    Err(format!(
        "a downgrade from {from} to {to} is not one Kafka allows: {why}; metadata.version is never lowered, so a downgrade stays within the release ({}.{}.x)",
        f.major, f.minor
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upgrade_must_change_the_version_of_a_local_jar_cluster() {
        let err = |yaml: &str| Scenario::parse(yaml, "u.yaml").unwrap_err().to_string();
        let e = err("cluster: {kafka-version: 4.1.1}\nnemesis: {upgrade: {to: 4.1.1}}\n");
        assert!(
            e.contains("nemesis.upgrade.to") && e.contains("already"),
            "{e}"
        );
        let e =
            err("cluster: {kafka-version: 3.9.1}\nnemesis: {upgrade: {from: 3.9.0, to: 4.1.1}}\n");
        assert!(e.contains("nemesis.upgrade.from"), "{e}");
        let e = err("cluster: {bootstrap: \"h:1\"}\nnemesis: {upgrade: {to: 4.1.1}}\n");
        assert!(e.contains("local cluster"), "{e}");
        let e = err("cluster: {kind: tansu}\nnemesis: {upgrade: {to: 4.1.1}}\n");
        assert!(e.contains("only Apache Kafka"), "{e}");
        let e = err("cluster: {kafka-version: 3.9.1}\nnemesis: {upgrade: {to: four}}\n");
        assert!(e.contains("nemesis.upgrade.to"), "{e}");
        let ok = Scenario::parse(
            "cluster: {kafka-version: 3.9.1}\nnemesis: {upgrade: {from: 3.9.1, to: 4.1.1, at: 5}}\n",
            "u.yaml",
        )
        .unwrap();
        assert_eq!(ok.nemesis.upgrade.unwrap().to, "4.1.1");
    }

    #[test]
    fn a_downgrade_kafka_does_not_allow_is_refused_naming_the_target_version() {
        let err = |yaml: &str| Scenario::parse(yaml, "d.yaml").unwrap_err().to_string();
        // Across major versions: 3.x reads no 4.x metadata.version.
        let e = err("cluster: {kafka-version: 4.1.1}\nnemesis: {upgrade: {to: 3.9.1}}\n");
        assert!(
            e.contains("nemesis.upgrade.to")
                && e.contains("from 4.1.1 to 3.9.1")
                && e.contains("4.x cluster"),
            "{e}"
        );
        // Across releases: the cluster's metadata.version is 4.1's.
        let e = err("cluster: {kafka-version: 4.1.1}\nnemesis: {upgrade: {to: 4.0.2}}\n");
        assert!(
            e.contains("nemesis.upgrade.to") && e.contains("4.1's") && e.contains("4.1.x"),
            "{e}"
        );
        // Within the release it is allowed, but never finalized.
        let ok = Scenario::parse(
            "cluster: {kafka-version: 4.1.1}\nnemesis: {upgrade: {to: 4.1.0}}\n",
            "d.yaml",
        );
        assert!(ok.is_ok(), "{ok:?}");
        let e = err(
            "cluster: {kafka-version: 4.1.1}\nnemesis: {upgrade: {to: 4.1.0, finalize: true}}\n",
        );
        assert!(e.contains("nemesis.upgrade.finalize"), "{e}");
        // Upgrades, finalized or not, are not downgrades.
        assert_eq!(downgrade_allowed("3.9.1", "4.1.1"), Ok(()));
        assert_eq!(downgrade_allowed("4.0.2", "4.1.1"), Ok(()));
    }

    #[test]
    fn every_example_scenario_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 3, "expected example scenarios in {}", dir.display());
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_file_line_and_key() {
        let y = "name: x\nworkload:\n  concurrency: 2\n  ratee: 5\n";
        let e = Scenario::parse(y, "s.yaml").unwrap_err().to_string();
        assert!(
            e.contains("s.yaml") && e.contains("ratee") && e.contains('4'),
            "{e}"
        );
    }

    #[test]
    fn a_bad_type_is_an_error_naming_the_line() {
        let y = "workload:\n  concurrency: lots\n";
        let e = Scenario::parse(y, "s.yaml").unwrap_err().to_string();
        assert!(e.contains("s.yaml") && e.contains('2'), "{e}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let e = Scenario::parse("client:\n  acks: 2\n", "s.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("client.acks"), "{e}");
        let e = Scenario::parse("nemesis:\n  faults: [kill, explode]\n", "s.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("explode") && e.contains("pause"), "{e}");
        let e = Scenario::parse("time-limit: -1\n", "s.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("time-limit"), "{e}");
        let e = Scenario::parse("topic:\n  name: \"my topic\"\n", "s.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("topic.name") && e.contains("my topic"), "{e}");
        let e = Scenario::parse("workload:\n  txn: true\n  pipeline: 8\n", "s.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("workload.pipeline") && e.contains("txn"), "{e}");
        assert!(Scenario::parse("workload:\n  pipeline: 8\n", "s.yaml").is_ok());
    }
}
