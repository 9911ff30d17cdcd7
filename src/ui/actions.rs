//! What the console's forms do: sign in and out, and the tenant and job actions, each through
//! the same request functions the API calls. Every form but sign-in carries the session's CSRF
//! token ([`Checked`]); a success redirects to the page that shows its effect.

use axum::Extension;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tracing::info;

use super::UiState;
use super::error::UiError;
use super::pages::safe_next;
use super::session::{self, Checked, Session, see_other};
use crate::api::ApiError;
use crate::tenants::{self, Deletion, Power};
use crate::workflow::reconcile::Apply;

#[derive(Deserialize)]
pub struct SignInForm {
    token: String,
    next: Option<String>,
}

/// Checks the token like the API does; a right one opens a session and sets its cookie.
pub async fn sign_in(
    State(state): State<UiState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, UiError> {
    let next = safe_next(form.next.as_deref());
    if !state.app.tokens.accepts(form.token.trim()) {
        info!("console sign-in refused: not an accepted API token");
        let back = serde_urlencoded::to_string([("next", next.as_str()), ("failed", "1")])
            .unwrap_or_default();
        return Ok(see_other(&format!("/ui/login?{back}")));
    }
    let session = session::open(&state.app.db, state.settings.session_ttl).await?;
    info!(expires_at = %session.expires_at, "console sign-in");
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
    /// `on` when the box "without a final snapshot" is ticked.
    skip_snapshot: Option<String>,
}

pub async fn deprovision(
    State(state): State<UiState>,
    Path(id): Path<String>,
    Checked(form): Checked<DeprovisionForm>,
) -> Result<Response, UiError> {
    tenants::validate_id(&id)?;
    if form.confirm.trim() != id {
        return Ok(see_other(&format!("/ui/tenants/{id}/deprovision?wrong=1")));
    }
    let deletion = if form.skip_snapshot.is_some() {
        Deletion::FORCE_NO_SNAPSHOT
    } else {
        Deletion::KEEP_SNAPSHOT
    };
    let (_, job, created) = tenants::request_deprovision(
        &state.app.db,
        &state.app.tiers,
        &id,
        deletion,
        state.app.max_attempts,
    )
    .await?;
    info!(tenant.id = %id, job.id = %job.id, created, "console: deprovision requested");
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
    Path(id): Path<String>,
    Checked(form): Checked<TierForm>,
) -> Result<Response, UiError> {
    let apply = match form.apply.as_deref() {
        None | Some("") | Some("immediately") => Apply::Immediately,
        Some("maintenance_window") => Apply::MaintenanceWindow,
        Some(other) => return Err(UiError::BadRequest(format!("unknown apply {other:?}"))),
    };
    let (_, job, created) = tenants::request_tier_change(
        &state.app.db,
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

async fn power(state: UiState, id: String, power: Power) -> Result<Response, UiError> {
    let (_, job, created) =
        tenants::request_power(&state.app.db, &id, power, state.app.max_attempts).await?;
    info!(tenant.id = %id, job.id = %job.id, created, ?power, "console: power change requested");
    Ok(to_tenant(&id))
}

pub async fn suspend(
    State(state): State<UiState>,
    Path(id): Path<String>,
    Checked(Empty {}): Checked<Empty>,
) -> Result<Response, UiError> {
    power(state, id, Power::Suspend).await
}

pub async fn resume(
    State(state): State<UiState>,
    Path(id): Path<String>,
    Checked(Empty {}): Checked<Empty>,
) -> Result<Response, UiError> {
    power(state, id, Power::Resume).await
}

fn job_id(raw: &str) -> Result<uuid::Uuid, UiError> {
    raw.parse()
        .map_err(|_| UiError::Api(ApiError::JobNotFound(raw.to_string())))
}

pub async fn retry(
    State(state): State<UiState>,
    Path(id): Path<String>,
    Checked(Empty {}): Checked<Empty>,
) -> Result<Response, UiError> {
    let id = job_id(&id)?;
    let (tenant, job) = tenants::request_retry(&state.app.db, id, state.app.max_attempts).await?;
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
    Path(id): Path<String>,
    Checked(form): Checked<CancelForm>,
) -> Result<Response, UiError> {
    let id = job_id(&id)?;
    let mut conn = state.app.db.acquire().await?;
    let job = crate::queue::cancel(&mut conn, id).await?;
    info!(job.id = %job.id, "console: cancel requested");
    Ok(match (form.back.as_deref(), &job.tenant_id) {
        (Some("jobs"), _) | (_, None) => see_other("/ui/jobs"),
        (_, Some(tenant)) => to_tenant(tenant),
    }
    .into_response())
}
