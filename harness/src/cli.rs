//! The `gregor` command line.
//!
//! Exit status of every command that renders a verdict (`run`, `check`):
//! 0 valid, 1 invalid, 2 unknown, 3 error (bad input, unreachable cluster,
//! bad scenario). Other commands exit 0 on success and 3 on error.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use gregor_checkers::{CheckOpts, CheckResult};
use gregor_deploy::{Cluster, ClusterKind, ClusterSpec, ProcessStatus};
use gregor_history::{History, RunMeta};

use crate::run::{self, Overrides};
use crate::scenario::Scenario;
use crate::store;
use crate::ui::Log;

/// Exit status for errors.
pub const EXIT_ERROR: i32 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "gregor",
    version,
    about = "Put a Kafka cluster on trial: run workloads under faults, record a history, check it.",
    long_about = "Put a Kafka cluster on trial.\n\n\
        gregor drives real producers and consumers against a cluster while a nemesis kills \
        and pauses brokers, records every operation in a history, then checks the history for \
        lost, duplicated, reordered or aborted writes and renders a report.\n\n\
        Start with `gregor run`: it starts a local 3-node Apache Kafka cluster (jars from Maven \
        Central, cached), runs the default \
        workload for 60 s with broker kills, and prints the verdict.\n\n\
        Exit status of run and check: 0 valid, 1 invalid (anomalies found), 2 unknown, 3 error."
)]
pub struct Cli {
    /// Print less: only the summary and errors.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario: start (or attach to) a cluster, drive the workload
    /// under faults, heal, do final reads, check, report.
    Run(Box<RunArgs>),
    /// Check a saved history (a history.jsonl, a run directory, or a Jepsen
    /// history.edn) and print the verdict.
    Check(CheckArgs),
    /// Render report.html, junit.xml, summary.md and plots for a run directory.
    Report(ReportArgs),
    /// Manage a local cluster: up, down, status, heal.
    Cluster(ClusterArgs),
    /// Serve the run store over HTTP: index.html lists every run, each run's
    /// report, plots and files are a click away.
    Serve(ServeArgs),
    /// Internal: the client process of `gregor run`.
    #[command(name = "__clients", hide = true)]
    Clients(ClientsArgs),
}

