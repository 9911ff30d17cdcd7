//! The conductor's round (on the maintenance leader): for the running rollout, in one
//! transaction holding its row, it
//!
//! 1. counts tenants provisioned since the rollout began (they get every migration at creation)
//!    as succeeded,
//! 2. settles tenants whose migration job ended without saying so (it cannot, but a count that
//!    stays wrong forever would be worse),
//! 3. halts the rollout when a canary failed, failures exceed `max_failures` or a tenant found
//!    a migration changed after it was applied (whatever `max_failures` allows), or marks it
//!    succeeded when no tenant is left,
//! 4. else starts migrate jobs for the next pending tenants of the current stage (the lowest
//!    with tenants pending or migrating), up to `concurrency` migrating at once. A tenant at the
//!    target already succeeds without a job; one no longer ready is skipped; one busy with
//!    another job (or still being provisioned) waits for its next round.
//!
//! Everything it knows is in the control database, so a replica that takes over goes on where
//! this one stopped; the rollout's row lock keeps two conductors from starting the same tenant.

use std::collections::BTreeMap;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::requests::RolloutError;
use crate::queue::{self, Enqueued, JobState, NewJob};
use crate::store::events::{self, EventType, NewEvent};
use crate::store::rollout_tenants::{self, Placed, TenantState};
use crate::store::rollouts::{self, Rollout, RolloutState};
use crate::store::tenants::TenantStatus;
use crate::workflow::migrate::{self, MigrateArgs};
use crate::workflow::runner::Workflow;
use crate::workflow::step::StepNames;

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
    if rollout.tenants.is_none() {
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
        round.started = start_next(&mut tx, &rollout, current, &mut slots, max_attempts).await?;
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
        let state = match job {
            Some(job) => queue::get_job(&mut *conn, job).await?.map(|j| j.state),
            None => None,
        };
        let ended = match state {
            Some(JobState::Succeeded) => Some((TenantState::Succeeded, None)),
            Some(JobState::Failed | JobState::Cancelled) | None => Some((
                TenantState::Failed,
                Some("its migration job ended without recording an outcome"),
            )),
            Some(_) => None,
        };
        if let Some((state, error)) = ended {
            rollout_tenants::settle(conn, id, &tenant, state, error).await?;
        }
    }
    Ok(())
}

/// Starts migrate jobs for the pending tenants of `stage`, in order, while `slots` last.
async fn start_next(
    conn: &mut PgConnection,
    rollout: &Rollout,
    stage: i32,
    slots: &mut i64,
    max_attempts: i32,
) -> Result<usize, RolloutError> {
    let pending = rollout_tenants::pending(conn, rollout.id, stage).await?;
    let mut started = 0;
    for p in pending {
        let (tenant, status, version) = (p.tenant_id, p.status, p.schema_version);
        let placed = |state: TenantState, note: Option<String>, job: Option<Uuid>| Placed {
            state,
            note,
            job,
            version,
        };
        match status {
            None => {
                rollout_tenants::place(
                    conn,
                    rollout.id,
                    &tenant,
                    placed(
                        TenantState::Skipped,
                        Some("the tenant is gone".into()),
                        None,
                    ),
                )
                .await?;
            }
            Some(TenantStatus::Ready) if version.unwrap_or(0) >= rollout.target_version => {
                rollout_tenants::place(
                    conn,
                    rollout.id,
                    &tenant,
                    placed(
                        TenantState::Succeeded,
                        Some("already at the target".into()),
                        None,
                    ),
                )
                .await?;
            }
            // Provisioning gives it every migration; it is counted once it is ready.
            Some(TenantStatus::Provisioning) => {}
            Some(TenantStatus::Ready) => {
                if *slots <= 0 {
                    continue;
                }
                let args = MigrateArgs {
                    target_version: rollout.target_version,
                    rollout: Some(rollout.id),
                };
                let new = NewJob::new(
                    migrate::KIND,
                    migrate::Migrate::first_step().name(),
                    max_attempts,
                )
                .tenant(&tenant)
                .args(serde_json::to_value(&args).expect("arguments serialize"));
                match queue::enqueue(&mut *conn, new).await? {
                    Enqueued::Created(job) => {
                        rollout_tenants::place(
                            conn,
                            rollout.id,
                            &tenant,
                            placed(TenantState::Migrating, None, Some(job.id)),
                        )
                        .await?;
                        tracing::info!(rollout.id = %rollout.id, tenant.id = %tenant,
                            job.id = %job.id, "tenant migration started");
                        *slots -= 1;
                        started += 1;
                    }
                    Enqueued::Existing(job) => {
                        let note = format!("waiting for its {} job {} to end", job.kind, job.id);
                        rollout_tenants::place(
                            conn,
                            rollout.id,
                            &tenant,
                            placed(TenantState::Pending, Some(note), None),
                        )
                        .await?;
                    }
                }
            }
            Some(other) => {
                rollout_tenants::place(
                    conn,
                    rollout.id,
                    &tenant,
                    placed(
                        TenantState::Skipped,
                        Some(format!("the tenant is {}", other.as_str())),
                        None,
                    ),
                )
                .await?;
            }
        }
    }
    Ok(started)
}
