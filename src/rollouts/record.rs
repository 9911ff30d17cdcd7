//! The record of each rollout in the control database: the rollout's row, each tenant's place
//! and outcome in it (`rollout_tenants`), and the counts read from them. Plain SQL on the two
//! tables; what starts jobs is in [`super::conduct`] and [`super::requests`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// Mirrors the `rollout_state` enum of the control schema.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "rollout_state", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// Tenants are being migrated.
    Running,
    /// No new tenant starts until it is resumed; running migrations finish.
    Paused,
    /// Failures exceeded `max_failures` (or a canary failed): no new tenant starts.
    Halted,
    /// Every tenant is migrated or skipped.
    Succeeded,
    /// Stopped for good; tenants not started stay as they are.
    Cancelled,
}

impl RolloutState {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Running => "running",
            RolloutState::Paused => "paused",
            RolloutState::Halted => "halted",
            RolloutState::Succeeded => "succeeded",
            RolloutState::Cancelled => "cancelled",
        }
    }

    /// No state follows (a halted rollout may still be resumed or cancelled).
    pub fn is_final(self) -> bool {
        matches!(self, RolloutState::Succeeded | RolloutState::Cancelled)
    }
}

/// Mirrors the `rollout_tenant_state` enum: where one tenant stands in a rollout.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    sqlx::Type,
    utoipa::ToSchema,
)]
#[sqlx(type_name = "rollout_tenant_state", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum TenantState {
    Pending,
    Migrating,
    Succeeded,
    Failed,
    Skipped,
}

impl TenantState {
    pub const ALL: [TenantState; 5] = [
        TenantState::Pending,
        TenantState::Migrating,
        TenantState::Succeeded,
        TenantState::Failed,
        TenantState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TenantState::Pending => "pending",
            TenantState::Migrating => "migrating",
            TenantState::Succeeded => "succeeded",
            TenantState::Failed => "failed",
            TenantState::Skipped => "skipped",
        }
    }
}

/// One row of `rollouts`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Rollout {
    pub id: Uuid,
    pub target_version: i64,
    pub canary: i32,
    pub concurrency: i32,
    pub max_failures: i32,
    /// The stages in order, each a list of tier names.
    pub stages: Json<Vec<Vec<String>>>,
    /// The tenants asked for; `None`: every tenant of the stages' tiers.
    pub tenants: Option<Vec<String>>,
    pub state: RolloutState,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Rollout {
    /// Every tier the stages name, with its stage number (1 for the first stage; 0 is the
    /// canary).
    pub fn stage_of_tiers(&self) -> (Vec<String>, Vec<i32>) {
        let mut tiers = Vec::new();
        let mut stages = Vec::new();
        for (i, stage) in self.stages.0.iter().enumerate() {
            for tier in stage {
                tiers.push(tier.clone());
                stages.push(i as i32 + 1);
            }
        }
        (tiers, stages)
    }
}

/// How many tenants of one stage are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageCounts {
    pub counts: BTreeMap<TenantState, i64>,
}

impl StageCounts {
    pub fn get(&self, state: TenantState) -> i64 {
        self.counts.get(&state).copied().unwrap_or(0)
    }
}

/// A tenant whose migration failed in a rollout.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Failure {
    pub tenant_id: String,
    pub stage: i32,
    pub error: Option<String>,
    pub error_class: Option<String>,
    pub job_id: Option<Uuid>,
}

