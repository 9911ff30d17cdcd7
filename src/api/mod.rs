//! The HTTP API: one table of routes (the router and the OpenAPI document both come from it),
//! bearer authentication on `/v1`, request logging, and serving until shutdown.

pub mod auth;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod tenants;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode};
use axum::routing::{MethodRouter, delete, get, post};
use axum::{Json, Router, middleware};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::LatencyUnit;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use auth::ApiTokens;
pub use error::{ApiError, BODY_LIMIT};

use crate::cloud::Cloud;
use crate::config::Settings;
use crate::tier::Tiers;

/// What request handlers share.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub tokens: ApiTokens,
    pub tiers: Arc<Tiers>,
    /// Attempts per step of the jobs the API enqueues.
    pub max_attempts: i32,
    /// The worker's AWS clients, whose call counts `/metrics` shows; `None` without a worker.
    pub cloud: Option<Cloud>,
}

impl AppState {
    pub fn new(db: PgPool, settings: &Settings, cloud: Option<Cloud>) -> Self {
        AppState {
            db,
            tokens: settings.api_tokens.clone(),
            tiers: Arc::new(settings.provisioning.tiers.clone()),
            max_attempts: settings.max_attempts,
            cloud,
        }
    }
}

/// One route the API serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    /// In axum's and OpenAPI's shared syntax: `/v1/tenants/{id}`.
    pub path: &'static str,
    /// Needs a bearer token.
    pub auth: bool,
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
    vec![
        (public(Method::GET, "/healthz"), get(healthz)),
        (public(Method::GET, "/readyz"), get(readyz)),
        (public(Method::GET, "/metrics"), get(metrics::metrics)),
        (public(Method::GET, "/openapi.json"), get(openapi::serve)),
        (v1(Method::POST, "/v1/tenants"), post(tenants::create)),
        (v1(Method::GET, "/v1/tenants"), get(tenants::list)),
        (v1(Method::GET, "/v1/tenants/{id}"), get(tenants::get)),
        (
            v1(Method::DELETE, "/v1/tenants/{id}"),
            delete(tenants::delete),
        ),
        (v1(Method::GET, "/v1/jobs/{id}"), get(jobs::get)),
        (v1(Method::POST, "/v1/jobs/{id}/cancel"), post(jobs::cancel)),
    ]
}

/// Every route the router serves.
pub fn routes() -> Vec<Route> {
    table().into_iter().map(|(route, _)| route).collect()
}

pub fn router(state: AppState) -> Router {
    let (mut public, mut v1) = (Router::new(), Router::new());
    for (route, handler) in table() {
        if route.auth {
            v1 = v1.route(route.path, handler);
        } else {
            public = public.route(route.path, handler);
        }
    }
    let v1 = v1.route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_token,
    ));
    // The span carries the ids handlers learn; headers (the token) are never recorded.
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            tracing::info_span!(
                "request",
                method = %request.method(),
                path = %request.uri().path(),
                tenant.id = tracing::field::Empty,
                job.id = tracing::field::Empty,
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

/// The process is alive.
async fn healthz() -> &'static str {
    "ok"
}

/// The control database answers.
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    match sqlx::query("SELECT 1").execute(&state.db).await {
        Ok(_) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: control database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({
                    "status": "unavailable",
                    "error": { "code": "control_database_unreachable",
                               "message": "the control database does not answer" }
                })),
            )
        }
    }
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

/// Binds the API's address with a message that names the setting on failure.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on TENANTD_LISTEN={addr}: {e}"),
        )
    })
}
