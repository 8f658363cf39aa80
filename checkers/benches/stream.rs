//! `cargo bench -p gregor-checkers --bench stream`: a soak-sized history
//! checked in one streaming pass, in bounded memory.
//!
//! Writes a generated history (the same generator as the `check` bench:
//! concurrent producers and assigned consumers over 16 keys, failed and
//! crashed sends with renumbered processes, sparse offsets, final reads)
//! of `GREGOR_STREAM_EVENTS` events (default 100M with `--bench`, 20k
//! without, e.g. under `cargo test --benches`) to a temp file, then runs,
//! each in a fresh child process so that its peak RSS (`VmHWM` in
//! `/proc/self/status`) is its own:
//!
//! - `parse`: the validate-only floor, each line parsed by serde_json into
//!   `IgnoredAny`;
//! - `stream`: [`gregor_checkers::stream::check_file`];
//! - `memory`: `History::read` + [`gregor_checkers::check`] (only up to
//!   `GREGOR_STREAM_MEMORY_MAX` events, default 2M: beyond that the
//!   in-memory check is what this mode replaces).
//!
//! It prints, per mode: wall seconds, events/s, peak RSS, and RSS per
//! event and per acknowledged value. It then does the same for a 1M-event
//! history, so the in-memory check appears beside the streaming one.
//! `GREGOR_STREAM_DIR` picks the directory of the temp files (default the
//! system temp dir).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use gregor_checkers::{check, CheckOpts, Validity};
use gregor_history::History;

mod common;

/// Peak resident set size of this process, in bytes.
fn peak_rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn parse_floor(path: &Path) -> u64 {
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

/// In the child: runs one mode and prints `secs events acknowledged rss`.
fn child(mode: &str, path: &Path) {
    let t = Instant::now();
    let (events, acked, valid) = match mode {
        "parse" => (parse_floor(path), 0, Validity::True),
        "stream" => {
            let r = gregor_checkers::stream::check_file(path, &CheckOpts::default())
                .expect("well-formed")
                .result;
            (r.stats.events, r.stats.acknowledged, r.valid)
        }
        _ => {
            let h = History::read(path).expect("well-formed");
            let r = check(&h, &CheckOpts::default());
            (r.stats.events, r.stats.acknowledged, r.valid)
        }
    };
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(valid, Validity::True, "generated histories are valid");
    println!("{secs} {events} {acked} {}", peak_rss());
}

/// Runs `mode` in a child process: (seconds, events, acknowledged, rss).
fn run(mode: &str, path: &Path) -> (f64, u64, u64, u64) {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .env("GREGOR_STREAM_CHILD", mode)
        .env("GREGOR_STREAM_FILE", path)
        .output()
        .expect("run child");
    assert!(
        out.status.success(),
        "{mode}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Diagnostics the child wrote (e.g. GREGOR_QUEUE_SIZES=1).
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert_eq!(f.len(), 4, "child said {text:?}");
    (f[0], f[1] as u64, f[2] as u64, f[3] as u64)
}

fn bench(dir: &Path, n: usize, memory_max: usize) {
    let path = dir.join(format!("stream-{n}.jsonl"));
    let t = Instant::now();
    let events = common::generate(&path, n, 10, 16, 0x5eed ^ n as u64);
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "history: {events} events, {:.2} GB, generated in {:.1} s",
        bytes as f64 / 1e9,
        t.elapsed().as_secs_f64()
    );
    let (tp, _, _, rp) = run("parse", &path);
    println!(
        "  parse  (serde IgnoredAny, validate-only floor): {tp:>8.2} s  {:>6.2} M events/s  peak RSS {:>7.1} MB",
        events as f64 / tp / 1e6,
        rp as f64 / 1e6
    );
    let (ts, ev, acked, rs) = run("stream", &path);
    assert_eq!(ev as usize, events);
    println!(
        "  stream (stream::check_file):                     {ts:>8.2} s  {:>6.2} M events/s  peak RSS {:>7.1} MB = {:>5.1} B/event = {:>5.1} B per acknowledged value ({acked} acknowledged)  {:.2}x parse",
        events as f64 / ts / 1e6,
        rs as f64 / 1e6,
        rs as f64 / events as f64,
        rs as f64 / acked.max(1) as f64,
        ts / tp
    );
    if events <= memory_max {
        let (tm, _, _, rm) = run("memory", &path);
        println!(
            "  memory (History::read + check):                  {tm:>8.2} s  {:>6.2} M events/s  peak RSS {:>7.1} MB = {:>5.1} B/event = {:>5.1} B per acknowledged value  {:.2}x parse",
            events as f64 / tm / 1e6,
            rm as f64 / 1e6,
            rm as f64 / events as f64,
            rm as f64 / acked.max(1) as f64,
            tm / tp
        );
    }
    let _ = std::fs::remove_file(&path);
}

fn main() {
    if let Ok(mode) = std::env::var("GREGOR_STREAM_CHILD") {
        let path = std::env::var("GREGOR_STREAM_FILE").expect("file");
        child(&mode, Path::new(&path));
        return;
    }
    let smoke = !std::env::args().any(|a| a == "--bench");
    let env = |k: &str| std::env::var(k).ok().and_then(|s| s.parse::<usize>().ok());
    let n = env("GREGOR_STREAM_EVENTS").unwrap_or(if smoke { 20_000 } else { 100_000_000 });
    let memory_max = env("GREGOR_STREAM_MEMORY_MAX").unwrap_or(2_000_000);
    let dir = match std::env::var("GREGOR_STREAM_DIR") {
        Ok(d) => tempfile::tempdir_in(d),
        Err(_) => tempfile::tempdir(),
    }
    .expect("temp dir");
    bench(dir.path(), n, memory_max);
    if !smoke && n != 1_000_000 {
        bench(dir.path(), 1_000_000, memory_max);
    }
}
