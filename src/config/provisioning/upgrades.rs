//! Engine upgrades: how long the instance a tenant ran on before its switchover is kept, and
//! RDS's switchover timeout.

use std::time::Duration;

use crate::config::env::{ConfigError, Env};

/// The settings of this group, moved into [`super::ProvisioningSettings`] by its `load`.
pub(super) struct Upgrades {
    pub upgrade_keep_old: Duration,
    pub upgrade_switchover_timeout: Duration,
}

pub(super) fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Upgrades, ConfigError> {
    let upgrade_keep_old = env.duration(
        "TENANTD_UPGRADE_KEEP_OLD",
        Duration::from_secs(7 * 86400),
        Duration::ZERO,
        Duration::from_secs(365 * 86400),
    )?;
    // RDS takes SwitchoverTimeout in seconds, 30 to 3600.
    let upgrade_switchover_timeout = env.duration(
        "TENANTD_UPGRADE_SWITCHOVER_TIMEOUT",
        Duration::from_secs(300),
        Duration::from_secs(30),
        Duration::from_secs(3600),
    )?;
    Ok(Upgrades {
        upgrade_keep_old,
        upgrade_switchover_timeout,
    })
}
