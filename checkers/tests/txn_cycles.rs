//! Dependency-cycle detection over send/poll/txn histories.

use gregor_checkers::txn::{self, TxnOpts};
use gregor_checkers::CheckOpts;
use gregor_history::History;
use serde_json::Value;

/// Builds a history line by line; each call returns the event's index.
#[derive(Default)]
struct H {
    lines: Vec<String>,
    time: u64,
}

impl H {
    fn ev(&mut self, process: u64, kind: &str, f: &str, value: &str) -> u64 {
        let i = self.lines.len() as u64;
        self.time += 1_000_000;
        self.lines.push(format!(
            r#"{{"index":{i},"time":{},"process":{process},"type":"{kind}","f":"{f}","value":{value}}}"#,
            self.time
        ));
        i
    }
    fn invoke(&mut self, p: u64, f: &str, v: &str) -> u64 {
        self.ev(p, "invoke", f, v)
    }
    fn ok(&mut self, p: u64, f: &str, v: &str) -> u64 {
        self.ev(p, "ok", f, v)
    }
    fn history(&self) -> History {
        History::parse_str(&(self.lines.join("\n") + "\n")).expect("test history parses")
    }
}

fn all_on() -> TxnOpts {
    TxnOpts {
        ww_deps: true,
        rw_deps: true,
        ..TxnOpts::from_check_opts(&CheckOpts::default())
    }
}

fn types(found: &[(String, Value)]) -> Vec<String> {
    let mut t: Vec<String> = found.iter().map(|(t, _)| t.clone()).collect();
    t.sort();
    t
}

fn witness<'a>(found: &'a [(String, Value)], ty: &str) -> &'a Value {
    &found
        .iter()
        .find(|(t, _)| t == ty)
        .unwrap_or_else(|| panic!("no {ty} in {found:?}"))
        .1
}

/// Every witness names its ops, explains itself and each edge of its cycle.
fn assert_well_explained(w: &Value) {
    let ops = w["ops"].as_array().expect("ops");
    let steps = w["steps"].as_array().expect("steps");
    assert!(ops.len() >= 2);
    assert_eq!(ops.len(), steps.len(), "one step per edge of the cycle");
    assert!(!w["explanation"].as_str().expect("explanation").is_empty());
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["from"], ops[i]);
        assert_eq!(s["to"], ops[(i + 1) % ops.len()]);
        let text = s["explanation"].as_str().expect("step explanation");
        assert!(text.contains(&format!("op {}", ops[i])), "{text}");
        assert!(
            text.contains(&format!("op {}", ops[(i + 1) % ops.len()])),
            "{text}"
        );
    }
}

