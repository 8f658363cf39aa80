//! `gregor certify SUITE.yaml`: a matrix of runs — Kafka versions × fault
//! sets × client settings × seeds — run cell by cell, each a normal run in
//! the store, summed up in one certificate.
//!
//! A suite file:
//!
//! ```yaml
//! name: smoke
//! base: {time-limit: 60}            # any scenario keys, shared by every cell
//! matrix:
//!   versions: [4.1.1]               # cluster.kafka-version (empty: the base's)
//!   faults: [[kill], [pause]]       # nemesis.faults per cell (empty: the base's)
//!   clients:                        # named client settings (empty: the base's)
//!     - {name: safe, acks: all, idempotence: true}
//!     - {name: acks1, acks: "1", idempotence: false, expect: any}
//!     - name: unclean               # any scenario keys, fault sets and
//!       acks: "1"                   # versions of its own
//!       expect: invalid
//!       versions: [4.1.1]           # instead of the matrix's
//!       faults: [[lagging-leader-kill]]
//!       scenario:                   # merged over the base, key by key
//!         cluster: {broker-configs: {unclean.leader.election.enable: "true"}}
//!         topic: {configs: {min.insync.replicas: "1"}}
//!     - name: unclean-file          # or a scenario file of its own, the
//!       scenario-file: ../scenarios/known/unclean-election.yaml
//!       expect: invalid             # suite's directory the base of the path
//!   seeds: [1]
//! ```
//!
//! A client's `scenario-file` is loaded (and checked) as a scenario; its
//! keys are merged over the base, then the client's `scenario` keys over
//! them; its `nemesis.faults` is the client's fault set unless the client
//! names `faults` itself. So a scenario kept under `scenarios/` is one
//! definition that both `gregor run` and suites use.
//!
//! The cells are the product of the axes, where a client with `versions`
//! or `faults` of its own pairs only with those. Each cell is named
//! `<version>-<faults>-<client>-s<seed>` and expects a valid history
//! unless its client says `expect: invalid` (the settings are known to be
//! unsafe: the check must catch them) or `expect: any`. A cell passes when
//! its verdict meets the expectation.
//!
//! The certificate directory `store/certify/<suite>/<timestamp>/` holds
//! `cells/` (the cells' run store), `certificate.json` (rewritten after
//! every cell, so `--resume` picks up an interrupted suite without redoing
//! finished cells), `certificate.html` (the matrix, each cell linked to its
//! report, regressions against `--baseline` highlighted) and `junit.xml`
//! (one test case per cell; a failure carries the first witness). The exit
//! code is the worst cell's: 1 if a cell failed its expectation or
//! regressed, else 3 if a cell could not run, else 2 if a verdict was
//! unknown, else 0.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};
use gregor_checkers::{CheckResult, Validity};
use gregor_history::RunMeta;
use gregor_reports::compare::{compare, Side, Thresholds};
use serde::{Deserialize, Serialize};

use crate::scenario::{Scenario, ScenarioError};
use crate::{run, store, ui};

/// What a cell's verdict must be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    #[default]
    Valid,
    Invalid,
    Any,
}

/// Named client settings of the matrix, with whatever else they need.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ClientCell {
    pub name: String,
    pub acks: Option<String>,
    pub idempotence: Option<bool>,
    pub sub_via: Option<String>,
    pub commit: Option<String>,
    pub txn: Option<bool>,
    pub expect: Expect,
    /// Versions this client runs on instead of the matrix's.
    pub versions: Option<Vec<String>>,
    /// Fault sets this client runs under instead of the matrix's.
    pub faults: Option<Vec<Vec<String>>>,
    /// A scenario file (relative to the suite file's directory) merged over
    /// the base before `scenario`; [`Suite::load`] folds it into `scenario`.
    pub scenario_file: Option<String>,
    /// Scenario keys merged over the base for this client's cells (broker
    /// configs, topic, workload, nemesis timing…), before the cell's own
    /// version, faults, seed and the client keys above.
    pub scenario: Option<Scenario>,
}

/// The matrix of a suite.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Matrix {
    pub versions: Vec<String>,
    pub faults: Vec<Vec<String>>,
    pub clients: Vec<ClientCell>,
    pub seeds: Vec<u64>,
}

/// A suite file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Suite {
    pub name: String,
    pub base: Scenario,
    pub matrix: Matrix,
}

/// One cell: its settings, and once run, what came of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cell {
    pub id: String,
    pub version: Option<String>,
    pub faults: Vec<String>,
    pub client: String,
    pub seed: Option<u64>,
    pub expect: Expect,
    /// The cell's run directory, relative to the certificate directory.
    #[serde(default)]
    pub run_dir: Option<String>,
    /// `valid`, `invalid`, `unknown` or `error`; `None` until run.
    #[serde(default)]
    pub verdict: Option<String>,
    #[serde(default)]
    pub bad_types: Vec<String>,
    /// The first witness of the first bad type, for people and JUnit.
    #[serde(default)]
    pub witness: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub passed: Option<bool>,
    /// Metrics that regressed against the baseline's cell of the same id.
    #[serde(default)]
    pub regressions: Vec<String>,
    #[serde(default)]
    pub seconds: f64,
}

/// The certificate of a suite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Certificate {
    pub suite: String,
    pub started_at: String,
    #[serde(default)]
    pub baseline: Option<String>,
    pub cells: Vec<Cell>,
    /// The suite's exit code (see the module docs); `None` until finished.
    #[serde(default)]
    pub exit_code: Option<i32>,
}

pub const CERTIFICATE_FILE: &str = "certificate.json";

