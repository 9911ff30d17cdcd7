//! The API's extractors: axum's `Json`, `Query` and `Path` whose rejections are [`ApiError`]s, the
//! tenant id of a path parsed once, and the rollout and job ids of paths.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::ApiError;
use crate::tenant_id::TenantId;

/// Parses a rollout id from a path; an id that is not a UUID names no rollout.
pub fn rollout_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::RolloutNotFound(format!(
            "rollout {} not found",
            raw.chars().take(64).collect::<String>()
        ))
    })
}

/// Parses a job id from a path; an id that is not a UUID names no job.
pub fn job_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::JobNotFound(raw.chars().take(64).collect()))
}

/// `axum::Json` of a JSON object, whose rejections are [`ApiError`]s.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        // An object first: serde would otherwise take `["acme", "pro"]` for a struct.
        let Json(object) =
            Json::<serde_json::Map<String, serde_json::Value>>::from_request(request, state)
                .await?;
        serde_json::from_value(serde_json::Value::Object(object))
            .map(ApiJson)
            .map_err(|e| ApiError::InvalidBody(e.to_string()))
    }
}

/// `axum::extract::Query` whose rejections are [`ApiError`]s.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}

/// `axum::extract::Path` whose rejections are [`ApiError`]s.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

/// The tenant id of a path (`/v1/tenants/{id}`, ...): `invalid_path` when it is not UTF-8 once
/// percent-decoded, `invalid_tenant_id` when it is not a tenant id. The request's span records it.
pub struct ApiTenantId(pub TenantId);

impl<S> FromRequestParts<S> for ApiTenantId
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ApiPath(raw) = ApiPath::<String>::from_request_parts(parts, state).await?;
        let id = TenantId::parse(&raw)?;
        tracing::Span::current().record("tenant.id", id.as_str());
        Ok(ApiTenantId(id))
    }
}
