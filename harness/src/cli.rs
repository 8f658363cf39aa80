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
use gregor_reports::compare::Thresholds;

use crate::plan::{self, RunPlan};
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
    /// Ramp the produce rate in steps until p99 latency or errors cross a
    /// limit; report the highest sustainable rate (table, plots, JSON,
    /// Prometheus text). Exit 0 with a rate, 1 when no step was
    /// sustainable, 3 on error.
    Capacity(Box<CapacityArgs>),
    /// Compare two run directories (or two certificates): verdict, anomaly
    /// counts, loss and duplicate rates, latency quantiles (also inside and
    /// outside fault windows), unavailability, recovery, new-leader and
    /// rebalance times and throughput side by side, each with a threshold.
    /// Exit 1 when B regressed against A.
    Compare(CompareArgs),
    /// Run a suite: a matrix of Kafka versions, fault sets, client settings
    /// and seeds, cell by cell, into one certificate (certificate.html,
    /// certificate.json, junit.xml). Exit code: the worst cell's.
    Certify(CertifyArgs),
    /// Watch consumer lag and cluster health: Prometheus metrics on
    /// /metrics, a dashboard on /, Burrow-style status per group.
    Monitor(MonitorArgs),
    /// Serve or control a lazy filesystem: a pass-through to a backing
    /// directory that forgets what was not fsynced when told to crash
    /// (what `cluster.lazy-disk` puts each Kafka node's log directory on).
    Lazyfs(LazyfsArgs),
    /// Internal: the client process of `gregor run`.
    #[command(name = "__clients", hide = true)]
    Clients(ClientsArgs),
}

#[derive(Args, Debug)]
struct MonitorArgs {
    /// The cluster's bootstrap servers.
    #[arg(long, value_name = "HOST:PORT,...", required_unless_present = "bench")]
    bootstrap: Option<String>,
    /// Seconds between polls.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    interval: f64,
    /// Address of /metrics, / (dashboard) and /api/state (0.0.0.0:PORT to share).
    #[arg(long, default_value = crate::monitor::DEFAULT_LISTEN, value_name = "ADDR")]
    listen: String,
    /// Only consumer groups whose id matches (anchored regular expression).
    #[arg(long, value_name = "REGEX")]
    groups: Option<String>,
    /// Only topics whose name matches (anchored regular expression)
    /// [default: every topic but internal ones].
    #[arg(long, value_name = "REGEX")]
    topics: Option<String>,
    /// The cluster_name label of every metric.
    #[arg(long, default_value = "default", value_name = "NAME")]
    cluster_name: String,
    /// A librdkafka-style client setting (repeatable). Only PLAINTEXT
    /// connections are supported yet: security.protocol, sasl.* and ssl.*
    /// settings are refused.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// Poll once, print the result and exit (exit 3 if the cluster cannot
    /// be reached).
    #[arg(long)]
    once: bool,
    /// With --once: print the snapshot as one JSON object.
    #[arg(long, requires = "once")]
    json: bool,
    /// Do not read record timestamps: lag in seconds by interpolation only.
    #[arg(long)]
    no_exact_lag_seconds: bool,
    /// Internal: benchmark lag and status evaluation over this many
    /// synthetic group-partitions and exit.
    #[arg(long, hide = true, value_name = "GROUP_PARTITIONS")]
    bench: Option<usize>,
}

#[derive(Args, Debug)]
struct ClientsArgs {
    /// The run plan the parent wrote.
    plan: PathBuf,
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

/// Which cluster, client and faults: the flags `run` and `capacity` share.
#[derive(Args, Debug)]
struct TargetArgs {
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
    /// Seed for the generator and the nemesis (a run is reproducible from it).
    #[arg(long)]
    seed: Option<u64>,
    /// Producer acks: 0, 1 or all [default: all].
    #[arg(long, value_parser = ["0", "1", "all"])]
    acks: Option<String>,
    /// Idempotent producers [default].
    #[arg(long, overrides_with = "no_idempotence")]
    idempotence: bool,
    /// Plain (non-idempotent) producers.
    #[arg(long)]
    no_idempotence: bool,
    #[arg(long, value_name = "FAULT,...", value_delimiter = ',', help = format!(
        "Faults to inject, comma-separated (e.g. kill,pause); \"none\" for none [default: {} on a local cluster, none on --bootstrap]",
        plan::defaults::FAULTS.join(",")
    ))]
    nemesis: Option<Vec<String>>,
    #[arg(long, value_name = "SECS", help = format!(
        "Mean seconds between faults [default: {}]",
        plan::defaults::INTERVAL
    ))]
    nemesis_interval: Option<f64>,
}

