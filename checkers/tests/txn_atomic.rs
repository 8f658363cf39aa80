//! Soundness on concurrent histories: when every operation takes effect
//! atomically at one moment between its invocation and its completion (a
//! correct, strictly serializable log), no dependency cycle may be found,
//! whatever the interleaving, with write-write inference on.

use gregor_checkers::txn::{self, TxnOpts};
use gregor_checkers::CheckOpts;
use gregor_history::{EventType, History, Mop, Value};

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Clone)]
enum Planned {
    /// Sends to these keys with these values; offsets known once applied.
    Txn { sends: Vec<(u64, u64)>, poll: bool },
}

struct InFlight {
    plan: Planned,
    /// Filled in when the op takes effect.
    result: Option<String>,
}

/// One random history: `procs` processes, `keys` keys, `steps` scheduler
/// steps. Each step picks a process and invokes, applies or completes its op.
fn history(seed: u64, procs: usize, keys: u64, steps: usize) -> String {
    let mut rng = Rng(seed | 1);
    let mut logs: Vec<Vec<u64>> = vec![Vec::new(); keys as usize];
    let mut positions: Vec<Vec<usize>> = vec![vec![0; keys as usize]; procs];
    let mut flight: Vec<Option<InFlight>> = (0..procs).map(|_| None).collect();
    let mut next_val = 0u64;
    let mut lines = Vec::new();
    let push = |lines: &mut Vec<String>, p: usize, kind: &str, value: &str| {
        let i = lines.len();
        lines.push(format!(
            r#"{{"index":{i},"time":{},"process":{p},"type":"{kind}","f":"txn","value":{value}}}"#,
            i * 1000
        ));
    };
    for _ in 0..steps {
        let p = rng.below(procs as u64) as usize;
        match flight[p].take() {
            None => {
                let n = rng.below(3);
                let sends: Vec<(u64, u64)> = (0..n)
                    .map(|_| {
                        next_val += 1;
                        (rng.below(keys), next_val)
                    })
                    .collect();
                let poll = n == 0 || rng.below(2) == 0;
                let mut mops: Vec<String> = sends
                    .iter()
                    .map(|(k, v)| format!(r#"["send",{k},{v}]"#))
                    .collect();
                if poll {
                    mops.push(r#"["poll"]"#.into());
                }
                push(&mut lines, p, "invoke", &format!("[{}]", mops.join(",")));
                flight[p] = Some(InFlight {
                    plan: Planned::Txn { sends, poll },
                    result: None,
                });
            }
            Some(mut op) => {
                if op.result.is_none() {
                    // Take effect atomically now: append the sends, then read
                    // a bounded batch of every key from this process's position.
                    let Planned::Txn { sends, poll } = op.plan.clone();
                    let mut mops = Vec::new();
                    for (k, v) in &sends {
                        let log = &mut logs[*k as usize];
                        log.push(*v);
                        mops.push(format!(r#"["send",{k},[{},{v}]]"#, log.len() - 1));
                    }
                    if poll {
                        let mut reads = Vec::new();
                        for k in 0..keys as usize {
                            let from = positions[p][k];
                            let to = (from + 1 + rng.below(3) as usize).min(logs[k].len());
                            positions[p][k] = to;
                            let pairs: Vec<String> = (from..to)
                                .map(|o| format!("[{o},{}]", logs[k][o]))
                                .collect();
                            reads.push(format!(r#""{k}":[{}]"#, pairs.join(",")));
                        }
                        mops.push(format!(r#"["poll",{{{}}}]"#, reads.join(",")));
                    }
                    op.result = Some(format!("[{}]", mops.join(",")));
                }
                if rng.below(3) == 0 {
                    flight[p] = Some(op); // complete later
                } else {
                    let value = op.result.expect("applied above");
                    push(&mut lines, p, "ok", &value);
                }
            }
        }
    }
    lines.join("\n") + "\n"
}

#[test]
fn atomic_concurrent_histories_never_show_a_cycle() {
    let opts = TxnOpts {
        ww_deps: true,
        ..TxnOpts::from_check_opts(&CheckOpts::default())
    };
    let mut ops_checked = 0;
    for seed in 1..=300u64 {
        let text = history(seed * 7919, 1 + (seed % 5) as usize, 1 + seed % 4, 300);
        let h = History::parse_str(&text).expect("generated history parses");
        ops_checked += h.len();
        let found = txn::check_with(&h, &opts);
        assert!(found.is_empty(), "seed {seed}: {:#}\n{text}", found[0].1);
    }
    assert!(ops_checked > 50_000);
}

/// Mutation: make one poll read a value whose send began only after the
/// poll completed. Every such history must then show a G1c cycle: through
/// realtime or process order, or a plain one when the sender also read the
/// poll's own writes.
#[test]
fn a_poll_that_reads_from_the_future_is_always_caught() {
    let mut caught = 0;
    for seed in 1..=100u64 {
        let text = history(seed * 104_729, 3, 2, 200);
        let mut h = History::parse_str(&text).expect("generated history parses");
        // An ok poll, and a later-invoked ok send with its acknowledged offset.
        let poll_at = h.events.iter().position(|e| {
            e.kind == EventType::Ok
                && e.mops()
                    .iter()
                    .any(|m| matches!(m, Mop::Poll { reads: Some(_) }))
        });
        let Some(poll_at) = poll_at else { continue };
        let poll_process = h.events[poll_at].process;
        let future = h.events[poll_at + 1..]
            .iter()
            .enumerate()
            .find_map(|(i, e)| {
                let send = e.mops().iter().find_map(|m| match m {
                    Mop::Send {
                        key,
                        value,
                        offset: Some(o),
                    } => Some((*key, *value, *o)),
                    _ => None,
                })?;
                // its invocation must come after the poll completed
                let invoked_after = h.events[poll_at + 1..poll_at + 1 + i]
                    .iter()
                    .any(|x| x.process == e.process && x.kind == EventType::Invoke);
                (e.kind == EventType::Ok && e.process != poll_process && invoked_after)
                    .then_some(send)
            });
        let Some((k, v, o)) = future else { continue };
        if let Value::Mops(mops) = &mut h.events[poll_at].value {
            for m in mops.iter_mut() {
                if let Mop::Poll { reads: Some(r) } = m {
                    r.push((k, vec![(o, v)]));
                    break;
                }
            }
        }
        let found = txn::check(&h, &CheckOpts::default());
        // Plain G1c when the sender also read the poll's own writes.
        assert!(
            found.iter().any(|(t, _)| t.starts_with("G1c")),
            "seed {seed}: {found:?}"
        );
        caught += 1;
    }
    assert!(caught > 50, "only {caught} mutated histories were built");
}
