//! Reading the queue: a job, its history, a tenant's latest jobs, the jobs waiting at given
//! steps, and the fleet-wide figures the metrics export.

use std::time::Duration;

use sqlx::PgExecutor;
use uuid::Uuid;

use super::job::{HistoryEntry, Job, JobState, QueueError};

/// The tenant's active job, if it has one.
pub async fn active_job(
    executor: impl PgExecutor<'_>,
    tenant_id: &str,
) -> Result<Option<Job>, QueueError> {
    Ok(sqlx::query_as::<_, Job>(
        "SELECT * FROM jobs WHERE tenant_id = $1 AND state IN ('queued', 'running', 'waiting')",
    )
    .bind(tenant_id)
    .fetch_optional(executor)
    .await?)
}

/// The tenants that have an active job.
pub async fn tenants_with_active_jobs(
    executor: impl PgExecutor<'_>,
) -> Result<std::collections::HashSet<String>, QueueError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT tenant_id FROM jobs
         WHERE state IN ('queued', 'running', 'waiting') AND tenant_id IS NOT NULL",
    )
    .fetch_all(executor)
    .await?;
    Ok(ids.into_iter().collect())
}

/// Per tenant, the jobs of `kind` and with `args` containing `args` (a JSON object) that
/// failed since its last such job that succeeded: how many, and when the last one ended.
pub async fn failures_since_success(
    executor: impl PgExecutor<'_>,
    kind: &str,
    args: &serde_json::Value,
) -> Result<std::collections::HashMap<String, (i64, chrono::DateTime<chrono::Utc>)>, QueueError> {
    let rows: Vec<(String, i64, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT f.tenant_id, count(*), max(f.finished_at)
         FROM jobs f
         WHERE f.kind = $1 AND f.args @> $2 AND f.state = 'failed' AND f.tenant_id IS NOT NULL
           AND f.finished_at > COALESCE(
               (SELECT max(s.finished_at) FROM jobs s
                WHERE s.tenant_id = f.tenant_id AND s.kind = $1 AND s.args @> $2
                  AND s.state = 'succeeded'),
               '-infinity')
         GROUP BY f.tenant_id",
    )
    .bind(kind)
    .bind(args)
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|(t, n, at)| (t, (n, at))).collect())
}

/// Which jobs a listing shows.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub kind: Option<String>,
    pub tenant: Option<String>,
}

/// A page of jobs, newest first, after `cursor` (the last job of the previous page). Returns
/// the page and the cursor of the next one, if there is more.
pub async fn list_jobs(
    executor: impl PgExecutor<'_>,
    filter: &JobFilter,
    limit: i64,
    cursor: Option<Uuid>,
) -> Result<(Vec<Job>, Option<Uuid>), QueueError> {
    let limit = limit.clamp(1, 1000);
    let mut rows = sqlx::query_as::<_, Job>(
        "SELECT * FROM jobs
         WHERE ($1::job_state IS NULL OR state = $1)
           AND ($2::text IS NULL OR kind = $2)
           AND ($3::text IS NULL OR tenant_id = $3)
           AND ($4::uuid IS NULL
                OR (created_at, id) < (SELECT created_at, id FROM jobs WHERE id = $4))
         ORDER BY created_at DESC, id DESC LIMIT $5",
    )
    .bind(filter.state)
    .bind(filter.kind.as_deref())
    .bind(filter.tenant.as_deref())
    .bind(cursor)
    .bind(limit + 1)
    .fetch_all(executor)
    .await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|j| j.id)
    } else {
        None
    };
    Ok((rows, next))
}

