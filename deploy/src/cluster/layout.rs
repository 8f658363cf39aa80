//! Broker command lines and configurations for proxied and namespaced
//! clusters ([`crate::spec::NetworkSpec`]). For the plain layout these are
//! exactly [`tansu::broker_command`] and [`kafka::server_properties`].

use std::path::{Path, PathBuf};

use crate::error::DeployError;
use crate::kafka;
use crate::process::Launch;
use crate::spec::ClusterSpec;
use crate::tansu;

/// tansu broker `i`: listens on its real address, advertises the client one.
pub(super) fn tansu_command(bin: &Path, spec: &ClusterSpec, storage: &str, i: usize) -> Launch {
    let mut launch = tansu::broker_command(bin, spec, storage, i);
    let listen = format!("tcp://{}:{}", spec.bind_host(i), spec.listen_port(i));
    let advertised = format!("tcp://{}:{}", spec.advertised_host(i), spec.client_port(i));
    for k in 0..launch.args.len().saturating_sub(1) {
        match launch.args[k].as_str() {
            "--listener-url" => launch.args[k + 1] = listen.clone(),
            "--advertised-listener-url" => launch.args[k + 1] = advertised.clone(),
            _ => {}
        }
    }
    launch
}

fn set(props: &mut Vec<(String, String)>, key: &str, value: String) {
    match props.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value,
        None => props.push((key.to_string(), value)),
    }
}

/// `server.properties` of Kafka node `i` for the spec's network layout.
///
/// - plain: as [`kafka::server_properties`];
/// - proxied: clients, the controller quorum and replication (a separate
///   `REPLICATION` listener, the inter-broker one) each reach node `i`
///   through its own proxy port, so link faults hit broker↔broker traffic too;
/// - namespaces: everything binds and advertises the node's own address,
///   peers talk over the bridge (where partitions cut them); with proxies
///   too, only the client listener is advertised at its proxy.
pub fn kafka_properties(spec: &ClusterSpec, i: usize) -> Vec<(String, String)> {
    let mut p = kafka::server_properties(spec, i);
    let net = &spec.network;
    if net.is_plain() {
        return p;
    }
    let local = kafka::HOST;
    let bind = spec.bind_host(i);
    let netns = net.netns.is_some();
    let voters_host = |j: usize| {
        if netns {
            spec.bind_host(j)
        } else {
            local.to_string()
        }
    };
    let voters = (0..spec.brokers)
        .map(|j| format!("{j}@{}:{}", voters_host(j), spec.controller_port(j)))
        .collect::<Vec<_>>()
        .join(",");
    set(&mut p, "controller.quorum.voters", voters);
    let controller = format!("CONTROLLER://{bind}:{}", spec.controller_listen_port(i));
    if !net.proxied {
        let client = format!("PLAINTEXT://{bind}:{}", spec.client_port(i));
        set(&mut p, "listeners", format!("{client},{controller}"));
        set(&mut p, "advertised.listeners", client);
        return p;
    }
    let (repl_adv, repl_real) = spec.replication_ports(i);
    let repl_host = if netns {
        bind.clone()
    } else {
        local.to_string()
    };
    set(
        &mut p,
        "listeners",
        format!(
            "PLAINTEXT://{bind}:{},REPLICATION://{bind}:{repl_real},{controller}",
            spec.listen_port(i)
        ),
    );
    set(
        &mut p,
        "advertised.listeners",
        format!(
            "PLAINTEXT://{local}:{},REPLICATION://{repl_host}:{repl_adv}",
            spec.client_port(i)
        ),
    );
    set(&mut p, "inter.broker.listener.name", "REPLICATION".into());
    set(
        &mut p,
        "listener.security.protocol.map",
        "PLAINTEXT:PLAINTEXT,REPLICATION:PLAINTEXT,CONTROLLER:PLAINTEXT".into(),
    );
    p
}

