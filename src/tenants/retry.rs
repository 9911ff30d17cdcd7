//! Retrying a failed job of a failed tenant: a new job of the same kind and arguments from its
//! workflow's first step, the tenant back to `provisioning` or `deprovisioning`, in one
//! transaction.

use sqlx::PgPool;

use super::enqueue::{enqueue, note_job, note_tenant};
use super::error::TenantError;
use crate::audit::{self, Trail};
use crate::queue::{self, Job, NewJob};
use crate::store::tenants::{self, Tenant, TenantStatus};
use crate::workflow::deprovision::Deprovision;
use crate::workflow::provision::Provision;
use crate::workflow::runner::Workflow;
use crate::workflow::step::StepNames;

/// Retries a failed job whose tenant is `failed`: a new job of the same kind and arguments
/// from its workflow's first step, the tenant back to `provisioning` or `deprovisioning`, in
/// one transaction. Anything else is refused with the reason.
pub async fn request_retry(
    pool: &PgPool,
    job_id: uuid::Uuid,
    max_attempts: i32,
) -> Result<(Tenant, Job), TenantError> {
    retry(pool, None, job_id, max_attempts).await
}

/// [`request_retry`] asked for by a caller whose `trail` is written with the change.
pub async fn request_retry_by(
    pool: &PgPool,
    trail: &Trail,
    job_id: uuid::Uuid,
    max_attempts: i32,
) -> Result<(Tenant, Job), TenantError> {
    retry(pool, Some(trail), job_id, max_attempts).await
}

async fn retry(
    pool: &PgPool,
    trail: Option<&Trail>,
    job_id: uuid::Uuid,
    max_attempts: i32,
) -> Result<(Tenant, Job), TenantError> {
    let refuse = |reason: String| TenantError::JobNotRetryable {
        job: job_id,
        reason,
    };
    let mut tx = pool.begin().await?;
    let job = queue::get_job(&mut *tx, job_id)
        .await?
        .ok_or(TenantError::JobNotFound(job_id))?;
    if job.state != queue::JobState::Failed {
        return Err(refuse(format!(
            "it is {}; only a failed job is retried",
            job.state.as_str()
        )));
    }
    let (first_step, status) = match job.kind.as_str() {
        Provision::KIND => (Provision::first_step().name(), TenantStatus::Provisioning),
        Deprovision::KIND => (
            Deprovision::first_step().name(),
            TenantStatus::Deprovisioning,
        ),
        other => {
            return Err(refuse(format!(
                "a {other} job is not retried: ask for the change again"
            )));
        }
    };
    let Some(tenant_id) = job.tenant_id.clone() else {
        return Err(refuse("it names no tenant".into()));
    };
    note_tenant(trail, &tenant_id);
    let tenant = tenants::lock(&mut tx, &tenant_id)
        .await?
        .ok_or_else(|| TenantError::NotFound(tenant_id.to_string()))?;
    if tenant.status != TenantStatus::Failed {
        return Err(refuse(format!(
            "its tenant {tenant_id} is {}, not failed",
            tenant.status.as_str()
        )));
    }
    if let Some(active) = queue::active_job(&mut *tx, &tenant_id).await? {
        return Err(refuse(format!(
            "tenant {tenant_id} has a {} job in progress ({})",
            active.kind, active.id
        )));
    }
    let latest = queue::latest_job(&mut *tx, &tenant_id, &job.kind).await?;
    if latest.is_some_and(|l| l.id != job.id) {
        return Err(refuse(format!(
            "a later {} job of tenant {tenant_id} exists",
            job.kind
        )));
    }
    // A provisioning retried starts cold: a claimed standby went with the failed job's
    // rollback, and the new instance gets the tenant's own name.
    let cold = job.kind == Provision::KIND;
    let tenant = tenants::reset_for_retry(&mut tx, &tenant_id, status, cold).await?;
    let mut args = job.args.0.clone();
    if cold && let Some(map) = args.as_object_mut() {
        map.remove("standby");
    }
    let new = NewJob::new(&job.kind, first_step, max_attempts)
        .tenant(&tenant_id)
        .args(args);
    let (job, _) = enqueue(&mut tx, new).await?;
    note_job(trail, &job);
    audit::commit(tx, trail, 202).await?;
    Ok((tenant, job))
}
