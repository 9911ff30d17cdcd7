//! The requests that start a tenant's workflows: provision it, deprovision it. Each is one
//! transaction that checks what the tenant is doing, updates its row and enqueues the job at
//! the workflow's first step. The HTTP API is a thin layer over these.

use sqlx::PgPool;

use super::record::{
    self, Difference, PendingMaintenance, Tenant, TenantError, TenantStatus, lock, validate_id,
};
use crate::audit::{self, Trail};
use crate::config::Tiers;
use crate::pool as standbys;
use crate::queue::{self, Enqueued, Job, NewJob};
use crate::workflow::attach::{Attach, AttachArgs};
use crate::workflow::deprovision::{Deprovision, DeprovisionArgs};
use crate::workflow::provision::{Provision, ProvisionArgs, ProvisionStep};
use crate::workflow::reconcile::{Apply, Reason, Reconcile, ReconcileArgs};
use crate::workflow::runner::Workflow;
use crate::workflow::step::StepNames;

fn conflict(id: &str, reason: impl Into<String>) -> TenantError {
    TenantError::Conflict {
        id: id.to_string(),
        reason: reason.into(),
    }
}

fn in_progress(id: &str, job: &Job) -> TenantError {
    TenantError::JobInProgress {
        id: id.to_string(),
        kind: job.kind.clone(),
        job: job.id,
    }
}

/// A new job of workflow `W` for the tenant, at its first step.
fn new_job<W: Workflow>(tenant: &str, args: &W::Args, max_attempts: i32) -> NewJob {
    let args = serde_json::to_value(args).expect("job arguments serialize");
    NewJob::new(W::KIND, W::first_step().name(), max_attempts)
        .tenant(tenant)
        .args(args)
}

/// Asks for `id` to be provisioned on `tier`. One transaction: the tenant is created (or, when
/// `failed` or `deleted`, reset) as `provisioning` and its job enqueued. A replay while the job
/// runs, or once the tenant is ready, returns the existing job; `created` says which happened.
pub async fn request_provision(
    pool: &PgPool,
    tiers: &Tiers,
    id: &str,
    tier: &str,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    provision(pool, None, tiers, id, tier, max_attempts).await
}

/// [`request_provision`] asked for by a caller whose `trail` is written with the change.
pub async fn request_provision_by(
    pool: &PgPool,
    trail: &Trail,
    tiers: &Tiers,
    id: &str,
    tier: &str,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    provision(pool, Some(trail), tiers, id, tier, max_attempts).await
}

