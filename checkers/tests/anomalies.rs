//! Hand-built histories, one or more per anomaly type, and valid ones that
//! must pass.

mod common;

use common::{r, s, Hb};
use gregor_checkers::{check, CheckOpts, CheckResult, Validity};
use gregor_history::{EventType, History, Mop, F};

fn run(h: &Hb) -> CheckResult {
    check(&h.history(), &CheckOpts::default())
}

fn types(res: &CheckResult) -> Vec<&str> {
    res.anomaly_types.iter().map(|s| s.as_str()).collect()
}

fn example(res: &CheckResult, kind: &str) -> serde_json::Value {
    let g = res
        .anomalies
        .get(kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", res.anomaly_types));
    g.examples[0].to_json()
}

fn explanation(res: &CheckResult, kind: &str) -> String {
    example(res, kind)["explanation"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Two producers, one consumer that reads everything in order.
fn clean() -> Hb {
    let mut h = Hb::new();
    h.assign(0, &[1, 2]);
    h.send(1, 1, 10, 0);
    h.send(2, 2, 20, 0);
    h.send(1, 1, 11, 1);
    h.poll(0, &[(1, &[(0, 10), (1, 11)]), (2, &[(0, 20)])]);
    h.send(2, 2, 21, 1);
    h.send(1, 1, 12, 2);
    h.poll(0, &[(1, &[(2, 12)]), (2, &[(1, 21)])]);
    h
}

#[test]
fn a_clean_history_is_valid_with_no_anomalies() {
    let res = run(&clean());
    assert_eq!(res.valid, Validity::True, "{:?}", res.anomalies);
    assert!(res.anomaly_types.is_empty());
    assert!(res.bad_types.is_empty());
}

#[test]
fn an_empty_history_is_unknown() {
    let res = check(&History::default(), &CheckOpts::default());
    assert_eq!(res.valid, Validity::Unknown);
    assert_eq!(res.valid.exit_code(), 2);
}

#[test]
fn sends_without_any_completed_poll_are_unknown_and_not_reported_unseen() {
    let mut h = Hb::new();
    h.send(1, 1, 10, 0);
    h.send(1, 1, 11, 1);
    h.op(0, EventType::Info, F::Poll, vec![Mop::Poll { reads: None }]);
    let res = run(&h);
    assert_eq!(res.valid, Validity::Unknown);
    assert!(!res.anomalies.contains_key("unseen"));
    assert_eq!(res.stats.unseen, 2, "the stats still say nothing was seen");
}

#[test]
fn an_acknowledged_send_below_the_highest_read_offset_is_a_lost_write() {
    let mut h = Hb::new();
    h.assign(0, &[2]);
    let w = h.send(3, 2, 41, 17);
    h.send(3, 2, 42, 18);
    h.send(3, 2, 43, 19);
    let rd = h.poll(0, &[(2, &[(18, 42), (19, 43)])]);
    let res = run(&h);
    assert_eq!(res.valid, Validity::False);
    assert_eq!(types(&res), ["lost-write"]);
    assert_eq!(res.bad_types, ["lost-write"]);
    let ex = example(&res, "lost-write");
    assert_eq!(ex["ops"], serde_json::json!([w, rd]));
    assert_eq!(ex["key"], 2);
    assert_eq!(ex["value"], 41);
    assert_eq!(ex["offset"], 17);
    assert_eq!(ex["max-read-offset"], 19);
    let e = explanation(&res, "lost-write");
    assert!(
        e.contains(&format!("op {w} sent 41 to key 2 at offset 17"))
            && e.contains(&format!("op {rd} read offset 19")),
        "{e}"
    );
    assert_eq!(res.stats.lost, 1);
    assert_eq!(res.stats.acknowledged, 3);
    assert!((res.stats.lost_rate - 1.0 / 3.0).abs() < 1e-9);
}

#[test]
fn an_acknowledged_send_past_every_read_is_unseen_not_lost() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    h.send(1, 1, 10, 0);
    h.poll(0, &[(1, &[(0, 10)])]);
    let w = h.send(1, 1, 11, 1);
    h.poll(0, &[]);
    let res = run(&h);
    assert_eq!(types(&res), ["unseen"]);
    assert_eq!(res.valid, Validity::False);
    let e = explanation(&res, "unseen");
    assert!(
        e.contains(&format!("op {w} sent 11 to key 1")) && e.contains("only reached offset 0"),
        "{e}"
    );
    assert_eq!((res.stats.unseen, res.stats.lost), (1, 0));
    assert!((res.stats.unseen_rate - 0.5).abs() < 1e-9);
}

#[test]
fn sparse_offsets_from_transaction_markers_are_not_skips() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    h.send(1, 1, 10, 0);
    h.send(1, 1, 11, 2);
    h.send(1, 1, 12, 4);
    h.poll(0, &[(1, &[(0, 10)])]);
    h.poll(0, &[(1, &[(2, 11), (4, 12)])]);
    let res = run(&h);
    assert_eq!(res.valid, Validity::True, "{:?}", res.anomalies);
}

#[test]
fn one_value_at_two_offsets_is_a_duplicate() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    let w = h.send(1, 1, 10, 0);
    h.send(1, 1, 11, 1);
    h.poll(0, &[(1, &[(0, 10), (1, 11), (2, 10)])]);
    let res = run(&h);
    assert!(
        types(&res).contains(&"duplicate"),
        "{:?}",
        res.anomaly_types
    );
    let ex = example(&res, "duplicate");
    assert_eq!(ex["offsets"], serde_json::json!([0, 2]));
    assert_eq!(ex["value"], 10);
    assert_eq!(ex["ops"][0], w);
    assert!(ex["explanation"]
        .as_str()
        .unwrap()
        .contains("value 10 of key 1 is stored at 2 offsets (0, 2)"));
    assert_eq!(res.stats.duplicated, 1);
    assert_eq!(res.valid, Validity::False);
}

