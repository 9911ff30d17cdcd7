//! Leases: claiming runnable jobs, keeping them alive, returning them, and rescuing the ones
//! whose holder went silent. Every claim takes a fresh fencing token from a sequence; every write
//! a worker makes about a job names that token, so a worker whose lease was taken over cannot
//! overwrite the new holder's work.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor, Postgres, Transaction};
use uuid::Uuid;

use super::job::{Job, Lease, Outcome, QueueError};

/// Claims up to `limit` runnable jobs of the given kinds for `owner` in one statement, highest
/// priority first, then jobs that have begun before new ones, then oldest `run_at`. Rows locked
/// by a concurrent claimer are skipped, never waited for.
///
/// `started`: the caller has a free slot for every job it may get, so their steps start now
/// (jobs that wait for a slot first have their start recorded by the next [`heartbeat`], or,
/// once rescued, before their step runs: [`Completer::start`](super::Completer::start)).
///
/// The ids go through `= ANY(ARRAY(...))` rather than a join: statements are prepared, and
/// PostgreSQL's generic plan for the join with an unknown LIMIT hashed the whole jobs table.
pub async fn claim(
    executor: impl PgExecutor<'_>,
    owner: &str,
    kinds: &[String],
    limit: usize,
    lease: Duration,
    started: bool,
) -> Result<Vec<Job>, QueueError> {
    Ok(sqlx::query_as::<_, Job>(
        r#"
        UPDATE jobs SET state = 'running', lease_owner = $2,
            lease_expires_at = now() + make_interval(secs => $3),
            lease_token = nextval('job_lease_tokens'), updated_at = now(),
            step_started_at = CASE WHEN $5 THEN now() END
        WHERE id = ANY(ARRAY(
            SELECT id FROM jobs
            WHERE state IN ('queued', 'waiting') AND run_at <= now() AND kind = ANY($4)
            ORDER BY priority DESC, begun DESC, run_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        ))
        RETURNING jobs.*
        "#,
    )
    .bind(limit as i64)
    .bind(owner)
    .bind(lease.as_secs_f64())
    .bind(kinds)
    .bind(started)
    .fetch_all(executor)
    .await?)
}

/// Records that the steps of these claimed jobs start now. Returns the ids whose lease is still
/// ours: a job whose lease was lost while it waited for a slot must not run.
pub async fn mark_started(
    executor: impl PgExecutor<'_>,
    leases: &[Lease],
) -> Result<Vec<Uuid>, QueueError> {
    let ids: Vec<Uuid> = leases.iter().map(|l| l.job_id).collect();
    let tokens: Vec<i64> = leases.iter().map(|l| l.token).collect();
    Ok(sqlx::query_scalar::<_, Uuid>(
        r#"
        UPDATE jobs SET step_started_at = now()
        FROM unnest($1::uuid[], $2::bigint[]) AS held(id, token)
        WHERE jobs.id = held.id AND jobs.lease_token = held.token AND jobs.state = 'running'
        RETURNING jobs.id
        "#,
    )
    .bind(&ids)
    .bind(&tokens)
    .fetch_all(executor)
    .await?)
}

/// What a heartbeat found of one job the worker holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat {
    pub job_id: Uuid,
    /// Its lease was extended by this heartbeat (`false`: still ours, but its row was being
    /// written at that moment, so its expiry stayed as it was).
    pub renewed: bool,
}

/// Extends the leases this worker still holds, and records the start of the steps that began
/// since they were claimed (each with when it started; `None`: still waiting for a slot).
/// Returns the jobs that are still ours (the same token, and not queued again by a rescue or
/// release), each saying whether its lease was extended; a job missing from the answer is lost.
///
/// The heartbeat never waits for a row: one locked at this moment is being written by this
/// worker's own batch (which keeps or ends the lease), and waiting for it while holding others
/// could deadlock with that batch. Its lease is extended by the next heartbeat.
pub async fn heartbeat(
    executor: impl PgExecutor<'_>,
    held: &[(Lease, Option<DateTime<Utc>>)],
    lease: Duration,
) -> Result<Vec<Beat>, QueueError> {
    let ids: Vec<Uuid> = held.iter().map(|(l, _)| l.job_id).collect();
    let tokens: Vec<i64> = held.iter().map(|(l, _)| l.token).collect();
    let started: Vec<Option<DateTime<Utc>>> = held.iter().map(|(_, s)| *s).collect();
    let rows: Vec<(Uuid, bool)> = sqlx::query_as(
        r#"
        WITH free AS (SELECT id FROM jobs WHERE id = ANY($1) FOR UPDATE SKIP LOCKED),
        beat AS (
            UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $3),
                step_started_at = COALESCE(jobs.step_started_at, least(held.started, now()))
            FROM unnest($1::uuid[], $2::bigint[], $4::timestamptz[]) AS held(id, token, started)
            WHERE jobs.id = held.id AND jobs.lease_token = held.token AND jobs.state = 'running'
                AND jobs.id IN (SELECT id FROM free)
            RETURNING jobs.id
        )
        SELECT jobs.id, jobs.id IN (SELECT id FROM beat) FROM jobs
            JOIN unnest($1::uuid[], $2::bigint[]) AS held(id, token) ON jobs.id = held.id
        WHERE jobs.lease_token = held.token AND jobs.state <> 'queued'
        "#,
    )
    .bind(&ids)
    .bind(&tokens)
    .bind(lease.as_secs_f64())
    .bind(&started)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(job_id, renewed)| Beat { job_id, renewed })
        .collect())
}

