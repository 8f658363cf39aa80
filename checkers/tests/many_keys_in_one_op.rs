//! An op that reads many keys (the checker switches from a list to an
//! index of the op's own reads at the 8th key) and then reads one of the
//! first keys again in a later micro-op: the second read continues where
//! the op itself left off, so nothing is skipped. Found on Kafka by the
//! workload's transactional polls: every key's earlier reads were missing
//! from the index, so the second read was compared with the previous op's
//! position and reported as a `poll-skip`.

use gregor_checkers::{check, CheckOpts, Validity};
use gregor_history::History;

fn history(second_read_offset: u64) -> History {
    let mut lines = Vec::new();
    let mut t = 0;
    let mut push = |lines: &mut Vec<String>, p: u32, ty: &str, f: &str, v: String| {
        lines.push(format!(
            r#"{{"index":{},"time":{t},"process":{p},"type":"{ty}","f":"{f}","value":{v}}}"#,
            lines.len()
        ));
        t += 1000;
    };
    for k in 0..10u64 {
        for o in 0..4u64 {
            let v = k * 10 + o;
            push(
                &mut lines,
                1,
                "invoke",
                "send",
                format!(r#"[["send",{k},{v}]]"#),
            );
            push(
                &mut lines,
                1,
                "ok",
                "send",
                format!(r#"[["send",{k},[{o},{v}]]]"#),
            );
        }
    }
    let first: Vec<String> = (0..10u64)
        .map(|k| format!(r#""{k}":[[0,{}]]"#, k * 10))
        .collect();
    push(&mut lines, 0, "invoke", "poll", r#"[["poll"]]"#.into());
    push(
        &mut lines,
        0,
        "ok",
        "poll",
        format!(r#"[["poll",{{{}}}]]"#, first.join(",")),
    );
    let second: Vec<String> = (0..10u64)
        .map(|k| format!(r#""{k}":[[1,{}],[2,{}]]"#, k * 10 + 1, k * 10 + 2))
        .collect();
    let o = second_read_offset;
    push(
        &mut lines,
        0,
        "invoke",
        "txn",
        r#"[["poll"],["poll"]]"#.into(),
    );
    push(
        &mut lines,
        0,
        "ok",
        "txn",
        format!(
            r#"[["poll",{{{}}}],["poll",{{"0":[[{o},{o}]]}}]]"#,
            second.join(",")
        ),
    );
    let text = lines.join("\n") + "\n";
    History::parse_str(&text).expect("a well-formed history")
}

#[test]
fn a_later_poll_of_a_many_key_op_continues_where_the_op_left_off() {
    let res = check(&history(3), &CheckOpts::default());
    // Offsets 3 of keys 1-9 are never read (unseen); nothing else is wrong.
    assert_eq!(res.anomaly_types, vec!["unseen".to_string()]);
    assert_eq!(res.valid, Validity::False);
}

#[test]
fn a_real_skip_inside_a_many_key_op_is_still_found() {
    // key 0: the op read offsets 1, 2, then 4 in its second poll: 3 skipped.
    let mut h = history(4);
    // offset 4 of key 0 must exist for a skip: add its send at the front.
    let extra = History::parse_str(
        "{\"index\":0,\"time\":0,\"process\":2,\"type\":\"invoke\",\"f\":\"send\",\"value\":[[\"send\",0,4]]}\n\
         {\"index\":1,\"time\":1,\"process\":2,\"type\":\"ok\",\"f\":\"send\",\"value\":[[\"send\",0,[4,4]]]}\n",
    )
    .unwrap();
    let mut events = extra.events;
    events.append(&mut h.events);
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i as u64;
    }
    h.events = events;
    let res = check(&h, &CheckOpts::default());
    assert!(
        res.anomaly_types.iter().any(|t| t == "int-poll-skip"),
        "{:?}",
        res.anomaly_types
    );
}