#[test]
fn two_values_at_one_offset_are_inconsistent_offsets() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    h.send(1, 1, 10, 0);
    h.poll(0, &[(1, &[(0, 10)])]);
    h.assign(5, &[1]);
    h.poll(5, &[(1, &[(0, 99)])]);
    let res = run(&h);
    assert!(
        types(&res).contains(&"inconsistent-offsets"),
        "{:?}",
        res.anomaly_types
    );
    let ex = example(&res, "inconsistent-offsets");
    assert_eq!(ex["offset"], 0);
    assert_eq!(ex["values"], serde_json::json!([10, 99]));
    assert_eq!(res.valid, Validity::False);
}

#[test]
fn a_process_jumping_over_known_records_is_a_poll_skip_allowed_only_under_subscribe() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    for (v, o) in [(10, 0), (11, 1), (12, 2), (13, 3)] {
        h.send(1, 1, v, o);
    }
    let a = h.poll(0, &[(1, &[(0, 10)])]);
    let b = h.poll(0, &[(1, &[(3, 13)])]);
    h.assign(9, &[1]);
    h.poll(9, &[(1, &[(0, 10), (1, 11), (2, 12), (3, 13)])]);
    let res = run(&h);
    assert_eq!(types(&res), ["poll-skip"]);
    assert_eq!(res.valid, Validity::False);
    let ex = example(&res, "poll-skip");
    assert_eq!(ex["ops"], serde_json::json!([a, b]));
    assert_eq!(ex["process"], 0);
    assert_eq!(ex["skipped"], 2);
    let e = ex["explanation"].as_str().unwrap();
    assert!(
        e.contains("process 0 read key 1 up to offset 0")
            && e.contains("skipping 2 record(s) (e.g. value 11 at offset 1)"),
        "{e}"
    );

    let sub = check(
        &h.history(),
        &CheckOpts {
            subscribe: true,
            ..Default::default()
        },
    );
    assert_eq!(sub.valid, Validity::True);
    assert_eq!(sub.anomaly_types, ["poll-skip"], "still reported");
    assert!(sub.bad_types.is_empty());
}

#[test]
fn rereading_a_record_or_seeking_back_after_a_reassign_is_a_nonmonotonic_poll() {
    let mut h = Hb::new();
    h.assign(0, &[1, 2]);
    h.send(1, 1, 10, 0);
    h.send(1, 1, 11, 1);
    h.poll(0, &[(1, &[(0, 10), (1, 11)])]);
    // Re-assigning keys it still holds keeps the position (Jepsen's rule).
    h.assign(0, &[1]);
    let b = h.poll(0, &[(1, &[(0, 10)])]);
    let res = run(&h);
    assert_eq!(types(&res), ["nonmonotonic-poll"]);
    let ex = example(&res, "nonmonotonic-poll");
    assert_eq!(ex["ops"][1], b);
    assert_eq!(ex["offsets"], serde_json::json!([1, 0]));
    assert!(ex["explanation"]
        .as_str()
        .unwrap()
        .contains("went back to offset 0"));
    let sub = check(
        &h.history(),
        &CheckOpts {
            subscribe: true,
            ..Default::default()
        },
    );
    assert_eq!(sub.valid, Validity::True);
}

