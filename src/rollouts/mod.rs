//! Fleet schema rollouts: bringing many tenant databases to a new tenant-schema version, the
//! canary first, then stage by stage (tiers in the order asked for), a few tenants at a time,
//! halting when failures exceed what was allowed. Each tenant's migration is a `migrate` job
//! of its own ([`crate::workflow::migrate`]), so it never runs beside another job of the
//! tenant. The record of rollouts ([`record`]), the requests that create and steer them
//! ([`requests`]), and the conductor round that starts the next tenants ([`conduct`]).

pub mod conduct;
pub mod record;
pub mod requests;

pub use record::{Rollout, RolloutState, StageCounts, TenantState};
pub use requests::{NewRollout, RolloutError, RolloutView, StageView};
