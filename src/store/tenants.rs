//! The `tenants` table: each tenant's row and status, reading and paging, the writes the
//! requests make (in their transactions) and the ones the workflows make (inside their fenced
//! transactions). Holds no secret: the password lives in Secrets Manager only.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};

pub use crate::cloud::maintenance::PendingMaintenance;

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

/// Records that the reconciler looked at these tenants now.
pub async fn mark_checked(
    executor: impl PgExecutor<'_>,
    ids: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tenants SET checked_at = now() WHERE id = ANY($1)")
        .bind(ids)
        .execute(executor)
        .await?;
    Ok(())
}

/// What a workflow's final step writes into the tenant's row.
pub enum TenantUpdate<'a> {
    Ready {
        instance: &'a str,
        host: &'a str,
        port: i32,
        secret_arn: &'a str,
        schema_version: i64,
        /// `None` (a job of an earlier release) leaves what is recorded.
        applied_migrations: Option<&'a BTreeMap<String, String>>,
        engine_version: Option<&'a str>,
        storage_gib: Option<i32>,
    },
    /// The tenant's database was migrated (its status stays as it is).
    Migrated {
        schema_version: i64,
        applied_migrations: &'a BTreeMap<String, String>,
    },
    /// A migration failed: the tenant keeps its status and version, with the error.
    MigrationFailed {
        error: &'a str,
    },
    /// A change (tier, suspend, resume) reached what it asked for.
    Changed {
        tier: &'a str,
        /// `None` leaves the status as it is.
        status: Option<TenantStatus>,
        storage_gib: Option<i32>,
        /// `None` leaves the note as it is; `Some(None)` clears it.
        note: Option<Option<&'a str>>,
    },
    /// A change ended without reaching what it asked for: the tenant keeps its tier and
    /// status, with the cause.
    ChangeFailed {
        error: &'a str,
    },
    Failed {
        error: &'a str,
    },
    Deleted,
    /// An operator re-attached the detached tenant's instance: it is the tenant's again.
    Attached {
        status: TenantStatus,
    },
    /// A re-attach did not prove the instance the tenant's: it stays detached, with why.
    AttachFailed {
        error: &'a str,
    },
    /// A fleet change (minor version, CA, maintenance) reached the instance: what it runs and
    /// has now (`None` keeps what is recorded); the error of an earlier attempt is cleared.
    InstanceChanged {
        engine_version: Option<&'a str>,
        ca_certificate: Option<&'a str>,
        pending_maintenance: Option<&'a [PendingMaintenance]>,
    },
}

