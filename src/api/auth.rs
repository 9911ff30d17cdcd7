//! Who may call `/v1`: each route of the table gets a guard that authenticates the bearer token
//! (by digest, in constant time, never logged), checks its role against the route's, limits
//! failed attempts per address, and keeps the audit trail of the request: every refusal it
//! makes, and, for a route that changes something, the request's own row once answered (unless
//! the change wrote it in its transaction).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::{info, warn};
use uuid::Uuid;

use super::access::Route;
use super::caller::Caller;
use super::error::{ApiError, ErrorCode};
use super::lockout::Verdict;
use super::state::AppState;
use crate::audit::Trail;
use crate::config::Presented;
use crate::tenant_id::TenantId;

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The state of one route's guard.
#[derive(Clone)]
pub struct Guard {
    pub app: AppState,
    pub route: Arc<Route>,
}

/// Notes in `trail` the tenant, job or rollout the request's path names, by the route's
/// template (when it is a valid id: a refusal records no junk).
pub fn note_ids(template: &str, path: &str, trail: &Trail) {
    let template: Vec<&str> = template.split('/').collect();
    let actual: Vec<&str> = path.split('/').collect();
    let Some(at) = template.iter().position(|s| *s == "{id}") else {
        return;
    };
    let Some(id) = actual.get(at) else {
        return;
    };
    match template.get(at - 1).copied() {
        Some("tenants") if TenantId::parse(id).is_ok() => trail.tenant(id),
        Some("jobs") => {
            if let Ok(id) = id.parse::<Uuid>() {
                trail.job(id);
            }
        }
        Some("rollouts") => {
            if let Ok(id) = id.parse::<Uuid>() {
                trail.rollout(id);
            }
        }
        _ => {}
    }
}

/// Lets the request through with a token whose role the route allows, with its [`Trail`] in
/// the extensions; refuses it otherwise before any handler runs: 401 `unauthorized` (429
/// `too_many_failures` once the address failed too often), 403 `forbidden`.
pub async fn authorize(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let Guard { app, route } = guard;
    let caller = request
        .extensions()
        .get::<Caller>()
        .copied()
        .unwrap_or(Caller {
            address: std::net::Ipv4Addr::UNSPECIFIED.into(),
            channel: crate::audit::Channel::Api,
            request_id: Uuid::new_v4(),
        });
    let trail = Trail::new(caller.entry(request.method().as_str(), route.path));
    note_ids(route.path, request.uri().path(), &trail);
    let presented = bearer(&request).map(|t| (t, app.tokens.authenticate(t)));
    let token = match presented {
        Some((_, Presented::Known(token))) => token.clone(),
        other => {
            let tried = match other {
                Some((_, Presented::WrongSecret { name })) => Some(name.to_string()),
                _ => None,
            };
            trail.token(tried.as_deref(), None);
            let (error, record) = match app.lockout.failed(caller.address) {
                Verdict::Refused { record } => (ApiError::Unauthorized, record),
                Verdict::Blocked {
                    retry_after,
                    record,
                } => (
                    ApiError::TooManyFailures {
                        retry_after: retry_after.as_secs(),
                    },
                    record,
                ),
            };
            if record {
                warn!(
                    address = %caller.address,
                    token.name = tried.as_deref(),
                    token_presented = other.is_some(),
                    status = error.status().as_u16(),
                    "request refused: no valid bearer token"
                );
                trail
                    .finish(&app.db, error.status().as_u16(), Some(error.code()))
                    .await;
            }
            return error.into_response();
        }
    };
    trail.token(Some(&token.name), Some(token.role));
    tracing::Span::current().record("token", token.name.as_str());
    if let Some(needed) = route.role_for(request.uri().query())
        && !token.role.allows(needed)
    {
        let error = ApiError::Forbidden {
            needed,
            token: token.name.clone(),
            has: token.role,
        };
        info!(address = %caller.address, token.name = %token.name, needed = %needed, "request refused: role");
        trail.finish(&app.db, 403, Some(error.code())).await;
        return error.into_response();
    }
    request.extensions_mut().insert(trail.clone());
    let response = next.run(request).await;
    if route.mutates() {
        let code = response.extensions().get::<ErrorCode>().map(|c| c.0);
        trail
            .finish(&app.db, response.status().as_u16(), code)
            .await;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_names_what_the_request_is_about_when_it_is_a_valid_id() {
        let trail = Trail::default();
        note_ids(
            "/v1/tenants/{id}/suspend",
            "/v1/tenants/acme/suspend",
            &trail,
        );
        assert_eq!(trail.entry().tenant_id.as_deref(), Some("acme"));
        let trail = Trail::default();
        note_ids(
            "/v1/tenants/{id}/suspend",
            "/v1/tenants/DROP%20TABLE/suspend",
            &trail,
        );
        assert_eq!(trail.entry().tenant_id, None);
        let id = Uuid::new_v4();
        note_ids(
            "/ui/jobs/{id}/cancel",
            &format!("/ui/jobs/{id}/cancel"),
            &trail,
        );
        assert_eq!(trail.entry().job_id, Some(id));
    }
}
