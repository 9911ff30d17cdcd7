//! The worker's writes of step starts and outcomes: the queue's batches, with a
//! `tenantd.job.failed` event for every job a batch ends failed, written in the batch's own
//! transaction (the events last).

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::queue::{self, Batched, Batcher, Completion, JobState, Lease, QueueError, Record};
use crate::store::events::{self, EventType, NewEvent};

/// One record of the worker's batches.
#[derive(Debug, Clone)]
pub struct Outcome(pub Record);

/// Records steps' starts and outcomes, and the failures' events.
pub type Completer = Batcher<Outcome>;

impl Batched for Outcome {
    fn job_id(&self) -> Uuid {
        self.0.job_id()
    }

    async fn write(pool: &PgPool, batch: &[Self]) -> Result<Vec<Uuid>, QueueError> {
        let records: Vec<Record> = batch.iter().map(|o| o.0.clone()).collect();
        let failing: Vec<&Completion> = records
            .iter()
            .filter_map(|r| match r {
                Record::Outcome(c) if c.state == JobState::Failed => Some(&**c),
                _ => None,
            })
            .collect();
        if failing.is_empty() {
            let mut conn = pool.acquire().await?;
            return queue::write_records(&mut conn, &records).await;
        }
        let mut tx = pool.begin().await?;
        let held = queue::write_records(&mut tx, &records).await?;
        let mut told = Vec::new();
        for c in failing
            .into_iter()
            .filter(|c| held.contains(&c.lease.job_id))
        {
            let Some(job) = queue::get_job(&mut *tx, c.lease.job_id).await? else {
                continue;
            };
            let tenant = job.tenant_id.as_ref().map(|t| t.to_string());
            told.push(NewEvent {
                kind: EventType::JobFailed,
                subject: job.id.to_string(),
                tenant_id: tenant.clone(),
                data: json!({
                    "id": job.id,
                    "kind": job.kind,
                    "tenant_id": tenant,
                    "step": c.history_step,
                    "attempt": c.history_attempt,
                    "error": job.error,
                    "error_class": c.error_class,
                }),
            });
        }
        events::record(&mut tx, &told).await?;
        tx.commit().await?;
        Ok(held)
    }
}

impl Completer {
    /// Records one completion durably. `Ok(true)`: written; `Ok(false)`: the lease was lost and
    /// nothing was written.
    pub async fn complete(&self, completion: Completion) -> Result<bool, QueueError> {
        self.send(Outcome(Record::Outcome(Box::new(completion))))
            .await
    }

    /// Records durably that the step of a claimed job starts now. `Ok(false)`: the lease was
    /// lost, and the step must not run.
    pub async fn start(&self, lease: Lease) -> Result<bool, QueueError> {
        self.send(Outcome(Record::Start(lease))).await
    }
}
