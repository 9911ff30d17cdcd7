//! The HTTP API's request and response bodies: what the server answers and the CLI reads, in
//! one place, with their OpenAPI schemas derived from these types (so the published document
//! states every rule the server enforces).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::queue::{HistoryEntry, Job, JobState, Outcome};
use crate::rollouts::{self, RolloutState, TenantState};
use crate::tenants::{Difference, PendingMaintenance, Tenant, TenantStatus};
use crate::workflow::reconcile::Apply;

/// The pattern of a tenant id (3 to 40 characters): lowercase letters, digits and single inner
/// hyphens, a letter first, so that `<prefix><id>` is a valid RDS instance identifier.
pub const TENANT_ID_PATTERN: &str = "^[a-z](-?[a-z0-9])*$";

/// `POST /v1/tenants`: provision a tenant's database.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// The tenant's id: 3 to 40 lowercase letters, digits and single hyphens, a letter first,
    /// no hyphen last.
    #[schema(min_length = 3, max_length = 40, pattern = "^[a-z](-?[a-z0-9])*$")]
    pub id: String,
    /// One of the configured tiers (the document served lists them).
    pub tier: String,
}

/// `PATCH /v1/tenants/{id}`: move a ready tenant to another tier.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeTenant {
    /// One of the configured tiers.
    pub tier: String,
    /// When the instance takes the change: `immediately` (default) or in its
    /// `maintenance_window`.
    pub apply: Option<Apply>,
}

/// A tenant id in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TenantPath {
    /// The tenant's id.
    #[param(min_length = 3, max_length = 40, pattern = "^[a-z](-?[a-z0-9])*$")]
    pub id: String,
}

/// A job id in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct JobPath {
    /// The job's id (a UUID).
    pub id: Uuid,
}

/// A rollout id in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RolloutPath {
    /// The rollout's id (a UUID).
    pub id: Uuid,
}

/// Default page size of the lists.
pub const DEFAULT_PAGE: i64 = 50;
/// Largest page size of the lists.
pub const MAX_PAGE: i64 = 1000;

/// `GET /v1/tenants` query. Any other parameter, or one given twice, is refused (400
/// `invalid_query`).
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only tenants in this status.
    pub status: Option<TenantStatus>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page: the last tenant id it held, so a tenant id (3 to 40
    /// characters of the id pattern).
    #[param(min_length = 3, max_length = 40, pattern = "^[a-z](-?[a-z0-9])*$")]
    pub cursor: Option<String>,
    /// Only tenants whose schema version is below this one (tenants never migrated count as
    /// version 0).
    pub schema_version_below: Option<i64>,
}

/// `DELETE /v1/tenants/{id}` query. Any other parameter, or one given twice, is refused (400
/// `invalid_query`).
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Take a final snapshot before the instance goes: `true` or `false` (default true).
    pub final_snapshot: Option<bool>,
    /// With `final_snapshot=false`: go without one even on a tier with deletion protection
    /// (default false).
    pub force: Option<bool>,
}

/// `GET /v1/jobs` query. Any other parameter, or one given twice, is refused (400
/// `invalid_query`).
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobListQuery {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this kind (`provision`, `deprovision`, `reconcile`).
    #[param(pattern = "^[a-z][a-z0-9_]*$", max_length = 64)]
    pub kind: Option<String>,
    /// Only jobs of this tenant.
    #[param(min_length = 3, max_length = 40, pattern = "^[a-z](-?[a-z0-9])*$")]
    pub tenant: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (the id of its last job).
    pub cursor: Option<Uuid>,
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobPage {
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<Uuid>,
}

/// Where a tenant's database answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Endpoint {
    pub host: String,
    pub port: i32,
}

