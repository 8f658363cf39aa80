//! The control channel: one-line commands written to the control file
//! `<mount>/.lazyfs-ctl` (hidden from directory listings), the status read
//! from it, and [`Control`], the client any process uses.
//!
//! | command | effect |
//! | --- | --- |
//! | `crash` | forget everything not fsynced (a power loss) |
//! | `full on` / `full off` | writes and creates fail with ENOSPC while on |
//! | `slow MS` | writes and fsyncs take MS milliseconds longer (`slow 0`: off) |
//!
//! A bad command fails the write with EINVAL. Reading the file gives the
//! [`Status`] as `key=value` words on one line.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::CTL_NAME;

/// A control command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Crash,
    Full(bool),
    Slow(Duration),
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Crash => f.write_str("crash"),
            Command::Full(on) => write!(f, "full {}", if *on { "on" } else { "off" }),
            Command::Slow(d) => write!(f, "slow {}", d.as_millis()),
        }
    }
}

impl FromStr for Command {
    type Err = String;
    fn from_str(s: &str) -> Result<Command, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        match words.as_slice() {
            ["crash"] => Ok(Command::Crash),
            ["full", "on"] => Ok(Command::Full(true)),
            ["full", "off"] => Ok(Command::Full(false)),
            ["slow", ms] => ms
                .parse::<u64>()
                .map(|ms| Command::Slow(Duration::from_millis(ms)))
                .map_err(|_| format!("slow takes milliseconds, not {ms:?}")),
            _ => Err(format!(
                "unknown command {s:?}; use crash, full on|off, slow MS"
            )),
        }
    }
}

/// What a lazy filesystem holds and which faults are on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Bytes in dirty pages (written, not fsynced).
    pub dirty_bytes: u64,
    /// Namespace changes not yet made durable by an fsync.
    pub pending_ops: u64,
    pub full: bool,
    pub slow_ms: u64,
    /// fsync, fdatasync and directory fsync requests served.
    pub fsyncs: u64,
    pub crashes: u64,
    /// What the last crash forgot.
    pub last_dropped_bytes: u64,
    pub last_undone_ops: u64,
    /// Files written back because the dirty bytes passed the limit.
    pub written_back: u64,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "dirty-bytes={} pending-ops={} full={} slow-ms={} fsyncs={} crashes={} \
             last-dropped-bytes={} last-undone-ops={} written-back={}",
            self.dirty_bytes,
            self.pending_ops,
            if self.full { "on" } else { "off" },
            self.slow_ms,
            self.fsyncs,
            self.crashes,
            self.last_dropped_bytes,
            self.last_undone_ops,
            self.written_back
        )
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Status, String> {
        let mut st = Status::default();
        for word in s.split_whitespace() {
            let (k, v) = word
                .split_once('=')
                .ok_or_else(|| format!("status word {word:?} is not key=value"))?;
            let n = || {
                v.parse::<u64>()
                    .map_err(|_| format!("status {k}={v:?} is not a number"))
            };
            match k {
                "dirty-bytes" => st.dirty_bytes = n()?,
                "pending-ops" => st.pending_ops = n()?,
                "full" => st.full = v == "on",
                "slow-ms" => st.slow_ms = n()?,
                "fsyncs" => st.fsyncs = n()?,
                "crashes" => st.crashes = n()?,
                "last-dropped-bytes" => st.last_dropped_bytes = n()?,
                "last-undone-ops" => st.last_undone_ops = n()?,
                "written-back" => st.written_back = n()?,
                _ => {} // newer keys: ignored
            }
        }
        Ok(st)
    }
}

/// Controls the lazy filesystem mounted at a path, from any process.
#[derive(Clone, Debug)]
pub struct Control {
    mount: PathBuf,
}

impl Control {
    pub fn new(mount: &Path) -> Control {
        Control {
            mount: mount.to_path_buf(),
        }
    }

    fn ctl(&self) -> PathBuf {
        self.mount.join(CTL_NAME)
    }

    /// Sends one command.
    pub fn send(&self, cmd: &Command) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).open(self.ctl())?;
        f.write_all(format!("{cmd}\n").as_bytes())
    }

    /// A power loss of the disk: first the kernel's own dirty pages of the
    /// mount (a killed process's mmapped writes) are handed to the
    /// filesystem (`syncfs`), where they are as unsynced as any write;
    /// then everything not fsynced is forgotten.
    pub fn crash(&self) -> std::io::Result<()> {
        let dir = std::fs::File::open(&self.mount)?;
        // SAFETY: syncfs on a descriptor we own.
        if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.send(&Command::Crash)
    }

    pub fn set_full(&self, on: bool) -> std::io::Result<()> {
        self.send(&Command::Full(on))
    }

    pub fn set_slow(&self, latency: Duration) -> std::io::Result<()> {
        self.send(&Command::Slow(latency))
    }

    pub fn status(&self) -> std::io::Result<Status> {
        let text = std::fs::read_to_string(self.ctl())?;
        text.parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_and_bad_ones_say_what_is_accepted() {
        for c in [
            Command::Crash,
            Command::Full(true),
            Command::Full(false),
            Command::Slow(Duration::from_millis(250)),
        ] {
            assert_eq!(c.to_string().parse::<Command>().unwrap(), c);
        }
        let e = "explode".parse::<Command>().unwrap_err();
        assert!(e.contains("explode") && e.contains("slow MS"), "{e}");
        assert!("slow fast".parse::<Command>().is_err());
    }

    #[test]
    fn the_status_line_round_trips() {
        let s = Status {
            dirty_bytes: 8192,
            pending_ops: 3,
            full: true,
            slow_ms: 40,
            fsyncs: 7,
            crashes: 1,
            last_dropped_bytes: 4096,
            last_undone_ops: 2,
            written_back: 0,
        };
        assert_eq!(s.to_string().parse::<Status>().unwrap(), s);
    }
}
