//! [`Breakage`]: the cluster plus what the nemesis broke in it, each fault
//! applied and recorded, and everything healed by [`Breakage::heal_all`].
//!
//! It acts on any [`Faultable`] cluster through the abilities a fault
//! needs ([`gregor_deploy::ability`]): a fault whose ability the cluster
//! lacks is refused before the run ([`NemesisConfig::check`]), and if
//! applied anyway is recorded with an error naming the missing ability and
//! the cluster kind, never attempted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gregor_deploy::ability::{Ability, Faultable, LinkFaults, Partition};
use gregor_deploy::netns::Grudge;
use gregor_deploy::proxy::LinkFault;
use gregor_history::nemesis::{start_f, stop_f};
use gregor_history::{EventType, Process, Recorder, Value, F};

use super::*;

/// Restarts of a killed broker tried before giving up.
pub(super) const START_ATTEMPTS: u32 = 5;

/// How a node is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Broken {
    Down,
    Paused,
}

/// The cluster plus what the nemesis broke in it.
pub struct Breakage {
    cluster: FaultTarget,
    rec: Option<Arc<Recorder>>,
    broken: BTreeMap<usize, Broken>,
    after_start: Option<AfterStart>,
    /// The cluster's link faults and partitions (its own, or those of the
    /// network it was started in: [`Breakage::with_net`]).
    link_faults: Option<Arc<dyn LinkFaults>>,
    partitions: Option<Arc<dyn Partition>>,
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
    /// Lazy-disk faults in force (`disk-full`, `disk-slow`) and their nodes.
    disks: Vec<(Fault, Vec<usize>)>,
}

