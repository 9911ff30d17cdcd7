//! The warm pool's keeper: on the leader, keeps `TENANTD_WARM_POOL` standbys per tier. Each
//! round it replaces available standbys past `TENANTD_POOL_MAX_AGE` (make before break: the
//! old one is retired once enough younger ones are available), retires those of tiers no
//! longer pooled, then starts new ones for what is missing: a row `creating` and a `standby`
//! job, in one transaction, so that a crash leaves either both or neither. Claims and failed
//! standbys leave a gap the next round fills.
//!
//! Tenants' own creates go first: standby jobs run at a lower priority; no standby is started
//! while a tenant waits for quota; a round starts at most its share (`TENANTD_POOL_RDS_SHARE`)
//! of the free DB instances and of the RDS requests this process may make in a round.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::PgPool;
use tracing::{info, warn};

use super::service::{RoundError, Service};
use super::term::Term;
use crate::queue::{self, NewJob};
use crate::store::standbys::{self, Standby, StandbyId, StandbyState};
use crate::workflow::provision::{Provision, ProvisionArgs};
use crate::workflow::standby::{self, StandbyStep};
use crate::workflow::{AwsContext, StepNames, Workflow};

/// Below tenants' jobs (priority 0) in the worker's claims.
const STANDBY_PRIORITY: i16 = -1;
/// RDS requests a standby's creation makes, about: the create, the describes of its wait
/// (shared with others by the poller), a modify at most.
const CALLS_PER_STANDBY: f64 = 3.0;

pub struct PoolKeeper {
    pool: PgPool,
    aws: AwsContext,
    every: Duration,
    /// RDS requests per second this process may make.
    rds_rate: f64,
    max_attempts: i32,
}

impl PoolKeeper {
    pub fn new(pool: PgPool, aws: AwsContext, rds_rate: f64, max_attempts: i32) -> Self {
        let s = &aws.settings;
        // About as often as the poller looks at instances. Without a pool a round is one
        // query (standbys left from an earlier setting are retired).
        let every = s
            .rds_poll_interval
            .clamp(Duration::from_secs(1), Duration::from_secs(30));
        PoolKeeper {
            pool,
            aws,
            every,
            rds_rate,
            max_attempts,
        }
    }

    /// How many standbys this round may start: its share of the RDS requests of a round and
    /// of the free DB instances; none while a tenant waits for quota.
    async fn budget(&self) -> Result<usize, RoundError> {
        let t = &self.aws;
        let share = t.settings.pool_rds_share;
        if queue::marked(&self.pool, Provision::KIND, "quota_wait").await? > 0 {
            return Ok(0);
        }
        let per_round = (self.rds_rate * share * self.every.as_secs_f64() / CALLS_PER_STANDBY)
            .floor()
            .max(1.0) as usize;
        let room = match t.quotas.room(0).await {
            Ok(room) if room.full.is_some() => return Ok(0),
            Ok(room) if room.instances == i64::MAX => per_round,
            Ok(room) => ((room.instances as f64 * share).floor() as usize).min(per_round),
            Err(e) => {
                warn!(error = %e, "cannot read the account's RDS quotas; one standby at most");
                1
            }
        };
        Ok(room)
    }

    /// Retires a standby (no claim can take it from now on) and enqueues its removal, in one
    /// transaction, fenced by the leader's term.
    async fn retire(&self, term: &Term, s: &Standby, why: &str) -> Result<bool, RoundError> {
        let mut tx = term.fence(&self.pool).await?;
        if !standbys::retire(&mut tx, &s.id, why).await? {
            return Ok(false);
        }
        let args = ProvisionArgs {
            tier: s.tier.clone(),
            standby: Some(s.id.clone()),
        };
        let mut job = NewJob::new(
            standby::KIND,
            StandbyStep::UndoInstance.name(),
            self.max_attempts,
        )
        .args(serde_json::to_value(&args)?);
        job.priority = STANDBY_PRIORITY;
        queue::enqueue(&mut tx, job).await?;
        tx.commit().await?;
        info!(standby = %s.id, tier = %s.tier, why, "warm-pool standby retired");
        Ok(true)
    }