/// A tenant as the API shows it, with its latest job. Never a password: the control database
/// holds none. A deleted tenant stays readable, with `status: "deleted"`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TenantView {
    pub id: String,
    pub tier: String,
    pub status: TenantStatus,
    /// The RDS instance identifier, as recorded: `<prefix><id>`, or the identifier of the
    /// warm-pool standby the tenant took over (set from the claim on; for a tenant created
    /// cold, once ready).
    pub db_instance_id: Option<String>,
    /// The instance was a warm-pool standby the tenant took over.
    #[serde(default)]
    pub from_pool: bool,
    pub endpoint: Option<Endpoint>,
    /// The Secrets Manager secret with the master credentials.
    pub secret_arn: Option<String>,
    /// The PostgreSQL version the instance runs (e.g. `16.8`), as RDS last described it: a
    /// newer minor that RDS applied by itself (automatic minor upgrades, maintenance) shows
    /// here once the reconciler has seen it.
    pub engine_version: Option<String>,
    /// RDS's pending maintenance actions for the instance (`db-upgrade`,
    /// `ca-certificate-rotation`, `system-update`, ...), as the reconciler last read them
    /// (empty: none; absent: not read yet).
    #[serde(default)]
    pub pending_maintenance: Option<Vec<PendingMaintenance>>,
    /// The tenant schema version applied (the newest migration's version).
    pub schema_version: Option<i64>,
    /// The tier a change in progress moves the tenant to (it stays usable meanwhile).
    pub pending_tier: Option<String>,
    /// The storage the instance has allocated, in GiB (RDS storage only grows: after a
    /// downgrade it may exceed the tier's).
    pub storage_gib: Option<i32>,
    /// What the last change could not do as asked.
    pub note: Option<String>,
    /// What the reconciler last found different from the desired state (empty: nothing;
    /// absent: it has not looked yet).
    pub drift: Option<Vec<Difference>>,
    /// When the reconciler last looked.
    pub checked_at: Option<DateTime<Utc>>,
    /// Why the tenant failed, or why its last change did.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub job: Option<JobView>,
}

impl TenantView {
    pub fn new(t: Tenant, job: Option<&Job>) -> Self {
        let endpoint = match (t.endpoint_host, t.endpoint_port) {
            (Some(host), Some(port)) => Some(Endpoint { host, port }),
            _ => None,
        };
        TenantView {
            id: t.id,
            tier: t.tier,
            status: t.status,
            db_instance_id: t.db_instance_id,
            from_pool: t.from_pool,
            endpoint,
            secret_arn: t.secret_arn,
            engine_version: t.engine_version,
            pending_maintenance: t.pending_maintenance.map(|p| p.0),
            schema_version: t.schema_version,
            pending_tier: t.pending_tier,
            storage_gib: t.storage_gib,
            note: t.note,
            drift: t.drift.map(|d| d.0),
            checked_at: t.checked_at,
            error: t.error,
            created_at: t.created_at,
            updated_at: t.updated_at,
            job: job.map(JobView::from),
        }
    }
}

/// The warm pool of one tier.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PoolTier {
    pub tier: String,
    /// Standbys the pool keeps (`TENANTD_WARM_POOL`).
    pub wanted: u32,
    /// Ready to be taken over by a new tenant.
    pub available: i64,
    /// Being created (or replaced).
    pub creating: i64,
    /// Being removed (failed, or past `TENANTD_POOL_MAX_AGE`).
    pub retiring: i64,
    /// Age of the oldest available standby, in seconds.
    pub oldest_age_s: Option<f64>,
}

/// `GET /v1/pool`: every tier that has a pool (configured, or standbys left from one).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PoolView {
    pub tiers: Vec<PoolTier>,
}

/// What a provisioning or deprovisioning request answers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Requested {
    pub tenant: TenantView,
    pub job: JobView,
}

/// What a tier change answers: the tenant, and the job that changes it (none when the
/// tenant is on that tier already).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Changed {
    pub tenant: TenantView,
    pub job: Option<JobView>,
}

