//! `webhook_subscriptions`: a URL, the event types it wants, the ARN of its signing key (the
//! key itself is in Secrets Manager only), whether it is enabled and why not.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// A subscription as recorded.
#[derive(Debug, Clone, sqlx::FromRow, PartialEq, Eq)]
pub struct Subscription {
    pub id: Uuid,
    pub url: String,
    pub types: Vec<String>,
    pub description: String,
    pub secret_arn: String,
    pub key_version: i32,
    pub previous_until: Option<DateTime<Utc>>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
}

const COLUMNS: &str = "id, url, types, description, secret_arn, key_version, previous_until, \
    enabled, disabled_reason, disabled_at, failing_since, created_at, created_by";

/// What a new subscription is made of.
#[derive(Debug, Clone)]
pub struct NewSubscription<'a> {
    pub id: Uuid,
    pub url: &'a str,
    pub types: &'a [String],
    pub description: &'a str,
    pub secret_arn: &'a str,
    pub created_by: Option<&'a str>,
}

/// Records a subscription that receives the events committed from now on.
pub async fn insert(
    executor: impl PgExecutor<'_>,
    new: &NewSubscription<'_>,
) -> Result<Subscription, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO webhook_subscriptions
             (id, url, types, description, secret_arn, created_by, fanned_through)
         VALUES ($1, $2, $3, $4, $5, $6, (SELECT coalesce(max(id), 0) FROM events))
         RETURNING {COLUMNS}"
    ))
    .bind(new.id)
    .bind(new.url)
    .bind(new.types)
    .bind(new.description)
    .bind(new.secret_arn)
    .bind(new.created_by)
    .fetch_one(executor)
    .await
}

pub async fn get(
    executor: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<Subscription>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhook_subscriptions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await
}

/// Every subscription, oldest first.
pub async fn list(executor: impl PgExecutor<'_>) -> Result<Vec<Subscription>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhook_subscriptions ORDER BY created_at, id"
    ))
    .fetch_all(executor)
    .await
}

/// Enables (`reason` none) or disables a subscription; `None` when there is no such one.
pub async fn set_enabled(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    reason: Option<&str>,
) -> Result<Option<Subscription>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE webhook_subscriptions
         SET enabled = $2 IS NULL, disabled_reason = $2,
             disabled_at = CASE WHEN $2 IS NULL THEN NULL ELSE now() END,
             failing_since = CASE WHEN $2 IS NULL THEN NULL ELSE failing_since END
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(reason)
    .fetch_optional(executor)
    .await
}

/// Records a rotation: the next key version, the old key signing too until `overlap` from now.
pub async fn rotated(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    overlap: std::time::Duration,
) -> Result<Option<Subscription>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE webhook_subscriptions
         SET key_version = key_version + 1,
             previous_until = now() + make_interval(secs => $2)
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(overlap.as_secs_f64())
    .fetch_optional(executor)
    .await
}

/// Deletes a subscription with its deliveries and log; whether it existed.
pub async fn delete(executor: impl PgExecutor<'_>, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM webhook_subscriptions WHERE id = $1")
        .bind(id)
        .execute(executor)
        .await?;
    Ok(done.rows_affected() == 1)
}
