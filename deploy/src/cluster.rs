//! A running local cluster: start it, look at it, break it, stop it.
//!
//! The cluster is described by a state file, `<dir>/cluster.json`, written
//! after every change, so that another process (`gregor cluster down`) can
//! find and stop exactly the processes this one started.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use crate::error::DeployError;
use crate::kafka;
use crate::process::{self, Launch, ProcState, ProcessId};
use crate::spec::{ClusterKind, ClusterSpec};
use crate::tansu;
use crate::wire;

pub mod disk;
pub mod layout;

/// Name of the state file inside the cluster directory.
pub const STATE_FILE: &str = "cluster.json";

const STATE_VERSION: u32 = 1;
const LOG_TAIL_LINES: usize = 30;

/// One broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Index in the cluster (0-based); for Kafka also its `node.id`.
    /// (tansu brokers all call themselves node 111 in Metadata.)
    pub id: u32,
    /// `broker-<id>`, the name nemesis events and logs use.
    pub name: String,
    pub host: String,
    /// Client (PLAINTEXT) port.
    pub port: u16,
    /// KRaft controller port (Kafka only).
    pub controller_port: Option<u16>,
    /// Process id while the node runs.
    pub pid: Option<u32>,
    /// Start time of `pid` (clock ticks since boot) to recognise a recycled pid.
    pub start_ticks: Option<u64>,
    /// stdout and stderr of the broker, appended across restarts.
    pub log: PathBuf,
    /// Configuration file (Kafka only).
    pub config: Option<PathBuf>,
    /// `host:port` the broker really listens on for clients, when clients
    /// reach it through a fault proxy at `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Network namespace the broker runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Extra environment for the next starts (e.g. libfaketime for a clock
    /// skew); see [`Cluster::set_node_env`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
    /// The Kafka code this node runs when it differs from the cluster's
    /// (a rolling upgrade or downgrade in progress); see
    /// [`Cluster::set_node_kafka`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<kafka::KafkaDist>,
    /// Broker settings of this node over the cluster's (a rolling config
    /// change in progress); see [`Cluster::set_node_configs`].
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub configs: std::collections::BTreeMap<String, String>,
    /// The lazy filesystem the node's log directory is on
    /// ([`ClusterSpec::lazy_disk`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<disk::LazyDisk>,
}

impl Node {
    /// `host:port` for clients.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn process(&self) -> Option<ProcessId> {
        Some(ProcessId {
            pid: self.pid?,
            start_ticks: self.start_ticks?,
        })
    }

    /// `host:port` the broker itself listens on: [`Node::addr`] unless it
    /// sits behind a fault proxy. Readiness and status probe this address.
    pub fn direct_addr(&self) -> String {
        self.listen.clone().unwrap_or_else(|| self.addr())
    }

    /// Ports that must be free on `host` before the broker starts. Empty in
    /// a namespace (its address only exists there, and nothing else runs
    /// there) and for proxied ports (the proxy holds them).
    fn ports(&self, spec: &ClusterSpec) -> Vec<u16> {
        if self.namespace.is_some() {
            return Vec::new();
        }
        let i = self.id as usize;
        if !spec.network.proxied {
            return std::iter::once(self.port)
                .chain(self.controller_port)
                .collect();
        }
        let mut ports = vec![spec.listen_port(i)];
        if spec.kind == ClusterKind::Kafka {
            ports.push(spec.controller_listen_port(i));
            ports.push(spec.replication_ports(i).1);
        }
        ports
    }
}

/// What a node's process is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcessStatus {
    Running,
    /// Stopped by SIGSTOP (`pause`).
    Paused,
    /// No process (never started, stopped, killed, or crashed).
    Down,
}

/// One node as seen right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    pub addr: String,
    pub pid: Option<u32>,
    pub process: ProcessStatus,
    /// A TCP connection to the client port succeeds.
    pub accepting: bool,
    /// The broker answers a Kafka ApiVersions request.
    pub answering: bool,
}

/// A local cluster and the processes it runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cluster {
    version: u32,
    spec: ClusterSpec,
    /// tansu binary or Kafka home, resolved at `up`.
    program: PathBuf,
    /// tansu storage URL (`sqlite://tansu.db`, `memory://tansu/`...).
    storage: Option<String>,
    /// Where Kafka nodes' code comes from (Kafka only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kafka: Option<kafka::KafkaDist>,
    nodes: Vec<Node>,
    #[serde(skip)]
    already_up: bool,
}

