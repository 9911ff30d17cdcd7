//! Fleet schema rollouts: bringing many tenant databases to a new tenant-schema version, the
//! canary first, then stage by stage (tiers in the order asked for), a few tenants at a time,
//! halting when failures exceed what was allowed. Each tenant's migration is a `migrate` job
//! of its own ([`crate::workflow::migrate`]), so it never runs beside another job of the
//! tenant. The requests that create and steer them ([`requests`]) and the conductor round that
//! starts the next tenants ([`conduct`]); their rows are [`crate::store::rollouts`] and
//! [`crate::store::rollout_tenants`].

pub mod conduct;
pub mod requests;

pub use crate::store::rollout_tenants::{StageCounts, TenantState};
pub use crate::store::rollouts::{Rollout, RolloutState};
pub use requests::{NewRollout, RolloutError, RolloutView, StageView};
