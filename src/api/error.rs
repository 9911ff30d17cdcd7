//! The API's errors: one enum, one `IntoResponse`, a stable snake_case code per case and a JSON
//! body `{"error": {"code", "message"}}`. Internal failures are logged once and answered with a
//! generic message: no SQL, no AWS detail, no secret ever reaches a caller.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::config::Role;
use crate::queue::QueueError;
use crate::rollouts::RolloutError;
use crate::tenant_id::InvalidTenantId;
use crate::tenants::TenantError;

/// Largest request body the API reads.
pub const BODY_LIMIT: usize = 16 * 1024;
/// Largest body of `POST /v1/rollouts`, whose tenant list may name up to 1,000 tenants.
pub const ROLLOUT_BODY_LIMIT: usize = 128 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// The token's role does not allow the request.
    #[error("this request needs the {needed} role; token {token:?} has {has}")]
    Forbidden {
        needed: Role,
        token: String,
        has: Role,
    },
    /// The caller's address failed to authenticate too often.
    #[error("too many failed authentications from this address; try again in {retry_after} s")]
    TooManyFailures { retry_after: u64 },
    /// Too many requests of this class run at once.
    #[error("the server is busy with requests like this one; try again in a second")]
    Overloaded,
    /// The request took longer than `TENANTD_HTTP_REQUEST_TIMEOUT`; what it did was undone.
    #[error("the request took too long and was stopped; nothing it started was kept")]
    RequestTimeout,
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the body must be JSON, sent with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("the body does not fit the request: {0}")]
    InvalidBody(String),
    #[error(
        "the body is larger than the route accepts ({BODY_LIMIT} bytes; {ROLLOUT_BODY_LIMIT} for POST /v1/rollouts)"
    )]
    BodyTooLarge,
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// `types` of `GET /v1/events` names a type there is not.
    #[error("{0}")]
    UnknownEventType(String),
    /// `since` or `Last-Event-ID` is not an event id.
    #[error("{0}")]
    InvalidCursor(String),
    /// `limit` is outside what the list allows.
    #[error("{0}")]
    InvalidLimit(String),
    #[error("{0}")]
    InvalidTenantId(String),
    #[error("{0}")]
    UnknownTier(String),
    /// An engine upgrade's target is not a PostgreSQL major.
    #[error("{0}")]
    InvalidTargetVersion(String),
    /// An engine upgrade's target is the tenant's major or an older one.
    #[error("{0}")]
    NotAnUpgrade(String),
    /// A deletion without a final snapshot of a protected tier, without `force`.
    #[error("{0}")]
    FinalSnapshotRequired(String),
    #[error("tenant {0} not found")]
    TenantNotFound(String),
    #[error("job {0} not found")]
    JobNotFound(String),
    /// The tenant is being (or was) provisioned on another tier.
    #[error("{0}")]
    TierConflict(String),
    /// A deprovisioning was asked for while a provisioning job is active.
    #[error("{0}")]
    ProvisioningInProgress(String),
    /// Any other request that contradicts what the tenant is doing.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    JobNotCancellable(String),
    #[error("{0}")]
    JobNotRetryable(String),
    /// The tenant is not ready (for a tier change or a suspend).
    #[error("{0}")]
    TenantNotReady(String),
    /// A resume of a tenant that is not suspended.
    #[error("{0}")]
    TenantNotSuspended(String),
    /// Another job of the tenant is active.
    #[error("{0}")]
    JobInProgress(String),
    /// The tenant's instance lost its ownership tags: only a re-attach applies.
    #[error("{0}")]
    TenantDetached(String),
    /// A re-attach of a tenant that is not detached.
    #[error("{0}")]
    TenantNotDetached(String),
    #[error("{0}")]
    RolloutNotFound(String),
    /// Another rollout runs or is paused.
    #[error("{0}")]
    RolloutInProgress(String),
    /// The rollout is not in a state the request applies to.
    #[error("{0}")]
    RolloutStateConflict(String),
    #[error("{0}")]
    UnknownRolloutKind(String),
    /// A rollout target RDS does not offer (or not of the kind's shape).
    #[error("{0}")]
    TargetNotOffered(String),
    #[error("{0}")]
    InvalidApply(String),
    /// RDS could not be asked (about a rollout's target).
    #[error("{0}")]
    RdsUnavailable(String),
    #[error("no such route")]
    RouteNotFound,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// Details are logged, never returned.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            Unauthorized => StatusCode::UNAUTHORIZED,
            Forbidden { .. } => StatusCode::FORBIDDEN,
            TooManyFailures { .. } => StatusCode::TOO_MANY_REQUESTS,
            Overloaded | RequestTimeout | RdsUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            MalformedJson(_) | InvalidQuery(_) | InvalidPath(_) => StatusCode::BAD_REQUEST,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            InvalidBody(_)
            | InvalidTenantId(_)
            | UnknownTier(_)
            | InvalidTargetVersion(_)
            | NotAnUpgrade(_)
            | UnknownRolloutKind(_)
            | TargetNotOffered(_)
            | InvalidApply(_)
            | UnknownEventType(_)
            | InvalidCursor(_)
            | InvalidLimit(_) => StatusCode::UNPROCESSABLE_ENTITY,
            TenantNotFound(_) | JobNotFound(_) | RolloutNotFound(_) | RouteNotFound => {
                StatusCode::NOT_FOUND
            }
            TierConflict(_)
            | FinalSnapshotRequired(_)
            | ProvisioningInProgress(_)
            | Conflict(_)
            | JobNotCancellable(_)
            | JobNotRetryable(_)
            | TenantNotReady(_)
            | TenantNotSuspended(_)
            | JobInProgress(_)
            | TenantDetached(_)
            | TenantNotDetached(_)
            | RolloutInProgress(_)
            | RolloutStateConflict(_) => StatusCode::CONFLICT,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            Unauthorized => "unauthorized",
            Forbidden { .. } => "forbidden",
            TooManyFailures { .. } => "too_many_failures",
            Overloaded => "overloaded",
            RequestTimeout => "request_timeout",
            MalformedJson(_) => "malformed_json",
            UnsupportedMediaType => "unsupported_media_type",
            InvalidBody(_) => "invalid_body",
            BodyTooLarge => "body_too_large",
            InvalidQuery(_) => "invalid_query",
            InvalidPath(_) => "invalid_path",
            UnknownEventType(_) => "unknown_event_type",
            InvalidCursor(_) => "invalid_cursor",
            InvalidLimit(_) => "invalid_limit",
            InvalidTenantId(_) => "invalid_tenant_id",
            UnknownTier(_) => "unknown_tier",
            InvalidTargetVersion(_) => "invalid_target_version",
            NotAnUpgrade(_) => "not_an_upgrade",
            FinalSnapshotRequired(_) => "final_snapshot_required",
            TenantNotFound(_) => "tenant_not_found",
            JobNotFound(_) => "job_not_found",
            TierConflict(_) => "tier_conflict",
            ProvisioningInProgress(_) => "provisioning_in_progress",
            Conflict(_) => "conflict",
            JobNotCancellable(_) => "job_not_cancellable",
            JobNotRetryable(_) => "job_not_retryable",
            TenantNotReady(_) => "tenant_not_ready",
            TenantNotSuspended(_) => "tenant_not_suspended",
            JobInProgress(_) => "job_in_progress",
            TenantDetached(_) => "tenant_detached",
            TenantNotDetached(_) => "tenant_not_detached",
            RolloutNotFound(_) => "rollout_not_found",
            RolloutInProgress(_) => "rollout_in_progress",
            RolloutStateConflict(_) => "rollout_state_conflict",
            UnknownRolloutKind(_) => "unknown_rollout_kind",
            TargetNotOffered(_) => "target_not_offered",
            InvalidApply(_) => "invalid_apply",
            RdsUnavailable(_) => "rds_unavailable",
            RouteNotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                "internal error; the daemon's log has the details".to_string()
            }
            other => other.to_string(),
        };
        let body = json!({ "error": { "code": self.code(), "message": message } });
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            ApiError::TooManyFailures { retry_after } => {
                headers.insert(header::RETRY_AFTER, (*retry_after).into());
            }
            ApiError::Overloaded | ApiError::RequestTimeout | ApiError::RdsUnavailable(_) => {
                headers.insert(header::RETRY_AFTER, 1.into());
            }
            _ => {}
        }
        response.extensions_mut().insert(ErrorCode(self.code()));
        response
    }
}

