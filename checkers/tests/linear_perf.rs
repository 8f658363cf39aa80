//! Benchmark (ignored by default): committed-offset linearizability on a
//! long concurrent history. Run with
//! `cargo test --release -p gregor-checkers --test linear_perf -- --ignored --nocapture`.

use std::time::Instant;

use gregor_checkers::{linear, CheckOpts};
use gregor_history::History;

/// An op in flight: (is a commit, key, value, has it taken effect).
type Pending = (bool, u64, Option<u64>, bool);

/// `procs` workers commit increasing offsets and fetch them, each with one
/// op in flight; every op takes effect atomically at a random moment
/// between its invocation and completion, so the history is linearizable.
fn synthetic(events: usize, procs: u64, keys: u64) -> String {
    let mut out = String::new();
    let mut committed: Vec<Option<u64>> = vec![None; keys as usize];
    let mut next = 0u64;
    let mut pending: Vec<Option<Pending>> = vec![None; procs as usize];
    let mut seed = 11u64;
    for i in 0..events {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let p = ((seed >> 33) % procs) as usize;
        let t = i as u64 * 1000;
        match pending[p].take() {
            None => {
                let k = (seed >> 45) % keys;
                let commit = (seed >> 20) & 1 == 0;
                let v = if commit {
                    next += 1;
                    Some(next)
                } else {
                    None
                };
                let value = if commit {
                    format!(r#"[["commit",{{"{k}":{}}}]]"#, next)
                } else {
                    format!(r#"[["committed",{{"{k}":null}}]]"#)
                };
                out.push_str(&format!(
                    r#"{{"index":{i},"time":{t},"process":{p},"type":"invoke","f":"{}","value":{value}}}"#,
                    if commit { "commit" } else { "committed" }
                ));
                out.push('\n');
                pending[p] = Some((commit, k, v, false));
            }
            Some((commit, k, mut v, mut applied)) => {
                // Take effect now if not yet, or maybe complete later.
                if !applied {
                    if commit {
                        committed[k as usize] = v;
                    } else {
                        v = committed[k as usize];
                    }
                    applied = true;
                }
                let dice = (seed >> 25) % 3;
                if dice == 0 {
                    pending[p] = Some((commit, k, v, applied));
                    continue;
                }
                let (f, value) = if commit {
                    (
                        "commit",
                        format!(r#"[["commit",{{"{k}":{}}}]]"#, v.unwrap_or(0)),
                    )
                } else {
                    let shown = v.map_or("null".to_string(), |x| x.to_string());
                    ("committed", format!(r#"[["committed",{{"{k}":{shown}}}]]"#))
                };
                out.push_str(&format!(
                    r#"{{"index":{i},"time":{t},"process":{p},"type":"ok","f":"{f}","value":{value}}}"#
                ));
                out.push('\n');
            }
        }
    }
    out
}

#[test]
#[ignore]
fn a_long_concurrent_commit_history_is_checked() {
    let text = synthetic(400_000, 10, 4);
    let h = History::parse_str(&text).expect("parses");
    // Re-index: skipped iterations leave gaps in `index`, which is fine.
    let t = Instant::now();
    let found = linear::check_commits(&h, &CheckOpts::default());
    println!(
        "events={} check_commits={:?} found={}",
        h.len(),
        t.elapsed(),
        found.len()
    );
    assert!(found.is_empty(), "{:?}", found.first());
}

#[test]
#[ignore]
fn a_stale_fetch_at_the_end_of_a_long_history_is_found() {
    let mut text = synthetic(400_000, 10, 4);
    text.push_str(r#"{"index":400000,"time":500000000000,"process":99,"type":"invoke","f":"committed","value":[["committed",{"0":null}]]}"#);
    text.push('\n');
    text.push_str(r#"{"index":400001,"time":500000001000,"process":99,"type":"ok","f":"committed","value":[["committed",{"0":1}]]}"#);
    text.push('\n');
    let h = History::parse_str(&text).expect("parses");
    let t = Instant::now();
    let found = linear::check_commits(&h, &CheckOpts::default());
    let types: Vec<&str> = found.iter().map(|(t, _)| t.as_str()).collect();
    println!(
        "events={} check_commits={:?} found={types:?}",
        h.len(),
        t.elapsed()
    );
    assert_eq!(types, vec![linear::NONLINEARIZABLE]);
    println!("{}", found[0].1["explanation"]);
}
