//! A fast path for parsing the common history lines.
//!
//! gregor's own writer emits client events in one fixed shape
//! (`index, time, process, type, f, value[, error]`, no whitespace, no
//! escapes). [`parse`] recognizes exactly that shape with a hand-written
//! byte scanner and builds the [`Event`] directly; on *anything* else
//! (another field order, whitespace, escapes, unusual numbers, nemesis
//! values, extra fields) it returns `None` and the caller falls back to the
//! serde deserializer, which also produces the error messages. So the fast
//! path only changes speed, never results: a line it accepts parses to the
//! same event through serde (tested below).

use crate::event::{Event, EventType, Key, Mop, Offset, Process, Reads, Val, Value, F};

struct P<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> P<'a> {
    #[inline]
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + s.len())? == s {
            self.i += s.len();
            Some(())
        } else {
            None
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// A non-negative integer without sign, fraction, exponent or leading
    /// zeros, that fits in u64.
    #[inline]
    fn u64(&mut self) -> Option<u64> {
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            n = n.checked_mul(10)?.checked_add((c - b'0') as u64)?;
            self.i += 1;
        }
        let len = self.i - start;
        if len == 0 || (len > 1 && self.b[start] == b'0') {
            return None;
        }
        match self.peek() {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(n),
        }
    }

    /// A string without escapes or control characters.
    #[inline]
    fn simple_str(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => return None,
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
        let s = std::str::from_utf8(&self.b[start..self.i]).ok()?;
        self.i += 1;
        Some(s)
    }

    fn mops(&mut self) -> Option<Vec<Mop>> {
        self.lit(b"[")?;
        if self.eat(b']') {
            return Some(Vec::new());
        }
        // Collected on the stack first so that the vector is allocated once
        // at its exact size (serde would allocate 4 and grow): a history
        // holds millions of these.
        let mut buf: Small<Mop, 4> = Small::new();
        loop {
            buf.push(self.mop()?);
            if self.eat(b']') {
                return Some(buf.into_vec());
            }
            self.lit(b",")?;
        }
    }

    fn mop(&mut self) -> Option<Mop> {
        if self.lit(b"[\"send\",").is_some() {
            let key = self.u64()?;
            self.lit(b",")?;
            let mop = if self.eat(b'[') {
                let offset = if self.lit(b"null").is_some() {
                    None
                } else {
                    Some(self.u64()?)
                };
                self.lit(b",")?;
                let value = self.u64()?;
                self.lit(b"]")?;
                Mop::Send { key, value, offset }
            } else {
                Mop::Send {
                    key,
                    value: self.u64()?,
                    offset: None,
                }
            };
            self.lit(b"]")?;
            Some(mop)
        } else if self.lit(b"[\"poll\"").is_some() {
            if self.eat(b']') {
                return Some(Mop::Poll { reads: None });
            }
            self.lit(b",")?;
            let reads = if self.lit(b"null").is_some() {
                None
            } else {
                Some(self.reads()?)
            };
            self.lit(b"]")?;
            Some(Mop::Poll { reads })
        } else {
            None
        }
    }

    fn reads(&mut self) -> Option<Reads> {
        self.lit(b"{")?;
        if self.eat(b'}') {
            return Some(Vec::new());
        }
        let mut out: Small<(Key, Vec<(Offset, Val)>), 8> = Small::new();
        loop {
            self.lit(b"\"")?;
            let key: Key = self.u64()?;
            self.lit(b"\":[")?;
            let mut pairs: Small<(Offset, Val), 32> = Small::new();
            if !self.eat(b']') {
                loop {
                    self.lit(b"[")?;
                    let o = self.u64()?;
                    self.lit(b",")?;
                    let v = self.u64()?;
                    self.lit(b"]")?;
                    pairs.push((o, v));
                    if self.eat(b']') {
                        break;
                    }
                    self.lit(b",")?;
                }
            }
            out.push((key, pairs.into_vec()));
            if self.eat(b'}') {
                return Some(out.into_vec());
            }
            self.lit(b",")?;
        }
    }

    fn keys(&mut self) -> Option<Vec<Key>> {
        self.lit(b"[")?;
        let mut out = Vec::new();
        if self.eat(b']') {
            return Some(out);
        }
        loop {
            out.push(self.u64()?);
            if self.eat(b']') {
                return Some(out);
            }
            self.lit(b",")?;
        }
    }
}

/// Up to `N` items on the stack, then a vector; [`Small::into_vec`]
/// allocates exactly once, at the final length.
struct Small<T, const N: usize> {
    buf: [Option<T>; N],
    len: usize,
    spill: Vec<T>,
}

impl<T, const N: usize> Small<T, N> {
    #[inline]
    fn new() -> Self {
        Small {
            buf: [const { None }; N],
            len: 0,
            spill: Vec::new(),
        }
    }

