//! Property tests against a reference queue model.
//!
//! The model is a set of per-key logs with concurrent producer and consumer
//! workers. It produces only *valid* histories: acknowledged sends land at
//! increasing (sometimes sparse) offsets, failed sends and aborted
//! transactions never land, indeterminate ones may; consumers read
//! contiguous runs from their positions, assigns keep positions of kept keys,
//! workers crash (`info`) and continue under a new process number, and under
//! `subscribe` rebalances move positions anywhere. Final reads by a fresh
//! process read every key from the start.
//!
//! Properties: the checker finds nothing bad in any model history, and each
//! mutation that injects an anomaly is found.

mod common;

use std::collections::BTreeMap;

use common::Hb;
use gregor_checkers::{check, CheckOpts, CheckResult, Validity};
use gregor_history::{Event, EventType, History, Key, Mop, Offset, Val, Value, F};
use proptest::prelude::*;

const KEYS: u64 = 3;
const WORKERS: usize = 4;
const FINAL_CHUNK: usize = 3;

#[derive(Clone, Debug)]
enum Pending {
    Send(Key, Val),
    Poll,
    Txn(Vec<(Key, Val)>, bool),
    Keys(F, Vec<Key>, u8),
}

struct Worker {
    process: u64,
    /// Key -> index into that key's log of the next record to read.
    pos: BTreeMap<Key, usize>,
    pending: Option<Pending>,
}

/// One random step: which worker acts, what it does, and a random byte.
pub type Step = (usize, u8, u8);

pub struct Model {
    pub hb: Hb,
    logs: Vec<Vec<(Offset, Val)>>,
    next_off: Vec<Offset>,
    next_val: Val,
    workers: Vec<Worker>,
    subscribe: bool,
}

impl Model {
    pub fn run(steps: &[Step], subscribe: bool) -> Model {
        let mut m = Model {
            hb: Hb::new(),
            logs: vec![Vec::new(); KEYS as usize],
            next_off: vec![0; KEYS as usize],
            next_val: 0,
            workers: (0..WORKERS)
                .map(|p| Worker {
                    process: p as u64,
                    pos: BTreeMap::new(),
                    pending: None,
                })
                .collect(),
            subscribe,
        };
        for &(w, action, byte) in steps {
            m.step(w % WORKERS, action, byte);
        }
        m.final_reads();
        m
    }

    fn append(&mut self, k: Key, v: Val, gap: bool) -> Offset {
        let o = self.next_off[k as usize];
        self.next_off[k as usize] += 1 + u64::from(gap);
        self.logs[k as usize].push((o, v));
        o
    }

    fn fresh(&mut self) -> Val {
        self.next_val += 1;
        self.next_val
    }

    /// Reads contiguous runs from the worker's positions.
    fn read(&mut self, w: usize, byte: u8) -> Vec<(Key, Vec<(Offset, Val)>)> {
        let mut out = Vec::new();
        let keys: Vec<Key> = self.workers[w].pos.keys().copied().collect();
        for (i, k) in keys.into_iter().enumerate() {
            let take = ((byte as usize) >> i) % 4;
            let pos = self.workers[w].pos[&k];
            let log = &self.logs[k as usize];
            let end = (pos + take).min(log.len());
            if end > pos {
                out.push((k, log[pos..end].to_vec()));
                self.workers[w].pos.insert(k, end);
            }
        }
        out
    }

    fn crash(&mut self, w: usize) {
        self.workers[w].process += WORKERS as u64;
        self.workers[w].pos.clear();
    }