pub async fn get(executor: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Rollout>, sqlx::Error> {
    sqlx::query_as::<_, Rollout>("SELECT * FROM rollouts WHERE id = $1")
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// The rollout's row, locked for the rest of the transaction.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<Rollout>, sqlx::Error> {
    sqlx::query_as::<_, Rollout>("SELECT * FROM rollouts WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The rollout that runs or is paused, if any.
pub async fn active(executor: impl PgExecutor<'_>) -> Result<Option<Rollout>, sqlx::Error> {
    sqlx::query_as::<_, Rollout>("SELECT * FROM rollouts WHERE state IN ('running', 'paused')")
        .fetch_optional(executor)
        .await
}

/// A page of rollouts, newest first, after `cursor` (the last id of the previous page).
pub async fn list(
    executor: impl PgExecutor<'_>,
    limit: i64,
    cursor: Option<(DateTime<Utc>, Uuid)>,
) -> Result<(Vec<Rollout>, Option<Uuid>), sqlx::Error> {
    let limit = limit.clamp(1, 1000);
    let (at, id) = cursor.unzip();
    let mut rows = sqlx::query_as::<_, Rollout>(
        "SELECT * FROM rollouts
         WHERE $1::timestamptz IS NULL OR (created_at, id) < ($1, $2)
         ORDER BY created_at DESC, id DESC LIMIT $3",
    )
    .bind(at)
    .bind(id)
    .bind(limit + 1)
    .fetch_all(executor)
    .await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok((rows, next))
}

/// The counts of each stage of a rollout (stage 0 is the canary), for every stage that has
/// tenants.
pub async fn counts(
    executor: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<BTreeMap<i32, StageCounts>, sqlx::Error> {
    let rows: Vec<(i32, TenantState, i64)> = sqlx::query_as(
        "SELECT stage, state, count(*) FROM rollout_tenants WHERE rollout_id = $1
         GROUP BY stage, state",
    )
    .bind(id)
    .fetch_all(executor)
    .await?;
    let mut out: BTreeMap<i32, StageCounts> = BTreeMap::new();
    for (stage, state, n) in rows {
        out.entry(stage).or_default().counts.insert(state, n);
    }
    Ok(out)
}

/// The failed tenants of a rollout, earliest first (those that found a migration changed
/// before any other), at most `limit`.
pub async fn failures(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    limit: i64,
) -> Result<Vec<Failure>, sqlx::Error> {
    sqlx::query_as::<_, Failure>(
        "SELECT tenant_id, stage, error, error_class, job_id FROM rollout_tenants
         WHERE rollout_id = $1 AND state = 'failed'
         ORDER BY error_class IS DISTINCT FROM 'migration_changed', updated_at, tenant_id
         LIMIT $2",
    )
    .bind(id)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// Moves a rollout to `state` (with the reason, if any), stamping `finished_at` for a final
/// state.
pub async fn set_state(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    state: RolloutState,
    reason: Option<&str>,
) -> Result<Rollout, sqlx::Error> {
    sqlx::query_as::<_, Rollout>(
        "UPDATE rollouts SET state = $2, reason = COALESCE($3, reason), updated_at = now(),
             finished_at = CASE WHEN $4 THEN now() ELSE NULL END
         WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(state)
    .bind(reason)
    .bind(state.is_final())
    .fetch_one(executor)
    .await
}

/// What a tenant's migration job ended with, for its row in the rollout.
pub enum Outcome<'a> {
    Succeeded {
        version: i64,
    },
    Failed {
        error: &'a str,
        class: Option<&'a str>,
    },
}

/// Records how a tenant's migration ended in its rollout. Only the row the job was started
/// for is written (a later job of the same tenant in a resumed rollout owns the row then).
pub async fn record_outcome(
    conn: &mut PgConnection,
    rollout: Uuid,
    tenant: &str,
    job: Uuid,
    outcome: Outcome<'_>,
) -> Result<(), sqlx::Error> {
    let (state, version, error, class) = match outcome {
        Outcome::Succeeded { version } => (TenantState::Succeeded, Some(version), None, None),
        Outcome::Failed { error, class } => (TenantState::Failed, None, Some(error), class),
    };
    sqlx::query(
        "UPDATE rollout_tenants SET state = $4, to_version = COALESCE($5, to_version),
             error = $6, error_class = $7, updated_at = now()
         WHERE rollout_id = $1 AND tenant_id = $2 AND job_id = $3 AND state = 'migrating'",
    )
    .bind(rollout)
    .bind(tenant)
    .bind(job)
    .bind(state)
    .bind(version)
    .bind(error)
    .bind(class)
    .execute(conn)
    .await?;
    Ok(())
}