/// Writes node `i`'s Kafka configuration for the spec's layout.
pub(super) fn write_kafka_config(spec: &ClusterSpec, i: usize) -> Result<PathBuf, DeployError> {
    if spec.network.is_plain() {
        return kafka::write_config(spec, i);
    }
    let path = kafka::config_path(spec, i);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| DeployError::io("create directory", parent, e))?;
    }
    std::fs::write(&path, kafka::render_properties(&kafka_properties(spec, i)))
        .map_err(|e| DeployError::io("write", &path, e))?;
    Ok(path)
}

/// Runs `launch` inside network namespace `ns` (`ip netns exec` execs the
/// program in place: same pid, same process group).
pub(super) fn in_namespace(launch: Launch, ns: &str) -> Launch {
    let mut args = vec![
        "netns".to_string(),
        "exec".to_string(),
        ns.to_string(),
        launch.program.display().to_string(),
    ];
    args.extend(launch.args);
    Launch {
        program: PathBuf::from("ip"),
        args,
        ..launch
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::spec::{ClusterKind, LinkKind, NetnsPlacement, NetworkSpec};

    fn kafka_spec(network: NetworkSpec) -> ClusterSpec {
        ClusterSpec::new(ClusterKind::Kafka, "/tmp/gregor-k")
            .with_base_port(19600)
            .with_network(network)
    }

    fn props(spec: &ClusterSpec, i: usize) -> BTreeMap<String, String> {
        kafka::parse_properties(&kafka::render_properties(&kafka_properties(spec, i))).unwrap()
    }

    fn netns() -> Option<NetnsPlacement> {
        Some(NetnsPlacement {
            namespaces: (0..3).map(|i| format!("gregor-t-{i}")).collect(),
            hosts: (0..3).map(|i| format!("10.231.7.{}", 10 + i)).collect(),
        })
    }

    /// Every (listen -> upstream) route, as "listen>upstream" strings.
    fn routes(spec: &ClusterSpec, kind: LinkKind) -> Vec<String> {
        spec.proxy_routes()
            .into_iter()
            .filter(|r| r.kind == kind)
            .map(|r| format!("{}>{}", r.listen, r.upstream))
            .collect()
    }

    #[test]
    fn the_plain_kafka_layout_is_the_deploy_default() {
        let spec = kafka_spec(NetworkSpec::default());
        assert_eq!(
            kafka_properties(&spec, 1),
            kafka::server_properties(&spec, 1)
        );
        assert!(spec.proxy_routes().is_empty());
        assert_eq!(spec.ports_needed(), 6);
    }

    #[test]
    fn proxied_kafka_routes_clients_quorum_and_replication_through_proxies() {
        let spec = kafka_spec(NetworkSpec {
            proxied: true,
            netns: None,
        });
        assert_eq!(spec.ports_needed(), 18);
        let p = props(&spec, 1);
        // clients are given the proxy port; the broker listens elsewhere
        assert_eq!(
            p["advertised.listeners"],
            "PLAINTEXT://127.0.0.1:19601,REPLICATION://127.0.0.1:19613"
        );
        assert_eq!(
            p["listeners"],
            "PLAINTEXT://127.0.0.1:19607,REPLICATION://127.0.0.1:19616,CONTROLLER://127.0.0.1:19610"
        );
        assert_eq!(p["inter.broker.listener.name"], "REPLICATION");
        assert!(p["listener.security.protocol.map"].contains("REPLICATION:PLAINTEXT"));
        // voters name the controller proxies
        assert_eq!(
            p["controller.quorum.voters"],
            "0@127.0.0.1:19603,1@127.0.0.1:19604,2@127.0.0.1:19605"
        );
        // and the proxies lead to the real listeners
        assert_eq!(
            routes(&spec, LinkKind::Client)[1],
            "127.0.0.1:19601>127.0.0.1:19607"
        );
        assert_eq!(
            routes(&spec, LinkKind::Controller)[1],
            "127.0.0.1:19604>127.0.0.1:19610"
        );
        assert_eq!(
            routes(&spec, LinkKind::Replication)[1],
            "127.0.0.1:19613>127.0.0.1:19616"
        );
        // no port is used twice
        let mut all: Vec<u16> = (0..3)
            .flat_map(|i| {
                let p = props(&spec, i);
                let mut v: Vec<u16> = p["listeners"]
                    .split(',')
                    .map(|l| l.rsplit(':').next().unwrap().parse().unwrap())
                    .collect();
                v.extend(
                    spec.proxy_routes()
                        .iter()
                        .filter(|r| r.node == i)
                        .map(|r| r.listen.port()),
                );
                v
            })
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "a port is used twice");
        assert!(all.iter().all(|&p| (19600..19618).contains(&p)));
    }

    #[test]
    fn namespaced_kafka_binds_and_advertises_its_own_address_and_peers_go_direct() {
        let spec = kafka_spec(NetworkSpec {
            proxied: false,
            netns: netns(),
        });
        let p = props(&spec, 2);
        assert_eq!(
            p["listeners"],
            "PLAINTEXT://10.231.7.12:19602,CONTROLLER://10.231.7.12:19605"
        );
        assert_eq!(p["advertised.listeners"], "PLAINTEXT://10.231.7.12:19602");
        assert_eq!(
            p["controller.quorum.voters"],
            "0@10.231.7.10:19603,1@10.231.7.11:19604,2@10.231.7.12:19605"
        );
        assert!(spec.proxy_routes().is_empty());
    }

    #[test]
    fn namespaced_and_proxied_kafka_proxies_only_clients() {
        let spec = kafka_spec(NetworkSpec {
            proxied: true,
            netns: netns(),
        });
        let p = props(&spec, 0);
        assert_eq!(
            p["advertised.listeners"],
            "PLAINTEXT://127.0.0.1:19600,REPLICATION://10.231.7.10:19615"
        );
        assert_eq!(
            p["listeners"],
            "PLAINTEXT://10.231.7.10:19606,REPLICATION://10.231.7.10:19615,CONTROLLER://10.231.7.10:19603"
        );
        assert_eq!(p["inter.broker.listener.name"], "REPLICATION");
        assert_eq!(
            routes(&spec, LinkKind::Client),
            vec![
                "127.0.0.1:19600>10.231.7.10:19606",
                "127.0.0.1:19601>10.231.7.11:19607",
                "127.0.0.1:19602>10.231.7.12:19608",
            ]
        );
        assert!(routes(&spec, LinkKind::Controller).is_empty());
    }

    #[test]
    fn a_proxied_tansu_broker_advertises_the_proxy_and_listens_behind_it() {
        let spec = ClusterSpec::new(ClusterKind::Tansu, "/tmp/c")
            .with_base_port(19620)
            .with_network(NetworkSpec {
                proxied: true,
                netns: None,
            });
        let args = tansu_command(Path::new("/bin/tansu"), &spec, "sqlite://tansu.db", 2)
            .args
            .join(" ");
        assert!(
            args.contains("--listener-url tcp://127.0.0.1:19625"),
            "{args}"
        );
        assert!(
            args.contains("--advertised-listener-url tcp://127.0.0.1:19622"),
            "{args}"
        );
        assert_eq!(
            routes(&spec, LinkKind::Client)[2],
            "127.0.0.1:19622>127.0.0.1:19625"
        );
    }

    #[test]
    fn a_namespaced_broker_is_started_through_ip_netns_exec() {
        let spec = ClusterSpec::new(ClusterKind::Tansu, "/tmp/c")
            .with_base_port(19620)
            .with_network(NetworkSpec {
                proxied: false,
                netns: netns(),
            });
        let launch = in_namespace(
            tansu_command(Path::new("/bin/tansu"), &spec, "sqlite://tansu.db", 1),
            "gregor-t-1",
        );
        assert_eq!(launch.program, PathBuf::from("ip"));
        let args = launch.args.join(" ");
        assert!(
            args.starts_with("netns exec gregor-t-1 /bin/tansu broker "),
            "{args}"
        );
        assert!(
            args.contains("--listener-url tcp://10.231.7.11:19621"),
            "{args}"
        );
        assert!(
            args.contains("--advertised-listener-url tcp://10.231.7.11:19621"),
            "{args}"
        );
    }
}
