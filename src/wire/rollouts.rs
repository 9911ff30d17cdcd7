//! The bodies of `/v1/rollouts`: a rollout as asked for and as the API shows it, with its
//! stages' counts and its failed tenants.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::rollouts::{self, TenantState};
pub use crate::rollouts::{RolloutKind, RolloutState, Target};

/// A rollout id in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RolloutPath {
    /// The rollout's id (a UUID).
    pub id: Uuid,
}

/// `POST /v1/rollouts`: bring the tenants to a target of the rollout's kind.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRollout {
    /// `schema` (the default: a tenant-schema version), `engine_major`, `engine_minor`,
    /// `ca_certificate` or `maintenance`. Another: 422 `unknown_rollout_kind`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The kind's target: a version of the tenant migrations directory (schema; default the
    /// newest), a major (`"17"`), a minor (`"16.9"`), a CA identifier
    /// (`"rds-ca-rsa4096-g1"`), or a maintenance action (`"system-update"`, ..., `"all"`).
    /// One RDS does not offer: 422 `target_not_offered`.
    #[serde(default)]
    pub target_version: Option<Target>,
    /// When the change is applied: `immediately` (default) or `maintenance_window` for the
    /// engine and CA kinds; `immediate` (default) or `next-maintenance` for maintenance; none
    /// for schema. Another: 422 `invalid_apply`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply: Option<String>,
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

fn schema_kind() -> String {
    "schema".into()
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
    /// `schema`, `engine_major`, `engine_minor`, `ca_certificate` or `maintenance`.
    #[serde(default = "schema_kind")]
    pub kind: String,
    /// The schema version (a number) or the kind's target (a string).
    pub target_version: Target,
    /// When the change is applied (not for schema rollouts).
    #[serde(default)]
    pub apply: Option<String>,
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
            kind: r.kind.clone(),
            target_version: match (&r.target, r.target_version) {
                (Some(t), _) => Target::Named(t.clone()),
                (None, v) => Target::Version(v.unwrap_or_default()),
            },
            apply: r.apply.clone(),
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
