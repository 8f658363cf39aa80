//! Lazy disks: each Kafka node's log directory on a lazy filesystem of its
//! own ([`gregor_lazyfs`]), for power-loss and disk faults.
//!
//! With [`crate::ClusterSpec::lazy_disk`], node `i`'s log directory
//! (`<dir>/data/broker-i`, its `log.dirs`) is the mount point of a lazy
//! filesystem over `<dir>/data/broker-i.disk`, served by a detached
//! `gregor lazyfs mount` process (its own process group, recorded in the
//! state file beside the broker, logging to `<dir>/logs/lazyfs-broker-i.log`)
//! so that it outlives the `gregor` that started it, as brokers do. It is
//! mounted after the node's storage is formatted (what the log directory
//! holds then is moved to the backing directory: provisioning is durable,
//! though Kafka's format does not fsync all it writes) and before every
//! start of the node (again, if its server died), and unmounted after the broker
//! stopped at [`Cluster::down`]: SIGTERM (the server unmounts), then a
//! detach of the mount if it is still there — which also cleans the stale
//! mount a killed server leaves (by hand: `fusermount3 -u -z DIR`).
//!
//! The faults, through the mount's control file: [`Cluster::lose_unfsynced`]
//! (kill -9, then the disk forgets what was not fsynced: a power loss of
//! the node), [`Cluster::set_disk_full`], [`Cluster::set_disk_slow`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use gregor_lazyfs::{Control, Status};
use serde::{Deserialize, Serialize};

use super::Cluster;
use crate::error::DeployError;
use crate::kafka;
use crate::process::{self, Launch, ProcessId};
use crate::spec::ClusterSpec;

/// How long a lazy filesystem may take to appear once its server started.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(15);

/// A node's lazy disk and the process serving it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LazyDisk {
    /// The mount point: the node's log directory.
    pub mount: PathBuf,
    /// The real directory beneath: what was fsynced.
    pub backing: PathBuf,
    /// The serving process while it runs.
    pub pid: Option<u32>,
    pub start_ticks: Option<u64>,
    /// The serving process's stdout and stderr.
    pub log: PathBuf,
}

/// The program that serves lazy filesystems: `$GREGOR_LAZYFS_BIN`, else
/// this very program (the `gregor` binary, whose `lazyfs mount` does it).
pub fn lazyfs_program() -> Result<PathBuf, DeployError> {
    if let Some(p) = std::env::var_os("GREGOR_LAZYFS_BIN").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    std::env::current_exe().map_err(|e| DeployError::io("find", Path::new("the gregor binary"), e))
}

fn io_err(what: &'static str, path: &Path, e: std::io::Error) -> DeployError {
    DeployError::io(what, path, e)
}

impl LazyDisk {
    /// Node `i`'s lazy disk (not started).
    pub fn new(spec: &ClusterSpec, i: usize) -> LazyDisk {
        LazyDisk {
            mount: kafka::log_dir(spec, i),
            backing: spec.dir.join("data").join(format!("broker-{i}.disk")),
            pid: None,
            start_ticks: None,
            log: spec.dir.join("logs").join(format!("lazyfs-broker-{i}.log")),
        }
    }

    fn process(&self) -> Option<ProcessId> {
        Some(ProcessId {
            pid: self.pid?,
            start_ticks: self.start_ticks?,
        })
    }

    /// The server runs and the filesystem is mounted.
    pub fn is_serving(&self) -> bool {
        self.process().is_some_and(|p| p.is_alive()) && gregor_lazyfs::is_mounted(&self.mount)
    }

    /// The client of its control file.
    pub fn control(&self) -> Control {
        Control::new(&self.mount)
    }

