//! Reading a Jepsen Kafka `history.edn` into a gregor [`History`].
//!
//! Jepsen writes one operation map per line, e.g.
//!
//! ```text
//! {:type :invoke, :f :send, :value [[:send 2 41]], :time 123, :process 3, :index 0}
//! {:type :ok, :f :send, :value [[:send 2 [17 41]]], :time 456, :process 3, :index 1}
//! {:type :ok, :f :poll, :value [[:poll {2 [[17 41] [18 42]]}]], :time 789, :process 1, :index 3}
//! {:type :info, :f :start-partition, :value {"n1" #{"n2"}}, :time 800, :process :nemesis, :index 4}
//! ```
//!
//! The reader does not rely on line breaks: any sequence of top-level maps
//! (or one vector of them) works, and records printed as tagged literals
//! (`#jepsen.history.Op{...}`) are read as their map. Micro-operations
//! (`send`, `poll`, `commit`, `committed`) and `assign`/`subscribe` keys
//! become typed values; nemesis values and unknown fields are kept as JSON
//! (keywords lose their colon, sets become arrays). `:error` of any shape
//! becomes a string. A missing `:index` is the operation's position in the
//! file. Errors name the file, line and column, and the field at fault. A
//! last form cut off by a killed writer is skipped and reported in
//! [`History::truncated_tail`], like the JSONL reader does.

mod reader;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gregor_history::{Event, EventType, History, Key, Mop, Offset, Process, Reads, Val, Value, F};

pub use reader::{Edn, Node, Pos, Reader, SyntaxError};

/// Errors reading a Jepsen EDN history.
#[derive(Debug, thiserror::Error)]
pub enum EdnError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

/// Reads a Jepsen `history.edn` file.
pub fn read_jepsen_edn(path: &Path) -> Result<History, EdnError> {
    let text = std::fs::read_to_string(path).map_err(|source| EdnError::Io {
        path: path.into(),
        source,
    })?;
    parse_edn_at(&text, path)
}

/// Parses Jepsen EDN history text (messages name `<string>`).
pub fn parse_jepsen_edn(text: &str) -> Result<History, EdnError> {
    parse_edn_at(text, Path::new("<string>"))
}

/// Parses Jepsen EDN history text; `path` is only used in messages.
pub fn parse_edn_at(text: &str, path: &Path) -> Result<History, EdnError> {
    let mut r = Reader::new(text);
    let mut events = Vec::new();
    let mut truncated_tail = None;
    let fail = |pos: Pos, message: String| EdnError::Parse {
        path: path.into(),
        line: pos.line,
        column: pos.column,
        message,
    };
    loop {
        r.skip_blank();
        let start = r.offset();
        let form = match r.next_form() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if !text[start..].contains('\n') && !text.ends_with('\n') => {
                truncated_tail = Some(format!(
                    "{}:{}:{}: last line is incomplete and was ignored ({})",
                    path.display(),
                    e.pos.line,
                    e.pos.column,
                    e.message
                ));
                break;
            }
            Err(e) => return Err(fail(e.pos, e.message)),
        };
        let form = untag(&form);
        match &form.v {
            Edn::Vector(items) | Edn::List(items) => {
                for item in items {
                    let n = events.len() as u64;
                    events.push(to_event(untag(item), n).map_err(|(p, m)| fail(p, m))?);
                }
            }
            _ => {
                let n = events.len() as u64;
                events.push(to_event(form, n).map_err(|(p, m)| fail(p, m))?);
            }
        }
    }
    Ok(History {
        events,
        truncated_tail,
    })
}

type Bad = (Pos, String);

fn untag(n: &Node) -> &Node {
    match &n.v {
        Edn::Tagged(_, inner) => untag(inner),
        _ => n,
    }
}

fn name_of(n: &Node) -> Option<&str> {
    match &n.v {
        Edn::Keyword(s) | Edn::Str(s) | Edn::Symbol(s) => Some(s),
        _ => None,
    }
}

fn uint(n: &Node, what: &str) -> Result<u64, Bad> {
    match &n.v {
        Edn::Int(i) if *i >= 0 => Ok(*i as u64),
        other => Err((
            n.pos,
            format!("{what} must be a non-negative integer, found {other}"),
        )),
    }
}

