//! The instance poller: one task that looks at every instance a job waits for (created and not
//! yet available, or deleted and not yet gone) with batched DescribeDBInstances calls, and wakes
//! the jobs whose instance reached a state their step acts on, handing them what it saw. So
//! waiting costs one describe per 100 instances per interval, whatever the number of waiting
//! tenants, and no task, connection or worker slot per waiting tenant.
//!
//! Every process runs the task, but only one polls at a time: the one holding a session
//! advisory lock in the control database. The others try for the lock each interval and read
//! when the poller last finished a round; while that is recent, their wait steps leave the
//! looking to it. A poller that dies releases the lock with its connection, and another process
//! takes over within an interval. So the describe calls do not grow with the replicas either.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::StepContext;
use super::tenancy::Tenancy;
use crate::cloud::CloudError;
use crate::cloud::rds::{InstanceInfo, UNRECOVERABLE};
use crate::tenants::{DEPROVISION, PROVISION};

/// The steps that wait for an instance, and the ones among them that wait for it to go.
const WAIT_STEPS: &[&str] = &["wait_available", "undo_instance", "delete_instance"];
const GONE_STEPS: &[&str] = &["undo_instance", "delete_instance"];

/// Whether a poller is at work: when this process last finished a round, and when the poller
/// of another process did, as far as this process learnt.
#[derive(Debug, Default)]
pub struct PollerHealth(Mutex<Rounds>);

#[derive(Debug, Default)]
struct Rounds {
    here: Option<Instant>,
    elsewhere: Option<Instant>,
}

/// The advisory lock whose holder is the poller (any constant no other tool of the control
/// database uses: "tenantd" in ASCII).
const POLLER_LOCK: i64 = 0x0074_656e_616e_7464;

/// The key under which a woken job finds what the poller saw.
const SEEN: &str = "poller_seen";

/// How old what the poller handed a woken job may be for its step to act on it. Jobs woken in
/// a burst may queue for a while; an instance's endpoint does not change, and a step that finds
/// the instance busy after all retries.
const HANDED_MAX_AGE: Duration = Duration::from_secs(60);

/// What a wait step learns from [`Tenancy::look`].
#[derive(Debug)]
pub enum Look {
    /// The instance as recently seen (`None`: it does not exist).
    Seen(Option<InstanceInfo>),
    /// The poller runs and has not seen the instance yet: it wakes the job when it has
    /// something to act on.
    Later,
}

impl PollerHealth {
    fn round_done(&self) {
        self.0.lock().unwrap().here = Some(Instant::now());
    }

    /// Another process is the poller; its last round ended `age` ago.
    fn polled_elsewhere(&self, age: Duration) {
        let mut rounds = self.0.lock().unwrap();
        rounds.elsewhere = Instant::now().checked_sub(age);
        rounds.here = None;
    }

    /// Whether a round succeeded within `max_age`, here or in another process.
    fn active(&self, max_age: Duration) -> bool {
        let rounds = self.0.lock().unwrap();
        [rounds.here, rounds.elsewhere]
            .into_iter()
            .flatten()
            .any(|at| at.elapsed() <= max_age)
    }
}

impl Tenancy {
    /// How old an observation may be for a wait step to trust it.
    fn fresh(&self) -> Duration {
        self.settings.rds_poll_interval * 2 + Duration::from_secs(1)
    }

    /// Whether a poller (here or in another process) is running and succeeding.
    pub fn poller_active(&self) -> bool {
        self.poller.active(self.fresh())
    }

