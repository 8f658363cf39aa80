//! The lazy filesystem on real FUSE mounts: what survives a crash, what
//! does not, and the disk faults. These need `/dev/fuse` (and root or
//! fusermount3): without it they fail, naming what is missing.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gregor_lazyfs::{mount, Mounted, Settings};

struct Disk {
    _dir: tempfile::TempDir,
    backing: PathBuf,
    m: Mounted,
}

impl Disk {
    fn new() -> Disk {
        if let Err(e) = gregor_lazyfs::check_available() {
            panic!("this test needs FUSE: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let backing = dir.path().join("backing");
        let mnt = dir.path().join("mnt");
        fs::create_dir(&backing).unwrap();
        fs::create_dir(&mnt).unwrap();
        let m = mount(&backing, &mnt, Settings::default())
            .unwrap_or_else(|e| panic!("this test needs FUSE mounts: {e}"));
        Disk {
            _dir: dir,
            backing,
            m,
        }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.m.mountpoint().join(rel)
    }

    fn crash(&self) {
        self.m.crash().unwrap();
    }
}

fn fsync_dir(p: &Path) {
    File::open(p).unwrap().sync_all().unwrap();
}

#[test]
fn fuse_is_available_on_this_machine() {
    // Fails (not skips) where /dev/fuse is missing: CI must have it.
    gregor_lazyfs::check_available().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn fsynced_data_survives_a_crash() {
    let d = Disk::new();
    let mut f = File::create(d.p("seg.log")).unwrap();
    f.write_all(b"durable").unwrap();
    f.sync_all().unwrap();
    drop(f);
    d.crash();
    assert_eq!(fs::read(d.p("seg.log")).unwrap(), b"durable");
    assert_eq!(fs::read(d.backing.join("seg.log")).unwrap(), b"durable");
}

#[test]
fn a_crash_drops_writes_that_were_not_fsynced_and_reads_before_it_see_them() {
    let d = Disk::new();
    let mut f = File::create(d.p("seg.log")).unwrap();
    f.write_all(b"first ").unwrap();
    f.sync_data().unwrap();
    f.write_all(b"second").unwrap();
    // the writer and another reader see the unsynced write
    f.seek(SeekFrom::Start(0)).unwrap();
    assert_eq!(fs::read(d.p("seg.log")).unwrap(), b"first second");
    assert_eq!(fs::metadata(d.p("seg.log")).unwrap().len(), 12);
    // the backing file has only what was fsynced
    assert_eq!(fs::read(d.backing.join("seg.log")).unwrap(), b"first ");
    // an overwrite inside the synced part is lost too
    f.write_all_at(b"FIRST", 0).unwrap();
    assert_eq!(fs::read(d.p("seg.log")).unwrap(), b"FIRST second");
    let st = d.m.control().status().unwrap();
    assert!(st.dirty_bytes > 0, "{st:?}");
    drop(f);
    d.crash();
    assert_eq!(fs::read(d.p("seg.log")).unwrap(), b"first ");
    let st = d.m.control().status().unwrap();
    assert_eq!((st.crashes, st.dirty_bytes), (1, 0), "{st:?}");
    assert!(st.last_dropped_bytes > 0, "{st:?}");
}

#[test]
fn a_file_created_and_never_fsynced_is_gone_after_a_crash() {
    let d = Disk::new();
    fs::create_dir(d.p("topic-0")).unwrap();
    fs::write(d.p("topic-0/00.log"), b"lost").unwrap();
    assert!(d.backing.join("topic-0/00.log").exists(), "created at once");
    d.crash();
    assert!(!d.p("topic-0").exists(), "un-fsynced mkdir undone");
    assert!(!d.backing.join("topic-0").exists());
    assert_eq!(fs::read_dir(d.m.mountpoint()).unwrap().count(), 0);
}

#[test]
fn a_created_file_committed_by_another_fsync_comes_back_empty() {
    // One journal, as ext4: any fsync commits the creation, but only the
    // fsynced file's own data is durable.
    let d = Disk::new();
    fs::write(d.p("unsynced"), b"data never fsynced").unwrap();
    let mut other = File::create(d.p("other")).unwrap();
    other.write_all(b"x").unwrap();
    other.sync_all().unwrap();
    d.crash();
    assert_eq!(fs::read(d.p("unsynced")).unwrap(), b"");
    assert_eq!(fs::read(d.p("other")).unwrap(), b"x");
}

#[test]
fn a_rename_made_durable_by_a_directory_fsync_survives_and_one_not_fsynced_is_undone() {
    let d = Disk::new();
    fs::create_dir(d.p("dir")).unwrap();
    for (name, body) in [
        ("dir/a.tmp", "new"),
        ("dir/a", "old"),
        ("dir/b.tmp", "bnew"),
        ("dir/b", "bold"),
    ] {
        let mut f = File::create(d.p(name)).unwrap();
        f.write_all(body.as_bytes()).unwrap();
        f.sync_all().unwrap();
    }
    fsync_dir(&d.p("dir"));
    // the atomic-replace pattern: rename over, then fsync the directory
    fs::rename(d.p("dir/a.tmp"), d.p("dir/a")).unwrap();
    fsync_dir(&d.p("dir"));
    // the same without the fsync
    fs::rename(d.p("dir/b.tmp"), d.p("dir/b")).unwrap();
    assert_eq!(fs::read(d.p("dir/b")).unwrap(), b"bnew");
    d.crash();
    assert_eq!(fs::read(d.p("dir/a")).unwrap(), b"new");
    assert!(!d.p("dir/a.tmp").exists());
    assert_eq!(
        fs::read(d.p("dir/b")).unwrap(),
        b"bold",
        "replaced file is back"
    );
    assert_eq!(fs::read(d.p("dir/b.tmp")).unwrap(), b"bnew");
}

#[test]
fn unlinks_and_truncations_not_fsynced_are_undone() {
    let d = Disk::new();
    let mut f = File::create(d.p("keep")).unwrap();
    f.write_all(&[7u8; 10_000]).unwrap();
    f.sync_all().unwrap();
    f.set_len(10).unwrap();
    assert_eq!(fs::metadata(d.p("keep")).unwrap().len(), 10);
    drop(f);
    fs::write(d.p("gone"), b"g").unwrap();
    File::open(d.p("gone")).unwrap().sync_all().unwrap();
    fs::remove_file(d.p("gone")).unwrap();
    assert!(!d.p("gone").exists());
    assert!(
        fs::read_dir(d.m.mountpoint()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".lazyfs")),
        "trash and control file are hidden"
    );
    d.crash();
    assert_eq!(fs::read(d.p("keep")).unwrap(), vec![7u8; 10_000]);
    assert_eq!(fs::read(d.p("gone")).unwrap(), b"g");
    // an fsync commits the unlink for good
    fs::remove_file(d.p("gone")).unwrap();
    File::open(d.p("keep")).unwrap().sync_all().unwrap();
    d.crash();
    assert!(!d.p("gone").exists());
}

#[test]
fn mmapped_writes_are_read_back_and_survive_only_when_synced() {
    use std::os::fd::AsRawFd;
    let d = Disk::new();
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(d.p("00.index"))
        .unwrap();
    f.set_len(8192).unwrap(); // as Kafka preallocates its indexes
    f.sync_all().unwrap();
    let len = 8192usize;
    // SAFETY: a shared mapping of a file we own, unmapped below.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(ptr, libc::MAP_FAILED, "{}", std::io::Error::last_os_error());
    // SAFETY: within the mapping.
    let page = unsafe { std::slice::from_raw_parts_mut(ptr as *mut u8, len) };
    page[..6].copy_from_slice(b"synced");
    // SAFETY: the mapping above.
    assert_eq!(unsafe { libc::msync(ptr, len, libc::MS_SYNC) }, 0);
    f.sync_all().unwrap();
    page[4096..4101].copy_from_slice(b"later");
    // SAFETY: the mapping above.
    unsafe { libc::munmap(ptr, len) };
    let mut back = vec![0u8; 8192];
    File::open(d.p("00.index"))
        .unwrap()
        .read_exact(&mut back)
        .unwrap();
    assert_eq!(
        &back[4096..4101],
        b"later",
        "the unsynced mmapped write reads back"
    );
    drop(f);
    d.crash();
    let back = fs::read(d.p("00.index")).unwrap();
    assert_eq!(back.len(), 8192);
    assert_eq!(&back[..6], b"synced");
    assert_eq!(
        &back[4096..4101],
        &[0u8; 5],
        "the unsynced mmapped write is lost"
    );
}

#[test]
fn disk_full_fails_writes_and_creates_with_enospc_until_healed() {
    let d = Disk::new();
    let mut f = File::create(d.p("log")).unwrap();
    f.write_all(b"ok").unwrap();
    d.m.control().set_full(true).unwrap();
    let e = f.write_all(b"more").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
    let e = File::create(d.p("new")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
    let e = fs::create_dir(d.p("newdir")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
    assert_eq!(
        nix::sys::statvfs::statvfs(d.m.mountpoint())
            .unwrap()
            .blocks_available(),
        0
    );
    // reads and fsyncs still work
    assert_eq!(fs::read(d.p("log")).unwrap(), b"ok");
    f.sync_all().unwrap();
    d.m.control().set_full(false).unwrap();
    f.write_all(b"more").unwrap();
    File::create(d.p("new")).unwrap();
    assert_eq!(fs::read(d.p("log")).unwrap(), b"okmore");
}

#[test]
fn disk_slow_adds_its_latency_to_writes_and_fsyncs() {
    let d = Disk::new();
    let mut f = File::create(d.p("log")).unwrap();
    d.m.control().set_slow(Duration::from_millis(100)).unwrap();
    assert_eq!(d.m.control().status().unwrap().slow_ms, 100);
    let t = Instant::now();
    f.write_all(b"x").unwrap();
    let write = t.elapsed();
    let t = Instant::now();
    f.sync_all().unwrap();
    let fsync = t.elapsed();
    assert!(write >= Duration::from_millis(100), "write took {write:?}");
    assert!(fsync >= Duration::from_millis(100), "fsync took {fsync:?}");
    d.m.control().set_slow(Duration::ZERO).unwrap();
    let t = Instant::now();
    for _ in 0..10 {
        f.write_all(b"y").unwrap();
    }
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "healed: {:?}",
        t.elapsed()
    );
}

#[test]
fn a_bad_control_command_is_refused() {
    let d = Disk::new();
    let e = fs::write(d.p(".lazyfs-ctl"), "explode\n").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
    fs::write(d.p(".lazyfs-ctl"), "full on\n").unwrap();
    assert!(d.m.control().status().unwrap().full);
}

#[test]
fn a_mount_is_listed_as_lazy_and_gone_once_unmounted() {
    let d = Disk::new();
    let mnt = d.m.mountpoint().to_path_buf();
    assert!(gregor_lazyfs::is_mounted(&mnt));
    assert_eq!(
        gregor_lazyfs::lazy_mounts_under(mnt.parent().unwrap()),
        vec![mnt.clone()]
    );
    assert!(!gregor_lazyfs::is_mounted(&d.backing));
    let Disk { _dir, m, .. } = d;
    m.unmount().unwrap();
    assert!(!gregor_lazyfs::is_mounted(&mnt));
    gregor_lazyfs::unmount(&mnt).unwrap(); // nothing mounted: nothing to do
}
