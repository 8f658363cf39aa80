//! `cargo bench -p gregor-checkers`: how fast and how lean the check is.
//!
//! Generates valid histories (a reference queue: concurrent producers and
//! assigned consumers, failed and indeterminate sends, crashes with
//! renumbering, sparse offsets, final reads) as JSONL in a temp dir, then
//! measures, single-threaded:
//!
//! - (a) the floor: reading the file and parsing each line with serde_json
//!   into `IgnoredAny`;
//! - (b) `History::read` + `check`;
//!
//! and the peak heap of (b) per event (a counting global allocator), split
//! into the history itself and the queue analysis. Times are best of 3, as
//! CPU seconds of the process (all threads; steadier than wall time when
//! compilers run beside it) and as wall seconds: `check` runs its analyses
//! on two threads for large histories, so its wall time can be below its
//! CPU time. `check` is also broken
//! down into the queue analysis and the two other analyses it runs
//! (transactional cycles, committed offsets).
//!
//! It also reports the queue analysis's heap per acknowledged value, the
//! cycle check's peak heap (`GREGOR_BENCH_TXN_GRAPH=1`: with the exact
//! graph always built, ww and rw edges included, to show what the whole
//! graph costs), and the CPU time of the online checker's live detectors
//! fed every event.
//!
//! It prints one line per history: 250k / 500k / 1M events with 10
//! processes, and 1M events with 1000 processes. Goals: (b) <= 3x (a),
//! <= 500 bytes/event, time linear in length and flat in processes.
//! `GREGOR_BENCH_EVENTS=N` (and `GREGOR_BENCH_PROCS=P`) runs one size
//! instead; `GREGOR_BENCH_READ_ONLY=1` times one read and one check in a
//! fresh heap. Without `--bench` (e.g. `cargo test --benches`) it runs a
//! 20k-event smoke test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use gregor_checkers::{check, CheckOpts, Validity};
use gregor_history::History;

mod common;
use common::generate;

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        CURRENT.fetch_sub(l.size(), Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new >= l.size() {
                let now = CURRENT.fetch_add(new - l.size(), Relaxed) + (new - l.size());
                PEAK.fetch_max(now, Relaxed);
            } else {
                CURRENT.fetch_sub(l.size() - new, Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static A: Counting = Counting;

fn parse_floor(path: &Path) -> usize {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path).expect("open"));
    let mut line = String::new();
    let mut n = 0;
    loop {
        line.clear();
        if r.read_line(&mut line).expect("read") == 0 {
            break;
        }
        let _: serde::de::IgnoredAny = serde_json::from_str(&line).expect("json");
        n += 1;
    }
    n
}

/// CPU time of this process (all its threads), in seconds: steadier than
/// wall time on a machine shared with compilers.
fn process_cpu() -> f64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID) {
        Ok(ts) => ts.tv_sec() as f64 + ts.tv_nsec() as f64 * 1e-9,
        Err(_) => 0.0,
    }
}

/// Best (CPU seconds, wall seconds) over `runs`, and the last result.
fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> ((f64, f64), T) {
    let (mut cpu, mut wall) = (f64::MAX, f64::MAX);
    let mut out = None;
    for _ in 0..runs {
        let (c, t) = (process_cpu(), Instant::now());
        let r = f();
        wall = wall.min(t.elapsed().as_secs_f64());
        cpu = cpu.min(process_cpu() - c);
        out = Some(r);
    }
    ((cpu, wall), out.expect("at least one run"))
}