#[test]
fn dropping_a_key_forgets_its_position_so_a_later_rewind_is_fine() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    h.send(1, 1, 10, 0);
    h.send(1, 1, 11, 1);
    h.poll(0, &[(1, &[(0, 10), (1, 11)])]);
    h.assign(0, &[2]);
    h.assign(0, &[1]);
    h.poll(0, &[(1, &[(0, 10), (1, 11)])]);
    let res = run(&h);
    assert_eq!(res.valid, Validity::True, "{:?}", res.anomalies);
}

#[test]
fn a_process_renumbered_after_a_crash_starts_fresh() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    h.send(1, 1, 10, 0);
    h.send(1, 1, 11, 1);
    h.poll(0, &[(1, &[(0, 10), (1, 11)])]);
    h.op(0, EventType::Info, F::Poll, vec![Mop::Poll { reads: None }]);
    h.assign(4, &[1]);
    h.poll(4, &[(1, &[(0, 10), (1, 11)])]);
    let res = run(&h);
    assert_eq!(res.valid, Validity::True, "{:?}", res.anomalies);
}

#[test]
fn skips_and_rewinds_inside_one_poll_are_int_variants() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    for (v, o) in [(10, 0), (11, 1), (12, 2)] {
        h.send(1, 1, v, o);
    }
    let a = h.poll(0, &[(1, &[(0, 10), (2, 12)])]);
    h.assign(5, &[1]);
    let b = h.poll(5, &[(1, &[(0, 10), (1, 11), (2, 12), (1, 11)])]);
    let res = run(&h);
    assert_eq!(types(&res), ["int-nonmonotonic-poll", "int-poll-skip"]);
    assert_eq!(
        example(&res, "int-poll-skip")["ops"],
        serde_json::json!([a])
    );
    assert_eq!(
        example(&res, "int-nonmonotonic-poll")["ops"],
        serde_json::json!([b])
    );
    // Not allowed even under subscribe.
    let sub = check(
        &h.history(),
        &CheckOpts {
            subscribe: true,
            ..Default::default()
        },
    );
    assert_eq!(sub.valid, Validity::False);
}

#[test]
fn a_later_send_landing_earlier_is_a_nonmonotonic_send() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    let a = h.send(1, 1, 10, 1);
    let b = h.send(1, 1, 11, 0);
    h.poll(0, &[(1, &[(0, 11), (1, 10)])]);
    let res = run(&h);
    assert_eq!(types(&res), ["nonmonotonic-send"]);
    let ex = example(&res, "nonmonotonic-send");
    assert_eq!(ex["ops"], serde_json::json!([a, b]));
    assert!(ex["explanation"]
        .as_str()
        .unwrap()
        .contains("a later send got an earlier position"));
}

#[test]
fn sends_within_one_op_going_backwards_are_bad_and_skipping_is_allowed() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    h.op(1, EventType::Ok, F::Send, vec![s(1, 10, 0), s(1, 11, 2)]);
    h.send(2, 1, 20, 1);
    h.poll(0, &[(1, &[(0, 10), (1, 20), (2, 11)])]);
    let res = run(&h);
    assert_eq!(types(&res), ["int-send-skip"]);
    assert_eq!(res.valid, Validity::True, "int-send-skip is allowed");

    let mut h = Hb::new();
    h.assign(0, &[1]);
    h.op(1, EventType::Ok, F::Send, vec![s(1, 10, 1), s(1, 11, 0)]);
    h.poll(0, &[(1, &[(0, 11), (1, 10)])]);
    let res = run(&h);
    assert_eq!(types(&res), ["int-nonmonotonic-send"]);
    assert_eq!(res.valid, Validity::False);
}

#[test]
fn reading_a_failed_send_is_g1a_but_reading_an_indeterminate_one_is_fine() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    let w = h.send_fail(1, 1, 10);
    h.send_info(2, 1, 11);
    let rd = h.poll(0, &[(1, &[(0, 10), (1, 11)])]);
    let res = run(&h);
    assert_eq!(types(&res), ["G1a"]);
    let ex = example(&res, "G1a");
    assert_eq!(ex["ops"], serde_json::json!([w, rd]));
    assert_eq!(ex["value"], 10);
    assert!(ex["explanation"].as_str().unwrap().contains("failed"));
}

