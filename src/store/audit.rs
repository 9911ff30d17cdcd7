//! The `audit_events` table: writing a row, reading pages of them, who asked for which jobs,
//! and the retention path (`prune_audit_events()`, the only delete the table allows). A
//! request's [`Trail`](crate::audit::Trail) writes its row through [`insert`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::config::Role;

/// Through what a request came: the HTTP API, the CLI (the API, as `tenantd`'s client names
/// itself), or the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    #[default]
    Api,
    Cli,
    Console,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Api => "api",
            Channel::Cli => "cli",
            Channel::Console => "console",
        }
    }
}

/// One row to write.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// The token's name; for a failed authentication, the name tried (`<name>:<secret>` with a
    /// configured name), else none.
    pub token_name: Option<String>,
    pub role: Option<Role>,
    /// The client's address: the peer's, or a trusted proxy's `X-Forwarded-For`.
    pub source: String,
    pub channel: Channel,
    pub request_id: Uuid,
    pub method: String,
    /// The route's template, e.g. `/v1/tenants/{id}`.
    pub route: String,
    pub tenant_id: Option<String>,
    pub rollout_id: Option<Uuid>,
    pub job_id: Option<Uuid>,
    pub status: u16,
    /// The error code of a refusal.
    pub code: Option<String>,
}

pub async fn insert(executor: impl PgExecutor<'_>, e: &Entry) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_events (token_name, role, source, channel, request_id, method, route,
             tenant_id, rollout_id, job_id, status, code)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&e.token_name)
    .bind(e.role.map(Role::as_str))
    .bind(&e.source)
    .bind(e.channel.as_str())
    .bind(e.request_id)
    .bind(&e.method)
    .bind(&e.route)
    .bind(&e.tenant_id)
    .bind(e.rollout_id)
    .bind(e.job_id)
    .bind(e.status as i16)
    .bind(&e.code)
    .execute(executor)
    .await?;
    Ok(())
}

/// One recorded event, as read back.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// Increasing with every event; the cursor of the pages.
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The token's name (none for an unknown token).
    #[sqlx(rename = "token_name")]
    pub token: Option<String>,
    /// `viewer`, `operator` or `admin` (none for a failed authentication).
    pub role: Option<String>,
    /// The client's address.
    pub source: String,
    /// `api`, `cli` or `console`.
    pub channel: String,
    /// The `X-Request-Id` the request was answered with.
    pub request_id: Uuid,
    pub method: String,
    /// The route's template, e.g. `/v1/tenants/{id}`.
    pub route: String,
    #[sqlx(rename = "tenant_id")]
    pub tenant: Option<String>,
    #[sqlx(rename = "rollout_id")]
    pub rollout: Option<Uuid>,
    /// The job the request started (or cancelled).
    #[sqlx(rename = "job_id")]
    pub job: Option<Uuid>,
    /// The HTTP status it was answered with (for the console, the API's status for the same
    /// request).
    pub status: i16,
    /// The error code of a refusal.
    pub code: Option<String>,
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub tenant: Option<String>,
    pub token: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Up to `limit` events newest first, older than the event `before` when given; the cursor of
/// the next page is the last id when the page is full.
pub async fn page(
    executor: impl PgExecutor<'_>,
    filter: &AuditFilter,
    limit: i64,
    before: Option<i64>,
) -> Result<(Vec<Event>, Option<i64>), sqlx::Error> {
    let events: Vec<Event> = sqlx::query_as(
        "SELECT id, at, token_name, role, source, channel, request_id, method, route,
                tenant_id, rollout_id, job_id, status, code
         FROM audit_events
         WHERE ($1::text IS NULL OR tenant_id = $1)
           AND ($2::text IS NULL OR token_name = $2)
           AND ($3::timestamptz IS NULL OR at >= $3)
           AND ($4::timestamptz IS NULL OR at < $4)
           AND ($5::bigint IS NULL OR id < $5)
         ORDER BY id DESC
         LIMIT $6",
    )
    .bind(&filter.tenant)
    .bind(&filter.token)
    .bind(filter.since)
    .bind(filter.until)
    .bind(before)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    let next = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    Ok((events, next))
}

/// Who asked for a job (the first successful request that names it, other than a cancel), and
/// who asked to cancel it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Asker {
    pub job_id: Uuid,
    pub token_name: Option<String>,
    pub role: Option<String>,
    pub channel: String,
    pub at: DateTime<Utc>,
    /// The request was a cancel.
    pub cancel: bool,
}

/// The askers of `jobs`: for each, the request that started it and the first cancel, if any.
pub async fn askers(
    executor: impl PgExecutor<'_>,
    jobs: &[Uuid],
) -> Result<Vec<Asker>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT ON (job_id, cancel) job_id, token_name, role, channel, at, cancel
         FROM (SELECT *, route LIKE '%/cancel' AS cancel FROM audit_events
               WHERE job_id = ANY($1) AND status < 300) e
         ORDER BY job_id, cancel, id",
    )
    .bind(jobs)
    .fetch_all(executor)
    .await
}

/// Deletes up to `batch` events older than `retention` (never one younger than a day);
/// returns how many.
pub async fn prune(
    executor: impl sqlx::PgExecutor<'_>,
    retention: Duration,
    batch: i32,
) -> Result<u64, sqlx::Error> {
    let pruned: i32 =
        sqlx::query_scalar("SELECT prune_audit_events(make_interval(secs => $1), $2)")
            .bind(retention.as_secs_f64())
            .bind(batch)
            .fetch_one(executor)
            .await?;
    Ok(pruned as u64)
}
