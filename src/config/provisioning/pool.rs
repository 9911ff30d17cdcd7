//! The warm pool's settings: standbys per tier, their age, their secrets' prefix and the share
//! of the RDS rate the pool keeper may take.

use std::collections::BTreeMap;
use std::time::Duration;

use super::invalid;
use crate::config::env::{ConfigError, Env};
use crate::config::tiers::Tiers;

/// The settings of this group, moved into [`super::ProvisioningSettings`] by its `load`.
pub(super) struct Pool {
    pub warm_pool: BTreeMap<String, u32>,
    pub pool_max_age: Duration,
    pub pool_secret_prefix: String,
    pub pool_rds_share: f64,
}

pub(super) fn load<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    tiers: &Tiers,
    secret_prefix: &str,
) -> Result<Pool, ConfigError> {
    let warm_pool = match env.optional("TENANTD_WARM_POOL") {
        None => BTreeMap::new(),
        Some(v) => parse_warm_pool(&v, tiers).map_err(|p| invalid("TENANTD_WARM_POOL", p))?,
    };
    let pool_max_age = env.duration(
        "TENANTD_POOL_MAX_AGE",
        Duration::from_secs(14 * 86400),
        Duration::from_secs(1),
        Duration::from_secs(365 * 86400),
    )?;
    let pool_secret_prefix = env.non_empty("TENANTD_POOL_SECRET_PREFIX", "saas/pool/")?;
    let pool_secret_ok = !pool_secret_prefix.is_empty()
        && pool_secret_prefix.len() <= 400
        && pool_secret_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
        && pool_secret_prefix != secret_prefix;
    if !pool_secret_ok {
        return Err(invalid(
            "TENANTD_POOL_SECRET_PREFIX",
            format!(
                "Secrets Manager names allow letters, digits and /_+=.@- only, and it must \
                 differ from TENANTD_SECRET_PREFIX; got {pool_secret_prefix:?}"
            ),
        ));
    }
    let pool_rds_share: f64 =
        env.parsed("TENANTD_POOL_RDS_SHARE", 0.25, "a fraction such as 0.25")?;
    if !(pool_rds_share.is_finite() && pool_rds_share > 0.0 && pool_rds_share <= 1.0) {
        return Err(invalid(
            "TENANTD_POOL_RDS_SHARE",
            format!("expected a fraction above 0 and at most 1, got {pool_rds_share}"),
        ));
    }
    Ok(Pool {
        warm_pool,
        pool_max_age,
        pool_secret_prefix,
        pool_rds_share,
    })
}

/// `starter=2,pro=1`: standbys per tier, each tier configured, each once, 0 to 100 standbys.
fn parse_warm_pool(value: &str, tiers: &Tiers) -> Result<BTreeMap<String, u32>, String> {
    let mut pool = BTreeMap::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((tier, count)) = part.split_once('=') else {
            return Err(format!(
                "expected tier=count pairs such as starter=2,pro=1, got {part:?}"
            ));
        };
        let tier = tier.trim();
        if tiers.get(tier).is_none() {
            return Err(format!(
                "unknown tier {tier:?}; known tiers: {}",
                tiers.names().join(", ")
            ));
        }
        let count: u32 = match count.trim().parse() {
            Ok(n) if n <= 100 => n,
            _ => {
                return Err(format!(
                    "expected a count of 0 to 100 standbys for tier {tier}, got {:?}",
                    count.trim()
                ));
            }
        };
        if pool.insert(tier.to_string(), count).is_some() {
            return Err(format!("tier {tier} is named twice"));
        }
    }
    Ok(pool)
}
