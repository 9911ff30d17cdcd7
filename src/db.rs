//! The control database: connecting and applying the control schema (`state-migrations/`).

use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// Errors reaching or migrating the control database. The URL is never part of the message.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("TENANTD_DATABASE_URL is not a valid PostgreSQL URL")]
    BadUrl,
    #[error("cannot reach the control database: {0}")]
    Connect(sqlx::Error),
    #[error("cannot apply the control schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Opens a pool of at most `max_connections` to the control database.
pub async fn connect(url: &SecretString, max_connections: u32) -> Result<PgPool, DbError> {
    let options = PgConnectOptions::from_str(url.expose_secret()).map_err(|_| DbError::BadUrl)?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(DbError::Connect)
}

/// A pool of at most `max_connections` that connects when first used and waits at most
/// `acquire` for a connection: for the operations endpoints, which must answer fast or not
/// at all, and never wait behind the worker's connections.
pub fn connect_lazy(
    url: &SecretString,
    max_connections: u32,
    acquire: Duration,
) -> Result<PgPool, DbError> {
    let options = PgConnectOptions::from_str(url.expose_secret()).map_err(|_| DbError::BadUrl)?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire)
        .connect_lazy_with(options))
}

/// Applies the control schema. Concurrent callers are serialised by sqlx's advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    sqlx::migrate!("./state-migrations").run(pool).await?;
    Ok(())
}
