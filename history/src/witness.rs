//! A witness: one example of an anomaly, as checkers write it into
//! `results.json` and reports, certification and CI read it.
//!
//! The fields every consumer needs are typed: the explanation, the history
//! indices of the operations, the key (or keys), and for dependency cycles
//! the steps, each naming its own key. What is particular to one anomaly
//! type (offsets, values, `proved-by`, `max-read-offset`, …) stays in
//! [`Example::detail`], in the JSON shape the checker gave it.
//!
//! The JSON form is unchanged from the untyped one (an object with those
//! fields side by side), so older `results.json` files still read. Reading
//! is lenient in shape only where histories of other tools differ (`ops` as
//! one index or a list, a key as a number or a numeric string); a field of
//! another shape is kept in `detail` under its own name, never dropped.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value as Json};

use crate::Key;

/// One example of an anomaly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Example {
    /// One line a person can act on.
    pub explanation: String,
    /// History indices of the operations involved, most telling first.
    pub ops: Vec<u64>,
    /// The key the anomaly is about, when there is one.
    pub key: Option<Key>,
    /// Further keys it involves.
    pub keys: Vec<Key>,
    /// For dependency cycles: one step per edge.
    pub steps: Vec<Step>,
    /// Everything else, by anomaly type.
    pub detail: Map<String, Json>,
}

/// One edge of a dependency cycle.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    /// The key the edge is about (`None` for process and realtime edges).
    pub key: Option<Key>,
    pub explanation: Option<String>,
    /// The rest of the step (ops, relationship, values).
    pub detail: Map<String, Json>,
}

