//! The jobs page: newest first, by state, kind and tenant, with retry and cancel.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;

use super::{PAGE, given, page};
use crate::queue::{self, JobFilter, JobState};
use crate::tenant_id::TenantId;
use crate::tenants;
use crate::ui::UiState;
use crate::ui::error::UiError;
use crate::ui::session::Session;
use crate::ui::views::JobLine;

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
    /// The session's role allows retrying and cancelling.
    can_act: bool,
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
        TenantId::parse(t)?;
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
        kinds: tenants::listing::JOB_KINDS.to_vec(),
        state: state_part.to_string(),
        kind: kind.unwrap_or_default().to_string(),
        tenant: tenant.unwrap_or_default().to_string(),
        rows: rows.iter().map(|j| JobLine::new(j, now)).collect(),
        next: next.map(|n| format!("/ui/jobs?state={state_part}&{base}&after={n}")),
        first: after.map(|_| format!("/ui/jobs?state={state_part}&{base}")),
        base,
        can_act: session.may(crate::config::Role::Operator),
    })
}
