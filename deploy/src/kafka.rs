//! Apache Kafka in KRaft mode: per-node `server.properties`, the storage
//! format command and the start command.
//!
//! Every node is a combined broker+controller (`process.roles=broker,controller`)
//! with a static controller quorum, listening for clients on
//! `PLAINTEXT://127.0.0.1:<base_port+i>` and for the quorum on
//! `CONTROLLER://127.0.0.1:<base_port+brokers+i>`. Replication settings
//! follow what a reliability test wants: `acks=all` writes need 2 in-sync
//! replicas out of 3, no unclean leader election, no rebalance delay.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::DeployError;
use crate::process::Launch;
use crate::spec::ClusterSpec;

pub mod dist;

pub use dist::{KafkaDist, KafkaVersion, DEFAULT_KAFKA_VERSION};

/// The fixed KRaft cluster id: the URL-safe base64 (no padding) of the 16
/// bytes `gregor-kraft-id1`, which is what `kafka-storage.sh random-uuid` prints.
pub const KAFKA_CLUSTER_ID: &str = "Z3JlZ29yLWtyYWZ0LWlkMQ";

/// Host every local node binds and advertises.
pub const HOST: &str = "127.0.0.1";

/// Heap for each broker JVM (small: several brokers share one machine).
pub const KAFKA_HEAP_OPTS: &str = "-Xmx512m -Xms256m";

/// The Kafka code a spec asks for: its installation (`kafka_home`, else
/// `$KAFKA_HOME` when no version is named), else the jars of
/// `kafka_version` (default [`DEFAULT_KAFKA_VERSION`]) from Maven Central.
pub fn kafka_dist(spec: &ClusterSpec) -> Result<KafkaDist, DeployError> {
    let home = spec.kafka_home.clone().or_else(|| {
        spec.kafka_version
            .is_none()
            .then(|| std::env::var_os("KAFKA_HOME").filter(|h| !h.is_empty()))
            .flatten()
            .map(PathBuf::from)
    });
    match home {
        Some(home) => Ok(KafkaDist::Home {
            home: kafka_home(&home)?,
        }),
        None => KafkaDist::jars(
            spec.kafka_version
                .as_deref()
                .unwrap_or(DEFAULT_KAFKA_VERSION),
        ),
    }
}

/// Checks that `home` is an unpacked Kafka release: it must contain
/// `bin/kafka-server-start.sh` and `bin/kafka-storage.sh`.
pub fn kafka_home(home: &Path) -> Result<PathBuf, DeployError> {
    for script in ["bin/kafka-server-start.sh", "bin/kafka-storage.sh"] {
        let path = home.join(script);
        if !path.is_file() {
            return Err(DeployError::NotFound(format!(
                "{} does not exist: {} is not an Apache Kafka installation",
                path.display(),
                home.display()
            )));
        }
    }
    Ok(home.to_path_buf())
}

/// Where node `i` keeps its log segments and `meta.properties`.
pub fn log_dir(spec: &ClusterSpec, i: usize) -> PathBuf {
    spec.dir.join("data").join(format!("broker-{i}"))
}

/// Where node `i`'s configuration is written.
pub fn config_path(spec: &ClusterSpec, i: usize) -> PathBuf {
    spec.dir
        .join("config")
        .join(format!("broker-{i}.properties"))
}

/// Kafka's own log4j directory for node `i` (`LOG_DIR`).
pub fn kafka_log_dir(spec: &ClusterSpec, i: usize) -> PathBuf {
    spec.dir.join("logs").join(format!("kafka-broker-{i}"))
}

