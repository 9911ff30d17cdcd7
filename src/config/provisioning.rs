//! Provisioning settings: tiers, naming, network, tenant database access and the pace of
//! waiting for RDS. Read from `TENANTD_*` variables by the same [`Env`] as the rest.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::env::{ConfigError, Env};
use super::tiers::Tiers;

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
    pub engines: super::EngineSettings,
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
        // A major version lets RDS pick its default minor: minors are retired every year.
        let engine_version = env.string("TENANTD_ENGINE_VERSION", "16");
        let version_ok = engine_version
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if !version_ok {
            return Err(invalid(
                "TENANTD_ENGINE_VERSION",
                format!(
                    "expected a PostgreSQL major version such as 16 (or a minor such as 16.8), got {engine_version:?}"
                ),
            ));
        }
        let instance_prefix = env.non_empty("TENANTD_INSTANCE_PREFIX", "saas-")?;
        // Tenant ids are up to 40 characters; RDS identifiers up to 63, a letter first.
        let prefix_ok = instance_prefix.len() <= 23
            && instance_prefix.starts_with(|c: char| c.is_ascii_lowercase())
            && instance_prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !instance_prefix.contains("--");
        if !prefix_ok {
            return Err(invalid(
                "TENANTD_INSTANCE_PREFIX",
                format!(
                    "expected up to 23 lowercase letters, digits and single hyphens, a letter first, got {instance_prefix:?}"
                ),
            ));
        }
        let secret_prefix = env.non_empty("TENANTD_SECRET_PREFIX", "saas/tenant/")?;
        let secret_ok = secret_prefix.len() <= 400
            && secret_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
        if !secret_ok {
            return Err(invalid(
                "TENANTD_SECRET_PREFIX",
                format!(
                    "Secrets Manager names allow letters, digits and /_+=.@- only, got {secret_prefix:?}"
                ),
            ));
        }
        // Part of the ownership rule: every resource carries it, and nothing is changed or
        // deleted without it. Tag values: up to 256 letters, digits, spaces and _.:/=+-@.
        let environment = env.non_empty("TENANTD_ENVIRONMENT", "dev")?;
        let environment_ok = environment.chars().count() <= 256
            && environment
                .chars()
                .all(|c| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c));
        if !environment_ok {
            return Err(invalid(
                "TENANTD_ENVIRONMENT",
                format!(
                    "expected up to 256 letters, digits, spaces and _.:/=+-@ (an AWS tag value), got {environment:?}"
                ),
            ));
        }
        let security_group_ids: Vec<String> = env
            .optional("TENANTD_SECURITY_GROUP_IDS")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(bad) = security_group_ids.iter().find(|s| !s.starts_with("sg-")) {
            return Err(invalid(
                "TENANTD_SECURITY_GROUP_IDS",
                format!("expected a comma-separated list of sg-… ids, got {bad:?}"),
            ));
        }
        let db_subnet_group = env.optional("TENANTD_DB_SUBNET_GROUP");
        let alarm_topic_arn = env.optional("TENANTD_ALARM_TOPIC_ARN");
        if let Some(arn) = &alarm_topic_arn
            && !arn.starts_with("arn:")
        {
            return Err(invalid(
                "TENANTD_ALARM_TOPIC_ARN",
                format!("expected an SNS topic ARN, got {arn:?}"),
            ));
        }
        // The master user's session is checked end to end unless told otherwise.
        let tenant_db_tls = match env.string("TENANTD_TENANT_DB_TLS", "verify-full").as_str() {
            "require" => TenantDbTls::Require,
            "verify-full" => match env.optional("TENANTD_TENANT_DB_CA_FILE") {
                Some(path) if std::path::Path::new(&path).is_file() => TenantDbTls::VerifyFull {
                    ca_file: path.into(),
                },
                Some(path) => {
                    return Err(invalid(
                        "TENANTD_TENANT_DB_CA_FILE",
                        format!("{path:?} is not a readable file"),
                    ));
                }
                None => {
                    return Err(invalid(
                        "TENANTD_TENANT_DB_CA_FILE",
                        "not set: TENANTD_TENANT_DB_TLS=verify-full (the default) checks tenant \
                         database certificates against this CA bundle; download the RDS bundle \
                         (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem) and \
                         point this at it, or set TENANTD_TENANT_DB_TLS=require or disable \
                         explicitly"
                            .into(),
                    ));
                }
            },
            "disable" => TenantDbTls::Disable,
            other => {
                return Err(invalid(
                    "TENANTD_TENANT_DB_TLS",
                    format!("expected require, verify-full or disable, got {other:?}"),
                ));
            }
        };
        let tenant_migrations =
            PathBuf::from(env.string("TENANTD_TENANT_MIGRATIONS", "examples/tenant-migrations"));
        if !tenant_migrations.is_dir() {
            return Err(invalid(
                "TENANTD_TENANT_MIGRATIONS",
                format!("{} is not a directory", tenant_migrations.display()),
            ));
        }
        let migration_limits = MigrationLimits {
            lock_timeout: env.duration(
                "TENANTD_MIGRATION_LOCK_TIMEOUT",
                Duration::from_secs(5),
                Duration::from_millis(1),
                Duration::from_secs(3600),
            )?,
            statement_timeout: env.duration(
                "TENANTD_MIGRATION_STATEMENT_TIMEOUT",
                Duration::from_secs(15 * 60),
                Duration::from_millis(1),
                Duration::from_secs(24 * 3600),
            )?,
        };
        let rollout_round = env.duration(
            "TENANTD_ROLLOUT_ROUND",
            Duration::from_millis(250),
            Duration::from_millis(50),
            Duration::from_secs(600),
        )?;
        let master_username = env.string("TENANTD_MASTER_USERNAME", "tenant_admin");
        if !is_pg_identifier(&master_username)
            || ["postgres", "rdsadmin", "admin"].contains(&master_username.as_str())
        {
            return Err(invalid(
                "TENANTD_MASTER_USERNAME",
                format!(
                    "expected 1-63 letters, digits or '_', a letter first, not a reserved name; got {master_username:?}"
                ),
            ));
        }
        let db_name = env.string("TENANTD_TENANT_DB_NAME", "app");
        if !is_pg_identifier(&db_name) || db_name == "postgres" {
            return Err(invalid(
                "TENANTD_TENANT_DB_NAME",
                format!("expected 1-63 letters, digits or '_', a letter first; got {db_name:?}"),
            ));
        }
        let backup_window = env.string("TENANTD_BACKUP_WINDOW", "03:00-04:00");
        let backup = parse_window(&backup_window, false).ok_or_else(|| {
            invalid(
                "TENANTD_BACKUP_WINDOW",
                format!("expected hh:mm-hh:mm (UTC) of at least 30 minutes, got {backup_window:?}"),
            )
        })?;
        let maintenance_window = env.string("TENANTD_MAINTENANCE_WINDOW", "sun:04:00-sun:05:00");
        let maintenance = parse_window(&maintenance_window, true).ok_or_else(|| {
            invalid(
                "TENANTD_MAINTENANCE_WINDOW",
                format!(
                    "expected ddd:hh:mm-ddd:hh:mm (UTC) of at least 30 minutes, got {maintenance_window:?}"
                ),
            )
        })?;
        if windows_overlap(backup, maintenance) {
            return Err(invalid(
                "TENANTD_MAINTENANCE_WINDOW",
                format!("{maintenance_window} overlaps the backup window {backup_window}"),
            ));
        }
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
        let secret_recovery_days = env.integer("TENANTD_SECRET_RECOVERY_DAYS", 7, 7..=30)?;
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
        let tenant_db_connect_timeout = env.duration(
            "TENANTD_TENANT_DB_CONNECT_TIMEOUT",
            Duration::from_secs(10),
            Duration::from_millis(100),
            Duration::from_secs(300),
        )?;
        let final_snapshot_retention = env.duration_or_off(
            "TENANTD_FINAL_SNAPSHOT_RETENTION",
            Some(Duration::from_secs(30 * 86400)),
            Duration::from_secs(1),
            Duration::from_secs(3650 * 86400),
        )?;
        let quota_refresh = env.duration(
            "TENANTD_QUOTA_REFRESH",
            Duration::from_secs(60),
            Duration::from_millis(100),
            Duration::from_secs(3600),
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
        if !(reconcile_rds_share.is_finite()
            && reconcile_rds_share > 0.0
            && reconcile_rds_share <= 1.0)
        {
            return Err(invalid(
                "TENANTD_RECONCILE_RDS_SHARE",
                format!("expected a fraction above 0 and at most 1, got {reconcile_rds_share}"),
            ));
        }
        let warm_pool = match env.optional("TENANTD_WARM_POOL") {
            None => BTreeMap::new(),
            Some(v) => parse_warm_pool(&v, &tiers).map_err(|p| invalid("TENANTD_WARM_POOL", p))?,
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
        let engines = super::EngineSettings::load(env)?;
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

fn invalid(name: &'static str, problem: String) -> ConfigError {
    ConfigError::Invalid { name, problem }
}

const WEEK: u32 = 7 * 1440;
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A window as (start, length) in minutes: from midnight for a daily window, from Monday
/// midnight for a weekly one. `None` unless well-formed and at least 30 minutes long.
fn parse_window(s: &str, weekly: bool) -> Option<(u32, u32)> {
    let point = |p: &str| -> Option<u32> {
        let (day, time) = if weekly {
            let (d, t) = p.split_once(':')?;
            (
                DAYS.iter().position(|x| x.eq_ignore_ascii_case(d))? as u32,
                t,
            )
        } else {
            (0, p)
        };
        let (h, m) = time.split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60 && time.len() == 5).then_some(day * 1440 + h * 60 + m)
    };
    let (a, b) = s.split_once('-')?;
    let (start, end) = (point(a)?, point(b)?);
    let period = if weekly { WEEK } else { 1440 };
    let len = (end + period - start) % period;
    (len >= 30).then_some((start, len))
}

/// Whether a daily backup window and a weekly maintenance window share a minute (windows
/// that only touch do not).
fn windows_overlap(backup: (u32, u32), maintenance: (u32, u32)) -> bool {
    (0..8).any(|day| {
        let b_start = day * 1440 + backup.0;
        let (m_start, m_len) = maintenance;
        [m_start, m_start + WEEK]
            .iter()
            .any(|&m| b_start < m + m_len && m < b_start + backup.1)
    })
}

fn is_pg_identifier(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
