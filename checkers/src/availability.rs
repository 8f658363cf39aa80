//! Availability and recovery per fault window, from the history alone
//! (and, when the run sampled it, the brokers' metadata).
//!
//! Fault windows are [`crate::nemesis::windows`]. For each window and each
//! client function (`send`, `poll`, `txn`, …), over the operations
//! *invoked* inside the window:
//!
//! - `ok` / `failed`: how many succeeded / failed or crashed (`fail`,
//!   `info`, never completed);
//! - `unavailable-s`: from the completion of the first failed operation
//!   invoked in the window to the completion of the first `ok` operation of
//!   the same function invoked after that failure completed (up to the end
//!   of the history: `null` when none succeeded again); 0 when none failed;
//! - `recovery-s`: from the window's end (the heal completed) to the
//!   completion of the first `ok` operation invoked at or after it — how
//!   long after healing the function worked again (`null`: never).
//!
//! `new-leader-s` (with cluster samples): from the window's start to the
//! first sample in which some partition's leader differs from the last
//! sample before the window (`null`: no change seen before the window
//! ended).
//!
//! Latency quantiles of `ok` operations per function, split by whether the
//! operation was invoked inside some fault window or outside all of them.

use std::collections::BTreeMap;

use gregor_history::ops::{client_ops, OpSpan, Outcome};
use gregor_history::{ClusterSample, History};
use serde::{Deserialize, Serialize};

use crate::nemesis::{actions, windows, Window};
use crate::Latency;

/// One function's availability in one fault window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FnAvailability {
    pub ok: u64,
    pub failed: u64,
    pub unavailable_s: Option<f64>,
    pub recovery_s: Option<f64>,
}

/// One fault window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct WindowAvailability {
    pub fault: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub start_s: f64,
    pub end_s: f64,
    /// Function name -> its availability in the window.
    pub by_f: BTreeMap<String, FnAvailability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_leader_s: Option<f64>,
}

/// Availability over the whole history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Availability {
    pub windows: Vec<WindowAvailability>,
    /// Function -> the longest `unavailable-s` over all windows (a window
    /// whose function never recovered counts until the end of the history).
    pub worst_unavailable_s: BTreeMap<String, f64>,
    /// Function -> latency of `ok` operations invoked inside fault windows.
    pub latency_in_faults: BTreeMap<String, Latency>,
    /// Function -> latency of `ok` operations invoked outside every window.
    pub latency_outside_faults: BTreeMap<String, Latency>,
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn failed(o: &OpSpan) -> bool {
    o.outcome != Outcome::Ok
}

/// The end of an operation for "first failure" purposes: its completion, or
/// its invoke if it never completed.
fn done_ns(o: &OpSpan) -> u64 {
    o.complete_ns.unwrap_or(o.invoke_ns)
}

fn window_fn(ops: &[&OpSpan], w: &Window) -> FnAvailability {
    // `ops` are one function's operations, by invoke time.
    let from = ops.partition_point(|o| o.invoke_ns < w.start_ns);
    let to = ops.partition_point(|o| o.invoke_ns <= w.end_ns);
    let inside = &ops[from..to];
    let ok = inside.iter().filter(|o| !failed(o)).count() as u64;
    let n_failed = inside.len() as u64 - ok;
    let first_ok_invoked_from = |t: u64| -> Option<u64> {
        let i = ops.partition_point(|o| o.invoke_ns < t);
        ops[i..]
            .iter()
            .filter(|o| o.outcome == Outcome::Ok)
            .filter_map(|o| o.complete_ns)
            .min()
    };
    let unavailable_s = match inside
        .iter()
        .filter(|o| failed(o))
        .map(|o| done_ns(o))
        .min()
    {
        None => Some(0.0),
        Some(first_fail) => {
            first_ok_invoked_from(first_fail).map(|t| secs(t.saturating_sub(first_fail)))
        }
    };
    FnAvailability {
        ok,
        failed: n_failed,
        unavailable_s,
        recovery_s: first_ok_invoked_from(w.end_ns).map(|t| secs(t.saturating_sub(w.end_ns))),
    }
}

/// The leader of every partition in a sample, by (topic, partition).
fn leaders(s: &ClusterSample) -> BTreeMap<(&str, i32), i32> {
    s.partitions
        .iter()
        .map(|p| ((p.topic.as_str(), p.partition), p.leader))
        .collect()
}

