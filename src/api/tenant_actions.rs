//! `/v1/tenants/{id}/...` day-two requests: a tier change, suspend and resume, and re-attaching a
//! detached tenant. Each answers with the job it enqueued, as [`super::tenants`] does.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use tracing::{Span, info};

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiTenantId};
use super::state::AppState;
use super::tenants::{requested, valid_id};
use crate::audit::Trail;
use crate::tenant_id::TenantId;
use crate::tenants::{self, Power};
use crate::wire::error::ErrorBody;
use crate::wire::tenants::{ChangeTenant, Changed, Requested, TenantPath, TenantView};

/// Move a ready tenant to another tier: 202 with the job; 200 and no job when it is on that
/// tier already.
///
/// The body is a JSON object with `tier` and optionally `apply` (`immediately`, the default,
/// or `maintenance_window`). The tenant stays `ready` and usable while the change runs, with
/// `pending_tier` set. Storage only grows on RDS: a tier with less storage keeps what the
/// instance has (`storage_gib`, and `note` says so). A change RDS refuses fails the job and
/// leaves the tenant `ready` on its old tier, with the cause in `error`.
#[utoipa::path(patch, path = "/v1/tenants/{id}", tag = "tenants", operation_id = "change_tenant",
    security(("bearer" = [])),
    params(TenantPath),
    request_body = ChangeTenant,
    responses(
        (status = 202, description = "Tier change enqueued", body = Changed),
        (status = 200, description = "The tenant is on that tier already (no job), or a replay \
            of the change in progress (its job)", body = Changed),
        (status = 400, description = "`malformed_json` or `invalid_path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
        (status = 409, description = "`tenant_not_ready` (only a ready tenant changes tiers) or \
            `job_in_progress` (another job of the tenant is active)", body = ErrorBody),
        (status = 413, description = "`body_too_large` (over 16 KiB)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`, `invalid_tenant_id` or `unknown_tier`",
            body = ErrorBody),
    ))]
pub async fn change(
    State(state): State<AppState>,
    Extension(trail): Extension<Trail>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ChangeTenant>,
) -> Result<(StatusCode, Json<Changed>), ApiError> {
    // The body is read before the id is checked, so a bad body is refused first.
    let id = valid_id(&id)?;
    let (tenant, job, created) = tenants::request_tier_change_by(
        &state.db,
        &trail,
        &state.tiers,
        &id,
        &body.tier,
        body.apply.unwrap_or_default().into(),
        state.max_attempts,
    )
    .await?;
    if let Some(job) = &job {
        Span::current().record("job.id", tracing::field::display(job.id));
    }
    info!(tenant.id = %tenant.id, tier = %body.tier, created, "tier change request");
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let body = Changed {
        tenant: TenantView::new(tenant, job.as_ref()),
        job: job.as_ref().map(Into::into),
    };
    Ok((status, Json(body)))
}

/// Suspend a ready tenant: its instance is stopped (storage and backups kept, compute no longer
/// billed) and the tenant becomes `suspended`.
///
/// 202 with the job; a replay while it runs answers 200 with the same job. RDS starts a stopped
/// instance again by itself after seven days; tenantd stops it again.
#[utoipa::path(post, path = "/v1/tenants/{id}/suspend", tag = "tenants",
    operation_id = "suspend_tenant",
    security(("bearer" = [])),
    params(TenantPath),
    responses(
        (status = 202, description = "Suspend job enqueued", body = Requested),
        (status = 200, description = "Replay: the suspend job in progress", body = Requested),
        (status = 400, description = "`invalid_path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
        (status = 409, description = "`tenant_not_ready` or `job_in_progress`", body = ErrorBody),
        (status = 422, description = "`invalid_tenant_id`", body = ErrorBody),
    ))]
pub async fn suspend(
    State(state): State<AppState>,
    Extension(trail): Extension<Trail>,
    ApiTenantId(id): ApiTenantId,
) -> Result<(StatusCode, Json<Requested>), ApiError> {
    power(state, trail, id, Power::Suspend).await
}

/// Resume a suspended tenant: its instance is started, and the tenant is `ready` once it is
/// available.
#[utoipa::path(post, path = "/v1/tenants/{id}/resume", tag = "tenants",
    operation_id = "resume_tenant",
    security(("bearer" = [])),
    params(TenantPath),
    responses(
        (status = 202, description = "Resume job enqueued", body = Requested),
        (status = 200, description = "Replay: the resume job in progress", body = Requested),
        (status = 400, description = "`invalid_path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
        (status = 409, description = "`tenant_not_suspended` or `job_in_progress`",
            body = ErrorBody),
        (status = 422, description = "`invalid_tenant_id`", body = ErrorBody),
    ))]
pub async fn resume(
    State(state): State<AppState>,
    Extension(trail): Extension<Trail>,
    ApiTenantId(id): ApiTenantId,
) -> Result<(StatusCode, Json<Requested>), ApiError> {
    power(state, trail, id, Power::Resume).await
}

/// Re-attach a detached tenant: its instance lost the tags that make it this deployment's
/// (`ManagedBy`, `Environment`, `TenantId`), and tenantd has left it alone since.
///
/// 202 with the job, which first proves the instance is the tenant's (it names no other owner,
/// the tenant's secret logs in to it, its schema version is the recorded one), then tags it;
/// the tenant is `ready` (or `suspended`, for a stopped instance) again. A replay while it runs
/// answers 200 with the same job.
#[utoipa::path(post, path = "/v1/tenants/{id}/attach", tag = "tenants",
    operation_id = "attach_tenant",
    security(("bearer" = [])),
    params(TenantPath),
    responses(
        (status = 202, description = "Attach job enqueued", body = Requested),
        (status = 200, description = "Replay: the attach job in progress", body = Requested),
        (status = 400, description = "`invalid_path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
        (status = 409, description = "`tenant_not_detached` or `job_in_progress`",
            body = ErrorBody),
        (status = 422, description = "`invalid_tenant_id`", body = ErrorBody),
    ))]
pub async fn attach(
    State(state): State<AppState>,
    Extension(trail): Extension<Trail>,
    ApiTenantId(id): ApiTenantId,
) -> Result<(StatusCode, Json<Requested>), ApiError> {
    let (tenant, job, created) =
        tenants::request_attach_by(&state.db, &trail, &id, state.max_attempts).await?;
    Ok(requested(tenant, job, created))
}

async fn power(
    state: AppState,
    trail: Trail,
    id: TenantId,
    power: Power,
) -> Result<(StatusCode, Json<Requested>), ApiError> {
    let (tenant, job, created) =
        tenants::request_power_by(&state.db, &trail, &id, power, state.max_attempts).await?;
    Ok(requested(tenant, job, created))
}
