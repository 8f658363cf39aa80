//! The online checker against the offline one: fed event by event, its
//! final verdict is the offline verdict of the same history, its live
//! counts never exceed the final counts, and a live finding of a bad type
//! means the final verdict is invalid.

mod common;

use common::Hb;
use gregor_checkers::online::OnlineChecker;
use gregor_checkers::{check, CheckOpts, Validity};
use gregor_history::{Event, History};
use proptest::prelude::*;

fn online(events: &[Event], opts: &CheckOpts) -> OnlineChecker {
    let mut o = OnlineChecker::new(opts.clone());
    for e in events {
        o.push(e.clone()).expect("well-formed");
    }
    o
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_online_verdict_is_the_offline_verdict_and_live_counts_are_sound(
        steps in prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()), 0..160),
        subscribe in any::<bool>(),
    ) {
        let events = common::random_history(&steps);
        let opts = CheckOpts { subscribe, ..Default::default() };
        let offline = check(&History::new(events.clone()), &opts);
        // Through the JSONL form, as `gregor check` reads it.
        let jsonl: String = events.iter().map(|e| e.to_json() + "\n").collect();
        let reread = History::from_reader(jsonl.as_bytes(), std::path::Path::new("<generated>"))
            .expect("the generated history is well-formed");
        let o = online(&reread.events, &opts);
        let live = o.counts().clone();
        let first_bad = o.first_bad();
        let final_ = o.finish();
        prop_assert_eq!(&final_, &offline);
        for (kind, n) in &live {
            let total = offline.anomalies.get(*kind).map_or(0, |g| g.count);
            prop_assert!(*n <= total, "{} live {} > final {}", kind, n, total);
        }
        if let Some((kind, _)) = first_bad {
            prop_assert_eq!(offline.valid, Validity::False, "live {} but final {:?}", kind, offline.valid);
        }
    }
}

#[test]
fn a_live_inconsistent_offset_is_reported_by_the_event_that_reveals_it() {
    let mut h = Hb::new();
    h.send(0, 0, 1, 0);
    h.send(1, 0, 2, 0);
    h.poll(2, &[(0, &[(0, 1)])]);
    let mut o = OnlineChecker::new(CheckOpts::default());
    let mut revealed = Vec::new();
    for e in &h.events {
        let idx = e.index;
        let bad = o.push(e.clone()).unwrap();
        if !bad.is_empty() {
            revealed.push((idx, bad));
        }
    }
    assert_eq!(revealed, vec![(3, vec!["inconsistent-offsets"])]);
    assert_eq!(o.first_bad(), Some(("inconsistent-offsets", 3)));
    assert_eq!(o.summary(), "inconsistent-offsets 1");
    assert_eq!(o.finish().valid, Validity::False);
}

#[test]
fn an_allowed_live_finding_does_not_stop_a_fail_fast_run() {
    let mut o = OnlineChecker::new(CheckOpts::default());
    let mut h = Hb::new();
    h.assign(0, &[0]);
    h.send(1, 0, 1, 0);
    h.poll(0, &[(0, &[(0, 1)])]);
    for e in &h.events {
        assert!(o.push(e.clone()).unwrap().is_empty());
    }
    assert_eq!(o.first_bad(), None);
    assert_eq!(o.finish().valid, Validity::True);
}

#[test]
fn a_malformed_event_is_refused() {
    let mut o = OnlineChecker::new(CheckOpts::default());
    let mut h = Hb::new();
    h.send(1, 0, 1, 0);
    o.push(h.events[0].clone()).unwrap();
    let err = o.push(h.events[0].clone()).unwrap_err();
    assert!(err.to_string().contains("index 0"), "{err}");
}

#[test]
fn the_generated_histories_exercise_the_live_detectors() {
    // Guards the property above against a generator that finds nothing.
    let mut seen = std::collections::BTreeSet::new();
    let mut x: u64 = 12345;
    for _ in 0..60 {
        let steps: Vec<(u8, u8, u8, u8)> = (0..120)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let b = (x >> 24).to_le_bytes();
                (b[0], b[1], b[2], b[3])
            })
            .collect();
        let o = online(&common::random_history(&steps), &CheckOpts::default());
        seen.extend(o.counts().keys().copied());
    }
    for kind in [
        "inconsistent-offsets",
        "duplicate",
        "G1a",
        "int-nonmonotonic-poll",
    ] {
        assert!(seen.contains(kind), "{kind} never found live: {seen:?}");
    }
}