fn to_event(n: &Node, position: u64) -> Result<Event, Bad> {
    let Edn::Map(fields) = &n.v else {
        return Err((
            n.pos,
            format!("expected an operation map, found {}", n.v.kind()),
        ));
    };
    let mut index = None;
    let mut time = None;
    let mut process = None;
    let mut kind = None;
    let mut f: Option<F> = None;
    let mut value: Option<&Node> = None;
    let mut error = None;
    let mut extra = Vec::new();
    for (k, v) in fields {
        let key = match &k.v {
            Edn::Keyword(s) => s.as_str(),
            _ => {
                extra.push((k.v.to_string(), to_json(v)));
                continue;
            }
        };
        match key {
            "index" => index = Some(uint(v, ":index")?),
            "time" => time = Some(uint(v, ":time")?),
            "process" => {
                process = Some(match &v.v {
                    Edn::Int(i) if *i >= 0 => Process::Client(*i as u64),
                    Edn::Keyword(s) if s == "nemesis" => Process::Nemesis,
                    other => {
                        return Err((
                            v.pos,
                            format!(
                            ":process must be a non-negative integer or :nemesis, found {other}"
                        ),
                        ))
                    }
                })
            }
            "type" => {
                kind = Some(match name_of(v) {
                    Some("invoke") => EventType::Invoke,
                    Some("ok") => EventType::Ok,
                    Some("fail") => EventType::Fail,
                    Some("info") => EventType::Info,
                    _ => {
                        return Err((
                            v.pos,
                            format!(":type must be :invoke, :ok, :fail or :info, found {}", v.v),
                        ))
                    }
                })
            }
            "f" => {
                f = Some(F::parse(name_of(v).ok_or_else(|| {
                    (v.pos, format!(":f must be a keyword, found {}", v.v))
                })?))
            }
            "value" => value = Some(v),
            "error" => {
                error = match &v.v {
                    Edn::Nil => None,
                    Edn::Str(s) => Some(s.clone()),
                    Edn::Keyword(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                }
            }
            other => extra.push((other.to_string(), to_json(v))),
        }
    }
    let missing = |field: &str| (n.pos, format!("operation map lacks {field}"));
    let f = f.ok_or_else(|| missing(":f"))?;
    let value = match value {
        None => Value::None,
        Some(v) => to_value(&f, v)?,
    };
    Ok(Event {
        index: index.unwrap_or(position),
        time: time.ok_or_else(|| missing(":time"))?,
        process: process.ok_or_else(|| missing(":process"))?,
        kind: kind.ok_or_else(|| missing(":type"))?,
        f,
        value,
        error,
        extra,
    })
}

fn to_value(f: &F, v: &Node) -> Result<Value, Bad> {
    if v.v == Edn::Nil {
        return Ok(Value::None);
    }
    if f.has_mops() {
        let items = v.v.items().ok_or_else(|| {
            (
                v.pos,
                format!(
                    ":value of a {f} op must be a vector of micro-ops, found {}",
                    v.v.kind()
                ),
            )
        })?;
        return items
            .iter()
            .map(to_mop)
            .collect::<Result<_, _>>()
            .map(Value::Mops);
    }
    match f {
        F::Assign | F::Subscribe => {
            let items = v.v.items().ok_or_else(|| {
                (
                    v.pos,
                    format!(
                        ":value of a {f} op must be a vector of keys, found {}",
                        v.v.kind()
                    ),
                )
            })?;
            items
                .iter()
                .map(|k| uint(k, "a key"))
                .collect::<Result<_, _>>()
                .map(Value::Keys)
        }
        _ => Ok(Value::Json(to_json(v))),
    }
}

fn to_mop(n: &Node) -> Result<Mop, Bad> {
    let items =
        n.v.items()
            .filter(|_| !matches!(n.v, Edn::Set(_)))
            .ok_or_else(|| {
                (
                    n.pos,
                    format!(
                        "a micro-op must be a vector like [:send k v], found {}",
                        n.v
                    ),
                )
            })?;
    let Some(tag) = items.first().and_then(name_of) else {
        return Err((
            n.pos,
            format!(
                "a micro-op must start with :send, :poll, :commit or :committed: {}",
                n.v
            ),
        ));
    };
    let arity = |want: &[usize]| {
        if want.contains(&items.len()) {
            Ok(())
        } else {
            Err((
                n.pos,
                format!("micro-op {} has {} elements", n.v, items.len()),
            ))
        }
    };
    match tag {
        "send" => {
            arity(&[3])?;
            let key: Key = uint(&items[1], "a send's key")?;
            let tail = &items[2];
            match &tail.v {
                Edn::Int(_) => Ok(Mop::Send {
                    key,
                    value: uint(tail, "a send's value")?,
                    offset: None,
                }),
                Edn::Vector(pair) | Edn::List(pair) if pair.len() == 2 => {
                    let offset = match &pair[0].v {
                        Edn::Nil => None,
                        _ => Some(uint(&pair[0], "a send's offset")?),
                    };
                    Ok(Mop::Send {
                        key,
                        value: uint(&pair[1], "a send's value")?,
                        offset,
                    })
                }
                other => Err((
                    tail.pos,
                    format!("a send's value must be v or [offset v], found {other}"),
                )),
            }
        }
        "poll" => {
            arity(&[1, 2])?;
            let Some(m) = items.get(1) else {
                return Ok(Mop::Poll { reads: None });
            };
            let reads = match &m.v {
                Edn::Nil => None,
                Edn::Map(entries) => Some(reads(entries)?),
                other => {
                    return Err((
                        m.pos,
                        format!(
                        "a poll's result must be a map of key to [[offset v] ...], found {other}"
                    ),
                    ))
                }
            };
            Ok(Mop::Poll { reads })
        }
        "commit" => {
            arity(&[2])?;
            let mut offsets = BTreeMap::new();
            for (k, o) in key_map(&items[1], "a commit")? {
                offsets.insert(uint(k, "a committed key")?, uint(o, "a committed offset")?);
            }
            Ok(Mop::Commit { offsets })
        }
        "committed" => {
            arity(&[2])?;
            let mut offsets = BTreeMap::new();
            for (k, o) in key_map(&items[1], "a committed fetch")? {
                let off = match o.v {
                    Edn::Nil => None,
                    _ => Some(uint(o, "a committed offset")?),
                };
                offsets.insert(uint(k, "a committed key")?, off);
            }
            Ok(Mop::Committed { offsets })
        }
        other => Err((
            n.pos,
            format!("unknown micro-op :{other} (expected :send, :poll, :commit or :committed)"),
        )),
    }
}

fn key_map<'a>(n: &'a Node, what: &str) -> Result<Vec<(&'a Node, &'a Node)>, Bad> {
    match &n.v {
        Edn::Map(m) => Ok(m.iter().map(|(k, v)| (k, v)).collect()),
        Edn::Nil => Ok(Vec::new()),
        other => Err((
            n.pos,
            format!("{what} needs a map of key to offset, found {other}"),
        )),
    }
}

