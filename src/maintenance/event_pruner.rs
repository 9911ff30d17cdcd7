//! Event retention: on the leader, lifecycle events older than `TENANTD_EVENT_RETENTION`
//! (default 30 days) are deleted in batches, for at most a couple of seconds a round. A reader
//! whose cursor is older than the oldest event kept simply gets the oldest kept next.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use sqlx::PgPool;
use tracing::debug;

use super::service::{RoundError, Service};
use crate::store::events;

/// Events one statement deletes.
const BATCH: i64 = 5000;
/// Longest a round keeps deleting.
const ROUND_BUDGET: Duration = Duration::from_secs(2);

pub struct EventPruner {
    pool: PgPool,
    retention: Option<Duration>,
    every: Duration,
}

impl EventPruner {
    /// Hourly rounds.
    pub fn new(pool: PgPool, retention: Option<Duration>) -> Self {
        EventPruner::with_rounds(pool, retention, Duration::from_secs(3600))
    }

    /// Rounds `every` so often (tests).
    pub fn with_rounds(pool: PgPool, retention: Option<Duration>, every: Duration) -> Self {
        EventPruner {
            pool,
            retention,
            every,
        }
    }
}

#[async_trait]
impl Service for EventPruner {
    fn name(&self) -> &'static str {
        "event_pruner"
    }

    /// Off when events are kept forever.
    fn every(&self) -> Duration {
        self.retention.map_or(Duration::ZERO, |_| self.every)
    }

    async fn lead(&self, term: &super::Term) -> Result<(), RoundError> {
        let Some(retention) = self.retention else {
            return Ok(());
        };
        let before = Utc::now() - chrono::Duration::from_std(retention)?;
        let started = Instant::now();
        let mut total = 0;
        loop {
            // Fenced: a leader whose term is over deletes nothing.
            let mut tx = term.fence(&self.pool).await?;
            let pruned = events::prune_some(&mut *tx, before, BATCH).await?;
            tx.commit().await?;
            total += pruned;
            if pruned < BATCH as u64 || started.elapsed() > ROUND_BUDGET {
                break;
            }
        }
        debug!(pruned = total, took = ?started.elapsed(), "pruned old events");
        Ok(())
    }
}
