//! The store: every SQL statement about the control database's tables but the job queue's
//! (those are [`crate::queue`]'s), one file per family of tables. The
//! requests, workflows, maintenance services, the API and the console call these functions,
//! never SQL of their own; `tests/source/layers.rs` holds them to it.

pub mod audit;
pub mod events;
pub mod leadership;
pub mod rollout_tenants;
pub mod rollouts;
pub mod sessions;
pub mod snapshots;
pub mod standbys;
pub mod tenants;
