//! Asking for a tenant's database: the tenant recorded (or reset) as `provisioning` and its
//! provisioning job enqueued, in one transaction; a warm-pool standby of the tier, if one is
//! available, is the tenant's from that transaction on.

use sqlx::PgPool;

use super::enqueue::{enqueue, new_job, note_job, note_tenant};
use super::error::TenantError;
use crate::audit::{self, Trail};
use crate::config::Tiers;
use crate::queue::{self, Job, NewJob};
use crate::store::events::{EventType, NewEvent};
use crate::store::standbys;
use crate::store::tenants::{self, Tenant, TenantStatus};
use crate::tenant_id::{IntoTenantId, TenantId};
use crate::workflow::deprovision::Deprovision;
use crate::workflow::provision::{Provision, ProvisionArgs, ProvisionStep};
use crate::workflow::runner::Workflow;
use crate::workflow::step::StepNames;

/// Asks for `id` to be provisioned on `tier`. One transaction: the tenant is created (or, when
/// `failed` or `deleted`, reset) as `provisioning` and its job enqueued. A replay while the job
/// runs, or once the tenant is ready, returns the existing job; `created` says which happened.
pub async fn request_provision(
    pool: &PgPool,
    tiers: &Tiers,
    id: impl IntoTenantId,
    tier: &str,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    provision(pool, None, tiers, &id.into_tenant_id()?, tier, max_attempts).await
}

/// [`request_provision`] asked for by a caller whose `trail` is written with the change.
pub async fn request_provision_by(
    pool: &PgPool,
    trail: &Trail,
    tiers: &Tiers,
    id: impl IntoTenantId,
    tier: &str,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    provision(
        pool,
        Some(trail),
        tiers,
        &id.into_tenant_id()?,
        tier,
        max_attempts,
    )
    .await
}

async fn provision(
    pool: &PgPool,
    trail: Option<&Trail>,
    tiers: &Tiers,
    id: &TenantId,
    tier: &str,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    note_tenant(trail, id);
    if tiers.get(tier).is_none() {
        return Err(TenantError::UnknownTier {
            tier: tier.to_string(),
            known: tiers.names().join(", "),
        });
    }
    let mut tx = pool.begin().await?;
    // No new tenant may take a standby's name (tenants of earlier releases keep theirs).
    if standbys::reserves(id) && tenants::get(&mut *tx, id).await?.is_none() {
        return Err(TenantError::ReservedId(id.to_string()));
    }
    let tenant = match tenants::insert_provisioning(&mut tx, id, tier).await? {
        Some(tenant) => tenant,
        None => {
            let existing = tenants::lock(&mut tx, id)
                .await?
                .expect("the insert found it");
            if let Some(job) = queue::active_job(&mut *tx, id).await? {
                return match job.kind.as_str() {
                    Provision::KIND if existing.tier == tier => {
                        note_job(trail, &job);
                        Ok((existing, job, false))
                    }
                    Provision::KIND => Err(TenantError::conflict(
                        id,
                        format!("is being provisioned as tier {}", existing.tier),
                    )),
                    Deprovision::KIND => Err(TenantError::conflict(id, "is being deprovisioned")),
                    _ => Err(TenantError::in_progress(id, &job)),
                };
            }
            if existing.status == TenantStatus::Detached {
                return Err(TenantError::Detached(id.to_string()));
            }
            if matches!(
                existing.status,
                TenantStatus::Ready | TenantStatus::Suspended
            ) {
                if existing.tier != tier {
                    return Err(TenantError::conflict(
                        id,
                        format!(
                            "is {} as tier {}; change its tier with PATCH /v1/tenants/{id}",
                            existing.status.as_str(),
                            existing.tier
                        ),
                    ));
                }
                let job = queue::latest_job(&mut *tx, id, Provision::KIND)
                    .await?
                    .ok_or_else(|| {
                        TenantError::conflict(id, "is ready but has no provisioning job")
                    })?;
                note_job(trail, &job);
                return Ok((existing, job, false));
            }
            // failed, deleted, or left mid-way: provision (again), on a new instance whose
            // identifier the provisioning records.
            tenants::reprovision(&mut tx, id, tier).await?
        }
    };
    // A standby of the tier, if one is available, is the tenant's from now on: its record
    // names the standby's instance, and the job starts at the claim.
    let (standby, tenant) = match standbys::claim(&mut tx, tier, id).await? {
        Some((standby, tenant)) => (Some(standby), tenant),
        None => (None, tenant),
    };
    let new = match &standby {
        Some(s) => {
            let args = ProvisionArgs {
                tier: tier.to_string(),
                standby: Some(s.id.clone()),
            };
            let args = serde_json::to_value(&args).expect("job arguments serialize");
            NewJob::new(Provision::KIND, ProvisionStep::Claim.name(), max_attempts)
                .tenant(id.as_str())
                .args(args)
        }
        None => {
            let args = ProvisionArgs {
                tier: tier.to_string(),
                standby: None,
            };
            new_job::<Provision>(id, &args, max_attempts)
        }
    };
    let job = match enqueue(&mut tx, new).await? {
        (job, true) => job,
        // The tenant has a job already (the checks above make this a race at most): nothing
        // of this request is kept, the standby stays available.
        (job, false) => {
            tx.rollback().await?;
            note_job(trail, &job);
            let tenant = tenants::get(pool, id).await?.unwrap_or(tenant);
            return Ok((tenant, job, false));
        }
    };
    note_job(trail, &job);
    let mut told = vec![NewEvent::about(EventType::TenantRequested, &tenant)];
    if let Some(s) = &standby {
        told.push(NewEvent::about_with(
            EventType::PoolClaimed,
            &tenant,
            serde_json::json!({"standby": s.id}),
        ));
    }
    audit::commit_with(tx, trail, 202, &told).await?;
    match &standby {
        Some(s) => {
            crate::metrics::record_pool_claim(tier, "claimed");
            tracing::info!(tenant.id = %id, job.id = %job.id, standby = %s.id, tier, "tenant takes over a warm-pool standby");
        }
        None if standbys::has_tier(pool, tier).await? => {
            crate::metrics::record_pool_claim(tier, "empty");
        }
        None => {}
    }
    Ok((tenant, job, true))
}
