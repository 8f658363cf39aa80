//! The nemesis vocabulary: the faults, their targets, schedules and
//! shapes, and the hooks a runner gives the nemesis.

use std::sync::Arc;
use std::time::Duration;

use gregor_deploy::ability::Ability;

use super::*;

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
    /// A power loss of the targets: kill -9, then their lazy disks forget
    /// every write, truncation and file operation not fsynced; restarted
    /// after the duration (`cluster.lazy-disk`).
    LoseUnfsynced,
    /// The targets' lazy disks fail writes and creates with ENOSPC.
    DiskFull,
    /// The targets' lazy disks add `disk-slow-ms` to every write and fsync.
    DiskSlow,
}

impl Fault {
    pub const ALL: [Fault; 22] = [
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
        Fault::LoseUnfsynced,
        Fault::DiskFull,
        Fault::DiskSlow,
    ];

    /// Every fault name `--nemesis` and `nemesis.faults` accept.
    pub const NAMES: [&'static str; 22] = [
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
        "lose-unfsynced",
        "disk-full",
        "disk-slow",
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

    /// The abilities of the cluster this fault needs, in the order they
    /// are checked ([`gregor_deploy::ability`]).
    pub fn needs(self) -> &'static [Ability] {
        match self {
            Fault::Kill | Fault::LeaderKill => &[Ability::Kill],
            Fault::ControllerKill => &[Ability::ControllerLookup, Ability::Kill],
            Fault::Stop | Fault::RollingRestart => &[Ability::Stop],
            Fault::Pause | Fault::LeaderPause => &[Ability::Pause],
            Fault::Partition | Fault::LeaderPartition => &[Ability::Partition],
            Fault::Delay | Fault::Bandwidth | Fault::Reset | Fault::Blackhole => {
                &[Ability::LinkFaults]
            }
            Fault::ClockSkew => &[Ability::ClockSkew],
            Fault::LaggingLeaderKill => &[Ability::Replication, Ability::LinkFaults, Ability::Kill],
            Fault::ConsumerStall => &[],
            Fault::FetchThrottle | Fault::ProduceThrottle => &[Ability::AdminApi],
            Fault::ReplicationThrottle => {
                &[Ability::AdminApi, Ability::Replication, Ability::Pause]
            }
            Fault::LoseUnfsynced | Fault::DiskFull | Fault::DiskSlow => &[Ability::LazyDisk],
        }
    }

    /// Needs the fault proxies in front of the brokers.
    pub fn needs_proxy(self) -> bool {
        self.needs().contains(&Ability::LinkFaults)
    }

    /// Acts through the Kafka admin API (quotas, dynamic configs).
    pub fn needs_admin_api(self) -> bool {
        self.needs().contains(&Ability::AdminApi)
    }

    /// Acts on the workload's clients, not on brokers.
    pub fn on_clients(self) -> bool {
        matches!(
            self,
            Fault::ConsumerStall | Fault::FetchThrottle | Fault::ProduceThrottle
        )
    }

    /// Needs the brokers' log directories on lazy disks (`cluster.lazy-disk`).
    pub fn needs_lazy_disk(self) -> bool {
        matches!(
            self,
            Fault::LoseUnfsynced | Fault::DiskFull | Fault::DiskSlow
        )
    }

    /// Needs the brokers in network namespaces (root and nftables).
    pub fn needs_netns(self) -> bool {
        self.needs().contains(&Ability::Partition)
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
/// The cluster the nemesis acts on, through its abilities.
pub type FaultTarget = Arc<std::sync::Mutex<dyn gregor_deploy::ability::Faultable>>;
/// Hook run after a broker restarts.
pub type AfterStart = Arc<dyn Fn(&str) + Send + Sync>;
/// Stalls (`true`) or resumes the workload's consumers.
pub type StallConsumers = Arc<dyn Fn(bool) -> Result<(), String> + Send + Sync>;