async fn provision(
    pool: &PgPool,
    trail: Option<&Trail>,
    tiers: &Tiers,
    id: &str,
    tier: &str,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    validate_id(id)?;
    if let Some(t) = trail {
        t.tenant(id);
    }
    if tiers.get(tier).is_none() {
        return Err(TenantError::UnknownTier {
            tier: tier.to_string(),
            known: tiers.names().join(", "),
        });
    }
    let mut tx = pool.begin().await?;
    // `<prefix>pool-...` names the warm pool's standbys: no new tenant may take such a name
    // (tenants of earlier releases keep theirs).
    if id.starts_with(POOL_ID_PREFIX) && record::get(&mut *tx, id).await?.is_none() {
        return Err(TenantError::ReservedId(id.to_string()));
    }
    let inserted = sqlx::query_as::<_, Tenant>(
        "INSERT INTO tenants (id, tier, status) VALUES ($1, $2, 'provisioning')
         ON CONFLICT (id) DO NOTHING RETURNING *",
    )
    .bind(id)
    .bind(tier)
    .fetch_optional(&mut *tx)
    .await?;
    let tenant = match inserted {
        Some(tenant) => tenant,
        None => {
            let existing = lock(&mut tx, id).await?.expect("the insert found it");
            if let Some(job) = queue::active_job(&mut *tx, id).await? {
                return match job.kind.as_str() {
                    Provision::KIND if existing.tier == tier => {
                        note_job(trail, &job);
                        Ok((existing, job, false))
                    }
                    Provision::KIND => Err(conflict(
                        id,
                        format!("is being provisioned as tier {}", existing.tier),
                    )),
                    Deprovision::KIND => Err(conflict(id, "is being deprovisioned")),
                    _ => Err(in_progress(id, &job)),
                };
            }
            if existing.status == TenantStatus::Detached {
                return Err(TenantError::Detached(id.to_string()));
            }
            if matches!(
                existing.status,
                TenantStatus::Ready | TenantStatus::Suspended
            ) {
                if existing.tier != tier {
                    return Err(conflict(
                        id,
                        format!(
                            "is {} as tier {}; change its tier with PATCH /v1/tenants/{id}",
                            existing.status.as_str(),
                            existing.tier
                        ),
                    ));
                }
                let job = queue::latest_job(&mut *tx, id, Provision::KIND)
                    .await?
                    .ok_or_else(|| conflict(id, "is ready but has no provisioning job"))?;
                note_job(trail, &job);
                return Ok((existing, job, false));
            }
            // failed, deleted, or left mid-way: provision (again), on a new instance whose
            // identifier the provisioning records.
            sqlx::query_as::<_, Tenant>(
                "UPDATE tenants SET tier = $2, status = 'provisioning', error = NULL,
                     db_instance_id = NULL, from_pool = false, updated_at = now()
                 WHERE id = $1 RETURNING *",
            )
            .bind(id)
            .bind(tier)
            .fetch_one(&mut *tx)
            .await?
        }
    };
    // A standby of the tier, if one is available, is the tenant's from now on: its record
    // names the standby's instance, and the job starts at the claim.
    let standby = standbys::claim(&mut tx, tier, id).await?;
    let (tenant, new) = match &standby {
        Some(s) => {
            let tenant = sqlx::query_as::<_, Tenant>(
                "UPDATE tenants SET db_instance_id = $2, from_pool = true WHERE id = $1
                 RETURNING *",
            )
            .bind(id)
            .bind(&s.id)
            .fetch_one(&mut *tx)
            .await?;
            let args = ProvisionArgs {
                tier: tier.to_string(),
                standby: Some(s.id.clone()),
            };
            let args = serde_json::to_value(&args).expect("job arguments serialize");
            let new = NewJob::new(Provision::KIND, ProvisionStep::Claim.name(), max_attempts)
                .tenant(id)
                .args(args);
            (tenant, new)
        }
        None => {
            let args = ProvisionArgs {
                tier: tier.to_string(),
                standby: None,
            };
            (tenant, new_job::<Provision>(id, &args, max_attempts))
        }
    };
    let (job, created) = match queue::enqueue(&mut tx, new).await? {
        Enqueued::Created(job) => (job, true),
        // The tenant has a job already (the checks above make this a race at most): nothing
        // of this request is kept, the standby stays available.
        Enqueued::Existing(job) => {
            tx.rollback().await?;
            note_job(trail, &job);
            let tenant = record::get(pool, id).await?.unwrap_or(tenant);
            return Ok((tenant, job, false));
        }
    };
    note_job(trail, &job);
    audit::commit(tx, trail, 202).await?;
    match &standby {
        Some(s) => {
            crate::metrics::record_pool_claim(tier, "claimed");
            tracing::info!(tenant.id = %id, job.id = %job.id, standby = %s.id, tier, "tenant takes over a warm-pool standby");
        }
        None if standbys::has_tier(pool, tier).await? => {
            crate::metrics::record_pool_claim(tier, "empty");
        }
        None => {}
    }
    Ok((tenant, job, created))
}

/// The request is about `job` (started it, or found it running).
fn note_job(trail: Option<&Trail>, job: &Job) {
    if let Some(t) = trail {
        t.job(job.id);
    }
}

/// Tenant ids that would name a standby's instance (`<prefix>pool-...`).
const POOL_ID_PREFIX: &str = "pool-";

/// How a deprovisioning treats the tenant's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deletion {
    /// Take a final snapshot before the instance goes.
    pub final_snapshot: bool,
    /// Go without one even where the tier protects the tenant's data (deletion protection).
    pub force: bool,
}

impl Deletion {
    /// With a final snapshot (the default).
    pub const KEEP_SNAPSHOT: Deletion = Deletion {
        final_snapshot: true,
        force: false,
    };
    /// Without a final snapshot, whatever the tier.
    pub const FORCE_NO_SNAPSHOT: Deletion = Deletion {
        final_snapshot: false,
        force: true,
    };
}

