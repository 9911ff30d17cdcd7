//! The HTTP API: one table of routes, each with the role it needs (the router is built from it,
//! the OpenAPI document states it, and a test holds both to it), a guard per route that
//! authenticates, authorizes and audits, request logging, limits per class of request, and
//! serving until shutdown. The bodies it reads and answers are in [`crate::wire`].

pub mod access;
pub mod audit;
pub mod auth;
pub mod caller;
pub mod error;
pub mod event_feed;
pub mod events;
pub mod extract;
pub mod jobs;
pub mod limits;
pub mod listener;
pub mod lockout;
pub mod openapi;
pub mod ops;
pub mod pool;
pub mod probe;
pub mod reports;
pub mod rollouts;
pub mod state;
pub mod tenant_actions;
pub mod tenants;
pub mod upgrades;

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post};
use axum::{Json, Router, middleware};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::LatencyUnit;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use access::{AdminWhen, Route};
pub use error::{ApiError, BODY_LIMIT};
pub use state::AppState;

use crate::config::{HttpSettings, Role};

/// The routes that need no token: what `worker` serves on its metrics address too.
fn ops_table() -> Vec<(Route, MethodRouter<AppState>)> {
    vec![
        (Route::public(Method::GET, "/healthz"), get(ops::healthz)),
        (Route::public(Method::GET, "/readyz"), get(ops::readyz)),
        (Route::public(Method::GET, "/metrics"), get(ops::metrics)),
    ]
}

/// Every route with the role it needs: viewers read, operators change, admins deprovision
/// without a final snapshot and read the audit trail.
fn table() -> Vec<(Route, MethodRouter<AppState>)> {
    use Role::{Admin, Operator, Viewer};
    let v1 = Route::needs;
    let mut table = ops_table();
    table.extend([
        (
            Route::public(Method::GET, "/openapi.json"),
            get(|state: State<AppState>| async move { Json(openapi::serve(state, &ROUTES).await) }),
        ),
        (
            v1(Method::POST, "/v1/tenants", Operator),
            post(tenants::create),
        ),
        (v1(Method::GET, "/v1/tenants", Viewer), get(tenants::list)),
        (
            v1(Method::GET, "/v1/tenants/{id}", Viewer),
            get(tenants::get),
        ),
        (
            v1(Method::DELETE, "/v1/tenants/{id}", Operator).admin_when(AdminWhen::NoFinalSnapshot),
            delete(tenants::delete),
        ),
        (
            v1(Method::PATCH, "/v1/tenants/{id}", Operator),
            patch(tenant_actions::change),
        ),
        (
            v1(Method::POST, "/v1/tenants/{id}/suspend", Operator),
            post(tenant_actions::suspend),
        ),
        (
            v1(Method::POST, "/v1/tenants/{id}/resume", Operator),
            post(tenant_actions::resume),
        ),
        (
            v1(Method::POST, "/v1/tenants/{id}/attach", Operator),
            post(tenant_actions::attach),
        ),
        (
            v1(Method::POST, "/v1/tenants/{id}/upgrade", Operator),
            post(upgrades::upgrade),
        ),
        (v1(Method::GET, "/v1/jobs/{id}", Viewer), get(jobs::get)),
        (
            v1(Method::POST, "/v1/jobs/{id}/cancel", Operator),
            post(jobs::cancel),
        ),
        (v1(Method::GET, "/v1/jobs", Viewer), get(jobs::list)),
        (
            v1(Method::POST, "/v1/jobs/{id}/retry", Operator),
            post(jobs::retry),
        ),
        (
            v1(Method::POST, "/v1/rollouts", Operator),
            post(rollouts::create).layer(DefaultBodyLimit::max(error::ROLLOUT_BODY_LIMIT)),
        ),
        (v1(Method::GET, "/v1/rollouts", Viewer), get(rollouts::list)),
        (
            v1(Method::GET, "/v1/rollouts/{id}", Viewer),
            get(rollouts::get),
        ),
        (
            v1(Method::POST, "/v1/rollouts/{id}/pause", Operator),
            post(rollouts::pause),
        ),
        (
            v1(Method::POST, "/v1/rollouts/{id}/resume", Operator),
            post(rollouts::resume),
        ),
        (
            v1(Method::POST, "/v1/rollouts/{id}/cancel", Operator),
            post(rollouts::cancel),
        ),
        (v1(Method::GET, "/v1/pool", Viewer), get(pool::get)),
        (
            v1(Method::GET, "/v1/reports/engines", Viewer),
            get(reports::engines),
        ),
        (v1(Method::GET, "/v1/events", Viewer), get(events::list)),
        (v1(Method::GET, "/v1/audit", Admin), get(audit::list)),
    ]);
    table
}

/// The table without its handlers.
static ROUTES: LazyLock<Vec<Route>> =
    LazyLock::new(|| table().into_iter().map(|(route, _)| route).collect());

/// Every route the API router serves, with the role it needs.
pub fn routes() -> Vec<Route> {
    ROUTES.clone()
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    build(table(), state)
}

/// Liveness, readiness and metrics only (for `tenantd worker`).
pub fn ops_router(state: AppState) -> Router {
    build(ops_table(), state)
}

fn build(table: Vec<(Route, MethodRouter<AppState>)>, state: AppState) -> Router {
    let mut router = Router::new();
    for (route, handler) in table {
        let handler = if route.role.is_some() {
            // Innermost the deadline, around it the guard: a request stopped by the deadline
            // is audited like any other answer.
            let guard = auth::Guard {
                app: state.clone(),
                route: Arc::new(route.clone()),
            };
            handler
                .layer(middleware::from_fn_with_state(
                    state.http.request_timeout,
                    limits::deadline,
                ))
                .layer(middleware::from_fn_with_state(guard, auth::authorize))
        } else {
            handler
        };
        router = router.route(route.path, handler);
    }
    // The span carries the ids handlers learn; headers (the token) are never recorded.
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            tracing::info_span!(
                "request",
                method = %request.method(),
                path = %request.uri().path(),
                request_id = tracing::field::Empty,
                token = tracing::field::Empty,
                tenant.id = tracing::field::Empty,
                job.id = tracing::field::Empty,
                rollout.id = tracing::field::Empty,
            )
        })
        .on_request(())
        .on_response(
            DefaultOnResponse::new()
                .level(Level::INFO)
                .latency_unit(LatencyUnit::Millis),
        );
    router
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            caller::identify,
        ))
        .layer(trace)
        .with_state(state)
}

/// What every request to `app` goes through before its route: its class's share of the
/// server (see [`limits`]). Applied once to the API and the console together.
pub fn admitted(app: Router, http: &HttpSettings) -> Router {
    let admission = limits::Admission::new(http.concurrency, http.request_timeout);
    app.layer(middleware::from_fn_with_state(admission, limits::admit))
}

/// Serves `app` on `listener` with the listener's limits until `shutdown`, then finishes
/// in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    http: &HttpSettings,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    listener::serve(listener, app, http, shutdown).await
}

/// Binds an address, with a message that names the setting on failure.
pub async fn bind(addr: SocketAddr, setting: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen on {setting}={addr}: {e}"))
    })
}
