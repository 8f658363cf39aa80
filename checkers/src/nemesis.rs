//! Nemesis actions and the fault windows they open and close.
//!
//! The nemesis records its actions in the history like a client: an
//! `invoke` and an `info`/`ok` completion with `process: "nemesis"`, or just
//! a completion. Each action is classified by its `f`:
//!
//! * **heal** — `f` is a healing verb (`start`, `restart`… see
//!   [`gregor_history::nemesis::heal_family`]) or starts with a healing prefix (`stop-`, `end-`,
//!   `heal-`, `resume-`, `restore-`, `recover-`, `unpause-`): `stop-partition`
//!   heals `partition`; plain `start` heals process faults (kill, crash,
//!   stop), `resume`/`unpause` heal pauses, `heal` heals network faults
//!   (partition, delay, loss).
//! * **momentary** — restarts, bounces and version changes (`rolling-restart`,
//!   `rolling-config`, `upgrade`, `downgrade`, `finalize-metadata-version`):
//!   the window is the action itself, from its invoke to its completion.
//! * **fault** — anything else (`kill`, `pause`, `partition`,
//!   `start-partition`, `leader-kill`, `delay`…) opens a window named after
//!   the fault (`start-partition` → `partition`), with the action's value as
//!   its target (`["broker-2"]` → `broker-2`).
//!
//! A window starts at its fault's invoke (the earliest the fault can act)
//! and ends at the completion of the heal that closes it (the latest it can
//! still act). A heal closes the open windows of its kind (or family) whose
//! target equals the heal's target; if none has that target, or the heal
//! names no target, it closes all open windows of its kind or family; if no
//! window of its kind or family is open, it closes every open window (a
//! generic "heal everything"). Failed actions (`fail`) neither open nor
//! close. Windows still open at the end of the history close at its last
//! event. An invoke never completed counts as done at its invoke time.

use std::collections::{HashMap, VecDeque};

use gregor_history::{Event, EventType, History, Process, Value};

/// One nemesis action (an invoke paired with its completion when both exist).
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub f: String,
    pub target: Option<String>,
    /// Invoke time (completion time if there was no invoke), ns.
    pub start_ns: u64,
    /// Completion time (invoke time if never completed), ns.
    pub end_ns: u64,
    /// History index of the completion (or of the invoke if never completed).
    pub index: u64,
    /// `ok`, `info`, `fail`, or `pending` when never completed.
    pub outcome: &'static str,
    pub error: Option<String>,
}

/// A period during which a fault was (possibly) in effect.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// The fault's name: `kill`, `partition` (from `start-partition`)…
    pub name: String,
    pub target: Option<String>,
    pub start_ns: u64,
    pub end_ns: u64,
    /// The `f` of the healing action, `None` if the window ran to the end.
    pub closed_by: Option<String>,
}

impl Window {
    /// `kill broker-2`
    pub fn label(&self) -> String {
        match &self.target {
            Some(t) => format!("{} {t}", self.name),
            None => self.name.clone(),
        }
    }
}

use gregor_history::nemesis::{family, role, Role};