/// Writes the tenant's row; the caller's transaction is the job's fence.
pub async fn update(
    conn: &mut PgConnection,
    tenant: &str,
    update: TenantUpdate<'_>,
) -> Result<(), sqlx::Error> {
    let query = match update {
        TenantUpdate::Ready {
            instance,
            host,
            port,
            secret_arn,
            schema_version,
            applied_migrations,
            engine_version,
            storage_gib,
        } => sqlx::query(
            "UPDATE tenants SET status = 'ready', db_instance_id = $2, endpoint_host = $3,
                 endpoint_port = $4, secret_arn = $5, schema_version = $6,
                 engine_version = COALESCE($7, engine_version),
                 storage_gib = COALESCE($8, storage_gib),
                 applied_migrations = COALESCE($9, applied_migrations), error = NULL,
                 updated_at = now()
             WHERE id = $1",
        )
        .bind(tenant)
        .bind(instance)
        .bind(host)
        .bind(port)
        .bind(secret_arn)
        .bind(schema_version)
        .bind(engine_version)
        .bind(storage_gib)
        .bind(applied_migrations.map(sqlx::types::Json)),
        TenantUpdate::Migrated {
            schema_version,
            applied_migrations,
        } => sqlx::query(
            "UPDATE tenants SET schema_version = GREATEST(schema_version, $2),
                 applied_migrations = $3, error = NULL, updated_at = now()
             WHERE id = $1",
        )
        .bind(tenant)
        .bind(schema_version)
        .bind(sqlx::types::Json(applied_migrations)),
        TenantUpdate::Changed {
            tier,
            status,
            storage_gib,
            note,
        } => sqlx::query(
            "UPDATE tenants SET tier = $2, status = COALESCE($3, status), pending_tier = NULL,
                 storage_gib = COALESCE($4, storage_gib),
                 note = CASE WHEN $6 THEN $5 ELSE note END, error = NULL, updated_at = now()
             WHERE id = $1",
        )
        .bind(tenant)
        .bind(tier)
        .bind(status)
        .bind(storage_gib)
        .bind(note.flatten())
        .bind(note.is_some()),
        TenantUpdate::MigrationFailed { error } => {
            sqlx::query("UPDATE tenants SET error = $2, updated_at = now() WHERE id = $1")
                .bind(tenant)
                .bind(error)
        }
        TenantUpdate::ChangeFailed { error } => sqlx::query(
            "UPDATE tenants SET pending_tier = NULL, error = $2, updated_at = now()
             WHERE id = $1",
        )
        .bind(tenant)
        .bind(error),
        // Nothing the row pointed at is left (or the error says what may be).
        TenantUpdate::Failed { error } => sqlx::query(
            "UPDATE tenants SET status = 'failed', error = $2, endpoint_host = NULL,
                 endpoint_port = NULL, pending_tier = NULL, updated_at = now()
             WHERE id = $1",
        )
        .bind(tenant)
        .bind(error),
        TenantUpdate::Deleted => sqlx::query(
            "UPDATE tenants SET status = 'deleted', error = NULL, endpoint_host = NULL,
                 endpoint_port = NULL, updated_at = now()
             WHERE id = $1",
        )
        .bind(tenant),
        TenantUpdate::Attached { status } => sqlx::query(
            "UPDATE tenants SET status = $2, error = NULL, drift = NULL, updated_at = now()
             WHERE id = $1 AND status = 'detached'",
        )
        .bind(tenant)
        .bind(status),
        TenantUpdate::InstanceChanged {
            engine_version,
            ca_certificate,
            pending_maintenance,
        } => sqlx::query(
            "UPDATE tenants SET engine_version = COALESCE($2, engine_version),
                 ca_certificate = COALESCE($3, ca_certificate),
                 pending_maintenance = COALESCE($4, pending_maintenance), error = NULL,
                 updated_at = now()
             WHERE id = $1",
        )
        .bind(tenant)
        .bind(engine_version)
        .bind(ca_certificate)
        .bind(pending_maintenance.map(sqlx::types::Json)),
        TenantUpdate::AttachFailed { error } => {
            sqlx::query("UPDATE tenants SET error = $2, updated_at = now() WHERE id = $1")
                .bind(tenant)
                .bind(error)
        }
    };
    query.execute(conn).await?;
    Ok(())
}

