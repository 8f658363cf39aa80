//! Network partitions for local clusters: one Linux network namespace per
//! node, joined by a bridge, cut by nftables rules.
//!
//! [`Topology::create`] builds, for a name prefix `P` and `n` nodes:
//!
//! - namespaces `gregor-P-0 … gregor-P-(n-1)`, each with loopback and an
//!   `eth0` at `10.231.X.(10+i)/24` (X is chosen per topology so that
//!   topologies never share a subnet with each other or with the host);
//! - one veth pair per node, its host end on a bridge `gb<hash(P)>` in the
//!   root namespace that holds `10.231.X.1`, the address clients (processes
//!   in the root namespace) use to reach the nodes;
//! - an nftables table `bridge gregor_P` (dashes become underscores) with
//!   empty `forward`, `input` and `output` chains.
//!
//! Nothing is routed anywhere else: the namespaces have no default route and
//! the bridge has no uplink, so traffic only flows between our own nodes and
//! the root namespace.
//!
//! Faults: [`Topology::partition`] installs a [`Grudge`] (node → nodes it
//! must not hear from) as drop rules on the bridge's forward path;
//! [`Topology::isolate_from_clients`] drops traffic between the root
//! namespace and a node; [`Topology::heal`] flushes the table. Rules are
//! replaced atomically (one `nft -f` transaction).
//!
//! Cleanup: [`Topology::destroy`] (and `Drop`) kills every process left in
//! the namespaces and removes rules, namespaces, veths and bridge.
//! [`cleanup_stale`] removes whatever a killed process left behind for a
//! prefix; [`stale_prefixes`] finds such prefixes.
//!
//! Needs root and the `ip` (iproute2) and `nft` (nftables) tools;
//! [`check_support`] says up front why partitions are unavailable, so a
//! caller can still run every other fault. All calls block for a few
//! milliseconds while `ip`/`nft` run: from async code, use
//! `spawn_blocking`.

mod grudge;

use std::fs::File;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

pub use grudge::Grudge;

/// The /16 every topology takes its /24 from.
const SUBNET_BASE: [u8; 2] = [10, 231];
/// Node `i` gets host address `NODE_HOST_BASE + i`.
const NODE_HOST_BASE: usize = 10;
/// Most nodes in one topology (host addresses up to .254).
pub const MAX_NODES: usize = 244;
/// Longest accepted prefix.
const MAX_PREFIX_LEN: usize = 32;
/// Serializes subnet allocation between processes.
const LOCK_FILE: &str = "/run/gregor-netns.lock";
/// Where `ip netns` keeps its namespace handles.
const NETNS_DIR: &str = "/run/netns";

