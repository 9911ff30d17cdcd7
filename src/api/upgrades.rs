//! `POST /v1/tenants/{id}/upgrade`: a tenant's engine upgrade to a new PostgreSQL major, asked
//! for like the other tenant actions (202 with the job, 200 on a replay).

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use tracing::info;

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath};
use super::state::AppState;
use super::tenants::{requested, valid_id};
use crate::audit::Trail;
use crate::tenants;
use crate::wire::error::ErrorBody;
use crate::wire::tenants::{Requested, TenantPath, UpgradeTenant};

/// Upgrade a ready tenant to a new PostgreSQL major by an RDS Blue/Green deployment: 202 with
/// the job; a replay while it runs answers 200 with the same job.
///
/// The body is a JSON object with `target_version` (a major, e.g. `"17"`) and optionally
/// `apply` (`immediately`, the default, or `maintenance_window`: the switchover waits for the
/// tenant's window). The job checks that RDS lists the target as a valid upgrade target of
/// the tenant's version and supports the tenant database's extensions, makes the green copy,
/// checks it against the tenant's database, and switches over; the tenant stays `ready`
/// throughout (writes pause for the switchover, typically under a minute). A failure before
/// the switchover deletes the green copy and leaves the tenant on its version, with the cause
/// in `error`.
#[utoipa::path(post, path = "/v1/tenants/{id}/upgrade", tag = "tenants",
    operation_id = "upgrade_tenant",
    security(("bearer" = [])),
    params(TenantPath),
    request_body = UpgradeTenant,
    responses(
        (status = 202, description = "Engine upgrade enqueued", body = Requested),
        (status = 200, description = "Replay: the same upgrade in progress", body = Requested),
        (status = 400, description = "`malformed_json` or `invalid_path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
        (status = 409, description = "`tenant_not_ready`, `tenant_detached` or \
            `job_in_progress`", body = ErrorBody),
        (status = 413, description = "`body_too_large` (over 16 KiB)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`, `invalid_tenant_id`, \
            `invalid_target_version` (not a major such as \"17\") or `not_an_upgrade` (the \
            tenant's major or an older one)", body = ErrorBody),
    ))]
pub async fn upgrade(
    State(state): State<AppState>,
    Extension(trail): Extension<Trail>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpgradeTenant>,
) -> Result<(StatusCode, Json<Requested>), ApiError> {
    // The body is read before the id is checked, so a bad body is refused first.
    let id = valid_id(&id)?;
    let (tenant, job, created) = tenants::request_engine_upgrade_by(
        &state.db,
        &trail,
        &id,
        &body.target_version,
        body.apply.unwrap_or_default().into(),
        state.max_attempts,
    )
    .await?;
    info!(tenant.id = %tenant.id, target = %body.target_version, "engine upgrade request");
    Ok(requested(tenant, job, created))
}
