//! Helpers shared by the end-to-end tests of the `gregor` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

/// The repository root (scenario paths are relative to it).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Exit status, stdout and stderr of a finished command, for messages.
pub fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The shared healthy Kafka cluster `scripts/test.sh` starts for tests that
/// only attach to one (`GREGOR_TEST_KAFKA_BOOTSTRAP`). Without it the test
/// fails, naming what to do.
pub fn shared_kafka() -> String {
    std::env::var("GREGOR_TEST_KAFKA_BOOTSTRAP").unwrap_or_else(|_| {
        panic!(
            "GREGOR_TEST_KAFKA_BOOTSTRAP is not set: run the tests with `bash scripts/test.sh`, \
             or start a cluster (`gregor cluster up --dir target/test-kafka --base-port 19050`) \
             and export GREGOR_TEST_KAFKA_BOOTSTRAP=127.0.0.1:19050,127.0.0.1:19051,127.0.0.1:19052"
        )
    })
}

/// A finished `gregor run`: exit status, run directory, results, history.
pub struct Finished {
    pub out: Output,
    pub dir: PathBuf,
    pub results: serde_json::Value,
    pub history: gregor_history::History,
    _store: tempfile::TempDir,
}

impl Finished {
    /// Everything a failing assertion should show.
    pub fn describe(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("logs/harness.log")).unwrap_or_default();
        format!(
            "{}\n--- harness.log\n{log}\n--- results\n{:#}",
            describe(&self.out),
            self.results
        )
    }

    /// Anomaly types that make the verdict invalid.
    pub fn bad_types(&self) -> Vec<String> {
        self.results["bad-types"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every anomaly type found, allowed or not.
    pub fn anomaly_types(&self) -> Vec<String> {
        self.results["anomaly-types"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many anomalies of `kind` were found (0 when none).
    pub fn count(&self, kind: &str) -> u64 {
        self.results["anomalies"][kind]["count"]
            .as_u64()
            .unwrap_or(0)
    }

    /// A statistic of the results (0 when absent).
    pub fn stat(&self, name: &str) -> u64 {
        self.results["stats"][name].as_u64().unwrap_or(0)
    }

    /// The first witness of an anomaly type, as text.
    pub fn witness(&self, kind: &str) -> String {
        self.results["anomalies"][kind]["examples"][0].to_string()
    }

    /// The `f` of every nemesis event, in order.
    pub fn nemesis_fs(&self) -> Vec<String> {
        self.history
            .events
            .iter()
            .filter(|e| e.process == gregor_history::Process::Nemesis)
            .map(|e| e.f.to_string())
            .collect()
    }
}

/// Runs `gregor run` on the scenario `yaml` (a name and no seed are added
/// when missing) in a temporary store, and reads what it wrote.
pub fn run_yaml(name: &str, yaml: &str) -> Finished {
    let store = tempfile::tempdir().unwrap();
    let scenario = store.path().join(format!("{name}.yaml"));
    let text = if yaml.contains("name:") {
        yaml.to_string()
    } else {
        format!("name: {name}\n{yaml}")
    };
    std::fs::write(&scenario, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gregor"))
        .arg("run")
        .arg(&scenario)
        .arg("--store")
        .arg(store.path().join("runs"))
        .env("CI", "true")
        .current_dir(repo())
        .output()
        .expect("gregor runs");
    let dir = store.path().join("runs/latest");
    let results = std::fs::read_to_string(dir.join("results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    let history = gregor_history::History::read(&dir.join("history.jsonl"))
        .unwrap_or_else(|e| panic!("history of {name}: {e}\n{}", describe(&out)));
    Finished {
        out,
        dir,
        results,
        history,
        _store: store,
    }
}

/// The Chromium binary: `$GREGOR_CHROMIUM`, else the first of the usual
/// names on `PATH`; a test that needs one fails naming what to install.
pub fn chromium() -> PathBuf {
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

/// The DOM headless Chromium builds for `url` (a `file://` or loopback
/// `http://` address), after its scripts ran (`--virtual-time-budget`).
pub fn chromium_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let bin = chromium();
    let out = std::process::Command::new(&bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{} failed: {}",
        bin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
