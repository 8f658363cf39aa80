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

/// Pairs of concurrent transactions that each write two keys in opposite
/// offset orders (a G0 per pair, normal for Kafka transactions), chained
/// along the log, with the first transaction reading the last one's write:
/// one strongly connected component over every transaction.
fn one_big_component(pairs: u64) -> String {
    g0_pairs(pairs, true)
}

/// Like [`one_big_component`]; without `close`, every pair is its own SCC.
fn g0_pairs(pairs: u64, close: bool) -> String {
    let mut out = String::new();
    let mut i = 0u64;
    let mut line = |p: u64, kind: &str, value: String, out: &mut String| {
        out.push_str(&format!(
            r#"{{"index":{i},"time":{},"process":{p},"type":"{kind}","f":"txn","value":{value}}}"#,
            i * 1000
        ));
        out.push('\n');
        i += 1;
    };
    let last = 2 * pairs - 1;
    for n in 0..pairs {
        let (a, b) = (2 * n, 2 * n + 1);
        line(
            0,
            "invoke",
            format!(r#"[["send",1,{a}],["send",2,{a}],["poll"]]"#),
            &mut out,
        );
        line(
            1,
            "invoke",
            format!(r#"[["send",1,{b}],["send",2,{b}]]"#),
            &mut out,
        );
        let read = if n == 0 && close {
            format!(r#"{{"3":[[0,{last}]]}}"#)
        } else {
            "{}".to_string()
        };
        line(
            0,
            "ok",
            format!(r#"[["send",1,[{a},{a}]],["send",2,[{b},{a}]],["poll",{read}]]"#),
            &mut out,
        );
        let tail = if n == pairs - 1 {
            format!(r#",["send",3,[0,{last}]]"#)
        } else {
            String::new()
        };
        line(
            1,
            "ok",
            format!(r#"[["send",1,[{b},{b}]],["send",2,[{a},{b}]]{tail}]"#),
            &mut out,
        );
    }
    out
}

#[test]
#[ignore]
fn one_strongly_connected_component_of_a_hundred_thousand_transactions_is_searched() {
    let text = one_big_component(50_000);
    let h = History::parse_str(&text).expect("parses");
    let t = Instant::now();
    let found = txn::check(
        &h,
        &CheckOpts {
            ww_deps: true,
            ..Default::default()
        },
    );
    let mut types: Vec<&str> = found.iter().map(|(t, _)| t.as_str()).collect();
    types.sort();
    println!(
        "events={} txn::check={:?} found={types:?}",
        h.len(),
        t.elapsed()
    );
    for (t, w) in &found {
        println!(
            "{t}: cycle of {} ops: {}",
            w["cycle-length"], w["explanation"]
        );
        assert!(w["steps"].as_array().unwrap().len() <= txn::MAX_WITNESS_EDGES);
    }
    assert!(types.contains(&"G0") && types.contains(&"G1c"), "{types:?}");
    assert!(!types.contains(&txn::SEARCH_TIMEOUT), "{types:?}");
}

#[test]
#[ignore]
fn fifty_thousand_separate_g0_cycles_are_each_reported() {
    let h = History::parse_str(&g0_pairs(50_000, false)).expect("parses");
    let t = Instant::now();
    let found = txn::check(
        &h,
        &CheckOpts {
            ww_deps: true,
            ..Default::default()
        },
    );
    println!(
        "events={} txn::check={:?} found={}",
        h.len(),
        t.elapsed(),
        found.len()
    );
    assert_eq!(found.len(), 50_000);
    assert!(found.iter().all(|(t, _)| t == "G0"));
    let detailed = found
        .iter()
        .filter(|(_, w)| w.get("steps").is_some())
        .count();
    assert_eq!(detailed, txn::MAX_DETAILED_WITNESSES);
    assert!(found
        .iter()
        .all(|(_, w)| w["ops"].as_array().is_some_and(|o| o.len() == 2)));
    println!("{}", found.last().unwrap().1["explanation"]);
}