impl TargetArgs {
    /// The scenario overrides these flags make.
    fn overrides(self) -> Overrides {
        Overrides {
            cluster: self.cluster,
            kafka_home: self.kafka_home,
            kafka_version: self.kafka_version,
            bootstrap: self.bootstrap,
            brokers: self.brokers,
            seed: self.seed,
            acks: self.acks,
            idempotence: if self.no_idempotence {
                Some(false)
            } else if self.idempotence {
                Some(true)
            } else {
                None
            },
            nemesis: self.nemesis.map(|v| {
                v.into_iter()
                    .filter(|f| f != "none" && !f.is_empty())
                    .collect()
            }),
            nemesis_interval: self.nemesis_interval,
            ..Default::default()
        }
    }
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Scenario file (YAML); see scenarios/ for examples. Flags override it.
    scenario: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    #[arg(long, value_name = "SECS", help = format!(
        "Seconds of workload before healing and final reads [default: {}]",
        plan::defaults::TIME_LIMIT
    ))]
    time_limit: Option<f64>,
    #[arg(long, help = format!(
        "Worker processes, each with a producer and a consumer [default: {}]",
        plan::defaults::CONCURRENCY
    ))]
    concurrency: Option<u64>,
    #[arg(long, value_name = "OPS_PER_SEC", help = format!(
        "Target operations per second over all workers [default: {}]",
        plan::defaults::RATE
    ))]
    rate: Option<f64>,
    #[arg(long, help = format!("Keys (partitions) in play [default: {}]", plan::defaults::KEYS))]
    keys: Option<u64>,
    /// Transactional workload: txn ops mixing sends and polls, read_committed.
    #[arg(long)]
    txn: bool,
    /// How consumers get partitions: assign [default] or subscribe (groups).
    #[arg(long, value_parser = ["assign", "subscribe"])]
    sub_via: Option<String>,
    /// Run store directory [default: store].
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Print the run plan (the scenario and flags with every default filled
    /// in, as YAML: itself a scenario file) and exit without running.
    #[arg(long)]
    print_plan: bool,
    /// End the workload at the first anomaly the online checker proves
    /// invalid; then heal, final reads and the full check as usual.
    #[arg(long)]
    fail_fast: bool,
    /// A run directory to compare this run with (as `gregor compare`, with
    /// the thresholds below): a valid run that regressed against it exits 1.
    #[arg(long, value_name = "DIR")]
    baseline: Option<PathBuf>,
    /// Serve live /metrics during the run (online checker's anomaly
    /// counts, ops, and the run cluster's lag and ISR), e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Post each nemesis action to this Grafana as an annotation (token
    /// from GREGOR_GRAFANA_TOKEN), e.g. http://grafana:3000.
    #[arg(long, value_name = "URL")]
    grafana: Option<String>,
    /// Push the finished run's verdict, counts, rates and latency
    /// quantiles to this Prometheus Pushgateway, e.g. http://pushgateway:9091.
    #[arg(long, value_name = "URL")]
    pushgateway: Option<String>,
    #[command(flatten, next_help_heading = "Regression thresholds (with --baseline)")]
    thresholds: Thresholds,
}

#[derive(Args, Debug)]
struct CertifyArgs {
    /// Suite file (YAML); see suites/.
    suite: PathBuf,
    /// Finish the latest certificate of this suite: cells already done are not run again.
    #[arg(long)]
    resume: bool,
    /// A certificate directory to compare each cell against (same cell ids).
    #[arg(long, value_name = "DIR")]
    baseline: Option<PathBuf>,
    /// Run store directory [default: store].
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    #[command(flatten, next_help_heading = "Regression thresholds (with --baseline)")]
    thresholds: Thresholds,
}

