//! The history generator shared by the benches: a reference queue with
//! concurrent producers and assigned consumers, failed and indeterminate
//! sends, crashes with renumbering, sparse offsets and final reads.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

enum Pending {
    Send { key: u64, value: u64 },
    Poll,
}

struct Worker {
    process: u64,
    producer: bool,
    pending: Option<Pending>,
    /// Consumer position per key (index into the key's log).
    pos: Vec<usize>,
}

/// Writes a valid history of about `n` events; returns the exact count.
pub fn generate(path: &Path, n: usize, procs: u64, keys: u64, seed: u64) -> usize {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create history"));
    let mut rng = Rng(seed | 1);
    // Per key: (offset, value) records, and the next offset.
    let mut logs: Vec<Vec<(u64, u64)>> = vec![Vec::new(); keys as usize];
    let mut next_off = vec![0u64; keys as usize];
    let mut next_val = 0u64;
    let mut workers: Vec<Worker> = (0..procs)
        .map(|p| Worker {
            process: p,
            producer: p % 2 == 0,
            pending: None,
            pos: vec![0; keys as usize],
        })
        .collect();
    let mut index = 0usize;
    let mut time = 0u64;
    let mut line = String::with_capacity(4096);
    let emit = |line: &mut String, out: &mut BufWriter<File>| {
        out.write_all(line.as_bytes()).expect("write");
        out.write_all(b"\n").expect("write");
        line.clear();
    };
    let assign_all: String = (0..keys)
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(",");
    for w in workers.iter().filter(|w| !w.producer) {
        for t in ["invoke", "ok"] {
            time += 1000;
            let _ = write!(
                line,
                r#"{{"index":{index},"time":{time},"process":{},"type":"{t}","f":"assign","value":[{assign_all}]}}"#,
                w.process
            );
            emit(&mut line, &mut out);
            index += 1;
        }
    }
    let final_reads_budget = n / 20;
    while index < n.saturating_sub(final_reads_budget) {
        time += 1000 + rng.below(20_000);
        let w = &mut workers[rng.below(procs) as usize];
        let p = w.process;
        match w.pending.take() {
            None => {
                if w.producer {
                    let key = rng.below(keys);
                    next_val += 1;
                    let value = next_val;
                    let _ = write!(
                        line,
                        r#"{{"index":{index},"time":{time},"process":{p},"type":"invoke","f":"send","value":[["send",{key},{value}]]}}"#
                    );
                    w.pending = Some(Pending::Send { key, value });
                } else {
                    let _ = write!(
                        line,
                        r#"{{"index":{index},"time":{time},"process":{p},"type":"invoke","f":"poll","value":[["poll"]]}}"#
                    );
                    w.pending = Some(Pending::Poll);
                }
            }
            Some(Pending::Send { key, value }) => {
                let roll = rng.below(100);
                let k = key as usize;
                if roll < 96 {
                    let off = next_off[k];
                    next_off[k] += 1 + u64::from(rng.below(10) == 0); // sparse offsets
                    logs[k].push((off, value));
                    let _ = write!(
                        line,
                        r#"{{"index":{index},"time":{time},"process":{p},"type":"ok","f":"send","value":[["send",{key},[{off},{value}]]]}}"#
                    );
                } else if roll < 98 {
                    let _ = write!(
                        line,
                        r#"{{"index":{index},"time":{time},"process":{p},"type":"fail","f":"send","value":[["send",{key},{value}]],"error":"not-leader"}}"#
                    );
                } else {
                    if rng.below(2) == 0 {
                        let off = next_off[k];
                        next_off[k] += 1;
                        logs[k].push((off, value));
                    }
                    let _ = write!(
                        line,
                        r#"{{"index":{index},"time":{time},"process":{p},"type":"info","f":"send","value":[["send",{key},{value}]],"error":"timeout"}}"#
                    );
                    w.process += procs; // crashed: continues renumbered
                }
            }
            Some(Pending::Poll) => {
                let _ = write!(
                    line,
                    r#"{{"index":{index},"time":{time},"process":{p},"type":"ok","f":"poll","value":[["poll",{{"#
                );
                let mut first = true;
                let start = rng.below(keys);
                for i in 0..3.min(keys) {
                    let k = ((start + i) % keys) as usize;
                    let avail = logs[k].len() - w.pos[k];
                    let take = avail.min(rng.below(6) as usize);
                    if take == 0 {
                        continue;
                    }
                    if !first {
                        line.push(',');
                    }
                    first = false;
                    let _ = write!(line, r#""{k}":["#);
                    for (j, (o, v)) in logs[k][w.pos[k]..w.pos[k] + take].iter().enumerate() {
                        if j > 0 {
                            line.push(',');
                        }
                        let _ = write!(line, "[{o},{v}]");
                    }
                    line.push(']');
                    w.pos[k] += take;
                }
                line.push_str("}]]}");
            }
        }
        emit(&mut line, &mut out);
        index += 1;
    }
    // Outstanding operations end as info (never completed).
    // Final reads: a fresh process reads every key from the start.
    let fin = 10 * procs + 7;
    time += 1000;
    let _ = write!(
        line,
        r#"{{"index":{index},"time":{time},"process":{fin},"type":"invoke","f":"assign","value":[{assign_all}]}}"#
    );
    emit(&mut line, &mut out);
    index += 1;
    let _ = write!(
        line,
        r#"{{"index":{index},"time":{time},"process":{fin},"type":"ok","f":"assign","value":[{assign_all}]}}"#
    );
    emit(&mut line, &mut out);
    index += 1;
    for (k, log) in logs.iter().enumerate() {
        for chunk in log.chunks(50) {
            time += 1000;
            let _ = write!(
                line,
                r#"{{"index":{index},"time":{time},"process":{fin},"type":"invoke","f":"poll","value":[["poll"]]}}"#
            );
            emit(&mut line, &mut out);
            index += 1;
            let _ = write!(
                line,
                r#"{{"index":{index},"time":{time},"process":{fin},"type":"ok","f":"poll","value":[["poll",{{"{k}":["#
            );
            for (j, (o, v)) in chunk.iter().enumerate() {
                if j > 0 {
                    line.push(',');
                }
                let _ = write!(line, "[{o},{v}]");
            }
            line.push_str("]}]]}");
            emit(&mut line, &mut out);
            index += 1;
        }
    }
    out.flush().expect("flush");
    index
}
