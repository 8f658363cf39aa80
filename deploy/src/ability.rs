//! What a cluster under test lets the nemesis do to it, as small traits in
//! the spirit of Jepsen's `Kill` and `Pause` protocols: one trait per
//! ability, each implemented by the cluster kinds that have it.
//!
//! A cluster the nemesis can act on implements [`Faultable`]: it names its
//! nodes and hands out each ability it has (`as_kill`, `as_pause`, …;
//! `None` by default). The nemesis asks for the ability a fault needs and
//! refuses, before the run, a fault whose ability is missing, naming the
//! fault and the cluster kind ([`Abilities`]). A new kind of cluster
//! (remote hosts over SSH, Kubernetes) implements the traits it can honour
//! and the nemesis needs no change.
//!
//! | ability | faults |
//! | --- | --- |
//! | [`Kill`] (SIGKILL, start) | `kill`, `leader-kill`, `controller-kill` |
//! | [`Stop`] (graceful stop, start) | `stop`, `rolling-restart` |
//! | [`Pause`] (SIGSTOP, SIGCONT) | `pause`, `leader-pause`, `replication-throttle` |
//! | [`ClockSkew`] (restart with a shifted wall clock) | `clock-skew` |
//! | [`ControllerLookup`] (finds the active controller) | `controller-kill`, target `controller` |
//! | [`AdminApi`] (quotas, dynamic configs) | `fetch-throttle`, `produce-throttle`, `replication-throttle` |
//! | [`Replication`] (brokers replicate to each other) | `lagging-leader-kill`, `replication-throttle` |
//! | [`LinkFaults`] (per-link delay, bandwidth, reset, blackhole) | `delay`, `bandwidth`, `reset`, `blackhole`, `lagging-leader-kill` |
//! | [`Partition`] (cut brokers from each other and from clients) | `partition`, `leader-partition` |
//! | [`LazyDisk`] (log directories on lazy disks: power loss, full, slow) | `lose-unfsynced`, `disk-full`, `disk-slow` |
//!
//! The local [`Cluster`] has the process abilities of every kind it runs,
//! and the Kafka-only ones (controller, admin API, replication) for Apache
//! Kafka only: tansu brokers share one SQLite store, have no controller
//! and implement neither quotas nor replication. Its link faults and
//! partitions come from the network it was started in (fault proxies,
//! network namespaces), which the harness owns and hands to the nemesis
//! beside the cluster.

use std::sync::Arc;

use crate::netns::Grudge;
use crate::proxy::LinkFault;
use crate::spec::LinkKind;
use crate::{Cluster, ClusterKind, DeployError};

/// Why an ability failed, in words for the history.
pub type AbilityError = String;

/// Names the nodes of a cluster; the base of every ability.
pub trait Faultable: Send {
    /// The kind of cluster (`kafka`, `tansu`, …), for messages.
    fn kind_name(&self) -> String;
    /// How many nodes (brokers) it has; nodes are numbered from 0.
    fn node_count(&self) -> usize;
    /// Node `i`'s name in the history (`broker-1`).
    fn node_name(&self, i: usize) -> Option<String>;
    /// Node `i`'s address as clients reach it (`host:port`).
    fn node_addr(&self, i: usize) -> Option<String>;
    /// Node `i`'s own address, around any fault proxy (for admin requests).
    fn node_direct_addr(&self, i: usize) -> Option<String> {
        self.node_addr(i)
    }

    fn as_kill(&mut self) -> Option<&mut dyn Kill> {
        None
    }
    fn as_stop(&mut self) -> Option<&mut dyn Stop> {
        None
    }
    fn as_pause(&mut self) -> Option<&mut dyn Pause> {
        None
    }
    fn as_clock_skew(&mut self) -> Option<&mut dyn ClockSkew> {
        None
    }
    fn as_controller_lookup(&self) -> Option<&dyn ControllerLookup> {
        None
    }
    fn as_admin_api(&self) -> Option<&dyn AdminApi> {
        None
    }
    fn as_replication(&self) -> Option<&dyn Replication> {
        None
    }
    fn as_lazy_disk(&mut self) -> Option<&mut dyn LazyDisk> {
        None
    }
    /// Link faults the cluster brings itself (a local cluster's come from
    /// the network the harness started it in).
    fn link_faults(&self) -> Option<Arc<dyn LinkFaults>> {
        None
    }
    /// Partitions the cluster brings itself (as for [`Faultable::link_faults`]).
    fn partitions(&self) -> Option<Arc<dyn Partition>> {
        None
    }

