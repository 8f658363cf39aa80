//! gregor's workloads: seeded generators and the rdkafka clients that
//! perform their operations and record them in a history.
//!
//! - [`generator`]: pure, seeded choice of operations and keys.
//! - [`client`]: one worker's producer + consumer, recording every op.
//! - [`runner`]: many workers at a target rate until told to stop.
//! - [`topic`]: topic creation through the admin API.
//! - [`keymap`]: the key <-> topic-partition bijection.
//! - [`runid`]: run ids, which name each run's topics and groups.
//! - [`settings`]: librdkafka configuration from gregor's settings.

pub mod client;
pub mod generator;
pub mod keymap;
pub mod runid;
pub mod runner;
pub mod settings;
pub mod topic;

pub use client::{final_reads, Client, ClientError, Outcome};
pub use generator::{GenConfig, GenMop, Generator, Op};
pub use keymap::KeyMap;
pub use runid::{RunId, DEFAULT_TOPIC_PREFIX};
pub use runner::{run_workers, run_workers_stallable, Progress, WorkloadConfig, WorkloadEnd};
pub use settings::{AutoOffsetReset, ClientSettings, CommitMode, TxnRecovery, CLIENT_ID};
pub use topic::{
    delete_topics_and_groups, ensure_topic, list_runs, RunLeftovers, TopicError, TopicInfo,
    TopicSpec,
};