/// A page of tenants in id order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Page {
    pub tenants: Vec<TenantView>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// A job as the API shows it: where it is, never its internal data or lease.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub id: Uuid,
    /// The workflow: `provision`, `deprovision` or `reconcile` (tier changes, suspend,
    /// resume, drift repair).
    pub kind: String,
    pub tenant_id: Option<String>,
    pub state: JobState,
    /// The step it is at (or ended at).
    pub step: String,
    /// Attempts the current step has used (0 while it has not failed).
    pub attempt: i32,
    pub max_attempts: i32,
    pub cancel_requested: bool,
    pub error: Option<String>,
    /// What a finished job did, in a sentence, where its workflow says (e.g. what a tier
    /// change changed, and what it kept).
    pub result: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&Job> for JobView {
    fn from(job: &Job) -> Self {
        JobView {
            id: job.id,
            kind: job.kind.clone(),
            tenant_id: job.tenant_id.clone(),
            state: job.state,
            step: job.step.clone(),
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            cancel_requested: job.cancel_requested,
            error: job.error.clone(),
            result: job
                .data
                .0
                .get("result")
                .and_then(|r| r.as_str())
                .map(str::to_string),
            created_at: job.created_at,
            updated_at: job.updated_at,
            finished_at: job.finished_at,
        }
    }
}

/// One row of a job's history: a step attempt (with when it started) or a transition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StepView {
    pub step: String,
    /// The attempt number, from 0.
    pub attempt: i32,
    pub outcome: Outcome,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: DateTime<Utc>,
    pub error: Option<String>,
    /// What kind of failure `error` is (`throttled`, `access_denied`, `tls`, ...).
    pub error_class: Option<String>,
    pub worker: Option<String>,
    /// What the step did that people should know about (e.g. a secret re-created).
    pub note: Option<String>,
}

impl From<HistoryEntry> for StepView {
    fn from(h: HistoryEntry) -> Self {
        StepView {
            step: h.step,
            attempt: h.attempt,
            outcome: h.outcome,
            started_at: h.started_at,
            finished_at: h.at,
            error: h.error,
            error_class: h.error_class,
            worker: h.worker,
            note: h.note,
        }
    }
}

/// A job with its step history, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobDetail {
    #[serde(flatten)]
    pub job: JobView,
    pub history: Vec<StepView>,
}

/// Every error the API answers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code clients match on (`invalid_tenant_id`, `unknown_tier`, ...).
    pub code: String,
    /// For people; may change.
    pub message: String,
}

/// `POST /v1/rollouts`: bring the tenants' databases to a tenant-schema version.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRollout {
    /// A version of the tenant migrations directory (default: the newest).
    #[serde(default, deserialize_with = "whole::option")]
    pub target_version: Option<i64>,
    /// Tenants migrated first, alone; all must succeed before any other starts (0 to 1000,
    /// default 1).
    #[schema(minimum = 0, maximum = 1000)]
    #[serde(default, deserialize_with = "whole::option")]
    pub canary: Option<i32>,
    /// Tenants migrated at once (1 to 64, default 4).
    #[schema(minimum = 1, maximum = 64)]
    #[serde(default, deserialize_with = "whole::option")]
    pub concurrency: Option<i32>,
    /// Failed tenants tolerated before the rollout halts (default 0).
    #[schema(minimum = 0, maximum = 1000000)]
    #[serde(default, deserialize_with = "whole::option")]
    pub max_failures: Option<i32>,
    /// Tier names in order, one stage each (default: every tier in one stage). Tenants of
    /// tiers not named are not part of the rollout.
    pub stages: Option<Vec<String>>,
    /// Only these tenants (default: every tenant of the stages' tiers, and those provisioned
    /// while it runs).
    pub tenants: Option<Vec<String>>,
}

/// JSON numbers that are whole (`3` or `3.0`, as JSON Schema's `integer` allows) into integers.
mod whole {
    use serde::de::{Deserialize, Deserializer, Error};

    pub fn option<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i64>,
    {
        let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
            return Ok(None);
        };
        let whole = match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Some(i),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
            _ => None,
        };
        whole
            .and_then(|i| T::try_from(i).ok())
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("{n} is not a whole number in range")))
    }
}

