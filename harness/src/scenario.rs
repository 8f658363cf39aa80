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
    #[error("{path}{}: field `{field}`: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        path: String,
        field: String,
        message: String,
        /// The line of the field's value, when it is written in the file.
        line: Option<u64>,
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
    /// Each Kafka node's log directory on a lazy filesystem that forgets
    /// what was not fsynced when the node loses power (for the faults
    /// `lose-unfsynced`, `disk-full`, `disk-slow`; default false).
    pub lazy_disk: Option<bool>,
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
    /// `abort` or `rebuild`: after a transaction's unknown failure.
    pub txn_recovery: Option<String>,
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
    /// `disk-slow`: milliseconds added to every write and fsync (default 100).
    pub disk_slow_ms: Option<f64>,
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
    /// Parses YAML text; `path` names the source in messages, which give
    /// the line and the field of a bad value.
    pub fn parse(text: &str, path: &str) -> Result<Scenario, ScenarioError> {
        if text.trim().is_empty() {
            return Ok(Scenario::default());
        }
        let s: Scenario = serde_saphyr::from_str(text).map_err(|e| {
            let line = e.location().map(|l| l.line()).filter(|l| *l > 0);
            ScenarioError::Yaml {
                path: match line {
                    Some(l) => format!("{path}:{l}"),
                    None => path.to_string(),
                },
                message: match line.and_then(|l| field_at_line(text, l)) {
                    Some(field) => format!("field `{field}`: {e}"),
                    None => e.to_string(),
                },
            }
        })?;
        s.validate(path).map_err(|e| e.located_in(text))?;
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

    /// Checks every value: the scenario must resolve into a run plan
    /// ([`crate::plan::RunPlan::resolve`], the one place values are checked).
    pub fn validate(&self, path: &str) -> Result<(), ScenarioError> {
        crate::plan::RunPlan::resolve(self, path).map(|_| ())
    }
}

impl ScenarioError {
    /// The error with the line of its field in `text` (the scenario's YAML),
    /// when the field is written there.
    pub fn located_in(self, text: &str) -> ScenarioError {
        match self {
            ScenarioError::Invalid {
                path,
                field,
                message,
                line: None,
            } => {
                let line = key_lines(text).and_then(|m| {
                    // The field itself, else the nearest section written.
                    let mut f = field.as_str();
                    loop {
                        if let Some(l) = m.get(f) {
                            return Some(*l);
                        }
                        f = &f[..f.rfind('.')?];
                    }
                });
                ScenarioError::Invalid {
                    path,
                    field,
                    message,
                    line,
                }
            }
            e => e,
        }
    }
}

/// A YAML document's mapping keys, with the line of each key's value:
/// `client.acks` → 3. Read with the YAML library's spans.
fn key_lines(text: &str) -> Option<BTreeMap<String, u64>> {
    let tree: Tree = serde_saphyr::from_str(text).ok()?;
    let mut out = BTreeMap::new();
    fn walk(t: &Tree, prefix: &str, out: &mut BTreeMap<String, u64>) {
        if let Tree::Map(entries) = t {
            for (k, v) in entries {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(path.clone(), v.referenced.line());
                walk(&v.value, &path, out);
            }
        }
    }
    walk(&tree, "", &mut out);
    Some(out)
}

/// The deepest key whose value is on `line` (for parse errors, which know
/// only where they are).
fn field_at_line(text: &str, line: u64) -> Option<String> {
    key_lines(text)?
        .into_iter()
        .filter(|(_, l)| *l == line)
        .max_by_key(|(k, _)| k.matches('.').count())
        .map(|(k, _)| k)
}

/// The shape of a YAML document, its mapping values with their spans.
enum Tree {
    Map(Vec<(String, serde_saphyr::Spanned<Tree>)>),
    Other,
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Tree, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

macro_rules! scalar_is_other {
    ($($f:ident: $t:ty),*) => {$(
        fn $f<E: serde::de::Error>(self, _: $t) -> Result<Tree, E> {
            Ok(Tree::Other)
        }
    )*};
}

impl<'de> serde::de::Visitor<'de> for TreeVisitor {
    type Value = Tree;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    scalar_is_other!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_unit<E: serde::de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Other)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Other)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
        Tree::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Tree, A::Error> {
        while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Tree::Other)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = a.next_key::<KeyName>()? {
            entries.push((k.0, a.next_value()?));
        }
        Ok(Tree::Map(entries))
    }
}

/// A mapping key written as any scalar.
struct KeyName(String);

impl<'de> Deserialize<'de> for KeyName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<KeyName, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = KeyName;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
        }
        d.deserialize_any(V)
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
        // scenarios/ and its subdirectories (scenarios/known/).
        let mut dirs = vec![dir.clone()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "yaml") {
                    Scenario::load(&p)
                        .and_then(|s| s.validate(&p.display().to_string()).map(|_| ()))
                        .unwrap_or_else(|e| panic!("{e}"));
                    n += 1;
                }
            }
        }
        assert!(n >= 7, "expected example scenarios in {}", dir.display());
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
