//! The nemesis: faults injected into a local cluster on a schedule, every
//! action recorded in the history, and everything healed at the end.
//!
//! A [`Nemesis`] runs on its own thread (cluster control is blocking: a
//! restarted broker is waited for). It takes the enabled [`Fault`]s in turn
//! (or at random), sleeps an interval (with jitter), resolves the fault's
//! [`Target`], breaks the targets, records the action, waits the fault's
//! duration, heals and records that. [`Breakage`] remembers what is broken
//! so that [`Breakage::heal_all`] (called after every fault, at the end, on
//! error, on SIGINT and from `Drop` during a panic) leaves no broker
//! killed, paused or skewed, no link slowed and no partition in place.
//!
//! Faults and what they need:
//!
//! | fault | how | history `f` (fault / heal) |
//! | --- | --- | --- |
//! | `kill`, `leader-kill`, `controller-kill` | SIGKILL, restart | `kill` / `start` |
//! | `stop` | SIGTERM, restart | `stop` / `start` |
//! | `pause`, `leader-pause` | SIGSTOP, SIGCONT | `pause` / `resume` |
//! | `rolling-restart` | each broker stopped and started in turn | `stop` / `start` per broker |
//! | `delay`, `bandwidth`, `reset`, `blackhole` | fault proxy in front of each broker | `start-delay` / `stop-delay`… |
//! | `partition`, `leader-partition` | nftables rules between network namespaces | `start-partition` / `stop-partition`… |
//! | `clock-skew` | restart with libfaketime (`FAKETIME=±N`) | `start-clock-skew` / `stop-clock-skew` |
//! | `consumer-stall` | the workload's consumers stop polling (a command to the client process) | `start-consumer-stall` / `stop-consumer-stall` |
//! | `fetch-throttle`, `produce-throttle` | client quota (`consumer_byte_rate`, `producer_byte_rate`) on the workload's client id, AlterClientQuotas | `start-fetch-throttle` / `stop-fetch-throttle`… |
//! | `replication-throttle` | replication throttled (broker rates, topic's throttled replicas `*`), a follower paused until the ISR drops it | `start-replication-throttle`, `pause`, `resume` / `stop-replication-throttle` |
//!
//! Link faults need a proxied cluster and partitions a namespaced one
//! ([`Net`]); [`NemesisConfig::check_cluster`] refuses a fault the cluster
//! cannot take, with the reason. On tansu, brokers never talk to each other
//! (they share one SQLite file), so a partition can only separate brokers
//! from the clients: `partition` cuts the isolated side off the clients as
//! well, and there is no controller (`controller-kill` and the `controller`
//! target are refused).

pub mod lag;
pub mod net;
pub mod upgrade;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gregor_deploy::netns::Grudge;
use gregor_deploy::proxy::LinkFault;
use gregor_deploy::{Cluster, ClusterKind};
use gregor_history::nemesis::{start_f, stop_f};
use gregor_history::{EventType, Process, Recorder, Value, F};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use net::{LinkScope, Net};

use crate::plan::NemesisPlan;

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// kill -9 the targets, restart them after the fault's duration.
    Kill,
    /// Graceful stop (SIGTERM), start after the duration.
    Stop,
    /// SIGSTOP, SIGCONT after the duration.
    Pause,
    /// Restart every broker, one at a time, each rejoining before the next.
    RollingRestart,
    /// kill -9 the leader of key 0's partition.
    LeaderKill,
    /// SIGSTOP the leader of key 0's partition.
    LeaderPause,
    /// kill -9 the active KRaft controller (Apache Kafka only).
    ControllerKill,
    /// Network partition of the shape `nemesis.partition` (default: the
    /// targets isolated from the other brokers and from the clients).
    Partition,
    /// The leader of key 0's partition isolated from clients and peers.
    LeaderPartition,
    /// Latency `delay-ms ± jitter-ms` on every chunk, both ways, on the
    /// targets' links (through the fault proxies).
    Delay,
    /// Bandwidth limited to `bandwidth` bytes/s each way on the targets' links.
    Bandwidth,
    /// Every connection to the targets reset (RST), new ones too, while it lasts.
    Reset,
    /// Nothing forwarded to or from the targets; connections stay open.
    Blackhole,
    /// Targets restarted with their wall clock shifted by `clock-skew` seconds
    /// (libfaketime; the monotonic clock is left alone).
    ClockSkew,
    /// The leader of key 0's partition loses its followers (the other
    /// brokers' links to it blackholed, clients still reach it) for the
    /// first half of the duration, so its ISR shrinks to itself while it
    /// keeps acknowledging; then it is killed, the links heal, and it is
    /// restarted at the end. With unclean election on, a stale follower
    /// takes over and the old leader truncates what only it had.
    LaggingLeaderKill,
    /// The workload's consumers stop polling for the fault's duration
    /// (their sends go on), so their lag grows.
    ConsumerStall,
    /// A fetch quota (`consumer_byte_rate` = `throttle-rate`) on the
    /// workload's client id.
    FetchThrottle,
    /// A produce quota (`producer_byte_rate` = `throttle-rate`) on the
    /// workload's client id.
    ProduceThrottle,
    /// Follower replication throttled to `throttle-rate` bytes/s on every
    /// broker for the run's topic, and a follower of key 0's partition
    /// paused until the ISR drops it (Kafka throttles only replicas out of
    /// the ISR), then resumed: its catch-up is throttled, the ISR stays
    /// shrunk while the fault lasts.
    ReplicationThrottle,
}

impl Fault {
    pub const ALL: [Fault; 19] = [
        Fault::Kill,
        Fault::Stop,
        Fault::Pause,
        Fault::RollingRestart,
        Fault::LeaderKill,
        Fault::LeaderPause,
        Fault::ControllerKill,
        Fault::Partition,
        Fault::LeaderPartition,
        Fault::Delay,
        Fault::Bandwidth,
        Fault::Reset,
        Fault::Blackhole,
        Fault::ClockSkew,
        Fault::LaggingLeaderKill,
        Fault::ConsumerStall,
        Fault::FetchThrottle,
        Fault::ProduceThrottle,
        Fault::ReplicationThrottle,
    ];

    /// Every fault name `--nemesis` and `nemesis.faults` accept.
    pub const NAMES: [&'static str; 19] = [
        "kill",
        "stop",
        "pause",
        "rolling-restart",
        "leader-kill",
        "leader-pause",
        "controller-kill",
        "partition",
        "leader-partition",
        "delay",
        "bandwidth",
        "reset",
        "blackhole",
        "clock-skew",
        "lagging-leader-kill",
        "consumer-stall",
        "fetch-throttle",
        "produce-throttle",
        "replication-throttle",
    ];