/// The tenant's row, locked for the rest of the transaction.
pub async fn lock(conn: &mut PgConnection, id: &str) -> Result<Option<Tenant>, sqlx::Error> {
    sqlx::query_as::<_, Tenant>("SELECT * FROM tenants WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Records a new tenant, `provisioning` on `tier`; `None` when a tenant of that id exists.
pub async fn insert_provisioning(
    conn: &mut PgConnection,
    id: &str,
    tier: &str,
) -> Result<Option<Tenant>, sqlx::Error> {
    sqlx::query_as::<_, Tenant>(
        "INSERT INTO tenants (id, tier, status) VALUES ($1, $2, 'provisioning')
         ON CONFLICT (id) DO NOTHING RETURNING *",
    )
    .bind(id)
    .bind(tier)
    .fetch_optional(conn)
    .await
}

/// A failed or deleted tenant (or one left mid-way) is provisioned again on `tier`, on a new
/// instance whose identifier the provisioning records.
pub async fn reprovision(
    conn: &mut PgConnection,
    id: &str,
    tier: &str,
) -> Result<Tenant, sqlx::Error> {
    sqlx::query_as::<_, Tenant>(
        "UPDATE tenants SET tier = $2, status = 'provisioning', error = NULL,
             db_instance_id = NULL, from_pool = false, updated_at = now()
         WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(tier)
    .fetch_one(conn)
    .await
}

/// The tenant takes the warm-pool standby `standby` over: its record names the standby's
/// instance from now on.
pub async fn take_standby(
    conn: &mut PgConnection,
    id: &str,
    standby: &str,
) -> Result<Tenant, sqlx::Error> {
    sqlx::query_as::<_, Tenant>(
        "UPDATE tenants SET db_instance_id = $2, from_pool = true WHERE id = $1
         RETURNING *",
    )
    .bind(id)
    .bind(standby)
    .fetch_one(conn)
    .await
}

/// The tenant is being deprovisioned.
pub async fn mark_deprovisioning(conn: &mut PgConnection, id: &str) -> Result<Tenant, sqlx::Error> {
    sqlx::query_as::<_, Tenant>(
        "UPDATE tenants SET status = 'deprovisioning', updated_at = now() WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .fetch_one(conn)
    .await
}

/// A tier change to `tier` is in progress.
pub async fn set_pending_tier(
    conn: &mut PgConnection,
    id: &str,
    tier: &str,
) -> Result<Tenant, sqlx::Error> {
    sqlx::query_as::<_, Tenant>(
        "UPDATE tenants SET pending_tier = $2, updated_at = now() WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(tier)
    .fetch_one(conn)
    .await
}

/// What the reconciler found about a tenant, as its row records it.
pub struct Found<'a> {
    pub drift: &'a [Difference],
    pub status: TenantStatus,
    pub error: Option<&'a str>,
    /// The version the instance runs (`None`: keep the recorded one).
    pub engine_version: Option<&'a str>,
    /// RDS's pending maintenance actions (`None`: keep the recorded ones).
    pub pending_maintenance: Option<&'a [PendingMaintenance]>,
    /// The instance's CA (`None`: keep the recorded one).
    pub ca_certificate: Option<&'a str>,
}

/// What the reconciler found: the drift, the status the tenant should have and its error, the
/// engine version and pending maintenance RDS describes; `checked_at` is now, and
/// `updated_at` moves only when the status changes.
pub async fn record_findings(
    conn: &mut PgConnection,
    id: &str,
    found: &Found<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tenants SET drift = $2, status = $3, error = $4, checked_at = now(),
             engine_version = COALESCE($5, engine_version),
             pending_maintenance = COALESCE($6, pending_maintenance),
             ca_certificate = COALESCE($7, ca_certificate),
             updated_at = CASE WHEN status <> $3 THEN now() ELSE updated_at END
         WHERE id = $1",
    )
    .bind(id)
    .bind(sqlx::types::Json(found.drift))
    .bind(found.status)
    .bind(found.error)
    .bind(found.engine_version)
    .bind(found.pending_maintenance.map(sqlx::types::Json))
    .bind(found.ca_certificate)
    .execute(conn)
    .await?;
    Ok(())
}

/// A failed tenant goes back to `status` (`provisioning` or `deprovisioning`) for a retry of
/// its job; `cold` forgets the instance its record named (a provisioning retried starts cold).
pub async fn reset_for_retry(
    conn: &mut PgConnection,
    id: &str,
    status: TenantStatus,
    cold: bool,
) -> Result<Tenant, sqlx::Error> {
    sqlx::query_as::<_, Tenant>(
        "UPDATE tenants SET status = $2, error = NULL, updated_at = now(),
             db_instance_id = CASE WHEN $3 THEN NULL ELSE db_instance_id END,
             from_pool = from_pool AND NOT $3
         WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(status)
    .bind(cold)
    .fetch_one(conn)
    .await
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

/// How many tenants run one engine major on one CA (one row of the engine report).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EngineCount {
    /// The major (`16`); `None`: not known yet.
    pub major: Option<String>,
    pub ca_certificate: Option<String>,
    pub tenants: i64,
}

/// The tenants that have an instance (ready, suspended, degraded, detached), counted by engine
/// major and CA (one aggregate).
pub async fn engine_census(executor: impl PgExecutor<'_>) -> Result<Vec<EngineCount>, sqlx::Error> {
    sqlx::query_as::<_, EngineCount>(
        "SELECT NULLIF(split_part(engine_version, '.', 1), '') AS major, ca_certificate,
             count(*) AS tenants
         FROM tenants WHERE status IN ('ready', 'suspended', 'degraded', 'detached')
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(executor)
    .await
}

/// The tenants with an instance on one of these majors, in id order, at most `limit`.
pub async fn on_majors(
    executor: impl PgExecutor<'_>,
    majors: &[String],
    limit: i64,
) -> Result<Vec<(String, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, engine_version FROM tenants
         WHERE status IN ('ready', 'suspended', 'degraded', 'detached')
           AND split_part(engine_version, '.', 1) = ANY($1)
         ORDER BY id LIMIT $2",
    )
    .bind(majors)
    .bind(limit)
    .fetch_all(executor)
    .await
}
