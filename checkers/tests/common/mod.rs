//! Small builders that make hand-written histories readable.
#![allow(dead_code)]

use gregor_history::{Event, EventType, History, Key, Mop, Offset, Process, Val, Value, F};

/// Builds a history event by event; each event is 1 ms after the previous.
#[derive(Default)]
pub struct Hb {
    pub events: Vec<Event>,
    pub time: u64,
}

/// An acknowledged send micro-op.
pub fn s(key: Key, value: Val, offset: Offset) -> Mop {
    Mop::Send {
        key,
        value,
        offset: Some(offset),
    }
}

/// A poll micro-op with its results.
pub fn r(reads: &[(Key, &[(Offset, Val)])]) -> Mop {
    Mop::Poll {
        reads: Some(reads.iter().map(|(k, p)| (*k, p.to_vec())).collect()),
    }
}

/// The invocation form of micro-ops: sends without offsets, polls unread.
pub fn invocation_of(mops: &[Mop]) -> Vec<Mop> {
    mops.iter()
        .map(|m| match m {
            Mop::Send { key, value, .. } => Mop::Send {
                key: *key,
                value: *value,
                offset: None,
            },
            Mop::Poll { .. } => Mop::Poll { reads: None },
            other => other.clone(),
        })
        .collect()
}

impl Hb {
    pub fn new() -> Hb {
        Hb::default()
    }

    /// Appends one event; returns its index.
    pub fn push(&mut self, p: u64, kind: EventType, f: F, value: Value) -> u64 {
        let index = self.events.len() as u64;
        self.time += 1_000_000;
        self.events.push(Event {
            index,
            time: self.time,
            process: Process::Client(p),
            kind,
            f,
            value,
            error: None,
            extra: vec![],
        });
        index
    }

    /// Lets `ms` milliseconds pass.
    pub fn wait(&mut self, ms: u64) {
        self.time += ms * 1_000_000;
    }

    /// An invocation then its completion; returns the completion's index.
    pub fn op(&mut self, p: u64, kind: EventType, f: F, mops: Vec<Mop>) -> u64 {
        self.push(
            p,
            EventType::Invoke,
            f.clone(),
            Value::Mops(invocation_of(&mops)),
        );
        let done = if kind == EventType::Ok {
            mops
        } else {
            invocation_of(&mops)
        };
        self.push(p, kind, f, Value::Mops(done))
    }

    pub fn send(&mut self, p: u64, key: Key, value: Val, offset: Offset) -> u64 {
        self.op(p, EventType::Ok, F::Send, vec![s(key, value, offset)])
    }

    pub fn send_fail(&mut self, p: u64, key: Key, value: Val) -> u64 {
        self.op(
            p,
            EventType::Fail,
            F::Send,
            vec![Mop::Send {
                key,
                value,
                offset: None,
            }],
        )
    }

    pub fn send_info(&mut self, p: u64, key: Key, value: Val) -> u64 {
        self.op(
            p,
            EventType::Info,
            F::Send,
            vec![Mop::Send {
                key,
                value,
                offset: None,
            }],
        )
    }

    pub fn poll(&mut self, p: u64, reads: &[(Key, &[(Offset, Val)])]) -> u64 {
        self.op(p, EventType::Ok, F::Poll, vec![r(reads)])
    }

    pub fn txn(&mut self, p: u64, kind: EventType, mops: Vec<Mop>) -> u64 {
        self.op(p, kind, F::Txn, mops)
    }

    fn keys_op(&mut self, p: u64, f: F, keys: &[Key]) -> u64 {
        self.push(p, EventType::Invoke, f.clone(), Value::Keys(keys.to_vec()));
        self.push(p, EventType::Ok, f, Value::Keys(keys.to_vec()))
    }

    pub fn assign(&mut self, p: u64, keys: &[Key]) -> u64 {
        self.keys_op(p, F::Assign, keys)
    }

    pub fn subscribe(&mut self, p: u64, keys: &[Key]) -> u64 {
        self.keys_op(p, F::Subscribe, keys)
    }

    pub fn history(&self) -> History {
        History::new(self.events.clone())
    }
}
