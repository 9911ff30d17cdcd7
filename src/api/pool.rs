//! `/v1/pool`: the warm pool per tier: standbys wanted, available, being created or retired,
//! and the age of the oldest available one.

use axum::Json;
use axum::extract::State;

use super::error::ApiError;
use super::state::AppState;
use crate::store::standbys;
use crate::wire::error::ErrorBody;
use crate::wire::pool::{PoolTier, PoolView};

/// The warm pool, per tier: every configured tier, and any tier with standbys left.
#[utoipa::path(get, path = "/v1/pool", tag = "pool", operation_id = "get_pool",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The pool per tier", body = PoolView),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ))]
pub async fn get(State(state): State<AppState>) -> Result<Json<PoolView>, ApiError> {
    let mut figures = standbys::figures(&state.db).await?;
    let mut rows: Vec<(String, u32, standbys::TierFigures)> = state
        .warm_pool
        .iter()
        .map(|(tier, wanted)| {
            let f = figures.remove(tier).unwrap_or_default();
            (tier.clone(), *wanted, f)
        })
        .collect();
    rows.extend(figures.into_iter().map(|(tier, f)| (tier, 0, f)));
    let mut tiers: Vec<PoolTier> = rows
        .into_iter()
        .map(|(tier, wanted, f)| PoolTier {
            tier,
            wanted,
            available: f.available,
            creating: f.creating,
            retiring: f.retiring,
            oldest_age_s: f.oldest_available.map(|d| d.as_secs_f64()),
        })
        .collect();
    tiers.sort_by(|a, b| a.tier.cmp(&b.tier));
    Ok(Json(PoolView { tiers }))
}
