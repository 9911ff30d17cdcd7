//! `/v1/rollouts`: create a fleet schema rollout, look at it (its counts per stage and its
//! failures), pause, resume and cancel it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use tracing::{Span, info};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, rollout_id};
use super::state::AppState;
use crate::audit::Trail;
use crate::rollouts::NewRollout;
use crate::rollouts::requests::{self, Steer};
use crate::tenant_db;
use crate::wire::error::ErrorBody;
use crate::wire::rollouts::{
    CreateRollout, RolloutListQuery, RolloutPage, RolloutPath, RolloutView,
};
use crate::wire::{DEFAULT_PAGE, MAX_PAGE};

fn record_id(id: Uuid) {
    Span::current().record("rollout.id", tracing::field::display(id));
}

/// Start a rollout: the tenants (every tenant of the stages' tiers, or those listed) are
/// fixed now; the canary first, then each stage in order, at most `concurrency` at once.
///
/// Its `kind` says what moves: the tenant schema (default), the engine major or minor, the
/// CA, RDS's pending maintenance. Suspended, failed, deprovisioning and deleted tenants are
/// skipped and counted as such. Only one rollout (of any kind) runs at a time: 409
/// `rollout_in_progress` while another runs or is paused. A schema `target_version` the
/// migrations directory does not have or a bad number is 422 `invalid_body`; an unknown kind
/// 422 `unknown_rollout_kind`; a target RDS does not offer (DescribeDBEngineVersions,
/// DescribeCertificates) or not of the kind's shape 422 `target_not_offered`; an `apply` the
/// kind does not take 422 `invalid_apply`; RDS not answering 503 `rds_unavailable`; an unknown
/// tier 422 `unknown_tier`; a tenant that does not exist 404 `tenant_not_found`.
#[utoipa::path(post, path = "/v1/rollouts", tag = "rollouts", operation_id = "create_rollout",
    security(("bearer" = [])),
    request_body = CreateRollout,
    responses(
        (status = 202, description = "The rollout, started", body = RolloutView,
            links(("rollout" = (operation_id = "get_rollout", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "`malformed_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`: a tenant listed does not exist", body = ErrorBody),
        (status = 409, description = "`rollout_in_progress`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`, `unknown_tier`, `unknown_rollout_kind`, `target_not_offered`, `invalid_apply`", body = ErrorBody),
        (status = 503, description = "`rds_unavailable`: RDS could not be asked about the target", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Extension(trail): Extension<Trail>,
    ApiJson(body): ApiJson<CreateRollout>,
) -> Result<(StatusCode, Json<RolloutView>), ApiError> {
    let catalog = tenant_db::catalog(&state.tenant_migrations)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let new = NewRollout {
        kind: body.kind,
        target_version: body.target_version,
        apply: body.apply,
        canary: body.canary,
        concurrency: body.concurrency,
        max_failures: body.max_failures,
        stages: body.stages,
        tenants: body.tenants,
    };
    let rollout = requests::create(
        &state.db,
        Some(&trail),
        &state.tiers,
        &catalog,
        &state.offers,
        &new,
    )
    .await?;
    record_id(rollout.id);
    info!(rollout.id = %rollout.id, kind = %rollout.kind, target = %rollout.target_text(),
        "rollout created");
    let view = requests::view_of(&state.db, rollout).await?;
    Ok((StatusCode::ACCEPTED, Json(RolloutView::from(&view))))
}

/// A rollout with its state, its counts per stage and its failures.
///
/// An id that is not a UUID names no rollout: 404 `rollout_not_found`.
#[utoipa::path(get, path = "/v1/rollouts/{id}", tag = "rollouts", operation_id = "get_rollout",
    security(("bearer" = [])),
    params(RolloutPath),
    responses(
        (status = 200, description = "The rollout", body = RolloutView),
        (status = 400, description = "`invalid_path`: the id is not UTF-8 once percent-decoded", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`rollout_not_found`", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RolloutView>, ApiError> {
    let id = rollout_id(&id)?;
    record_id(id);
    let view = requests::view(&state.db, id).await?;
    Ok(Json(RolloutView::from(&view)))
}

/// A page of rollouts, newest first; `next_cursor` is null on the last page.
#[utoipa::path(get, path = "/v1/rollouts", tag = "rollouts", operation_id = "list_rollouts",
    security(("bearer" = [])),
    params(RolloutListQuery),
    responses(
        (status = 200, description = "A page", body = RolloutPage),
        (status = 400, description = "`invalid_query`: an unknown or repeated parameter, a \
            `limit` outside 1..1000 (a `cursor` that names no rollout gives an empty page)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RolloutListQuery>,
) -> Result<Json<RolloutPage>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be from 1 to {MAX_PAGE}, got {limit}"
        )));
    }
    let (views, next_cursor) = requests::list(&state.db, limit, query.cursor).await?;
    Ok(Json(RolloutPage {
        rollouts: views.iter().map(RolloutView::from).collect(),
        next_cursor,
    }))
}

async fn steer(
    state: AppState,
    trail: Trail,
    id: String,
    how: Steer,
) -> Result<(StatusCode, Json<RolloutView>), ApiError> {
    let id = rollout_id(&id)?;
    record_id(id);
    let rollout = requests::steer(&state.db, Some(&trail), id, how).await?;
    info!(rollout.id = %id, state = rollout.state.as_str(), "rollout steered");
    let view = requests::view_of(&state.db, rollout).await?;
    Ok((StatusCode::ACCEPTED, Json(RolloutView::from(&view))))
}

/// Pause a running rollout: no new tenant starts; the running migrations finish. Pausing a
/// paused rollout changes nothing; any other state is 409 `rollout_state_conflict`.
#[utoipa::path(post, path = "/v1/rollouts/{id}/pause", tag = "rollouts", operation_id = "pause_rollout",
    security(("bearer" = [])),
    params(RolloutPath),
    responses(
        (status = 202, description = "The rollout", body = RolloutView),
        (status = 400, description = "`invalid_path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`rollout_not_found`", body = ErrorBody),
        (status = 409, description = "`rollout_state_conflict`", body = ErrorBody),
    ))]
