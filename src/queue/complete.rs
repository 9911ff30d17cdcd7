//! Recording step outcomes (and step starts). Each record is fenced by the lease token, and
//! records from many concurrent steps are written together: one statement updates the jobs and
//! appends their history rows, which is what lets the queue drain thousands of short jobs a
//! second.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor, PgPool};
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use super::job::{JobState, Lease, Outcome, QueueError};
use super::lease::mark_started;

/// The new state of one job after a step, and the history row that explains it.
#[derive(Debug, Clone)]
pub struct Completion {
    pub lease: Lease,
    /// `Running` keeps the lease: the same worker goes on with `step` at once.
    pub state: JobState,
    pub step: String,
    pub run_at: Option<DateTime<Utc>>,
    pub attempt: i32,
    /// Merged into the job's `data` (`jsonb ||`).
    pub data: Option<Value>,
    /// Set as the job's error when present (the cause of a failure); never cleared.
    pub error: Option<String>,
    /// The history row: the step that ran, how it ended, when it started.
    pub history_step: String,
    pub history_attempt: i32,
    pub outcome: Outcome,
    pub history_error: Option<String>,
    /// What kind of failure `history_error` is (a short stable label).
    pub error_class: Option<&'static str>,
    /// What the step did that the history should say (beside its outcome).
    pub note: Option<String>,
    pub started_at: DateTime<Utc>,
    pub worker: String,
}

/// Writes a batch of completions in one statement. Returns the ids of the jobs whose lease was
/// still held (the others were taken over, and nothing was written about them).
///
/// A job must appear once in a batch, and in one batch at a time: two statements writing
/// shared rows in different orders could deadlock.
pub async fn complete_batch(
    executor: impl PgExecutor<'_>,
    batch: &[Completion],
) -> Result<Vec<Uuid>, QueueError> {
    let ids: Vec<Uuid> = batch.iter().map(|c| c.lease.job_id).collect();
    let tokens: Vec<i64> = batch.iter().map(|c| c.lease.token).collect();
    let states: Vec<&str> = batch.iter().map(|c| c.state.as_str()).collect();
    let steps: Vec<&str> = batch.iter().map(|c| c.step.as_str()).collect();
    let run_ats: Vec<Option<DateTime<Utc>>> = batch.iter().map(|c| c.run_at).collect();
    let attempts: Vec<i32> = batch.iter().map(|c| c.attempt).collect();
    let empty = Value::Object(Default::default());
    let data: Vec<Json<&Value>> = batch
        .iter()
        .map(|c| Json(c.data.as_ref().unwrap_or(&empty)))
        .collect();
    let errors: Vec<Option<&str>> = batch.iter().map(|c| c.error.as_deref()).collect();
    let h_steps: Vec<&str> = batch.iter().map(|c| c.history_step.as_str()).collect();
    let h_attempts: Vec<i32> = batch.iter().map(|c| c.history_attempt).collect();
    let outcomes: Vec<&str> = batch.iter().map(|c| c.outcome.as_str()).collect();
    let classes: Vec<Option<&str>> = batch.iter().map(|c| c.error_class).collect();
    let h_errors: Vec<Option<&str>> = batch.iter().map(|c| c.history_error.as_deref()).collect();
    let started: Vec<DateTime<Utc>> = batch.iter().map(|c| c.started_at).collect();
    let workers: Vec<&str> = batch.iter().map(|c| c.worker.as_str()).collect();
    let notes: Vec<Option<&str>> = batch.iter().map(|c| c.note.as_deref()).collect();
    Ok(sqlx::query_scalar::<_, Uuid>(
        r#"
        WITH input AS (
            SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[],
                $5::timestamptz[], $6::int[], $7::jsonb[], $8::text[], $9::text[], $10::int[],
                $11::text[], $12::text[], $13::timestamptz[], $14::text[], $15::text[],
                $16::text[])
            AS t(id, token, state, step, run_at, attempt, data, error, h_step, h_attempt,
                 outcome, h_error, started_at, worker, error_class, note)
        ), done AS (
            UPDATE jobs j SET
                state = i.state::job_state,
                step = i.step,
                run_at = COALESCE(i.run_at, j.run_at),
                attempt = i.attempt,
                data = j.data || i.data,
                error = COALESCE(i.error, j.error),
                begun = true,
                step_started_at = CASE WHEN i.state = 'running' THEN now() END,
                lease_owner = CASE WHEN i.state = 'running' THEN j.lease_owner END,
                lease_expires_at = CASE WHEN i.state = 'running' THEN j.lease_expires_at END,
                finished_at = CASE WHEN i.state IN ('succeeded', 'failed', 'cancelled')
                              THEN now() END,
                updated_at = now()
            FROM input i
            WHERE j.id = i.id AND j.lease_token = i.token AND j.state = 'running'
            RETURNING j.id
        ), logged AS (
            INSERT INTO job_history (job_id, step, attempt, outcome, started_at, error,
                                     error_class, lease_token, worker, note)
            SELECT i.id, i.h_step, i.h_attempt, i.outcome, least(i.started_at, now()),
                   i.h_error, i.error_class, i.token, i.worker, i.note
            FROM input i JOIN done d ON d.id = i.id
        )
        SELECT id FROM done
        "#,
    )
    .bind(&ids)
    .bind(&tokens)
    .bind(&states)
    .bind(&steps)
    .bind(&run_ats)
    .bind(&attempts)
    .bind(&data)
    .bind(&errors)
    .bind(&h_steps)
    .bind(&h_attempts)
    .bind(&outcomes)
    .bind(&h_errors)
    .bind(&started)
    .bind(&workers)
    .bind(&classes)
    .bind(&notes)
    .fetch_all(executor)
    .await?)
}

