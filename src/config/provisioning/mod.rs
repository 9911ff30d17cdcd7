//! Provisioning settings: tiers, naming, network, tenant database access and the pace of
//! waiting for RDS. Read from `TENANTD_*` variables by the same [`Env`] as the rest.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::env::{ConfigError, Env};
use super::tiers::Tiers;

mod access;
mod engines;
mod naming;
mod pace;
mod pool;
mod upgrades;
mod upkeep;
mod windows;

use access::Access;
pub use engines::EngineSettings;
use naming::Naming;
use pace::Pace;
use pool::Pool;
use upgrades::Upgrades;
use upkeep::Upkeep;
use windows::Windows;

/// How tenantd talks to tenant databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantDbTls {
    /// Encrypted, certificate not checked (RDS certificates are not in the public roots).
    Require,
    /// Encrypted, certificate and host name checked against this CA bundle.
    VerifyFull { ca_file: PathBuf },
    /// Plain TCP: only for the local stack.
    Disable,
}

/// How long a tenant migration may wait for a lock, and run, before it gives up (and is tried
/// again later): a migration stuck behind the application's traffic must not queue every query
/// behind its own lock request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationLimits {
    pub lock_timeout: Duration,
    pub statement_timeout: Duration,
}

/// Everything the provisioning and deprovisioning workflows need besides the AWS clients.
#[derive(Debug, Clone)]
pub struct ProvisioningSettings {
    pub tiers: Tiers,
    pub engine_version: String,
    /// `<prefix><tenant>` is the RDS instance identifier.
    pub instance_prefix: String,
    /// `<prefix><tenant>/database` is the Secrets Manager secret.
    pub secret_prefix: String,
    /// Value of the `Environment` tag.
    pub environment: String,
    pub security_group_ids: Vec<String>,
    pub db_subnet_group: Option<String>,
    /// Where CloudWatch alarms send notifications.
    pub alarm_topic_arn: Option<String>,
    pub tenant_db_tls: TenantDbTls,
    /// sqlx migrations every tenant database gets.
    pub tenant_migrations: PathBuf,
    /// `TENANTD_MIGRATION_LOCK_TIMEOUT` (5s) and `TENANTD_MIGRATION_STATEMENT_TIMEOUT` (15m).
    pub migration_limits: MigrationLimits,
    /// How often the maintenance leader starts the next tenants of a running rollout
    /// (`TENANTD_ROLLOUT_ROUND`, 250ms).
    pub rollout_round: Duration,
    pub master_username: String,
    pub db_name: String,
    /// Daily automated backups, `hh:mm-hh:mm` UTC.
    pub backup_window: String,
    /// Weekly maintenance, `ddd:hh:mm-ddd:hh:mm` UTC; must not overlap the backup window.
    pub maintenance_window: String,
    /// How long an instance may take to become available.
    pub deadline: Duration,
    /// First and longest pause between two looks at an instance that is not there yet.
    pub wait_base: Duration,
    pub wait_max: Duration,
    /// Recovery window of a deprovisioned tenant's secret.
    pub secret_recovery_days: i64,
    /// How often the instance poller describes the instances jobs wait for (in batches);
    /// zero: no poller.
    pub rds_poll_interval: Duration,
    /// How long connecting to a tenant database may take.
    pub tenant_db_connect_timeout: Duration,
    /// How long the final snapshots tenantd took are kept; `None`: forever.
    pub final_snapshot_retention: Option<Duration>,
    /// How long an engine upgrade keeps the old (blue) instance after its switchover before
    /// deleting it with a final snapshot (`TENANTD_UPGRADE_KEEP_OLD`).
    pub upgrade_keep_old: Duration,
    /// How long RDS may take to switch a Blue/Green deployment over before it rolls back
    /// (`TENANTD_UPGRADE_SWITCHOVER_TIMEOUT`, RDS's `SwitchoverTimeout`).
    pub upgrade_switchover_timeout: Duration,
    /// How long an account's quota figures (DescribeAccountAttributes) are trusted.
    pub quota_refresh: Duration,
    /// How often the reconciler looks at every ready and suspended tenant; `None`: never.
    pub reconcile_interval: Option<Duration>,
    /// Whether drift found gets a repair job.
    pub repair_drift: bool,
    /// The share of this process's RDS request rate a reconcile round may use.
    pub reconcile_rds_share: f64,
    /// Standby instances kept ready per tier (`TENANTD_WARM_POOL`); empty: no warm pool.
    pub warm_pool: BTreeMap<String, u32>,
    /// Standbys older than this are replaced.
    pub pool_max_age: Duration,
    /// `<prefix><id>/database` is a standby's secret.
    pub pool_secret_prefix: String,
    /// The share of this process's RDS request rate (and of the free DB instances) the pool
    /// keeper may take for new standbys, so that tenants' own creates go first.
    pub pool_rds_share: f64,
    /// End-of-support dates per major, and the CA bundles per CA.
    pub engines: EngineSettings,
}

