//! gregor's shared vocabulary.
//!
//! A run of gregor produces a *history*: one JSON object per line, each an
//! invocation or completion of a client operation, or a nemesis action (see
//! `shared/DESIGN.md`). This crate holds the typed events ([`Event`],
//! [`Mop`]), the streaming writer used during a run ([`Recorder`]), the
//! reader used by checkers and reports ([`History`]), and the run metadata
//! saved beside the history ([`RunMeta`]). It depends on serde only.

pub mod capacity;
pub mod cluster;
pub mod event;
mod fast;
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
