//! The numbers users act on: counts, rates, offsets, lag, latency.

mod common;

use common::{s, Hb};
use gregor_checkers::{check, CheckOpts, Validity};
use gregor_history::{EventType, F};

#[test]
fn ops_are_counted_by_function_and_completion_type() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    h.send(1, 1, 10, 0);
    h.send_fail(1, 1, 11);
    h.send_info(1, 1, 12);
    h.poll(0, &[(1, &[(0, 10)])]);
    let st = check(&h.history(), &CheckOpts::default()).stats;
    assert_eq!(st.events, 10);
    let send = &st.ops["send"];
    assert_eq!(
        (send["invoke"], send["ok"], send["fail"], send["info"]),
        (3, 1, 1, 1)
    );
    assert_eq!(st.ops["poll"]["ok"], 1);
    assert_eq!(st.ops["assign"]["ok"], 1);
    assert_eq!(st.acknowledged, 1);
    assert_eq!(st.completed_polls, 1);
    assert_eq!(st.read_values, 1);
}

#[test]
fn per_key_end_offsets_are_the_highest_offsets_observed() {
    let mut h = Hb::new();
    h.assign(0, &[1, 2]);
    h.send(1, 1, 10, 5);
    h.send(1, 2, 20, 7);
    h.poll(0, &[(1, &[(5, 10), (9, 11)])]);
    let st = check(&h.history(), &CheckOpts::default()).stats;
    assert_eq!(st.key_end_offsets.get(&1), Some(&9));
    assert_eq!(st.key_end_offsets.get(&2), Some(&7));
}

#[test]
fn latency_quantiles_are_in_milliseconds_per_function() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    for v in 0..10 {
        // Invoke, wait v ms, complete: latencies 1..=10 ms.
        h.push(
            1,
            EventType::Invoke,
            F::Send,
            gregor_history::Value::Mops(vec![gregor_history::Mop::Send {
                key: 1,
                value: v,
                offset: None,
            }]),
        );
        h.wait(v);
        h.push(
            1,
            EventType::Ok,
            F::Send,
            gregor_history::Value::Mops(vec![s(1, v, v)]),
        );
    }
    h.poll(0, &[(1, &(0..10).map(|v| (v, v)).collect::<Vec<_>>())]);
    let st = check(&h.history(), &CheckOpts::default()).stats;
    let l = &st.latency["send"];
    assert_eq!(l.count, 10);
    assert_eq!((l.p50, l.p90, l.p99, l.max), (5.0, 9.0, 10.0, 10.0));
    assert_eq!(st.latency["poll"].count, 1);
}

#[test]
fn realtime_lag_is_how_long_an_acknowledged_record_stayed_unread_when_a_poll_began() {
    let mut h = Hb::new();
    h.assign(0, &[1]); // 1, 2 ms
    h.send(1, 1, 10, 0); // acknowledged at 4 ms
    h.wait(100);
    let p = h.poll(0, &[(1, &[])]); // invoked at 105 ms, saw nothing
    h.poll(0, &[(1, &[(0, 10)])]); // caught up: no lag
    let st = check(&h.history(), &CheckOpts::default()).stats;
    assert_eq!(st.worst_realtime_lag_ms, Some(101.0));
    assert_eq!(st.worst_realtime_lag_key, Some(1));
    assert_eq!(st.worst_realtime_lag_op, Some(p));
    assert_eq!(st.realtime_lag_by_key_ms.get(&1), Some(&101.0));
}

#[test]
fn a_consumer_that_keeps_up_has_zero_realtime_lag() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    h.send(1, 1, 10, 0);
    h.poll(0, &[(1, &[(0, 10)])]);
    h.wait(50);
    h.poll(0, &[(1, &[])]);
    let st = check(&h.history(), &CheckOpts::default()).stats;
    assert_eq!(st.worst_realtime_lag_ms, Some(0.0));
}

#[test]
fn subscribed_consumers_report_how_often_they_consumed_each_record() {
    let mut h = Hb::new();
    h.subscribe(0, &[1]);
    h.send(1, 1, 10, 0);
    h.send(1, 1, 11, 1);
    h.poll(0, &[(1, &[(0, 10), (1, 11)])]);
    // A rebalance sends the consumer back to offset 1.
    h.poll(0, &[(1, &[(1, 11)])]);
    let res = check(
        &h.history(),
        &CheckOpts {
            subscribe: true,
            ..Default::default()
        },
    );
    assert_eq!(res.valid, Validity::True);
    assert_eq!(res.anomaly_types, ["nonmonotonic-poll"]);
    let st = res.stats;
    assert_eq!(st.subscribe_consume_counts.get(&1), Some(&1));
    assert_eq!(st.subscribe_consume_counts.get(&2), Some(&1));
    assert_eq!(st.subscribe_reconsumed, 1);
}