    pub fn parse(s: &str) -> Option<Fault> {
        let i = Fault::NAMES.iter().position(|n| *n == s)?;
        Some(Fault::ALL[i])
    }

    pub fn name(self) -> &'static str {
        Fault::NAMES[self as usize]
    }

    /// A fault name, or an error listing the known ones.
    fn parse_named(s: &str) -> Result<Fault, String> {
        Fault::parse(s).ok_or_else(|| {
            format!(
                "unknown fault {s:?}; known faults: {}",
                Fault::NAMES.join(", ")
            )
        })
    }

    /// Needs the fault proxies in front of the brokers.
    pub fn needs_proxy(self) -> bool {
        matches!(
            self,
            Fault::Delay
                | Fault::Bandwidth
                | Fault::Reset
                | Fault::Blackhole
                | Fault::LaggingLeaderKill
        )
    }

    /// Acts through the Kafka admin API (quotas, dynamic configs).
    pub fn needs_admin_api(self) -> bool {
        matches!(
            self,
            Fault::FetchThrottle | Fault::ProduceThrottle | Fault::ReplicationThrottle
        )
    }

    /// Acts on the workload's clients, not on brokers.
    pub fn on_clients(self) -> bool {
        matches!(
            self,
            Fault::ConsumerStall | Fault::FetchThrottle | Fault::ProduceThrottle
        )
    }

    /// Needs the brokers in network namespaces (root and nftables).
    pub fn needs_netns(self) -> bool {
        matches!(self, Fault::Partition | Fault::LeaderPartition)
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        Fault::parse_named(s)
    }
}

/// Which brokers a fault hits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    One,
    Minority,
    Majority,
    All,
    Node(usize),
    /// The broker leading key 0's partition (from metadata).
    Leader,
    /// The active KRaft controller (Apache Kafka; not applicable to tansu).
    Controller,
}

impl Target {
    pub const NAMES: &'static str = "one, minority, majority, all, broker-N, leader, controller";

    pub fn parse(s: &str) -> Option<Target> {
        Some(match s {
            "one" => Target::One,
            "minority" => Target::Minority,
            "majority" => Target::Majority,
            "all" => Target::All,
            "leader" => Target::Leader,
            "controller" => Target::Controller,
            _ => Target::Node(s.strip_prefix("broker-")?.parse().ok()?),
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::One => f.write_str("one"),
            Target::Minority => f.write_str("minority"),
            Target::Majority => f.write_str("majority"),
            Target::All => f.write_str("all"),
            Target::Node(i) => write!(f, "broker-{i}"),
            Target::Leader => f.write_str("leader"),
            Target::Controller => f.write_str("controller"),
        }
    }
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        Target::parse(s).ok_or_else(|| format!("unknown target {s:?}; use {}", Target::NAMES))
    }
}

/// How the next fault is chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Schedule {
    /// The enabled faults in turn, in the order given.
    #[default]
    Rotate,
    /// A random enabled fault each time (seeded).
    Random,
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Schedule::Rotate => "rotate",
            Schedule::Random => "random",
        })
    }
}

impl std::str::FromStr for Schedule {
    type Err = String;
    fn from_str(s: &str) -> Result<Schedule, String> {
        match s {
            "rotate" => Ok(Schedule::Rotate),
            "random" => Ok(Schedule::Random),
            _ => Err(format!("{s:?} is not one of rotate, random")),
        }
    }
}

/// The shape of a `partition` fault.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PartitionShape {
    /// The targets cut off from the other brokers and from the clients.
    #[default]
    Isolate,
    /// Brokers `0..n/2` against the rest (clients stay with the larger half).
    Halves,
    /// A seeded random minority against the majority (clients with the majority).
    RandomHalves,
    /// The other brokers split in two halves that cannot hear each other,
    /// the target hearing both (Jepsen's bridge); clients stay with the
    /// first, larger group.
    Bridge,
}

impl PartitionShape {
    pub const NAMES: &'static str = "isolate, halves, random-halves, bridge";

    pub fn parse(s: &str) -> Option<PartitionShape> {
        Some(match s {
            "isolate" => PartitionShape::Isolate,
            "halves" => PartitionShape::Halves,
            "random-halves" => PartitionShape::RandomHalves,
            "bridge" => PartitionShape::Bridge,
            _ => return None,
        })
    }
}

impl std::fmt::Display for PartitionShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PartitionShape::Isolate => "isolate",
            PartitionShape::Halves => "halves",
            PartitionShape::RandomHalves => "random-halves",
            PartitionShape::Bridge => "bridge",
        })
    }
}

impl std::str::FromStr for PartitionShape {
    type Err = String;
    fn from_str(s: &str) -> Result<PartitionShape, String> {
        PartitionShape::parse(s)
            .ok_or_else(|| format!("{s:?} is not one of {}", PartitionShape::NAMES))
    }
}

/// Settings of the link faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkSettings {
    pub delay: Duration,
    pub jitter: Duration,
    /// Bytes per second each way for `bandwidth`.
    pub bandwidth: u64,
    pub scope: LinkScope,
}

impl Default for LinkSettings {
    /// The plan's defaults ([`crate::plan::defaults`]).
    fn default() -> Self {
        NemesisConfig::default().link
    }
}

/// A nemesis setting the cluster cannot honour, or a bad setting.
#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    #[error("nemesis.{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("fault `{fault}` cannot run here: {reason}")]
    Unavailable { fault: String, reason: String },
}

/// Finds the node leading a partition: its `host:port` as advertised.
pub type LeaderOf = Arc<dyn Fn() -> Option<String> + Send + Sync>;
/// Finds the active controller: its node index.
pub type ControllerOf = Arc<dyn Fn() -> Option<usize> + Send + Sync>;
/// Hook run after a broker restarts.
pub type AfterStart = Arc<dyn Fn(&str) + Send + Sync>;
/// Stalls (`true`) or resumes the workload's consumers.
pub type StallConsumers = Arc<dyn Fn(bool) -> Result<(), String> + Send + Sync>;

