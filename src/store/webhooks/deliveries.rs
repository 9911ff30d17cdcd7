//! `webhook_deliveries` and `webhook_attempts`: one row per event and subscription, made by the
//! fan-out from the subscription's cursor (`fanned_through`), claimed `FOR UPDATE SKIP LOCKED`
//! (so several processes never send the same one at once, and a process killed mid-send leaves
//! it pending), only when no earlier delivery of the same subscription and tenant is pending:
//! a tenant's events arrive in order. Each attempt goes into the log.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// Events read per round of the fan-out.
const FAN_OUT_BATCH: i64 = 1000;

/// Makes the delivery rows of the events committed since each enabled subscription's cursor
/// (those of its types), and moves the cursors; subscriptions another process is fanning out
/// are skipped. Returns the rows made.
pub async fn fan_out(conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
    let subs: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT id, fanned_through FROM webhook_subscriptions
         WHERE enabled AND fanned_through < (SELECT coalesce(max(id), 0) FROM events)
         ORDER BY id FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(&mut *conn)
    .await?;
    let Some(lowest) = subs.iter().map(|(_, after)| *after).min() else {
        return Ok(0);
    };
    let horizon: Option<i64> = sqlx::query_scalar(
        "SELECT max(id) FROM (SELECT id FROM events WHERE id > $1 ORDER BY id LIMIT $2) e",
    )
    .bind(lowest)
    .bind(FAN_OUT_BATCH)
    .fetch_one(&mut *conn)
    .await?;
    let Some(horizon) = horizon else {
        return Ok(0);
    };
    let (ids, afters): (Vec<Uuid>, Vec<i64>) = subs.into_iter().unzip();
    let made = sqlx::query(
        "INSERT INTO webhook_deliveries (subscription_id, event_id, tenant_key)
         SELECT w.id, e.id, coalesce(e.tenant_id, '')
         FROM unnest($1::uuid[], $2::bigint[]) AS s(id, after)
         JOIN webhook_subscriptions w ON w.id = s.id
         JOIN events e ON e.id > s.after AND e.id <= $3
              AND (cardinality(w.types) = 0 OR e.type = ANY(w.types))
         ORDER BY e.id, w.id",
    )
    .bind(&ids)
    .bind(&afters)
    .bind(horizon)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query(
        "UPDATE webhook_subscriptions SET fanned_through = $2
         WHERE id = ANY($1) AND fanned_through < $2",
    )
    .bind(&ids)
    .bind(horizon)
    .execute(&mut *conn)
    .await?;
    Ok(made)
}

/// A delivery claimed for sending, with what sending needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub subscription_id: Uuid,
    pub event_id: i64,
    /// Attempts made before this one.
    pub attempts: i32,
    pub url: String,
    pub secret_arn: String,
    pub key_version: i32,
    /// The previous key signs too (a rotation's overlap).
    pub overlap: bool,
}

/// Up to `limit` due deliveries of enabled subscriptions, each the oldest pending one of its
/// subscription and tenant, locked until the transaction of `conn` ends.
pub async fn claim(conn: &mut PgConnection, limit: i64) -> Result<Vec<Claimed>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.id, d.subscription_id, d.event_id, d.attempts, s.url, s.secret_arn,
                s.key_version, coalesce(s.previous_until > now(), false) AS overlap
         FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
         WHERE d.state = 'pending' AND d.next_at <= now() AND s.enabled
           AND NOT EXISTS (
               SELECT 1 FROM webhook_deliveries p
               WHERE p.subscription_id = d.subscription_id AND p.tenant_key = d.tenant_key
                 AND p.state = 'pending' AND p.id < d.id)
         ORDER BY d.id LIMIT $1
         FOR UPDATE OF d SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The receiver's status code, if it answered.
    pub status: Option<u16>,
    /// Why it failed, without the receiver's body (never logged in full).
    pub error: Option<String>,
    pub took: Duration,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// What recording a failed attempt did to the subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    /// Retried after the pause.
    Retry,
    /// Out of time: the delivery is marked failed.
    GaveUp,
    /// The subscription had been failing for `disable_after`: disabled, with this reason.
    Disabled(String),
}

