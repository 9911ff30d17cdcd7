//! `/v1/jobs`: a job with its step history, and cancelling a job that has not finished.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{Span, info};

use super::AppState;
use super::error::{ApiError, job_id};
use crate::queue::{self, HistoryEntry, Job, JobState};

/// A job as the API shows it: where it is, never its internal data or lease.
#[derive(Debug, Serialize, Deserialize)]
pub struct JobView {
    pub id: uuid::Uuid,
    pub kind: String,
    pub tenant_id: Option<String>,
    pub state: JobState,
    pub step: String,
    pub attempt: i32,
    pub max_attempts: i32,
    pub cancel_requested: bool,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&Job> for JobView {
    fn from(job: &Job) -> Self {
        JobView {
            id: job.id,
            kind: job.kind.clone(),
            tenant_id: job.tenant_id.clone(),
            state: job.state,
            step: job.step.clone(),
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            cancel_requested: job.cancel_requested,
            error: job.error.clone(),
            created_at: job.created_at,
            updated_at: job.updated_at,
            finished_at: job.finished_at,
        }
    }
}

/// One row of a job's history: a step attempt (with when it started) or a transition.
#[derive(Debug, Serialize, Deserialize)]
pub struct StepView {
    pub step: String,
    pub attempt: i32,
    pub outcome: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: DateTime<Utc>,
    pub error: Option<String>,
    pub worker: Option<String>,
}

impl From<HistoryEntry> for StepView {
    fn from(h: HistoryEntry) -> Self {
        StepView {
            step: h.step,
            attempt: h.attempt,
            outcome: h.outcome,
            started_at: h.started_at,
            finished_at: h.at,
            error: h.error,
            worker: h.worker,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct JobDetail {
    #[serde(flatten)]
    pub job: JobView,
    pub history: Vec<StepView>,
}

fn record_ids(job: &Job) {
    let span = Span::current();
    span.record("job.id", tracing::field::display(job.id));
    if let Some(tenant) = &job.tenant_id {
        span.record("tenant.id", tenant.as_str());
    }
}

/// `GET /v1/jobs/{id}`
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
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

/// `POST /v1/jobs/{id}/cancel`: a queued or waiting job stops at its next claim and runs its
/// compensation (a provisioning rolls back). Cancelling twice is harmless.
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let id = job_id(&id)?;
    let mut conn = state.db.acquire().await?;
    let job = queue::cancel(&mut conn, id).await?;
    record_ids(&job);
    info!(job.id = %job.id, "cancel requested");
    Ok((StatusCode::ACCEPTED, Json(JobView::from(&job))))
}
