//! A benchmark of the pure half of a poll: folding committed and latest
//! offsets into the windows and evaluating lag, lag in seconds and status
//! (`gregor monitor --bench N`, hidden). No cluster involved.

use std::time::Instant;

use super::collect::{Committed, RawGroup, RawPoll};
use super::{BrokerState, Monitor, MonitorConfig, PartitionState};

/// What [`evaluate`] measured.
#[derive(Debug, Clone, Copy)]
pub struct BenchResult {
    pub group_partitions: usize,
    pub polls: usize,
    pub seconds: f64,
    pub offsets_per_second: f64,
    pub seconds_per_poll: f64,
    /// CPU time of the evaluating thread (robust on a shared machine,
    /// where wall time includes waiting for a core).
    pub cpu_seconds: f64,
    pub offsets_per_cpu_second: f64,
}

impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "evaluated {} group-partitions x {} polls in {:.3}s wall, {:.3}s CPU: \
             {:.0} offsets/s wall, {:.0} offsets per CPU second ({:.2} ms wall per poll)",
            self.group_partitions,
            self.polls,
            self.seconds,
            self.cpu_seconds,
            self.offsets_per_second,
            self.offsets_per_cpu_second,
            self.seconds_per_poll * 1000.0
        )
    }
}

/// A synthetic poll: `n` group-partitions as groups of 100 partitions of
/// one topic each (`g{i}` on topic `t{i % 10}`), at poll number `k`.
pub fn synthetic_poll(n: usize, k: i64) -> RawPoll {
    let per_group = 100.min(n.max(1));
    let groups = n.div_ceil(per_group);
    let topics = groups.clamp(1, 10);
    let mut raw = RawPoll {
        metadata_ok: true,
        groups_complete: true,
        brokers: (0..3)
            .map(|id| BrokerState {
                id,
                addr: format!("127.0.0.1:{}", 9092 + id),
                up: true,
                error: None,
            })
            .collect(),
        ..RawPoll::default()
    };
    for t in 0..topics {
        for p in 0..per_group as i32 {
            raw.partitions.push(PartitionState {
                topic: format!("t{t}"),
                partition: p,
                leader: Some(p % 3),
                replicas: vec![0, 1, 2],
                isr: vec![0, 1, 2],
                under_replicated: false,
                offline: false,
                earliest: Some(0),
                latest: Some(k * 1000 + p as i64),
            });
        }
    }
    for g in 0..groups {
        raw.groups.push(RawGroup {
            group: format!("g{g}"),
            state: "Stable".into(),
            coordinator: Some(g as i32 % 3),
            members: Vec::new(),
            error: None,
        });
        for p in 0..per_group as i32 {
            if g * per_group + p as usize >= n {
                break;
            }
            // Some groups keep up, some fall behind, some stop.
            let committed = match g % 3 {
                0 => k * 1000 + p as i64,
                1 => k * 900,
                _ => 500,
            };
            raw.committed.push(Committed {
                group: format!("g{g}"),
                topic: format!("t{}", g % topics),
                partition: p,
                committed,
            });
        }
    }
    raw
}

/// Evaluates `polls` synthetic polls of `n` group-partitions and times
/// the evaluation only (the synthetic input is built beforehand).
pub fn evaluate(n: usize, polls: usize) -> BenchResult {
    let mut m = Monitor::new(MonitorConfig::new(&["127.0.0.1:9".to_string()]));
    let inputs: Vec<RawPoll> = (0..polls as i64)
        .map(|k| synthetic_poll(n, k + 1))
        .collect();
    let started = Instant::now();
    let cpu_started = thread_cpu_seconds();
    let mut evaluated = 0usize;
    for (k, raw) in inputs.into_iter().enumerate() {
        let snap = m.evaluate(raw, 1_000_000 + k as i64 * 5_000);
        evaluated += snap.group_partitions.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = thread_cpu_seconds() - cpu_started;
    BenchResult {
        cpu_seconds,
        offsets_per_cpu_second: evaluated as f64 / cpu_seconds.max(1e-9),
        group_partitions: n,
        polls,
        seconds,
        offsets_per_second: evaluated as f64 / seconds.max(1e-9),
        seconds_per_poll: seconds / polls.max(1) as f64,
    }
}

/// CPU time of the calling thread, seconds.
fn thread_cpu_seconds() -> f64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID) {
        Ok(ts) => ts.tv_sec() as f64 + ts.tv_nsec() as f64 / 1e9,
        Err(_) => 0.0,
    }
}
