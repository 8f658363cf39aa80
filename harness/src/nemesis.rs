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
//! | `lose-unfsynced` | SIGKILL, then the lazy disk forgets what was not fsynced; restart | `lose-unfsynced` / `start` |
//! | `disk-full`, `disk-slow` | the lazy disk fails writes with ENOSPC / adds `disk-slow-ms` to writes and fsyncs | `start-disk-full` / `stop-disk-full`… |
//! | `replication-throttle` | replication throttled (broker rates, topic's throttled replicas `*`), a follower paused until the ISR drops it | `start-replication-throttle`, `pause`, `resume` / `stop-replication-throttle` |
//!
//! Disk faults need the brokers' log directories on lazy disks
//! (`cluster.lazy-disk`, refused when the plan is resolved otherwise).
//! Each fault needs abilities of the cluster ([`Fault::needs`]; the traits
//! of [`gregor_deploy::ability`]: `Kill`, `Stop`, `Pause`, `ClockSkew`,
//! `ControllerLookup`, `AdminApi`, `Replication`, `LinkFaults`,
//! `Partition`), and the nemesis acts on any cluster through them
//! ([`FaultTarget`]). Link faults need a proxied cluster and partitions a
//! namespaced one ([`Net`] provides both for local clusters);
//! [`NemesisConfig::check`] refuses, before the run, a fault the cluster
//! cannot take, naming the fault, the cluster kind and the reason. On tansu, brokers never talk to each other
//! (they share one SQLite file), so a partition can only separate brokers
//! from the clients: `partition` cuts the isolated side off the clients as
//! well, and there is no controller (`controller-kill` and the `controller`
//! target are refused).

pub mod lag;
pub mod net;
pub mod upgrade;

mod breakage;
mod config;
mod fault;
mod schedule;

pub use breakage::Breakage;
pub use config::NemesisConfig;
pub use fault::{
    AfterStart, ControllerOf, Fault, FaultTarget, LeaderOf, LinkSettings, NemesisError,
    PartitionShape, Schedule, StallConsumers, Target,
};
pub use net::{LinkScope, Net};
pub use schedule::{controller_lookup, partition_plan, run};

use schedule::nap;

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_deploy::netns::Grudge;
    use gregor_deploy::ClusterKind;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Duration;

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
            .check_cluster(ClusterKind::Tansu, 3, None, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("controller-kill") && err.contains("not applicable to tansu"),
            "{err}"
        );
        c.faults = vec![Fault::Kill];
        c.target = Target::Controller;
        assert!(c.check_cluster(ClusterKind::Tansu, 3, None, false).is_err());
        assert!(c.check_cluster(ClusterKind::Kafka, 3, None, false).is_ok());
        c.target = Target::One;
        c.faults = vec![Fault::Partition];
        let err = c
            .check_cluster(ClusterKind::Tansu, 3, None, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("partition") && err.contains("namespaces"),
            "{err}"
        );
        c.faults = vec![Fault::Delay];
        let err = c
            .check_cluster(ClusterKind::Tansu, 3, None, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("delay") && err.contains("proxies"), "{err}");
        c.faults = vec![Fault::Kill];
        c.target = Target::Node(5);
        assert!(c.check_cluster(ClusterKind::Tansu, 3, None, false).is_err());
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

    /// A cluster that can only kill and restart its nodes: the shape a
    /// new kind of cluster takes when it implements one ability.
    struct KillOnly {
        calls: Arc<std::sync::Mutex<Vec<String>>>,
    }

    impl gregor_deploy::ability::Faultable for KillOnly {
        fn kind_name(&self) -> String {
            "kill-only".into()
        }
        fn node_count(&self) -> usize {
            3
        }
        fn node_name(&self, i: usize) -> Option<String> {
            (i < 3).then(|| format!("node-{i}"))
        }
        fn node_addr(&self, i: usize) -> Option<String> {
            (i < 3).then(|| format!("10.0.0.{i}:9092"))
        }
        fn as_kill(&mut self) -> Option<&mut dyn gregor_deploy::ability::Kill> {
            Some(self)
        }
    }

    impl gregor_deploy::ability::Kill for KillOnly {
        fn kill(&mut self, node: usize) -> Result<(), gregor_deploy::DeployError> {
            self.calls.lock().unwrap().push(format!("kill {node}"));
            Ok(())
        }
        fn start(&mut self, node: usize) -> Result<(), gregor_deploy::DeployError> {
            self.calls.lock().unwrap().push(format!("start {node}"));
            Ok(())
        }
    }

    #[test]
    fn a_cluster_that_can_only_kill_refuses_pause_and_takes_kill() {
        use gregor_deploy::ability::Faultable;
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut fake = KillOnly {
            calls: calls.clone(),
        };
        let can = fake.abilities();
        let mut cfg = NemesisConfig {
            faults: vec![Fault::Pause],
            target: Target::Node(1),
            interval: Duration::from_millis(40),
            duration: Duration::from_millis(20),
            jitter: 0.0,
            ..NemesisConfig::default()
        };
        let err = cfg.check(&can, 3).unwrap_err().to_string();
        assert!(
            err.contains("`pause`") && err.contains("kill-only") && err.contains("pause a node"),
            "{err}"
        );
        for refused in [
            Fault::Stop,
            Fault::ControllerKill,
            Fault::Partition,
            Fault::Delay,
        ] {
            cfg.faults = vec![refused];
            assert!(
                cfg.check(&can, 3).is_err(),
                "{refused} needs more than Kill"
            );
        }
        cfg.faults = vec![Fault::Kill];
        cfg.check(&can, 3).expect("kill is what it can do");

        // Scheduled: node 1 killed, then started again by the heal, and
        // both recorded in the history.
        let out = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let rec = gregor_history::Recorder::to_writer(
            Box::new(Sink(out.clone())),
            std::time::Instant::now(),
        )
        .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let target: FaultTarget = Arc::new(std::sync::Mutex::new(fake));
        let (r, st) = (rec.clone(), stop.clone());
        let nemesis = std::thread::spawn(move || run(cfg, target, r, st));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while calls.lock().unwrap().len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        nemesis.join().unwrap();
        rec.flush().unwrap();
        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls[..2], ["kill 1", "start 1"], "{calls:?}");
        let history = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert!(
            history.contains(r#""f":"kill","value":["node-1"]"#)
                && history.contains(r#""f":"start","value":["node-1"]"#),
            "{history}"
        );
    }
}
