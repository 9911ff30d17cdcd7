//! Maintenance: periodic work one process does for the whole fleet. The processes sharing a
//! control database elect a leader ([`leader`]); each [`Service`] runs its rounds on the
//! leader, and what it does elsewhere (usually nothing) on the others. A round on the leader is
//! given the leader's [`Term`]: it is dropped unfinished the moment the term ends, and its
//! writes go through [`Term::fence`]. Adding a service is a small file that implements
//! [`Service`], added in `app.rs`.

pub mod audit_pruner;
pub mod conductor;
pub mod event_pruner;
pub mod instance_poller;
pub mod leader;
pub mod pool_keeper;
pub mod pruner;
pub mod reconciler;
pub mod rescuer;
pub mod service;
pub mod snapshot_cleaner;
pub mod term;

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, warn};

pub use audit_pruner::AuditPruner;
pub use conductor::Conductor;
pub use event_pruner::EventPruner;
pub use instance_poller::InstancePoller;
pub use leader::{Election, lead_once};
pub use pool_keeper::PoolKeeper;
pub use pruner::Pruner;
pub use reconciler::Reconciler;
pub use rescuer::Rescuer;
pub use service::{RoundError, Service};
pub use snapshot_cleaner::SnapshotCleaner;
pub use term::{FenceError, Limits, Term};

/// The services of this process and how it stands for election.
pub struct Maintenance {
    pool: PgPool,
    me: String,
    election: Election,
    services: Vec<Arc<dyn Service>>,
}

impl Maintenance {
    /// `me` names this process; it stands for election as `election` says.
    pub fn new(pool: PgPool, me: impl Into<String>, election: Election) -> Self {
        Maintenance {
            pool,
            me: me.into(),
            election,
            services: Vec::new(),
        }
    }

    pub fn with(mut self, service: impl Service) -> Self {
        self.services.push(Arc::new(service));
        self
    }

    /// Runs the election and every service until `stop`; the task ends when all have.
    pub fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let (leading, watch) = watch::channel(None);
        let mut tasks = JoinSet::new();
        tasks.spawn(leader::elect(
            self.pool,
            self.me,
            self.election,
            leading,
            stop.clone(),
        ));
        for service in self.services {
            if !service.every().is_zero() {
                tasks.spawn(rounds(service, watch.clone(), stop.clone()));
            }
        }
        tokio::spawn(async move { while tasks.join_next().await.is_some() {} })
    }
}

/// A service's rounds: as the leader or not, every interval, and at once on becoming leader.
/// A round on the leader is dropped unfinished as soon as its term ends.
async fn rounds(
    service: Arc<dyn Service>,
    mut leading: watch::Receiver<Option<Term>>,
    stop: CancellationToken,
) {
    let span = info_span!("maintenance", service = service.name());
    loop {
        let term = leading.borrow_and_update().clone();
        let round = async {
            let Some(term) = &term else {
                return service.follow().await;
            };
            tokio::select! {
                biased;
                _ = term.lost().cancelled() => {
                    crate::metrics::record_maintenance_round(service.name(), "stopped");
                    warn!(epoch = term.epoch(), "no longer the leader: round dropped unfinished");
                    Ok(())
                }
                result = service.lead(term) => {
                    let ok = if result.is_ok() { "ok" } else { "error" };
                    crate::metrics::record_maintenance_round(service.name(), ok);
                    result
                }
            }
        };
        if let Err(e) = round.instrument(span.clone()).await {
            span.in_scope(
                || warn!(error = %e, "maintenance round failed; trying again next round"),
            );
        }
        // Spread the rounds of many processes a little.
        let pause = service.every().mul_f64(1.0 + rand::random::<f64>() * 0.1);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
            changed = leading.changed() => if changed.is_err() { break },
        }
    }
}
