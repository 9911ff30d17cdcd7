//! What request handlers share.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use sqlx::PgPool;

use crate::config::{ApiTokens, Settings, Tiers};

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
}

impl AppState {
    pub fn new(db: PgPool, settings: &Settings) -> Self {
        AppState {
            db,
            tokens: settings.api_tokens.clone(),
            tiers: Arc::new(settings.provisioning.tiers.clone()),
            max_attempts: settings.max_attempts,
            tenant_migrations: Arc::new(settings.provisioning.tenant_migrations.clone()),
            warm_pool: Arc::new(settings.provisioning.warm_pool.clone()),
        }
    }
}
