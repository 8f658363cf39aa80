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
//!   long after healing the function worked again (`null`: never);
//! - `stalled-s`: the longest stretch overlapping the window in which the
//!   function was wanted and made no progress: between two consecutive
//!   `ok` completions of the function (or the last one and the end of the
//!   history), counted from the later of the first completion and the
//!   first moment an operation of the function was outstanding. Unlike
//!   `unavailable-s`, which starts at a failure, this also sees operations
//!   that hang without failing (a leader that cannot reach its ISR holds
//!   `acks=all` sends until they time out).
//!
//! `new-leader-s` (with cluster samples): from the window's start to the
//! first sample in which some partition's leader differs from the last
//! sample before the window (`null`: no change seen before the window
//! ended).
//!
//! `rebalance-s` (subscribe workloads): the longest time a process spent
//! between a `revoke` and its next `assign` in the `rebalance-log` its
//! operations carry, for revokes noted in the window. Rebalance callbacks
//! are only seen when an operation completes, so this is exact to the
//! granularity of the process' operations.
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
    /// When the unavailability began: the completion of the first failure
    /// (seconds since the history's zero); absent when nothing failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_from_s: Option<f64>,
    pub unavailable_s: Option<f64>,
    pub recovery_s: Option<f64>,
    /// See the module docs; 0 when every gap overlapping the window was idle.
    #[serde(default)]
    pub stalled_s: f64,
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
    /// Subscribe workloads: the longest time a process went from losing
    /// partitions (a revoke noted on an operation completed in the window)
    /// to getting partitions again (the next assign noted on one of its
    /// operations); `None` when no revoke fell in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance_s: Option<f64>,
}

/// Availability over the whole history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Availability {
    pub windows: Vec<WindowAvailability>,
    /// Function -> the longest `unavailable-s` over all windows (a window
    /// whose function never recovered counts until the end of the history).
    pub worst_unavailable_s: BTreeMap<String, f64>,
    /// Function -> the longest `stalled-s` over all windows.
    #[serde(default)]
    pub worst_stalled_s: BTreeMap<String, f64>,
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

/// One function's operations, indexed for the per-window questions.
struct FnOps<'a> {
    /// By invoke time.
    ops: Vec<&'a OpSpan>,
    /// From each position of `ops`, the earliest completion of an `ok`
    /// operation invoked there or later (u64::MAX: none).
    first_ok: Vec<u64>,
    /// Completion times of the `ok` operations, sorted.
    ok_done: Vec<u64>,
    /// For each prefix `ops[..i]`, the latest end of its operations
    /// (`done_ns`; u64::MAX for one that never completed): `ends[i]`.
    ends: Vec<u64>,
}

