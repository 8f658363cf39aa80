//! The nemesis schedule: the next fault, its targets (leader, controller,
//! follower, partition shape), the fault's duration, the heal.
//!
//! It knows clusters only as [`FaultTarget`]s: what it does to one goes
//! through the abilities the cluster hands out
//! ([`gregor_deploy::ability`]), so a new kind of cluster needs no change
//! here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gregor_deploy::netns::Grudge;
use gregor_history::Recorder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

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
pub(super) fn nap(stop: &AtomicBool, d: Duration) -> bool {
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
pub(super) fn resolve(
    target: &Target,
    cfg: &NemesisConfig,
    cluster: &FaultTarget,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let (n, addrs): (usize, Vec<String>) = {
        let c = cluster.lock().unwrap_or_else(|p| p.into_inner());
        (
            c.node_count(),
            (0..c.node_count())
                .map(|i| c.node_addr(i).unwrap_or_default())
                .collect(),
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
pub(super) fn follower(
    cfg: &NemesisConfig,
    cluster: &FaultTarget,
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
pub fn run(cfg: NemesisConfig, cluster: FaultTarget, rec: Arc<Recorder>, stop: Arc<AtomicBool>) {
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
                .node_count())
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

/// Finds the active controller of a cluster that has the
/// [`ControllerLookup`](gregor_deploy::ability::ControllerLookup) ability
/// (Apache Kafka: the KRaft quorum leader that DescribeQuorum reports);
/// `None` for a cluster without one. The lookup runs without the cluster's
/// lock.
pub fn controller_lookup(cluster: FaultTarget) -> Option<ControllerOf> {
    let has = cluster
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_controller_lookup()
        .is_some();
    has.then(|| -> ControllerOf {
        Arc::new(move || {
            let finder = cluster
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_controller_lookup()
                .map(|l| l.controller_finder())?;
            finder()
        })
    })
}
