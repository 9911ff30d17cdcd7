//! The `tenants` table: each tenant's row and status, reading and paging here; the writes of
//! requests and workflows in [`writes`], the reconciler's in [`findings`], the engine report's
//! reads in [`engines`]. Holds no secret: the password lives in Secrets Manager only.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;

pub use crate::cloud::maintenance::PendingMaintenance;
pub use engines::{EngineCount, engine_census, on_majors};
pub use findings::{Found, mark_checked, record_findings};
pub use writes::{
    TenantUpdate, insert_provisioning, lock, mark_deprovisioning, reprovision, reset_for_retry,
    set_pending_tier, take_standby, update,
};

mod engines;
mod findings;
mod writes;

/// Mirrors the `tenant_status` enum of the control schema.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "tenant_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Provisioning,
    Ready,
    Failed,
    Deprovisioning,
    Deleted,
    /// The instance is stopped (its storage and backups kept) until the tenant is resumed.
    Suspended,
    /// The instance is gone (deleted behind tenantd's back): nothing is re-created.
    Lost,
    /// The instance is in a state only people can fix (`storage-full`, `incompatible-*`).
    Degraded,
    /// The instance lost the tags that make it this deployment's (`ManagedBy`, `Environment`,
    /// `TenantId`): nothing changes it until an operator re-attaches it.
    Detached,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Provisioning => "provisioning",
            TenantStatus::Ready => "ready",
            TenantStatus::Failed => "failed",
            TenantStatus::Deprovisioning => "deprovisioning",
            TenantStatus::Deleted => "deleted",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Lost => "lost",
            TenantStatus::Degraded => "degraded",
            TenantStatus::Detached => "detached",
        }
    }
}

/// One row of `tenants`. Holds no secret: the password lives in Secrets Manager only.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct Tenant {
    pub id: String,
    pub tier: String,
    pub status: TenantStatus,
    pub db_instance_id: Option<String>,
    pub endpoint_host: Option<String>,
    pub endpoint_port: Option<i32>,
    pub secret_arn: Option<String>,
    pub schema_version: Option<i64>,
    /// The PostgreSQL version the instance runs (e.g. `16.8`).
    pub engine_version: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The tier a change in progress moves the tenant to.
    pub pending_tier: Option<String>,
    /// The storage the instance has allocated, in GiB.
    pub storage_gib: Option<i32>,
    /// What the last change could not do as asked (e.g. storage kept after a downgrade).
    pub note: Option<String>,
    /// What the reconciler found different from the desired state (`None`: never looked).
    pub drift: Option<sqlx::types::Json<Vec<Difference>>>,
    /// When the reconciler last looked.
    pub checked_at: Option<DateTime<Utc>>,
    /// The tenant migrations its database has, version → checksum (hex), as tenantd last
    /// applied them (`None` for tenants migrated by earlier releases).
    pub applied_migrations: Option<sqlx::types::Json<BTreeMap<String, String>>>,
    /// The instance was a warm-pool standby the tenant took over.
    pub from_pool: bool,
    /// RDS's pending maintenance actions for the instance, as the reconciler last read them
    /// (`None`: not read yet).
    pub pending_maintenance: Option<sqlx::types::Json<Vec<PendingMaintenance>>>,
    /// The CA the instance's certificate is issued by (`CACertificateIdentifier`), as the
    /// reconciler last described it or a CA rotation recorded it (`None`: not known yet).
    pub ca_certificate: Option<String>,
    /// The engine major the tenant should run (`16`): recorded at provisioning, moved by an
    /// engine upgrade. `None` for tenants of earlier releases, which follow
    /// `TENANTD_ENGINE_VERSION`.
    pub engine_major: Option<String>,
}

/// One setting whose actual value differs from the desired one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Difference {
    pub field: String,
    pub expected: String,
    pub actual: String,
}

