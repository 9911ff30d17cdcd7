//! The maintenance leader's services against the local stack: the reconciler (drift), the
//! snapshot cleaner, the warm pool's keeper, the rollout conductor and the job pruner. One test
//! binary; each module is one former test file.

#[path = "../support/mod.rs"]
mod support;

mod drift;
mod pool;
mod retention;
mod rollouts;
mod snapshots;
