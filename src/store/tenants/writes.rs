//! The writes of the `tenants` table that requests make in their transactions (a new tenant, a
//! retry, a tier change, deprovisioning) and the final writes of the workflows (in their fenced
//! transactions).

use std::collections::BTreeMap;

use sqlx::PgConnection;

use super::{PendingMaintenance, Tenant, TenantStatus};

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
        /// The major the tenant should run from now on (the setting's, at provisioning).
        engine_major: &'a str,
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
    /// An engine upgrade switched the tenant over to its new instance (which usually took the
    /// old one's identifier and endpoint) on a new version.
    Upgraded {
        instance: &'a str,
        host: &'a str,
        port: i32,
        engine_version: &'a str,
        /// The major it moved to, which the reconciler compares its instance with from now on.
        engine_major: &'a str,
    },
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
            engine_major,
        } => sqlx::query(
            "UPDATE tenants SET status = 'ready', db_instance_id = $2, endpoint_host = $3,
                 endpoint_port = $4, secret_arn = $5, schema_version = $6,
                 engine_version = COALESCE($7, engine_version),
                 storage_gib = COALESCE($8, storage_gib),
                 applied_migrations = COALESCE($9, applied_migrations), error = NULL,
                 engine_major = $10, updated_at = now()
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
        .bind(applied_migrations.map(sqlx::types::Json))
        .bind(engine_major),
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
        TenantUpdate::Upgraded {
            instance,
            host,
            port,
            engine_version,
            engine_major,
        } => sqlx::query(
            "UPDATE tenants SET db_instance_id = $2, endpoint_host = $3, endpoint_port = $4,
                 engine_version = $5, engine_major = $6, pending_tier = NULL, error = NULL,
                 updated_at = now()
             WHERE id = $1",
        )
        .bind(tenant)
        .bind(instance)
        .bind(host)
        .bind(port)
        .bind(engine_version)
        .bind(engine_major),
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