    fn step(&mut self, w: usize, action: u8, byte: u8) {
        let p = self.workers[w].process;
        match self.workers[w].pending.take() {
            None => {
                let (f, inv, pending) = match action % 100 {
                    0..=34 => {
                        let (k, v) = (byte as u64 % KEYS, self.fresh());
                        (
                            F::Send,
                            vec![Mop::Send {
                                key: k,
                                value: v,
                                offset: None,
                            }],
                            Pending::Send(k, v),
                        )
                    }
                    35..=64 => (F::Poll, vec![Mop::Poll { reads: None }], Pending::Poll),
                    65..=74 => {
                        let n = 1 + byte as usize % 3;
                        let sends: Vec<(Key, Val)> = (0..n)
                            .map(|i| ((byte as u64 >> i) % KEYS, self.fresh()))
                            .collect();
                        let poll_first = byte & 0x80 != 0;
                        let mut inv: Vec<Mop> = sends
                            .iter()
                            .map(|&(key, value)| Mop::Send {
                                key,
                                value,
                                offset: None,
                            })
                            .collect();
                        if poll_first {
                            inv.insert(0, Mop::Poll { reads: None });
                        } else {
                            inv.push(Mop::Poll { reads: None });
                        }
                        (F::Txn, inv, Pending::Txn(sends, poll_first))
                    }
                    _ => {
                        let keys: Vec<Key> = (0..KEYS).filter(|k| byte & (1 << k) != 0).collect();
                        let f = if self.subscribe {
                            F::Subscribe
                        } else {
                            F::Assign
                        };
                        (f.clone(), vec![], Pending::Keys(f, keys, byte))
                    }
                };
                let value = match &pending {
                    Pending::Keys(_, keys, _) => Value::Keys(keys.clone()),
                    _ => Value::Mops(inv),
                };
                self.hb.push(p, EventType::Invoke, f, value);
                self.workers[w].pending = Some(pending);
            }
            Some(Pending::Send(k, v)) => {
                let inv = vec![Mop::Send {
                    key: k,
                    value: v,
                    offset: None,
                }];
                match action % 10 {
                    0 => {
                        self.hb.push(p, EventType::Fail, F::Send, Value::Mops(inv));
                    }
                    1 => {
                        let mut done = inv;
                        if byte.is_multiple_of(2) {
                            let o = self.append(k, v, false);
                            // Sometimes the crashed client had learned the
                            // offset: its completion reports it.
                            if byte.is_multiple_of(4) {
                                done = vec![Mop::Send {
                                    key: k,
                                    value: v,
                                    offset: Some(o),
                                }];
                            }
                        }
                        self.hb.push(p, EventType::Info, F::Send, Value::Mops(done));
                        self.crash(w);
                    }
                    _ => {
                        let o = self.append(k, v, byte.is_multiple_of(5));
                        let done = vec![Mop::Send {
                            key: k,
                            value: v,
                            offset: Some(o),
                        }];
                        self.hb.push(p, EventType::Ok, F::Send, Value::Mops(done));
                    }
                }
            }
            Some(Pending::Poll) => {
                if action.is_multiple_of(17) {
                    self.hb.push(
                        p,
                        EventType::Info,
                        F::Poll,
                        Value::Mops(vec![Mop::Poll { reads: None }]),
                    );
                    self.crash(w);
                } else {
                    if self.subscribe && action.is_multiple_of(7) {
                        // A rebalance moved this consumer's positions.
                        let keys: Vec<Key> = self.workers[w].pos.keys().copied().collect();
                        for k in keys {
                            let len = self.logs[k as usize].len();
                            self.workers[w].pos.insert(k, byte as usize % (len + 1));
                        }
                    }
                    let reads = self.read(w, byte);
                    self.hb.push(
                        p,
                        EventType::Ok,
                        F::Poll,
                        Value::Mops(vec![Mop::Poll { reads: Some(reads) }]),
                    );
                }
            }
            Some(Pending::Txn(sends, poll_first)) => {
                let mut inv: Vec<Mop> = sends
                    .iter()
                    .map(|&(key, value)| Mop::Send {
                        key,
                        value,
                        offset: None,
                    })
                    .collect();
                let at = if poll_first { 0 } else { inv.len() };
                inv.insert(at, Mop::Poll { reads: None });
                match action % 8 {
                    0 => {
                        self.hb.push(p, EventType::Fail, F::Txn, Value::Mops(inv));
                    }
                    1 => {
                        let mut done = inv;
                        if byte.is_multiple_of(2) {
                            let offs: Vec<Offset> = sends
                                .iter()
                                .map(|&(k, v)| self.append(k, v, false))
                                .collect();
                            // Sometimes the crashed txn reports its offsets.
                            if byte.is_multiple_of(4) {
                                let mut i = 0;
                                for m in done.iter_mut() {
                                    if let Mop::Send { offset, .. } = m {
                                        *offset = Some(offs[i]);
                                        i += 1;
                                    }
                                }
                            }
                        }
                        self.hb.push(p, EventType::Info, F::Txn, Value::Mops(done));
                        self.crash(w);
                    }
                    _ => {
                        // Reads see only committed records; sends land at commit.
                        let reads = self.read(w, byte);
                        let mut done: Vec<Mop> = sends
                            .iter()
                            .map(|&(k, v)| Mop::Send {
                                key: k,
                                value: v,
                                offset: Some(self.append(k, v, false)),
                            })
                            .collect();
                        for k in 0..KEYS {
                            // The commit marker.
                            if sends.iter().any(|s| s.0 == k) {
                                self.next_off[k as usize] += 1;
                            }
                        }
                        done.insert(at, Mop::Poll { reads: Some(reads) });
                        self.hb.push(p, EventType::Ok, F::Txn, Value::Mops(done));
                    }
                }
            }
            Some(Pending::Keys(f, keys, byte)) => {
                let wk = &mut self.workers[w];
                wk.pos.retain(|k, _| keys.contains(k));
                for &k in &keys {
                    let len = self.logs[k as usize].len();
                    let start = if byte & 0x40 != 0 { 0 } else { len };
                    wk.pos.entry(k).or_insert(start);
                }
                if f == F::Subscribe && byte & 0x20 != 0 {
                    // Rebalance on subscribe: positions of kept keys move.
                    for (k, pos) in wk.pos.iter_mut() {
                        *pos = (byte as usize >> 1) % (self.logs[*k as usize].len() + 1);
                    }
                }
                self.hb.push(p, EventType::Ok, f, Value::Keys(keys));
            }
        }
    }

