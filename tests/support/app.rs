//! The HTTP API (and the console) on a real server on port 0, over a fresh control database,
//! and a client for it. The server accepts four tokens: two admins, an operator and a viewer.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tenantd::api::{self, AppState};
use tenantd::config::{ApiTokens, HttpSettings, NamedToken, Role, Tiers, UiSettings};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{TestDb, fresh_db};

/// The admin token the test servers accept (named `admin`).
pub const TOKEN: &str = "test-token-0123456789-abcdefghijkl";
/// Another admin token (named `second`).
pub const SECOND_TOKEN: &str = "second-token-0123456789-abcdefghij";
/// An operator's token (named `operator`).
pub const OPERATOR_TOKEN: &str = "operator-token-0123456789-abcdefgh";
/// A viewer's token (named `viewer`).
pub const VIEWER_TOKEN: &str = "viewer-token-0123456789-abcdefghij";

/// The tokens of the test servers.
pub fn test_tokens() -> ApiTokens {
    ApiTokens::from_named(vec![
        NamedToken::new("admin", Role::Admin, TOKEN),
        NamedToken::new("second", Role::Admin, SECOND_TOKEN),
        NamedToken::new("operator", Role::Operator, OPERATOR_TOKEN),
        NamedToken::new("viewer", Role::Viewer, VIEWER_TOKEN),
    ])
}

/// The listener's settings of the test servers: the defaults, with the fleet gauges read at
/// most once a second.
pub fn test_http() -> HttpSettings {
    HttpSettings {
        fleet_gauges_every: Duration::from_secs(1),
        ..HttpSettings::default()
    }
}

pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    pub db: TestDb,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Serves the API router and the console (no worker) on `127.0.0.1:0` over a fresh control
/// database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_http()).await
}

/// [`spawn_app`] with these listener settings.
pub async fn spawn_app_with(http: HttpSettings) -> TestApp {
    let db = fresh_db().await;
    let shutdown = CancellationToken::new();
    let state = AppState {
        events: api::event_feed::EventFeed::new(db.pool.clone(), "test", shutdown.clone()),
        db: db.pool.clone(),
        tokens: test_tokens(),
        tiers: Arc::new(Tiers::defaults()),
        max_attempts: 3,
        tenant_migrations: Arc::new(
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/tenant-migrations").into(),
        ),
        warm_pool: Arc::default(),
        http: Arc::new(http.clone()),
        lockout: api::lockout::Lockout::new(http.auth_failures_per_minute),
        probe: api::probe::Probe::new(db.pool.clone(), http.fleet_gauges_every),
        // No AWS clients: rollouts of the RDS kinds are tested against a real daemon.
        offers: tenantd::rollouts::Offers::none(),
        engines: Arc::default(),
    };
    let console = tenantd::ui::UiState::with(
        state.clone(),
        UiSettings {
            secure_cookie: tenantd::config::SecureCookie::Off,
            ..UiSettings::default()
        },
        8.0,
        "test",
    );
    let app = api::admitted(
        api::router(state).merge(tenantd::ui::router(console)),
        &http,
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = shutdown.clone();
    tokio::spawn(async move { api::serve(listener, app, &http, stop).await });
    TestApp {
        url,
        db,
        http: reqwest::Client::new(),
        shutdown,
    }
}

impl TestApp {
    /// A request to `path` with the right token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
    }

    pub async fn create(&self, id: &str, tier: &str) -> (u16, Value) {
        let response = self
            .request(reqwest::Method::POST, "/v1/tenants")
            .json(&serde_json::json!({ "id": id, "tier": tier }))
            .send()
            .await
            .unwrap();
        status_and_json(response).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        status_and_json(response).await
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// Marks the tenant's active provisioning job succeeded and the tenant ready, as a finished
    /// provisioning would leave them.
    pub async fn finish_provisioning(&self, id: &str) {
        sqlx::query(
            "UPDATE jobs SET state = 'succeeded', finished_at = now(), step = 'done'
             WHERE tenant_id = $1 AND state IN ('queued', 'running', 'waiting')",
        )
        .bind(id)
        .execute(&self.db.pool)
        .await
        .unwrap();
        sqlx::query(
            "UPDATE tenants SET status = 'ready', db_instance_id = 'saas-' || id,
                 endpoint_host = 'db.example', endpoint_port = 5432,
                 secret_arn = 'arn:aws:secretsmanager:us-east-1:0:secret:' || id
             WHERE id = $1",
        )
        .bind(id)
        .execute(&self.db.pool)
        .await
        .unwrap();
    }
}

pub async fn status_and_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// The error code of an error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}