/// Asks for `id` to be deprovisioned, with a final snapshot unless `deletion` says otherwise:
/// going without one on a tier with deletion protection needs `force`. Refused while the
/// tenant is being provisioned; a replay returns the existing job.
pub async fn request_deprovision(
    pool: &PgPool,
    tiers: &Tiers,
    id: &str,
    deletion: Deletion,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    deprovision(pool, None, tiers, id, deletion, max_attempts).await
}

/// [`request_deprovision`] asked for by a caller whose `trail` is written with the change; a
/// deprovisioning without a final snapshot says who asked for it in the job's history.
pub async fn request_deprovision_by(
    pool: &PgPool,
    trail: &Trail,
    tiers: &Tiers,
    id: &str,
    deletion: Deletion,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    deprovision(pool, Some(trail), tiers, id, deletion, max_attempts).await
}

async fn deprovision(
    pool: &PgPool,
    trail: Option<&Trail>,
    tiers: &Tiers,
    id: &str,
    deletion: Deletion,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    validate_id(id)?;
    if let Some(t) = trail {
        t.tenant(id);
    }
    let final_snapshot = deletion.final_snapshot;
    let mut tx = pool.begin().await?;
    let tenant = lock(&mut tx, id)
        .await?
        .ok_or_else(|| TenantError::NotFound(id.to_string()))?;
    let protected = tiers
        .get(&tenant.tier)
        .is_some_and(|t| t.deletion_protection);
    if protected && !final_snapshot && !deletion.force {
        return Err(TenantError::FinalSnapshotRequired {
            id: id.to_string(),
            tier: tenant.tier,
        });
    }
    if let Some(job) = queue::active_job(&mut *tx, id).await? {
        return match job.kind.as_str() {
            Deprovision::KIND => {
                note_job(trail, &job);
                Ok((tenant, job, false))
            }
            Provision::KIND => Err(conflict(
                id,
                "is being provisioned; cancel that job or wait for it to end",
            )),
            // A tier change, a repair, a migration: it ends by itself.
            _ => Err(in_progress(id, &job)),
        };
    }
    if tenant.status == TenantStatus::Detached {
        return Err(TenantError::Detached(id.to_string()));
    }
    if tenant.status == TenantStatus::Deleted {
        let job = queue::latest_job(&mut *tx, id, Deprovision::KIND)
            .await?
            .ok_or_else(|| conflict(id, "is already deleted"))?;
        note_job(trail, &job);
        return Ok((tenant, job, false));
    }
    let tenant = sqlx::query_as::<_, Tenant>(
        "UPDATE tenants SET status = 'deprovisioning', updated_at = now() WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let args = DeprovisionArgs { final_snapshot };
    let mut new = new_job::<Deprovision>(id, &args, max_attempts);
    if !final_snapshot {
        let why = if protected {
            format!(
                "no final snapshot: forced past tier {}'s deletion protection, which keeps one",
                tenant.tier
            )
        } else {
            format!(
                "no final snapshot (tier {} has no deletion protection)",
                tenant.tier
            )
        };
        let by = trail.map(|t| format!(" {}", t.by())).unwrap_or_default();
        new = new.note(format!("{why}; asked{by}"));
    }
    let (job, created) = match queue::enqueue(&mut tx, new).await? {
        Enqueued::Created(job) => (job, true),
        Enqueued::Existing(job) => (job, false),
    };
    note_job(trail, &job);
    audit::commit(tx, trail, if created { 202 } else { 200 }).await?;
    Ok((tenant, job, created))
}

/// Asks for `id` to move to `tier`. One transaction: the tenant (which must be `ready`) gets
/// `pending_tier` and a reconcile job is enqueued. The tenant's own tier again changes nothing
/// (no job); a replay while the same change runs returns its job. `created` says whether a job
/// was enqueued.
pub async fn request_tier_change(
    pool: &PgPool,
    tiers: &Tiers,
    id: &str,
    tier: &str,
    apply: Apply,
    max_attempts: i32,
) -> Result<(Tenant, Option<Job>, bool), TenantError> {
    tier_change(pool, None, tiers, id, tier, apply, max_attempts).await
}

/// [`request_tier_change`] asked for by a caller whose `trail` is written with the change.
pub async fn request_tier_change_by(
    pool: &PgPool,
    trail: &Trail,
    tiers: &Tiers,
    id: &str,
    tier: &str,
    apply: Apply,
    max_attempts: i32,
) -> Result<(Tenant, Option<Job>, bool), TenantError> {
    tier_change(pool, Some(trail), tiers, id, tier, apply, max_attempts).await
}

async fn tier_change(
    pool: &PgPool,
    trail: Option<&Trail>,
    tiers: &Tiers,
    id: &str,
    tier: &str,
    apply: Apply,
    max_attempts: i32,
) -> Result<(Tenant, Option<Job>, bool), TenantError> {
    validate_id(id)?;
    if let Some(t) = trail {
        t.tenant(id);
    }
    if tiers.get(tier).is_none() {
        return Err(TenantError::UnknownTier {
            tier: tier.to_string(),
            known: tiers.names().join(", "),
        });
    }
    let mut tx = pool.begin().await?;
    let tenant = lock(&mut tx, id)
        .await?
        .ok_or_else(|| TenantError::NotFound(id.to_string()))?;
    if let Some(job) = queue::active_job(&mut *tx, id).await? {
        if job.kind == Reconcile::KIND && tenant.pending_tier.as_deref() == Some(tier) {
            note_job(trail, &job);
            return Ok((tenant, Some(job), false));
        }
        return Err(in_progress(id, &job));
    }
    if tenant.status != TenantStatus::Ready {
        return Err(TenantError::NotApplicable {
            id: id.to_string(),
            status: tenant.status.as_str(),
            wanted: TenantStatus::Ready,
            reason: "only a ready tenant changes tiers".into(),
        });
    }
    if tenant.tier == tier {
        return Ok((tenant, None, false));
    }
    let tenant = sqlx::query_as::<_, Tenant>(
        "UPDATE tenants SET pending_tier = $2, updated_at = now() WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(tier)
    .fetch_one(&mut *tx)
    .await?;
    let args = ReconcileArgs {
        reason: Reason::TierChange,
        tier: tier.to_string(),
        apply,
        cause: None,
    };
    let (job, created) = enqueue_reconcile(&mut tx, id, &args, max_attempts).await?;
    note_job(trail, &job);
    audit::commit(tx, trail, if created { 202 } else { 200 }).await?;
    Ok((tenant, Some(job), created))
}

/// Suspending stops a tenant's instance; resuming starts it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Suspend,
    Resume,
}

/// Asks for `id` to be suspended (it must be `ready`) or resumed (it must be `suspended`): a
/// reconcile job, enqueued in one transaction with the checks. A replay while the same request
/// runs returns its job.
pub async fn request_power(
    pool: &PgPool,
    id: &str,
    power: Power,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    power_change(pool, None, id, power, max_attempts).await
}

/// [`request_power`] asked for by a caller whose `trail` is written with the change.
pub async fn request_power_by(
    pool: &PgPool,
    trail: &Trail,
    id: &str,
    power: Power,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    power_change(pool, Some(trail), id, power, max_attempts).await
}

async fn power_change(
    pool: &PgPool,
    trail: Option<&Trail>,
    id: &str,
    power: Power,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    validate_id(id)?;
    if let Some(t) = trail {
        t.tenant(id);
    }
    let reason = match power {
        Power::Suspend => Reason::Suspend,
        Power::Resume => Reason::Resume,
    };
    let mut tx = pool.begin().await?;
    let tenant = lock(&mut tx, id)
        .await?
        .ok_or_else(|| TenantError::NotFound(id.to_string()))?;
    if let Some(job) = queue::active_job(&mut *tx, id).await? {
        let same = job.kind == Reconcile::KIND
            && serde_json::from_value::<ReconcileArgs>(job.args.0.clone())
                .is_ok_and(|a| a.reason == reason);
        if same {
            note_job(trail, &job);
            return Ok((tenant, job, false));
        }
        return Err(in_progress(id, &job));
    }
    let (wanted, reason_text) = match power {
        Power::Suspend => (TenantStatus::Ready, "only a ready tenant can be suspended"),
        Power::Resume => (
            TenantStatus::Suspended,
            "only a suspended tenant can be resumed",
        ),
    };
    if tenant.status != wanted {
        return Err(TenantError::NotApplicable {
            id: id.to_string(),
            status: tenant.status.as_str(),
            wanted,
            reason: reason_text.into(),
        });
    }
    let args = ReconcileArgs {
        reason,
        tier: tenant.tier.clone(),
        apply: Apply::Immediately,
        cause: None,
    };
    let (job, created) = enqueue_reconcile(&mut tx, id, &args, max_attempts).await?;
    note_job(trail, &job);
    audit::commit(tx, trail, if created { 202 } else { 200 }).await?;
    Ok((tenant, job, created))
}

/// Asks for a `detached` tenant to be re-attached: an attach job (which verifies the
/// instance is the tenant's before tagging it), enqueued in one transaction with the checks.
/// A replay while it runs returns its job.
pub async fn request_attach(
    pool: &PgPool,
    id: &str,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    attach(pool, None, id, max_attempts).await
}

/// [`request_attach`] asked for by a caller whose `trail` is written with the change.
pub async fn request_attach_by(
    pool: &PgPool,
    trail: &Trail,
    id: &str,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    attach(pool, Some(trail), id, max_attempts).await
}

async fn attach(
    pool: &PgPool,
    trail: Option<&Trail>,
    id: &str,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    validate_id(id)?;
    if let Some(t) = trail {
        t.tenant(id);
    }
    let mut tx = pool.begin().await?;
    let tenant = lock(&mut tx, id)
        .await?
        .ok_or_else(|| TenantError::NotFound(id.to_string()))?;
    if let Some(job) = queue::active_job(&mut *tx, id).await? {
        if job.kind == Attach::KIND {
            note_job(trail, &job);
            return Ok((tenant, job, false));
        }
        return Err(in_progress(id, &job));
    }
    if tenant.status != TenantStatus::Detached {
        return Err(TenantError::NotApplicable {
            id: id.to_string(),
            status: tenant.status.as_str(),
            wanted: TenantStatus::Detached,
            reason: "only a detached tenant is re-attached".into(),
        });
    }
    let new = new_job::<Attach>(id, &AttachArgs::default(), max_attempts);
    let (job, created) = match queue::enqueue(&mut tx, new).await? {
        Enqueued::Created(job) => (job, true),
        Enqueued::Existing(job) => (job, false),
    };
    note_job(trail, &job);
    audit::commit(tx, trail, if created { 202 } else { 200 }).await?;
    Ok((tenant, job, created))
}

async fn enqueue_reconcile(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: &str,
    args: &ReconcileArgs,
    max_attempts: i32,
) -> Result<(Job, bool), TenantError> {
    let new = new_job::<Reconcile>(id, args, max_attempts);
    Ok(match queue::enqueue(tx, new).await? {
        Enqueued::Created(job) => (job, true),
        Enqueued::Existing(job) => (job, false),
    })
}

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
    seen_at: chrono::DateTime<chrono::Utc>,
    findings: &Findings,
    repair: Option<RepairRequest>,
) -> Result<(bool, Option<Job>), TenantError> {
    record_findings_in(pool.begin().await?, id, seen_at, findings, repair).await
}

