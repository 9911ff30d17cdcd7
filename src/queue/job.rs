//! What the queue stores: a job, its state, the outcomes its history records, the lease that
//! proves a worker holds it, and the queue's errors.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::tenant_id::TenantId;

/// Where a job is in its life. Mirrors the `job_state` enum of the control schema.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
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
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::Waiting,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

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

/// How one row of a job's history ended: a step attempt, or a transition of the queue's own.
/// Stored as its snake_case name (`job_history.outcome`, checked by the schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The job was put into the queue.
    Enqueued,
    /// The step succeeded and the job went on to its next step.
    Advanced,
    /// The step asked to run again later (a durable wait; no attempt used).
    Waiting,
    /// The step failed in a way that may pass; it runs again after a backoff.
    Retrying,
    /// The step failed for good (the job ends failed, or its compensation fails too).
    Failed,
    /// The step failed for good and the workflow's compensation starts.
    Compensating,
    /// The last step succeeded.
    Succeeded,
    /// The job ended after a cancel request.
    Cancelled,
    /// Someone asked the job to stop.
    CancelRequested,
    /// The holder's lease expired; the job went back to the queue.
    Rescued,
    /// The holder handed the job back at shutdown.
    Released,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Enqueued => "enqueued",
            Outcome::Advanced => "advanced",
            Outcome::Waiting => "waiting",
            Outcome::Retrying => "retrying",
            Outcome::Failed => "failed",
            Outcome::Compensating => "compensating",
            Outcome::Succeeded => "succeeded",
            Outcome::Cancelled => "cancelled",
            Outcome::CancelRequested => "cancel_requested",
            Outcome::Rescued => "rescued",
            Outcome::Released => "released",
        }
    }

    /// The outcome a job's final state is recorded with.
    pub fn of_final(state: JobState) -> Outcome {
        match state {
            JobState::Cancelled => Outcome::Cancelled,
            JobState::Failed => Outcome::Failed,
            _ => Outcome::Succeeded,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Outcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        serde_json::from_value(Value::String(s.to_string()))
            .map_err(|_| format!("unknown history outcome {s:?}"))
    }
}

impl sqlx::Type<sqlx::Postgres> for Outcome {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <String as sqlx::Type<sqlx::Postgres>>::type_info()
    }

    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <String as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for Outcome {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
        Ok(text.parse()?)
    }
}

/// Proof that a worker holds a job: its id and the fencing token of the claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub job_id: Uuid,
    pub token: i64,
}

/// One row of `jobs`.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Job {
    pub id: Uuid,
    pub kind: String,
    pub tenant_id: Option<TenantId>,
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
}

/// One row of `job_history`: a step attempt or a transition.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub step: String,
    pub attempt: i32,
    pub outcome: Outcome,
    pub started_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// What kind of failure `error` is (`throttled`, `access_denied`, `tls`, ...).
    pub error_class: Option<String>,
    pub worker: Option<String>,
    /// What the step did that people should know about.
    pub note: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_back_the_names_they_are_stored_as() {
        for o in [
            Outcome::Enqueued,
            Outcome::Advanced,
            Outcome::Waiting,
            Outcome::Retrying,
            Outcome::Failed,
            Outcome::Compensating,
            Outcome::Succeeded,
            Outcome::Cancelled,
            Outcome::CancelRequested,
            Outcome::Rescued,
            Outcome::Released,
        ] {
            assert_eq!(o.as_str().parse::<Outcome>().unwrap(), o);
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        assert!("exploded".parse::<Outcome>().is_err());
    }
}