/// Deletes up to `batch` finished jobs that ended more than `retention` ago (never a tenant's
/// latest job), with their history, through the control schema's guarded `prune_jobs()`;
/// returns how many. Rows other transactions hold are skipped, so the claim path never waits.
pub async fn prune(
    executor: impl PgExecutor<'_>,
    retention: std::time::Duration,
    batch: i32,
) -> Result<u64, QueueError> {
    let seconds = retention.as_secs_f64();
    let pruned: i32 = sqlx::query_scalar("SELECT prune_jobs(make_interval(secs => $1), $2)")
        .bind(seconds)
        .bind(batch)
        .fetch_one(executor)
        .await?;
    Ok(pruned.max(0) as u64)
}

/// How many times the batching task yields to let more requests arrive before writing.
const GATHER_YIELDS: usize = 4;

/// Batches written at the same time.
const WRITERS: usize = 2;

/// Something written about a held job, many at once in one statement.
pub trait Batched: Clone + Send + Sync + 'static {
    fn job_id(&self) -> Uuid;
    /// Writes the batch; returns the ids of the jobs whose lease was still held.
    fn write(
        pool: &PgPool,
        batch: &[Self],
    ) -> impl std::future::Future<Output = Result<Vec<Uuid>, QueueError>> + Send;
}

/// What a worker records about a job it holds: a step's start or its outcome. Both kinds go
/// in the same batches.
#[derive(Debug, Clone)]
pub enum Record {
    Start(Lease),
    Outcome(Box<Completion>),
}

impl Batched for Record {
    fn job_id(&self) -> Uuid {
        match self {
            Record::Start(lease) => lease.job_id,
            Record::Outcome(c) => c.lease.job_id,
        }
    }

    async fn write(pool: &PgPool, batch: &[Self]) -> Result<Vec<Uuid>, QueueError> {
        let mut conn = pool.acquire().await?;
        write_records(&mut conn, batch).await
    }
}

/// Writes a batch of records on `conn` (in the caller's transaction, if it began one); returns
/// the ids of the jobs whose lease was still held.
pub async fn write_records(
    conn: &mut PgConnection,
    batch: &[Record],
) -> Result<Vec<Uuid>, QueueError> {
    {
        let mut starts = Vec::new();
        let mut outcomes = Vec::new();
        for record in batch {
            match record {
                Record::Start(lease) => starts.push(*lease),
                Record::Outcome(c) => outcomes.push((**c).clone()),
            }
        }
        // Starts are rare (only rescued jobs wait for theirs), so they have their own statement.
        let mut held = Vec::new();
        if !outcomes.is_empty() {
            held = complete_batch(&mut *conn, &outcomes).await?;
        }
        if !starts.is_empty() {
            held.extend(mark_started(&mut *conn, &starts).await?);
        }
        Ok(held)
    }
}

