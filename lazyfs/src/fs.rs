//! The filesystem: a pass-through to a backing directory that holds back
//! what was not fsynced (see the crate's documentation for the rules).
//!
//! Inodes are paths relative to the backing root (kept up to date across
//! renames), numbered by gregor (1 is the root, 2 the control file) and
//! matched to backing files by their inode number. Every request takes one
//! lock; the disk-slow latency is slept before taking it.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    TimeOrNow, WriteFlags,
};

use crate::cache::FileCache;
use crate::control::{Command, Status};
use crate::{CTL_NAME, TRASH_NAME};

/// The control file's inode number.
const CTL_INO: u64 = 2;
/// Attributes and entries are not cached by the kernel: after a crash the
/// kernel must ask again (the page cache is dropped at each open, since
/// files are opened without `FOPEN_KEEP_CACHE`).
const TTL: Duration = Duration::ZERO;

/// Settings of a lazy filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Dirty bytes held in memory before the largest dirty file is written
    /// back to the backing file (as a kernel's writeback would; it is then
    /// durable). 0: never.
    pub max_dirty: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { max_dirty: 1 << 30 }
    }
}

/// A namespace change not yet made durable, with what undoes it.
#[derive(Debug, Clone)]
enum Op {
    /// A file or symlink created at this path.
    Created(PathBuf),
    /// A directory created at this path.
    Mkdir(PathBuf),
    /// A file or empty directory removed: moved to `trash`.
    Removed { path: PathBuf, trash: PathBuf },
    /// Renamed; what `to` named before was moved to `displaced`.
    Renamed {
        from: PathBuf,
        to: PathBuf,
        displaced: Option<PathBuf>,
    },
    /// `RENAME_EXCHANGE` of two paths.
    Exchanged { a: PathBuf, b: PathBuf },
}

#[derive(Debug)]
struct Inode {
    /// Relative to the backing root; `None` once the file is gone for good.
    path: Option<PathBuf>,
    st_ino: u64,
}

enum Handle {
    File {
        ino: u64,
        file: Arc<File>,
    },
    Dir {
        entries: Vec<(u64, FileType, OsString)>,
    },
    Ctl,
}

#[derive(Default)]
struct State {
    inodes: HashMap<u64, Inode>,
    by_st: HashMap<u64, u64>,
    next_ino: u64,
    caches: HashMap<u64, FileCache>,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    journal: Vec<Op>,
    next_trash: u64,
    status: Status,
}

/// What the filesystem and its controllers share: the state and the faults.
pub struct Shared {
    root: PathBuf,
    settings: Settings,
    state: Mutex<State>,
    full: AtomicBool,
    slow_us: AtomicU64,
}

/// The FUSE filesystem (hand it to a session; control it through
/// [`LazyFs::shared`]).
pub struct LazyFs {
    shared: Arc<Shared>,
}

fn errno(e: std::io::Error) -> Errno {
    Errno::from(e)
}

