//! Faults next to lag: while `gregor run` goes on, a thread polls the
//! run's cluster with the [`monitor`](crate::monitor) once a second and
//! appends a [`MonitorSample`] to `monitor.jsonl`: per partition of the run
//! its leader, replica and ISR counts and log end; per partition the lag of
//! the workload's consumers in offsets and seconds.
//!
//! Which lag: a default run commits nothing (`client.commit: none`, assign
//! mode), so the brokers hold no group offsets for it. The lag that always
//! exists is that of the consumers' *positions*: one past the highest
//! offset an `ok` read returned, as the client supervisor relays events
//! ([`Progress::positions`]), against the log end the monitor reads; its
//! age in seconds is interpolated from the partition's (log end, time)
//! points, as kafka-lag-exporter does. When the consumers commit (`sync`,
//! `async`, `auto`), the group's committed lag, as the monitor computes it
//! for any group, is sampled too (`source: committed`).
//!
//! The latest [`Snapshot`] is also handed to the run's `/metrics` (see
//! [`crate::runmetrics`]), so a run under `--listen` exposes the same
//! `kafka_consumergroup_*` series as `gregor monitor`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use gregor_history::cluster::{ConsumerLag, MonitorSample, PartitionHealth};
use gregor_history::Key;
use gregor_workloads::{KeyMap, Progress};

use crate::monitor::lag::{lag_seconds, LagWindow};
use crate::monitor::{unix_ms, Monitor, MonitorConfig, Snapshot};

/// How often the run is sampled.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// What the run's monitor watches.
pub struct RunMonitorSpec {
    /// Brokers' own addresses (around the fault proxies).
    pub bootstrap: Vec<String>,
    pub keymap: KeyMap,
    /// The consumer group of the workload.
    pub group: String,
    pub progress: Arc<Progress>,
    pub path: PathBuf,
    /// The history's time zero.
    pub zero: Instant,
    pub interval: Duration,
    /// Where the latest snapshot goes (the run's `/metrics`).
    pub latest: Option<Arc<Mutex<Option<Snapshot>>>>,
}

/// The sampling thread; [`RunMonitor::stop`] ends it.
pub struct RunMonitor {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl RunMonitor {
    /// Starts sampling into `spec.path`.
    pub fn start(spec: RunMonitorSpec) -> std::io::Result<RunMonitor> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.path)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("run-monitor".into())
            .spawn(move || {
                let mut monitor = Monitor::new(monitor_config(&spec));
                let mut windows: BTreeMap<Key, LagWindow> = BTreeMap::new();
                let mut written = 0;
                while !flag.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    let snap = rt.block_on(async {
                        tokio::time::timeout(spec.interval * 5, monitor.poll())
                            .await
                            .ok()
                    });
                    if let Some(snap) = snap {
                        let positions = spec
                            .progress
                            .positions
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .clone();
                        let sample = to_sample(
                            &snap,
                            &spec.keymap,
                            &spec.group,
                            &positions,
                            &mut windows,
                            spec.zero.elapsed(),
                        );
                        if let Ok(line) = serde_json::to_string(&sample) {
                            if writeln!(file, "{line}").is_ok() {
                                written += 1;
                            }
                        }
                        if let Some(l) = &spec.latest {
                            *l.lock().unwrap_or_else(|p| p.into_inner()) = Some(snap);
                        }
                    }
                    let mut left = spec.interval.saturating_sub(t.elapsed());
                    while !left.is_zero() && !flag.load(Ordering::SeqCst) {
                        let step = left.min(Duration::from_millis(100));
                        std::thread::sleep(step);
                        left -= step;
                    }
                }
                written
            })?;
        Ok(RunMonitor {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops sampling; returns how many samples were written.
    pub fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0)
    }
}

impl Drop for RunMonitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn monitor_config(spec: &RunMonitorSpec) -> MonitorConfig {
    let mut c = MonitorConfig::new(&spec.bootstrap);
    c.interval = spec.interval;
    c.request_timeout = Duration::from_secs(2);
    // The run's topics (`<base>` and the rotated `<base>-N`) and group.
    let base = spec.keymap.topic(0);
    c.topics =
        MonitorConfig::regex("--topics", &format!("{}(-[0-9]+)?", regex::escape(&base))).ok();
    c.groups = MonitorConfig::regex("--groups", &regex::escape(&spec.group)).ok();
    c.cluster_name = "gregor-run".into();
    c.exact_lag_seconds = false;
    c
}

