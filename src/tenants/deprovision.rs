//! Asking for a tenant's database to be taken away: the tenant `deprovisioning` and its job
//! enqueued in one transaction, with a final snapshot unless the request says otherwise.

use sqlx::PgPool;

use super::enqueue::{enqueue, new_job, note_job, note_tenant};
use super::error::TenantError;
use crate::audit::{self, Trail};
use crate::config::Tiers;
use crate::queue::{self, Job};
use crate::store::tenants::{self, Tenant, TenantStatus};
use crate::tenant_id::{IntoTenantId, TenantId};
use crate::workflow::deprovision::{Deprovision, DeprovisionArgs};
use crate::workflow::provision::Provision;
use crate::workflow::runner::Workflow;

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
    id: impl IntoTenantId,
    deletion: Deletion,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    deprovision(
        pool,
        None,
        tiers,
        &id.into_tenant_id()?,
        deletion,
        max_attempts,
    )
    .await
}

/// [`request_deprovision`] asked for by a caller whose `trail` is written with the change; a
/// deprovisioning without a final snapshot says who asked for it in the job's history.
pub async fn request_deprovision_by(
    pool: &PgPool,
    trail: &Trail,
    tiers: &Tiers,
    id: impl IntoTenantId,
    deletion: Deletion,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    deprovision(
        pool,
        Some(trail),
        tiers,
        &id.into_tenant_id()?,
        deletion,
        max_attempts,
    )
    .await
}

async fn deprovision(
    pool: &PgPool,
    trail: Option<&Trail>,
    tiers: &Tiers,
    id: &TenantId,
    deletion: Deletion,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    note_tenant(trail, id);
    let final_snapshot = deletion.final_snapshot;
    let mut tx = pool.begin().await?;
    let tenant = tenants::lock(&mut tx, id)
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
            Deprovision::KIND => {
                note_job(trail, &job);
                Ok((tenant, job, false))
            }
            Provision::KIND => Err(TenantError::conflict(
                id,
                "is being provisioned; cancel that job or wait for it to end",
            )),
            // A tier change, a repair, a migration: it ends by itself.
            _ => Err(TenantError::in_progress(id, &job)),
        };
    }
    if tenant.status == TenantStatus::Detached {
        return Err(TenantError::Detached(id.to_string()));
    }
    if tenant.status == TenantStatus::Deleted {
        let job = queue::latest_job(&mut *tx, id, Deprovision::KIND)
            .await?
            .ok_or_else(|| TenantError::conflict(id, "is already deleted"))?;
        note_job(trail, &job);
        return Ok((tenant, job, false));
    }
    let tenant = tenants::mark_deprovisioning(&mut tx, id).await?;
    let args = DeprovisionArgs { final_snapshot };
    let mut new = new_job::<Deprovision>(id, &args, max_attempts);
    if !final_snapshot {
        let why = if protected {
            format!(
                "no final snapshot: forced past tier {}'s deletion protection, which keeps one",
                tenant.tier
            )
        } else {
            format!(
                "no final snapshot (tier {} has no deletion protection)",
                tenant.tier
            )
        };
        let by = trail.map(|t| format!(" {}", t.by())).unwrap_or_default();
        new = new.note(format!("{why}; asked{by}"));
    }
    let (job, created) = enqueue(&mut tx, new).await?;
    note_job(trail, &job);
    audit::commit(tx, trail, if created { 202 } else { 200 }).await?;
    Ok((tenant, job, created))
}