    fn final_reads(&mut self) {
        let p = 1_000_000;
        let all: Vec<Key> = (0..KEYS).collect();
        self.hb
            .push(p, EventType::Invoke, F::Assign, Value::Keys(all.clone()));
        self.hb.push(p, EventType::Ok, F::Assign, Value::Keys(all));
        for k in 0..KEYS {
            let log = self.logs[k as usize].clone();
            for chunk in log.chunks(FINAL_CHUNK) {
                self.hb.push(
                    p,
                    EventType::Invoke,
                    F::Poll,
                    Value::Mops(vec![Mop::Poll { reads: None }]),
                );
                let reads = Some(vec![(k, chunk.to_vec())]);
                self.hb.push(
                    p,
                    EventType::Ok,
                    F::Poll,
                    Value::Mops(vec![Mop::Poll { reads }]),
                );
            }
        }
    }
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((0..WORKERS, any::<u8>(), any::<u8>()), 20..250)
}

fn opts(subscribe: bool) -> CheckOpts {
    CheckOpts {
        subscribe,
        ..Default::default()
    }
}

fn events(m: &Model) -> Vec<Event> {
    m.hb.events.clone()
}

fn run(ev: Vec<Event>, subscribe: bool) -> CheckResult {
    let ev: Vec<Event> = ev
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e.index = i as u64;
            e
        })
        .collect();
    check(&History::new(ev), &opts(subscribe))
}

/// `(event position, key, pair position)` of every read pair of ok polls.
fn read_sites(ev: &[Event]) -> Vec<(usize, usize, usize, Key, Offset, Val)> {
    let mut out = Vec::new();
    for (i, e) in ev.iter().enumerate() {
        if e.kind != EventType::Ok {
            continue;
        }
        for (mi, m) in e.mops().iter().enumerate() {
            if let Mop::Poll { reads: Some(r) } = m {
                for (ki, (k, pairs)) in r.iter().enumerate() {
                    for &(o, v) in pairs {
                        out.push((i, mi, ki, *k, o, v));
                    }
                }
            }
        }
    }
    out
}

fn reads_mut(e: &mut Event, mi: usize, ki: usize) -> &mut Vec<(Offset, Val)> {
    match &mut e.value {
        Value::Mops(m) => match &mut m[mi] {
            Mop::Poll { reads: Some(r) } => &mut r[ki].1,
            _ => unreachable!("a read site points at a poll"),
        },
        _ => unreachable!("a read site points at mops"),
    }
}

/// Acknowledged sends: (event position, key, value, offset).
fn acked(ev: &[Event]) -> Vec<(usize, Key, Val, Offset)> {
    let mut out = Vec::new();
    for (i, e) in ev.iter().enumerate() {
        if e.kind == EventType::Ok {
            for m in e.mops() {
                if let Mop::Send {
                    key,
                    value,
                    offset: Some(o),
                } = m
                {
                    out.push((i, *key, *value, *o));
                }
            }
        }
    }
    out
}

