//! `gregor monitor`: consumer lag and cluster health, polled over the Kafka
//! protocol, served as Prometheus metrics and a small dashboard.
//!
//! One [`Monitor::poll`] asks the cluster, with batched requests
//! ([`gregor_deploy::kapi`]), for everything the on-call engineer looks at:
//!
//! - Metadata: brokers, and per partition the leader, replicas and ISR
//!   (under-replicated, offline);
//! - ListOffsets (one request per leader for all its partitions): earliest
//!   and latest offsets;
//! - ListGroups on every broker, FindCoordinator (batched keys),
//!   DescribeGroups and OffsetFetch (many groups in one request) per
//!   coordinator: group state, members with their client id, host and
//!   assignment, committed offsets;
//! - Fetch (one small fetch per lagging partition, cached by offset): the
//!   timestamp of the record at a committed offset, which makes the lag in
//!   seconds exact.
//!
//! The answer is a [`Snapshot`] (serde-serializable, errors inside it: a
//! poll never fails). Between polls the monitor keeps, per partition, a
//! capped window of (latest offset, time) points ([`lag`]: lag in seconds
//! interpolated as kafka-lag-exporter does when the record timestamp cannot
//! be read) and, per group-partition, a capped window of (committed, latest)
//! samples ([`status`]: Burrow's rules OK / WARN / STALL / STOP / REWIND,
//! group OK / WARN / ERR). Groups, topics and partitions that vanish are
//! dropped at the next poll, so memory stays bounded over days.
//!
//! [`metrics`] renders a snapshot as Prometheus text with
//! kafka-lag-exporter's metric names; [`server`] serves `/metrics`, `/`
//! (the dashboard) and `/api/state`.

pub mod bench;
pub mod collect;
pub mod lag;
pub mod metrics;
pub mod server;
pub mod status;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

use regex::Regex;
use serde::{Deserialize, Serialize};

pub use lag::LagWindow;
pub use status::{GroupStatus, PartitionStatus, StatusWindow};

/// The default `--listen` address (kafka-lag-exporter's port is 8000,
/// KMinion's 8080; 9308 is the usual Kafka exporter port).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9308";

/// Errors in the monitor's configuration (polling errors live in the
/// [`Snapshot`]).
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("{flag}: invalid regular expression: {source}")]
    Regex {
        flag: &'static str,
        #[source]
        source: Box<regex::Error>,
    },
    #[error("-X {0}: expected key=value")]
    Setting(String),
    #[error(
        "security.protocol={0} is not supported by gregor monitor yet (only PLAINTEXT; \
         secured clusters come with issue 15)"
    )]
    Security(String),
    #[error("--bootstrap is empty: name at least one HOST:PORT")]
    NoBootstrap,
    #[error("--interval must be a positive number of seconds, not {0}")]
    Interval(f64),
    #[error("{0}")]
    Listen(String),
}

/// What to watch and how.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// `host:port` bootstrap servers.
    pub bootstrap: Vec<String>,
    /// Time between polls (used by [`run`](server::run); `poll` itself
    /// polls when called).
    pub interval: Duration,
    /// Only groups whose id matches (None: all).
    pub groups: Option<Regex>,
    /// Only topics whose name matches (None: all, internal topics excluded).
    pub topics: Option<Regex>,
    /// The `cluster_name` label of every metric.
    pub cluster_name: String,
    /// Timeout of each request.
    pub request_timeout: Duration,
    /// Samples per group-partition that the status rules look at (Burrow's
    /// window; 10 by default).
    pub status_window: usize,
    /// (latest offset, time) points kept per partition for the lag in
    /// seconds (kafka-lag-exporter keeps 60).
    pub lag_points: usize,
    /// Read the timestamp of the record at each lagging committed offset
    /// (exact lag in seconds); otherwise interpolate only.
    pub exact_lag_seconds: bool,
    /// At most this many record timestamps fetched per poll (the rest
    /// interpolated; fetched ones are cached while the offset stays).
    pub timestamp_fetch_budget: usize,
    /// librdkafka-style client settings (`-X key=value`), validated by
    /// [`MonitorConfig::with_settings`].
    pub settings: BTreeMap<String, String>,
}

impl MonitorConfig {
    /// Defaults for a cluster reachable through `bootstrap`.
    pub fn new(bootstrap: &[String]) -> MonitorConfig {
        MonitorConfig {
            bootstrap: bootstrap.to_vec(),
            interval: Duration::from_secs(5),
            groups: None,
            topics: None,
            cluster_name: "default".into(),
            request_timeout: Duration::from_secs(10),
            status_window: 10,
            lag_points: 60,
            exact_lag_seconds: true,
            timestamp_fetch_budget: 2_000,
            settings: BTreeMap::new(),
        }
    }