#[derive(Args, Debug)]
struct ClientsArgs {
    scenario: PathBuf,
    #[arg(long)]
    bootstrap: String,
    #[arg(long)]
    run_id: String,
    #[arg(long)]
    time_zero: u64,
    #[arg(long)]
    first_process: u64,
    #[arg(long)]
    first_value: u64,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Scenario file (YAML); see scenarios/ for examples. Flags override it.
    scenario: Option<PathBuf>,
    /// Local cluster to start: kafka [default] (3 Apache Kafka KRaft nodes
    /// from Maven Central's jars), tansu (3 brokers sharing SQLite) or
    /// tansu-memory (1 broker, nothing persisted).
    #[arg(long, value_name = "KIND")]
    cluster: Option<String>,
    /// Apache Kafka version for --cluster kafka, resolved from Maven Central
    /// once and cached [default: the pinned version, see `gregor cluster fetch --help`].
    #[arg(long, value_name = "V")]
    kafka_version: Option<String>,
    /// An unpacked Apache Kafka release to run instead of Maven's jars.
    #[arg(long, value_name = "DIR", env = "KAFKA_HOME")]
    kafka_home: Option<String>,
    /// Use an existing cluster (no local cluster, no faults by default).
    #[arg(long, value_name = "HOST:PORT,...")]
    bootstrap: Option<String>,
    /// Brokers of the local cluster.
    #[arg(long)]
    brokers: Option<usize>,
    /// Seconds of workload before healing and final reads [default: 60].
    #[arg(long, value_name = "SECS")]
    time_limit: Option<f64>,
    /// Seed for the generator and the nemesis (a run is reproducible from it).
    #[arg(long)]
    seed: Option<u64>,
    /// Worker processes, each with a producer and a consumer [default: 6].
    #[arg(long)]
    concurrency: Option<u64>,
    /// Target operations per second over all workers [default: 200].
    #[arg(long, value_name = "OPS_PER_SEC")]
    rate: Option<f64>,
    /// Keys (partitions) in play [default: 8].
    #[arg(long)]
    keys: Option<u64>,
    /// Producer acks: 0, 1 or all [default: all].
    #[arg(long, value_parser = ["0", "1", "all"])]
    acks: Option<String>,
    /// Idempotent producers [default].
    #[arg(long, overrides_with = "no_idempotence")]
    idempotence: bool,
    /// Plain (non-idempotent) producers.
    #[arg(long)]
    no_idempotence: bool,
    /// Transactional workload: txn ops mixing sends and polls, read_committed.
    #[arg(long)]
    txn: bool,
    /// How consumers get partitions: assign [default] or subscribe (groups).
    #[arg(long, value_parser = ["assign", "subscribe"])]
    sub_via: Option<String>,
    /// Faults to inject, comma-separated (e.g. kill,pause); "none" for none.
    #[arg(long, value_name = "FAULT,...", value_delimiter = ',')]
    nemesis: Option<Vec<String>>,
    /// Mean seconds between faults [default: 10].
    #[arg(long, value_name = "SECS")]
    nemesis_interval: Option<f64>,
    /// Run store directory [default: store].
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// End the workload at the first anomaly the online checker proves
    /// invalid; then heal, final reads and the full check as usual.
    #[arg(long)]
    fail_fast: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Jsonl,
    JepsenEdn,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// A history.jsonl, a run directory, or (with --format jepsen-edn) a history.edn.
    path: PathBuf,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Input format [default: jsonl, or jepsen-edn for *.edn files].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Infer write-write dependencies from offset order (Jepsen's ww-deps).
    #[arg(long)]
    ww_deps: bool,
    /// Consumers used subscribe (allows poll-skip and nonmonotonic-poll);
    /// normally read from the run's meta.json.
    #[arg(long)]
    subscribe: bool,
    /// Check the history while a run writes it: live anomaly counts on
    /// stderr; ends when the run has finished (or the file stops growing
    /// for --idle seconds), then prints the verdict as without --follow.
    #[arg(long)]
    follow: bool,
    /// With --follow: stop at the first anomaly that makes the verdict
    /// invalid (the verdict is then the check of what was read so far).
    #[arg(long, requires = "follow")]
    fail_fast: bool,
    /// With --follow: give up waiting after this many seconds without a new event.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, requires = "follow")]
    idle: f64,
    /// Check in one streaming pass, in memory that grows with keys and
    /// values, not events (soak-sized histories): the queue analyses and
    /// committed offsets, not the transactional cycle search. Chosen
    /// automatically when the history looks too big for memory.
    #[arg(long, conflicts_with = "follow")]
    stream: bool,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// A run directory (store/latest for the newest run).
    run_dir: PathBuf,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Run store directory.
    #[arg(long, default_value = "store", value_name = "DIR")]
    store: PathBuf,
    /// Address to listen on (loopback by default; 0.0.0.0:PORT to share).
    #[arg(long, default_value = crate::serve::DEFAULT_LISTEN, value_name = "ADDR")]
    listen: String,
}

#[derive(Args, Debug)]
struct ClusterArgs {
    #[command(subcommand)]
    action: ClusterAction,
}

#[derive(Args, Debug, Clone)]
struct ClusterOpts {
    /// kafka (Apache Kafka KRaft), tansu (3 brokers sharing SQLite) or
    /// tansu-memory (1 broker).
    #[arg(long, default_value_t = ClusterKind::DEFAULT.to_string(), value_name = "KIND")]
    cluster: String,
    /// Apache Kafka version (from Maven Central, cached) [default: the pinned version].
    #[arg(long, value_name = "V")]
    kafka_version: Option<String>,
    /// Number of brokers [default: 3 for tansu and kafka, 1 for tansu-memory].
    #[arg(long)]
    brokers: Option<usize>,
    /// Cluster directory: state file, data, logs.
    #[arg(long, default_value = ".gregor/cluster", value_name = "DIR")]
    dir: PathBuf,
    /// Client port of the first broker (the others follow).
    #[arg(long, default_value_t = gregor_deploy::DEFAULT_BASE_PORT)]
    base_port: u16,
    /// An unpacked Apache Kafka release to run instead of Maven's jars.
    #[arg(long, value_name = "DIR", env = "KAFKA_HOME")]
    kafka_home: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct FetchOpts {
    /// Apache Kafka version to resolve [default: the pinned version].
    #[arg(long, value_name = "V")]
    kafka_version: Option<String>,
}

#[derive(Subcommand, Debug)]
enum ClusterAction {
    /// Start a local cluster (does nothing if it is already up).
    Up(ClusterOpts),
    /// Stop the processes `up` started.
    Down(DirOpt),
    /// Resolve an Apache Kafka version's jars from Maven Central into the
    /// cache (~/.cache/gregor/kafka/V), so later clusters start offline.
    Fetch(FetchOpts),
    /// Show each broker: process, port, whether it answers Kafka requests.
    Status(DirOpt),
    /// Undo what a killed gregor left: resume paused brokers, restart dead
    /// ones, remove leftover network namespaces and firewall rules.
    Heal(DirOpt),
    /// List the topics and consumer groups runs left on a cluster
    /// (`<prefix>-<run id>...`); delete them only with --yes.
    Clean(CleanOpts),
}

#[derive(Args, Debug)]
struct CleanOpts {
    /// The cluster's bootstrap servers.
    #[arg(long, value_name = "HOST:PORT,...")]
    bootstrap: String,
    /// The runs' `topic.name`.
    #[arg(long, default_value = gregor_workloads::DEFAULT_TOPIC_PREFIX)]
    prefix: String,
    /// Only runs that started at least this many seconds ago (a run still
    /// going keeps its topic).
    #[arg(long, value_name = "SECS")]
    older_than: Option<u64>,
    /// Delete them; without it, only print what would be deleted.
    #[arg(long)]
    yes: bool,
}

#[derive(Args, Debug)]
struct DirOpt {
    /// Cluster directory [default: .gregor/cluster, else the latest run's].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Parses arguments, runs the command, returns the exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let log = Log::new(cli.quiet);
    match cli.command {
        Command::Run(a) => cmd_run(*a, &log),
        Command::Check(a) => cmd_check(a),
        Command::Report(a) => report_or_error(cmd_report(&a.run_dir, &log)),
        Command::Cluster(a) => report_or_error(cmd_cluster(a.action, &log)),
        Command::Serve(a) => report_or_error(
            crate::serve::serve(&a.store, &a.listen)
                .map(|()| 0)
                .map_err(anyhow::Error::from),
        ),
        Command::Clients(a) => crate::clients::child_main(
            &a.scenario,
            &a.bootstrap,
            &a.run_id,
            a.time_zero,
            a.first_process,
            a.first_value,
        ),
    }
}

fn report_or_error(r: anyhow::Result<i32>) -> i32 {
    r.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        EXIT_ERROR
    })
}