/// `id@host:port,...` for every controller.
pub fn quorum_voters(spec: &ClusterSpec) -> String {
    (0..spec.brokers)
        .map(|j| format!("{j}@{HOST}:{}", spec.controller_port(j)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The `server.properties` of node `i`, as ordered key/value pairs.
pub fn server_properties(spec: &ClusterSpec, i: usize) -> Vec<(String, String)> {
    let n = spec.brokers;
    let rf = n.min(3);
    let min_isr = n.min(2);
    let port = spec.client_port(i);
    let cport = spec.controller_port(i);
    let kv = |k: &str, v: String| (k.to_string(), v);
    let mut props = vec![
        kv("process.roles", "broker,controller".into()),
        kv("node.id", i.to_string()),
        kv("controller.quorum.voters", quorum_voters(spec)),
        kv(
            "listeners",
            format!("PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{cport}"),
        ),
        kv("advertised.listeners", format!("PLAINTEXT://{HOST}:{port}")),
        kv("inter.broker.listener.name", "PLAINTEXT".into()),
        kv("controller.listener.names", "CONTROLLER".into()),
        kv(
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".into(),
        ),
        kv("log.dirs", log_dir(spec, i).display().to_string()),
        kv("num.partitions", "1".into()),
        kv("default.replication.factor", rf.to_string()),
        kv("min.insync.replicas", min_isr.to_string()),
        kv("offsets.topic.replication.factor", rf.to_string()),
        kv("offsets.topic.num.partitions", "10".into()),
        kv("transaction.state.log.replication.factor", rf.to_string()),
        kv("transaction.state.log.min.isr", min_isr.to_string()),
        kv("transaction.state.log.num.partitions", "10".into()),
        kv("group.initial.rebalance.delay.ms", "0".into()),
        kv("unclean.leader.election.enable", "false".into()),
        kv("auto.create.topics.enable", "true".into()),
        // Two cores for several brokers and the clients: fewer threads.
        kv("num.network.threads", "2".into()),
        kv("num.io.threads", "2".into()),
        kv("num.replica.fetchers", "1".into()),
        kv("background.threads", "2".into()),
        kv("log.cleaner.threads", "1".into()),
    ];
    // The scenario's own broker settings win over these defaults.
    for (k, v) in &spec.broker_configs {
        match props.iter_mut().find(|(key, _)| key == k) {
            Some((_, value)) => value.clone_from(v),
            None => props.push((k.clone(), v.clone())),
        }
    }
    props
}

/// Render properties in Java `.properties` syntax (values here never need escaping
/// except backslashes, which are doubled).
pub fn render_properties(props: &[(String, String)]) -> String {
    let mut out = String::from("# Generated by gregor-deploy; rewritten on every start.\n");
    for (k, v) in props {
        out.push_str(k);
        out.push('=');
        out.push_str(&v.replace('\\', "\\\\"));
        out.push('\n');
    }
    out
}

/// Parse the subset of `.properties` syntax that [`render_properties`]
/// writes (and `meta.properties` uses): `key=value` lines, `#`/`!` comments.
/// Returns the line number (1-based) of the first line that is not a pair.
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, usize> {
    let mut map = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or(n + 1)?;
        map.insert(k.trim().to_string(), v.trim().replace("\\\\", "\\"));
    }
    Ok(map)
}

/// Write node `i`'s configuration file; returns its path.
pub fn write_config(spec: &ClusterSpec, i: usize) -> Result<PathBuf, DeployError> {
    let path = config_path(spec, i);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| DeployError::io("create directory", parent, e))?;
    }
    std::fs::write(&path, render_properties(&server_properties(spec, i)))
        .map_err(|e| DeployError::io("write", &path, e))?;
    Ok(path)
}

/// Storage formatting for one node: `kafka-storage.sh format -t ID -c FILE`
/// or that version's `kafka.tools.StorageTool` on the jars.
pub fn format_command(dist: &KafkaDist, spec: &ClusterSpec, i: usize) -> Launch {
    let args = vec![
        "format".into(),
        "-t".into(),
        KAFKA_CLUSTER_ID.into(),
        "-c".into(),
        config_path(spec, i).display().to_string(),
    ];
    match dist {
        KafkaDist::Home { home } => Launch {
            program: home.join("bin/kafka-storage.sh"),
            args,
            env: common_env(spec, i),
            env_remove: removed_env(),
            cwd: spec.dir.clone(),
        },
        KafkaDist::Jars { .. } => java_launch(dist, spec, i, "kafka.tools.StorageTool", args),
    }
}

/// The node itself: `kafka-server-start.sh FILE` or `java ... kafka.Kafka FILE`.
pub fn start_command(dist: &KafkaDist, spec: &ClusterSpec, i: usize) -> Launch {
    let args = vec![config_path(spec, i).display().to_string()];
    match dist {
        KafkaDist::Home { home } => Launch {
            program: home.join("bin/kafka-server-start.sh"),
            args,
            env: common_env(spec, i),
            env_remove: removed_env(),
            cwd: spec.dir.clone(),
        },
        KafkaDist::Jars { .. } => java_launch(dist, spec, i, "kafka.Kafka", args),
    }
}

/// JVM flags for several small brokers sharing two cores: the serial
/// collector (no GC threads competing with the brokers), exit on
/// out-of-memory instead of limping, no perf-data file, headless.
pub const KAFKA_JVM_FLAGS: &[&str] = &[
    "-XX:+UseSerialGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
];