    /// The instance, for a wait step: what the poller handed the job when it woke it, when
    /// fresh; else (when `may_wait`, a poller runs and has not handed the job anything for this
    /// step) [`Look::Later`]; else one DescribeDBInstances. A "does not exist" from the poller
    /// is confirmed by a describe of its own (it may predate the create). Nothing seen for
    /// another job or step is used: the instance may have changed since (a later step of the
    /// same tenant may have switched on deletion protection).
    pub async fn look(
        &self,
        cx: &StepContext<'_>,
        id: &str,
        may_wait: bool,
    ) -> Result<Look, CloudError> {
        let handed = handed_over(cx, id);
        if let Some(Handed::Fresh(info)) = handed {
            return Ok(Look::Seen(Some(info)));
        }
        if handed.is_none() && may_wait && self.poller_active() {
            return Ok(Look::Later);
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

/// What the poller handed a job it woke for its current step.
enum Handed {
    /// Seen recently enough to act on.
    Fresh(InstanceInfo),
    /// Too old, or "does not exist": the step looks for itself.
    Stale,
}

fn handed_over(cx: &StepContext<'_>, id: &str) -> Option<Handed> {
    let seen = cx.job.data.0.get(SEEN)?;
    if seen["step"].as_str() != Some(cx.job.step.as_str()) {
        return None;
    }
    let at: DateTime<Utc> = seen["at"].as_str()?.parse().ok()?;
    let max_age = chrono::Duration::from_std(HANDED_MAX_AGE).unwrap_or_default();
    let info: Option<InstanceInfo> = serde_json::from_value(seen["instance"].clone()).ok();
    Some(match info {
        Some(info) if info.identifier == id && Utc::now() - at <= max_age => Handed::Fresh(info),
        _ => Handed::Stale,
    })
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

/// Until `stop`: competes for the poller's lock each interval; while holding it, runs a round
/// every interval; while another process holds it, notes when that one last finished a round.
/// `me` names this process in the poller's record (the worker id).
pub async fn run(pool: PgPool, tenancy: Tenancy, me: String, stop: CancellationToken) {
    let interval = tenancy.settings.rds_poll_interval;
    if interval.is_zero() {
        return;
    }
    // The session that holds (or tries for) the lock; the lock goes with it.
    let mut lock: Option<PgConnection> = None;
    let mut leading = false;
    loop {
        let started = Instant::now();
        match elect(&pool, &mut lock, leading).await {
            Ok(true) => {
                if !leading {
                    info!(poller = %me, "this process now polls the instances");
                    leading = true;
                }
                match round(&pool, &tenancy).await {
                    Ok(()) => {
                        crate::metrics::record_poll_round();
                        if let Err(e) = record_round(&pool, &me).await {
                            warn!(error = %e, "could not record the poll round");
                        }
                    }
                    Err(e) => warn!(error = %e, "instance poll failed; trying again next interval"),
                }
            }
            Ok(false) => {
                if leading {
                    warn!(poller = %me, "lost the poller's lock; another process polls now");
                    leading = false;
                }
                match last_round_age(&pool).await {
                    Ok(Some(age)) => tenancy.poller.polled_elsewhere(age),
                    Ok(None) => {}
                    Err(e) => warn!(error = %e, "could not read the poller's last round"),
                }
            }
            Err(e) => {
                leading = false;
                lock = None;
                warn!(error = %e, "poller election failed; trying again next interval");
            }
        }
        crate::metrics::record_poller(leading, tenancy.poller_active());
        let pause = interval.saturating_sub(started.elapsed());
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
    }
    if let Some(conn) = lock {
        let _ = conn.close().await;
    }
}

/// Whether this process holds the poller's lock, taking it if it is free. A holder checks that
/// its session is still alive: if it died, so did the lock.
async fn elect(
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
            .bind(POLLER_LOCK)
            .fetch_one(&mut *conn)
            .await
    };
    if result.is_err() {
        *lock = None;
    }
    result
}

async fn record_round(pool: &PgPool, me: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO instance_poller (leader, round_at) VALUES ($1, now())
         ON CONFLICT (singleton) DO UPDATE SET leader = $1, round_at = now()",
    )
    .bind(me)
    .execute(pool)
    .await?;
    Ok(())
}

/// How long ago the poller (whichever process it is) finished its last round.
async fn last_round_age(pool: &PgPool) -> Result<Option<Duration>, sqlx::Error> {
    let age: Option<f64> = sqlx::query_scalar(
        "SELECT greatest(EXTRACT(EPOCH FROM now() - round_at)::float8, 0) FROM instance_poller",
    )
    .fetch_optional(pool)
    .await?;
    Ok(age.map(Duration::from_secs_f64))
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
    // Running and queued jobs at a wait step get their turn once they wait.
    let jobs: Vec<(Uuid, String, String)> = sqlx::query_as(
        "SELECT id, step, tenant_id FROM jobs
         WHERE state = 'waiting' AND kind = ANY($1) AND step = ANY($2)
           AND tenant_id IS NOT NULL",
    )
    .bind([PROVISION, DEPROVISION].map(str::to_string).to_vec())
    .bind(WAIT_STEPS.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    let ids: Vec<String> = jobs
        .iter()
        .map(|(_, _, tenant)| t.instance_id(tenant))
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
    // A woken job may run in any process: it carries what was seen, for its step.
    let now = Utc::now().to_rfc3339();
    let wake: Vec<(Uuid, Value)> = jobs
        .iter()
        .filter_map(|(id, step, tenant)| {
            let instance = seen[&t.instance_id(tenant)].as_ref();
            actionable(step, instance).then(|| {
                let handed = json!({ SEEN: { "step": step, "at": now, "instance": instance } });
                (*id, handed)
            })
        })
        .collect();
    t.poller.round_done();
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
    fn a_poller_counts_as_active_for_a_while_after_its_last_round() {
        let p = PollerHealth::default();
        assert!(!p.active(Duration::from_secs(60)));
        p.round_done();
        assert!(p.active(Duration::from_secs(60)));
        assert!(!p.active(Duration::ZERO));
        p.polled_elsewhere(Duration::from_secs(30));
        assert!(p.active(Duration::from_secs(60)));
        assert!(!p.active(Duration::from_secs(10)));
    }
}