fn cmd_run(a: RunArgs, log: &Log) -> i32 {
    let mut scenario = match &a.scenario {
        Some(p) => match Scenario::load(p) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_ERROR;
            }
        },
        None => Scenario::default(),
    };
    let nemesis = a.nemesis.clone().map(|v| {
        v.into_iter()
            .filter(|f| f != "none" && !f.is_empty())
            .collect()
    });
    let o = Overrides {
        cluster: a.cluster,
        kafka_home: a.kafka_home,
        kafka_version: a.kafka_version,
        bootstrap: a.bootstrap,
        brokers: a.brokers,
        time_limit: a.time_limit,
        seed: a.seed,
        concurrency: a.concurrency,
        rate: a.rate,
        keys: a.keys,
        acks: a.acks,
        idempotence: if a.no_idempotence {
            Some(false)
        } else if a.idempotence {
            Some(true)
        } else {
            None
        },
        txn: a.txn,
        sub_via: a.sub_via,
        nemesis,
        nemesis_interval: a.nemesis_interval,
        store: a.store.clone(),
        fail_fast: a.fail_fast,
    };
    o.apply(&mut scenario);
    if let Err(e) = scenario.validate(
        &a.scenario
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or("flags".into()),
    ) {
        eprintln!("error: {e}");
        return EXIT_ERROR;
    }
    let store_dir = a.store.unwrap_or_else(|| PathBuf::from("store"));
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return EXIT_ERROR;
        }
    };
    match rt.block_on(run::run(scenario, &store_dir, log)) {
        Ok(out) => out.exit_code,
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_ERROR
        }
    }
}

/// Loads a history and the metadata beside it (if any).
fn load_for_check(a: &CheckArgs) -> anyhow::Result<(History, Option<RunMeta>)> {
    let edn = match a.format {
        Some(Format::JepsenEdn) => true,
        Some(Format::Jsonl) => false,
        None => a.path.extension().is_some_and(|e| e == "edn"),
    };
    let path = if edn && a.path.is_dir() {
        a.path.join("history.edn")
    } else {
        store::history_path(&a.path)
    };
    let history = if edn {
        gregor_checkers::edn::read_jepsen_edn(&path)?
    } else {
        History::read(&path)?
    };
    let meta_path = path.parent().unwrap_or(Path::new(".")).join("meta.json");
    let meta = if meta_path.exists() {
        Some(RunMeta::read(&meta_path)?)
    } else {
        None
    };
    Ok((history, meta))
}

