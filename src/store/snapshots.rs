//! The final snapshots tenantd asked RDS for (`final_snapshots`): recorded before the delete
//! that takes one, so that the snapshot cleaner deletes only what this deployment took. A
//! snapshot nobody recorded here is never touched.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// One recorded final snapshot.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FinalSnapshot {
    pub identifier: String,
    pub tenant_id: String,
    pub job_id: Uuid,
    pub instance_id: String,
    pub environment: String,
    pub taken_at: DateTime<Utc>,
    pub state: String,
    pub ended_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
}

/// How a recorded snapshot's life ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The cleaner deleted it.
    Deleted,
    /// It does not exist (never taken, or deleted by someone else).
    Gone,
    /// Its tags no longer make it this deployment's: left alone for good.
    Kept,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            End::Deleted => "deleted",
            End::Gone => "gone",
            End::Kept => "kept",
        }
    }
}

/// What a final snapshot is recorded with.
#[derive(Debug, Clone, Copy)]
pub struct Taken<'a> {
    pub identifier: &'a str,
    pub tenant: &'a str,
    pub job: Uuid,
    pub instance: &'a str,
    pub environment: &'a str,
}

/// Records a final snapshot about to be asked for; recording it again changes nothing.
pub async fn record(conn: &mut PgConnection, taken: Taken<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO final_snapshots (identifier, tenant_id, job_id, instance_id, environment)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (identifier) DO NOTHING",
    )
    .bind(taken.identifier)
    .bind(taken.tenant)
    .bind(taken.job)
    .bind(taken.instance)
    .bind(taken.environment)
    .execute(conn)
    .await?;
    Ok(())
}

/// Up to `limit` recorded snapshots of `environment` taken more than `retention` ago, oldest
/// first.
pub async fn due(
    executor: impl PgExecutor<'_>,
    environment: &str,
    retention: Duration,
    limit: i64,
) -> Result<Vec<FinalSnapshot>, sqlx::Error> {
    sqlx::query_as::<_, FinalSnapshot>(
        "SELECT * FROM final_snapshots
         WHERE environment = $1 AND state = 'recorded'
           AND taken_at < now() - make_interval(secs => $2)
         ORDER BY taken_at LIMIT $3",
    )
    .bind(environment)
    .bind(retention.as_secs_f64())
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// Ends a recorded snapshot's life: deleted, gone or kept, with why.
pub async fn end(
    executor: impl PgExecutor<'_>,
    identifier: &str,
    how: End,
    note: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE final_snapshots SET state = $2, ended_at = now(), note = $3
         WHERE identifier = $1 AND state = 'recorded'",
    )
    .bind(identifier)
    .bind(how.as_str())
    .bind(note)
    .execute(executor)
    .await?;
    Ok(())
}

/// Every recorded snapshot of a tenant, oldest first.
pub async fn of_tenant(
    executor: impl PgExecutor<'_>,
    tenant: &str,
) -> Result<Vec<FinalSnapshot>, sqlx::Error> {
    sqlx::query_as::<_, FinalSnapshot>(
        "SELECT * FROM final_snapshots WHERE tenant_id = $1 ORDER BY taken_at",
    )
    .bind(tenant)
    .fetch_all(executor)
    .await
}
