//! Client workers in a child process.
//!
//! The rdkafka clients run in a child (`gregor __clients`), which streams
//! its events as JSONL on stdout; the parent stamps them into the history
//! with the child's own times (both measure from the same monotonic time
//! zero). If the child dies — librdkafka 2.12.1 segfaults on some of
//! tansu's metadata answers, for one — the parent completes every open
//! invocation as `info` ("client process died"), exactly as a crashed
//! Jepsen client, and starts a new child whose process numbers and values
//! continue above the old ones. The nemesis, the history and the verdict
//! live on in the parent.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gregor_history::ops::Pairing;
use gregor_history::{Event, EventType, Key, Mop, Offset, Process, Recorder, Value};
use gregor_workloads::{run_workers_stallable, Progress, RunId};

use crate::plan::RunPlan;

/// CLOCK_MONOTONIC in nanoseconds (the clock `Instant` uses on Linux).
pub fn mono_ns() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    // CLOCK_MONOTONIC always exists on Linux: this cannot fail.
    let ts = clock_gettime(ClockId::CLOCK_MONOTONIC)
        .unwrap_or_else(|_| nix::sys::time::TimeSpec::new(0, 0));
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// Where the next child starts numbering, and what the workers learned.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub next_process: u64,
    pub next_value: u64,
    /// Highest offset any op saw per key.
    pub highest: BTreeMap<Key, Offset>,
    /// Every key used.
    pub max_key: Option<Key>,
    /// Children that died before being asked to stop.
    pub deaths: Vec<String>,
    /// Lines a child wrote that are not events (each copied into the
    /// clients' log with the reason; a child cut off mid-line writes one).
    pub unreadable: u64,
    /// A child exited 3: librdkafka refused the settings (logs/clients.log
    /// says what). The run is an error whatever its history shows.
    pub rejected_settings: bool,
}

