//! `gregor run`: cluster up (or attach), workload + nemesis, heal, final
//! reads, check, report, cluster down, exit with the verdict.
//!
//! The run directory is written in stages so that a crash at any point
//! leaves something checkable: `scenario.yaml` and `meta.json` first, then
//! `history.jsonl` as it grows, `results.json` and the reports last.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context};
use gregor_checkers::{CheckOpts, CheckResult};
use gregor_deploy::{Cluster, ClusterKind, ClusterSpec};
use gregor_history::{History, Key, Recorder, RunMeta, SubVia};
use gregor_workloads::{
    ensure_topic, final_reads, ClientSettings, GenConfig, KeyMap, Progress, RunId, TopicSpec,
    WorkloadConfig,
};

use crate::nemesis::{self, Breakage, NemesisConfig};
use crate::plan::RunPlan;
use crate::scenario::Scenario;
use crate::{clients, store, ui};

/// Command-line overrides of a scenario (flags win).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub cluster: Option<String>,
    pub kafka_home: Option<String>,
    pub kafka_version: Option<String>,
    pub bootstrap: Option<String>,
    pub brokers: Option<usize>,
    pub time_limit: Option<f64>,
    pub seed: Option<u64>,
    pub concurrency: Option<u64>,
    pub rate: Option<f64>,
    pub keys: Option<u64>,
    pub acks: Option<String>,
    pub idempotence: Option<bool>,
    pub txn: bool,
    pub sub_via: Option<String>,
    pub nemesis: Option<Vec<String>>,
    pub nemesis_interval: Option<f64>,
    pub store: Option<PathBuf>,
    pub fail_fast: bool,
    pub listen: Option<String>,
    pub grafana: Option<String>,
    pub pushgateway: Option<String>,
}

/// Where a run shows itself while it goes on and after: live `/metrics`,
/// Grafana annotations, a Pushgateway push (flags only, not scenario
/// settings: they say where this run reports, not what it tests).
#[derive(Clone, Debug, Default)]
pub struct Exports {
    pub listen: Option<String>,
    pub grafana: Option<String>,
    pub pushgateway: Option<String>,
}

impl Overrides {
    /// The flags that say where the run reports.
    pub fn exports(&self) -> Exports {
        Exports {
            listen: self.listen.clone(),
            grafana: self.grafana.clone(),
            pushgateway: self.pushgateway.clone(),
        }
    }

    /// Applies the flags to a scenario.
    pub fn apply(&self, s: &mut Scenario) {
        let set = |dst: &mut Option<String>, v: &Option<String>| {
            if v.is_some() {
                dst.clone_from(v);
            }
        };
        set(&mut s.cluster.kind, &self.cluster);
        set(&mut s.cluster.kafka_home, &self.kafka_home);
        set(&mut s.cluster.kafka_version, &self.kafka_version);
        set(&mut s.cluster.bootstrap, &self.bootstrap);
        set(&mut s.client.acks, &self.acks);
        set(&mut s.client.sub_via, &self.sub_via);
        s.cluster.brokers = self.brokers.or(s.cluster.brokers);
        s.time_limit = self.time_limit.or(s.time_limit);
        s.seed = self.seed.or(s.seed);
        s.workload.concurrency = self.concurrency.or(s.workload.concurrency);
        s.workload.rate = self.rate.or(s.workload.rate);
        s.workload.keys = self.keys.or(s.workload.keys);
        s.client.idempotence = self.idempotence.or(s.client.idempotence);
        if self.txn {
            s.workload.txn = Some(true);
        }
        if self.nemesis.is_some() {
            s.nemesis.faults.clone_from(&self.nemesis);
        }
        s.nemesis.interval = self.nemesis_interval.or(s.nemesis.interval);
        if self.fail_fast {
            s.checker.fail_fast = Some(true);
        }
    }
}

/// The base name of a run's topic and consumer group: `<topic.name>-<run id>`.
fn run_topic(p: &RunPlan, run_id: &RunId) -> String {
    run_id.topic(&p.topic.name)
}

/// The client settings of a plan.
pub(crate) fn client_settings(p: &RunPlan, bootstrap: &str, run_id: &RunId) -> ClientSettings {
    let c = &p.client;
    ClientSettings {
        bootstrap: bootstrap.to_string(),
        acks: c.acks,
        idempotence: c.idempotence,
        txn: p.workload.txn,
        sub_via: c.sub_via,
        commit: c.commit,
        isolation_level: c.isolation_level,
        auto_offset_reset: c.auto_offset_reset,
        from_beginning: c.from_beginning,
        txn_recovery: c.txn_recovery,
        op_timeout: Duration::from_secs_f64(p.workload.op_timeout),
        poll_timeout: Duration::from_millis(500),
        group_id: run_topic(p, run_id),
        common: c.common.clone(),
        producer: c.producer.clone(),
        consumer: c.consumer.clone(),
    }
}

