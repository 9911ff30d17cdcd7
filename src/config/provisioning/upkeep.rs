//! What the maintenance leader keeps up: the reconciler's interval, repairs and RDS share, the
//! final snapshots' retention, a deleted tenant's secret recovery window.

use std::time::Duration;

use super::invalid;
use crate::config::env::{ConfigError, Env};

/// The settings of this group, moved into [`super::ProvisioningSettings`] by its `load`.
pub(super) struct Upkeep {
    pub secret_recovery_days: i64,
    pub final_snapshot_retention: Option<Duration>,
    pub reconcile_interval: Option<Duration>,
    pub repair_drift: bool,
    pub reconcile_rds_share: f64,
}

pub(super) fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Upkeep, ConfigError> {
    let secret_recovery_days = env.integer("TENANTD_SECRET_RECOVERY_DAYS", 7, 7..=30)?;
    let final_snapshot_retention = env.duration_or_off(
        "TENANTD_FINAL_SNAPSHOT_RETENTION",
        Some(Duration::from_secs(30 * 86400)),
        Duration::from_secs(1),
        Duration::from_secs(3650 * 86400),
    )?;
    let reconcile_interval = env.duration_or_off(
        "TENANTD_RECONCILE_INTERVAL",
        Some(Duration::from_secs(600)),
        Duration::from_millis(100),
        Duration::from_secs(7 * 86400),
    )?;
    let repair_drift = match env.string("TENANTD_REPAIR_DRIFT", "true").trim() {
        "true" | "1" | "yes" => true,
        "false" | "0" | "no" => false,
        other => {
            return Err(invalid(
                "TENANTD_REPAIR_DRIFT",
                format!("expected true or false, got {other:?}"),
            ));
        }
    };
    let reconcile_rds_share: f64 = env.parsed(
        "TENANTD_RECONCILE_RDS_SHARE",
        0.25,
        "a fraction such as 0.25",
    )?;
    if !(reconcile_rds_share.is_finite() && reconcile_rds_share > 0.0 && reconcile_rds_share <= 1.0)
    {
        return Err(invalid(
            "TENANTD_RECONCILE_RDS_SHARE",
            format!("expected a fraction above 0 and at most 1, got {reconcile_rds_share}"),
        ));
    }
    Ok(Upkeep {
        secret_recovery_days,
        final_snapshot_retention,
        reconcile_interval,
        repair_drift,
        reconcile_rds_share,
    })
}
