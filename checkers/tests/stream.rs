//! The streaming check against the in-memory one: the same file gives the
//! same anomaly types, counts, examples, statistics and validity (the
//! streaming check leaves out the cycle search and says so in
//! `stats.unchecked`).

mod common;

use std::collections::BTreeSet;
use std::io::Write;

use common::{r, s, Hb};
use gregor_checkers::stream::check_file;
use gregor_checkers::{check, txn, CheckOpts, CheckResult, Validity};
use gregor_history::{Event, EventType, History, Mop, F};
use proptest::prelude::*;

/// Writes `events` as JSONL, checks the file both ways, and returns
/// (in-memory, streaming) results.
fn both(events: &[Event], opts: &CheckOpts) -> (CheckResult, CheckResult) {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    for e in events {
        writeln!(f, "{}", e.to_json()).expect("write");
    }
    f.flush().expect("flush");
    let h = History::read(f.path()).expect("well-formed");
    let mem = check(&h, opts);
    let streamed = check_file(f.path(), opts).expect("well-formed");
    assert_eq!(streamed.truncated_tail, None);
    assert_eq!(
        streamed.has_txns,
        events.iter().any(|e| e.f == F::Txn),
        "has_txns"
    );
    (mem, streamed.result)
}

/// The in-memory result without what the streaming check does not search:
/// cycle types and availability are removed; validity is recomputed only
/// when cycles were the reason.
fn equal_but_cycles(mem: &CheckResult, st: &CheckResult) -> Result<(), TestCaseError> {
    let cycles: BTreeSet<String> = txn::anomaly_types().into_iter().collect();
    let mut want = mem.clone();
    let had_cycles = want.anomalies.keys().any(|k| cycles.contains(k));
    want.anomalies.retain(|k, _| !cycles.contains(k));
    want.anomaly_types.retain(|k| !cycles.contains(k));
    want.bad_types.retain(|k| !cycles.contains(k));
    want.stats.unchecked = vec!["cycles".to_string(), "availability".to_string()];
    // Availability per fault window needs every operation in memory.
    want.stats.availability = None;
    let mut got = st.clone();
    if had_cycles {
        // Validity then depends on the cycle search; compare the rest.
        got.valid = want.valid;
    }
    prop_assert_eq!(&got, &want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_streaming_check_of_a_file_equals_the_in_memory_check(
        steps in prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()), 0..200),
        subscribe in any::<bool>(),
        incomplete in any::<bool>(),
    ) {
        let events = common::random_history(&steps);
        let opts = CheckOpts { subscribe, final_reads_incomplete: incomplete, ..Default::default() };
        let (mem, st) = both(&events, &opts);
        equal_but_cycles(&mem, &st)?;
    }
}

/// xorshift64*.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn generated_histories_with_every_queue_anomaly_check_the_same_both_ways() {
    let mut rng = Rng(0x5eed);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for case in 0..400 {
        let n = 20 + (rng.next() % 300) as usize;
        let steps: Vec<(u8, u8, u8, u8)> = (0..n)
            .map(|_| {
                let x = rng.next();
                (x as u8, (x >> 8) as u8, (x >> 16) as u8, (x >> 24) as u8)
            })
            .collect();
        let events = common::random_history(&steps);
        let opts = CheckOpts {
            subscribe: case % 3 == 0,
            ..Default::default()
        };
        let (mem, st) = both(&events, &opts);
        equal_but_cycles(&mem, &st).unwrap_or_else(|e| panic!("case {case}: {e}"));
        seen.extend(st.anomalies.keys().cloned());
    }
    // Every queue type but int-send-skip (which needs three sends of one
    // key in one op) turns up, so each was compared at least once.
    for kind in [
        "inconsistent-offsets",
        "duplicate",
        "lost-write",
        "unseen",
        "poll-skip",
        "nonmonotonic-poll",
        "int-poll-skip",
        "int-nonmonotonic-poll",
        "nonmonotonic-send",
        "int-nonmonotonic-send",
        "G1a",
        "precommitted-read",
    ] {
        assert!(seen.contains(kind), "{kind} never found; seen {seen:?}");
    }
}

#[test]
fn hand_built_histories_check_the_same_both_ways() {
    let opts = CheckOpts::default();
    // A valid history: sends, a skip-free consumer, final reads.
    let mut h = Hb::new();
    h.assign(9, &[0, 1]);
    h.send(0, 0, 1, 0);
    h.send(0, 0, 2, 1);
    h.send(1, 1, 3, 0);
    h.poll(9, &[(0, &[(0, 1), (1, 2)]), (1, &[(0, 3)])]);
    let (mem, st) = both(&h.events, &opts);
    assert_eq!(st.valid, Validity::True);
    assert_eq!(st.stats.acknowledged, 3);
    equal_but_cycles(&mem, &st).unwrap();

    // A lost write (offset 1 skipped while 2 is read), an unseen write, a
    // G1a, a crashed send proven by a read, and a poll-skip.
    let mut h = Hb::new();
    h.assign(9, &[0]);
    h.send(0, 0, 1, 0);
    h.send(0, 0, 2, 1);
    h.send(0, 0, 3, 2);
    h.send(0, 0, 4, 3);
    h.send_fail(1, 0, 5);
    h.send_info(2, 0, 6);
    h.poll(9, &[(0, &[(0, 1)])]);
    h.poll(9, &[(0, &[(2, 3), (4, 5), (5, 6)])]);
    h.send(0, 0, 8, 6);
    let (mem, st) = both(&h.events, &opts);
    assert_eq!(st.valid, Validity::False);
    for kind in ["lost-write", "unseen", "G1a", "poll-skip"] {
        assert!(
            st.anomalies.contains_key(kind),
            "{kind}: {:?}",
            st.anomaly_types
        );
    }
    assert_eq!(st.stats.info_proven, 1);
    // Examples name the operations, as in memory.
    let lost = &st.anomalies["lost-write"].examples[0];
    assert_eq!(lost.ops, vec![5, 17]);
    equal_but_cycles(&mem, &st).unwrap();

    // A transaction reading its own write, inconsistent offsets, a
    // duplicate, and a completion that echoes its invocation.
    let mut h = Hb::new();
    h.txn(
        0,
        EventType::Ok,
        vec![s(0, 1, 0), r(&[(0, &[(0, 1)])]), s(0, 2, 1)],
    );
    h.send(1, 0, 3, 1);
    h.poll(2, &[(0, &[(0, 1), (1, 2), (2, 1)])]);
    h.op(
        3,
        EventType::Info,
        F::Send,
        vec![Mop::Send {
            key: 0,
            value: 7,
            offset: None,
        }],
    );
    let (mem, st) = both(&h.events, &opts);
    for kind in ["precommitted-read", "inconsistent-offsets", "duplicate"] {
        assert!(
            st.anomalies.contains_key(kind),
            "{kind}: {:?}",
            st.anomaly_types
        );
    }
    equal_but_cycles(&mem, &st).unwrap();
}

#[test]
fn an_empty_file_is_unknown_both_ways() {
    let (mem, st) = both(&[], &CheckOpts::default());
    assert_eq!(st.valid, Validity::Unknown);
    equal_but_cycles(&mem, &st).unwrap();
}

#[test]
fn a_malformed_file_is_an_error_naming_the_line() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    let mut h = Hb::new();
    h.send(0, 0, 1, 0);
    writeln!(f, "{}", h.events[0].to_json()).unwrap();
    writeln!(f, "{}", h.events[0].to_json()).unwrap();
    let err = check_file(f.path(), &CheckOpts::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains(":2:"), "{err}");
}
