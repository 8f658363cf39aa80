//! What cluster to run: kind, size, ports, directories.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::DeployError;

/// The broker implementation a local cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterKind {
    /// Stateless tansu brokers sharing one SQLite store (`<dir>/data/tansu.db`).
    Tansu,
    /// One tansu broker on the in-memory engine: nothing survives a restart.
    TansuMemory,
    /// Apache Kafka in KRaft mode (combined broker+controller nodes).
    Kafka,
}

impl ClusterKind {
    /// The kind gregor starts when nothing names one: real Apache Kafka.
    pub const DEFAULT: ClusterKind = ClusterKind::Kafka;

    /// All kinds, in the order they are documented.
    pub const ALL: [ClusterKind; 3] = [
        ClusterKind::Tansu,
        ClusterKind::TansuMemory,
        ClusterKind::Kafka,
    ];

    /// The name used on the command line and in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterKind::Tansu => "tansu",
            ClusterKind::TansuMemory => "tansu-memory",
            ClusterKind::Kafka => "kafka",
        }
    }

    /// How many brokers `ClusterSpec::new` starts for this kind.
    pub fn default_brokers(self) -> usize {
        match self {
            ClusterKind::Tansu => 3,
            ClusterKind::TansuMemory => 1,
            ClusterKind::Kafka => 3,
        }
    }

    /// True for the tansu kinds.
    pub fn is_tansu(self) -> bool {
        matches!(self, ClusterKind::Tansu | ClusterKind::TansuMemory)
    }
}

impl fmt::Display for ClusterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClusterKind {
    type Err = DeployError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ClusterKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s.trim())
            .ok_or_else(|| DeployError::UnknownKind(s.to_string()))
    }
}

/// The first client port when none is given.
pub const DEFAULT_BASE_PORT: u16 = 19092;

/// Everything needed to start a local cluster.
///
/// Ports: broker `i` listens for clients on `base_port + i`. Kafka nodes
/// also need a controller port each: `base_port + brokers + i`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSpec {
    pub kind: ClusterKind,
    pub brokers: usize,
    pub base_port: u16,
    /// Cluster directory: state file, logs, data.
    pub dir: PathBuf,
    /// Apache Kafka installation (`bin/kafka-server-start.sh`); falls back
    /// to `$KAFKA_HOME` when no `kafka_version` is named.
    pub kafka_home: Option<PathBuf>,
    /// Apache Kafka version to run from Maven Central's jars (default
    /// [`crate::kafka::DEFAULT_KAFKA_VERSION`]); ignored with a `kafka_home`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_version: Option<String>,
    /// Broker settings that override gregor's defaults in every node's
    /// `server.properties` (Kafka only).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub broker_configs: std::collections::BTreeMap<String, String>,
    /// tansu binary; falls back to [`crate::find_tansu`].
    pub tansu_bin: Option<PathBuf>,
    /// How long a starting broker may take to answer; default 30 s for
    /// tansu, 120 s for Kafka.
    #[serde(default)]
    pub start_timeout: Option<Duration>,
    /// Fault proxies and network namespaces (default: neither; brokers
    /// listen on and advertise `127.0.0.1:<client port>`).
    #[serde(default, skip_serializing_if = "NetworkSpec::is_plain")]
    pub network: NetworkSpec,
    /// The process the cluster lives for (a `gregor run`): once it is gone
    /// the cluster is an orphan for `cluster down`/`heal` to find (see
    /// [`crate::registry`]). `None` for a cluster meant to outlive its
    /// starter (`gregor cluster up`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<u32>,
    /// Each Kafka node's log directory on a lazy filesystem of its own
    /// (`gregor-lazyfs`), which forgets what was not fsynced when told to
    /// crash: for power-loss and disk faults (see [`crate::cluster::disk`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lazy_disk: bool,
}

/// How brokers are reached, for link faults and partitions.
///
/// - `proxied`: every broker *advertises* its client port (`base_port + i`,
///   so the bootstrap list does not change) but *listens* on another one;
///   the caller runs a fault proxy from each advertised port to the real one
///   ([`ClusterSpec::proxy_routes`]). For Kafka without namespaces the
///   controller quorum and replication go through proxies too.
/// - `netns`: broker `i` runs inside network namespace `namespaces[i]` (made
///   by the caller, e.g. with [`crate::netns::Topology`]) and binds
///   `hosts[i]`, an address the root namespace reaches over a bridge.
///   Kafka brokers then talk to each other directly over the bridge, where
///   partitions can cut them; with `proxied` too, only client traffic goes
///   through the proxies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NetworkSpec {
    #[serde(default)]
    pub proxied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<NetnsPlacement>,
}

impl NetworkSpec {
    /// True for the default layout (no proxy, no namespace).
    pub fn is_plain(&self) -> bool {
        !self.proxied && self.netns.is_none()
    }
}

/// Which namespace each broker runs in and the address it binds there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsPlacement {
    pub namespaces: Vec<String>,
    pub hosts: Vec<String>,
}