fn reads(entries: &[(Node, Node)]) -> Result<Reads, Bad> {
    let mut out = Vec::with_capacity(entries.len());
    for (k, pairs) in entries {
        let key = uint(k, "a polled key")?;
        let items = pairs.v.items().ok_or_else(|| {
            (
                pairs.pos,
                format!("polled records must be [[offset v] ...], found {}", pairs.v),
            )
        })?;
        let mut recs: Vec<(Offset, Val)> = Vec::with_capacity(items.len());
        for p in items {
            match p.v.items() {
                Some([o, v]) => {
                    recs.push((uint(o, "a polled offset")?, uint(v, "a polled value")?))
                }
                _ => {
                    return Err((
                        p.pos,
                        format!("a polled record must be [offset value], found {}", p.v),
                    ))
                }
            }
        }
        out.push((key, recs));
    }
    Ok(out)
}

/// EDN to JSON for values kept verbatim: keywords and symbols become their
/// names, sets and lists arrays, map keys strings, tagged literals their form.
pub fn to_json(n: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &n.v {
        Edn::Nil => J::Null,
        Edn::Bool(b) => J::Bool(*b),
        Edn::Int(i) => J::from(*i),
        Edn::BigInt(s) => J::String(s.clone()),
        Edn::Float(x) => {
            serde_json::Number::from_f64(*x).map_or_else(|| J::String(x.to_string()), J::Number)
        }
        Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => J::String(s.clone()),
        Edn::Char(c) => J::String(c.to_string()),
        Edn::List(v) | Edn::Vector(v) | Edn::Set(v) => J::Array(v.iter().map(to_json).collect()),
        Edn::Map(m) => J::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = match &k.v {
                        Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Edn::Tagged(_, inner) => to_json(inner),
    }
}
