//! A tenant's own database: its master credentials (as stored in Secrets Manager), connecting
//! to it, and applying the tenant schema migrations.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::Connection;
use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};

use crate::config::{MigrationLimits, TenantDbTls};

/// Characters RDS and the rotation functions refuse in a master password.
const FORBIDDEN: &[char] = &['/', '"', '@', '\'', ':', '\\', ' '];
pub const PASSWORD_LEN: usize = 32;

/// A fresh master password: 32 printable ASCII characters from the thread's CSPRNG (ChaCha,
/// seeded by the OS), none of `/ " @ ' : \` or space.
pub fn generate_password() -> SecretString {
    let alphabet: Vec<char> = ('!'..='~').filter(|c| !FORBIDDEN.contains(c)).collect();
    let mut rng = rand::rng();
    let password: String = (0..PASSWORD_LEN)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())])
        .collect();
    SecretString::from(password)
}

/// The secret's JSON, in the format the RDS rotation functions expect.
#[derive(Debug, Clone)]
pub struct DbCredentials {
    pub engine: String,
    /// Empty until the instance has an endpoint.
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: SecretString,
    pub dbname: String,
    pub db_instance_identifier: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    engine: String,
    #[serde(default)]
    host: String,
    port: u16,
    username: String,
    password: String,
    dbname: String,
    #[serde(default)]
    db_instance_identifier: String,
}

impl DbCredentials {
    pub fn to_json(&self) -> SecretString {
        let value = serde_json::json!({
            "engine": self.engine,
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password.expose_secret(),
            "dbname": self.dbname,
            "dbInstanceIdentifier": self.db_instance_identifier,
        });
        SecretString::from(value.to_string())
    }

    /// The same credentials, pointed at `host:port`: tenantd logs in at the endpoint RDS
    /// reports for the recorded instance, never at the host a secret names (whoever can write
    /// the secret could otherwise redirect tenantd's login).
    pub fn at(mut self, host: &str, port: u16) -> Self {
        self.host = host.to_string();
        self.port = port;
        self
    }

    /// Parses a secret value. The error names no part of the value.
    pub fn from_json(value: &SecretString) -> Result<Self, TenantDbError> {
        let stored: Stored = serde_json::from_str(value.expose_secret()).map_err(|e| {
            TenantDbError::BadSecret(format!(
                "not the expected JSON ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        Ok(DbCredentials {
            engine: stored.engine,
            host: stored.host,
            port: stored.port,
            username: stored.username,
            password: SecretString::from(stored.password),
            dbname: stored.dbname,
            db_instance_identifier: stored.db_instance_identifier,
        })
    }
}

/// Errors reaching or migrating a tenant database. Never holds the password.
#[derive(Debug, thiserror::Error)]
pub enum TenantDbError {
    #[error("the tenant secret is unusable: {0}")]
    BadSecret(String),
    #[error("cannot connect to the tenant database: {0}")]
    Connect(sqlx::Error),
    /// The server's certificate did not verify (wrong CA bundle, wrong host name), or TLS
    /// failed otherwise: retrying will not change that.
    #[error(
        "TLS to the tenant database failed (is TENANTD_TENANT_DB_CA_FILE the bundle that \
         certifies it?): {0}"
    )]
    Tls(String),
    #[error("connecting to the tenant database timed out")]
    ConnectTimeout,
    #[error("cannot read the tenant migrations in {dir}: {source}")]
    Source { dir: String, source: MigrateError },
    #[error("tenant migrations failed: {0}")]
    Migrate(MigrateError),
    /// This process's migrations directory stops before the version asked for (a replica of
    /// an older release): another replica, or a later try, has it.
    #[error("the tenant migrations here stop at version {newest}; version {target} was asked for")]
    TargetMissing { target: i64, newest: i64 },
    #[error("changing the master password failed: {0}")]
    Password(sqlx::Error),
}

impl TenantDbError {
    /// The short, stable class of the failure, for the job history and the step metrics.
    pub fn class(&self) -> &'static str {
        let of_sqlx = |e: &sqlx::Error| match e {
            sqlx::Error::Tls(_) => "tls",
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("28P01" | "28000")) =>
            {
                "tenant_db_auth"
            }
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                "tenant_db_unreachable"
            }
            _ => "tenant_db",
        };
        match self {
            TenantDbError::BadSecret(_) => "bad_secret",
            TenantDbError::Connect(e) => of_sqlx(e),
            TenantDbError::Tls(_) => "tls",
            TenantDbError::ConnectTimeout => "tenant_db_timeout",
            TenantDbError::Source { .. } => "migrations_unreadable",
            TenantDbError::Migrate(MigrateError::VersionMismatch(_)) => "migration_changed",
            TenantDbError::Migrate(MigrateError::Execute(e)) => match sqlstate(e).as_deref() {
                Some("55P03") => "lock_timeout",
                Some("57014") => "statement_timeout",
                _ => "migration_failed",
            },
            TenantDbError::Migrate(_) => "migration_failed",
            TenantDbError::TargetMissing { .. } => "migrations_behind",
            TenantDbError::Password(e) => of_sqlx(e),
        }
    }

    /// Worth another try: the database is reachable soon after RDS says `available`, and its
    /// password may just have been reset.
    pub fn is_retryable(&self) -> bool {
        match self {
            TenantDbError::ConnectTimeout => true,
            TenantDbError::Connect(e) => retryable_sqlx(e),
            // A lock the application holds: later, the migration may get it at once.
            TenantDbError::Migrate(MigrateError::Execute(e)) => {
                retryable_sqlx(e) || sqlstate(e).as_deref() == Some("55P03")
            }
            TenantDbError::TargetMissing { .. } => true,
            TenantDbError::Password(e) => retryable_sqlx(e),
            _ => false,
        }
    }
}

