//! gregor-deploy: local clusters to put on trial.
//!
//! [`Cluster::up`] starts a [`ClusterSpec`]: Apache Kafka nodes in KRaft
//! mode (`kafka`, the default: jars of any version resolved from Maven
//! Central into a per-version cache by [`kafka::dist`], or a release
//! tarball), several tansu brokers sharing one SQLite store (`tansu`), or
//! one scratch tansu broker (`tansu-memory`). Brokers
//! run detached in their own process groups, log to `<dir>/logs/broker-N.log`,
//! and are recorded in `<dir>/cluster.json` so that any process can
//! [`Cluster::load`] the cluster and stop, kill, pause or restart a node.
//! Signals only ever go to recorded pids whose start time still matches.
//!
//! ```no_run
//! use gregor_deploy::{Cluster, ClusterKind, ClusterSpec};
//! let mut cluster = Cluster::up(ClusterSpec::new(ClusterKind::Tansu, "/tmp/gregor-cluster"))?;
//! println!("bootstrap.servers={}", cluster.bootstrap());
//! cluster.kill(1)?;
//! cluster.start(1)?;
//! cluster.down()?;
//! # Ok::<(), gregor_deploy::DeployError>(())
//! ```
//!
//! [`ability`] says what the nemesis may do to a cluster, one trait per
//! ability ([`ability::Kill`], [`ability::Pause`], …), implemented by each
//! kind of cluster according to what it can do.
//!
//! [`wire`] holds the few raw Kafka requests used to tell whether a broker
//! answers (ApiVersions) and what it reports (Metadata, CreateTopics);
//! [`kapi`] is the async client over the `kafka-protocol` crate's messages
//! for what librdkafka does not expose (groups' offsets, quotas, configs).

pub mod ability;
pub mod cluster;
pub mod error;
pub mod faketime;
pub mod kadmin;
pub mod kafka;
pub mod kapi;
pub mod netns;
pub mod process;
pub mod proxy;
pub mod registry;
pub mod spec;
pub mod tansu;
pub mod wire;

pub use cluster::{Cluster, Node, NodeStatus, ProcessStatus, STATE_FILE};
pub use error::DeployError;
/// The lazy filesystem lazy disks are made of (`gregor lazyfs`).
pub use gregor_lazyfs as lazyfs;
pub use kafka::{KafkaDist, DEFAULT_KAFKA_VERSION};
pub use spec::{ClusterKind, ClusterSpec, DEFAULT_BASE_PORT};
pub use tansu::find_tansu;
