//! The generic WGL linearizability checker on classic register histories.

use gregor_checkers::linear::wgl::{self, Entry, Linearizability};
use gregor_checkers::linear::{CasOp, CasRegister, Model, Register, RegisterOp};

fn op<O>(id: u64, op: O, call: u64, ret: Option<u64>) -> Entry<O> {
    Entry { id, op, call, ret }
}

fn cas(entries: &[Entry<CasOp>]) -> Linearizability<CasRegister> {
    wgl::check(&CasRegister(None), entries, 1_000_000)
}

#[test]
fn a_sequential_write_then_read_is_linearizable() {
    let h = [
        op(0, CasOp::Write(1), 0, Some(1)),
        op(1, CasOp::Read(Some(1)), 2, Some(3)),
    ];
    assert_eq!(cas(&h), Linearizability::Linearizable);
}

#[test]
fn a_stale_read_after_a_completed_write_is_not() {
    let h = [
        op(0, CasOp::Write(1), 0, Some(1)),
        op(1, CasOp::Read(None), 2, Some(3)),
    ];
    let Linearizability::Nonlinearizable(f) = cas(&h) else {
        panic!("must be nonlinearizable")
    };
    assert_eq!(f.stuck, 1, "the stale read is the op that cannot be placed");
    assert_eq!(f.linearized, vec![0]);
    assert_eq!(f.state, CasRegister(Some(1)));
}

#[test]
fn a_read_concurrent_with_a_write_may_see_either_value() {
    for seen in [None, Some(1)] {
        let h = [
            op(0, CasOp::Write(1), 0, Some(3)),
            op(1, CasOp::Read(seen), 1, Some(2)),
        ];
        assert_eq!(cas(&h), Linearizability::Linearizable, "read {seen:?}");
    }
}

/// Knossos's classic: once a read sees the new value, a later read may not
/// see the old one, even though the write is still in flight.
#[test]
fn reading_new_then_old_during_one_write_is_not_linearizable() {
    let h = [
        op(0, CasOp::Write(0), 0, Some(1)),
        op(1, CasOp::Write(1), 2, Some(10)),
        op(2, CasOp::Read(Some(1)), 3, Some(4)),
        op(3, CasOp::Read(Some(0)), 5, Some(6)),
    ];
    let Linearizability::Nonlinearizable(f) = cas(&h) else {
        panic!("must be nonlinearizable")
    };
    assert_eq!(f.stuck, 3);
    // The same shape with the reads the other way round is fine.
    let h = [
        op(0, CasOp::Write(0), 0, Some(1)),
        op(1, CasOp::Write(1), 2, Some(10)),
        op(2, CasOp::Read(Some(0)), 3, Some(4)),
        op(3, CasOp::Read(Some(1)), 5, Some(6)),
    ];
    assert_eq!(cas(&h), Linearizability::Linearizable);
}

#[test]
fn two_concurrent_compare_and_sets_from_the_same_value_cannot_both_succeed() {
    let h = [
        op(0, CasOp::Write(0), 0, Some(1)),
        op(1, CasOp::Cas(0, 1), 2, Some(5)),
        op(2, CasOp::Cas(0, 2), 3, Some(6)),
    ];
    assert!(matches!(cas(&h), Linearizability::Nonlinearizable(_)));
    let h = [
        op(0, CasOp::Write(0), 0, Some(1)),
        op(1, CasOp::Cas(0, 1), 2, Some(5)),
        op(2, CasOp::CasFailed(0, 2), 3, Some(6)),
        op(3, CasOp::Read(Some(1)), 7, Some(8)),
    ];
    assert_eq!(cas(&h), Linearizability::Linearizable);
}

#[test]
fn an_indefinite_write_may_take_effect_late_or_never() {
    let late = [
        op(0, CasOp::Write(5), 0, None),
        op(1, CasOp::Read(None), 1, Some(2)),
        op(2, CasOp::Read(Some(5)), 100, Some(101)),
    ];
    assert_eq!(cas(&late), Linearizability::Linearizable);
    let never = [
        op(0, CasOp::Write(5), 0, None),
        op(1, CasOp::Read(None), 100, Some(101)),
    ];
    assert_eq!(cas(&never), Linearizability::Linearizable);
    let before_invoked = [
        op(1, CasOp::Read(Some(5)), 0, Some(1)),
        op(0, CasOp::Write(5), 2, None),
    ];
    assert!(matches!(
        cas(&before_invoked),
        Linearizability::Nonlinearizable(_)
    ));
}

