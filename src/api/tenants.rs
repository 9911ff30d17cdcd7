//! `/v1/tenants`: ask for a tenant's database, look at tenants, and take a database away. Thin:
//! validation, idempotency and conflicts live in [`crate::tenants`]; this module maps them to
//! HTTP and shapes the answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use tracing::{Span, info};

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery, ApiTenantId};
use super::state::AppState;
use crate::audit::Trail;
use crate::queue::{self, Job};
use crate::tenant_id::TenantId;
use crate::tenants::{self, Deletion, Tenant, TenantError, TenantFilter};
use crate::wire::error::ErrorBody;
use crate::wire::tenants::{
    CreateTenant, DeleteQuery, ListQuery, Page, Requested, TenantPath, TenantView,
};
use crate::wire::{DEFAULT_PAGE, MAX_PAGE};
use crate::workflow::{Provision, Workflow};

pub(super) fn requested(tenant: Tenant, job: Job, created: bool) -> (StatusCode, Json<Requested>) {
    let span = Span::current();
    span.record("job.id", tracing::field::display(job.id));
    info!(tenant.id = %tenant.id, job.id = %job.id, job.kind = %job.kind, created, "tenant request");
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let body = Requested {
        tenant: TenantView::new(tenant, Some(&job)),
        job: (&job).into(),
    };
    (status, Json(body))
}

/// Checks an id of a body (or of a path read after its body) before it goes anywhere, logs
/// included.
pub(super) fn valid_id(id: &str) -> Result<TenantId, ApiError> {
    let id = TenantId::parse(id)?;
    Span::current().record("tenant.id", id.as_str());
    Ok(id)
}

