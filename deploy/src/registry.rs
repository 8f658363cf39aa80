//! Every local cluster gregor started, wherever its directory is.
//!
//! A cluster directory can be anywhere (`gregor run --store ELSEWHERE` puts
//! it inside the run directory). So that `gregor cluster down` and `heal`
//! find the clusters a killed gregor left, [`Cluster::up`] records each
//! cluster's directory here and [`Cluster::down`] removes it: one small file
//! per cluster under the user's state directory (`$GREGOR_STATE_DIR`, else
//! `$XDG_STATE_HOME/gregor`, else `~/.local/state/gregor`), in `clusters/`.
//!
//! A cluster started by a `gregor run` has that process as its owner
//! ([`crate::ClusterSpec::owner`]); when the owner is gone the cluster is an
//! orphan ([`orphans`]). A cluster from `gregor cluster up` has no owner: it
//! is meant to outlive the command and is never an orphan.
//!
//! [`Cluster::up`]: crate::Cluster::up
//! [`Cluster::down`]: crate::Cluster::down

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use crate::{Cluster, DeployError};

/// The registry's directory.
pub fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("GREGOR_STATE_DIR") {
        return PathBuf::from(d).join("clusters");
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    state.join("gregor").join("clusters")
}

/// The registry file of a cluster directory (named by a hash of its path).
fn entry(cluster_dir: &Path) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    cluster_dir.hash(&mut h);
    dir().join(format!("{:016x}", h.finish()))
}

/// Records a cluster directory (absolute).
pub fn register(cluster_dir: &Path) -> Result<(), DeployError> {
    let d = dir();
    std::fs::create_dir_all(&d).map_err(|e| DeployError::io("create directory", &d, e))?;
    let path = entry(cluster_dir);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, cluster_dir.as_os_str().as_encoded_bytes())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| DeployError::io("write", &path, e))
}

/// Forgets a cluster directory (nothing to do if it was not recorded).
pub fn unregister(cluster_dir: &Path) -> Result<(), DeployError> {
    let path = entry(cluster_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DeployError::io("remove", &path, e)),
    }
}

/// Every recorded cluster directory that still holds a cluster; records of
/// directories whose cluster is gone are dropped on the way.
pub fn clusters() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir()) else {
        return vec![];
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "tmp") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let cluster_dir = PathBuf::from(text);
        if cluster_dir.join(crate::STATE_FILE).exists() {
            out.push(cluster_dir);
        } else {
            // Its cluster was stopped (or its directory deleted).
            let _ = std::fs::remove_file(&path);
        }
    }
    out.sort();
    out
}

/// Whether the process `pid` is a live gregor (a pid reused by another
/// program does not count).
pub fn owner_alive(pid: u32) -> bool {
    let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
        return false;
    };
    exe.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("gregor"))
}

/// The recorded clusters whose owner (a `gregor run`) is gone, with the
/// owner's pid.
pub fn orphans() -> Vec<(Cluster, u32)> {
    clusters()
        .into_iter()
        .filter_map(|d| Cluster::load(&d).ok().flatten())
        .filter_map(|c| {
            let owner = c.spec().owner?;
            (!owner_alive(owner)).then_some((c, owner))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_pid_or_another_program_is_no_owner() {
        assert!(
            owner_alive(std::process::id()) == {
                std::env::current_exe()
                    .ok()
                    .and_then(|p| {
                        p.file_name()
                            .map(|n| n.to_string_lossy().starts_with("gregor"))
                    })
                    .unwrap_or(false)
            }
        );
        // pid 1 is init, not gregor.
        assert!(!owner_alive(1));
        assert!(!owner_alive(u32::MAX - 1));
    }
}