/// What kind of traffic a proxy route carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkKind {
    /// Clients (and, for tansu, everything) to the broker's client listener.
    Client,
    /// Kafka controller quorum traffic to the node's controller listener.
    Controller,
    /// Kafka replication (follower fetches) to the broker's inter-broker listener.
    Replication,
}

impl LinkKind {
    /// True for broker-to-broker traffic.
    pub fn is_peer(self) -> bool {
        self != LinkKind::Client
    }
}

/// One fault proxy the caller must run: listen on `listen`, forward to `upstream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyRoute {
    /// Broker index the traffic goes to.
    pub node: usize,
    pub kind: LinkKind,
    pub listen: std::net::SocketAddr,
    pub upstream: std::net::SocketAddr,
}

impl ClusterSpec {
    /// A spec with the defaults for `kind`: 3 brokers for tansu and kafka,
    /// 1 for tansu-memory, clients on ports from 19092.
    pub fn new(kind: ClusterKind, dir: impl Into<PathBuf>) -> Self {
        ClusterSpec {
            kind,
            brokers: kind.default_brokers(),
            base_port: DEFAULT_BASE_PORT,
            dir: dir.into(),
            kafka_home: None,
            kafka_version: None,
            broker_configs: Default::default(),
            tansu_bin: None,
            start_timeout: None,
            network: NetworkSpec::default(),
            owner: None,
            lazy_disk: false,
        }
    }

    /// Same spec with another network layout.
    pub fn with_network(mut self, network: NetworkSpec) -> Self {
        self.network = network;
        self
    }

    /// Port `slot * brokers + i` above the base port (slot 0: advertised
    /// client ports, slot 1: Kafka controller ports or tansu's real client
    /// ports behind proxies, 2..: Kafka's real and replication ports).
    fn slot_port(&self, slot: usize, i: usize) -> u16 {
        self.base_port
            .saturating_add((slot * self.brokers) as u16)
            .saturating_add(i as u16)
    }

    /// How many consecutive ports from the base port the cluster takes.
    pub fn ports_needed(&self) -> usize {
        let slots = match (self.kind, self.network.proxied) {
            (ClusterKind::Kafka, false) => 2,
            (ClusterKind::Kafka, true) => 6,
            (_, false) => 1,
            (_, true) => 2,
        };
        slots * self.brokers
    }

    /// The port broker `i` really listens on for clients (its advertised
    /// port unless it sits behind a proxy).
    pub fn listen_port(&self, i: usize) -> u16 {
        match (self.kind, self.network.proxied) {
            (_, false) => self.client_port(i),
            (ClusterKind::Kafka, true) => self.slot_port(2, i),
            (_, true) => self.slot_port(1, i),
        }
    }

    /// The address broker `i` binds (its namespace's address, or 127.0.0.1).
    pub fn bind_host(&self, i: usize) -> String {
        self.network
            .netns
            .as_ref()
            .and_then(|n| n.hosts.get(i).cloned())
            .unwrap_or_else(|| crate::kafka::HOST.to_string())
    }

    /// The host clients are given for broker `i`.
    pub fn advertised_host(&self, i: usize) -> String {
        if self.network.proxied {
            crate::kafka::HOST.to_string()
        } else {
            self.bind_host(i)
        }
    }

    /// Kafka's real controller port (behind a proxy only without namespaces).
    pub(crate) fn controller_listen_port(&self, i: usize) -> u16 {
        if self.network.proxied && self.network.netns.is_none() {
            self.slot_port(3, i)
        } else {
            self.controller_port(i)
        }
    }

    /// Kafka's inter-broker (REPLICATION) listener: (advertised, real) port.
    pub(crate) fn replication_ports(&self, i: usize) -> (u16, u16) {
        if self.network.netns.is_some() {
            (self.slot_port(5, i), self.slot_port(5, i))
        } else {
            (self.slot_port(4, i), self.slot_port(5, i))
        }
    }

    /// The namespace broker `i` runs in, if any.
    pub fn namespace(&self, i: usize) -> Option<&str> {
        self.network
            .netns
            .as_ref()
            .and_then(|n| n.namespaces.get(i))
            .map(String::as_str)
    }

    /// The fault proxies a `proxied` cluster needs, by broker (empty otherwise).
    pub fn proxy_routes(&self) -> Vec<ProxyRoute> {
        if !self.network.proxied {
            return Vec::new();
        }
        let addr = |host: &str, port: u16| -> std::net::SocketAddr {
            let ip = host
                .parse::<std::net::IpAddr>()
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
            std::net::SocketAddr::new(ip, port)
        };
        let local = crate::kafka::HOST;
        let mut routes = Vec::new();
        for i in 0..self.brokers {
            let bind = self.bind_host(i);
            routes.push(ProxyRoute {
                node: i,
                kind: LinkKind::Client,
                listen: addr(local, self.client_port(i)),
                upstream: addr(&bind, self.listen_port(i)),
            });
            if self.kind == ClusterKind::Kafka && self.network.netns.is_none() {
                routes.push(ProxyRoute {
                    node: i,
                    kind: LinkKind::Controller,
                    listen: addr(local, self.controller_port(i)),
                    upstream: addr(&bind, self.controller_listen_port(i)),
                });
                let (adv, real) = self.replication_ports(i);
                routes.push(ProxyRoute {
                    node: i,
                    kind: LinkKind::Replication,
                    listen: addr(local, adv),
                    upstream: addr(&bind, real),
                });
            }
        }
        routes
    }

