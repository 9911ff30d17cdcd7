//! `/v1/jobs`: a job with its step history, and cancelling a job that has not finished.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use tracing::{Span, info};

use super::error::{ApiError, ApiPath, job_id};
use super::state::AppState;
use crate::model::{ErrorBody, JobDetail, JobPath, JobView, StepView};
use crate::queue::{self, Job};

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
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let id = job_id(&id)?;
    let mut conn = state.db.acquire().await?;
    let job = queue::cancel(&mut conn, id).await?;
    record_ids(&job);
    info!(job.id = %job.id, "cancel requested");
    Ok((StatusCode::ACCEPTED, Json(JobView::from(&job))))
}