/// `java <heap> <flags> <logging> -cp 'libs/*' MAIN ARGS` for node `i`.
fn java_launch(
    dist: &KafkaDist,
    spec: &ClusterSpec,
    i: usize,
    main: &str,
    main_args: Vec<String>,
) -> Launch {
    let KafkaDist::Jars {
        version,
        libs,
        java,
    } = dist
    else {
        unreachable!("java_launch is only called for jars");
    };
    let log4j2 = KafkaVersion::parse(version)
        .map(KafkaVersion::uses_log4j2)
        .unwrap_or(true);
    let mut args: Vec<String> = KAFKA_HEAP_OPTS.split(' ').map(str::to_string).collect();
    args.extend(KAFKA_JVM_FLAGS.iter().map(|f| f.to_string()));
    let logging = logging_config_path(spec, log4j2);
    args.push(if log4j2 {
        format!("-Dlog4j2.configurationFile=file:{}", logging.display())
    } else {
        format!("-Dlog4j.configuration=file:{}", logging.display())
    });
    args.push(format!(
        "-Dkafka.logs.dir={}",
        kafka_log_dir(spec, i).display()
    ));
    args.push("-cp".into());
    args.push(format!("{}/*", libs.display()));
    args.push(main.into());
    args.extend(main_args);
    Launch {
        program: java.clone(),
        args,
        env: Vec::new(),
        env_remove: removed_env(),
        cwd: spec.dir.clone(),
    }
}

/// Sets the cluster's `metadata.version` to that of `release` (e.g.
/// `"4.1"`) with `dist`'s own feature tool
/// (`org.apache.kafka.tools.FeatureCommand upgrade --release-version`):
/// the last step of a rolling upgrade, once every node runs the new
/// version. Returns the tool's output.
pub fn upgrade_metadata_version(
    dist: &KafkaDist,
    spec: &ClusterSpec,
    bootstrap: &str,
    release: &str,
) -> Result<String, DeployError> {
    let args = vec![
        "--bootstrap-server".to_string(),
        bootstrap.to_string(),
        "upgrade".into(),
        "--release-version".into(),
        release.to_string(),
    ];
    let launch = match dist {
        KafkaDist::Jars { .. } => {
            java_launch(dist, spec, 0, "org.apache.kafka.tools.FeatureCommand", args)
        }
        KafkaDist::Home { home } => Launch {
            program: home.join("bin/kafka-features.sh"),
            args,
            env: common_env(spec, 0),
            env_remove: removed_env(),
            cwd: spec.dir.clone(),
        },
    };
    let mut cmd = std::process::Command::new(&launch.program);
    cmd.args(&launch.args).current_dir(&launch.cwd);
    for k in &launch.env_remove {
        cmd.env_remove(k);
    }
    for (k, v) in &launch.env {
        cmd.env(k, v);
    }
    let output = cmd.output().map_err(|source| DeployError::Spawn {
        node: "feature tool".into(),
        program: launch.program.clone(),
        source,
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        return Err(DeployError::KafkaTool {
            tool: "kafka-features upgrade".into(),
            command: launch.display(),
            status: output.status.to_string(),
            output: text,
        });
    }
    Ok(text)
}

/// The logging configuration every node of a jar-run cluster shares.
pub fn logging_config_path(spec: &ClusterSpec, log4j2: bool) -> PathBuf {
    spec.dir.join("config").join(if log4j2 {
        "log4j2.properties"
    } else {
        "log4j.properties"
    })
}

/// Logs to standard output (the node's `logs/broker-N.log`) at INFO,
/// with the level as its own word so the first `ERROR` line can be found.
const LOG4J2_CONFIG: &str = "\
# Written by gregor: every Kafka node logs to stdout (logs/broker-N.log).
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = warn
";

const LOG4J1_CONFIG: &str = "\
# Written by gregor: every Kafka node logs to stdout (logs/broker-N.log).
log4j.rootLogger=INFO, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
";

/// Writes the logging configuration a jar-run cluster needs (nothing for a tarball).
pub fn write_logging_config(dist: &KafkaDist, spec: &ClusterSpec) -> Result<(), DeployError> {
    let KafkaDist::Jars { version, .. } = dist else {
        return Ok(());
    };
    let log4j2 = KafkaVersion::parse(version)?.uses_log4j2();
    let path = logging_config_path(spec, log4j2);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| DeployError::io("create directory", parent, e))?;
    }
    let text = if log4j2 { LOG4J2_CONFIG } else { LOG4J1_CONFIG };
    std::fs::write(&path, text).map_err(|e| DeployError::io("write", &path, e))
}

