//! gregor-deploy (skeleton).
pub mod netns;
pub mod proxy;
