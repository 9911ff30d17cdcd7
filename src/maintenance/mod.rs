//! Maintenance: periodic work one process does for the whole fleet. The processes sharing a
//! control database elect a leader ([`leader`]); each [`Service`] runs its rounds on the
//! leader, and what it does elsewhere (usually nothing) on the others. Adding a service is a
//! small file that implements [`Service`], added in `app.rs`.

pub mod audit_pruner;
pub mod conductor;
pub mod instance_poller;
pub mod leader;
pub mod pool_keeper;
pub mod pruner;
pub mod reconciler;
pub mod rescuer;
pub mod service;
pub mod snapshot_cleaner;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, warn};

pub use audit_pruner::AuditPruner;
pub use conductor::Conductor;
pub use instance_poller::InstancePoller;
pub use pool_keeper::PoolKeeper;
pub use pruner::Pruner;
pub use reconciler::Reconciler;
pub use rescuer::Rescuer;
pub use service::{RoundError, Service};
pub use snapshot_cleaner::SnapshotCleaner;

/// The services of this process and how often it stands for election.
pub struct Maintenance {
    pool: PgPool,
    me: String,
    elect_every: Duration,
    services: Vec<Arc<dyn Service>>,
}

impl Maintenance {
    /// `me` names this process; it stands for election every `elect_every`.
    pub fn new(pool: PgPool, me: impl Into<String>, elect_every: Duration) -> Self {
        Maintenance {
            pool,
            me: me.into(),
            elect_every,
            services: Vec::new(),
        }
    }

    pub fn with(mut self, service: impl Service) -> Self {
        self.services.push(Arc::new(service));
        self
    }

    /// Runs the election and every service until `stop`; the task ends when all have.
    pub fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let (leading, watch) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(leader::elect(
            self.pool,
            self.me,
            self.elect_every,
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
async fn rounds(
    service: Arc<dyn Service>,
    mut leading: watch::Receiver<bool>,
    stop: CancellationToken,
) {
    let span = info_span!("maintenance", service = service.name());
    loop {
        let leads = *leading.borrow_and_update();
        let round = async {
            if leads {
                let result = service.lead().await;
                crate::metrics::record_maintenance_round(service.name(), result.is_ok());
                result
            } else {
                service.follow().await
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
