//! What every tenant request does with its job: a new job of a workflow at its first step,
//! enqueued in the request's transaction, and noted on the request's audit trail.

use sqlx::PgConnection;

use crate::audit::Trail;
use crate::queue::{self, Enqueued, Job, NewJob};
use crate::workflow::runner::Workflow;
use crate::workflow::step::StepNames;

use super::error::TenantError;

/// A new job of workflow `W` for the tenant, at its first step.
pub(super) fn new_job<W: Workflow>(tenant: &str, args: &W::Args, max_attempts: i32) -> NewJob {
    let args = serde_json::to_value(args).expect("job arguments serialize");
    NewJob::new(W::KIND, W::first_step().name(), max_attempts)
        .tenant(tenant)
        .args(args)
}

/// Enqueues `new`; the job, and whether it is new (else the tenant's active job of that kind).
pub(super) async fn enqueue(
    conn: &mut PgConnection,
    new: NewJob,
) -> Result<(Job, bool), TenantError> {
    Ok(match queue::enqueue(conn, new).await? {
        Enqueued::Created(job) => (job, true),
        Enqueued::Existing(job) => (job, false),
    })
}

/// The request is about `job` (started it, or found it running).
pub(super) fn note_job(trail: Option<&Trail>, job: &Job) {
    if let Some(t) = trail {
        t.job(job.id);
    }
}

/// The request is about tenant `id`.
pub(super) fn note_tenant(trail: Option<&Trail>, id: &str) {
    if let Some(t) = trail {
        t.tenant(id);
    }
}
