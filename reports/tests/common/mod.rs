//! Synthetic histories and hand-built check results for the report tests.
//!
//! The simulated run: `senders` workers send to `keys` keys, `pollers`
//! workers poll everything; a nemesis kills `broker-2` during
//! `[kill_s, start_s)`, during which sends are slow and often end in `info`
//! or `fail`. Everything is derived from a seeded LCG, so it is deterministic.

#![allow(dead_code)]

use std::collections::BTreeMap;

use gregor_checkers::{AnomalyGroup, CheckResult, Stats, Validity};
use gregor_history::History;

pub struct Sim {
    pub seed: u64,
    pub senders: u64,
    pub pollers: u64,
    pub keys: u64,
    pub ops_per_sender: u64,
    pub duration_s: f64,
    pub kill_s: f64,
    pub start_s: f64,
    /// Make one poll read a bogus value at an existing offset of key 2.
    pub inject_inconsistent: bool,
    /// Extra nemesis `info` events: (time s, f, value JSON).
    pub faults: Vec<(f64, &'static str, &'static str)>,
}

impl Default for Sim {
    fn default() -> Sim {
        Sim {
            seed: 1,
            senders: 2,
            pollers: 2,
            keys: 4,
            ops_per_sender: 300,
            duration_s: 10.0,
            kill_s: 4.0,
            start_s: 6.0,
            inject_inconsistent: false,
            faults: Vec::new(),
        }
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn unit(&mut self) -> f64 {
        self.next() as f64 / (1u64 << 31) as f64
    }
}

/// (time ns, tie-break, JSON without index)
type Ev = (u64, u64, String);

impl Sim {
    pub fn history(&self) -> History {
        History::parse_str(&self.jsonl()).expect("synthetic history parses")
    }

