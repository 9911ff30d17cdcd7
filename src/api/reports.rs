//! `/v1/reports/engines`: how many tenants run each PostgreSQL major and each CA, and which
//! run a major past its configured end of support.

use axum::Json;
use axum::extract::State;
use chrono::Utc;

use super::error::ApiError;
use super::state::AppState;
use crate::tenants;
use crate::wire::error::ErrorBody;
use crate::wire::reports::EngineReport;

/// The fleet's engines today: tenants per major (with its end of support from
/// `TENANTD_ENGINE_END_OF_SUPPORT`) and per CA, as the reconciler last described the
/// instances, and the tenants on a major past its end of support (at most 1,000 listed, all
/// counted).
#[utoipa::path(get, path = "/v1/reports/engines", tag = "reports", operation_id = "engine_report",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report", body = EngineReport),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ))]
pub async fn engines(State(state): State<AppState>) -> Result<Json<EngineReport>, ApiError> {
    let today = Utc::now().date_naive();
    let report = tenants::engine_report(&state.db, &state.engines.end_of_support, today).await?;
    Ok(Json(report))
}
