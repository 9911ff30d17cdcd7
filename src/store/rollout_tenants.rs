//! The `rollout_tenants` table: each tenant's place and outcome in a rollout (its stage, its
//! state, its migrate job), the counts read from them, and the writes the rollout requests, the
//! conductor's round and the migrate jobs make.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::rollouts::Rollout;
use super::tenants::TenantStatus;
use crate::cloud::maintenance::PendingMaintenance;

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

/// What a tenant's migration job ended with, for its row in the rollout.
pub enum Outcome<'a> {
    Succeeded {
        version: i64,
    },
    /// A rollout of another kind reached its target on the tenant (`now`: what the tenant
    /// runs or has afterwards: engine version, CA, actions applied).
    Reached {
        now: &'a str,
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
    let (state, version, error, class, now) = match outcome {
        Outcome::Succeeded { version } => (TenantState::Succeeded, Some(version), None, None, None),
        Outcome::Reached { now } => (TenantState::Succeeded, None, None, None, Some(now)),
        Outcome::Failed { error, class } => (TenantState::Failed, None, Some(error), class, None),
    };
    sqlx::query(
        "UPDATE rollout_tenants SET state = $4, to_version = COALESCE($5, to_version),
             error = $6, error_class = $7, to_target = COALESCE($8, to_target),
             updated_at = now()
         WHERE rollout_id = $1 AND tenant_id = $2 AND job_id = $3 AND state = 'migrating'",
    )
    .bind(rollout)
    .bind(tenant)
    .bind(job)
    .bind(state)
    .bind(version)
    .bind(error)
    .bind(class)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Fixes a new rollout's tenants: every tenant of its stages' tiers (or of its list),
/// `pending` when ready or being provisioned, `skipped` otherwise; then the canary: the first
/// `canary` ready tenants of the first stage (a tenant being provisioned gets the newest
/// version anyway, and proves nothing about the migration).
pub async fn fix_tenants(conn: &mut PgConnection, rollout: &Rollout) -> Result<(), sqlx::Error> {
    let (tier_names, stage_numbers) = rollout.stage_of_tiers();
    sqlx::query(
        "INSERT INTO rollout_tenants (rollout_id, tenant_id, stage, seq, state, from_version, note)
         SELECT $1, t.id, s.stage,
             row_number() OVER (PARTITION BY s.stage ORDER BY t.id),
             CASE WHEN t.status IN ('provisioning', 'ready') THEN 'pending'
                  ELSE 'skipped' END::rollout_tenant_state,
             t.schema_version,
             CASE WHEN t.status IN ('provisioning', 'ready') THEN NULL
                  ELSE 'the tenant is ' || t.status END
         FROM tenants t JOIN unnest($2::text[], $3::int[]) AS s(tier, stage) ON s.tier = t.tier
         WHERE $4::text[] IS NULL OR t.id = ANY($4)",
    )
    .bind(rollout.id)
    .bind(&tier_names)
    .bind(&stage_numbers)
    .bind(&rollout.tenants)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE rollout_tenants SET stage = 0 WHERE rollout_id = $1 AND tenant_id IN (
             SELECT rt.tenant_id FROM rollout_tenants rt JOIN tenants t ON t.id = rt.tenant_id
             WHERE rt.rollout_id = $1 AND rt.state = 'pending'
             ORDER BY t.status <> 'ready', rt.stage, rt.seq LIMIT $2)",
    )
    .bind(rollout.id)
    .bind(rollout.canary)
    .execute(conn)
    .await?;
    Ok(())
}

