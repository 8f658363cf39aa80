//! `gregor check --follow`: check a history while a run is still writing it.
//!
//! Lines are taken as they are appended ([`gregor_checkers::online::Follower`]);
//! a progress line on stderr shows the events taken and the live count of
//! each anomaly type a prefix can already prove. Following ends when the
//! run has finished (its `meta.json` records how final reads ended, or
//! `results.json` exists), when the file has not grown for `idle`, or — with
//! `--fail-fast` — at the first live finding that makes the verdict
//! invalid. The verdict is then the offline check of everything read, with
//! the options of the run's final `meta.json`.

use std::path::Path;
use std::time::{Duration, Instant};

use gregor_checkers::online::Follower;
use gregor_checkers::{CheckOpts, CheckResult};
use gregor_history::{History, RunMeta};

/// How following went.
pub struct Followed {
    pub history: History,
    pub meta: Option<RunMeta>,
    pub result: CheckResult,
    /// `--fail-fast` stopped at (type, history index).
    pub stopped_at: Option<(&'static str, u64)>,
}

/// Whether the run writing `history` has finished.
fn run_finished(dir: &Path) -> bool {
    dir.join("results.json").exists()
        || RunMeta::read(&dir.join("meta.json")).is_ok_and(|m| m.extra.contains_key("final-reads"))
}

fn meta_of(dir: &Path) -> anyhow::Result<Option<RunMeta>> {
    let p = dir.join("meta.json");
    Ok(if p.exists() {
        Some(RunMeta::read(&p)?)
    } else {
        None
    })
}

/// Follows `history` (in a run directory or not); `adjust` applies the
/// command line's options on top of the run's.
pub fn follow(
    history: &Path,
    fail_fast: bool,
    idle: Duration,
    adjust: impl Fn(&mut CheckOpts),
) -> anyhow::Result<Followed> {
    let dir = history.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut opts = meta_of(&dir)?
        .as_ref()
        .map(CheckOpts::from_meta)
        .unwrap_or_default();
    adjust(&mut opts);
    let mut f = Follower::open(history, opts)?;
    let (mut last_growth, mut last_line) = (Instant::now(), Instant::now());
    let mut stopped_at = None;
    loop {
        // Read the end condition before draining, so nothing written
        // before the run finished is missed.
        let finished = run_finished(&dir);
        let step = f.poll(fail_fast)?;
        if step.events > 0 {
            last_growth = Instant::now();
        }
        if fail_fast && !step.bad.is_empty() {
            stopped_at = f.checker().first_bad();
            break;
        }
        if last_line.elapsed() >= Duration::from_secs(2) {
            last_line = Instant::now();
            progress(&f);
        }
        if step.events == 0 && (finished || last_growth.elapsed() >= idle) {
            break;
        }
        if step.events == 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    progress(&f);
    let (checker, tail) = f.finish();
    if let Some(t) = tail {
        eprintln!("warning: {t}");
    }
    // The run records how its final reads ended only at the end.
    let meta = meta_of(&dir)?;
    let mut opts = meta.as_ref().map(CheckOpts::from_meta).unwrap_or_default();
    adjust(&mut opts);
    let history = History::new(checker.into_events());
    let result = gregor_checkers::check(&history, &opts);
    Ok(Followed {
        history,
        meta,
        result,
        stopped_at,
    })
}

fn progress(f: &Follower) {
    let c = f.checker();
    let live = c.summary();
    eprintln!(
        "follow: {} events; live anomalies: {}",
        c.len(),
        if live.is_empty() { "none" } else { &live }
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_checkers::Validity;

    const LINES: [&str; 6] = [
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":[["send",0,1]]}"#,
        r#"{"index":1,"time":2,"process":0,"type":"ok","f":"send","value":[["send",0,[0,1]]]}"#,
        r#"{"index":2,"time":3,"process":1,"type":"invoke","f":"send","value":[["send",0,2]]}"#,
        r#"{"index":3,"time":4,"process":1,"type":"ok","f":"send","value":[["send",0,[0,2]]]}"#,
        r#"{"index":4,"time":5,"process":2,"type":"invoke","f":"poll","value":[["poll"]]}"#,
        r#"{"index":5,"time":6,"process":2,"type":"ok","f":"poll","value":[["poll",{"0":[[0,1]]}]]}"#,
    ];

    /// Writes the history slowly, then records the end of the run.
    fn slow_run(dir: &Path) -> std::thread::JoinHandle<()> {
        let dir = dir.to_path_buf();
        std::fs::write(dir.join("meta.json"), "{}").unwrap();
        std::fs::write(dir.join("history.jsonl"), "").unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(dir.join("history.jsonl"))
                .unwrap();
            for l in LINES {
                std::thread::sleep(Duration::from_millis(150));
                writeln!(f, "{l}").unwrap();
            }
            let mut m = RunMeta::default();
            m.extra
                .insert("final-reads".into(), serde_json::json!("complete"));
            m.write(&dir.join("meta.json")).unwrap();
        })
    }

    #[test]
    fn following_a_run_ends_when_it_records_its_final_reads_with_the_offline_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let writer = slow_run(dir.path());
        let path = dir.path().join("history.jsonl");
        let f = follow(&path, false, Duration::from_secs(30), |_| {}).unwrap();
        writer.join().unwrap();
        assert_eq!(f.history.len(), 6);
        assert!(f.stopped_at.is_none());
        let offline = gregor_checkers::check(
            &History::read(&path).unwrap(),
            &CheckOpts::from_meta(f.meta.as_ref().unwrap()),
        );
        assert_eq!(f.result, offline);
        assert_eq!(f.result.valid, Validity::False);
        assert!(f.result.bad_types.contains(&"lost-write".to_string()));
    }

    #[test]
    fn fail_fast_stops_at_the_first_live_invalid_anomaly() {
        let dir = tempfile::tempdir().unwrap();
        let writer = slow_run(dir.path());
        let path = dir.path().join("history.jsonl");
        let f = follow(&path, true, Duration::from_secs(30), |_| {}).unwrap();
        assert_eq!(f.stopped_at, Some(("inconsistent-offsets", 3)));
        assert_eq!(f.history.len(), 4);
        assert_eq!(f.result.valid, Validity::False);
        writer.join().unwrap();
    }
}