fn cmd_follow(a: &CheckArgs) -> i32 {
    let fail = |e: String| {
        if a.json {
            println!("{}", serde_json::json!({ "error": e }));
        }
        eprintln!("error: {e}");
        EXIT_ERROR
    };
    if matches!(a.format, Some(Format::JepsenEdn)) || a.path.extension().is_some_and(|e| e == "edn")
    {
        return fail("--follow reads JSONL histories only".into());
    }
    let idle = std::time::Duration::from_secs_f64(a.idle.max(0.0));
    let followed =
        match crate::follow::follow(&store::history_path(&a.path), a.fail_fast, idle, |o| {
            o.ww_deps |= a.ww_deps;
            o.subscribe |= a.subscribe;
        }) {
            Ok(f) => f,
            Err(e) => return fail(format!("{e:#}")),
        };
    if let Some((kind, index)) = followed.stopped_at {
        eprintln!("fail-fast: {kind} revealed by op {index}; stopped following");
    }
    print_verdict(
        a,
        &followed.history,
        followed.meta.as_ref(),
        &followed.result,
    )
}

/// Whether an in-memory check of this JSONL file would likely not fit:
/// it holds about 2.3 bytes per byte of history; leave half of the
/// available memory to everything else.
fn too_big_for_memory(path: &Path) -> bool {
    let Ok(size) = std::fs::metadata(path).map(|m| m.len()) else {
        return false;
    };
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb.saturating_mul(1024));
    available.is_some_and(|avail| size.saturating_mul(23) / 10 > avail / 2)
}

/// `gregor check --stream`: one streaming pass over a JSONL history.
fn cmd_check_stream(a: &CheckArgs) -> i32 {
    let fail = |e: String| {
        if a.json {
            println!("{}", serde_json::json!({ "error": e }));
        }
        eprintln!("error: {e}");
        EXIT_ERROR
    };
    let path = store::history_path(&a.path);
    let meta_path = path.parent().unwrap_or(Path::new(".")).join("meta.json");
    let meta = if meta_path.exists() {
        match RunMeta::read(&meta_path) {
            Ok(m) => Some(m),
            Err(e) => return fail(format!("{e:#}")),
        }
    } else {
        None
    };
    let mut opts = meta.as_ref().map(CheckOpts::from_meta).unwrap_or_default();
    opts.ww_deps |= a.ww_deps;
    opts.subscribe |= a.subscribe;
    let streamed = match gregor_checkers::stream::check_file(&path, &opts) {
        Ok(s) => s,
        Err(e) => return fail(format!("{e:#}")),
    };
    if let Some(w) = &streamed.truncated_tail {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "note: streaming check: the transactional cycle search was not run{} (check without --stream to run it)",
        if streamed.has_txns {
            " although the history has transactions"
        } else {
            ""
        }
    );
    // The summary's timeline needs the events; a streaming check has none.
    print_verdict(a, &History::default(), meta.as_ref(), &streamed.result)
}

fn cmd_check(a: CheckArgs) -> i32 {
    if a.follow {
        return cmd_follow(&a);
    }
    let edn = matches!(a.format, Some(Format::JepsenEdn))
        || (a.format.is_none() && a.path.extension().is_some_and(|e| e == "edn"));
    if a.stream && edn {
        eprintln!("error: --stream reads JSONL histories only");
        return EXIT_ERROR;
    }
    if !edn && (a.stream || too_big_for_memory(&store::history_path(&a.path))) {
        if !a.stream {
            eprintln!("note: the history looks too big for memory: checking it in one streaming pass (--stream)");
        }
        return cmd_check_stream(&a);
    }
    let (history, meta) = match load_for_check(&a) {
        Ok(x) => x,
        Err(e) => {
            if a.json {
                println!("{}", serde_json::json!({"error": format!("{e:#}")}));
            }
            eprintln!("error: {e:#}");
            return EXIT_ERROR;
        }
    };
    if let Some(w) = &history.truncated_tail {
        eprintln!("warning: {w}");
    }
    let mut opts = meta.as_ref().map(CheckOpts::from_meta).unwrap_or_default();
    opts.ww_deps |= a.ww_deps;
    opts.subscribe |= a.subscribe;
    let result: CheckResult = gregor_checkers::check(&history, &opts);
    print_verdict(&a, &history, meta.as_ref(), &result)
}