/// A halted rollout resumed: its failed tenants go back to `pending`, first in their stage, in
/// the order they failed.
pub async fn requeue_failed(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE rollout_tenants rt SET state = 'pending', job_id = NULL,
             seq = f.n - 1000000, note = 'retried after the rollout was resumed',
             error = NULL, updated_at = now()
         FROM (SELECT tenant_id, row_number() OVER (ORDER BY updated_at, tenant_id) AS n
               FROM rollout_tenants WHERE rollout_id = $1 AND state = 'failed') f
         WHERE rt.rollout_id = $1 AND rt.tenant_id = f.tenant_id",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Tenants of the rollout's tiers that became ready since it began (provisioned at the newest
/// version) count as succeeded.
pub async fn count_new_tenants(
    conn: &mut PgConnection,
    rollout: &Rollout,
) -> Result<(), sqlx::Error> {
    let (tiers, stages) = rollout.stage_of_tiers();
    sqlx::query(
        "INSERT INTO rollout_tenants (rollout_id, tenant_id, stage, seq, state, to_version, note)
         SELECT $1, t.id, s.stage, 0, 'succeeded', t.schema_version,
             'provisioned during the rollout'
         FROM tenants t JOIN unnest($2::text[], $3::int[]) AS s(tier, stage) ON s.tier = t.tier
         WHERE t.created_at > $4 AND t.status = 'ready' AND t.schema_version >= $5
         ON CONFLICT DO NOTHING",
    )
    .bind(rollout.id)
    .bind(&tiers)
    .bind(&stages)
    .bind(rollout.created_at)
    .bind(rollout.target_version)
    .execute(conn)
    .await?;
    Ok(())
}

/// The migrating tenants of a rollout, with their migrate jobs.
pub async fn migrating(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Vec<(String, Option<Uuid>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT tenant_id, job_id FROM rollout_tenants WHERE rollout_id = $1 AND state = 'migrating'",
    )
    .bind(id)
    .fetch_all(conn)
    .await
}

/// A migrating tenant whose job ended without recording its outcome is settled as `state`.
pub async fn settle(
    conn: &mut PgConnection,
    id: Uuid,
    tenant: &str,
    state: TenantState,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE rollout_tenants SET state = $3, error = COALESCE($4, error),
             updated_at = now()
         WHERE rollout_id = $1 AND tenant_id = $2 AND state = 'migrating'",
    )
    .bind(id)
    .bind(tenant)
    .bind(state)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// A pending tenant of a stage, with what its own row says now (`None`: the tenant is gone).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub tenant_id: String,
    pub status: Option<TenantStatus>,
    pub schema_version: Option<i64>,
    pub engine_version: Option<String>,
    pub ca_certificate: Option<String>,
    pub pending_maintenance: Option<sqlx::types::Json<Vec<PendingMaintenance>>>,
    /// When the reconciler last read the instance (and its pending actions).
    pub checked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The pending tenants of `stage`, in order.
pub async fn pending(
    conn: &mut PgConnection,
    id: Uuid,
    stage: i32,
) -> Result<Vec<Pending>, sqlx::Error> {
    sqlx::query_as::<_, Pending>(
        "SELECT rt.tenant_id, t.status, t.schema_version, t.engine_version, t.ca_certificate,
             t.pending_maintenance, t.checked_at
         FROM rollout_tenants rt LEFT JOIN tenants t ON t.id = rt.tenant_id
         WHERE rt.rollout_id = $1 AND rt.stage = $2 AND rt.state = 'pending'
         ORDER BY rt.seq, rt.tenant_id",
    )
    .bind(id)
    .bind(stage)
    .fetch_all(conn)
    .await
}

/// Where a pending tenant goes in a conductor's round.
#[derive(Debug, Clone)]
pub struct Placed {
    pub state: TenantState,
    pub note: Option<String>,
    /// Its migrate job, once started.
    pub job: Option<Uuid>,
    /// The tenant's schema version now: its `to_version` when it succeeds, its
    /// `from_version` when it starts migrating.
    pub version: Option<i64>,
    /// For the other kinds, what the tenant runs or has now (engine version, CA, pending
    /// actions): its `to_target` when it succeeds, its `from_target` when it starts.
    pub target_now: Option<String>,
}

/// Writes where a pending tenant of the rollout went.
pub async fn place(
    conn: &mut PgConnection,
    id: Uuid,
    tenant: &str,
    placed: Placed,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE rollout_tenants SET state = $3, note = $4, job_id = COALESCE($5, job_id),
             to_version = CASE WHEN $3 = 'succeeded' THEN $6 ELSE to_version END,
             from_version = CASE WHEN $3 = 'migrating' THEN $6 ELSE from_version END,
             to_target = CASE WHEN $3 = 'succeeded' THEN $7 ELSE to_target END,
             from_target = CASE WHEN $3 = 'migrating' THEN $7 ELSE from_target END,
             updated_at = now()
         WHERE rollout_id = $1 AND tenant_id = $2",
    )
    .bind(id)
    .bind(tenant)
    .bind(placed.state)
    .bind(placed.note)
    .bind(placed.job)
    .bind(placed.version)
    .bind(placed.target_now)
    .execute(conn)
    .await?;
    Ok(())
}