/// How many tenants of a stage are in each state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RolloutCounts {
    pub pending: i64,
    pub migrating: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub skipped: i64,
}

impl RolloutCounts {
    pub fn of(counts: &std::collections::BTreeMap<TenantState, i64>) -> Self {
        let get = |s| counts.get(&s).copied().unwrap_or(0);
        RolloutCounts {
            pending: get(TenantState::Pending),
            migrating: get(TenantState::Migrating),
            succeeded: get(TenantState::Succeeded),
            failed: get(TenantState::Failed),
            skipped: get(TenantState::Skipped),
        }
    }
}

/// One stage of a rollout: the canary, or the tenants of some tiers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RolloutStage {
    /// `canary`, or the stage's tiers (comma-separated).
    pub name: String,
    #[serde(flatten)]
    pub counts: RolloutCounts,
}

/// A tenant whose migration failed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RolloutFailure {
    pub tenant_id: String,
    /// The stage it belongs to (`canary` or its tiers).
    pub stage: String,
    pub error: Option<String>,
    /// Its migrate job.
    pub job_id: Option<Uuid>,
}

/// A rollout with its counts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RolloutView {
    pub id: Uuid,
    pub state: RolloutState,
    pub target_version: i64,
    pub canary: i32,
    pub concurrency: i32,
    pub max_failures: i32,
    /// The stages in order, the canary first; their counts.
    pub stages: Vec<RolloutStage>,
    /// The counts over every stage.
    pub totals: RolloutCounts,
    /// The failed tenants (at most 100), earliest first.
    pub failures: Vec<RolloutFailure>,
    /// Only these tenants, when the rollout was asked for some.
    pub tenants: Option<Vec<String>>,
    /// Why it halted or was cancelled.
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&rollouts::RolloutView> for RolloutView {
    fn from(v: &rollouts::RolloutView) -> Self {
        let r = &v.rollout;
        let stage_name = |stage: i32| {
            v.stages
                .iter()
                .find(|s| s.stage == stage)
                .map(|s| s.name.clone())
                .unwrap_or_else(|| stage.to_string())
        };
        RolloutView {
            id: r.id,
            state: r.state,
            target_version: r.target_version,
            canary: r.canary,
            concurrency: r.concurrency,
            max_failures: r.max_failures,
            stages: v
                .stages
                .iter()
                .map(|s| RolloutStage {
                    name: s.name.clone(),
                    counts: RolloutCounts::of(&s.counts.counts),
                })
                .collect(),
            totals: RolloutCounts::of(&v.totals()),
            failures: v
                .failures
                .iter()
                .map(|f| RolloutFailure {
                    tenant_id: f.tenant_id.clone(),
                    stage: stage_name(f.stage),
                    error: f.error.clone(),
                    job_id: f.job_id,
                })
                .collect(),
            tenants: r.tenants.clone(),
            reason: r.reason.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        }
    }
}

/// `GET /v1/rollouts` query. Any other parameter, or one given twice, is refused (400
/// `invalid_query`).
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RolloutListQuery {
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (the id of its last rollout).
    pub cursor: Option<Uuid>,
}

/// A page of rollouts, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RolloutPage {
    pub rollouts: Vec<RolloutView>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<Uuid>,
}

/// `GET /v1/audit` query. Any other parameter, or one given twice, is refused (400
/// `invalid_query`).
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events about this tenant.
    #[param(min_length = 3, max_length = 40, pattern = "^[a-z](-?[a-z0-9])*$")]
    pub tenant: Option<String>,
    /// Only events of the token of this name.
    #[param(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9._-]*$")]
    pub token: Option<String>,
    /// Only events at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (the id of its last event).
    #[param(minimum = 1, maximum = 9007199254740991_i64)]
    pub cursor: Option<i64>,
}

/// The largest audit cursor the document allows (2^53 - 1, exact in every JSON client).
pub const MAX_AUDIT_CURSOR: i64 = 9_007_199_254_740_991;

/// A page of audit events, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<crate::audit::Event>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<i64>,
}
