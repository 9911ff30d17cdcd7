//! The reconciler: on the leader, every `TENANTD_RECONCILE_INTERVAL`, looks at every ready,
//! suspended, lost and degraded tenant without an active job and compares what AWS reports with
//! what the tenant should have (its tier's settings, its tags, its alarms, its secret, stopped
//! or running). What differs is recorded on the tenant (`drift`, `checked_at`); with
//! `TENANTD_REPAIR_DRIFT` a tenant with drift gets a reconcile job that repairs what tenantd
//! owns. An instance that is gone makes the tenant `lost`, one stuck in a state only people can
//! fix makes it `degraded`: neither is repaired (that would lose data or hide an incident).
//!
//! Cost: DescribeDBInstances 100 ids a call, paced to `TENANTD_RECONCILE_RDS_SHARE` of the RDS
//! rate so that provisioning keeps the rest; alarms (DescribeAlarms by name prefix, 100 a call)
//! and secrets (ListSecrets by name prefix, 100 a call) are looked at on alternate rounds, so
//! that a round over 1,000 tenants makes 10 RDS calls and at most 30 calls in all.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use sqlx::PgPool;
use tracing::{debug, info, warn};

use super::service::{RoundError, Service};
use crate::cloud::alarms::instance_alarms;
use crate::cloud::rds::{DESCRIBE_BATCH, InstanceInfo, UNRECOVERABLE};
use crate::cloud::secrets::SecretInfo;
use crate::config::Tier;
use crate::queue;
use crate::tenants::record::{self, Difference, Tenant, TenantStatus};
use crate::tenants::{self, Findings, RepairRequest};
use crate::workflow::Tenancy;
use crate::workflow::desired;
use crate::workflow::reconcile::{self, Reason};

/// Longest pause between two repairs of one tenant whose repairs keep failing, in rounds.
const MAX_BACKOFF_ROUNDS: u32 = 32;

pub struct Reconciler {
    pool: PgPool,
    tenancy: Tenancy,
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
}

impl Reconciler {
    /// `rds_rate`: this process's RDS requests per second, of which a round takes its share.
    pub fn new(pool: PgPool, tenancy: Tenancy, rds_rate: f64, max_attempts: i32) -> Self {
        let share = tenancy.settings.reconcile_rds_share;
        Reconciler {
            rds_pace: Duration::from_secs_f64(1.0 / (rds_rate * share).max(0.001)),
            pool,
            tenancy,
            max_attempts,
            rounds: AtomicU64::new(0),
        }
    }