pub async fn get_job(executor: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Job>, QueueError> {
    Ok(sqlx::query_as::<_, Job>("SELECT * FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(executor)
        .await?)
}

/// The job's history, oldest first.
pub async fn history(
    executor: impl PgExecutor<'_>,
    job_id: Uuid,
) -> Result<Vec<HistoryEntry>, QueueError> {
    Ok(sqlx::query_as::<_, HistoryEntry>(
        "SELECT at, step, attempt, outcome, started_at, error, error_class, worker, note
         FROM job_history WHERE job_id = $1 ORDER BY id",
    )
    .bind(job_id)
    .fetch_all(executor)
    .await?)
}

/// The tenant's most recent job of `kind`.
pub async fn latest_job(
    executor: impl PgExecutor<'_>,
    tenant_id: &str,
    kind: &str,
) -> Result<Option<Job>, QueueError> {
    Ok(sqlx::query_as::<_, Job>(
        "SELECT * FROM jobs WHERE tenant_id = $1 AND kind = $2 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(tenant_id)
    .bind(kind)
    .fetch_optional(executor)
    .await?)
}

/// The most recent job of one of `kinds` for each tenant in `tenants` (tenants without one are
/// left out).
pub async fn latest_jobs(
    executor: impl PgExecutor<'_>,
    tenants: &[String],
    kinds: &[&str],
) -> Result<Vec<Job>, QueueError> {
    Ok(sqlx::query_as::<_, Job>(
        "SELECT DISTINCT ON (tenant_id) * FROM jobs
         WHERE tenant_id = ANY($1) AND kind = ANY($2)
         ORDER BY tenant_id, created_at DESC",
    )
    .bind(tenants)
    .bind(kinds)
    .fetch_all(executor)
    .await?)
}

/// A job waiting (durably) at one of the steps asked for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Waiting {
    pub id: Uuid,
    pub kind: String,
    pub step: String,
    pub tenant_id: Option<String>,
    /// The warm-pool standby the job builds or claims (`args.standby`).
    pub standby: Option<String>,
}

/// The tenants' jobs that wait at one of `steps` (pairs of kind and step). Running and queued
/// jobs at such a step get their turn once they wait.
pub async fn waiting_at(
    executor: impl PgExecutor<'_>,
    steps: &[(&str, &str)],
) -> Result<Vec<Waiting>, QueueError> {
    let kinds: Vec<&str> = steps.iter().map(|(k, _)| *k).collect();
    let names: Vec<&str> = steps.iter().map(|(_, s)| *s).collect();
    Ok(sqlx::query_as::<_, Waiting>(
        "SELECT j.id, j.kind, j.step, j.tenant_id, j.args ->> 'standby' AS standby FROM jobs j
         JOIN unnest($1::text[], $2::text[]) AS w(kind, step)
           ON j.kind = w.kind AND j.step = w.step
         WHERE j.state = 'waiting'
           AND (j.tenant_id IS NOT NULL OR jsonb_typeof(j.args -> 'standby') = 'string')",
    )
    .bind(&kinds)
    .bind(&names)
    .fetch_all(executor)
    .await?)
}

/// Figures about the whole queue, read at once.
#[derive(Debug, Clone, Default)]
pub struct FleetStats {
    /// Jobs by kind and state.
    pub jobs: Vec<(String, JobState, i64)>,
    /// Jobs runnable now (queued, or waiting with `run_at` passed) and not yet claimed.
    pub depth: i64,
    /// How long the longest-waiting runnable job has been due.
    pub oldest_waiting: Duration,
}

/// Counts jobs by kind and state, and the runnable backlog (cheap aggregates).
pub async fn fleet_stats(executor: impl PgExecutor<'_> + Copy) -> Result<FleetStats, QueueError> {
    let jobs: Vec<(String, JobState, i64)> = sqlx::query_as(
        "SELECT kind, state, count(*) FROM jobs GROUP BY kind, state ORDER BY kind, state",
    )
    .fetch_all(executor)
    .await?;
    let (depth, age): (i64, Option<f64>) = sqlx::query_as(
        "SELECT count(*), EXTRACT(EPOCH FROM now() - min(run_at))::float8 FROM jobs
         WHERE state IN ('queued', 'waiting') AND run_at <= now()",
    )
    .fetch_one(executor)
    .await?;
    Ok(FleetStats {
        jobs,
        depth,
        oldest_waiting: Duration::from_secs_f64(age.unwrap_or(0.0).max(0.0)),
    })
}

/// How many active jobs of `kind` have an object under `key` in their data (e.g. provisioning
/// jobs waiting for quota).
pub async fn marked(
    executor: impl PgExecutor<'_>,
    kind: &str,
    key: &str,
) -> Result<i64, QueueError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM jobs
         WHERE kind = $1 AND state IN ('queued', 'running', 'waiting')
           AND jsonb_typeof(data -> $2) = 'object'",
    )
    .bind(kind)
    .bind(key)
    .fetch_one(executor)
    .await?)
}