impl Suite {
    pub fn load(path: &Path) -> Result<Suite, ScenarioError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: p.clone(),
            source,
        })?;
        let mut s: Suite = serde_saphyr::from_str(&text).map_err(|e| ScenarioError::Yaml {
            path: p.clone(),
            message: e.to_string(),
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for (i, c) in s.matrix.clients.iter_mut().enumerate() {
            let Some(file) = c.scenario_file.take() else {
                continue;
            };
            let from_file = Scenario::load(&dir.join(&file))?;
            if c.faults.is_none() {
                c.faults = from_file.nemesis.faults.clone().map(|f| vec![f]);
            }
            let merged = match &c.scenario {
                Some(over) => overlay(&from_file, over),
                None => Ok(from_file),
            };
            c.scenario = Some(merged.map_err(|e| ScenarioError::Invalid {
                line: None,
                path: p.clone(),
                field: format!("matrix.clients[{i}].scenario"),
                message: e,
            })?);
        }
        let bad = |field: &str, message: String| ScenarioError::Invalid {
            line: None,
            path: p.clone(),
            field: field.into(),
            message,
        };
        if s.name.is_empty()
            || !s
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(bad(
                "name",
                format!("{:?} must be 1 or more of a-z A-Z 0-9 . _ -", s.name),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, c) in s.matrix.clients.iter().enumerate() {
            if c.name.is_empty() || !names.insert(c.name.clone()) {
                return Err(bad(
                    &format!("matrix.clients[{i}].name"),
                    "every client needs a name of its own".into(),
                ));
            }
        }
        for cell in s.cells() {
            cell_scenario(&s, &cell)
                .map_err(|e| bad("matrix.clients", e))?
                .validate(&format!("{p} (cell {})", cell.id))?;
        }
        Ok(s)
    }

    /// Every cell of the matrix, in order: by version, fault set, client
    /// and seed, each client only with its own versions and fault sets
    /// when it has them.
    pub fn cells(&self) -> Vec<Cell> {
        /// An axis as cells see it: its values, or one "the base's".
        fn axis<T: Clone>(own: Option<&Vec<T>>, matrix: &[T]) -> Vec<Option<T>> {
            match own {
                Some(v) if !v.is_empty() => v.iter().cloned().map(Some).collect(),
                _ if !matrix.is_empty() => matrix.iter().cloned().map(Some).collect(),
                _ => vec![None],
            }
        }
        /// Every value of every list, in order of first appearance.
        fn union<T: Clone + PartialEq>(lists: Vec<Vec<T>>) -> Vec<T> {
            let mut out: Vec<T> = Vec::new();
            for x in lists.into_iter().flatten() {
                if !out.contains(&x) {
                    out.push(x);
                }
            }
            out
        }
        let clients: Vec<Option<&ClientCell>> = if self.matrix.clients.is_empty() {
            vec![None]
        } else {
            self.matrix.clients.iter().map(Some).collect()
        };
        let versions_of = |c: Option<&ClientCell>| {
            axis(c.and_then(|c| c.versions.as_ref()), &self.matrix.versions)
        };
        let faults_of =
            |c: Option<&ClientCell>| axis(c.and_then(|c| c.faults.as_ref()), &self.matrix.faults);
        let versions = union(clients.iter().map(|c| versions_of(*c)).collect());
        let faults = union(clients.iter().map(|c| faults_of(*c)).collect());
        let seeds: Vec<Option<u64>> = axis(None, &self.matrix.seeds);
        let mut out = Vec::new();
        for v in &versions {
            for f in &faults {
                for c in &clients {
                    if !versions_of(*c).contains(v) || !faults_of(*c).contains(f) {
                        continue;
                    }
                    for seed in &seeds {
                        let fs = f.clone().unwrap_or_else(|| {
                            self.base.nemesis.faults.clone().unwrap_or_default()
                        });
                        let client = c.map_or("base".to_string(), |c| c.name.clone());
                        let id = format!(
                            "{}-{}-{}-s{}",
                            v.as_deref().unwrap_or("default"),
                            if fs.is_empty() {
                                "none".into()
                            } else {
                                fs.join("+")
                            },
                            client,
                            seed.map_or("any".into(), |s| s.to_string())
                        );
                        out.push(Cell {
                            id,
                            version: v.clone(),
                            faults: fs,
                            client,
                            seed: *seed,
                            expect: c.map_or(Expect::Valid, |c| c.expect),
                            run_dir: None,
                            verdict: None,
                            bad_types: vec![],
                            witness: None,
                            error: None,
                            passed: None,
                            regressions: vec![],
                            seconds: 0.0,
                        });
                    }
                }
            }
        }
        out
    }
}

/// `over` merged into `base` key by key (objects deeply; anything `over`
/// leaves null or empty keeps `base`'s).
fn merge(base: &mut serde_json::Value, over: serde_json::Value) {
    use serde_json::Value;
    match (base, over) {
        (_, Value::Null) => {}
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// `base` with the keys `over` sets taken over.
pub fn overlay(base: &Scenario, over: &Scenario) -> Result<Scenario, String> {
    let mut b = serde_json::to_value(base).map_err(|e| e.to_string())?;
    merge(
        &mut b,
        serde_json::to_value(over).map_err(|e| e.to_string())?,
    );
    serde_json::from_value(b).map_err(|e| e.to_string())
}

/// The scenario a cell runs: the base with its client's `scenario` merged
/// over it, then the cell's settings.
pub fn cell_scenario(suite: &Suite, cell: &Cell) -> Result<Scenario, String> {
    let client = suite.matrix.clients.iter().find(|c| c.name == cell.client);
    let mut s = match client.and_then(|c| c.scenario.as_ref()) {
        Some(over) => overlay(&suite.base, over)
            .map_err(|e| format!("client {}'s scenario: {e}", cell.client))?,
        None => suite.base.clone(),
    };
    s.name = Some(cell.id.clone());
    if let Some(v) = &cell.version {
        s.cluster.kafka_version = Some(v.clone());
    }
    s.nemesis.faults = Some(cell.faults.clone());
    if let Some(seed) = cell.seed {
        s.seed = Some(seed);
    }
    if let Some(c) = client {
        if c.acks.is_some() {
            s.client.acks.clone_from(&c.acks);
        }
        s.client.idempotence = c.idempotence.or(s.client.idempotence);
        if c.sub_via.is_some() {
            s.client.sub_via.clone_from(&c.sub_via);
        }
        if c.commit.is_some() {
            s.client.commit.clone_from(&c.commit);
        }
        s.workload.txn = c.txn.or(s.workload.txn);
    }
    Ok(s)
}

fn verdict_word(v: Validity) -> &'static str {
    match v {
        Validity::True => "valid",
        Validity::False => "invalid",
        Validity::Unknown => "unknown",
    }
}

/// Whether a verdict meets an expectation.
pub fn meets(expect: Expect, verdict: &str) -> bool {
    match expect {
        Expect::Valid => verdict == "valid",
        Expect::Invalid => verdict == "invalid",
        Expect::Any => verdict == "valid" || verdict == "invalid",
    }
}

/// The suite's exit code from its cells (see the module docs).
pub fn exit_code(cells: &[Cell]) -> i32 {
    // An unknown verdict or a cell that could not run is not a failed
    // promise: those give 2 and 3 below.
    let failed = |c: &Cell| {
        c.passed == Some(false) && !matches!(c.verdict.as_deref(), Some("error" | "unknown"))
    };
    if cells.iter().any(|c| failed(c) || !c.regressions.is_empty()) {
        return 1;
    }
    if cells
        .iter()
        .any(|c| c.verdict.as_deref() == Some("error") || c.verdict.is_none())
    {
        return 3;
    }
    if cells
        .iter()
        .any(|c| c.verdict.as_deref() == Some("unknown"))
    {
        return 2;
    }
    0
}

fn first_witness(r: &CheckResult) -> Option<String> {
    let kind = r.bad_types.first()?;
    let ex = r.anomalies.get(kind)?.examples.first()?;
    Some(format!(
        "{kind}: {}",
        gregor_reports::summary::explanation(ex)
    ))
}

fn read_result(dir: &Path) -> Option<(CheckResult, Option<RunMeta>)> {
    let r: CheckResult =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).ok()?).ok()?;
    let m = RunMeta::read(&dir.join("meta.json")).ok();
    Some((r, m))
}