/// What the nemesis does.
#[derive(Clone)]
pub struct NemesisConfig {
    pub faults: Vec<Fault>,
    pub interval: Duration,
    /// How long a fault lasts, unless `durations` names it.
    pub duration: Duration,
    pub durations: BTreeMap<Fault, Duration>,
    pub jitter: f64,
    pub target: Target,
    pub seed: u64,
    pub schedule: Schedule,
    pub link: LinkSettings,
    pub partition: PartitionShape,
    /// Wall-clock offset of `clock-skew`, in seconds (negative: behind).
    pub clock_skew: i64,
    pub leader_of: Option<LeaderOf>,
    pub controller_of: Option<ControllerOf>,
    /// Called with a broker's address right after it was restarted (e.g. to
    /// recreate topics on a broker that forgets everything).
    pub after_start: Option<AfterStart>,
    /// Proxies and namespaces, for link faults and partitions.
    pub net: Option<Arc<Net>>,
    /// Bytes per second of `fetch-throttle`, `produce-throttle` and
    /// `replication-throttle`.
    pub throttle_rate: u64,
    /// The client id the quota faults throttle (`None`: the default
    /// client entity, i.e. every client without a quota of its own).
    pub client_id: Option<String>,
    /// The topics `replication-throttle` throttles (the run's).
    pub topics: Vec<String>,
    /// Stalls the workload's consumers (`consumer-stall`).
    pub stall: Option<StallConsumers>,
}

impl std::fmt::Debug for NemesisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NemesisConfig")
            .field("faults", &self.faults)
            .field("interval", &self.interval)
            .field("duration", &self.duration)
            .field("durations", &self.durations)
            .field("target", &self.target)
            .field("schedule", &self.schedule)
            .field("link", &self.link)
            .field("partition", &self.partition)
            .field("clock_skew", &self.clock_skew)
            .field("throttle_rate", &self.throttle_rate)
            .field("client_id", &self.client_id)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

fn invalid(field: &str, message: String) -> NemesisError {
    NemesisError::Invalid {
        field: field.into(),
        message,
    }
}

impl Default for NemesisConfig {
    /// The defaults of a plan ([`crate::plan::defaults`]), with no fault.
    fn default() -> Self {
        NemesisConfig::from_plan(&NemesisPlan::default(), 0)
    }
}

impl NemesisConfig {
    /// The configuration of a resolved nemesis plan (hooks and network are
    /// left empty for the runner to fill in).
    pub fn from_plan(n: &NemesisPlan, seed: u64) -> NemesisConfig {
        let secs = Duration::from_secs_f64;
        let ms = |x: f64| Duration::from_secs_f64(x / 1000.0);
        NemesisConfig {
            faults: n.faults.clone(),
            interval: secs(n.interval),
            duration: secs(n.duration),
            durations: n.durations.iter().map(|(f, d)| (*f, secs(*d))).collect(),
            jitter: n.jitter,
            target: n.target.clone(),
            seed,
            schedule: n.schedule,
            link: LinkSettings {
                delay: ms(n.delay_ms),
                jitter: ms(n.jitter_ms),
                bandwidth: n.bandwidth,
                scope: n.link_scope,
            },
            partition: n.partition,
            clock_skew: n.clock_skew.round() as i64,
            leader_of: None,
            controller_of: None,
            after_start: None,
            net: None,
            throttle_rate: n.throttle_rate,
            client_id: Some(gregor_workloads::CLIENT_ID.into()),
            topics: vec![],
            stall: None,
        }
    }

    /// True when some enabled fault needs the fault proxies.
    pub fn needs_proxy(&self) -> bool {
        self.faults.iter().any(|f| f.needs_proxy())
    }

    /// True when some enabled fault needs network namespaces.
    pub fn needs_netns(&self) -> bool {
        self.faults.iter().any(|f| f.needs_netns())
    }

    /// Refuses faults that a `kind` cluster of `brokers` brokers cannot
    /// take here, naming the fault and the reason. `net` is what the
    /// cluster was started with.
    pub fn check_cluster(
        &self,
        kind: ClusterKind,
        brokers: usize,
        net: Option<&Net>,
    ) -> Result<(), NemesisError> {
        let refuse = |fault: &str, reason: String| {
            Err(NemesisError::Unavailable {
                fault: fault.into(),
                reason,
            })
        };
        if let Some(f) = self
            .faults
            .iter()
            .find(|f| f.needs_admin_api() && kind.is_tansu())
        {
            return refuse(
                f.name(),
                "not applicable to tansu: it implements neither client quotas nor \
                 replication throttles (nor replication)"
                    .into(),
            );
        }
        if kind.is_tansu() && self.faults.contains(&Fault::LaggingLeaderKill) {
            return refuse(
                "lagging-leader-kill",
                "not applicable to tansu: its brokers do not replicate to each other".into(),
            );
        }
        let controller = self.faults.contains(&Fault::ControllerKill)
            || (self.target == Target::Controller && !self.faults.is_empty());
        if controller && kind.is_tansu() {
            return refuse(
                if self.faults.contains(&Fault::ControllerKill) {
                    "controller-kill"
                } else {
                    "target controller"
                },
                "not applicable to tansu: its brokers have no controller \
                 (they share one SQLite store and all call themselves node 111)"
                    .into(),
            );
        }
        if let Target::Node(i) = self.target {
            if i >= brokers {
                return Err(invalid(
                    "target",
                    format!("broker-{i} does not exist: the cluster has {brokers} broker(s)"),
                ));
            }
        }
        for &f in &self.faults {
            if f.needs_proxy() && !net.is_some_and(Net::has_proxies) {
                return refuse(
                    f.name(),
                    "the cluster was not started behind fault proxies".into(),
                );
            }
            if f.needs_netns() && !net.is_some_and(Net::has_topology) {
                return refuse(
                    f.name(),
                    "the cluster was not started in network namespaces".into(),
                );
            }
            if f == Fault::ClockSkew {
                if let Err(e) = libfaketime() {
                    return refuse(f.name(), e);
                }
            }
        }
        Ok(())
    }

    fn duration_of(&self, f: Fault) -> Duration {
        self.durations.get(&f).copied().unwrap_or(self.duration)
    }
}

/// The libfaketime library to preload for `clock-skew`: `$GREGOR_LIBFAKETIME`
/// or the multithreaded build the Debian `faketime` package installs.
pub fn libfaketime() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("GREGOR_LIBFAKETIME").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("GREGOR_LIBFAKETIME={} is not a file", p.display()))
        };
    }
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1",
        "/usr/local/lib/faketime/libfaketimeMT.so.1",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "libfaketime is not installed (`apt-get install faketime`, or set \
             GREGOR_LIBFAKETIME to libfaketimeMT.so.1)"
                .into()
        })
}

/// The environment that shifts a process's wall clock by `offset_secs`.
pub fn clock_skew_env(lib: &std::path::Path, offset_secs: i64) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), lib.display().to_string()),
        ("FAKETIME".into(), format!("{offset_secs:+}")),
        // Timers and timeouts keep working: only the wall clock moves.
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}

/// Restarts of a killed broker tried before giving up.
const START_ATTEMPTS: u32 = 5;

/// How a node is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Broken {
    Down,
    Paused,
}

