//! A run's results and faults, sent where dashboards look.
//!
//! * [`Annotator`]: with `gregor run --grafana URL`, every nemesis action is
//!   posted as it happens to Grafana's HTTP API (`POST /api/annotations`,
//!   tags `["gregor", FAULT]`, bearer token from `GREGOR_GRAFANA_TOKEN`), so
//!   lag and latency panels show the fault windows.
//! * [`push_results`]: with `--pushgateway URL`, a finished run's verdict,
//!   acknowledged/lost/unseen counts, rates, throughput (ok operations per
//!   second) and latency quantiles are pushed
//!   to a Prometheus Pushgateway (`PUT /metrics/job/gregor/instance/RUN_ID`,
//!   text format), for nightly CI dashboards.
//!
//! Both use `reqwest`'s blocking client (rustls, no OpenSSL) on threads of
//! their own; a dashboard that does not answer never stops a run: errors
//! are returned to be logged.

use std::sync::mpsc::Receiver;
use std::time::{Duration, SystemTime};

use gregor_checkers::{CheckResult, Validity};
use gregor_history::{Event, Process, RunMeta, Value};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The environment variable holding Grafana's API token.
pub const GRAFANA_TOKEN_ENV: &str = "GREGOR_GRAFANA_TOKEN";

/// Why a dashboard did not take what was sent.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_else(|_| reqwest::blocking::Client::new())
}

fn check(url: &str, r: reqwest::Result<reqwest::blocking::Response>) -> Result<(), ExportError> {
    let resp = r.map_err(|source| ExportError::Http {
        url: url.to_string(),
        source,
    })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body: String = resp.text().unwrap_or_default().chars().take(300).collect();
    Err(ExportError::Status {
        url: url.to_string(),
        status: status.as_u16(),
        body,
    })
}

/// The Grafana annotation of a nemesis event that happened at `wall`.
pub fn annotation(e: &Event, wall: SystemTime, run_id: &str) -> serde_json::Value {
    let f = e.f.as_str();
    let target = match &e.value {
        Value::Json(j) if !j.is_null() => format!(" {j}"),
        _ => String::new(),
    };
    let error = e
        .error
        .as_deref()
        .map(|x| format!(" (error: {x})"))
        .unwrap_or_default();
    let ms = wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    serde_json::json!({
        "time": ms,
        "tags": ["gregor", gregor_history::nemesis::fault_of(f)],
        "text": format!("gregor run {run_id}: {f}{target}{error}"),
    })
}

/// Posts nemesis events to Grafana as annotations, on its own thread.
pub struct Annotator {
    thread: std::thread::JoinHandle<(usize, Vec<String>)>,
}