/// Returns leased jobs to the queue without consuming an attempt (graceful shutdown).
/// Returns how many were still ours to release.
pub async fn release(
    executor: impl PgExecutor<'_>,
    leases: &[Lease],
    worker: &str,
) -> Result<u64, QueueError> {
    let ids: Vec<Uuid> = leases.iter().map(|l| l.job_id).collect();
    let tokens: Vec<i64> = leases.iter().map(|l| l.token).collect();
    let released: i64 = sqlx::query_scalar(
        r#"
        WITH released AS (
            UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL,
                step_started_at = NULL, run_at = now(), updated_at = now()
            FROM unnest($1::uuid[], $2::bigint[]) AS held(id, token)
            WHERE jobs.id = held.id AND jobs.lease_token = held.token AND jobs.state = 'running'
            RETURNING jobs.id, jobs.step, jobs.attempt, jobs.lease_token
        ), logged AS (
            INSERT INTO job_history (job_id, step, attempt, outcome, lease_token, worker)
            SELECT id, step, attempt, $4, lease_token, $3 FROM released
        )
        SELECT count(*) FROM released, LATERAL (SELECT pg_notify('tenantd_jobs', '')) AS n
        "#,
    )
    .bind(&ids)
    .bind(&tokens)
    .bind(worker)
    .bind(Outcome::Released.as_str())
    .fetch_one(executor)
    .await?;
    Ok(released as u64)
}

/// Returns jobs whose lease expired to the queue. Driven by lease expiry only: a job that runs
/// for an hour while its holder heartbeats is never rescued. An interrupted step counts as an
/// attempt, so a step that kills its worker every time cannot loop forever (the worker that
/// claims a job with no attempts left fails it without running the step); a job that was only
/// claimed, its step not yet started, goes back with its attempts untouched.
pub async fn rescue_expired(
    executor: impl PgExecutor<'_>,
    limit: usize,
) -> Result<u64, QueueError> {
    let rescued: i64 = sqlx::query_scalar(
        r#"
        WITH due AS (
            SELECT id, step_started_at IS NOT NULL AS started FROM jobs
            WHERE state = 'running' AND lease_expires_at < now()
            ORDER BY lease_expires_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        ), rescued AS (
            UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL,
                attempt = CASE WHEN due.started THEN LEAST(jobs.attempt + 1, jobs.max_attempts)
                               ELSE jobs.attempt END,
                step_started_at = NULL, rescues = jobs.rescues + 1,
                run_at = now(), updated_at = now()
            FROM due
            WHERE jobs.id = due.id
            RETURNING jobs.id, jobs.step, jobs.attempt, jobs.lease_token, due.started
        ), logged AS (
            INSERT INTO job_history (job_id, step, attempt, outcome, error, error_class,
                                     lease_token)
            SELECT id, step, attempt, $2,
                CASE WHEN started THEN 'lease expired during the step'
                     ELSE 'lease expired before the step started' END,
                'lease_expired', lease_token
            FROM rescued
        )
        SELECT count(*) FROM rescued, LATERAL (SELECT pg_notify('tenantd_jobs', '')) AS n
        "#,
    )
    .bind(limit as i64)
    .bind(Outcome::Rescued.as_str())
    .fetch_one(executor)
    .await?;
    Ok(rescued as u64)
}

/// Makes waiting jobs runnable now (something they wait for has happened), merging what the
/// waker learnt into each job's `data`, and wakes idle workers. Jobs already due get the data
/// too; jobs no longer waiting are left alone. Returns how many were woken.
pub async fn wake(
    executor: impl PgExecutor<'_>,
    wakes: &[(Uuid, Value)],
) -> Result<u64, QueueError> {
    let ids: Vec<Uuid> = wakes.iter().map(|(id, _)| *id).collect();
    let data: Vec<Json<&Value>> = wakes.iter().map(|(_, d)| Json(d)).collect();
    let woken: i64 = sqlx::query_scalar(
        r#"
        WITH woken AS (
            UPDATE jobs SET run_at = least(jobs.run_at, now()), updated_at = now(),
                data = jobs.data || w.data
            FROM unnest($1::uuid[], $2::jsonb[]) AS w(id, data)
            WHERE jobs.id = w.id AND jobs.state = 'waiting'
            RETURNING jobs.id
        )
        SELECT count(*) FROM woken, LATERAL (SELECT pg_notify('tenantd_jobs', '')) AS n
        "#,
    )
    .bind(&ids)
    .bind(&data)
    .fetch_one(executor)
    .await?;
    Ok(woken as u64)
}

/// Starts a transaction that holds the job's row for as long as it lasts, after checking that the
/// lease is still ours. Writes a step makes to other tables (the tenant's row) go through it, so
/// they are fenced like the step's own outcome.
pub async fn fenced<'c>(
    conn: &'c mut PgConnection,
    lease: Lease,
) -> Result<Transaction<'c, Postgres>, QueueError> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let held: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE id = $1 AND lease_token = $2 AND state = 'running' FOR UPDATE",
    )
    .bind(lease.job_id)
    .bind(lease.token)
    .fetch_optional(&mut *tx)
    .await?;
    match held {
        Some(_) => Ok(tx),
        None => Err(QueueError::LeaseLost(lease.job_id)),
    }
}

/// When the next scheduled job becomes runnable, if any.
pub async fn next_run_at(
    executor: impl PgExecutor<'_>,
) -> Result<Option<DateTime<Utc>>, QueueError> {
    Ok(
        sqlx::query_scalar("SELECT min(run_at) FROM jobs WHERE state IN ('queued', 'waiting')")
            .fetch_one(executor)
            .await?,
    )
}
