//! Job retention: on the leader, finished jobs older than `TENANTD_JOB_RETENTION` (default 30
//! days) are deleted with their history, in batches of a few hundred, for at most a couple of
//! seconds a round, through the control schema's `prune_jobs()` (the only path that may delete
//! history). A tenant's latest job always stays; rows a claim holds are skipped.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::PgPool;
use tracing::debug;

use super::service::{RoundError, Service};
use super::term::Term;
use crate::queue;

/// Jobs one statement deletes.
const BATCH: i32 = 500;
/// Longest a round keeps deleting.
const ROUND_BUDGET: Duration = Duration::from_secs(2);

pub struct Pruner {
    pool: PgPool,
    retention: Option<Duration>,
}

impl Pruner {
    pub fn new(pool: PgPool, retention: Option<Duration>) -> Self {
        Pruner { pool, retention }
    }
}

#[async_trait]
impl Service for Pruner {
    fn name(&self) -> &'static str {
        "pruner"
    }

    /// A tenth of the retention, between a second and an hour; off when jobs are kept forever.
    fn every(&self) -> Duration {
        self.retention.map_or(Duration::ZERO, |r| {
            (r / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600))
        })
    }

    async fn lead(&self, term: &Term) -> Result<(), RoundError> {
        let Some(retention) = self.retention else {
            return Ok(());
        };
        let started = Instant::now();
        let mut total = 0;
        loop {
            let mut tx = term.fence(&self.pool).await?;
            let pruned = queue::prune(&mut *tx, retention, BATCH).await?;
            tx.commit().await?;
            total += pruned;
            crate::metrics::record_pruned_jobs(pruned);
            if pruned < BATCH as u64 || started.elapsed() > ROUND_BUDGET {
                break;
            }
        }
        debug!(pruned = total, took = ?started.elapsed(), "pruned finished jobs");
        Ok(())
    }
}
