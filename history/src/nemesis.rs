//! The nemesis's vocabulary, in one place: how an action's `f` says which
//! fault it starts or heals. gregor's nemesis writes `start-<fault>` /
//! `stop-<fault>` (with [`start_f`] / [`stop_f`]) or a bare verb (`kill`,
//! `pause`, `resume`, `start`); histories from other tools (Jepsen's
//! `start-partition`, `heal`, `kill`, `start`…) read the same way. The
//! checkers' fault windows ([`role`]), the Grafana annotations' tags
//! ([`fault_of`]) and the tests all ask this module.

/// The `f` of the action that starts `fault` for a while.
pub fn start_f(fault: &str) -> String {
    format!("start-{fault}")
}

/// The `f` of the action that ends `fault`.
pub fn stop_f(fault: &str) -> String {
    format!("stop-{fault}")
}

/// The fault an action belongs to: `start-delay` and `stop-delay` →
/// `delay`, `kill` → `kill`, a bare heal (`start`, `heal`) → itself.
pub fn fault_of(f: &str) -> String {
    match role(f) {
        Role::Fault(name) => name,
        Role::Heal {
            kind: Some(kind), ..
        } => kind,
        _ => f.to_string(),
    }
}

/// What a nemesis action does to fault windows, from its `f` alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Fault(String),
    Momentary,
    /// Heals a kind (`stop-partition` → `partition`) or a family (`start` → process).
    Heal {
        kind: Option<String>,
        family: Option<&'static str>,
    },
}

const HEAL_PREFIXES: &[&str] = &[
    "stop-", "end-", "heal-", "resume-", "restore-", "recover-", "unpause-", "undo-",
];
const FAULT_PREFIXES: &[&str] = &["start-", "begin-"];

/// The family of faults a bare healing verb repairs.
pub fn heal_family(f: &str) -> Option<&'static str> {
    match f {
        "start" | "recover" | "restore" | "revive" | "start-all" | "restart-all" => Some("process"),
        "resume" | "unpause" | "cont" | "continue" | "thaw" => Some("pause"),
        "heal" | "heal-all" | "unpartition" | "heal-network" | "fix-network" => Some("net"),
        _ => None,
    }
}

/// The family a fault belongs to, for matching bare healing verbs.
pub fn family(name: &str) -> &'static str {
    let n = name.to_ascii_lowercase();
    let has = |w: &[&str]| w.iter().any(|x| n.contains(x));
    if has(&[
        "partition",
        "isolat",
        "delay",
        "loss",
        "net",
        "slow",
        "latency",
        "drop",
    ]) {
        "net"
    } else if has(&["pause", "freeze", "stall", "sigstop"]) {
        "pause"
    } else if has(&["kill", "crash", "stop", "shutdown", "restart", "unfsynced"]) {
        "process"
    } else if has(&["clock", "skew"]) {
        "clock"
    } else {
        "other"
    }
}

pub fn role(f: &str) -> Role {
    let l = f.to_ascii_lowercase();
    if let Some(fam) = heal_family(&l) {
        return Role::Heal {
            kind: None,
            family: Some(fam),
        };
    }
    for p in HEAL_PREFIXES {
        if let Some(rest) = l.strip_prefix(p) {
            return Role::Heal {
                kind: Some(rest.to_string()),
                family: Some(family(rest)),
            };
        }
    }
    for p in FAULT_PREFIXES {
        if let Some(rest) = l.strip_prefix(p) {
            return Role::Fault(rest.to_string());
        }
    }
    if is_momentary(&l) {
        return Role::Momentary;
    }
    Role::Fault(f.to_string())
}

/// Actions that are over when they complete: restarts and bounces, version
/// changes (`upgrade`, `downgrade`), rolling changes (`rolling-restart`,
/// `rolling-config`) and the one-off steps that finish them
/// (`finalize-metadata-version`). `l` is lower case.
fn is_momentary(l: &str) -> bool {
    l.contains("restart")
        || l.contains("bounce")
        || l.contains("grade")
        || l.starts_with("rolling-")
        || l.starts_with("finalize")
        || l.contains("metadata-version")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_and_stop_name_the_same_fault_and_bare_verbs_heal_families() {
        assert_eq!(role(&start_f("delay")), Role::Fault("delay".into()));
        assert_eq!(
            role(&stop_f("delay")),
            Role::Heal {
                kind: Some("delay".into()),
                family: Some("net")
            }
        );
        assert_eq!(
            fault_of(&stop_f("replication-throttle")),
            "replication-throttle"
        );
        assert_eq!(fault_of("kill"), "kill");
        // a power loss is healed by the restart, as a kill is
        assert_eq!(family("lose-unfsynced"), "process");
        assert_eq!(fault_of("start"), "start");
        assert_eq!(role("rolling-restart"), Role::Momentary);
        assert_eq!(role("upgrade"), Role::Momentary);
        assert_eq!(role("finalize-metadata-version"), Role::Momentary);
        assert_eq!(
            role("resume"),
            Role::Heal {
                kind: None,
                family: Some("pause")
            }
        );
    }
}