fn new_leader_s(w: &Window, samples: &[ClusterSample]) -> Option<f64> {
    let i = samples.partition_point(|s| s.time < w.start_ns);
    let before = leaders(samples.get(i.checked_sub(1)?)?);
    samples[i..]
        .iter()
        .take_while(|s| s.time <= w.end_ns)
        .find(|s| {
            let now = leaders(s);
            before
                .iter()
                .any(|(k, l)| now.get(k).is_some_and(|m| m != l))
        })
        .map(|s| secs(s.time.saturating_sub(w.start_ns)))
}

/// Availability of every function in every fault window of `h`;
/// `samples` (may be empty) are the run's cluster samples, in time order.
pub fn analyze(h: &History, samples: &[ClusterSample]) -> Availability {
    let end_ns = h.events.iter().map(|e| e.time).max().unwrap_or(0);
    let ws = windows(&actions(h), end_ns);
    let ops = client_ops(h);
    let mut by_f: BTreeMap<String, Vec<&OpSpan>> = BTreeMap::new();
    for o in &ops {
        by_f.entry(o.f.to_string()).or_default().push(o);
    }
    let mut out = Availability::default();
    for w in &ws {
        let mut wa = WindowAvailability {
            fault: w.name.clone(),
            target: w.target.clone(),
            start_s: secs(w.start_ns),
            end_s: secs(w.end_ns),
            by_f: BTreeMap::new(),
            new_leader_s: new_leader_s(w, samples),
        };
        for (f, fops) in &by_f {
            let a = window_fn(fops, w);
            if a.ok + a.failed == 0 && a.recovery_s.is_none() {
                continue;
            }
            let worst = match a.unavailable_s {
                Some(u) => u,
                // Never recovered: unavailable until the end.
                None => {
                    let first_fail = fops
                        .iter()
                        .filter(|o| o.invoke_ns >= w.start_ns && o.invoke_ns <= w.end_ns)
                        .filter(|o| failed(o))
                        .map(|o| done_ns(o))
                        .min()
                        .unwrap_or(w.start_ns);
                    secs(end_ns.saturating_sub(first_fail))
                }
            };
            let e = out.worst_unavailable_s.entry(f.clone()).or_insert(0.0);
            *e = e.max(worst);
            wa.by_f.insert(f.clone(), a);
        }
        out.windows.push(wa);
    }
    // Latency inside / outside fault windows.
    let in_window = |t: u64| {
        let i = ws.partition_point(|w| w.start_ns <= t);
        ws[..i].iter().any(|w| t <= w.end_ns)
    };
    let mut inside: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut outside: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for o in &ops {
        let (Outcome::Ok, Some(l)) = (o.outcome, o.latency_ns()) else {
            continue;
        };
        let side = if in_window(o.invoke_ns) {
            &mut inside
        } else {
            &mut outside
        };
        side.entry(o.f.to_string()).or_default().push(l);
    }
    for (src, dst) in [
        (inside, &mut out.latency_in_faults),
        (outside, &mut out.latency_outside_faults),
    ] {
        for (f, mut v) in src {
            if let Some(l) = Latency::of(&mut v) {
                dst.insert(f, l);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_history::PartitionState;

    const S: u64 = 1_000_000_000;

    /// A history from `(time_s, process, type, f)` rows; sends carry no
    /// payload checks here.
    fn h(rows: &[(f64, &str, &str, &str)]) -> History {
        let lines: Vec<String> = rows
            .iter()
            .enumerate()
            .map(|(i, (t, p, ty, f))| {
                let value = match *f {
                    "send" if *ty == "ok" => r#"[["send",0,[0,1]]]"#.to_string(),
                    "send" => r#"[["send",0,1]]"#.to_string(),
                    "poll" => r#"[["poll"]]"#.to_string(),
                    _ => "null".to_string(),
                };
                let p = if *p == "nemesis" {
                    "\"nemesis\"".to_string()
                } else {
                    p.to_string()
                };
                format!(
                    r#"{{"index":{i},"time":{},"type":"{ty}","process":{p},"f":"{f}","value":{value}}}"#,
                    (t * S as f64) as u64
                )
            })
            .collect();
        History::parse_str(&lines.join("\n")).unwrap()
    }

    #[test]
    fn a_kill_window_measures_unavailability_and_recovery() {
        // kill at 10 s, start (heal) at 20 s. Sends: ok before, fail at
        // 11-12 s, a crash, ok again at 15 s (invoked 14 s), and after
        // the heal the first ok completes at 20.5 s.
        let hist = h(&[
            (1.0, "0", "invoke", "send"),
            (1.1, "0", "ok", "send"),
            (10.0, "nemesis", "info", "kill"),
            (10.5, "0", "invoke", "send"),
            (11.0, "0", "fail", "send"),
            (11.5, "1", "invoke", "send"),
            (12.0, "1", "info", "send"),
            (14.0, "0", "invoke", "send"),
            (15.0, "0", "ok", "send"),
            (20.0, "nemesis", "info", "start"),
            (20.2, "0", "invoke", "send"),
            (20.5, "0", "ok", "send"),
        ]);
        let a = analyze(&hist, &[]);
        assert_eq!(a.windows.len(), 1, "{a:?}");
        let w = &a.windows[0];
        assert_eq!(w.fault, "kill");
        let s = &w.by_f["send"];
        assert_eq!((s.ok, s.failed), (1, 2), "{s:?}");
        // First failure completed at 11 s; the first ok invoked after it
        // (at 14 s) completed at 15 s.
        assert!((s.unavailable_s.unwrap() - 4.0).abs() < 1e-9, "{s:?}");
        assert!((s.recovery_s.unwrap() - 0.5).abs() < 1e-9, "{s:?}");
        assert!((a.worst_unavailable_s["send"] - 4.0).abs() < 1e-9);
        // Latency: the op invoked at 14 s was inside, the others outside.
        assert_eq!(a.latency_in_faults["send"].count, 1);
        assert!((a.latency_in_faults["send"].p99 - 1000.0).abs() < 1e-6);
        assert_eq!(a.latency_outside_faults["send"].count, 2);
    }

    #[test]
    fn a_function_that_never_recovers_has_no_unavailable_time_but_a_worst_to_the_end() {
        let hist = h(&[
            (1.0, "nemesis", "info", "pause"),
            (2.0, "0", "invoke", "poll"),
            (3.0, "0", "fail", "poll"),
            (5.0, "nemesis", "info", "resume"),
            (9.0, "1", "invoke", "send"),
            (9.5, "1", "ok", "send"),
        ]);
        let a = analyze(&hist, &[]);
        let p = &a.windows[0].by_f["poll"];
        assert_eq!(p.unavailable_s, None, "{p:?}");
        assert_eq!(p.recovery_s, None);
        // From the failure at 3 s to the end at 9.5 s.
        assert!((a.worst_unavailable_s["poll"] - 6.5).abs() < 1e-9, "{a:?}");
    }

    #[test]
    fn a_window_without_failures_is_zero_unavailable() {
        let hist = h(&[
            (1.0, "nemesis", "info", "delay"),
            (2.0, "0", "invoke", "send"),
            (2.5, "0", "ok", "send"),
            (3.0, "nemesis", "info", "heal"),
        ]);
        let a = analyze(&hist, &[]);
        assert_eq!(a.windows[0].by_f["send"].unavailable_s, Some(0.0));
    }

    #[test]
    fn new_leader_time_comes_from_the_first_sample_with_another_leader() {
        let hist = h(&[
            (10.0, "nemesis", "info", "leader-kill"),
            (20.0, "nemesis", "info", "start"),
        ]);
        let sample = |t: f64, leader: i32| ClusterSample {
            time: (t * S as f64) as u64,
            asked: "a".into(),
            brokers: vec![0, 1, 2],
            partitions: vec![PartitionState {
                key: 0,
                topic: "t".into(),
                partition: 0,
                leader,
                leader_epoch: 0,
                replicas: vec![0, 1, 2],
                isr: vec![0, 1, 2],
                offline: vec![],
                error: 0,
            }],
        };
        let samples = vec![sample(9.0, 0), sample(12.0, 0), sample(13.5, 1)];
        let a = analyze(&hist, &samples);
        assert!(
            (a.windows[0].new_leader_s.unwrap() - 3.5).abs() < 1e-9,
            "{a:?}"
        );
        // Without a sample before the window there is nothing to compare.
        assert_eq!(analyze(&hist, &samples[1..]).windows[0].new_leader_s, None);
    }
}
