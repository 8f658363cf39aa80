//! Rolling upgrades (and downgrades) of an Apache Kafka cluster while the
//! workload runs, inside one checked history.
//!
//! `nemesis.upgrade: {to: 4.1.1}` on a cluster started at another version
//! (`cluster.kafka-version`): `at` seconds into the workload, each node in
//! turn is stopped gracefully (SIGTERM), switched to the new version's jars
//! ([`Cluster::set_node_kafka`]: same data directory, same configuration),
//! started, and waited for until it is back in the ISR of every partition
//! it replicates; `settle` seconds later the next node follows. When every
//! node runs the new version and it is a newer release (`MAJOR.MINOR`),
//! `finalize` (default on) sets the cluster's `metadata.version` to the new
//! release with that version's own feature tool. A `to` older than the
//! cluster's version is a rolling downgrade, never finalized (Kafka cannot
//! lower `metadata.version`), and only to a version that reads the
//! cluster's `metadata.version`: the same release, since a new cluster is
//! formatted at its version's release (the scenario refuses the others).
//!
//! `nemesis.rolling-config: {configs: {key: value}}` does the same with
//! broker settings instead of a version: each node in turn is stopped,
//! started with the settings over the cluster's, and waited for (history
//! `rolling-config`, value `{"node", "configs"}`).
//!
//! History: per node an `upgrade` (or `downgrade`) invoke and `info`
//! completion, value `{"node", "from", "to"}` (`error` when a step failed),
//! spanning its stop, swap, start and rejoin — the fault window of that
//! node; then `finalize-metadata-version` with the tool's words and the
//! `metadata.version` levels the cluster reports before
//! (`metadata-version-before`) and after (`metadata-version`: `finalized`,
//! `supported-max`; an error if it did not reach the release). Nothing is
//! left to heal: a node whose start failed is left to the nemesis'
//! `heal_all` at the end, which restarts it (on the new version).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gregor_deploy::kafka::{self, KafkaDist, KafkaVersion};
use gregor_deploy::kapi::{self, FeatureLevel};
use gregor_deploy::{wire, Cluster};
use gregor_history::{EventType, Process, Recorder, Value, F};

/// What changes on each node in turn.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Another Kafka version's jars (`nemesis.upgrade`).
    Version(String),
    /// Broker settings over the cluster's (`nemesis.rolling-config`).
    Config(std::collections::BTreeMap<String, String>),
}

/// A resolved `nemesis.upgrade` or `nemesis.rolling-config`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rolling {
    pub to: String,
    pub change: Change,
    /// Seconds into the workload the first node goes.
    pub at: Duration,
    /// Pause between one node rejoining and the next going.
    pub settle: Duration,
    pub finalize: bool,
    /// Longest wait for a node to rejoin every ISR.
    pub rejoin_timeout: Duration,
}

impl Rolling {
    /// The rolling change a nemesis plan asks for, if any.
    pub fn of(n: &crate::plan::NemesisPlan) -> Option<Rolling> {
        let secs = Duration::from_secs_f64;
        match (&n.upgrade, &n.rolling_config) {
            (Some(u), _) => Some(Rolling {
                to: u.to.clone(),
                change: Change::Version(u.to.clone()),
                at: secs(u.at),
                settle: secs(u.settle),
                finalize: u.finalize,
                rejoin_timeout: REJOIN_TIMEOUT,
            }),
            (None, Some(r)) => Some(Rolling {
                to: String::new(),
                change: Change::Config(r.configs.clone()),
                at: secs(r.at),
                settle: secs(r.settle),
                finalize: false,
                rejoin_timeout: REJOIN_TIMEOUT,
            }),
            _ => None,
        }
    }
}

/// Longest wait for a restarted node to rejoin every ISR.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(120);

fn record(
    rec: &Recorder,
    kind: EventType,
    f: &str,
    value: serde_json::Value,
    error: Option<String>,
) {
    rec.record(
        Process::Nemesis,
        kind,
        F::Other(f.to_string()),
        Value::Json(value),
        error,
    );
}

