//! The tenant list (filters, paging), a tenant's page with its jobs' timelines, the live part
//! of that page, and the confirmation before a deprovisioning.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

use super::{PAGE, STATUSES, given, page};
use crate::api::ApiError;
use crate::audit;
use crate::config::Role;
use crate::queue::{self, JobFilter};
use crate::store::events::{self, EventFilter};
use crate::tenant_id::TenantId;
use crate::tenants::{self, TenantFilter, TenantStatus};
use crate::ui::UiState;
use crate::ui::error::UiError;
use crate::ui::session::Session;
use crate::ui::views::{TenantDetail, TenantRow, Timeline};

/// Jobs a tenant's page draws.
const TENANT_PAGE_JOBS: i64 = 8;

#[derive(Deserialize, Default)]
pub struct TenantsQuery {
    status: Option<String>,
    tier: Option<String>,
    q: Option<String>,
    engine: Option<String>,
    ca: Option<String>,
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "tenants.html")]
struct Tenants {
    csrf: String,
    nav: &'static str,
    statuses: Vec<&'static str>,
    tiers: Vec<String>,
    status: String,
    tier: String,
    q: String,
    engine: String,
    ca: String,
    rows: Vec<TenantRow>,
    next: Option<String>,
    first: Option<String>,
}

pub async fn tenants(
    State(state): State<UiState>,
    Extension(session): Extension<Session>,
    Query(query): Query<TenantsQuery>,
) -> Result<Response, UiError> {
    let status = given(&query.status)
        .map(|s| {
            STATUSES
                .iter()
                .copied()
                .find(|t| t.as_str() == s)
                .ok_or_else(|| UiError::BadRequest(format!("unknown status {s:?}")))
        })
        .transpose()?;
    let prefix = given(&query.q).map(str::to_ascii_lowercase);
    if let Some(p) = &prefix
        && !p
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(UiError::BadRequest(
            "search by the start of a tenant id: lowercase letters, digits and hyphens".into(),
        ));
    }
    let after = given(&query.after);
    if let Some(a) = after {
        TenantId::parse(a)?;
    }
    let engine = given(&query.engine);
    if let Some(e) = engine
        && !(e.len() <= 8
            && e.split('.').count() <= 2
            && e.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
    {
        return Err(UiError::BadRequest(
            "engine version: a major (16) or a version (16.9)".into(),
        ));
    }
    let ca = given(&query.ca);
    if let Some(c) = ca
        && !(c.len() <= 64
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
    {
        return Err(UiError::BadRequest(
            "CA: an identifier such as rds-ca-rsa4096-g1".into(),
        ));
    }
    let filter = TenantFilter {
        status,
        tier: given(&query.tier).map(str::to_string),
        prefix: prefix.clone(),
        engine_version: engine.map(str::to_string),
        ca_certificate: ca.map(str::to_string),
        ..TenantFilter::default()
    };
    let (rows, next) = tenants::page_with_jobs(&state.app.db, &filter, PAGE, after).await?;
    let now = Utc::now();
    let filters = serde_urlencoded::to_string([
        ("status", given(&query.status).unwrap_or_default()),
        ("tier", given(&query.tier).unwrap_or_default()),
        ("q", prefix.as_deref().unwrap_or_default()),
        ("engine", engine.unwrap_or_default()),
        ("ca", ca.unwrap_or_default()),
    ])
    .unwrap_or_default();
    page(Tenants {
        csrf: session.csrf(),
        nav: "tenants",
        statuses: STATUSES.iter().map(|s| s.as_str()).collect(),
        tiers: state
            .app
            .tiers
            .names()
            .iter()
            .map(|s| s.to_string())
            .collect(),
        status: given(&query.status).unwrap_or_default().to_string(),
        tier: given(&query.tier).unwrap_or_default().to_string(),
        q: prefix.clone().unwrap_or_default(),
        engine: engine.unwrap_or_default().to_string(),
        ca: ca.unwrap_or_default().to_string(),
        rows: rows
            .iter()
            .map(|(t, j)| TenantRow::new(t, j.as_ref(), now))
            .collect(),
        next: next.map(|n| format!("/ui/tenants?{filters}&after={n}")),
        first: after.map(|_| format!("/ui/tenants?{filters}")),
    })
}

/// What a tenant's page and its live fragment show.
pub struct TenantBody {
    pub csrf: String,
    pub t: TenantDetail,
    pub timelines: Vec<Timeline>,
    /// The page refreshes itself while this holds (a job is active).
    pub live: bool,
    pub tiers: Vec<String>,
    /// The failed job a retry would run again.
    pub retry_job: Option<String>,
    pub can_suspend: bool,
    pub can_resume: bool,
    pub can_change_tier: bool,
    pub can_deprovision: bool,
    /// The session's role allows cancelling jobs.
    pub can_cancel: bool,
}

#[derive(Template)]
#[template(path = "tenant.html")]
struct TenantPage {
    csrf: String,
    nav: &'static str,
    b: TenantBody,
}

#[derive(Template)]
#[template(path = "tenant_body.html")]
struct TenantLive {
    b: TenantBody,
}

/// Reads a tenant with its latest jobs and their histories: three queries.
async fn tenant_body(state: &UiState, session: &Session, id: &str) -> Result<TenantBody, UiError> {
    TenantId::parse(id)?;
    let db = &state.app.db;
    let tenant = tenants::get(db, id)
        .await?
        .ok_or_else(|| ApiError::TenantNotFound(id.to_string()))?;
    let filter = JobFilter {
        tenant: Some(id.to_string()),
        ..JobFilter::default()
    };
    let (jobs, _) = queue::list_jobs(db, &filter, TENANT_PAGE_JOBS, None).await?;
    let ids: Vec<uuid::Uuid> = jobs.iter().map(|j| j.id).collect();
    let histories = queue::histories(db, &ids).await?;
    let askers = audit::askers(db, &ids).await?;
    let now = Utc::now();
    let timelines: Vec<Timeline> = jobs
        .iter()
        .map(|j| {
            let h: Vec<_> = histories
                .iter()
                .filter(|(id, _)| *id == j.id)
                .map(|(_, e)| e.clone())
                .collect();
            let asked: Vec<_> = askers.iter().filter(|a| a.job_id == j.id).collect();
            Timeline::new(j, &h, now).asked_by(&asked)
        })
        .collect();
    let active = jobs.iter().any(|j| j.state.is_active());
    let status = tenant.status;
    let operator = session.may(Role::Operator);
    // The newest job of the kind that failed the tenant, when it failed: what a retry reruns.
    let retry_job = (operator && status == TenantStatus::Failed)
        .then(|| {
            timelines
                .iter()
                .find(|t| t.job.retryable)
                .map(|t| t.job.id.clone())
        })
        .flatten();
    Ok(TenantBody {
        csrf: session.csrf(),
        t: TenantDetail::new(&tenant),
        live: active
            || matches!(
                status,
                TenantStatus::Provisioning | TenantStatus::Deprovisioning
            ),
        timelines,
        tiers: state
            .app
            .tiers
            .names()
            .iter()
            .map(|s| s.to_string())
            .collect(),
        retry_job,
        can_suspend: operator && !active && status == TenantStatus::Ready,
        can_resume: operator && !active && status == TenantStatus::Suspended,
        can_change_tier: operator && !active && status == TenantStatus::Ready,
        can_deprovision: operator
            && !active
            && !matches!(status, TenantStatus::Deleted | TenantStatus::Deprovisioning),
        can_cancel: operator,
    })
}

pub async fn tenant(
    State(state): State<UiState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let b = tenant_body(&state, &session, &id).await?;
    page(TenantPage {
        csrf: session.csrf(),
        nav: "tenants",
        b,
    })
}

/// The part of a tenant's page that changes, for the page's script to swap in.
pub async fn tenant_live(
    State(state): State<UiState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let b = tenant_body(&state, &session, &id).await?;
    page(TenantLive { b })
}

/// The tenant's events from now on as Server-Sent Events (the stream of `/v1/events`, with the
/// console's session): the page's script refreshes its live part at each.
pub async fn tenant_events(
    State(state): State<UiState>,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = TenantId::parse(&id)?;
    let filter = EventFilter {
        types: Vec::new(),
        tenant: Some(id.to_string()),
    };
    let after = events::last_id(&state.app.db).await?;
    let stream = state.app.events.stream(after, filter);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(crate::api::events::KEEP_ALIVE))
        .into_response())
}

