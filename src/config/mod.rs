//! Settings: one tree read from `TENANTD_*` environment variables and validated at start-up.
//! A bad value stops the process with a message that names the variable; secrets are never
//! echoed back.

use std::time::Duration;

use secrecy::SecretString;
use std::net::SocketAddr;

mod env;
mod http;
mod provisioning;
mod tiers;
mod tokens;
mod ui;
mod worker;

pub use env::{ConfigError, Env};
pub use http::{ClassLimits, HttpSettings};
pub use provisioning::{EngineSettings, MigrationLimits, ProvisioningSettings, TenantDbTls};
pub use tiers::{Tier, TierError, Tiers};
pub use tokens::{ApiTokens, MIN_TOKEN_LEN, NamedToken, Presented, Role};
pub use ui::{SecureCookie, UiSettings};
pub use worker::{RetryPolicy, WorkerSettings};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything the daemon reads at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The control database. Holds a password: never printed.
    pub database_url: SecretString,
    /// Address of the HTTP API (`serve`).
    pub listen: SocketAddr,
    /// Where `worker` serves `/healthz`, `/readyz` and `/metrics` (`serve` has them on its API
    /// address).
    pub metrics_listen: SocketAddr,
    pub worker: WorkerSettings,
    /// Jobs get this many attempts per step.
    pub max_attempts: i32,
    pub log_format: LogFormat,
    pub provisioning: ProvisioningSettings,
    /// Named tokens with their roles the HTTP API accepts; `serve` needs at least one.
    pub api_tokens: ApiTokens,
    /// The HTTP listener's limits and who may stand in front of it.
    pub http: HttpSettings,
    /// Audit events older than this are deleted (`TENANTD_AUDIT_RETENTION`, default 400
    /// days); `None`: kept forever.
    pub audit_retention: Option<Duration>,
    /// Lifecycle events older than this are deleted (`TENANTD_EVENT_RETENTION`, default 30
    /// days); `None`: kept forever.
    pub event_retention: Option<Duration>,
    /// RDS requests per second this process may make: the fleet's budget times this
    /// replica's share.
    pub rds_rate: f64,
    pub aws_timeouts: AwsTimeouts,
    /// Finished jobs older than this are deleted with their history (a tenant's latest job
    /// stays); `None`: kept forever.
    pub job_retention: Option<Duration>,
    /// The operator's console.
    pub ui: UiSettings,
}

/// How long an AWS call may take: to connect, and each attempt of an operation (a hung
/// connection fails the attempt, which is then retried like any passing failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsTimeouts {
    pub connect: Duration,
    pub attempt: Duration,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::load(&Env(|name| std::env::var(name).ok()))
    }

    pub fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let database_url = database_url(env)?;
        let listen = env.parsed(
            "TENANTD_LISTEN",
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            "an address such as 127.0.0.1:8080",
        )?;
        let metrics_listen = env.parsed(
            "TENANTD_METRICS_LISTEN",
            SocketAddr::from(([127, 0, 0, 1], 9090)),
            "an address such as 127.0.0.1:9090",
        )?;
        let worker = WorkerSettings::load(env)?;
        let max_attempts = env.integer("TENANTD_MAX_ATTEMPTS", 8, 1..=1000)? as i32;
        let log_format = log_format(env)?;
        let provisioning = ProvisioningSettings::load(env)?;
        let rds_rate = rds_rate(env)?;
        let api_tokens = api_tokens(env)?;
        let aws_timeouts = AwsTimeouts {
            connect: env.duration(
                "TENANTD_AWS_CONNECT_TIMEOUT",
                Duration::from_secs(5),
                Duration::from_millis(100),
                Duration::from_secs(120),
            )?,
            attempt: env.duration(
                "TENANTD_AWS_OPERATION_TIMEOUT",
                Duration::from_secs(30),
                Duration::from_millis(100),
                Duration::from_secs(600),
            )?,
        };
        let job_retention = env.duration_or_off(
            "TENANTD_JOB_RETENTION",
            Some(Duration::from_secs(30 * 86400)),
            Duration::from_secs(1),
            Duration::from_secs(3650 * 86400),
        )?;
        let ui = UiSettings::load(env)?;
        let http = HttpSettings::load(env)?;
        let audit_retention = env.duration_or_off(
            "TENANTD_AUDIT_RETENTION",
            Some(Duration::from_secs(400 * 86400)),
            Duration::from_secs(86400),
            Duration::from_secs(3650 * 86400),
        )?;
        let event_retention = env.duration_or_off(
            "TENANTD_EVENT_RETENTION",
            Some(Duration::from_secs(30 * 86400)),
            Duration::from_secs(60),
            Duration::from_secs(3650 * 86400),
        )?;
        Ok(Settings {
            ui,
            http,
            audit_retention,
            event_retention,
            job_retention,
            aws_timeouts,
            database_url,
            listen,
            metrics_listen,
            worker,
            max_attempts,
            log_format,
            provisioning,
            api_tokens,
            rds_rate,
        })
    }

    /// `serve` answers requests: it needs at least one API token.
    pub fn require_api_tokens(&self) -> Result<(), ConfigError> {
        if self.api_tokens.is_empty() {
            return Err(ConfigError::Missing {
                name: "TENANTD_API_TOKENS",
                hint: "set TENANTD_TOKENS_FILE (named tokens with roles, by SHA-256 digest), or \
                       this (comma-separated admin tokens) or TENANTD_API_TOKENS_FILE (a file \
                       with one a line): `serve` refuses to run an API nobody can call",
            });
        }
        Ok(())
    }
}

