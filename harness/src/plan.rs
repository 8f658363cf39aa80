//! The run plan: a scenario resolved once, every default filled in and
//! every value typed.
//!
//! A [`Scenario`] is what a user wrote: every field optional, values as
//! written. [`RunPlan::resolve`] is the one place where a scenario's
//! defaults are filled in and its values checked and typed (the defaults
//! themselves are the constants of [`defaults`], which `--help`,
//! `scenarios/default.yaml` and the README show). Everything after
//! resolution — the runner, the nemesis, `gregor capacity`, and the client
//! child process — reads the plan and decides nothing of its own.
//!
//! The plan is written into the run directory as `scenario.yaml` (its keys
//! are a scenario's, so the file is itself a scenario that resolves to the
//! same plan) and handed to the client child as it is: the child
//! deserializes the plan, it never resolves a scenario again.
//! `gregor run --print-plan` prints it and stops.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use gregor_deploy::ClusterKind;
use gregor_history::{Acks, IsolationLevel, SubVia};
use gregor_workloads::{AutoOffsetReset, CommitMode, TxnRecovery};
use serde::{Deserialize, Serialize};

use crate::nemesis::{Fault, LinkScope, PartitionShape, Schedule, Target};
use crate::scenario::{CapacitySection, Mix, Scenario, ScenarioError};

/// Every default of a run, defined once.
pub mod defaults {
    /// Scenario name (the run store's folder).
    pub const NAME: &str = "default";
    /// Seconds of workload.
    pub const TIME_LIMIT: f64 = 60.0;
    /// Keys in play at once (and partitions of the run's topic).
    pub const KEYS: u64 = 8;
    /// Worker processes.
    pub const CONCURRENCY: u64 = 6;
    /// Operations per second over all workers.
    pub const RATE: f64 = 200.0;
    pub const MAX_WRITES_PER_KEY: u64 = 10_000;
    pub const MAX_MOPS: usize = 3;
    pub const PIPELINE: u64 = 1;
    pub const ABORT_PROBABILITY: f64 = 0.1;
    pub const REASSIGN_PROBABILITY: f64 = 0.01;
    /// Seconds before an op is recorded as `info`.
    pub const OP_TIMEOUT: f64 = 10.0;
    /// Seconds allowed for final reads.
    pub const FINAL_TIME_LIMIT: f64 = 60.0;
    /// Faults of a local cluster (an attached one gets none).
    pub const FAULTS: &[&str] = &["kill"];
    /// Mean seconds between fault starts.
    pub const INTERVAL: f64 = 10.0;
    pub const JITTER: f64 = 0.2;
    pub const TARGET: &str = "one";
    /// `delay`: ms each way, and its jitter.
    pub const DELAY_MS: f64 = 100.0;
    pub const DELAY_JITTER_MS: f64 = 10.0;
    /// `bandwidth`: bytes per second each way.
    pub const BANDWIDTH: u64 = 100_000;
    /// `clock-skew`: seconds.
    pub const CLOCK_SKEW: f64 = 300.0;
    /// Brokers' log directories on lazy disks.
    pub const LAZY_DISK: bool = false;
    /// `disk-slow`: ms added to every write and fsync.
    pub const DISK_SLOW_MS: f64 = 100.0;
    /// Quota and replication throttles: bytes per second.
    pub const THROTTLE_RATE: u64 = 1024;
    /// Rolling upgrades and config changes: seconds into the workload the
    /// first node goes, and between one node rejoining and the next going.
    pub const ROLLING_AT: f64 = 10.0;
    pub const ROLLING_SETTLE: f64 = 5.0;
}

/// A resolved scenario: what a run does, nothing left to decide.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RunPlan {
    pub name: String,
    pub seed: u64,
    /// Seconds of workload (and faults) before healing and final reads.
    pub time_limit: f64,
    pub cluster: ClusterPlan,
    pub topic: TopicPlan,
    pub workload: WorkloadPlan,
    pub client: ClientPlan,
    pub nemesis: NemesisPlan,
    pub checker: CheckerPlan,
    /// `gregor capacity`'s ramp, as written (resolved by
    /// [`crate::capacity::Ramp::from_section`], whose defaults live there).
    #[serde(default, skip_serializing_if = "is_default")]
    pub capacity: CapacitySection,
}

fn is_default<T: Default + PartialEq>(t: &T) -> bool {
    *t == T::default()
}

/// The cluster: a local one gregor starts (`kind` set) or an existing one
/// (`bootstrap` set).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClusterPlan {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ClusterKind>,
    /// Apache Kafka from Maven Central (local `kafka` clusters without
    /// `kafka-home`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_version: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub broker_configs: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brokers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_home: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_port: Option<u16>,
    /// Log directories on lazy disks (local Apache Kafka only).
    pub lazy_disk: bool,
}

