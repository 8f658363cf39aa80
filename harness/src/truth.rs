//! Broker truth beside client truth: while a run goes on, a thread asks the
//! brokers (raw Metadata requests, straight to each broker's own listener,
//! around the fault proxies) for the leader, leader epoch, replicas and ISR
//! of every partition of the run, and appends a [`ClusterSample`] to
//! `cluster-samples.jsonl` whenever the answer changes. At the end, each
//! partition's log start and end offsets, as the brokers report them, go
//! to `broker-offsets.json`. Checkers and reports read both to tell what a
//! client saw from what the cluster said.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gregor_deploy::wire;
use gregor_history::{BrokerOffsets, ClusterSample, Key, PartitionState};
use gregor_workloads::{ClientSettings, KeyMap};

/// How often the sampler asks.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(500);

/// The sampling thread; [`Sampler::stop`] ends it.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl Sampler {
    /// Starts sampling through `addrs` (tried in turn until one answers).
    pub fn start(
        addrs: Vec<String>,
        keymap: KeyMap,
        path: PathBuf,
        zero: Instant,
    ) -> std::io::Result<Sampler> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("cluster-sampler".into())
            .spawn(move || {
                let mut last: Option<(Vec<i32>, Vec<PartitionState>)> = None;
                let mut written = 0;
                let mut first = 0;
                while !flag.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    if let Some((i, sample)) = sample(&addrs, first, &keymap, zero) {
                        // Ask the one that answered first next time: a paused
                        // broker costs a timeout per sample.
                        first = i;
                        let state = (sample.brokers.clone(), sample.partitions.clone());
                        if last.as_ref() != Some(&state) {
                            if let Ok(line) = serde_json::to_string(&sample) {
                                if writeln!(file, "{line}").is_ok() {
                                    written += 1;
                                }
                            }
                            last = Some(state);
                        }
                    }
                    std::thread::sleep(SAMPLE_INTERVAL.saturating_sub(t.elapsed()));
                }
                written
            })?;
        Ok(Sampler {
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

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One sample from the first of `addrs` (starting at `first`) that answers.
fn sample(
    addrs: &[String],
    first: usize,
    keymap: &KeyMap,
    zero: Instant,
) -> Option<(usize, ClusterSample)> {
    let n = addrs.len();
    (0..n).map(|k| (first + k) % n).find_map(|i| {
        let meta = wire::metadata(&addrs[i], &[], Duration::from_secs(1)).ok()?;
        Some((i, to_sample(&addrs[i], &meta, keymap, zero.elapsed())))
    })
}

/// The run's partitions in a Metadata answer, ordered by key.
pub fn to_sample(
    asked: &str,
    meta: &wire::Metadata,
    keymap: &KeyMap,
    since_zero: Duration,
) -> ClusterSample {
    let mut partitions: Vec<PartitionState> = meta
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
        .filter_map(|(t, p)| {
            Some(PartitionState {
                key: keymap.key(&t.name, p.partition)?,
                topic: t.name.clone(),
                partition: p.partition,
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                offline: p.offline.clone(),
                error: p.error_code,
            })
        })
        .collect();
    partitions.sort_by_key(|p| p.key);
    let mut brokers: Vec<i32> = meta.brokers.iter().map(|b| b.node_id).collect();
    brokers.sort_unstable();
    ClusterSample {
        time: since_zero.as_nanos() as u64,
        asked: asked.to_string(),
        brokers,
        partitions,
    }
}

/// Each key's log start and end (high watermark) offsets, as the brokers
/// report them now; keys whose offsets cannot be had are left out.
pub fn broker_offsets(
    settings: &ClientSettings,
    keymap: &KeyMap,
    keys: impl IntoIterator<Item = Key>,
) -> Vec<BrokerOffsets> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let Ok(consumer) = settings.consumer_config().create::<BaseConsumer>() else {
        return Vec::new();
    };
    keys.into_iter()
        .filter_map(|key| {
            let tp = keymap.topic_partition(key);
            let (low, high) = consumer
                .fetch_watermarks(&tp.topic, tp.partition, Duration::from_secs(5))
                .ok()?;
            Some(BrokerOffsets {
                key,
                topic: tp.topic,
                partition: tp.partition,
                log_start: low,
                log_end: high,
            })
        })
        .collect()
}

/// Writes `broker-offsets.json` into the run directory.
pub fn write_broker_offsets(run_dir: &Path, offsets: &[BrokerOffsets]) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(offsets).map_err(std::io::Error::other)?;
    std::fs::write(
        run_dir.join(gregor_history::cluster::BROKER_OFFSETS_FILE),
        text + "\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_runs_partitions_are_sampled_and_by_key() {
        let keymap = KeyMap::new("gregor-r1", 2);
        let part = |partition, leader| wire::PartitionMeta {
            error_code: 0,
            partition,
            leader,
            leader_epoch: 3,
            replicas: vec![0, 1, 2],
            isr: vec![leader],
            offline: vec![],
        };
        let meta = wire::Metadata {
            brokers: vec![],
            cluster_id: None,
            controller_id: 0,
            topics: vec![
                wire::TopicMeta {
                    error_code: 0,
                    name: "gregor-r1-1".into(),
                    partitions: vec![part(1, 2), part(0, 1)],
                },
                wire::TopicMeta {
                    error_code: 0,
                    name: "someone-else".into(),
                    partitions: vec![part(0, 0)],
                },
                wire::TopicMeta {
                    error_code: 0,
                    name: "gregor-r1".into(),
                    partitions: vec![part(0, 0)],
                },
            ],
        };
        let s = to_sample("a:1", &meta, &keymap, Duration::from_millis(5));
        let keys: Vec<Key> = s.partitions.iter().map(|p| p.key).collect();
        assert_eq!(keys, vec![0, 2, 3]);
        assert_eq!(s.partitions[2].leader, 2);
        assert_eq!(s.time, 5_000_000);
    }
}
