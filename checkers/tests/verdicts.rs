//! How uncertain findings and final reads shape the verdict.

use gregor_checkers::{check, CheckOpts, Validity};
use gregor_history::{History, RunMeta};

/// Key 0: value 1 acknowledged at offset 0 and read; value 2 acknowledged
/// at offset 1 and never read.
const TAIL_UNREAD: &str = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":[["send",0,1]]}
{"index":1,"time":2,"process":0,"type":"ok","f":"send","value":[["send",0,[0,1]]]}
{"index":2,"time":3,"process":0,"type":"invoke","f":"send","value":[["send",0,2]]}
{"index":3,"time":4,"process":0,"type":"ok","f":"send","value":[["send",0,[1,2]]]}
{"index":4,"time":5,"process":1,"type":"invoke","f":"poll","value":[["poll"]]}
{"index":5,"time":6,"process":1,"type":"ok","f":"poll","value":[["poll",{"0":[[0,1]]}]]}
"#;

#[test]
fn an_unseen_write_is_invalid_after_complete_final_reads() {
    let h = History::parse_str(TAIL_UNREAD).unwrap();
    let r = check(&h, &CheckOpts::default());
    assert_eq!(r.valid, Validity::False);
    assert_eq!(r.bad_types, vec!["unseen".to_string()]);
}

#[test]
fn an_unseen_write_leaves_the_verdict_unknown_when_final_reads_did_not_finish() {
    let h = History::parse_str(TAIL_UNREAD).unwrap();
    let opts = CheckOpts {
        final_reads_incomplete: true,
        ..Default::default()
    };
    let r = check(&h, &opts);
    assert_eq!(r.valid, Validity::Unknown);
    assert!(r.bad_types.is_empty());
    assert_eq!(r.anomalies["unseen"].count, 1, "still reported");
}

#[test]
fn final_reads_from_the_beginning_do_not_count_as_realtime_lag() {
    // Value 1 is acknowledged at t=2 s; a normal poll reads it at t=3 s;
    // a final read (marked "final") from the beginning at t=100 s must not
    // turn into a 98 s lag.
    let s = r#"{"index":0,"time":1000000000,"process":0,"type":"invoke","f":"send","value":[["send",0,1]]}
{"index":1,"time":2000000000,"process":0,"type":"ok","f":"send","value":[["send",0,[0,1]]]}
{"index":2,"time":2000000001,"process":0,"type":"invoke","f":"send","value":[["send",0,2]]}
{"index":3,"time":2000000002,"process":0,"type":"ok","f":"send","value":[["send",0,[1,2]]]}
{"index":4,"time":3000000000,"process":1,"type":"invoke","f":"poll","value":[["poll"]]}
{"index":5,"time":3000000001,"process":1,"type":"ok","f":"poll","value":[["poll",{"0":[[0,1],[1,2]]}]]}
{"index":6,"time":100000000000,"process":9,"type":"invoke","f":"poll","value":[["poll"]],"final":true}
{"index":7,"time":100000000001,"process":9,"type":"ok","f":"poll","value":[["poll",{"0":[[0,1]]}]],"final":true}
{"index":8,"time":100000000002,"process":9,"type":"invoke","f":"poll","value":[["poll"]],"final":true}
{"index":9,"time":100000000003,"process":9,"type":"ok","f":"poll","value":[["poll",{"0":[[1,2]]}]],"final":true}
"#;
    let r = check(&History::parse_str(s).unwrap(), &CheckOpts::default());
    assert_eq!(r.valid, Validity::True, "{:?}", r.bad_types);
    let lag = r.stats.worst_realtime_lag_ms.unwrap_or(0.0);
    assert!(lag < 2000.0, "final reads inflated the lag to {lag} ms");
}

#[test]
fn with_acks_0_an_unread_send_is_reported_but_allowed() {
    let h = History::parse_str(TAIL_UNREAD).unwrap();
    let opts = CheckOpts {
        acks_zero: true,
        ..Default::default()
    };
    let r = check(&h, &opts);
    assert_eq!(r.valid, Validity::True);
    assert!(r.anomaly_types.contains(&"unseen".to_string()));
    assert!(r.bad_types.is_empty());
}

#[test]
fn a_run_cut_short_before_its_final_reads_cannot_prove_a_write_unseen() {
    // meta.json is written before the first event and gets its
    // "final-reads" record only when they end: a kill -9 leaves none.
    let h = History::parse_str(TAIL_UNREAD).unwrap();
    let mut meta = RunMeta::default();
    let r = check(&h, &CheckOpts::from_meta(&meta));
    assert_eq!(r.valid, Validity::Unknown, "{:?}", r.bad_types);
    assert_eq!(r.anomalies["unseen"].count, 1, "still reported");
    for (record, valid) in [
        ("complete", Validity::False),
        ("none needed", Validity::False),
        ("incomplete", Validity::Unknown),
        ("skipped", Validity::Unknown),
        ("failed", Validity::Unknown),
    ] {
        meta.extra.insert("final-reads".into(), record.into());
        let r = check(&h, &CheckOpts::from_meta(&meta));
        assert_eq!(r.valid, valid, "final-reads {record}");
    }
}

#[test]
fn a_run_cut_short_is_still_invalid_for_what_it_proves() {
    // A lost write (a later offset was read) needs no final reads.
    let s = TAIL_UNREAD.replace(r#"{"0":[[0,1]]}"#, r#"{"0":[[1,2]]}"#);
    let h = History::parse_str(&s).unwrap();
    let r = check(&h, &CheckOpts::from_meta(&RunMeta::default()));
    assert_eq!(r.valid, Validity::False);
    assert_eq!(r.bad_types, vec!["lost-write".to_string()]);
}
