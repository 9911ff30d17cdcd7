//! The body of `/v1/pool`: the warm pool per tier.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The warm pool of one tier.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PoolTier {
    pub tier: String,
    /// Standbys the pool keeps (`TENANTD_WARM_POOL`).
    pub wanted: u32,
    /// Ready to be taken over by a new tenant.
    pub available: i64,
    /// Being created (or replaced).
    pub creating: i64,
    /// Being removed (failed, or past `TENANTD_POOL_MAX_AGE`).
    pub retiring: i64,
    /// Age of the oldest available standby, in seconds.
    pub oldest_age_s: Option<f64>,
}

/// `GET /v1/pool`: every tier that has a pool (configured, or standbys left from one).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PoolView {
    pub tiers: Vec<PoolTier>,
}
