//! The conductor's round (on the maintenance leader): for the running rollout (of any kind),
//! in one transaction holding its row, it
//!
//! 1. (schema rollouts) counts tenants provisioned since the rollout began (they get every
//!    migration at creation) as succeeded,
//! 2. settles tenants whose migration job ended without saying so (it cannot, but a count that
//!    stays wrong forever would be worse),
//! 3. halts the rollout when a canary failed, failures exceed `max_failures` or a tenant found
//!    a migration changed after it was applied (whatever `max_failures` allows), or marks it
//!    succeeded when no tenant is left,
//! 4. else starts the kind's jobs ([`super::kinds::job`]: migrate, engine_upgrade,
//!    engine_minor, ca_certificate, maintenance) for the next pending tenants of the current
//!    stage (the lowest with tenants pending or migrating), up to `concurrency` at once. A
//!    tenant at the target already ([`super::kinds::place`]) succeeds without a job; one no
//!    longer ready, or one the kind cannot move, is skipped; one busy with another job (or still
//!    being provisioned) waits for its next round.
//!
//! Everything it knows is in the control database, so a replica that takes over goes on where
//! this one stopped; the rollout's row lock keeps two conductors from starting the same tenant.

use std::collections::BTreeMap;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::kinds::{self, Place};
use super::requests::RolloutError;
use crate::queue::{self, Enqueued, JobState};
use crate::store::events::{self, EventType, NewEvent};
use crate::store::rollout_tenants::{self, Placed, TenantState};
use crate::store::rollouts::{self, Rollout, RolloutKind, RolloutState};
use crate::store::tenants::TenantStatus;

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    pub rollout: Option<Uuid>,
    /// Migrate jobs started.
    pub started: usize,
    /// The state the rollout is in afterwards.
    pub state: Option<RolloutState>,
}

/// One round: see the module's documentation.
pub async fn advance(pool: &PgPool, max_attempts: i32) -> Result<Round, RolloutError> {
    advance_in(pool.begin().await?, max_attempts).await
}

/// [`advance`] in a transaction the caller began (the maintenance leader's fenced one, so that
/// a leader whose term is over starts nothing).
pub async fn advance_in(
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    max_attempts: i32,
) -> Result<Round, RolloutError> {
    let Some(rollout) = rollouts::lock_running(&mut tx).await? else {
        // A paused rollout's counts still move as its running migrations finish.
        if let Some(paused) = rollouts::active(&mut *tx).await? {
            publish(&rollout_tenants::counts(&mut *tx, paused.id).await?);
        }
        return Ok(Round::default());
    };
    let id = rollout.id;
    let mut round = Round {
        rollout: Some(id),
        ..Round::default()
    };
    let Some(kind) = rollout.kind() else {
        // A kind of a later release: left to a leader that knows it.
        tracing::warn!(rollout.id = %id, kind = %rollout.kind, "rollout of an unknown kind left alone");
        return Ok(round);
    };
    if rollout.tenants.is_none() && kind == RolloutKind::Schema {
        // Provisioned at the newest version: they count as succeeded.
        rollout_tenants::count_new_tenants(&mut tx, &rollout).await?;
    }
    settle_ended_jobs(&mut tx, id).await?;
    let counts = rollout_tenants::counts(&mut *tx, id).await?;
    publish(&counts);
    let of = |stage: i32, state: TenantState| counts.get(&stage).map_or(0, |c| c.get(state));
    let failed: i64 = counts.values().map(|c| c.get(TenantState::Failed)).sum();
    let canary_failed = of(0, TenantState::Failed);
    let first = if failed > 0 {
        rollout_tenants::failures(&mut *tx, id, 1).await?
    } else {
        Vec::new()
    };
    // A migration file changed after some tenant applied it: the directory is not what was
    // released, whatever max_failures allows; no other tenant gets the file as it is now.
    let changed = first
        .first()
        .is_some_and(|f| f.error_class.as_deref() == Some("migration_changed"));
    if changed || canary_failed > 0 || failed > i64::from(rollout.max_failures) {
        let who = first
            .first()
            .map(|f| {
                format!(
                    "; first: tenant {}: {}",
                    f.tenant_id,
                    f.error.as_deref().unwrap_or("failed")
                )
            })
            .unwrap_or_default();
        let reason = if changed {
            format!(
                "a tenant migration changed after it was applied; restore the file as it was \
                 released, then resume{who}"
            )
        } else if canary_failed > 0 {
            format!("{canary_failed} canary tenant(s) failed{who}")
        } else {
            format!(
                "{failed} tenant(s) failed, more than max_failures {}{who}",
                rollout.max_failures
            )
        };
        rollouts::set_state(&mut *tx, id, RolloutState::Halted, Some(&reason)).await?;
        tell(&mut tx, id, EventType::RolloutHalted).await?;
        tx.commit().await?;
        tracing::warn!(rollout.id = %id, %reason, "rollout halted");
        round.state = Some(RolloutState::Halted);
        return Ok(round);
    }
    let open = |stage: i32| of(stage, TenantState::Pending) + of(stage, TenantState::Migrating);
    let Some(current) = counts.keys().copied().find(|s| open(*s) > 0) else {
        rollouts::set_state(&mut *tx, id, RolloutState::Succeeded, None).await?;
        tell(&mut tx, id, EventType::RolloutSucceeded).await?;
        tx.commit().await?;
        tracing::info!(rollout.id = %id, failed, "rollout succeeded");
        round.state = Some(RolloutState::Succeeded);
        return Ok(round);
    };
    let migrating: i64 = counts.values().map(|c| c.get(TenantState::Migrating)).sum();
    let mut slots = i64::from(rollout.concurrency) - migrating;
    if of(current, TenantState::Pending) > 0 {
        round.started =
            start_next(&mut tx, &rollout, kind, current, &mut slots, max_attempts).await?;
    }
    tx.commit().await?;
    round.state = Some(RolloutState::Running);
    Ok(round)
}