/// [`record_findings`] in a transaction the caller began (the reconciler's fenced one).
pub async fn record_findings_in(
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    id: &str,
    seen_at: chrono::DateTime<chrono::Utc>,
    findings: &Findings,
    repair: Option<RepairRequest>,
) -> Result<(bool, Option<Job>), TenantError> {
    let Some(tenant) = lock(&mut tx, id).await? else {
        return Ok((false, None));
    };
    if tenant.updated_at != seen_at || queue::active_job(&mut *tx, id).await?.is_some() {
        return Ok((false, None));
    }
    let drift = sqlx::types::Json(&findings.drift);
    let error = match (findings.status, tenant.status) {
        (TenantStatus::Lost | TenantStatus::Degraded | TenantStatus::Detached, _) => {
            findings.error.as_deref()
        }
        // Recovered: the cause of lost or degraded no longer holds.
        (_, TenantStatus::Lost | TenantStatus::Degraded) => None,
        _ => tenant.error.as_deref(),
    };
    sqlx::query(
        "UPDATE tenants SET drift = $2, status = $3, error = $4, checked_at = now(),
             engine_version = COALESCE($5, engine_version),
             pending_maintenance = COALESCE($6, pending_maintenance),
             updated_at = CASE WHEN status <> $3 THEN now() ELSE updated_at END
         WHERE id = $1",
    )
    .bind(id)
    .bind(drift)
    .bind(findings.status)
    .bind(error)
    .bind(findings.engine_version.as_deref())
    .bind(findings.pending_maintenance.as_ref().map(sqlx::types::Json))
    .execute(&mut *tx)
    .await?;
    let mut job = None;
    if let Some(r) = repair {
        let args = ReconcileArgs {
            reason: r.reason,
            tier: tenant.tier.clone(),
            apply: Apply::Immediately,
            cause: r.cause,
        };
        job = Some(
            enqueue_reconcile(&mut tx, id, &args, r.max_attempts)
                .await?
                .0,
        );
    }
    tx.commit().await?;
    Ok((true, job))
}

