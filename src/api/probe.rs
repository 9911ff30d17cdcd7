//! The operations endpoints apart from the work: `/readyz` and `/metrics` read the control
//! database through a small pool of their own (never the worker's), and through caches: the
//! readiness check at most once a second, the maintenance leader's fleet-wide gauges at most
//! once per `TENANTD_FLEET_GAUGES_INTERVAL`, whatever the number of scrapes. Concurrent
//! scrapes of a stale cache wait for one read, not one each. This process's own metrics are
//! rendered at each scrape (from memory: no database).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::metrics::{self, Fleet};
use crate::queue;

/// How long a readiness answer is reused.
const READY_FOR: Duration = Duration::from_secs(1);
/// Longest a probe's read of the control database may take.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Cheap to clone.
#[derive(Clone)]
pub struct Probe(Arc<Inner>);

struct Inner {
    pool: PgPool,
    fleet_every: Duration,
    ready: Mutex<Option<(Instant, bool)>>,
    fleet: Mutex<Option<(Instant, Fleet)>>,
}

impl Probe {
    /// `pool` is the probes' own; the fleet's gauges are read at most once per `fleet_every`.
    pub fn new(pool: PgPool, fleet_every: Duration) -> Self {
        Probe(Arc::new(Inner {
            pool,
            fleet_every,
            ready: Mutex::new(None),
            fleet: Mutex::new(None),
        }))
    }

    /// The Prometheus text of this process's metrics, with the fleet's gauges (as last read)
    /// on the leader.
    pub async fn metrics(&self) -> Result<String, prometheus::Error> {
        let fleet = self.fleet().await;
        metrics::render(fleet.as_ref())
    }

    /// Whether the control database answers (as it did within the last second).
    pub async fn ready(&self) -> bool {
        let mut cached = self.0.ready.lock().await;
        if let Some((at, ok)) = *cached
            && at.elapsed() < READY_FOR
        {
            return ok;
        }
        let check = sqlx::query("SELECT 1").execute(&self.0.pool);
        let ok = match tokio::time::timeout(READ_TIMEOUT, check).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "not ready: control database unreachable");
                false
            }
            Err(_) => {
                tracing::warn!("not ready: the control database did not answer in time");
                false
            }
        };
        *cached = Some((Instant::now(), ok));
        ok
    }

    /// The fleet-wide gauges, on the maintenance leader only: as last read, or read now when
    /// older than the interval. A failed read keeps the last figures (or none).
    pub async fn fleet(&self) -> Option<Fleet> {
        if !metrics::is_leader() {
            return None;
        }
        let mut cached = self.0.fleet.lock().await;
        if let Some((at, fleet)) = cached.as_ref()
            && at.elapsed() < self.0.fleet_every
        {
            return Some(fleet.clone());
        }
        metrics::record_fleet_read();
        let read = queue::fleet_stats(&self.0.pool);
        match tokio::time::timeout(READ_TIMEOUT, read).await {
            Ok(Ok(stats)) => {
                let fleet = Fleet {
                    jobs: stats
                        .jobs
                        .into_iter()
                        .map(|(kind, st, n)| (kind, st.as_str(), n))
                        .collect(),
                    queue_depth: stats.depth,
                    oldest_waiting: stats.oldest_waiting,
                };
                *cached = Some((Instant::now(), fleet.clone()));
                Some(fleet)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "fleet gauges not read; showing the last ones");
                cached.as_ref().map(|(_, f)| f.clone())
            }
            Err(_) => {
                tracing::warn!("fleet gauges not read in time; showing the last ones");
                cached.as_ref().map(|(_, f)| f.clone())
            }
        }
    }
}
