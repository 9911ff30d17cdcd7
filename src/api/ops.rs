//! The routes operators and orchestrators call without a token: liveness, readiness and
//! metrics. `serve` has them on its API address, `worker` on its metrics address. Readiness
//! and the fleet's gauges come through [`super::probe`]: a pool of their own and caches, so
//! that scrapes never take the worker's connections.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::error::ApiError;
use super::state::AppState;

/// The Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "ok", content_type = "text/plain", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The control database answers (checked at most once a second).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "ready", body = serde_json::Value),
        (status = 503, description = "control database unreachable", body = serde_json::Value),
    ))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    match state.probe.ready().await {
        true => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        false => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "unavailable",
                "error": { "code": "control_database_unreachable",
                           "message": "the control database does not answer" }
            })),
        ),
    }
}

/// Prometheus metrics: this process's steps and AWS calls; on the maintenance leader also the
/// fleet-wide job counts and queue depth (read from the control database at most once per
/// `TENANTD_FLEET_GAUGES_INTERVAL`), so that summing over replicas counts those once.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format",
               content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let body = state
        .probe
        .metrics()
        .await
        .map_err(|e| ApiError::Internal(format!("metrics: {e}")))?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], body))
}
