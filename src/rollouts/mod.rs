//! Fleet rollouts: bringing many tenants to a target, the canary first, then stage by stage
//! (tiers in the order asked for), a few tenants at a time, halting when failures exceed what
//! was allowed. A rollout has a kind ([`RolloutKind`]): a tenant-schema version (`schema`,
//! each tenant a `migrate` job, [`crate::workflow::migrate`]), an engine major (an
//! `engine_upgrade` job), a minor version, a CA, or RDS's pending maintenance (each tenant a
//! job of [`crate::workflow::fleet`]). A tenant's job never runs beside another job of the
//! tenant. The requests that create and steer them ([`requests`], the RDS checks of their
//! targets in [`offers`]), what each kind starts per tenant and when a tenant is there already
//! ([`kinds`]), and the conductor round that starts the next tenants ([`conduct`]); their rows
//! are [`crate::store::rollouts`] and [`crate::store::rollout_tenants`].

pub mod conduct;
mod error;
pub mod kinds;
pub mod offers;
pub mod requests;
mod target;
mod view;

pub use crate::store::rollout_tenants::{StageCounts, TenantState};
pub use crate::store::rollouts::{Rollout, RolloutKind, RolloutState};
pub use offers::Offers;
pub use requests::{NewRollout, RolloutError, RolloutView, StageView, Target};