/// `TENANTD_DATABASE_URL`, the one setting every daemon command needs (`migrate` needs no
/// other).
pub fn database_url<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<SecretString, ConfigError> {
    env.required_secret(
        "TENANTD_DATABASE_URL",
        "set it to the control database, e.g. postgres://user:password@host:5432/tenantd",
    )
}

/// `TENANTD_LOG_FORMAT`: `text` (default) or `json`.
pub fn log_format<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<LogFormat, ConfigError> {
    match env.string("TENANTD_LOG_FORMAT", "text").as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(ConfigError::Invalid {
            name: "TENANTD_LOG_FORMAT",
            problem: format!("expected text or json, got {other:?}"),
        }),
    }
}

/// `TENANTD_RDS_RATE` (requests/s the whole fleet may make, default 8: the account's RDS limit
/// of about 12/s is shared with other tools) times `TENANTD_RDS_RATE_SHARE` (this replica's
/// fraction, default 1; e.g. 0.33 for one of three replicas).
fn rds_rate<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<f64, ConfigError> {
    let rate: f64 = env.parsed(
        "TENANTD_RDS_RATE",
        8.0,
        "requests per second, e.g. 8 or 2.5",
    )?;
    if !(rate.is_finite() && (0.1..=10_000.0).contains(&rate)) {
        return Err(ConfigError::Invalid {
            name: "TENANTD_RDS_RATE",
            problem: format!("expected requests per second from 0.1 to 10000, got {rate}"),
        });
    }
    let share: f64 = env.parsed("TENANTD_RDS_RATE_SHARE", 1.0, "a fraction such as 0.5")?;
    if !(share.is_finite() && share > 0.0 && share <= 1.0) {
        return Err(ConfigError::Invalid {
            name: "TENANTD_RDS_RATE_SHARE",
            problem: format!("expected a fraction above 0 and at most 1, got {share}"),
        });
    }
    Ok((rate * share).max(0.01))
}

