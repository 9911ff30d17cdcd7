//! The requests that start a tenant's workflows: provision it, deprovision it. Each is one
//! transaction that checks what the tenant is doing, updates its row and enqueues the job at
//! the workflow's first step. The HTTP API is a thin layer over these.

use sqlx::PgPool;

use super::record::{Tenant, TenantError, TenantStatus, lock, validate_id};
use crate::config::Tiers;
use crate::queue::{self, Enqueued, Job, NewJob};
use crate::workflow::deprovision::{Deprovision, DeprovisionArgs};
use crate::workflow::provision::{Provision, ProvisionArgs};
use crate::workflow::runner::Workflow;
use crate::workflow::step::StepNames;

fn conflict(id: &str, reason: impl Into<String>) -> TenantError {
    TenantError::Conflict {
        id: id.to_string(),
        reason: reason.into(),
    }
}

/// A new job of workflow `W` for the tenant, at its first step.
fn new_job<W: Workflow>(tenant: &str, args: &W::Args, max_attempts: i32) -> NewJob {
    let args = serde_json::to_value(args).expect("job arguments serialize");
    NewJob::new(W::KIND, W::first_step().name(), max_attempts)
        .tenant(tenant)
        .args(args)
}

/// Asks for `id` to be provisioned on `tier`. One transaction: the tenant is created (or, when
/// `failed` or `deleted`, reset) as `provisioning` and its job enqueued. A replay while the job
/// runs, or once the tenant is ready, returns the existing job; `created` says which happened.
pub async fn request_provision(
    pool: &PgPool,
    tiers: &Tiers,
    id: &str,
    tier: &str,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    validate_id(id)?;
    if tiers.get(tier).is_none() {
        return Err(TenantError::UnknownTier {
            tier: tier.to_string(),
            known: tiers.names().join(", "),
        });
    }
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query_as::<_, Tenant>(
        "INSERT INTO tenants (id, tier, status) VALUES ($1, $2, 'provisioning')
         ON CONFLICT (id) DO NOTHING RETURNING *",
    )
    .bind(id)
    .bind(tier)
    .fetch_optional(&mut *tx)
    .await?;
    let tenant = match inserted {
        Some(tenant) => tenant,
        None => {
            let existing = lock(&mut tx, id).await?.expect("the insert found it");
            if let Some(job) = queue::active_job(&mut *tx, id).await? {
                return match job.kind.as_str() {
                    Provision::KIND if existing.tier == tier => Ok((existing, job, false)),
                    Provision::KIND => Err(conflict(
                        id,
                        format!("is being provisioned as tier {}", existing.tier),
                    )),
                    _ => Err(conflict(id, "is being deprovisioned")),
                };
            }
            if existing.status == TenantStatus::Ready {
                if existing.tier != tier {
                    return Err(conflict(
                        id,
                        format!(
                            "is ready as tier {}; changing tiers is not supported",
                            existing.tier
                        ),
                    ));
                }
                let job = queue::latest_job(&mut *tx, id, Provision::KIND)
                    .await?
                    .ok_or_else(|| conflict(id, "is ready but has no provisioning job"))?;
                return Ok((existing, job, false));
            }
            // failed, deleted, or left mid-way: provision (again).
            sqlx::query_as::<_, Tenant>(
                "UPDATE tenants SET tier = $2, status = 'provisioning', error = NULL,
                     updated_at = now()
                 WHERE id = $1 RETURNING *",
            )
            .bind(id)
            .bind(tier)
            .fetch_one(&mut *tx)
            .await?
        }
    };
    let args = ProvisionArgs {
        tier: tier.to_string(),
    };
    let new = new_job::<Provision>(id, &args, max_attempts);
    let (job, created) = match queue::enqueue(&mut tx, new).await? {
        Enqueued::Created(job) => (job, true),
        Enqueued::Existing(job) => (job, false),
    };
    tx.commit().await?;
    Ok((tenant, job, created))
}

/// How a deprovisioning treats the tenant's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deletion {
    /// Take a final snapshot before the instance goes.
    pub final_snapshot: bool,
    /// Go without one even where the tier protects the tenant's data (deletion protection).
    pub force: bool,
}

impl Deletion {
    /// With a final snapshot (the default).
    pub const KEEP_SNAPSHOT: Deletion = Deletion {
        final_snapshot: true,
        force: false,
    };
    /// Without a final snapshot, whatever the tier.
    pub const FORCE_NO_SNAPSHOT: Deletion = Deletion {
        final_snapshot: false,
        force: true,
    };
}

/// Asks for `id` to be deprovisioned, with a final snapshot unless `deletion` says otherwise:
/// going without one on a tier with deletion protection needs `force`. Refused while the
/// tenant is being provisioned; a replay returns the existing job.
pub async fn request_deprovision(
    pool: &PgPool,
    tiers: &Tiers,
    id: &str,
    deletion: Deletion,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    validate_id(id)?;
    let final_snapshot = deletion.final_snapshot;
    let mut tx = pool.begin().await?;
    let tenant = lock(&mut tx, id)
        .await?
        .ok_or_else(|| TenantError::NotFound(id.to_string()))?;
    let protected = tiers
        .get(&tenant.tier)
        .is_some_and(|t| t.deletion_protection);
    if protected && !final_snapshot && !deletion.force {
        return Err(TenantError::FinalSnapshotRequired {
            id: id.to_string(),
            tier: tenant.tier,
        });
    }
    if let Some(job) = queue::active_job(&mut *tx, id).await? {
        return match job.kind.as_str() {
            Deprovision::KIND => Ok((tenant, job, false)),
            _ => Err(conflict(
                id,
                "is being provisioned; cancel that job or wait for it to end",
            )),
        };
    }
    if tenant.status == TenantStatus::Deleted {
        let job = queue::latest_job(&mut *tx, id, Deprovision::KIND)
            .await?
            .ok_or_else(|| conflict(id, "is already deleted"))?;
        return Ok((tenant, job, false));
    }
    let tenant = sqlx::query_as::<_, Tenant>(
        "UPDATE tenants SET status = 'deprovisioning', updated_at = now() WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let args = DeprovisionArgs { final_snapshot };
    let new = new_job::<Deprovision>(id, &args, max_attempts);
    let (job, created) = match queue::enqueue(&mut tx, new).await? {
        Enqueued::Created(job) => (job, true),
        Enqueued::Existing(job) => (job, false),
    };
    tx.commit().await?;
    Ok((tenant, job, created))
}