#[derive(Args, Debug)]
struct CompareArgs {
    /// The baseline run directory (with results.json).
    a: PathBuf,
    /// The run directory to judge against it.
    b: PathBuf,
    /// Print the comparison as one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    thresholds: Thresholds,
}

#[derive(Args, Debug)]
struct CapacityArgs {
    /// Scenario file (YAML): its cluster, topic, client, nemesis and
    /// `capacity:` sections apply. Flags override it.
    scenario: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    /// Records per second of the first step [default: 1000].
    #[arg(long, value_name = "PER_SEC")]
    start_rate: Option<f64>,
    /// Each step offers this many times the rate before [default: 1.5].
    #[arg(long)]
    step_factor: Option<f64>,
    /// Highest rate offered [default: 1000000].
    #[arg(long, value_name = "PER_SEC")]
    max_rate: Option<f64>,
    /// Seconds per step [default: 10].
    #[arg(long, value_name = "SECS")]
    step_secs: Option<f64>,
    /// A step is sustained while p99 latency is at most this [default: 100].
    #[arg(long, value_name = "MS")]
    p99_limit_ms: Option<f64>,
    /// ... and failed sends at most this fraction [default: 0.001].
    #[arg(long, value_name = "FRACTION")]
    error_limit: Option<f64>,
    /// Bytes per record value [default: 100].
    #[arg(long, value_name = "BYTES")]
    value_bytes: Option<usize>,
    /// Bisection steps after the first unsustained one [default: 2].
    #[arg(long, value_name = "N")]
    refine: Option<usize>,
    /// Run store directory [default: store].
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
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
    /// Each Kafka node's log directory on a lazy filesystem of its own
    /// (`gregor lazyfs`), for power-loss and disk faults.
    #[arg(long)]
    lazy_disk: bool,
}

#[derive(Args, Debug)]
struct LazyfsArgs {
    #[command(subcommand)]
    action: LazyfsAction,
}

#[derive(Subcommand, Debug)]
enum LazyfsAction {
    /// Mount a lazy filesystem over BACKING at MOUNTPOINT and serve it
    /// until SIGTERM or SIGINT (then unmount).
    Mount {
        backing: PathBuf,
        mountpoint: PathBuf,
        /// Dirty megabytes held before the largest dirty file is written
        /// back (0: never).
        #[arg(long, default_value_t = 1024, value_name = "MB")]
        max_dirty_mb: u64,
    },
    /// Send a command to the lazy filesystem at MOUNTPOINT: `crash`
    /// (forget everything not fsynced), `full on|off`, `slow MS`; with
    /// none, print its status.
    Ctl {
        mountpoint: PathBuf,
        command: Vec<String>,
    },
    /// Detach a lazy filesystem (also a stale one whose server died).
    Unmount { mountpoint: PathBuf },
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
    /// Cluster directory [default: .gregor/cluster, else the latest run's;
    /// `down` and `heal` without it also stop every cluster a dead
    /// `gregor run` left, wherever its store was].
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
        Command::Capacity(a) => cmd_capacity(*a, &log),
        Command::Compare(a) => cmd_compare(a),
        Command::Certify(a) => cmd_certify(a, &log),
        Command::Check(a) => cmd_check(a),
        Command::Report(a) => report_or_error(cmd_report(&a.run_dir, &log)),
        Command::Cluster(a) => report_or_error(cmd_cluster(a.action, &log)),
        Command::Serve(a) => report_or_error(
            crate::serve::serve(&a.store, &a.listen)
                .map(|()| 0)
                .map_err(anyhow::Error::from),
        ),
        Command::Monitor(a) => cmd_monitor(a, &log),
        Command::Lazyfs(a) => report_or_error(cmd_lazyfs(a.action)),
        Command::Clients(a) => crate::clients::child_main(
            &a.plan,
            &a.bootstrap,
            &a.run_id,
            a.time_zero,
            a.first_process,
            a.first_value,
        ),
    }
}

