//! What request handlers share.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use sqlx::PgPool;

use tokio_util::sync::CancellationToken;

use super::event_feed::EventFeed;
use super::lockout::Lockout;
use super::probe::Probe;
use crate::config::{ApiTokens, EngineSettings, HttpSettings, Settings, Tiers, WebhookSettings};
use crate::rollouts::Offers;
use crate::webhooks::Keys;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub tokens: ApiTokens,
    pub tiers: Arc<Tiers>,
    /// Attempts per step of the jobs the API enqueues.
    pub max_attempts: i32,
    /// The tenant migrations directory (a rollout's versions come from it).
    pub tenant_migrations: Arc<PathBuf>,
    /// Standbys wanted per tier (`TENANTD_WARM_POOL`).
    pub warm_pool: Arc<BTreeMap<String, u32>>,
    /// The listener's limits, trusted proxies.
    pub http: Arc<HttpSettings>,
    /// Failed authentications per address, for the API and the console.
    pub lockout: Lockout,
    /// `/readyz` and `/metrics`, on a pool of their own.
    pub probe: Probe,
    /// What wakes the event streams of `/v1/events`.
    pub events: EventFeed,
    /// What RDS offers, for the targets of engine and CA rollouts.
    pub offers: Offers,
    /// End-of-support dates per major (the engine report).
    pub engines: Arc<EngineSettings>,
    /// The webhook settings and where signing keys live; `None`: no AWS clients (webhook
    /// routes answer 503 `webhooks_unavailable`).
    pub webhooks: Option<WebhookKeys>,
}

/// What the webhook routes need beside the control database.
#[derive(Clone)]
pub struct WebhookKeys {
    pub keys: Keys,
    pub settings: Arc<WebhookSettings>,
}

impl AppState {
    /// `ops` is the operations endpoints' own small pool; `offers` asks RDS about rollout
    /// targets; the event streams end at `stop` (the server waits for open connections when
    /// it shuts down).
    pub fn new(
        db: PgPool,
        ops: PgPool,
        settings: &Settings,
        offers: Offers,
        stop: CancellationToken,
    ) -> Self {
        AppState {
            events: EventFeed::new(db.clone(), &settings.provisioning.environment, stop),
            db,
            tokens: settings.api_tokens.clone(),
            tiers: Arc::new(settings.provisioning.tiers.clone()),
            max_attempts: settings.max_attempts,
            tenant_migrations: Arc::new(settings.provisioning.tenant_migrations.clone()),
            warm_pool: Arc::new(settings.provisioning.warm_pool.clone()),
            http: Arc::new(settings.http.clone()),
            lockout: Lockout::new(settings.http.auth_failures_per_minute),
            probe: Probe::new(ops, settings.http.fleet_gauges_every),
            offers,
            engines: Arc::new(settings.provisioning.engines.clone()),
            webhooks: None,
        }
    }

    /// With the signing keys' home, for the webhook routes.
    pub fn with_webhooks(mut self, keys: Keys, settings: &WebhookSettings) -> Self {
        self.webhooks = Some(WebhookKeys {
            keys,
            settings: Arc::new(settings.clone()),
        });
        self
    }
}