pub async fn pause(
    State(state): State<AppState>,
    Extension(trail): Extension<Trail>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<RolloutView>), ApiError> {
    steer(state, trail, id, Steer::Pause).await
}

/// Resume a paused or halted rollout. After a halt, the failed tenants are retried first.
/// Resuming a running rollout changes nothing; a finished one is 409
/// `rollout_state_conflict`; resuming a halted one while another runs 409
/// `rollout_in_progress`.
#[utoipa::path(post, path = "/v1/rollouts/{id}/resume", tag = "rollouts", operation_id = "resume_rollout",
    security(("bearer" = [])),
    params(RolloutPath),
    responses(
        (status = 202, description = "The rollout", body = RolloutView),
        (status = 400, description = "`invalid_path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`rollout_not_found`", body = ErrorBody),
        (status = 409, description = "`rollout_state_conflict`, `rollout_in_progress`", body = ErrorBody),
    ))]
pub async fn resume(
    State(state): State<AppState>,
    Extension(trail): Extension<Trail>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<RolloutView>), ApiError> {
    steer(state, trail, id, Steer::Resume).await
}

/// Cancel a rollout for good: no new tenant starts (the running migrations finish); tenants
/// not started stay on their version. Cancelling twice changes nothing; a succeeded rollout is
/// 409 `rollout_state_conflict`.
#[utoipa::path(post, path = "/v1/rollouts/{id}/cancel", tag = "rollouts", operation_id = "cancel_rollout",
    security(("bearer" = [])),
    params(RolloutPath),
    responses(
        (status = 202, description = "The rollout", body = RolloutView),
        (status = 400, description = "`invalid_path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`rollout_not_found`", body = ErrorBody),
        (status = 409, description = "`rollout_state_conflict`", body = ErrorBody),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(trail): Extension<Trail>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<RolloutView>), ApiError> {
    steer(state, trail, id, Steer::Cancel).await
}
