//! Asking for a ready tenant to move to another tier: `pending_tier` on the tenant and a
//! reconcile job, in one transaction.

use sqlx::PgPool;

use super::enqueue::{enqueue, new_job, note_job, note_tenant};
use super::error::TenantError;
use crate::audit::{self, Trail};
use crate::config::Tiers;
use crate::queue::{self, Job};
use crate::store::tenants::{self, Tenant, TenantStatus};
use crate::tenant_id::{IntoTenantId, TenantId};
use crate::workflow::reconcile::{Apply, Reason, Reconcile, ReconcileArgs};
use crate::workflow::runner::Workflow;

/// Asks for `id` to move to `tier`. One transaction: the tenant (which must be `ready`) gets
/// `pending_tier` and a reconcile job is enqueued. The tenant's own tier again changes nothing
/// (no job); a replay while the same change runs returns its job. `created` says whether a job
/// was enqueued.
pub async fn request_tier_change(
    pool: &PgPool,
    tiers: &Tiers,
    id: impl IntoTenantId,
    tier: &str,
    apply: Apply,
    max_attempts: i32,
) -> Result<(Tenant, Option<Job>, bool), TenantError> {
    tier_change(
        pool,
        None,
        tiers,
        &id.into_tenant_id()?,
        tier,
        apply,
        max_attempts,
    )
    .await
}

/// [`request_tier_change`] asked for by a caller whose `trail` is written with the change.
pub async fn request_tier_change_by(
    pool: &PgPool,
    trail: &Trail,
    tiers: &Tiers,
    id: impl IntoTenantId,
    tier: &str,
    apply: Apply,
    max_attempts: i32,
) -> Result<(Tenant, Option<Job>, bool), TenantError> {
    tier_change(
        pool,
        Some(trail),
        tiers,
        &id.into_tenant_id()?,
        tier,
        apply,
        max_attempts,
    )
    .await
}

async fn tier_change(
    pool: &PgPool,
    trail: Option<&Trail>,
    tiers: &Tiers,
    id: &TenantId,
    tier: &str,
    apply: Apply,
    max_attempts: i32,
) -> Result<(Tenant, Option<Job>, bool), TenantError> {
    note_tenant(trail, id);
    if tiers.get(tier).is_none() {
        return Err(TenantError::UnknownTier {
            tier: tier.to_string(),
            known: tiers.names().join(", "),
        });
    }
    let mut tx = pool.begin().await?;
    let tenant = tenants::lock(&mut tx, id)
        .await?
        .ok_or_else(|| TenantError::NotFound(id.to_string()))?;
    if let Some(job) = queue::active_job(&mut *tx, id).await? {
        if job.kind == Reconcile::KIND && tenant.pending_tier.as_deref() == Some(tier) {
            note_job(trail, &job);
            return Ok((tenant, Some(job), false));
        }
        return Err(TenantError::in_progress(id, &job));
    }
    if tenant.status != TenantStatus::Ready {
        return Err(TenantError::NotApplicable {
            id: id.to_string(),
            status: tenant.status.as_str(),
            wanted: TenantStatus::Ready,
            reason: "only a ready tenant changes tiers".into(),
        });
    }
    if tenant.tier == tier {
        return Ok((tenant, None, false));
    }
    let tenant = tenants::set_pending_tier(&mut tx, id, tier).await?;
    let args = ReconcileArgs {
        reason: Reason::TierChange,
        tier: tier.to_string(),
        apply,
        cause: None,
    };
    let (job, created) = enqueue(&mut tx, new_job::<Reconcile>(id, &args, max_attempts)).await?;
    note_job(trail, &job);
    audit::commit(tx, trail, if created { 202 } else { 200 }).await?;
    Ok((tenant, Some(job), created))
}
