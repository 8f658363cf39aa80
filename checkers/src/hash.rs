//! The checkers' hasher: the one FxHash-style hasher of the workspace,
//! which lives in the history crate ([`gregor_history::hash`]) so that the
//! history's operation pairing ([`gregor_history::ops::Pairing`]) hashes
//! processes the same fast way. Re-exported here under its old path.

#[allow(unused_imports)]
pub use gregor_history::hash::{FxBuild, FxHashMap, FxHashSet, FxHasher};
