//! Output for people: a progress bar on a terminal, plain timestamped lines
//! in CI (`CI=true`) or when stderr is not a terminal. Every line also goes
//! to the run's `logs/harness.log` once a run directory exists.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gregor_workloads::Progress;

/// Where progress lines go.
pub struct Log {
    start: Instant,
    file: Mutex<Option<std::fs::File>>,
    pub fancy: bool,
    pub quiet: bool,
}

impl Log {
    pub fn new(quiet: bool) -> Log {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        Log {
            start: Instant::now(),
            file: Mutex::new(None),
            fancy: !ci && std::io::stderr().is_terminal(),
            quiet,
        }
    }

    /// Time since gregor started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn set_file(&self, path: &Path) {
        if let Ok(f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            *self.file.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
        }
    }

    /// One line, prefixed with seconds since gregor started.
    pub fn line(&self, msg: &str) {
        let l = format!("[{:7.1}s] {msg}", self.start.elapsed().as_secs_f64());
        if !self.quiet {
            eprintln!("{l}");
        }
        if let Some(f) = self.file.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            let _ = writeln!(f, "{l}");
        }
    }
}

/// Progress of the workload phase.
pub struct Bar<'a> {
    log: &'a Log,
    bar: Option<indicatif::ProgressBar>,
    last_line: Mutex<Instant>,
    total: Duration,
}

impl<'a> Bar<'a> {
    pub fn new(log: &'a Log, total: Duration) -> Bar<'a> {
        let bar = (log.fancy && !log.quiet).then(|| {
            let b = indicatif::ProgressBar::new(total.as_secs().max(1));
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} workload [{bar:30}] {pos}/{len}s {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b
        });
        Bar {
            log,
            bar,
            last_line: Mutex::new(Instant::now()),
            total,
        }
    }

    /// `live` is the online checker's count of each anomaly so far ("" when none).
    pub fn update(&self, elapsed: Duration, p: &Progress, live: &str) {
        let mut msg = format!(
            "ops {} (ok {}, fail {}, info {})",
            p.ops.load(Ordering::Relaxed),
            p.ok.load(Ordering::Relaxed),
            p.fail.load(Ordering::Relaxed),
            p.info.load(Ordering::Relaxed)
        );
        if !live.is_empty() {
            msg.push_str(&format!("; anomalies so far: {live}"));
        }
        match &self.bar {
            Some(b) => {
                b.set_position(elapsed.as_secs().min(self.total.as_secs()));
                b.set_message(msg);
            }
            None => {
                let mut last = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
                if last.elapsed() >= Duration::from_secs(5) {
                    *last = Instant::now();
                    self.log.line(&format!(
                        "workload {:.0}/{:.0}s: {msg}",
                        elapsed.as_secs_f64(),
                        self.total.as_secs_f64()
                    ));
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