/// The code of an error answer, for the middleware that records it in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonSyntaxError(e) => ApiError::MalformedJson(e.body_text()),
            JsonRejection::JsonDataError(e) => ApiError::InvalidBody(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::BodyTooLarge,
            other => ApiError::MalformedJson(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::InvalidQuery(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::InvalidPath(rejection.body_text())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(format!("control database: {e}"))
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::NotFound(id) => ApiError::JobNotFound(id.to_string()),
            e @ QueueError::WrongState { .. } => ApiError::JobNotCancellable(e.to_string()),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<InvalidTenantId> for ApiError {
    fn from(e: InvalidTenantId) -> Self {
        ApiError::InvalidTenantId(e.to_string())
    }
}

impl From<TenantError> for ApiError {
    /// The context-free mapping; handlers refine conflicts (tier or provisioning in progress).
    fn from(e: TenantError) -> Self {
        match e {
            e @ (TenantError::InvalidId(_) | TenantError::ReservedId(_)) => {
                ApiError::InvalidTenantId(e.to_string())
            }
            e @ TenantError::UnknownTier { .. } => ApiError::UnknownTier(e.to_string()),
            e @ TenantError::InvalidTargetVersion(_) => {
                ApiError::InvalidTargetVersion(e.to_string())
            }
            e @ TenantError::NotAnUpgrade { .. } => ApiError::NotAnUpgrade(e.to_string()),
            e @ TenantError::FinalSnapshotRequired { .. } => {
                ApiError::FinalSnapshotRequired(e.to_string())
            }
            TenantError::NotFound(id) => ApiError::TenantNotFound(id),
            e @ TenantError::Detached(_) => ApiError::TenantDetached(e.to_string()),
            TenantError::JobNotFound(id) => ApiError::JobNotFound(id.to_string()),
            e @ TenantError::JobNotRetryable { .. } => ApiError::JobNotRetryable(e.to_string()),
            e @ TenantError::Conflict { .. } => ApiError::Conflict(e.to_string()),
            e @ TenantError::JobInProgress { .. } => ApiError::JobInProgress(e.to_string()),
            e @ TenantError::NotApplicable {
                wanted: crate::tenants::TenantStatus::Suspended,
                ..
            } => ApiError::TenantNotSuspended(e.to_string()),
            e @ TenantError::NotApplicable {
                wanted: crate::tenants::TenantStatus::Detached,
                ..
            } => ApiError::TenantNotDetached(e.to_string()),
            e @ TenantError::NotApplicable { .. } => ApiError::TenantNotReady(e.to_string()),
            TenantError::Queue(e) => e.into(),
            e @ TenantError::Database(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<RolloutError> for ApiError {
    fn from(e: RolloutError) -> Self {
        match e {
            e @ RolloutError::InProgress(..) => ApiError::RolloutInProgress(e.to_string()),
            e @ RolloutError::NotFound(_) => ApiError::RolloutNotFound(e.to_string()),
            RolloutError::TenantsNotFound(ids) => ApiError::TenantNotFound(ids),
            RolloutError::Invalid(message) => ApiError::InvalidBody(message),
            e @ RolloutError::UnknownTier { .. } => ApiError::UnknownTier(e.to_string()),
            e @ RolloutError::WrongState { .. } => ApiError::RolloutStateConflict(e.to_string()),
            e @ RolloutError::UnknownKind(_) => ApiError::UnknownRolloutKind(e.to_string()),
            RolloutError::NotOffered(message) => ApiError::TargetNotOffered(message),
            RolloutError::BadApply(message) => ApiError::InvalidApply(message),
            e @ RolloutError::Rds(_) => ApiError::RdsUnavailable(e.to_string()),
            RolloutError::Queue(e) => e.into(),
            e @ RolloutError::Database(_) => ApiError::Internal(e.to_string()),
        }
    }
}