    /// Mounts it (unless it is served already), cleaning up a dead server's
    /// process and stale mount first.
    fn start(&mut self, node: &str, cwd: &Path) -> Result<(), DeployError> {
        if self.is_serving() {
            return Ok(());
        }
        self.stop(node)?;
        gregor_lazyfs::check_available()
            .map_err(|e| DeployError::NotFound(format!("{node}: lazy disk: {e}")))?;
        for d in [&self.mount, &self.backing] {
            std::fs::create_dir_all(d).map_err(|e| io_err("create directory", d, e))?;
        }
        // What the log directory holds before its disk is mounted (the
        // node's formatted storage) is the disk's durable content.
        let entries = std::fs::read_dir(&self.mount).map_err(|e| io_err("read", &self.mount, e))?;
        for e in entries {
            let e = e.map_err(|e| io_err("read", &self.mount, e))?;
            let to = self.backing.join(e.file_name());
            std::fs::rename(e.path(), &to)
                .map_err(|err| io_err("move into the lazy disk", &e.path(), err))?;
        }
        let launch = Launch {
            program: lazyfs_program()?,
            args: vec![
                "lazyfs".into(),
                "mount".into(),
                self.backing.display().to_string(),
                self.mount.display().to_string(),
            ],
            env: vec![],
            env_remove: vec![],
            cwd: cwd.to_path_buf(),
        };
        let name = format!("{node}-disk");
        let id = process::spawn_detached(&name, &launch, &self.log)?;
        self.pid = Some(id.pid);
        self.start_ticks = Some(id.start_ticks);
        let deadline = std::time::Instant::now() + MOUNT_TIMEOUT;
        loop {
            if gregor_lazyfs::is_mounted(&self.mount) {
                return Ok(());
            }
            if let Some(status) = id
                .reap()
                .or_else(|| (!id.is_alive()).then(|| "exited".into()))
            {
                self.pid = None;
                self.start_ticks = None;
                return Err(DeployError::ExitedDuringStartup {
                    node: name,
                    status,
                    log: self.log.clone(),
                    tail: format!("\n{}", process::log_tail(&self.log, 20)),
                });
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.stop(node);
                return Err(DeployError::NotReady(format!(
                    "{name}: {} was not mounted within {} s (log: {})",
                    self.mount.display(),
                    MOUNT_TIMEOUT.as_secs(),
                    self.log.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (it unmounts on SIGTERM) and detaches a mount left
    /// behind. Whatever was not fsynced is lost, as in a power loss.
    fn stop(&mut self, node: &str) -> Result<(), DeployError> {
        let name = format!("{node}-disk");
        if let Some(p) = self.process() {
            p.terminate(&name, Duration::from_secs(10))?;
        }
        self.pid = None;
        self.start_ticks = None;
        gregor_lazyfs::unmount(&self.mount)
            .map_err(|e| DeployError::NotReady(format!("{name}: {e}")))
    }
}

impl Cluster {
    /// True when every node's log directory is on a lazy disk.
    pub fn has_lazy_disks(&self) -> bool {
        self.spec.lazy_disk
    }

    /// Mounts node `node`'s lazy disk if it has one and it is not served.
    pub(super) fn ensure_disk(&mut self, node: usize) -> Result<(), DeployError> {
        let cwd = self.spec.dir.clone();
        let n = &mut self.nodes[node];
        let Some(d) = n.disk.as_mut() else {
            return Ok(());
        };
        if d.is_serving() {
            return Ok(());
        }
        let r = d.start(&n.name, &cwd);
        self.save()?;
        r
    }

    /// Mounts every node's lazy disk; on an error, unmounts them all.
    pub(super) fn start_disks(&mut self) -> Result<(), DeployError> {
        for i in 0..self.nodes.len() {
            if let Err(e) = self.ensure_disk(i) {
                let _ = self.stop_disks();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Unmounts every node's lazy disk (their brokers must be down).
    pub(super) fn stop_disks(&mut self) -> Result<(), DeployError> {
        let mut first = None;
        for n in &mut self.nodes {
            if let Some(d) = n.disk.as_mut() {
                if let Err(e) = d.stop(&n.name) {
                    first.get_or_insert(e);
                }
            }
        }
        // A mount under the cluster that no node knows of (state lost).
        for m in gregor_lazyfs::lazy_mounts_under(&self.spec.dir.join("data")) {
            if let Err(e) = gregor_lazyfs::unmount(&m) {
                first.get_or_insert(DeployError::NotReady(e.to_string()));
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn disk(&self, node: usize) -> Result<&LazyDisk, DeployError> {
        self.check_index(node)?;
        let n = &self.nodes[node];
        n.disk.as_ref().ok_or_else(|| {
            DeployError::InvalidSpec(format!(
                "{} has no lazy disk: the cluster was not started with lazy disks \
                 (cluster.lazy-disk: true)",
                n.name
            ))
        })
    }

    fn control_err(&self, node: usize, e: std::io::Error) -> DeployError {
        let mount = self.nodes[node]
            .disk
            .as_ref()
            .map(|d| d.mount.clone())
            .unwrap_or_default();
        DeployError::io("control the lazy disk at", &mount, e)
    }

    /// A power loss of node `node`: SIGKILL, then its disk forgets every
    /// write, truncation and file operation that was not fsynced. Returns
    /// the disk's status after the crash (what it dropped). The node stays
    /// down until [`Cluster::start`].
    pub fn lose_unfsynced(&mut self, node: usize) -> Result<Status, DeployError> {
        self.disk(node)?;
        self.kill(node)?;
        let c = self.disk(node)?.control();
        c.crash().map_err(|e| self.control_err(node, e))?;
        c.status().map_err(|e| self.control_err(node, e))
    }

    /// Node `node`'s disk fails writes and creates with ENOSPC while `on`.
    pub fn set_disk_full(&mut self, node: usize, on: bool) -> Result<(), DeployError> {
        let c = self.disk(node)?.control();
        c.set_full(on).map_err(|e| self.control_err(node, e))
    }

    /// Node `node`'s disk adds `latency` to every write and fsync (zero: none).
    pub fn set_disk_slow(&mut self, node: usize, latency: Duration) -> Result<(), DeployError> {
        let c = self.disk(node)?.control();
        c.set_slow(latency).map_err(|e| self.control_err(node, e))
    }

    /// What node `node`'s disk holds unsynced, and its faults.
    pub fn disk_status(&self, node: usize) -> Result<Status, DeployError> {
        let c = self.disk(node)?.control();
        c.status().map_err(|e| self.control_err(node, e))
    }
}
