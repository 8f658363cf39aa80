//! The Kafka cluster plumbing (config files, one-time storage format, start
//! command and environment, readiness, kill and restart, down) against a
//! stand-in `KAFKA_HOME` whose scripts run a tiny Python server that
//! answers Metadata (every voter listed as a broker) and every other Kafka
//! request like ApiVersions v0. Real Kafka (from Maven Central) is covered
//! by `kafka_cluster.rs`. Ports 19310-19315.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use gregor_deploy::cluster::check_port_free;
use gregor_deploy::kafka::{parse_properties, KAFKA_CLUSTER_ID};
use gregor_deploy::wire;
use gregor_deploy::{Cluster, ClusterKind, ClusterSpec, ProcessStatus};

const STORAGE_SH: &str = r#"#!/usr/bin/env bash
# fake kafka-storage.sh: format -t ID -c FILE
set -eu
[ "$1" = format ] || { echo "unexpected command $1" >&2; exit 2; }
id="$3"; cfg="$5"
dir=$(sed -n 's/^log.dirs=//p' "$cfg")
node=$(sed -n 's/^node.id=//p' "$cfg")
mkdir -p "$dir"
printf 'cluster.id=%s\nnode.id=%s\nversion=1\n' "$id" "$node" > "$dir/meta.properties"
echo "$cfg" >> "$(dirname "$0")/../format-calls"
"#;

const START_SH: &str = r#"#!/usr/bin/env bash
# fake kafka-server-start.sh FILE
echo "heap=$KAFKA_HEAP_OPTS log_dir=$LOG_DIR jmx=${JMX_PORT:-unset}" >> "$(dirname "$0")/../start-calls"
exec python3 "$(dirname "$0")/fake_broker.py" "$1"
"#;

const FAKE_BROKER: &str = r#"
import socket, struct, sys, threading
props = dict(l.strip().split('=', 1) for l in open(sys.argv[1]) if '=' in l and not l.startswith('#'))
ports = [int(l.rsplit(':', 1)[1]) for l in props['listeners'].split(',')]
print('fake broker', props['node.id'], 'on', ports, flush=True)
def serve(conn):
    with conn:
        while True:
            head = conn.recv(4, socket.MSG_WAITALL)
            if len(head) < 4:
                return
            (n,) = struct.unpack('>i', head)
            req = conn.recv(n, socket.MSG_WAITALL)
            (api,) = struct.unpack('>h', req[0:2])
            corr = req[4:8]
            if api == 3:  # Metadata v8: every voter as a broker, no topics
                ids = [int(v.split('@')[0]) for v in props['controller.quorum.voters'].split(',')]
                body = corr + struct.pack('>ii', 0, len(ids))
                for i in ids:
                    host = b'127.0.0.1'
                    body += struct.pack('>ih', i, len(host)) + host + struct.pack('>ih', 9092 + i, -1)
                body += struct.pack('>hiii', -1, ids[0], 0, 0)
            else:  # anything else: like ApiVersions v0 with no versions
                body = corr + struct.pack('>hi', 0, 0)
            conn.sendall(struct.pack('>i', len(body)) + body)
def listen(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('127.0.0.1', port))
    s.listen()
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
for p in ports[1:]:
    threading.Thread(target=listen, args=(p,), daemon=True).start()
listen(ports[0])
"#;

fn fake_kafka_home(root: &Path) -> std::path::PathBuf {
    let home = root.join("kafka");
    std::fs::create_dir_all(home.join("bin")).unwrap();
    for (name, text) in [
        ("kafka-storage.sh", STORAGE_SH),
        ("kafka-server-start.sh", START_SH),
        ("fake_broker.py", FAKE_BROKER),
    ] {
        let path = home.join("bin").join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    home
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn kafka_nodes_are_formatted_once_started_with_their_config_and_restartable() {
    assert!(
        std::process::Command::new("python3")
            .arg("--version")
            .output()
            .is_ok(),
        "this test needs python3 for its stand-in Kafka broker"
    );
    let root = tempfile::tempdir().unwrap();
    let home = fake_kafka_home(root.path());
    let dir = root.path().join("cluster");
    let mut spec = ClusterSpec::new(ClusterKind::Kafka, &dir).with_base_port(19310);
    spec.kafka_home = Some(home.clone());

    let mut cluster = Cluster::up(spec.clone()).unwrap_or_else(|e| panic!("up failed: {e}"));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_eq!(
            cluster.bootstrap(),
            "127.0.0.1:19310,127.0.0.1:19311,127.0.0.1:19312"
        );
        assert!(
            cluster.status().iter().all(|s| s.answering),
            "{:?}",
            cluster.status()
        );
        for (i, node) in cluster.nodes().iter().enumerate() {
            assert_eq!(node.controller_port, Some(19313 + i as u16));
            let config = node
                .config
                .as_ref()
                .expect("kafka nodes have a config file");
            let props = parse_properties(&std::fs::read_to_string(config).unwrap()).unwrap();
            assert_eq!(props["node.id"], i.to_string());
            let meta = dir.join(format!("data/broker-{i}/meta.properties"));
            let meta = parse_properties(&std::fs::read_to_string(meta).unwrap()).unwrap();
            assert_eq!(meta["cluster.id"], KAFKA_CLUSTER_ID);
            // controller ports are really taken by the node
            assert!(check_port_free("127.0.0.1", 19313 + i as u16, "probe").is_err());
        }
        assert_eq!(lines(&home.join("format-calls")).len(), 3);
        let starts = lines(&home.join("start-calls"));
        assert_eq!(starts.len(), 3);
        // The nodes start all at once, in no particular order.
        assert!(
            starts.iter().all(|s| s.contains("heap=-Xmx512m")),
            "{starts:?}"
        );
        for i in 0..3 {
            let log_dir = format!(
                "log_dir={}",
                dir.join(format!("logs/kafka-broker-{i}")).display()
            );
            assert!(starts.iter().any(|s| s.contains(&log_dir)), "{starts:?}");
        }
        assert!(starts.iter().all(|s| s.ends_with("jmx=unset")));

        cluster.kill(1).unwrap();
        assert_eq!(cluster.status()[1].process, ProcessStatus::Down);
        cluster.start(1).unwrap();
        assert!(cluster.status()[1].answering);
        assert_eq!(
            lines(&home.join("format-calls")).len(),
            3,
            "a restart does not reformat"
        );
        assert!(wire::answers_api_versions(
            "127.0.0.1:19311",
            std::time::Duration::from_secs(2)
        ));
    }));
    cluster.down().unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    for port in 19310..19316 {
        check_port_free("127.0.0.1", port, "probe").unwrap();
    }

    // A second up on the same directory keeps the formatted log directories.
    let mut again = Cluster::up(spec).unwrap_or_else(|e| panic!("second up failed: {e}"));
    assert!(!again.already_up());
    again.down().unwrap();
    assert_eq!(lines(&home.join("format-calls")).len(), 3);
}
