//! The instance poller: one task per process that looks at every instance a job waits for
//! (created and not yet available, or deleted and not yet gone) with batched
//! DescribeDBInstances calls, keeps what it saw for the wait steps, and wakes the jobs whose
//! instance reached a state their step acts on. So waiting costs one describe per 100
//! instances per interval, whatever the number of waiting tenants, and no task, connection or
//! worker slot per waiting tenant.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use uuid::Uuid;

use super::tenancy::Tenancy;
use crate::cloud::CloudError;
use crate::cloud::rds::{InstanceInfo, UNRECOVERABLE};
use crate::tenants::{DEPROVISION, PROVISION};

/// The steps that wait for an instance, and the ones among them that wait for it to go.
const WAIT_STEPS: &[&str] = &["wait_available", "undo_instance", "delete_instance"];
const GONE_STEPS: &[&str] = &["undo_instance", "delete_instance"];

/// What the last successful round saw, by instance id (`None`: the instance does not exist).
#[derive(Debug, Default)]
pub struct Observations(Mutex<Round>);

#[derive(Debug, Default)]
struct Round {
    at: Option<Instant>,
    seen: HashMap<String, Option<InstanceInfo>>,
}

/// What a wait step learns from [`Tenancy::look`].
#[derive(Debug)]
pub enum Look {
    /// The instance as recently seen (`None`: it does not exist).
    Seen(Option<InstanceInfo>),
    /// The poller runs and has not seen the instance yet: it wakes the job when it has
    /// something to act on.
    Later,
}

impl Observations {
    fn store(&self, seen: HashMap<String, Option<InstanceInfo>>) {
        *self.0.lock().unwrap() = Round {
            at: Some(Instant::now()),
            seen,
        };
    }

    /// The poller's last view of `id`, if its last round is younger than `max_age`.
    fn get(&self, id: &str, max_age: Duration) -> Option<Option<InstanceInfo>> {
        let round = self.0.lock().unwrap();
        match round.at {
            Some(at) if at.elapsed() <= max_age => round.seen.get(id).cloned(),
            _ => None,
        }
    }

    /// Whether a round succeeded within `max_age`.
    fn active(&self, max_age: Duration) -> bool {
        matches!(self.0.lock().unwrap().at, Some(at) if at.elapsed() <= max_age)
    }
}

impl Tenancy {
    /// How old an observation may be for a wait step to trust it.
    fn fresh(&self) -> Duration {
        self.settings.rds_poll_interval * 2 + Duration::from_secs(1)
    }

    /// Whether the poller is running and succeeding here.
    pub fn poller_active(&self) -> bool {
        self.observations.active(self.fresh())
    }

    /// The instance, for a wait step: the poller's fresh view when there is one, else (when
    /// `may_wait` and the poller runs) [`Look::Later`], else one DescribeDBInstances. A "does
    /// not exist" from the poller is confirmed by a describe of its own (it may predate the
    /// create).
    pub async fn look(&self, id: &str, may_wait: bool) -> Result<Look, CloudError> {
        match self.observations.get(id, self.fresh()) {
            Some(Some(info)) => return Ok(Look::Seen(Some(info))),
            None if may_wait && self.poller_active() => return Ok(Look::Later),
            _ => {}
        }
        Ok(Look::Seen(self.cloud.describe_db_instance(id).await?))
    }

    /// The pause of a wait step whose instance is not there yet: long when the poller will
    /// wake the job, growing from the base otherwise.
    pub fn wait_pause(&self, polls: u64) -> Duration {
        if self.poller_active() {
            self.settings.wait_max
        } else {
            self.wait_delay(polls)
        }
    }
}

/// Whether a job at `step` has something to do with its instance in this state.
fn actionable(step: &str, seen: Option<&InstanceInfo>) -> bool {
    let Some(info) = seen else {
        return true;
    };
    let status = info.status.as_str();
    if GONE_STEPS.contains(&step) {
        !matches!(status, "deleting" | "creating" | "modifying" | "backing-up")
    } else {
        status == "available" || status == "deleting" || UNRECOVERABLE.contains(&status)
    }
}

