//! The leases this worker holds: heartbeats renew them all every third of a lease, and a watch
//! abandons the step of a job whose lease could not be renewed in time (the database unreachable,
//! too slow), before the lease expires, so that no step runs here once the rescuer may hand its
//! job to another worker.
//!
//! A lease's expiry is set by the database's clock (`now() + lease`) when the claim or a
//! heartbeat reaches it, which is after this process sent the statement. So the lease lasts at
//! least `lease` from when the last renewal was *sent*: the watch drops the step at that instant
//! plus the lease, less `TENANTD_LEASE_MARGIN`, unless an answer renewed it meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::warn;
use uuid::Uuid;

use crate::queue::{self, Lease};

/// A job this process holds.
pub(super) struct HeldJob {
    pub token: i64,
    /// Cancels the task running the job.
    pub abort: CancellationToken,
    /// When its step started here, if it has (for the heartbeat to record).
    pub started_at: Option<DateTime<Utc>>,
    /// When the statement that last set its lease's expiry (its claim, or a heartbeat that
    /// renewed it) was sent.
    pub renewed: Instant,
}

/// Leases this process holds.
pub(super) type Held = Arc<Mutex<HashMap<Uuid, HeldJob>>>;

pub(super) fn leases_of(held: &Held) -> Vec<(Lease, Option<DateTime<Utc>>)> {
    held.lock()
        .unwrap()
        .iter()
        .map(|(id, job)| {
            let lease = Lease {
                job_id: *id,
                token: job.token,
            };
            (lease, job.started_at)
        })
        .collect()
}

/// How long a lease lasts, and how long before its expiry a step that could not renew it stops.
#[derive(Debug, Clone, Copy)]
pub(super) struct Terms {
    pub lease: Duration,
    pub margin: Duration,
}

impl Terms {
    /// How long after a renewal was sent the step may still run without another: the lease
    /// less the margin, at least half the lease (the settings allow no larger margin).
    fn keep(&self) -> Duration {
        self.lease.saturating_sub(self.margin).max(self.lease / 2)
    }
}

/// Renews every held lease every third of a lease until `stop`. Each heartbeat runs on a task of
/// its own, so that one stuck on a dead connection does not hold back the next; it gives up at
/// the latest when the leases it would renew are abandoned anyway.
pub(super) async fn heartbeats(pool: PgPool, held: Held, terms: Terms, stop: CancellationToken) {
    let every = terms.lease / 3;
    let mut beats = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
        while beats.try_join_next().is_some() {}
        let leases = leases_of(&held);
        if leases.is_empty() {
            continue;
        }
        beats.spawn(beat(pool.clone(), held.clone(), leases, terms));
    }
    beats.abort_all();
}

/// One heartbeat: renews what is still ours, abandons what is not.
async fn beat(pool: PgPool, held: Held, leases: Vec<(Lease, Option<DateTime<Utc>>)>, terms: Terms) {
    let sent = Instant::now();
    let answer =
        tokio::time::timeout(terms.keep(), queue::heartbeat(&pool, &leases, terms.lease)).await;
    let beats = match answer {
        Ok(Ok(beats)) => beats,
        Ok(Err(e)) => {
            warn!(error = %e, "heartbeat failed");
            return;
        }
        Err(_) => {
            warn!(timeout = ?terms.keep(), "heartbeat did not answer");
            return;
        }
    };
    let ours: HashMap<Uuid, bool> = beats.iter().map(|b| (b.job_id, b.renewed)).collect();
    let mut map = held.lock().unwrap();
    for (lease, _) in &leases {
        let Some(job) = map.get_mut(&lease.job_id) else {
            continue;
        };
        if job.token != lease.token {
            continue;
        }
        match ours.get(&lease.job_id) {
            // Heartbeats may answer out of order: a lease is as fresh as its latest renewal.
            Some(true) => job.renewed = job.renewed.max(sent),
            Some(false) => {}
            None if !job.abort.is_cancelled() => {
                warn!(job.id = %lease.job_id, "lease lost; abandoning the step");
                crate::metrics::record_step_abandoned("lost");
                job.abort.cancel();
            }
            None => {}
        }
    }
}

/// Abandons, until `stop`, the step of every held job whose lease was not renewed within the
/// lease less the margin: its task drops the step and writes nothing (it could not anyway), and
/// the job waits for the rescuer once its lease has expired.
pub(super) async fn expire_unrenewed(held: Held, terms: Terms, stop: CancellationToken) {
    let keep = terms.keep();
    loop {
        let now = Instant::now();
        // A job claimed from now on is renewed now or later: nothing is due before this.
        let mut next = now + keep;
        {
            let map = held.lock().unwrap();
            for (id, job) in map.iter().filter(|(_, j)| !j.abort.is_cancelled()) {
                let due = job.renewed + keep;
                if due <= now {
                    warn!(
                        job.id = %id,
                        unrenewed_for = ?now - job.renewed,
                        "lease could not be renewed before it expires; abandoning the step \
                         (the rescuer returns the job once the lease has expired)"
                    );
                    crate::metrics::record_step_abandoned("unrenewed");
                    job.abort.cancel();
                } else {
                    next = next.min(due);
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
    }
}
