//! Why a tenant request was refused: one error for every request of [`super`], which the API
//! and the console map to their answers.

use crate::queue::{Job, QueueError};
use crate::store::standbys;
use crate::store::tenants::TenantStatus;
use crate::tenant_id::InvalidTenantId;

/// Why a tenant request was refused.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error(transparent)]
    InvalidId(#[from] InvalidTenantId),
    #[error(
        "tenant ids starting with {infix:?} are reserved for the warm pool's standbys: {0:?}",
        infix = standbys::INFIX
    )]
    ReservedId(String),
    #[error("unknown tier {tier:?}; known tiers: {known}")]
    UnknownTier { tier: String, known: String },
    #[error(
        "tenant {id} is on tier {tier}, whose data is protected: deleting it without a final \
         snapshot needs force=true"
    )]
    FinalSnapshotRequired { id: String, tier: String },
    #[error("tenant {0} not found")]
    NotFound(String),
    /// The tenant's instance lost its ownership tags: nothing but a re-attach touches it.
    #[error(
        "tenant {0} is detached: its instance no longer carries this deployment's ownership \
         tags, so tenantd does not change or delete it; re-attach it first with \
         POST /v1/tenants/{0}/attach"
    )]
    Detached(String),
    /// The tenant is not in a status the request applies to.
    #[error("tenant {id} is {status}: {reason}")]
    NotApplicable {
        id: String,
        status: &'static str,
        /// The status the request applies to.
        wanted: TenantStatus,
        reason: String,
    },
    #[error("job {0} not found")]
    JobNotFound(uuid::Uuid),
    /// A retry of a job that cannot be retried.
    #[error("job {job} cannot be retried: {reason}")]
    JobNotRetryable { job: uuid::Uuid, reason: String },
    /// Another job of the tenant runs; one at a time.
    #[error("tenant {id} has a {kind} job in progress ({job}); wait for it to end or cancel it")]
    JobInProgress {
        id: String,
        kind: String,
        job: uuid::Uuid,
    },
    /// The request contradicts what the tenant is doing or is.
    #[error("tenant {id}: {reason}")]
    Conflict { id: String, reason: String },
    /// An engine upgrade's target is not a PostgreSQL major version.
    #[error("target_version must be a PostgreSQL major version such as \"17\", not {0:?}")]
    InvalidTargetVersion(String),
    /// An engine upgrade's target is not newer than what the tenant runs.
    #[error(
        "tenant {id} runs PostgreSQL {current}: {target} is not a newer major (engine upgrades \
         only go up)"
    )]
    NotAnUpgrade {
        id: String,
        current: String,
        target: String,
    },
    #[error("control database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl TenantError {
    /// The request contradicts what the tenant is doing or is.
    pub(super) fn conflict(id: &str, reason: impl Into<String>) -> Self {
        TenantError::Conflict {
            id: id.to_string(),
            reason: reason.into(),
        }
    }

    /// Another job of the tenant is active.
    pub(super) fn in_progress(id: &str, job: &Job) -> Self {
        TenantError::JobInProgress {
            id: id.to_string(),
            kind: job.kind.clone(),
            job: job.id,
        }
    }
}