    /// Parses a comma-separated bootstrap list.
    pub fn parse_bootstrap(list: &str) -> Result<Vec<String>, MonitorError> {
        let v: Vec<String> = list
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if v.is_empty() {
            return Err(MonitorError::NoBootstrap);
        }
        Ok(v)
    }

    /// Compiles a `--groups`/`--topics` filter.
    pub fn regex(flag: &'static str, re: &str) -> Result<Regex, MonitorError> {
        // Anchored: `--groups orders` means the group `orders`, as in
        // kafka-lag-exporter's allow-lists.
        Regex::new(&format!("^(?:{re})$")).map_err(|e| MonitorError::Regex {
            flag,
            source: Box::new(e),
        })
    }

    /// Adds `-X key=value` settings; `security.protocol` other than
    /// PLAINTEXT is refused (not supported yet).
    pub fn with_settings(mut self, xs: &[String]) -> Result<MonitorConfig, MonitorError> {
        for x in xs {
            let (k, v) = x
                .split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .ok_or_else(|| MonitorError::Setting(x.clone()))?;
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            if k == "security.protocol" && !v.eq_ignore_ascii_case("plaintext") {
                return Err(MonitorError::Security(v));
            }
            if k.starts_with("sasl.") || k.starts_with("ssl.") {
                return Err(MonitorError::Security(format!("{v} ({k} given)")));
            }
            self.settings.insert(k, v);
        }
        Ok(self)
    }

    fn group_selected(&self, g: &str) -> bool {
        self.groups.as_ref().is_none_or(|r| r.is_match(g))
    }

    fn topic_selected(&self, t: &str, internal: bool) -> bool {
        match &self.topics {
            Some(r) => r.is_match(t),
            None => !internal,
        }
    }
}

/// A broker: listed in the metadata and answering, or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerState {
    pub id: i32,
    pub addr: String,
    pub up: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One topic-partition's health and offsets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub topic: String,
    pub partition: i32,
    /// None: no leader (offline).
    pub leader: Option<i32>,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub under_replicated: bool,
    pub offline: bool,
    /// Log start offset (None: not readable this poll).
    pub earliest: Option<i64>,
    /// Log end offset / high watermark (None: not readable this poll).
    pub latest: Option<i64>,
}

/// A member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
    /// (topic, partition) pairs assigned to it.
    pub assignment: Vec<(String, i32)>,
}

/// One consumer group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    pub group: String,
    /// Kafka's group state: Stable, Empty, PreparingRebalance, Dead, …
    pub state: String,
    pub coordinator: Option<i32>,
    pub members: Vec<Member>,
    pub status: GroupStatus,
    /// Partitions with a committed offset.
    pub partitions: usize,
    pub sum_lag: i64,
    pub max_lag: i64,
    pub max_lag_seconds: f64,
    /// The worst partition (Burrow's `maxlag`), if any lags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst: Option<(String, i32)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One group-partition: where the group is, where the log ends, how far
/// behind and since when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupPartition {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    /// None when the partition's log end could not be read this poll.
    pub latest: Option<i64>,
    /// latest - committed, never negative (None: latest unknown).
    pub lag: Option<i64>,
    /// Age of the oldest unconsumed record, seconds (0 when caught up).
    pub lag_seconds: Option<f64>,
    /// How `lag_seconds` was found: `exact` (record timestamp), `interpolated`,
    /// `extrapolated`, `lower-bound` or `none`.
    pub lag_seconds_source: lag::Source,
    pub status: PartitionStatus,
    /// The member it is assigned to ("" when none).
    pub member_id: String,
    pub client_id: String,
    pub host: String,
}

/// One full poll of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub cluster_name: String,
    /// Wall-clock time of the poll, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// How long the poll took.
    pub poll_seconds: f64,
    pub brokers: Vec<BrokerState>,
    pub partitions: Vec<PartitionState>,
    pub groups: Vec<GroupState>,
    pub group_partitions: Vec<GroupPartition>,
    /// What went wrong this poll (unreachable brokers, failed requests).
    pub errors: Vec<String>,
}

impl Snapshot {
    /// The group-partitions of `group`.
    pub fn group_partitions_of<'a>(
        &'a self,
        group: &'a str,
    ) -> impl Iterator<Item = &'a GroupPartition> + 'a {
        self.group_partitions
            .iter()
            .filter(move |p| p.group == group)
    }

    /// The group named `group`.
    pub fn group(&self, group: &str) -> Option<&GroupState> {
        self.groups.iter().find(|g| g.group == group)
    }

    /// Partitions whose ISR is smaller than their replica set.
    pub fn under_replicated(&self) -> impl Iterator<Item = &PartitionState> {
        self.partitions.iter().filter(|p| p.under_replicated)
    }
}

