//! `/v1/jobs`: the jobs newest first, a job with its step history, cancelling a job that has
//! not finished, and retrying one that failed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use tracing::{Span, info};

use super::error::ApiError;
use super::extract::ApiQuery;
use super::extract::{ApiPath, job_id};
use super::state::AppState;
use crate::audit::{self, Trail};
use crate::queue::{self, Job, JobFilter};
use crate::tenant_id::TenantId;
use crate::tenants;
use crate::wire::error::ErrorBody;
use crate::wire::jobs::{JobDetail, JobListQuery, JobPage, JobPath, JobView, StepView};
use crate::wire::tenants::{Requested, TenantView};
use crate::wire::{DEFAULT_PAGE, MAX_PAGE};

fn record_ids(job: &Job) {
    let span = Span::current();
    span.record("job.id", tracing::field::display(job.id));
    if let Some(tenant) = &job.tenant_id {
        span.record("tenant.id", tenant.as_str());
    }
}

/// A job with its step history.
///
/// An id that is not a UUID names no job: 404 `job_not_found`, like an unknown UUID.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", operation_id = "get_job",
    security(("bearer" = [])),
    params(JobPath),
    responses(
        (status = 200, description = "The job", body = JobDetail),
        (status = 400, description = "`invalid_path`: the id is not UTF-8 once percent-decoded", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`job_not_found`", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JobDetail>, ApiError> {
    let id = job_id(&id)?;
    let job = queue::get_job(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::JobNotFound(id.to_string()))?;
    record_ids(&job);
    let history = queue::history(&state.db, id).await?;
    Ok(Json(JobDetail {
        job: JobView::from(&job),
        history: history.into_iter().map(StepView::from).collect(),
    }))
}

/// Cancel a queued or waiting job: it stops at its next claim and runs its compensation (a
/// provisioning rolls back). Cancelling twice is harmless.
///
/// Takes no body (one sent is ignored). A job that is running or has ended cannot be
/// cancelled: 409 `job_not_cancellable`. An id that is not a UUID names no job: 404.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs", operation_id = "cancel_job",
    security(("bearer" = [])),
    params(JobPath),
    responses(
        (status = 202, description = "Cancel requested", body = JobView,
            links(("job" = (operation_id = "get_job", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "`invalid_path`: the id is not UTF-8 once percent-decoded", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`job_not_found`", body = ErrorBody),
        (status = 409, description = "`job_not_cancellable`", body = ErrorBody),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(trail): Extension<Trail>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let id = job_id(&id)?;
    let mut tx = state.db.begin().await?;
    let job = queue::cancel(&mut tx, id).await?;
    trail.job(job.id);
    if let Some(tenant) = &job.tenant_id {
        trail.tenant(tenant);
    }
    audit::commit(tx, Some(&trail), 202).await?;
    record_ids(&job);
    info!(job.id = %job.id, "cancel requested");
    Ok((StatusCode::ACCEPTED, Json(JobView::from(&job))))
}

/// A page of jobs, newest first; `next_cursor` is null on the last page.
///
/// Only the parameters below are accepted: any other, or one given twice, is refused with 400
/// `invalid_query`.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", operation_id = "list_jobs",
    security(("bearer" = [])),
    params(JobListQuery),
    responses(
        (status = 200, description = "A page", body = JobPage),
        (status = 400, description = "`invalid_query`: an unknown or repeated parameter, a \
            `limit` outside 1..1000, an unknown `state`, a `kind` or `tenant` that names none, a \
            `cursor` that is not a job id", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<JobListQuery>,
) -> Result<Json<JobPage>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be from 1 to {MAX_PAGE}, got {limit}"
        )));
    }
    if let Some(tenant) = query.tenant.as_deref()
        && TenantId::parse(tenant).is_err()
    {
        return Err(ApiError::InvalidQuery(
            "tenant must be a tenant id".to_string(),
        ));
    }
    if let Some(kind) = query.kind.as_deref() {
        let valid = !kind.is_empty()
            && kind.len() <= 64
            && kind.starts_with(|c: char| c.is_ascii_lowercase())
            && kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(ApiError::InvalidQuery(
                "kind must be a job kind such as provision".to_string(),
            ));
        }
    }
    let filter = JobFilter {
        state: query.state,
        kind: query.kind,
        tenant: query.tenant,
    };
    let (jobs, next_cursor) = queue::list_jobs(&state.db, &filter, limit, query.cursor).await?;
    Ok(Json(JobPage {
        jobs: jobs.iter().map(JobView::from).collect(),
        next_cursor,
    }))
}

/// Retry a failed job whose tenant is `failed`: a new job of the same kind and arguments, from
/// its first step (202); the tenant goes back to `provisioning` or `deprovisioning`.
///
/// Takes no body (one sent is ignored). Anything else (a job that did not fail, a tenant that
/// is not failed, a later job of that kind, another job in progress, a reconcile job) is 409
/// `job_not_retryable` with the reason. An id that is not a UUID names no job: 404.
#[utoipa::path(post, path = "/v1/jobs/{id}/retry", tag = "jobs", operation_id = "retry_job",
    security(("bearer" = [])),
    params(JobPath),
    responses(
        (status = 202, description = "The new job", body = Requested,
            links(("job" = (operation_id = "get_job", parameters(("id" = "$response.body#/job/id")))))),
        (status = 400, description = "`invalid_path`: the id is not UTF-8 once percent-decoded", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`job_not_found`", body = ErrorBody),
        (status = 409, description = "`job_not_retryable`", body = ErrorBody),
    ))]
pub async fn retry(
    State(state): State<AppState>,
    Extension(trail): Extension<Trail>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<Requested>), ApiError> {
    let id = job_id(&id)?;
    let (tenant, job) =
        tenants::request_retry_by(&state.db, &trail, id, state.max_attempts).await?;
    record_ids(&job);
    info!(job.id = %job.id, retried = %id, "retry requested");
    let body = Requested {
        tenant: TenantView::new(tenant, Some(&job)),
        job: (&job).into(),
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}
