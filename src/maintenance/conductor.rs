//! The rollout conductor: on the leader, every `TENANTD_ROLLOUT_ROUND` (250ms), one round of the
//! running schema rollout ([`crate::rollouts::conduct`]): the next tenants start, the rollout
//! halts or ends. A round with no rollout running is one query.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;

use super::service::{RoundError, Service};
use super::term::Term;
use crate::rollouts::conduct;

pub struct Conductor {
    pool: PgPool,
    every: Duration,
    max_attempts: i32,
}

impl Conductor {
    pub fn new(pool: PgPool, every: Duration, max_attempts: i32) -> Self {
        Conductor {
            pool,
            every,
            max_attempts,
        }
    }
}

#[async_trait]
impl Service for Conductor {
    fn name(&self) -> &'static str {
        "rollout_conductor"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn lead(&self, term: &Term) -> Result<(), RoundError> {
        // Fenced: the round's transaction holds the leadership epoch, so a leader whose term
        // is over starts no migration.
        conduct::advance_in(term.fence(&self.pool).await?, self.max_attempts).await?;
        Ok(())
    }
}