/// How many active jobs of `kind` created before `job` carry the object `key` in their data
/// (e.g. the jobs waiting for quota that must go first).
pub async fn older_marked(
    executor: impl PgExecutor<'_>,
    kind: &str,
    key: &str,
    job: &Job,
) -> Result<i64, QueueError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM jobs
         WHERE kind = $1 AND state IN ('queued', 'running', 'waiting') AND id <> $3
           AND jsonb_typeof(data -> $2) = 'object' AND created_at < $4",
    )
    .bind(kind)
    .bind(key)
    .bind(job.id)
    .bind(job.created_at)
    .fetch_one(executor)
    .await?)
}

/// The histories of several jobs at once, each oldest first, as (job id, entry) pairs.
pub async fn histories(
    executor: impl PgExecutor<'_>,
    job_ids: &[Uuid],
) -> Result<Vec<(Uuid, HistoryEntry)>, QueueError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        job_id: Uuid,
        #[sqlx(flatten)]
        entry: HistoryEntry,
    }
    let rows = sqlx::query_as::<_, Row>(
        "SELECT job_id, at, step, attempt, outcome, started_at, error, error_class, worker, note
         FROM job_history WHERE job_id = ANY($1) ORDER BY job_id, id",
    )
    .bind(job_ids)
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|r| (r.job_id, r.entry)).collect())
}

/// Jobs that ended in the last hour and the last day, by how they ended.
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
pub struct RecentEnds {
    pub succeeded_hour: i64,
    pub failed_hour: i64,
    pub succeeded_day: i64,
    pub failed_day: i64,
}

/// Counts the jobs that succeeded and failed in the last hour and day (one aggregate).
pub async fn recent_ends(executor: impl PgExecutor<'_>) -> Result<RecentEnds, QueueError> {
    Ok(sqlx::query_as::<_, RecentEnds>(
        "SELECT
             count(*) FILTER (WHERE state = 'succeeded' AND finished_at > now() - interval '1 hour')
                 AS succeeded_hour,
             count(*) FILTER (WHERE state = 'failed' AND finished_at > now() - interval '1 hour')
                 AS failed_hour,
             count(*) FILTER (WHERE state = 'succeeded') AS succeeded_day,
             count(*) FILTER (WHERE state = 'failed') AS failed_day
         FROM jobs WHERE finished_at > now() - interval '1 day'",
    )
    .fetch_one(executor)
    .await?)
}

/// The jobs of `kind` whose arguments name warm-pool standby `standby` (its creation, and its
/// removal if it was retired): the jobs a standby's instance may have been created by.
pub async fn jobs_naming_standby(
    executor: impl PgExecutor<'_>,
    kind: &str,
    standby: &str,
) -> Result<Vec<Uuid>, QueueError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM jobs WHERE kind = $1 AND args->>'standby' = $2 ORDER BY created_at",
    )
    .bind(kind)
    .bind(standby)
    .fetch_all(executor)
    .await?)
}

/// The jobs of `kind` whose argument `key` is `value`, oldest first (e.g. the job that deletes
/// one instance, so that it is enqueued once).
pub async fn jobs_with_arg(
    executor: impl PgExecutor<'_>,
    kind: &str,
    key: &str,
    value: &str,
) -> Result<Vec<Uuid>, QueueError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM jobs WHERE kind = $1 AND args->>$2 = $3 ORDER BY created_at",
    )
    .bind(kind)
    .bind(key)
    .bind(value)
    .fetch_all(executor)
    .await?)
}
