//! What tenantd's resources are called and run: the engine version, the instance and secret
//! name prefixes, the `Environment` tag, the tenant database's user and name.

use super::invalid;
use crate::config::env::{ConfigError, Env};

/// The settings of this group, moved into [`super::ProvisioningSettings`] by its `load`.
pub(super) struct Naming {
    pub engine_version: String,
    pub instance_prefix: String,
    pub secret_prefix: String,
    pub environment: String,
    pub master_username: String,
    pub db_name: String,
}

pub(super) fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Naming, ConfigError> {
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
    Ok(Naming {
        engine_version,
        instance_prefix,
        secret_prefix,
        environment,
        master_username,
        db_name,
    })
}

fn is_pg_identifier(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
