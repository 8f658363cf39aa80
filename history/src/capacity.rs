//! What `gregor capacity` measured: one [`CapacityStep`] per offered rate
//! and the [`CapacityReport`] that names the highest sustainable one. The
//! harness writes it to `capacity.json`; reports draw it; `compare` reads
//! it. One definition, here, for all of them.

use serde::{Deserialize, Serialize};

/// File name of the report in a capacity run's directory.
pub const CAPACITY_FILE: &str = "capacity.json";

/// Latency quantiles reported per step, in this order.
pub const QUANTILES: &[f64] = &[0.5, 0.9, 0.99, 0.999];

/// One step of the ramp: records offered at a fixed rate for a while.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CapacityStep {
    /// 0-based position in the order the steps ran.
    pub index: usize,
    /// Records per second the step offered (open loop: on a fixed
    /// schedule, whatever the latency).
    pub offered_rate: f64,
    /// Acknowledged records per second: acknowledgements over the time
    /// from the step's first completion to its last, less the latency
    /// spread (p99 - p50).
    pub achieved_rate: f64,
    /// Seconds the step offered records for.
    pub seconds: f64,
    /// Seconds from the end of the step until its last record completed.
    pub drain_seconds: f64,
    pub sent: u64,
    pub acked: u64,
    /// Sends that failed: delivery errors, a full client queue, timeouts.
    pub errors: u64,
    /// Latency from each record's scheduled send time to its
    /// acknowledgement, in milliseconds, at [`QUANTILES`].
    pub latency_ms: Vec<f64>,
    pub max_latency_ms: f64,
    /// Whether the step stayed within every limit.
    pub sustained: bool,
    /// Why not, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Nemesis actions during the step (their names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<String>,
}

impl CapacityStep {
    /// The latency at quantile `q` (one of [`QUANTILES`]).
    pub fn latency_at(&self, q: f64) -> Option<f64> {
        QUANTILES
            .iter()
            .position(|x| (x - q).abs() < 1e-9)
            .and_then(|i| self.latency_ms.get(i).copied())
    }

    /// The p99 latency in milliseconds.
    pub fn p99_ms(&self) -> Option<f64> {
        self.latency_at(0.99)
    }

    /// Failed sends over sends.
    pub fn error_ratio(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.errors as f64 / self.sent as f64
        }
    }
}

/// The limits a step must stay within to count as sustained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CapacityLimits {
    /// p99 latency at most this many milliseconds.
    pub p99_ms: f64,
    /// Failed sends at most this fraction of sends.
    pub error_ratio: f64,
    /// Acknowledged rate at least this fraction of the offered rate.
    pub min_achieved_ratio: f64,
}

/// A whole capacity run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CapacityReport {
    pub limits: CapacityLimits,
    /// Bytes per record value.
    pub value_bytes: usize,
    pub partitions: u32,
    pub acks: crate::Acks,
    pub idempotence: bool,
    /// The cluster, as the run names it.
    pub cluster: String,
    /// Faults injected during the steps.
    #[serde(default)]
    pub faults: Vec<String>,
    pub steps: Vec<CapacityStep>,
    /// The highest offered rate of a sustained step, if any was.
    pub sustainable_rate: Option<f64>,
    /// Why the ramp ended.
    pub stopped: String,
}

impl CapacityReport {
    /// The sustained step with the highest offered rate.
    pub fn best(&self) -> Option<&CapacityStep> {
        self.steps
            .iter()
            .filter(|s| s.sustained)
            .max_by(|a, b| a.offered_rate.total_cmp(&b.offered_rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(i: usize, rate: f64, sustained: bool) -> CapacityStep {
        CapacityStep {
            index: i,
            offered_rate: rate,
            achieved_rate: rate,
            seconds: 10.0,
            drain_seconds: 0.1,
            sent: 100,
            acked: 98,
            errors: 2,
            latency_ms: vec![1.0, 2.0, 3.0, 4.0],
            max_latency_ms: 5.0,
            sustained,
            why: None,
            faults: vec![],
        }
    }

    #[test]
    fn best_is_the_highest_sustained_rate_not_the_last() {
        let r = CapacityReport {
            limits: CapacityLimits {
                p99_ms: 100.0,
                error_ratio: 0.01,
                min_achieved_ratio: 0.95,
            },
            value_bytes: 100,
            partitions: 6,
            acks: crate::Acks::All,
            idempotence: true,
            cluster: "c".into(),
            faults: vec![],
            // A refinement step below the best ran after it and failed.
            steps: vec![
                step(0, 1000.0, true),
                step(1, 2000.0, true),
                step(2, 4000.0, false),
                step(3, 3000.0, false),
            ],
            sustainable_rate: Some(2000.0),
            stopped: "p99".into(),
        };
        assert_eq!(r.best().unwrap().offered_rate, 2000.0);
        assert_eq!(r.steps[0].p99_ms(), Some(3.0));
        assert!((r.steps[0].error_ratio() - 0.02).abs() < 1e-12);
        let json = serde_json::to_string(&r).unwrap();
        let back: CapacityReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}