/// One sample of the run from a monitor snapshot and the consumers'
/// positions; `windows` keeps each key's (log end, time) points.
pub fn to_sample(
    snap: &Snapshot,
    keymap: &KeyMap,
    group: &str,
    positions: &BTreeMap<Key, u64>,
    windows: &mut BTreeMap<Key, LagWindow>,
    since_zero: Duration,
) -> MonitorSample {
    let now_ms = snap.time_ms;
    let mut partitions = Vec::new();
    let mut lag = Vec::new();
    for p in &snap.partitions {
        let Some(key) = keymap.key(&p.topic, p.partition) else {
            continue;
        };
        partitions.push(PartitionHealth {
            key,
            topic: p.topic.clone(),
            partition: p.partition,
            leader: p.leader.unwrap_or(-1),
            replicas: p.replicas.len(),
            isr: p.isr.len(),
            log_end: p.latest,
        });
        let Some(latest) = p.latest else { continue };
        let w = windows.entry(key).or_insert_with(|| LagWindow::new(600));
        w.push(latest, now_ms);
        let position = positions.get(&key).map_or(0, |&o| o as i64);
        let (secs, _) = lag_seconds(position, latest, now_ms, None, Some(&*w));
        lag.push(ConsumerLag {
            group: group.to_string(),
            source: "positions".into(),
            key,
            topic: p.topic.clone(),
            partition: p.partition,
            position,
            log_end: latest,
            lag: (latest - position).max(0),
            lag_seconds: secs,
        });
    }
    for gp in snap.group_partitions_of(group) {
        let (Some(key), Some(latest)) = (keymap.key(&gp.topic, gp.partition), gp.latest) else {
            continue;
        };
        lag.push(ConsumerLag {
            group: group.to_string(),
            source: "committed".into(),
            key,
            topic: gp.topic.clone(),
            partition: gp.partition,
            position: gp.committed,
            log_end: latest,
            lag: gp.lag.unwrap_or((latest - gp.committed).max(0)),
            lag_seconds: gp.lag_seconds,
        });
    }
    partitions.sort_by_key(|p| p.key);
    lag.sort_by(|a, b| (a.key, &a.source).cmp(&(b.key, &b.source)));
    MonitorSample {
        time: since_zero.as_nanos() as u64,
        partitions,
        lag,
    }
}

/// Milliseconds since the Unix epoch now (for tests building snapshots).
pub fn now_ms() -> i64 {
    unix_ms(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::PartitionState;

    fn snap(time_ms: i64, latest: i64) -> Snapshot {
        let part = |topic: &str, partition| PartitionState {
            topic: topic.into(),
            partition,
            leader: Some(1),
            replicas: vec![0, 1, 2],
            isr: vec![1, 2],
            under_replicated: true,
            offline: false,
            earliest: Some(0),
            latest: Some(latest),
        };
        Snapshot {
            cluster_name: "c".into(),
            time_ms,
            poll_seconds: 0.01,
            poll_phases: vec![],
            brokers: vec![],
            partitions: vec![part("gregor-r1", 0), part("someone-else", 0)],
            groups: vec![],
            group_partitions: vec![],
            errors: vec![],
        }
    }

    #[test]
    fn the_consumers_lag_is_the_log_end_past_their_position_with_its_age() {
        let keymap = KeyMap::new("gregor-r1", 2);
        let positions: BTreeMap<Key, u64> = [(0, 100)].into();
        let mut w = BTreeMap::new();
        let a = to_sample(
            &snap(10_000, 100),
            &keymap,
            "g",
            &positions,
            &mut w,
            Duration::from_secs(1),
        );
        assert_eq!(a.partitions.len(), 1, "only the run's partitions");
        assert_eq!((a.partitions[0].isr, a.partitions[0].replicas), (2, 3));
        assert_eq!(a.lag[0].lag, 0);
        assert_eq!(a.lag[0].lag_seconds, Some(0.0));
        // 4 s later the log ended at 140 and the consumers had not moved:
        // the first unread record (offset 100) was written right after the
        // first sample.
        let b = to_sample(
            &snap(14_000, 140),
            &keymap,
            "g",
            &positions,
            &mut w,
            Duration::from_secs(5),
        );
        assert_eq!(b.lag[0].lag, 40);
        let secs = b.lag[0].lag_seconds.unwrap();
        assert!((3.8..=4.0).contains(&secs), "{secs}");
        assert_eq!(b.time, 5_000_000_000);
    }
}