impl Tally {
    fn learn(&mut self, e: &Event) {
        if let Process::Client(p) = e.process {
            self.next_process = self.next_process.max(p + 1);
        }
        let note = |h: &mut BTreeMap<Key, Offset>, k: Key, o: Offset| {
            let x = h.entry(k).or_insert(o);
            *x = (*x).max(o);
        };
        for m in e.mops() {
            match m {
                Mop::Send { key, value, offset } => {
                    self.next_value = self.next_value.max(value + 1);
                    self.max_key = Some(self.max_key.map_or(*key, |k| k.max(*key)));
                    if let (EventType::Ok, Some(o)) = (e.kind, offset) {
                        note(&mut self.highest, *key, *o);
                    }
                }
                Mop::Poll { reads: Some(r) } if e.kind == EventType::Ok => {
                    for (k, pairs) in r {
                        if let Some(o) = pairs.iter().map(|(o, _)| *o).max() {
                            note(&mut self.highest, *k, o);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// Commands to the client children, written to their stdin one per line
/// (`stall`, `resume`); closing stdin asks them to stop. A child started
/// while the consumers are stalled is told at once.
#[derive(Default)]
pub struct Control {
    stdin: Mutex<Option<ChildStdin>>,
    stalled: AtomicBool,
}

impl Control {
    /// Stalls (`true`) or resumes the workload's consumers: while stalled
    /// they do not poll (their ops that read are skipped), sends go on.
    pub fn set_stalled(&self, stalled: bool) -> std::io::Result<()> {
        self.stalled.store(stalled, Ordering::SeqCst);
        let mut slot = self.stdin.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_mut() {
            Some(stdin) => {
                stdin.write_all(if stalled { b"stall\n" } else { b"resume\n" })?;
                stdin.flush()
            }
            // No child yet (or between two): the next one is told at start.
            None => Ok(()),
        }
    }

    /// Whether the consumers are stalled now.
    pub fn is_stalled(&self) -> bool {
        self.stalled.load(Ordering::SeqCst)
    }

    fn attach(&self, mut stdin: ChildStdin) {
        if self.is_stalled() {
            let _ = stdin.write_all(b"stall\n");
            let _ = stdin.flush();
        }
        *self.stdin.lock().unwrap_or_else(|p| p.into_inner()) = Some(stdin);
    }

    fn close(&self) {
        self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// The parent's handle on the client children.
pub struct Clients {
    stop: Arc<AtomicBool>,
    stdin: Arc<Control>,
    supervisor: Option<std::thread::JoinHandle<Tally>>,
    /// The current child's pid, to kill it if it does not stop in time.
    pid: Arc<AtomicU32>,
    stop_grace: Duration,
}

/// How to start a child.
#[derive(Clone)]
pub struct ChildSpec {
    pub exe: PathBuf,
    /// The run plan (`scenario.yaml` of the run directory).
    pub plan: PathBuf,
    pub bootstrap: String,
    /// Names the run's topics and groups (see `gregor_workloads::runid`).
    pub run_id: RunId,
    pub time_zero_mono: u64,
    pub log: PathBuf,
    /// How long a child may take to finish its open ops once asked to stop
    /// before it is killed (they are then recorded as `info`): librdkafka
    /// calls that ought to time out have been seen blocking for minutes
    /// after a broker restart.
    pub stop_grace: Duration,
}

fn spawn_child(spec: &ChildSpec, tally: &Tally) -> std::io::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)?;
    Command::new(&spec.exe)
        .arg("__clients")
        .arg(&spec.plan)
        .arg("--bootstrap")
        .arg(&spec.bootstrap)
        .arg("--run-id")
        .arg(spec.run_id.as_str())
        .arg("--time-zero")
        .arg(spec.time_zero_mono.to_string())
        .arg("--first-process")
        .arg(tally.next_process.to_string())
        .arg("--first-value")
        .arg(tally.next_value.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
}

impl Clients {
    /// Starts the first child and a supervisor thread that relays its
    /// events into `rec` and replaces it if it dies.
    pub fn start(
        spec: ChildSpec,
        rec: Arc<Recorder>,
        progress: Arc<Progress>,
        first_process: u64,
    ) -> std::io::Result<Clients> {
        Self::start_with(spec, rec, progress, first_process, Arc::default())
    }

    /// [`Clients::start`] with a [`Control`] the caller keeps (e.g. for the
    /// nemesis to stall the consumers).
    pub fn start_with(
        spec: ChildSpec,
        rec: Arc<Recorder>,
        progress: Arc<Progress>,
        first_process: u64,
        control: Arc<Control>,
    ) -> std::io::Result<Clients> {
        let stop = Arc::new(AtomicBool::new(false));
        let stdin_slot = control;
        let tally = Tally {
            next_process: first_process,
            ..Default::default()
        };
        let mut child = spawn_child(&spec, &tally)?;
        if let Some(stdin) = child.stdin.take() {
            stdin_slot.attach(stdin);
        }
        let pid = Arc::new(AtomicU32::new(child.id()));
        let stop_grace = spec.stop_grace;
        let (st, slot, pid2) = (stop.clone(), stdin_slot.clone(), pid.clone());
        let supervisor = std::thread::Builder::new()
            .name("clients".into())
            .spawn(move || supervise(spec, child, rec, progress, st, slot, pid2, tally))?;
        Ok(Clients {
            stop,
            stdin: stdin_slot,
            supervisor: Some(supervisor),
            pid,
            stop_grace,
        })
    }

    /// Asks the children to finish their current ops and exit; returns the
    /// tally once the last one is gone.
    /// A child still running after `stop_grace` is killed (SIGKILL): its
    /// open ops are then recorded as `info`, as for a crashed child.
    pub fn stop(mut self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        self.stdin.close();
        let deadline = Instant::now() + self.stop_grace;
        while self.supervisor.as_ref().is_some_and(|h| !h.is_finished()) {
            if Instant::now() >= deadline {
                let pid = nix::unistd::Pid::from_raw(self.pid.load(Ordering::SeqCst) as i32);
                // Already gone is fine.
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.supervisor
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

fn relay(
    out: impl Read,
    rec: &Recorder,
    progress: &Progress,
    tally: &mut Tally,
    open: &mut Pairing<Event>,
    log: &Path,
) {
    // `at`: the line's position, which orders the invokes left open.
    for (at, line) in BufReader::new(out).lines().enumerate() {
        let Ok(line) = line else { break };
        let e = match Event::from_json(&line) {
            Ok(e) => e,
            Err(err) => {
                // Never dropped unseen: the line and why, in the clients' log.
                tally.unreadable += 1;
                let note = format!("gregor: a client line is not an event ({err}): {line}\n");
                if let Err(w) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .and_then(|mut f| f.write_all(note.as_bytes()))
                {
                    eprintln!("gregor: {} ({w})", note.trim_end());
                }
                continue;
            }
        };
        let time = e.time;
        tally.learn(&e);
        progress.note_reads(&e);
        // A displaced invoke never completes: the history says so itself.
        let _ = open.push_with(at, &e, Event::clone);
        if e.process.client().is_some() && e.kind != EventType::Invoke {
            progress.ops.fetch_add(1, Ordering::Relaxed);
            let c = match e.kind {
                EventType::Ok => &progress.ok,
                EventType::Fail => &progress.fail,
                _ => &progress.info,
            };
            if e.kind == EventType::Ok
                && e.f.has_mops()
                && progress.first_ok_ns.load(Ordering::Relaxed) == 0
            {
                progress.first_ok_ns.store(time.max(1), Ordering::Relaxed);
            }
            c.fetch_add(1, Ordering::Relaxed);
        }
        rec.log_at(e, time);
    }
}

#[allow(clippy::too_many_arguments)]
fn supervise(
    spec: ChildSpec,
    mut child: Child,
    rec: Arc<Recorder>,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    stdin_slot: Arc<Control>,
    pid: Arc<AtomicU32>,
    mut tally: Tally,
) -> Tally {
    loop {
        let mut open: Pairing<Event> = Pairing::new();
        if let Some(out) = child.stdout.take() {
            relay(out, &rec, &progress, &mut tally, &mut open, &spec.log);
        }
        let waited = child.wait();
        // Exit 3 is the child's own verdict on its input (bad settings):
        // starting it again would fail the same way.
        let config_error = waited.as_ref().is_ok_and(|s| s.code() == Some(3));
        let status = waited
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        let stopping = stop.load(Ordering::SeqCst);
        tally.rejected_settings |= config_error;
        if open.open_count() > 0 || !stopping {
            let why = format!("client process died ({status})");
            // The invokes the dead child left open never complete: each
            // is completed as `info`, in the order they were invoked.
            for pair in open.finish() {
                let Some(mut e) = pair.invoke.map(|i| i.data) else {
                    continue;
                };
                e.kind = EventType::Info;
                e.error = Some(why.clone());
                if let Value::Mops(m) = &mut e.value {
                    for x in m.iter_mut() {
                        if let Mop::Poll { reads } = x {
                            *reads = None;
                        }
                    }
                }
                rec.log(e);
            }
        }
        if stopping {
            return tally;
        }
        tally.deaths.push(status);
        if config_error {
            tally
                .deaths
                .push("not restarted: it rejected its settings (see logs/clients.log)".into());
            return tally;
        }
        // Process numbers of the dead child are never reused.
        tally.next_process += 1;
        std::thread::sleep(Duration::from_millis(200));
        match spawn_child(&spec, &tally) {
            Ok(mut c) => {
                if let Some(stdin) = c.stdin.take() {
                    stdin_slot.attach(stdin);
                }
                pid.store(c.id(), Ordering::SeqCst);
                if stop.load(Ordering::SeqCst) {
                    stdin_slot.close();
                }
                child = c;
            }
            Err(e) => {
                tally
                    .deaths
                    .push(format!("cannot restart the client process: {e}"));
                return tally;
            }
        }
    }
}

/// `gregor __clients PLAN --bootstrap B --run-id ID --time-zero NS
/// --first-process P --first-value V`: runs the workers until stdin closes,
/// events on stdout.
pub fn child_main(
    plan: &Path,
    bootstrap: &str,
    run_id: &str,
    time_zero: u64,
    first_process: u64,
    first_value: u64,
) -> i32 {
    // The run's plan as the parent resolved it: read, never resolved again.
    let s = match RunPlan::load(plan) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: the run plan {e}");
            return 3;
        }
    };
    let Some(run_id) = RunId::parse(run_id) else {
        eprintln!("error: bad run id {run_id:?}");
        return 3;
    };
    let settings = crate::run::client_settings(&s, bootstrap, &run_id);
    let mut wl = crate::run::workload_config(&s, settings, &run_id);
    wl.first_process = first_process;
    wl.gen.first_value = first_value;
    // Each child gets its own stream of choices, reproducible from the seed.
    wl.gen.seed = wl
        .gen
        .seed
        .wrapping_add(first_process.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    // Die with the parent: a killed `gregor run` must not leave clients.
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        eprintln!("gregor client: cannot ask to die with the parent (prctl): {e}");
    }
    let zero = Instant::now() - Duration::from_nanos(mono_ns().saturating_sub(time_zero));
    let rec = match Recorder::to_writer(Box::new(std::io::stdout()), zero) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 3;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return 3;
        }
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (stall_tx, stall_rx) = tokio::sync::watch::channel(false);
    // Commands on stdin (`stall`, `resume`); stop when the parent closes
    // it (or dies).
    std::thread::spawn(move || {
        for line in BufReader::new(std::io::stdin()).lines() {
            let Ok(line) = line else { break };
            match line.trim() {
                "stall" => {
                    let _ = stall_tx.send(true);
                }
                "resume" => {
                    let _ = stall_tx.send(false);
                }
                _ => {}
            }
        }
        let _ = tx.send(true);
    });
    let end = rt.block_on(run_workers_stallable(
        wl,
        rec.clone(),
        rx,
        stall_rx,
        Arc::new(Progress::default()),
    ));
    for e in &end.errors {
        eprintln!("worker error: {e}");
    }
    let _ = rec.flush();
    i32::from(!end.errors.is_empty()) * 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_child_line_that_is_not_an_event_is_counted_and_kept_in_the_clients_log() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Recorder::create(&dir.path().join("history.jsonl")).unwrap();
        let out = "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"poll\",\"value\":[[\"poll\"]]}\n\
                   {\"index\":1,\"time\":2,\"proc\n";
        let (mut tally, mut open) = (Tally::default(), Pairing::new());
        let log = dir.path().join("clients.log");
        relay(
            out.as_bytes(),
            &rec,
            &Progress::default(),
            &mut tally,
            &mut open,
            &log,
        );
        rec.flush().unwrap();
        assert_eq!(tally.unreadable, 1);
        let kept = std::fs::read_to_string(&log).unwrap();
        assert!(
            kept.contains("not an event") && kept.contains(r#"{"index":1,"time":2,"proc"#),
            "{kept}"
        );
        let h = gregor_history::History::read(&dir.path().join("history.jsonl")).unwrap();
        assert_eq!(h.events.len(), 1, "the good line is in the history");
    }

    #[test]
    fn a_child_that_does_not_stop_is_killed_after_the_grace_and_its_open_op_is_info() {
        let dir = tempfile::tempdir().unwrap();
        // A "client process" that opens an op and then hangs, deaf to its
        // stdin closing (as one stuck in a librdkafka call).
        let exe = dir.path().join("stuck-client");
        std::fs::write(
            &exe,
            "#!/bin/sh\necho '{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"poll\",\"value\":[[\"poll\"]]}'\nexec sleep 60\n",
        )
        .unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let rec = Recorder::create(&dir.path().join("history.jsonl")).unwrap();
        let spec = ChildSpec {
            exe,
            plan: dir.path().join("none.yaml"),
            bootstrap: "127.0.0.1:1".into(),
            run_id: RunId::generate(),
            time_zero_mono: mono_ns(),
            log: dir.path().join("clients.log"),
            stop_grace: Duration::from_millis(500),
        };
        let clients = Clients::start(spec, rec.clone(), Arc::new(Progress::default()), 0).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        let tally = clients.stop();
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "stop waited {:?}",
            t.elapsed()
        );
        assert!(tally.deaths.is_empty(), "{:?}", tally.deaths);
        rec.flush().unwrap();
        let h = gregor_history::History::read(&dir.path().join("history.jsonl")).unwrap();
        let kinds: Vec<EventType> = h.events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![EventType::Invoke, EventType::Info],
            "{:?}",
            h.events
        );
        assert!(h.events[1]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("died")));
    }
}