/// Provision a tenant's database: 202 with a new job, 200 with the same job on a replay.
///
/// The body is a JSON object (`Content-Type: application/json`, at most 16 KiB) with exactly
/// `id` and `tier`. A replay (same id and tier) while the job runs or once the tenant is ready
/// answers 200 with the existing job and enqueues nothing; a failed or deleted tenant is
/// provisioned again (202).
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", operation_id = "create_tenant",
    security(("bearer" = [])),
    request_body = CreateTenant,
    responses(
        (status = 202, description = "Provisioning job enqueued", body = Requested,
            links(
                ("tenant" = (operation_id = "get_tenant", parameters(("id" = "$response.body#/tenant/id")))),
                ("delete" = (operation_id = "delete_tenant", parameters(("id" = "$response.body#/tenant/id")))),
                ("job" = (operation_id = "get_job", parameters(("id" = "$response.body#/job/id")))),
                ("cancel" = (operation_id = "cancel_job", parameters(("id" = "$response.body#/job/id")))),
            )),
        (status = 200, description = "Replay: the existing tenant and job; nothing enqueued", body = Requested,
            links(
                ("tenant" = (operation_id = "get_tenant", parameters(("id" = "$response.body#/tenant/id")))),
                ("delete" = (operation_id = "delete_tenant", parameters(("id" = "$response.body#/tenant/id")))),
                ("job" = (operation_id = "get_job", parameters(("id" = "$response.body#/job/id")))),
                ("cancel" = (operation_id = "cancel_job", parameters(("id" = "$response.body#/job/id")))),
            )),
        (status = 400, description = "`malformed_json`: not JSON, or not an object", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 409, description = "`tier_conflict`, `conflict`, or `tenant_detached` (its \
            instance lost this deployment's ownership tags: re-attach it first)",
            body = ErrorBody),
        (status = 413, description = "`body_too_large` (over 16 KiB)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body` (a missing, unknown or mistyped field), \
            `invalid_tenant_id` or `unknown_tier`", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Extension(trail): Extension<Trail>,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<Requested>), ApiError> {
    let id = valid_id(&body.id)?;
    let request = tenants::request_provision_by(
        &state.db,
        &trail,
        &state.tiers,
        &id,
        &body.tier,
        state.max_attempts,
    )
    .await;
    match request {
        Ok((tenant, job, created)) => Ok(requested(tenant, job, created)),
        Err(e @ TenantError::Conflict { .. }) => {
            let other_tier = tenants::get(&state.db, &id)
                .await?
                .is_some_and(|t| t.tier != body.tier);
            Err(if other_tier {
                ApiError::TierConflict(e.to_string())
            } else {
                ApiError::Conflict(e.to_string())
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// A tenant with its latest job.
///
/// A deleted tenant stays readable: once its deprovisioning has succeeded this answers 200
/// with `status: "deleted"` and the deprovisioning job (not 404). Only an id that was never
/// asked for is `tenant_not_found`.
#[utoipa::path(get, path = "/v1/tenants/{id}", tag = "tenants", operation_id = "get_tenant",
    security(("bearer" = [])),
    params(TenantPath),
    responses(
        (status = 200, description = "The tenant, also once deleted (`status: \"deleted\"`)", body = TenantView),
        (status = 400, description = "`invalid_path`: the id is not UTF-8 once percent-decoded", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_tenant_id`", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    ApiTenantId(id): ApiTenantId,
) -> Result<Json<TenantView>, ApiError> {
    let (tenant, job) = tenants::with_latest_job(&state.db, &id)
        .await?
        .ok_or_else(|| ApiError::TenantNotFound(id.to_string()))?;
    Ok(Json(TenantView::new(tenant, job.as_ref())))
}

/// A page of tenants in id order; `next_cursor` is null on the last page.
///
/// Deleted tenants are listed too (`status=deleted` lists only them). Only the parameters
/// below are accepted: any other, or one given twice, is refused with 400 `invalid_query`.
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", operation_id = "list_tenants",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page", body = Page),
        (status = 400, description = "`invalid_query`: an unknown or repeated parameter, a \
            `limit` outside 1..1000, an unknown `status`, a `cursor` that is not a tenant id", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be from 1 to {MAX_PAGE}, got {limit}"
        )));
    }
    // A cursor is the last id of a page: anything else can name no position (and a NUL byte
    // would not even reach the database).
    if let Some(cursor) = query.cursor.as_deref()
        && TenantId::parse(cursor).is_err()
    {
        return Err(ApiError::InvalidQuery(
            "cursor must be the next_cursor of a previous page (a tenant id)".to_string(),
        ));
    }
    let engine_ok = |v: &str| {
        let parts: Vec<&str> = v.split('.').collect();
        parts.len() <= 2
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()))
            && parts[0].len() <= 3
    };
    if let Some(v) = query.engine_version.as_deref()
        && !engine_ok(v)
    {
        return Err(ApiError::InvalidQuery(format!(
            "engine_version must be a major (16) or a version (16.9), got {v:?}"
        )));
    }
    if let Some(ca) = query.ca_certificate.as_deref()
        && !((3..=64).contains(&ca.len())
            && ca
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    {
        return Err(ApiError::InvalidQuery(format!(
            "ca_certificate must be a CA identifier such as rds-ca-rsa4096-g1, got {ca:?}"
        )));
    }
    let filter = TenantFilter {
        status: query.status,
        schema_version_below: query.schema_version_below,
        engine_version: query.engine_version,
        ca_certificate: query.ca_certificate,
        ..TenantFilter::default()
    };
    let (page, next_cursor) =
        tenants::page_with_jobs(&state.db, &filter, limit, query.cursor.as_deref()).await?;
    let tenants = page
        .into_iter()
        .map(|(t, job)| TenantView::new(t, job.as_ref()))
        .collect();
    Ok(Json(Page {
        tenants,
        next_cursor,
    }))
}

/// Deprovision a tenant's database (a final snapshot first unless `final_snapshot=false`).
///
/// Idempotent: a replay while the deprovisioning runs, or once the tenant is deleted, answers
/// 200 with the job that deletes (or deleted) it. The tenant is not forgotten: `GET
/// /v1/tenants/{id}` keeps answering 200 with `status: "deleted"` (not 404), and `POST
/// /v1/tenants` may provision it again. A tier with deletion protection keeps its final
/// snapshot: `final_snapshot=false` there needs `force=true` too (else 409
/// `final_snapshot_required`: the same request is fine for a tenant of another tier). Only `final_snapshot` and `force` are accepted as parameters:
/// any other, or one given twice, is refused with 400 `invalid_query`.
#[utoipa::path(delete, path = "/v1/tenants/{id}", tag = "tenants", operation_id = "delete_tenant",
    security(("bearer" = [])),
    params(TenantPath, DeleteQuery),
    responses(
        (status = 202, description = "Deprovisioning job enqueued", body = Requested,
            links(
                ("tenant" = (operation_id = "get_tenant", parameters(("id" = "$response.body#/tenant/id")))),
                ("job" = (operation_id = "get_job", parameters(("id" = "$response.body#/job/id")))),
                ("cancel" = (operation_id = "cancel_job", parameters(("id" = "$response.body#/job/id")))),
            )),
        (status = 200, description = "Replay: the existing deprovisioning job, also once the tenant is deleted", body = Requested,
            links(
                ("tenant" = (operation_id = "get_tenant", parameters(("id" = "$response.body#/tenant/id")))),
                ("job" = (operation_id = "get_job", parameters(("id" = "$response.body#/job/id")))),
            )),
        (status = 400, description = "`invalid_query` (an unknown or repeated parameter, a \
            `final_snapshot` other than `true` or `false`) or `invalid_path` (the id is not \
            UTF-8 once percent-decoded)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
        (status = 409, description = "`provisioning_in_progress` (cancel the provisioning job or \
            wait for it to end), `job_in_progress` (another job of the tenant, such as a tier \
            change or a migration, runs), `conflict`, or `final_snapshot_required` (no final \
            snapshot asked for a tenant whose tier has deletion protection, without \
            `force=true`), or `tenant_detached` (its instance lost this deployment's ownership \
            tags: tenantd deletes nothing it cannot prove its own)",
            body = ErrorBody),
        (status = 422, description = "`invalid_tenant_id`", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(trail): Extension<Trail>,
    // The query is read before the id, so a bad query is refused first.
    ApiQuery(query): ApiQuery<DeleteQuery>,
    ApiTenantId(id): ApiTenantId,
) -> Result<(StatusCode, Json<Requested>), ApiError> {
    let deletion = Deletion {
        final_snapshot: query.final_snapshot.unwrap_or(true),
        force: query.force.unwrap_or(false),
    };
    let request = tenants::request_deprovision_by(
        &state.db,
        &trail,
        &state.tiers,
        &id,
        deletion,
        state.max_attempts,
    );
    match request.await {
        Ok((tenant, job, created)) => Ok(requested(tenant, job, created)),
        Err(e @ TenantError::Conflict { .. }) => {
            let provisioning = queue::active_job(&state.db, &id)
                .await?
                .is_some_and(|j| j.kind == Provision::KIND);
            Err(if provisioning {
                ApiError::ProvisioningInProgress(e.to_string())
            } else {
                ApiError::Conflict(e.to_string())
            })
        }
        Err(e) => Err(e.into()),
    }
}