impl Cluster {
    /// Start every broker of `spec`, one after another, each answering
    /// before the next starts, and record them in `<dir>/cluster.json`.
    ///
    /// If the state file shows a cluster with live processes, nothing is
    /// started: that cluster is returned with [`Cluster::already_up`] true
    /// (or [`DeployError::Mismatch`] if it has another kind or size).
    /// A port already in use gives [`DeployError::PortInUse`] naming it.
    /// If a broker fails to start, the brokers started so far are stopped.
    pub fn up(spec: ClusterSpec) -> Result<Cluster, DeployError> {
        spec.validate()?;
        let mut spec = spec;
        spec.dir =
            std::path::absolute(&spec.dir).map_err(|e| DeployError::io("resolve", &spec.dir, e))?;
        std::fs::create_dir_all(&spec.dir)
            .map_err(|e| DeployError::io("create directory", &spec.dir, e))?;
        // Two `up`s on one directory at once would both see no cluster.
        let _lock = DirLock::acquire(&spec.dir)?;

        if let Some(mut existing) = Cluster::load(&spec.dir)? {
            if existing
                .nodes
                .iter()
                .any(|n| n.process().is_some_and(|p| p.is_alive()))
            {
                let same = existing.spec.kind == spec.kind
                    && existing.spec.brokers == spec.brokers
                    && existing.spec.base_port == spec.base_port;
                if !same {
                    return Err(DeployError::Mismatch {
                        dir: spec.dir.clone(),
                        existing: format!(
                            "{} ({} broker(s) from port {})",
                            existing.spec.kind, existing.spec.brokers, existing.spec.base_port
                        ),
                        requested: format!(
                            "{} ({} broker(s) from port {})",
                            spec.kind, spec.brokers, spec.base_port
                        ),
                    });
                }
                existing.already_up = true;
                return Ok(existing);
            }
            // Stale state of a cluster whose processes are all gone.
            existing.stop_disks()?;
            existing.remove_state()?;
        }

        let (program, storage, dist) = match spec.kind {
            ClusterKind::Kafka => {
                let dist = kafka::kafka_dist(&spec)?;
                let program = match &dist {
                    kafka::KafkaDist::Home { home } => home.clone(),
                    kafka::KafkaDist::Jars { libs, .. } => libs.clone(),
                };
                (program, None, Some(dist))
            }
            ClusterKind::Tansu | ClusterKind::TansuMemory => {
                let bin = match &spec.tansu_bin {
                    Some(bin) if bin.is_file() => bin.clone(),
                    Some(bin) => {
                        return Err(DeployError::NotFound(format!(
                            "tansu binary {} does not exist",
                            bin.display()
                        )))
                    }
                    None => tansu::find_tansu()
                        .ok_or_else(|| DeployError::NotFound(tansu::not_found_message()))?,
                };
                let engines = tansu::storage_engines(&bin);
                let storage = tansu::storage_url(spec.kind, &engines);
                (bin, Some(storage), None)
            }
        };

        let nodes = (0..spec.brokers)
            .map(|i| Node {
                id: i as u32,
                name: format!("broker-{i}"),
                host: spec.advertised_host(i),
                port: spec.client_port(i),
                controller_port: (spec.kind == ClusterKind::Kafka).then(|| spec.controller_port(i)),
                pid: None,
                start_ticks: None,
                log: spec.dir.join("logs").join(format!("broker-{i}.log")),
                config: (spec.kind == ClusterKind::Kafka).then(|| kafka::config_path(&spec, i)),
                listen: spec
                    .network
                    .proxied
                    .then(|| format!("{}:{}", spec.bind_host(i), spec.listen_port(i))),
                namespace: spec.namespace(i).map(str::to_string),
                env: Vec::new(),
                kafka: None,
                configs: Default::default(),
                disk: spec.lazy_disk.then(|| disk::LazyDisk::new(&spec, i)),
            })
            .collect();
        let mut cluster = Cluster {
            version: STATE_VERSION,
            spec,
            program,
            storage,
            kafka: dist,
            nodes,
            already_up: false,
        };

        for node in &cluster.nodes {
            for port in node.ports(&cluster.spec) {
                check_port_free(&cluster.spec.bind_host(node.id as usize), port, &node.name)?;
            }
        }
        for dir in ["data", "logs"] {
            let path = cluster.spec.dir.join(dir);
            std::fs::create_dir_all(&path)
                .map_err(|e| DeployError::io("create directory", &path, e))?;
        }
        cluster.prepare_kafka()?;
        // Log directories on lazy disks: formatted before they are mounted
        // (what provisioning wrote is durable; Kafka's format does not
        // fsync everything it writes).
        cluster.start_disks()?;

        cluster.save()?;
        // Findable by `cluster down`/`heal` wherever the directory is.
        crate::registry::register(&cluster.spec.dir)?;
        let started = if cluster.spec.kind == ClusterKind::Kafka {
            // A KRaft quorum forms only when a majority of its voters run:
            // started one by one, the first would wait for the others in vain.
            cluster.start_all_at_once()
        } else {
            (0..cluster.nodes.len()).try_for_each(|i| cluster.start(i))
        };
        if let Err(err) = started {
            // Leave nothing behind: stop what was started, forget the state.
            let _ = cluster.down_locked();
            return Err(err);
        }
        Ok(cluster)
    }

