//! The console's pages: overview, tenants, a tenant (and its live fragment), jobs, sign-in.
//! Each reads through the crate's own functions, a handful of queries a page whatever the
//! fleet's size.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

use super::UiState;
use super::error::UiError;
use super::session::Session;
use super::views::{JobLine, TenantDetail, TenantRow, Timeline, human, tenant_badge};
use crate::api::ApiError;
use crate::metrics;
use crate::queue::{self, JobFilter, JobState};
use crate::tenants::{self, TenantFilter, TenantStatus};

/// Rows on a page of a list.
pub const PAGE: i64 = 50;
/// Jobs a tenant's page draws.
const TENANT_PAGE_JOBS: i64 = 8;

pub const STATUSES: [TenantStatus; 8] = [
    TenantStatus::Provisioning,
    TenantStatus::Ready,
    TenantStatus::Failed,
    TenantStatus::Deprovisioning,
    TenantStatus::Deleted,
    TenantStatus::Suspended,
    TenantStatus::Lost,
    TenantStatus::Degraded,
];

fn page(t: impl Template) -> Result<Response, UiError> {
    Ok(Html(t.render()?).into_response())
}

#[derive(Template)]
#[template(path = "login.html")]
struct SignIn {
    next: String,
    failed: bool,
}

#[derive(Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
    failed: Option<String>,
}

/// Where to go after signing in: a console page, nothing else.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/ui/")
                && !n.contains("//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n.to_string()
        }
        _ => "/ui/".to_string(),
    }
}

pub async fn sign_in(Query(q): Query<SignInQuery>) -> Result<Response, UiError> {
    page(SignIn {
        next: safe_next(q.next.as_deref()),
        failed: q.failed.is_some(),
    })
}