/// The named tokens of `TENANTD_TOKENS_FILE` and the admin tokens of `TENANTD_API_TOKENS`
/// (comma-separated) and `TENANTD_API_TOKENS_FILE` (one a line). An unreadable file or a bad
/// entry stops the start, naming the entry; no token is ever echoed.
fn api_tokens<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<ApiTokens, ConfigError> {
    let read = |name: &'static str| match env.optional(name) {
        None => Ok(None),
        Some(path) => {
            std::fs::read_to_string(path.trim())
                .map(Some)
                .map_err(|e| ConfigError::Invalid {
                    name,
                    problem: format!("cannot read {path:?}: {e}"),
                })
        }
    };
    let legacy_file = read("TENANTD_API_TOKENS_FILE")?;
    let named_file = read("TENANTD_TOKENS_FILE")?;
    let list = env.optional("TENANTD_API_TOKENS");
    ApiTokens::load(
        list.as_deref(),
        legacy_file.as_deref(),
        named_file.as_deref(),
    )
    .map_err(|p| ConfigError::Invalid {
        name: p.setting,
        problem: p.problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    /// Any readable file stands in for the RDS CA bundle.
    const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.entry("TENANTD_TENANT_DB_CA_FILE".into())
            .or_insert_with(|| CA.into());
        Settings::load(&Env(move |k| map.get(k).cloned()))
    }

    #[test]
    fn tenant_databases_are_verified_unless_told_otherwise() {
        let base = ("TENANTD_DATABASE_URL", "postgres://h/db");
        let s = load(&[base]).unwrap();
        assert_eq!(
            s.provisioning.tenant_db_tls,
            TenantDbTls::VerifyFull { ca_file: CA.into() }
        );
        let map: HashMap<String, String> = [base]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let err = Settings::load(&Env(move |k| map.get(k).cloned())).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("TENANTD_TENANT_DB_CA_FILE: not set"),
            "{err}"
        );
        let s = load(&[base, ("TENANTD_TENANT_DB_TLS", "require")]).unwrap();
        assert_eq!(s.provisioning.tenant_db_tls, TenantDbTls::Require);
    }

    #[test]
    fn an_empty_environment_or_resource_prefix_is_refused_by_name() {
        let base = ("TENANTD_DATABASE_URL", "postgres://h/db");
        for name in [
            "TENANTD_ENVIRONMENT",
            "TENANTD_INSTANCE_PREFIX",
            "TENANTD_SECRET_PREFIX",
            "TENANTD_POOL_SECRET_PREFIX",
        ] {
            let err = load(&[base, (name, "  ")]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("{name}: must not be empty"),
                "{name}"
            );
        }
        let err = load(&[base, ("TENANTD_ENVIRONMENT", "prod\n#x")]).unwrap_err();
        assert!(err.to_string().starts_with("TENANTD_ENVIRONMENT:"), "{err}");
        let s = load(&[base, ("TENANTD_ENVIRONMENT", "production")]).unwrap();
        assert_eq!(s.provisioning.environment, "production");
    }

    #[test]
    fn defaults_apply_when_only_the_database_is_set() {
        let s = load(&[("TENANTD_DATABASE_URL", "postgres://u:p@h/db")]).unwrap();
        assert_eq!(s.database_url.expose_secret(), "postgres://u:p@h/db");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.worker.concurrency, 16);
        assert_eq!(s.worker.lease, Duration::from_secs(30));
        assert_eq!(s.worker.lease_margin, Duration::from_secs(6));
        assert_eq!(s.worker.leader_ping_timeout, Duration::from_secs(10));
        assert_eq!(s.log_format, LogFormat::Text);
    }

    #[test]
    fn the_rds_rate_is_this_replicas_share_of_the_fleet_budget() {
        let base = ("TENANTD_DATABASE_URL", "postgres://h/db");
        assert_eq!(load(&[base]).unwrap().rds_rate, 8.0);
        let s = load(&[
            base,
            ("TENANTD_RDS_RATE", "9"),
            ("TENANTD_RDS_RATE_SHARE", "0.5"),
        ])
        .unwrap();
        assert_eq!(s.rds_rate, 4.5);
    }

    #[test]
    fn a_missing_database_url_is_named() {
        let err = load(&[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("TENANTD_DATABASE_URL is not set")
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let base = ("TENANTD_DATABASE_URL", "postgres://h/db");
        for (name, value) in [
            ("TENANTD_CONCURRENCY", "0"),
            ("TENANTD_CONCURRENCY", "many"),
            ("TENANTD_LEASE", "forever"),
            ("TENANTD_LEASE", "1ms"),
            ("TENANTD_LEASE_MARGIN", "20s"),
            ("TENANTD_LEASE_MARGIN", "soon"),
            ("TENANTD_LEADER_PING_TIMEOUT", "1m"),
            ("TENANTD_LEADER_PING_TIMEOUT", "1ms"),
            ("TENANTD_LISTEN", "localhost"),
            ("TENANTD_LOG_FORMAT", "xml"),
            ("TENANTD_MAX_ATTEMPTS", "-1"),
            ("TENANTD_ENGINE_VERSION", "16.x"),
            ("TENANTD_INSTANCE_PREFIX", "Saas-"),
            ("TENANTD_INSTANCE_PREFIX", "a-very-long-prefix-for-rds-"),
            ("TENANTD_SECRET_PREFIX", "saas tenant/"),
            ("TENANTD_SECURITY_GROUP_IDS", "sg-1,default"),
            ("TENANTD_ALARM_TOPIC_ARN", "alerts"),
            ("TENANTD_TENANT_DB_TLS", "prefer"),
            ("TENANTD_TENANT_DB_CA_FILE", "no/such/bundle.pem"),
            ("TENANTD_AWS_CONNECT_TIMEOUT", "0s"),
            ("TENANTD_AWS_OPERATION_TIMEOUT", "forever"),
            ("TENANTD_TENANT_DB_CONNECT_TIMEOUT", "1h"),
            ("TENANTD_FINAL_SNAPSHOT_RETENTION", "soon"),
            ("TENANTD_QUOTA_REFRESH", "1ms"),
            ("TENANTD_TENANT_MIGRATIONS", "no/such/dir"),
            ("TENANTD_MASTER_USERNAME", "rdsadmin"),
            ("TENANTD_TENANT_DB_NAME", "1app"),
            ("TENANTD_PROVISION_DEADLINE", "soon"),
            ("TENANTD_SECRET_RECOVERY_DAYS", "3"),
            ("TENANTD_TIERS", "no/such/tiers.toml"),
            ("TENANTD_BACKUP_WINDOW", "3-4"),
            ("TENANTD_MAINTENANCE_WINDOW", "sun:03:30-sun:04:30"),
            ("TENANTD_RDS_RATE", "0"),
            ("TENANTD_RDS_RATE", "fast"),
            ("TENANTD_RDS_RATE_SHARE", "1.5"),
            ("TENANTD_RDS_RATE_SHARE", "0"),
            ("TENANTD_RDS_POLL_INTERVAL", "1ms"),
            ("TENANTD_WARM_POOL", "gold=2"),
            ("TENANTD_WARM_POOL", "starter"),
            ("TENANTD_WARM_POOL", "starter=-1"),
            ("TENANTD_WARM_POOL", "starter=1,starter=2"),
            ("TENANTD_POOL_MAX_AGE", "forever"),
            ("TENANTD_POOL_RDS_SHARE", "2"),
            ("TENANTD_POOL_SECRET_PREFIX", "saas/tenant/"),
        ] {
            let err = load(&[base, (name, value)]).unwrap_err();
            assert!(
                err.to_string().starts_with(name),
                "{name}={value} gave {err}"
            );
        }
    }

    #[test]
    fn provisioning_defaults_follow_the_product() {
        let s = load(&[("TENANTD_DATABASE_URL", "postgres://h/db")]).unwrap();
        let p = &s.provisioning;
        assert_eq!(p.tiers, Tiers::defaults());
        assert_eq!(p.instance_id("acme"), "saas-acme");
        assert_eq!(p.secret_name("acme"), "saas/tenant/acme/database");
        assert!(p.warm_pool.is_empty(), "no warm pool unless asked");
        assert_eq!(p.pool_max_age, Duration::from_secs(14 * 86400));
        assert_eq!(
            p.pool_secret_name("saas-pool-x"),
            "saas/pool/saas-pool-x/database"
        );
        let s = load(&[
            ("TENANTD_DATABASE_URL", "postgres://h/db"),
            ("TENANTD_WARM_POOL", " starter=2, pro=1 "),
        ])
        .unwrap();
        let pool: Vec<_> = s.provisioning.warm_pool.into_iter().collect();
        assert_eq!(pool, [("pro".to_string(), 1), ("starter".to_string(), 2)]);
        assert!(matches!(p.tenant_db_tls, TenantDbTls::VerifyFull { .. }));
        assert_eq!(
            p.final_snapshot_retention,
            Some(Duration::from_secs(30 * 86400))
        );
        assert_eq!(p.tenant_db_connect_timeout, Duration::from_secs(10));
        assert_eq!(
            s.aws_timeouts,
            AwsTimeouts {
                connect: Duration::from_secs(5),
                attempt: Duration::from_secs(30)
            }
        );
        assert_eq!(p.deadline, Duration::from_secs(2400));
        assert_eq!(p.secret_recovery_days, 7);
        assert_eq!(
            (p.master_username.as_str(), p.db_name.as_str()),
            ("tenant_admin", "app")
        );
        assert_eq!(p.engine_version, "16");
        assert_eq!(
            (p.backup_window.as_str(), p.maintenance_window.as_str()),
            ("03:00-04:00", "sun:04:00-sun:05:00")
        );
        let s = load(&[
            ("TENANTD_DATABASE_URL", "postgres://h/db"),
            ("TENANTD_SECURITY_GROUP_IDS", "sg-1, sg-2"),
            ("TENANTD_TENANT_DB_TLS", "disable"),
        ])
        .unwrap();
        assert_eq!(s.provisioning.security_group_ids, ["sg-1", "sg-2"]);
        assert_eq!(s.provisioning.tenant_db_tls, TenantDbTls::Disable);
    }

    #[test]
    fn a_bad_tier_file_names_the_tier_and_the_field() {
        let path = std::env::temp_dir().join(format!("tiers-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(
            &path,
            "[small]\ninstance_class = \"db.t3.micro\"\nstorage_gib = 100\nbackup_retention_days = 7\niops = 12000\n",
        )
        .unwrap();
        let err = load(&[
            ("TENANTD_DATABASE_URL", "postgres://h/db"),
            ("TENANTD_TIERS", path.to_str().unwrap()),
        ])
        .unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(
            err.to_string()
                .starts_with("TENANTD_TIERS: tier small: iops:"),
            "{err}"
        );
    }

    #[test]
    fn api_tokens_come_from_the_list_and_the_files_and_never_print() {
        let file_token = "file-token-0123456789abcdef0123456789";
        let path = std::env::temp_dir().join(format!("tokens-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, format!("# rotated monthly\n{file_token}\n")).unwrap();
        let viewer = "viewer-token-0123456789abcdef012345";
        let named = std::env::temp_dir().join(format!("named-{}", uuid::Uuid::new_v4()));
        std::fs::write(
            &named,
            format!(
                "[[tokens]]\nname = \"dashboard\"\nrole = \"viewer\"\nsha256 = \"{}\"\n",
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(viewer))
            ),
        )
        .unwrap();
        let s = load(&[
            ("TENANTD_DATABASE_URL", "postgres://h/db"),
            (
                "TENANTD_API_TOKENS",
                "list-token-1-0123456789abcdef012345,list-token-2-0123456789abcdef012345",
            ),
            ("TENANTD_API_TOKENS_FILE", path.to_str().unwrap()),
            ("TENANTD_TOKENS_FILE", named.to_str().unwrap()),
        ])
        .unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(&named).unwrap();
        assert_eq!(s.api_tokens.len(), 4);
        assert!(
            s.api_tokens.accepts(file_token)
                && s.api_tokens.accepts("list-token-2-0123456789abcdef012345")
        );
        assert!(matches!(
            s.api_tokens.authenticate(viewer),
            Presented::Known(t) if t.role == Role::Viewer && t.name == "dashboard"
        ));
        let shown = format!("{s:?}");
        assert!(!shown.contains("list-token-1") && !shown.contains(file_token));
        let none = load(&[("TENANTD_DATABASE_URL", "postgres://h/db")]).unwrap();
        assert!(none.api_tokens.is_empty());
        for name in ["TENANTD_API_TOKENS_FILE", "TENANTD_TOKENS_FILE"] {
            let err = load(&[
                ("TENANTD_DATABASE_URL", "postgres://h/db"),
                (name, "no/such/file"),
            ])
            .unwrap_err();
            assert!(err.to_string().starts_with(name), "{err}");
        }
        let err = load(&[
            ("TENANTD_DATABASE_URL", "postgres://h/db"),
            ("TENANTD_API_TOKENS", "too-short"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("TENANTD_API_TOKENS: token-1 (entry 1"),
            "{err}"
        );
        assert!(!err.to_string().contains("too-short"));
    }

    #[test]
    fn audit_events_are_kept_400_days_unless_set() {
        let base = ("TENANTD_DATABASE_URL", "postgres://h/db");
        let s = load(&[base]).unwrap();
        assert_eq!(s.audit_retention, Some(Duration::from_secs(400 * 86400)));
        let s = load(&[base, ("TENANTD_AUDIT_RETENTION", "0")]).unwrap();
        assert_eq!(s.audit_retention, None);
        let err = load(&[base, ("TENANTD_AUDIT_RETENTION", "1h")]).unwrap_err();
        assert!(
            err.to_string().starts_with("TENANTD_AUDIT_RETENTION"),
            "{err}"
        );
    }

    #[test]
    fn events_are_kept_30_days_unless_set() {
        let base = ("TENANTD_DATABASE_URL", "postgres://h/db");
        let s = load(&[base]).unwrap();
        assert_eq!(s.event_retention, Some(Duration::from_secs(30 * 86400)));
        let s = load(&[base, ("TENANTD_EVENT_RETENTION", "7d")]).unwrap();
        assert_eq!(s.event_retention, Some(Duration::from_secs(7 * 86400)));
        let s = load(&[base, ("TENANTD_EVENT_RETENTION", "0")]).unwrap();
        assert_eq!(s.event_retention, None);
        let err = load(&[base, ("TENANTD_EVENT_RETENTION", "soon")]).unwrap_err();
        assert!(
            err.to_string().starts_with("TENANTD_EVENT_RETENTION"),
            "{err}"
        );
    }

    #[test]
    fn the_database_url_never_appears_in_debug_output() {
        let s = load(&[("TENANTD_DATABASE_URL", "postgres://u:hunter2@h/db")]).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