fn kind_of(m: &Metadata) -> FileType {
    let t = m.file_type();
    if t.is_dir() {
        FileType::Directory
    } else if t.is_symlink() {
        FileType::Symlink
    } else if t.is_fifo() {
        FileType::NamedPipe
    } else if t.is_socket() {
        FileType::Socket
    } else if t.is_char_device() {
        FileType::CharDevice
    } else if t.is_block_device() {
        FileType::BlockDevice
    } else {
        FileType::RegularFile
    }
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn attr(ino: u64, m: &Metadata, size: Option<u64>) -> FileAttr {
    let size = size.unwrap_or(m.size());
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: m.blocks().max(size.div_ceil(512)),
        atime: time(m.atime(), m.atime_nsec()),
        mtime: time(m.mtime(), m.mtime_nsec()),
        ctime: time(m.ctime(), m.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind: kind_of(m),
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev() as u32,
        blksize: 4096,
        flags: 0,
    }
}

fn ctl_attr() -> FileAttr {
    FileAttr {
        ino: INodeNo(CTL_INO),
        size: 0,
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: FileType::RegularFile,
        perm: 0o600,
        nlink: 1,
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// Replaces the prefix `from` of `p` by `to`, if `p` is `from` or under it.
fn moved(p: &Path, from: &Path, to: &Path) -> Option<PathBuf> {
    let rest = p.strip_prefix(from).ok()?;
    Some(if rest.as_os_str().is_empty() {
        to.to_path_buf()
    } else {
        to.join(rest)
    })
}

fn renameat2(from: &Path, to: &Path, flags: u32) -> std::io::Result<()> {
    use std::ffi::CString;
    let f = CString::new(from.as_os_str().as_bytes())?;
    let t = CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: two valid NUL-terminated paths, AT_FDCWD for both.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            flags as libc::c_uint,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn remove_any(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl State {
    fn path(&self, ino: u64) -> Result<PathBuf, Errno> {
        if ino == u64::from(INodeNo::ROOT) {
            return Ok(PathBuf::new());
        }
        self.inodes
            .get(&ino)
            .and_then(|i| i.path.clone())
            .ok_or(Errno::ENOENT)
    }

    /// The inode number of the backing file `m` at `path`.
    fn ino_for(&mut self, path: &Path, m: &Metadata) -> u64 {
        if path.as_os_str().is_empty() {
            return u64::from(INodeNo::ROOT);
        }
        if let Some(&ino) = self.by_st.get(&m.ino()) {
            if let Some(i) = self.inodes.get_mut(&ino) {
                i.path = Some(path.to_path_buf());
                return ino;
            }
        }
        let ino = self.next_ino.max(CTL_INO + 1);
        self.next_ino = ino + 1;
        self.inodes.insert(
            ino,
            Inode {
                path: Some(path.to_path_buf()),
                st_ino: m.ino(),
            },
        );
        self.by_st.insert(m.ino(), ino);
        ino
    }

    /// Every inode at or under `from` now lives at or under `to`.
    fn move_paths(&mut self, from: &Path, to: &Path) {
        for i in self.inodes.values_mut() {
            if let Some(p) = &i.path {
                if let Some(n) = moved(p, from, to) {
                    i.path = Some(n);
                }
            }
        }
    }

    /// Every inode at or under `path` is gone for good.
    fn forget_paths(&mut self, path: &Path) {
        let mut gone = Vec::new();
        for (&ino, i) in self.inodes.iter_mut() {
            if i.path.as_deref().is_some_and(|p| p.starts_with(path)) {
                i.path = None;
                gone.push((ino, i.st_ino));
            }
        }
        for (ino, st) in gone {
            if self.by_st.get(&st) == Some(&ino) {
                self.by_st.remove(&st);
            }
            if !self
                .handles
                .values()
                .any(|h| matches!(h, Handle::File { ino: i, .. } if *i == ino))
            {
                self.caches.remove(&ino);
            }
        }
    }

    fn new_fh(&mut self, h: Handle) -> u64 {
        self.next_fh += 1;
        self.handles.insert(self.next_fh, h);
        self.next_fh
    }

    fn dirty_bytes(&self) -> u64 {
        self.caches.values().map(FileCache::dirty_bytes).sum()
    }
}

impl Shared {
    fn abs(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn trash_path(&self, st: &mut State) -> PathBuf {
        st.next_trash += 1;
        Path::new(TRASH_NAME).join(st.next_trash.to_string())
    }

    /// The latency of disk-slow, slept before writes and fsyncs.
    fn slow(&self) {
        let us = self.slow_us.load(Ordering::Relaxed);
        if us > 0 {
            std::thread::sleep(Duration::from_micros(us));
        }
    }

    fn full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    /// Makes every pending namespace change durable (a journal commit):
    /// what they removed is deleted for good.
    fn commit(&self, st: &mut State) {
        for op in std::mem::take(&mut st.journal) {
            let trash = match op {
                Op::Removed { trash, .. } => Some(trash),
                Op::Renamed { displaced, .. } => displaced,
                _ => None,
            };
            if let Some(t) = trash {
                let _ = remove_any(&self.abs(&t));
                st.forget_paths(&t);
            }
        }
    }

    /// Writes inode `ino`'s cache to its backing file through `file` (or a
    /// descriptor opened for it). The data is then durable.
    fn flush(&self, st: &mut State, ino: u64, file: Option<&File>) -> Result<(), Errno> {
        let Some(cache) = st.caches.get_mut(&ino) else {
            return Ok(());
        };
        if cache.is_clean() {
            return Ok(());
        }
        let writable = file.filter(|f| {
            // SAFETY: F_GETFL on a descriptor we own.
            let fl = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(*f), libc::F_GETFL) };
            fl >= 0 && (fl & libc::O_ACCMODE) != libc::O_RDONLY
        });
        let opened;
        let f = match writable {
            Some(f) => f,
            None => {
                let path = st
                    .inodes
                    .get(&ino)
                    .and_then(|i| i.path.clone())
                    .ok_or(Errno::ENOENT)?;
                opened = OpenOptions::new()
                    .write(true)
                    .open(self.abs(&path))
                    .map_err(errno)?;
                &opened
            }
        };
        let cache = st.caches.get_mut(&ino).expect("checked above");
        cache.flush(f).map_err(errno)
    }

    /// Writes the largest dirty file back when the dirty bytes exceed the limit.
    fn write_back_if_needed(&self, st: &mut State) {
        if self.settings.max_dirty == 0 || st.dirty_bytes() <= self.settings.max_dirty {
            return;
        }
        let biggest = st
            .caches
            .iter()
            .max_by_key(|(_, c)| c.dirty_bytes())
            .map(|(&ino, _)| ino);
        if let Some(ino) = biggest {
            let _ = self.flush(st, ino, None);
            st.status.written_back += 1;
        }
    }

    /// A power loss: every unsynced write, truncation and namespace change
    /// is forgotten; the backing directory is what was fsynced.
    pub fn crash(&self) -> Result<(), String> {
        let mut st = self.lock();
        let dropped: u64 = st.dirty_bytes();
        st.caches.clear();
        let ops = std::mem::take(&mut st.journal);
        let undone = ops.len() as u64;
        let mut errors = Vec::new();
        for op in ops.into_iter().rev() {
            let r = match &op {
                Op::Created(p) => {
                    let r = std::fs::remove_file(self.abs(p));
                    st.forget_paths(p);
                    r
                }
                Op::Mkdir(p) => {
                    let r = remove_any(&self.abs(p));
                    st.forget_paths(p);
                    r
                }
                Op::Removed { path, trash } => {
                    let r = std::fs::rename(self.abs(trash), self.abs(path));
                    st.move_paths(trash, path);
                    r
                }
                Op::Renamed {
                    from,
                    to,
                    displaced,
                } => {
                    let mut r = std::fs::rename(self.abs(to), self.abs(from));
                    st.move_paths(to, from);
                    if let Some(d) = displaced {
                        r = r.and(std::fs::rename(self.abs(d), self.abs(to)));
                        st.move_paths(d, to);
                    }
                    r
                }
                Op::Exchanged { a, b } => {
                    let r = renameat2(&self.abs(a), &self.abs(b), libc::RENAME_EXCHANGE);
                    swap_paths(&mut st, a, b);
                    r
                }
            };
            if let Err(e) = r {
                errors.push(format!("undo {op:?}: {e}"));
            }
        }
        // Whatever is left in the trash belonged to undone removals only.
        let _ = remove_any(&self.abs(Path::new(TRASH_NAME)));
        let _ = std::fs::create_dir(self.abs(Path::new(TRASH_NAME)));
        st.status.crashes += 1;
        st.status.last_dropped_bytes = dropped;
        st.status.last_undone_ops = undone;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// Writes to the disk fail with ENOSPC while `on`.
    pub fn set_full(&self, on: bool) {
        self.full.store(on, Ordering::Relaxed);
    }

    /// Writes and fsyncs take `latency` longer (zero: no delay).
    pub fn set_slow(&self, latency: Duration) {
        self.slow_us
            .store(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// Counters and the faults in force.
    pub fn status(&self) -> Status {
        let st = self.lock();
        Status {
            dirty_bytes: st.dirty_bytes(),
            pending_ops: st.journal.len() as u64,
            full: self.full(),
            slow_ms: self.slow_us.load(Ordering::Relaxed) / 1000,
            ..st.status.clone()
        }
    }

    /// Runs a control command.
    pub fn execute(&self, cmd: &Command) -> Result<(), String> {
        match cmd {
            Command::Crash => self.crash(),
            Command::Full(on) => {
                self.set_full(*on);
                Ok(())
            }
            Command::Slow(d) => {
                self.set_slow(*d);
                Ok(())
            }
        }
    }
}

fn swap_paths(st: &mut State, a: &Path, b: &Path) {
    let tmp = Path::new("\0swap");
    st.move_paths(a, tmp);
    st.move_paths(b, a);
    st.move_paths(tmp, b);
}

impl LazyFs {
    /// A lazy filesystem over the backing directory `root` (which must exist).
    pub fn new(root: &Path, settings: Settings) -> std::io::Result<LazyFs> {
        let root = std::path::absolute(root)?;
        if !root.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("backing directory {} does not exist", root.display()),
            ));
        }
        // A trash left by an earlier session holds nothing durable.
        let trash = root.join(TRASH_NAME);
        remove_any(&trash)?;
        std::fs::create_dir(&trash)?;
        Ok(LazyFs {
            shared: Arc::new(Shared {
                root,
                settings,
                state: Mutex::new(State {
                    next_ino: CTL_INO + 1,
                    ..State::default()
                }),
                full: AtomicBool::new(false),
                slow_us: AtomicU64::new(0),
            }),
        })
    }

    /// The handle controllers keep (crash, faults, status).
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    fn entry(&self, st: &mut State, path: &Path) -> Result<FileAttr, Errno> {
        let m = std::fs::symlink_metadata(self.shared.abs(path)).map_err(errno)?;
        let ino = st.ino_for(path, &m);
        let size = st.caches.get(&ino).map(FileCache::size);
        Ok(attr(ino, &m, size))
    }

    fn hidden(parent: INodeNo, name: &OsStr) -> bool {
        parent == INodeNo::ROOT && name == TRASH_NAME
    }

    fn child(&self, st: &State, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        if parent == INodeNo::ROOT && (name == CTL_NAME || name == TRASH_NAME) {
            return Err(Errno::EPERM);
        }
        Ok(st.path(parent.0)?.join(name))
    }

    fn open_backing(&self, path: &Path, flags: i32) -> std::io::Result<File> {
        let abs = self.shared.abs(path);
        // Read and write whatever the caller asked for: the cache needs to
        // read, and an fsync through a read-only descriptor must flush.
        let extra = flags
            & !(libc::O_ACCMODE | libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_APPEND);
        match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(extra & (libc::O_NOFOLLOW | libc::O_CLOEXEC))
            .open(&abs)
        {
            Ok(f) => Ok(f),
            Err(_) => OpenOptions::new().read(true).open(&abs),
        }
    }
}

impl Filesystem for LazyFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(1 << 20);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent == INodeNo::ROOT && name == CTL_NAME {
            return reply.entry(&TTL, &ctl_attr(), Generation(0));
        }
        if Self::hidden(parent, name) {
            return reply.error(Errno::ENOENT);
        }
        let mut st = self.shared.lock();
        let r = st
            .path(parent.0)
            .and_then(|p| self.entry(&mut st, &p.join(name)));
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino.0 == CTL_INO {
            return reply.attr(&TTL, &ctl_attr());
        }
        let st = self.shared.lock();
        let m = match fh.and_then(|h| st.handles.get(&h.0)) {
            Some(Handle::File { file, .. }) => file.metadata(),
            _ => match st.path(ino.0) {
                Ok(p) => std::fs::symlink_metadata(self.shared.abs(&p)),
                Err(e) => return reply.error(e),
            },
        };
        match m {
            Ok(m) => {
                let size = st.caches.get(&ino.0).map(FileCache::size);
                reply.attr(&TTL, &attr(ino.0, &m, size))
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        if ino.0 == CTL_INO {
            return reply.attr(&TTL, &ctl_attr());
        }
        let mut st = self.shared.lock();
        let path = match st.path(ino.0) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let abs = self.shared.abs(&path);
        let r = (|| -> Result<(), Errno> {
            if let Some(mode) = mode {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&abs, std::fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(errno)?;
            }
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::lchown(&abs, uid, gid).map_err(errno)?;
            }
            if atime.is_some() || mtime.is_some() {
                let ts = |t: Option<TimeOrNow>| match t {
                    None => nix::sys::time::TimeSpec::new(0, libc::UTIME_OMIT),
                    Some(TimeOrNow::Now) => nix::sys::time::TimeSpec::new(0, libc::UTIME_NOW),
                    Some(TimeOrNow::SpecificTime(t)) => {
                        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
                        nix::sys::time::TimeSpec::new(d.as_secs() as i64, d.subsec_nanos() as i64)
                    }
                };
                nix::sys::stat::utimensat(
                    nix::fcntl::AT_FDCWD,
                    &abs,
                    &ts(atime),
                    &ts(mtime),
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )
                .map_err(|e| Errno::from_i32(e as i32))?;
            }
            if let Some(size) = size {
                let current = match st.caches.get(&ino.0) {
                    Some(c) => c.size(),
                    None => std::fs::metadata(&abs).map_err(errno)?.len(),
                };
                if size > current && self.shared.full() {
                    return Err(Errno::ENOSPC);
                }
                st.caches
                    .entry(ino.0)
                    .or_insert_with(|| FileCache::new(current))
                    .truncate(size);
            }
            Ok(())
        })();
        if let Err(e) = r {
            return reply.error(e);
        }
        match self.entry(&mut st, &path) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let st = self.shared.lock();
        match st
            .path(ino.0)
            .and_then(|p| std::fs::read_link(self.shared.abs(&p)).map_err(errno))
        {
            Ok(t) => reply.data(t.as_os_str().as_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(Errno::EPERM);
        }
        if self.shared.full() {
            return reply.error(Errno::ENOSPC);
        }
        let mut st = self.shared.lock();
        let r = self.child(&st, parent, name).and_then(|p| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode & 0o7777 & !umask)
                .open(self.shared.abs(&p))
                .map_err(errno)?;
            st.journal.push(Op::Created(p.clone()));
            self.entry(&mut st, &p)
        });
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        if self.shared.full() {
            return reply.error(Errno::ENOSPC);
        }
        let mut st = self.shared.lock();
        let r = self.child(&st, parent, name).and_then(|p| {
            std::fs::DirBuilder::new()
                .mode(mode & 0o7777 & !umask)
                .create(self.shared.abs(&p))
                .map_err(errno)?;
            st.journal.push(Op::Mkdir(p.clone()));
            self.entry(&mut st, &p)
        });
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, false, reply)
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, true, reply)
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        if self.shared.full() {
            return reply.error(Errno::ENOSPC);
        }
        let mut st = self.shared.lock();
        let r = self.child(&st, parent, link_name).and_then(|p| {
            std::os::unix::fs::symlink(target, self.shared.abs(&p)).map_err(errno)?;
            st.journal.push(Op::Created(p.clone()));
            self.entry(&mut st, &p)
        });
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut st = self.shared.lock();
        match self.rename_locked(&mut st, parent, name, newparent, newname, flags) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut st = self.shared.lock();
        if ino.0 == CTL_INO {
            let fh = st.new_fh(Handle::Ctl);
            return reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO);
        }
        let r = st
            .path(ino.0)
            .and_then(|p| self.open_backing(&p, flags.0).map_err(errno));
        match r {
            Ok(f) => {
                let fh = st.new_fh(Handle::File {
                    ino: ino.0,
                    file: Arc::new(f),
                });
                // No FOPEN_KEEP_CACHE: the kernel drops its cached pages of
                // the file at each open (after a crash, they are stale); no
                // FOPEN_DIRECT_IO, so that the file can be mmapped.
                reply.opened(FileHandle(fh), FopenFlags::empty())
            }
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let st = self.shared.lock();
        match st.handles.get(&fh.0) {
            Some(Handle::Ctl) => {
                drop(st);
                let text = self.shared.status().to_string();
                let b = text.as_bytes();
                let from = (offset as usize).min(b.len());
                let to = (from + size as usize).min(b.len());
                reply.data(&b[from..to])
            }
            Some(Handle::File { file, .. }) => {
                let r = match st.caches.get(&ino.0) {
                    Some(c) => c.read(file.as_ref(), offset, size as usize),
                    None => {
                        use std::os::unix::fs::FileExt;
                        let mut buf = vec![0u8; size as usize];
                        let mut got = 0;
                        loop {
                            match file.read_at(&mut buf[got..], offset + got as u64) {
                                Ok(0) => break,
                                Ok(n) => {
                                    got += n;
                                    if got == buf.len() {
                                        break;
                                    }
                                }
                                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                                Err(e) => return reply.error(errno(e)),
                            }
                        }
                        buf.truncate(got);
                        Ok(buf)
                    }
                };
                match r {
                    Ok(d) => reply.data(&d),
                    Err(e) => reply.error(errno(e)),
                }
            }
            _ => reply.error(Errno::EBADF),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        if ino.0 == CTL_INO {
            let r = std::str::from_utf8(data)
                .map_err(|e| e.to_string())
                .and_then(|s| s.trim().parse::<Command>())
                .and_then(|c| self.shared.execute(&c));
            return match r {
                Ok(()) => reply.written(data.len() as u32),
                Err(e) => {
                    eprintln!("lazyfs: control: {e}");
                    reply.error(Errno::EINVAL)
                }
            };
        }
        self.shared.slow();
        if self.shared.full() {
            return reply.error(Errno::ENOSPC);
        }
        let mut st = self.shared.lock();
        let file = match st.handles.get(&fh.0) {
            Some(Handle::File { file, .. }) => file.clone(),
            _ => return reply.error(Errno::EBADF),
        };
        let cache = match st.caches.get_mut(&ino.0) {
            Some(c) => c,
            None => {
                let len = match file.metadata() {
                    Ok(m) => m.len(),
                    Err(e) => return reply.error(errno(e)),
                };
                st.caches.entry(ino.0).or_insert(FileCache::new(len))
            }
        };
        match cache.write(file.as_ref(), offset, data) {
            Ok(()) => {
                self.shared.write_back_if_needed(&mut st);
                reply.written(data.len() as u32)
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close() makes nothing durable.
        reply.ok()
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.shared.lock().handles.remove(&fh.0);
        reply.ok()
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        if ino.0 == CTL_INO {
            return reply.ok();
        }
        self.shared.slow();
        let mut st = self.shared.lock();
        self.shared.commit(&mut st);
        let file = match st.handles.get(&fh.0) {
            Some(Handle::File { file, .. }) => Some(file.clone()),
            _ => None,
        };
        let r = self.shared.flush(&mut st, ino.0, file.as_deref());
        st.status.fsyncs += 1;
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let mut st = self.shared.lock();
        let path = match st.path(ino.0) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let rd = match std::fs::read_dir(self.shared.abs(&path)) {
            Ok(rd) => rd,
            Err(e) => return reply.error(errno(e)),
        };
        let mut entries = vec![
            (ino.0, FileType::Directory, OsString::from(".")),
            (ino.0, FileType::Directory, OsString::from("..")),
        ];
        for e in rd.flatten() {
            let name = e.file_name();
            if ino == INodeNo::ROOT && name == TRASH_NAME {
                continue;
            }
            let p = path.join(&name);
            if let Ok(m) = e.metadata() {
                let child = st.ino_for(&p, &m);
                entries.push((child, kind_of(&m), name));
            }
        }
        let fh = st.new_fh(Handle::Dir { entries });
        reply.opened(FileHandle(fh), FopenFlags::empty())
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let st = self.shared.lock();
        let Some(Handle::Dir { entries }) = st.handles.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok()
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.shared.lock().handles.remove(&fh.0);
        reply.ok()
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.shared.slow();
        let mut st = self.shared.lock();
        self.shared.commit(&mut st);
        st.status.fsyncs += 1;
        reply.ok()
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match nix::sys::statvfs::statvfs(&self.shared.root) {
            Ok(s) => {
                let (bfree, bavail) = if self.shared.full() {
                    (0, 0)
                } else {
                    (s.blocks_free(), s.blocks_available())
                };
                reply.statfs(
                    s.blocks(),
                    bfree,
                    bavail,
                    s.files(),
                    s.files_free(),
                    s.block_size() as u32,
                    s.name_max() as u32,
                    s.fragment_size() as u32,
                )
            }
            Err(e) => reply.error(Errno::from_i32(e as i32)),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        if ino.0 == CTL_INO {
            return reply.ok();
        }
        let st = self.shared.lock();
        let r = st.path(ino.0).and_then(|p| {
            nix::unistd::access(
                &self.shared.abs(&p),
                nix::unistd::AccessFlags::from_bits_truncate(mask.bits()),
            )
            .map_err(|e| Errno::from_i32(e as i32))
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        if self.shared.full() {
            return reply.error(Errno::ENOSPC);
        }
        let mut st = self.shared.lock();
        let r = self.child(&st, parent, name).and_then(|p| {
            let abs = self.shared.abs(&p);
            let created = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(mode & 0o7777 & !umask)
                .open(&abs);
            let file = match created {
                Ok(f) => {
                    st.journal.push(Op::Created(p.clone()));
                    f
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if flags & libc::O_EXCL != 0 {
                        return Err(Errno::EEXIST);
                    }
                    self.open_backing(&p, flags).map_err(errno)?
                }
                Err(e) => return Err(errno(e)),
            };
            let a = self.entry(&mut st, &p)?;
            if flags & libc::O_TRUNC != 0 && a.size > 0 {
                st.caches
                    .entry(a.ino.0)
                    .or_insert_with(|| FileCache::new(a.size))
                    .truncate(0);
            }
            let a = self.entry(&mut st, &p)?;
            let fh = st.new_fh(Handle::File {
                ino: a.ino.0,
                file: Arc::new(file),
            });
            Ok((a, fh))
        });
        match r {
            Ok((a, fh)) => {
                reply.created(&TTL, &a, Generation(0), FileHandle(fh), FopenFlags::empty())
            }
            Err(e) => reply.error(e),
        }
    }
}

impl LazyFs {
    fn remove(&self, parent: INodeNo, name: &OsStr, dir: bool, reply: ReplyEmpty) {
        let mut st = self.shared.lock();
        let r = self.child(&st, parent, name).and_then(|p| {
            let abs = self.shared.abs(&p);
            let m = std::fs::symlink_metadata(&abs).map_err(errno)?;
            if dir {
                if !m.is_dir() {
                    return Err(Errno::ENOTDIR);
                }
                if std::fs::read_dir(&abs).map_err(errno)?.next().is_some() {
                    return Err(Errno::ENOTEMPTY);
                }
            } else if m.is_dir() {
                return Err(Errno::EISDIR);
            }
            let trash = self.shared.trash_path(&mut st);
            std::fs::rename(&abs, self.shared.abs(&trash)).map_err(errno)?;
            st.move_paths(&p, &trash);
            st.journal.push(Op::Removed { path: p, trash });
            Ok(())
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename_locked(
        &self,
        st: &mut State,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        let from = self.child(st, parent, name)?;
        let to = self.child(st, newparent, newname)?;
        let (fa, ta) = (self.shared.abs(&from), self.shared.abs(&to));
        let fm = std::fs::symlink_metadata(&fa).map_err(errno)?;
        if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            renameat2(&fa, &ta, libc::RENAME_EXCHANGE).map_err(errno)?;
            swap_paths(st, &from, &to);
            st.journal.push(Op::Exchanged { a: from, b: to });
            return Ok(());
        }
        if flags.contains(RenameFlags::RENAME_WHITEOUT) {
            return Err(Errno::EINVAL);
        }
        let displaced = match std::fs::symlink_metadata(&ta) {
            Ok(tm) => {
                if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                    return Err(Errno::EEXIST);
                }
                if tm.ino() == fm.ino() && tm.dev() == fm.dev() {
                    return Ok(()); // the same file: nothing to do
                }
                match (fm.is_dir(), tm.is_dir()) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) if std::fs::read_dir(&ta).map_err(errno)?.next().is_some() => {
                        return Err(Errno::ENOTEMPTY);
                    }
                    _ => {}
                }
                let trash = self.shared.trash_path(st);
                std::fs::rename(&ta, self.shared.abs(&trash)).map_err(errno)?;
                Some(trash)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(errno(e)),
        };
        if let Err(e) = std::fs::rename(&fa, &ta) {
            if let Some(t) = &displaced {
                let _ = std::fs::rename(self.shared.abs(t), &ta);
            }
            return Err(errno(e));
        }
        if let Some(t) = &displaced {
            st.move_paths(&to, t);
        }
        st.move_paths(&from, &to);
        st.journal.push(Op::Renamed {
            from,
            to,
            displaced,
        });
        Ok(())
    }
}
