//! The routes operators and orchestrators call without a token: liveness, readiness and
//! metrics. `serve` has them on its API address, `worker` on its metrics address.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::error::ApiError;
use super::state::AppState;
use crate::metrics::{self, Fleet};
use crate::queue;

/// The Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "ok", content_type = "text/plain", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The control database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "ready", body = serde_json::Value),
        (status = 503, description = "control database unreachable", body = serde_json::Value),
    ))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    match sqlx::query("SELECT 1").execute(&state.db).await {
        Ok(_) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: control database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unavailable",
                    "error": { "code": "control_database_unreachable",
                               "message": "the control database does not answer" }
                })),
            )
        }
    }
}

/// Prometheus metrics: this process's steps and AWS calls; on the maintenance leader also the
/// fleet-wide job counts and queue depth (read from the control database at scrape time), so
/// that summing over replicas counts those once.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format",
               content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let fleet = if metrics::is_leader() {
        let stats = queue::fleet_stats(&state.db).await?;
        Some(Fleet {
            jobs: stats
                .jobs
                .into_iter()
                .map(|(kind, st, n)| (kind, st.as_str(), n))
                .collect(),
            queue_depth: stats.depth,
            oldest_waiting: stats.oldest_waiting,
        })
    } else {
        None
    };
    let body =
        metrics::render(fleet.as_ref()).map_err(|e| ApiError::Internal(format!("metrics: {e}")))?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], body))
}
