//! Crashed (`info`) operations, Jepsen's rule: an `info` send or txn may
//! still have happened; once an `ok` read returns a value it sent (for a
//! transaction, any of its values) it did, and what its completion reported
//! counts. One hand-built history per analysis the rule touches, each with
//! a valid twin that must pass.

mod common;

use common::{invocation_of, r, s, Hb};
use gregor_checkers::{check, CheckOpts, CheckResult, Validity};
use gregor_history::{EventType, Mop, Value, F};

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

/// A crashed op whose completion still reports what it learned (offsets of
/// sends, records of polls); returns the completion's index.
fn crashed(h: &mut Hb, p: u64, f: F, mops: Vec<Mop>) -> u64 {
    h.push(
        p,
        EventType::Invoke,
        f.clone(),
        Value::Mops(invocation_of(&mops)),
    );
    h.push(p, EventType::Info, f, Value::Mops(mops))
}

fn unknown_offset(key: u64, value: u64) -> Mop {
    Mop::Send {
        key,
        value,
        offset: None,
    }
}

// ------------------------------------------------------- inconsistent-offsets

/// Value 1 acknowledged at offset 0 of key 0; a crashed transaction reported
/// value 2 at that same offset, and value 3 at offset 0 of key 1.
fn two_values_at_one_offset(prove: bool) -> Hb {
    let mut h = Hb::new();
    h.send(0, 0, 1, 0);
    crashed(&mut h, 1, F::Txn, vec![s(0, 2, 0), s(1, 3, 0)]);
    let reads: Vec<(u64, &[(u64, u64)])> = if prove {
        vec![(0, &[(0, 1)]), (1, &[(0, 3)])]
    } else {
        vec![(0, &[(0, 1)])]
    };
    h.poll(2, &reads);
    h
}

#[test]
fn a_crashed_txn_proven_by_a_sibling_read_puts_its_reported_offsets_in_the_log() {
    let res = run(&two_values_at_one_offset(true));
    assert_eq!(res.valid, Validity::False);
    assert!(
        types(&res).contains(&"inconsistent-offsets"),
        "{:?}",
        res.anomalies
    );
    let w = example(&res, "inconsistent-offsets");
    assert_eq!(w["values"], serde_json::json!([1, 2]));
    assert_eq!(w["proved-by"]["crashed-op"], 3);
    assert_eq!(w["proved-by"]["read-op"], 5);
    assert_eq!(w["proved-by"]["key"], 1);
    assert_eq!(w["proved-by"]["value"], 3);
    let text = w["explanation"].as_str().unwrap();
    assert!(
        text.contains("op 3 crashed (info), but op 5 read value 3"),
        "{text}"
    );
}

#[test]
fn an_unproven_crashed_txn_reports_offsets_that_do_not_count() {
    let res = run(&two_values_at_one_offset(false));
    assert_eq!(res.valid, Validity::True, "{:?}", res.anomalies);
    assert!(res.anomaly_types.is_empty());
}

#[test]
fn a_crashed_plain_send_is_proven_record_by_record() {
    // A send op with two records is not atomic: reading value 3 proves
    // value 3 landed, not value 2.
    let mut h = Hb::new();
    h.send(0, 0, 1, 0);
    crashed(&mut h, 1, F::Send, vec![s(0, 2, 0), s(1, 3, 0)]);
    h.poll(2, &[(0, &[(0, 1)]), (1, &[(0, 3)])]);
    let res = run(&h);
    assert_eq!(res.valid, Validity::True, "{:?}", res.anomalies);
}

// ------------------------------------------------------------- lost-write

/// A crashed transaction sent value 1 to key 0 (reported at offset 0) and
/// value 2 to key 1; value 3 was acknowledged at offset 1 of key 0. A reader
/// sees value 3 but never value 1.
fn skipped_sibling(prove: bool, report_offset: bool) -> Hb {
    let mut h = Hb::new();
    h.assign(9, &[0, 1]);
    let first = if report_offset {
        s(0, 1, 0)
    } else {
        unknown_offset(0, 1)
    };
    crashed(&mut h, 1, F::Txn, vec![first, unknown_offset(1, 2)]);
    h.send(2, 0, 3, 1);
    if prove {
        h.poll(9, &[(0, &[(1, 3)]), (1, &[(0, 2)])]);
    } else {
        h.poll(9, &[(0, &[(1, 3)])]);
    }
    h
}