fn monitor_config(
    a: &MonitorArgs,
) -> Result<crate::monitor::MonitorConfig, crate::monitor::MonitorError> {
    use crate::monitor::{MonitorConfig, MonitorError};
    let bootstrap = MonitorConfig::parse_bootstrap(a.bootstrap.as_deref().unwrap_or(""))?;
    if !(a.interval.is_finite() && a.interval > 0.0) {
        return Err(MonitorError::Interval(a.interval));
    }
    let mut c = MonitorConfig::new(&bootstrap).with_settings(&a.settings)?;
    c.interval = std::time::Duration::from_secs_f64(a.interval);
    // A paused broker costs one timeout per poll: keep it near the interval.
    c.request_timeout = c.interval.clamp(
        std::time::Duration::from_secs(2),
        std::time::Duration::from_secs(10),
    );
    c.groups = a
        .groups
        .as_deref()
        .map(|r| MonitorConfig::regex("--groups", r))
        .transpose()?;
    c.topics = a
        .topics
        .as_deref()
        .map(|r| MonitorConfig::regex("--topics", r))
        .transpose()?;
    c.cluster_name = a.cluster_name.clone();
    c.exact_lag_seconds = !a.no_exact_lag_seconds;
    for (k, v) in &c.settings {
        match k.as_str() {
            "security.protocol" => {}
            "request.timeout.ms" | "socket.timeout.ms" => match v.parse::<u64>() {
                Ok(ms) if ms > 0 => c.request_timeout = std::time::Duration::from_millis(ms),
                _ => {
                    return Err(MonitorError::SettingValue {
                        key: k.clone(),
                        value: v.clone(),
                        expected: "expected a positive number of milliseconds",
                    })
                }
            },
            _ => eprintln!("warning: -X {k} is not used by gregor monitor (yet); ignored"),
        }
    }
    Ok(c)
}

/// One line about a poll, for logs.
fn poll_line(s: &crate::monitor::Snapshot) -> String {
    use crate::monitor::GroupStatus;
    let up = s.brokers.iter().filter(|b| b.up).count();
    let count = |st: GroupStatus| s.groups.iter().filter(|g| g.status == st).count();
    let mut line = format!(
        "poll {:.3}s: brokers {up}/{} up, {} partitions ({} under-replicated, {} offline), \
         {} groups (OK {}, WARN {}, ERR {}), {} group-partitions",
        s.poll_seconds,
        s.brokers.len(),
        s.partitions.len(),
        s.partitions.iter().filter(|p| p.under_replicated).count(),
        s.partitions.iter().filter(|p| p.offline).count(),
        s.groups.len(),
        count(GroupStatus::Ok),
        count(GroupStatus::Warn),
        count(GroupStatus::Err),
        s.group_partitions.len()
    );
    for g in s.groups.iter().filter(|g| g.status != GroupStatus::Ok) {
        line.push_str(&format!(
            "\n  group {} {}: lag {} records, {:.1}s",
            g.group, g.status, g.sum_lag, g.max_lag_seconds
        ));
    }
    for b in s.brokers.iter().filter(|b| !b.up) {
        line.push_str(&format!(
            "\n  broker {} ({}) DOWN: {}",
            b.id,
            b.addr,
            b.error.as_deref().unwrap_or("not answering")
        ));
    }
    for e in s.errors.iter().take(5) {
        line.push_str(&format!("\n  error: {e}"));
    }
    if s.errors.len() > 5 {
        line.push_str(&format!("\n  … and {} more errors", s.errors.len() - 5));
    }
    line
}

fn cmd_monitor(a: MonitorArgs, log: &Log) -> i32 {
    if let Some(n) = a.bench {
        let r = crate::monitor::bench::evaluate(n, 20);
        println!("{r}");
        return 0;
    }
    let config = match monitor_config(&a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_ERROR;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return EXIT_ERROR;
        }
    };
    if a.once {
        let mut m = crate::monitor::Monitor::new(config);
        let snap = rt.block_on(m.poll());
        let reachable = snap.brokers.iter().any(|b| b.up);
        if a.json {
            match serde_json::to_string(&snap) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_ERROR;
                }
            }
        } else {
            println!("{}", poll_line(&snap));
        }
        if !reachable {
            eprintln!(
                "error: no broker of {} answered: {}",
                a.bootstrap.as_deref().unwrap_or(""),
                snap.errors.join("; ")
            );
            return EXIT_ERROR;
        }
        return 0;
    }
    let listen = a.listen.clone();
    let bootstrap = a.bootstrap.clone().unwrap_or_default();
    let result = rt.block_on(crate::monitor::server::serve(
        config,
        &listen,
        |addr| {
            let shown = addr.map(|a| a.to_string()).unwrap_or(listen.clone());
            log.line(&format!(
                "monitoring {bootstrap} every {}s: dashboard http://{shown}/ , metrics http://{shown}/metrics",
                a.interval
            ));
        },
        |snap| {
            if !snap.brokers.iter().any(|b| b.up) {
                log.line(&format!(
                    "cannot reach the cluster at {bootstrap} (still trying every {}s): {}",
                    a.interval,
                    snap.errors.first().map(String::as_str).unwrap_or("no broker answered")
                ));
            } else {
                log.line(&poll_line(snap));
            }
        },
    ));
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_ERROR
        }
    }
}