    #[inline]
    fn push(&mut self, x: T) {
        if self.len < N {
            self.buf[self.len] = Some(x);
            self.len += 1;
        } else {
            self.spill.push(x);
        }
    }

    #[inline]
    fn into_vec(mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len + self.spill.len());
        out.extend(self.buf[..self.len].iter_mut().filter_map(Option::take));
        out.append(&mut self.spill);
        out
    }
}

/// Parses a line of the common shape, or returns `None` (use serde).
pub(crate) fn parse(line: &str) -> Option<Event> {
    match parse_prefix(line.as_bytes()) {
        Some((e, end)) if end == line.len() => Some(e),
        _ => None,
    }
}

/// Parses one line of the common shape at the start of `b`, returning the
/// event and the length of the line: `b` must continue with `'\n'` or end
/// right after the line. The grammar admits no newline, so a line parsed
/// here is exactly the text before the first newline of `b`; `None` (use
/// serde on the whole line) when the line has another shape or `b` ends
/// inside it.
#[inline(always)]
pub(crate) fn parse_line(b: &[u8]) -> Option<(Event, usize)> {
    let (e, end) = parse_prefix(b)?;
    match b.get(end) {
        None | Some(b'\n') => Some((e, end)),
        _ => None,
    }
}

/// Parses the common shape from the start of `b`; returns the event and
/// where it ended (just after the closing brace).
#[inline(always)]
fn parse_prefix(b: &[u8]) -> Option<(Event, usize)> {
    let mut p = P { b, i: 0 };
    p.lit(b"{\"index\":")?;
    let index = p.u64()?;
    p.lit(b",\"time\":")?;
    let time = p.u64()?;
    p.lit(b",\"process\":")?;
    let process = if p.peek() == Some(b'"') {
        match p.simple_str()? {
            "nemesis" => Process::Nemesis,
            _ => return None,
        }
    } else {
        Process::Client(p.u64()?)
    };
    p.lit(b",\"type\":")?;
    let kind = match p.simple_str()? {
        "invoke" => EventType::Invoke,
        "ok" => EventType::Ok,
        "fail" => EventType::Fail,
        "info" => EventType::Info,
        _ => return None,
    };
    p.lit(b",\"f\":")?;
    let f = F::parse(p.simple_str()?);
    let mut value = Value::None;
    if p.lit(b",\"value\":").is_some() && p.lit(b"null").is_none() {
        value = if f.has_mops() {
            Value::Mops(p.mops()?)
        } else if matches!(f, F::Assign | F::Subscribe) {
            Value::Keys(p.keys()?)
        } else {
            return None;
        };
    }
    let mut error = None;
    if p.lit(b",\"error\":").is_some() && p.lit(b"null").is_none() {
        error = Some(p.simple_str()?.to_string());
    }
    p.lit(b"}")?;
    Some((
        Event {
            index,
            time,
            process,
            kind,
            f,
            value,
            error,
            extra: Vec::new(),
        },
        p.i,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde(line: &str) -> Event {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn the_fast_path_accepts_the_writers_shapes_and_agrees_with_serde() {
        let lines = [
            r#"{"index":0,"time":1523000,"process":3,"type":"invoke","f":"send","value":[["send",2,41]]}"#,
            r#"{"index":1,"time":1990000,"process":3,"type":"ok","f":"send","value":[["send",2,[17,41]]]}"#,
            r#"{"index":1,"time":5,"process":0,"type":"ok","f":"send","value":[["send",2,[null,41]]],"error":null}"#,
            r#"{"index":2,"time":2000000,"process":1,"type":"invoke","f":"poll","value":[["poll"]]}"#,
            r#"{"index":3,"time":2600000,"process":1,"type":"ok","f":"poll","value":[["poll",{"2":[[17,41],[18,42]],"3":[]}]]}"#,
            r#"{"index":3,"time":2600000,"process":1,"type":"ok","f":"poll","value":[["poll",{}]]}"#,
            r#"{"index":3,"time":2600000,"process":1,"type":"ok","f":"poll","value":[["poll",null]]}"#,
            r#"{"index":4,"time":7,"process":2,"type":"fail","f":"txn","value":[["send",1,3],["poll"],["send",2,[4,5]]],"error":"aborted: x y"}"#,
            r#"{"index":5,"time":8,"process":2,"type":"ok","f":"assign","value":[1,2,30]}"#,
            r#"{"index":5,"time":8,"process":2,"type":"ok","f":"subscribe","value":[]}"#,
            r#"{"index":6,"time":9,"process":2,"type":"ok","f":"send","value":[]}"#,
            r#"{"index":7,"time":9,"process":2,"type":"info","f":"send"}"#,
            r#"{"index":8,"time":9,"process":"nemesis","type":"info","f":"crash","value":null}"#,
        ];
        for l in lines {
            let fast = parse(l).unwrap_or_else(|| panic!("fast path declined {l}"));
            assert_eq!(fast, serde(l), "{l}");
        }
    }

    #[test]
    fn the_fast_path_declines_anything_unusual_so_serde_decides() {
        let lines = [
            r#"{"time":1,"index":0,"process":3,"type":"invoke","f":"send","value":[["send",2,41]]}"#,
            r#"{"index": 0,"time":1,"process":3,"type":"invoke","f":"send"}"#,
            r#"{"index":0,"time":1,"process":3,"type":"invoke","f":"send","value":[["send",2,-41]]}"#,
            r#"{"index":0,"time":1.5,"process":3,"type":"invoke","f":"send"}"#,
            r#"{"index":0,"time":1e3,"process":3,"type":"invoke","f":"send"}"#,
            r#"{"index":01,"time":1,"process":3,"type":"invoke","f":"send"}"#,
            r#"{"index":0,"time":1,"process":3,"type":"invoke","f":"se\"nd"}"#,
            r#"{"index":0,"time":1,"process":3,"type":"invoke","f":"send","extra":1}"#,
            r#"{"index":0,"time":1,"process":3,"type":"done","f":"send"}"#,
            r#"{"index":0,"time":1,"process":"nemesis","type":"info","f":"kill","value":["broker-2"]}"#,
            r#"{"index":0,"time":1,"process":3,"type":"ok","f":"commit","value":[["commit",{"2":18}]]}"#,
            r#"{"index":0,"time":1,"process":3,"type":"ok","f":"poll","value":[["poll",{"x":[]}]]}"#,
            r#"{"index":0,"time":1,"process":3,"type":"ok","f":"poll","value":[["poll",{"1":[[1,2,3]]}]]}"#,
            r#"{"index":0,"time":1,"process":3,"type":"invoke","f":"send"} "#,
            r#"{"index":99999999999999999999,"time":1,"process":3,"type":"invoke","f":"send"}"#,
        ];
        for l in lines {
            assert!(parse(l).is_none(), "fast path accepted {l}");
        }
    }

    #[test]
    fn long_polls_and_transactions_spill_past_the_stack_buffers_intact() {
        let pairs: Vec<String> = (0..40).map(|i| format!("[{i},{}]", i * 3)).collect();
        let keys: Vec<String> = (0..10)
            .map(|k| format!("\"{k}\":[{}]", pairs.join(",")))
            .collect();
        let sends: Vec<String> = (0..6).map(|i| format!("[\"send\",1,[{i},{i}]]")).collect();
        let line = format!(
            r#"{{"index":0,"time":1,"process":1,"type":"ok","f":"txn","value":[{},["poll",{{{}}}]]}}"#,
            sends.join(","),
            keys.join(",")
        );
        let e = parse(&line).expect("fast path");
        assert_eq!(e, serde(&line));
        assert_eq!(e.mops().len(), 7);
        match &e.mops()[6] {
            Mop::Poll { reads: Some(r) } => {
                assert_eq!(r.len(), 10);
                assert!(r.iter().all(|(_, p)| p.len() == 40 && p.capacity() == 40));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_event_the_writer_emits_round_trips_through_the_fast_path() {
        // A spread of shapes, serialized by the real writer.
        let mut events = Vec::new();
        for i in 0..200u64 {
            let kind = [
                EventType::Invoke,
                EventType::Ok,
                EventType::Fail,
                EventType::Info,
            ][(i % 4) as usize];
            let (f, value) = match i % 5 {
                0 => (
                    F::Send,
                    Value::Mops(vec![Mop::Send {
                        key: i % 7,
                        value: i * 13,
                        offset: (i % 3 != 0).then_some(i),
                    }]),
                ),
                1 => (
                    F::Poll,
                    Value::Mops(vec![Mop::Poll {
                        reads: (i % 2 == 0)
                            .then(|| vec![(i % 5, (0..i % 4).map(|o| (o, o * i)).collect())]),
                    }]),
                ),
                2 => (
                    F::Txn,
                    Value::Mops(vec![
                        Mop::Send {
                            key: 1,
                            value: i,
                            offset: Some(3),
                        },
                        Mop::Poll {
                            reads: Some(vec![]),
                        },
                    ]),
                ),
                3 => (F::Assign, Value::Keys((0..i % 4).collect())),
                _ => (F::Subscribe, Value::None),
            };
            let error = (kind == EventType::Info).then(|| format!("timeout {i}"));
            events.push(Event {
                index: i,
                time: i * 1000,
                process: Process::Client(i % 9),
                kind,
                f,
                value,
                error,
                extra: vec![],
            });
        }
        for e in events {
            let line = e.to_json();
            assert_eq!(parse(&line).as_ref(), Some(&e), "{line}");
        }
    }
}
