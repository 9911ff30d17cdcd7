//! Putting jobs into the queue, reading them back, and cancelling them.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::job::{Job, Outcome, QueueError};
use super::read::{active_job, get_job};

/// A job to enqueue. `step` is the workflow's first step.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub tenant_id: Option<String>,
    pub step: String,
    pub args: Value,
    pub priority: i16,
    pub run_at: Option<DateTime<Utc>>,
    pub max_attempts: i32,
    /// Written on the job's `enqueued` history row: what people should know about why it was
    /// asked for.
    pub note: Option<String>,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, step: impl Into<String>, max_attempts: i32) -> Self {
        NewJob {
            kind: kind.into(),
            tenant_id: None,
            step: step.into(),
            args: Value::Object(Default::default()),
            priority: 0,
            run_at: None,
            max_attempts,
            note: None,
        }
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    pub fn tenant(mut self, tenant_id: impl AsRef<str>) -> Self {
        self.tenant_id = Some(tenant_id.as_ref().to_owned());
        self
    }

    pub fn args(mut self, args: Value) -> Self {
        self.args = args;
        self
    }
}

/// What an idempotent enqueue did.
#[derive(Debug, Clone)]
pub enum Enqueued {
    /// A new job was created.
    Created(Job),
    /// The tenant already had an active job; nothing was enqueued.
    Existing(Job),
}

impl Enqueued {
    pub fn job(&self) -> &Job {
        match self {
            Enqueued::Created(job) | Enqueued::Existing(job) => job,
        }
    }

    pub fn into_job(self) -> Job {
        match self {
            Enqueued::Created(job) | Enqueued::Existing(job) => job,
        }
    }
}

const INSERT_JOB: &str = r#"
WITH inserted AS (
    INSERT INTO jobs (id, kind, tenant_id, step, args, priority, run_at, max_attempts)
    VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, now()), $8)
    ON CONFLICT (tenant_id)
        WHERE tenant_id IS NOT NULL AND state IN ('queued', 'running', 'waiting') DO NOTHING
    RETURNING *
), logged AS (
    INSERT INTO job_history (job_id, step, attempt, outcome, note)
    SELECT id, step, 0, $9, $10 FROM inserted
)
SELECT * FROM inserted
"#;

/// Enqueues one job. Pass a transaction to make the enqueue part of the caller's work.
///
/// Idempotent per tenant: while the tenant has an active job, that job is returned and nothing is
/// enqueued. The partial unique index decides, so concurrent callers get one job.
pub async fn enqueue(conn: &mut PgConnection, job: NewJob) -> Result<Enqueued, QueueError> {
    loop {
        let inserted = sqlx::query_as::<_, Job>(INSERT_JOB)
            .bind(Uuid::new_v4())
            .bind(&job.kind)
            .bind(&job.tenant_id)
            .bind(&job.step)
            .bind(Json(&job.args))
            .bind(job.priority)
            .bind(job.run_at)
            .bind(job.max_attempts)
            .bind(Outcome::Enqueued.as_str())
            .bind(&job.note)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(created) = inserted {
            return Ok(Enqueued::Created(created));
        }
        let tenant = job
            .tenant_id
            .as_deref()
            .expect("only a tenant's job can conflict");
        if let Some(existing) = active_job(&mut *conn, tenant).await? {
            return Ok(Enqueued::Existing(existing));
        }
        // The active job finished between our insert and our read: try again.
    }
}

/// Enqueues many jobs in one statement. Jobs whose tenant already has an active job are skipped;
/// returns the ids of the jobs created.
pub async fn enqueue_batch(
    executor: impl PgExecutor<'_>,
    jobs: &[NewJob],
) -> Result<Vec<Uuid>, QueueError> {
    let ids: Vec<Uuid> = jobs.iter().map(|_| Uuid::new_v4()).collect();
    let kinds: Vec<&str> = jobs.iter().map(|j| j.kind.as_str()).collect();
    let tenants: Vec<Option<&str>> = jobs.iter().map(|j| j.tenant_id.as_deref()).collect();
    let steps: Vec<&str> = jobs.iter().map(|j| j.step.as_str()).collect();
    let args: Vec<Json<&Value>> = jobs.iter().map(|j| Json(&j.args)).collect();
    let priorities: Vec<i16> = jobs.iter().map(|j| j.priority).collect();
    let run_ats: Vec<Option<DateTime<Utc>>> = jobs.iter().map(|j| j.run_at).collect();
    let max_attempts: Vec<i32> = jobs.iter().map(|j| j.max_attempts).collect();
    let created = sqlx::query_scalar::<_, Uuid>(
        r#"
        WITH inserted AS (
            INSERT INTO jobs (id, kind, tenant_id, step, args, priority, run_at, max_attempts)
            SELECT id, kind, tenant_id, step, args, priority, COALESCE(run_at, now()), max_attempts
            FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[],
                        $6::smallint[], $7::timestamptz[], $8::int[])
                AS t(id, kind, tenant_id, step, args, priority, run_at, max_attempts)
            ON CONFLICT (tenant_id)
                WHERE tenant_id IS NOT NULL AND state IN ('queued', 'running', 'waiting')
                DO NOTHING
            RETURNING id, step
        ), logged AS (
            INSERT INTO job_history (job_id, step, attempt, outcome)
            SELECT id, step, 0, $9 FROM inserted
        )
        SELECT id FROM inserted
        "#,
    )
    .bind(&ids)
    .bind(&kinds)
    .bind(&tenants)
    .bind(&steps)
    .bind(&args)
    .bind(&priorities)
    .bind(&run_ats)
    .bind(&max_attempts)
    .bind(Outcome::Enqueued.as_str())
    .fetch_all(executor)
    .await?;
    Ok(created)
}

/// Asks a queued or waiting job to stop. The next worker to claim it (at once: `run_at` moves to
/// now) runs the workflow's compensation instead of the step, and the job ends `cancelled`.
/// Cancelling a job that already has the request is a no-op that returns it.
pub async fn cancel(conn: &mut PgConnection, id: Uuid) -> Result<Job, QueueError> {
    let updated = sqlx::query_as::<_, Job>(
        r#"
        WITH cancelled AS (
            UPDATE jobs SET cancel_requested = true, run_at = now(), state = 'queued',
                updated_at = now()
            WHERE id = $1 AND state IN ('queued', 'waiting') AND NOT cancel_requested
            RETURNING *
        ), logged AS (
            INSERT INTO job_history (job_id, step, attempt, outcome)
            SELECT id, step, attempt, $2 FROM cancelled
        ), woken AS (
            SELECT pg_notify('tenantd_jobs', '') FROM cancelled
        )
        SELECT * FROM cancelled, (SELECT count(*) FROM woken) AS w
        "#,
    )
    .bind(id)
    .bind(Outcome::CancelRequested.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(job) = updated {
        return Ok(job);
    }
    match get_job(&mut *conn, id).await? {
        None => Err(QueueError::NotFound(id)),
        Some(job) if job.cancel_requested => Ok(job),
        Some(job) => Err(QueueError::WrongState {
            id,
            state: job.state.as_str(),
            action: "cancel",
        }),
    }
}