fn report_or_error(r: anyhow::Result<i32>) -> i32 {
    r.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        EXIT_ERROR
    })
}

/// The async runtime of a command; `None` (said on stderr) if it cannot start.
fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            None
        }
    }
}

/// The scenario file (or the defaults); `None` (said on stderr) when it
/// cannot be read or parsed.
fn load_scenario(path: Option<&Path>) -> Option<Scenario> {
    match path {
        Some(p) => match Scenario::load(p) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: {e}");
                None
            }
        },
        None => Some(Scenario::default()),
    }
}

/// What a scenario's errors name as its source.
fn scenario_source(path: Option<&Path>) -> String {
    path.map(|p| p.display().to_string())
        .unwrap_or_else(|| "flags".into())
}

fn cmd_run(a: RunArgs, log: &Log) -> i32 {
    let Some(mut scenario) = load_scenario(a.scenario.as_deref()) else {
        return EXIT_ERROR;
    };
    let o = Overrides {
        time_limit: a.time_limit,
        concurrency: a.concurrency,
        rate: a.rate,
        keys: a.keys,
        txn: a.txn,
        sub_via: a.sub_via,
        store: a.store.clone(),
        fail_fast: a.fail_fast,
        listen: a.listen.clone(),
        grafana: a.grafana.clone(),
        pushgateway: a.pushgateway.clone(),
        ..a.target.overrides()
    };
    o.apply(&mut scenario);
    let plan = match RunPlan::resolve(&scenario, &scenario_source(a.scenario.as_deref())) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_ERROR;
        }
    };
    if a.print_plan {
        return match plan.to_yaml() {
            Ok(y) => {
                print!("{y}");
                0
            }
            Err(e) => {
                eprintln!("error: {e}");
                EXIT_ERROR
            }
        };
    }
    let store_dir = a.store.unwrap_or_else(|| PathBuf::from("store"));
    let Some(rt) = runtime() else {
        return EXIT_ERROR;
    };
    if let Some(b) = &a.baseline {
        if let Err(e) = load_run(b) {
            eprintln!("error: --baseline: {e:#}");
            return EXIT_ERROR;
        }
    }
    match rt.block_on(run::run_with(&plan, &store_dir, log, o.exports())) {
        Ok(out) => match &a.baseline {
            Some(b) if out.exit_code == 0 => {
                let args = CompareArgs {
                    a: b.clone(),
                    b: out.run_dir.clone(),
                    json: false,
                    thresholds: a.thresholds.clone(),
                };
                cmd_compare(args)
            }
            _ => out.exit_code,
        },
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_ERROR
        }
    }
}

/// A run directory's check result and metadata, for `compare`.
fn load_run(dir: &Path) -> anyhow::Result<(CheckResult, Option<RunMeta>)> {
    use anyhow::Context as _;
    let path = dir.join("results.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: cannot read (is it a run directory that was checked?)",
            path.display()
        )
    })?;
    let result: CheckResult = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a gregor check result", path.display()))?;
    let meta_path = dir.join("meta.json");
    let meta = if meta_path.exists() {
        Some(RunMeta::read(&meta_path).with_context(|| format!("{}", meta_path.display()))?)
    } else {
        None
    };
    Ok((result, meta))
}