/// The cluster plus what the nemesis broke in it.
pub struct Breakage {
    cluster: Arc<Mutex<Cluster>>,
    rec: Option<Arc<Recorder>>,
    broken: BTreeMap<usize, Broken>,
    after_start: Option<AfterStart>,
    net: Option<Arc<Net>>,
    /// Link faults in force: history name (`delay`…) → targets.
    links: BTreeMap<&'static str, Vec<usize>>,
    /// The partition in force: history name and the nodes cut off.
    partition: Option<(&'static str, Vec<usize>)>,
    /// Nodes running with a skewed clock.
    skewed: BTreeSet<usize>,
    /// Stalls the consumers; whether they are stalled now.
    stall: Option<StallConsumers>,
    stalled: bool,
    /// Client quotas in force: (fault, client id, quota key, rate).
    quotas: Vec<(Fault, Option<String>, &'static str, u64)>,
    /// The replication throttle in force: (rate, topics, history value).
    repl_throttle: Option<(u64, Vec<String>, serde_json::Value)>,
}

fn record(rec: &Option<Arc<Recorder>>, f: &str, value: serde_json::Value, error: Option<String>) {
    if let Some(r) = rec {
        r.record(
            Process::Nemesis,
            EventType::Info,
            F::Other(f.to_string()),
            Value::Json(value),
            error,
        );
    }
}

fn joined(errors: Vec<String>) -> Option<String> {
    (!errors.is_empty()).then(|| errors.join("; "))
}

impl Breakage {
    pub fn new(cluster: Arc<Mutex<Cluster>>, rec: Option<Arc<Recorder>>) -> Breakage {
        Breakage {
            cluster,
            rec,
            broken: BTreeMap::new(),
            after_start: None,
            net: None,
            links: BTreeMap::new(),
            partition: None,
            skewed: BTreeSet::new(),
            stall: None,
            stalled: false,
            quotas: Vec::new(),
            repl_throttle: None,
        }
    }

    /// How to stall the workload's consumers (`consumer-stall`).
    pub fn with_stall(mut self, stall: Option<StallConsumers>) -> Breakage {
        self.stall = stall;
        self
    }

    /// Each broker's own address (around the fault proxies), for admin requests.
    fn admin_addrs(&self) -> Vec<String> {
        self.lock()
            .nodes()
            .iter()
            .map(|n| n.direct_addr())
            .collect()
    }

    /// Runs `hook` with each broker's address right after it restarts.
    pub fn with_after_start(mut self, hook: Option<AfterStart>) -> Breakage {
        self.after_start = hook;
        self
    }

    /// Proxies and namespaces to break links and partition with.
    pub fn with_net(mut self, net: Option<Arc<Net>>) -> Breakage {
        self.net = net;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn names(&self, nodes: &[usize]) -> serde_json::Value {
        let c = self.lock();
        serde_json::json!(nodes
            .iter()
            .filter_map(|&i| c.nodes().get(i).map(|n| n.name.clone()))
            .collect::<Vec<_>>())
    }

    /// Applies `fault` to `nodes`, recording the action.
    pub fn apply(&mut self, fault: Fault, nodes: &[usize], cfg: &NemesisConfig, seed: u64) {
        if nodes.is_empty() {
            let why = match fault {
                Fault::ControllerKill => "the active controller could not be found",
                _ => "no target found",
            };
            record(
                &self.rec,
                fault.name(),
                serde_json::json!([]),
                Some(why.into()),
            );
            return;
        }
        match fault {
            Fault::Kill
            | Fault::Stop
            | Fault::Pause
            | Fault::LeaderKill
            | Fault::LeaderPause
            | Fault::ControllerKill => self.apply_process(fault, nodes),
            Fault::RollingRestart => self.rolling_restart(&AtomicBool::new(false)),
            Fault::Delay | Fault::Bandwidth | Fault::Reset | Fault::Blackhole => {
                self.apply_link(fault, nodes, &cfg.link)
            }
            Fault::Partition | Fault::LeaderPartition => {
                self.apply_partition(fault, nodes, cfg.partition, seed)
            }
            Fault::ClockSkew => self.apply_clock_skew(nodes, cfg.clock_skew),
            Fault::ConsumerStall => self.apply_stall(),
            Fault::FetchThrottle | Fault::ProduceThrottle => self.apply_quota(fault, cfg),
            Fault::ReplicationThrottle => self.apply_replication_throttle(nodes, cfg),
            Fault::LaggingLeaderKill => {
                // Its first step; `lagging_leader_kill` does the rest.
                let peers = LinkSettings {
                    scope: LinkScope::Peers,
                    ..cfg.link
                };
                self.apply_link(Fault::Blackhole, nodes, &peers)
            }
        }
    }

    /// The second half of [`Fault::LaggingLeaderKill`]: kill the (now
    /// lagging-free) leader, then let its peers' links heal, so a stale
    /// follower is all that is left to elect.
    pub fn lagging_leader_kill(&mut self, nodes: &[usize]) {
        self.apply_process(Fault::LeaderKill, nodes);
        if let Some(nodes) = self.links.remove(Fault::Blackhole.name()) {
            if let Some(net) = &self.net {
                net.heal_links();
            }
            let names = self.names(&nodes);
            record(&self.rec, &stop_f(Fault::Blackhole.name()), names, None);
        }
    }

    fn apply_process(&mut self, fault: Fault, nodes: &[usize]) {
        let mut errors = Vec::new();
        {
            let mut c = self.cluster.lock().unwrap_or_else(|p| p.into_inner());
            for &n in nodes {
                let r = match fault {
                    Fault::Stop => c.stop(n).map(|_| Broken::Down),
                    Fault::Pause | Fault::LeaderPause => c.pause(n).map(|_| Broken::Paused),
                    _ => c.kill(n).map(|_| Broken::Down),
                };
                match r {
                    Ok(b) => {
                        self.broken.insert(n, b);
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
        let f = match fault {
            Fault::Stop => "stop",
            Fault::Pause | Fault::LeaderPause => "pause",
            _ => "kill",
        };
        let names = self.names(nodes);
        record(&self.rec, f, names, joined(errors));
    }

    fn apply_link(&mut self, fault: Fault, nodes: &[usize], s: &LinkSettings) {
        let link = match fault {
            Fault::Delay => LinkFault::latency(s.delay, s.jitter),
            Fault::Bandwidth => LinkFault::bandwidth(s.bandwidth),
            Fault::Reset => LinkFault::reset(),
            _ => LinkFault::blackhole(),
        };
        let name = fault.name();
        let error = match &self.net {
            Some(net) if net.has_proxies() => {
                if net.set_links(nodes, s.scope, &link) == 0 {
                    Some(format!(
                        "no proxied link in scope {:?} for these brokers",
                        s.scope
                    ))
                } else {
                    self.links.insert(name, nodes.to_vec());
                    None
                }
            }
            _ => Some("the cluster has no fault proxies".into()),
        };
        let names = self.names(nodes);
        record(&self.rec, &start_f(name), names, error);
    }

    fn apply_partition(&mut self, fault: Fault, nodes: &[usize], shape: PartitionShape, seed: u64) {
        let n = self.lock().nodes().len();
        let (grudge, cut) = if fault == Fault::LeaderPartition {
            (Grudge::isolate(n, nodes[0]), vec![nodes[0]])
        } else {
            partition_plan(n, shape, nodes, seed)
        };
        let name = fault.name();
        let error = match &self.net {
            Some(net) => match net.partition(&grudge, &cut) {
                Ok(()) => {
                    self.partition = Some((name, cut.clone()));
                    None
                }
                Err(e) => {
                    let _ = net.heal_partitions();
                    Some(e.to_string())
                }
            },
            None => Some("the cluster was not started in network namespaces".into()),
        };
        let names = self.names(&cut);
        record(&self.rec, &start_f(name), names, error);
    }

    fn apply_clock_skew(&mut self, nodes: &[usize], offset: i64) {
        let mut errors = Vec::new();
        match libfaketime() {
            Err(e) => errors.push(e),
            Ok(lib) => {
                let env = clock_skew_env(&lib, offset);
                for &n in nodes {
                    self.skewed.insert(n);
                    if let Err(e) = self.restart_with_env(n, env.clone()) {
                        errors.push(e);
                    }
                }
            }
        }
        let names = self.names(nodes);
        record(
            &self.rec,
            &start_f(Fault::ClockSkew.name()),
            names,
            joined(errors),
        );
    }

    fn apply_stall(&mut self) {
        let error = match &self.stall {
            None => Some("no client process to stall".to_string()),
            Some(f) => {
                // Marked stalled even when the command could not be
                // written (a client process being replaced is told at its
                // start): the heal must always resume.
                self.stalled = true;
                f(true).err()
            }
        };
        record(
            &self.rec,
            &start_f(Fault::ConsumerStall.name()),
            serde_json::json!(["consumers"]),
            error,
        );
    }

    fn quota_value(client_id: &Option<String>, key: &str, rate: u64) -> serde_json::Value {
        serde_json::json!({
            "client-id": client_id.clone().unwrap_or_else(|| "<default>".into()),
            key: rate,
        })
    }

    fn apply_quota(&mut self, fault: Fault, cfg: &NemesisConfig) {
        let key = if fault == Fault::FetchThrottle {
            lag::FETCH_QUOTA
        } else {
            lag::PRODUCE_QUOTA
        };
        let addrs = self.admin_addrs();
        let r = lag::set_client_quota(&addrs, cfg.client_id.clone(), key, Some(cfg.throttle_rate));
        if r.is_ok() {
            self.quotas
                .push((fault, cfg.client_id.clone(), key, cfg.throttle_rate));
        }
        let value = Self::quota_value(&cfg.client_id, key, cfg.throttle_rate);
        record(&self.rec, &start_f(fault.name()), value, r.err());
    }

    fn apply_replication_throttle(&mut self, nodes: &[usize], cfg: &NemesisConfig) {
        let addrs = self.admin_addrs();
        let r = lag::set_replication_throttle(&addrs, &cfg.topics, Some(cfg.throttle_rate));
        let follower = self.names(&nodes[..1]);
        let value = serde_json::json!({
            "rate": cfg.throttle_rate,
            "topics": cfg.topics,
            "follower": follower,
        });
        // Recorded as in force even after a partial failure, so the heal
        // removes whatever was set.
        self.repl_throttle = Some((cfg.throttle_rate, cfg.topics.clone(), value.clone()));
        record(
            &self.rec,
            &start_f(Fault::ReplicationThrottle.name()),
            value,
            r.err(),
        );
    }

    /// The second step of [`Fault::ReplicationThrottle`]: pauses
    /// `follower` until the ISR of some partition of the run drops it (or
    /// `limit` passes, or `stop`), then resumes it, so its catch-up is
    /// throttled. Returns whether it dropped out.
    pub fn lag_follower(
        &mut self,
        follower: usize,
        topics: &[String],
        stop: &AtomicBool,
        limit: Duration,
    ) -> bool {
        self.apply_process(Fault::Pause, &[follower]);
        let end = std::time::Instant::now() + limit;
        let mut out = false;
        while std::time::Instant::now() < end && !stop.load(Ordering::SeqCst) {
            if self.out_of_isr(follower, topics) == Some(true) {
                out = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        if out {
            // Held out a little longer, so that samplers (the monitor asks
            // every second) see the shrunk ISR even when the throttled
            // catch-up is quick.
            let hold = lag::HOLD_OUT.min(end.saturating_duration_since(std::time::Instant::now()));
            let _ = nap(stop, hold);
        }
        self.heal_processes();
        out
    }

    /// Keeps `follower` out of the ISR of some partition of `topics` until
    /// `until` (or `stop`): pauses it until the leader drops it
    /// ([`Breakage::lag_follower`]), and again whenever its throttled
    /// catch-up brings it back (a leader whose log grew less during the
    /// pause than the throttle's burst, `replication.quota.window.num` ×
    /// the rate, is caught up with in a second). Returns whether it was
    /// ever out.
    pub fn keep_out_of_isr(
        &mut self,
        follower: usize,
        topics: &[String],
        stop: &AtomicBool,
        until: std::time::Instant,
    ) -> bool {
        let mut ever = false;
        let mut out = false;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left < Duration::from_secs(1) || stop.load(Ordering::SeqCst) {
                return ever;
            }
            if !out {
                out = self.lag_follower(follower, topics, stop, left - Duration::from_millis(500));
                ever |= out;
                continue;
            }
            std::thread::sleep(Duration::from_millis(250));
            if let Some(o) = self.out_of_isr(follower, topics) {
                out = o;
            }
        }
    }

    /// Whether some partition of `topics` has dropped `follower` from its
    /// ISR, as the other brokers say (a paused or just resumed broker does
    /// not answer or answers from a stale cache). `None` when none answers.
    fn out_of_isr(&self, follower: usize, topics: &[String]) -> Option<bool> {
        let others: Vec<String> = self
            .admin_addrs()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i != follower)
            .map(|(_, a)| a)
            .collect();
        let replicas: BTreeSet<i32> = (0..self.lock().nodes().len() as i32).collect();
        let isrs = lag::isrs(&others, topics).ok()?;
        Some(lag::dropped_out(&isrs, follower as i32, &replicas))
    }

    /// Stops node `n`, sets its extra environment, starts it again.
    fn restart_with_env(&mut self, n: usize, env: Vec<(String, String)>) -> Result<(), String> {
        let mut c = self.cluster.lock().unwrap_or_else(|p| p.into_inner());
        c.set_node_env(n, env).map_err(|e| e.to_string())?;
        if self.broken.contains_key(&n) {
            return Ok(()); // down or paused: the heal restarts it with the new env
        }
        c.stop(n).map_err(|e| e.to_string())?;
        let r = c.start(n).map_err(|e| e.to_string());
        if r.is_ok() {
            if let Some(h) = &self.after_start {
                h(&c.nodes()[n].addr());
            }
        } else {
            self.broken.insert(n, Broken::Down);
        }
        r
    }

    /// Undoes every fault: lifts partitions and link faults, restores
    /// clocks, resumes paused brokers, restarts stopped or killed ones.
    /// Recorded as `stop-<fault>`, `resume` and `start` events.
    pub fn heal_all(&mut self) {
        if let Some((name, cut)) = self.partition.take() {
            let err = self
                .net
                .as_ref()
                .and_then(|n| n.heal_partitions().err())
                .map(|e| e.to_string());
            let names = self.names(&cut);
            record(&self.rec, &stop_f(name), names, err);
        }
        if !self.links.is_empty() {
            if let Some(net) = &self.net {
                net.heal_links();
            }
            for (name, nodes) in std::mem::take(&mut self.links) {
                let names = self.names(&nodes);
                record(&self.rec, &stop_f(name), names, None);
            }
        }
        if !self.skewed.is_empty() {
            let skewed: Vec<usize> = std::mem::take(&mut self.skewed).into_iter().collect();
            let mut errors = Vec::new();
            for &n in &skewed {
                if let Err(e) = self.restart_with_env(n, Vec::new()) {
                    errors.push(e);
                }
            }
            let names = self.names(&skewed);
            record(
                &self.rec,
                &stop_f(Fault::ClockSkew.name()),
                names,
                joined(errors),
            );
        }
        self.heal_processes();
        self.heal_lag();
    }

    /// Resumes stalled consumers, removes quotas and replication throttles.
    fn heal_lag(&mut self) {
        if self.stalled {
            self.stalled = false;
            let error = self.stall.as_ref().and_then(|f| f(false).err());
            record(
                &self.rec,
                &stop_f(Fault::ConsumerStall.name()),
                serde_json::json!(["consumers"]),
                error,
            );
        }
        if self.quotas.is_empty() && self.repl_throttle.is_none() {
            return;
        }
        let addrs = self.admin_addrs();
        for (fault, client_id, key, rate) in std::mem::take(&mut self.quotas) {
            let r = lag::set_client_quota(&addrs, client_id.clone(), key, None);
            let value = Self::quota_value(&client_id, key, rate);
            record(&self.rec, &stop_f(fault.name()), value, r.err());
        }
        if let Some((_, topics, value)) = self.repl_throttle.take() {
            let r = lag::set_replication_throttle(&addrs, &topics, None);
            record(
                &self.rec,
                &stop_f(Fault::ReplicationThrottle.name()),
                value,
                r.err(),
            );
        }
    }

    fn heal_processes(&mut self) {
        let broken = std::mem::take(&mut self.broken);
        if broken.is_empty() {
            return;
        }
        let (mut resumed, mut started, mut errors) = (vec![], vec![], vec![]);
        {
            let mut c = self.cluster.lock().unwrap_or_else(|p| p.into_inner());
            for (n, how) in broken {
                let r = match how {
                    Broken::Paused => c.resume(n).map(|_| resumed.push(n)),
                    // tansu 0.6.0 brokers sometimes die at start-up on
                    // SQLite's lock ("database is locked" while registering,
                    // then a panic): every failed attempt is kept in the
                    // event's error, and the restart is retried.
                    Broken::Down => {
                        let mut r = c.start(n);
                        for attempt in 1..START_ATTEMPTS {
                            match &r {
                                Err(e) => errors.push(format!(
                                    "restart attempt {attempt} of {}: {e}",
                                    c.nodes()[n].name
                                )),
                                Ok(()) => break,
                            }
                            std::thread::sleep(Duration::from_millis(500 * u64::from(attempt)));
                            r = c.start(n);
                        }
                        r.map(|_| {
                            if let Some(h) = &self.after_start {
                                h(&c.nodes()[n].addr());
                            }
                            started.push(n)
                        })
                    }
                };
                if let Err(e) = r {
                    errors.push(e.to_string());
                }
            }
        }
        let err = joined(errors);
        if !resumed.is_empty() {
            record(&self.rec, "resume", self.names(&resumed), err.clone());
        }
        if !started.is_empty() {
            record(&self.rec, "start", self.names(&started), err.clone());
        }
        if resumed.is_empty() && started.is_empty() {
            if let Some(e) = err {
                record(&self.rec, "heal", serde_json::json!([]), Some(e));
            }
        }
    }

    /// Restarts every node, one at a time (each waits to answer again).
    fn rolling_restart(&mut self, stop: &AtomicBool) {
        let n = self.lock().nodes().len();
        for i in 0..n {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            self.apply_process(Fault::Stop, &[i]);
            self.heal_all();
        }
    }

    pub fn is_healed(&self) -> bool {
        self.broken.is_empty()
            && self.links.is_empty()
            && self.partition.is_none()
            && self.skewed.is_empty()
            && !self.stalled
            && self.quotas.is_empty()
            && self.repl_throttle.is_none()
    }
}

impl Drop for Breakage {
    fn drop(&mut self) {
        if !self.is_healed() {
            self.heal_all();
        }
    }
}

/// The grudge between brokers and the brokers cut off from the clients for
/// a `partition` of `shape` over `n` brokers; `targets` are the isolated
/// nodes (isolate) or the bridge (first target).
pub fn partition_plan(
    n: usize,
    shape: PartitionShape,
    targets: &[usize],
    seed: u64,
) -> (Grudge, Vec<usize>) {
    let grudge = match shape {
        PartitionShape::Isolate => {
            let mut t = targets.to_vec();
            t.sort_unstable();
            t.dedup();
            return (Grudge::minority(n, &t), t);
        }
        PartitionShape::Halves => Grudge::halves(n),
        PartitionShape::RandomHalves => Grudge::random_halves(n, seed),
        PartitionShape::Bridge => Grudge::bridge(n, targets.first().copied().unwrap_or(0)),
    };
    // Clients stay with the largest group (the first of equal ones).
    let groups = grudge.components(n);
    let keep = groups
        .iter()
        .enumerate()
        .max_by_key(|(i, g)| (g.len(), std::cmp::Reverse(*i)))
        .map(|(i, _)| i)
        .unwrap_or(0);
    let cut = groups
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != keep)
        .flat_map(|(_, g)| g)
        .collect();
    (grudge, cut)
}

/// Sleeps up to `d`, waking early when `stop` is set. Returns true if stopped.
fn nap(stop: &AtomicBool, d: Duration) -> bool {
    let end = std::time::Instant::now() + d;
    while std::time::Instant::now() < end {
        if stop.load(Ordering::SeqCst) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50).min(end - std::time::Instant::now()));
    }
    stop.load(Ordering::SeqCst)
}

/// Resolves a target to node indices (empty when a leader or controller
/// cannot be found).
fn resolve(
    target: &Target,
    cfg: &NemesisConfig,
    cluster: &Arc<Mutex<Cluster>>,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let (n, addrs): (usize, Vec<String>) = {
        let c = cluster.lock().unwrap_or_else(|p| p.into_inner());
        (
            c.nodes().len(),
            c.nodes().iter().map(|x| x.addr()).collect(),
        )
    };
    if n == 0 {
        return vec![];
    }
    let mut all: Vec<usize> = (0..n).collect();
    // Fisher-Yates with our seeded rng, for reproducible choices.
    for i in (1..n).rev() {
        all.swap(i, rng.random_range(0..=i));
    }
    match target {
        Target::One => vec![all[0]],
        Target::Minority => all[..((n - 1) / 2).max(1)].to_vec(),
        Target::Majority => all[..n / 2 + 1].to_vec(),
        Target::All => (0..n).collect(),
        Target::Node(i) => vec![(*i).min(n - 1)],
        Target::Leader => {
            let leader = cfg.leader_of.as_ref().and_then(|f| f());
            match leader.and_then(|a| addrs.iter().position(|x| *x == a)) {
                Some(i) => vec![i],
                None => vec![all[0]],
            }
        }
        Target::Controller => cfg
            .controller_of
            .as_ref()
            .and_then(|f| f())
            .filter(|&i| i < n)
            .into_iter()
            .collect(),
    }
}

/// A follower of key 0's partition: a broker other than its leader and,
/// where another is left, other than the active controller (seeded
/// choice); any broker when the leader is unknown.
fn follower(
    cfg: &NemesisConfig,
    cluster: &Arc<Mutex<Cluster>>,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let leader = resolve(&Target::Leader, cfg, cluster, rng);
    let mut all = resolve(&Target::All, cfg, cluster, rng);
    all.retain(|i| !leader.contains(i) || cfg.leader_of.is_none());
    if all.is_empty() {
        return leader;
    }
    // Not the active KRaft controller either: with it paused, the leader's
    // AlterPartition waits for a new controller, and the follower leaves
    // the ISR only when its session times out (~11 s measured, against ~4 s
    // for `replica.lag.time.max.ms` = 3 s otherwise).
    let controller = resolve(&Target::Controller, cfg, cluster, rng);
    if all.iter().any(|i| !controller.contains(i)) {
        all.retain(|i| !controller.contains(i));
    }
    vec![all[rng.random_range(0..all.len())]]
}

/// Runs the nemesis schedule until `stop`, then heals everything.
pub fn run(
    cfg: NemesisConfig,
    cluster: Arc<Mutex<Cluster>>,
    rec: Arc<Recorder>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x6e656d65);
    let mut breakage = Breakage::new(cluster.clone(), Some(rec))
        .with_after_start(cfg.after_start.clone())
        .with_net(cfg.net.clone())
        .with_stall(cfg.stall.clone());
    if cfg.faults.is_empty() {
        return;
    }
    let mut step = 0usize;
    loop {
        let fault = match cfg.schedule {
            Schedule::Rotate => cfg.faults[step % cfg.faults.len()],
            Schedule::Random => cfg.faults[rng.random_range(0..cfg.faults.len())],
        };
        step += 1;
        let duration = cfg.duration_of(fault);
        let wait = cfg
            .interval
            .mul_f64(1.0 + cfg.jitter * rng.random_range(-1.0..=1.0))
            .saturating_sub(duration);
        if nap(&stop, wait) {
            break;
        }
        let target = match fault {
            Fault::LeaderKill
            | Fault::LeaderPause
            | Fault::LeaderPartition
            | Fault::LaggingLeaderKill => Target::Leader,
            Fault::ControllerKill => Target::Controller,
            _ => cfg.target.clone(),
        };
        if fault == Fault::RollingRestart {
            breakage.rolling_restart(&stop);
        } else if fault.on_clients() {
            let all: Vec<usize> = (0..cluster
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .nodes()
                .len())
                .collect();
            breakage.apply(fault, &all, &cfg, 0);
        } else if fault == Fault::ReplicationThrottle {
            let t = std::time::Instant::now();
            let nodes = follower(&cfg, &cluster, &mut rng);
            breakage.apply(fault, &nodes, &cfg, 0);
            if let Some(&f) = nodes.first() {
                // The leader drops a follower after `replica.lag.time.max.ms`
                // behind, noticed by a check every half of that, plus an
                // AlterPartition round trip: with 3 s that is up to ~5 s,
                // so the pause may take all but the last second of the
                // window (half of it was too short on a loaded machine);
                // paused again if it catches up before the window ends.
                let until = t + duration;
                if !breakage.keep_out_of_isr(f, &cfg.topics, &stop, until) {
                    eprintln!(
                        "gregor: replication-throttle: broker {f} stayed in every ISR while paused for {duration:?}; \
                         is replica.lag.time.max.ms longer than the fault's duration?"
                    );
                }
            }
            // The window lasts `duration` in all, the pause included.
            let stopped = nap(&stop, duration.saturating_sub(t.elapsed()));
            breakage.heal_all();
            if stopped {
                break;
            }
            continue;
        } else if fault == Fault::LaggingLeaderKill {
            let nodes = resolve(&target, &cfg, &cluster, &mut rng);
            breakage.apply(fault, &nodes, &cfg, 0);
            if nap(&stop, duration / 2) {
                break;
            }
            if !nodes.is_empty() {
                breakage.lagging_leader_kill(&nodes);
            }
        } else {
            let nodes = resolve(&target, &cfg, &cluster, &mut rng);
            let seed = rng.random();
            breakage.apply(fault, &nodes, &cfg, seed);
        }
        let lag_half = if fault == Fault::LaggingLeaderKill {
            2
        } else {
            1
        };
        let stopped = nap(&stop, duration / lag_half);
        breakage.heal_all();
        if stopped {
            break;
        }
    }
    breakage.heal_all();
}

/// The active KRaft controller of a Kafka cluster: the quorum leader that
/// DescribeQuorum (the admin API's describeMetadataQuorum) reports, asked
/// of the first node that runs. Node ids are broker indices.
pub fn kafka_controller_lookup(cluster: Arc<Mutex<Cluster>>) -> ControllerOf {
    Arc::new(move || {
        let c = cluster.lock().unwrap_or_else(|p| p.into_inner()).clone();
        c.active_controller()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_and_target_names_parse_and_unknown_ones_do_not() {
        for n in Fault::NAMES {
            assert_eq!(Fault::parse(n).map(|f| f.name()), Some(n));
        }
        for f in Fault::ALL {
            assert_eq!(Fault::parse(f.name()), Some(f));
        }
        assert_eq!(Fault::parse("explode"), None);
        assert_eq!(Target::parse("broker-2"), Some(Target::Node(2)));
        assert_eq!(Target::parse("majority"), Some(Target::Majority));
        assert_eq!(Target::parse("controller"), Some(Target::Controller));
        assert_eq!(Target::parse("broker-x"), None);
    }

    #[test]
    fn nap_wakes_early_when_stopped() {
        let stop = AtomicBool::new(true);
        let t = std::time::Instant::now();
        assert!(nap(&stop, Duration::from_secs(10)));
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    fn config(yaml: &str) -> NemesisConfig {
        let s = crate::scenario::Scenario::parse(yaml, "t.yaml").expect("scenario parses");
        let plan = crate::plan::RunPlan::resolve(&s, "t.yaml").expect("scenario resolves");
        NemesisConfig::from_plan(&plan.nemesis, 1)
    }

    #[test]
    fn a_scenario_section_gives_per_fault_durations_and_link_settings() {
        let c = config(
            "nemesis:\n  faults: [kill, delay, partition]\n  interval: 8\n  \
             durations: {partition: 6, delay: 2.5}\n  delay-ms: 250\n  jitter-ms: 20\n  \
             bandwidth: 50000\n  link-scope: clients\n  partition: halves\n  schedule: random\n",
        );
        assert_eq!(c.faults, vec![Fault::Kill, Fault::Delay, Fault::Partition]);
        assert_eq!(c.duration_of(Fault::Partition), Duration::from_secs(6));
        assert_eq!(c.duration_of(Fault::Delay), Duration::from_millis(2500));
        assert_eq!(
            c.duration_of(Fault::Kill),
            Duration::from_secs(4),
            "half the interval"
        );
        assert_eq!(c.link.delay, Duration::from_millis(250));
        assert_eq!(c.link.jitter, Duration::from_millis(20));
        assert_eq!(c.link.bandwidth, 50_000);
        assert_eq!(c.link.scope, LinkScope::Clients);
        assert_eq!(c.partition, PartitionShape::Halves);
        assert_eq!(c.schedule, Schedule::Random);
        assert!(c.needs_proxy() && c.needs_netns());
    }

    #[test]
    fn bad_nemesis_settings_name_the_field_and_the_choices() {
        let err = |yaml: &str| {
            crate::scenario::Scenario::parse(yaml, "s.yaml")
                .unwrap_err()
                .to_string()
        };
        let e = err("nemesis:\n  durations: {explode: 3}\n");
        assert!(
            e.contains("durations") && e.contains("explode") && e.contains("blackhole"),
            "{e}"
        );
        let e = err("nemesis:\n  partition: ring\n");
        assert!(e.contains("partition") && e.contains("bridge"), "{e}");
        let e = err("nemesis:\n  link-scope: nobody\n");
        assert!(
            e.contains("s.yaml:2") && e.contains("nemesis.link-scope"),
            "{e}"
        );
    }

    #[test]
    fn tansu_refuses_controller_faults_and_faults_without_their_machinery() {
        let mut c = NemesisConfig {
            faults: vec![Fault::ControllerKill],
            ..NemesisConfig::default()
        };
        let err = c
            .check_cluster(ClusterKind::Tansu, 3, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("controller-kill") && err.contains("not applicable to tansu"),
            "{err}"
        );
        c.faults = vec![Fault::Kill];
        c.target = Target::Controller;
        assert!(c.check_cluster(ClusterKind::Tansu, 3, None).is_err());
        assert!(c.check_cluster(ClusterKind::Kafka, 3, None).is_ok());
        c.target = Target::One;
        c.faults = vec![Fault::Partition];
        let err = c
            .check_cluster(ClusterKind::Tansu, 3, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("partition") && err.contains("namespaces"),
            "{err}"
        );
        c.faults = vec![Fault::Delay];
        let err = c
            .check_cluster(ClusterKind::Tansu, 3, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("delay") && err.contains("proxies"), "{err}");
        c.faults = vec![Fault::Kill];
        c.target = Target::Node(5);
        assert!(c.check_cluster(ClusterKind::Tansu, 3, None).is_err());
    }

    #[test]
    fn partition_shapes_cut_the_expected_brokers_off_the_clients() {
        let (g, cut) = partition_plan(3, PartitionShape::Isolate, &[2], 0);
        assert_eq!(cut, vec![2]);
        assert_eq!(g.components(3), vec![vec![0, 1], vec![2]]);
        let (g, cut) = partition_plan(5, PartitionShape::Halves, &[], 0);
        assert_eq!(g.components(5), vec![vec![0, 1], vec![2, 3, 4]]);
        assert_eq!(cut, vec![0, 1], "clients stay with the majority");
        let (g, cut) = partition_plan(5, PartitionShape::RandomHalves, &[], 9);
        assert_eq!(cut.len(), 2);
        assert_eq!(g, Grudge::random_halves(5, 9));
        let (g, cut) = partition_plan(5, PartitionShape::Bridge, &[2], 0);
        assert_eq!(g, Grudge::bridge(5, 2));
        assert!(!cut.contains(&2) || cut.len() < 3, "{cut:?}");
        let (_, cut) = partition_plan(3, PartitionShape::Isolate, &[0, 1, 1], 0);
        assert_eq!(cut, vec![0, 1]);
    }

    #[test]
    fn a_clock_skew_preloads_libfaketime_and_keeps_the_monotonic_clock() {
        let env = clock_skew_env(std::path::Path::new("/lib/libfaketimeMT.so.1"), -300);
        let get = |k: &str| env.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
        assert_eq!(get("LD_PRELOAD"), Some("/lib/libfaketimeMT.so.1"));
        assert_eq!(get("FAKETIME"), Some("-300"));
        assert_eq!(get("FAKETIME_DONT_FAKE_MONOTONIC"), Some("1"));
        assert_eq!(clock_skew_env(std::path::Path::new("/x"), 60)[1].1, "+60");
    }
}