/// The SQLSTATE of a database error.
fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

fn retryable_sqlx(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            // cannot_connect_now, too_many_connections, admin_shutdown, auth failures while
            // a password change is applied, database not there yet.
            Some("57P03" | "53300" | "57P01" | "28P01" | "28000" | "3D000")
        ),
        _ => false,
    }
}

/// Opens one connection to the tenant database with its master credentials.
pub async fn connect(
    credentials: &DbCredentials,
    tls: &TenantDbTls,
    timeout: Duration,
) -> Result<PgConnection, TenantDbError> {
    if credentials.host.is_empty() {
        return Err(TenantDbError::BadSecret(
            "the secret has no host yet".into(),
        ));
    }
    let mut options = PgConnectOptions::new()
        .host(&credentials.host)
        .port(credentials.port)
        .username(&credentials.username)
        .password(credentials.password.expose_secret())
        .database(&credentials.dbname)
        .application_name("tenantd");
    options = match tls {
        TenantDbTls::Require => options.ssl_mode(PgSslMode::Require),
        TenantDbTls::VerifyFull { ca_file } => options
            .ssl_mode(PgSslMode::VerifyFull)
            .ssl_root_cert(ca_file),
        TenantDbTls::Disable => options.ssl_mode(PgSslMode::Disable),
    };
    match tokio::time::timeout(timeout, PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) if tls_failure(&e) => Err(TenantDbError::Tls(e.to_string())),
        Ok(Err(e)) => Err(TenantDbError::Connect(e)),
        Err(_) => Err(TenantDbError::ConnectTimeout),
    }
}

/// Gives the master user the password `new`, logged in with `credentials` (its current one),
/// through the database itself: `ALTER ROLE CURRENT_USER` with a SCRAM-SHA-256 verifier made
/// here, so that the password crosses neither the connection nor the server's statement log.
/// Takes effect for new logins at once (RDS's ModifyDBInstance would take a modifying phase).
pub async fn set_own_password(
    credentials: &DbCredentials,
    tls: &TenantDbTls,
    timeout: Duration,
    new: &SecretString,
) -> Result<(), TenantDbError> {
    let verifier = postgres_protocol::password::scram_sha_256(new.expose_secret().as_bytes());
    let mut conn = connect(credentials, tls, timeout).await?;
    // The verifier is base64, digits, `$`, `:` and `-`: no quote to escape.
    let statement = format!("ALTER ROLE CURRENT_USER PASSWORD '{verifier}'");
    let result = sqlx::query(&statement).execute(&mut conn).await;
    let _ = conn.close().await;
    result.map(|_| ()).map_err(TenantDbError::Password)
}

/// The newest tenant-schema version the database has (0: none), read with `credentials`: also
/// the proof that they open it.
pub async fn schema_version(
    credentials: &DbCredentials,
    tls: &TenantDbTls,
    timeout: Duration,
) -> Result<i64, TenantDbError> {
    let mut conn = connect(credentials, tls, timeout).await?;
    let version: Result<i64, sqlx::Error> = sqlx::query_scalar(
        "SELECT CASE WHEN to_regclass('_sqlx_migrations') IS NULL THEN 0
                ELSE (SELECT COALESCE(max(version), 0) FROM _sqlx_migrations WHERE success) END",
    )
    .fetch_one(&mut conn)
    .await;
    let _ = conn.close().await;
    version.map_err(TenantDbError::Connect)
}

/// Whether a connection failed in TLS: sqlx's rustls reports a certificate it refused as an
/// I/O error of kind `InvalidData` naming the certificate problem.
fn tls_failure(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(io) => {
            let text = io.to_string();
            io.kind() == std::io::ErrorKind::InvalidData
                && (text.contains("certificate") || text.contains("Certificate"))
        }
        _ => false,
    }
}

/// One tenant migration in the migrations directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaMigration {
    pub version: i64,
    pub description: String,
    /// The file's checksum (SHA-384, as sqlx records it), in hex.
    pub checksum: String,
}

/// The tenant migrations in `dir`, oldest first.
pub async fn catalog(dir: &Path) -> Result<Vec<SchemaMigration>, TenantDbError> {
    let migrator = load(dir).await?;
    Ok(migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| SchemaMigration {
            version: m.version,
            description: m.description.to_string(),
            checksum: hex(&m.checksum),
        })
        .collect())
}

