//! gregor-deploy (skeleton)