fn common_env(spec: &ClusterSpec, i: usize) -> Vec<(String, String)> {
    vec![
        ("KAFKA_HEAP_OPTS".into(), KAFKA_HEAP_OPTS.into()),
        (
            "KAFKA_JVM_PERFORMANCE_OPTS".into(),
            KAFKA_JVM_FLAGS.join(" "),
        ),
        (
            "LOG_DIR".into(),
            kafka_log_dir(spec, i).display().to_string(),
        ),
    ]
}

/// `JMX_PORT` would make every JVM open the same JMX port.
fn removed_env() -> Vec<String> {
    vec!["JMX_PORT".into()]
}

/// The first `ERROR` line of a node's log: what a user needs to see when a
/// node did not start (not the shutdown noise that follows it).
pub fn first_error_line(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    // Only the last start counts: the log is appended across restarts.
    let last_start = text.rfind("=== gregor: starting").unwrap_or(0);
    text[last_start..]
        .lines()
        .find(|l| {
            l.contains(" ERROR ") || l.starts_with("ERROR ") || l.contains("Exception in thread")
        })
        .map(|l| l.trim().to_string())
}

/// True when node `i`'s log directory was already formatted.
pub fn is_formatted(spec: &ClusterSpec, i: usize) -> bool {
    log_dir(spec, i).join("meta.properties").is_file()
}