/// How many windows the monitor holds (for tests of bounded memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSize {
    pub partition_windows: usize,
    pub partition_points: usize,
    pub group_partition_windows: usize,
    pub group_partition_samples: usize,
    pub cached_timestamps: usize,
    pub brokers: usize,
}

/// (topic, partition).
pub type Tp = (String, i32);
/// (group, topic, partition).
pub type Gtp = (String, String, i32);

/// The monitor: a connection pool and the windows between polls.
pub struct Monitor {
    config: MonitorConfig,
    brokers: gregor_deploy::kapi::Brokers,
    /// Per partition: (latest offset, time) points.
    lag_windows: HashMap<Tp, LagWindow>,
    /// Per group-partition: (time, committed, latest) samples.
    status_windows: HashMap<Gtp, StatusWindow>,
    /// Per group-partition: (committed offset, record timestamp ms).
    timestamps: HashMap<Gtp, (i64, i64)>,
    /// Every broker ever listed (id -> address).
    known_brokers: BTreeMap<i32, String>,
    /// The last snapshot.
    last: Option<Snapshot>,
}

impl Monitor {
    /// A monitor for `config`; nothing connects until the first poll.
    pub fn new(config: MonitorConfig) -> Monitor {
        let brokers = gregor_deploy::kapi::Brokers::new(&config.bootstrap, config.request_timeout);
        Monitor {
            config,
            brokers,
            lag_windows: HashMap::new(),
            status_windows: HashMap::new(),
            timestamps: HashMap::new(),
            known_brokers: BTreeMap::new(),
            last: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    /// The last snapshot taken, if any.
    pub fn last(&self) -> Option<&Snapshot> {
        self.last.as_ref()
    }

    /// Polls the cluster once. Never fails and never panics on what the
    /// cluster answers: what went wrong is in [`Snapshot::errors`].
    pub async fn poll(&mut self) -> Snapshot {
        let started = Instant::now();
        let now_ms = unix_ms(SystemTime::now());
        let raw = collect::collect(
            &mut self.brokers,
            &self.config,
            &mut self.known_brokers,
            &self.timestamps,
        )
        .await;
        let mut snap = self.evaluate(raw, now_ms);
        snap.poll_seconds = started.elapsed().as_secs_f64();
        self.last = Some(snap.clone());
        snap
    }

    /// Folds one raw poll into the windows and evaluates lag and status
    /// (pure: no I/O; public for benchmarks and tests).
    pub fn evaluate(&mut self, raw: collect::RawPoll, now_ms: i64) -> Snapshot {
        evaluate_into(
            &self.config,
            &mut self.lag_windows,
            &mut self.status_windows,
            &mut self.timestamps,
            raw,
            now_ms,
        )
    }

    /// How much state the monitor holds.
    pub fn state_size(&self) -> StateSize {
        StateSize {
            partition_windows: self.lag_windows.len(),
            partition_points: self.lag_windows.values().map(LagWindow::len).sum(),
            group_partition_windows: self.status_windows.len(),
            group_partition_samples: self.status_windows.values().map(StatusWindow::len).sum(),
            cached_timestamps: self.timestamps.len(),
            brokers: self.known_brokers.len(),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn evaluate_into(
    config: &MonitorConfig,
    lag_windows: &mut HashMap<Tp, LagWindow>,
    status_windows: &mut HashMap<Gtp, StatusWindow>,
    timestamps: &mut HashMap<Gtp, (i64, i64)>,
    raw: collect::RawPoll,
    now_ms: i64,
) -> Snapshot {
    let collect::RawPoll {
        brokers,
        partitions,
        groups,
        committed,
        record_timestamps,
        metadata_ok,
        groups_complete,
        mut errors,
    } = raw;

    // Partition windows: push the latest offset; drop vanished partitions
    // (only when the metadata answered: a failed poll forgets nothing).
    let mut latest: HashMap<(&str, i32), i64> = HashMap::with_capacity(partitions.len());
    for p in &partitions {
        if let Some(l) = p.latest {
            latest.insert((p.topic.as_str(), p.partition), l);
            let w = lag_windows
                .entry((p.topic.clone(), p.partition))
                .or_insert_with(|| LagWindow::new(config.lag_points));
            w.push(l, now_ms);
        }
    }
    if metadata_ok {
        let alive: std::collections::HashSet<(&str, i32)> = partitions
            .iter()
            .map(|p| (p.topic.as_str(), p.partition))
            .collect();
        lag_windows.retain(|(t, p), _| alive.contains(&(t.as_str(), *p)));
    }

    // Who holds which partition.
    let mut owner: HashMap<(&str, &str, i32), &Member> = HashMap::new();
    for g in &groups {
        for m in &g.members {
            for (t, p) in &m.assignment {
                owner.insert((g.group.as_str(), t.as_str(), *p), m);
            }
        }
    }

    for ((g, t, p), ts) in record_timestamps {
        timestamps.insert((g, t, p), ts);
    }

    let mut gps = Vec::with_capacity(committed.len());
    let mut seen: std::collections::HashSet<Gtp> = std::collections::HashSet::new();
    for c in &committed {
        let key: Gtp = (c.group.clone(), c.topic.clone(), c.partition);
        let l = latest.get(&(c.topic.as_str(), c.partition)).copied();
        let lag = l.map(|l| (l - c.committed).max(0));
        let member = owner.get(&(c.group.as_str(), c.topic.as_str(), c.partition));
        let sw = status_windows
            .entry(key.clone())
            .or_insert_with(|| StatusWindow::new(config.status_window));
        sw.push(status::Sample {
            time_ms: now_ms,
            committed: c.committed,
            latest: l,
        });
        let status = sw.evaluate(member.is_some());
        let ts = timestamps
            .get(&key)
            .filter(|(off, _)| *off == c.committed)
            .map(|(_, ts)| *ts);
        let (lag_seconds, source) = match (l, lag_windows.get(&(c.topic.clone(), c.partition))) {
            (Some(l), w) => lag::lag_seconds(c.committed, l, now_ms, ts, w),
            (None, _) => (None, lag::Source::None),
        };
        gps.push(GroupPartition {
            group: c.group.clone(),
            topic: c.topic.clone(),
            partition: c.partition,
            committed: c.committed,
            latest: l,
            lag,
            lag_seconds,
            lag_seconds_source: source,
            status,
            member_id: member.map(|m| m.member_id.clone()).unwrap_or_default(),
            client_id: member.map(|m| m.client_id.clone()).unwrap_or_default(),
            host: member.map(|m| m.host.clone()).unwrap_or_default(),
        });
        seen.insert(key);
    }
    // Vanished group-partitions (deleted groups or topics, filtered out,
    // offsets expired) are forgotten; a poll whose group listing failed
    // forgets nothing.
    if metadata_ok && groups_complete {
        status_windows.retain(|k, _| seen.contains(k));
        timestamps.retain(|k, _| seen.contains(k));
    } else if metadata_ok {
        // Still bounded: only partitions that exist keep windows.
        let exists = |t: &String, p: i32| lag_windows.contains_key(&(t.clone(), p));
        status_windows.retain(|(_, t, p), _| exists(t, *p));
        timestamps.retain(|(_, t, p), _| exists(t, *p));
    }

    // Per group roll-ups.
    let mut by_group: HashMap<&str, Vec<&GroupPartition>> = HashMap::new();
    for gp in &gps {
        by_group.entry(gp.group.as_str()).or_default().push(gp);
    }
    let mut group_states = Vec::with_capacity(groups.len());
    for g in groups {
        let parts = by_group.remove(g.group.as_str()).unwrap_or_default();
        let statuses: Vec<PartitionStatus> = parts.iter().map(|p| p.status).collect();
        let worst = parts
            .iter()
            .filter(|p| p.lag.unwrap_or(0) > 0)
            .max_by_key(|p| p.lag.unwrap_or(0))
            .map(|p| (p.topic.clone(), p.partition));
        group_states.push(GroupState {
            status: GroupStatus::of(&statuses),
            partitions: parts.len(),
            sum_lag: parts.iter().filter_map(|p| p.lag).sum(),
            max_lag: parts.iter().filter_map(|p| p.lag).max().unwrap_or(0),
            max_lag_seconds: parts
                .iter()
                .filter_map(|p| p.lag_seconds)
                .fold(0.0, f64::max),
            worst,
            group: g.group,
            state: g.state,
            coordinator: g.coordinator,
            members: g.members,
            error: g.error,
        });
    }
    group_states.sort_by(|a, b| a.group.cmp(&b.group));
    gps.sort_by(|a, b| (&a.group, &a.topic, a.partition).cmp(&(&b.group, &b.topic, b.partition)));
    errors.dedup();
    Snapshot {
        cluster_name: config.cluster_name.clone(),
        time_ms: now_ms,
        poll_seconds: 0.0,
        brokers,
        partitions,
        groups: group_states,
        group_partitions: gps,
        errors,
    }
}
