//! Renders a report for a synthetic run (a broker killed mid-run) into a
//! directory, and times it: `cargo run --release -p gregor-reports --example
//! sample_report -- OUT_DIR [OPS_PER_SENDER]`. With 60,000 ops per sender
//! the history holds about 1M events. With `GREGOR_SAMPLE_CHECK=1` the real
//! checkers judge it instead of a hand-built result.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use gregor_checkers::Validity;
use gregor_reports::{summary_text, write_all, ReportInput};

fn main() {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "sample-report".to_string());
    let ops: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(2_000);
    let sim = common::Sim {
        senders: 8,
        pollers: 2,
        keys: 8,
        ops_per_sender: ops,
        duration_s: 60.0,
        kill_s: 20.0,
        start_s: 32.0,
        inject_inconsistent: true,
        faults: vec![
            (40.0, "start-partition", r#"{"isolated":["broker-1"]}"#),
            (41.0, "pause", r#"["broker-3"]"#),
            (43.5, "resume", r#"["broker-3"]"#),
            (46.0, "stop-partition", "null"),
            (55.0, "leader-kill", r#"["broker-2"]"#),
        ],
        ..Default::default()
    };
    let t = Instant::now();
    let h = sim.history();
    eprintln!(
        "generated and parsed {} events in {:.2?}",
        h.len(),
        t.elapsed()
    );
    let real = std::env::var_os("GREGOR_SAMPLE_CHECK").is_some();
    let r = if real {
        // The real checkers on the synthetic history.
        let t = Instant::now();
        let r = gregor_checkers::check(&h, &gregor_checkers::CheckOpts::default());
        eprintln!("checked in {:.2?}", t.elapsed());
        r
    } else {
        hand_built(&h)
    };
    let dir = std::path::PathBuf::from(out);
    std::fs::create_dir_all(&dir).expect("create output directory");
    let input = ReportInput {
        run_dir: &dir,
        history: &h,
        meta: None,
        result: &r,
    };
    let t = Instant::now();
    let files = write_all(&input).expect("write report");
    eprintln!("wrote {} files in {:.2?}", files.len(), t.elapsed());
    for f in files {
        let len = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
        eprintln!("  {:>10} {}", len, f.display());
    }
    print!("{}", summary_text(&input));
}

fn hand_built(h: &gregor_history::History) -> gregor_checkers::CheckResult {
    common::result(
        h,
        Validity::False,
        &[
            (
                "inconsistent-offsets",
                1,
                true,
                "key 2 offset 3 holds two values",
                Some(2),
            ),
            (
                "poll-skip",
                2,
                false,
                "process 3 skipped offset 5 of key 1",
                Some(1),
            ),
        ],
    )
}