fn bench(dir: &Path, n: usize, procs: u64) {
    let path = dir.join(format!("h-{n}-{procs}.jsonl"));
    let events = generate(&path, n, procs, 16, 0x5eed ^ n as u64 ^ procs);
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    if std::env::var("GREGOR_BENCH_READ_ONLY").is_ok() {
        // Diagnostics: one read in a fresh heap, then one check.
        let (tr, h) = best_of(1, || History::read(&path).expect("read history"));
        let (tc, _) = best_of(1, || check(&h, &CheckOpts::default()));
        println!(
            "read only: {events} events, read {:.3} s cpu, check {:.3} s cpu",
            tr.0, tc.0
        );
        return;
    }
    let (ta, lines) = best_of(3, || parse_floor(&path));
    assert_eq!(lines, events);
    // Freeing the history is left out: a `gregor check` process just exits.
    let (tb, (res, h)) = best_of(3, || {
        let h = History::read(&path).expect("read history");
        (check(&h, &CheckOpts::default()), h)
    });
    drop(h);
    assert_eq!(
        res.valid,
        Validity::True,
        "generated history must be valid: {:?}",
        res.anomaly_types
    );
    // Peak heap of one read + check, relative to the heap before it.
    let base = CURRENT.load(Relaxed);
    PEAK.store(base, Relaxed);
    let (tr, h) = best_of(1, || History::read(&path).expect("read history"));
    let (tc, res2) = best_of(1, || check(&h, &CheckOpts::default()));
    let peak = PEAK.load(Relaxed) - base;
    drop(res2);
    // Where check's time goes: this crate's queue analysis vs the
    // transactional-cycle and committed-offset checks.
    let opts = CheckOpts::default();
    let base = CURRENT.load(Relaxed);
    PEAK.store(base, Relaxed);
    let (tq, _) = best_of(2, || gregor_checkers::queue::analyze(&h));
    let queue_peak = PEAK.load(Relaxed) - base;
    let history_heap = base;
    // GREGOR_BENCH_TXN_GRAPH=1: the cycle check with every edge of the
    // exact graph built (no ww/wr shortcut), to show what the whole
    // graph costs.
    let graph = std::env::var("GREGOR_BENCH_TXN_GRAPH").is_ok();
    let full = gregor_checkers::txn::TxnOpts {
        ww_deps: true,
        rw_deps: true,
        ..gregor_checkers::txn::TxnOpts::from_check_opts(&opts)
    };
    let base = CURRENT.load(Relaxed);
    PEAK.store(base, Relaxed);
    let (tt, _) = best_of(2, || {
        if graph {
            gregor_checkers::txn::check_with(&h, &full)
        } else {
            gregor_checkers::txn::check(&h, &opts)
        }
    });
    let txn_peak = PEAK.load(Relaxed) - base;
    let (tl, _) = best_of(2, || gregor_checkers::linear::check_commits(&h, &opts));
    // The live detectors of an online check (events cloned in, as a run's
    // tap delivers them), without its final offline check.
    let base = CURRENT.load(Relaxed);
    PEAK.store(base, Relaxed);
    let (to, _) = best_of(1, || {
        let mut o = gregor_checkers::online::OnlineChecker::detectors_only(opts.clone());
        for e in &h.events {
            o.push(e.clone()).expect("well-formed");
        }
        o.counts().len()
    });
    let online_peak = PEAK.load(Relaxed) - base;
    drop(h);
    println!(
        "events {events:>8}  procs {procs:>5}  file {:>6.1} MB | cpu s: (a) serde IgnoredAny {:>6.3}  (b) read+check {:>6.3} [read {:.3} + check {:.3} = queue {:.3} + txn {:.3} + linear {:.3}]  (b)/(a) {:>4.2}x | wall s: (a) {:.3} (b) {:.3} (b)/(a) {:.2}x | peak heap {:>3.0} B/event (history {:.0} + queue analysis {:.0}; queue analysis {:.0} B per acknowledged value; txn {:.0} B/event) | (b) {:>4.0} ns/event | online live detectors {:.3} s cpu, {:.0} B per acknowledged value",
        bytes as f64 / 1e6,
        ta.0,
        tb.0,
        tr.0,
        tc.0,
        tq.0,
        tt.0,
        tl.0,
        tb.0 / ta.0,
        ta.1,
        tb.1,
        tb.1 / ta.1,
        peak as f64 / events as f64,
        history_heap as f64 / events as f64,
        queue_peak as f64 / events as f64,
        queue_peak as f64 / res.stats.acknowledged.max(1) as f64,
        txn_peak as f64 / events as f64,
        tb.0 * 1e9 / events as f64,
        to.0,
        online_peak as f64 / res.stats.acknowledged.max(1) as f64,
    );
    let _ = std::fs::remove_file(&path);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then
    // run a tiny size as a smoke test.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let dir = tempfile::tempdir().expect("temp dir");
    if let Some(n) = std::env::var("GREGOR_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        let procs = std::env::var("GREGOR_BENCH_PROCS")
            .ok()
            .and_then(|s| s.parse().ok());
        bench(dir.path(), n, procs.unwrap_or(10));
        return;
    }
    if smoke {
        bench(dir.path(), 20_000, 10);
        return;
    }
    for n in [250_000, 500_000, 1_000_000] {
        bench(dir.path(), n, 10);
    }
    bench(dir.path(), 1_000_000, 1000);
}