    /// Same spec with another broker count.
    pub fn with_brokers(mut self, brokers: usize) -> Self {
        self.brokers = brokers;
        self
    }

    /// Same spec with another first client port.
    pub fn with_base_port(mut self, base_port: u16) -> Self {
        self.base_port = base_port;
        self
    }

    /// Client port of broker `i`.
    pub fn client_port(&self, i: usize) -> u16 {
        self.base_port.saturating_add(i as u16)
    }

    /// Controller port of Kafka node `i`.
    pub fn controller_port(&self, i: usize) -> u16 {
        self.base_port
            .saturating_add(self.brokers as u16)
            .saturating_add(i as u16)
    }

    /// Reject specs that cannot work, with a message saying why.
    pub fn validate(&self) -> Result<(), DeployError> {
        if self.brokers == 0 {
            return Err(DeployError::InvalidSpec(
                "brokers must be at least 1".into(),
            ));
        }
        if self.kind == ClusterKind::TansuMemory && self.brokers != 1 {
            return Err(DeployError::InvalidSpec(format!(
                "tansu-memory runs exactly one broker (each in-memory broker has its own store), \
                 {} requested",
                self.brokers
            )));
        }
        if let Some(n) = &self.network.netns {
            if n.namespaces.len() != self.brokers || n.hosts.len() != self.brokers {
                return Err(DeployError::InvalidSpec(format!(
                    "network namespaces: {} namespace(s) and {} address(es) for {} broker(s)",
                    n.namespaces.len(),
                    n.hosts.len(),
                    self.brokers
                )));
            }
        }
        if self.lazy_disk && self.kind != ClusterKind::Kafka {
            return Err(DeployError::InvalidSpec(format!(
                "lazy disks are for Apache Kafka nodes (each has a log directory of its own); \
                 {} brokers share one store",
                self.kind
            )));
        }
        let ports_needed = self.ports_needed();
        if self.base_port == 0 || self.base_port as usize + ports_needed - 1 > u16::MAX as usize {
            return Err(DeployError::InvalidSpec(format!(
                "base port {} with {} port(s) does not fit in 1..=65535",
                self.base_port, ports_needed
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_command_line_names() {
        for kind in ClusterKind::ALL {
            assert_eq!(kind.to_string().parse::<ClusterKind>().unwrap(), kind);
        }
        assert_eq!(
            "tansu-memory".parse::<ClusterKind>().unwrap(),
            ClusterKind::TansuMemory
        );
    }

    #[test]
    fn an_unknown_kind_is_an_error_listing_the_known_ones() {
        let err = "redpanda".parse::<ClusterKind>().unwrap_err().to_string();
        assert!(
            err.contains("redpanda") && err.contains("tansu-memory") && err.contains("kafka"),
            "{err}"
        );
    }

    #[test]
    fn defaults_match_the_documented_cluster_sizes() {
        assert_eq!(ClusterSpec::new(ClusterKind::Tansu, "/x").brokers, 3);
        assert_eq!(ClusterSpec::new(ClusterKind::TansuMemory, "/x").brokers, 1);
        assert_eq!(ClusterSpec::new(ClusterKind::Kafka, "/x").brokers, 3);
        assert_eq!(ClusterSpec::new(ClusterKind::Kafka, "/x").base_port, 19092);
    }

    #[test]
    fn kafka_controller_ports_follow_the_client_ports() {
        let spec = ClusterSpec::new(ClusterKind::Kafka, "/x").with_base_port(19200);
        let client: Vec<u16> = (0..3).map(|i| spec.client_port(i)).collect();
        let controller: Vec<u16> = (0..3).map(|i| spec.controller_port(i)).collect();
        assert_eq!(client, vec![19200, 19201, 19202]);
        assert_eq!(controller, vec![19203, 19204, 19205]);
    }

    #[test]
    fn impossible_specs_are_rejected_with_a_reason() {
        let zero = ClusterSpec::new(ClusterKind::Tansu, "/x").with_brokers(0);
        assert!(zero
            .validate()
            .unwrap_err()
            .to_string()
            .contains("at least 1"));
        let mem = ClusterSpec::new(ClusterKind::TansuMemory, "/x").with_brokers(3);
        assert!(mem
            .validate()
            .unwrap_err()
            .to_string()
            .contains("exactly one"));
        let high = ClusterSpec::new(ClusterKind::Kafka, "/x").with_base_port(65534);
        assert!(high.validate().unwrap_err().to_string().contains("65535"));
    }
}
