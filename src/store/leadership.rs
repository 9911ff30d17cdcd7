//! The maintenance leader's records: the leadership term (`maintenance_leadership`: the epoch
//! each new leader raises, which every leader write holds `FOR SHARE`) and the instance
//! poller's last round (`instance_poller`), by which the other processes know a poller runs.

use std::time::Duration;

use sqlx::{PgConnection, PgExecutor};

/// Begins a new term for `me`, on the session that just won the leader's lock; returns its
/// epoch. Waits for the fenced transactions of earlier terms to end.
pub async fn raise_epoch(conn: &mut PgConnection, me: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE maintenance_leadership SET epoch = epoch + 1, leader = $1, since = now()
         RETURNING epoch",
    )
    .bind(me)
    .fetch_one(conn)
    .await
}

/// The current epoch, held `FOR SHARE` for the rest of the transaction: a new term's raise
/// waits for it to end.
pub async fn hold_epoch(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT epoch FROM maintenance_leadership FOR SHARE")
        .fetch_one(conn)
        .await
}

/// The current term: its epoch and leader (`None` before anyone led).
pub async fn current(executor: impl PgExecutor<'_>) -> Result<(i64, Option<String>), sqlx::Error> {
    sqlx::query_as("SELECT epoch, leader FROM maintenance_leadership")
        .fetch_one(executor)
        .await
}

/// The instance poller `me` finished a round now.
pub async fn record_poll_round(conn: &mut PgConnection, me: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO instance_poller (leader, round_at) VALUES ($1, now())
         ON CONFLICT (singleton) DO UPDATE SET leader = $1, round_at = now()",
    )
    .bind(me)
    .execute(conn)
    .await?;
    Ok(())
}

/// How long ago the poller (whichever process it is) finished its last round.
pub async fn last_poll_round_age(
    executor: impl PgExecutor<'_>,
) -> Result<Option<Duration>, sqlx::Error> {
    let age: Option<f64> = sqlx::query_scalar(
        "SELECT greatest(EXTRACT(EPOCH FROM now() - round_at)::float8, 0)
         FROM instance_poller",
    )
    .fetch_optional(executor)
    .await?;
    Ok(age.map(Duration::from_secs_f64))
}
