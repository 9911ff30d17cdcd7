//! The HTTP API: one table of routes (the router is built from it, and a test holds the OpenAPI
//! document to it), bearer authentication on `/v1`, request logging, and serving until
//! shutdown. The bodies it reads and answers are in [`crate::model`].

pub mod auth;
pub mod error;
pub mod jobs;
pub mod openapi;
pub mod ops;
pub mod pool;
pub mod rollouts;
pub mod state;
pub mod tenants;

use std::net::SocketAddr;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post};
use axum::{Router, middleware};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::LatencyUnit;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use error::{ApiError, BODY_LIMIT};
pub use state::AppState;

/// One route the API serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    /// In axum's and OpenAPI's shared syntax: `/v1/tenants/{id}`.
    pub path: &'static str,
    /// Needs a bearer token.
    pub auth: bool,
}

/// The routes that need no token: what `worker` serves on its metrics address too.
fn ops_table() -> Vec<(Route, MethodRouter<AppState>)> {
    let public = |method, path| Route {
        method,
        path,
        auth: false,
    };
    vec![
        (public(Method::GET, "/healthz"), get(ops::healthz)),
        (public(Method::GET, "/readyz"), get(ops::readyz)),
        (public(Method::GET, "/metrics"), get(ops::metrics)),
    ]
}

fn table() -> Vec<(Route, MethodRouter<AppState>)> {
    let public = |method, path| Route {
        method,
        path,
        auth: false,
    };
    let v1 = |method, path| Route {
        method,
        path,
        auth: true,
    };
    let mut table = ops_table();
    table.extend([
        (public(Method::GET, "/openapi.json"), get(openapi::serve)),
        (v1(Method::POST, "/v1/tenants"), post(tenants::create)),
        (v1(Method::GET, "/v1/tenants"), get(tenants::list)),
        (v1(Method::GET, "/v1/tenants/{id}"), get(tenants::get)),
        (
            v1(Method::DELETE, "/v1/tenants/{id}"),
            delete(tenants::delete),
        ),
        (
            v1(Method::PATCH, "/v1/tenants/{id}"),
            patch(tenants::change),
        ),
        (
            v1(Method::POST, "/v1/tenants/{id}/suspend"),
            post(tenants::suspend),
        ),
        (
            v1(Method::POST, "/v1/tenants/{id}/resume"),
            post(tenants::resume),
        ),
        (
            v1(Method::POST, "/v1/tenants/{id}/attach"),
            post(tenants::attach),
        ),
        (v1(Method::GET, "/v1/jobs/{id}"), get(jobs::get)),
        (v1(Method::POST, "/v1/jobs/{id}/cancel"), post(jobs::cancel)),
        (v1(Method::GET, "/v1/jobs"), get(jobs::list)),
        (v1(Method::POST, "/v1/jobs/{id}/retry"), post(jobs::retry)),
        (
            v1(Method::POST, "/v1/rollouts"),
            post(rollouts::create).layer(DefaultBodyLimit::max(error::ROLLOUT_BODY_LIMIT)),
        ),
        (v1(Method::GET, "/v1/rollouts"), get(rollouts::list)),
        (v1(Method::GET, "/v1/rollouts/{id}"), get(rollouts::get)),
        (
            v1(Method::POST, "/v1/rollouts/{id}/pause"),
            post(rollouts::pause),
        ),
        (
            v1(Method::POST, "/v1/rollouts/{id}/resume"),
            post(rollouts::resume),
        ),
        (
            v1(Method::POST, "/v1/rollouts/{id}/cancel"),
            post(rollouts::cancel),
        ),
        (v1(Method::GET, "/v1/pool"), get(pool::get)),
    ]);
    table
}

/// Every route the API router serves.
pub fn routes() -> Vec<Route> {
    table().into_iter().map(|(route, _)| route).collect()
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
    let (mut public, mut v1) = (Router::new(), Router::new());
    let mut any_v1 = false;
    for (route, handler) in table {
        if route.auth {
            v1 = v1.route(route.path, handler);
            any_v1 = true;
        } else {
            public = public.route(route.path, handler);
        }
    }
    if any_v1 {
        v1 = v1.route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    }
    // The span carries the ids handlers learn; headers (the token) are never recorded.
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            tracing::info_span!(
                "request",
                method = %request.method(),
                path = %request.uri().path(),
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
    public
        .merge(v1)
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(trace)
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown`, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Binds an address, with a message that names the setting on failure.
pub async fn bind(addr: SocketAddr, setting: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen on {setting}={addr}: {e}"))
    })
}
