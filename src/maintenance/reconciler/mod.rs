//! The reconciler: on the leader, every `TENANTD_RECONCILE_INTERVAL`, looks at every ready,
//! suspended, lost and degraded tenant without an active job and compares what AWS reports with
//! what the tenant should have (its tier's settings, its tags, its alarms, its secret, stopped
//! or running). What differs is recorded on the tenant (`drift`, `checked_at`); with
//! `TENANTD_REPAIR_DRIFT` a tenant with drift gets a reconcile job that repairs what tenantd
//! owns. An instance that is gone makes the tenant `lost`, one stuck in a state only people can
//! fix makes it `degraded`: neither is repaired (that would lose data or hide an incident). An
//! instance that no longer carries this deployment's ownership tags makes the tenant
//! `detached`: shown and counted in the drift metric, never repaired or re-tagged.
//!
//! What RDS runs is recorded as it is: a newer minor that RDS applied by itself is the tenant's
//! `engine_version` from then on, not drift (see [`crate::workflow::engine_version`]), and so
//! are RDS's pending maintenance actions (`pending_maintenance`).
//!
//! Cost: DescribeDBInstances and DescribePendingMaintenanceActions 100 ids a call, paced to
//! `TENANTD_RECONCILE_RDS_SHARE` of the RDS rate so that provisioning keeps the rest; alarms
//! (DescribeAlarms by name prefix, 100 a call) and secrets (ListSecrets by name prefix, 100 a
//! call) are looked at on alternate rounds, so that a round over 1,000 tenants makes 20 RDS
//! calls and at most 40 calls in all.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use sqlx::PgPool;
use tracing::{debug, info, warn};

use super::Term;
use super::service::{RoundError, Service};
use crate::queue;
use crate::store::tenants::{self as record, Tenant, TenantStatus};
use crate::tenant_db::{self};
use crate::tenants::{self, Findings, RepairRequest};
use crate::workflow::AwsContext;
use crate::workflow::engine_version;
use crate::workflow::reconcile::{self, Reason};

mod compare;
mod listing;

use compare::{Seen, group};
use listing::Observed;

/// Longest pause between two repairs of one tenant whose repairs keep failing, in rounds.
const MAX_BACKOFF_ROUNDS: u32 = 32;

pub struct Reconciler {
    pool: PgPool,
    aws: AwsContext,
    /// Seconds between two of this service's RDS calls.
    rds_pace: Duration,
    max_attempts: i32,
    rounds: AtomicU64,
}

/// What one round found and did, for the metrics, the log and the benchmark.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub tenants: usize,
    pub rds_calls: u32,
    pub cloudwatch_calls: u32,
    pub secrets_calls: u32,
    pub with_drift: usize,
    pub repairs: usize,
    pub lost: usize,
    pub degraded: usize,
    pub detached: usize,
}

impl Reconciler {
    /// `rds_rate`: this process's RDS requests per second, of which a round takes its share.
    pub fn new(pool: PgPool, aws: AwsContext, rds_rate: f64, max_attempts: i32) -> Self {
        let share = aws.settings.reconcile_rds_share;
        Reconciler {
            rds_pace: Duration::from_secs_f64(1.0 / (rds_rate * share).max(0.001)),
            pool,
            aws,
            max_attempts,
            rounds: AtomicU64::new(0),
        }
    }

    /// One round over every tenant to look at (outside leadership: benchmarks, tests).
    pub async fn round(&self) -> Result<RoundReport, RoundError> {
        self.round_in(None).await
    }