impl ClusterPlan {
    /// The local cluster to start: its kind and broker count (`None` when
    /// the run attaches to `bootstrap`).
    pub fn local(&self) -> Option<(ClusterKind, usize)> {
        match (self.bootstrap.is_none(), self.kind) {
            (true, Some(kind)) => Some((kind, self.brokers.unwrap_or(kind.default_brokers()))),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TopicPlan {
    /// Prefix of the run's topics: `<name>-<run id>`.
    pub name: String,
    pub partitions: u32,
    /// `None`: as many as the cluster supports, up to 3 (decided when the
    /// topic is created, from the brokers in the metadata).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WorkloadPlan {
    pub concurrency: u64,
    pub rate: f64,
    pub keys: u64,
    pub max_writes_per_key: u64,
    pub mix: Mix,
    pub max_mops: usize,
    pub txn: bool,
    pub abort_probability: f64,
    pub reassign_probability: f64,
    /// Seconds between deliberate client crashes (`None`: no crashes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crash_clients: Option<f64>,
    pub shared_producer: bool,
    pub pipeline: u64,
    pub op_timeout: f64,
    pub final_time_limit: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClientPlan {
    pub acks: Acks,
    pub idempotence: bool,
    pub sub_via: SubVia,
    pub commit: CommitMode,
    pub isolation_level: IsolationLevel,
    pub auto_offset_reset: AutoOffsetReset,
    pub from_beginning: bool,
    pub txn_recovery: TxnRecovery,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub producer: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub consumer: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub common: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NemesisPlan {
    pub faults: Vec<Fault>,
    pub interval: f64,
    pub duration: f64,
    pub jitter: f64,
    pub target: Target,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub durations: BTreeMap<Fault, f64>,
    pub schedule: Schedule,
    pub partition: PartitionShape,
    pub link_scope: LinkScope,
    pub delay_ms: f64,
    pub jitter_ms: f64,
    pub bandwidth: u64,
    pub clock_skew: f64,
    pub disk_slow_ms: f64,
    pub throttle_rate: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradePlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolling_config: Option<RollingConfigPlan>,
}

impl NemesisPlan {
    /// How long `fault` lasts.
    pub fn duration_of(&self, fault: Fault) -> Duration {
        Duration::from_secs_f64(*self.durations.get(&fault).unwrap_or(&self.duration))
    }
}

/// `nemesis.upgrade`, resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct UpgradePlan {
    pub to: String,
    /// The cluster's version before the upgrade.
    pub from: String,
    pub at: f64,
    pub settle: f64,
    pub finalize: bool,
}

/// `nemesis.rolling-config`, resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RollingConfigPlan {
    pub configs: BTreeMap<String, String>,
    pub at: f64,
    pub settle: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CheckerPlan {
    pub ww_deps: bool,
    pub fail_fast: bool,
}

/// A random seed, when the scenario gives none.
fn fresh_seed() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        % 1_000_000_007
}

/// Parses a scenario string into `T`, or an error naming the field.
fn typed<T: std::str::FromStr>(
    bad: &impl Fn(&str, String) -> ScenarioError,
    field: &str,
    v: Option<&str>,
    default: &str,
) -> Result<T, ScenarioError>
where
    T::Err: std::fmt::Display,
{
    v.unwrap_or(default)
        .parse()
        .map_err(|e: T::Err| bad(field, e.to_string()))
}

impl RunPlan {
    /// Resolves `s` (whose source `path` names in messages): every default
    /// filled in from [`defaults`], every value checked and typed.
    pub fn resolve(s: &Scenario, path: &str) -> Result<RunPlan, ScenarioError> {
        let bad = |field: &str, message: String| ScenarioError::Invalid {
            path: path.to_string(),
            field: field.to_string(),
            message,
            line: None,
        };
        check(s, &bad)?;
        let attach = s.cluster.bootstrap.is_some();
        let kind: Option<ClusterKind> = if attach {
            None
        } else {
            Some(match s.cluster.kind.as_deref() {
                None => ClusterKind::DEFAULT,
                Some(k) => k.parse().map_err(|e| bad("cluster.kind", format!("{e}")))?,
            })
        };
        let kafka_version = match kind {
            Some(ClusterKind::Kafka) if s.cluster.kafka_home.is_none() => Some(
                s.cluster
                    .kafka_version
                    .clone()
                    .unwrap_or_else(|| gregor_deploy::DEFAULT_KAFKA_VERSION.into()),
            ),
            _ => s.cluster.kafka_version.clone(),
        };
        let cluster = ClusterPlan {
            kind,
            brokers: match kind {
                Some(k) => Some(s.cluster.brokers.unwrap_or(k.default_brokers())),
                None => s.cluster.brokers,
            },
            kafka_version,
            broker_configs: s.cluster.broker_configs.clone(),
            bootstrap: s.cluster.bootstrap.clone(),
            kafka_home: s.cluster.kafka_home.clone(),
            base_port: s.cluster.base_port,
            lazy_disk: s.cluster.lazy_disk.unwrap_or(defaults::LAZY_DISK),
        };
        if cluster.lazy_disk && kind != Some(ClusterKind::Kafka) {
            return Err(bad(
                "cluster.lazy-disk",
                "lazy disks need a local Apache Kafka cluster (cluster.kind kafka, no \
                 cluster.bootstrap): each node's log directory goes on one"
                    .into(),
            ));
        }

        let w = &s.workload;
        let keys = w.keys.unwrap_or(defaults::KEYS);
        let txn = w.txn.unwrap_or(false);
        let topic = TopicPlan {
            name: s
                .topic
                .name
                .clone()
                .unwrap_or_else(|| gregor_workloads::DEFAULT_TOPIC_PREFIX.into()),
            partitions: s.topic.partitions.unwrap_or(keys as u32),
            replication: s.topic.replication,
            configs: s.topic.configs.clone(),
        };
        let workload = WorkloadPlan {
            concurrency: w.concurrency.unwrap_or(defaults::CONCURRENCY),
            rate: w.rate.unwrap_or(defaults::RATE),
            keys,
            max_writes_per_key: w.max_writes_per_key.unwrap_or(defaults::MAX_WRITES_PER_KEY),
            mix: w.mix.clone().unwrap_or(Mix {
                send: 1,
                poll: 1,
                txn: u32::from(txn) * 2,
            }),
            max_mops: w.max_mops.unwrap_or(defaults::MAX_MOPS),
            txn,
            abort_probability: w.abort_probability.unwrap_or(defaults::ABORT_PROBABILITY),
            reassign_probability: w
                .reassign_probability
                .unwrap_or(defaults::REASSIGN_PROBABILITY),
            crash_clients: w.crash_clients,
            shared_producer: w.shared_producer.unwrap_or(false),
            pipeline: w.pipeline.unwrap_or(defaults::PIPELINE),
            op_timeout: w.op_timeout.unwrap_or(defaults::OP_TIMEOUT),
            final_time_limit: w.final_time_limit.unwrap_or(defaults::FINAL_TIME_LIMIT),
        };

        let c = &s.client;
        let acks: Acks = typed(&bad, "client.acks", c.acks.as_deref(), "all")?;
        let client = ClientPlan {
            acks,
            // librdkafka refuses an idempotent producer without acks=all.
            idempotence: c.idempotence.unwrap_or(acks == Acks::All),
            sub_via: match c.sub_via.as_deref() {
                None | Some("assign") => SubVia::Assign,
                Some("subscribe") => SubVia::Subscribe,
                Some(other) => {
                    return Err(bad(
                        "client.sub-via",
                        format!("{other:?} is not one of assign, subscribe"),
                    ))
                }
            },
            commit: typed(&bad, "client.commit", c.commit.as_deref(), "none")?,
            isolation_level: typed(
                &bad,
                "client.isolation-level",
                c.isolation_level.as_deref(),
                if txn {
                    "read_committed"
                } else {
                    "read_uncommitted"
                },
            )?,
            auto_offset_reset: typed(
                &bad,
                "client.auto-offset-reset",
                c.auto_offset_reset.as_deref(),
                "earliest",
            )?,
            from_beginning: c.from_beginning.unwrap_or(true),
            txn_recovery: typed(
                &bad,
                "client.txn-recovery",
                c.txn_recovery.as_deref(),
                "abort",
            )?,
            producer: c.producer.clone(),
            consumer: c.consumer.clone(),
            common: c.common.clone(),
        };

        let nemesis = resolve_nemesis(s, &cluster, &bad)?;
        Ok(RunPlan {
            name: s.name.clone().unwrap_or_else(|| defaults::NAME.into()),
            seed: s.seed.unwrap_or_else(fresh_seed),
            time_limit: s.time_limit.unwrap_or(defaults::TIME_LIMIT),
            cluster,
            topic,
            workload,
            client,
            nemesis,
            checker: CheckerPlan {
                ww_deps: s.checker.ww_deps.unwrap_or(false),
                fail_fast: s.checker.fail_fast.unwrap_or(false),
            },
            capacity: s.capacity.clone(),
        })
    }

    /// Loads a plan written by [`RunPlan::save`] (the client child's input):
    /// every field must be there; nothing is filled in.
    pub fn load(path: &Path) -> Result<RunPlan, ScenarioError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: p.clone(),
            source,
        })?;
        serde_saphyr::from_str(&text).map_err(|e| ScenarioError::Yaml {
            path: p,
            message: e.to_string(),
        })
    }

