//! What request handlers share.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use sqlx::PgPool;

use tokio_util::sync::CancellationToken;

use super::event_feed::EventFeed;
use super::lockout::Lockout;
use super::probe::Probe;
use crate::config::{ApiTokens, EngineSettings, HttpSettings, Settings, Tiers};
use crate::rollouts::Offers;

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
    /// What RDS offers, for the targets of engine and CA rollouts.
    pub offers: Offers,
    /// End-of-support dates per major (the engine report).
    pub engines: Arc<EngineSettings>,
    /// What wakes the event streams of `/v1/events`.
    pub events: EventFeed,
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
        }
    }
}
