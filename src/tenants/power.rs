//! Asking for a tenant to be suspended (its instance stopped) or resumed (started again): a
//! reconcile job, enqueued in one transaction with the checks.

use sqlx::PgPool;

use super::enqueue::{enqueue, new_job, note_job, note_tenant};
use super::error::TenantError;
use crate::audit::{self, Trail};
use crate::queue::{self, Job};
use crate::store::tenants::{self, Tenant, TenantStatus};
use crate::tenant_id::{IntoTenantId, TenantId};
use crate::workflow::reconcile::{Apply, Reason, Reconcile, ReconcileArgs};
use crate::workflow::runner::Workflow;

/// Suspending stops a tenant's instance; resuming starts it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Suspend,
    Resume,
}

/// Asks for `id` to be suspended (it must be `ready`) or resumed (it must be `suspended`): a
/// reconcile job, enqueued in one transaction with the checks. A replay while the same request
/// runs returns its job.
pub async fn request_power(
    pool: &PgPool,
    id: impl IntoTenantId,
    power: Power,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    power_change(pool, None, &id.into_tenant_id()?, power, max_attempts).await
}

/// [`request_power`] asked for by a caller whose `trail` is written with the change.
pub async fn request_power_by(
    pool: &PgPool,
    trail: &Trail,
    id: impl IntoTenantId,
    power: Power,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    power_change(
        pool,
        Some(trail),
        &id.into_tenant_id()?,
        power,
        max_attempts,
    )
    .await
}

async fn power_change(
    pool: &PgPool,
    trail: Option<&Trail>,
    id: &TenantId,
    power: Power,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    note_tenant(trail, id);
    let reason = match power {
        Power::Suspend => Reason::Suspend,
        Power::Resume => Reason::Resume,
    };
    let mut tx = pool.begin().await?;
    let tenant = tenants::lock(&mut tx, id)
        .await?
        .ok_or_else(|| TenantError::NotFound(id.to_string()))?;
    if let Some(job) = queue::active_job(&mut *tx, id).await? {
        let same = job.kind == Reconcile::KIND
            && serde_json::from_value::<ReconcileArgs>(job.args.0.clone())
                .is_ok_and(|a| a.reason == reason);
        if same {
            note_job(trail, &job);
            return Ok((tenant, job, false));
        }
        return Err(TenantError::in_progress(id, &job));
    }
    let (wanted, reason_text) = match power {
        Power::Suspend => (TenantStatus::Ready, "only a ready tenant can be suspended"),
        Power::Resume => (
            TenantStatus::Suspended,
            "only a suspended tenant can be resumed",
        ),
    };
    if tenant.status != wanted {
        return Err(TenantError::NotApplicable {
            id: id.to_string(),
            status: tenant.status.as_str(),
            wanted,
            reason: reason_text.into(),
        });
    }
    let args = ReconcileArgs {
        reason,
        tier: tenant.tier.clone(),
        apply: Apply::Immediately,
        cause: None,
    };
    let (job, created) = enqueue(&mut tx, new_job::<Reconcile>(id, &args, max_attempts)).await?;
    note_job(trail, &job);
    audit::commit(tx, trail, if created { 202 } else { 200 }).await?;
    Ok((tenant, job, created))
}
