//! gregor-lazyfs: a FUSE filesystem that loses what was not fsynced, in the
//! spirit of LazyFS, for power-loss faults of Kafka brokers.
//!
//! A lazy filesystem passes through to a *backing directory* on the real
//! disk, but the backing directory only ever holds what was made durable.
//! Writes and truncations live in a per-file page cache in memory
//! ([`cache::FileCache`]) until the file is fsynced; namespace changes are
//! made in the backing directory at once but journaled with what undoes
//! them (a removed file is moved into a hidden trash) until an fsync
//! commits them. A **crash** ([`control::Command::Crash`]) drops the page
//! caches and undoes the journal, newest first: what is left is exactly
//! what was fsynced, as after a power loss. Until then, reads see
//! everything written (a process's own unsynced writes included).
//!
//! # What is durable when
//!
//! | change | durable after |
//! | --- | --- |
//! | file data (`write`, mmapped pages written back) | `fsync`/`fdatasync` of that file |
//! | file size (`truncate`, `ftruncate`, growth by writes) | `fsync`/`fdatasync` of that file |
//! | create, mkdir, symlink, unlink, rmdir, rename | the next `fsync`/`fdatasync` of **any** file or directory of the mount, in order |
//! | mode, owner, times | at once (not modeled) |
//!
//! Namespace changes follow a journaling filesystem (ext4, xfs): one
//! journal, committed whole by any fsync. So a new file whose directory
//! was never fsynced survives a crash if *anything* was fsynced after its
//! creation — but with only the data fsynced *for it* (a file created,
//! written and never fsynced comes back empty, as ext4's delayed
//! allocation does). A rename made durable by an fsync (of its directory,
//! or of anything else) survives; one not yet durable is undone by a
//! crash, and the file it replaced comes back. Hard links are not
//! supported (EPERM). `close()` makes nothing durable. The backing files
//! are not fsynced to the real disk themselves: the lazy filesystem
//! models a power loss of its own, not of the host.
//!
//! Dirty pages are written back (made durable) only when they exceed
//! [`Settings::max_dirty`] (default 1 GiB): the largest dirty file first,
//! as a kernel's writeback would. Unlike a kernel there is no periodic
//! writeback: what was not fsynced is lost however old it is, as in
//! LazyFS.
//!
//! # Faults and control
//!
//! Besides `crash`: **disk-full** (`full on`: writes, creates, mkdirs and
//! growing truncates fail with ENOSPC, statfs shows no free space) and
//! **disk-slow** (`slow MS`: every write and fsync waits MS milliseconds
//! first). They are commands written to the control file
//! [`CTL_NAME`] at the mount's root, hidden from listings ([`control`]),
//! so that any process controls a mount served by another: `gregor lazyfs
//! mount BACKING MOUNTPOINT` serves one until SIGTERM ([`mount::serve`]),
//! `gregor lazyfs ctl MOUNTPOINT crash` controls it.
//!
//! Files are opened without `direct_io` (so they can be mmapped, as Kafka
//! does its indexes) and without `keep_cache`: the kernel drops its cached
//! pages of a file at each open, and attributes and entries are never
//! cached, so that after a crash nothing stale shows. A crash first hands
//! the kernel's own dirty pages of the mount to the filesystem (`syncfs`,
//! [`control::Control::crash`]): a killed process's mmapped writes are as
//! unsynced as its other writes.
//!
//! A crash is meant to follow the death of every process using the disk
//! (gregor kills the broker first): a process that keeps a file open (or
//! mapped) across a crash may go on seeing the kernel's cached pages of it
//! until it opens the file again.

pub mod cache;
pub mod control;
pub mod fs;
pub mod mount;

pub use control::{Command, Control, Status};
pub use fs::{LazyFs, Settings, Shared};
pub use mount::{check_available, is_mounted, lazy_mounts_under, mount, serve, unmount, Mounted};

/// The control file at the mount's root (hidden from directory listings).
pub const CTL_NAME: &str = ".lazyfs-ctl";
/// Where removed files wait in the backing directory until a commit (hidden).
pub const TRASH_NAME: &str = ".lazyfs-trash";
/// The filesystem type in `/proc/mounts` when mounted through fusermount3
/// (mounted directly by root, the type is `fuse` and the source [`FS_NAME`]).
pub const FS_TYPE: &str = "fuse.lazyfs";
/// The source of a lazy mount in `/proc/mounts`.
pub const FS_NAME: &str = "gregor-lazyfs";

/// Errors mounting or controlling a lazy filesystem.
#[derive(Debug, thiserror::Error)]
pub enum LazyFsError {
    /// FUSE cannot be used here; the message names what is missing.
    #[error("FUSE is not available: {0}")]
    Unavailable(String),
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}
