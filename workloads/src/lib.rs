//! gregor-workloads (skeleton)