pub async fn get(executor: impl PgExecutor<'_>, id: &str) -> Result<Option<Tenant>, sqlx::Error> {
    sqlx::query_as::<_, Tenant>("SELECT * FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// Which tenants a listing shows: all by default.
#[derive(Debug, Clone, Default)]
pub struct TenantFilter {
    pub status: Option<TenantStatus>,
    pub tier: Option<String>,
    /// Ids starting with this (a valid id's characters only, so no `LIKE` pattern).
    pub prefix: Option<String>,
    /// Below this schema version (never migrated counts as 0).
    pub schema_version_below: Option<i64>,
    /// On this engine version: a major (`16`: any 16.x) or an exact version (`16.9`).
    pub engine_version: Option<String>,
    /// On this CA (`rds-ca-rsa4096-g1`).
    pub ca_certificate: Option<String>,
}

/// A page of tenants in id order, filtered, after `cursor` (the last id of the previous page).
/// Returns the page and the cursor of the next one, if there is more.
pub async fn list(
    executor: impl PgExecutor<'_>,
    filter: &TenantFilter,
    limit: i64,
    cursor: Option<&str>,
) -> Result<(Vec<Tenant>, Option<String>), sqlx::Error> {
    let limit = limit.clamp(1, 1000);
    let mut rows = sqlx::query_as::<_, Tenant>(
        "SELECT * FROM tenants
         WHERE ($1::tenant_status IS NULL OR status = $1) AND ($2::text IS NULL OR id > $2)
           AND ($4::text IS NULL OR tier = $4) AND ($5::text IS NULL OR starts_with(id, $5))
           AND ($6::bigint IS NULL OR COALESCE(schema_version, 0) < $6)
           AND ($7::text IS NULL OR engine_version = $7 OR split_part(engine_version, '.', 1) = $7)
           AND ($8::text IS NULL OR ca_certificate = $8)
         ORDER BY id LIMIT $3",
    )
    .bind(filter.status)
    .bind(cursor)
    .bind(limit + 1)
    .bind(filter.tier.as_deref())
    .bind(filter.prefix.as_deref())
    .bind(filter.schema_version_below)
    .bind(filter.engine_version.as_deref())
    .bind(filter.ca_certificate.as_deref())
    .fetch_all(executor)
    .await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|t| t.id.clone())
    } else {
        None
    };
    Ok((rows, next))
}

/// How many tenants there are of each status and tier, and how many of those have drift.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CensusRow {
    pub status: TenantStatus,
    pub tier: String,
    pub tenants: i64,
    pub drifted: i64,
}

/// The whole fleet counted by status and tier (one aggregate).
pub async fn census(executor: impl PgExecutor<'_>) -> Result<Vec<CensusRow>, sqlx::Error> {
    sqlx::query_as::<_, CensusRow>(
        "SELECT status, tier, count(*) AS tenants,
                count(*) FILTER (WHERE jsonb_array_length(COALESCE(drift, '[]')) > 0) AS drifted
         FROM tenants GROUP BY status, tier ORDER BY status, tier",
    )
    .fetch_all(executor)
    .await
}

/// The tenants the reconciler looks at: ready, suspended, lost and degraded ones, in id order.
pub async fn reconcilable(executor: impl PgExecutor<'_>) -> Result<Vec<Tenant>, sqlx::Error> {
    sqlx::query_as::<_, Tenant>(
        "SELECT * FROM tenants
         WHERE status IN ('ready', 'suspended', 'lost', 'degraded', 'detached')
         ORDER BY id",
    )
    .fetch_all(executor)
    .await
}

/// The instances the records of these tenants name; tenants whose record names none (or
/// that do not exist) are left out.
pub async fn recorded_instances(
    executor: impl PgExecutor<'_>,
    ids: &[String],
) -> Result<HashMap<String, String>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, db_instance_id FROM tenants
         WHERE id = ANY($1) AND db_instance_id IS NOT NULL",
    )
    .bind(ids)
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Which of `ids` are recorded tenants.
pub async fn existing(
    executor: impl PgExecutor<'_>,
    ids: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM tenants WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(executor)
        .await
}