    /// Records a new standby and enqueues its creation, in one transaction, fenced by the
    /// leader's term (which the row records).
    async fn start(&self, term: &Term, tier: &str) -> Result<StandbyId, RoundError> {
        let id = StandbyId::generate(&self.aws.settings);
        let mut tx = term.fence(&self.pool).await?;
        standbys::insert(&mut tx, &id, tier, term.epoch()).await?;
        let args = ProvisionArgs {
            tier: tier.to_string(),
            standby: Some(id.clone()),
        };
        let mut job = NewJob::new(
            standby::KIND,
            StandbyStep::Credentials.name(),
            self.max_attempts,
        )
        .args(serde_json::to_value(&args)?);
        job.priority = STANDBY_PRIORITY;
        queue::enqueue(&mut tx, job).await?;
        tx.commit().await?;
        info!(standby = %id, tier, "warm-pool standby started");
        Ok(id)
    }
}

#[async_trait]
impl Service for PoolKeeper {
    fn name(&self) -> &'static str {
        "pool_keeper"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn lead(&self, term: &Term) -> Result<(), RoundError> {
        let s = &self.aws.settings;
        let max_age = chrono::Duration::from_std(s.pool_max_age)?;
        let now = Utc::now();
        let mut live: BTreeMap<String, usize> = BTreeMap::new();
        let mut young_available: BTreeMap<String, usize> = BTreeMap::new();
        let mut too_old = Vec::new();
        for standby in standbys::unclaimed(&self.pool).await? {
            let wanted = s.warm_pool.get(&standby.tier).copied().unwrap_or(0) as usize;
            let counted = live.entry(standby.tier.clone()).or_default();
            match standby.state {
                // Not counted, so that its replacement starts; it stays claimable until the
                // replacement is available (no gap in the pool meanwhile).
                StandbyState::Available if now - standby.created_at > max_age && wanted > 0 => {
                    too_old.push(standby);
                }
                StandbyState::Available | StandbyState::Creating if *counted >= wanted => {
                    // More than wanted (the setting shrank): an available one goes; a creating
                    // one is retired once available.
                    if standby.state == StandbyState::Available {
                        self.retire(term, &standby, "not wanted: TENANTD_WARM_POOL is smaller")
                            .await?;
                    }
                }
                StandbyState::Available | StandbyState::Creating => {
                    *counted += 1;
                    if standby.state == StandbyState::Available {
                        *young_available.entry(standby.tier.clone()).or_default() += 1;
                    }
                }
                StandbyState::Retiring | StandbyState::Claimed => {}
            }
        }
        for standby in too_old {
            let wanted = s.warm_pool.get(&standby.tier).copied().unwrap_or(0) as usize;
            if young_available.get(&standby.tier).copied().unwrap_or(0) >= wanted {
                self.retire(term, &standby, "older than TENANTD_POOL_MAX_AGE")
                    .await?;
            }
        }
        let missing: Vec<(&str, usize)> = s
            .warm_pool
            .iter()
            .map(|(tier, wanted)| {
                let have = live.get(tier).copied().unwrap_or(0);
                (tier.as_str(), (*wanted as usize).saturating_sub(have))
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        if !missing.is_empty() {
            let mut budget = self.budget().await?;
            for (tier, n) in missing {
                for _ in 0..n.min(budget) {
                    self.start(term, tier).await?;
                    budget -= 1;
                }
            }
        }
        let figures: Vec<(String, &'static str, i64)> = standbys::figures(&self.pool)
            .await?
            .into_iter()
            .flat_map(|(tier, f)| {
                [
                    (tier.clone(), "available", f.available),
                    (tier.clone(), "creating", f.creating),
                    (tier, "retiring", f.retiring),
                ]
            })
            .collect();
        crate::metrics::record_pool_standbys(&figures);
        Ok(())
    }
}
