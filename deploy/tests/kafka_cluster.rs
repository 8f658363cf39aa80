//! A real Apache Kafka KRaft cluster from Maven Central's jars (the
//! default version, resolved into the cache on first use; `KAFKA_HOME`
//! points at a tarball instead when set). Ports 19300-19305.

use std::time::{Duration, Instant};

use gregor_deploy::wire;
use gregor_deploy::{Cluster, ClusterKind, ClusterSpec, ProcessStatus};

#[test]
fn a_three_node_kraft_cluster_starts_elects_and_survives_a_node_restart() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ClusterSpec::new(ClusterKind::Kafka, dir.path()).with_base_port(19300);
    let t = Instant::now();
    let mut cluster = match Cluster::up(spec) {
        Ok(c) => c,
        Err(e) => panic!("kafka cluster up failed: {e}"),
    };
    eprintln!(
        "{} up in {:.1} s",
        cluster.kafka_dist().unwrap().describe(),
        t.elapsed().as_secs_f64()
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for node in cluster.nodes() {
            assert!(dir
                .path()
                .join(format!("data/{}/meta.properties", node.name))
                .is_file());
        }
        assert!(cluster.status().iter().all(|s| s.answering));
        let addr = cluster.nodes()[0].addr();
        let timeout = Duration::from_secs(30);
        assert_eq!(wire::create_topic(&addr, "rf3", 3, 3, timeout).unwrap(), 0);
        let meta = wire::metadata(&addr, &["rf3"], timeout).unwrap();
        assert_eq!(meta.brokers.len(), 3, "{meta:?}");
        for p in &meta.topics[0].partitions {
            assert_eq!(p.replicas.len(), 3);
        }

        // the active controller, from DescribeQuorum; killed, another takes over
        let controller = cluster.active_controller().expect("a quorum leader");
        assert!(controller < 3);
        cluster.kill(controller).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let next = loop {
            if let Some(c) = cluster.active_controller() {
                break c;
            }
            assert!(
                Instant::now() < deadline,
                "no new controller after killing {controller}"
            );
            std::thread::sleep(Duration::from_millis(500));
        };
        assert_ne!(next, controller, "a running node leads the quorum");
        cluster.start(controller).unwrap();

        cluster.kill(2).unwrap();
        assert_eq!(cluster.status()[2].process, ProcessStatus::Down);
        cluster.start(2).unwrap();
        // the restarted node rejoins the ISR of every partition it replicates
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let meta = wire::metadata(&addr, &["rf3"], timeout).unwrap();
            if meta.topics[0].partitions.iter().all(|p| p.isr.len() == 3) {
                break;
            }
            assert!(Instant::now() < deadline, "ISR never recovered: {meta:?}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }));
    cluster.down().unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
