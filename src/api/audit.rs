//! `/v1/audit`: the audit trail, newest first, by tenant, token and time, for admins.

use axum::Json;
use axum::extract::State;

use super::error::ApiError;
use super::extract::ApiQuery;
use super::state::AppState;
use crate::audit::{self, AuditFilter};
use crate::tenant_id::TenantId;
use crate::wire::audit::{AuditPage, AuditQuery, MAX_AUDIT_CURSOR};
use crate::wire::error::ErrorBody;
use crate::wire::{DEFAULT_PAGE, MAX_PAGE};

/// A page of audit events, newest first; `next_cursor` is null on the last page.
///
/// One event per request that changed something (from the API, the CLI and the console) and
/// per refused request: who asked (token name and role, never the token), from which address,
/// through which channel, the request id it was answered with, the route, the tenant, rollout
/// or job it was about, and its status and error code. Only the parameters below are
/// accepted: any other, or one given twice, is refused with 400 `invalid_query`.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", operation_id = "list_audit_events",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page", body = AuditPage),
        (status = 400, description = "`invalid_query`: an unknown or repeated parameter, a \
            `limit` outside 1..1000, a time that is not RFC 3339, a `tenant` or `token` that \
            names none, a `cursor` outside 1..2^53-1", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be from 1 to {MAX_PAGE}, got {limit}"
        )));
    }
    if query
        .cursor
        .is_some_and(|c| !(1..=MAX_AUDIT_CURSOR).contains(&c))
    {
        return Err(ApiError::InvalidQuery(
            "cursor must be the next_cursor of a previous page (an event id)".into(),
        ));
    }
    if let Some(tenant) = query.tenant.as_deref()
        && TenantId::parse(tenant).is_err()
    {
        return Err(ApiError::InvalidQuery("tenant must be a tenant id".into()));
    }
    if let Some(token) = query.token.as_deref() {
        let valid = (1..=64).contains(&token.len())
            && token.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && token
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if !valid {
            return Err(ApiError::InvalidQuery(
                "token must be a token's name".into(),
            ));
        }
    }
    let filter = AuditFilter {
        tenant: query.tenant,
        token: query.token,
        since: query.since,
        until: query.until,
    };
    let (events, next_cursor) = audit::page(&state.db, &filter, limit, query.cursor).await?;
    Ok(Json(AuditPage {
        events,
        next_cursor,
    }))
}
