//! Network-namespace partitions, observed with real TCP connections.
//!
//! These tests need root and nftables. Without them each test prints
//! "skipped: ..." and returns. Every test uses its own prefix (and so its
//! own namespaces, bridge, subnet and nft table), so they run in parallel.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use gregor_deploy::netns::{
    check_support, cleanup_stale, stale_prefixes, Grudge, NetnsError, Topology,
};

/// How long a blocked connection attempt is given before it counts as cut.
const CUT: Duration = Duration::from_secs(1);

fn topology(prefix: &str, nodes: usize) -> Option<Topology> {
    if let Err(e) = check_support() {
        eprintln!("skipped: {e}");
        return None;
    }
    // A previous interrupted run of this very test may have left things.
    cleanup_stale(prefix).expect("cleanup before the test");
    Some(Topology::create(prefix, nodes).expect("create topology"))
}

/// A TCP server that greets each connection with one byte (its node index)
/// and stops (closing its socket) when dropped.
struct Greeter {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Greeter {
    fn on(listener: TcpListener, greeting: u8) -> Self {
        let addr = listener.local_addr().expect("listener address");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.write_all(&[greeting]);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Greeter {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Greeter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn greeters(t: &Topology) -> Vec<Greeter> {
    (0..t.nodes())
        .map(|i| Greeter::on(t.bind_in(i, 0).expect("bind in namespace"), i as u8))
        .collect()
}

/// Reads the one-byte greeting; `None` if nothing comes within [`CUT`].
fn greeting(stream: TcpStream) -> Option<u8> {
    stream.set_read_timeout(Some(CUT)).ok()?;
    let mut byte = [0u8; 1];
    let mut stream = stream;
    stream.read_exact(&mut byte).ok()?;
    Some(byte[0])
}

/// True when node `from` (or the root namespace, for `None`) gets node
/// `to`'s greeting.
fn reaches(t: &Topology, servers: &[Greeter], from: Option<usize>, to: usize) -> bool {
    let addr = servers[to].addr;
    let stream = match from {
        Some(node) => t.connect_from(node, addr, CUT),
        None => TcpStream::connect_timeout(&addr, CUT).map_err(|e| NetnsError::Io {
            context: "root".into(),
            source: e,
        }),
    };
    match stream {
        Ok(s) => greeting(s) == Some(to as u8),
        Err(_) => false,
    }
}

fn command_output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .expect("run a listing command");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything of ours still on the host for `prefix`.
fn leftovers(prefix: &str, bridge: &str) -> Vec<String> {
    let mut left = Vec::new();
    let ns_lead = format!("gregor-{prefix}-");
    for line in command_output("ip", &["netns", "list"]).lines() {
        if line.starts_with(&ns_lead) {
            left.push(format!("namespace {line}"));
        }
    }
    let alias = format!("gregor:{prefix}");
    for line in command_output("ip", &["-o", "link", "show"]).lines() {
        if line.contains(bridge) || line.split_whitespace().any(|w| w == alias) {
            left.push(format!("link {line}"));
        }
    }
    let table = format!("table bridge gregor_{}", prefix.replace('-', "_"));
    for line in command_output("nft", &["list", "tables"]).lines() {
        if line.trim() == table {
            left.push(line.to_string());
        }
    }
    left
}

#[test]
fn isolating_node_0_cuts_it_off_from_its_peers_until_heal() {
    let Some(t) = topology("t-isolate", 3) else {
        return;
    };
    let servers = greeters(&t);
    for to in 0..3 {
        assert!(reaches(&t, &servers, None, to), "root cannot reach {to}");
    }
    assert!(
        reaches(&t, &servers, Some(1), 0),
        "1 cannot reach 0 before the partition"
    );
    assert!(reaches(&t, &servers, Some(1), 2));

    t.partition(&Grudge::isolate(3, 0)).expect("partition");
    assert!(
        !reaches(&t, &servers, Some(1), 0),
        "1 still reaches isolated 0"
    );
    assert!(
        !reaches(&t, &servers, Some(0), 2),
        "isolated 0 still reaches 2"
    );
    assert!(
        reaches(&t, &servers, Some(1), 2),
        "1 lost 2 though only 0 was isolated"
    );
    assert!(reaches(&t, &servers, Some(2), 1));
    assert!(
        reaches(&t, &servers, None, 0),
        "clients lost 0 in a node partition"
    );
    assert_eq!(t.grudge(), Grudge::isolate(3, 0));

    t.heal().expect("heal");
    assert!(
        reaches(&t, &servers, Some(1), 0),
        "1 cannot reach 0 after heal"
    );
    assert!(reaches(&t, &servers, Some(0), 2));
    drop(servers);
    t.destroy().expect("destroy");
}

#[test]
fn isolating_a_node_from_clients_cuts_only_the_root_namespace() {
    let Some(t) = topology("t-clients", 3) else {
        return;
    };
    let servers = greeters(&t);
    let root = Greeter::on(
        TcpListener::bind((t.client_addr(), 0)).expect("bind on the bridge"),
        99,
    );
    let reaches_root =
        |node| t.connect_from(node, root.addr, CUT).ok().and_then(greeting) == Some(99);
    assert!(reaches_root(1), "node 1 cannot reach the root namespace");

    t.isolate_from_clients(1).expect("isolate from clients");
    assert!(
        !reaches(&t, &servers, None, 1),
        "clients still reach node 1"
    );
    assert!(!reaches_root(1), "node 1 still reaches the root namespace");
    assert!(reaches(&t, &servers, None, 0), "clients lost node 0 too");
    assert!(reaches(&t, &servers, Some(0), 1), "node 0 lost node 1");
    assert!(reaches_root(2));

    t.heal().expect("heal");
    assert!(
        reaches(&t, &servers, None, 1),
        "clients cannot reach 1 after heal"
    );
    drop((servers, root));
    t.destroy().expect("destroy");
}

#[test]
fn a_bridge_node_keeps_talking_to_both_sides_that_cannot_talk_to_each_other() {
    let Some(t) = topology("t-bridge", 3) else {
        return;
    };
    let servers = greeters(&t);
    t.partition(&Grudge::bridge(3, 1)).expect("partition");
    assert!(!reaches(&t, &servers, Some(0), 2), "the sides still talk");
    assert!(reaches(&t, &servers, Some(0), 1));
    assert!(reaches(&t, &servers, Some(2), 1));
    assert!(reaches(&t, &servers, Some(1), 0));
    assert!(reaches(&t, &servers, Some(1), 2));
    drop(servers);
    t.destroy().expect("destroy");
}

#[test]
fn partitions_naming_unknown_nodes_are_rejected() {
    let Some(t) = topology("t-badnode", 2) else {
        return;
    };
    let err = t.partition(&Grudge::isolate(5, 4)).unwrap_err();
    assert!(
        matches!(err, NetnsError::NoSuchNode { node: 4, nodes: 2 }),
        "{err}"
    );
    assert!(t.isolate_from_clients(2).is_err());
    assert!(t.grudge().is_empty(), "a rejected partition was recorded");
    t.destroy().expect("destroy");
}

#[test]
fn run_in_starts_a_process_that_lives_in_the_namespace_until_destroy() {
    let Some(t) = topology("t-run", 2) else {
        return;
    };
    let mut addr_cmd = Command::new("ip");
    addr_cmd
        .args(["-o", "-4", "addr", "show"])
        .stdout(Stdio::piped());
    let out = t
        .run_in(1, addr_cmd)
        .expect("run ip inside node 1")
        .wait_with_output()
        .expect("wait for ip");
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(seen.contains(&t.node_addr(1).to_string()), "{seen}");
    assert!(!seen.contains(&t.node_addr(0).to_string()), "{seen}");

    let mut sleeper = Command::new("sleep");
    sleeper.arg("600");
    let mut child = t.run_in(0, sleeper).expect("start sleep in node 0");
    let ns = t.namespace(0).expect("namespace name");
    let pids = command_output("ip", &["netns", "pids", &ns]);
    assert!(
        pids.lines().any(|l| l.trim() == child.id().to_string()),
        "pid {} not in {ns}: {pids:?}",
        child.id()
    );
    assert_eq!(
        child.try_wait().expect("try_wait"),
        None,
        "sleep died early"
    );

    t.destroy().expect("destroy");
    let status = child.wait().expect("wait for sleep");
    assert!(
        !status.success(),
        "destroy should kill processes left inside"
    );
}

#[test]
fn destroy_leaves_no_namespace_link_or_table_behind() {
    let Some(t) = topology("t-destroy", 3) else {
        return;
    };
    let bridge = t.bridge();
    assert!(
        !leftovers("t-destroy", &bridge).is_empty(),
        "nothing was created"
    );
    t.destroy().expect("destroy");
    assert_eq!(leftovers("t-destroy", &bridge), Vec::<String>::new());
}

#[test]
fn cleanup_stale_removes_what_a_crashed_run_left() {
    let Some(t) = topology("t-crash", 2) else {
        return;
    };
    let bridge = t.bridge();
    std::mem::forget(t); // as if the harness was killed

    assert!(stale_prefixes()
        .expect("list")
        .contains(&"t-crash".to_string()));
    let again = Topology::create("t-crash", 2).unwrap_err();
    assert!(matches!(again, NetnsError::AlreadyExists { .. }), "{again}");
    assert!(again.to_string().contains("gregor cluster heal"), "{again}");

    let removed = cleanup_stale("t-crash").expect("cleanup");
    assert_eq!(removed.namespaces.len(), 2, "{removed:?}");
    assert_eq!(removed.tables.len(), 1, "{removed:?}");
    assert_eq!(leftovers("t-crash", &bridge), Vec::<String>::new());
    assert!(cleanup_stale("t-crash").expect("second cleanup").is_empty());

    let fresh = Topology::create("t-crash", 2).expect("create after cleanup");
    fresh.destroy().expect("destroy");
}

#[test]
fn dropping_a_topology_cleans_up_too() {
    let Some(t) = topology("t-drop", 1) else {
        return;
    };
    let bridge = t.bridge();
    drop(t);
    assert_eq!(leftovers("t-drop", &bridge), Vec::<String>::new());
}

#[test]
fn topologies_get_distinct_subnets() {
    let Some(a) = topology("t-subnet-a", 1) else {
        return;
    };
    let b = Topology::create("t-subnet-b", 1).expect("second topology");
    assert_ne!(a.subnet(), b.subnet());
    assert!(a.subnet().starts_with("10.231."), "{}", a.subnet());
    a.destroy().expect("destroy a");
    b.destroy().expect("destroy b");
}