    /// The plan as YAML: a scenario file that resolves to this plan.
    pub fn to_yaml(&self) -> Result<String, ScenarioError> {
        serde_saphyr::to_string(self).map_err(|e| ScenarioError::Yaml {
            path: "run plan".into(),
            message: format!("cannot serialize: {e}"),
        })
    }

    /// How long the workload runs.
    pub fn time_limit(&self) -> Duration {
        Duration::from_secs_f64(self.time_limit)
    }
}

impl Default for NemesisPlan {
    /// The defaults of [`defaults`], with no fault.
    fn default() -> Self {
        NemesisPlan {
            faults: vec![],
            interval: defaults::INTERVAL,
            duration: defaults::INTERVAL / 2.0,
            jitter: defaults::JITTER,
            target: Target::One,
            durations: BTreeMap::new(),
            schedule: Schedule::Rotate,
            partition: PartitionShape::Isolate,
            link_scope: LinkScope::All,
            delay_ms: defaults::DELAY_MS,
            jitter_ms: defaults::DELAY_JITTER_MS,
            bandwidth: defaults::BANDWIDTH,
            clock_skew: defaults::CLOCK_SKEW,
            disk_slow_ms: defaults::DISK_SLOW_MS,
            throttle_rate: defaults::THROTTLE_RATE,
            upgrade: None,
            rolling_config: None,
        }
    }
}