/// Format node `i`'s log directory unless already formatted.
pub fn format_once(dist: &KafkaDist, spec: &ClusterSpec, i: usize) -> Result<bool, DeployError> {
    if is_formatted(spec, i) {
        return Ok(false);
    }
    let launch = format_command(dist, spec, i);
    let mut cmd = std::process::Command::new(&launch.program);
    cmd.args(&launch.args).current_dir(&launch.cwd);
    for k in &launch.env_remove {
        cmd.env_remove(k);
    }
    for (k, v) in &launch.env {
        cmd.env(k, v);
    }
    let output = cmd.output().map_err(|source| DeployError::Spawn {
        node: format!("broker-{i}"),
        program: launch.program.clone(),
        source,
    })?;
    if !output.status.success() {
        return Err(DeployError::KafkaFormat {
            node: format!("broker-{i}"),
            command: launch.display(),
            status: output.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ClusterKind;
    use std::collections::BTreeSet;

    fn spec() -> ClusterSpec {
        ClusterSpec::new(ClusterKind::Kafka, "/tmp/gregor-k").with_base_port(19300)
    }

    fn parsed(spec: &ClusterSpec, i: usize) -> BTreeMap<String, String> {
        parse_properties(&render_properties(&server_properties(spec, i))).unwrap()
    }

    fn port_of(listener: &str) -> u16 {
        listener.rsplit(':').next().unwrap().parse().unwrap()
    }

    #[test]
    fn every_node_is_a_combined_kraft_node_with_its_own_id() {
        let spec = spec();
        for i in 0..3 {
            let p = parsed(&spec, i);
            assert_eq!(p["process.roles"], "broker,controller");
            assert_eq!(p["node.id"], i.to_string());
            assert_eq!(p["controller.listener.names"], "CONTROLLER");
            assert_eq!(p["inter.broker.listener.name"], "PLAINTEXT");
            assert_eq!(
                p["listener.security.protocol.map"],
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
            );
        }
    }

    #[test]
    fn all_nodes_agree_on_a_voters_list_naming_every_controller_port() {
        let spec = spec();
        let voters = parsed(&spec, 0)["controller.quorum.voters"].clone();
        assert_eq!(
            voters,
            "0@127.0.0.1:19303,1@127.0.0.1:19304,2@127.0.0.1:19305"
        );
        for i in 1..3 {
            assert_eq!(parsed(&spec, i)["controller.quorum.voters"], voters);
        }
        // each node's CONTROLLER listener is the one the voters list names for its id
        for i in 0..3 {
            let p = parsed(&spec, i);
            let controller = p["listeners"]
                .split(',')
                .find(|l| l.starts_with("CONTROLLER://"))
                .unwrap()
                .to_string();
            assert!(voters.contains(&format!("{i}@127.0.0.1:{}", port_of(&controller))));
        }
    }

    #[test]
    fn client_and_controller_ports_are_unique_across_the_cluster() {
        let spec = spec();
        let mut ports = BTreeSet::new();
        for i in 0..3 {
            let p = parsed(&spec, i);
            let listeners: Vec<&str> = p["listeners"].split(',').collect();
            assert_eq!(listeners.len(), 2);
            assert!(listeners[0].starts_with("PLAINTEXT://127.0.0.1:"));
            assert!(listeners[1].starts_with("CONTROLLER://127.0.0.1:"));
            for l in listeners {
                assert!(ports.insert(port_of(l)), "port of {l} used twice");
            }
            assert_eq!(
                p["advertised.listeners"],
                format!("PLAINTEXT://127.0.0.1:{}", 19300 + i)
            );
        }
        assert_eq!(ports.len(), 6);
    }

    #[test]
    fn replication_settings_make_acks_all_need_two_of_three_replicas() {
        let p = parsed(&spec(), 1);
        assert_eq!(p["offsets.topic.replication.factor"], "3");
        assert_eq!(p["transaction.state.log.replication.factor"], "3");
        assert_eq!(p["transaction.state.log.min.isr"], "2");
        assert_eq!(p["min.insync.replicas"], "2");
        assert_eq!(p["default.replication.factor"], "3");
        assert_eq!(p["group.initial.rebalance.delay.ms"], "0");
        assert_eq!(p["unclean.leader.election.enable"], "false");
    }

    #[test]
    fn a_single_node_cluster_does_not_ask_for_more_replicas_than_it_has() {
        let spec = spec().with_brokers(1);
        let p = parsed(&spec, 0);
        assert_eq!(p["offsets.topic.replication.factor"], "1");
        assert_eq!(p["transaction.state.log.min.isr"], "1");
        assert_eq!(p["min.insync.replicas"], "1");
        assert_eq!(p["controller.quorum.voters"], "0@127.0.0.1:19301");
    }

    #[test]
    fn each_node_keeps_its_data_in_its_own_directory_under_the_cluster_dir() {
        let spec = spec();
        let dirs: BTreeSet<String> = (0..3)
            .map(|i| parsed(&spec, i)["log.dirs"].clone())
            .collect();
        assert_eq!(dirs.len(), 3);
        for d in dirs {
            assert!(d.starts_with("/tmp/gregor-k/data/broker-"), "{d}");
        }
    }

    #[test]
    fn the_cluster_id_is_a_kraft_uuid_of_sixteen_bytes() {
        assert_eq!(KAFKA_CLUSTER_ID.len(), 22);
        assert!(KAFKA_CLUSTER_ID
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        // decode base64url by hand: 22 chars * 6 bits = 132 bits = 16 bytes + 4 zero bits
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut bits: u128 = 0;
        let mut tail = 0;
        for (n, c) in KAFKA_CLUSTER_ID.chars().enumerate() {
            let v = alphabet.find(c).unwrap() as u128;
            if n < 21 {
                bits = (bits << 6) | v;
            } else {
                bits = (bits << 2) | (v >> 4);
                tail = v & 0xf;
            }
        }
        assert_eq!(tail, 0, "no stray bits");
        assert_eq!(&bits.to_be_bytes(), b"gregor-kraft-id1");
    }

    fn home() -> KafkaDist {
        KafkaDist::Home {
            home: "/opt/kafka".into(),
        }
    }

    fn jars(version: &str) -> KafkaDist {
        KafkaDist::Jars {
            version: version.into(),
            libs: "/cache/kafka/libs".into(),
            java: "/usr/bin/java".into(),
        }
    }

    #[test]
    fn scenario_broker_settings_override_the_defaults_and_add_new_ones() {
        let mut spec = spec();
        spec.broker_configs
            .insert("unclean.leader.election.enable".into(), "true".into());
        spec.broker_configs
            .insert("unclean.leader.election.interval.ms".into(), "1000".into());
        let p = parsed(&spec, 0);
        assert_eq!(p["unclean.leader.election.enable"], "true");
        assert_eq!(p["unclean.leader.election.interval.ms"], "1000");
        let text = render_properties(&server_properties(&spec, 0));
        assert_eq!(text.matches("unclean.leader.election.enable=").count(), 1);
    }

    #[test]
    fn jar_nodes_run_kafka_kafka_on_the_cached_classpath_with_small_jvms() {
        let spec = spec();
        let cmd = start_command(&jars("4.1.1"), &spec, 1);
        assert_eq!(cmd.program, PathBuf::from("/usr/bin/java"));
        let args = cmd.args.join(" ");
        assert!(
            args.contains("-Xmx512m") && args.contains("-XX:+UseSerialGC"),
            "{args}"
        );
        assert!(
            args.contains("-Dlog4j2.configurationFile=file:/tmp/gregor-k/config/log4j2.properties"),
            "{args}"
        );
        assert!(
            args.ends_with(
                "-cp /cache/kafka/libs/* kafka.Kafka /tmp/gregor-k/config/broker-1.properties"
            ),
            "{args}"
        );
        // 3.9 logs through reload4j (log4j 1)
        let old = start_command(&jars("3.9.1"), &spec, 1).args.join(" ");
        assert!(old.contains("-Dlog4j.configuration=file:/tmp/gregor-k/config/log4j.properties"));
        let fmt = format_command(&jars("4.1.1"), &spec, 2).args.join(" ");
        assert!(
            fmt.ends_with(&format!(
                "kafka.tools.StorageTool format -t {KAFKA_CLUSTER_ID} -c /tmp/gregor-k/config/broker-2.properties"
            )),
            "{fmt}"
        );
    }

    #[test]
    fn the_first_error_line_of_the_last_start_is_the_reported_cause() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("broker-0.log");
        std::fs::write(
            &log,
            "=== gregor: starting broker-0\n[t] ERROR old failure (x)\n\
             === gregor: starting broker-0\n[t] INFO fine (y)\n\
             [t] ERROR [BrokerLifecycleManager id=0] Shutting down because we were unable to register \
             with the controller quorum. (kafka.server.BrokerLifecycleManager)\n\
             [t] ERROR later shutdown noise (z)\n",
        )
        .unwrap();
        let line = first_error_line(&log).unwrap();
        assert!(
            line.contains("unable to register with the controller quorum"),
            "{line}"
        );
        assert!(first_error_line(&dir.path().join("missing.log")).is_none());
    }

    #[test]
    fn the_format_command_formats_each_node_with_the_fixed_cluster_id() {
        let spec = spec();
        let cmd = format_command(&home(), &spec, 2);
        assert_eq!(
            cmd.program,
            PathBuf::from("/opt/kafka/bin/kafka-storage.sh")
        );
        assert_eq!(
            cmd.args,
            vec![
                "format",
                "-t",
                KAFKA_CLUSTER_ID,
                "-c",
                "/tmp/gregor-k/config/broker-2.properties"
            ]
        );
    }

    #[test]
    fn the_start_command_uses_a_small_heap_and_a_log_dir_under_the_cluster_dir() {
        let spec = spec();
        let cmd = start_command(&home(), &spec, 1);
        assert_eq!(
            cmd.program,
            PathBuf::from("/opt/kafka/bin/kafka-server-start.sh")
        );
        assert_eq!(cmd.args, vec!["/tmp/gregor-k/config/broker-1.properties"]);
        let env: BTreeMap<_, _> = cmd.env.iter().cloned().collect();
        assert!(env["KAFKA_HEAP_OPTS"].contains("-Xmx512m"));
        assert_eq!(env["LOG_DIR"], "/tmp/gregor-k/logs/kafka-broker-1");
        assert!(cmd.env_remove.contains(&"JMX_PORT".to_string()));
    }

    #[test]
    fn a_missing_kafka_home_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = spec();
        spec.kafka_home = Some(dir.path().to_path_buf());
        let err = kafka_dist(&spec).unwrap_err().to_string();
        assert!(
            err.contains("kafka-server-start.sh") && err.contains("not an Apache Kafka"),
            "{err}"
        );
    }

    #[test]
    fn formatting_is_skipped_once_meta_properties_exists() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ClusterSpec::new(ClusterKind::Kafka, dir.path());
        std::fs::create_dir_all(log_dir(&spec, 0)).unwrap();
        std::fs::write(log_dir(&spec, 0).join("meta.properties"), "node.id=0\n").unwrap();
        // the kafka home does not even exist: nothing must be run
        let nowhere = KafkaDist::Home {
            home: "/nonexistent".into(),
        };
        assert!(!format_once(&nowhere, &spec, 0).unwrap());
        assert!(format_once(&nowhere, &spec, 1).is_err());
    }

    #[test]
    fn parsing_properties_names_the_bad_line() {
        assert_eq!(parse_properties("# c\na=b\nnonsense\n"), Err(3));
    }
}