struct CensusLine {
    status: &'static str,
    icon: &'static str,
    class: &'static str,
    counts: Vec<i64>,
    total: i64,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    csrf: String,
    nav: &'static str,
    tiers: Vec<String>,
    census: Vec<CensusLine>,
    tenants: i64,
    drifted: i64,
    depth: i64,
    oldest: String,
    jobs_by_state: Vec<(&'static str, i64)>,
    recent: queue::RecentEnds,
    aws: Vec<(String, u64, u64)>,
    rds_rate: f64,
    rds_share: Option<String>,
    leader: bool,
    poller: bool,
    me: String,
}

pub async fn overview(
    State(state): State<UiState>,
    Extension(session): Extension<Session>,
) -> Result<Response, UiError> {
    let db = &state.app.db;
    let rows = tenants::census(db).await?;
    let stats = queue::fleet_stats(db).await?;
    let recent = queue::recent_ends(db).await?;
    let mut tiers: Vec<String> = state
        .app
        .tiers
        .names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    for r in &rows {
        if !tiers.contains(&r.tier) {
            tiers.push(r.tier.clone());
        }
    }
    let census = STATUSES
        .iter()
        .filter_map(|s| {
            let counts: Vec<i64> = tiers
                .iter()
                .map(|t| {
                    rows.iter()
                        .filter(|r| r.status == *s && &r.tier == t)
                        .map(|r| r.tenants)
                        .sum()
                })
                .collect();
            let total: i64 = counts.iter().sum();
            let badge = tenant_badge(*s);
            (total > 0).then_some(CensusLine {
                status: badge.word,
                icon: badge.icon,
                class: badge.class,
                counts,
                total,
            })
        })
        .collect();
    let jobs_by_state = JobState::ALL
        .iter()
        .map(|st| {
            let n = stats
                .jobs
                .iter()
                .filter(|(_, s, _)| s == st)
                .map(|(_, _, n)| n)
                .sum();
            (st.as_str(), n)
        })
        .collect();
    let aws = metrics::aws_calls_by_service();
    let rds_total = aws
        .iter()
        .filter(|(s, _, _)| s == "rds")
        .map(|(_, n, _)| *n)
        .sum();
    let rds_share = state
        .rds_calls_per_second(rds_total)
        .map(|r| format!("{:.0}% ({r:.2}/s)", r / state.rds_rate * 100.0));
    page(Overview {
        csrf: session.csrf(),
        nav: "overview",
        tiers,
        census,
        tenants: rows.iter().map(|r| r.tenants).sum(),
        drifted: rows.iter().map(|r| r.drifted).sum(),
        depth: stats.depth,
        oldest: human(chrono::Duration::from_std(stats.oldest_waiting).unwrap_or_default()),
        jobs_by_state,
        recent,
        aws,
        rds_rate: state.rds_rate,
        rds_share,
        leader: metrics::is_leader(),
        poller: metrics::poller_active(),
        me: state.me.clone(),
    })
}

#[derive(Deserialize, Default)]
pub struct TenantsQuery {
    status: Option<String>,
    tier: Option<String>,
    q: Option<String>,
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
    rows: Vec<TenantRow>,
    next: Option<String>,
    first: Option<String>,
}

/// Blank form fields mean "any".
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
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
        tenants::validate_id(a)?;
    }
    let filter = TenantFilter {
        status,
        tier: given(&query.tier).map(str::to_string),
        prefix: prefix.clone(),
    };
    let (rows, next) = tenants::page_with_jobs(&state.app.db, &filter, PAGE, after).await?;
    let now = Utc::now();
    let filters = serde_urlencoded::to_string([
        ("status", given(&query.status).unwrap_or_default()),
        ("tier", given(&query.tier).unwrap_or_default()),
        ("q", prefix.as_deref().unwrap_or_default()),
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
    tenants::validate_id(id)?;
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
    let now = Utc::now();
    let timelines: Vec<Timeline> = jobs
        .iter()
        .map(|j| {
            let h: Vec<_> = histories
                .iter()
                .filter(|(id, _)| *id == j.id)
                .map(|(_, e)| e.clone())
                .collect();
            Timeline::new(j, &h, now)
        })
        .collect();
    let active = jobs.iter().any(|j| j.state.is_active());
    let status = tenant.status;
    // The newest job of the kind that failed the tenant, when it failed: what a retry reruns.
    let retry_job = (status == TenantStatus::Failed)
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
        can_suspend: !active && status == TenantStatus::Ready,
        can_resume: !active && status == TenantStatus::Suspended,
        can_change_tier: !active && status == TenantStatus::Ready,
        can_deprovision: !active
            && !matches!(status, TenantStatus::Deleted | TenantStatus::Deprovisioning),
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

#[derive(Template)]
#[template(path = "deprovision.html")]
struct ConfirmDeprovision {
    csrf: String,
    nav: &'static str,
    id: String,
    tier: String,
    status: &'static str,
    wrong: bool,
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
    tenants::validate_id(&id)?;
    let tenant = tenants::get(&state.app.db, &id)
        .await?
        .ok_or_else(|| ApiError::TenantNotFound(id.clone()))?;
    page(ConfirmDeprovision {
        csrf: session.csrf(),
        nav: "tenants",
        id: tenant.id,
        tier: tenant.tier,
        status: tenant.status.as_str(),
        wrong: q.wrong.is_some(),
    })
}

#[derive(Deserialize, Default)]
pub struct JobsQuery {
    state: Option<String>,
    kind: Option<String>,
    tenant: Option<String>,
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct Jobs {
    csrf: String,
    nav: &'static str,
    states: Vec<&'static str>,
    kinds: Vec<&'static str>,
    state: String,
    kind: String,
    tenant: String,
    rows: Vec<JobLine>,
    next: Option<String>,
    first: Option<String>,
    /// The query string of the filters, for the tabs.
    base: String,
}

pub async fn jobs(
    State(state): State<UiState>,
    Extension(session): Extension<Session>,
    Query(query): Query<JobsQuery>,
) -> Result<Response, UiError> {
    let job_state = given(&query.state)
        .map(|s| {
            JobState::ALL
                .iter()
                .copied()
                .find(|j| j.as_str() == s)
                .ok_or_else(|| UiError::BadRequest(format!("unknown job state {s:?}")))
        })
        .transpose()?;
    let kind = given(&query.kind)
        .map(|k| {
            tenants::TENANT_JOBS
                .iter()
                .copied()
                .find(|known| *known == k)
                .ok_or_else(|| UiError::BadRequest(format!("unknown job kind {k:?}")))
        })
        .transpose()?;
    let tenant = given(&query.tenant);
    if let Some(t) = tenant {
        tenants::validate_id(t)?;
    }
    let after = given(&query.after)
        .map(|a| {
            a.parse::<uuid::Uuid>()
                .map_err(|_| UiError::BadRequest("after must be a job id".into()))
        })
        .transpose()?;
    let filter = JobFilter {
        state: job_state,
        kind: kind.map(str::to_string),
        tenant: tenant.map(str::to_string),
    };
    let (rows, next) = queue::list_jobs(&state.app.db, &filter, PAGE, after).await?;
    let now = Utc::now();
    let base = serde_urlencoded::to_string([
        ("kind", kind.unwrap_or_default()),
        ("tenant", tenant.unwrap_or_default()),
    ])
    .unwrap_or_default();
    let state_part = job_state.map(|s| s.as_str()).unwrap_or_default();
    page(Jobs {
        csrf: session.csrf(),
        nav: "jobs",
        states: JobState::ALL.iter().map(|s| s.as_str()).collect(),
        kinds: tenants::TENANT_JOBS.to_vec(),
        state: state_part.to_string(),
        kind: kind.unwrap_or_default().to_string(),
        tenant: tenant.unwrap_or_default().to_string(),
        rows: rows.iter().map(|j| JobLine::new(j, now)).collect(),
        next: next.map(|n| format!("/ui/jobs?state={state_part}&{base}&after={n}")),
        first: after.map(|_| format!("/ui/jobs?state={state_part}&{base}")),
        base,
    })
}
