//! The network side of the nemesis: fault proxies in front of the brokers
//! (link faults) and network namespaces around them (partitions).
//!
//! [`Net`] is built before the cluster starts, because the cluster's layout
//! depends on it: brokers advertise the proxies' ports
//! ([`gregor_deploy::spec::NetworkSpec`]) and run inside the topology's
//! namespaces. The proxies run on the caller's tokio runtime, inside the
//! gregor process; the rdkafka clients (a child process) reach them at the
//! bootstrap addresses, which are the proxies' own.
//!
//! Cleanup: [`Net::heal`] clears every link fault and partition rule;
//! dropping the last handle shuts the proxies down and destroys the
//! topology (namespaces, bridge, nft table, and any process left inside).
//! Namespaces are named `gregor-r<pid>-<k>-<i>` ([`topology_prefix`]), so
//! `gregor cluster heal` ([`gregor_deploy::netns::stale_prefixes`]) finds
//! what a killed gregor left behind, and [`owner_pid`] tells whether that
//! gregor still runs.

use std::net::IpAddr;

use gregor_deploy::ability::{AbilityError, LinkFaults, Partition};
use gregor_deploy::netns::{self, Grudge, NetnsError, Topology};
use gregor_deploy::proxy::{LinkFault, ProxyError, ProxyHandle, ProxySet};
use gregor_deploy::spec::{NetnsPlacement, NetworkSpec, ProxyRoute};
use gregor_deploy::ClusterSpec;

pub use gregor_deploy::ability::LinkScope;

/// A fresh topology prefix for this process: `r<pid>-<k>`, k counting the
/// topologies this process made. Two live gregor processes never share
/// one, and a leftover with one of our prefixes belongs to a dead process
/// (the pid is ours now).
pub fn topology_prefix() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("r{}-{k}", std::process::id())
}

/// The pid of the gregor process that made a topology prefix, if the
/// prefix is one of ours (`r<pid>-<k>`).
pub fn owner_pid(prefix: &str) -> Option<u32> {
    let (pid, k) = prefix.strip_prefix('r')?.split_once('-')?;
    k.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// True when a topology prefix is a gregor run's (`r<pid>-<k>`) whose
/// process is gone: what `gregor cluster heal` removes. Prefixes of other
/// users of [`Topology`] (tests name their own) are left to their owners.
pub fn is_orphan(prefix: &str) -> bool {
    owner_pid(prefix).is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// Creates the namespaces for `brokers` brokers, after removing anything a
/// dead process with the same prefix left behind. Fails with the reason
/// when the host cannot do partitions (not root, no nft).
pub fn create_topology(brokers: usize) -> Result<Topology, NetnsError> {
    netns::check_support()?;
    let prefix = topology_prefix();
    netns::cleanup_stale(&prefix)?;
    Topology::create(&prefix, brokers)
}

/// The cluster layout for the given proxies and topology.
pub fn network_spec(proxied: bool, topology: Option<&Topology>) -> NetworkSpec {
    NetworkSpec {
        proxied,
        netns: topology.map(|t| NetnsPlacement {
            namespaces: (0..t.nodes())
                .map(|i| t.namespace(i).unwrap_or_default())
                .collect(),
            hosts: (0..t.nodes()).map(|i| t.node_addr(i).to_string()).collect(),
        }),
    }
}

/// Proxies and namespaces of one run.
pub struct Net {
    proxies: Option<ProxySet>,
    routes: Vec<(ProxyRoute, ProxyHandle)>,
    topology: Option<Topology>,
    brokers: usize,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("routes", &self.routes.len())
            .field("topology", &self.topology.as_ref().map(Topology::prefix))
            .finish()
    }
}

impl Net {
    /// Starts the proxies `spec` asks for (none unless it is proxied) on the
    /// current tokio runtime, and takes ownership of `topology`.
    pub async fn start(
        spec: &ClusterSpec,
        topology: Option<Topology>,
        seed: u64,
    ) -> Result<Net, ProxyError> {
        let routes = spec.proxy_routes();
        let proxies = if routes.is_empty() {
            None
        } else {
            let pairs: Vec<_> = routes.iter().map(|r| (r.listen, r.upstream)).collect();
            Some(ProxySet::start_seeded(&pairs, seed).await?)
        };
        let handles = proxies.as_ref().map(ProxySet::handles).unwrap_or_default();
        Ok(Net {
            routes: routes.into_iter().zip(handles).collect(),
            proxies,
            topology,
            brokers: spec.brokers,
        })
    }

    /// True when link faults can be applied.
    pub fn has_proxies(&self) -> bool {
        !self.routes.is_empty()
    }

    /// True when partitions can be applied.
    pub fn has_topology(&self) -> bool {
        self.topology.is_some()
    }

    /// The namespaces the brokers run in, if any.
    pub fn topology(&self) -> Option<&Topology> {
        self.topology.as_ref()
    }

    /// The topology's prefix, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.topology.as_ref().map(Topology::prefix)
    }

    /// The namespace address of broker `i`, if namespaced.
    pub fn node_addr(&self, i: usize) -> Option<IpAddr> {
        let t = self.topology.as_ref()?;
        (i < t.nodes()).then(|| IpAddr::V4(t.node_addr(i)))
    }

    /// The proxy handles for traffic to `node` within `scope`.
    pub fn links(&self, node: usize, scope: LinkScope) -> Vec<ProxyHandle> {
        self.routes
            .iter()
            .filter(|(r, _)| r.node == node && scope.covers(r.kind))
            .map(|(_, h)| h.clone())
            .collect()
    }

    /// Sets `fault` on the links to each of `nodes`; returns how many links
    /// were changed.
    pub fn set_links(&self, nodes: &[usize], scope: LinkScope, fault: &LinkFault) -> usize {
        let mut n = 0;
        for &node in nodes {
            for h in self.links(node, scope) {
                h.set(fault.clone());
                n += 1;
            }
        }
        n
    }

    /// Clears every link fault.
    pub fn heal_links(&self) {
        for (_, h) in &self.routes {
            h.heal();
        }
    }

    /// True when some link still has a fault.
    pub fn links_faulty(&self) -> bool {
        self.routes.iter().any(|(_, h)| !h.fault().is_healthy())
    }

    /// Installs `grudge` between brokers and cuts `from_clients` off the
    /// root namespace (where the clients and proxies are).
    pub fn partition(&self, grudge: &Grudge, from_clients: &[usize]) -> Result<(), NetnsError> {
        let t = self.topology.as_ref().ok_or_else(|| {
            NetnsError::Unsupported("this cluster was not started in network namespaces".into())
        })?;
        t.heal()?;
        t.partition(grudge)?;
        for &n in from_clients {
            t.isolate_from_clients(n)?;
        }
        Ok(())
    }

    /// Removes every partition rule.
    pub fn heal_partitions(&self) -> Result<(), NetnsError> {
        match &self.topology {
            Some(t) => t.heal(),
            None => Ok(()),
        }
    }

    /// Clears link faults and partitions.
    pub fn heal(&self) -> Result<(), NetnsError> {
        self.heal_links();
        self.heal_partitions()
    }

    /// Number of brokers.
    pub fn brokers(&self) -> usize {
        self.brokers
    }
}