#[test]
fn an_unread_write_of_a_txn_proven_by_a_sibling_read_is_lost() {
    let res = run(&skipped_sibling(true, true));
    assert_eq!(res.valid, Validity::False);
    let w = example(&res, "lost-write");
    assert_eq!(w["value"], 1);
    assert_eq!(w["offset"], 0);
    assert_eq!(w["max-read-value"], 3);
    assert_eq!(w["ops"], serde_json::json!([3, 7]));
    assert_eq!(w["proved-by"]["read-op"], 7);
    assert_eq!(w["proved-by"]["value"], 2);
    assert_eq!(w["crashed-ops"], serde_json::json!([3]));
    assert_eq!(res.stats.info_proven, 2);
    assert_eq!(res.stats.lost, 1);
    let text = w["explanation"].as_str().unwrap();
    assert!(
        text.starts_with(
            "op 3 sent 1 to key 0 at offset 0 and it happened although its op crashed;"
        ) && text.ends_with(
            "op 3 crashed (info), but op 7 read value 2 of key 1 that it sent, so it happened"
        ),
        "{text}"
    );
}

#[test]
fn an_unread_write_of_an_unproven_crashed_txn_is_neither_lost_nor_unseen() {
    let res = run(&skipped_sibling(false, true));
    assert!(res.anomaly_types.is_empty(), "{:?}", res.anomalies);
    assert_eq!(res.valid, Validity::True);
    assert_eq!(res.stats.info_proven, 0);
}

// ----------------------------------------------------------------- unseen

#[test]
fn a_proven_write_whose_offset_nobody_learned_is_unseen_after_final_reads() {
    // Without an offset the value cannot be placed below the reads, so it
    // is not provably lost; it certainly happened and nobody ever read it.
    let res = run(&skipped_sibling(true, false));
    assert_eq!(res.valid, Validity::False);
    assert_eq!(types(&res), vec!["unseen"]);
    let w = example(&res, "unseen");
    assert_eq!(w["value"], 1);
    assert_eq!(w["proved-by"]["crashed-op"], 3);
    assert_eq!(res.stats.unseen, 1);
    assert!((res.stats.unseen_rate - 1.0 / 3.0).abs() < 1e-9);
}

// --------------------------------------------------- version orders (sends)

#[test]
fn a_proven_crashed_txn_is_held_to_the_order_of_its_own_sends() {
    // It reported value 1 at offset 5 and then value 2 at offset 4.
    let mut h = Hb::new();
    crashed(&mut h, 1, F::Txn, vec![s(0, 1, 5), s(0, 2, 4)]);
    h.poll(2, &[(0, &[(4, 2)])]);
    let res = run(&h);
    assert!(
        types(&res).contains(&"int-nonmonotonic-send"),
        "{:?}",
        res.anomalies
    );
    let w = example(&res, "int-nonmonotonic-send");
    assert_eq!(w["crashed-ops"], serde_json::json!([1]));

    // Unproven, its reported offsets say nothing.
    let mut h = Hb::new();
    crashed(&mut h, 1, F::Txn, vec![s(0, 1, 5), s(0, 2, 4)]);
    h.send(3, 0, 7, 0);
    h.poll(2, &[(0, &[(0, 7)])]);
    let res = run(&h);
    assert_eq!(res.valid, Validity::True, "{:?}", res.anomalies);
}

// -------------------------------------------------------------- poll-skip

/// Process 0 reads offset 0, then a poll that crashed after returning
/// `crashed_reads`, then (same process) offset `next`.
fn reads_around_a_crashed_poll(crashed_reads: &[(u64, u64)], next: (u64, u64)) -> Hb {
    let mut h = Hb::new();
    h.assign(0, &[0]);
    for (o, v) in [(0, 10), (1, 11), (2, 12), (3, 13)] {
        h.send(1, 0, v, o);
    }
    h.poll(0, &[(0, &[(0, 10)])]);
    crashed(&mut h, 0, F::Poll, vec![r(&[(0, crashed_reads)])]);
    h.poll(0, &[(0, &[next])]);
    h.poll(5, &[(0, &[(0, 10), (1, 11), (2, 12), (3, 13)])]);
    h
}