impl Annotator {
    /// Posts each nemesis event `events` delivers to `url` (Grafana's base
    /// URL) until the channel closes. `start` is the wall-clock time of the
    /// history's time zero.
    pub fn spawn(
        url: &str,
        token: Option<String>,
        events: Receiver<Event>,
        start: SystemTime,
        run_id: String,
    ) -> Annotator {
        let endpoint = format!("{}/api/annotations", url.trim_end_matches('/'));
        let thread = std::thread::spawn(move || {
            let http = client();
            let (mut posted, mut errors) = (0, Vec::new());
            for e in events {
                if e.process != Process::Nemesis {
                    continue;
                }
                let body = annotation(&e, start + Duration::from_nanos(e.time), &run_id);
                let mut req = http
                    .post(&endpoint)
                    .header("Content-Type", "application/json")
                    .body(body.to_string());
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                match check(&endpoint, req.send()) {
                    Ok(()) => posted += 1,
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (posted, errors)
        });
        Annotator { thread }
    }

    /// Waits for the channel to close; returns how many annotations were
    /// posted and the errors of those that were not.
    pub fn finish(self) -> (usize, Vec<String>) {
        self.thread
            .join()
            .unwrap_or_else(|_| (0, vec!["the annotation thread panicked".into()]))
    }
}

type Labels = Vec<(String, String)>;

fn gauge(
    reg: &mut Registry,
    name: &str,
    help: &str,
) -> Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>> {
    let f = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    reg.register(name, help, f.clone());
    f
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A finished run's results in Prometheus text format (`meta`: the run's
/// metadata, for the scenario's name and the workload's duration).
pub fn results_text(r: &CheckResult, meta: &RunMeta) -> String {
    let scenario = meta.scenario.as_str();
    let mut reg = Registry::default();
    let sc = [("scenario", scenario)];
    let valid = gauge(
        &mut reg,
        "gregor_run_valid",
        "1 valid, 0 invalid, -1 unknown",
    );
    valid.get_or_create(&l(&sc)).set(match r.valid {
        Validity::True => 1.0,
        Validity::False => 0.0,
        Validity::Unknown => -1.0,
    });
    let s = &r.stats;
    let counts = gauge(
        &mut reg,
        "gregor_run_sends",
        "Acknowledged sends and those lost, unseen or duplicated",
    );
    for (what, n) in [
        ("acknowledged", s.acknowledged),
        ("lost", s.lost),
        ("unseen", s.unseen),
        ("duplicated", s.duplicated),
        ("info-proven", s.info_proven),
    ] {
        counts
            .get_or_create(&l(&[("scenario", scenario), ("kind", what)]))
            .set(n as f64);
    }
    let rates = gauge(
        &mut reg,
        "gregor_run_send_ratio",
        "Lost, unseen and duplicated sends per acknowledged send",
    );
    for (what, x) in [
        ("lost", s.lost_rate),
        ("unseen", s.unseen_rate),
        ("duplicated", s.duplicated_rate),
    ] {
        rates
            .get_or_create(&l(&[("scenario", scenario), ("kind", what)]))
            .set(x);
    }
    if let Some(x) = gregor_reports::compare::throughput(r, Some(meta)) {
        gauge(
            &mut reg,
            "gregor_run_throughput_ops_per_second",
            "Ok client operations per second of workload",
        )
        .get_or_create(&l(&sc))
        .set(x);
    }
    let anomalies = gauge(
        &mut reg,
        "gregor_run_anomalies",
        "Anomalies found, per type",
    );
    for (kind, g) in &r.anomalies {
        anomalies
            .get_or_create(&l(&[("scenario", scenario), ("type", kind)]))
            .set(g.count as f64);
    }
    let latency = gauge(
        &mut reg,
        "gregor_run_latency_seconds",
        "Latency quantiles of ok operations, per function",
    );
    for (f, q) in &s.latency {
        for (quantile, ms) in [
            ("0.5", q.p50),
            ("0.9", q.p90),
            ("0.99", q.p99),
            ("1", q.max),
        ] {
            latency
                .get_or_create(&l(&[
                    ("scenario", scenario),
                    ("f", f),
                    ("quantile", quantile),
                ]))
                .set(ms / 1000.0);
        }
    }
    if let Some(ms) = s.worst_realtime_lag_ms {
        gauge(
            &mut reg,
            "gregor_run_worst_realtime_lag_seconds",
            "Worst realtime lag of a caught-up poll (Jepsen's definition, catch-up apart)",
        )
        .get_or_create(&l(&sc))
        .set(ms / 1000.0);
    }
    if let Some(ms) = s.worst_catchup_lag_ms {
        gauge(
            &mut reg,
            "gregor_run_worst_catchup_lag_seconds",
            "Worst realtime lag of a poll by a process still reading records older than its holding of the key",
        )
        .get_or_create(&l(&sc))
        .set(ms / 1000.0);
    }
    let mut out = String::new();
    let _ = encode(&mut out, &reg);
    // The Pushgateway reads the Prometheus text format: OpenMetrics' end
    // marker is a comment there, but leave it out all the same.
    out.replace("# EOF\n", "")
}

/// Pushes `text` for run `run_id` to the Pushgateway at `url` (replacing
/// what that instance had).
pub fn push_results(url: &str, run_id: &str, text: String) -> Result<(), ExportError> {
    let endpoint = format!(
        "{}/metrics/job/gregor/instance/{run_id}",
        url.trim_end_matches('/')
    );
    let r = client()
        .put(&endpoint)
        .header("Content-Type", "text/plain; version=0.0.4")
        .body(text)
        .send();
    check(&endpoint, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_results_carry_the_throughput_of_the_workload() {
        let mut stats = gregor_checkers::Stats::default();
        stats.ops.insert(
            "send".into(),
            [("ok".to_string(), 300), ("fail".to_string(), 7)].into(),
        );
        stats
            .ops
            .insert("poll".into(), [("ok".to_string(), 100)].into());
        let r = CheckResult {
            valid: Validity::True,
            anomaly_types: vec![],
            bad_types: vec![],
            anomalies: Default::default(),
            stats,
        };
        let mut meta = RunMeta {
            scenario: "s1".into(),
            ..RunMeta::default()
        };
        meta.extra
            .insert("workload-seconds".into(), serde_json::json!(20.0));
        let text = results_text(&r, &meta);
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        let tp = scrape
            .samples
            .iter()
            .find(|s| s.metric == "gregor_run_throughput_ops_per_second")
            .unwrap_or_else(|| panic!("no throughput in\n{text}"));
        assert_eq!(tp.labels.get("scenario"), Some("s1"));
        assert!(
            matches!(tp.value, prometheus_parse::Value::Gauge(v) if v == 20.0),
            "400 ok ops in 20 s: {:?}",
            tp.value
        );
        // Without the workload's duration, no throughput (not a made-up 0).
        meta.extra.clear();
        assert!(!results_text(&r, &meta).contains("throughput"));
    }

    #[test]
    fn a_heal_and_its_fault_carry_the_same_fault_tag() {
        use gregor_history::nemesis::fault_of;
        assert_eq!(fault_of("start-consumer-stall"), "consumer-stall");
        assert_eq!(fault_of("stop-consumer-stall"), "consumer-stall");
        assert_eq!(fault_of("kill"), "kill");
        let e = Event {
            index: 3,
            time: 2_000_000_000,
            process: Process::Nemesis,
            kind: gregor_history::EventType::Info,
            f: gregor_history::F::Other("start-fetch-throttle".into()),
            value: Value::Json(serde_json::json!({"client-id": "gregor"})),
            error: None,
            extra: Default::default(),
        };
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let a = annotation(&e, start + Duration::from_nanos(e.time), "r1");
        assert_eq!(a["time"], 1_002_000);
        assert_eq!(a["tags"], serde_json::json!(["gregor", "fetch-throttle"]));
        assert!(a["text"].as_str().unwrap().contains("start-fetch-throttle"));
    }
}
