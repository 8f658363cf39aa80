//! Benchmark (ignored by default): the cycle analysis on a million-event
//! history, next to the time it takes to parse that history. Run with
//! `cargo test --release -p gregor-checkers --test txn_perf -- --ignored --nocapture`.

use std::time::Instant;

use gregor_checkers::{txn, CheckOpts};
use gregor_history::History;

/// A valid history of `n` events: `procs` processes, each with one op in
/// flight, sending to and polling (in bounded batches) `keys` keys.
fn synthetic(n: usize, procs: u64, keys: u64) -> String {
    let mut out = String::with_capacity(n * 110);
    let mut logs: Vec<Vec<u64>> = vec![Vec::new(); keys as usize];
    let mut pos: Vec<Vec<usize>> = vec![vec![0; keys as usize]; procs as usize];
    let mut pending: Vec<Option<String>> = vec![None; procs as usize];
    let mut seed = 7u64;
    let mut next_val = 0u64;
    let mut i = 0usize;
    while i < n {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let p = (seed >> 33) % procs;
        let t = i as u64 * 1000;
        match pending[p as usize].take() {
            Some(done) => {
                out.push_str(&format!(
                    r#"{{"index":{i},"time":{t},"process":{p},"type":"ok",{done}}}"#
                ));
                out.push('\n');
            }
            None => {
                let k = (seed >> 40) % keys;
                if (seed >> 20) & 1 == 0 {
                    next_val += 1;
                    let log = &mut logs[k as usize];
                    log.push(next_val);
                    let off = log.len() - 1;
                    out.push_str(&format!(
                        r#"{{"index":{i},"time":{t},"process":{p},"type":"invoke","f":"send","value":[["send",{k},{next_val}]]}}"#
                    ));
                    pending[p as usize] = Some(format!(
                        r#""f":"send","value":[["send",{k},[{off},{next_val}]]]"#
                    ));
                } else {
                    let log = &logs[k as usize];
                    let from = pos[p as usize][k as usize];
                    let to = (from + 5).min(log.len());
                    pos[p as usize][k as usize] = to;
                    let pairs: Vec<String> =
                        (from..to).map(|o| format!("[{o},{}]", log[o])).collect();
                    out.push_str(&format!(
                        r#"{{"index":{i},"time":{t},"process":{p},"type":"invoke","f":"poll","value":[["poll"]]}}"#
                    ));
                    pending[p as usize] = Some(format!(
                        r#""f":"poll","value":[["poll",{{"{k}":[{}]}}]]"#,
                        pairs.join(",")
                    ));
                }
                out.push('\n');
            }
        }
        i += 1;
    }
    out
}

#[test]
#[ignore]
fn a_million_event_history_is_checked_in_a_fraction_of_its_parse_time() {
    let text = synthetic(1_000_000, 10, 8);
    let t0 = Instant::now();
    let h = History::parse_str(&text).expect("synthetic history parses");
    let parse = t0.elapsed();
    for ww in [false, true] {
        let t1 = Instant::now();
        let found = txn::check(
            &h,
            &CheckOpts {
                ww_deps: ww,
                ..Default::default()
            },
        );
        let check = t1.elapsed();
        println!(
            "events={} parse={:?} txn::check(ww_deps={ww})={:?} ratio={:.2} anomalies={}",
            h.len(),
            parse,
            check,
            check.as_secs_f64() / parse.as_secs_f64(),
            found.len()
        );
        assert!(found.is_empty(), "{:?}", &found[..found.len().min(2)]);
    }
}