fn remove_reads_of(ev: &mut [Event], k: Key, v: Val) {
    for e in ev.iter_mut() {
        if let Value::Mops(ms) = &mut e.value {
            for m in ms {
                if let Mop::Poll { reads: Some(r) } = m {
                    for (kk, pairs) in r.iter_mut() {
                        if *kk == k {
                            pairs.retain(|p| p.1 != v);
                        }
                    }
                }
            }
        }
    }
}

fn assert_found(res: &CheckResult, kind: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        res.anomalies.contains_key(kind),
        "{kind} not found; found {:?}",
        res.anomaly_types
    );
    prop_assert!(res.bad_types.contains(&kind.to_string()) || kind == "int-send-skip");
    prop_assert_eq!(res.valid, Validity::False);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, max_global_rejects: 4096, ..ProptestConfig::default() })]

    #[test]
    fn model_histories_under_assign_have_no_bad_anomalies(s in steps()) {
        let m = Model::run(&s, false);
        let res = run(events(&m), false);
        prop_assert!(res.bad_types.is_empty(), "false positive: {:#?}", res.anomalies);
        prop_assert_ne!(res.valid, Validity::False);
        prop_assert_eq!(res.stats.lost + res.stats.unseen, 0);
    }

    #[test]
    fn model_histories_under_subscribe_have_no_bad_anomalies(s in steps()) {
        let m = Model::run(&s, true);
        let res = run(events(&m), true);
        prop_assert!(res.bad_types.is_empty(), "false positive: {:#?}", res.anomalies);
        prop_assert_ne!(res.valid, Validity::False);
    }

    #[test]
    fn dropping_every_read_of_an_acknowledged_value_below_the_end_is_a_lost_write(s in steps(), pick in any::<prop::sample::Index>()) {
        let m = Model::run(&s, false);
        let mut ev = events(&m);
        let max_read: BTreeMap<Key, Offset> = read_sites(&ev).iter().fold(BTreeMap::new(), |mut acc, x| {
            let e = acc.entry(x.3).or_insert(0);
            *e = (*e).max(x.4);
            acc
        });
        let cands: Vec<_> = acked(&ev).into_iter().filter(|a| max_read.get(&a.1).is_some_and(|&m| a.3 < m)).collect();
        prop_assume!(!cands.is_empty());
        let (_, k, v, _) = cands[pick.index(cands.len())];
        remove_reads_of(&mut ev, k, v);
        assert_found(&run(ev, false), "lost-write")?;
    }

    #[test]
    fn dropping_every_read_of_the_last_acknowledged_value_makes_it_unseen(s in steps(), pick in any::<prop::sample::Index>()) {
        let m = Model::run(&s, false);
        let mut ev = events(&m);
        let cands: Vec<(Key, Val)> = (0..KEYS)
            .filter_map(|k| m.logs[k as usize].last().map(|&(o, v)| (k, o, v)))
            .filter(|&(k, o, v)| acked(&ev).iter().any(|a| (a.1, a.2, a.3) == (k, v, o)))
            .map(|(k, _, v)| (k, v))
            .collect();
        prop_assume!(!cands.is_empty());
        let (k, v) = cands[pick.index(cands.len())];
        remove_reads_of(&mut ev, k, v);
        assert_found(&run(ev, false), "unseen")?;
    }

    #[test]
    fn a_value_read_again_at_a_new_offset_is_a_duplicate(s in steps(), pick in any::<prop::sample::Index>(), sub in any::<bool>()) {
        let m = Model::run(&s, sub);
        let mut ev = events(&m);
        let sites = read_sites(&ev);
        prop_assume!(!sites.is_empty());
        let (_, _, _, k, _, v) = sites[pick.index(sites.len())];
        // Append it after the last final read of its key.
        let last = sites.iter().filter(|x| x.3 == k).max_by_key(|x| (x.0, x.4)).copied();
        let (ei, mi, ki, _, o, _) = last.unwrap_or(sites[0]);
        reads_mut(&mut ev[ei], mi, ki).push((o + 1, v));
        assert_found(&run(ev, sub), "duplicate")?;
    }

    #[test]
    fn another_value_at_an_acknowledged_offset_is_an_inconsistent_offset(s in steps(), pick in any::<prop::sample::Index>(), sub in any::<bool>()) {
        let m = Model::run(&s, sub);
        let mut ev = events(&m);
        let ack = acked(&ev);
        let sites: Vec<_> = read_sites(&ev).into_iter().filter(|x| ack.iter().any(|a| (a.1, a.2, a.3) == (x.3, x.5, x.4))).collect();
        prop_assume!(!sites.is_empty());
        let (ei, mi, ki, _, o, v) = sites[pick.index(sites.len())];
        for p in reads_mut(&mut ev[ei], mi, ki).iter_mut() {
            if *p == (o, v) {
                p.1 = 999_999;
            }
        }
        assert_found(&run(ev, sub), "inconsistent-offsets")?;
    }

    #[test]
    fn swapping_two_records_within_one_poll_is_an_int_nonmonotonic_poll(s in steps(), pick in any::<prop::sample::Index>(), sub in any::<bool>()) {
        let m = Model::run(&s, sub);
        let mut ev = events(&m);
        let mut multi = Vec::new();
        for (ei, mi, ki, ..) in read_sites(&ev) {
            if reads_mut(&mut ev[ei], mi, ki).len() >= 2 && !multi.contains(&(ei, mi, ki)) {
                multi.push((ei, mi, ki));
            }
        }
        prop_assume!(!multi.is_empty());
        let (ei, mi, ki) = multi[pick.index(multi.len())];
        reads_mut(&mut ev[ei], mi, ki).swap(0, 1);
        assert_found(&run(ev, sub), "int-nonmonotonic-poll")?;
    }

    #[test]
    fn dropping_a_record_inside_one_poll_is_an_int_poll_skip(s in steps(), pick in any::<prop::sample::Index>(), sub in any::<bool>()) {
        let m = Model::run(&s, sub);
        let mut ev = events(&m);
        // A record is only known to exist if something besides this read
        // shows it: pick polls whose second record was acknowledged.
        let ack = acked(&ev);
        let mut multi = Vec::new();
        for (ei, mi, ki, k, ..) in read_sites(&ev) {
            let pairs = reads_mut(&mut ev[ei], mi, ki);
            if pairs.len() >= 3 && ack.iter().any(|a| (a.1, a.3, a.2) == (k, pairs[1].0, pairs[1].1)) && !multi.contains(&(ei, mi, ki)) {
                multi.push((ei, mi, ki));
            }
        }
        prop_assume!(!multi.is_empty());
        let (ei, mi, ki) = multi[pick.index(multi.len())];
        reads_mut(&mut ev[ei], mi, ki).remove(1);
        assert_found(&run(ev, sub), "int-poll-skip")?;
    }

    #[test]
    fn a_consumer_skipping_the_start_of_its_next_poll_is_a_poll_skip(s in steps(), pick in any::<prop::sample::Index>()) {
        let m = Model::run(&s, false);
        let mut ev = events(&m);
        // The final reader's second chunk of a key with at least 5 records.
        let keys: Vec<Key> = (0..KEYS).filter(|&k| m.logs[k as usize].len() >= 5).collect();
        prop_assume!(!keys.is_empty());
        let k = keys[pick.index(keys.len())];
        let finals: Vec<usize> = (0..ev.len())
            .filter(|&i| ev[i].process == gregor_history::Process::Client(1_000_000) && ev[i].kind == EventType::Ok)
            .filter(|&i| matches!(ev[i].mops().first(), Some(Mop::Poll { reads: Some(r) }) if r[0].0 == k))
            .collect();
        let first = reads_mut(&mut ev[finals[1]], 0, 0)[0];
        prop_assume!(acked(&ev).iter().any(|a| (a.1, a.3, a.2) == (k, first.0, first.1)));
        reads_mut(&mut ev[finals[1]], 0, 0).remove(0);
        let res = run(ev, false);
        assert_found(&res, "poll-skip")?;
        // Under subscribe the same skip is allowed.
        prop_assert!(!run(res_events(&m, k, &finals), true).bad_types.contains(&"poll-skip".to_string()));
    }

    #[test]
    fn a_consumer_rereading_its_last_poll_is_a_nonmonotonic_poll(s in steps(), pick in any::<prop::sample::Index>()) {
        let m = Model::run(&s, false);
        let ev = events(&m);
        let sites = read_sites(&ev);
        prop_assume!(!sites.is_empty());
        let ei = sites[pick.index(sites.len())].0;
        // Insert a copy of that poll right after it, by the same process.
        let mut ev2 = ev[..=ei].to_vec();
        let mut inv = ev[ei].clone();
        inv.kind = EventType::Invoke;
        inv.value = Value::Mops(common::invocation_of(ev[ei].mops()));
        ev2.push(inv);
        ev2.push(ev[ei].clone());
        ev2.extend_from_slice(&ev[ei + 1..]);
        assert_found(&run(ev2, false), "nonmonotonic-poll")?;
    }

    #[test]
    fn reading_a_failed_send_is_g1a(s in steps(), sub in any::<bool>()) {
        let m = Model::run(&s, sub);
        let mut ev = events(&m);
        let failed: Vec<(Key, Val)> = ev.iter().filter(|e| e.kind == EventType::Fail).flat_map(|e| e.mops().iter().filter_map(|m| match m {
            Mop::Send { key, value, .. } => Some((*key, *value)),
            _ => None,
        }).collect::<Vec<_>>()).collect();
        prop_assume!(!failed.is_empty());
        let (k, v) = failed[0];
        let sites = read_sites(&ev);
        let last = sites.iter().filter(|x| x.3 == k).max_by_key(|x| (x.0, x.4)).copied();
        prop_assume!(last.is_some());
        let (ei, mi, ki, _, o, _) = last.unwrap_or(sites[0]);
        reads_mut(&mut ev[ei], mi, ki).push((o + 1, v));
        assert_found(&run(ev, sub), "G1a")?;
    }

    #[test]
    fn a_transaction_polling_its_own_send_is_a_precommitted_read(s in steps(), sub in any::<bool>()) {
        let m = Model::run(&s, sub);
        let mut ev = events(&m);
        let t = ev.iter().position(|e| e.kind == EventType::Ok && e.f == F::Txn);
        prop_assume!(t.is_some());
        let t = t.unwrap_or(0);
        if let Value::Mops(ms) = &mut ev[t].value {
            let sent = ms.iter().find_map(|m| match m {
                Mop::Send { key, value, offset: Some(o) } => Some((*key, *o, *value)),
                _ => None,
            });
            if let Some((k, o, v)) = sent {
                ms.push(Mop::Poll { reads: Some(vec![(k, vec![(o, v)])]) });
            }
        }
        assert_found(&run(ev, sub), "precommitted-read")?;
    }

    #[test]
    fn swapping_the_offsets_of_a_producers_consecutive_sends_is_a_nonmonotonic_send(s in steps(), sub in any::<bool>()) {
        let m = Model::run(&s, sub);
        let mut ev = events(&m);
        // Two single-send ok ops by one process to one key with no other
        // send of that key by that process between them.
        let mut last: BTreeMap<(gregor_history::Process, Key), (usize, bool)> = BTreeMap::new();
        let mut pair = None;
        for (i, e) in ev.iter().enumerate() {
            if let (EventType::Ok, Value::Keys(held)) = (e.kind, &e.value) {
                // An assign forgets the send positions of keys it drops.
                last.retain(|(p, k), _| *p != e.process || held.contains(k));
            }
            if !matches!(e.kind, EventType::Ok | EventType::Info) || !matches!(e.f, F::Send | F::Txn) {
                continue;
            }
            let single = e.kind == EventType::Ok && e.f == F::Send && e.mops().len() == 1;
            for m in e.mops() {
                if let Mop::Send { key, .. } = m {
                    if let Some(&(a, true)) = last.get(&(e.process, *key)) {
                        if single && pair.is_none() {
                            pair = Some((a, i));
                        }
                    }
                    last.insert((e.process, *key), (i, single));
                }
            }
        }
        prop_assume!(pair.is_some());
        let (a, b) = pair.unwrap_or((0, 0));
        let off = |e: &Event| match e.mops() { [Mop::Send { offset, .. }] => *offset, _ => None };
        let (oa, ob) = (off(&ev[a]), off(&ev[b]));
        for (i, o) in [(a, ob), (b, oa)] {
            if let Value::Mops(ms) = &mut ev[i].value {
                if let Mop::Send { offset, .. } = &mut ms[0] {
                    *offset = o;
                }
            }
        }
        assert_found(&run(ev, sub), "nonmonotonic-send")?;
    }
}

/// The poll-skip mutation again (for the subscribe comparison).
fn res_events(m: &Model, _k: Key, finals: &[usize]) -> Vec<Event> {
    let mut ev = events(m);
    reads_mut(&mut ev[finals[1]], 0, 0).remove(0);
    ev
}