    /// One round over every tenant to look at.
    pub async fn round(&self) -> Result<RoundReport, RoundError> {
        let started = Instant::now();
        let t = &self.tenancy;
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
        let ids: Vec<String> = tenants.iter().map(|x| t.instance_of(x)).collect();
        let mut instances: HashMap<String, InstanceInfo> = HashMap::new();
        for (i, chunk) in ids.chunks(DESCRIBE_BATCH).enumerate() {
            if i > 0 {
                tokio::time::sleep(self.rds_pace).await;
            }
            let found = t.cloud.describe_db_instances_batch(chunk).await?;
            report.rds_calls += 1;
            instances.extend(found.into_iter().map(|i| (i.identifier.clone(), i)));
        }
        let alarms = if alarm_round && !tenants.is_empty() {
            let (found, calls) = t
                .cloud
                .describe_alarms_by_prefix(&s.instance_prefix)
                .await?;
            report.cloudwatch_calls = calls;
            Some(found.into_iter().collect::<HashMap<_, _>>())
        } else {
            None
        };
        let secrets = if !alarm_round && !tenants.is_empty() {
            let (found, calls) = t.cloud.list_secrets_by_prefix(&s.secret_prefix).await?;
            report.secrets_calls = calls;
            Some(
                found
                    .into_iter()
                    .map(|s| (s.name.clone(), s))
                    .collect::<HashMap<_, _>>(),
            )
        } else {
            None
        };
        let failures = if s.repair_drift {
            let repair = serde_json::json!({ "reason": "repair" });
            queue::failures_since_success(&self.pool, reconcile::KIND, &repair).await?
        } else {
            HashMap::new()
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
                alarms: alarms.as_ref(),
                secrets: secrets.as_ref(),
            };
            let findings = self.look(tenant, tier, &seen);
            let mut fields: Vec<&str> = findings.drift.iter().map(|d| group(&d.field)).collect();
            fields.dedup();
            for f in fields {
                *drift_fields.entry(f.to_string()).or_default() += 1;
            }
            match findings.status {
                TenantStatus::Lost => report.lost += 1,
                TenantStatus::Degraded => report.degraded += 1,
                _ => {}
            }
            if !findings.drift.is_empty() {
                report.with_drift += 1;
            }
            let repair = self.repair_for(tenant, &findings, &failures, interval);
            let stored = tenant.drift.as_ref().map(|d| d.0.as_slice()).unwrap_or(&[]);
            let changed = stored != findings.drift.as_slice() || tenant.status != findings.status;
            if !changed && repair.is_none() {
                continue;
            }
            let wants_repair = repair.is_some();
            match tenants::record_findings(
                &self.pool,
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
        record::mark_checked(&self.pool, &ids).await?;
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

    /// What differs for one tenant, and the status it should have.
    fn look(&self, tenant: &Tenant, tier: &Tier, seen: &Seen<'_>) -> Findings {
        let t = &self.tenancy;
        let s = &t.settings;
        let id = t.instance_of(tenant);
        let own = match tenant.status {
            TenantStatus::Suspended => TenantStatus::Suspended,
            _ => TenantStatus::Ready,
        };
        let Some(info) = seen.instance else {
            return Findings {
                drift: vec![Difference {
                    field: "instance".into(),
                    expected: id.clone(),
                    actual: "missing".into(),
                }],
                status: TenantStatus::Lost,
                error: Some(format!(
                    "instance {id} does not exist (deleted outside tenantd?); nothing is re-created"
                )),
            };
        };
        let status = info.status.as_str();
        if UNRECOVERABLE.contains(&status) {
            return Findings {
                drift: vec![Difference {
                    field: "status".into(),
                    expected: "available".into(),
                    actual: status.into(),
                }],
                status: TenantStatus::Degraded,
                error: Some(format!("instance {id} is {status}: it needs an operator")),
            };
        }
        let mut drift = Vec::new();
        match (own, status) {
            (TenantStatus::Suspended, "available" | "starting") => drift.push(Difference {
                field: "status".into(),
                expected: "stopped".into(),
                actual: status.into(),
            }),
            (TenantStatus::Ready, "stopped" | "stopping") => drift.push(Difference {
                field: "status".into(),
                expected: "available".into(),
                actual: status.into(),
            }),
            (TenantStatus::Ready, "available") => {
                let windows = (s.backup_window.as_str(), s.maintenance_window.as_str());
                drift.extend(desired::plan(tier, windows, info).differences);
                for (key, value) in t.tags(&tenant.id, &tenant.tier) {
                    let actual = info.tags.iter().find(|(k, _)| *k == key).map(|(_, v)| v);
                    if actual != Some(&value) {
                        drift.push(Difference {
                            field: format!("tag:{key}"),
                            expected: value,
                            actual: actual.cloned().unwrap_or_else(|| "missing".into()),
                        });
                    }
                }
            }
            // Busy (modifying, backing-up, ...): its settings are compared next round.
            _ => {}
        }
        // What is looked at on alternate rounds keeps what the last look found.
        let previous = tenant
            .drift
            .as_ref()
            .map(|d| d.0.clone())
            .unwrap_or_default();
        match seen.alarms {
            Some(alarms) => {
                let topic = s.alarm_topic_arn.as_deref();
                for alarm in instance_alarms(&id, topic, tier.low_storage_bytes()) {
                    let expected = format!("threshold {}", alarm.threshold);
                    let actual = match alarms.get(&alarm.name) {
                        None => "missing".to_string(),
                        Some(th)
                            if (th - alarm.threshold).abs() <= 1e-6 * alarm.threshold.abs() =>
                        {
                            continue;
                        }
                        Some(th) => format!("threshold {th}"),
                    };
                    drift.push(Difference {
                        field: format!("alarm:{}", alarm.name),
                        expected,
                        actual,
                    });
                }
            }
            None => drift.extend(
                previous
                    .iter()
                    .filter(|d| group(&d.field) == "alarm")
                    .cloned(),
            ),
        }
        match seen.secrets {
            Some(secrets) => {
                let name = t.secret_name(&tenant.id);
                let actual = match secrets.get(&name) {
                    None => Some("missing"),
                    Some(s) if s.pending_deletion => Some("scheduled for deletion"),
                    Some(_) => None,
                };
                if let Some(actual) = actual {
                    drift.push(Difference {
                        field: "secret".into(),
                        expected: name,
                        actual: actual.into(),
                    });
                }
            }
            None => drift.extend(previous.iter().filter(|d| d.field == "secret").cloned()),
        }
        Findings {
            drift,
            status: own,
            error: None,
        }
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
        if !self.tenancy.settings.repair_drift || findings.drift.is_empty() {
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
            (TenantStatus::Lost | TenantStatus::Degraded, _) => return None,
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

/// What a round saw, for one tenant.
struct Seen<'a> {
    instance: Option<&'a InstanceInfo>,
    /// Alarm name → threshold; `None` on rounds that do not look at alarms.
    alarms: Option<&'a HashMap<String, f64>>,
    /// Secret name → secret; `None` on rounds that do not look at secrets.
    secrets: Option<&'a HashMap<String, SecretInfo>>,
}

/// The metric label of a drift field: alarms and tags grouped.
fn group(field: &str) -> &str {
    field.split_once(':').map(|(g, _)| g).unwrap_or(field)
}

#[async_trait]
impl Service for Reconciler {
    fn name(&self) -> &'static str {
        "reconciler"
    }

    fn every(&self) -> Duration {
        self.tenancy
            .settings
            .reconcile_interval
            .unwrap_or(Duration::ZERO)
    }

    async fn lead(&self) -> Result<(), RoundError> {
        self.round().await.map(|_| ())
    }
}