fn cmd_certify(a: CertifyArgs, log: &Log) -> i32 {
    let suite = match crate::certify::Suite::load(&a.suite) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_ERROR;
        }
    };
    let store_dir = a.store.unwrap_or_else(|| PathBuf::from("store"));
    let Some(rt) = runtime() else {
        return EXIT_ERROR;
    };
    match rt.block_on(crate::certify::certify(
        suite,
        &store_dir,
        a.resume,
        a.baseline.as_deref(),
        &a.thresholds,
        log,
        &mut crate::certify::Runs,
    )) {
        Ok((dir, cert)) => {
            for c in &cert.cells {
                println!(
                    "{:<40} {:<8} {}{}",
                    c.id,
                    c.verdict.as_deref().unwrap_or("not run"),
                    if c.passed == Some(true) {
                        "as expected"
                    } else {
                        "NOT AS EXPECTED"
                    },
                    if c.regressions.is_empty() {
                        String::new()
                    } else {
                        format!("; regressed: {}", c.regressions.join("; "))
                    }
                );
            }
            println!("certificate: {}", dir.join("certificate.html").display());
            cert.exit_code.unwrap_or(EXIT_ERROR)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_ERROR
        }
    }
}

fn cmd_compare(a: CompareArgs) -> i32 {
    use gregor_reports::compare::{compare, text, Side};
    let t = &a.thresholds;
    let certs = [&a.a, &a.b].map(|d| d.join(crate::certify::CERTIFICATE_FILE).is_file());
    if certs[0] || certs[1] {
        if !(certs[0] && certs[1]) {
            eprintln!("error: compare takes two run directories or two certificate directories, not one of each");
            return EXIT_ERROR;
        }
        return match crate::certify::compare_certificates(&a.a, &a.b, t) {
            Ok((text, json, regressed)) => {
                if a.json {
                    println!("{json}");
                } else {
                    print!("{text}");
                }
                i32::from(regressed)
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                EXIT_ERROR
            }
        };
    }
    let (ra, ma) = match load_run(&a.a) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: A: {e:#}");
            return EXIT_ERROR;
        }
    };
    let (rb, mb) = match load_run(&a.b) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: B: {e:#}");
            return EXIT_ERROR;
        }
    };
    let (na, nb) = (a.a.display().to_string(), a.b.display().to_string());
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
    if a.json {
        match serde_json::to_string(&c) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_ERROR;
            }
        }
    } else {
        print!("{}", text(&c));
    }
    i32::from(c.regressed)
}

fn cmd_capacity(a: CapacityArgs, log: &Log) -> i32 {
    let Some(mut scenario) = load_scenario(a.scenario.as_deref()) else {
        return EXIT_ERROR;
    };
    let o = a.target.overrides();
    o.apply(&mut scenario);
    let c = &mut scenario.capacity;
    c.start_rate = a.start_rate.or(c.start_rate);
    c.step_factor = a.step_factor.or(c.step_factor);
    c.max_rate = a.max_rate.or(c.max_rate);
    c.step_secs = a.step_secs.or(c.step_secs);
    c.p99_limit_ms = a.p99_limit_ms.or(c.p99_limit_ms);
    c.error_limit = a.error_limit.or(c.error_limit);
    c.value_bytes = a.value_bytes.or(c.value_bytes);
    c.refine = a.refine.or(c.refine);
    let plan = match RunPlan::resolve(&scenario, &scenario_source(a.scenario.as_deref())) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_ERROR;
        }
    };
    let store_dir = a.store.unwrap_or_else(|| PathBuf::from("store"));
    let Some(rt) = runtime() else {
        return EXIT_ERROR;
    };
    match rt.block_on(crate::capacity::capacity(&plan, &store_dir, log)) {
        Ok(out) => {
            print!("{}", crate::capacity::table(&out.report));
            println!("results in {}", out.run_dir.display());
            if out.report.sustainable_rate.is_some() {
                0
            } else {
                1
            }
        }
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
    if meta.is_some() {
        let dir = if a.path.is_dir() {
            a.path.as_path()
        } else {
            a.path.parent().unwrap_or(Path::new("."))
        };
        match gregor_history::cluster::read_samples(dir) {
            Ok(samples) => opts.cluster_samples = samples,
            Err(e) => eprintln!("warning: cluster samples not used: {e}"),
        }
    }
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

/// Stops every cluster whose `gregor run` is gone (from the registry of
/// clusters gregor started, [`gregor_deploy::registry`]); how many.
fn stop_orphans(log: &Log) -> usize {
    let mut stopped = 0;
    for (mut c, pid) in gregor_deploy::registry::orphans() {
        let dir = c.spec().dir.clone();
        match c.down() {
            Ok(()) => {
                log.line(&format!(
                    "stopped the cluster in {} left by gregor process {pid}, which is gone",
                    dir.display()
                ));
                stopped += 1;
            }
            Err(e) => log.line(&format!(
                "warning: cannot stop the cluster in {} left by gregor process {pid}: {e}",
                dir.display()
            )),
        }
    }
    stopped
}

fn load_cluster(dir: &Path) -> anyhow::Result<Cluster> {
    Cluster::load(dir)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no cluster state in {} (nothing started there)",
            dir.display()
        )
    })
}

