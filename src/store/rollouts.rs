//! The `rollouts` table: a rollout's row and state, reading and paging, and the writes the
//! rollout requests ([`crate::rollouts::requests`]) and the conductor's round
//! ([`crate::rollouts::conduct`]) make. Each tenant's place in a rollout is
//! [`super::rollout_tenants`].

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

/// What a rollout moves the fleet to (`rollouts.kind`, text: a row of a later release's kind
/// reads as unknown and is not conducted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RolloutKind {
    /// A tenant-schema version (`target_version`, a number): a `migrate` job per tenant.
    Schema,
    /// A PostgreSQL major (`"17"`): an `engine_upgrade` job (Blue/Green) per tenant.
    EngineMajor,
    /// A minor of the tenants' major (`"16.9"`): ModifyDBInstance `EngineVersion`.
    EngineMinor,
    /// A CA identifier (`"rds-ca-rsa4096-g1"`): ModifyDBInstance `CACertificateIdentifier`.
    CaCertificate,
    /// RDS's pending maintenance actions (`"system-update"`, ..., or `"all"`):
    /// ApplyPendingMaintenanceAction.
    Maintenance,
}

impl RolloutKind {
    pub const ALL: [RolloutKind; 5] = [
        RolloutKind::Schema,
        RolloutKind::EngineMajor,
        RolloutKind::EngineMinor,
        RolloutKind::CaCertificate,
        RolloutKind::Maintenance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RolloutKind::Schema => "schema",
            RolloutKind::EngineMajor => "engine_major",
            RolloutKind::EngineMinor => "engine_minor",
            RolloutKind::CaCertificate => "ca_certificate",
            RolloutKind::Maintenance => "maintenance",
        }
    }

    pub fn parse(name: &str) -> Option<RolloutKind> {
        RolloutKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One row of `rollouts`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Rollout {
    pub id: Uuid,
    /// `schema`, `engine_major`, ... (see [`RolloutKind`]); rows of earlier releases: `schema`.
    pub kind: String,
    /// A schema rollout's tenant-schema version; `None` for the other kinds.
    pub target_version: Option<i64>,
    /// The other kinds' target (engine version, CA identifier, maintenance action).
    pub target: Option<String>,
    /// When the change is applied (`None` for schema rollouts).
    pub apply: Option<String>,
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
    /// Its kind; `None` for a kind this release does not know.
    pub fn kind(&self) -> Option<RolloutKind> {
        RolloutKind::parse(&self.kind)
    }

    /// The target as shown: the schema version or the kind's target.
    pub fn target_text(&self) -> String {
        match (&self.target, self.target_version) {
            (Some(t), _) => t.clone(),
            (None, Some(v)) => v.to_string(),
            (None, None) => String::new(),
        }
    }

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

/// The running rollout, locked for the rest of the transaction; `None` when none runs or
/// another transaction holds it (another conductor's round).
pub async fn lock_running(conn: &mut PgConnection) -> Result<Option<Rollout>, sqlx::Error> {
    sqlx::query_as::<_, Rollout>(
        "SELECT * FROM rollouts WHERE state = 'running' FOR UPDATE SKIP LOCKED",
    )
    .fetch_optional(conn)
    .await
}

/// What a new rollout is recorded with.
#[derive(Debug, Clone)]
pub struct NewRow<'a> {
    pub id: Uuid,
    pub kind: RolloutKind,
    pub target_version: Option<i64>,
    pub target: Option<&'a str>,
    pub apply: Option<&'a str>,
    pub canary: i32,
    pub concurrency: i32,
    pub max_failures: i32,
    pub stages: &'a [Vec<String>],
    pub tenants: Option<&'a [String]>,
}

/// Records a new rollout, `running`; `None` when another one runs or is paused (one at a
/// time, by a partial unique index).
pub async fn insert(
    conn: &mut PgConnection,
    new: &NewRow<'_>,
) -> Result<Option<Rollout>, sqlx::Error> {
    sqlx::query_as::<_, Rollout>(
        "INSERT INTO rollouts (id, target_version, canary, concurrency, max_failures, stages,
             tenants, kind, target, apply)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT ((true)) WHERE state IN ('running', 'paused') DO NOTHING
         RETURNING *",
    )
    .bind(new.id)
    .bind(new.target_version)
    .bind(new.canary)
    .bind(new.concurrency)
    .bind(new.max_failures)
    .bind(Json(new.stages))
    .bind(new.tenants)
    .bind(new.kind.as_str())
    .bind(new.target)
    .bind(new.apply)
    .fetch_optional(conn)
    .await
}

/// A rollout steered to `state`: running clears its reason, another state keeps it unless
/// `reason` is given; `finished_at` is stamped for a final state. A resume while another
/// rollout runs fails with a unique violation (`23505`).
pub async fn steer(
    conn: &mut PgConnection,
    id: Uuid,
    state: RolloutState,
    reason: Option<&str>,
) -> Result<Rollout, sqlx::Error> {
    sqlx::query_as::<_, Rollout>(
        "UPDATE rollouts SET state = $2,
             reason = CASE WHEN $2 = 'running' THEN NULL ELSE COALESCE($3, reason) END,
             updated_at = now(), finished_at = CASE WHEN $4 THEN now() ELSE NULL END
         WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(state)
    .bind(reason)
    .bind(state.is_final())
    .fetch_one(conn)
    .await
}
