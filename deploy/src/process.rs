//! Detached broker processes: start, identify, signal, reap.
//!
//! A broker is started in its own process group so that it survives the
//! harness being killed and so that signals reach every process it spawned.
//! Before any signal is sent, the process is identified by its pid *and*
//! its start time (field 22 of `/proc/PID/stat`, which does not change
//! across `exec`), so a recycled pid is never signalled.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::error::DeployError;

/// A command line ready to run: program, arguments, environment, working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Variables set for the child.
    pub env: Vec<(String, String)>,
    /// Variables removed from the inherited environment.
    pub env_remove: Vec<String>,
    pub cwd: PathBuf,
}

impl Launch {
    /// The command as a shell-like line, for logs and error messages.
    pub fn display(&self) -> String {
        let mut line = String::new();
        for (k, v) in &self.env {
            line.push_str(&format!("{k}={} ", shell_quote(v)));
        }
        line.push_str(&shell_quote(&self.program.to_string_lossy()));
        for arg in &self.args {
            line.push(' ');
            line.push_str(&shell_quote(arg));
        }
        line
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).current_dir(&self.cwd);
        for key in &self.env_remove {
            cmd.env_remove(key);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A running (or once running) process, identified beyond its pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_ticks: u64,
}

/// What `/proc` says about a pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// Not there, a zombie, or another process that reuses the pid.
    Gone,
    /// Stopped by SIGSTOP (or traced).
    Stopped,
    /// Anything else: running or sleeping.
    Running,
}

fn read_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

fn live_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// Start time of `pid`, if it exists.
pub fn start_ticks(pid: u32) -> Option<u64> {
    read_stat(pid).map(|(_, start)| start)
}

impl ProcessId {
    /// Collect the exit status if this is our child, so it does not linger as a zombie.
    pub fn reap(&self) -> Option<String> {
        match waitpid(Pid::from_raw(self.pid as i32), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => Some(format!("exit status {code}")),
            Ok(WaitStatus::Signaled(_, sig, _)) => Some(format!("killed by {sig}")),
            _ => None,
        }
    }

    /// State of the process, after reaping it if it is our exited child.
    pub fn state(&self) -> ProcState {
        let _ = self.reap();
        match read_stat(self.pid) {
            Some((_, start)) if start != self.start_ticks => ProcState::Gone,
            // A zombie group leader whose other threads are still exiting
            // still holds its sockets: gone only once it is the last thread.
            Some(('Z' | 'X' | 'x', _)) if live_threads(self.pid) > 1 => ProcState::Running,
            Some(('Z' | 'X' | 'x', _)) | None => ProcState::Gone,
            Some(('T' | 't', _)) => ProcState::Stopped,
            Some(_) => ProcState::Running,
        }
    }

    /// True while the very process we started exists (running or stopped).
    pub fn is_alive(&self) -> bool {
        self.state() != ProcState::Gone
    }

    /// Send `signal` to the process group this process leads.
    ///
    /// Does nothing (and returns `Ok(false)`) when the process is gone or the
    /// pid now belongs to someone else.
    pub fn signal(&self, node: &str, signal: Signal) -> Result<bool, DeployError> {
        if !self.is_alive() {
            return Ok(false);
        }
        match killpg(Pid::from_raw(self.pid as i32), signal) {
            Ok(()) => Ok(true),
            Err(nix::errno::Errno::ESRCH) => Ok(false),
            Err(source) => Err(DeployError::Signal {
                node: node.to_string(),
                pid: self.pid,
                signal: signal.to_string(),
                source,
            }),
        }
    }

