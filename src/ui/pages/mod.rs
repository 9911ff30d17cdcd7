//! The console's pages: overview, tenants, a tenant (and its live fragment), jobs, engines,
//! sign-in.
//! Each reads through the crate's own functions, a handful of queries a page whatever the
//! fleet's size.

mod engines;
mod jobs;
mod overview;
mod tenants;

pub use engines::engines;
pub use jobs::jobs;
pub use overview::overview;
pub use tenants::{confirm_deprovision, tenant, tenant_events, tenant_live, tenants};

use askama::Template;
use axum::extract::Query;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::error::UiError;
use crate::tenants::TenantStatus;

/// Rows on a page of a list.
pub const PAGE: i64 = 50;

pub const STATUSES: [TenantStatus; 9] = [
    TenantStatus::Provisioning,
    TenantStatus::Ready,
    TenantStatus::Failed,
    TenantStatus::Deprovisioning,
    TenantStatus::Deleted,
    TenantStatus::Suspended,
    TenantStatus::Lost,
    TenantStatus::Degraded,
    TenantStatus::Detached,
];

pub(super) fn page(t: impl Template) -> Result<Response, UiError> {
    Ok(Html(t.render()?).into_response())
}

#[derive(Template)]
#[template(path = "login.html")]
struct SignIn {
    next: String,
    failed: bool,
    ended: bool,
}

#[derive(Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
    failed: Option<String>,
    ended: Option<String>,
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
        ended: q.ended.is_some(),
    })
}

/// Blank form fields mean "any".
pub(super) fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}
