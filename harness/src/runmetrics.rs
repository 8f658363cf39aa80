//! `gregor run --listen ADDR`: the run's live `/metrics` (OpenMetrics
//! text) while it goes on.
//!
//! * `gregor_run_anomalies{type}`: what the online checker has proven so
//!   far, per anomaly type (the progress line's counts);
//! * `gregor_run_ops{outcome}`: completed client operations, `done` and
//!   each of `ok`, `fail`, `info`;
//! * `gregor_run_events_checked`, `gregor_run_invalid` (1 once a finding
//!   makes the verdict invalid), `gregor_run_elapsed_seconds`;
//! * and the run monitor's last snapshot of the run's cluster in `gregor
//!   monitor`'s series (`kafka_consumergroup_group_lag`,
//!   `kafka_partition_latest_offset`, ISR sizes, …).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gregor_checkers::online::LiveStatus;
use gregor_workloads::Progress;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::monitor::Snapshot;

/// The OpenMetrics content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(String, String)>;

/// The anomaly types the online checker's live detectors prove during a
/// run (see `gregor_checkers::online`).
pub const LIVE_TYPES: [&str; 5] = [
    "inconsistent-offsets",
    "duplicate",
    "G1a",
    "precommitted-read",
    "int-nonmonotonic-poll",
];

/// The run's own series.
pub fn render_run(status: &LiveStatus, progress: &Progress, elapsed: Duration) -> String {
    let mut reg = Registry::default();
    let anomalies = Family::<Labels, Gauge>::default();
    reg.register(
        "gregor_run_anomalies",
        "Anomalies the online checker has proven so far, per type",
        anomalies.clone(),
    );
    // Every type the live detectors know, 0 until found: series that exist
    // from the start make alerts and rates simple.
    for kind in LIVE_TYPES {
        anomalies
            .get_or_create(&vec![("type".into(), kind.to_string())])
            .set(0);
    }
    for (kind, n) in &status.counts {
        anomalies
            .get_or_create(&vec![("type".into(), kind.to_string())])
            .set(*n as i64);
    }
    let ops = Family::<Labels, Gauge>::default();
    reg.register(
        "gregor_run_ops",
        "Completed client operations: done, and each outcome",
        ops.clone(),
    );
    for (outcome, n) in [
        ("done", &progress.ops),
        ("ok", &progress.ok),
        ("fail", &progress.fail),
        ("info", &progress.info),
    ] {
        ops.get_or_create(&vec![("outcome".into(), outcome.into())])
            .set(n.load(Ordering::Relaxed) as i64);
    }
    let checked = Gauge::<i64>::default();
    reg.register(
        "gregor_run_events_checked",
        "History events the online checker has read",
        checked.clone(),
    );
    checked.set(status.events as i64);
    let invalid = Gauge::<i64>::default();
    reg.register(
        "gregor_run_invalid",
        "1 once a live finding makes the verdict invalid",
        invalid.clone(),
    );
    invalid.set(i64::from(status.first_bad.is_some()));
    let secs = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    reg.register(
        "gregor_run_elapsed_seconds",
        "Seconds since the workload started",
        secs.clone(),
    );
    secs.set(elapsed.as_secs_f64());
    let mut out = String::new();
    let _ = encode(&mut out, &reg);
    out
}

/// Several OpenMetrics expositions as one (a single `# EOF` at the end).
pub fn combine(parts: &[String]) -> String {
    let mut out = String::new();
    for p in parts {
        for line in p.lines().filter(|l| *l != "# EOF") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str("# EOF\n");
    out
}

/// The body of `/metrics`: the run's series and the monitor's last snapshot.
pub fn render(
    status: &LiveStatus,
    progress: &Progress,
    elapsed: Duration,
    snapshot: Option<&Snapshot>,
) -> String {
    let mut parts = vec![render_run(status, progress, elapsed)];
    if let Some(s) = snapshot {
        parts.push(crate::monitor::metrics::render(s));
    }
    combine(&parts)
}

/// The `/metrics` server of a run; [`MetricsServer::stop`] ends it.
pub struct MetricsServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    addr: String,
}

/// What the server renders on each scrape.
pub type Body = Arc<dyn Fn() -> String + Send + Sync>;

impl MetricsServer {
    /// Listens on `addr` (`host:port`; port 0 picks one).
    pub fn start(addr: &str, body: Body) -> Result<MetricsServer, String> {
        let server = tiny_http::Server::http(addr)
            .map_err(|e| format!("--listen {addr}: cannot listen: {e}"))?;
        let bound = server
            .server_addr()
            .to_ip()
            .map(|a| a.to_string())
            .unwrap_or_else(|| addr.to_string());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("run-metrics".into())
            .spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    let Ok(Some(req)) = server.recv_timeout(Duration::from_millis(200)) else {
                        continue;
                    };
                    let path = req.url().split('?').next().unwrap_or("").to_string();
                    let resp = match path.as_str() {
                        "/metrics" => tiny_http::Response::from_string(body()).with_header(
                            tiny_http::Header::from_bytes(&b"Content-Type"[..], CONTENT_TYPE)
                                .expect("a valid header"),
                        ),
                        "/" => tiny_http::Response::from_string(
                            "gregor run: live metrics at /metrics\n",
                        ),
                        _ => tiny_http::Response::from_string("not found\n").with_status_code(404),
                    };
                    let _ = req.respond(resp);
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(MetricsServer {
            stop,
            thread: Some(thread),
            addr: bound,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The latest monitor snapshot, shared between the run monitor and `/metrics`.
pub type Latest = Arc<Mutex<Option<Snapshot>>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_counts_and_ops_are_series_and_one_eof_ends_the_text() {
        let mut st = LiveStatus::default();
        st.counts.insert("duplicate", 2);
        st.events = 10;
        st.first_bad = Some(("duplicate", 7));
        let p = Progress::default();
        p.ops.store(5, Ordering::Relaxed);
        p.ok.store(4, Ordering::Relaxed);
        p.info.store(1, Ordering::Relaxed);
        let text = render(&st, &p, Duration::from_secs(3), None);
        assert!(
            text.contains("gregor_run_anomalies{type=\"duplicate\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("gregor_run_ops{outcome=\"done\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("gregor_run_ops{outcome=\"info\"} 1"),
            "{text}"
        );
        assert!(text.contains("gregor_run_invalid 1"), "{text}");
        assert!(
            text.contains("gregor_run_anomalies{type=\"G1a\"} 0"),
            "{text}"
        );
        assert_eq!(text.matches("# EOF").count(), 1);
        assert!(text.ends_with("# EOF\n"));
    }
}
