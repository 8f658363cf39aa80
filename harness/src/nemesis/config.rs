//! What a nemesis does ([`NemesisConfig`]), built from a resolved plan,
//! and which faults a cluster can take ([`NemesisConfig::check`]: the
//! abilities each fault needs against those the cluster has).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gregor_deploy::ability::{Abilities, Ability};
use gregor_deploy::ClusterKind;

use super::*;
use crate::plan::NemesisPlan;

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
    /// The latency `disk-slow` adds to every write and fsync.
    pub disk_slow: Duration,
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
            .field("disk_slow", &self.disk_slow)
            .finish_non_exhaustive()
    }
}

pub(super) fn invalid(field: &str, message: String) -> NemesisError {
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
            disk_slow: ms(n.disk_slow_ms),
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

    /// Refuses faults that a local `kind` cluster of `brokers` brokers
    /// cannot take here, naming the fault and the reason. `net` is what
    /// the cluster was started with (its link faults and partitions),
    /// `lazy_disk` whether its log directories are on lazy disks.
    pub fn check_cluster(
        &self,
        kind: ClusterKind,
        brokers: usize,
        net: Option<&Net>,
        lazy_disk: bool,
    ) -> Result<(), NemesisError> {
        let can = gregor_deploy::ability::local_abilities(
            kind,
            net.is_some_and(Net::has_proxies),
            net.is_some_and(Net::has_topology),
            lazy_disk,
        );
        self.check(&can, brokers)
    }

    /// Refuses faults whose abilities ([`Fault::needs`]) a cluster that
    /// `can` this much lacks, and targets it does not have, naming the
    /// fault, the cluster kind and the reason. Any kind of cluster: the
    /// nemesis asks for abilities, never for kinds.
    pub fn check(&self, can: &Abilities, brokers: usize) -> Result<(), NemesisError> {
        let refuse = |fault: &str, reason: String| {
            Err(NemesisError::Unavailable {
                fault: fault.into(),
                reason,
            })
        };
        for &f in &self.faults {
            if let Some((_, why)) = can.missing(f.needs()) {
                return refuse(f.name(), why);
            }
        }
        if self.target == Target::Controller && !self.faults.is_empty() {
            if let Some((_, why)) = can.missing(&[Ability::ControllerLookup]) {
                return refuse("target controller", why);
            }
        }
        if let Target::Node(i) = self.target {
            if i >= brokers {
                return Err(invalid(
                    "target",
                    format!("broker-{i} does not exist: the cluster has {brokers} broker(s)"),
                ));
            }
        }
        Ok(())
    }

    pub(super) fn duration_of(&self, f: Fault) -> Duration {
        self.durations.get(&f).copied().unwrap_or(self.duration)
    }
}