/// Sleeps up to `d`, waking early when `stop` turns true; true if stopped.
fn sleep_or_stop(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::SeqCst) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100).min(end - Instant::now()));
    }
    stop.load(Ordering::SeqCst)
}

/// Whether node `id` is in the ISR of every partition that lists it as a
/// replica, as broker `addr` reports (topics of `topics`, or all).
fn rejoined(addr: &str, id: i32) -> bool {
    let Ok(md) = wire::metadata(addr, &[], Duration::from_secs(3)) else {
        return false;
    };
    md.brokers.iter().any(|b| b.node_id == id)
        && md
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .filter(|p| p.replicas.contains(&id))
            .all(|p| p.isr.contains(&id))
}

/// `metadata.version` as the first node of `addrs` that answers reports it
/// (ApiVersions).
fn metadata_version(
    rt: &tokio::runtime::Runtime,
    addrs: &[String],
) -> Result<FeatureLevel, String> {
    let mut seen = String::from("no node to ask");
    for addr in addrs {
        let asked = rt.block_on(async {
            let mut c = kapi::Conn::connect(addr, Duration::from_secs(3)).await?;
            c.features().await
        });
        match asked {
            Ok(f) => return Ok(f.get("metadata.version").copied().unwrap_or_default()),
            Err(e) => seen = e.to_string(),
        }
    }
    Err(seen)
}