/// Runs rounds every poll interval until `stop`.
pub async fn run(pool: PgPool, tenancy: Tenancy, stop: CancellationToken) {
    let interval = tenancy.settings.rds_poll_interval;
    if interval.is_zero() {
        return;
    }
    loop {
        let started = Instant::now();
        if let Err(e) = round(&pool, &tenancy).await {
            warn!(error = %e, "instance poll failed; trying again next interval");
        }
        let pause = interval.saturating_sub(started.elapsed());
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error("reading the waiting jobs: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Cloud(#[from] CloudError),
    #[error("waking the jobs: {0}")]
    Queue(#[from] crate::queue::QueueError),
}

/// One round: the waiting jobs' instances, described in batches; wake those with news.
async fn round(pool: &PgPool, t: &Tenancy) -> Result<(), PollError> {
    let jobs: Vec<(Uuid, String, String, bool)> = sqlx::query_as(
        "SELECT id, step, tenant_id, state = 'waiting' AND run_at > now()
         FROM jobs
         WHERE state IN ('queued', 'running', 'waiting') AND kind = ANY($1)
           AND step = ANY($2) AND tenant_id IS NOT NULL",
    )
    .bind([PROVISION, DEPROVISION].map(str::to_string).to_vec())
    .bind(WAIT_STEPS.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    let ids: Vec<String> = jobs
        .iter()
        .map(|(_, _, tenant, _)| t.instance_id(tenant))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let found = if ids.is_empty() {
        Vec::new()
    } else {
        t.cloud.describe_db_instances_batch(&ids).await?
    };
    let mut seen: HashMap<String, Option<InstanceInfo>> =
        ids.into_iter().map(|id| (id, None)).collect();
    for info in found {
        if let Some(slot) = seen.get_mut(&info.identifier) {
            *slot = Some(info);
        }
    }
    let wake: Vec<Uuid> = jobs
        .iter()
        .filter(|(_, step, tenant, later)| {
            *later && actionable(step, seen[&t.instance_id(tenant)].as_ref())
        })
        .map(|(id, ..)| *id)
        .collect();
    t.observations.store(seen);
    if !wake.is_empty() {
        let woken = crate::queue::wake(pool, &wake).await?;
        debug!(woken, "instance poll woke waiting jobs");
    }
    debug!(jobs = jobs.len(), "instance poll");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(status: &str) -> InstanceInfo {
        InstanceInfo {
            identifier: "saas-a".into(),
            status: status.into(),
            endpoint: None,
            tags: vec![],
            deletion_protection: false,
            backup_retention_days: 0,
            backup_window: None,
            maintenance_window: None,
        }
    }

    #[test]
    fn a_creating_instance_wakes_nobody_and_an_available_one_wakes_its_waiter() {
        assert!(!actionable("wait_available", Some(&info("creating"))));
        assert!(actionable("wait_available", Some(&info("available"))));
        assert!(actionable("wait_available", Some(&info("storage-full"))));
        assert!(actionable("wait_available", None));
    }

    #[test]
    fn a_delete_wait_wakes_when_the_instance_is_gone_or_settled() {
        assert!(!actionable("undo_instance", Some(&info("deleting"))));
        assert!(!actionable("delete_instance", Some(&info("creating"))));
        assert!(actionable("delete_instance", Some(&info("available"))));
        assert!(actionable("undo_instance", None));
    }

    #[test]
    fn observations_expire() {
        let o = Observations::default();
        assert!(!o.active(Duration::from_secs(60)));
        o.store(HashMap::from([(
            "saas-a".to_string(),
            Some(info("creating")),
        )]));
        assert!(o.active(Duration::from_secs(60)));
        assert!(o.get("saas-a", Duration::from_secs(60)).is_some());
        assert!(o.get("saas-b", Duration::from_secs(60)).is_none());
        assert!(o.get("saas-a", Duration::ZERO).is_none());
    }
}
