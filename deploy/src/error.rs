//! Typed errors for everything that can go wrong while running a local cluster.

use std::path::PathBuf;

/// Every failure of this crate. Messages name the node, port, file or
/// command involved so that a user can act on them without reading code.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The state file exists but cannot be understood.
    #[error("cluster state file {path} is not valid: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// A port the cluster needs is already taken by another process.
    #[error(
        "port {port} (needed by {node}) is already in use on {host}; \
         stop whatever listens there or choose another base port"
    )]
    PortInUse {
        port: u16,
        host: String,
        node: String,
    },

    /// The broker binary or installation could not be found.
    #[error("{0}")]
    NotFound(String),

    /// A broker process could not be started at all.
    #[error("cannot start {node} ({program}): {source}")]
    Spawn {
        node: String,
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A broker process exited while we waited for it to accept connections.
    #[error("{node} exited during startup ({status}){tail}")]
    ExitedDuringStartup {
        node: String,
        status: String,
        log: PathBuf,
        /// The first ERROR line of the log (if any) and its last lines.
        tail: String,
    },

    /// A broker did not answer on its port in time.
    #[error("{node} did not answer a Kafka ApiVersions request on {addr} within {secs} s{tail}")]
    StartTimeout {
        node: String,
        addr: String,
        secs: u64,
        log: PathBuf,
        /// The first ERROR line of the log (if any) and its last lines.
        tail: String,
    },

    /// A node index outside the cluster.
    #[error("no node {index}: the cluster has {count} node(s) (0..{count})")]
    NoSuchNode { index: usize, count: usize },

    /// A node operation that needs a running process found none.
    #[error("{node} is not running")]
    NotRunning { node: String },

    /// A signal could not be delivered.
    #[error("cannot send {signal} to {node} (pid {pid}): {source}")]
    Signal {
        node: String,
        pid: u32,
        signal: String,
        #[source]
        source: nix::errno::Errno,
    },

    /// A process did not exit after SIGKILL.
    #[error("{node} (pid {pid}) is still alive {secs} s after SIGKILL")]
    WontDie { node: String, pid: u32, secs: u64 },

    /// `kafka-storage.sh format` failed.
    #[error("formatting the log directory of {node} failed ({status}): {command}\n{output}")]
    KafkaFormat {
        node: String,
        command: String,
        status: String,
        output: String,
    },

    /// A Kafka command-line tool (e.g. the feature tool) failed.
    #[error("{tool} failed ({status}): {command}\n{output}")]
    KafkaTool {
        tool: String,
        command: String,
        status: String,
        output: String,
    },

    /// The directory already holds a live cluster of another shape.
    #[error(
        "{dir} already holds a running {existing} cluster; run `gregor cluster down` \
         there before starting a {requested} cluster"
    )]
    Mismatch {
        dir: PathBuf,
        existing: String,
        requested: String,
    },

    /// A cluster kind name that is not known.
    #[error("unknown cluster kind {0:?}; known kinds: tansu, tansu-memory, kafka")]
    UnknownKind(String),

    /// A tool gregor needs (java, mvn) is missing, too old, or failed.
    #[error("{message}")]
    Tool { tool: String, message: String },

    /// A started cluster never became whole (e.g. brokers missing from metadata).
    #[error("{0}")]
    NotReady(String),

    /// A specification that cannot work (zero brokers, ports past 65535...).
    #[error("invalid cluster specification: {0}")]
    InvalidSpec(String),
}

impl DeployError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        DeployError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