/// `root/<UTC timestamp>/`, with `root/latest` pointing at it.
fn new_certificate_dir(root: &Path) -> std::io::Result<PathBuf> {
    let stamp = store::rfc3339(std::time::SystemTime::now()).replace(':', "");
    let mut dir = root.join(&stamp);
    let mut n = 1;
    while dir.exists() {
        dir = root.join(format!("{stamp}-{n}"));
        n += 1;
    }
    std::fs::create_dir_all(&dir)?;
    let latest = root.join("latest");
    let _ = std::fs::remove_file(&latest);
    std::os::unix::fs::symlink(dir.strip_prefix(root).unwrap_or(&dir), &latest)?;
    Ok(dir)
}

/// What run `b` regressed on against run `a` (`gregor compare`'s rows);
/// `None` when either has no check result.
fn run_regressions(a: &Path, b: &Path, t: &Thresholds) -> Option<Vec<String>> {
    let ((ra, ma), (rb, mb)) = (read_result(a)?, read_result(b)?);
    let (na, nb) = (a.display().to_string(), b.display().to_string());
    let c = compare(
        &Side {
            name: &na,
            result: &ra,
            meta: ma.as_ref(),
        },
        &Side {
            name: &nb,
            result: &rb,
            meta: mb.as_ref(),
        },
        t,
    );
    Some(c.regressions())
}

fn save(dir: &Path, cert: &Certificate) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(cert)?;
    let tmp = dir.join("certificate.json.tmp");
    std::fs::write(&tmp, json + "\n").with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(CERTIFICATE_FILE))
        .with_context(|| format!("cannot write {}", dir.join(CERTIFICATE_FILE).display()))
}

/// What runs a cell's scenario: [`Runs`] (a normal run), or in tests a
/// stand-in that writes a run directory without a cluster.
pub trait CellRunner {
    /// Runs `scenario` into the run store `store_dir`.
    fn run_cell(
        &mut self,
        scenario: Scenario,
        store_dir: &Path,
        log: &ui::Log,
    ) -> impl std::future::Future<Output = anyhow::Result<run::RunOutcome>>;
}

/// Every cell a normal run ([`run::run`]).
pub struct Runs;

impl CellRunner for Runs {
    async fn run_cell(
        &mut self,
        scenario: Scenario,
        store_dir: &Path,
        log: &ui::Log,
    ) -> anyhow::Result<run::RunOutcome> {
        let plan = crate::plan::RunPlan::resolve(&scenario, "cell scenario")?;
        run::run(&plan, store_dir, log).await
    }
}

/// Records a finished run's verdict, bad types and first witness in `cell`
/// (no result: the cell is an error).
pub fn record_result(cell: &mut Cell, result: Option<&CheckResult>) {
    match result {
        Some(r) => {
            let v = verdict_word(r.valid);
            cell.verdict = Some(v.into());
            cell.bad_types.clone_from(&r.bad_types);
            cell.witness = first_witness(r);
            cell.passed = Some(meets(cell.expect, v));
        }
        None => {
            cell.verdict = Some("error".into());
            cell.error = Some("the run left no check result".into());
            cell.passed = Some(false);
        }
    }
}