#[test]
fn a_poll_that_crashed_after_returning_records_moves_its_process_past_them() {
    let res = run(&reads_around_a_crashed_poll(&[(1, 11)], (3, 13)));
    assert_eq!(res.valid, Validity::False);
    assert_eq!(types(&res), vec!["poll-skip"]);
    let w = example(&res, "poll-skip");
    assert_eq!(w["ops"], serde_json::json!([13, 15]));
    assert_eq!(w["crashed-ops"], serde_json::json!([13]));
    assert_eq!(w["offsets"], serde_json::json!([1, 3]));
    let text = w["explanation"].as_str().unwrap();
    assert!(text.contains("op 13 crashed (info)"), "{text}");
}

#[test]
fn a_crashed_poll_that_skips_is_a_poll_skip() {
    let res = run(&reads_around_a_crashed_poll(&[(2, 12)], (3, 13)));
    assert_eq!(types(&res), vec!["poll-skip"]);
    assert_eq!(
        example(&res, "poll-skip")["ops"],
        serde_json::json!([11, 13])
    );
}

#[test]
fn reads_that_continue_where_a_crashed_poll_stopped_are_valid() {
    let res = run(&reads_around_a_crashed_poll(&[(1, 11), (2, 12)], (3, 13)));
    assert_eq!(res.valid, Validity::True, "{:?}", res.anomalies);
    let res = run(&reads_around_a_crashed_poll(&[], (1, 11)));
    assert_eq!(res.valid, Validity::True, "{:?}", res.anomalies);
}

// ------------------------------------------------------ nonmonotonic-poll

#[test]
fn a_read_going_back_behind_a_crashed_poll_is_nonmonotonic() {
    let res = run(&reads_around_a_crashed_poll(&[(1, 11), (2, 12)], (2, 12)));
    assert_eq!(types(&res), vec!["nonmonotonic-poll"]);
    let w = example(&res, "nonmonotonic-poll");
    assert_eq!(w["crashed-ops"], serde_json::json!([13]));
}

#[test]
fn a_crashed_poll_going_back_within_itself_is_int_nonmonotonic() {
    let res = run(&reads_around_a_crashed_poll(&[(2, 12), (1, 11)], (3, 13)));
    assert!(
        types(&res).contains(&"int-nonmonotonic-poll"),
        "{:?}",
        res.anomalies
    );
}

// -------------------------------------------------------------------- G1a

#[test]
fn only_a_read_of_a_failed_write_is_an_aborted_read() {
    // A crashed send read by an ok poll happened: no G1a. A failed send
    // returned by a poll that itself crashed: that poll's reads prove
    // nothing (Jepsen counts ok readers only).
    let mut h = Hb::new();
    h.send_info(1, 0, 1);
    h.send_fail(2, 0, 2);
    h.poll(3, &[(0, &[(0, 1)])]);
    crashed(&mut h, 4, F::Poll, vec![r(&[(0, &[(1, 2)])])]);
    let res = run(&h);
    assert!(!types(&res).contains(&"G1a"), "{:?}", res.anomalies);
    h.poll(5, &[(0, &[(0, 1), (1, 2)])]);
    let res = run(&h);
    assert_eq!(types(&res), vec!["G1a"]);
}

// ------------------------------------------------------------------ cycles

/// T1 crashed after reporting x=1@0, y=2@1, z=5@0; T2 acknowledged x=3@1
/// and y=4@0. With write-write inference, T1 -> T2 on x and T2 -> T1 on y,
/// the latter known only from T1's report.
fn ww_through_a_crashed_txn(prove: bool) -> Hb {
    let mut h = Hb::new();
    crashed(&mut h, 1, F::Txn, vec![s(0, 1, 0), s(1, 2, 1), s(2, 5, 0)]);
    h.txn(2, EventType::Ok, vec![s(0, 3, 1), s(1, 4, 0)]);
    if prove {
        h.poll(3, &[(2, &[(0, 5)])]);
    } else {
        h.poll(3, &[(0, &[(1, 3)])]);
    }
    h
}

#[test]
fn a_proven_crashed_txn_takes_its_place_in_write_write_cycles() {
    let opts = CheckOpts {
        ww_deps: true,
        ..Default::default()
    };
    let res = check(&ww_through_a_crashed_txn(true).history(), &opts);
    assert!(
        res.anomaly_types.iter().any(|t| t.starts_with("G0")),
        "{:?}",
        res.anomaly_types
    );
    let res = check(&ww_through_a_crashed_txn(false).history(), &opts);
    assert!(
        !res.anomaly_types.iter().any(|t| t.starts_with("G0")),
        "{:?}",
        res.anomaly_types
    );
}
