//! `event_sinks`: where a stream of every event (the EventBridge bus) stands: delivered through
//! an event id, and when to try again after a failure. One row per sink, locked `FOR UPDATE
//! SKIP LOCKED` by the process sending its next batch.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// A sink's row, locked for this transaction.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Cursor {
    pub delivered_through: i64,
    pub attempts: i32,
    pub failing_since: Option<DateTime<Utc>>,
}

/// The sink's cursor when it is due and no other process holds it. A new sink starts at the
/// latest event: it gets the events committed from now on.
pub async fn claim(conn: &mut PgConnection, name: &str) -> Result<Option<Cursor>, sqlx::Error> {
    sqlx::query(
        "INSERT INTO event_sinks (name, delivered_through)
         VALUES ($1, (SELECT coalesce(max(id), 0) FROM events)) ON CONFLICT DO NOTHING",
    )
    .bind(name)
    .execute(&mut *conn)
    .await?;
    sqlx::query_as(
        "SELECT delivered_through, attempts, failing_since FROM event_sinks
         WHERE name = $1 AND next_at <= now() FOR UPDATE SKIP LOCKED",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
}

/// The events through `id` are delivered (or given up).
pub async fn advance(conn: &mut PgConnection, name: &str, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE event_sinks SET delivered_through = greatest(delivered_through, $2),
             attempts = 0, failing_since = NULL, last_error = NULL, next_at = now()
         WHERE name = $1",
    )
    .bind(name)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A batch failed: try again after `pause`; returns since when it has been failing.
pub async fn failed(
    conn: &mut PgConnection,
    name: &str,
    pause: Duration,
    error: &str,
) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE event_sinks SET attempts = attempts + 1,
             failing_since = coalesce(failing_since, now()), last_error = $3,
             next_at = now() + make_interval(secs => $2)
         WHERE name = $1 RETURNING failing_since",
    )
    .bind(name)
    .bind(pause.as_secs_f64())
    .bind(error)
    .fetch_one(&mut *conn)
    .await
}
