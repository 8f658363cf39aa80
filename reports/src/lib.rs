//! gregor-reports (skeleton)
