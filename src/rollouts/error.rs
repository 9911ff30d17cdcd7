//! Why a rollout request was refused, for the API to answer and the conductor to log.

use uuid::Uuid;

use super::offers::OfferError;

/// Why a rollout request was refused.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// Another rollout runs or is paused.
    #[error("rollout {0} is {1}; one rollout runs at a time (pause does not end it: cancel it)")]
    InProgress(Uuid, &'static str),
    #[error("rollout {0} not found")]
    NotFound(Uuid),
    /// Tenants the request names do not exist.
    #[error("tenants not found: {0}")]
    TenantsNotFound(String),
    /// The request's values are not usable.
    #[error("{0}")]
    Invalid(String),
    #[error("unknown tier {tier:?} in stages; known tiers: {known}")]
    UnknownTier { tier: String, known: String },
    #[error(
        "unknown rollout kind {0:?}; kinds: schema, engine_major, engine_minor, ca_certificate, \
         maintenance"
    )]
    UnknownKind(String),
    /// The target is not one RDS offers (or not a maintenance action tenantd applies).
    #[error("{0}")]
    NotOffered(String),
    /// `apply` is not one the kind takes.
    #[error("{0}")]
    BadApply(String),
    /// RDS could not be asked about the target.
    #[error(transparent)]
    Rds(OfferError),
    /// The rollout is not in a state the request applies to.
    #[error("rollout {id} is {state}: cannot {action} it")]
    WrongState {
        id: Uuid,
        state: &'static str,
        action: &'static str,
    },
    #[error("control database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
}
