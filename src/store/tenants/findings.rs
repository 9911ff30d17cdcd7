//! The reconciler's writes of the `tenants` table: what a round found about each tenant (drift,
//! status, engine version, pending maintenance, CA) and when it last looked.

use sqlx::{PgConnection, PgExecutor};

use super::{Difference, PendingMaintenance, TenantStatus};

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