/// Records `kind` about the rollout as it is now: the transaction's last statements.
async fn tell(conn: &mut PgConnection, id: Uuid, kind: EventType) -> Result<(), RolloutError> {
    if let Some(rollout) = rollouts::get(&mut *conn, id).await? {
        events::record(conn, &[NewEvent::rollout(kind, &rollout)]).await?;
    }
    Ok(())
}

fn publish(counts: &BTreeMap<i32, rollout_tenants::StageCounts>) {
    let totals: Vec<(&str, i64)> = TenantState::ALL
        .iter()
        .map(|s| (s.as_str(), counts.values().map(|c| c.get(*s)).sum()))
        .collect();
    crate::metrics::record_rollout_tenants(&totals);
}

/// Migrating tenants whose job ended without recording its outcome.
async fn settle_ended_jobs(conn: &mut PgConnection, id: Uuid) -> Result<(), RolloutError> {
    for (tenant, job) in rollout_tenants::migrating(conn, id).await? {
        let job = match job {
            Some(job) => queue::get_job(&mut *conn, job).await?,
            None => None,
        };
        // A job that records no outcome itself (an engine upgrade) ends here, with its error.
        let error = job.as_ref().and_then(|j| j.error.clone());
        let ended = match job.map(|j| j.state) {
            Some(JobState::Succeeded) => Some((TenantState::Succeeded, None)),
            Some(JobState::Failed | JobState::Cancelled) | None => Some((
                TenantState::Failed,
                Some(error.unwrap_or_else(|| "its job ended without recording an outcome".into())),
            )),
            Some(_) => None,
        };
        if let Some((state, error)) = ended {
            rollout_tenants::settle(conn, id, &tenant, state, error.as_deref()).await?;
        }
    }
    Ok(())
}

/// Starts the kind's jobs for the pending tenants of `stage`, in order, while `slots` last.
async fn start_next(
    conn: &mut PgConnection,
    rollout: &Rollout,
    kind: RolloutKind,
    stage: i32,
    slots: &mut i64,
    max_attempts: i32,
) -> Result<usize, RolloutError> {
    let pending = rollout_tenants::pending(conn, rollout.id, stage).await?;
    let mut started = 0;
    for p in pending {
        let tenant = p.tenant_id.clone();
        let version = p.schema_version;
        let placed = |state: TenantState,
                      note: Option<String>,
                      job: Option<Uuid>,
                      target_now: Option<String>| Placed {
            state,
            note,
            job,
            version,
            target_now,
        };
        let place = match p.status {
            None => placed(
                TenantState::Skipped,
                Some("the tenant is gone".into()),
                None,
                None,
            ),
            // Provisioning gives it every migration (and the newest engine and CA RDS
            // offers); it is counted once it is ready.
            Some(TenantStatus::Provisioning) => continue,
            Some(TenantStatus::Ready) => match kinds::place(rollout, kind, &p) {
                Place::There(now) => placed(
                    TenantState::Succeeded,
                    Some("already at the target".into()),
                    None,
                    now,
                ),
                Place::Skip(why) => placed(TenantState::Skipped, Some(why), None, None),
                Place::Start(now) => {
                    if *slots <= 0 {
                        continue;
                    }
                    let new = kinds::job(rollout, kind, &tenant, max_attempts);
                    match queue::enqueue(&mut *conn, new).await? {
                        Enqueued::Created(job) => {
                            tracing::info!(rollout.id = %rollout.id, tenant.id = %tenant,
                                job.id = %job.id, kind = kind.as_str(), "tenant change started");
                            *slots -= 1;
                            started += 1;
                            placed(TenantState::Migrating, None, Some(job.id), now)
                        }
                        Enqueued::Existing(job) => {
                            let note =
                                format!("waiting for its {} job {} to end", job.kind, job.id);
                            placed(TenantState::Pending, Some(note), None, None)
                        }
                    }
                }
            },
            Some(other) => placed(
                TenantState::Skipped,
                Some(format!("the tenant is {}", other.as_str())),
                None,
                None,
            ),
        };
        rollout_tenants::place(conn, rollout.id, &tenant, place).await?;
    }
    Ok(started)
}
