//! The `ui_sessions` table: the console's sign-ins, by the SHA-256 hash of their id (the id
//! itself is only in the user's cookie), with their expiry, last use and the name, role and
//! fingerprint of the token that signed in (never the token).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// A session as recorded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub expires_at: DateTime<Utc>,
    /// `None` for a session of an earlier release.
    pub token_fingerprint: Option<String>,
    pub token_name: Option<String>,
    pub role: Option<String>,
    /// Last marked used more than a few seconds ago.
    pub stale: bool,
}

/// Deletes the sessions that expired or sat idle longer than `idle`.
pub async fn delete_stale(
    executor: impl PgExecutor<'_>,
    idle: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM ui_sessions
         WHERE expires_at < now() OR last_seen_at < now() - make_interval(secs => $1)",
    )
    .bind(idle.as_secs_f64())
    .execute(executor)
    .await?;
    Ok(())
}

/// Records a new session lasting `ttl`; returns when it expires.
pub async fn insert(
    executor: impl PgExecutor<'_>,
    id_hash: &[u8],
    ttl: Duration,
    fingerprint: &str,
    token_name: &str,
    role: &str,
) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO ui_sessions (id_hash, expires_at, token_fingerprint, token_name, role)
         VALUES ($1, now() + make_interval(secs => $2), $3, $4, $5) RETURNING expires_at",
    )
    .bind(id_hash)
    .bind(ttl.as_secs_f64())
    .bind(fingerprint)
    .bind(token_name)
    .bind(role)
    .fetch_one(executor)
    .await
}

/// The session of that hash, unless it expired or sat idle longer than `idle`.
pub async fn find(
    executor: impl PgExecutor<'_>,
    id_hash: &[u8],
    idle: Duration,
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT expires_at, token_fingerprint, token_name, role,
                last_seen_at < now() - interval '5 seconds' AS stale
         FROM ui_sessions
         WHERE id_hash = $1 AND expires_at > now()
           AND last_seen_at > now() - make_interval(secs => $2)",
    )
    .bind(id_hash)
    .bind(idle.as_secs_f64())
    .fetch_optional(executor)
    .await
}

/// Marks the session used now.
pub async fn touch(executor: impl PgExecutor<'_>, id_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE ui_sessions SET last_seen_at = now() WHERE id_hash = $1")
        .bind(id_hash)
        .execute(executor)
        .await?;
    Ok(())
}

/// Ends a session.
pub async fn delete(executor: impl PgExecutor<'_>, id_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM ui_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(executor)
        .await?;
    Ok(())
}
