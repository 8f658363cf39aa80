//! The nemesis: faults injected into a local cluster on a schedule, every
//! action recorded in the history, and everything healed at the end.
//!
//! A [`Nemesis`] runs on its own thread (cluster control is blocking: a
//! restarted broker is waited for). It sleeps an interval (with jitter),
//! picks one of the enabled [`Fault`]s at random, resolves its [`Target`],
//! breaks the targets, records the action, waits the fault's duration,
//! heals and records that. [`Breakage`] remembers what is broken so that
//! [`Breakage::heal_all`] (called at the end, on error, on SIGINT and from
//! `Drop` during a panic) leaves no broker killed or paused.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gregor_deploy::Cluster;
use gregor_history::{EventType, Process, Recorder, Value, F};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// kill -9 the targets, restart them after the fault's duration.
    Kill,
    /// Graceful stop (SIGTERM), start after the duration.
    Stop,
    /// SIGSTOP, SIGCONT after the duration.
    Pause,
    /// Restart every broker, one at a time, each rejoining before the next.
    RollingRestart,
    /// kill -9 the leader of the target partition's key.
    LeaderKill,
    /// SIGSTOP the leader of the target partition's key.
    LeaderPause,
}

impl Fault {
    pub const NAMES: [&'static str; 6] = [
        "kill",
        "stop",
        "pause",
        "rolling-restart",
        "leader-kill",
        "leader-pause",
    ];

    pub fn parse(s: &str) -> Option<Fault> {
        Some(match s {
            "kill" => Fault::Kill,
            "stop" => Fault::Stop,
            "pause" => Fault::Pause,
            "rolling-restart" => Fault::RollingRestart,
            "leader-kill" => Fault::LeaderKill,
            "leader-pause" => Fault::LeaderPause,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        Fault::NAMES[self as usize]
    }
}

/// Which brokers a fault hits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    One,
    Minority,
    Majority,
    All,
    Node(usize),
    /// The broker leading key 0's partition (from metadata).
    Leader,
}

impl Target {
    pub fn parse(s: &str) -> Option<Target> {
        Some(match s {
            "one" => Target::One,
            "minority" => Target::Minority,
            "majority" => Target::Majority,
            "all" => Target::All,
            "leader" => Target::Leader,
            _ => Target::Node(s.strip_prefix("broker-")?.parse().ok()?),
        })
    }
}

/// What the nemesis does.
#[derive(Clone)]
pub struct NemesisConfig {
    pub faults: Vec<Fault>,
    pub interval: Duration,
    pub duration: Duration,
    pub jitter: f64,
    pub target: Target,
    pub seed: u64,
    /// Finds the node leading a partition (for leader faults): returns the
    /// leader's `host:port` as advertised in metadata.
    pub leader_of: Option<Arc<dyn Fn() -> Option<String> + Send + Sync>>,
    /// Called with a broker's address right after it was restarted (e.g. to
    /// recreate topics on a broker that forgets everything).
    pub after_start: Option<AfterStart>,
}

/// Hook run after a broker restarts.
pub type AfterStart = Arc<dyn Fn(&str) + Send + Sync>;

/// Restarts of a killed broker tried before giving up.
const START_ATTEMPTS: u32 = 5;

/// How a node is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Broken {
    Down,
    Paused,
}

/// The cluster plus what the nemesis broke in it.
pub struct Breakage {
    cluster: Arc<Mutex<Cluster>>,
    rec: Option<Arc<Recorder>>,
    broken: BTreeMap<usize, Broken>,
    after_start: Option<AfterStart>,
}

fn record(rec: &Option<Arc<Recorder>>, f: &str, value: serde_json::Value, error: Option<String>) {
    if let Some(r) = rec {
        r.record(
            Process::Nemesis,
            EventType::Info,
            F::Other(f.to_string()),
            Value::Json(value),
            error,
        );
    }
}