#[derive(Template)]
#[template(path = "deprovision.html")]
struct ConfirmDeprovision {
    csrf: String,
    nav: &'static str,
    id: String,
    tier: String,
    status: &'static str,
    wrong: bool,
    /// Only an admin may go without a final snapshot.
    may_skip_snapshot: bool,
    /// The tier has deletion protection: going without a snapshot takes a second page.
    protected: bool,
}

#[derive(Deserialize)]
pub struct ConfirmQuery {
    wrong: Option<String>,
}

pub async fn confirm_deprovision(
    State(state): State<UiState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(q): Query<ConfirmQuery>,
) -> Result<Response, UiError> {
    let id = TenantId::parse(&id)?;
    session.require(Role::Operator)?;
    let tenant = tenants::get(&state.app.db, &id)
        .await?
        .ok_or_else(|| ApiError::TenantNotFound(id.to_string()))?;
    let protected = state
        .app
        .tiers
        .get(&tenant.tier)
        .is_some_and(|t| t.deletion_protection);
    page(ConfirmDeprovision {
        csrf: session.csrf(),
        nav: "tenants",
        id: tenant.id,
        tier: tenant.tier,
        status: tenant.status.as_str(),
        wrong: q.wrong.is_some(),
        may_skip_snapshot: session.may(Role::Admin),
        protected,
    })
}