#[test]
fn a_followed_file_is_checked_as_it_grows_and_ends_as_the_offline_check() {
    use gregor_checkers::online::Follower;
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let mut h = Hb::new();
    h.assign(0, &[0]);
    h.send(1, 0, 1, 0);
    h.send(2, 0, 2, 0);
    h.poll(0, &[(0, &[(0, 1)])]);
    let lines: Vec<String> = h.events.iter().map(|e| e.to_json() + "\n").collect();
    let mut f = std::fs::File::create(&path).unwrap();
    let mut fol = Follower::open(&path, CheckOpts::default()).unwrap();
    // Half a line: nothing taken yet.
    f.write_all(&lines[0].as_bytes()[..10]).unwrap();
    assert_eq!(fol.poll(true).unwrap().events, 0);
    f.write_all(&lines[0].as_bytes()[10..]).unwrap();
    for l in &lines[1..] {
        f.write_all(l.as_bytes()).unwrap();
    }
    f.write_all(b"{\"index\":8,").unwrap();
    // The second acknowledged send at offset 0 is the bad event.
    let step = fol.poll(true).unwrap();
    assert_eq!(
        (step.events, step.bad.clone()),
        (6, vec!["inconsistent-offsets"])
    );
    let (_, tail) = Follower::open(&path, CheckOpts::default())
        .map(|mut f| {
            f.poll(true).unwrap();
            f
        })
        .unwrap()
        .finish();
    assert!(
        tail.unwrap()
            .ends_with(":9: last line is incomplete and was ignored"),
        "after a fail-fast stop, only the torn last line is a tail"
    );
    let step = fol.poll(true).unwrap();
    assert_eq!(step.events, 2, "the rest after a fail-fast stop");
    let (o, tail) = fol.finish();
    assert!(tail
        .unwrap()
        .ends_with(":9: last line is incomplete and was ignored"));
    assert_eq!(o.finish(), check(&h.history(), &CheckOpts::default()));
}

#[test]
fn a_followed_file_with_a_malformed_line_is_an_error_naming_it() {
    use gregor_checkers::online::Follower;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let mut h = Hb::new();
    h.send(1, 0, 1, 0);
    let text = format!("{}\n\n{}\n", h.events[0].to_json(), h.events[0].to_json());
    std::fs::write(&path, text).unwrap();
    let mut fol = Follower::open(&path, CheckOpts::default()).unwrap();
    let err = fol.poll(false).unwrap_err().to_string();
    assert!(
        err.contains("history.jsonl:3:") && err.contains("index 0"),
        "{err}"
    );
}

#[test]
fn a_live_check_fed_by_a_channel_reports_while_it_runs_and_ends_as_offline() {
    use gregor_checkers::online::Live;
    let mut h = Hb::new();
    h.send(0, 0, 1, 0);
    h.send(1, 0, 2, 0);
    h.poll(2, &[(0, &[(0, 1)])]);
    let (tx, rx) = std::sync::mpsc::channel();
    let live = Live::spawn(rx, CheckOpts::default());
    for e in &h.events[..4] {
        tx.send(e.clone()).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while live.status().events < 4 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let st = live.status();
    assert_eq!(st.first_bad, Some(("inconsistent-offsets", 3)));
    assert_eq!(st.summary(), "inconsistent-offsets 1");
    for e in &h.events[4..] {
        tx.send(e.clone()).unwrap();
    }
    drop(tx);
    let c = live.join();
    assert_eq!(c.finish(), check(&h.history(), &CheckOpts::default()));
}

#[test]
fn detectors_only_find_the_same_live_anomalies_without_keeping_events() {
    let mut x: u64 = 777;
    for _ in 0..30 {
        let steps: Vec<(u8, u8, u8, u8)> = (0..150)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let b = (x >> 24).to_le_bytes();
                (b[0], b[1], b[2], b[3])
            })
            .collect();
        let events = common::random_history(&steps);
        let full = online(&events, &CheckOpts::default());
        let mut lean = OnlineChecker::detectors_only(CheckOpts::default());
        for e in &events {
            lean.push(e.clone()).unwrap();
        }
        assert_eq!(lean.counts(), full.counts());
        assert_eq!(lean.first_bad(), full.first_bad());
        assert_eq!(lean.len(), events.len());
        assert!(lean.events().is_empty());
    }
}