    /// A write transaction: fenced by the leader's term when there is one, so that a leader
    /// whose term is over records nothing and enqueues no repair.
    async fn begin(
        &self,
        term: Option<&Term>,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, RoundError> {
        Ok(match term {
            Some(term) => term.fence(&self.pool).await?,
            None => self.pool.begin().await?,
        })
    }

    async fn round_in(&self, term: Option<&Term>) -> Result<RoundReport, RoundError> {
        let started = Instant::now();
        let t = &self.aws;
        let s = &t.settings;
        let round = self.rounds.fetch_add(1, Ordering::Relaxed);
        let alarm_round = round.is_multiple_of(2);
        let busy = queue::tenants_with_active_jobs(&self.pool).await?;
        let tenants: Vec<Tenant> = record::reconcilable(&self.pool)
            .await?
            .into_iter()
            .filter(|t| !busy.contains(&t.id))
            .collect();
        let mut report = RoundReport {
            tenants: tenants.len(),
            ..RoundReport::default()
        };
        let Observed {
            instances,
            pending,
            alarms,
            secrets,
        } = self.observe(&tenants, alarm_round, &mut report).await?;
        let failures = if s.repair_drift {
            let repair = serde_json::json!({ "reason": "repair" });
            queue::failures_since_success(&self.pool, reconcile::KIND, &repair).await?
        } else {
            HashMap::new()
        };
        // The tenant schema as the migrations directory has it (read once a round).
        let catalog = match tenant_db::catalog(&s.tenant_migrations).await {
            Ok(c) => Some(c),
            Err(e) => {
                warn!(error = %e, "cannot read the tenant migrations; schema drift not checked");
                None
            }
        };
        let interval = s.reconcile_interval.unwrap_or(Duration::from_secs(600));
        let mut drift_fields: BTreeMap<String, i64> = BTreeMap::new();
        for tenant in &tenants {
            let Ok((_, tier)) = t.tier(&tenant.tier) else {
                continue;
            };
            let instance = instances.get(&t.instance_of(tenant));
            let seen = Seen {
                instance,
                pending: pending
                    .as_ref()
                    .map(|p| p.get(&t.instance_of(tenant)).cloned().unwrap_or_default()),
                alarms: alarms.as_ref(),
                secrets: secrets.as_ref(),
                schema: catalog.as_deref(),
            };
            let mut findings = self.look(tenant, tier, &seen);
            // What RDS runs and has pending is recorded as seen: a newer minor that RDS
            // applied is the tenant's version now, not drift.
            findings.engine_version = instance.and_then(|i| i.engine_version.clone());
            findings.pending_maintenance = instance.and(seen.pending.clone());
            findings.ca_certificate = instance.and_then(|i| i.ca_certificate.clone());
            let mut fields: Vec<&str> = findings.drift.iter().map(|d| group(&d.field)).collect();
            fields.dedup();
            for f in fields {
                *drift_fields.entry(f.to_string()).or_default() += 1;
            }
            match findings.status {
                TenantStatus::Lost => report.lost += 1,
                TenantStatus::Degraded => report.degraded += 1,
                TenantStatus::Detached => report.detached += 1,
                _ => {}
            }
            if !findings.drift.is_empty() {
                report.with_drift += 1;
            }
            let repair = self.repair_for(tenant, &findings, &failures, interval);
            let stored = tenant.drift.as_ref().map(|d| d.0.as_slice()).unwrap_or(&[]);
            let observed = findings
                .engine_version
                .as_ref()
                .is_some_and(|v| tenant.engine_version.as_ref() != Some(v))
                || findings
                    .pending_maintenance
                    .as_ref()
                    .is_some_and(|p| tenant.pending_maintenance.as_ref().map(|s| &s.0) != Some(p))
                || findings
                    .ca_certificate
                    .as_ref()
                    .is_some_and(|c| tenant.ca_certificate.as_ref() != Some(c));
            let changed =
                stored != findings.drift.as_slice() || tenant.status != findings.status || observed;
            if !changed && repair.is_none() {
                continue;
            }
            let wants_repair = repair.is_some();
            match tenants::record_findings_in(
                self.begin(term).await?,
                &tenant.id,
                tenant.updated_at,
                &findings,
                repair,
            )
            .await
            {
                Ok((true, job)) => {
                    if findings.status != tenant.status {
                        warn!(tenant.id = %tenant.id, status = findings.status.as_str(),
                              error = ?findings.error, "tenant status changed by the reconciler");
                    }
                    if let Some(job) = job {
                        report.repairs += 1;
                        info!(tenant.id = %tenant.id, job.id = %job.id,
                              drift = findings.drift.len(), "drift found; repair enqueued");
                    }
                }
                Ok((false, _)) => {
                    debug!(tenant.id = %tenant.id, wants_repair, "tenant changed meanwhile; next round")
                }
                Err(e) => warn!(tenant.id = %tenant.id, error = %e, "recording drift failed"),
            }
        }
        let ids: Vec<String> = tenants.iter().map(|t| t.id.clone()).collect();
        let mut tx = self.begin(term).await?;
        record::mark_checked(&mut *tx, &ids).await?;
        tx.commit().await?;
        crate::metrics::record_reconcile_round(
            started.elapsed(),
            &[
                ("rds", report.rds_calls),
                ("cloudwatch", report.cloudwatch_calls),
                ("secretsmanager", report.secrets_calls),
            ],
            &drift_fields,
        );
        debug!(?report, took = ?started.elapsed(), "reconcile round");
        Ok(report)
    }

    /// The repair a tenant's findings call for, unless repairs are off, the tenant is lost or
    /// degraded, or its last repairs failed recently (the pause doubles with each failure).
    fn repair_for(
        &self,
        tenant: &Tenant,
        findings: &Findings,
        failures: &HashMap<String, (i64, chrono::DateTime<Utc>)>,
        interval: Duration,
    ) -> Option<RepairRequest> {
        // Schema drift is for a rollout (or people) to act on, another major for an engine
        // upgrade: a reconcile job does neither.
        let repairable = findings
            .drift
            .iter()
            .any(|d| group(&d.field) != "schema" && d.field != engine_version::MAJOR_FIELD);
        if !self.aws.settings.repair_drift || !repairable {
            return None;
        }
        if let Some((n, last)) = failures.get(&tenant.id) {
            let rounds = 2u32
                .pow((*n).clamp(1, 6) as u32 - 1)
                .min(MAX_BACKOFF_ROUNDS);
            let pause = chrono::Duration::from_std(interval * rounds).unwrap_or_default();
            if Utc::now() < *last + pause {
                return None;
            }
        }
        let status_drift = findings.drift.iter().find(|d| d.field == "status");
        let (reason, cause) = match (findings.status, status_drift) {
            (TenantStatus::Lost | TenantStatus::Degraded | TenantStatus::Detached, _) => {
                return None;
            }
            (TenantStatus::Suspended, Some(d)) => (
                Reason::Suspend,
                Some(format!(
                    "the suspended tenant's instance was {} (RDS starts a stopped instance by \
                     itself after 7 days); stopping it again",
                    d.actual
                )),
            ),
            (TenantStatus::Ready, Some(d)) => (
                Reason::Resume,
                Some(format!(
                    "the ready tenant's instance was {}; starting it",
                    d.actual
                )),
            ),
            _ => (Reason::Repair, None),
        };
        Some(RepairRequest {
            reason,
            cause,
            max_attempts: self.max_attempts,
        })
    }
}

#[async_trait]
impl Service for Reconciler {
    fn name(&self) -> &'static str {
        "reconciler"
    }

    fn every(&self) -> Duration {
        self.aws
            .settings
            .reconcile_interval
            .unwrap_or(Duration::ZERO)
    }

    async fn lead(&self, term: &Term) -> Result<(), RoundError> {
        self.round_in(Some(term)).await.map(|_| ())
    }
}
