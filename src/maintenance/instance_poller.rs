//! The instance poller: on the leader, every interval, looks at every instance a job waits for
//! (a step that declares [`InstanceWait`](crate::workflow::InstanceWait)) with batched
//! DescribeDBInstances calls, and wakes the jobs whose instance reached a state their step acts
//! on, handing them what it saw. So waiting costs one describe per 100 instances per interval,
//! whatever the number of waiting tenants, and no task, connection or worker slot per tenant.
//!
//! It records each round in `instance_poller`; the other processes read when the last round
//! was and, while it is recent, leave the looking to it (their wait steps do not describe).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Value, json};
use sqlx::PgPool;
use tracing::debug;
use uuid::Uuid;

use super::service::{RoundError, Service};
use super::term::Term;
use crate::cloud::rds::InstanceInfo;
use crate::queue;
use crate::store::leadership;
use crate::store::tenants;
use crate::workflow::instance_watch::PollerSeen;
use crate::workflow::{AwsContext, InstanceWait, Registry};

/// Polls the instances the registry's wait steps wait for.
pub struct InstancePoller {
    pool: PgPool,
    aws: AwsContext,
    me: String,
    /// (kind, step) → what it waits for.
    waits: HashMap<(&'static str, &'static str), InstanceWait>,
}

impl InstancePoller {
    pub fn new(pool: PgPool, aws: AwsContext, registry: &Registry, me: impl Into<String>) -> Self {
        let waits = registry
            .instance_waits()
            .into_iter()
            .map(|(kind, step, wait)| ((kind, step), wait))
            .collect();
        InstancePoller {
            pool,
            aws,
            me: me.into(),
            waits,
        }
    }
}

#[async_trait]
impl Service for InstancePoller {
    fn name(&self) -> &'static str {
        "instance_poller"
    }

    fn every(&self) -> Duration {
        self.aws.watch.poll_interval()
    }

    /// One round: the waiting jobs' instances, described in batches; wake those with news.
    async fn lead(&self, term: &Term) -> Result<(), RoundError> {
        let t = &self.aws;
        let steps: Vec<(&str, &str)> = self.waits.keys().copied().collect();
        let jobs = queue::waiting_at(&self.pool, &steps).await?;
        let tenants: Vec<String> = jobs.iter().filter_map(|j| j.tenant_id.clone()).collect();
        let recorded = tenants::recorded_instances(&self.pool, &tenants).await?;
        // A tenant's instance is the one its record names (else the derived one); a standby's
        // job builds the instance named after the standby.
        let instance_of = |j: &queue::Waiting| match (&j.tenant_id, &j.standby) {
            (Some(tenant), _) => recorded
                .get(tenant)
                .cloned()
                .unwrap_or_else(|| t.derived_instance_id(tenant)),
            (None, Some(standby)) => standby.clone(),
            (None, None) => String::new(),
        };
        let ids: Vec<String> = jobs
            .iter()
            .map(instance_of)
            .filter(|id| !id.is_empty())
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
        let at = Utc::now();
        let wake: Vec<(Uuid, Value)> = jobs
            .iter()
            .filter_map(|j| {
                let wait = self.waits.get(&(j.kind.as_str(), j.step.as_str()))?;
                let instance = seen.get(&instance_of(j)).cloned().flatten();
                wait.actionable(instance.as_ref()).then(|| {
                    let handed = PollerSeen {
                        step: j.step.clone(),
                        at,
                        instance,
                    };
                    (j.id, json!({ "poller_seen": handed }))
                })
            })
            .collect();
        t.watch.health().round_done();
        let mut tx = term.fence(&self.pool).await?;
        if !wake.is_empty() {
            let woken = queue::wake(&mut *tx, &wake).await?;
            debug!(woken, "instance poll woke waiting jobs");
        }
        leadership::record_poll_round(&mut tx, &self.me).await?;
        tx.commit().await?;
        debug!(jobs = jobs.len(), "instance poll");
        crate::metrics::record_poll_round();
        crate::metrics::record_poller(true);
        Ok(())
    }

    async fn follow(&self) -> Result<(), RoundError> {
        if let Some(age) = leadership::last_poll_round_age(&self.pool).await? {
            self.aws.watch.health().polled_elsewhere(age);
        }
        crate::metrics::record_poller(self.aws.watch.poller_active());
        Ok(())
    }
}