/// [`metadata_version`], asked until it is finalized at the highest level
/// the node's software supports (what finalizing to its release sets) or
/// `wait` passes; an error says what was seen instead.
fn read_back_metadata_version(
    rt: &tokio::runtime::Runtime,
    addrs: &[String],
    wait: Duration,
) -> Result<FeatureLevel, String> {
    let start = Instant::now();
    loop {
        let seen = match metadata_version(rt, addrs) {
            Ok(level) if level.finalized.is_some() && level.finalized == level.supported_max => {
                return Ok(level)
            }
            Ok(level) => format!(
                "finalized at {:?}, the software supports up to {:?}",
                level.finalized, level.supported_max
            ),
            Err(e) => e,
        };
        if start.elapsed() > wait {
            return Err(format!(
                "metadata.version not at the new release after {:.0}s: {seen}",
                wait.as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Runs the plan against `cluster`, recording into `rec`, until done or
/// `stop`. Blocking; meant for a thread of its own.
pub fn run(plan: Rolling, cluster: Arc<Mutex<Cluster>>, rec: Arc<Recorder>, stop: Arc<AtomicBool>) {
    if sleep_or_stop(plan.at, &stop) {
        return;
    }
    let lock = || cluster.lock().unwrap_or_else(|p| p.into_inner());
    let target = match &plan.change {
        Change::Version(v) => match KafkaDist::jars(v) {
            Ok(d) => Some(d),
            Err(e) => {
                let value = serde_json::json!({"to": v});
                record(&rec, EventType::Info, "upgrade", value, Some(e.to_string()));
                return;
            }
        },
        Change::Config(_) => None,
    };
    let n = lock().nodes().len();
    let mut from_version = None;
    for i in 0..n {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let (name, from, direct, id) = {
            let c = lock();
            let node = &c.nodes()[i];
            (
                node.name.clone(),
                c.node_kafka(i)
                    .and_then(|d| d.version())
                    .unwrap_or_default(),
                node.direct_addr(),
                node.id as i32,
            )
        };
        let down = matches!(
            (KafkaVersion::parse(&from), KafkaVersion::parse(&plan.to)),
            (Ok(a), Ok(b)) if b < a
        );
        let (f, value) = match &plan.change {
            Change::Version(_) => (
                if down { "downgrade" } else { "upgrade" },
                serde_json::json!({"node": name, "from": from, "to": plan.to}),
            ),
            Change::Config(m) => (
                "rolling-config",
                serde_json::json!({"node": name, "configs": m}),
            ),
        };
        from_version.get_or_insert(from.clone());
        record(&rec, EventType::Invoke, f, value.clone(), None);
        let step = (|| -> Result<(), String> {
            let mut c = lock();
            c.stop(i).map_err(|e| format!("stopping {name}: {e}"))?;
            match (&plan.change, &target) {
                (Change::Version(v), Some(t)) => c
                    .set_node_kafka(i, t.clone())
                    .map_err(|e| format!("switching {name} to {v}: {e}"))?,
                (Change::Config(m), _) => {
                    let mut all = c.nodes()[i].configs.clone();
                    all.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
                    c.set_node_configs(i, all)
                        .map_err(|e| format!("setting {name}'s configs: {e}"))?
                }
                _ => {}
            }
            c.start(i).map_err(|e| format!("starting {name}: {e}"))?;
            Ok(())
        })();
        let mut error = step.err();
        if error.is_none() {
            // Back in every ISR, asked of the node itself (around proxies).
            let t = Instant::now();
            while !rejoined(&direct, id) {
                if t.elapsed() > plan.rejoin_timeout {
                    error = Some(format!(
                        "{name} not back in every ISR after {:.0}s",
                        plan.rejoin_timeout.as_secs_f64()
                    ));
                    break;
                }
                if sleep_or_stop(Duration::from_millis(500), &stop) {
                    break;
                }
            }
        }
        record(&rec, EventType::Info, f, value, error);
        if i + 1 < n && sleep_or_stop(plan.settle, &stop) {
            return;
        }
    }
    // A node a failed step left down runs again (on whatever it was set to).
    for i in 0..n {
        let mut c = lock();
        if !c.is_running(i) {
            let name = c.nodes()[i].name.clone();
            let err = c.start(i).err().map(|e| e.to_string());
            drop(c);
            record(
                &rec,
                EventType::Info,
                "start",
                serde_json::json!([name]),
                err,
            );
        }
    }
    let newer = matches!(
        (from_version.as_deref().map(KafkaVersion::parse), KafkaVersion::parse(&plan.to)),
        (Some(Ok(a)), Ok(b)) if b.release() > a.release()
    );
    let Some(target) = target else {
        return;
    };
    if plan.finalize && newer {
        let Ok(v) = KafkaVersion::parse(&plan.to) else {
            return;
        };
        let release = format!("{}.{}", v.major, v.minor);
        let (spec, bootstrap) = {
            let c = lock();
            (c.spec().clone(), c.bootstrap())
        };
        let addrs: Vec<String> = lock().nodes().iter().map(|n| n.direct_addr()).collect();
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let value = serde_json::json!({"release": release});
                record(
                    &rec,
                    EventType::Info,
                    "finalize-metadata-version",
                    value,
                    Some(e.to_string()),
                );
                return;
            }
        };
        let before = metadata_version(&rt, &addrs).ok().and_then(|l| l.finalized);
        let value = serde_json::json!({"release": release, "metadata-version-before": before});
        record(
            &rec,
            EventType::Invoke,
            "finalize-metadata-version",
            value.clone(),
            None,
        );
        let r = kafka::upgrade_metadata_version(&target, &spec, &bootstrap, &release);
        let mut v = value;
        let err = match r {
            Ok(out) => {
                // The tool's answer, without the admin client's log lines.
                let said: Vec<&str> = out
                    .lines()
                    .filter(|l| !l.starts_with('[') && !l.starts_with('\t') && !l.trim().is_empty())
                    .collect();
                v["output"] = serde_json::json!(said.join("\n"));
                // What the cluster says now, read back from a node.
                match read_back_metadata_version(&rt, &addrs, Duration::from_secs(15)) {
                    Ok(level) => {
                        v["metadata-version"] = serde_json::json!({
                            "finalized": level.finalized,
                            "supported-max": level.supported_max,
                        });
                        None
                    }
                    Err(e) => Some(e),
                }
            }
            Err(e) => Some(e.to_string()),
        };
        record(&rec, EventType::Info, "finalize-metadata-version", v, err);
    }
}
