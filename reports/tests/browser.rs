//! report.html and the store's index.html as a browser shows them: headless
//! Chromium (Debian's `chromium`, installed by scripts/deps.sh) loads the
//! pages from disk, and the test reads the DOM it rendered and a screenshot.
//! Without Chromium the test fails and says what to install.
//!
//! The screenshots are kept as artifacts under `target/browser-test/`
//! (`$CARGO_TARGET_DIR/browser-test/` when set; the paths are printed).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{result, Sim};
use gregor_checkers::Validity;
use gregor_reports::{write_all, ReportInput};

/// The Chromium binary: `$GREGOR_CHROMIUM`, else the first of the usual
/// names on `PATH`.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("GREGOR_CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome", "chrome"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "headless browser test: no Chromium found (looked for $GREGOR_CHROMIUM, then chromium, \
         chromium-browser, google-chrome, chrome on PATH). Install Debian's `chromium` package \
         (`bash scripts/deps.sh` does) or set GREGOR_CHROMIUM to a Chromium binary."
    );
}

/// Runs headless Chromium with `args` on a page; returns stdout.
fn run_chromium(extra: &[String], page: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let bin = chromium();
    let mut child = Command::new(&bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::BufReader::new(stdout), &mut s).ok();
        s
    });
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = reader.join().unwrap();
            if !status.success() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    std::io::Read::read_to_string(&mut e, &mut err).ok();
                }
                panic!("{} {extra:?} failed ({status}): {err}", bin.display());
            }
            return out;
        }
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} {extra:?} did not finish in 90 s", bin.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn dump_dom(page: &Path) -> String {
    run_chromium(&["--dump-dom".to_string()], page)
}

/// Takes a screenshot of a page into `target/browser-test/NAME` and checks it
/// is a non-blank PNG of the window size.
fn screenshot(page: &Path, name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("browser-test");
    std::fs::create_dir_all(&dir).unwrap();
    let shot = std::fs::canonicalize(&dir).unwrap().join(name);
    let _ = std::fs::remove_file(&shot);
    run_chromium(
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2200".to_string(),
        ],
        page,
    );
    let file = std::fs::File::open(&shot)
        .unwrap_or_else(|e| panic!("{}: no screenshot: {e}", shot.display()));
    let mut dec = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut buf = vec![0; dec.output_buffer_size().unwrap()];
    let info = dec.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1280, 2200));
    let bytes = &buf[..info.buffer_size()];
    let first = &bytes[..3];
    let differing = bytes.chunks(3).filter(|c| *c != first).count();
    assert!(
        differing > 10_000,
        "{}: the screenshot is blank",
        shot.display()
    );
    println!("screenshot: {}", shot.display());
    shot
}

#[test]
fn chromium_renders_the_report_and_the_store_index_with_verdict_anomalies_and_plots() {
    let t = tempfile::tempdir().unwrap();
    let store = std::fs::canonicalize(t.path()).unwrap().join("store");
    let run = store.join("queue-kill").join("2026-12-02T050000.000Z");
    std::fs::create_dir_all(&run).unwrap();
    std::os::unix::fs::symlink("queue-kill/2026-12-02T050000.000Z", store.join("latest")).unwrap();
    let h = Sim {
        inject_inconsistent: true,
        ..Default::default()
    }
    .history();
    let r = result(
        &h,
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
    );
    std::fs::write(run.join("results.json"), serde_json::to_string(&r).unwrap()).unwrap();
    std::fs::write(
        run.join("meta.json"),
        r#"{"scenario":"queue-kill","started_at":"2026-12-02T05:00:00.000Z","cluster":"tansu x3"}"#,
    )
    .unwrap();
    let input = ReportInput {
        run_dir: &run,
        history: &h,
        meta: None,
        result: &r,
    };
    let files = write_all(&input).unwrap();
    let svgs = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .count();

    // The report, as Chromium parsed and laid it out.
    let dom = dump_dom(&run.join("report.html"));
    assert!(
        dom.contains(r#"<header class="verdict invalid" id="verdict"><h1>INVALID</h1>"#),
        "verdict in the rendered page"
    );
    assert!(dom.contains(r#"id="anomaly-inconsistent-offsets""#));
    assert!(dom.contains(r#"id="anomaly-poll-skip""#));
    assert!(dom.contains("key 2 offset 3 holds two values"));
    assert_eq!(
        dom.matches(r#"class="gregor-chart""#).count(),
        svgs,
        "every plot is inline in the page"
    );
    for id in [
        "plot-latency",
        "plot-latency-quantiles",
        "plot-throughput",
        "plot-realtime-lag",
        "plot-unseen",
        "plot-offsets-key-2",
    ] {
        assert!(dom.contains(&format!(r#"id="{id}""#)), "{id} in the page");
    }
    assert!(dom.contains("Latency over time"), "chart text is text");
    screenshot(&run.join("report.html"), "report.png");

    // The store index: the run is listed with its verdict, and the filter
    // script ran (it fills in how many rows are shown).
    let dom = dump_dom(&store.join("index.html"));
    assert!(dom.contains("queue-kill") && dom.contains("tansu x3"));
    assert!(dom.contains(r#"<tr class="run" data-verdict="invalid""#));
    assert!(dom.contains("inconsistent-offsets"));
    assert!(
        dom.contains(r#"<span id="shown">1</span>"#),
        "the filter script counted the rows"
    );
    assert!(dom.contains("queue-kill/2026-12-02T050000.000Z/report.html"));
    screenshot(&store.join("index.html"), "index.png");
}
