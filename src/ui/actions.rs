//! What the console's forms do: sign in and out, and the tenant and job actions, each through
//! the same request functions the API calls, with the same roles (the pages hide what a
//! session's role cannot do; these refuse it anyway, 403) and the same audit trail. Every form
//! but sign-in carries the session's CSRF token ([`Checked`]); a success redirects to the page
//! that shows its effect.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use tracing::{info, warn};

use super::UiState;
use super::error::UiError;
use super::pages::{page, safe_next};
use super::session::{self, Checked, Session, see_other};
use crate::api::ApiError;
use crate::api::caller::Caller;
use crate::api::lockout::Verdict;
use crate::audit::{self, Trail};
use crate::config::{Presented, Role};
use crate::tenant_id::TenantId;
use crate::tenants::{self, Deletion, Power};
use crate::workflow::reconcile::Apply;

#[derive(Deserialize)]
pub struct SignInForm {
    token: String,
    next: Option<String>,
}

/// Checks the token like the API does (failed attempts count against the address's limit, as
/// the API's do); a right one opens a session of the token's name and role and sets its cookie.
/// Sign-ins and refused ones are audited.
pub async fn sign_in(
    State(state): State<UiState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, UiError> {
    let next = safe_next(form.next.as_deref());
    let trail = Trail::new(caller.entry("POST", "/ui/login"));
    let token = match state.app.tokens.authenticate(form.token.trim()) {
        Presented::Known(token) => token.clone(),
        other => {
            let tried = match other {
                Presented::WrongSecret { name } => Some(name.to_string()),
                _ => None,
            };
            trail.token(tried.as_deref(), None);
            let (error, record) = match state.app.lockout.failed(caller.address) {
                Verdict::Refused { record } => (None, record),
                Verdict::Blocked {
                    retry_after,
                    record,
                } => (
                    Some(ApiError::TooManyFailures {
                        retry_after: retry_after.as_secs(),
                    }),
                    record,
                ),
            };
            let status = error.as_ref().map_or(401, |e| e.status().as_u16());
            if record {
                warn!(
                    address = %caller.address,
                    token.name = tried.as_deref(),
                    status,
                    "console sign-in refused: not an accepted token"
                );
                let code = error.as_ref().map_or("unauthorized", ApiError::code);
                trail.finish(&state.app.db, status, Some(code)).await;
            }
            if let Some(e) = error {
                return Err(UiError::Api(e));
            }
            let back = serde_urlencoded::to_string([("next", next.as_str()), ("failed", "1")])
                .unwrap_or_default();
            return Ok(see_other(&format!("/ui/login?{back}")));
        }
    };
    let settings = &state.settings;
    let session = session::open(
        &state.app.db,
        settings.session_ttl,
        settings.idle_timeout,
        &token,
    )
    .await?;
    trail.token(Some(&token.name), Some(token.role));
    trail.finish(&state.app.db, 303, None).await;
    info!(address = %caller.address, token.name = %token.name, role = %token.role, expires_at = %session.expires_at, "console sign-in");
    let mut response = see_other(&next);
    response.headers_mut().insert(
        SET_COOKIE,
        session::set_cookie(&state, &headers, Some(&session)),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn sign_out(
    State(state): State<UiState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Checked(Empty {}): Checked<Empty>,
) -> Result<Response, UiError> {
    session::close(&state.app.db, &session).await?;
    let mut response = see_other("/ui/login");
    response
        .headers_mut()
        .insert(SET_COOKIE, session::set_cookie(&state, &headers, None));
    Ok(response)
}

fn to_tenant(id: &str) -> Response {
    see_other(&format!("/ui/tenants/{id}"))
}

#[derive(Deserialize)]
pub struct DeprovisionForm {
    /// The tenant's id, typed again.
    confirm: String,
    /// `on` when the box "without a final snapshot" is ticked (admins only).
    skip_snapshot: Option<String>,
    /// `on` when, on the second page, the admin confirmed going past the tier's deletion
    /// protection.
    force: Option<String>,
}

/// The second confirmation a protected tier's deprovisioning without a final snapshot needs.
#[derive(Template)]
#[template(path = "deprovision_force.html")]
struct ConfirmForce {
    csrf: String,
    nav: &'static str,
    id: String,
    tier: String,
}

/// Deprovisions behind the typed id. With a final snapshot: operators. Without one: admins,
/// and on a tier with deletion protection only after a second page where that is confirmed
/// explicitly (the API's `force=true`); the job's history says it was forced and by whom.
pub async fn deprovision(
    State(state): State<UiState>,
    Extension(session): Extension<Session>,
    Extension(trail): Extension<Trail>,
    Path(id): Path<String>,
    Checked(form): Checked<DeprovisionForm>,
) -> Result<Response, UiError> {
    let id = TenantId::parse(&id)?;
    session.require(Role::Operator)?;
    if form.confirm.trim() != id.as_str() {
        return Ok(see_other(&format!("/ui/tenants/{id}/deprovision?wrong=1")));
    }
    let deletion = if form.skip_snapshot.is_some() {
        session.require(Role::Admin)?;
        let tenant = tenants::get(&state.app.db, &id)
            .await?
            .ok_or_else(|| ApiError::TenantNotFound(id.to_string()))?;
        let protected = state
            .app
            .tiers
            .get(&tenant.tier)
            .is_some_and(|t| t.deletion_protection);
        match (protected, form.force.as_deref()) {
            (false, _) => Deletion {
                final_snapshot: false,
                force: false,
            },
            (true, Some("on")) => Deletion::FORCE_NO_SNAPSHOT,
            (true, _) => {
                return page(ConfirmForce {
                    csrf: session.csrf(),
                    nav: "tenants",
                    id: tenant.id,
                    tier: tenant.tier,
                });
            }
        }
    } else {
        Deletion::KEEP_SNAPSHOT
    };
    let (_, job, created) = tenants::request_deprovision_by(
        &state.app.db,
        &trail,
        &state.app.tiers,
        &id,
        deletion,
        state.app.max_attempts,
    )
    .await?;
    info!(tenant.id = %id, job.id = %job.id, created, final_snapshot = deletion.final_snapshot, token.name = %session.token, "console: deprovision requested");
    Ok(to_tenant(&id))
}

#[derive(Deserialize)]
pub struct TierForm {
    tier: String,
    /// `maintenance_window` to wait for the instance's window.
    apply: Option<String>,
}

pub async fn change_tier(
    State(state): State<UiState>,
    Extension(session): Extension<Session>,
    Extension(trail): Extension<Trail>,
    Path(id): Path<String>,
    Checked(form): Checked<TierForm>,
) -> Result<Response, UiError> {
    session.require(Role::Operator)?;
    let id = TenantId::parse(&id)?;
    let apply = match form.apply.as_deref() {
        None | Some("") | Some("immediately") => Apply::Immediately,
        Some("maintenance_window") => Apply::MaintenanceWindow,
        Some(other) => return Err(UiError::BadRequest(format!("unknown apply {other:?}"))),
    };
    let (_, job, created) = tenants::request_tier_change_by(
        &state.app.db,
        &trail,
        &state.app.tiers,
        &id,
        &form.tier,
        apply,
        state.app.max_attempts,
    )
    .await?;
    info!(tenant.id = %id, job.id = ?job.map(|j| j.id), created, tier = %form.tier, "console: tier change requested");
    Ok(to_tenant(&id))
}

async fn power(
    state: UiState,
    session: Session,
    trail: Trail,
    id: String,
    power: Power,
) -> Result<Response, UiError> {
    session.require(Role::Operator)?;
    let id = TenantId::parse(&id)?;
    let (_, job, created) =
        tenants::request_power_by(&state.app.db, &trail, &id, power, state.app.max_attempts)
            .await?;
    info!(tenant.id = %id, job.id = %job.id, created, ?power, "console: power change requested");
    Ok(to_tenant(&id))
}

pub async fn suspend(
    State(state): State<UiState>,
    Extension(session): Extension<Session>,
    Extension(trail): Extension<Trail>,
    Path(id): Path<String>,
    Checked(Empty {}): Checked<Empty>,
) -> Result<Response, UiError> {
    power(state, session, trail, id, Power::Suspend).await
}

pub async fn resume(
    State(state): State<UiState>,
    Extension(session): Extension<Session>,
    Extension(trail): Extension<Trail>,
    Path(id): Path<String>,
    Checked(Empty {}): Checked<Empty>,
) -> Result<Response, UiError> {
    power(state, session, trail, id, Power::Resume).await
}

fn job_id(raw: &str) -> Result<uuid::Uuid, UiError> {
    raw.parse()
        .map_err(|_| UiError::Api(ApiError::JobNotFound(raw.to_string())))
}

pub async fn retry(
    State(state): State<UiState>,
    Extension(session): Extension<Session>,
    Extension(trail): Extension<Trail>,
    Path(id): Path<String>,
    Checked(Empty {}): Checked<Empty>,
) -> Result<Response, UiError> {
    session.require(Role::Operator)?;
    let id = job_id(&id)?;
    let (tenant, job) =
        tenants::request_retry_by(&state.app.db, &trail, id, state.app.max_attempts).await?;
    info!(tenant.id = %tenant.id, job.id = %job.id, retried = %id, "console: retry requested");
    Ok(to_tenant(&tenant.id))
}

#[derive(Deserialize)]
pub struct CancelForm {
    /// Where to go afterwards: `jobs` for the jobs page, else the job's tenant.
    back: Option<String>,
}

pub async fn cancel(
    State(state): State<UiState>,
    Extension(session): Extension<Session>,
    Extension(trail): Extension<Trail>,
    Path(id): Path<String>,
    Checked(form): Checked<CancelForm>,
) -> Result<Response, UiError> {
    session.require(Role::Operator)?;
    let id = job_id(&id)?;
    let mut tx = state.app.db.begin().await?;
    let job = crate::queue::cancel(&mut tx, id).await?;
    if let Some(tenant) = &job.tenant_id {
        trail.tenant(tenant);
    }
    audit::commit(tx, Some(&trail), 202).await?;
    info!(job.id = %job.id, "console: cancel requested");
    Ok(match (form.back.as_deref(), &job.tenant_id) {
        (Some("jobs"), _) | (_, None) => see_other("/ui/jobs"),
        (_, Some(tenant)) => to_tenant(tenant),
    }
    .into_response())
}
