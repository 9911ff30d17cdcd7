//! Asking for a `detached` tenant to be re-attached: an attach job, which proves the instance
//! the tenant's before tagging it, enqueued in one transaction with the checks.

use sqlx::PgPool;

use super::enqueue::{enqueue, new_job, note_job, note_tenant};
use super::error::TenantError;
use crate::audit::{self, Trail};
use crate::queue::{self, Job};
use crate::store::tenants::{self, Tenant, TenantStatus};
use crate::tenant_id::{IntoTenantId, TenantId};
use crate::workflow::attach::{Attach, AttachArgs};
use crate::workflow::runner::Workflow;

/// Asks for a `detached` tenant to be re-attached: an attach job (which verifies the
/// instance is the tenant's before tagging it), enqueued in one transaction with the checks.
/// A replay while it runs returns its job.
pub async fn request_attach(
    pool: &PgPool,
    id: impl IntoTenantId,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    attach(pool, None, &id.into_tenant_id()?, max_attempts).await
}

/// [`request_attach`] asked for by a caller whose `trail` is written with the change.
pub async fn request_attach_by(
    pool: &PgPool,
    trail: &Trail,
    id: impl IntoTenantId,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    attach(pool, Some(trail), &id.into_tenant_id()?, max_attempts).await
}

async fn attach(
    pool: &PgPool,
    trail: Option<&Trail>,
    id: &TenantId,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    note_tenant(trail, id);
    let mut tx = pool.begin().await?;
    let tenant = tenants::lock(&mut tx, id)
        .await?
        .ok_or_else(|| TenantError::NotFound(id.to_string()))?;
    if let Some(job) = queue::active_job(&mut *tx, id).await? {
        if job.kind == Attach::KIND {
            note_job(trail, &job);
            return Ok((tenant, job, false));
        }
        return Err(TenantError::in_progress(id, &job));
    }
    if tenant.status != TenantStatus::Detached {
        return Err(TenantError::NotApplicable {
            id: id.to_string(),
            status: tenant.status.as_str(),
            wanted: TenantStatus::Detached,
            reason: "only a detached tenant is re-attached".into(),
        });
    }
    let new = new_job::<Attach>(id, &AttachArgs::default(), max_attempts);
    let (job, created) = enqueue(&mut tx, new).await?;
    note_job(trail, &job);
    audit::commit(tx, trail, if created { 202 } else { 200 }).await?;
    Ok((tenant, job, created))
}