fn as_key(v: &Json) -> Option<Key> {
    match v {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn as_keys(v: &Json) -> Option<Vec<Key>> {
    v.as_array()?.iter().map(as_key).collect()
}

fn as_ops(v: &Json) -> Option<Vec<u64>> {
    match v {
        Json::Array(a) => a.iter().map(Json::as_u64).collect(),
        other => other.as_u64().map(|i| vec![i]),
    }
}

impl Step {
    fn from_json(v: Json) -> Option<Step> {
        let Json::Object(mut m) = v else {
            return None;
        };
        let key = take_if(&mut m, "key", as_key);
        let explanation = take_if(&mut m, "explanation", |e| e.as_str().map(str::to_string));
        Some(Step {
            key,
            explanation,
            detail: m,
        })
    }

    fn to_json(&self) -> Json {
        let mut m = Map::new();
        if let Some(e) = &self.explanation {
            m.insert("explanation".into(), Json::from(e.clone()));
        }
        if let Some(k) = self.key {
            m.insert("key".into(), Json::from(k));
        }
        for (k, v) in &self.detail {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Json::Object(m)
    }
}

/// Removes `m[name]` when `f` reads it; otherwise leaves it where it is.
fn take_if<T>(m: &mut Map<String, Json>, name: &str, f: impl Fn(&Json) -> Option<T>) -> Option<T> {
    let t = f(m.get(name)?)?;
    m.remove(name);
    Some(t)
}

impl Example {
    /// An example with just an explanation and the ops it names.
    pub fn new(explanation: impl Into<String>, ops: Vec<u64>) -> Example {
        Example {
            explanation: explanation.into(),
            ops,
            ..Default::default()
        }
    }

    /// Reads a checker's JSON witness. Never fails: a value that is not an
    /// object becomes the explanation, as compact JSON.
    pub fn from_json(v: Json) -> Example {
        let mut m = match v {
            Json::Object(m) => m,
            other => {
                return Example {
                    explanation: other.to_string(),
                    ..Default::default()
                }
            }
        };
        let explanation =
            take_if(&mut m, "explanation", |e| e.as_str().map(str::to_string)).unwrap_or_default();
        let ops = take_if(&mut m, "ops", as_ops).unwrap_or_default();
        let key = take_if(&mut m, "key", as_key);
        let keys = take_if(&mut m, "keys", as_keys).unwrap_or_default();
        let steps = take_if(&mut m, "steps", |s| {
            let a = s.as_array()?;
            a.iter()
                .cloned()
                .map(Step::from_json)
                .collect::<Option<Vec<_>>>()
        })
        .unwrap_or_default();
        Example {
            explanation,
            ops,
            key,
            keys,
            steps,
            detail: m,
        }
    }

    /// The JSON object `results.json` holds.
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        m.insert("explanation".into(), Json::from(self.explanation.clone()));
        m.insert("ops".into(), Json::from(self.ops.clone()));
        if let Some(k) = self.key {
            m.insert("key".into(), Json::from(k));
        }
        if !self.keys.is_empty() {
            m.insert("keys".into(), Json::from(self.keys.clone()));
        }
        if !self.steps.is_empty() {
            m.insert(
                "steps".into(),
                Json::Array(self.steps.iter().map(Step::to_json).collect()),
            );
        }
        for (k, v) in &self.detail {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Json::Object(m)
    }

    /// Every key the example names: its key, its keys, its steps' keys,
    /// each once, in that order.
    pub fn all_keys(&self) -> Vec<Key> {
        let mut out: Vec<Key> = Vec::new();
        let steps = self.steps.iter().filter_map(|s| s.key);
        for k in self
            .key
            .into_iter()
            .chain(self.keys.iter().copied())
            .chain(steps)
        {
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out
    }

    /// A detail field by name (`Null` when absent), e.g. `ex["value"]`.
    pub fn get(&self, name: &str) -> Option<&Json> {
        self.detail.get(name)
    }
}

impl std::ops::Index<&str> for Example {
    type Output = Json;
    /// A detail field (`Null` when absent); the typed fields are fields.
    fn index(&self, name: &str) -> &Json {
        static NULL: Json = Json::Null;
        self.detail.get(name).unwrap_or(&NULL)
    }
}

/// The JSON object, compact.
impl std::fmt::Display for Example {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl Serialize for Example {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Example {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Example, D::Error> {
        Json::deserialize(d).map(Example::from_json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_queue_witness_round_trips_with_its_typed_fields() {
        let v = json!({"explanation": "key 2: value 41 was never read", "ops": [1, 3],
                       "key": 2, "value": 41, "proved-by": {"crashed-op": 3, "read-op": 9}});
        let e = Example::from_json(v.clone());
        assert_eq!(e.key, Some(2));
        assert_eq!(e.ops, vec![1, 3]);
        assert_eq!(e["value"], 41);
        assert_eq!(e["nothing"], Json::Null);
        assert_eq!(e.to_json(), v);
        let back: Example = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn cycle_steps_name_their_keys_and_other_shapes_stay_in_detail() {
        let cycle = json!({"explanation": "G1c", "ops": [4, 7],
                           "steps": [{"key": 5, "explanation": "wr"}, {"rel": "process"}]});
        let e = Example::from_json(cycle.clone());
        assert_eq!(e.all_keys(), vec![5]);
        assert_eq!(e.to_json(), cycle);
        // The linearizability search reports `steps` as a count.
        let lin = json!({"explanation": "gave up", "ops": [1], "key": "3", "steps": 1000});
        let e = Example::from_json(lin);
        assert!(e.steps.is_empty());
        assert_eq!(e["steps"], 1000);
        assert_eq!(e.key, Some(3), "a numeric string is a key");
        assert_eq!(e.to_json()["steps"], 1000);
    }

    #[test]
    fn odd_shapes_are_kept_not_dropped() {
        let e = Example::from_json(json!({"explanation": 7, "ops": 12, "keys": ["x"]}));
        assert_eq!(e.ops, vec![12], "one index is a list of one");
        assert_eq!(
            e["explanation"], 7,
            "a non-text explanation stays as it was"
        );
        assert_eq!(e["keys"], json!(["x"]));
        let e = Example::from_json(json!("just text"));
        assert_eq!(e.explanation, "\"just text\"");
    }
}
