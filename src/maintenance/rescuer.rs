//! The lease rescuer: returns to the queue the jobs whose lease expired (their worker died or
//! hung), so that another worker takes them over.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use tracing::info;

use super::service::{RoundError, Service};
use super::term::Term;
use crate::queue;

/// Rescues expired leases every quarter lease (between 100 ms and 15 s).
pub struct Rescuer {
    pool: PgPool,
    every: Duration,
}

/// Most jobs one round returns.
const BATCH: usize = 1000;

impl Rescuer {
    pub fn new(pool: PgPool, lease: Duration) -> Self {
        Rescuer {
            pool,
            every: (lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(15)),
        }
    }
}

#[async_trait]
impl Service for Rescuer {
    fn name(&self) -> &'static str {
        "rescuer"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn lead(&self, term: &Term) -> Result<(), RoundError> {
        let mut tx = term.fence(&self.pool).await?;
        let rescued = queue::rescue_expired(&mut *tx, BATCH).await?;
        tx.commit().await?;
        if rescued > 0 {
            info!(rescued, "returned jobs with expired leases to the queue");
        }
        Ok(())
    }
}
