//! Mounting: in this process ([`mount`], a [`Mounted`] that unmounts when
//! dropped) or as a daemon that serves until SIGTERM ([`serve`], what
//! `gregor lazyfs mount` runs); and cleaning up mounts whose server died.
//!
//! A lazy filesystem whose server process is gone (killed -9) leaves a
//! stale mount: every access to it fails with ENOTCONN ("Transport
//! endpoint is not connected"). [`unmount`] detaches it (`umount2(..,
//! MNT_DETACH)` as root, else `fusermount3 -u -z`), which is what
//! `gregor cluster down` does for every lazy mount of its cluster; by hand:
//! `fusermount3 -u -z MOUNTPOINT`. [`lazy_mounts_under`] lists them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fuser::{Config, MountOption};

use crate::control::Control;
use crate::fs::{LazyFs, Settings, Shared};
use crate::{LazyFsError, FS_NAME, FS_TYPE};

/// Fails, naming what is missing, when this process cannot mount FUSE
/// filesystems (no `/dev/fuse`, or it cannot be opened).
pub fn check_available() -> Result<(), LazyFsError> {
    let dev = Path::new("/dev/fuse");
    if !dev.exists() {
        return Err(LazyFsError::Unavailable(
            "/dev/fuse does not exist: the kernel's FUSE module is not loaded, or this \
             container was started without the device (docker: --device /dev/fuse \
             --cap-add SYS_ADMIN)"
                .into(),
        ));
    }
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open(dev) {
        return Err(LazyFsError::Unavailable(format!(
            "/dev/fuse cannot be opened for reading and writing: {e}"
        )));
    }
    let root = nix::unistd::geteuid().is_root();
    if !root
        && !Path::new("/usr/bin/fusermount3").exists()
        && !Path::new("/bin/fusermount3").exists()
    {
        return Err(LazyFsError::Unavailable(
            "not root and no fusermount3 to mount with (apt-get install fuse3)".into(),
        ));
    }
    Ok(())
}

fn config() -> Config {
    let mut c = Config::default();
    c.mount_options = vec![
        MountOption::FSName(FS_NAME.into()),
        MountOption::Subtype("lazyfs".into()),
        MountOption::RW,
        MountOption::Dev,
        MountOption::Exec,
    ];
    // Several requests at once: a slow write must not hold up every other.
    c.n_threads = Some(4);
    c
}

/// A lazy filesystem mounted by this process; unmounted when dropped.
pub struct Mounted {
    mountpoint: PathBuf,
    session: Option<fuser::BackgroundSession>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Mounted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mounted")
            .field("mountpoint", &self.mountpoint)
            .finish_non_exhaustive()
    }
}

/// Mounts a lazy filesystem over `backing` at `mountpoint` (both existing
/// directories), served by threads of this process.
pub fn mount(
    backing: &Path,
    mountpoint: &Path,
    settings: Settings,
) -> Result<Mounted, LazyFsError> {
    check_available()?;
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| LazyFsError::Io { what, path, source }
    };
    let fs = LazyFs::new(backing, settings).map_err(io("open the backing directory", backing))?;
    let shared = fs.shared();
    let mountpoint = std::path::absolute(mountpoint).map_err(io("resolve", mountpoint))?;
    let session = fuser::spawn_mount(fs, &mountpoint, &config())
        .map_err(io("mount a lazy filesystem at", &mountpoint))?;
    Ok(Mounted {
        mountpoint,
        session: Some(session),
        shared,
    })
}

impl Mounted {
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The filesystem's state and faults, controlled directly.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The control file client for this mount.
    pub fn control(&self) -> Control {
        Control::new(&self.mountpoint)
    }

    /// A power loss: see [`Control::crash`].
    pub fn crash(&self) -> Result<(), LazyFsError> {
        self.control().crash().map_err(|source| LazyFsError::Io {
            what: "crash the lazy filesystem at",
            path: self.mountpoint.clone(),
            source,
        })
    }

    /// Unmounts (lazily if the mount is busy) and stops serving.
    pub fn unmount(mut self) -> Result<(), LazyFsError> {
        self.unmount_inner()
    }