/// Errors building, faulting or removing a topology.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("network partitions need root and nftables: {0}")]
    Unsupported(String),
    #[error(
        "bad topology prefix {prefix:?}: use 1 to {MAX_PREFIX_LEN} characters a-z, 0-9 and '-', starting with a letter or digit"
    )]
    BadPrefix { prefix: String },
    #[error("a topology needs 1 to {MAX_NODES} nodes, not {0}")]
    BadNodeCount(usize),
    #[error("node {node} does not exist: the topology has {nodes} nodes")]
    NoSuchNode { node: usize, nodes: usize },
    #[error("{what} of topology {prefix:?} already exists (left by a crashed run? `gregor cluster heal` removes it)")]
    AlreadyExists { prefix: String, what: String },
    #[error("no free subnet in 10.231.0.0/16 for topology {prefix:?}")]
    NoFreeSubnet { prefix: String },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl NetnsError {
    fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        NetnsError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Checks that partitions can work here: running as root, with `ip` and
/// `nft` installed and nftables usable. The error says what is missing.
pub fn check_support() -> Result<(), NetnsError> {
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        return Err(NetnsError::Unsupported(format!(
            "running as uid {euid}, not root"
        )));
    }
    for (tool, args, package) in [
        ("ip", &["-V"][..], "iproute2"),
        ("nft", &["--version"][..], "nftables"),
    ] {
        match Command::new(tool).args(args).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                return Err(NetnsError::Unsupported(format!(
                    "`{tool} {}` failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                )))
            }
            Err(e) => {
                return Err(NetnsError::Unsupported(format!(
                    "cannot run `{tool}` ({e}); install the {package} package"
                )))
            }
        }
    }
    if let Err(e) = run("nft", &["list", "tables"]) {
        return Err(NetnsError::Unsupported(format!(
            "nftables is not usable: {e}"
        )));
    }
    Ok(())
}

/// Runs a tool and returns its stdout; a nonzero exit is an error carrying stderr.
fn run(program: &str, args: &[&str]) -> Result<String, NetnsError> {
    run_with_input(program, args, None)
}

fn run_with_input(program: &str, args: &[&str], input: Option<&str>) -> Result<String, NetnsError> {
    let command = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetnsError::io(format!("cannot run `{command}`"), e))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| NetnsError::io(format!("cannot feed `{command}`"), e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetnsError::io(format!("cannot wait for `{command}`"), e))?;
    if !out.status.success() {
        return Err(NetnsError::Command {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn validate_prefix(prefix: &str) -> Result<(), NetnsError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= MAX_PREFIX_LEN
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !prefix.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(NetnsError::BadPrefix {
            prefix: prefix.to_string(),
        })
    }
}

/// FNV-1a, to derive short interface names from a prefix.
fn name_hash(prefix: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in prefix.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32
}

/// The names of everything a topology with `prefix` creates.
#[derive(Clone, Debug)]
struct Names {
    prefix: String,
    hash: u32,
}

impl Names {
    fn new(prefix: &str) -> Self {
        Names {
            prefix: prefix.to_string(),
            hash: name_hash(prefix),
        }
    }
    fn namespace(&self, node: usize) -> String {
        format!("gregor-{}-{node}", self.prefix)
    }
    fn namespace_prefix(&self) -> String {
        format!("gregor-{}-", self.prefix)
    }
    /// Interface names are limited to 15 bytes, hence the hash.
    fn bridge(&self) -> String {
        format!("gb{:08x}", self.hash)
    }
    fn veth_prefix(&self) -> String {
        format!("gv{:08x}-", self.hash)
    }
    fn veth(&self, node: usize) -> String {
        format!("{}{node}", self.veth_prefix())
    }
    fn alias(&self) -> String {
        format!("gregor:{}", self.prefix)
    }
    fn table(&self) -> String {
        format!("gregor_{}", self.prefix.replace('-', "_"))
    }
}

/// An exclusive lock on [`LOCK_FILE`] while a subnet is chosen and claimed.
struct AllocationLock(#[allow(dead_code)] nix::fcntl::Flock<File>);

impl AllocationLock {
    fn acquire() -> Result<Self, NetnsError> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_FILE)
            .map_err(|e| NetnsError::io(format!("cannot open {LOCK_FILE}"), e))?;
        // Blocks until granted; unlocked when the lock (the file) is dropped.
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map(AllocationLock)
            .map_err(|(_, errno)| {
                NetnsError::io(
                    format!("cannot lock {LOCK_FILE}"),
                    std::io::Error::from(errno),
                )
            })
    }
}

/// What the partition rules currently say.
#[derive(Clone, Debug, Default)]
struct Faults {
    grudge: Grudge,
    cut_from_clients: std::collections::BTreeSet<usize>,
}

/// A set of nodes in their own network namespaces; see the module docs.
#[derive(Debug)]
pub struct Topology {
    names: Names,
    nodes: usize,
    octet: u8,
    faults: Mutex<Faults>,
    destroyed: bool,
}

impl Topology {
    /// Creates `nodes` namespaces named `gregor-<prefix>-<i>`, bridged to the
    /// root namespace, with no partition. Fails if anything of the same
    /// prefix exists already; on failure, removes what it created.
    pub fn create(prefix: &str, nodes: usize) -> Result<Self, NetnsError> {
        validate_prefix(prefix)?;
        if nodes == 0 || nodes > MAX_NODES {
            return Err(NetnsError::BadNodeCount(nodes));
        }
        check_support()?;
        let names = Names::new(prefix);
        if let Some(what) = existing(&names)? {
            return Err(NetnsError::AlreadyExists {
                prefix: prefix.to_string(),
                what,
            });
        }
        let lock = AllocationLock::acquire()?;
        let octet = free_octet(&names)?;
        let topology = Topology {
            names,
            nodes,
            octet,
            faults: Mutex::new(Faults::default()),
            destroyed: false,
        };
        // From here on, Drop of `topology` cleans up after a failure.
        topology.build_bridge()?;
        drop(lock); // the bridge holds our address: the subnet is claimed
        for node in 0..nodes {
            topology.build_node(node)?;
        }
        topology.build_table()?;
        Ok(topology)
    }

    fn build_bridge(&self) -> Result<(), NetnsError> {
        let bridge = self.names.bridge();
        let alias = self.names.alias();
        let cidr = format!("{}/24", self.client_addr());
        run("ip", &["link", "add", &bridge, "type", "bridge"])?;
        run("ip", &["link", "set", &bridge, "alias", &alias])?;
        run("ip", &["addr", "add", &cidr, "dev", &bridge])?;
        run("ip", &["link", "set", &bridge, "up"])?;
        Ok(())
    }

    fn build_node(&self, node: usize) -> Result<(), NetnsError> {
        let ns = self.names.namespace(node);
        let veth = self.names.veth(node);
        let bridge = self.names.bridge();
        let cidr = format!("{}/24", self.node_addr(node));
        run("ip", &["netns", "add", &ns])?;
        run(
            "ip",
            &[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ],
        )?;
        run("ip", &["link", "set", &veth, "alias", &self.names.alias()])?;
        run("ip", &["link", "set", &veth, "master", &bridge, "up"])?;
        run("ip", &["-n", &ns, "addr", "add", &cidr, "dev", "eth0"])?;
        run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
        run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    fn build_table(&self) -> Result<(), NetnsError> {
        let t = self.names.table();
        let script = format!(
            "table bridge {t} {{\n\
             \tchain forward {{ type filter hook forward priority filter; policy accept; }}\n\
             \tchain input {{ type filter hook input priority filter; policy accept; }}\n\
             \tchain output {{ type filter hook output priority filter; policy accept; }}\n\
             }}\n"
        );
        run_with_input("nft", &["-f", "-"], Some(&script))?;
        Ok(())
    }

    /// The prefix the topology was created with.
    pub fn prefix(&self) -> &str {
        &self.names.prefix
    }

    /// The number of nodes.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The subnet of this topology, e.g. `10.231.17.0/24`.
    pub fn subnet(&self) -> String {
        format!("{}.{}.{}.0/24", SUBNET_BASE[0], SUBNET_BASE[1], self.octet)
    }

    /// The address of `node` (panics on a node index out of range; use
    /// [`Topology::check_node`] on untrusted input).
    pub fn node_addr(&self, node: usize) -> Ipv4Addr {
        assert!(node < self.nodes, "node {node} of {}", self.nodes);
        Ipv4Addr::new(
            SUBNET_BASE[0],
            SUBNET_BASE[1],
            self.octet,
            (NODE_HOST_BASE + node) as u8,
        )
    }

    /// The root namespace's address on the bridge: where client traffic
    /// comes from, and what a process in a namespace connects to in order to
    /// reach a service in the root namespace.
    pub fn client_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(SUBNET_BASE[0], SUBNET_BASE[1], self.octet, 1)
    }

    /// The namespace name of `node` (e.g. for `ip netns exec`).
    pub fn namespace(&self, node: usize) -> Result<String, NetnsError> {
        self.check_node(node)?;
        Ok(self.names.namespace(node))
    }

    /// The bridge interface in the root namespace.
    pub fn bridge(&self) -> String {
        self.names.bridge()
    }

    /// The nftables table (family `bridge`) holding the partition rules.
    pub fn table(&self) -> String {
        self.names.table()
    }

    /// An error unless `node` is one of ours.
    pub fn check_node(&self, node: usize) -> Result<(), NetnsError> {
        if node < self.nodes {
            Ok(())
        } else {
            Err(NetnsError::NoSuchNode {
                node,
                nodes: self.nodes,
            })
        }
    }

    /// Makes `command` run inside `node`'s namespace when spawned (through
    /// `setns` between fork and exec; stdio, environment and working
    /// directory stay as configured). Also works for a `tokio::process::Command`
    /// built `From` this one.
    pub fn enter(&self, node: usize, command: &mut Command) -> Result<(), NetnsError> {
        let handle = self.namespace_handle(node)?;
        // SAFETY: the hook only calls setns(2) (through nix's safe
        // wrapper), which is async-signal-safe, on a descriptor opened
        // before the fork. The `unsafe` is std's `CommandExt::pre_exec`
        // contract itself: nix 0.31 has no safe way to run code between
        // fork and exec in a `std::process::Command`, so it stays.
        unsafe {
            command.pre_exec(move || {
                nix::sched::setns(&handle, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
            });
        }
        Ok(())
    }

    /// Spawns `command` inside `node`'s namespace. The process keeps running
    /// after this call (until it exits, is killed, or the topology is destroyed).
    pub fn run_in(&self, node: usize, mut command: Command) -> Result<Child, NetnsError> {
        self.enter(node, &mut command)?;
        command.spawn().map_err(|e| {
            NetnsError::io(
                format!(
                    "cannot start {:?} in namespace {}",
                    command.get_program(),
                    self.names.namespace(node)
                ),
                e,
            )
        })
    }

    fn namespace_handle(&self, node: usize) -> Result<File, NetnsError> {
        let ns = self.namespace(node)?;
        let path = format!("{NETNS_DIR}/{ns}");
        File::open(&path).map_err(|e| NetnsError::io(format!("cannot open {path}"), e))
    }

    /// Runs `f` on a short-lived thread inside `node`'s namespace, e.g. to
    /// create a socket there (a socket stays in the namespace it was created in).
    pub fn within<T: Send>(
        &self,
        node: usize,
        f: impl FnOnce() -> std::io::Result<T> + Send,
    ) -> Result<T, NetnsError> {
        let handle = self.namespace_handle(node)?;
        let ns = self.names.namespace(node);
        std::thread::scope(|s| {
            s.spawn(|| {
                // This thread only; it ends right after `f`.
                if let Err(e) = nix::sched::setns(&handle, nix::sched::CloneFlags::CLONE_NEWNET) {
                    return Err(NetnsError::io(
                        format!("cannot enter namespace {ns}"),
                        std::io::Error::from(e),
                    ));
                }
                f().map_err(|e| NetnsError::io(format!("in namespace {ns}"), e))
            })
            .join()
            .unwrap_or_else(|_| {
                Err(NetnsError::io(
                    format!("in namespace {ns}"),
                    std::io::Error::other("the thread panicked"),
                ))
            })
        })
    }

    /// A TCP listener bound inside `node`'s namespace (port 0 picks one).
    pub fn bind_in(&self, node: usize, port: u16) -> Result<TcpListener, NetnsError> {
        let addr = SocketAddr::from((self.node_addr_checked(node)?, port));
        self.within(node, move || TcpListener::bind(addr))
    }

    /// Connects from inside `node`'s namespace to `addr`, giving up after `timeout`.
    pub fn connect_from(
        &self,
        node: usize,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<TcpStream, NetnsError> {
        self.within(node, move || TcpStream::connect_timeout(&addr, timeout))
    }

    fn node_addr_checked(&self, node: usize) -> Result<Ipv4Addr, NetnsError> {
        self.check_node(node)?;
        Ok(self.node_addr(node))
    }

    /// Replaces the node-to-node partition with `grudge` (client isolation
    /// set by [`Topology::isolate_from_clients`] stays).
    pub fn partition(&self, grudge: &Grudge) -> Result<(), NetnsError> {
        if let Some(max) = grudge.max_node() {
            self.check_node(max)?;
        }
        self.update(|f| f.grudge = grudge.clone())
    }

    /// Drops all traffic between the root namespace (clients, the harness)
    /// and `node`, in both directions, on top of any partition.
    pub fn isolate_from_clients(&self, node: usize) -> Result<(), NetnsError> {
        self.check_node(node)?;
        self.update(|f| {
            f.cut_from_clients.insert(node);
        })
    }

    /// Removes every partition rule.
    pub fn heal(&self) -> Result<(), NetnsError> {
        self.update(|f| *f = Faults::default())
    }

    /// The partition currently installed.
    pub fn grudge(&self) -> Grudge {
        self.lock_faults().grudge.clone()
    }

    fn lock_faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut Faults)) -> Result<(), NetnsError> {
        let mut faults = self.lock_faults();
        let mut next = faults.clone();
        change(&mut next);
        run_with_input("nft", &["-f", "-"], Some(&self.rules(&next)))?;
        *faults = next;
        Ok(())
    }

    /// One nft transaction: flush our table, then add the drop rules.
    fn rules(&self, faults: &Faults) -> String {
        let t = self.names.table();
        let mut script = format!("flush table bridge {t}\n");
        for (to, from) in faults.grudge.pairs() {
            script.push_str(&format!(
                "add rule bridge {t} forward ip saddr {} ip daddr {} drop\n",
                self.node_addr(from),
                self.node_addr(to)
            ));
        }
        for &node in &faults.cut_from_clients {
            let addr = self.node_addr(node);
            script.push_str(&format!(
                "add rule bridge {t} output ip daddr {addr} drop\n\
                 add rule bridge {t} input ip saddr {addr} drop\n"
            ));
        }
        script
    }

    /// Kills every process left in the namespaces, then removes the rules,
    /// namespaces, veths and bridge.
    pub fn destroy(mut self) -> Result<(), NetnsError> {
        self.destroyed = true;
        cleanup_stale(&self.names.prefix).map(|_| ())
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if !self.destroyed {
            let _ = cleanup_stale(&self.names.prefix);
        }
    }
}

/// What [`cleanup_stale`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Cleanup {
    pub namespaces: Vec<String>,
    pub links: Vec<String>,
    pub tables: Vec<String>,
    pub killed_processes: usize,
}

