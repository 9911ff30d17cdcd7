//! Audit retention: on the leader, audit events older than `TENANTD_AUDIT_RETENTION` (default
//! 400 days) are deleted in batches, for at most a couple of seconds a round, through the
//! control schema's `prune_audit_events()`, the only delete `audit_events` allows (and never of
//! an event younger than a day).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::PgPool;
use tracing::debug;

use super::service::{RoundError, Service};
use crate::audit;

/// Events one statement deletes.
const BATCH: i32 = 1000;
/// Longest a round keeps deleting.
const ROUND_BUDGET: Duration = Duration::from_secs(2);

pub struct AuditPruner {
    pool: PgPool,
    retention: Option<Duration>,
}

impl AuditPruner {
    pub fn new(pool: PgPool, retention: Option<Duration>) -> Self {
        AuditPruner { pool, retention }
    }
}

#[async_trait]
impl Service for AuditPruner {
    fn name(&self) -> &'static str {
        "audit_pruner"
    }

    /// Hourly; off when events are kept forever.
    fn every(&self) -> Duration {
        self.retention
            .map_or(Duration::ZERO, |_| Duration::from_secs(3600))
    }

    async fn lead(&self, term: &super::Term) -> Result<(), RoundError> {
        let Some(retention) = self.retention else {
            return Ok(());
        };
        let started = Instant::now();
        let mut total = 0;
        loop {
            // Fenced: a leader whose term is over deletes nothing.
            let mut tx = term.fence(&self.pool).await?;
            let pruned = audit::prune(&mut *tx, retention, BATCH).await?;
            tx.commit().await?;
            total += pruned;
            if pruned < BATCH as u64 || started.elapsed() > ROUND_BUDGET {
                break;
            }
        }
        debug!(pruned = total, took = ?started.elapsed(), "pruned old audit events");
        Ok(())
    }
}
