//! Tenants with their latest job, as the API and the console show them: one query for the
//! tenants and one for their jobs, whatever the page size.

use sqlx::PgPool;

use super::error::TenantError;
use crate::queue::{self, Job};
use crate::store::tenants::{self, Tenant, TenantFilter};
use crate::workflow::fleet::Kind;
use crate::workflow::{Deprovision, Provision, Reconcile, Workflow};

/// The job kinds a tenant's view shows the latest of.
pub const TENANT_JOBS: &[&str] = &[Provision::KIND, Deprovision::KIND, Reconcile::KIND];

/// Every job kind a tenant may have, for the job list's filter.
pub const JOB_KINDS: &[&str] = &[
    Provision::KIND,
    Deprovision::KIND,
    Reconcile::KIND,
    crate::workflow::migrate::KIND,
    crate::workflow::attach::KIND,
    Kind::EngineMinor.job_kind(),
    Kind::CaCertificate.job_kind(),
    Kind::Maintenance.job_kind(),
];

/// A tenant with its latest job (`None`: never had one, or not found).
pub async fn with_latest_job(
    pool: &PgPool,
    id: &str,
) -> Result<Option<(Tenant, Option<Job>)>, TenantError> {
    let Some(tenant) = tenants::get(pool, id).await? else {
        return Ok(None);
    };
    let job = queue::latest_jobs(pool, std::slice::from_ref(&tenant.id), TENANT_JOBS)
        .await?
        .pop();
    Ok(Some((tenant, job)))
}

/// A page of tenants (see [`crate::store::tenants::list`]), each with its latest job, and the next cursor.
pub async fn page_with_jobs(
    pool: &PgPool,
    filter: &TenantFilter,
    limit: i64,
    cursor: Option<&str>,
) -> Result<(Vec<(Tenant, Option<Job>)>, Option<String>), TenantError> {
    let (page, next) = tenants::list(pool, filter, limit, cursor).await?;
    let ids: Vec<String> = page.iter().map(|t| t.id.clone()).collect();
    let mut jobs = queue::latest_jobs(pool, &ids, TENANT_JOBS).await?;
    let rows = page
        .into_iter()
        .map(|t| {
            let job = jobs
                .iter()
                .position(|j| j.tenant_id.as_deref() == Some(t.id.as_str()))
                .map(|i| jobs.swap_remove(i));
            (t, job)
        })
        .collect();
    Ok((rows, next))
}