/// Retries a failed job whose tenant is `failed`: a new job of the same kind and arguments
/// from its workflow's first step, the tenant back to `provisioning` or `deprovisioning`, in
/// one transaction. Anything else is refused with the reason.
pub async fn request_retry(
    pool: &PgPool,
    job_id: uuid::Uuid,
    max_attempts: i32,
) -> Result<(Tenant, Job), TenantError> {
    retry(pool, None, job_id, max_attempts).await
}

/// [`request_retry`] asked for by a caller whose `trail` is written with the change.
pub async fn request_retry_by(
    pool: &PgPool,
    trail: &Trail,
    job_id: uuid::Uuid,
    max_attempts: i32,
) -> Result<(Tenant, Job), TenantError> {
    retry(pool, Some(trail), job_id, max_attempts).await
}

async fn retry(
    pool: &PgPool,
    trail: Option<&Trail>,
    job_id: uuid::Uuid,
    max_attempts: i32,
) -> Result<(Tenant, Job), TenantError> {
    let refuse = |reason: String| TenantError::JobNotRetryable {
        job: job_id,
        reason,
    };
    let mut tx = pool.begin().await?;
    let job = queue::get_job(&mut *tx, job_id)
        .await?
        .ok_or(TenantError::JobNotFound(job_id))?;
    if job.state != queue::JobState::Failed {
        return Err(refuse(format!(
            "it is {}; only a failed job is retried",
            job.state.as_str()
        )));
    }
    let (first_step, status) = match job.kind.as_str() {
        Provision::KIND => (Provision::first_step().name(), "provisioning"),
        Deprovision::KIND => (Deprovision::first_step().name(), "deprovisioning"),
        other => {
            return Err(refuse(format!(
                "a {other} job is not retried: ask for the change again"
            )));
        }
    };
    let Some(tenant_id) = job.tenant_id.clone() else {
        return Err(refuse("it names no tenant".into()));
    };
    if let Some(t) = trail {
        t.tenant(&tenant_id);
    }
    let tenant = lock(&mut tx, &tenant_id)
        .await?
        .ok_or_else(|| TenantError::NotFound(tenant_id.clone()))?;
    if tenant.status != TenantStatus::Failed {
        return Err(refuse(format!(
            "its tenant {tenant_id} is {}, not failed",
            tenant.status.as_str()
        )));
    }
    if let Some(active) = queue::active_job(&mut *tx, &tenant_id).await? {
        return Err(refuse(format!(
            "tenant {tenant_id} has a {} job in progress ({})",
            active.kind, active.id
        )));
    }
    let latest = queue::latest_job(&mut *tx, &tenant_id, &job.kind).await?;
    if latest.is_some_and(|l| l.id != job.id) {
        return Err(refuse(format!(
            "a later {} job of tenant {tenant_id} exists",
            job.kind
        )));
    }
    // A provisioning retried starts cold: a claimed standby went with the failed job's
    // rollback, and the new instance gets the tenant's own name.
    let cold = job.kind == Provision::KIND;
    let tenant = sqlx::query_as::<_, Tenant>(
        "UPDATE tenants SET status = $2::tenant_status, error = NULL, updated_at = now(),
             db_instance_id = CASE WHEN $3 THEN NULL ELSE db_instance_id END,
             from_pool = from_pool AND NOT $3
         WHERE id = $1 RETURNING *",
    )
    .bind(&tenant_id)
    .bind(status)
    .bind(cold)
    .fetch_one(&mut *tx)
    .await?;
    let mut args = job.args.0.clone();
    if cold && let Some(map) = args.as_object_mut() {
        map.remove("standby");
    }
    let new = NewJob::new(&job.kind, first_step, max_attempts)
        .tenant(&tenant_id)
        .args(args);
    let job = match queue::enqueue(&mut tx, new).await? {
        Enqueued::Created(job) | Enqueued::Existing(job) => job,
    };
    note_job(trail, &job);
    audit::commit(tx, trail, 202).await?;
    Ok((tenant, job))
}