    pub fn jsonl(&self) -> String {
        let mut rng = Rng(self.seed);
        let mut evs: Vec<Ev> = Vec::new();
        let mut seq = 0u64;
        let mut push = |evs: &mut Vec<Ev>, t: u64, body: String| {
            seq += 1;
            evs.push((t, seq, body));
        };
        let s = |x: f64| (x * 1e9) as u64;
        let (kill, start) = (s(self.kill_s), s(self.start_s));
        let faulty = |t: u64| t >= kill && t < start;
        // Writes that landed: key -> [(visible time, value)].
        let mut log: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
        let gap = s(self.duration_s) / self.ops_per_sender.max(1);
        let mut value = 0u64;
        for w in 0..self.senders {
            let mut process = w;
            let mut t = w * gap / self.senders.max(1) + 1_000_000;
            for _ in 0..self.ops_per_sender {
                value += 1;
                let key = value % self.keys;
                let bad = faulty(t);
                let lat = if bad {
                    200_000_000 + rng.next() % 1_500_000_000
                } else {
                    2_000_000 + rng.next() % 18_000_000
                };
                let r = rng.unit();
                let kind = if bad && r < 0.3 {
                    "info"
                } else if (bad && r < 0.4) || r < 0.01 {
                    "fail"
                } else {
                    "ok"
                };
                let done = t + lat;
                let lands = kind == "ok" || (kind == "info" && rng.unit() < 0.5);
                if lands {
                    log.entry(key).or_default().push((done, value));
                }
                push(
                    &mut evs,
                    t,
                    format!(
                        r#""time":{t},"process":{process},"type":"invoke","f":"send","value":[["send",{key},{value}]]"#
                    ),
                );
                let off_placeholder = if kind == "ok" {
                    format!("[OFF:{key}:{value},{value}]")
                } else {
                    value.to_string()
                };
                let err = if kind == "ok" {
                    String::new()
                } else {
                    r#","error":"timeout""#.to_string()
                };
                push(
                    &mut evs,
                    done,
                    format!(
                        r#""time":{done},"process":{process},"type":"{kind}","f":"send","value":[["send",{key},{off_placeholder}]]{err}"#
                    ),
                );
                if kind == "info" {
                    process += self.senders + self.pollers;
                }
                t = done + gap / 2 + rng.next() % (gap / 2 + 1);
            }
        }
        // Offsets in landing order.
        let mut offsets: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        for (k, entries) in log.iter_mut() {
            entries.sort();
            for (i, (_, v)) in entries.iter().enumerate() {
                offsets.insert((*k, *v), i as u64);
            }
        }
        // Pollers.
        let end = s(self.duration_s) + 500_000_000;
        let mut injected = !self.inject_inconsistent;
        for p in 0..self.pollers {
            let process = self.senders + p;
            let mut pos: BTreeMap<u64, usize> = BTreeMap::new();
            let mut t = 3_000_000 + p * 7_000_000;
            while t < end {
                let lat = if faulty(t) {
                    50_000_000 + rng.next() % 400_000_000
                } else {
                    1_000_000 + rng.next() % 9_000_000
                };
                let done = t + lat;
                let mut reads = Vec::new();
                for (k, entries) in &log {
                    let at = pos.entry(*k).or_default();
                    let mut pairs = Vec::new();
                    while *at < entries.len() && entries[*at].0 + 5_000_000 <= t && pairs.len() < 20
                    {
                        let v = entries[*at].1;
                        let mut shown = v;
                        if !injected && *k == 2 && *at == 3 {
                            shown = v + 1; // a value of another key: plausible, but not this offset's
                            injected = true;
                        }
                        pairs.push(format!("[{},{shown}]", offsets[&(*k, v)]));
                        *at += 1;
                    }
                    if !pairs.is_empty() {
                        reads.push(format!(r#""{k}":[{}]"#, pairs.join(",")));
                    }
                }
                push(
                    &mut evs,
                    t,
                    format!(
                        r#""time":{t},"process":{process},"type":"invoke","f":"poll","value":[["poll"]]"#
                    ),
                );
                push(
                    &mut evs,
                    done,
                    format!(
                        r#""time":{done},"process":{process},"type":"ok","f":"poll","value":[["poll",{{{}}}]]"#,
                        reads.join(",")
                    ),
                );
                t = done + 20_000_000;
            }
        }
        // Nemesis: kill broker-2, then start it.
        push(
            &mut evs,
            kill,
            format!(
                r#""time":{kill},"process":"nemesis","type":"invoke","f":"kill","value":["broker-2"]"#
            ),
        );
        let k2 = kill + 50_000_000;
        push(
            &mut evs,
            k2,
            format!(
                r#""time":{k2},"process":"nemesis","type":"info","f":"kill","value":["broker-2"]"#
            ),
        );
        push(
            &mut evs,
            start,
            format!(
                r#""time":{start},"process":"nemesis","type":"invoke","f":"start","value":["broker-2"]"#
            ),
        );
        let s2 = start + 100_000_000;
        push(
            &mut evs,
            s2,
            format!(
                r#""time":{s2},"process":"nemesis","type":"info","f":"start","value":["broker-2"]"#
            ),
        );

        for &(at, f, v) in &self.faults {
            let t = s(at);
            push(
                &mut evs,
                t,
                format!(r#""time":{t},"process":"nemesis","type":"info","f":"{f}","value":{v}"#),
            );
        }
        evs.sort();
        let mut out = String::with_capacity(evs.len() * 100);
        for (i, (_, _, body)) in evs.into_iter().enumerate() {
            let body = fill_offsets(&body, &offsets);
            out.push_str(&format!("{{\"index\":{i},{body}}}\n"));
        }
        out
    }
}

fn fill_offsets(body: &str, offsets: &BTreeMap<(u64, u64), u64>) -> String {
    let Some(start) = body.find("[OFF:") else {
        return body.to_string();
    };
    let rest = &body[start + 5..];
    let end = rest.find(',').expect("placeholder has a comma");
    let mut it = rest[..end].split(':');
    let k: u64 = it.next().and_then(|x| x.parse().ok()).expect("key");
    let v: u64 = it.next().and_then(|x| x.parse().ok()).expect("value");
    format!("{}[{}{}", &body[..start], offsets[&(k, v)], &rest[end..])
}

/// A check result with the given verdict and anomalies `(type, count, bad,
/// explanation, key)` and fixed headline numbers; the rest of its stats
/// (latency, counts, the timeline the plots draw) are the checkers' for `h`.
pub fn result(
    h: &gregor_history::History,
    valid: Validity,
    anomalies: &[(&str, u64, bool, &str, Option<u64>)],
) -> CheckResult {
    let mut map = BTreeMap::new();
    let mut types = Vec::new();
    let mut bad = Vec::new();
    for &(name, count, is_bad, expl, key) in anomalies {
        let mut ex = serde_json::json!({"explanation": expl, "ops": [1, 3]});
        if let Some(k) = key {
            ex["key"] = serde_json::json!(k);
        }
        map.insert(
            name.to_string(),
            AnomalyGroup {
                count,
                examples: vec![gregor_history::Example::from_json(ex)],
            },
        );
        types.push(name.to_string());
        if is_bad {
            bad.push(name.to_string());
        }
    }
    let stats = Stats {
        acknowledged: 500,
        lost: 3,
        unseen: 7,
        duplicated: 0,
        lost_rate: 0.006,
        unseen_rate: 0.014,
        worst_realtime_lag_ms: Some(1234.5),
        worst_realtime_lag_key: Some(3),
        worst_realtime_lag_op: Some(77),
        ..gregor_checkers::check(h, &Default::default()).stats
    };
    CheckResult {
        valid,
        anomaly_types: types,
        bad_types: bad,
        anomalies: map,
        stats,
    }
}
