//! The pace of waiting for RDS: the provisioning deadline, the pauses between looks, the
//! instance poller's and the quota figures' intervals, the rollout conductor's round.

use std::time::Duration;

use super::invalid;
use crate::config::env::{ConfigError, Env};

/// The settings of this group, moved into [`super::ProvisioningSettings`] by its `load`.
pub(super) struct Pace {
    pub rollout_round: Duration,
    pub deadline: Duration,
    pub wait_base: Duration,
    pub wait_max: Duration,
    pub rds_poll_interval: Duration,
    pub quota_refresh: Duration,
}

pub(super) fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Pace, ConfigError> {
    let rollout_round = env.duration(
        "TENANTD_ROLLOUT_ROUND",
        Duration::from_millis(250),
        Duration::from_millis(50),
        Duration::from_secs(600),
    )?;
    let deadline = env.duration(
        "TENANTD_PROVISION_DEADLINE",
        Duration::from_secs(40 * 60),
        Duration::from_secs(1),
        Duration::from_secs(24 * 3600),
    )?;
    let wait_base = env.duration(
        "TENANTD_WAIT_BASE",
        Duration::from_secs(5),
        Duration::from_millis(10),
        Duration::from_secs(600),
    )?;
    let wait_max = env.duration(
        "TENANTD_WAIT_MAX",
        Duration::from_secs(60),
        Duration::from_millis(10),
        Duration::from_secs(3600),
    )?;
    if wait_max < wait_base {
        return Err(invalid(
            "TENANTD_WAIT_MAX",
            "must not be shorter than TENANTD_WAIT_BASE".into(),
        ));
    }
    // 0 switches the poller off: wait steps then describe their own instance.
    let rds_poll_interval = match env.optional("TENANTD_RDS_POLL_INTERVAL") {
        Some(v) if v.trim() == "0" => Duration::ZERO,
        _ => env.duration(
            "TENANTD_RDS_POLL_INTERVAL",
            Duration::from_secs(10),
            Duration::from_millis(50),
            Duration::from_secs(600),
        )?,
    };
    let quota_refresh = env.duration(
        "TENANTD_QUOTA_REFRESH",
        Duration::from_secs(60),
        Duration::from_millis(100),
        Duration::from_secs(3600),
    )?;
    Ok(Pace {
        rollout_round,
        deadline,
        wait_base,
        wait_max,
        rds_poll_interval,
        quota_refresh,
    })
}