    /// Wait until the process is gone; true if it went within `timeout`.
    pub fn wait_gone(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.is_alive() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL and wait again.
    pub fn terminate(&self, node: &str, grace: Duration) -> Result<(), DeployError> {
        if !self.is_alive() {
            return Ok(());
        }
        // A stopped process cannot act on SIGTERM until it is continued.
        if self.state() == ProcState::Stopped {
            self.signal(node, Signal::SIGCONT)?;
        }
        self.signal(node, Signal::SIGTERM)?;
        if self.wait_gone(grace) {
            return Ok(());
        }
        self.kill(node)
    }

    /// SIGKILL and wait until the process is gone.
    pub fn kill(&self, node: &str) -> Result<(), DeployError> {
        self.signal(node, Signal::SIGKILL)?;
        let secs = 10;
        if self.wait_gone(Duration::from_secs(secs)) {
            Ok(())
        } else {
            Err(DeployError::WontDie {
                node: node.to_string(),
                pid: self.pid,
                secs,
            })
        }
    }
}

/// Start `launch` detached (own process group, stdin closed), appending
/// stdout and stderr to `log`.
pub fn spawn_detached(node: &str, launch: &Launch, log: &Path) -> Result<ProcessId, DeployError> {
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| DeployError::io("create directory", parent, e))?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| DeployError::io("open log", log, e))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    writeln!(
        file,
        "=== gregor: starting {node} at unix time {now}: (cd {} && {})",
        launch.cwd.display(),
        launch.display()
    )
    .map_err(|e| DeployError::io("write log", log, e))?;
    let err_file = file
        .try_clone()
        .map_err(|e| DeployError::io("open log", log, e))?;
    let child = launch
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err_file))
        .process_group(0)
        .spawn()
        .map_err(|source| DeployError::Spawn {
            node: node.to_string(),
            program: launch.program.clone(),
            source,
        })?;
    let pid = child.id();
    // The child exists until we reap it, so its start time is readable.
    let start_ticks = start_ticks(pid).unwrap_or(0);
    Ok(ProcessId { pid, start_ticks })
}

/// The last `lines` lines of a log file (at most the last 64 KiB are read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(64 * 1024);
    let mut buf = Vec::new();
    if file.seek(SeekFrom::Start(from)).is_err() || file.read_to_end(&mut buf).is_err() {
        return format!("(cannot read {})", path.display());
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(dir: &Path) -> Launch {
        Launch {
            program: "sleep".into(),
            args: vec!["30".into()],
            env: vec![],
            env_remove: vec![],
            cwd: dir.to_path_buf(),
        }
    }

    #[test]
    fn a_detached_process_leads_its_own_group_and_can_be_stopped_and_killed() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("logs/sleep.log");
        let id = spawn_detached("sleeper", &sleeper(dir.path()), &log).unwrap();
        assert!(id.start_ticks > 0);
        let pgid = nix::unistd::getpgid(Some(Pid::from_raw(id.pid as i32))).unwrap();
        assert_eq!(pgid.as_raw() as u32, id.pid, "own process group");
        assert_eq!(id.state(), ProcState::Running);
        assert!(id.signal("sleeper", Signal::SIGSTOP).unwrap());
        let deadline = Instant::now() + Duration::from_secs(5);
        while id.state() != ProcState::Stopped && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(id.state(), ProcState::Stopped);
        id.terminate("sleeper", Duration::from_secs(5)).unwrap();
        assert_eq!(id.state(), ProcState::Gone);
        assert!(log_tail(&log, 5).contains("=== gregor: starting sleeper"));
    }

    #[test]
    fn a_recycled_pid_is_not_treated_as_our_process() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sleep.log");
        let id = spawn_detached("sleeper", &sleeper(dir.path()), &log).unwrap();
        let impostor = ProcessId {
            pid: id.pid,
            start_ticks: id.start_ticks + 1,
        };
        assert_eq!(impostor.state(), ProcState::Gone);
        assert!(
            !impostor.signal("impostor", Signal::SIGKILL).unwrap(),
            "no signal sent"
        );
        assert_eq!(
            id.state(),
            ProcState::Running,
            "the real process was not touched"
        );
        id.kill("sleeper").unwrap();
        assert!(!id.is_alive());
    }

    #[test]
    fn commands_are_displayed_with_quoting_for_copy_and_paste() {
        let launch = Launch {
            program: "/opt/kafka/bin/kafka-server-start.sh".into(),
            args: vec!["/tmp/a b/server.properties".into()],
            env: vec![("KAFKA_HEAP_OPTS".into(), "-Xmx512m -Xms512m".into())],
            env_remove: vec![],
            cwd: "/".into(),
        };
        assert_eq!(
            launch.display(),
            "KAFKA_HEAP_OPTS='-Xmx512m -Xms512m' /opt/kafka/bin/kafka-server-start.sh '/tmp/a b/server.properties'"
        );
    }

    #[test]
    fn log_tail_returns_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        std::fs::write(&path, "a\nb\nc\nd\n").unwrap();
        assert_eq!(log_tail(&path, 2), "c\nd");
        assert!(log_tail(&dir.path().join("missing"), 2).contains("no log"));
    }
}