fn resolve_nemesis(
    s: &Scenario,
    cluster: &ClusterPlan,
    bad: &impl Fn(&str, String) -> ScenarioError,
) -> Result<NemesisPlan, ScenarioError> {
    let n = &s.nemesis;
    let d = NemesisPlan::default();
    let faults = match &n.faults {
        Some(v) => v
            .iter()
            .map(|f| typed(bad, "nemesis.faults", Some(f), ""))
            .collect::<Result<Vec<Fault>, _>>()?,
        None if cluster.bootstrap.is_some() => vec![],
        None => defaults::FAULTS
            .iter()
            .map(|f| typed(bad, "nemesis.faults", Some(f), ""))
            .collect::<Result<Vec<Fault>, _>>()?,
    };
    if let Some(f) = faults.iter().find(|f| f.needs_lazy_disk()) {
        if !cluster.lazy_disk {
            return Err(bad(
                "nemesis.faults",
                format!(
                    "{f} needs the brokers' log directories on lazy disks, which forget \
                     what was not fsynced: set cluster.lazy-disk: true (a local Apache Kafka cluster)"
                ),
            ));
        }
    }
    let mut durations = BTreeMap::new();
    for (name, secs) in &n.durations {
        if !(*secs > 0.0 && secs.is_finite()) {
            return Err(bad(
                "nemesis.durations",
                format!("{name}: {secs} must be a positive number"),
            ));
        }
        durations.insert(typed(bad, "nemesis.durations", Some(name), "")?, *secs);
    }
    let interval = n.interval.unwrap_or(d.interval);
    let ms = |field: &str, v: Option<f64>, default: f64| match v {
        None => Ok(default),
        Some(x) if x >= 0.0 && x.is_finite() => Ok(x),
        Some(x) => Err(bad(
            field,
            format!("{x} is not a number of milliseconds >= 0"),
        )),
    };
    let from = cluster
        .kafka_version
        .clone()
        .unwrap_or_else(|| gregor_deploy::DEFAULT_KAFKA_VERSION.into());
    Ok(NemesisPlan {
        faults,
        interval,
        duration: n.duration.unwrap_or(interval / 2.0),
        jitter: n.jitter.unwrap_or(d.jitter),
        target: typed(bad, "nemesis.target", n.target.as_deref(), defaults::TARGET)?,
        durations,
        schedule: typed(bad, "nemesis.schedule", n.schedule.as_deref(), "rotate")?,
        partition: typed(bad, "nemesis.partition", n.partition.as_deref(), "isolate")?,
        link_scope: typed(bad, "nemesis.link-scope", n.link_scope.as_deref(), "all")?,
        delay_ms: ms("nemesis.delay-ms", n.delay_ms, d.delay_ms)?,
        jitter_ms: ms("nemesis.jitter-ms", n.jitter_ms, d.jitter_ms)?,
        bandwidth: n.bandwidth.unwrap_or(d.bandwidth),
        clock_skew: n.clock_skew.unwrap_or(d.clock_skew),
        disk_slow_ms: n.disk_slow_ms.unwrap_or(d.disk_slow_ms),
        throttle_rate: match n.throttle_rate {
            Some(0) => {
                return Err(bad(
                    "nemesis.throttle-rate",
                    "0 bytes/s would stop the clients, not slow them; give a rate >= 1".into(),
                ))
            }
            r => r.unwrap_or(d.throttle_rate),
        },
        upgrade: n.upgrade.as_ref().map(|u| UpgradePlan {
            to: u.to.clone(),
            from: from.clone(),
            at: u.at.unwrap_or(defaults::ROLLING_AT),
            settle: u.settle.unwrap_or(defaults::ROLLING_SETTLE),
            finalize: u.finalize.unwrap_or(true),
        }),
        rolling_config: n.rolling_config.as_ref().map(|r| RollingConfigPlan {
            configs: r.configs.clone(),
            at: r.at.unwrap_or(defaults::ROLLING_AT),
            settle: r.settle.unwrap_or(defaults::ROLLING_SETTLE),
        }),
    })
}