#[test]
fn an_aborted_transactions_sends_must_never_be_read() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    h.txn(1, EventType::Fail, vec![s(1, 10, 0), s(1, 11, 1)]);
    h.poll(0, &[(1, &[(0, 10)])]);
    let res = run(&h);
    assert_eq!(types(&res), ["G1a"]);
    assert_eq!(res.anomalies["G1a"].count, 1);
}

#[test]
fn a_transaction_reading_its_own_uncommitted_send_is_a_precommitted_read() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    let t = h.txn(1, EventType::Ok, vec![s(1, 10, 0), r(&[(1, &[(0, 10)])])]);
    h.poll(0, &[(1, &[(0, 10)])]);
    let res = run(&h);
    assert_eq!(types(&res), ["precommitted-read"]);
    let ex = example(&res, "precommitted-read");
    assert_eq!(ex["ops"], serde_json::json!([t]));
    assert_eq!(ex["process"], 1);
}

#[test]
fn committed_transaction_sends_count_as_acknowledged_writes() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    h.txn(
        1,
        EventType::Ok,
        vec![s(1, 10, 0), s(1, 11, 1), s(1, 12, 2)],
    );
    h.poll(0, &[(1, &[(0, 10), (2, 12)])]);
    let res = run(&h);
    assert_eq!(res.stats.acknowledged, 3);
    assert!(
        types(&res).contains(&"lost-write"),
        "{:?}",
        res.anomaly_types
    );
    assert_eq!(
        res.anomalies["lost-write"].examples[0].to_json()["value"],
        11
    );
}

#[test]
fn examples_are_capped_but_the_count_is_complete() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    for v in 0..20 {
        h.send(1, 1, v, v);
    }
    h.poll(0, &[(1, &[(19, 19)])]);
    let res = run(&h);
    let g = &res.anomalies["lost-write"];
    assert_eq!(g.count, 19);
    assert_eq!(g.examples.len(), gregor_checkers::MAX_EXAMPLES);
    assert_eq!(g.examples[0].to_json()["value"], 0, "earliest first");
}

#[test]
fn the_result_serializes_to_the_check_contract() {
    let res = run(&clean());
    let j = serde_json::to_value(&res).unwrap();
    assert_eq!(j["valid"], true);
    for k in ["anomaly-types", "bad-types", "anomalies", "stats"] {
        assert!(j.get(k).is_some(), "missing {k}");
    }
    assert_eq!(j["stats"]["acknowledged"], 5);
    assert_eq!(j["stats"]["key-end-offsets"]["1"], 2);
}

#[test]
fn a_rebalance_logged_during_a_poll_excuses_its_internal_order_for_those_keys() {
    let mut h = Hb::new();
    h.subscribe(0, &[1, 2]);
    for (v, o) in [(10, 0), (11, 1)] {
        h.send(1, 1, v, o);
        h.send(1, 2, v + 10, o);
    }
    h.poll(
        0,
        &[
            (1, &[(0, 10), (1, 11), (0, 10)]),
            (2, &[(0, 20), (1, 21), (0, 20)]),
        ],
    );
    let last = h.events.len() - 1;
    h.events[last].extra = vec![("rebalance-log".into(), serde_json::json!([{"keys": [1]}]))];
    let res = check(
        &h.history(),
        &CheckOpts {
            subscribe: true,
            ..Default::default()
        },
    );
    let g = &res.anomalies["int-nonmonotonic-poll"];
    assert_eq!(g.count, 1, "only key 2, which was not rebalanced");
    assert_eq!(g.examples[0].to_json()["key"], 2);
}

#[test]
fn a_send_acknowledged_without_an_offset_is_placed_where_polls_found_it() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    let a = h.op(
        1,
        EventType::Ok,
        F::Send,
        vec![Mop::Send {
            key: 1,
            value: 10,
            offset: None,
        }],
    );
    let b = h.send(1, 1, 11, 0);
    h.poll(0, &[(1, &[(0, 11), (1, 10)])]);
    let res = run(&h);
    assert_eq!(types(&res), ["nonmonotonic-send"]);
    let ex = example(&res, "nonmonotonic-send");
    assert_eq!(ex["ops"], serde_json::json!([a, b]));
    assert_eq!(ex["offsets"], serde_json::json!([1, 0]));
}