/// Jepsen's G0 example: two concurrent sends write x and y in opposite
/// orders.
fn g0_history() -> H {
    let mut h = H::default();
    h.invoke(0, "send", r#"[["send",1,10],["send",2,10]]"#);
    h.invoke(1, "send", r#"[["send",1,20],["send",2,20]]"#);
    h.ok(0, "send", r#"[["send",1,[0,10]],["send",2,[1,10]]]"#);
    h.ok(1, "send", r#"[["send",1,[1,20]],["send",2,[0,20]]]"#);
    h
}

#[test]
fn sends_interleaved_in_opposite_orders_are_g0_with_write_write_inference() {
    let hist = g0_history().history();
    let found = txn::check(
        &hist,
        &CheckOpts {
            ww_deps: true,
            ..Default::default()
        },
    );
    assert_eq!(types(&found), vec!["G0"]);
    let w = witness(&found, "G0");
    assert_well_explained(w);
    let mut ops: Vec<u64> = w["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    ops.sort();
    assert_eq!(ops, vec![2, 3], "the witness names the two completions");
    assert!(w["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["type"] == "ww"));
    let text = w["explanation"].as_str().unwrap();
    assert!(text.contains("sent 10 to key 1 at offset 0"), "{text}");
}

#[test]
fn without_write_write_inference_offsets_alone_make_no_cycle() {
    let hist = g0_history().history();
    assert!(txn::check(&hist, &CheckOpts::default()).is_empty());
}

#[test]
fn two_transactions_that_read_each_others_writes_are_g1c() {
    let mut h = H::default();
    h.invoke(0, "txn", r#"[["send",1,10],["poll"]]"#);
    h.invoke(1, "txn", r#"[["send",2,20],["poll"]]"#);
    let a = h.ok(0, "txn", r#"[["send",1,[0,10]],["poll",{"2":[[0,20]]}]]"#);
    let b = h.ok(1, "txn", r#"[["send",2,[0,20]],["poll",{"1":[[0,10]]}]]"#);
    let found = txn::check(&h.history(), &CheckOpts::default());
    assert_eq!(types(&found), vec!["G1c"]);
    let w = witness(&found, "G1c");
    assert_well_explained(w);
    let text = w["explanation"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "op {a} sent 10 to key 1, and op {b} polled it at offset 0 (wr)"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "op {b} sent 20 to key 2, and op {a} polled it at offset 0 (wr)"
        )),
        "{text}"
    );
}

/// T0 writes x=0 first. T1 polls x but sees only 0, and polls y=5, which T2
/// wrote together with x=1: T1 -rw-> T2 -wr-> T1.
#[test]
fn a_read_that_misses_a_write_it_otherwise_depends_on_is_g_single() {
    let mut h = H::default();
    h.invoke(0, "send", r#"[["send",1,0]]"#);
    h.ok(0, "send", r#"[["send",1,[0,0]]]"#);
    h.invoke(1, "poll", r#"[["poll"]]"#);
    h.invoke(2, "send", r#"[["send",1,1],["send",2,5]]"#);
    h.ok(2, "send", r#"[["send",1,[1,1]],["send",2,[0,5]]]"#);
    h.ok(1, "poll", r#"[["poll",{"1":[[0,0]],"2":[[0,5]]}]]"#);
    let hist = h.history();
    let found = txn::check_with(&hist, &all_on());
    assert_eq!(types(&found), vec!["G-single"]);
    let w = witness(&found, "G-single");
    assert_well_explained(w);
    let steps = w["steps"].as_array().unwrap();
    assert_eq!(steps.iter().filter(|s| s["type"] == "rw").count(), 1);
    let rw = steps.iter().find(|s| s["type"] == "rw").unwrap();
    assert!(rw["explanation"]
        .as_str()
        .unwrap()
        .contains("polled key 1 up to 0 at offset 0 but not the next version 1"));
    // Jepsen's Kafka graph has no rw edges, so `check` itself reports nothing.
    assert!(txn::check(
        &hist,
        &CheckOpts {
            ww_deps: true,
            ..Default::default()
        }
    )
    .is_empty());
}

/// Write skew: each transaction misses the other's write.
#[test]
fn two_transactions_missing_each_others_writes_are_g2_item() {
    let mut h = H::default();
    h.invoke(0, "send", r#"[["send",1,0],["send",2,0]]"#);
    h.ok(0, "send", r#"[["send",1,[0,0]],["send",2,[0,0]]]"#);
    h.invoke(1, "txn", r#"[["poll"],["send",2,1]]"#);
    h.invoke(2, "txn", r#"[["poll"],["send",1,1]]"#);
    h.ok(1, "txn", r#"[["poll",{"1":[[0,0]]}],["send",2,[1,1]]]"#);
    h.ok(2, "txn", r#"[["poll",{"2":[[0,0]]}],["send",1,[1,1]]]"#);
    let found = txn::check_with(&h.history(), &all_on());
    assert_eq!(types(&found), vec!["G2-item"]);
    let w = witness(&found, "G2-item");
    assert_well_explained(w);
    assert!(w["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["type"] == "rw"));
}

/// Process 0 polls value 10 of key 1, and only afterwards sends it.
#[test]
fn reading_a_value_the_same_process_sends_later_is_g1c_process() {
    let mut h = H::default();
    h.invoke(0, "poll", r#"[["poll"]]"#);
    let b = h.ok(0, "poll", r#"[["poll",{"1":[[0,10]]}]]"#);
    h.invoke(0, "send", r#"[["send",1,10]]"#);
    let a = h.ok(0, "send", r#"[["send",1,[0,10]]]"#);
    let found = txn::check(&h.history(), &CheckOpts::default());
    assert_eq!(types(&found), vec!["G1c-process"]);
    let w = witness(&found, "G1c-process");
    assert_well_explained(w);
    let steps = w["steps"].as_array().unwrap();
    let p = steps
        .iter()
        .find(|s| s["type"] == "process")
        .expect("a process edge");
    assert_eq!((p["from"].as_u64(), p["to"].as_u64()), (Some(b), Some(a)));
    assert!(p["explanation"]
        .as_str()
        .unwrap()
        .contains("process 0 completed"));
}

/// Process 1's poll completes before process 0 even begins the send it read.
#[test]
fn reading_a_value_before_its_send_began_is_g1c_realtime() {
    let mut h = H::default();
    h.invoke(1, "poll", r#"[["poll"]]"#);
    h.ok(1, "poll", r#"[["poll",{"1":[[0,10]]}]]"#);
    h.invoke(0, "send", r#"[["send",1,10]]"#);
    h.ok(0, "send", r#"[["send",1,[0,10]]]"#);
    let found = txn::check(&h.history(), &CheckOpts::default());
    assert_eq!(types(&found), vec!["G1c-realtime"]);
    let w = witness(&found, "G1c-realtime");
    assert_well_explained(w);
    assert!(w["explanation"].as_str().unwrap().contains("realtime"));
    let no_rt = TxnOpts {
        realtime_edges: false,
        ..TxnOpts::from_check_opts(&CheckOpts::default())
    };
    assert!(
        txn::check_with(&h.history(), &no_rt).is_empty(),
        "the cycle needs the realtime edge"
    );
}

/// A send that finished first got the later offset.
#[test]
fn a_completed_send_ordered_after_a_later_one_is_g0_realtime() {
    let mut h = H::default();
    h.invoke(1, "send", r#"[["send",1,20]]"#);
    h.ok(1, "send", r#"[["send",1,[1,20]]]"#);
    h.invoke(0, "send", r#"[["send",1,10]]"#);
    h.ok(0, "send", r#"[["send",1,[0,10]]]"#);
    let found = txn::check(
        &h.history(),
        &CheckOpts {
            ww_deps: true,
            ..Default::default()
        },
    );
    assert_eq!(types(&found), vec!["G0-realtime"]);
    assert_well_explained(witness(&found, "G0-realtime"));
}

#[test]
fn realtime_order_is_followed_through_intermediate_operations() {
    // poll(1) < send(2) < send(0), all sequential on different processes;
    // the poll read what the last send wrote.
    let mut h = H::default();
    h.invoke(1, "poll", r#"[["poll"]]"#);
    h.ok(1, "poll", r#"[["poll",{"1":[[0,10]]}]]"#);
    h.invoke(2, "send", r#"[["send",3,30]]"#);
    h.ok(2, "send", r#"[["send",3,[0,30]]]"#);
    h.invoke(0, "send", r#"[["send",1,10]]"#);
    h.ok(0, "send", r#"[["send",1,[0,10]]]"#);
    let found = txn::check(&h.history(), &CheckOpts::default());
    assert_eq!(types(&found), vec!["G1c-realtime"]);
    assert_well_explained(witness(&found, "G1c-realtime"));
}

#[test]
fn an_indefinite_send_that_was_read_still_counts_as_its_writer() {
    let mut h = H::default();
    h.invoke(0, "txn", r#"[["send",1,10],["poll"]]"#);
    h.invoke(1, "txn", r#"[["send",2,20],["poll"]]"#);
    h.ev(0, "info", "txn", r#"[["send",1,10],["poll"]]"#);
    h.ok(1, "txn", r#"[["send",2,[0,20]],["poll",{"1":[[0,10]]}]]"#);
    // The info txn's reads are unknown, so there is no cycle...
    assert!(txn::check(&h.history(), &CheckOpts::default()).is_empty());
    // ...but a poll that completed before it began closes one with it.
    let mut h = H::default();
    h.invoke(1, "poll", r#"[["poll"]]"#);
    h.ok(1, "poll", r#"[["poll",{"1":[[0,10]]}]]"#);
    h.invoke(0, "send", r#"[["send",1,10]]"#);
    h.ev(0, "info", "send", r#"[["send",1,10]]"#);
    let found = txn::check(&h.history(), &CheckOpts::default());
    assert_eq!(types(&found), vec!["G1c-realtime"]);
}

#[test]
fn failed_sends_are_not_writers() {
    let mut h = H::default();
    h.invoke(1, "poll", r#"[["poll"]]"#);
    h.ok(1, "poll", r#"[["poll",{"1":[[0,10]]}]]"#);
    h.invoke(0, "send", r#"[["send",1,10]]"#);
    h.ev(0, "fail", "send", r#"[["send",1,10]]"#);
    assert!(txn::check(&h.history(), &CheckOpts::default()).is_empty());
}

/// A correct log: operations run one at a time, each send appends, each
/// poll reads every key's whole log. Nothing may be reported, with every
/// inference on.
#[test]
fn a_serial_correct_log_has_no_cycles_with_every_inference_on() {
    let mut h = H::default();
    let mut logs: Vec<Vec<u64>> = vec![Vec::new(); 4];
    let mut next_val = 0u64;
    let mut seed = 42u64;
    for step in 0..900 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let p = (seed >> 33) % 5;
        let key = ((seed >> 40) % 4) as usize;
        if step % 3 == 0 {
            h.invoke(p, "poll", r#"[["poll"]]"#);
            let reads: Vec<String> = logs
                .iter()
                .enumerate()
                .map(|(k, log)| {
                    let pairs: Vec<String> = log
                        .iter()
                        .enumerate()
                        .map(|(o, v)| format!("[{o},{v}]"))
                        .collect();
                    format!("\"{k}\":[{}]", pairs.join(","))
                })
                .collect();
            h.ok(p, "poll", &format!(r#"[["poll",{{{}}}]]"#, reads.join(",")));
        } else {
            next_val += 1;
            h.invoke(
                p,
                "txn",
                &format!(
                    r#"[["send",{key},{next_val}],["send",{},{next_val}]]"#,
                    (key + 1) % 4
                ),
            );
            logs[key].push(next_val);
            let o1 = logs[key].len() - 1;
            logs[(key + 1) % 4].push(next_val);
            let o2 = logs[(key + 1) % 4].len() - 1;
            h.ok(
                p,
                "txn",
                &format!(
                    r#"[["send",{key},[{o1},{next_val}]],["send",{},[{o2},{next_val}]]]"#,
                    (key + 1) % 4
                ),
            );
        }
    }
    let hist = h.history();
    assert_eq!(txn::check_with(&hist, &all_on()), vec![]);
    assert_eq!(
        txn::check(
            &hist,
            &CheckOpts {
                ww_deps: true,
                ..Default::default()
            }
        ),
        vec![]
    );
}

#[test]
fn an_exhausted_search_budget_is_reported_as_unknown_not_as_valid() {
    let hist = g0_history().history();
    let opts = TxnOpts {
        ww_deps: true,
        search_budget: 0,
        ..TxnOpts::from_check_opts(&CheckOpts::default())
    };
    let found = txn::check_with(&hist, &opts);
    assert_eq!(types(&found), vec![txn::SEARCH_TIMEOUT]);
    let w = witness(&found, txn::SEARCH_TIMEOUT);
    assert!(w["explanation"].as_str().unwrap().contains("unknown"));
    assert_eq!(w["scc-size"], 2);
}

#[test]
fn nemesis_events_and_other_functions_are_ignored() {
    let mut h = g0_history();
    h.lines.push(r#"{"index":4,"time":99000000,"process":"nemesis","type":"info","f":"kill","value":["b1"]}"#.into());
    h.lines.push(
        r#"{"index":5,"time":99000001,"process":0,"type":"invoke","f":"assign","value":[1,2]}"#
            .into(),
    );
    h.lines.push(
        r#"{"index":6,"time":99000002,"process":0,"type":"ok","f":"assign","value":[1,2]}"#.into(),
    );
    let found = txn::check(
        &h.history(),
        &CheckOpts {
            ww_deps: true,
            ..Default::default()
        },
    );
    assert_eq!(types(&found), vec!["G0"]);
}

#[test]
fn huge_sparse_values_and_values_shared_across_keys_are_told_apart() {
    let mut h = H::default();
    let big = 1_000_000_000_000u64;
    h.invoke(
        0,
        "txn",
        &format!(r#"[["send",1,{big}],["send",2,7],["poll"]]"#),
    );
    h.invoke(
        1,
        "txn",
        &format!(r#"[["send",2,{}],["send",1,7],["poll"]]"#, big + 1),
    );
    h.ok(
        0,
        "txn",
        &format!(
            r#"[["send",1,[0,{big}]],["send",2,[0,7]],["poll",{{"2":[[1,{}]]}}]]"#,
            big + 1
        ),
    );
    h.ok(
        1,
        "txn",
        &format!(
            r#"[["send",2,[1,{}]],["send",1,[1,7]],["poll",{{"1":[[0,{big}]]}}]]"#,
            big + 1
        ),
    );
    let found = txn::check(&h.history(), &CheckOpts::default());
    assert_eq!(types(&found), vec!["G1c"]);
    let text = witness(&found, "G1c")["explanation"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains(&format!("sent {big} to key 1")), "{text}");
    // With ww inference, value 7 on key 2 (by op 2) precedes value big+1
    // (by op 3), and 7 on key 1 (by op 3) follows big (by op 2): no G0.
    let found = txn::check(
        &h.history(),
        &CheckOpts {
            ww_deps: true,
            ..Default::default()
        },
    );
    assert_eq!(types(&found), vec!["G1c"]);
}

#[test]
fn process_order_holds_across_a_failed_operation_in_between() {
    let mut h = H::default();
    h.invoke(0, "poll", r#"[["poll"]]"#);
    h.ok(0, "poll", r#"[["poll",{"1":[[0,10]]}]]"#);
    h.invoke(0, "send", r#"[["send",2,99]]"#);
    h.ev(0, "fail", "send", r#"[["send",2,99]]"#);
    h.invoke(0, "send", r#"[["send",1,10]]"#);
    h.ok(0, "send", r#"[["send",1,[0,10]]]"#);
    let process_only = TxnOpts {
        realtime_edges: false,
        ..TxnOpts::from_check_opts(&CheckOpts::default())
    };
    let found = txn::check_with(&h.history(), &process_only);
    assert_eq!(types(&found), vec!["G1c-process"]);
}
