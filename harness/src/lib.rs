//! gregor-harness