fn cmd_lazyfs(action: LazyfsAction) -> anyhow::Result<i32> {
    use gregor_deploy::lazyfs;
    match action {
        LazyfsAction::Mount {
            backing,
            mountpoint,
            max_dirty_mb,
        } => {
            let settings = lazyfs::Settings {
                max_dirty: max_dirty_mb.saturating_mul(1 << 20),
            };
            lazyfs::serve(&backing, &mountpoint, settings)?;
        }
        LazyfsAction::Ctl {
            mountpoint,
            command,
        } => {
            let c = lazyfs::Control::new(&mountpoint);
            if command.is_empty() {
                print!("{}", c.status()?);
            } else {
                let cmd: lazyfs::Command = command
                    .join(" ")
                    .parse()
                    .map_err(|e: String| anyhow::anyhow!(e))?;
                match cmd {
                    lazyfs::Command::Crash => c.crash(),
                    other => c.send(&other),
                }
                .map_err(|e| anyhow::anyhow!("{}: {e}", mountpoint.display()))?;
            }
        }
        LazyfsAction::Unmount { mountpoint } => lazyfs::unmount(&mountpoint)?,
    }
    Ok(0)
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
            spec.lazy_disk = o.lazy_disk;
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
            // Without --dir: also every cluster a dead `gregor run` left,
            // wherever its store was.
            let orphans = if d.dir.is_none() {
                stop_orphans(log)
            } else {
                0
            };
            let dir = cluster_dir(&d);
            match Cluster::load(&dir)? {
                Some(mut c) => {
                    c.down()?;
                    log.line(&format!("cluster in {} stopped", dir.display()));
                }
                None if orphans > 0 => {}
                None => {
                    load_cluster(&dir)?;
                }
            }
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
            if d.dir.is_none() {
                healed += stop_orphans(log);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds(args: &[&str]) -> Thresholds {
        let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        match cli.command {
            Command::Run(r) => r.thresholds,
            Command::Certify(c) => c.thresholds,
            Command::Compare(c) => c.thresholds,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn run_certify_and_compare_take_the_same_thresholds_with_the_same_defaults() {
        let flags = ["--latency-tolerance", "2", "--rebalance-floor-s", "7"];
        let want = Thresholds {
            latency_tolerance: 2.0,
            rebalance_floor_s: 7.0,
            ..Thresholds::DEFAULT
        };
        for head in [
            &["gregor", "run", "--baseline", "b"][..],
            &["gregor", "certify", "s.yaml", "--baseline", "b"],
            &["gregor", "compare", "a", "b"],
        ] {
            assert_eq!(thresholds(head), Thresholds::DEFAULT, "{head:?}");
            let all: Vec<&str> = head.iter().chain(&flags).copied().collect();
            assert_eq!(thresholds(&all), want, "{all:?}");
        }
        // --rate stays the run's offered load, not a threshold.
        let t = thresholds(&["gregor", "run", "--rate", "5", "--rate-tolerance", "0.1"]);
        assert_eq!(t.rate_tolerance, 0.1);
    }

    #[test]
    fn a_negative_threshold_is_refused_naming_its_value() {
        let e = Cli::try_parse_from(["gregor", "certify", "s.yaml", "--anomaly-floor=-3"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--anomaly-floor") && e.contains("at least 0"),
            "{e}"
        );
    }
}
