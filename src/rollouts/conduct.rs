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

use super::record::{self, Rollout, RolloutState, TenantState};
use super::requests::RolloutError;
use crate::queue::{self, Enqueued, JobState, NewJob};
use crate::tenants::TenantStatus;
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
    let Some(rollout) = sqlx::query_as::<_, Rollout>(
        "SELECT * FROM rollouts WHERE state = 'running' FOR UPDATE SKIP LOCKED",
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        // A paused rollout's counts still move as its running migrations finish.
        if let Some(paused) = record::active(&mut *tx).await? {
            publish(&record::counts(&mut *tx, paused.id).await?);
        }
        return Ok(Round::default());
    };
    let id = rollout.id;
    let mut round = Round {
        rollout: Some(id),
        ..Round::default()
    };
    if rollout.tenants.is_none() {
        count_new_tenants(&mut tx, &rollout).await?;
    }
    settle_ended_jobs(&mut tx, id).await?;
    let counts = record::counts(&mut *tx, id).await?;
    publish(&counts);
    let of = |stage: i32, state: TenantState| counts.get(&stage).map_or(0, |c| c.get(state));
    let failed: i64 = counts.values().map(|c| c.get(TenantState::Failed)).sum();
    let canary_failed = of(0, TenantState::Failed);
    let first = if failed > 0 {
        record::failures(&mut *tx, id, 1).await?
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
        record::set_state(&mut *tx, id, RolloutState::Halted, Some(&reason)).await?;
        tx.commit().await?;
        tracing::warn!(rollout.id = %id, %reason, "rollout halted");
        round.state = Some(RolloutState::Halted);
        return Ok(round);
    }
    let open = |stage: i32| of(stage, TenantState::Pending) + of(stage, TenantState::Migrating);
    let Some(current) = counts.keys().copied().find(|s| open(*s) > 0) else {
        record::set_state(&mut *tx, id, RolloutState::Succeeded, None).await?;
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

fn publish(counts: &BTreeMap<i32, record::StageCounts>) {
    let totals: Vec<(&str, i64)> = TenantState::ALL
        .iter()
        .map(|s| (s.as_str(), counts.values().map(|c| c.get(*s)).sum()))
        .collect();
    crate::metrics::record_rollout_tenants(&totals);
}

/// Tenants of the rollout's tiers that became ready since it began (provisioned at the newest
/// version) count as succeeded.
async fn count_new_tenants(conn: &mut PgConnection, rollout: &Rollout) -> Result<(), sqlx::Error> {
    let (tiers, stages) = rollout.stage_of_tiers();
    sqlx::query(
        "INSERT INTO rollout_tenants (rollout_id, tenant_id, stage, seq, state, to_version, note)
         SELECT $1, t.id, s.stage, 0, 'succeeded', t.schema_version,
             'provisioned during the rollout'
         FROM tenants t JOIN unnest($2::text[], $3::int[]) AS s(tier, stage) ON s.tier = t.tier
         WHERE t.created_at > $4 AND t.status = 'ready' AND t.schema_version >= $5
         ON CONFLICT DO NOTHING",
    )
    .bind(rollout.id)
    .bind(&tiers)
    .bind(&stages)
    .bind(rollout.created_at)
    .bind(rollout.target_version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Migrating tenants whose job ended without recording its outcome.
async fn settle_ended_jobs(conn: &mut PgConnection, id: Uuid) -> Result<(), RolloutError> {
    let running: Vec<(String, Option<Uuid>)> = sqlx::query_as(
        "SELECT tenant_id, job_id FROM rollout_tenants WHERE rollout_id = $1 AND state = 'migrating'",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    for (tenant, job) in running {
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
            sqlx::query(
                "UPDATE rollout_tenants SET state = $3, error = COALESCE($4, error),
                     updated_at = now()
                 WHERE rollout_id = $1 AND tenant_id = $2 AND state = 'migrating'",
            )
            .bind(id)
            .bind(&tenant)
            .bind(state)
            .bind(error)
            .execute(&mut *conn)
            .await?;
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
    let pending: Vec<(String, Option<TenantStatus>, Option<i64>)> = sqlx::query_as(
        "SELECT rt.tenant_id, t.status, t.schema_version
         FROM rollout_tenants rt LEFT JOIN tenants t ON t.id = rt.tenant_id
         WHERE rt.rollout_id = $1 AND rt.stage = $2 AND rt.state = 'pending'
         ORDER BY rt.seq, rt.tenant_id",
    )
    .bind(rollout.id)
    .bind(stage)
    .fetch_all(&mut *conn)
    .await?;
    let mut started = 0;
    for (tenant, status, version) in pending {
        let set = |state: TenantState, note: Option<String>, job: Option<Uuid>| {
            sqlx::query(
                "UPDATE rollout_tenants SET state = $3, note = $4, job_id = COALESCE($5, job_id),
                     to_version = CASE WHEN $3 = 'succeeded' THEN $6 ELSE to_version END,
                     from_version = CASE WHEN $3 = 'migrating' THEN $6 ELSE from_version END,
                     updated_at = now()
                 WHERE rollout_id = $1 AND tenant_id = $2",
            )
            .bind(rollout.id)
            .bind(tenant.clone())
            .bind(state)
            .bind(note)
            .bind(job)
            .bind(version)
        };
        match status {
            None => {
                set(
                    TenantState::Skipped,
                    Some("the tenant is gone".into()),
                    None,
                )
                .execute(&mut *conn)
                .await?;
            }
            Some(TenantStatus::Ready) if version.unwrap_or(0) >= rollout.target_version => {
                set(
                    TenantState::Succeeded,
                    Some("already at the target".into()),
                    None,
                )
                .execute(&mut *conn)
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
                        set(TenantState::Migrating, None, Some(job.id))
                            .execute(&mut *conn)
                            .await?;
                        tracing::info!(rollout.id = %rollout.id, tenant.id = %tenant,
                            job.id = %job.id, "tenant migration started");
                        *slots -= 1;
                        started += 1;
                    }
                    Enqueued::Existing(job) => {
                        let note = format!("waiting for its {} job {} to end", job.kind, job.id);
                        set(TenantState::Pending, Some(note), None)
                            .execute(&mut *conn)
                            .await?;
                    }
                }
            }
            Some(other) => {
                set(
                    TenantState::Skipped,
                    Some(format!("the tenant is {}", other.as_str())),
                    None,
                )
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    Ok(started)
}
