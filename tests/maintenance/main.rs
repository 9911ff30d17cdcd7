//! The maintenance leader's services against the local stack: the reconciler (drift, engine
//! versions and pending maintenance), the snapshot cleaner, the warm pool's keeper, the rollout
//! conductor and the job pruner. One test binary; each module is one former test file.

#[path = "../support/mod.rs"]
mod support;

mod drift;
mod engine_versions;
mod fleet_kinds;
mod pool;
mod retention;
mod rollouts;
mod snapshots;