/// Prints a verdict (JSON or the summary) and returns its exit status.
fn print_verdict(
    a: &CheckArgs,
    history: &History,
    meta: Option<&RunMeta>,
    result: &CheckResult,
) -> i32 {
    if a.json {
        match serde_json::to_string(&result) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_ERROR;
            }
        }
    } else {
        let dir = if a.path.is_dir() {
            a.path.clone()
        } else {
            a.path.parent().unwrap_or(Path::new(".")).to_path_buf()
        };
        let input = gregor_reports::ReportInput {
            run_dir: &dir,
            history,
            meta,
            result,
        };
        println!("{}", gregor_reports::summary_text(&input));
    }
    result.valid.exit_code()
}

fn cmd_report(dir: &Path, log: &Log) -> anyhow::Result<i32> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a run directory", dir.display());
    }
    let history = History::read(&dir.join("history.jsonl"))?;
    let meta_path = dir.join("meta.json");
    let meta = if meta_path.exists() {
        Some(RunMeta::read(&meta_path)?)
    } else {
        None
    };
    let results_path = dir.join("results.json");
    let result: CheckResult = if results_path.exists() {
        let text = std::fs::read_to_string(&results_path)?;
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", results_path.display()))?
    } else {
        log.line("no results.json: checking the history first");
        let r = gregor_checkers::check(
            &history,
            &meta.as_ref().map(CheckOpts::from_meta).unwrap_or_default(),
        );
        std::fs::write(&results_path, serde_json::to_string_pretty(&r)? + "\n")?;
        r
    };
    let input = gregor_reports::ReportInput {
        run_dir: dir,
        history: &history,
        meta: meta.as_ref(),
        result: &result,
    };
    let files = gregor_reports::write_all(&input)?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(0)
}

/// The cluster directory `down`/`status`/`heal` act on.
fn cluster_dir(d: &DirOpt) -> PathBuf {
    if let Some(d) = &d.dir {
        return d.clone();
    }
    let default = PathBuf::from(".gregor/cluster");
    if default.join(gregor_deploy::STATE_FILE).exists() {
        return default;
    }
    let latest = PathBuf::from("store/latest/cluster");
    if latest.join(gregor_deploy::STATE_FILE).exists() {
        return latest;
    }
    default
}

fn load_cluster(dir: &Path) -> anyhow::Result<Cluster> {
    Cluster::load(dir)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no cluster state in {} (nothing started there)",
            dir.display()
        )
    })
}