    /// Which abilities it has.
    fn abilities(&mut self) -> Abilities {
        Abilities {
            kind: self.kind_name(),
            kill: self.as_kill().is_some(),
            stop: self.as_stop().is_some(),
            pause: self.as_pause().is_some(),
            clock_skew: self.as_clock_skew().map(|c| c.ready()),
            controller_lookup: self.as_controller_lookup().is_some(),
            admin_api: self.as_admin_api().is_some(),
            replication: self.as_replication().is_some(),
            lazy_disk: self.as_lazy_disk().is_some(),
            link_faults: self.link_faults().is_some(),
            partition: self.partitions().is_some(),
        }
    }
}

/// Kills a node outright (SIGKILL) and starts it again (Jepsen's `Kill`).
pub trait Kill {
    fn kill(&mut self, node: usize) -> Result<(), DeployError>;
    /// Starts a node that is down; waits until it answers.
    fn start(&mut self, node: usize) -> Result<(), DeployError>;
    /// Starts several nodes that are down at once (a KRaft quorum lost
    /// with them: one at a time, each would wait for the others).
    fn start_together(&mut self, nodes: &[usize]) -> Result<(), DeployError> {
        nodes.iter().try_for_each(|&n| self.start(n))
    }
}

/// The nodes' log directories on lazy disks (`gregor-lazyfs`): a power
/// loss forgets what was not fsynced; a disk can be made full or slow.
pub trait LazyDisk: Kill {
    /// SIGKILL, then the node's disk forgets what was not fsynced; the
    /// node stays down until started. Returns what the crash dropped.
    fn lose_unfsynced(&mut self, node: usize) -> Result<crate::lazyfs::Status, DeployError>;
    fn set_disk_full(&mut self, node: usize, on: bool) -> Result<(), DeployError>;
    /// `Duration::ZERO`: no added latency.
    fn set_disk_slow(
        &mut self,
        node: usize,
        latency: std::time::Duration,
    ) -> Result<(), DeployError>;
    /// Whether the node's process is alive (a broker halts on a full disk).
    fn is_running(&self, node: usize) -> bool;
}

/// Stops a node gracefully (SIGTERM, waits for it to exit).
pub trait Stop: Kill {
    fn stop(&mut self, node: usize) -> Result<(), DeployError>;
}

/// Pauses a node (SIGSTOP) and resumes it (Jepsen's `Pause`).
pub trait Pause {
    fn pause(&mut self, node: usize) -> Result<(), DeployError>;
    fn resume(&mut self, node: usize) -> Result<(), DeployError>;
}

/// Runs a node with its wall clock shifted (applied at its next start).
pub trait ClockSkew: Stop {
    /// Why clock skew cannot run here (e.g. libfaketime missing), if so.
    fn ready(&self) -> Result<(), AbilityError>;
    /// `None`: the true clock.
    fn set_clock_offset(&mut self, node: usize, seconds: Option<i64>) -> Result<(), DeployError>;
}

/// Finds the active controller.
pub trait ControllerLookup {
    /// A finder of the active controller's node index, which asks the
    /// cluster over the network: it is taken under the cluster's lock and
    /// run without it.
    fn controller_finder(&self) -> ControllerFinder;
}

/// Finds the active controller's node index, if one is known.
pub type ControllerFinder = Box<dyn FnOnce() -> Option<usize> + Send>;

/// The brokers implement the admin API the lag faults use (client quotas,
/// dynamic broker and topic configs): requests go to
/// [`Faultable::node_direct_addr`].
pub trait AdminApi {}

