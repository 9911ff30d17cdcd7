//! The durable job queue in the control PostgreSQL: enqueue, claim under a fenced lease,
//! heartbeat, rescue, record step outcomes, cancel, and wake-ups.

mod complete;
mod enqueue;
mod lease;
mod notify;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

pub use complete::{Batched, Batcher, Completer, Completion, Record, complete_batch};
pub use enqueue::{
    Enqueued, NewJob, active_job, cancel, count_by_state, enqueue, enqueue_batch, get_job, history,
};
pub use lease::{
    Lease, claim, fenced, heartbeat, mark_started, next_run_at, release, rescue_expired, wake,
};
pub use notify::{CHANNEL, listen};

/// Where a job is in its life. Mirrors the `job_state` enum of the control schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "job_state", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Runnable now: new, rescued after a lost lease, or released at shutdown.
    Queued,
    /// Held by a worker under a lease.
    Running,
    /// Scheduled for `run_at`: a durable wait or a retry backoff.
    Waiting,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Waiting => "waiting",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Active jobs hold their tenant: at most one per tenant.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            JobState::Queued | JobState::Running | JobState::Waiting
        )
    }
}

/// One row of `jobs`.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Job {
    pub id: Uuid,
    pub kind: String,
    pub tenant_id: Option<String>,
    pub state: JobState,
    pub step: String,
    pub args: Json<Value>,
    pub data: Json<Value>,
    pub priority: i16,
    pub run_at: DateTime<Utc>,
    pub attempt: i32,
    pub max_attempts: i32,
    #[serde(skip)]
    pub lease_owner: Option<String>,
    #[serde(skip)]
    pub lease_expires_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub lease_token: i64,
    pub cancel_requested: bool,
    pub error: Option<String>,
    /// The job has recorded a step: it is claimed before new jobs of its priority.
    pub begun: bool,
    /// When the current holder started the step; `None` while it only waits for a slot.
    #[serde(skip)]
    pub step_started_at: Option<DateTime<Utc>>,
    /// How often the job's lease expired.
    pub rescues: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Job {
    /// The lease this worker holds on a job it claimed.
    pub fn lease(&self) -> Lease {
        Lease {
            job_id: self.id,
            token: self.lease_token,
        }
    }

    /// A job whose `error` is set while it is still active is running its compensation.
    pub fn is_compensating(&self) -> bool {
        self.error.is_some() && self.state.is_active()
    }
}

/// One row of `job_history`: a step attempt or a transition.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub step: String,
    pub attempt: i32,
    pub outcome: String,
    pub started_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub worker: Option<String>,
}

/// Errors of the queue layer.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("control database: {0}")]
    Database(#[from] sqlx::Error),
    /// The job's lease was taken over (or released): this worker must stop writing about it.
    #[error("lease on job {0} was lost")]
    LeaseLost(Uuid),
    #[error("job {0} not found")]
    NotFound(Uuid),
    /// The job is not in a state the operation accepts.
    #[error("job {id} is {state}, {action} needs a queued or waiting job")]
    WrongState {
        id: Uuid,
        state: &'static str,
        action: &'static str,
    },
}

/// Shallow merge of JSON objects, as PostgreSQL's `jsonb || jsonb` does it.
pub fn merge_data(base: &mut Value, patch: &Value) {
    if let (Value::Object(base), Value::Object(patch)) = (base, patch) {
        for (k, v) in patch {
            base.insert(k.clone(), v.clone());
        }
    }
}
