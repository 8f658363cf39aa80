//! gregor's harness: the command line, scenario files, the runner that ties
//! a cluster, a workload and a nemesis together, and the run store.
//!
//! The `gregor` binary (`main.rs`) is a thin shell over [`cli::main`].

pub mod capacity;
pub mod certify;
pub mod cli;
pub mod clients;
pub mod export;
pub mod follow;
pub mod monitor;
pub mod nemesis;
pub mod plan;
pub mod run;
pub mod runmetrics;
pub mod runmon;
pub mod scenario;
pub mod serve;
pub mod store;
pub mod truth;
pub mod ui;
