//! The engine report's reads of the `tenants` table: tenants counted by engine major and CA,
//! and those on given majors.

use sqlx::PgExecutor;

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