fn cmd_cluster(action: ClusterAction, log: &Log) -> anyhow::Result<i32> {
    match action {
        ClusterAction::Up(o) => {
            let kind: ClusterKind = o
                .cluster
                .parse()
                .map_err(|e| anyhow::anyhow!("--cluster: {e}"))?;
            let mut spec = ClusterSpec::new(kind, &o.dir).with_base_port(o.base_port);
            if let Some(b) = o.brokers {
                spec = spec.with_brokers(b);
            }
            spec.kafka_home = o.kafka_home;
            spec.kafka_version = o.kafka_version;
            let c = Cluster::up(spec)?;
            if c.already_up() {
                log.line(&format!(
                    "already up ({}); nothing started",
                    o.dir.display()
                ));
            } else {
                let what = c
                    .kafka_dist()
                    .map(|d| d.describe())
                    .unwrap_or_else(|| kind.to_string());
                log.line(&format!("{what} cluster up ({})", o.dir.display()));
            }
            print_status(&c);
            println!("bootstrap: {}", c.bootstrap());
            Ok(0)
        }
        ClusterAction::Fetch(f) => {
            let version = f
                .kafka_version
                .unwrap_or_else(|| gregor_deploy::DEFAULT_KAFKA_VERSION.into());
            let t = std::time::Instant::now();
            let dist = gregor_deploy::KafkaDist::jars(&version)?;
            log.line(&format!(
                "{} ready in {:.1}s",
                dist.describe(),
                t.elapsed().as_secs_f64()
            ));
            Ok(0)
        }
        ClusterAction::Down(d) => {
            let dir = cluster_dir(&d);
            let mut c = load_cluster(&dir)?;
            c.down()?;
            log.line(&format!("cluster in {} stopped", dir.display()));
            Ok(0)
        }
        ClusterAction::Status(d) => {
            let dir = cluster_dir(&d);
            let c = load_cluster(&dir)?;
            println!("{} cluster in {}", c.kind(), dir.display());
            print_status(&c);
            println!("bootstrap: {}", c.bootstrap());
            Ok(0)
        }
        ClusterAction::Heal(d) => {
            let dir = cluster_dir(&d);
            let mut healed = 0;
            if let Some(mut c) = Cluster::load(&dir)? {
                for i in 0..c.nodes().len() {
                    if c.is_paused(i) {
                        c.resume(i)?;
                        log.line(&format!("resumed {}", c.nodes()[i].name));
                        healed += 1;
                    } else if !c.is_running(i) {
                        c.start(i)?;
                        log.line(&format!("restarted {}", c.nodes()[i].name));
                        healed += 1;
                    }
                }
            }
            for prefix in gregor_deploy::netns::stale_prefixes().unwrap_or_default() {
                // Only runs' namespaces (r<pid>-<k>) whose gregor is gone.
                if !crate::nemesis::net::is_orphan(&prefix) {
                    log.line(&format!(
                        "kept the network namespaces of {prefix}: not left by a dead gregor run"
                    ));
                    continue;
                }
                match gregor_deploy::netns::cleanup_stale(&prefix) {
                    Ok(c) => {
                        log.line(&format!(
                            "removed leftover network namespaces and rules of {prefix}: {c:?}"
                        ));
                        healed += 1;
                    }
                    Err(e) => log.line(&format!("warning: cleaning up {prefix}: {e}")),
                }
            }
            log.line(&format!("heal: {healed} thing(s) repaired"));
            Ok(0)
        }
        ClusterAction::Clean(o) => cmd_clean(o, log),
    }
}

/// `gregor cluster clean`: what earlier runs left, deleted only on --yes.
fn cmd_clean(o: CleanOpts, log: &Log) -> anyhow::Result<i32> {
    use gregor_workloads::{delete_topics_and_groups, list_runs, ClientSettings};
    use std::time::{Duration, SystemTime};
    let settings = ClientSettings {
        bootstrap: o.bootstrap.clone(),
        ..ClientSettings::default()
    };
    let timeout = Duration::from_secs(10);
    let runs = list_runs(&settings, &o.prefix, timeout)?;
    let now = SystemTime::now();
    let min_age = Duration::from_secs(o.older_than.unwrap_or(0));
    let (mut topics, mut groups) = (Vec::new(), Vec::new());
    let mut chosen = 0;
    for r in &runs {
        let age = now.duration_since(r.run.started()).unwrap_or_default();
        if age < min_age {
            continue;
        }
        chosen += 1;
        println!(
            "run {} (started {}, {}s ago): topics [{}], groups [{}]",
            r.run,
            store::rfc3339(r.run.started()),
            age.as_secs(),
            r.topics.join(", "),
            r.groups.join(", ")
        );
        topics.extend(r.topics.iter().cloned());
        groups.extend(r.groups.iter().cloned());
    }
    let what = format!(
        "{} topic(s) and {} consumer group(s) of {chosen} run(s) with prefix {:?}",
        topics.len(),
        groups.len(),
        o.prefix
    );
    if chosen == 0 {
        log.line(&format!("nothing to delete: {what}"));
        return Ok(0);
    }
    if !o.yes {
        println!("would delete {what}; pass --yes to delete them");
        return Ok(0);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let failed = rt.block_on(delete_topics_and_groups(
        &settings, &topics, &groups, timeout,
    ))?;
    if failed.is_empty() {
        println!("deleted {what}");
        Ok(0)
    } else {
        for f in &failed {
            eprintln!("error: cannot delete {f}");
        }
        Ok(EXIT_ERROR)
    }
}

fn print_status(c: &Cluster) {
    for s in c.status() {
        let state = match s.process {
            ProcessStatus::Running => "running",
            ProcessStatus::Paused => "paused",
            ProcessStatus::Down => "down",
        };
        println!(
            "  {:<10} {:<21} pid {:<8} {:<8} {}",
            s.name,
            s.addr,
            s.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            state,
            if s.answering {
                "answering"
            } else if s.accepting {
                "accepting, not answering"
            } else {
                "not reachable"
            }
        );
    }
}
