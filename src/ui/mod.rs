//! The operator's console at `/ui/`: server-rendered HTML pages (askama templates, compiled
//! and checked with the binary) and a little plain JavaScript, all embedded in the binary. It
//! reads and acts through the same functions as the API (`tenants`, `queue`), behind a
//! sign-in with an API token (see [`session`]), with the token's role: a viewer's pages show
//! no actions, and the actions refuse what the role does not allow.

mod actions;
mod assets;
mod error;
mod pages;
mod session;
mod views;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use axum::{Router, middleware};
use tower_http::trace::TraceLayer;

use crate::api::{AppState, BODY_LIMIT, caller, limits};
use crate::config::{Settings, UiSettings};

pub use error::UiError;
pub use session::COOKIE_NAME;

/// What the console's handlers share.
#[derive(Clone)]
pub struct UiState {
    pub app: AppState,
    pub settings: UiSettings,
    /// This replica's RDS budget (requests per second).
    pub rds_rate: f64,
    /// This replica's worker id.
    pub me: String,
    /// Recent (time, RDS calls so far) samples, for the share of the budget in use.
    rds_samples: Arc<Mutex<VecDeque<(Instant, u64)>>>,
}

impl UiState {
    pub fn new(app: AppState, settings: &Settings) -> Self {
        Self::with(app, settings.ui, settings.rds_rate, &settings.worker.id)
    }

    /// From the console's own settings, this replica's RDS rate and its worker id.
    pub fn with(app: AppState, settings: UiSettings, rds_rate: f64, me: &str) -> Self {
        UiState {
            app,
            settings,
            rds_rate,
            me: me.to_string(),
            rds_samples: Arc::default(),
        }
    }

    /// RDS calls per second over about the last minute, from the samples the overview takes
    /// (`None` until two samples at least a second apart exist).
    pub fn rds_calls_per_second(&self, total_now: u64) -> Option<f64> {
        let now = Instant::now();
        let mut samples = self.rds_samples.lock().expect("samples lock");
        while samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t).as_secs() > 120)
        {
            samples.pop_front();
        }
        if samples
            .back()
            .is_none_or(|(t, _)| now.duration_since(*t).as_secs() >= 5)
        {
            samples.push_back((now, total_now));
        }
        let (t, n) = samples
            .iter()
            .find(|(t, _)| now.duration_since(*t).as_secs() <= 60)
            .copied()?;
        let secs = now.duration_since(t).as_secs_f64();
        (secs >= 1.0).then(|| total_now.saturating_sub(n) as f64 / secs)
    }
}

/// Headers every console answer carries: no framing, no sniffing, scripts and styles only from
/// the binary itself, nothing cached.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(request: Request, next: middleware::Next) -> axum::response::Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The console's routes, to merge into the API router.
pub fn router(state: UiState) -> Router {
    let signed_in = Router::new()
        .route("/ui/", get(pages::overview))
        .route("/ui/tenants", get(pages::tenants))
        .route("/ui/tenants/{id}", get(pages::tenant))
        .route("/ui/tenants/{id}/live", get(pages::tenant_live))
        .route("/ui/tenants/{id}/events", get(pages::tenant_events))
        .route(
            "/ui/tenants/{id}/deprovision",
            get(pages::confirm_deprovision).post(actions::deprovision),
        )
        .route("/ui/tenants/{id}/tier", post(actions::change_tier))
        .route("/ui/tenants/{id}/suspend", post(actions::suspend))
        .route("/ui/tenants/{id}/resume", post(actions::resume))
        .route("/ui/jobs", get(pages::jobs))
        .route("/ui/engines", get(pages::engines))
        .route("/ui/jobs/{id}/retry", post(actions::retry))
        .route("/ui/jobs/{id}/cancel", post(actions::cancel))
        .route("/ui/logout", post(actions::sign_out))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::require_session,
        ));
    let public = Router::new()
        .route("/ui", get(|| async { session::see_other("/ui/") }))
        .route("/ui/login", get(pages::sign_in).post(actions::sign_in))
        .route("/ui/static/app.css", get(assets::css))
        .route("/ui/static/app.js", get(assets::js))
        .route_layer(middleware::from_fn_with_state(
            state.app.http.request_timeout,
            limits::deadline,
        ));
    public
        .merge(signed_in)
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(
            state.app.clone(),
            caller::identify,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                tracing::info_span!(
                    "console",
                    method = %request.method(),
                    path = %request.uri().path(),
                )
            }),
        )
        .with_state(state)
}