type Request<T> = (T, oneshot::Sender<Result<bool, String>>);

/// Writes one batch and answers each of its senders.
async fn write<T: Batched>(pool: &PgPool, pending: Vec<Request<T>>) {
    let batch: Vec<T> = pending.iter().map(|(c, _)| c.clone()).collect();
    tracing::trace!(size = batch.len(), "writing a batch");
    match T::write(pool, &batch).await {
        Ok(applied) => {
            for (item, reply) in pending {
                let held = applied.contains(&item.job_id());
                let _ = reply.send(Ok(held));
            }
        }
        Err(e) => {
            let message = e.to_string();
            for (_, reply) in pending {
                let _ = reply.send(Err(message.clone()));
            }
        }
    }
}

/// A task that gathers the writes of concurrently running steps and makes them in batches:
/// whatever arrived while the previous batch was being written goes in the next. At low load a
/// write goes alone, at once; under load, batches grow by themselves.
pub struct Batcher<T> {
    tx: mpsc::Sender<Request<T>>,
}

impl<T> Clone for Batcher<T> {
    fn clone(&self) -> Self {
        Batcher {
            tx: self.tx.clone(),
        }
    }
}

/// Records steps' starts and outcomes.
pub type Completer = Batcher<Record>;

impl<T: Batched> Batcher<T> {
    /// Starts the batching task. It ends when every clone is dropped.
    pub fn spawn(pool: PgPool, max_batch: usize) -> Self {
        let (tx, mut rx) = mpsc::channel::<Request<T>>(max_batch * 4);
        tokio::spawn(async move {
            // Two writes may be in flight: while one batch is written, the next one gathers
            // and goes out as soon as it is ready, instead of queueing behind the first.
            let writers = Arc::new(Semaphore::new(WRITERS));
            loop {
                let writer = writers.clone().acquire_owned().await.expect("never closed");
                let mut pending: Vec<Request<T>> = Vec::with_capacity(max_batch);
                if rx.recv_many(&mut pending, max_batch).await == 0 {
                    break;
                }
                // Steps of one claim tend to finish together: give the ones finishing right
                // now a moment to join this batch. Yielding costs microseconds, not a timer tick.
                for _ in 0..GATHER_YIELDS {
                    if pending.len() >= max_batch {
                        break;
                    }
                    tokio::task::yield_now().await;
                    while pending.len() < max_batch {
                        match rx.try_recv() {
                            Ok(request) => pending.push(request),
                            Err(_) => break,
                        }
                    }
                }
                let pool = pool.clone();
                tokio::spawn(async move {
                    write(&pool, pending).await;
                    drop(writer);
                });
            }
        });
        Batcher { tx }
    }

    /// Writes one item durably. `Ok(true)`: written; `Ok(false)`: the lease was lost and
    /// nothing was written.
    pub async fn send(&self, item: T) -> Result<bool, QueueError> {
        let job_id = item.job_id();
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((item, reply))
            .await
            .map_err(|_| QueueError::Database(sqlx::Error::PoolClosed))?;
        match answer.await {
            Ok(Ok(held)) => Ok(held),
            Ok(Err(message)) => Err(QueueError::Database(sqlx::Error::Protocol(message))),
            Err(_) => Err(QueueError::LeaseLost(job_id)),
        }
    }
}

impl Completer {
    /// Records one completion durably. `Ok(true)`: written; `Ok(false)`: the lease was lost and
    /// nothing was written.
    pub async fn complete(&self, completion: Completion) -> Result<bool, QueueError> {
        self.send(Record::Outcome(Box::new(completion))).await
    }

    /// Records durably that the step of a claimed job starts now. `Ok(false)`: the lease was
    /// lost, and the step must not run.
    pub async fn start(&self, lease: Lease) -> Result<bool, QueueError> {
        self.send(Record::Start(lease)).await
    }
}