pub(crate) fn workload_config(
    p: &RunPlan,
    settings: ClientSettings,
    run_id: &RunId,
) -> WorkloadConfig {
    let w = &p.workload;
    let partitions = p.topic.partitions;
    WorkloadConfig {
        gen: GenConfig {
            seed: p.seed,
            keys: w.keys,
            max_writes_per_key: Some(w.max_writes_per_key),
            send_weight: w.mix.send,
            poll_weight: w.mix.poll,
            txn_weight: if settings.txn { w.mix.txn.max(1) } else { 0 },
            max_mops: w.max_mops,
            abort_probability: w.abort_probability,
            reassign_probability: w.reassign_probability,
            subscribe: settings.sub_via == SubVia::Subscribe,
            unread_bias: 0.5,
            first_value: 0,
        },
        keymap: KeyMap::new(run_topic(p, run_id), partitions),
        topic: TopicSpec {
            partitions,
            replication: p.topic.replication,
            configs: p.topic.configs.clone(),
        },
        concurrency: w.concurrency,
        rate: w.rate,
        crash_every: w.crash_clients.map(Duration::from_secs_f64),
        shared_producer: w.shared_producer,
        first_process: 0,
        pipeline: w.pipeline,
        settings,
    }
}

/// The cluster a run uses, and whether the run must stop it afterwards.
pub(crate) struct Target_ {
    pub(crate) bootstrap: String,
    pub(crate) cluster: Option<Arc<Mutex<Cluster>>>,
    started_here: bool,
    pub(crate) label: String,
    /// Fault proxies and namespaces of a local cluster; dropped (proxies
    /// shut, namespaces removed) after the cluster is down.
    net: Option<Arc<nemesis::Net>>,
}

/// First base port from 19092 (in steps of 100) whose ports are all free.
fn free_base_port(count: usize) -> u16 {
    let mut base = gregor_deploy::DEFAULT_BASE_PORT;
    while base < 60_000 {
        if (0..count as u16).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
        base += 100;
    }
    gregor_deploy::DEFAULT_BASE_PORT
}

pub(crate) fn bring_up(p: &RunPlan, run_dir: &Path, log: &ui::Log) -> anyhow::Result<Target_> {
    let Some((kind, brokers)) = p.cluster.local() else {
        let b = p.cluster.bootstrap.as_deref().unwrap_or_default();
        return Ok(Target_ {
            bootstrap: b.to_string(),
            cluster: None,
            started_here: false,
            label: format!("bootstrap {b}"),
            net: None,
        });
    };
    let mut spec = ClusterSpec::new(kind, run_dir.join("cluster")).with_brokers(brokers);
    // Link faults put a proxy in front of every broker; partitions put
    // every broker in its own network namespace. Refused here, before
    // anything starts, when the host cannot do them.
    let ncfg = NemesisConfig::from_plan(&p.nemesis, p.seed);
    let topology = if ncfg.needs_netns() {
        let t = nemesis::net::create_topology(brokers).map_err(|e| {
            anyhow!(
                "partition faults cannot run here ({e}); run as root with nftables, \
                 or drop partition and leader-partition from the faults"
            )
        })?;
        log.line(&format!(
            "brokers in network namespaces gregor-{}-N on {}",
            t.prefix(),
            t.subnet()
        ));
        Some(t)
    } else {
        None
    };
    spec = spec.with_network(nemesis::net::network_spec(
        ncfg.needs_proxy(),
        topology.as_ref(),
    ));
    let ports = spec.ports_needed();
    spec = spec.with_base_port(p.cluster.base_port.unwrap_or_else(|| free_base_port(ports)));
    spec.kafka_home = p.cluster.kafka_home.clone().map(PathBuf::from);
    spec.kafka_version.clone_from(&p.cluster.kafka_version);
    spec.broker_configs.clone_from(&p.cluster.broker_configs);
    spec.lazy_disk = p.cluster.lazy_disk;
    // The cluster lives for this process: if it dies, `gregor cluster down`
    // and `heal` find the cluster wherever the store is.
    spec.owner = Some(std::process::id());
    let proxied = spec.network.proxied;
    let (spec_for_net, seed) = (spec.clone(), p.seed);
    let start_net = move || {
        tokio::runtime::Handle::current().block_on(nemesis::Net::start(
            &spec_for_net,
            topology,
            seed,
        ))
    };
    // The proxies run on this runtime; blocking here must not starve them.
    let multi = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread;
    let net = if multi {
        tokio::task::block_in_place(start_net)
    } else {
        start_net()
    }
    .context("cannot start the fault proxies")?;
    ncfg.check_cluster(kind, brokers, Some(&net), spec.lazy_disk)
        .map_err(|e| anyhow!("{e}"))?;
    log.line(&format!(
        "starting {kind} cluster: {brokers} broker(s) from port {}{}",
        spec.base_port,
        if proxied { " behind fault proxies" } else { "" }
    ));
    if spec.lazy_disk {
        log.line("log directories on lazy disks (what is not fsynced is lost at a power loss)");
    }
    let t = Instant::now();
    let up = || Cluster::up(spec);
    let cluster = if multi {
        tokio::task::block_in_place(up)
    } else {
        up()
    }
    .context("cannot start the local cluster")?;
    let bootstrap = cluster.bootstrap();
    let label = match cluster.kafka_dist() {
        Some(dist) => dist.describe(),
        None => kind.to_string(),
    };
    log.line(&format!(
        "{label}: cluster up in {:.1}s at {bootstrap}",
        t.elapsed().as_secs_f64()
    ));
    Ok(Target_ {
        bootstrap,
        cluster: Some(Arc::new(Mutex::new(cluster))),
        started_here: true,
        label,
        net: Some(Arc::new(net)),
    })
}