/// Runs (or resumes) `suite`, each cell by `runner`; returns the
/// certificate directory and the certificate.
pub async fn certify(
    suite: Suite,
    store_dir: &Path,
    resume: bool,
    baseline: Option<&Path>,
    thresholds: &Thresholds,
    log: &ui::Log,
    runner: &mut impl CellRunner,
) -> anyhow::Result<(PathBuf, Certificate)> {
    let root = store_dir.join("certify").join(&suite.name);
    let latest = root.join("latest");
    let previous: Option<(PathBuf, Certificate)> = if resume {
        std::fs::canonicalize(&latest).ok().and_then(|d| {
            let c: Certificate =
                serde_json::from_str(&std::fs::read_to_string(d.join(CERTIFICATE_FILE)).ok()?)
                    .ok()?;
            Some((d, c))
        })
    } else {
        None
    };
    let (dir, mut cert) = match previous {
        Some((d, c)) if c.suite == suite.name => {
            log.line(&format!("resuming the certificate in {}", d.display()));
            (d, c)
        }
        _ => {
            if resume {
                log.line("nothing to resume: starting a new certificate");
            }
            let d = new_certificate_dir(&root).with_context(|| {
                format!(
                    "cannot create a certificate directory under {}",
                    root.display()
                )
            })?;
            (
                d,
                Certificate {
                    suite: suite.name.clone(),
                    started_at: store::rfc3339(std::time::SystemTime::now()),
                    baseline: None,
                    cells: Vec::new(),
                    exit_code: None,
                },
            )
        }
    };
    log.set_file(&dir.join("certify.log"));
    cert.baseline = baseline.map(|b| b.display().to_string());
    let base_cert: Option<(PathBuf, Certificate)> = match baseline {
        Some(b) => {
            let text = std::fs::read_to_string(b.join(CERTIFICATE_FILE)).with_context(|| {
                format!(
                    "{}: no certificate.json (is it a certificate directory?)",
                    b.display()
                )
            })?;
            let c: Certificate = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{}: not a gregor certificate",
                    b.join(CERTIFICATE_FILE).display()
                )
            })?;
            Some((b.to_path_buf(), c))
        }
        None => None,
    };
    let cells_store = dir.join("cells");
    let planned = suite.cells();
    let total = planned.len();
    // A signal ends the suite after the cell it interrupts (which heals,
    // checks and records what it has, as any run does).
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    run::spawn_signal_watch(
        interrupted.clone(),
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    for (n, mut cell) in planned.into_iter().enumerate() {
        if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            log.line("interrupted: the certificate stays incomplete; `gregor certify --resume` finishes it");
            break;
        }
        if let Some(done) = cert.cells.iter().find(|c| {
            c.id == cell.id && c.verdict.is_some() && c.verdict.as_deref() != Some("error")
        }) {
            log.line(&format!(
                "cell {}/{total} {}: done before ({}), skipped",
                n + 1,
                cell.id,
                done.verdict.as_deref().unwrap_or("?")
            ));
            continue;
        }
        log.line(&format!("cell {}/{total} {}: running", n + 1, cell.id));
        let t = std::time::Instant::now();
        let run = match cell_scenario(&suite, &cell) {
            Ok(scenario) => runner.run_cell(scenario, &cells_store, log).await,
            Err(e) => Err(anyhow!(e)),
        };
        match run {
            Ok(out) => {
                cell.run_dir = out
                    .run_dir
                    .strip_prefix(&dir)
                    .ok()
                    .map(|p| p.display().to_string());
                record_result(&mut cell, out.result.as_ref());
                if let Some((bdir, bc)) = &base_cert {
                    let before = bc
                        .cells
                        .iter()
                        .find(|c| c.id == cell.id)
                        .and_then(|c| c.run_dir.as_ref());
                    if let Some(before) = before {
                        cell.regressions =
                            run_regressions(&bdir.join(before), &out.run_dir, thresholds)
                                .unwrap_or_default();
                    }
                }
            }
            Err(e) => {
                cell.verdict = Some("error".into());
                cell.error = Some(format!("{e:#}"));
                cell.passed = Some(false);
            }
        }
        cell.seconds = t.elapsed().as_secs_f64();
        log.line(&format!(
            "cell {}/{total} {}: {}{} in {:.0}s",
            n + 1,
            cell.id,
            cell.verdict.as_deref().unwrap_or("?"),
            match cell.passed {
                Some(true) => " (as expected)",
                _ => " (NOT as expected)",
            },
            cell.seconds
        ));
        cert.cells.retain(|c| c.id != cell.id);
        cert.cells.push(cell);
        save(&dir, &cert)?;
    }
    // Cells in the suite's order.
    let order: Vec<String> = suite.cells().into_iter().map(|c| c.id).collect();
    cert.cells.sort_by_key(|c| {
        order
            .iter()
            .position(|id| *id == c.id)
            .unwrap_or(usize::MAX)
    });
    cert.exit_code = Some(exit_code(&cert.cells));
    save(&dir, &cert)?;
    std::fs::write(dir.join("certificate.html"), html(&cert))
        .context("cannot write certificate.html")?;
    std::fs::write(
        dir.join("junit.xml"),
        junit(&cert).map_err(|e| anyhow!("{e}"))?,
    )
    .context("cannot write junit.xml")?;
    Ok((dir, cert))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn load_certificate(dir: &Path) -> anyhow::Result<Certificate> {
    let path = dir.join(CERTIFICATE_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a gregor certificate", path.display()))
}

/// Compares certificate B with certificate A cell by cell (cells of the
/// same id; each pair of runs as `gregor compare` does). B regressed when a
/// cell of A is missing from B, passed in A but not in B, or one of its
/// runs regressed. Returns the text, the JSON and whether B regressed.
pub fn compare_certificates(
    a: &Path,
    b: &Path,
    t: &Thresholds,
) -> anyhow::Result<(String, String, bool)> {
    let (ca, cb) = (load_certificate(a)?, load_certificate(b)?);
    let mut text = format!(
        "A: {} (suite {})\nB: {} (suite {})\n",
        a.display(),
        ca.suite,
        b.display(),
        cb.suite
    );
    let mut rows = Vec::new();
    let mut regressed_any = false;
    for cell in &ca.cells {
        let other = cb.cells.iter().find(|c| c.id == cell.id);
        let mut why: Vec<String> = Vec::new();
        match other {
            None => why.push("missing from B".into()),
            Some(o) => {
                if cell.passed == Some(true) && o.passed != Some(true) {
                    why.push(format!(
                        "{} in A, {} in B",
                        cell.verdict.as_deref().unwrap_or("?"),
                        o.verdict.as_deref().unwrap_or("not run")
                    ));
                }
                if let (Some(da), Some(db)) = (&cell.run_dir, &o.run_dir) {
                    why.extend(run_regressions(&a.join(da), &b.join(db), t).unwrap_or_default());
                }
            }
        }
        let regressed = !why.is_empty();
        regressed_any |= regressed;
        let _ = writeln!(
            text,
            "{:<44} {:<8} {:<8} {}",
            cell.id,
            cell.verdict.as_deref().unwrap_or("-"),
            other.and_then(|o| o.verdict.as_deref()).unwrap_or("-"),
            if regressed {
                format!("REGRESSED: {}", why.join("; "))
            } else {
                "ok".into()
            }
        );
        rows.push(serde_json::json!({"cell": cell.id, "a": cell.verdict, "b": other.and_then(|o| o.verdict.clone()), "regressed": regressed, "why": why}));
    }
    let _ = writeln!(
        text,
        "{}",
        if regressed_any {
            "B regressed"
        } else {
            "B did not regress"
        }
    );
    let json = serde_json::json!({"a": a.display().to_string(), "b": b.display().to_string(), "cells": rows, "regressed": regressed_any});
    Ok((text, json.to_string(), regressed_any))
}

/// The certificate as one self-contained HTML page.
pub fn html(c: &Certificate) -> String {
    let code = c.exit_code.unwrap_or(3);
    let word = match code {
        0 => "CERTIFIED",
        1 => "FAILED",
        2 => "UNKNOWN",
        _ => "INCOMPLETE",
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>gregor certificate: {} — {word}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}\
         .pass{{background:#e6f4ea}}.fail{{background:#fde8e8}}.regressed{{outline:3px solid #d62728}}.muted{{color:#666}}</style></head><body>\n\
         <h1 id=\"verdict\">{word}: suite {}</h1><p>Started {}. {} cells; exit code {code}.{}</p>\n",
        esc(&c.suite),
        esc(&c.suite),
        esc(&c.started_at),
        c.cells.len(),
        c.baseline
            .as_deref()
            .map(|b| format!(" Baseline: {}.", esc(b)))
            .unwrap_or_default()
    );
    s.push_str("<table id=\"matrix\"><tr><th>cell</th><th>version</th><th>faults</th><th>client</th><th>seed</th><th>expected</th><th>verdict</th><th>bad types</th><th>regressions</th><th>seconds</th></tr>\n");
    for cell in &c.cells {
        let class = match (cell.passed, cell.regressions.is_empty()) {
            (Some(true), true) => "pass",
            (Some(true), false) => "pass regressed",
            (_, true) => "fail",
            (_, false) => "fail regressed",
        };
        let name = match &cell.run_dir {
            Some(d) => format!("<a href=\"{}/report.html\">{}</a>", esc(d), esc(&cell.id)),
            None => esc(&cell.id),
        };
        let _ = writeln!(
            s,
            "<tr class=\"{class}\"><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td></tr>",
            esc(cell.version.as_deref().unwrap_or("default")),
            esc(&cell.faults.join(", ")),
            esc(&cell.client),
            cell.seed.map_or("-".into(), |x| x.to_string()),
            cell.expect,
            esc(cell.verdict.as_deref().unwrap_or("not run")),
            esc(&match (&cell.witness, &cell.error) {
                (_, Some(e)) => e.clone(),
                (Some(w), _) => w.clone(),
                _ => cell.bad_types.join(", "),
            }),
            esc(&cell.regressions.join("; ")),
            cell.seconds
        );
    }
    s.push_str("</table>\n<p class=\"muted\">Rendered by gregor certify; each cell links to its run's report.</p></body></html>\n");
    s
}

/// The certificate as JUnit XML: one test case per cell.
pub fn junit(c: &Certificate) -> Result<String, quick_junit::SerializeError> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(format!("gregor certify {}", c.suite));
    for cell in &c.cells {
        let status = match (cell.passed, cell.regressions.is_empty()) {
            (Some(true), true) => TestCaseStatus::success(),
            (passed, _) => {
                let kind = if cell.verdict.as_deref() == Some("error") {
                    NonSuccessKind::Error
                } else {
                    NonSuccessKind::Failure
                };
                let mut st = TestCaseStatus::non_success(kind);
                let msg = if passed != Some(true) {
                    format!(
                        "expected {:?}, got {}{}",
                        cell.expect,
                        cell.verdict.as_deref().unwrap_or("nothing"),
                        cell.witness
                            .as_deref()
                            .or(cell.error.as_deref())
                            .map(|w| format!(": {w}"))
                            .unwrap_or_default()
                    )
                } else {
                    format!(
                        "regressed against the baseline: {}",
                        cell.regressions.join("; ")
                    )
                };
                st.set_message(msg);
                st
            }
        };
        let mut tc = TestCase::new(cell.id.as_str(), status);
        tc.set_classname(format!("gregor.certify.{}", c.suite));
        tc.set_time(std::time::Duration::from_secs_f64(cell.seconds.max(0.0)));
        suite.add_test_case(tc);
    }
    let mut report = Report::new("gregor certify");
    report.add_test_suite(suite);
    report.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(yaml: &str) -> Suite {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn the_matrix_is_the_product_of_its_axes_with_stable_names() {
        let s = suite(
            "name: t\nmatrix:\n  versions: [3.9.1, 4.1.1]\n  faults: [[kill], [pause, delay]]\n  clients: [{name: safe, acks: all}, {name: a1, acks: \"1\", idempotence: false, expect: any}]\n  seeds: [1, 2]\n",
        );
        let cells = s.cells();
        assert_eq!(cells.len(), 16);
        assert_eq!(cells[0].id, "3.9.1-kill-safe-s1");
        assert!(cells
            .iter()
            .any(|c| c.id == "4.1.1-pause+delay-a1-s2" && c.expect == Expect::Any));
        let sc = cell_scenario(&s, &cells[3]).unwrap();
        assert_eq!(sc.client.acks.as_deref(), Some("1"));
        assert_eq!(sc.client.idempotence, Some(false));
        assert_eq!(sc.nemesis.faults, Some(vec!["kill".to_string()]));
        assert_eq!(sc.cluster.kafka_version.as_deref(), Some("3.9.1"));
        assert_eq!(sc.seed, Some(2));
    }

    #[test]
    fn the_exit_code_is_the_worst_cell() {
        let cell = |verdict: &str, expect: Expect| {
            let mut c = suite("name: t\n").cells().remove(0);
            c.verdict = Some(verdict.into());
            c.expect = expect;
            c.passed = Some(meets(expect, verdict) && verdict != "error");
            c
        };
        assert_eq!(exit_code(&[cell("valid", Expect::Valid)]), 0);
        assert_eq!(
            exit_code(&[cell("invalid", Expect::Invalid)]),
            0,
            "an unsafe setting caught"
        );
        assert_eq!(
            exit_code(&[cell("valid", Expect::Valid), cell("unknown", Expect::Valid)]),
            2
        );
        assert_eq!(
            exit_code(&[cell("unknown", Expect::Valid), cell("error", Expect::Valid)]),
            3
        );
        assert_eq!(
            exit_code(&[cell("error", Expect::Valid), cell("valid", Expect::Invalid)]),
            1
        );
        let mut r = cell("valid", Expect::Valid);
        r.regressions = vec!["send p99".into()];
        assert_eq!(exit_code(&[r]), 1);
    }

    #[test]
    fn a_client_brings_its_own_broker_configs_fault_sets_and_versions() {
        let s = suite(
            "name: t\n\
             base: {time-limit: 30, topic: {replication: 3, configs: {min.insync.replicas: \"2\", retention.ms: \"9000\"}}, nemesis: {interval: 10}}\n\
             matrix:\n  versions: [3.9.1, 4.1.1]\n  faults: [[kill], [pause]]\n  clients:\n\
             \x20   - {name: safe, acks: all}\n\
             \x20   - name: unclean\n      acks: \"1\"\n      expect: invalid\n      versions: [4.1.1]\n      faults: [[lagging-leader-kill]]\n\
             \x20     scenario: {cluster: {broker-configs: {unclean.leader.election.enable: \"true\"}}, topic: {configs: {min.insync.replicas: \"1\"}}, nemesis: {duration: 24}}\n",
        );
        let cells = s.cells();
        let ids: Vec<&str> = cells.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "3.9.1-kill-safe-sany",
                "3.9.1-pause-safe-sany",
                "4.1.1-kill-safe-sany",
                "4.1.1-pause-safe-sany",
                "4.1.1-lagging-leader-kill-unclean-sany"
            ]
        );
        assert_eq!(cells[4].expect, Expect::Invalid);
        let unclean = cell_scenario(&s, &cells[4]).unwrap();
        assert_eq!(
            unclean
                .cluster
                .broker_configs
                .get("unclean.leader.election.enable"),
            Some(&"true".to_string())
        );
        // Merged key by key: the client's settings over the base's, the
        // base's others kept.
        let topic = &unclean.topic.configs;
        assert_eq!(topic.get("min.insync.replicas"), Some(&"1".to_string()));
        assert_eq!(topic.get("retention.ms"), Some(&"9000".to_string()));
        assert_eq!(unclean.topic.replication, Some(3));
        assert_eq!(
            (unclean.nemesis.interval, unclean.nemesis.duration),
            (Some(10.0), Some(24.0))
        );
        assert_eq!(unclean.time_limit, Some(30.0));
        assert_eq!(unclean.client.acks.as_deref(), Some("1"));
        assert_eq!(
            unclean.nemesis.faults,
            Some(vec!["lagging-leader-kill".to_string()])
        );
        assert_eq!(unclean.cluster.kafka_version.as_deref(), Some("4.1.1"));
        // The other client's cells keep the base's broker configs.
        let safe = cell_scenario(&s, &cells[2]).unwrap();
        assert!(safe.cluster.broker_configs.is_empty());
        assert_eq!(
            safe.topic.configs.get("min.insync.replicas"),
            Some(&"2".to_string())
        );
    }

    #[test]
    fn a_client_scenario_file_is_merged_under_its_keys_and_brings_its_faults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("known")).unwrap();
        std::fs::write(
            dir.path().join("known/f.yaml"),
            "name: f\ntime-limit: 50\ntopic: {partitions: 1, configs: {min.insync.replicas: \"1\"}}\n\
             client: {acks: \"1\"}\nnemesis: {faults: [lagging-leader-kill], duration: 24}\n",
        )
        .unwrap();
        let p = dir.path().join("suite.yaml");
        std::fs::write(
            &p,
            "name: t\nbase: {time-limit: 30, nemesis: {interval: 10}}\n\
             matrix:\n  versions: [3.9.1, 4.1.1]\n  clients:\n\
             \x20   - {name: f, scenario-file: known/f.yaml, expect: invalid, scenario: {nemesis: {duration: 20}}}\n\
             \x20   - {name: g, scenario-file: known/f.yaml, faults: [[kill]]}\n",
        )
        .unwrap();
        let s = Suite::load(&p).unwrap();
        let ids: Vec<String> = s.cells().into_iter().map(|c| c.id).collect();
        assert_eq!(
            ids,
            [
                "3.9.1-lagging-leader-kill-f-sany",
                "3.9.1-kill-g-sany",
                "4.1.1-lagging-leader-kill-f-sany",
                "4.1.1-kill-g-sany"
            ]
        );
        let cells = s.cells();
        let f = cell_scenario(&s, &cells[2]).unwrap();
        // The file over the base, the client's keys over the file.
        assert_eq!(f.time_limit, Some(50.0));
        assert_eq!(
            (f.nemesis.interval, f.nemesis.duration),
            (Some(10.0), Some(20.0))
        );
        assert_eq!(f.client.acks.as_deref(), Some("1"));
        assert_eq!(f.cluster.kafka_version.as_deref(), Some("4.1.1"));
        assert_eq!(f.name.as_deref(), Some("4.1.1-lagging-leader-kill-f-sany"));
        // A missing file names itself.
        std::fs::write(
            &p,
            "name: t\nmatrix:\n  clients:\n    - {name: f, scenario-file: known/nope.yaml}\n",
        )
        .unwrap();
        let e = Suite::load(&p).unwrap_err().to_string();
        assert!(e.contains("nope.yaml"), "{e}");
    }

    #[test]
    fn a_bad_key_in_a_client_scenario_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.yaml");
        std::fs::write(
            &p,
            "name: t\nmatrix:\n  clients:\n    - name: a\n      scenario: {cluster: {brokerz: 3}}\n",
        )
        .unwrap();
        let e = Suite::load(&p).unwrap_err().to_string();
        assert!(e.contains("s.yaml") && e.contains("brokerz"), "{e}");
        // A merged scenario that is invalid names the cell.
        std::fs::write(
            &p,
            "name: t\nmatrix:\n  clients:\n    - name: a\n      scenario: {client: {acks: \"2\"}}\n",
        )
        .unwrap();
        let e = Suite::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("client.acks") && e.contains("cell default-"),
            "{e}"
        );
    }

    #[test]
    fn the_nightly_suite_runs_every_fault_safely_and_must_catch_two_unsafe_settings() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/nightly.yaml");
        let s = Suite::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let cells = s.cells();
        for fault in crate::nemesis::Fault::NAMES {
            assert!(
                cells
                    .iter()
                    .any(|c| c.expect == Expect::Valid && c.faults == [fault]),
                "no safe cell under {fault}"
            );
        }
        let caught: Vec<(Vec<String>, Scenario)> = cells
            .iter()
            .filter(|c| c.expect == Expect::Invalid)
            .map(|c| (c.faults.clone(), cell_scenario(&s, c).unwrap()))
            .collect();
        assert_eq!(caught.len(), 2, "{caught:?}");
        for (faults, sc) in &caught {
            assert_eq!(sc.client.acks.as_deref(), Some("1"));
            assert_eq!(sc.client.idempotence, Some(false));
            match faults.as_slice() {
                [f] if f == "leader-pause" => {
                    assert!(sc.workload.pipeline.unwrap_or(1) >= 8, "{sc:?}");
                }
                [f] if f == "lagging-leader-kill" => {
                    let b = &sc.cluster.broker_configs;
                    assert_eq!(b["unclean.leader.election.enable"], "true");
                    assert_eq!(b["unclean.leader.election.interval.ms"], "1000");
                    assert_eq!(sc.topic.configs["min.insync.replicas"], "1");
                }
                other => panic!("unexpected must-catch cell {other:?}"),
            }
        }
    }

    #[test]
    fn every_shipped_suite_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                let s = Suite::load(&p).unwrap_or_else(|e| panic!("{e}"));
                assert!(!s.cells().is_empty());
                n += 1;
            }
        }
        assert!(n >= 3, "smoke, nightly and upgrade suites");
    }

    use gregor_checkers::{AnomalyGroup, Latency, Stats};
    use gregor_history::Example;

    /// A check result: valid, or invalid with one lost write explained;
    /// `send` p99 of `p99` ms.
    fn result(valid: bool, p99: f64) -> CheckResult {
        let mut stats = Stats::default();
        stats.latency.insert(
            "send".into(),
            Latency {
                count: 100,
                p50: 1.0,
                p90: 2.0,
                p99,
                p999: p99,
                max: p99,
            },
        );
        let mut r = CheckResult {
            valid: if valid {
                Validity::True
            } else {
                Validity::False
            },
            anomaly_types: vec![],
            bad_types: vec![],
            anomalies: Default::default(),
            stats,
        };
        if !valid {
            r.anomaly_types = vec!["lost-write".into()];
            r.bad_types = vec!["lost-write".into()];
            r.anomalies.insert(
                "lost-write".into(),
                AnomalyGroup {
                    count: 1,
                    examples: vec![Example {
                        explanation: "key 3: value 17 acknowledged at offset 5 was never read, though offset 6 was".into(),
                        ..Default::default()
                    }],
                },
            );
        }
        r
    }

    /// Runs no cluster: writes each cell's run directory with the result
    /// `outcome(cell id)` gives, and notes which cells it ran.
    struct Fake<F: Fn(&str) -> CheckResult> {
        outcome: F,
        ran: Vec<String>,
    }

    impl<F: Fn(&str) -> CheckResult> CellRunner for Fake<F> {
        async fn run_cell(
            &mut self,
            scenario: Scenario,
            store_dir: &Path,
            _log: &ui::Log,
        ) -> anyhow::Result<run::RunOutcome> {
            let id = scenario.name.clone().unwrap_or_default();
            let r = (self.outcome)(&id);
            let run_dir = store_dir.join(&id).join(format!("run{}", self.ran.len()));
            std::fs::create_dir_all(&run_dir)?;
            std::fs::write(run_dir.join("results.json"), serde_json::to_string(&r)?)?;
            self.ran.push(id);
            Ok(run::RunOutcome {
                run_dir,
                exit_code: i32::from(r.valid != Validity::True),
                result: Some(r),
            })
        }
    }

    fn three_seeds() -> Suite {
        suite("name: fake\nmatrix:\n  clients: [{name: safe}]\n  seeds: [1, 2, 3]\n")
    }

    #[test]
    fn junit_carries_the_witness_of_an_invalid_cell_and_html_highlights_a_regressed_one() {
        let mut cells = three_seeds().cells();
        record_result(&mut cells[0], Some(&result(false, 10.0)));
        record_result(&mut cells[1], Some(&result(true, 10.0)));
        cells[1].regressions = vec!["send p99 latency (ms): 10.00 -> 30.00".into()];
        record_result(&mut cells[2], Some(&result(true, 10.0)));
        let cert = Certificate {
            suite: "fake".into(),
            started_at: "2026-12-02T00:00:00Z".into(),
            baseline: Some("base".into()),
            exit_code: Some(exit_code(&cells)),
            cells,
        };
        assert_eq!(cert.exit_code, Some(1));

        let xml = junit(&cert).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let case = |id: &str| {
            doc.descendants()
                .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(id))
                .unwrap_or_else(|| panic!("no testcase {id}: {xml}"))
        };
        let failure = |id: &str| {
            case(id)
                .children()
                .find(|n| n.has_tag_name("failure"))
                .and_then(|n| n.attribute("message").map(str::to_string))
        };
        let invalid = failure("default-none-safe-s1").expect("the invalid cell fails");
        assert!(
            invalid.contains("expected Valid, got invalid")
                && invalid.contains(
                    "lost-write: key 3: value 17 acknowledged at offset 5 was never read"
                ),
            "{invalid}"
        );
        let regressed = failure("default-none-safe-s2").expect("the regressed cell fails");
        assert!(
            regressed
                .contains("regressed against the baseline: send p99 latency (ms): 10.00 -> 30.00"),
            "{regressed}"
        );
        assert_eq!(failure("default-none-safe-s3"), None, "{xml}");

        let page = html(&cert);
        assert!(page.contains("FAILED: suite fake"), "{page}");
        let row = |id: &str| {
            page.lines()
                .find(|l| l.starts_with("<tr ") && l.contains(&format!(">{id}<")))
                .unwrap_or_else(|| panic!("no row {id}: {page}"))
                .to_string()
        };
        assert!(row("default-none-safe-s1").starts_with("<tr class=\"fail\">"));
        let r2 = row("default-none-safe-s2");
        assert!(r2.starts_with("<tr class=\"pass regressed\">"), "{r2}");
        assert!(
            r2.contains("send p99 latency (ms): 10.00 -&gt; 30.00"),
            "{r2}"
        );
        assert!(page.contains(".regressed{outline:3px solid"), "{page}");
        assert!(row("default-none-safe-s3").starts_with("<tr class=\"pass\">"));
    }

    #[tokio::test]
    async fn resume_runs_only_the_cells_a_partial_certificate_lacks() {
        let store = tempfile::tempdir().unwrap();
        let s = three_seeds();
        // An interrupted certificate: s1 done, s2 could not run, s3 missing.
        let root = store.path().join("certify/fake");
        let dir = new_certificate_dir(&root).unwrap();
        let mut cells = s.cells();
        record_result(&mut cells[0], Some(&result(true, 10.0)));
        cells[1].verdict = Some("error".into());
        cells[1].passed = Some(false);
        cells.truncate(2);
        let partial = Certificate {
            suite: "fake".into(),
            started_at: "2026-12-02T00:00:00Z".into(),
            baseline: None,
            cells,
            exit_code: None,
        };
        save(&dir, &partial).unwrap();
        let log = ui::Log::new(true);
        let mut fake = Fake {
            outcome: |_: &str| result(true, 10.0),
            ran: vec![],
        };
        let (d, cert) = certify(
            s.clone(),
            store.path(),
            true,
            None,
            &Thresholds::default(),
            &log,
            &mut fake,
        )
        .await
        .unwrap();
        assert_eq!(
            fake.ran,
            vec!["default-none-safe-s2", "default-none-safe-s3"]
        );
        assert_eq!(
            std::fs::canonicalize(&d).unwrap(),
            std::fs::canonicalize(&dir).unwrap()
        );
        let ids: Vec<&str> = cert.cells.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "default-none-safe-s1",
                "default-none-safe-s2",
                "default-none-safe-s3"
            ]
        );
        assert_eq!(cert.exit_code, Some(0));
        assert_eq!(load_certificate(&dir).unwrap(), cert);
        // Resumed again, nothing is left to run.
        let (_, again) = certify(
            s,
            store.path(),
            true,
            None,
            &Thresholds::default(),
            &log,
            &mut fake,
        )
        .await
        .unwrap();
        assert_eq!(fake.ran.len(), 2);
        assert_eq!(again.exit_code, Some(0));
    }

    #[tokio::test]
    async fn certificates_compare_cell_by_cell_and_one_slower_cell_regresses() {
        let store = tempfile::tempdir().unwrap();
        let log = ui::Log::new(true);
        let t = Thresholds::default();
        let mut before = Fake {
            outcome: |_: &str| result(true, 10.0),
            ran: vec![],
        };
        let (a, _) = certify(
            three_seeds(),
            store.path(),
            false,
            None,
            &t,
            &log,
            &mut before,
        )
        .await
        .unwrap();
        // The same suite where one cell's p99 tripled (10 * 1.5 + 5 < 30 ms).
        let mut after = Fake {
            outcome: |id: &str| result(true, if id.ends_with("s2") { 30.0 } else { 10.0 }),
            ran: vec![],
        };
        let (b, cb) = certify(
            three_seeds(),
            store.path(),
            false,
            Some(&a),
            &t,
            &log,
            &mut after,
        )
        .await
        .unwrap();
        assert_ne!(a, b);
        // --baseline: the slow cell carries its regression; the suite exits 1.
        let regressed: Vec<(&str, &Vec<String>)> = cb
            .cells
            .iter()
            .filter(|c| !c.regressions.is_empty())
            .map(|c| (c.id.as_str(), &c.regressions))
            .collect();
        assert_eq!(regressed.len(), 1, "{regressed:?}");
        assert_eq!(regressed[0].0, "default-none-safe-s2");
        assert!(regressed[0].1[0].starts_with("send p99 latency (ms): 10.00 -> 30.00"));
        assert_eq!(cb.exit_code, Some(1));
        let (text, json, worse) = compare_certificates(&a, &b, &t).unwrap();
        assert!(worse, "{text}");
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("REGRESSED")).collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert!(
            lines[0].starts_with("default-none-safe-s2") && lines[0].contains("send p99 latency")
        );
        let j: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(j["regressed"], true);
        // The other way round, and with a looser threshold, B did not regress.
        assert!(!compare_certificates(&b, &a, &t).unwrap().2);
        let loose = Thresholds {
            latency_tolerance: 3.0,
            tail_latency_tolerance: 3.0,
            ..Thresholds::default()
        };
        assert!(!compare_certificates(&a, &b, &loose).unwrap().2);
        let mut again = Fake {
            outcome: |id: &str| result(true, if id.ends_with("s2") { 30.0 } else { 10.0 }),
            ran: vec![],
        };
        let (_, cc) = certify(
            three_seeds(),
            store.path(),
            false,
            Some(&a),
            &loose,
            &log,
            &mut again,
        )
        .await
        .unwrap();
        assert_eq!(cc.exit_code, Some(0), "{:?}", cc.cells);
    }
}
