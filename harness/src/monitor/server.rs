//! The monitor's HTTP side (`tiny_http`, on its own thread): `/metrics`
//! (Prometheus), `/` (the dashboard: one self-contained HTML page that
//! fetches `/api/state` every interval and redraws its SVG lag charts, the
//! status table and the under-replicated partitions; no CDN, no network
//! beyond this server) and `/api/state` (the last snapshot plus a capped
//! lag history per group, as JSON).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tiny_http::{Header, Method, Response, Server};

use super::{metrics, MonitorError, Snapshot};

/// Points kept per group for the dashboard's charts.
pub const HISTORY_POINTS: usize = 360;

/// One point of a group's chart.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct HistoryPoint {
    /// Unix ms.
    pub t: i64,
    pub sum_lag: i64,
    pub max_lag_seconds: f64,
}

/// What the HTTP thread serves, replaced after every poll.
#[derive(Debug, Default)]
pub struct Shared {
    pub snapshot: Option<Snapshot>,
    pub metrics: String,
    /// Per group, the last [`HISTORY_POINTS`] points (groups that vanish
    /// are dropped).
    pub history: BTreeMap<String, VecDeque<HistoryPoint>>,
    pub interval_ms: u64,
}

impl Shared {
    /// Takes in a new snapshot.
    pub fn update(&mut self, snap: Snapshot) {
        self.metrics = metrics::render(&snap);
        let mut alive = std::collections::BTreeSet::new();
        for g in &snap.groups {
            alive.insert(g.group.clone());
            let h = self.history.entry(g.group.clone()).or_default();
            if h.len() >= HISTORY_POINTS {
                h.pop_front();
            }
            h.push_back(HistoryPoint {
                t: snap.time_ms,
                sum_lag: g.sum_lag,
                max_lag_seconds: g.max_lag_seconds,
            });
        }
        self.history.retain(|g, _| alive.contains(g));
        self.snapshot = Some(snap);
    }

    /// What `/api/state` answers: the last snapshot and the charts' history.
    pub fn state_json(&self) -> String {
        #[derive(Serialize)]
        struct State<'a> {
            interval_ms: u64,
            snapshot: Option<&'a Snapshot>,
            history: &'a BTreeMap<String, VecDeque<HistoryPoint>>,
        }
        serde_json::to_string(&State {
            interval_ms: self.interval_ms,
            snapshot: self.snapshot.as_ref(),
            history: &self.history,
        })
        .unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
    }
}

/// A bound HTTP server over shared state.
pub struct MonitorServer {
    server: Arc<Server>,
    shared: Arc<Mutex<Shared>>,
}

impl MonitorServer {
    /// Binds `listen`.
    pub fn bind(listen: &str, shared: Arc<Mutex<Shared>>) -> Result<MonitorServer, MonitorError> {
        let server = Server::http(listen)
            .map_err(|e| MonitorError::Listen(format!("cannot listen on {listen}: {e}")))?;
        Ok(MonitorServer {
            server: Arc::new(server),
            shared,
        })
    }

    /// The address bound (useful with port 0).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.server.server_addr().to_ip()
    }

    /// Answers requests on a thread of its own until the process ends.
    pub fn spawn(self) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            for req in self.server.incoming_requests() {
                let _ = answer(req, &self.shared);
            }
        })
    }
}

fn respond(req: tiny_http::Request, code: u16, ct: &str, body: String) -> std::io::Result<()> {
    let mut r = Response::from_string(body).with_status_code(code);
    if let Ok(h) = Header::from_bytes("Content-Type", ct.as_bytes()) {
        r.add_header(h);
    }
    if let Ok(h) = Header::from_bytes("Cache-Control", "no-store") {
        r.add_header(h);
    }
    req.respond(r)
}

fn answer(req: tiny_http::Request, shared: &Mutex<Shared>) -> std::io::Result<()> {
    if !matches!(req.method(), Method::Get | Method::Head) {
        return respond(req, 405, "text/plain", "only GET and HEAD\n".into());
    }
    let path = req.url().split('?').next().unwrap_or("/").to_string();
    match path.as_str() {
        "/metrics" => {
            let body = shared.lock().map(|s| s.metrics.clone()).unwrap_or_default();
            if body.is_empty() {
                return respond(req, 503, "text/plain", "no poll finished yet\n".into());
            }
            respond(req, 200, metrics::CONTENT_TYPE, body)
        }
        "/api/state" => {
            let body = shared
                .lock()
                .map(|s| s.state_json())
                .unwrap_or_else(|_| "{}".into());
            respond(req, 200, "application/json", body)
        }
        "/" | "/index.html" => respond(req, 200, "text/html; charset=utf-8", DASHBOARD.to_string()),
        _ => respond(req, 404, "text/plain", "not found\n".into()),
    }
}

/// The dashboard page (self-contained).
pub const DASHBOARD: &str = include_str!("dashboard.html");

/// Polls every `config.interval` and serves the results on `listen` until
/// the process ends; `on_poll` sees every snapshot (the CLI logs it). The
/// first poll happens before this returns an error for a bad address, so
/// a wrong `--listen` fails at once.
pub async fn serve(
    config: super::MonitorConfig,
    listen: &str,
    mut on_bound: impl FnMut(Option<SocketAddr>),
    mut on_poll: impl FnMut(&Snapshot),
) -> Result<(), MonitorError> {
    let shared = Arc::new(Mutex::new(Shared {
        interval_ms: config.interval.as_millis() as u64,
        ..Shared::default()
    }));
    let server = MonitorServer::bind(listen, shared.clone())?;
    on_bound(server.addr());
    server.spawn();
    let interval = config.interval;
    let mut monitor = super::Monitor::new(config);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let snap = monitor.poll().await;
        on_poll(&snap);
        if let Ok(mut s) = shared.lock() {
            s.update(snap);
        }
    }
}