impl Breakage {
    pub fn new(cluster: Arc<Mutex<Cluster>>, rec: Option<Arc<Recorder>>) -> Breakage {
        Breakage {
            cluster,
            rec,
            broken: BTreeMap::new(),
            after_start: None,
        }
    }

    /// Runs `hook` with each broker's address right after it restarts.
    pub fn with_after_start(mut self, hook: Option<AfterStart>) -> Breakage {
        self.after_start = hook;
        self
    }

    fn names(&self, nodes: &[usize]) -> serde_json::Value {
        let c = self.cluster.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::json!(nodes
            .iter()
            .map(|&i| c.nodes()[i].name.clone())
            .collect::<Vec<_>>())
    }

    /// Applies `fault` to `nodes`, recording the action.
    fn apply(&mut self, fault: Fault, nodes: &[usize]) {
        let mut errors = Vec::new();
        {
            let mut c = self.cluster.lock().unwrap_or_else(|p| p.into_inner());
            for &n in nodes {
                let r = match fault {
                    Fault::Kill | Fault::LeaderKill => c.kill(n).map(|_| Broken::Down),
                    Fault::Stop => c.stop(n).map(|_| Broken::Down),
                    Fault::Pause | Fault::LeaderPause => c.pause(n).map(|_| Broken::Paused),
                    Fault::RollingRestart => {
                        unreachable!("rolling restarts are applied by rolling_restart")
                    }
                };
                match r {
                    Ok(b) => {
                        self.broken.insert(n, b);
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
        let f = match fault {
            Fault::Kill | Fault::LeaderKill => "kill",
            Fault::Stop => "stop",
            Fault::Pause | Fault::LeaderPause => "pause",
            Fault::RollingRestart => "rolling-restart",
        };
        let names = self.names(nodes);
        record(
            &self.rec,
            f,
            names,
            (!errors.is_empty()).then(|| errors.join("; ")),
        );
    }

    /// Undoes every fault: resumes paused brokers, restarts stopped or
    /// killed ones. Recorded as `resume` and `start` events.
    pub fn heal_all(&mut self) {
        let broken = std::mem::take(&mut self.broken);
        let (mut resumed, mut started, mut errors) = (vec![], vec![], vec![]);
        {
            let mut c = self.cluster.lock().unwrap_or_else(|p| p.into_inner());
            for (n, how) in broken {
                let r = match how {
                    Broken::Paused => c.resume(n).map(|_| resumed.push(n)),
                    // tansu 0.6.0 brokers sometimes die at start-up on
                    // SQLite's lock ("database is locked" while registering,
                    // then a panic): every failed attempt is kept in the
                    // event's error, and the restart is retried.
                    Broken::Down => {
                        let mut r = c.start(n);
                        for attempt in 1..START_ATTEMPTS {
                            match &r {
                                Err(e) => errors.push(format!(
                                    "restart attempt {attempt} of {}: {e}",
                                    c.nodes()[n].name
                                )),
                                Ok(()) => break,
                            }
                            std::thread::sleep(Duration::from_millis(500 * attempt as u64));
                            r = c.start(n);
                        }
                        r.map(|_| {
                            if let Some(h) = &self.after_start {
                                h(&c.nodes()[n].addr());
                            }
                            started.push(n)
                        })
                    }
                };
                if let Err(e) = r {
                    errors.push(e.to_string());
                }
            }
        }
        let err = (!errors.is_empty()).then(|| errors.join("; "));
        if !resumed.is_empty() {
            record(&self.rec, "resume", self.names(&resumed), err.clone());
        }
        if !started.is_empty() {
            record(&self.rec, "start", self.names(&started), err.clone());
        }
        if resumed.is_empty() && started.is_empty() {
            if let Some(e) = err {
                record(&self.rec, "heal", serde_json::json!([]), Some(e));
            }
        }
    }

    /// Restarts every node, one at a time (each waits to answer again).
    fn rolling_restart(&mut self, stop: &AtomicBool) {
        let n = self
            .cluster
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .nodes()
            .len();
        for i in 0..n {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            self.apply(Fault::Stop, &[i]);
            self.heal_all();
        }
    }

    pub fn is_healed(&self) -> bool {
        self.broken.is_empty()
    }
}

impl Drop for Breakage {
    fn drop(&mut self) {
        if !self.broken.is_empty() {
            self.heal_all();
        }
    }
}

/// Sleeps up to `d`, waking early when `stop` is set. Returns true if stopped.
fn nap(stop: &AtomicBool, d: Duration) -> bool {
    let end = std::time::Instant::now() + d;
    while std::time::Instant::now() < end {
        if stop.load(Ordering::SeqCst) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50).min(end - std::time::Instant::now()));
    }
    stop.load(Ordering::SeqCst)
}

/// Resolves a target to node indices.
fn resolve(
    target: &Target,
    cfg: &NemesisConfig,
    cluster: &Arc<Mutex<Cluster>>,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let (n, addrs): (usize, Vec<String>) = {
        let c = cluster.lock().unwrap_or_else(|p| p.into_inner());
        (
            c.nodes().len(),
            c.nodes().iter().map(|x| x.addr()).collect(),
        )
    };
    if n == 0 {
        return vec![];
    }
    let mut all: Vec<usize> = (0..n).collect();
    // Fisher-Yates with our seeded rng, for reproducible choices.
    for i in (1..n).rev() {
        all.swap(i, rng.random_range(0..=i));
    }
    match target {
        Target::One => vec![all[0]],
        Target::Minority => all[..((n - 1) / 2).max(1)].to_vec(),
        Target::Majority => all[..n / 2 + 1].to_vec(),
        Target::All => (0..n).collect(),
        Target::Node(i) => vec![(*i).min(n - 1)],
        Target::Leader => {
            let leader = cfg.leader_of.as_ref().and_then(|f| f());
            match leader.and_then(|a| addrs.iter().position(|x| *x == a)) {
                Some(i) => vec![i],
                None => vec![all[0]],
            }
        }
    }
}

/// Runs the nemesis schedule until `stop`, then heals everything.
pub fn run(
    cfg: NemesisConfig,
    cluster: Arc<Mutex<Cluster>>,
    rec: Arc<Recorder>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x6e656d65);
    let mut breakage =
        Breakage::new(cluster.clone(), Some(rec)).with_after_start(cfg.after_start.clone());
    if cfg.faults.is_empty() {
        return;
    }
    loop {
        let wait = cfg
            .interval
            .mul_f64(1.0 + cfg.jitter * rng.random_range(-1.0..=1.0))
            .saturating_sub(cfg.duration);
        if nap(&stop, wait) {
            break;
        }
        let fault = cfg.faults[rng.random_range(0..cfg.faults.len())];
        match fault {
            Fault::RollingRestart => breakage.rolling_restart(&stop),
            Fault::LeaderKill | Fault::LeaderPause => {
                let nodes = resolve(&Target::Leader, &cfg, &cluster, &mut rng);
                breakage.apply(fault, &nodes);
            }
            _ => {
                let nodes = resolve(&cfg.target, &cfg, &cluster, &mut rng);
                breakage.apply(fault, &nodes);
            }
        }
        let stopped = nap(&stop, cfg.duration);
        breakage.heal_all();
        if stopped {
            break;
        }
    }
    breakage.heal_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_and_target_names_parse_and_unknown_ones_do_not() {
        for n in Fault::NAMES {
            assert_eq!(Fault::parse(n).map(|f| f.name()), Some(n));
        }
        assert_eq!(Fault::parse("explode"), None);
        assert_eq!(Target::parse("broker-2"), Some(Target::Node(2)));
        assert_eq!(Target::parse("majority"), Some(Target::Majority));
        assert_eq!(Target::parse("broker-x"), None);
    }

    #[test]
    fn nap_wakes_early_when_stopped() {
        let stop = AtomicBool::new(true);
        let t = std::time::Instant::now();
        assert!(nap(&stop, Duration::from_secs(10)));
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