/// What a finished run produced.
pub struct RunOutcome {
    pub run_dir: PathBuf,
    pub result: Option<CheckResult>,
    pub exit_code: i32,
}

/// Runs a scenario end to end. Errors before the history exists are
/// returned; later ones still check what was recorded.
pub async fn run(plan: &RunPlan, store_dir: &Path, log: &ui::Log) -> anyhow::Result<RunOutcome> {
    run_with(plan, store_dir, log, Exports::default()).await
}

/// Creates `store_dir/<name>/<timestamp>/`, points the log at it and
/// writes the plan there as `scenario.yaml` (an error, never an empty
/// file, if it cannot be serialized).
pub(crate) fn open_run_dir(
    p: &RunPlan,
    store_dir: &Path,
    name: &str,
    log: &ui::Log,
) -> anyhow::Result<PathBuf> {
    let run_dir = store::create_run_dir(store_dir, name).with_context(|| {
        format!(
            "cannot create a run directory under {}",
            store_dir.display()
        )
    })?;
    log.set_file(&run_dir.join("logs").join("harness.log"));
    log.line(&format!("run directory {}", run_dir.display()));
    let yaml = p.to_yaml()?;
    std::fs::write(run_dir.join("scenario.yaml"), yaml).context("cannot write scenario.yaml")?;
    Ok(run_dir)
}

/// [`run`], reporting live and afterwards where `exports` says.
pub async fn run_with(
    plan: &RunPlan,
    store_dir: &Path,
    log: &ui::Log,
    exports: Exports,
) -> anyhow::Result<RunOutcome> {
    let s = plan;
    let run_dir = open_run_dir(s, store_dir, &s.name, log)?;

    // Signals: stop the workload, heal, check what exists.
    let interrupted = Arc::new(AtomicBool::new(false));
    let aborted = Arc::new(AtomicBool::new(false));
    spawn_signal_watch(interrupted.clone(), aborted.clone());

    let target = bring_up(s, &run_dir, log)?;
    let result = run_on(s, &run_dir, &target, log, interrupted, aborted, &exports).await;
    if target.started_here {
        if let Some(c) = &target.cluster {
            let mut c = c.lock().unwrap_or_else(|p| p.into_inner());
            log.line("stopping the local cluster");
            if let Err(e) = c.down() {
                log.line(&format!("warning: stopping the cluster: {e}"));
            }
        }
    }
    let (result, code) = result?;
    Ok(RunOutcome {
        run_dir,
        result: Some(result),
        exit_code: code,
    })
}

/// First SIGINT/SIGTERM sets `interrupted` (stop the workload, heal,
/// short final reads, check); a second sets `aborted` (skip final reads).
pub(crate) fn spawn_signal_watch(interrupted: Arc<AtomicBool>, aborted: Arc<AtomicBool>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        for flag in [interrupted, aborted] {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            flag.store(true, Ordering::SeqCst);
        }
    });
}

