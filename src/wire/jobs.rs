//! The bodies of `/v1/jobs`: the list's parameters, a job as the API shows it and its step
//! history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::queue::{HistoryEntry, Job};
pub use crate::queue::{JobState, Outcome};

/// A job id in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct JobPath {
    /// The job's id (a UUID).
    pub id: Uuid,
}

/// `GET /v1/jobs` query. Any other parameter, or one given twice, is refused (400
/// `invalid_query`).
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobListQuery {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this kind (`provision`, `deprovision`, `reconcile`).
    #[param(pattern = "^[a-z][a-z0-9_]*$", max_length = 64)]
    pub kind: Option<String>,
    /// Only jobs of this tenant.
    #[param(min_length = 3, max_length = 40, pattern = "^[a-z](-?[a-z0-9])*$")]
    pub tenant: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (the id of its last job).
    pub cursor: Option<Uuid>,
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobPage {
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<Uuid>,
}

/// A job as the API shows it: where it is, never its internal data or lease.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub id: Uuid,
    /// The workflow: `provision`, `deprovision` or `reconcile` (tier changes, suspend,
    /// resume, drift repair).
    pub kind: String,
    pub tenant_id: Option<String>,
    pub state: JobState,
    /// The step it is at (or ended at).
    pub step: String,
    /// Attempts the current step has used (0 while it has not failed).
    pub attempt: i32,
    pub max_attempts: i32,
    pub cancel_requested: bool,
    pub error: Option<String>,
    /// What a finished job did, in a sentence, where its workflow says (e.g. what a tier
    /// change changed, and what it kept).
    pub result: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&Job> for JobView {
    fn from(job: &Job) -> Self {
        JobView {
            id: job.id,
            kind: job.kind.clone(),
            tenant_id: job.tenant_id.as_deref().map(str::to_owned),
            state: job.state,
            step: job.step.clone(),
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            cancel_requested: job.cancel_requested,
            error: job.error.clone(),
            result: job
                .data
                .0
                .get("result")
                .and_then(|r| r.as_str())
                .map(str::to_string),
            created_at: job.created_at,
            updated_at: job.updated_at,
            finished_at: job.finished_at,
        }
    }
}

/// One row of a job's history: a step attempt (with when it started) or a transition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StepView {
    pub step: String,
    /// The attempt number, from 0.
    pub attempt: i32,
    pub outcome: Outcome,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: DateTime<Utc>,
    pub error: Option<String>,
    /// What kind of failure `error` is (`throttled`, `access_denied`, `tls`, ...).
    pub error_class: Option<String>,
    pub worker: Option<String>,
    /// What the step did that people should know about (e.g. a secret re-created).
    pub note: Option<String>,
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
            error_class: h.error_class,
            worker: h.worker,
            note: h.note,
        }
    }
}

/// A job with its step history, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobDetail {
    #[serde(flatten)]
    pub job: JobView,
    pub history: Vec<StepView>,
}