    fn unmount_inner(&mut self) -> Result<(), LazyFsError> {
        let Some(s) = self.session.take() else {
            return Ok(());
        };
        match s.umount_and_join() {
            Ok(()) => Ok(()),
            Err(e) => {
                // Busy: detach it, the session ends when the last user goes.
                unmount(&self.mountpoint).map_err(|_| LazyFsError::Io {
                    what: "unmount",
                    path: self.mountpoint.clone(),
                    source: e,
                })
            }
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = self.unmount_inner();
    }
}

/// Mounts and serves until SIGTERM, SIGINT or SIGHUP (then unmounts), or
/// until the mount disappears (unmounted by someone else). Prints one line
/// on stderr once mounted.
pub fn serve(backing: &Path, mountpoint: &Path, settings: Settings) -> Result<(), LazyFsError> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    // Blocked before the session's threads start, so that they inherit it
    // and the signal waits for this thread.
    set.thread_block().map_err(|e| LazyFsError::Io {
        what: "block signals for",
        path: mountpoint.to_path_buf(),
        source: e.into(),
    })?;
    let m = mount(backing, mountpoint, settings)?;
    eprintln!(
        "lazyfs: {} mounted over {} (pid {})",
        m.mountpoint().display(),
        backing.display(),
        std::process::id()
    );
    loop {
        let ts = libc::timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        // SAFETY: a valid signal set and timeout; no siginfo wanted.
        let sig = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &ts) };
        if sig > 0 {
            eprintln!(
                "lazyfs: signal {sig}: unmounting {}",
                m.mountpoint().display()
            );
            break;
        }
        if !is_mounted(m.mountpoint()) {
            eprintln!("lazyfs: {} was unmounted", m.mountpoint().display());
            break;
        }
    }
    m.unmount()
}

/// Undoes the octal escapes of `/proc/self/mountinfo` (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("x");
            if let Ok(n) = u8::from_str_radix(digits, 8) {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount points of every lazy filesystem this process sees: type
/// `fuse.lazyfs` (mounted through fusermount3), or `fuse` with the source
/// `gregor-lazyfs` (mounted directly by root).
fn lazy_mounts() -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let dash = f.iter().position(|x| *x == "-")?;
            let (fstype, source) = (*f.get(dash + 1)?, *f.get(dash + 2)?);
            let lazy = fstype == FS_TYPE || (fstype.starts_with("fuse") && source == FS_NAME);
            let point = PathBuf::from(unescape(f.get(4)?));
            lazy.then_some(point)
        })
        .collect()
}

/// True when `path` is a mount point of a lazy filesystem (live or stale).
pub fn is_mounted(path: &Path) -> bool {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    lazy_mounts().into_iter().any(|p| p == path)
}

/// Lazy filesystems mounted at or under `dir`.
pub fn lazy_mounts_under(dir: &Path) -> Vec<PathBuf> {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    lazy_mounts()
        .into_iter()
        .filter(|p| p.starts_with(&dir))
        .collect()
}

/// Detaches the lazy filesystem at `path` (a live one stops being
/// reachable at once and ends when its last user goes; a stale one is
/// gone): `umount2(MNT_DETACH)` as root, else `fusermount3 -u -z`.
pub fn unmount(path: &Path) -> Result<(), LazyFsError> {
    let err = |source: std::io::Error| LazyFsError::Io {
        what: "unmount",
        path: path.to_path_buf(),
        source,
    };
    if !is_mounted(path) {
        return Ok(());
    }
    if nix::unistd::geteuid().is_root() {
        match nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EINVAL) if !is_mounted(path) => return Ok(()),
            Err(e) => return Err(err(e.into())),
        }
    }
    let out = std::process::Command::new("fusermount3")
        .args(["-u", "-z"])
        .arg(path)
        .output()
        .map_err(err)?;
    if out.status.success() || !is_mounted(path) {
        Ok(())
    } else {
        Err(err(std::io::Error::other(format!(
            "fusermount3 -u -z: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))))
    }
}

/// Waits up to `timeout` for `path` to be a lazy mount.
pub fn wait_mounted(path: &Path, timeout: Duration) -> bool {
    let end = std::time::Instant::now() + timeout;
    loop {
        if is_mounted(path) {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape("/tmp/a\\040b"), "/tmp/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