/// The brokers replicate partitions to each other (ISR, followers).
pub trait Replication {}

/// Which proxied traffic a link fault hits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinkScope {
    /// Clients to the target brokers.
    Clients,
    /// Other brokers to the targets (Kafka replication and quorum, when
    /// proxied: only without namespaces).
    Peers,
    /// Both.
    #[default]
    All,
}

impl LinkScope {
    pub fn parse(s: &str) -> Option<LinkScope> {
        Some(match s {
            "clients" => LinkScope::Clients,
            "peers" => LinkScope::Peers,
            "all" => LinkScope::All,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LinkScope::Clients => "clients",
            LinkScope::Peers => "peers",
            LinkScope::All => "all",
        }
    }

    /// Whether a link of this kind is in scope.
    pub fn covers(self, kind: LinkKind) -> bool {
        match self {
            LinkScope::Clients => !kind.is_peer(),
            LinkScope::Peers => kind.is_peer(),
            LinkScope::All => true,
        }
    }
}

impl std::fmt::Display for LinkScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LinkScope {
    type Err = String;
    fn from_str(s: &str) -> Result<LinkScope, String> {
        LinkScope::parse(s).ok_or_else(|| format!("{s:?} is not one of clients, peers, all"))
    }
}

/// Serde through the names a scenario uses (`clients`, `peers`, `all`).
impl serde::Serialize for LinkScope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for LinkScope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Faults on the links to nodes: latency, bandwidth, resets, blackholes.
pub trait LinkFaults: Send + Sync {
    /// Sets `fault` on the links to each of `nodes` within `scope`; returns
    /// how many links were changed.
    fn set_links(&self, nodes: &[usize], scope: LinkScope, fault: &LinkFault) -> usize;
    /// Clears every link fault.
    fn heal_links(&self);
}

/// Network partitions between nodes, and between nodes and the clients.
pub trait Partition: Send + Sync {
    /// Installs `grudge` between nodes and cuts `from_clients` off the
    /// clients (replacing any partition in force).
    fn partition(&self, grudge: &Grudge, from_clients: &[usize]) -> Result<(), AbilityError>;
    /// Removes every partition.
    fn heal_partitions(&self) -> Result<(), AbilityError>;
}

/// What a cluster can take, for refusing faults before a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Abilities {
    /// The cluster kind, for messages.
    pub kind: String,
    pub kill: bool,
    pub stop: bool,
    pub pause: bool,
    /// `None`: no clock skew at all; `Some(Err)`: not here, and why.
    pub clock_skew: Option<Result<(), AbilityError>>,
    pub controller_lookup: bool,
    pub admin_api: bool,
    pub replication: bool,
    pub link_faults: bool,
    pub partition: bool,
    pub lazy_disk: bool,
}

/// One ability, by name (what [`Abilities::missing`] reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ability {
    Kill,
    Stop,
    Pause,
    ClockSkew,
    ControllerLookup,
    AdminApi,
    Replication,
    LinkFaults,
    Partition,
    LazyDisk,
}

impl Ability {
    pub fn name(self) -> &'static str {
        match self {
            Ability::Kill => "Kill",
            Ability::Stop => "Stop",
            Ability::Pause => "Pause",
            Ability::ClockSkew => "ClockSkew",
            Ability::ControllerLookup => "ControllerLookup",
            Ability::AdminApi => "AdminApi",
            Ability::Replication => "Replication",
            Ability::LinkFaults => "LinkFaults",
            Ability::Partition => "Partition",
            Ability::LazyDisk => "LazyDisk",
        }
    }
}

impl Abilities {
    /// Whether `a` is there (clock skew: and ready).
    pub fn has(&self, a: Ability) -> bool {
        match a {
            Ability::Kill => self.kill,
            Ability::Stop => self.stop,
            Ability::Pause => self.pause,
            Ability::ClockSkew => matches!(self.clock_skew, Some(Ok(()))),
            Ability::ControllerLookup => self.controller_lookup,
            Ability::AdminApi => self.admin_api,
            Ability::Replication => self.replication,
            Ability::LinkFaults => self.link_faults,
            Ability::Partition => self.partition,
            Ability::LazyDisk => self.lazy_disk,
        }
    }