/// Records an attempt of `claimed` in the log and in the delivery: delivered, retried after
/// `pause`, or failed once `retry_for` has passed since its first attempt; a subscription that
/// failed for `disable_after` with no success is disabled.
pub async fn record(
    conn: &mut PgConnection,
    claimed: &Claimed,
    attempt: &Attempt,
    pause: Duration,
    retry_for: Duration,
    disable_after: Duration,
) -> Result<Option<AfterFailure>, sqlx::Error> {
    let status = attempt.status.map(i32::from);
    sqlx::query(
        "INSERT INTO webhook_attempts
             (subscription_id, delivery_id, event_id, attempt, status_code, error, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(claimed.subscription_id)
    .bind(claimed.id)
    .bind(claimed.event_id)
    .bind(claimed.attempts + 1)
    .bind(status)
    .bind(attempt.error.as_deref())
    .bind(attempt.took.as_millis().min(i32::MAX as u128) as i32)
    .execute(&mut *conn)
    .await?;
    if attempt.succeeded() {
        sqlx::query(
            "UPDATE webhook_deliveries
             SET state = 'delivered', finished_at = now(), attempts = attempts + 1,
                 last_status = $2, first_attempt_at = coalesce(first_attempt_at, now())
             WHERE id = $1",
        )
        .bind(claimed.id)
        .bind(status)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE webhook_subscriptions SET failing_since = NULL
             WHERE id = $1 AND failing_since IS NOT NULL",
        )
        .bind(claimed.subscription_id)
        .execute(&mut *conn)
        .await?;
        return Ok(None);
    }
    let gave_up: bool = sqlx::query_scalar(
        "UPDATE webhook_deliveries
         SET attempts = attempts + 1, last_status = $2,
             first_attempt_at = coalesce(first_attempt_at, now()),
             next_at = now() + make_interval(secs => $3),
             state = CASE WHEN coalesce(first_attempt_at, now()) + make_interval(secs => $4) <= now()
                          THEN 'failed' ELSE 'pending' END::webhook_delivery_state,
             finished_at = CASE WHEN coalesce(first_attempt_at, now()) + make_interval(secs => $4) <= now()
                                THEN now() END
         WHERE id = $1 RETURNING state = 'failed'",
    )
    .bind(claimed.id)
    .bind(status)
    .bind(pause.as_secs_f64())
    .bind(retry_for.as_secs_f64())
    .fetch_one(&mut *conn)
    .await?;
    let since: DateTime<Utc> = sqlx::query_scalar(
        "UPDATE webhook_subscriptions SET failing_since = coalesce(failing_since, now())
         WHERE id = $1 RETURNING failing_since",
    )
    .bind(claimed.subscription_id)
    .fetch_one(&mut *conn)
    .await?;
    if Utc::now() - since >= chrono::Duration::from_std(disable_after).unwrap_or_default() {
        let reason = format!(
            "every delivery failed since {} (last: {})",
            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            attempt
                .status
                .map(|s| format!("HTTP {s}"))
                .or_else(|| attempt.error.clone())
                .unwrap_or_default()
        );
        super::subscriptions::set_enabled(&mut *conn, claimed.subscription_id, Some(&reason))
            .await?;
        return Ok(Some(AfterFailure::Disabled(reason)));
    }
    Ok(Some(if gave_up {
        AfterFailure::GaveUp
    } else {
        AfterFailure::Retry
    }))
}

/// Records the successful attempts of `done` (claimed, with their attempts) in three
/// statements whatever their number: the log lines, the deliveries, and the subscriptions'
/// failure streaks ended.
pub async fn record_delivered(
    conn: &mut PgConnection,
    done: &[(&Claimed, &Attempt)],
) -> Result<(), sqlx::Error> {
    if done.is_empty() {
        return Ok(());
    }
    let subs: Vec<Uuid> = done.iter().map(|(c, _)| c.subscription_id).collect();
    let ids: Vec<i64> = done.iter().map(|(c, _)| c.id).collect();
    let events: Vec<i64> = done.iter().map(|(c, _)| c.event_id).collect();
    let numbers: Vec<i32> = done.iter().map(|(c, _)| c.attempts + 1).collect();
    let statuses: Vec<Option<i32>> = done.iter().map(|(_, a)| a.status.map(i32::from)).collect();
    let took: Vec<i32> = done
        .iter()
        .map(|(_, a)| a.took.as_millis().min(i32::MAX as u128) as i32)
        .collect();
    sqlx::query(
        "INSERT INTO webhook_attempts
             (subscription_id, delivery_id, event_id, attempt, status_code, duration_ms)
         SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::int[], $5::int[],
                              $6::int[])",
    )
    .bind(&subs)
    .bind(&ids)
    .bind(&events)
    .bind(&numbers)
    .bind(&statuses)
    .bind(&took)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE webhook_deliveries d
         SET state = 'delivered', finished_at = now(), attempts = d.attempts + 1,
             last_status = u.status, first_attempt_at = coalesce(d.first_attempt_at, now())
         FROM unnest($1::bigint[], $2::int[]) AS u(id, status)
         WHERE d.id = u.id",
    )
    .bind(&ids)
    .bind(&statuses)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE webhook_subscriptions SET failing_since = NULL
         WHERE id = ANY($1) AND failing_since IS NOT NULL",
    )
    .bind(&subs)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One line of the delivery log.