impl ProvisioningSettings {
    pub fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let tiers = match env.optional("TENANTD_TIERS") {
            None => Tiers::defaults(),
            Some(path) => Tiers::from_file(path.as_ref()).map_err(|e| ConfigError::Invalid {
                name: "TENANTD_TIERS",
                problem: e.to_string(),
            })?,
        };
        let Naming {
            engine_version,
            instance_prefix,
            secret_prefix,
            environment,
            master_username,
            db_name,
        } = naming::load(env)?;
        let Access {
            security_group_ids,
            db_subnet_group,
            alarm_topic_arn,
            tenant_db_tls,
            tenant_migrations,
            migration_limits,
            tenant_db_connect_timeout,
        } = access::load(env)?;
        let Windows {
            backup_window,
            maintenance_window,
        } = windows::load(env)?;
        let Pace {
            rollout_round,
            deadline,
            wait_base,
            wait_max,
            rds_poll_interval,
            quota_refresh,
        } = pace::load(env)?;
        let Upkeep {
            secret_recovery_days,
            final_snapshot_retention,
            reconcile_interval,
            repair_drift,
            reconcile_rds_share,
        } = upkeep::load(env)?;
        let Upgrades {
            upgrade_keep_old,
            upgrade_switchover_timeout,
        } = upgrades::load(env)?;
        let Pool {
            warm_pool,
            pool_max_age,
            pool_secret_prefix,
            pool_rds_share,
        } = pool::load(env, &tiers, &secret_prefix)?;
        let engines = EngineSettings::load(env)?;
        Ok(ProvisioningSettings {
            engines,
            warm_pool,
            pool_max_age,
            pool_secret_prefix,
            pool_rds_share,
            reconcile_interval,
            repair_drift,
            reconcile_rds_share,
            tenant_db_connect_timeout,
            final_snapshot_retention,
            upgrade_keep_old,
            upgrade_switchover_timeout,
            quota_refresh,
            rds_poll_interval,
            tiers,
            engine_version,
            instance_prefix,
            secret_prefix,
            environment,
            security_group_ids,
            db_subnet_group,
            alarm_topic_arn,
            tenant_db_tls,
            tenant_migrations,
            migration_limits,
            rollout_round,
            master_username,
            db_name,
            backup_window,
            maintenance_window,
            deadline,
            wait_base,
            wait_max,
            secret_recovery_days,
        })
    }

    /// The RDS instance identifier of a tenant.
    pub fn instance_id(&self, tenant: &str) -> String {
        format!("{}{tenant}", self.instance_prefix)
    }

    /// The Secrets Manager name of a tenant's master credentials.
    pub fn secret_name(&self, tenant: &str) -> String {
        format!("{}{tenant}/database", self.secret_prefix)
    }

    /// The Secrets Manager name of a standby's master credentials.
    pub fn pool_secret_name(&self, standby: &str) -> String {
        format!("{}{standby}/database", self.pool_secret_prefix)
    }
}

pub(super) fn invalid(name: &'static str, problem: String) -> ConfigError {
    ConfigError::Invalid { name, problem }
}