impl<'a> FnOps<'a> {
    fn new(ops: Vec<&'a OpSpan>) -> FnOps<'a> {
        let mut first_ok = vec![u64::MAX; ops.len()];
        let mut min = u64::MAX;
        for (i, o) in ops.iter().enumerate().rev() {
            if let (Outcome::Ok, Some(c)) = (o.outcome, o.complete_ns) {
                min = min.min(c);
            }
            first_ok[i] = min;
        }
        let mut ok_done: Vec<u64> = ops
            .iter()
            .filter(|o| o.outcome == Outcome::Ok)
            .filter_map(|o| o.complete_ns)
            .collect();
        ok_done.sort_unstable();
        let mut ends = Vec::with_capacity(ops.len() + 1);
        let mut latest = 0u64;
        ends.push(latest);
        for o in &ops {
            latest = latest.max(o.complete_ns.unwrap_or(u64::MAX));
            ends.push(latest);
        }
        FnOps {
            ops,
            first_ok,
            ok_done,
            ends,
        }
    }

    /// The longest stall overlapping `[start, end]` (see the module docs);
    /// `history_end` closes a last gap that no `ok` completion ends.
    fn stalled_ns(&self, start: u64, end: u64, history_end: u64) -> u64 {
        let Some(first) = self.ops.first().map(|o| o.invoke_ns) else {
            return 0;
        };
        // Gaps (a, b) between consecutive ok completions, bounded by the
        // first invoke and the history's end, that overlap the window.
        let i = self.ok_done.partition_point(|&t| t < start);
        let mut best = 0;
        let mut a = if i == 0 { first } else { self.ok_done[i - 1] };
        for j in i..=self.ok_done.len() {
            let b = self.ok_done.get(j).copied().unwrap_or(history_end);
            if a > end {
                break;
            }
            if b > a {
                // Wanted from `a` if an operation invoked before `a` was
                // still outstanding then; else from the next invoke.
                let k = self.ops.partition_point(|o| o.invoke_ns < a);
                let wanted_from = if self.ends[k] > a {
                    Some(a)
                } else {
                    self.ops.get(k).map(|o| o.invoke_ns).filter(|&t| t < b)
                };
                if let Some(w) = wanted_from {
                    best = best.max(b - w);
                }
            }
            a = b;
        }
        best
    }
}

/// A function's availability in window `w`, and when its first failure there
/// ended.
fn window_fn(f: &FnOps, w: &Window, history_end: u64) -> (FnAvailability, Option<u64>) {
    let (ops, first_ok) = (&f.ops, &f.first_ok);
    // `ops` are one function's operations, by invoke time.
    let from = ops.partition_point(|o| o.invoke_ns < w.start_ns);
    let to = ops.partition_point(|o| o.invoke_ns <= w.end_ns);
    let inside = &ops[from..to];
    let ok = inside.iter().filter(|o| !failed(o)).count() as u64;
    let n_failed = inside.len() as u64 - ok;
    let first_ok_invoked_from = |t: u64| -> Option<u64> {
        let i = ops.partition_point(|o| o.invoke_ns < t);
        first_ok.get(i).copied().filter(|&c| c != u64::MAX)
    };
    let first_fail = inside
        .iter()
        .filter(|o| failed(o))
        .map(|o| done_ns(o))
        .min();
    let unavailable_s = match first_fail {
        None => Some(0.0),
        Some(first_fail) => {
            first_ok_invoked_from(first_fail).map(|t| secs(t.saturating_sub(first_fail)))
        }
    };
    let a = FnAvailability {
        ok,
        failed: n_failed,
        unavailable_from_s: first_fail.map(secs),
        unavailable_s,
        recovery_s: first_ok_invoked_from(w.end_ns).map(|t| secs(t.saturating_sub(w.end_ns))),
        stalled_s: secs(f.stalled_ns(w.start_ns, w.end_ns, history_end)),
    };
    (a, first_fail)
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

/// `(revoke time, the same process' next assign time)` for every revoke
/// noted in the history's `rebalance-log`s.
fn rebalances(h: &History) -> Vec<(u64, u64)> {
    // (revoke time, next assign time) per revoke.
    let mut by_p: BTreeMap<u64, Vec<(u64, bool)>> = BTreeMap::new();
    for e in &h.events {
        let gregor_history::Process::Client(p) = e.process else {
            continue;
        };
        let Some(log) = e.extra("rebalance-log").and_then(|v| v.as_array()) else {
            continue;
        };
        for n in log {
            match n.get("rebalance").and_then(|r| r.as_str()) {
                Some("revoke") => by_p.entry(p).or_default().push((e.time, true)),
                Some("assign") => by_p.entry(p).or_default().push((e.time, false)),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for notes in by_p.values() {
        for (i, &(t, revoke)) in notes.iter().enumerate() {
            if !revoke {
                continue;
            }
            if let Some(&(ta, _)) = notes[i + 1..].iter().find(|(_, r)| !r) {
                out.push((t, ta));
            }
        }
    }
    out
}

/// Availability of every function in every fault window of `h`;
/// `samples` (may be empty) are the run's cluster samples, in time order.
pub fn analyze(h: &History, samples: &[ClusterSample]) -> Availability {
    let end_ns = h.events.iter().map(|e| e.time).max().unwrap_or(0);
    let ws = windows(&actions(h), end_ns);
    if ws.is_empty() {
        // No faults: nothing to pair (keeps fault-free checks as fast as before).
        return Availability::default();
    }
    let ops = client_ops(h);
    let mut grouped: BTreeMap<&gregor_history::F, Vec<&OpSpan>> = BTreeMap::new();
    for o in &ops {
        grouped.entry(&o.f).or_default().push(o);
    }
    // Per function, indexed so every window asks in O(log n).
    let by_f: BTreeMap<&gregor_history::F, FnOps> = grouped
        .into_iter()
        .map(|(f, fops)| (f, FnOps::new(fops)))
        .collect();
    let moves = rebalances(h);
    let mut out = Availability::default();
    for w in &ws {
        let mut wa = WindowAvailability {
            fault: w.name.clone(),
            target: w.target.clone(),
            start_s: secs(w.start_ns),
            end_s: secs(w.end_ns),
            by_f: BTreeMap::new(),
            new_leader_s: new_leader_s(w, samples),
            rebalance_s: moves
                .iter()
                .filter(|(r, _)| *r >= w.start_ns && *r <= w.end_ns)
                .map(|(r, a)| secs(a.saturating_sub(*r)))
                .reduce(f64::max),
        };
        for (f, fops) in &by_f {
            let (a, first_fail) = window_fn(fops, w, end_ns);
            if a.ok + a.failed == 0 && a.recovery_s.is_none() && a.stalled_s == 0.0 {
                continue;
            }
            // Never recovered: unavailable from the first failure to the end.
            let worst = a
                .unavailable_s
                .unwrap_or_else(|| secs(end_ns.saturating_sub(first_fail.unwrap_or(w.start_ns))));
            let e = out.worst_unavailable_s.entry(f.to_string()).or_insert(0.0);
            *e = e.max(worst);
            let e = out.worst_stalled_s.entry(f.to_string()).or_insert(0.0);
            *e = e.max(a.stalled_s);
            wa.by_f.insert(f.to_string(), a);
        }
        out.windows.push(wa);
    }
    // Latency inside / outside fault windows: the windows merged into
    // disjoint spans, so each operation is one binary search.
    let mut spans: Vec<(u64, u64)> = ws.iter().map(|w| (w.start_ns, w.end_ns)).collect();
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(spans.len());
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    let in_window = |t: u64| {
        let i = merged.partition_point(|&(a, _)| a <= t);
        i > 0 && t <= merged[i - 1].1
    };
    let mut inside: BTreeMap<&gregor_history::F, Vec<u64>> = BTreeMap::new();
    let mut outside: BTreeMap<&gregor_history::F, Vec<u64>> = BTreeMap::new();
    for o in &ops {
        let (Outcome::Ok, Some(l)) = (o.outcome, o.latency_ns()) else {
            continue;
        };
        let side = if in_window(o.invoke_ns) {
            &mut inside
        } else {
            &mut outside
        };
        side.entry(&o.f).or_default().push(l);
    }
    for (src, dst) in [
        (inside, &mut out.latency_in_faults),
        (outside, &mut out.latency_outside_faults),
    ] {
        for (f, mut v) in src {
            if let Some(l) = Latency::of(&mut v) {
                dst.insert(f.to_string(), l);
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
        // No ok from 1.1 s to 15 s; wanted from the invoke at 10.5 s.
        assert!((s.stalled_s - 4.5).abs() < 1e-9, "{s:?}");
        assert!((a.worst_stalled_s["send"] - 4.5).abs() < 1e-9);
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
    fn sends_that_hang_without_failing_are_a_stall_not_unavailability() {
        // A blackhole at 5 s: two sends hang until 25 s and then succeed;
        // nothing failed, so no unavailability, but nothing was
        // acknowledged from 4.5 s to 25 s while they waited (from 6 s).
        let hist = h(&[
            (4.0, "0", "invoke", "send"),
            (4.5, "0", "ok", "send"),
            (5.0, "nemesis", "info", "blackhole"),
            (6.0, "0", "invoke", "send"),
            (7.0, "1", "invoke", "send"),
            (15.0, "nemesis", "info", "heal"),
            (25.0, "0", "ok", "send"),
            (25.1, "1", "ok", "send"),
        ]);
        let a = analyze(&hist, &[]);
        let s = &a.windows[0].by_f["send"];
        assert_eq!(s.unavailable_s, Some(0.0), "{s:?}");
        assert!((s.stalled_s - 19.0).abs() < 1e-9, "{s:?}");
        // An op outstanding across the last ok: wanted from that ok on.
        let hist = h(&[
            (1.0, "0", "invoke", "send"),
            (2.0, "1", "invoke", "send"),
            (2.5, "1", "ok", "send"),
            (3.0, "nemesis", "info", "pause"),
            (4.0, "nemesis", "info", "resume"),
            (9.5, "0", "ok", "send"),
        ]);
        let a = analyze(&hist, &[]);
        assert!(
            (a.windows[0].by_f["send"].stalled_s - 7.0).abs() < 1e-9,
            "{a:?}"
        );
        // Never acknowledged again: the stall runs to the history's end.
        let hist = h(&[
            (1.0, "0", "invoke", "send"),
            (1.5, "0", "ok", "send"),
            (2.0, "nemesis", "info", "kill"),
            (3.0, "0", "invoke", "send"),
            (8.0, "0", "info", "send"),
            (9.0, "nemesis", "info", "start"),
            (10.0, "1", "invoke", "poll"),
            (10.5, "1", "ok", "poll"),
        ]);
        let a = analyze(&hist, &[]);
        assert!(
            (a.windows[0].by_f["send"].stalled_s - 7.5).abs() < 1e-9,
            "{a:?}"
        );
        // Idle: no send wanted between the oks, so no stall.
        let hist = h(&[
            (1.0, "0", "invoke", "send"),
            (1.5, "0", "ok", "send"),
            (2.0, "nemesis", "info", "delay"),
            (3.0, "nemesis", "info", "heal"),
            (9.0, "0", "invoke", "send"),
            (9.2, "0", "ok", "send"),
        ]);
        let a = analyze(&hist, &[]);
        assert!(
            (a.windows[0].by_f["send"].stalled_s - 0.2).abs() < 1e-9,
            "{a:?}"
        );
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
    fn rebalance_time_runs_from_a_revoke_to_the_process_next_assign() {
        let mut hist = h(&[
            (1.0, "nemesis", "info", "kill"),
            (2.0, "0", "invoke", "poll"),
            (2.5, "0", "ok", "poll"),
            (3.0, "0", "invoke", "poll"),
            (4.0, "0", "ok", "poll"),
            (5.0, "1", "invoke", "poll"),
            (6.0, "1", "ok", "poll"),
            (9.0, "nemesis", "info", "start"),
        ]);
        let note = |kind: &str| serde_json::json!([{"rebalance": kind, "keys": [1]}]);
        // Process 0: revoked at 2.5 s, assigned again at 4 s; process 1
        // assigned only (no revoke).
        hist.events[2]
            .extra
            .push(("rebalance-log".into(), note("revoke")));
        hist.events[4]
            .extra
            .push(("rebalance-log".into(), note("assign")));
        hist.events[6]
            .extra
            .push(("rebalance-log".into(), note("assign")));
        let a = analyze(&hist, &[]);
        assert!(
            (a.windows[0].rebalance_s.unwrap() - 1.5).abs() < 1e-9,
            "{a:?}"
        );
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

    #[test]
    fn operations_after_a_finalize_count_outside_fault_windows() {
        // An upgrade step 10-20 s and a finalize 30-31 s; the sends after
        // them are outside every fault window, and the finalize is one
        // window of its own second, not one running to the end (60 s).
        let hist = h(&[
            (10.0, "nemesis", "invoke", "upgrade"),
            (12.0, "0", "invoke", "send"),
            (13.0, "0", "ok", "send"),
            (20.0, "nemesis", "info", "upgrade"),
            (30.0, "nemesis", "invoke", "finalize-metadata-version"),
            (31.0, "nemesis", "info", "finalize-metadata-version"),
            (40.0, "0", "invoke", "send"),
            (40.5, "0", "ok", "send"),
            (59.0, "0", "invoke", "send"),
            (60.0, "0", "ok", "send"),
        ]);
        let a = analyze(&hist, &[]);
        let spans: Vec<(&str, f64, f64)> = a
            .windows
            .iter()
            .map(|w| (w.fault.as_str(), w.start_s, w.end_s))
            .collect();
        assert_eq!(
            spans,
            vec![
                ("upgrade", 10.0, 20.0),
                ("finalize-metadata-version", 30.0, 31.0)
            ]
        );
        assert_eq!(a.latency_in_faults["send"].count, 1, "{a:?}");
        assert_eq!(a.latency_outside_faults["send"].count, 2, "{a:?}");
        let during = &a.windows[1].by_f["send"];
        assert_eq!((during.ok, during.failed), (0, 0), "{a:?}");
    }
}
