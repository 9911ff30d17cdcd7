//! A term of maintenance leadership: the epoch a process took when it won the leader's lock,
//! a token cancelled the moment it can no longer confirm that lock, and the fenced transaction
//! every write of a leader service goes through.
//!
//! Each process that wins the lock raises the epoch in `maintenance_leadership` by one. A fenced
//! transaction holds that row `FOR SHARE` and goes on only while the epoch is still its term's;
//! the next leader's raise waits for such transactions to end. So a write of a leader that lost
//! its lock (partitioned from the database, paused, slow) either commits before another process
//! begins its term or is refused. The server ends a fenced transaction it has not heard from for
//! a lease (`idle_in_transaction_session_timeout`) or whose statement runs too long
//! (`statement_timeout`, [`Limits`]), so a partitioned leader cannot hold the next term back for
//! longer than that.

use std::time::Duration;

use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;

use crate::store::leadership;

/// Why a leader's write was not allowed.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    #[error("leadership term {ours} is over: another process leads in term {current}")]
    Deposed { ours: i64, current: i64 },
    #[error("this process stopped leading (term {0}): it could not confirm its lock")]
    Lost(i64),
    #[error("cannot reach the control database: {0}")]
    Db(#[from] sqlx::Error),
}

/// How long the server lets a fenced transaction be: idle, and in one statement.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub idle: Duration,
    pub statement: Duration,
}

impl Limits {
    /// Idle for a lease; a statement twice that, at least 5 s (a prune batch, a rescue).
    pub fn for_lease(lease: Duration) -> Self {
        Limits {
            idle: lease,
            statement: (lease * 2).max(Duration::from_secs(5)),
        }
    }

    /// The longest a new term may wait for the fenced transactions of the one before.
    pub fn wait(&self) -> Duration {
        self.idle + self.statement
    }
}

/// This process's leadership, from winning the lock until it could not confirm it.
#[derive(Debug, Clone)]
pub struct Term {
    epoch: i64,
    limits: Limits,
    lost: CancellationToken,
}

impl Term {
    pub(super) fn new(epoch: i64, limits: Limits) -> Self {
        Term {
            epoch,
            limits,
            lost: CancellationToken::new(),
        }
    }

    /// The leadership epoch: higher for every later term, across all processes.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Cancelled as soon as this process stops leading; rounds in progress are dropped then.
    pub fn lost(&self) -> &CancellationToken {
        &self.lost
    }

    pub(super) fn end(&self) {
        self.lost.cancel();
    }

    /// Begins the transaction a leader service writes in: refused when this term is over, or
    /// when another process has begun a later one. Commit it to make the writes count.
    pub async fn fence(&self, pool: &PgPool) -> Result<Transaction<'static, Postgres>, FenceError> {
        if self.lost.is_cancelled() {
            return Err(FenceError::Lost(self.epoch));
        }
        let mut tx = pool.begin().await?;
        let ms = |d: Duration| format!("{}ms", d.as_millis().max(1));
        sqlx::query(
            "SELECT set_config('idle_in_transaction_session_timeout', $1, true),
                    set_config('statement_timeout', $2, true)",
        )
        .bind(ms(self.limits.idle))
        .bind(ms(self.limits.statement))
        .execute(&mut *tx)
        .await?;
        let current = leadership::hold_epoch(&mut tx).await?;
        if current != self.epoch {
            return Err(FenceError::Deposed {
                ours: self.epoch,
                current,
            });
        }
        Ok(tx)
    }
}

/// Begins a new term for `me`, on the session that just won the lock; returns its epoch. Waits
/// for the fenced transactions of earlier terms to end.
pub(super) async fn begin(conn: &mut PgConnection, me: &str) -> Result<i64, sqlx::Error> {
    leadership::raise_epoch(conn, me).await
}

/// The current term: its epoch and leader (`None` before anyone led).
pub async fn current(pool: &PgPool) -> Result<(i64, Option<String>), sqlx::Error> {
    leadership::current(pool).await
}
