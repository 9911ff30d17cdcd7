//! Electing the maintenance leader: the process holding a session advisory lock in the control
//! database. Every process tries for the lock at each election; the holder checks that its
//! session is alive. When the leader's process dies, its session and lock go with it, and
//! another process takes over at its next election.

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The advisory lock whose holder leads ("tenantd" in ASCII; the instance poller of earlier
/// releases elected itself on the same lock, so one process polls during a rolling upgrade).
const LEADER_LOCK: i64 = 0x0074_656e_616e_7464;

/// Holds or competes for the lock until `stop`, every `every`, publishing whether this process
/// leads. `me` names the process in logs.
pub async fn elect(
    pool: PgPool,
    me: String,
    every: Duration,
    leading: watch::Sender<bool>,
    stop: CancellationToken,
) {
    // The session that holds (or tries for) the lock; the lock goes with it.
    let mut lock: Option<PgConnection> = None;
    loop {
        let was = *leading.borrow();
        let now = match try_lead(&pool, &mut lock, was).await {
            Ok(leads) => leads,
            Err(e) => {
                warn!(error = %e, "leader election failed; trying again");
                lock = None;
                false
            }
        };
        if now != was {
            if now {
                info!(leader = %me, "this process now leads maintenance");
            } else {
                warn!(leader = %me, "this process no longer leads maintenance");
            }
            leading.send_replace(now);
        }
        crate::metrics::record_leadership(now);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    leading.send_replace(false);
    crate::metrics::record_leadership(false);
    if let Some(conn) = lock {
        let _ = conn.close().await;
    }
}

/// Whether this process holds the lock, taking it if it is free. A holder checks that its
/// session is still alive: if it died, so did the lock.
async fn try_lead(
    pool: &PgPool,
    lock: &mut Option<PgConnection>,
    leading: bool,
) -> Result<bool, sqlx::Error> {
    if lock.is_none() {
        *lock = Some(pool.acquire().await?.detach());
    }
    let conn = lock.as_mut().expect("just set");
    let result = if leading {
        conn.ping().await.map(|()| true)
    } else {
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LEADER_LOCK)
            .fetch_one(&mut *conn)
            .await
    };
    if result.is_err() {
        *lock = None;
    }
    result
}