    /// The first of `needed` that is missing, with the reason in words.
    pub fn missing(&self, needed: &[Ability]) -> Option<(Ability, String)> {
        let a = needed.iter().copied().find(|&a| !self.has(a))?;
        let kind = &self.kind;
        let tansu = kind.starts_with("tansu");
        let why = match a {
            Ability::ClockSkew => match &self.clock_skew {
                Some(Err(e)) => e.clone(),
                _ => format!("not applicable to {kind}: it cannot run a node with a shifted clock"),
            },
            Ability::ControllerLookup if tansu => format!(
                "not applicable to {kind}: its brokers have no controller \
                 (they share one SQLite store and all call themselves node 111)"
            ),
            Ability::ControllerLookup => {
                format!("not applicable to {kind}: it has no controller to find")
            }
            Ability::AdminApi if tansu => format!(
                "not applicable to {kind}: it implements neither client quotas nor \
                 replication throttles (nor replication)"
            ),
            Ability::AdminApi => format!(
                "not applicable to {kind}: it implements neither client quotas nor dynamic configs"
            ),
            Ability::Replication => {
                format!("not applicable to {kind}: its brokers do not replicate to each other")
            }
            Ability::LinkFaults => "the cluster was not started behind fault proxies".into(),
            Ability::Partition => "the cluster was not started in network namespaces".into(),
            Ability::Kill => format!("not applicable to {kind}: it cannot kill and restart a node"),
            Ability::Stop => format!("not applicable to {kind}: it cannot stop a node gracefully"),
            Ability::Pause => format!("not applicable to {kind}: it cannot pause a node"),
            Ability::LazyDisk => {
                "the brokers' log directories are not on lazy disks (cluster.lazy-disk: true)"
                    .into()
            }
        };
        Some((a, why))
    }
}

// ---------------------------------------------------------- local clusters

/// Whether a local cluster of `kind` has ability `a` (link faults and
/// partitions aside: they come with the network it is started in). The
/// one place that says what each local kind can do.
fn local_has(kind: ClusterKind, a: Ability) -> bool {
    match a {
        Ability::Kill | Ability::Stop | Ability::Pause | Ability::ClockSkew => true,
        // tansu brokers share one SQLite store: no controller, no quotas,
        // no replication.
        Ability::ControllerLookup | Ability::AdminApi | Ability::Replication => !kind.is_tansu(),
        // These come with how it was started (network, disks).
        Ability::LinkFaults | Ability::Partition | Ability::LazyDisk => false,
    }
}

/// What a local cluster of `kind` can take, known before it starts (the
/// plan check), started behind fault proxies (`proxied`) and in network
/// namespaces (`namespaced`) or not, on lazy disks (`lazy_disk`) or not.
/// The same as [`Faultable::abilities`] of the started [`Cluster`], plus
/// its network.
pub fn local_abilities(
    kind: ClusterKind,
    proxied: bool,
    namespaced: bool,
    lazy_disk: bool,
) -> Abilities {
    let has = |a| local_has(kind, a);
    Abilities {
        kind: kind.as_str().to_string(),
        kill: has(Ability::Kill),
        stop: has(Ability::Stop),
        pause: has(Ability::Pause),
        clock_skew: has(Ability::ClockSkew).then(|| crate::faketime::library().map(|_| ())),
        controller_lookup: has(Ability::ControllerLookup),
        admin_api: has(Ability::AdminApi),
        replication: has(Ability::Replication),
        link_faults: proxied,
        partition: namespaced,
        lazy_disk,
    }
}

