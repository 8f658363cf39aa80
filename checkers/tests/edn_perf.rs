//! Benchmark (ignored by default): reading a million-line Jepsen EDN
//! history, next to reading the same history as gregor JSONL. Run with
//! `cargo test --release -p gregor-checkers --test edn_perf -- --ignored --nocapture`.

use std::time::Instant;

use gregor_checkers::edn::parse_jepsen_edn;
use gregor_history::History;

#[test]
#[ignore]
fn a_million_line_edn_history_reads_into_the_same_events_as_jsonl() {
    let n = 1_000_000u64;
    let mut edn = String::new();
    let mut json = String::new();
    for i in 0..n {
        let (p, k, t) = (i % 10, i % 7, i * 1000);
        let (kind, ev, jv) = match i % 4 {
            0 => (
                "invoke",
                format!("[[:send {k} {i}]]"),
                format!(r#"[["send",{k},{i}]]"#),
            ),
            1 => (
                "ok",
                format!("[[:send {k} [{i} {i}]]]"),
                format!(r#"[["send",{k},[{i},{i}]]]"#),
            ),
            2 => (
                "invoke",
                "[[:poll]]".to_string(),
                r#"[["poll"]]"#.to_string(),
            ),
            _ => (
                "ok",
                format!("[[:poll {{{k} [[{i} {i}] [{} {}]]}}]]", i + 1, i + 1),
                format!(r#"[["poll",{{"{k}":[[{i},{i}],[{},{}]]}}]]"#, i + 1, i + 1),
            ),
        };
        let f = if i % 4 < 2 { "send" } else { "poll" };
        edn.push_str(&format!(
            "{{:type :{kind}, :f :{f}, :value {ev}, :time {t}, :process {p}, :index {i}}}\n"
        ));
        json.push_str(&format!(
            r#"{{"index":{i},"time":{t},"process":{p},"type":"{kind}","f":"{f}","value":{jv}}}"#
        ));
        json.push('\n');
    }
    let t0 = Instant::now();
    let a = parse_jepsen_edn(&edn).expect("edn parses");
    let t_edn = t0.elapsed();
    let t1 = Instant::now();
    let b = History::parse_str(&json).expect("jsonl parses");
    let t_json = t1.elapsed();
    println!(
        "events={} edn={t_edn:?} jsonl={t_json:?} ratio={:.2}",
        a.len(),
        t_edn.as_secs_f64() / t_json.as_secs_f64()
    );
    assert_eq!(a.events, b.events);
}