#[test]
fn an_exhausted_budget_is_unknown_rather_than_a_verdict() {
    let h: Vec<Entry<CasOp>> = (0..40)
        .map(|i| op(i, CasOp::Write(i as i64), 0, Some(100)))
        .collect();
    let mut h = h;
    h.push(op(40, CasOp::Read(Some(-1)), 101, Some(102)));
    assert_eq!(
        wgl::check(&CasRegister(None), &h, 50),
        Linearizability::Unknown { steps: 50 }
    );
}

/// Brute force: some permutation of the ops respects real time (and may
/// drop indefinite ones) and the model.
fn brute<M: Model>(init: &M, h: &[Entry<M::Op>]) -> bool {
    fn go<M: Model>(state: &M, h: &[Entry<M::Op>], done: &mut Vec<bool>) -> bool {
        if h.iter()
            .zip(done.iter())
            .all(|(e, &d)| d || e.ret.is_none())
        {
            return true;
        }
        for i in 0..h.len() {
            if done[i] {
                continue;
            }
            // i may go next only if no pending op returned before i was called
            let blocked = h
                .iter()
                .zip(done.iter())
                .any(|(e, &d)| !d && e.ret.is_some_and(|r| r < h[i].call));
            if blocked {
                continue;
            }
            if let Some(next) = state.step(&h[i].op) {
                done[i] = true;
                if go(&next, h, done) {
                    return true;
                }
                done[i] = false;
            }
        }
        false
    }
    go(init, h, &mut vec![false; h.len()])
}

#[test]
fn random_small_histories_agree_with_brute_force() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let (mut lin, mut nonlin) = (0, 0);
    for _ in 0..3000 {
        let n = 1 + rnd(6) as usize;
        let mut h = Vec::new();
        for id in 0..n as u64 {
            let call = rnd(10);
            let ret = if rnd(6) == 0 {
                None
            } else {
                Some(call + 1 + rnd(5))
            };
            let o = match rnd(3) {
                0 => RegisterOp::Write(rnd(3)),
                _ => RegisterOp::Read(if rnd(4) == 0 { None } else { Some(rnd(3)) }),
            };
            let ret = if matches!(o, RegisterOp::Read(_)) {
                ret.or(Some(call + 1))
            } else {
                ret
            };
            h.push(op(id, o, call, ret));
        }
        let want = brute(&Register(None), &h);
        let got = wgl::check(&Register(None), &h, 1_000_000);
        assert_eq!(
            matches!(got, Linearizability::Linearizable),
            want,
            "history {h:?} gave {got:?}"
        );
        if want {
            lin += 1
        } else {
            nonlin += 1
        }
    }
    assert!(
        lin > 300 && nonlin > 300,
        "both verdicts exercised: {lin} / {nonlin}"
    );
}

/// Thousands of sequential writes and reads: the search is linear, and a
/// failure at the end keeps only the tail of the order it found.
#[test]
fn long_sequential_histories_are_checked_and_failures_keep_a_short_tail() {
    let mut h: Vec<Entry<RegisterOp>> = Vec::new();
    for i in 0..20_000u64 {
        let t = i * 4;
        h.push(op(2 * i, RegisterOp::Write(i), t, Some(t + 1)));
        h.push(op(2 * i + 1, RegisterOp::Read(Some(i)), t + 2, Some(t + 3)));
    }
    assert_eq!(
        wgl::check(&Register(None), &h, 1_000_000),
        Linearizability::Linearizable
    );
    h.push(op(99_999, RegisterOp::Read(Some(3)), 90_000, Some(90_001)));
    let Linearizability::Nonlinearizable(f) = wgl::check(&Register(None), &h, 1_000_000) else {
        panic!("a stale read at the end is nonlinearizable")
    };
    assert_eq!(f.stuck, 99_999);
    assert_eq!(f.depth, 40_000);
    assert_eq!(f.linearized.len(), wgl::FAILURE_TAIL);
    assert_eq!(f.linearized.last(), Some(&39_999));
}