#[test]
fn an_indeterminate_send_that_was_read_is_neither_lost_nor_aborted() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    h.send_info(1, 1, 10);
    h.send(2, 1, 11, 1);
    h.poll(0, &[(1, &[(0, 10), (1, 11)])]);
    let res = run(&h);
    assert_eq!(res.valid, Validity::True, "{:?}", res.anomalies);
    assert_eq!(res.stats.acknowledged, 1);
}

#[test]
fn every_example_names_its_ops_and_key_in_a_one_line_explanation() {
    // One history with every type this crate finds.
    let mut h = Hb::new();
    h.assign(0, &[1, 2]);
    h.op(1, EventType::Ok, F::Send, vec![s(1, 10, 0), s(1, 11, 2)]); // int-send-skip
    h.send(1, 1, 12, 1);
    h.send(1, 1, 13, 3);
    h.send(1, 1, 14, 4);
    h.send(1, 1, 99, 5); // unseen
    h.send(2, 2, 20, 1);
    h.send(2, 2, 21, 0); // nonmonotonic-send
    h.op(2, EventType::Ok, F::Send, vec![s(2, 22, 3), s(2, 23, 2)]); // int-nonmonotonic-send
    h.send_fail(3, 2, 24);
    h.poll(0, &[(1, &[(0, 10), (2, 11)])]); // int-poll-skip (offset 1 holds 12)
    h.poll(0, &[(1, &[(1, 12), (4, 14), (4, 15)])]); // nonmonotonic, int-nonmonotonic, lost 13, inconsistent
    h.poll(0, &[(2, &[(0, 21), (2, 23), (6, 24), (7, 21)])]); // G1a, duplicate, int-poll-skip
    h.assign(6, &[2]);
    h.poll(6, &[(2, &[(0, 21)])]);
    h.poll(6, &[(2, &[(3, 22)])]); // poll-skip
    h.txn(7, EventType::Ok, vec![s(2, 30, 8), r(&[(2, &[(8, 30)])])]); // precommitted-read
    let res = run(&h);
    if std::env::var("PRINT_EXAMPLES").is_ok() {
        for (k, g) in &res.anomalies {
            for ex in g.examples.iter().map(|e| e.to_json()) {
                println!("{k}: {}", ex["explanation"]);
            }
        }
    }
    for kind in [
        "duplicate",
        "inconsistent-offsets",
        "lost-write",
        "unseen",
        "poll-skip",
        "nonmonotonic-poll",
        "int-poll-skip",
        "int-nonmonotonic-poll",
        "nonmonotonic-send",
        "int-send-skip",
        "int-nonmonotonic-send",
        "G1a",
        "precommitted-read",
    ] {
        let g = res
            .anomalies
            .get(kind)
            .unwrap_or_else(|| panic!("{kind} missing from {:?}", res.anomaly_types));
        for ex in g.examples.iter().map(|e| e.to_json()) {
            let e = ex["explanation"].as_str().expect("an explanation");
            assert!(!e.contains('\n'), "{kind}: {e}");
            let ops = ex["ops"].as_array().expect("ops");
            assert!(!ops.is_empty(), "{kind}: {ex}");
            for op in ops {
                assert!(
                    e.contains(&format!("op {op}")),
                    "{kind}: {e} should name op {op}"
                );
            }
            assert!(e.contains(&format!("key {}", ex["key"])), "{kind}: {e}");
            assert!(ex.get("process").is_some(), "{kind}: {ex}");
        }
    }
}

#[test]
fn a_large_history_checked_on_two_threads_still_finds_a_single_lost_write() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    let mut lost = 0;
    for v in 0..15_000u64 {
        let w = h.send(1, 1, v, v);
        if v == 7_777 {
            lost = w;
        } else {
            h.poll(0, &[(1, &[(v, v)])]);
        }
    }
    assert!(
        h.events.len() >= 50_000,
        "large enough for the threaded path"
    );
    let res = run(&h);
    assert_eq!(res.anomalies["lost-write"].count, 1);
    assert_eq!(
        res.anomalies["lost-write"].examples[0].to_json()["ops"][0],
        lost
    );
    // The skip over it is reported too.
    assert_eq!(types(&res), ["lost-write", "poll-skip"]);
}