impl Cleanup {
    /// True when nothing was left.
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
            && self.links.is_empty()
            && self.tables.is_empty()
            && self.killed_processes == 0
    }
}

fn our_namespaces(names: &Names) -> Result<Vec<String>, NetnsError> {
    let listing = run("ip", &["netns", "list"])?;
    let lead = names.namespace_prefix();
    Ok(listing
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|ns| {
            ns.strip_prefix(&lead)
                .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
        .collect())
}

/// Interfaces in the root namespace that belong to `names`: by name or by alias.
fn our_links(names: &Names) -> Result<Vec<String>, NetnsError> {
    let listing = run("ip", &["-o", "link", "show"])?;
    let bridge = names.bridge();
    let veth = names.veth_prefix();
    let alias = names.alias();
    let mut out = Vec::new();
    for line in listing.lines() {
        // "7: gb1234abcd: <BROADCAST,...> ... \    alias gregor:p"
        let Some(name) = line.split(':').nth(1).map(str::trim) else {
            continue;
        };
        let name = name.split('@').next().unwrap_or(name);
        let aliased = line
            .split_whitespace()
            .skip_while(|w| *w != "alias")
            .nth(1)
            .is_some_and(|a| a == alias);
        if name == bridge || name.starts_with(&veth) || aliased {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

fn our_table_exists(names: &Names) -> Result<bool, NetnsError> {
    let listing = run("nft", &["list", "tables"])?;
    let wanted = format!("table bridge {}", names.table());
    Ok(listing.lines().any(|l| l.trim() == wanted))
}

/// Describes the first leftover of `names`, if any.
fn existing(names: &Names) -> Result<Option<String>, NetnsError> {
    if let Some(ns) = our_namespaces(names)?.into_iter().next() {
        return Ok(Some(format!("namespace {ns}")));
    }
    if let Some(link) = our_links(names)?.into_iter().next() {
        return Ok(Some(format!("interface {link}")));
    }
    if our_table_exists(names)? {
        return Ok(Some(format!("nft table bridge {}", names.table())));
    }
    Ok(None)
}

/// Picks X for 10.231.X.0/24: derived from the prefix, skipping any X the
/// host already has an address or route in.
fn free_octet(names: &Names) -> Result<u8, NetnsError> {
    let used = format!(
        "{}\n{}",
        run("ip", &["-4", "-o", "addr", "show"])?,
        run("ip", &["-4", "route", "show", "table", "all"])?
    );
    let start = (names.hash % 254) as usize;
    (0..254)
        .map(|k| ((start + k) % 254 + 1) as u8)
        .find(|x| {
            let needle = format!("{}.{}.{x}.", SUBNET_BASE[0], SUBNET_BASE[1]);
            !used.contains(&needle)
        })
        .ok_or_else(|| NetnsError::NoFreeSubnet {
            prefix: names.prefix.clone(),
        })
}

fn kill_processes_in(ns: &str) -> Result<usize, NetnsError> {
    let pids = run("ip", &["netns", "pids", ns])?;
    let mut killed = 0;
    for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let signal = nix::sys::signal::Signal::SIGKILL;
        if pid > 1 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).is_ok() {
            killed += 1;
        }
    }
    Ok(killed)
}

/// Removes everything a topology with `prefix` may have left: kills the
/// processes in its namespaces, deletes the namespaces, its interfaces and
/// its nft table. Safe to call when nothing is left.
pub fn cleanup_stale(prefix: &str) -> Result<Cleanup, NetnsError> {
    validate_prefix(prefix)?;
    check_support()?;
    let names = Names::new(prefix);
    let mut done = Cleanup::default();
    let mut first_error = None;
    let mut note = |r: Result<(), NetnsError>| {
        if let Err(e) = r {
            first_error.get_or_insert(e);
        }
    };

    if our_table_exists(&names)? {
        let table = names.table();
        note(run("nft", &["delete", "table", "bridge", &table]).map(|_| ()));
        done.tables.push(format!("bridge {table}"));
    }
    for ns in our_namespaces(&names)? {
        match kill_processes_in(&ns) {
            Ok(n) => done.killed_processes += n,
            Err(e) => note(Err(e)),
        }
        note(run("ip", &["netns", "del", &ns]).map(|_| ()));
        done.namespaces.push(ns);
    }
    // Deleting a namespace takes its veth pair along, unless a process kept
    // the namespace alive: delete what is left explicitly.
    for link in our_links(&names)? {
        if let Err(e) = run("ip", &["link", "del", &link]) {
            // A veth whose peer just vanished is gone already.
            if our_links(&names)?.contains(&link) {
                note(Err(e));
            }
        }
        done.links.push(link);
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(done),
    }
}

/// Prefixes that have namespaces, links or nft tables of ours on this host
/// (e.g. left by crashed runs), for `gregor cluster heal`.
pub fn stale_prefixes() -> Result<Vec<String>, NetnsError> {
    check_support()?;
    let mut found = std::collections::BTreeSet::new();
    for line in run("ip", &["netns", "list"])?.lines() {
        let Some(ns) = line.split_whitespace().next() else {
            continue;
        };
        if let Some((prefix, index)) = ns
            .strip_prefix("gregor-")
            .and_then(|rest| rest.rsplit_once('-'))
        {
            if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) {
                found.insert(prefix.to_string());
            }
        }
    }
    for line in run("nft", &["list", "tables"])?.lines() {
        if let Some(name) = line.trim().strip_prefix("table bridge gregor_") {
            found.insert(name.replace('_', "-"));
        }
    }
    for line in run("ip", &["-o", "link", "show"])?.lines() {
        if let Some(prefix) = line
            .split_whitespace()
            .skip_while(|w| *w != "alias")
            .nth(1)
            .and_then(|a| a.strip_prefix("gregor:"))
        {
            found.insert(prefix.to_string());
        }
    }
    Ok(found
        .into_iter()
        .filter(|p| validate_prefix(p).is_ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_linux_interface_limits_and_are_stable() {
        let n = Names::new("a-rather-long-prefix-for-a-test");
        assert!(n.bridge().len() <= 15);
        assert!(n.veth(MAX_NODES - 1).len() <= 15);
        assert_eq!(
            n.bridge(),
            Names::new("a-rather-long-prefix-for-a-test").bridge()
        );
        assert_ne!(n.bridge(), Names::new("another").bridge());
        assert_eq!(n.table(), "gregor_a_rather_long_prefix_for_a_test");
        assert_eq!(n.namespace(3), "gregor-a-rather-long-prefix-for-a-test-3");
    }

    #[test]
    fn prefixes_must_be_simple_names() {
        for good in ["a", "test-1", "x9"] {
            assert!(validate_prefix(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "A", "a_b", "a b", "a;rm", &"x".repeat(33)] {
            assert!(
                matches!(validate_prefix(bad), Err(NetnsError::BadPrefix { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_unsupported_error_says_what_is_needed() {
        let e = NetnsError::Unsupported("running as uid 1000, not root".into());
        assert_eq!(
            e.to_string(),
            "network partitions need root and nftables: running as uid 1000, not root"
        );
    }
}