impl Faultable for Cluster {
    fn kind_name(&self) -> String {
        self.kind().as_str().to_string()
    }
    fn node_count(&self) -> usize {
        self.nodes().len()
    }
    fn node_name(&self, i: usize) -> Option<String> {
        self.nodes().get(i).map(|n| n.name.clone())
    }
    fn node_addr(&self, i: usize) -> Option<String> {
        self.nodes().get(i).map(|n| n.addr())
    }
    fn node_direct_addr(&self, i: usize) -> Option<String> {
        self.nodes().get(i).map(|n| n.direct_addr())
    }
    fn as_kill(&mut self) -> Option<&mut dyn Kill> {
        local_has(self.kind(), Ability::Kill).then_some(self as &mut dyn Kill)
    }
    fn as_stop(&mut self) -> Option<&mut dyn Stop> {
        local_has(self.kind(), Ability::Stop).then_some(self as &mut dyn Stop)
    }
    fn as_pause(&mut self) -> Option<&mut dyn Pause> {
        local_has(self.kind(), Ability::Pause).then_some(self as &mut dyn Pause)
    }
    fn as_clock_skew(&mut self) -> Option<&mut dyn ClockSkew> {
        local_has(self.kind(), Ability::ClockSkew).then_some(self as &mut dyn ClockSkew)
    }
    fn as_controller_lookup(&self) -> Option<&dyn ControllerLookup> {
        local_has(self.kind(), Ability::ControllerLookup).then_some(self as &dyn ControllerLookup)
    }
    fn as_admin_api(&self) -> Option<&dyn AdminApi> {
        local_has(self.kind(), Ability::AdminApi).then_some(self as &dyn AdminApi)
    }
    fn as_replication(&self) -> Option<&dyn Replication> {
        local_has(self.kind(), Ability::Replication).then_some(self as &dyn Replication)
    }
    fn as_lazy_disk(&mut self) -> Option<&mut dyn LazyDisk> {
        self.has_lazy_disks().then_some(self as &mut dyn LazyDisk)
    }
}

impl LazyDisk for Cluster {
    fn lose_unfsynced(&mut self, node: usize) -> Result<crate::lazyfs::Status, DeployError> {
        Cluster::lose_unfsynced(self, node)
    }
    fn set_disk_full(&mut self, node: usize, on: bool) -> Result<(), DeployError> {
        Cluster::set_disk_full(self, node, on)
    }
    fn set_disk_slow(
        &mut self,
        node: usize,
        latency: std::time::Duration,
    ) -> Result<(), DeployError> {
        Cluster::set_disk_slow(self, node, latency)
    }
    fn is_running(&self, node: usize) -> bool {
        Cluster::is_running(self, node)
    }
}

impl Kill for Cluster {
    fn kill(&mut self, node: usize) -> Result<(), DeployError> {
        Cluster::kill(self, node)
    }
    fn start(&mut self, node: usize) -> Result<(), DeployError> {
        Cluster::start(self, node)
    }
    fn start_together(&mut self, nodes: &[usize]) -> Result<(), DeployError> {
        Cluster::start_together(self, nodes)
    }
}

impl Stop for Cluster {
    fn stop(&mut self, node: usize) -> Result<(), DeployError> {
        Cluster::stop(self, node)
    }
}

impl Pause for Cluster {
    fn pause(&mut self, node: usize) -> Result<(), DeployError> {
        Cluster::pause(self, node)
    }
    fn resume(&mut self, node: usize) -> Result<(), DeployError> {
        Cluster::resume(self, node)
    }
}

impl ClockSkew for Cluster {
    fn ready(&self) -> Result<(), AbilityError> {
        crate::faketime::library().map(|_| ())
    }
    fn set_clock_offset(&mut self, node: usize, seconds: Option<i64>) -> Result<(), DeployError> {
        Cluster::set_clock_offset(self, node, seconds)
    }
}

/// Apache Kafka's KRaft quorum leader ([`Cluster::active_controller`]);
/// tansu clusters do not hand this ability out.
impl ControllerLookup for Cluster {
    fn controller_finder(&self) -> ControllerFinder {
        let snapshot = self.clone();
        Box::new(move || snapshot.active_controller())
    }
}

impl AdminApi for Cluster {}
impl Replication for Cluster {}