/// A short text for an action's target: strings as they are, lists joined by
/// commas, `null`/empty as `None`, anything else as compact JSON.
pub fn target_text(v: &Value) -> Option<String> {
    let j = match v {
        Value::Json(j) => j,
        Value::Keys(k) if !k.is_empty() => {
            return Some(
                k.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        _ => return None,
    };
    fn one(j: &serde_json::Value) -> String {
        match j {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(a) => a.iter().map(one).collect::<Vec<_>>().join(","),
            // {"isolated": ["b1"], "rest": ["b2", "b3"]} -> "isolated=b1; rest=b2,b3"
            serde_json::Value::Object(m) => m
                .iter()
                .map(|(k, v)| format!("{k}={}", one(v)))
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        }
    }
    match j {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) if s.is_empty() => None,
        serde_json::Value::Array(a) if a.is_empty() => None,
        serde_json::Value::Array(a) => Some(a.iter().map(one).collect::<Vec<_>>().join(",")),
        other => Some(one(other)),
    }
}

fn is_nemesis(e: &Event) -> bool {
    e.process == Process::Nemesis
}

/// Pairs the nemesis's invokes with their completions, in completion order.
pub fn actions(history: &History) -> Vec<Action> {
    let mut pending: HashMap<String, VecDeque<&Event>> = HashMap::new();
    let mut out = Vec::new();
    for e in history.events.iter().filter(|e| is_nemesis(e)) {
        let f = e.f.as_str().to_string();
        if e.kind == EventType::Invoke {
            pending.entry(f).or_default().push_back(e);
            continue;
        }
        let inv = pending.get_mut(&f).and_then(|q| q.pop_front());
        let target = target_text(&e.value).or_else(|| inv.and_then(|i| target_text(&i.value)));
        out.push(Action {
            f,
            target,
            start_ns: inv.map_or(e.time, |i| i.time.min(e.time)),
            end_ns: e.time,
            index: e.index,
            outcome: e.kind.as_str(),
            error: e.error.clone(),
        });
    }
    let mut rest: Vec<&Event> = pending.into_values().flatten().collect();
    rest.sort_by_key(|e| e.index);
    for e in rest {
        out.push(Action {
            f: e.f.as_str().to_string(),
            target: target_text(&e.value),
            start_ns: e.time,
            end_ns: e.time,
            index: e.index,
            outcome: "pending",
            error: None,
        });
    }
    out.sort_by_key(|a| (a.end_ns, a.index));
    out
}

/// Infers fault windows from nemesis actions (see the module docs for the rule).
pub fn windows(actions: &[Action], history_end_ns: u64) -> Vec<Window> {
    let mut open: Vec<Window> = Vec::new();
    let mut done: Vec<Window> = Vec::new();
    for a in actions.iter().filter(|a| a.outcome != "fail") {
        match role(&a.f) {
            Role::Fault(name) => open.push(Window {
                name,
                target: a.target.clone(),
                start_ns: a.start_ns,
                end_ns: history_end_ns,
                closed_by: None,
            }),
            Role::Momentary => done.push(Window {
                name: a.f.clone(),
                target: a.target.clone(),
                start_ns: a.start_ns,
                end_ns: a.end_ns,
                closed_by: Some(a.f.clone()),
            }),
            Role::Heal { kind, family: fam } => {
                let in_kind = |w: &Window| {
                    kind.as_deref()
                        .is_some_and(|k| w.name.eq_ignore_ascii_case(k))
                        || (kind.is_none() && fam.is_some_and(|f| family(&w.name) == f))
                };
                let mut matching: Vec<usize> =
                    (0..open.len()).filter(|&i| in_kind(&open[i])).collect();
                if matching.is_empty() && kind.is_some() {
                    matching = (0..open.len())
                        .filter(|&i| fam.is_some_and(|f| family(&open[i].name) == f))
                        .collect();
                }
                if matching.is_empty() {
                    matching = (0..open.len()).collect();
                }
                let same_target: Vec<usize> = matching
                    .iter()
                    .copied()
                    .filter(|&i| a.target.is_some() && open[i].target == a.target)
                    .collect();
                let close = if same_target.is_empty() {
                    matching
                } else {
                    same_target
                };
                for &i in close.iter().rev() {
                    let mut w = open.remove(i);
                    w.end_ns = a.end_ns.max(w.start_ns);
                    w.closed_by = Some(a.f.clone());
                    done.push(w);
                }
            }
        }
    }
    for mut w in open {
        w.end_ns = history_end_ns.max(w.start_ns);
        done.push(w);
    }
    done.sort_by_key(|w| (w.start_ns, w.end_ns));
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nem(lines: &[(u64, &str, &str, &str)]) -> History {
        let text: String = lines
            .iter()
            .enumerate()
            .map(|(i, (t, kind, f, v))| {
                format!(r#"{{"index":{i},"time":{t},"process":"nemesis","type":"{kind}","f":"{f}","value":{v}}}"#) + "\n"
            })
            .collect();
        History::parse_str(&text).unwrap()
    }

    fn spans(h: &History, end: u64) -> Vec<(String, u64, u64)> {
        windows(&actions(h), end)
            .into_iter()
            .map(|w| (w.label(), w.start_ns, w.end_ns))
            .collect()
    }

    #[test]
    fn a_kill_is_healed_by_the_start_of_the_same_broker() {
        let h = nem(&[
            (10, "invoke", "kill", r#"["broker-2"]"#),
            (12, "info", "kill", r#"["broker-2"]"#),
            (15, "info", "kill", r#"["broker-1"]"#),
            (20, "invoke", "start", r#"["broker-2"]"#),
            (22, "info", "start", r#"["broker-2"]"#),
        ]);
        assert_eq!(
            spans(&h, 100),
            vec![
                ("kill broker-2".to_string(), 10, 22),
                ("kill broker-1".to_string(), 15, 100)
            ]
        );
    }

    #[test]
    fn start_partition_is_closed_by_stop_partition_and_a_bare_start_heals_all_kills() {
        let h = nem(&[
            (1, "info", "start-partition", r#"{"broker-1":["broker-2"]}"#),
            (2, "info", "kill", r#"["a"]"#),
            (3, "info", "kill", r#"["b"]"#),
            (4, "info", "stop-partition", "null"),
            (5, "info", "start", "null"),
        ]);
        let s = spans(&h, 9);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].1, s[0].2), (1, 4));
        assert_eq!(s[0].0, "partition broker-1=broker-2");
        assert_eq!((s[1].1, s[1].2, s[2].2), (2, 5, 5));
    }

    #[test]
    fn pauses_resume_and_a_generic_heal_closes_whatever_is_open() {
        let h = nem(&[
            (1, "info", "pause", r#"["b1"]"#),
            (2, "info", "resume", r#"["b1"]"#),
            (3, "info", "delay", "null"),
            (4, "info", "heal", "null"),
            (5, "info", "leader-kill", "null"),
            (6, "info", "heal", "null"),
        ]);
        assert_eq!(
            spans(&h, 9),
            vec![
                ("pause b1".into(), 1, 2),
                ("delay".into(), 3, 4),
                ("leader-kill".into(), 5, 6)
            ]
        );
    }

    #[test]
    fn failed_faults_open_nothing_and_unhealed_faults_last_to_the_end() {
        let h = nem(&[
            (1, "invoke", "kill", r#"["b1"]"#),
            (2, "fail", "kill", r#"["b1"]"#),
            (3, "invoke", "pause", r#"["b2"]"#),
        ]);
        assert_eq!(spans(&h, 50), vec![("pause b2".into(), 3, 50)]);
    }

    #[test]
    fn a_rolling_restart_shades_only_its_own_duration() {
        let h = nem(&[
            (5, "invoke", "rolling-restart", "null"),
            (9, "info", "rolling-restart", "null"),
        ]);
        assert_eq!(spans(&h, 50), vec![("rolling-restart".into(), 5, 9)]);
    }

    #[test]
    fn upgrade_steps_and_the_finalize_shade_only_their_own_durations() {
        let h = nem(&[
            (
                10,
                "invoke",
                "upgrade",
                r#"{"node":"n1","from":"3.9.1","to":"4.1.1"}"#,
            ),
            (
                20,
                "info",
                "upgrade",
                r#"{"node":"n1","from":"3.9.1","to":"4.1.1"}"#,
            ),
            (
                30,
                "invoke",
                "upgrade",
                r#"{"node":"n2","from":"3.9.1","to":"4.1.1"}"#,
            ),
            (
                40,
                "info",
                "upgrade",
                r#"{"node":"n2","from":"3.9.1","to":"4.1.1"}"#,
            ),
            (
                50,
                "invoke",
                "finalize-metadata-version",
                r#"{"release":"4.1"}"#,
            ),
            (
                52,
                "info",
                "finalize-metadata-version",
                r#"{"release":"4.1"}"#,
            ),
        ]);
        let s = spans(&h, 1000);
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!((s[0].1, s[0].2), (10, 20));
        assert_eq!((s[1].1, s[1].2), (30, 40));
        assert_eq!(&s[2].0[..25], "finalize-metadata-version");
        // Not a fault left open to the end of the history (1000).
        assert_eq!((s[2].1, s[2].2), (50, 52));
    }
}
