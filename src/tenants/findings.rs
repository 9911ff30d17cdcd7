//! What the reconciler found about a tenant, recorded on it with the repair it asks for, in one
//! transaction that writes nothing when the tenant moved on since it was looked at.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::enqueue::{enqueue, new_job};
use super::error::TenantError;
use serde_json::json;

use crate::queue::{self, Job};
use crate::store::events::{self, EventType, NewEvent};
use crate::store::tenants::{self, Difference, PendingMaintenance, TenantStatus};
use crate::workflow::reconcile::{Apply, Reason, Reconcile, ReconcileArgs};

/// What the reconciler found about one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Findings {
    pub drift: Vec<Difference>,
    /// The status the tenant should have (`lost`, `degraded`, or its own again).
    pub status: TenantStatus,
    /// Why, for `lost` and `degraded`.
    pub error: Option<String>,
    /// The version the instance runs, as RDS describes it (`None`: keep the recorded one).
    pub engine_version: Option<String>,
    /// RDS's pending maintenance actions for the instance (`None`: keep the recorded ones).
    pub pending_maintenance: Option<Vec<PendingMaintenance>>,
    /// The instance's CA, as RDS describes it (`None`: keep the recorded one).
    pub ca_certificate: Option<String>,
}

/// A repair the reconciler asks for along with its findings.
#[derive(Debug, Clone)]
pub struct RepairRequest {
    pub reason: Reason,
    pub cause: Option<String>,
    pub max_attempts: i32,
}

/// Records the reconciler's findings on a tenant, and enqueues `repair` with them, in one
/// transaction. Nothing is written when the tenant has an active job or changed since
/// `seen_at` (what was seen may be out of date): returns `false` then.
pub async fn record_findings(
    pool: &PgPool,
    id: &str,
    seen_at: DateTime<Utc>,
    findings: &Findings,
    repair: Option<RepairRequest>,
) -> Result<(bool, Option<Job>), TenantError> {
    record_findings_in(pool.begin().await?, id, seen_at, findings, repair).await
}

/// [`record_findings`] in a transaction the caller began (the reconciler's fenced one).
pub async fn record_findings_in(
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    id: &str,
    seen_at: DateTime<Utc>,
    findings: &Findings,
    repair: Option<RepairRequest>,
) -> Result<(bool, Option<Job>), TenantError> {
    let Some(tenant) = tenants::lock(&mut tx, id).await? else {
        return Ok((false, None));
    };
    if tenant.updated_at != seen_at || queue::active_job(&mut *tx, id).await?.is_some() {
        return Ok((false, None));
    }
    let error = match (findings.status, tenant.status) {
        (TenantStatus::Lost | TenantStatus::Degraded | TenantStatus::Detached, _) => {
            findings.error.as_deref()
        }
        // Recovered: the cause of lost or degraded no longer holds.
        (_, TenantStatus::Lost | TenantStatus::Degraded) => None,
        _ => tenant.error.as_deref(),
    };
    let found = tenants::Found {
        drift: &findings.drift,
        status: findings.status,
        error,
        engine_version: findings.engine_version.as_deref(),
        pending_maintenance: findings.pending_maintenance.as_deref(),
        ca_certificate: findings.ca_certificate.as_deref(),
    };
    tenants::record_findings(&mut tx, id, &found).await?;
    let mut job = None;
    if let Some(r) = repair {
        let args = ReconcileArgs {
            reason: r.reason,
            tier: tenant.tier.clone(),
            apply: Apply::Immediately,
            cause: r.cause,
        };
        let new = new_job::<Reconcile>(id, &args, r.max_attempts);
        job = Some(enqueue(&mut tx, new).await?.0);
    }
    // Told once per change: a drift seen again, or a tenant lost again, is not news.
    let mut told = Vec::new();
    let known = tenant.drift.as_ref().map(|d| d.0.as_slice());
    if !findings.drift.is_empty() && known != Some(findings.drift.as_slice()) {
        told.push((
            EventType::TenantDriftFound,
            json!({"drift": findings.drift}),
        ));
    }
    if findings.status == TenantStatus::Lost && tenant.status != TenantStatus::Lost {
        told.push((EventType::TenantLost, json!({})));
    }
    if !told.is_empty() {
        let now = tenants::get(&mut *tx, id).await?.unwrap_or(tenant);
        let told: Vec<NewEvent> = told
            .into_iter()
            .map(|(kind, extra)| NewEvent::about_with(kind, &now, extra))
            .collect();
        events::record(&mut tx, &told).await?;
    }
    tx.commit().await?;
    Ok((true, job))
}