pub(super) fn record(
    rec: &Option<Arc<Recorder>>,
    f: &str,
    value: serde_json::Value,
    error: Option<String>,
) {
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

pub(super) fn joined(errors: Vec<String>) -> Option<String> {
    (!errors.is_empty()).then(|| errors.join("; "))
}

impl Breakage {
    pub fn new(cluster: FaultTarget, rec: Option<Arc<Recorder>>) -> Breakage {
        let (link_faults, partitions) = {
            let c = cluster.lock().unwrap_or_else(|p| p.into_inner());
            (c.link_faults(), c.partitions())
        };
        Breakage {
            cluster,
            rec,
            broken: BTreeMap::new(),
            after_start: None,
            link_faults,
            partitions,
            links: BTreeMap::new(),
            partition: None,
            skewed: BTreeSet::new(),
            stall: None,
            stalled: false,
            quotas: Vec::new(),
            repl_throttle: None,
            disks: Vec::new(),
        }
    }

    /// How to stall the workload's consumers (`consumer-stall`).
    pub fn with_stall(mut self, stall: Option<StallConsumers>) -> Breakage {
        self.stall = stall;
        self
    }

    /// Each broker's own address (around the fault proxies), for admin requests.
    fn admin_addrs(&self) -> Vec<String> {
        let c = self.lock();
        (0..c.node_count())
            .filter_map(|i| c.node_direct_addr(i))
            .collect()
    }

    /// Runs `hook` with each broker's address right after it restarts.
    pub fn with_after_start(mut self, hook: Option<AfterStart>) -> Breakage {
        self.after_start = hook;
        self
    }

    /// The network a local cluster was started in: its fault proxies
    /// break links, its namespaces partition.
    pub fn with_net(mut self, net: Option<Arc<Net>>) -> Breakage {
        if let Some(net) = net {
            if net.has_proxies() {
                self.link_faults = Some(net.clone());
            }
            if net.has_topology() {
                self.partitions = Some(net);
            }
        }
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, dyn Faultable + 'static> {
        self.cluster.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn names(&self, nodes: &[usize]) -> serde_json::Value {
        let c = self.lock();
        serde_json::json!(nodes
            .iter()
            .filter_map(|&i| c.node_name(i))
            .collect::<Vec<_>>())
    }

    /// Why the cluster cannot do `a`, for the history.
    fn lacks(c: &dyn Faultable, a: Ability) -> String {
        format!("a {} cluster has no {} ability", c.kind_name(), a.name())
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
            Fault::LoseUnfsynced => self.apply_lose_unfsynced(nodes),
            Fault::DiskFull | Fault::DiskSlow => self.apply_disk(fault, nodes, cfg.disk_slow),
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
            if let Some(l) = &self.link_faults {
                l.heal_links();
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
                    Fault::Stop => match c.as_stop() {
                        Some(s) => s.stop(n).map(|_| Broken::Down).map_err(|e| e.to_string()),
                        None => Err(Self::lacks(&*c, Ability::Stop)),
                    },
                    Fault::Pause | Fault::LeaderPause => match c.as_pause() {
                        Some(p) => p
                            .pause(n)
                            .map(|_| Broken::Paused)
                            .map_err(|e| e.to_string()),
                        None => Err(Self::lacks(&*c, Ability::Pause)),
                    },
                    _ => match c.as_kill() {
                        Some(k) => k.kill(n).map(|_| Broken::Down).map_err(|e| e.to_string()),
                        None => Err(Self::lacks(&*c, Ability::Kill)),
                    },
                };
                match r {
                    Ok(b) => {
                        self.broken.insert(n, b);
                    }
                    Err(e) => errors.push(e),
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
        let error = match &self.link_faults {
            Some(net) => {
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
            None => Some("the cluster has no fault proxies (no LinkFaults ability)".into()),
        };
        let names = self.names(nodes);
        record(&self.rec, &start_f(name), names, error);
    }

    fn apply_partition(&mut self, fault: Fault, nodes: &[usize], shape: PartitionShape, seed: u64) {
        let n = self.lock().node_count();
        let (grudge, cut) = if fault == Fault::LeaderPartition {
            (Grudge::isolate(n, nodes[0]), vec![nodes[0]])
        } else {
            partition_plan(n, shape, nodes, seed)
        };
        let name = fault.name();
        let error = match &self.partitions {
            Some(net) => match net.partition(&grudge, &cut) {
                Ok(()) => {
                    self.partition = Some((name, cut.clone()));
                    None
                }
                Err(e) => {
                    let _ = net.heal_partitions();
                    Some(e)
                }
            },
            None => Some(
                "the cluster was not started in network namespaces (no Partition ability)".into(),
            ),
        };
        let names = self.names(&cut);
        record(&self.rec, &start_f(name), names, error);
    }

    fn apply_clock_skew(&mut self, nodes: &[usize], offset: i64) {
        let mut errors = Vec::new();
        let ready = {
            let mut c = self.lock();
            let lacks = Self::lacks(&*c, Ability::ClockSkew);
            c.as_clock_skew().map_or(Err(lacks), |s| s.ready())
        };
        match ready {
            Err(e) => errors.push(e),
            Ok(()) => {
                for &n in nodes {
                    // Noted before the restart: a node whose restart fails
                    // still has the skew in its start environment, which the
                    // heal must take out.
                    self.skewed.insert(n);
                    if let Err(e) = self.restart_with_clock(n, Some(offset)) {
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

    /// kill -9 and a lazy-disk crash of each target (a power loss); the
    /// heal restarts them. Recorded as `lose-unfsynced` (healed by `start`).
    fn apply_lose_unfsynced(&mut self, nodes: &[usize]) {
        let mut errors = Vec::new();
        {
            let mut c = self.cluster.lock().unwrap_or_else(|p| p.into_inner());
            for &n in nodes {
                // Down even when the crash failed after the kill: the heal
                // must start it again (a start of a running node does nothing).
                self.broken.insert(n, Broken::Down);
                let name = c.node_name(n).unwrap_or_else(|| format!("node {n}"));
                let Some(d) = c.as_lazy_disk() else {
                    errors.push(Self::lacks(&*c, Ability::LazyDisk));
                    continue;
                };
                match d.lose_unfsynced(n) {
                    Ok(st) => eprintln!(
                        "gregor: lose-unfsynced: {name} lost {} unsynced byte(s) and {} file operation(s)",
                        st.last_dropped_bytes,
                        st.last_undone_ops
                    ),
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
        let names = self.names(nodes);
        record(
            &self.rec,
            Fault::LoseUnfsynced.name(),
            names,
            joined(errors),
        );
    }

    /// `disk-full` / `disk-slow` on the targets' lazy disks.
    fn apply_disk(&mut self, fault: Fault, nodes: &[usize], latency: Duration) {
        let mut errors = Vec::new();
        {
            let mut c = self.cluster.lock().unwrap_or_else(|p| p.into_inner());
            for &n in nodes {
                let Some(d) = c.as_lazy_disk() else {
                    errors.push(Self::lacks(&*c, Ability::LazyDisk));
                    break;
                };
                let r = match fault {
                    Fault::DiskFull => d.set_disk_full(n, true),
                    _ => d.set_disk_slow(n, latency),
                };
                if let Err(e) = r {
                    errors.push(e.to_string());
                }
            }
        }
        // In force even after a partial failure: the heal resets every target.
        self.disks.push((fault, nodes.to_vec()));
        let names = self.names(nodes);
        record(&self.rec, &start_f(fault.name()), names, joined(errors));
    }

    /// Lifts `disk-full` and `disk-slow`.
    fn heal_disks(&mut self) {
        for (fault, nodes) in std::mem::take(&mut self.disks) {
            let mut errors = Vec::new();
            {
                let mut c = self.cluster.lock().unwrap_or_else(|p| p.into_inner());
                for &n in &nodes {
                    let Some(d) = c.as_lazy_disk() else {
                        errors.push(Self::lacks(&*c, Ability::LazyDisk));
                        break;
                    };
                    let r = match fault {
                        Fault::DiskFull => d.set_disk_full(n, false),
                        _ => d.set_disk_slow(n, Duration::ZERO),
                    };
                    if let Err(e) = r {
                        errors.push(e.to_string());
                    }
                    // A broker whose every log directory failed (ENOSPC)
                    // shut itself down: restarted with the heal, as an
                    // operator would once space is freed.
                    if !d.is_running(n) {
                        self.broken.insert(n, Broken::Down);
                    }
                }
            }
            let names = self.names(&nodes);
            record(&self.rec, &stop_f(fault.name()), names, joined(errors));
        }
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
        let replicas: BTreeSet<i32> = (0..self.lock().node_count() as i32).collect();
        let isrs = lag::isrs(&others, topics).ok()?;
        Some(lag::dropped_out(&isrs, follower as i32, &replicas))
    }

    /// Stops node `n`, sets its extra environment, starts it again.
    /// Restarts node `n` with its wall clock shifted by `offset` seconds
    /// (`None`: the true clock).
    fn restart_with_clock(&mut self, n: usize, offset: Option<i64>) -> Result<(), String> {
        let mut guard = self.cluster.lock().unwrap_or_else(|p| p.into_inner());
        let lacks = Self::lacks(&*guard, Ability::ClockSkew);
        let addr = guard.node_addr(n).unwrap_or_default();
        let c = guard.as_clock_skew().ok_or(lacks)?;
        c.set_clock_offset(n, offset).map_err(|e| e.to_string())?;
        if self.broken.contains_key(&n) {
            return Ok(()); // down or paused: the heal restarts it with the new env
        }
        c.stop(n).map_err(|e| e.to_string())?;
        let r = c.start(n).map_err(|e| e.to_string());
        if r.is_ok() {
            if let Some(h) = &self.after_start {
                h(&addr);
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
                .partitions
                .as_ref()
                .and_then(|n| n.heal_partitions().err());
            let names = self.names(&cut);
            record(&self.rec, &stop_f(name), names, err);
        }
        if !self.links.is_empty() {
            if let Some(net) = &self.link_faults {
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
                if let Err(e) = self.restart_with_clock(n, None) {
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
        self.heal_disks();
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
            // Several brokers down at once (a majority killed or powered
            // off): started together, since KRaft nodes restarted one by
            // one would each wait for a quorum that is not there yet.
            let down: Vec<usize> = broken
                .iter()
                .filter(|(_, b)| **b == Broken::Down)
                .map(|(n, _)| *n)
                .collect();
            if down.len() > 1 {
                if let Some(k) = c.as_kill() {
                    if let Err(e) = k.start_together(&down) {
                        errors.push(format!("restarting {down:?} together: {e}"));
                    }
                }
            }
            for (n, how) in broken {
                let name = c.node_name(n).unwrap_or_else(|| format!("node {n}"));
                let addr = c.node_addr(n).unwrap_or_default();
                let r = match how {
                    Broken::Paused => match c.as_pause() {
                        Some(p) => p
                            .resume(n)
                            .map(|_| resumed.push(n))
                            .map_err(|e| e.to_string()),
                        None => Err(Self::lacks(&*c, Ability::Pause)),
                    },
                    // tansu 0.6.0 brokers sometimes die at start-up on
                    // SQLite's lock ("database is locked" while registering,
                    // then a panic): every failed attempt is kept in the
                    // event's error, and the restart is retried.
                    Broken::Down => match c.as_kill() {
                        None => Err(Self::lacks(&*c, Ability::Kill)),
                        Some(k) => {
                            let mut r = k.start(n);
                            for attempt in 1..START_ATTEMPTS {
                                match &r {
                                    Err(e) => errors
                                        .push(format!("restart attempt {attempt} of {name}: {e}")),
                                    Ok(()) => break,
                                }
                                std::thread::sleep(Duration::from_millis(500 * u64::from(attempt)));
                                r = k.start(n);
                            }
                            r.map(|_| {
                                if let Some(h) = &self.after_start {
                                    h(&addr);
                                }
                                started.push(n)
                            })
                            .map_err(|e| e.to_string())
                        }
                    },
                };
                if let Err(e) = r {
                    errors.push(e);
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
    pub(super) fn rolling_restart(&mut self, stop: &AtomicBool) {
        let n = self.lock().node_count();
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
            && self.disks.is_empty()
    }
}

impl Drop for Breakage {
    fn drop(&mut self) {
        if !self.is_healed() {
            self.heal_all();
        }
    }
}