#[test]
fn duplicated_and_unseen_rates_are_relative_to_acknowledged_sends() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    for v in 0..4 {
        h.send(1, 1, v, v);
    }
    h.poll(0, &[(1, &[(0, 0), (1, 1), (2, 2), (3, 0)])]);
    let res = check(&h.history(), &CheckOpts::default());
    let st = &res.stats;
    assert_eq!(st.acknowledged, 4);
    assert_eq!(st.duplicated, 1);
    assert!((st.duplicated_rate - 0.25).abs() < 1e-9);
    // Value 3 was acknowledged at offset 3, where the poll saw value 0.
    assert!(res
        .anomaly_types
        .contains(&"inconsistent-offsets".to_string()));
    // Jepsen's bound counts a duplicate at its first offset: the highest
    // offset read is then 2, so value 3 is unseen rather than lost.
    assert_eq!((st.lost, st.unseen), (0, 1));
    assert!((st.unseen_rate - 0.25).abs() < 1e-9);
}

/// A client that begins to hold a key late (here: a new process after a
/// crash, assigned the key and reading from offset 0) catches up on old
/// records; that is catch-up lag, not lag of the cluster. Once caught up,
/// its lag is the cluster's again. The timeline carries both series, and
/// their peaks are the stats.
#[test]
fn a_new_holder_catching_up_is_not_lag_of_the_cluster() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    for v in 0..5 {
        h.send(1, 1, v, v);
        h.poll(0, &[(1, &[(v, v)])]);
        h.wait(1000);
    }
    // Process 2 starts holding key 1 at offset 0, 5 s after the first record.
    h.assign(2, &[1]);
    let slow = h.poll(2, &[(1, &[(0, 0), (1, 1)])]);
    h.poll(2, &[(1, &[(2, 2), (3, 3), (4, 4)])]);
    // Caught up; a new record waits 30 ms for the next poll.
    h.send(1, 1, 5, 5);
    h.wait(30);
    let lagging = h.poll(2, &[(1, &[])]);
    h.poll(2, &[(1, &[(5, 5)])]);
    h.wait(200);
    h.poll(2, &[(1, &[])]);
    let st = check(&h.history(), &CheckOpts::default()).stats;
    let catchup = st.worst_catchup_lag_ms.expect("catch-up lag");
    // Its first poll read offsets 0 and 1; offset 2 existed 3 s before.
    assert!(catchup > 2900.0, "catch-up lag {catchup} ms");
    assert_eq!(st.worst_catchup_lag_op, Some(slow));
    let lag = st.worst_realtime_lag_ms.unwrap();
    assert!(
        lag < 100.0,
        "the cluster's lag is {lag} ms, not the catch-up"
    );
    assert_eq!(st.worst_realtime_lag_op, Some(lagging));
    let tl = &st.timeline;
    let peak = |v: &[Option<f64>]| v.iter().flatten().fold(0.0f64, |a, &b| a.max(b));
    assert_eq!(peak(&tl.realtime_lag_ms), lag, "plotted lag = stated lag");
    assert_eq!(peak(&tl.catchup_lag_ms), catchup);
    // Every record was read right after its ack: at most one unread.
    assert_eq!(tl.unseen.iter().max(), Some(&1));
    assert_eq!(tl.unseen.last(), Some(&0));
    let polls: u64 = tl.completed["poll"]["ok"].iter().sum();
    assert_eq!(polls, st.ops["poll"]["ok"]);
}

#[test]
fn the_timeline_counts_acknowledged_writes_until_a_poll_returns_them() {
    let mut h = Hb::new();
    h.assign(0, &[1]);
    h.send(1, 1, 10, 0);
    h.send(1, 1, 11, 1);
    h.wait(500);
    h.poll(0, &[(1, &[(0, 10)])]);
    h.wait(500);
    h.poll(0, &[(1, &[(1, 11)])]);
    h.wait(500);
    h.poll(0, &[(1, &[])]);
    let st = check(&h.history(), &CheckOpts::default()).stats;
    let tl = &st.timeline;
    assert_eq!(tl.bucket_ms, 100);
    assert_eq!(tl.unseen[0], 2, "both acknowledged, none read");
    let after_first = tl.unseen[7];
    assert_eq!(after_first, 1, "{:?}", tl.unseen);
    assert_eq!(tl.unseen.last(), Some(&0));
}
