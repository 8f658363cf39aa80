//! How long rendering a report of a ~1M-event history takes, and how big it
//! gets: `cargo bench -p gregor-reports --bench render` (plain timings, no
//! statistics crate; set `GREGOR_BENCH_OPS` to change the ops per sender,
//! 60,000 by default).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use gregor_checkers::Validity;
use gregor_reports::model::Timeline;
use gregor_reports::{render_all, summary_text, ReportInput};

fn main() {
    let ops: u64 = std::env::var("GREGOR_BENCH_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60_000);
    let sim = common::Sim {
        senders: 8,
        pollers: 2,
        keys: 16,
        ops_per_sender: ops,
        duration_s: 600.0,
        kill_s: 200.0,
        start_s: 260.0,
        ..Default::default()
    };
    let h = sim.history();
    let t = Instant::now();
    let r = common::result(&h, Validity::True, &[]);
    println!(
        "check (the statistics and timeline the plots draw): {:.2?}",
        t.elapsed()
    );
    let dir = std::env::temp_dir();
    let input = ReportInput {
        run_dir: &dir,
        history: &h,
        meta: None,
        result: &r,
    };
    println!("history: {} events", h.len());

    let t = Instant::now();
    let tl = Timeline::from_history(&h);
    println!(
        "paired operations: {:.2?} ({} ops)",
        t.elapsed(),
        tl.ops.len()
    );

    let t = Instant::now();
    let files = render_all(&input).expect("renders");
    println!(
        "render_all (report.html, junit.xml, summary.md, every plot as SVG and PNG): {:.2?}",
        t.elapsed()
    );
    for (name, text) in &files {
        println!("  {:>9} bytes  {}", text.len(), name.display());
    }

    let t = Instant::now();
    let s = summary_text(&input);
    println!(
        "summary_text: {:.2?} ({} lines)",
        t.elapsed(),
        s.lines().count()
    );
}
