//! gregor's shared vocabulary.
//!
//! A run of gregor produces a *history*: one JSON object per line, each an
//! invocation or completion of a client operation, or a nemesis action (see
//! `shared/DESIGN.md`). This crate holds the typed events ([`Event`],
//! [`Mop`]), the streaming writer used during a run ([`Recorder`]), the
//! reader used by checkers and reports ([`History`]), the run metadata
//! saved beside the history ([`RunMeta`]), the pairing of invokes with
//! their completions ([`ops::Pairing`], the one pairing every crate uses)
//! with the one ok/fail/info [`ops::Outcome`], and the workspace's one
//! fast hasher ([`hash`]).
//!
//! Dependencies: `serde` (derive) and `serde_json` (the JSONL format),
//! `thiserror` (typed errors); `tempfile` for tests only. It depends on no
//! other gregor crate: every other crate depends on it.

pub mod capacity;
pub mod cluster;
pub mod event;
mod fast;
pub mod hash;
pub mod meta;
pub mod nemesis;
pub mod ops;
pub mod reader;
pub mod validate;
pub mod witness;
pub mod writer;

pub use cluster::{BrokerOffsets, ClusterSample, PartitionState};
pub use event::{Event, EventType, Key, Mop, Offset, Process, Reads, Val, Value, F};
pub use meta::{Acks, ClientMeta, IsolationLevel, MetaError, RunMeta, SubVia, TopicPartition};
pub use reader::{History, HistoryError};
pub use validate::{Malformed, Validator};
pub use witness::{Example, Step};
pub use writer::Recorder;