async fn load(dir: &Path) -> Result<Migrator, TenantDbError> {
    Migrator::new(dir.to_path_buf())
        .await
        .map_err(|source| TenantDbError::Source {
            dir: dir.display().to_string(),
            source,
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What migrating a tenant database did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The newest version the database has now (0: none).
    pub version: i64,
    /// The migrations this run applied.
    pub applied_now: Vec<i64>,
    /// Every migration the database has, as version → checksum (hex).
    pub applied: BTreeMap<String, String>,
}

/// Applies the migrations in `dir` up to `target` (all of them when `None`) that the database
/// does not have yet, each in its own transaction under `limits`. A migration applied earlier
/// whose file changed since fails the run with the version named; one the directory no longer
/// has is left alone. Safe to run twice (what is applied is skipped) and concurrently (sqlx's
/// advisory lock, itself under the lock timeout).
pub async fn migrate(
    credentials: &DbCredentials,
    tls: &TenantDbTls,
    connect_timeout: Duration,
    dir: &Path,
    target: Option<i64>,
    limits: MigrationLimits,
) -> Result<Migrated, TenantDbError> {
    let migrator = load(dir).await?;
    let newest = migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    if let Some(target) = target
        && target > newest
    {
        return Err(TenantDbError::TargetMissing { target, newest });
    }
    let mut conn = connect(credentials, tls, connect_timeout).await?;
    // On a task of its own: sqlx's migration futures are Send only for concrete lifetimes.
    let run = tokio::spawn(async move {
        let result = apply_up_to(&mut conn, &migrator, target, limits).await;
        let _ = conn.close().await;
        result
    });
    run.await
        .map_err(|e| TenantDbError::Migrate(MigrateError::Source(Box::new(e))))?
        .map_err(TenantDbError::Migrate)
}

async fn apply_up_to(
    conn: &mut PgConnection,
    migrator: &Migrator,
    target: Option<i64>,
    limits: MigrationLimits,
) -> Result<Migrated, MigrateError> {
    let millis = |d: Duration| d.as_millis().max(1).to_string();
    sqlx::query(
        "SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)",
    )
    .bind(millis(limits.lock_timeout))
    .bind(millis(limits.statement_timeout))
    .execute(&mut *conn)
    .await?;
    conn.lock().await?;
    conn.ensure_migrations_table().await?;
    if let Some(version) = conn.dirty_version().await? {
        return Err(MigrateError::Dirty(version));
    }
    let applied: BTreeMap<i64, Vec<u8>> = conn
        .list_applied_migrations()
        .await?
        .into_iter()
        .map(|m| (m.version, m.checksum.into_owned()))
        .collect();
    let mut applied_now = Vec::new();
    let mut all: BTreeMap<i64, Vec<u8>> = applied.clone();
    for migration in migrator.iter() {
        if !migration.migration_type.is_up_migration()
            || target.is_some_and(|t| migration.version > t)
        {
            continue;
        }
        match applied.get(&migration.version) {
            Some(checksum) if *checksum != *migration.checksum => {
                return Err(MigrateError::VersionMismatch(migration.version));
            }
            Some(_) => {}
            None => {
                conn.apply(migration).await?;
                applied_now.push(migration.version);
                all.insert(migration.version, migration.checksum.to_vec());
            }
        }
    }
    conn.unlock().await?;
    Ok(Migrated {
        version: all.keys().max().copied().unwrap_or(0),
        applied_now,
        applied: all.iter().map(|(v, c)| (v.to_string(), hex(c))).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_varied_and_avoid_forbidden_characters() {
        let a = generate_password();
        let b = generate_password();
        assert_ne!(a.expose_secret(), b.expose_secret());
        for p in [a, b] {
            let p = p.expose_secret();
            assert_eq!(p.len(), PASSWORD_LEN);
            assert!(
                p.chars()
                    .all(|c| c.is_ascii_graphic() && !FORBIDDEN.contains(&c))
            );
        }
    }

    #[test]
    fn credentials_round_trip_and_never_print_the_password() {
        let c = DbCredentials {
            engine: "postgres".into(),
            host: "h".into(),
            port: 5432,
            username: "tenant_admin".into(),
            password: SecretString::from("s3cr3t-value"),
            dbname: "app".into(),
            db_instance_identifier: "saas-acme".into(),
        };
        assert!(!format!("{c:?}").contains("s3cr3t-value"));
        let json = c.to_json();
        let v: serde_json::Value = serde_json::from_str(json.expose_secret()).unwrap();
        assert_eq!(v["dbInstanceIdentifier"], "saas-acme");
        assert_eq!(v["port"], 5432);
        let back = DbCredentials::from_json(&json).unwrap();
        assert_eq!(back.password.expose_secret(), "s3cr3t-value");
        let err = DbCredentials::from_json(&SecretString::from(
            r#"{"engine":"postgres","port":"s3cr3t-value"}"#,
        ))
        .unwrap_err();
        assert!(!err.to_string().contains("s3cr3t-value"), "{err}");
    }
}
