//! Event types and their JSON form.
//!
//! One [`Event`] is one line of `history.jsonl`. Client events carry a list of
//! micro-operations ([`Mop`]); `assign`/`subscribe` carry a list of keys; the
//! nemesis and anything unknown carry arbitrary JSON kept verbatim.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A key: a non-negative integer mapping to exactly one topic-partition.
pub type Key = u64;
/// A value: an integer written at most once per key.
pub type Val = u64;
/// An offset within a topic-partition.
pub type Offset = u64;

/// Who performed an operation: a numbered client worker or the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl Process {
    pub fn client(self) -> Option<u64> {
        match self {
            Process::Client(p) => Some(p),
            Process::Nemesis => None,
        }
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

impl Serialize for Process {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Process;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative integer or \"nemesis\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Process, E> {
                Ok(Process::Client(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Process, E> {
                u64::try_from(v)
                    .map(Process::Client)
                    .map_err(|_| E::custom(format!("process {v} is negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Process, E> {
                if v == "nemesis" {
                    Ok(Process::Nemesis)
                } else {
                    Err(E::custom(format!(
                        "process {v:?} is neither an integer nor \"nemesis\""
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `invoke`, then exactly one of `ok`, `fail` or `info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
    /// Whether this event completes an invocation.
    pub fn is_completion(self) -> bool {
        self != EventType::Invoke
    }
}

/// The function of an operation. Unknown names are kept as [`F::Other`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum F {
    Send,
    Poll,
    Txn,
    Assign,
    Subscribe,
    Crash,
    /// Commit consumer offsets: value `[["commit", {"key": next_offset}]]`.
    Commit,
    /// Fetch committed offsets: invoke `[["committed", {"key": null}]]`, ok
    /// `[["committed", {"key": next_offset_or_null}]]`.
    Committed,
    Other(String),
}

impl F {
    pub fn parse(s: &str) -> F {
        match s {
            "send" => F::Send,
            "poll" => F::Poll,
            "txn" => F::Txn,
            "assign" => F::Assign,
            "subscribe" => F::Subscribe,
            "crash" => F::Crash,
            "commit" => F::Commit,
            "committed" => F::Committed,
            other => F::Other(other.to_string()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            F::Send => "send",
            F::Poll => "poll",
            F::Txn => "txn",
            F::Assign => "assign",
            F::Subscribe => "subscribe",
            F::Crash => "crash",
            F::Commit => "commit",
            F::Committed => "committed",
            F::Other(s) => s,
        }
    }
    /// Whether the value of this function is a list of micro-operations.
    pub fn has_mops(&self) -> bool {
        matches!(self, F::Send | F::Poll | F::Txn | F::Commit | F::Committed)
    }
}

impl fmt::Display for F {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Records read by one poll: per key, the `(offset, value)` pairs in the order
/// the consumer returned them.
pub type Reads = Vec<(Key, Vec<(Offset, Val)>)>;

/// A micro-operation inside a client operation's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mop {
    /// `["send", key, value]` on invoke; `["send", key, [offset, value]]` on ok
    /// (`offset` null when the client did not learn it).
    Send {
        key: Key,
        value: Val,
        offset: Option<Offset>,
    },
    /// `["poll"]` on invoke; `["poll", {"key": [[offset, value], ...]}]` on ok.
    Poll { reads: Option<Reads> },
    /// `["commit", {"key": next_offset}]`: offsets committed for the group.
    Commit { offsets: BTreeMap<Key, Offset> },
    /// `["committed", {"key": next_offset_or_null}]`: committed offsets fetched.
    Committed {
        offsets: BTreeMap<Key, Option<Offset>>,
    },
}

/// The value of an event, typed by its function.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `send`, `poll`, `txn`, `commit`, `committed`.
    Mops(Vec<Mop>),
    /// `assign`, `subscribe`: the keys now held.
    Keys(Vec<Key>),
    /// Anything else (nemesis actions, crash): kept as JSON.
    Json(serde_json::Value),
    /// No value field, or null.
    None,
}

impl Value {
    pub fn mops(&self) -> &[Mop] {
        match self {
            Value::Mops(m) => m,
            _ => &[],
        }
    }
}

/// One line of a history.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub index: u64,
    /// Nanoseconds since the run started (monotonic).
    pub time: u64,
    pub process: Process,
    pub kind: EventType,
    pub f: F,
    pub value: Value,
    pub error: Option<String>,
    /// Other fields a client chose to keep, verbatim.
    pub extra: Vec<(String, serde_json::Value)>,
}

impl Event {
    /// Parses one JSONL line.
    pub fn from_json(line: &str) -> Result<Event, serde_json::Error> {
        // The writer's usual shape takes a fast path; anything else (and
        // every error) goes through serde.
        match crate::fast::parse(line) {
            Some(e) => Ok(e),
            None => serde_json::from_str::<Event>(line),
        }
    }

    /// Serializes to a single JSON line (no trailing newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events always serialize")
    }

    pub fn mops(&self) -> &[Mop] {
        self.value.mops()
    }

    pub fn extra(&self, name: &str) -> Option<&serde_json::Value> {
        self.extra.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

// ---------------------------------------------------------------- serialize

struct MopsSer<'a> {
    mops: &'a [Mop],
    ack: bool,
}

struct MopSer<'a> {
    mop: &'a Mop,
    ack: bool,
}

struct KeyMap<'a, T>(&'a BTreeMap<Key, T>);

impl<T: Serialize> Serialize for KeyMap<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(&k.to_string(), v)?;
        }
        m.end()
    }
}

struct ReadsSer<'a>(&'a Reads);

impl Serialize for ReadsSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(&k.to_string(), v)?;
        }
        m.end()
    }
}

impl Serialize for MopSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.mop {
            Mop::Send { key, value, offset } => {
                let mut q = s.serialize_seq(Some(3))?;
                q.serialize_element("send")?;
                q.serialize_element(key)?;
                if self.ack || offset.is_some() {
                    q.serialize_element(&(offset, value))?;
                } else {
                    q.serialize_element(value)?;
                }
                q.end()
            }
            Mop::Poll { reads } => {
                let mut q = s.serialize_seq(None)?;
                q.serialize_element("poll")?;
                if let Some(r) = reads {
                    q.serialize_element(&ReadsSer(r))?;
                }
                q.end()
            }
            Mop::Commit { offsets } => {
                let mut q = s.serialize_seq(Some(2))?;
                q.serialize_element("commit")?;
                q.serialize_element(&KeyMap(offsets))?;
                q.end()
            }
            Mop::Committed { offsets } => {
                let mut q = s.serialize_seq(Some(2))?;
                q.serialize_element("committed")?;
                q.serialize_element(&KeyMap(offsets))?;
                q.end()
            }
        }
    }
}

impl Serialize for MopsSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut q = s.serialize_seq(Some(self.mops.len()))?;
        for m in self.mops {
            q.serialize_element(&MopSer {
                mop: m,
                ack: self.ack,
            })?;
        }
        q.end()
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("index", &self.index)?;
        m.serialize_entry("time", &self.time)?;
        m.serialize_entry("process", &self.process)?;
        m.serialize_entry("type", &self.kind)?;
        m.serialize_entry("f", self.f.as_str())?;
        match &self.value {
            Value::Mops(mops) => m.serialize_entry(
                "value",
                &MopsSer {
                    mops,
                    ack: self.kind == EventType::Ok,
                },
            )?,
            Value::Keys(k) => m.serialize_entry("value", k)?,
            Value::Json(j) => m.serialize_entry("value", j)?,
            Value::None => {}
        }
        if let Some(e) = &self.error {
            m.serialize_entry("error", e)?;
        }
        for (k, v) in &self.extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

// -------------------------------------------------------------- deserialize

fn parse_key<E: de::Error>(s: &str) -> Result<Key, E> {
    s.parse::<Key>()
        .map_err(|_| E::custom(format!("key {s:?} is not a non-negative integer")))
}

/// `{"key": [[offset, value], ...], ...}`
struct ReadsVisitor;
impl<'de> Visitor<'de> for ReadsVisitor {
    type Value = Reads;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of key -> [[offset, value], ...]")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Reads, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = a.next_key::<std::borrow::Cow<'de, str>>()? {
            let key = parse_key(&k)?;
            let pairs: Vec<(Offset, Val)> = a.next_value()?;
            out.push((key, pairs));
        }
        Ok(out)
    }
}

struct KeyMapVisitor<T>(std::marker::PhantomData<T>);
impl<'de, T: Deserialize<'de>> Visitor<'de> for KeyMapVisitor<T> {
    type Value = BTreeMap<Key, T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object keyed by key")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(k) = a.next_key::<std::borrow::Cow<'de, str>>()? {
            let key = parse_key(&k)?;
            out.insert(key, a.next_value()?);
        }
        Ok(out)
    }
}

struct Seeded<V>(V);
impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for Seeded<V> {
    type Value = V::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        d.deserialize_map(self.0)
    }
}

/// The third element of a send: `value` or `[offset, value]`.
enum SendTail {
    Plain(Val),
    Acked(Option<Offset>, Val),
}
impl<'de> Deserialize<'de> for SendTail {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SendTail;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value or [offset, value]")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SendTail, E> {
                Ok(SendTail::Plain(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SendTail, E> {
                Err(E::custom(format!("value {v} is negative")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<SendTail, A::Error> {
                let off: Option<Offset> = a
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("send result lacks its offset"))?;
                let val: Val = a
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("send result lacks its value"))?;
                if a.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom(
                        "send result has more than [offset, value]",
                    ));
                }
                Ok(SendTail::Acked(off, val))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Mop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Mop;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a micro-op like [\"send\", key, value] or [\"poll\", {...}]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Mop, A::Error> {
                let tag: std::borrow::Cow<'de, str> = a
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("empty micro-op"))?;
                let mop = match &*tag {
                    "send" => {
                        let key: Key = a
                            .next_element()?
                            .ok_or_else(|| de::Error::custom("send lacks its key"))?;
                        let tail: SendTail = a
                            .next_element()?
                            .ok_or_else(|| de::Error::custom("send lacks its value"))?;
                        match tail {
                            SendTail::Plain(value) => Mop::Send {
                                key,
                                value,
                                offset: None,
                            },
                            SendTail::Acked(offset, value) => Mop::Send { key, value, offset },
                        }
                    }
                    "poll" => Mop::Poll {
                        reads: a.next_element_seed(OptSeed(ReadsVisitor))?.flatten(),
                    },
                    "commit" => Mop::Commit {
                        offsets: a
                            .next_element_seed(Seeded(KeyMapVisitor(Default::default())))?
                            .ok_or_else(|| de::Error::custom("commit lacks its offsets"))?,
                    },
                    "committed" => Mop::Committed {
                        offsets: a
                            .next_element_seed(Seeded(KeyMapVisitor(Default::default())))?
                            .ok_or_else(|| de::Error::custom("committed lacks its offsets"))?,
                    },
                    other => {
                        return Err(de::Error::custom(format!(
                            "unknown micro-op {other:?} (expected send, poll, commit, committed)"
                        )))
                    }
                };
                if a.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom(format!(
                        "micro-op {tag:?} has extra elements"
                    )));
                }
                Ok(mop)
            }
        }
        d.deserialize_seq(V)
    }
}

/// Deserializes `null` as `None` and anything else through the visitor.
struct OptSeed<V>(V);
impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for OptSeed<V> {
    type Value = Option<V::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct O<V>(V);
        impl<'de, V: Visitor<'de>> Visitor<'de> for O<V> {
            type Value = Option<V::Value>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                self.0.expecting(f)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_map(self.0).map(Some)
            }
        }
        d.deserialize_option(O(self.0))
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Event;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a history event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Event, A::Error> {
                let mut index = None;
                let mut time = None;
                let mut process = None;
                let mut kind = None;
                let mut f: Option<F> = None;
                let mut raw: Option<&'de RawValue> = None;
                let mut value: Option<Value> = None;
                let mut error = None;
                let mut extra = Vec::new();
                while let Some(k) = a.next_key::<std::borrow::Cow<'de, str>>()? {
                    match &*k {
                        "index" => index = Some(a.next_value::<u64>()?),
                        "time" => time = Some(a.next_value::<u64>()?),
                        "process" => process = Some(a.next_value::<Process>()?),
                        "type" => kind = Some(a.next_value::<EventType>()?),
                        "f" => f = Some(F::parse(&a.next_value::<std::borrow::Cow<'de, str>>()?)),
                        "value" => match &f {
                            // The usual order (f before value): parse the
                            // value in place, typed by f, in one pass.
                            Some(fv) => {
                                value = Some(a.next_value_seed(ValueSeed(fv)).map_err(|e| {
                                    de::Error::custom(format!(
                                        "field `value` of a {} op: {e}",
                                        fv.as_str()
                                    ))
                                })?)
                            }
                            None => raw = Some(a.next_value::<&'de RawValue>()?),
                        },
                        "error" => {
                            let e: serde_json::Value = a.next_value()?;
                            error = match e {
                                serde_json::Value::Null => None,
                                serde_json::Value::String(s) => Some(s),
                                other => Some(other.to_string()),
                            }
                        }
                        other => {
                            let v: serde_json::Value = a.next_value()?;
                            extra.push((other.to_string(), v));
                        }
                    }
                }
                let missing = |n: &'static str| de::Error::custom(format!("missing field `{n}`"));
                let f = f.ok_or_else(|| missing("f"))?;
                let kind = kind.ok_or_else(|| missing("type"))?;
                let value = match (value, raw) {
                    (Some(v), _) => v,
                    (None, None) => Value::None,
                    (None, Some(r)) if r.get() == "null" => Value::None,
                    (None, Some(r)) => parse_value(&f, r).map_err(|e| {
                        de::Error::custom(format!("field `value` of a {} op: {e}", f.as_str()))
                    })?,
                };
                Ok(Event {
                    index: index.ok_or_else(|| missing("index"))?,
                    time: time.ok_or_else(|| missing("time"))?,
                    process: process.ok_or_else(|| missing("process"))?,
                    kind,
                    f,
                    value,
                    error,
                    extra,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// Deserializes an event's `value` typed by its already known `f`.
struct ValueSeed<'a>(&'a F);
impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Ok(match self.0 {
            f if f.has_mops() => {
                Option::<Vec<Mop>>::deserialize(d)?.map_or(Value::None, Value::Mops)
            }
            F::Assign | F::Subscribe => {
                Option::<Vec<Key>>::deserialize(d)?.map_or(Value::None, Value::Keys)
            }
            _ => match serde_json::Value::deserialize(d)? {
                serde_json::Value::Null => Value::None,
                v => Value::Json(v),
            },
        })
    }
}

fn parse_value(f: &F, raw: &RawValue) -> Result<Value, serde_json::Error> {
    Ok(match f {
        f if f.has_mops() => Value::Mops(serde_json::from_str(raw.get())?),
        F::Assign | F::Subscribe => Value::Keys(serde_json::from_str(raw.get())?),
        _ => Value::Json(serde_json::from_str(raw.get())?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINES: &[&str] = &[
        r#"{"index":0,"time":1523000,"process":3,"type":"invoke","f":"send","value":[["send",2,41]]}"#,
        r#"{"index":1,"time":1990000,"process":3,"type":"ok","f":"send","value":[["send",2,[17,41]]]}"#,
        r#"{"index":2,"time":2000000,"process":1,"type":"invoke","f":"poll","value":[["poll"]]}"#,
        r#"{"index":3,"time":2600000,"process":1,"type":"ok","f":"poll","value":[["poll",{"2":[[17,41],[18,42]]}]]}"#,
        r#"{"index":4,"time":2700000,"process":"nemesis","type":"info","f":"kill","value":["broker-2"]}"#,
    ];

    #[test]
    fn the_design_example_parses_and_round_trips_byte_for_byte() {
        for line in LINES {
            let e = Event::from_json(line).unwrap();
            assert_eq!(&e.to_json(), line);
        }
        let e = Event::from_json(LINES[3]).unwrap();
        assert_eq!(
            e.mops(),
            &[Mop::Poll {
                reads: Some(vec![(2, vec![(17, 41), (18, 42)])])
            }]
        );
        let n = Event::from_json(LINES[4]).unwrap();
        assert_eq!(n.process, Process::Nemesis);
        assert_eq!(n.f, F::Other("kill".into()));
    }

    #[test]
    fn an_acknowledged_send_with_unknown_offset_keeps_null() {
        let l = r#"{"index":1,"time":5,"process":0,"type":"ok","f":"send","value":[["send",2,[null,41]]],"error":null}"#;
        let e = Event::from_json(l).unwrap();
        assert_eq!(
            e.mops(),
            &[Mop::Send {
                key: 2,
                value: 41,
                offset: None
            }]
        );
        assert!(e.to_json().contains("[null,41]"));
    }

    #[test]
    fn extras_errors_and_keys_survive() {
        let l = r#"{"index":7,"time":9,"process":2,"type":"info","f":"assign","value":[1,2],"error":"timeout","producer-id":12}"#;
        let e = Event::from_json(l).unwrap();
        assert_eq!(e.value, Value::Keys(vec![1, 2]));
        assert_eq!(e.error.as_deref(), Some("timeout"));
        assert_eq!(e.extra("producer-id"), Some(&serde_json::json!(12)));
        assert_eq!(&e.to_json(), l);
    }

    #[test]
    fn commits_and_committed_fetches_round_trip() {
        let l = r#"{"index":0,"time":1,"process":0,"type":"ok","f":"committed","value":[["committed",{"1":null,"2":18}]]}"#;
        let e = Event::from_json(l).unwrap();
        assert_eq!(&e.to_json(), l);
        let l = r#"{"index":1,"time":1,"process":0,"type":"invoke","f":"commit","value":[["commit",{"2":18}]]}"#;
        assert_eq!(&Event::from_json(l).unwrap().to_json(), l);
    }

    #[test]
    fn bad_values_name_the_field_and_the_problem() {
        let l =
            r#"{"index":0,"time":1,"process":0,"type":"ok","f":"send","value":[["send","x",1]]}"#;
        let err = Event::from_json(l).unwrap_err().to_string();
        assert!(err.contains("value") && err.contains("send"), "{err}");
        let l = r#"{"index":0,"time":1,"process":0,"type":"done","f":"send"}"#;
        let err = Event::from_json(l).unwrap_err().to_string();
        assert!(err.contains("done"), "{err}");
        let l = r#"{"index":0,"time":1,"process":-3,"type":"ok","f":"send"}"#;
        assert!(Event::from_json(l)
            .unwrap_err()
            .to_string()
            .contains("negative"));
        let l = r#"{"index":0,"process":1,"type":"ok","f":"send"}"#;
        assert!(Event::from_json(l)
            .unwrap_err()
            .to_string()
            .contains("time"));
    }
}