#[derive(Debug, Clone, sqlx::FromRow, PartialEq, Eq)]
pub struct LogLine {
    pub id: i64,
    pub event_id: i64,
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
    pub at: DateTime<Utc>,
}

/// The subscription's latest attempts, newest first, before the line `before` if given.
pub async fn log(
    executor: impl PgExecutor<'_>,
    subscription: Uuid,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<LogLine>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, event_id, attempt, status_code, error, duration_ms, at
         FROM webhook_attempts
         WHERE subscription_id = $1 AND ($2::bigint IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3",
    )
    .bind(subscription)
    .bind(before)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// Where a replay starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    Event(i64),
    Time(DateTime<Utc>),
}

/// Delivers again the subscription's events (of its types) from `since` up to its cursor (the
/// later ones are on their way anyway); returns how many.
pub async fn replay(
    executor: impl PgExecutor<'_>,
    subscription: Uuid,
    since: Since,
) -> Result<u64, sqlx::Error> {
    let (from_id, from_time) = match since {
        Since::Event(id) => (Some(id), None),
        Since::Time(t) => (None, Some(t)),
    };
    let done = sqlx::query(
        "INSERT INTO webhook_deliveries (subscription_id, event_id, tenant_key, replay)
         SELECT w.id, e.id, coalesce(e.tenant_id, ''), true
         FROM webhook_subscriptions w
         JOIN events e ON e.id <= w.fanned_through
              AND (cardinality(w.types) = 0 OR e.type = ANY(w.types))
              AND ($2::bigint IS NULL OR e.id >= $2)
              AND ($3::timestamptz IS NULL OR e.time >= $3)
         WHERE w.id = $1
         ORDER BY e.id",
    )
    .bind(subscription)
    .bind(from_id)
    .bind(from_time)
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

/// Pending deliveries per subscription (read through the pending index).
pub async fn pending(executor: impl PgExecutor<'_>) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT subscription_id, count(*) FROM webhook_deliveries
         WHERE state = 'pending' GROUP BY subscription_id",
    )
    .fetch_all(executor)
    .await
}

/// The events of these ids (those not pruned).
pub async fn events(
    executor: impl PgExecutor<'_>,
    ids: &[i64],
) -> Result<Vec<crate::store::events::Event>, sqlx::Error> {
    sqlx::query_as("SELECT id, type, subject, tenant_id, time, data FROM events WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(executor)
        .await
}