async fn run_on(
    s: &RunPlan,
    run_dir: &Path,
    target: &Target_,
    log: &ui::Log,
    interrupted: Arc<AtomicBool>,
    aborted: Arc<AtomicBool>,
    exports: &Exports,
) -> anyhow::Result<(CheckResult, i32)> {
    // A topic and group of its own: no run reads another's records.
    let run_id = RunId::generate();
    let settings = client_settings(s, &target.bootstrap, &run_id);
    let wl = workload_config(s, settings.clone(), &run_id);
    settings
        .validate()
        .context("the client settings of the scenario")?;
    let topic = wl.keymap.topic(0);
    let info = ensure_topic(&settings, &topic, &wl.topic, Duration::from_secs(30))
        .await
        .with_context(|| format!("cannot set up topic {topic}"))?;
    log.line(&format!(
        "topic {} ready: {} partitions, replication factor {} ({} broker(s) in metadata)",
        info.name, info.partitions, info.replication, info.brokers
    ));

    let mut meta = RunMeta {
        gregor_version: env!("CARGO_PKG_VERSION").into(),
        scenario: s.name.clone(),
        seed: s.seed,
        started_at: store::rfc3339(SystemTime::now()),
        cluster: target.label.clone(),
        bootstrap: target.bootstrap.clone(),
        keys: wl.keymap.table(0..wl.gen.keys),
        client: settings.meta(),
        ww_deps: s.checker.ww_deps,
        extra: Default::default(),
    };
    meta.extra
        .insert("run-id".into(), serde_json::json!(run_id.as_str()));
    if let Some(c) = &target.cluster {
        let c = c.lock().unwrap_or_else(|p| p.into_inner());
        meta.extra
            .insert("cluster-kind".into(), serde_json::json!(c.kind().as_str()));
        if let Some(v) = c.kafka_dist().and_then(|d| d.version()) {
            meta.extra
                .insert("kafka-version".into(), serde_json::json!(v));
        }
    }
    meta.extra.insert(
        "replication-factor".into(),
        serde_json::json!(info.replication),
    );
    meta.extra.insert(
        "nemesis".into(),
        serde_json::to_value(&s.nemesis).context("cannot record the nemesis plan")?,
    );
    let meta_path = run_dir.join("meta.json");
    meta.write(&meta_path)?;

    let history_path = run_dir.join("history.jsonl");
    let (zero, zero_mono) = (Instant::now(), clients::mono_ns());
    let rec = Recorder::create_at(&history_path, zero).context("cannot create history.jsonl")?;
    // The online checker: live counts of what a partial history proves.
    let live = Arc::new(gregor_checkers::online::Live::spawn_detectors(
        rec.tap(),
        CheckOpts::from_meta(&meta),
    ));
    let started = Instant::now();
    let progress = Arc::new(Progress::default());
    // Each nemesis action to Grafana, as it happens.
    let annotator = exports.grafana.as_ref().map(|url| {
        log.line(&format!("posting nemesis actions to Grafana at {url}"));
        crate::export::Annotator::spawn(
            url,
            std::env::var(crate::export::GRAFANA_TOKEN_ENV)
                .ok()
                .filter(|t| !t.is_empty()),
            rec.tap(),
            SystemTime::now() - zero.elapsed(),
            run_id.as_str().to_string(),
        )
    });
    // The run's cluster, lag and ISR, sampled into monitor.jsonl.
    let latest: crate::runmetrics::Latest = Arc::default();
    let monitor_addrs: Vec<String> = match &target.cluster {
        Some(c) => c
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .nodes()
            .iter()
            .map(|n| n.direct_addr())
            .collect(),
        None => target
            .bootstrap
            .split(',')
            .map(|a| a.trim().to_string())
            .collect(),
    };
    let run_monitor = crate::runmon::RunMonitor::start(crate::runmon::RunMonitorSpec {
        bootstrap: monitor_addrs,
        keymap: wl.keymap.clone(),
        group: settings.group_id.clone(),
        progress: progress.clone(),
        path: run_dir.join(gregor_history::cluster::MONITOR_FILE),
        zero,
        interval: crate::runmon::INTERVAL,
        latest: Some(latest.clone()),
    })
    .map_err(|e| log.line(&format!("warning: cannot monitor the run's lag: {e}")))
    .ok();
    // Live /metrics.
    let metrics_server = match &exports.listen {
        None => None,
        Some(addr) => {
            let (live, progress, latest) = (live.clone(), progress.clone(), latest.clone());
            let body: crate::runmetrics::Body = Arc::new(move || {
                let snap = latest.lock().unwrap_or_else(|p| p.into_inner()).clone();
                crate::runmetrics::render(
                    &live.status(),
                    &progress,
                    started.elapsed(),
                    snap.as_ref(),
                )
            });
            let server =
                crate::runmetrics::MetricsServer::start(addr, body).map_err(|e| anyhow!(e))?;
            log.line(&format!("live metrics at http://{}/metrics", server.addr()));
            Some(server)
        }
    };

    // The brokers' view, sampled beside the history.
    let mut sample_addrs: Vec<String> = match &target.cluster {
        Some(c) => c
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .nodes()
            .iter()
            .map(|n| n.direct_addr())
            .collect(),
        None => Vec::new(),
    };
    sample_addrs.extend(target.bootstrap.split(',').map(|a| a.trim().to_string()));
    sample_addrs.dedup();
    let sampler = crate::truth::Sampler::start(
        sample_addrs,
        wl.keymap.clone(),
        run_dir.join(gregor_history::cluster::CLUSTER_SAMPLES_FILE),
        zero,
    )
    .map_err(|e| {
        log.line(&format!(
            "warning: cannot sample the cluster's metadata: {e}"
        ))
    })
    .ok();

    // Nemesis on its own thread; it stalls the consumers through `control`.
    let control = Arc::new(clients::Control::default());
    let nemesis_stop = Arc::new(AtomicBool::new(false));
    let nemesis_thread = spawn_nemesis(
        s,
        target,
        &settings,
        &wl,
        rec.clone(),
        nemesis_stop.clone(),
        Some(control.clone()),
        log,
    )?;

    // A rolling upgrade, beside the nemesis, on a thread of its own.
    let rolling = nemesis::upgrade::Rolling::of(&s.nemesis);
    let upgrade_thread = match (rolling, &target.cluster) {
        (Some(plan), Some(cluster)) => {
            log.line(&format!(
                "rolling {} from {:.0}s into the workload",
                match &plan.change {
                    nemesis::upgrade::Change::Version(v) => format!("change to Apache Kafka {v}"),
                    nemesis::upgrade::Change::Config(m) => format!("config change {m:?}"),
                },
                plan.at.as_secs_f64()
            ));
            let (c, r, st) = (cluster.clone(), rec.clone(), nemesis_stop.clone());
            Some(
                std::thread::Builder::new()
                    .name("upgrade".into())
                    .spawn(move || nemesis::upgrade::run(plan, c, r, st))?,
            )
        }
        _ => None,
    };

    let child = clients::ChildSpec {
        exe: std::env::current_exe().context("cannot find the gregor executable")?,
        plan: run_dir.join("scenario.yaml"),
        bootstrap: target.bootstrap.clone(),
        run_id: run_id.clone(),
        time_zero_mono: zero_mono,
        log: run_dir.join("logs").join("clients.log"),
        // Long enough for a transaction's every step to time out.
        stop_grace: Duration::from_secs_f64(s.workload.op_timeout) * 10,
    };
    let workers = clients::Clients::start_with(child, rec.clone(), progress.clone(), 0, control)
        .context("cannot start the client process")?;
    let time_limit = s.time_limit();
    let bar = ui::Bar::new(log, time_limit);
    let fail_fast = s.checker.fail_fast;
    // A rolling upgrade in progress keeps the workload going past the time
    // limit (up to 10 more minutes): the history must cover all of it.
    let upgrading = |t: &Option<std::thread::JoinHandle<()>>| {
        t.as_ref().is_some_and(|t| !t.is_finished())
            && started.elapsed() < time_limit + Duration::from_secs(600)
    };
    let mut said_upgrading = false;
    while (started.elapsed() < time_limit || upgrading(&upgrade_thread))
        && !interrupted.load(Ordering::SeqCst)
    {
        if started.elapsed() >= time_limit && !said_upgrading {
            said_upgrading = true;
            log.line("time limit reached; the workload goes on until the rolling upgrade is done");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let st = live.status();
        bar.update(started.elapsed(), &progress, &st.summary());
        if let (true, Some((kind, index))) = (fail_fast, st.first_bad) {
            log.line(&format!(
                "fail-fast: {kind} proven at history index {index}; ending the workload"
            ));
            meta.extra.insert(
                "fail-fast".into(),
                serde_json::json!({"type": kind, "index": index}),
            );
            break;
        }
    }
    bar.finish();
    if let Some(c) = &target.cluster {
        let c = c.lock().unwrap_or_else(|p| p.into_inner());
        let rss: Vec<serde_json::Value> = (0..c.nodes().len())
            .map(|i| serde_json::json!(c.rss_bytes(i).map(|b| b / (1024 * 1024))))
            .collect();
        log.line(&format!(
            "broker memory (RSS, MiB) at the end of the workload: {}",
            serde_json::Value::Array(rss.clone())
        ));
        meta.extra
            .insert("broker-rss-mib".into(), serde_json::Value::Array(rss));
    }
    if interrupted.load(Ordering::SeqCst) {
        log.line("interrupted: stopping the workload, healing, then checking what was recorded");
    }
    // Heal before final reads.
    nemesis_stop.store(true, Ordering::SeqCst);
    if let Some(t) = upgrade_thread {
        if t.join().is_err() {
            log.line("warning: the upgrade thread panicked");
        }
    }
    if let Some(t) = nemesis_thread {
        if t.join().is_err() {
            log.line("warning: the nemesis thread panicked; healing from here");
            if let Some(c) = &target.cluster {
                let mut b = Breakage::new(c.clone(), Some(rec.clone()));
                b.heal_all();
            }
        }
    }
    let end = tokio::task::spawn_blocking(move || workers.stop())
        .await
        .map_err(|e| anyhow!("client supervisor failed: {e}"))?;
    // The consumers' positions stop moving here (final reads are not
    // theirs): the lag samples end with the workload.
    if let Some(m) = run_monitor {
        let n = tokio::task::spawn_blocking(move || m.stop())
            .await
            .unwrap_or(0);
        meta.extra
            .insert("monitor-samples".into(), serde_json::json!(n));
    }
    for d in &end.deaths {
        log.line(&format!(
            "the client process died ({d}) and was restarted; its open ops are recorded as info"
        ));
    }
    if end.rejected_settings {
        meta.extra
            .insert(SETTINGS_REJECTED.into(), serde_json::json!(true));
    }
    if end.unreadable > 0 {
        log.line(&format!(
            "warning: {} line(s) from the client process were not events and are not in the \
             history; each is in logs/clients.log",
            end.unreadable
        ));
        meta.extra.insert(
            "client-lines-unreadable".into(),
            serde_json::json!(end.unreadable),
        );
    }
    let first_ok = progress.first_ok_ns.load(Ordering::Relaxed);
    if first_ok > 0 {
        let since_start =
            log.elapsed().saturating_sub(zero.elapsed()) + Duration::from_nanos(first_ok);
        log.line(&format!(
            "time to first op: {:.2}s after `gregor run` started ({:.2}s after the workload started)",
            since_start.as_secs_f64(),
            first_ok as f64 / 1e9
        ));
    }

    // Final reads: after an interrupt they are shorter (10 s at most), and a
    // second signal skips or stops them.
    // Every key sent to, also those whose offsets no op learned (acks=0).
    let sent_keys: Vec<Key> = end.max_key.map(|m| (0..=m).collect()).unwrap_or_default();
    let final_state = if end.highest.is_empty() && sent_keys.is_empty() {
        "none needed"
    } else if aborted.load(Ordering::SeqCst) {
        log.line("second signal: skipping final reads");
        "skipped"
    } else {
        let mut limit = Duration::from_secs_f64(s.workload.final_time_limit);
        if interrupted.load(Ordering::SeqCst) {
            limit = limit.min(Duration::from_secs(10));
        }
        log.line(&format!(
            "final reads of {} key(s), up to {:.0}s",
            end.highest.len().max(sent_keys.len()),
            limit.as_secs_f64()
        ));
        let t = Instant::now();
        let fr = final_reads(
            end.next_process,
            &settings,
            &wl.keymap,
            rec.clone(),
            &end.highest,
            &sent_keys,
            Instant::now() + limit,
        );
        let fr = tokio::select! {
            r = fr => Some(r),
            _ = wait_flag(aborted.clone()) => None,
        };
        match fr {
            Some(Ok(missing)) if missing.is_empty() => {
                log.line(&format!(
                    "final reads reached every key in {:.1}s",
                    t.elapsed().as_secs_f64()
                ));
                "complete"
            }
            Some(Ok(missing)) => {
                log.line(&format!(
                    "final reads did not reach the highest offset of {} key(s) within the limit: {:?}",
                    missing.len(),
                    missing.keys().take(10).collect::<Vec<_>>()
                ));
                "incomplete"
            }
            Some(Err(e)) => {
                log.line(&format!("final reads failed: {e}"));
                "failed"
            }
            None => {
                log.line("second signal during final reads: stopped them");
                "skipped"
            }
        }
    };
    rec.flush().context("cannot write history.jsonl")?;
    rec.close_taps();
    drop(rec);
    if let Some(a) = annotator {
        let (posted, errors) = a.finish();
        log.line(&format!("Grafana: {posted} annotation(s) posted"));
        if let Some(e) = errors.first() {
            log.line(&format!(
                "warning: {} annotation(s) not posted, e.g. {e}",
                errors.len()
            ));
        }
    }
    let st = live.status();
    if let Some(m) = &st.malformed {
        log.line(&format!("warning: the online checker stopped: {m}"));
    }
    if !st.counts.is_empty() {
        log.line(&format!("online checker: {}", st.summary()));
    }
    if let Some(sampler) = sampler {
        let n = sampler.stop();
        meta.extra
            .insert("cluster-samples".into(), serde_json::json!(n));
    }
    let all_keys = 0..wl.gen.keys.max(end.max_key.map_or(0, |k| k + 1));
    let offsets = {
        let (settings, keymap) = (settings.clone(), wl.keymap.clone());
        let keys = all_keys.clone();
        tokio::task::spawn_blocking(move || crate::truth::broker_offsets(&settings, &keymap, keys))
            .await
            .unwrap_or_default()
    };
    if let Err(e) = crate::truth::write_broker_offsets(run_dir, &offsets) {
        log.line(&format!("warning: cannot write the brokers' offsets: {e}"));
    }

    meta.extra
        .insert("final-reads".into(), serde_json::json!(final_state));
    meta.keys = wl.keymap.table(all_keys);
    if !end.deaths.is_empty() {
        meta.extra.insert(
            "client-process-deaths".into(),
            serde_json::json!(end.deaths),
        );
    }
    meta.extra.insert(
        "workload-seconds".into(),
        serde_json::json!(started.elapsed().as_secs_f64()),
    );
    meta.write(&meta_path)?;
    save_broker_logs(target, run_dir);

    let (result, code) = check_and_report(run_dir, &meta, log)?;
    if let Some(url) = &exports.pushgateway {
        let text = crate::export::results_text(&result, &meta);
        let (url2, id) = (url.clone(), run_id.as_str().to_string());
        match tokio::task::spawn_blocking(move || crate::export::push_results(&url2, &id, text))
            .await
        {
            Ok(Ok(())) => log.line(&format!("results pushed to the Pushgateway at {url}")),
            Ok(Err(e)) => log.line(&format!("warning: Pushgateway: {e}")),
            Err(e) => log.line(&format!("warning: Pushgateway: {e}")),
        }
    }
    if let Some(m) = metrics_server {
        m.stop();
    }
    Ok((result, code))
}

async fn wait_flag(flag: Arc<AtomicBool>) {
    while !flag.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Broker logs live in the cluster directory; link them from `logs/`.
fn save_broker_logs(target: &Target_, run_dir: &Path) {
    if let Some(c) = &target.cluster {
        let c = c.lock().unwrap_or_else(|p| p.into_inner());
        for n in c.nodes() {
            let dst = run_dir.join("logs").join(format!("{}.log", n.name));
            if !dst.exists() {
                let rel = pathdiff(&n.log, &run_dir.join("logs"));
                let _ = std::os::unix::fs::symlink(rel, &dst);
            }
        }
    }
}

fn pathdiff(path: &Path, base: &Path) -> PathBuf {
    match path.strip_prefix(base.parent().unwrap_or(base)) {
        Ok(rel) => Path::new("..").join(rel),
        Err(_) => path.to_path_buf(),
    }
}

/// A tansu-memory broker comes back empty: recreate the topic at once
/// (through a raw CreateTopics, before clients ask for its metadata), so
/// the workload goes on and the checker sees what the broker forgot.
/// Without it, librdkafka 2.12.1 crashes (SIGSEGV in
/// rd_kafka_metadata_cache_find) on tansu's metadata answer for the
/// vanished topic.
fn forgetful_restart_hook(
    cluster: &Arc<Mutex<Cluster>>,
    wl: &WorkloadConfig,
) -> Option<nemesis::AfterStart> {
    let kind = cluster.lock().unwrap_or_else(|p| p.into_inner()).kind();
    if kind != ClusterKind::TansuMemory {
        return None;
    }
    let (topic, partitions) = (wl.keymap.topic(0), wl.topic.partitions as i32);
    Some(Arc::new(move |addr: &str| {
        let _ =
            gregor_deploy::wire::create_topic(addr, &topic, partitions, 1, Duration::from_secs(5));
    }))
}

/// A function returning the leader address of key 0's partition (as the
/// brokers advertise it), asked of the bootstrap brokers in turn through
/// the one raw metadata request ([`gregor_deploy::wire::metadata`]): the
/// nemesis acts on a local cluster only.
fn leader_lookup(
    settings: &ClientSettings,
    keymap: &KeyMap,
) -> Arc<dyn Fn() -> Option<String> + Send + Sync> {
    let bootstrap: Vec<String> = settings
        .bootstrap
        .split(',')
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    let (topic, partition) = (keymap.topic(0), keymap.partition(0));
    Arc::new(move || {
        bootstrap.iter().find_map(|addr| {
            let md = gregor_deploy::wire::metadata(addr, &[&topic], Duration::from_secs(3)).ok()?;
            let t = md.topics.iter().find(|t| t.name == topic)?;
            let leader = t
                .partitions
                .iter()
                .find(|p| p.partition == partition)?
                .leader;
            let b = md.brokers.iter().find(|b| b.node_id == leader)?;
            Some(format!("{}:{}", b.host, b.port))
        })
    })
}

/// `meta.json`'s mark of a run whose client process refused its settings.
const SETTINGS_REJECTED: &str = "client-settings-rejected";

/// Reads the run's history back, checks it, writes results and reports.
pub fn check_and_report(
    run_dir: &Path,
    meta: &RunMeta,
    log: &ui::Log,
) -> anyhow::Result<(CheckResult, i32)> {
    let history = History::read(&run_dir.join("history.jsonl"))?;
    if let Some(w) = &history.truncated_tail {
        log.line(&format!("warning: {w}"));
    }
    let t = Instant::now();
    let mut opts = CheckOpts::from_meta(meta);
    match gregor_history::cluster::read_samples(run_dir) {
        Ok(samples) => opts.cluster_samples = samples,
        Err(e) => log.line(&format!("warning: cluster samples not used: {e}")),
    }
    let result = gregor_checkers::check(&history, &opts);
    log.line(&format!(
        "checked {} events in {:.2}s",
        history.len(),
        t.elapsed().as_secs_f64()
    ));
    let json = serde_json::to_string_pretty(&result)?;
    std::fs::write(run_dir.join("results.json"), json + "\n")
        .context("cannot write results.json")?;
    let input = gregor_reports::ReportInput {
        run_dir,
        history: &history,
        meta: Some(meta),
        result: &result,
    };
    if let Err(e) = gregor_reports::write_all(&input) {
        log.line(&format!("warning: reports: {e}"));
    }
    println!("{}", gregor_reports::summary_text(&input));
    let mut code = result.valid.exit_code();
    if meta.extra.get(SETTINGS_REJECTED) == Some(&serde_json::json!(true)) {
        log.line(
            "error: the client process rejected its settings (logs/clients.log says what): \
             the workload did not run as the scenario asked, so the verdict does not count",
        );
        code = 3;
    }
    Ok((result, code))
}

impl Target_ {
    /// Stops the local cluster if this run started it.
    pub(crate) fn down_if_started(&self, log: &ui::Log) {
        if !self.started_here {
            return;
        }
        if let Some(c) = &self.cluster {
            let mut c = c.lock().unwrap_or_else(|p| p.into_inner());
            log.line("stopping the local cluster");
            if let Err(e) = c.down() {
                log.line(&format!("warning: stopping the cluster: {e}"));
            }
        }
    }
}

/// Starts the scenario's nemesis on a thread of its own, recording into
/// `rec`, until `stop`; `None` when there are no faults (or no local
/// cluster to inject them into, which is said in the log).
#[allow(clippy::too_many_arguments)]
pub(crate) fn spawn_nemesis(
    s: &RunPlan,
    target: &Target_,
    settings: &ClientSettings,
    wl: &WorkloadConfig,
    rec: Arc<Recorder>,
    stop: Arc<AtomicBool>,
    control: Option<Arc<clients::Control>>,
    log: &ui::Log,
) -> anyhow::Result<Option<std::thread::JoinHandle<()>>> {
    match (&target.cluster, s.nemesis.faults.is_empty()) {
        (Some(cluster), false) => {
            let mut cfg = NemesisConfig::from_plan(&s.nemesis, s.seed);
            cfg.leader_of = Some(leader_lookup(settings, &wl.keymap));
            cfg.after_start = forgetful_restart_hook(cluster, wl);
            cfg.net = target.net.clone();
            cfg.client_id = Some(
                settings
                    .common
                    .get("client.id")
                    .cloned()
                    .unwrap_or_else(|| gregor_workloads::CLIENT_ID.into()),
            );
            cfg.topics = vec![wl.keymap.topic(0)];
            if let Some(ctl) = control {
                cfg.stall = Some(Arc::new(move |on: bool| {
                    ctl.set_stalled(on).map_err(|e| e.to_string())
                }));
            }
            cfg.controller_of = nemesis::controller_lookup(cluster.clone());
            let c = cluster.clone();
            Ok(Some(
                std::thread::Builder::new()
                    .name("nemesis".into())
                    .spawn(move || nemesis::run(cfg, c, rec, stop))?,
            ))
        }
        (None, false) => {
            log.line(
                "warning: faults need a local cluster gregor started; running without a nemesis",
            );
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Heals everything on the target's cluster (after a nemesis thread died).
pub(crate) fn heal_all(target: &Target_, rec: &Arc<Recorder>) {
    if let Some(c) = &target.cluster {
        let mut b = Breakage::new(c.clone(), Some(rec.clone()));
        b.heal_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::Fault;
    use gregor_workloads::CommitMode;

    #[test]
    fn an_unknown_commit_mode_or_sub_via_is_an_error_not_a_default() {
        let run_id = RunId::generate();
        let mut s = Scenario::default();
        s.client.commit = Some("sync".into());
        s.client.sub_via = Some("subscribe".into());
        let p = RunPlan::resolve(&s, "t.yaml").unwrap();
        let c = client_settings(&p, "b:1", &run_id);
        assert_eq!((c.commit, c.sub_via), (CommitMode::Sync, SubVia::Subscribe));
        s.client.commit = Some("eventually".into());
        let e = RunPlan::resolve(&s, "t.yaml").unwrap_err().to_string();
        assert!(
            e.contains("client.commit") && e.contains("eventually"),
            "{e}"
        );
        s.client.commit = None;
        s.client.sub_via = Some("magic".into());
        let e = RunPlan::resolve(&s, "t.yaml").unwrap_err().to_string();
        assert!(e.contains("client.sub-via") && e.contains("magic"), "{e}");
    }

    #[test]
    fn flags_override_the_scenario_and_defaults_fill_the_rest() {
        let mut s = Scenario::parse(
            "workload:\n  rate: 50\n  concurrency: 3\nclient:\n  acks: '1'\n",
            "t.yaml",
        )
        .unwrap();
        let o = Overrides {
            rate: Some(75.0),
            acks: Some("all".into()),
            txn: true,
            ..Default::default()
        };
        o.apply(&mut s);
        let r = RunPlan::resolve(&s, "t.yaml").unwrap();
        assert_eq!(r.workload.rate, 75.0);
        assert_eq!(r.workload.concurrency, 3);
        assert_eq!(r.client.acks, gregor_history::Acks::All);
        assert_eq!(
            r.client.isolation_level,
            gregor_history::IsolationLevel::ReadCommitted
        );
        assert_eq!(r.cluster.kind, Some(ClusterKind::Kafka));
        assert_eq!(
            r.cluster.kafka_version.as_deref(),
            Some(gregor_deploy::DEFAULT_KAFKA_VERSION)
        );
        assert_eq!(r.nemesis.faults, vec![Fault::Kill]);
    }

    #[test]
    fn an_attached_cluster_gets_no_faults_by_default() {
        let mut s = Scenario::default();
        Overrides {
            bootstrap: Some("127.0.0.1:9092".into()),
            ..Default::default()
        }
        .apply(&mut s);
        let r = RunPlan::resolve(&s, "flags").unwrap();
        assert!(r.nemesis.faults.is_empty());
        assert_eq!(r.cluster.kind, None);
        assert_eq!(r.cluster.local(), None);
    }
}
