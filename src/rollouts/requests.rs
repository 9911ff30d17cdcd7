//! The requests that create and steer a rollout, each one transaction: create (the tenants and
//! their stages fixed at once), pause, resume (after a halt, the failed tenants first), cancel;
//! and the view of a rollout with its counts.

use std::collections::BTreeSet;

use sqlx::PgPool;
use uuid::Uuid;

use super::offers::Offers;
use crate::audit::{self, Trail};
use crate::config::Tiers;
use crate::store::events::{EventType, NewEvent};
use crate::store::rollout_tenants::{self};
use crate::store::rollouts::{self, NewRow, Rollout, RolloutState};
use crate::tenant_db::SchemaMigration;

pub use super::error::RolloutError;
pub use super::target::{
    Aim, DEFAULT_CANARY, DEFAULT_CONCURRENCY, MAINTENANCE_ACTIONS, MAX_CONCURRENCY, MAX_TENANTS,
    NewRollout, Target,
};
use super::target::{check_offered, validate};
pub use super::view::{RolloutView, StageView, list, view, view_of};

/// Creates a rollout and fixes its tenants: every tenant of the stages' tiers (or of the list
/// asked for), `pending` when ready or being provisioned, `skipped` otherwise (suspended,
/// failed, deprovisioning, deleted, lost, degraded); the canary is the first `canary` ready
/// tenants of the first stage. Refused while another rollout (of any kind) runs or is paused:
/// one rollout at a time, so a tenant is never in two at once. A target of an RDS kind is
/// checked with RDS (`offers`) before anything is written.
/// With a `trail`, the request's audit row is written in the same transaction.
pub async fn create(
    pool: &PgPool,
    trail: Option<&Trail>,
    tiers: &Tiers,
    catalog: &[SchemaMigration],
    offers: &Offers,
    new: &NewRollout,
) -> Result<Rollout, RolloutError> {
    let (target, stages) = validate(tiers, catalog, new)?;
    check_offered(offers, &target).await?;
    let mut tx = pool.begin().await?;
    if let Some(tenants) = &new.tenants {
        let known = crate::store::tenants::existing(&mut *tx, tenants).await?;
        let known: BTreeSet<&String> = known.iter().collect();
        let missing: Vec<&str> = tenants
            .iter()
            .filter(|t| !known.contains(t))
            .take(10)
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(RolloutError::TenantsNotFound(missing.join(", ")));
        }
    }
    let row = NewRow {
        id: Uuid::new_v4(),
        kind: target.kind,
        target_version: target.version,
        target: target.target.as_deref(),
        apply: target.apply.as_deref(),
        canary: new.canary.unwrap_or(DEFAULT_CANARY),
        concurrency: new.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
        max_failures: new.max_failures.unwrap_or(0),
        stages: &stages,
        tenants: new.tenants.as_deref(),
    };
    // One active rollout at a time (a partial unique index): an insert that meets the active
    // one inserts nothing. If that one ended between the insert and the look at it, its slot is
    // free: try again rather than refuse a valid request.
    let mut tries = 0;
    let rollout = loop {
        if let Some(rollout) = rollouts::insert(&mut tx, &row).await? {
            break rollout;
        }
        tries += 1;
        if let Some(active) = rollouts::active(&mut *tx).await? {
            return Err(RolloutError::InProgress(active.id, active.state.as_str()));
        }
        if tries == 3 {
            return Err(in_progress(&mut tx).await?);
        }
    };
    rollout_tenants::fix_tenants(&mut tx, &rollout).await?;
    if let Some(t) = trail {
        t.rollout(rollout.id);
    }
    let told = [NewEvent::rollout(EventType::RolloutStarted, &rollout)];
    audit::commit_with(tx, trail, 202, &told).await?;
    Ok(rollout)
}

async fn in_progress(conn: &mut sqlx::PgConnection) -> Result<RolloutError, RolloutError> {
    Ok(match rollouts::active(&mut *conn).await? {
        Some(active) => RolloutError::InProgress(active.id, active.state.as_str()),
        // It ended between the insert and this read: the caller may try again.
        None => RolloutError::Invalid("another rollout just ended; try again".into()),
    })
}

/// What a request to steer a rollout asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steer {
    Pause,
    Resume,
    Cancel,
}

impl Steer {
    fn action(self) -> &'static str {
        match self {
            Steer::Pause => "pause",
            Steer::Resume => "resume",
            Steer::Cancel => "cancel",
        }
    }
}

/// Pauses, resumes or cancels a rollout. Asking for the state it is in already changes
/// nothing. Resuming a halted rollout puts its failed tenants back first in their stage.
/// With a `trail`, the request's audit row is written in the same transaction.
pub async fn steer(
    pool: &PgPool,
    trail: Option<&Trail>,
    id: Uuid,
    steer: Steer,
) -> Result<Rollout, RolloutError> {
    use RolloutState::*;
    if let Some(t) = trail {
        t.rollout(id);
    }
    let mut tx = pool.begin().await?;
    let rollout = rollouts::lock(&mut tx, id)
        .await?
        .ok_or(RolloutError::NotFound(id))?;
    let next = match (steer, rollout.state) {
        (Steer::Pause, Paused) | (Steer::Resume, Running) | (Steer::Cancel, Cancelled) => {
            return Ok(rollout);
        }
        (Steer::Pause, Running) => Paused,
        (Steer::Resume, Paused | Halted) => Running,
        (Steer::Cancel, Running | Paused | Halted) => Cancelled,
        (_, state) => {
            return Err(RolloutError::WrongState {
                id,
                state: state.as_str(),
                action: steer.action(),
            });
        }
    };
    if rollout.state == Halted && next == Running {
        // Failed tenants go first, in the order they failed.
        rollout_tenants::requeue_failed(&mut tx, id).await?;
    }
    let reason = match next {
        Cancelled => Some("cancelled"),
        _ => None,
    };
    let updated = rollouts::steer(&mut tx, id, next, reason).await;
    let updated = match updated {
        Ok(r) => r,
        // Resuming a halted rollout while another one runs.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            drop(tx);
            let mut conn = pool.acquire().await?;
            return Err(in_progress(&mut conn).await?);
        }
        Err(e) => return Err(e.into()),
    };
    audit::commit(tx, trail, 202).await?;
    Ok(updated)
}