/// A local cluster's link faults are its fault proxies'.
impl LinkFaults for Net {
    fn set_links(&self, nodes: &[usize], scope: LinkScope, fault: &LinkFault) -> usize {
        Net::set_links(self, nodes, scope, fault)
    }
    fn heal_links(&self) {
        Net::heal_links(self)
    }
}

/// A local cluster's partitions are nftables rules between its network
/// namespaces.
impl Partition for Net {
    fn partition(&self, grudge: &Grudge, from_clients: &[usize]) -> Result<(), AbilityError> {
        Net::partition(self, grudge, from_clients).map_err(|e| e.to_string())
    }
    fn heal_partitions(&self) -> Result<(), AbilityError> {
        Net::heal_partitions(self).map_err(|e| e.to_string())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = self.heal();
        // Dropping the set aborts the proxies' tasks (closing their sockets);
        // dropping the topology removes namespaces, bridge and rules.
        drop(self.proxies.take());
        if let Some(t) = self.topology.take() {
            let _ = t.destroy();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_deploy::spec::LinkKind;

    #[test]
    fn the_prefix_names_the_owning_process() {
        let (a, b) = (topology_prefix(), topology_prefix());
        assert_ne!(a, b, "each topology of a process gets its own prefix");
        assert_eq!(owner_pid(&a), Some(std::process::id()));
        assert!(!is_orphan(&a), "we are alive");
        assert_eq!(owner_pid("quick-test"), None);
        assert!(!is_orphan("quick-test"), "not a run's: left to its owner");
        assert!(
            is_orphan(&format!("r{}-0", u32::MAX - 1)),
            "no such process"
        );
        assert!(a.len() <= 32 && a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
    }

    #[test]
    fn link_scopes_select_client_or_peer_routes() {
        assert!(LinkScope::Clients.covers(LinkKind::Client));
        assert!(!LinkScope::Clients.covers(LinkKind::Replication));
        assert!(LinkScope::Peers.covers(LinkKind::Controller));
        assert!(LinkScope::All.covers(LinkKind::Client));
        assert_eq!(LinkScope::parse("peers"), Some(LinkScope::Peers));
        assert_eq!(LinkScope::parse("everyone"), None);
    }
}
