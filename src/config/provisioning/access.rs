//! How tenant instances are reached: network (security groups, subnet group), alarm
//! notifications, TLS to tenant databases, the tenant migrations and their limits.

use std::path::PathBuf;

use std::time::Duration;

use super::invalid;
use super::{MigrationLimits, TenantDbTls};
use crate::config::env::{ConfigError, Env};

/// The settings of this group, moved into [`super::ProvisioningSettings`] by its `load`.
pub(super) struct Access {
    pub security_group_ids: Vec<String>,
    pub db_subnet_group: Option<String>,
    pub alarm_topic_arn: Option<String>,
    pub tenant_db_tls: TenantDbTls,
    pub tenant_migrations: PathBuf,
    pub migration_limits: MigrationLimits,
    pub tenant_db_connect_timeout: Duration,
}

pub(super) fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Access, ConfigError> {
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
    let tenant_db_connect_timeout = env.duration(
        "TENANTD_TENANT_DB_CONNECT_TIMEOUT",
        Duration::from_secs(10),
        Duration::from_millis(100),
        Duration::from_secs(300),
    )?;
    Ok(Access {
        security_group_ids,
        db_subnet_group,
        alarm_topic_arn,
        tenant_db_tls,
        tenant_migrations,
        migration_limits,
        tenant_db_connect_timeout,
    })
}