    /// Writes every Kafka node's configuration and formats its storage.
    fn prepare_kafka(&self) -> Result<(), DeployError> {
        let Some(dist) = &self.kafka else {
            return Ok(());
        };
        kafka::write_logging_config(dist, &self.spec)?;
        for i in 0..self.spec.brokers {
            layout::write_kafka_config(&self.spec, i)?;
        }
        // Each format is a JVM start: run them side by side.
        let spec = &self.spec;
        std::thread::scope(|scope| {
            let jobs: Vec<_> = (0..spec.brokers)
                .map(|i| scope.spawn(move || kafka::format_once(dist, spec, i)))
                .collect();
            jobs.into_iter()
                .map(|j| j.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(())
    }

    /// Spawns every node, then waits until each answers and the metadata
    /// lists every broker.
    fn start_all_at_once(&mut self) -> Result<(), DeployError> {
        let mut ids = Vec::with_capacity(self.nodes.len());
        for i in 0..self.nodes.len() {
            ids.push(self.spawn(i)?);
        }
        for (i, id) in ids.into_iter().enumerate() {
            self.wait_answering(i, id)?;
        }
        self.wait_all_registered()
    }

    /// Waits until a node's metadata lists every broker of the cluster.
    fn wait_all_registered(&self) -> Result<(), DeployError> {
        let deadline = Instant::now() + self.start_timeout();
        let want = self.nodes.len();
        let mut last = String::from("no answer");
        loop {
            for node in &self.nodes {
                match wire::metadata(&node.direct_addr(), &[], Duration::from_secs(2)) {
                    Ok(meta) if meta.brokers.len() >= want => return Ok(()),
                    Ok(meta) => {
                        last = format!(
                            "{} lists {} of {want} brokers",
                            node.name,
                            meta.brokers.len()
                        )
                    }
                    Err(e) => last = format!("{}: {e}", node.name),
                }
            }
            if Instant::now() >= deadline {
                return Err(DeployError::NotReady(format!(
                    "the cluster did not list all {want} brokers within {} s ({last})",
                    self.start_timeout().as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Resident memory of node `node`'s process, in bytes (`VmRSS`), while it runs.
    pub fn rss_bytes(&self, node: usize) -> Option<u64> {
        let n = self.nodes.get(node)?;
        let p = n.process().filter(|p| p.is_alive())?;
        let status = std::fs::read_to_string(format!("/proc/{}/status", p.pid)).ok()?;
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb * 1024)
    }

    /// The node index of the active KRaft controller (the metadata quorum's
    /// leader, from DescribeQuorum), asked of the running nodes in turn.
    /// None for tansu or when no node answers.
    pub fn active_controller(&self) -> Option<usize> {
        if self.kind() != ClusterKind::Kafka {
            return None;
        }
        let timeout = Duration::from_secs(3);
        (0..self.nodes.len())
            .filter(|&i| self.is_running(i) && !self.is_paused(i))
            .flat_map(|i| [self.nodes[i].direct_addr(), self.nodes[i].addr()])
            .find_map(|addr| wire::quorum_leader(&addr, timeout).ok())
            .and_then(|id| usize::try_from(id).ok())
            .filter(|&id| id < self.nodes.len())
    }

    /// Where this cluster's Kafka nodes come from (None for tansu).
    pub fn kafka_dist(&self) -> Option<&kafka::KafkaDist> {
        self.kafka.as_ref()
    }

    /// The cluster recorded in `<dir>/cluster.json`, if any.
    pub fn load(dir: &Path) -> Result<Option<Cluster>, DeployError> {
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DeployError::io("read", &path, e)),
        };
        let cluster: Cluster =
            serde_json::from_str(&text).map_err(|source| DeployError::State {
                path: path.clone(),
                source,
            })?;
        Ok(Some(cluster))
    }

    /// True when `up` found this cluster already running and started nothing.
    pub fn already_up(&self) -> bool {
        self.already_up
    }

    /// The specification the cluster was started with (directory made absolute).
    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// The kind of broker it runs.
    pub fn kind(&self) -> ClusterKind {
        self.spec.kind
    }

    /// Path of the state file.
    pub fn state_path(&self) -> PathBuf {
        self.spec.dir.join(STATE_FILE)
    }

    /// The tansu storage URL the brokers use (None for Kafka).
    pub fn storage_url(&self) -> Option<&str> {
        self.storage.as_deref()
    }

    /// All nodes, in order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// `host:port,host:port,...` of every node, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(Node::addr)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// How every node is doing: process state, TCP accept, Kafka answer.
    pub fn status(&self) -> Vec<NodeStatus> {
        let timeout = Duration::from_millis(500);
        self.nodes
            .iter()
            .map(|node| {
                let process = match node.process().map(|p| p.state()) {
                    Some(ProcState::Running) => ProcessStatus::Running,
                    Some(ProcState::Stopped) => ProcessStatus::Paused,
                    Some(ProcState::Gone) | None => ProcessStatus::Down,
                };
                let addr = node.addr();
                let direct = node.direct_addr();
                let accepting = wire::accepts_tcp(&direct, timeout);
                // A paused broker cannot answer; don't wait for it to time out.
                let answering = accepting
                    && process != ProcessStatus::Paused
                    && wire::answers_api_versions(&direct, timeout);
                NodeStatus {
                    name: node.name.clone(),
                    addr,
                    pid: node.pid.filter(|_| process != ProcessStatus::Down),
                    process,
                    accepting,
                    answering,
                }
            })
            .collect()
    }

    /// True while node `node`'s process exists (running or paused).
    pub fn is_running(&self, node: usize) -> bool {
        self.nodes
            .get(node)
            .and_then(Node::process)
            .is_some_and(|p| p.is_alive())
    }

    /// True while node `node` is stopped by [`Cluster::pause`].
    pub fn is_paused(&self, node: usize) -> bool {
        self.nodes
            .get(node)
            .and_then(Node::process)
            .is_some_and(|p| p.state() == ProcState::Stopped)
    }

    /// Stop every recorded process (SIGTERM, wait, SIGKILL), never by name,
    /// and remove the state file. Logs and tansu's SQLite store are kept;
    /// the in-memory stand-in store is deleted.
    pub fn down(&mut self) -> Result<(), DeployError> {
        let _lock = DirLock::acquire(&self.spec.dir)?;
        self.down_locked()
    }

    fn down_locked(&mut self) -> Result<(), DeployError> {
        // All nodes stop together, so KRaft nodes may lose their quorum while
        // shutting down and wait for it in vain: cap the wait.
        let grace = self.grace().min(Duration::from_secs(30));
        let mut first_err = None;
        // Ask all to stop at once, then wait: shutting down in parallel is faster.
        for node in &self.nodes {
            if let Some(p) = node.process() {
                if p.state() == ProcState::Stopped {
                    let _ = p.signal(&node.name, Signal::SIGCONT);
                }
                if let Err(e) = p.signal(&node.name, Signal::SIGTERM) {
                    first_err.get_or_insert(e);
                }
            }
        }
        for i in 0..self.nodes.len() {
            if let Some(p) = self.nodes[i].process() {
                let result = if p.wait_gone(grace) {
                    Ok(())
                } else {
                    p.kill(&self.nodes[i].name)
                };
                match result {
                    Ok(()) => self.forget_process(i),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        if let Some(e) = first_err {
            self.save()?;
            return Err(e);
        }
        // Only once no broker uses them: their lazy disks.
        if let Err(e) = self.stop_disks() {
            self.save()?;
            return Err(e);
        }
        self.wipe_scratch_store()?;
        self.remove_state()
    }

    /// SIGKILL node `node` and reap it.
    pub fn kill(&mut self, node: usize) -> Result<(), DeployError> {
        self.check_index(node)?;
        if let Some(p) = self.nodes[node].process() {
            p.kill(&self.nodes[node].name)?;
        }
        self.forget_process(node);
        self.save()
    }

    /// SIGTERM node `node` and wait for it to exit (SIGKILL after the grace period).
    pub fn stop(&mut self, node: usize) -> Result<(), DeployError> {
        self.check_index(node)?;
        if let Some(p) = self.nodes[node].process() {
            p.terminate(&self.nodes[node].name, self.grace())?;
        }
        self.forget_process(node);
        self.save()
    }

    /// Start node `node` (after a stop or kill) and wait until it answers.
    /// Does nothing if it is already running.
    pub fn start(&mut self, node: usize) -> Result<(), DeployError> {
        self.check_index(node)?;
        if self.is_running(node) {
            return Ok(());
        }
        let id = self.spawn(node)?;
        self.wait_answering(node, id)
    }

    /// Starts the nodes `nodes` that are down all at once, then waits until
    /// each answers: KRaft nodes that lost their quorum together (a
    /// majority killed at once) can only come back together.
    pub fn start_together(&mut self, nodes: &[usize]) -> Result<(), DeployError> {
        let mut started = Vec::new();
        for &n in nodes {
            self.check_index(n)?;
            if !self.is_running(n) {
                started.push((n, self.spawn(n)?));
            }
        }
        for (n, id) in started {
            self.wait_answering(n, id)?;
        }
        Ok(())
    }

    /// Starts node `node`'s process and records it, without waiting.
    fn spawn(&mut self, node: usize) -> Result<ProcessId, DeployError> {
        self.ensure_disk(node)?;
        let launch = self.launch(node)?;
        let n = &self.nodes[node];
        for port in n.ports(&self.spec) {
            check_port_free(&self.spec.bind_host(node), port, &n.name)?;
        }
        if self.storage.as_deref().is_some_and(tansu::is_scratch) {
            self.wipe_scratch_store()?;
        }
        let id = process::spawn_detached(&n.name, &launch, &n.log)?;
        let n = &mut self.nodes[node];
        n.pid = Some(id.pid);
        n.start_ticks = Some(id.start_ticks);
        self.save()?;
        Ok(id)
    }

    /// SIGSTOP node `node`: it keeps its connections but answers nothing.
    /// Returns once the process is seen stopped.
    pub fn pause(&mut self, node: usize) -> Result<(), DeployError> {
        self.signal(node, Signal::SIGSTOP)?;
        self.await_state(node, |s| s != ProcState::Running);
        Ok(())
    }

    /// SIGCONT node `node` after [`Cluster::pause`]; returns once it runs again.
    pub fn resume(&mut self, node: usize) -> Result<(), DeployError> {
        self.signal(node, Signal::SIGCONT)?;
        self.await_state(node, |s| s != ProcState::Stopped);
        Ok(())
    }

    /// Signals are delivered asynchronously: wait (briefly) until `/proc` agrees.
    fn await_state(&self, node: usize, done: impl Fn(ProcState) -> bool) {
        let Some(p) = self.nodes[node].process() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done(p.state()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Write the state file (atomically: temporary file, then rename).
    pub fn save(&self) -> Result<(), DeployError> {
        let path = self.state_path();
        let tmp = self.spec.dir.join(format!("{STATE_FILE}.tmp"));
        let json = serde_json::to_string_pretty(self).map_err(|source| DeployError::State {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&tmp, json + "\n").map_err(|e| DeployError::io("write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| DeployError::io("rename into", &path, e))
    }

    fn remove_state(&self) -> Result<(), DeployError> {
        let path = self.state_path();
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(DeployError::io("remove", &path, e)),
        }
        crate::registry::unregister(&self.spec.dir)
    }

    fn wipe_scratch_store(&self) -> Result<(), DeployError> {
        let Some(storage) = self.storage.as_deref().filter(|s| tansu::is_scratch(s)) else {
            return Ok(());
        };
        for file in tansu::store_files(&self.spec, storage) {
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(DeployError::io("remove", &file, e)),
            }
        }
        Ok(())
    }

    fn signal(&mut self, node: usize, signal: Signal) -> Result<(), DeployError> {
        self.check_index(node)?;
        let n = &self.nodes[node];
        let sent = match n.process() {
            Some(p) => p.signal(&n.name, signal)?,
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(DeployError::NotRunning {
                node: n.name.clone(),
            })
        }
    }

    fn forget_process(&mut self, node: usize) {
        self.nodes[node].pid = None;
        self.nodes[node].start_ticks = None;
    }

    fn check_index(&self, node: usize) -> Result<(), DeployError> {
        if node < self.nodes.len() {
            Ok(())
        } else {
            Err(DeployError::NoSuchNode {
                index: node,
                count: self.nodes.len(),
            })
        }
    }

    fn grace(&self) -> Duration {
        match self.spec.kind {
            ClusterKind::Kafka => Duration::from_secs(60),
            _ => Duration::from_secs(10),
        }
    }

    fn start_timeout(&self) -> Duration {
        if let Some(t) = self.spec.start_timeout {
            return t;
        }
        match self.spec.kind {
            ClusterKind::Kafka => Duration::from_secs(120),
            _ => Duration::from_secs(30),
        }
    }

    /// The command line of node `node`.
    pub fn launch(&self, node: usize) -> Result<Launch, DeployError> {
        self.check_index(node)?;
        let mut launch = match self.spec.kind {
            ClusterKind::Kafka => {
                let dist =
                    self.node_kafka(node)
                        .cloned()
                        .unwrap_or_else(|| kafka::KafkaDist::Home {
                            home: self.program.clone(),
                        });
                kafka::write_logging_config(&dist, &self.spec)?;
                let mut spec = self.spec.clone();
                spec.broker_configs.extend(
                    self.nodes[node]
                        .configs
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
                layout::write_kafka_config(&spec, node)?;
                kafka::format_once(&dist, &self.spec, node)?;
                kafka::start_command(&dist, &self.spec, node)
            }
            ClusterKind::Tansu | ClusterKind::TansuMemory => {
                let storage = self.storage.as_deref().unwrap_or("sqlite://tansu.db");
                layout::tansu_command(&self.program, &self.spec, storage, node)
            }
        };
        let n = &self.nodes[node];
        for (k, v) in &n.env {
            launch.env_remove.retain(|x| x != k);
            launch.env.push((k.clone(), v.clone()));
        }
        if let Some(ns) = &n.namespace {
            launch = layout::in_namespace(launch, ns);
        }
        Ok(launch)
    }

    /// The Kafka code node `node` runs (its own during a rolling upgrade,
    /// else the cluster's).
    pub fn node_kafka(&self, node: usize) -> Option<&kafka::KafkaDist> {
        self.nodes
            .get(node)
            .and_then(|n| n.kafka.as_ref())
            .or(self.kafka.as_ref())
    }

    /// Makes node `node` run `dist` from its next start on, on the same
    /// data and configuration (a rolling upgrade or downgrade step); saved
    /// in the state file. A running node is not affected until restarted.
    /// Once every node runs the same code it becomes the cluster's.
    pub fn set_node_kafka(
        &mut self,
        node: usize,
        dist: kafka::KafkaDist,
    ) -> Result<(), DeployError> {
        self.check_index(node)?;
        if self.spec.kind != ClusterKind::Kafka {
            return Err(DeployError::InvalidSpec(format!(
                "{}: only Apache Kafka nodes change versions",
                self.nodes[node].name
            )));
        }
        self.nodes[node].kafka = Some(dist);
        let all_same = self
            .nodes
            .iter()
            .all(|n| n.kafka.is_some() && n.kafka == self.nodes[node].kafka);
        if all_same {
            self.kafka = self.nodes[node].kafka.clone();
            for n in &mut self.nodes {
                n.kafka = None;
            }
        }
        self.save()
    }

    /// Broker settings node `node` takes over the cluster's from its next
    /// start on (a rolling config step); saved in the state file.
    pub fn set_node_configs(
        &mut self,
        node: usize,
        configs: std::collections::BTreeMap<String, String>,
    ) -> Result<(), DeployError> {
        self.check_index(node)?;
        if self.spec.kind != ClusterKind::Kafka {
            return Err(DeployError::InvalidSpec(format!(
                "{}: only Apache Kafka nodes take broker settings",
                self.nodes[node].name
            )));
        }
        self.nodes[node].configs = configs;
        self.save()
    }

    /// Sets extra environment variables for node `node`'s next starts (an
    /// empty list removes them); saved in the state file. A running broker
    /// is not affected until it is restarted.
    pub fn set_node_env(
        &mut self,
        node: usize,
        env: Vec<(String, String)>,
    ) -> Result<(), DeployError> {
        self.check_index(node)?;
        self.nodes[node].env = env;
        self.save()
    }

    /// Shifts node `node`'s wall clock by `offset_secs` from its next start
    /// (libfaketime, [`crate::faketime`]); `None` puts the true clock back.
    /// A running broker is not affected until it is restarted.
    pub fn set_clock_offset(
        &mut self,
        node: usize,
        offset_secs: Option<i64>,
    ) -> Result<(), DeployError> {
        let env = match offset_secs {
            None => vec![],
            Some(s) => {
                let lib = crate::faketime::library().map_err(DeployError::NotFound)?;
                crate::faketime::env(&lib, s)
            }
        };
        self.set_node_env(node, env)
    }

    fn wait_answering(&mut self, node: usize, id: ProcessId) -> Result<(), DeployError> {
        let timeout = self.start_timeout();
        let deadline = Instant::now() + timeout;
        let n = &self.nodes[node];
        let addr = n.direct_addr();
        loop {
            if let Some(status) = id.reap() {
                return self.startup_failed(node, status);
            }
            if !id.is_alive() {
                return self.startup_failed(node, "exited".into());
            }
            if wire::answers_api_versions(&addr, Duration::from_millis(500)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let n = &self.nodes[node];
                return Err(DeployError::StartTimeout {
                    node: n.name.clone(),
                    addr,
                    secs: timeout.as_secs(),
                    log: n.log.clone(),
                    tail: startup_diagnosis(&n.log),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn startup_failed(&mut self, node: usize, status: String) -> Result<(), DeployError> {
        self.forget_process(node);
        self.save()?;
        let n = &self.nodes[node];
        Err(DeployError::ExitedDuringStartup {
            node: n.name.clone(),
            status,
            log: n.log.clone(),
            tail: startup_diagnosis(&n.log),
        })
    }
}

/// What a user needs when a node did not start: the first ERROR line of its
/// last start (the cause, not the shutdown noise after it), then the tail.
fn startup_diagnosis(log: &Path) -> String {
    let cause = kafka::first_error_line(log)
        .map(|l| format!("\nfirst error: {l}"))
        .unwrap_or_default();
    format!(
        "{cause}\nlast lines of {}:\n{}",
        log.display(),
        process::log_tail(log, LOG_TAIL_LINES)
    )
}

/// An exclusive `flock` on `<dir>/cluster.lock`, released on drop.
pub(crate) struct DirLock {
    _file: nix::fcntl::Flock<std::fs::File>,
}

impl DirLock {
    fn acquire(dir: &Path) -> Result<DirLock, DeployError> {
        Self::acquire_file(&dir.join("cluster.lock"))
    }

    /// An exclusive lock on `path` (created if missing), held until drop.
    pub(crate) fn acquire_file(path: &Path) -> Result<DirLock, DeployError> {
        let path = path.to_path_buf();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| DeployError::io("open", &path, e))?;
        let file = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| DeployError::io("lock", &path, errno.into()))?;
        Ok(DirLock { _file: file })
    }
}

/// Fail with [`DeployError::PortInUse`] if `host:port` cannot be bound.
pub fn check_port_free(host: &str, port: u16, node: &str) -> Result<(), DeployError> {
    match TcpListener::bind((host, port)) {
        Ok(listener) => {
            drop(listener);
            Ok(())
        }
        Err(_) => Err(DeployError::PortInUse {
            port,
            host: host.to_string(),
            node: node.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_someone_listens_on_is_reported_by_number() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = check_port_free("127.0.0.1", port, "broker-1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&port.to_string()) && err.contains("broker-1") && err.contains("in use"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_state_file_means_no_cluster() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Cluster::load(dir.path()).unwrap().is_none());
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), "{not json").unwrap();
        let err = Cluster::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("cluster.json"), "{err}");
    }

    #[test]
    fn a_kafka_cluster_without_an_installation_fails_before_touching_anything() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = ClusterSpec::new(ClusterKind::Kafka, dir.path()).with_base_port(19390);
        spec.kafka_home = Some(dir.path().join("no-kafka-here"));
        let err = Cluster::up(spec).unwrap_err().to_string();
        assert!(err.contains("kafka-server-start.sh"), "{err}");
        assert!(!dir.path().join(STATE_FILE).exists());
    }

    #[test]
    fn a_missing_tansu_binary_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = ClusterSpec::new(ClusterKind::Tansu, dir.path()).with_base_port(19380);
        spec.tansu_bin = Some(dir.path().join("tansu-nope"));
        let err = Cluster::up(spec).unwrap_err().to_string();
        assert!(err.contains("tansu-nope"), "{err}");
    }

    #[test]
    fn a_broker_that_dies_at_startup_is_reported_with_its_log_and_nothing_is_left_running() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake-tansu");
        std::fs::write(
            &fake,
            "#!/bin/sh\n[ \"$1\" = --help ] && exit 0\necho \"boom: database is locked\" >&2\nexit 3\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut spec =
            ClusterSpec::new(ClusterKind::Tansu, dir.path().join("c")).with_base_port(19360);
        spec.tansu_bin = Some(fake);
        let err = Cluster::up(spec).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, DeployError::ExitedDuringStartup { .. }),
            "{msg}"
        );
        assert!(
            msg.contains("broker-0") && msg.contains("exit status 3"),
            "{msg}"
        );
        assert!(
            msg.contains("boom: database is locked"),
            "log tail included: {msg}"
        );
        assert!(
            Cluster::load(&dir.path().join("c")).unwrap().is_none(),
            "state removed"
        );
    }

    #[test]
    fn a_broker_that_never_answers_times_out_with_its_address_and_is_stopped() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("mute-tansu");
        std::fs::write(
            &fake,
            "#!/usr/bin/env python3\n\
             import socket, sys, time\n\
             if '--help' in sys.argv: sys.exit(0)\n\
             url = sys.argv[sys.argv.index('--listener-url') + 1]\n\
             s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('127.0.0.1', int(url.rsplit(':', 1)[1]))); s.listen()\n\
             print('listening but mute', flush=True)\n\
             time.sleep(60)\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut spec =
            ClusterSpec::new(ClusterKind::Tansu, dir.path().join("c")).with_base_port(19350);
        spec.tansu_bin = Some(fake);
        spec.start_timeout = Some(Duration::from_secs(2));
        let err = Cluster::up(spec).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, DeployError::StartTimeout { secs: 2, .. }),
            "{msg}"
        );
        assert!(
            msg.contains("127.0.0.1:19350") && msg.contains("listening but mute"),
            "{msg}"
        );
        // the mute broker was stopped: its port is free again
        check_port_free("127.0.0.1", 19350, "probe").unwrap();
    }

    #[test]
    fn the_state_file_round_trips_with_every_node() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ClusterSpec::new(ClusterKind::Tansu, dir.path()).with_base_port(19370);
        let cluster = Cluster {
            version: STATE_VERSION,
            program: "/bin/tansu".into(),
            storage: Some("sqlite://tansu.db".into()),
            kafka: None,
            nodes: (0..3)
                .map(|i| Node {
                    id: i,
                    name: format!("broker-{i}"),
                    host: "127.0.0.1".into(),
                    port: 19370 + i as u16,
                    controller_port: None,
                    pid: Some(1000 + i),
                    start_ticks: Some(42),
                    log: dir.path().join(format!("logs/broker-{i}.log")),
                    config: None,
                    listen: None,
                    namespace: None,
                    env: Vec::new(),
                    kafka: None,
                    configs: Default::default(),
                    disk: None,
                })
                .collect(),
            spec,
            already_up: false,
        };
        cluster.save().unwrap();
        let loaded = Cluster::load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.nodes(), cluster.nodes());
        assert_eq!(loaded.spec(), cluster.spec());
        assert_eq!(
            loaded.bootstrap(),
            "127.0.0.1:19370,127.0.0.1:19371,127.0.0.1:19372"
        );
        assert_eq!(loaded.storage_url(), Some("sqlite://tansu.db"));
        // pids 1000.. with start time 42 are not processes we started
        assert!(!loaded.is_running(0));
    }
}