/// Serde through the names the scenario uses (`Display` / `FromStr`).
macro_rules! serde_by_name {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serde_by_name!(Fault, Target, Schedule, PartitionShape);

/// Checks what the types alone do not constrain: ranges, and settings that
/// do not go together.
fn check(s: &Scenario, bad: &impl Fn(&str, String) -> ScenarioError) -> Result<(), ScenarioError> {
    if let Some(v) = &s.cluster.kafka_version {
        if let Err(e) = gregor_deploy::kafka::KafkaVersion::parse(v) {
            return Err(bad("cluster.kafka-version", e.to_string()));
        }
    }
    if let (Some(a @ ("0" | "1")), Some(true)) = (s.client.acks.as_deref(), s.client.idempotence) {
        return Err(bad(
                "client.idempotence",
                format!("idempotent producers need acks: all, not {a:?} (librdkafka refuses the combination); set idempotence: false"),
            ));
    }
    if let Some(t) = s.time_limit {
        if !(t > 0.0 && t.is_finite()) {
            return Err(bad(
                "time-limit",
                format!("{t} is not a positive number of seconds"),
            ));
        }
    }
    for (field, v) in [
        ("workload.rate", s.workload.rate),
        ("workload.op-timeout", s.workload.op_timeout),
        ("workload.final-time-limit", s.workload.final_time_limit),
        ("workload.crash-clients", s.workload.crash_clients),
        ("nemesis.interval", s.nemesis.interval),
        ("nemesis.duration", s.nemesis.duration),
        ("nemesis.disk-slow-ms", s.nemesis.disk_slow_ms),
        ("capacity.start-rate", s.capacity.start_rate),
        ("capacity.max-rate", s.capacity.max_rate),
        ("capacity.step-secs", s.capacity.step_secs),
        ("capacity.p99-limit-ms", s.capacity.p99_limit_ms),
    ] {
        if let Some(v) = v {
            if !(v > 0.0 && v.is_finite()) {
                return Err(bad(field, format!("{v} must be a positive number")));
            }
        }
    }
    for (field, v) in [
        ("workload.abort-probability", s.workload.abort_probability),
        (
            "workload.reassign-probability",
            s.workload.reassign_probability,
        ),
        ("nemesis.jitter", s.nemesis.jitter),
        ("capacity.error-limit", s.capacity.error_limit),
    ] {
        if let Some(v) = v {
            if !(0.0..=1.0).contains(&v) {
                return Err(bad(field, format!("{v} is not between 0 and 1")));
            }
        }
    }
    if let Some(f) = s.capacity.step_factor {
        if !(f > 1.0 && f.is_finite()) {
            return Err(bad(
                "capacity.step-factor",
                format!("{f} must be a number above 1"),
            ));
        }
    }
    if let (Some(a), Some(b)) = (s.capacity.start_rate, s.capacity.max_rate) {
        if a > b {
            return Err(bad(
                "capacity.start-rate",
                format!("{a} is above capacity.max-rate {b}"),
            ));
        }
    }
    if s.capacity.value_bytes == Some(0) {
        return Err(bad("capacity.value-bytes", "must be at least 1".into()));
    }
    if s.workload.concurrency == Some(0) {
        return Err(bad("workload.concurrency", "must be at least 1".into()));
    }
    if s.workload.pipeline == Some(0) {
        return Err(bad("workload.pipeline", "must be at least 1".into()));
    }
    if s.workload.pipeline.is_some_and(|n| n > 1) && s.workload.txn == Some(true) {
        return Err(bad(
                "workload.pipeline",
                "transactions cannot be pipelined (a transactional producer has one transaction open at a time); use 1 with txn".into(),
            ));
    }
    if s.workload.keys == Some(0) {
        return Err(bad("workload.keys", "must be at least 1".into()));
    }
    if s.topic.partitions == Some(0) {
        return Err(bad("topic.partitions", "must be at least 1".into()));
    }
    if let Some(n) = &s.topic.name {
        // The prefix of the run's topics `<name>-<run id>[-<n>]`, which
        // Kafka limits to 249 characters of these.
        let ok = |b: u8| b.is_ascii_alphanumeric() || b"._-".contains(&b);
        if n.is_empty() || n.len() > 200 || !n.bytes().all(ok) {
            return Err(bad(
                "topic.name",
                format!("{n:?} is not a usable topic prefix (1 to 200 of a-z A-Z 0-9 . _ -)"),
            ));
        }
    }
    if let Some(r) = &s.nemesis.rolling_config {
        if s.nemesis.upgrade.is_some() {
            return Err(bad(
                "nemesis.rolling-config",
                "one rolling change per run: drop nemesis.upgrade or nemesis.rolling-config".into(),
            ));
        }
        if r.configs.is_empty() {
            return Err(bad(
                "nemesis.rolling-config.configs",
                "names no broker setting".into(),
            ));
        }
        if s.cluster.bootstrap.is_some()
            || matches!(s.cluster.kind.as_deref(), Some(k) if k != "kafka")
        {
            return Err(bad(
                "nemesis.rolling-config",
                "needs a local Apache Kafka cluster (no cluster.bootstrap, cluster.kind kafka)"
                    .into(),
            ));
        }
    }
    if let Some(u) = &s.nemesis.upgrade {
        if let Err(e) = gregor_deploy::kafka::KafkaVersion::parse(&u.to) {
            return Err(bad("nemesis.upgrade.to", e.to_string()));
        }
        if s.cluster.bootstrap.is_some() || s.cluster.kafka_home.is_some() {
            return Err(bad(
                    "nemesis.upgrade",
                    "needs a local cluster run from Maven Central's jars (no cluster.bootstrap, no cluster.kafka-home)".into(),
                ));
        }
        if matches!(s.cluster.kind.as_deref(), Some(k) if k != "kafka") {
            return Err(bad(
                "nemesis.upgrade",
                "only Apache Kafka clusters change versions".into(),
            ));
        }
        let current = s
            .cluster
            .kafka_version
            .clone()
            .unwrap_or_else(|| gregor_deploy::DEFAULT_KAFKA_VERSION.to_string());
        if let Some(from) = &u.from {
            if *from != current {
                return Err(bad(
                    "nemesis.upgrade.from",
                    format!(
                        "{from} is not the cluster's version {current} (cluster.kafka-version)"
                    ),
                ));
            }
        }
        if u.to == current {
            return Err(bad(
                    "nemesis.upgrade.to",
                    format!("{} is already the cluster's version; set cluster.kafka-version to the version to start from", u.to),
                ));
        }
        if let Err(message) = crate::scenario::downgrade_allowed(&current, &u.to) {
            return Err(bad("nemesis.upgrade.to", message));
        }
        let older = matches!(
            (
                gregor_deploy::kafka::KafkaVersion::parse(&u.to),
                gregor_deploy::kafka::KafkaVersion::parse(&current)
            ),
            (Ok(to), Ok(from)) if to < from
        );
        if older && u.finalize == Some(true) {
            return Err(bad(
                "nemesis.upgrade.finalize",
                "a downgrade is never finalized: Kafka cannot lower metadata.version".into(),
            ));
        }
        for (field, v) in [
            ("nemesis.upgrade.at", u.at),
            ("nemesis.upgrade.settle", u.settle),
        ] {
            if v.is_some_and(|v| !(v >= 0.0 && v.is_finite())) {
                return Err(bad(field, "must be a number of seconds, at least 0".into()));
            }
        }
    }
    if s.cluster.brokers == Some(0) {
        return Err(bad("cluster.brokers", "must be at least 1".into()));
    }
    if let Some(m) = &s.workload.mix {
        if m.send + m.poll + m.txn == 0 {
            return Err(bad("workload.mix", "all weights are zero".into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field a scenario has, each with a bad value: the error names
    /// the file, the line of the value and the field.
    #[test]
    fn a_bad_value_of_every_field_names_file_line_and_field() {
        let cases: &[(&str, &str, u64)] = &[
            ("name: [1, 2]\n", "name", 1),
            ("seed: -1\n", "seed", 1),
            ("time-limit: -1\n", "time-limit", 1),
            ("cluster:\n  kind: zookeeper\n", "cluster.kind", 2),
            (
                "cluster:\n  kafka-version: four\n",
                "cluster.kafka-version",
                2,
            ),
            ("cluster:\n  brokers: 0\n", "cluster.brokers", 2),
            ("cluster:\n  bootstrap: [a, b]\n", "cluster.bootstrap", 2),
            ("cluster:\n  kafka-home: {a: 1}\n", "cluster.kafka-home", 2),
            ("cluster:\n  base-port: 70000\n", "cluster.base-port", 2),
            (
                "cluster:\n  broker-configs: 3\n",
                "cluster.broker-configs",
                2,
            ),
            ("topic:\n  name: \"my topic\"\n", "topic.name", 2),
            ("topic:\n  partitions: 0\n", "topic.partitions", 2),
            ("topic:\n  replication: -1\n", "topic.replication", 2),
            ("topic:\n  configs: [a]\n", "topic.configs", 2),
            ("workload:\n  concurrency: 0\n", "workload.concurrency", 2),
            ("workload:\n  rate: 0\n", "workload.rate", 2),
            ("workload:\n  keys: 0\n", "workload.keys", 2),
            (
                "workload:\n  max-writes-per-key: -5\n",
                "workload.max-writes-per-key",
                2,
            ),
            ("workload:\n  mix: {send: 0, poll: 0}\n", "workload.mix", 2),
            ("workload:\n  max-mops: many\n", "workload.max-mops", 2),
            ("workload:\n  txn: sometimes\n", "workload.txn", 2),
            (
                "workload:\n  abort-probability: 2\n",
                "workload.abort-probability",
                2,
            ),
            (
                "workload:\n  reassign-probability: -0.5\n",
                "workload.reassign-probability",
                2,
            ),
            (
                "workload:\n  crash-clients: 0\n",
                "workload.crash-clients",
                2,
            ),
            (
                "workload:\n  shared-producer: 7\n",
                "workload.shared-producer",
                2,
            ),
            ("workload:\n  pipeline: 0\n", "workload.pipeline", 2),
            ("workload:\n  op-timeout: 0\n", "workload.op-timeout", 2),
            (
                "workload:\n  final-time-limit: -1\n",
                "workload.final-time-limit",
                2,
            ),
            ("client:\n  acks: 2\n", "client.acks", 2),
            (
                "client:\n  acks: '1'\n  idempotence: true\n",
                "client.idempotence",
                3,
            ),
            ("client:\n  sub-via: magic\n", "client.sub-via", 2),
            ("client:\n  commit: eventually\n", "client.commit", 2),
            (
                "client:\n  isolation-level: dirty\n",
                "client.isolation-level",
                2,
            ),
            (
                "client:\n  auto-offset-reset: middle\n",
                "client.auto-offset-reset",
                2,
            ),
            (
                "client:\n  from-beginning: maybe\n",
                "client.from-beginning",
                2,
            ),
            ("client:\n  txn-recovery: pray\n", "client.txn-recovery", 2),
            ("client:\n  producer: [linger.ms]\n", "client.producer", 2),
            ("client:\n  consumer: 5\n", "client.consumer", 2),
            ("client:\n  common: x\n", "client.common", 2),
            ("nemesis:\n  faults: [kill, explode]\n", "nemesis.faults", 2),
            ("nemesis:\n  interval: 0\n", "nemesis.interval", 2),
            ("nemesis:\n  duration: -3\n", "nemesis.duration", 2),
            ("nemesis:\n  jitter: 2\n", "nemesis.jitter", 2),
            ("nemesis:\n  target: broker-x\n", "nemesis.target", 2),
            ("nemesis:\n  durations: {kill: 0}\n", "nemesis.durations", 2),
            (
                "nemesis:\n  durations: {explode: 3}\n",
                "nemesis.durations",
                2,
            ),
            ("nemesis:\n  schedule: weekly\n", "nemesis.schedule", 2),
            ("nemesis:\n  partition: thirds\n", "nemesis.partition", 2),
            (
                "nemesis:\n  link-scope: everyone\n",
                "nemesis.link-scope",
                2,
            ),
            ("nemesis:\n  delay-ms: -1\n", "nemesis.delay-ms", 2),
            ("nemesis:\n  jitter-ms: -1\n", "nemesis.jitter-ms", 2),
            ("nemesis:\n  bandwidth: -1\n", "nemesis.bandwidth", 2),
            ("nemesis:\n  clock-skew: lots\n", "nemesis.clock-skew", 2),
            ("nemesis:\n  disk-slow-ms: 0\n", "nemesis.disk-slow-ms", 2),
            ("cluster:\n  lazy-disk: perhaps\n", "cluster.lazy-disk", 2),
            (
                "cluster:\n  kind: tansu\n  lazy-disk: true\n",
                "cluster.lazy-disk",
                3,
            ),
            (
                "nemesis:\n  faults: [kill, lose-unfsynced]\n",
                "nemesis.faults",
                2,
            ),
            ("nemesis:\n  throttle-rate: 0\n", "nemesis.throttle-rate", 2),
            (
                "nemesis:\n  upgrade:\n    to: four\n",
                "nemesis.upgrade.to",
                3,
            ),
            (
                "nemesis:\n  upgrade:\n    to: 4.1.0\n    at: -1\n",
                "nemesis.upgrade.at",
                4,
            ),
            (
                "nemesis:\n  rolling-config:\n    configs: {}\n",
                "nemesis.rolling-config.configs",
                3,
            ),
            ("checker:\n  ww-deps: perhaps\n", "checker.ww-deps", 2),
            ("checker:\n  fail-fast: 3\n", "checker.fail-fast", 2),
            ("capacity:\n  start-rate: 0\n", "capacity.start-rate", 2),
            ("capacity:\n  step-factor: 1\n", "capacity.step-factor", 2),
            ("capacity:\n  max-rate: 0\n", "capacity.max-rate", 2),
            ("capacity:\n  step-secs: 0\n", "capacity.step-secs", 2),
            ("capacity:\n  p99-limit-ms: 0\n", "capacity.p99-limit-ms", 2),
            ("capacity:\n  error-limit: 2\n", "capacity.error-limit", 2),
            ("capacity:\n  value-bytes: 0\n", "capacity.value-bytes", 2),
            ("capacity:\n  refine: -1\n", "capacity.refine", 2),
        ];
        let mut failures = Vec::new();
        for (yaml, field, line) in cases {
            let e = match Scenario::parse(yaml, "s.yaml") {
                Ok(_) => {
                    failures.push(format!("{field}: {yaml:?} was accepted"));
                    continue;
                }
                Err(e) => e.to_string(),
            };
            if !(e.contains(&format!("s.yaml:{line}")) && e.contains(field)) {
                failures.push(format!("{field} (line {line}): {e}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn the_documented_default_scenario_is_the_default_plan() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/default.yaml");
        let mut documented = Scenario::load(Path::new(path)).unwrap();
        let plan = RunPlan::resolve(&Scenario::default(), "defaults").unwrap();
        let mut written = Scenario::parse(&plan.to_yaml().unwrap(), "plan").unwrap();
        // The seed is random unless given (the file leaves it out); the
        // capacity ramp's defaults are checked by `capacity`.
        documented.seed = None;
        written.seed = None;
        documented.capacity = CapacitySection::default();
        assert_eq!(documented, written);
    }

    #[test]
    fn the_plan_survives_the_trip_to_the_client_child_and_back_unchanged() {
        let yaml = "seed: 18446744073709551615\ntime-limit: 12.345\n\
            cluster: {kind: tansu, brokers: 2}\n\
            topic: {name: t, partitions: 3, replication: 2, configs: {min.insync.replicas: \"2\"}}\n\
            workload: {rate: 0.1, txn: true, crash-clients: 7.5, mix: {send: 2, poll: 3, txn: 5}}\n\
            client: {acks: '1', idempotence: false, commit: async, sub-via: subscribe, \
                     producer: {linger.ms: \"5\"}}\n\
            nemesis: {faults: [pause, delay], durations: {delay: 2.5}, target: broker-1, \
                      schedule: random, jitter: 0.001}\n\
            checker: {ww-deps: true}\n";
        let p = RunPlan::resolve(&Scenario::parse(yaml, "t.yaml").unwrap(), "t.yaml").unwrap();
        let text = p.to_yaml().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scenario.yaml");
        std::fs::write(&file, &text).unwrap();
        // What the child reads is what the parent resolved, field for field.
        assert_eq!(RunPlan::load(&file).unwrap(), p);
        // And the written plan is a scenario that resolves to itself.
        let again = Scenario::parse(&text, "plan").unwrap();
        assert_eq!(RunPlan::resolve(&again, "plan").unwrap(), p);
        assert_eq!(p.seed, u64::MAX);
        assert_eq!(p.nemesis.target, Target::Node(1));
        assert_eq!(p.client.acks, Acks::One);
        assert_eq!(p.client.isolation_level, IsolationLevel::ReadCommitted);
    }

    #[test]
    fn a_plan_with_a_field_missing_is_refused_by_the_child_not_filled_in() {
        let p = RunPlan::resolve(&Scenario::default(), "defaults").unwrap();
        let text = p.to_yaml().unwrap().replace("  rate: 200.0\n", "");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scenario.yaml");
        std::fs::write(&file, text).unwrap();
        let e = RunPlan::load(&file).unwrap_err().to_string();
        assert!(e.contains("rate"), "{e}");
    }
}
