//! Tenants: the record the control database keeps of each one, and the two requests that start
//! its workflows (provision and deprovision). The HTTP API is a thin layer over these.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{PgConnection, PgExecutor, PgPool};

use crate::queue::{self, Enqueued, Job, NewJob, QueueError};
use crate::tier::Tiers;

/// Job kind of the provisioning workflow.
pub const PROVISION: &str = "provision";
/// Job kind of the deprovisioning workflow.
pub const DEPROVISION: &str = "deprovision";

/// Mirrors the `tenant_status` enum of the control schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "tenant_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Provisioning,
    Ready,
    Failed,
    Deprovisioning,
    Deleted,
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
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Why a tenant request was refused.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error(
        "invalid tenant id {0:?}: expected 3 to 40 lowercase letters, digits and single hyphens, a letter first, no hyphen last"
    )]
    InvalidId(String),
    #[error("unknown tier {tier:?}; known tiers: {known}")]
    UnknownTier { tier: String, known: String },
    #[error("tenant {0} not found")]
    NotFound(String),
    /// The request contradicts what the tenant is doing or is.
    #[error("tenant {id}: {reason}")]
    Conflict { id: String, reason: String },
    #[error("control database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Checks a tenant id: `saas-<id>` must be a valid RDS identifier, and the id a DNS label.
pub fn validate_id(id: &str) -> Result<(), TenantError> {
    let bytes = id.as_bytes();
    let ok = (3..=40).contains(&id.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !id.contains("--")
        && !id.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(TenantError::InvalidId(id.to_string()))
    }
}

fn conflict(id: &str, reason: impl Into<String>) -> TenantError {
    TenantError::Conflict {
        id: id.to_string(),
        reason: reason.into(),
    }
}

/// Asks for `id` to be provisioned on `tier`. One transaction: the tenant is created (or, when
/// `failed` or `deleted`, reset) as `provisioning` and its job enqueued. A replay while the job
/// runs, or once the tenant is ready, returns the existing job; `created` says which happened.
pub async fn request_provision(
    pool: &PgPool,
    tiers: &Tiers,
    id: &str,
    tier: &str,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    validate_id(id)?;
    if tiers.get(tier).is_none() {
        return Err(TenantError::UnknownTier {
            tier: tier.to_string(),
            known: tiers.names().join(", "),
        });
    }
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query_as::<_, Tenant>(
        "INSERT INTO tenants (id, tier, status) VALUES ($1, $2, 'provisioning')
         ON CONFLICT (id) DO NOTHING RETURNING *",
    )
    .bind(id)
    .bind(tier)
    .fetch_optional(&mut *tx)
    .await?;
    let tenant = match inserted {
        Some(tenant) => tenant,
        None => {
            let existing = lock(&mut tx, id).await?.expect("the insert found it");
            if let Some(job) = queue::active_job(&mut *tx, id).await? {
                return match job.kind.as_str() {
                    PROVISION if existing.tier == tier => Ok((existing, job, false)),
                    PROVISION => Err(conflict(
                        id,
                        format!("is being provisioned as tier {}", existing.tier),
                    )),
                    _ => Err(conflict(id, "is being deprovisioned")),
                };
            }
            if existing.status == TenantStatus::Ready {
                if existing.tier != tier {
                    return Err(conflict(
                        id,
                        format!(
                            "is ready as tier {}; changing tiers is not supported",
                            existing.tier
                        ),
                    ));
                }
                let job = latest_job(&mut *tx, id, PROVISION)
                    .await?
                    .ok_or_else(|| conflict(id, "is ready but has no provisioning job"))?;
                return Ok((existing, job, false));
            }
            // failed, deleted, or left mid-way: provision (again).
            sqlx::query_as::<_, Tenant>(
                "UPDATE tenants SET tier = $2, status = 'provisioning', error = NULL,
                     updated_at = now()
                 WHERE id = $1 RETURNING *",
            )
            .bind(id)
            .bind(tier)
            .fetch_one(&mut *tx)
            .await?
        }
    };
    let new = NewJob::new(PROVISION, "credentials", max_attempts)
        .tenant(id)
        .args(json!({ "tier": tier }));
    let (job, created) = match queue::enqueue(&mut tx, new).await? {
        Enqueued::Created(job) => (job, true),
        Enqueued::Existing(job) => (job, false),
    };
    tx.commit().await?;
    Ok((tenant, job, created))
}

/// Asks for `id` to be deprovisioned, with a final snapshot unless `final_snapshot` is false.
/// Refused while the tenant is being provisioned; a replay returns the existing job.
pub async fn request_deprovision(
    pool: &PgPool,
    id: &str,
    final_snapshot: bool,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    validate_id(id)?;
    let mut tx = pool.begin().await?;
    let tenant = lock(&mut tx, id)
        .await?
        .ok_or_else(|| TenantError::NotFound(id.to_string()))?;
    if let Some(job) = queue::active_job(&mut *tx, id).await? {
        return match job.kind.as_str() {
            DEPROVISION => Ok((tenant, job, false)),
            _ => Err(conflict(
                id,
                "is being provisioned; cancel that job or wait for it to end",
            )),
        };
    }
    if tenant.status == TenantStatus::Deleted {
        let job = latest_job(&mut *tx, id, DEPROVISION)
            .await?
            .ok_or_else(|| conflict(id, "is already deleted"))?;
        return Ok((tenant, job, false));
    }
    let tenant = sqlx::query_as::<_, Tenant>(
        "UPDATE tenants SET status = 'deprovisioning', updated_at = now() WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let new = NewJob::new(DEPROVISION, "delete_alarms", max_attempts)
        .tenant(id)
        .args(json!({ "final_snapshot": final_snapshot }));
    let (job, created) = match queue::enqueue(&mut tx, new).await? {
        Enqueued::Created(job) => (job, true),
        Enqueued::Existing(job) => (job, false),
    };
    tx.commit().await?;
    Ok((tenant, job, created))
}

pub async fn get(executor: impl PgExecutor<'_>, id: &str) -> Result<Option<Tenant>, TenantError> {
    Ok(
        sqlx::query_as::<_, Tenant>("SELECT * FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(executor)
            .await?,
    )
}

/// A page of tenants in id order, optionally of one status, after `cursor` (the last id of the
/// previous page). Returns the page and the cursor of the next one, if there is more.
pub async fn list(
    executor: impl PgExecutor<'_>,
    status: Option<TenantStatus>,
    limit: i64,
    cursor: Option<&str>,
) -> Result<(Vec<Tenant>, Option<String>), TenantError> {
    let limit = limit.clamp(1, 1000);
    let mut rows = sqlx::query_as::<_, Tenant>(
        "SELECT * FROM tenants
         WHERE ($1::tenant_status IS NULL OR status = $1) AND ($2::text IS NULL OR id > $2)
         ORDER BY id LIMIT $3",
    )
    .bind(status)
    .bind(cursor)
    .bind(limit + 1)
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

async fn lock(conn: &mut PgConnection, id: &str) -> Result<Option<Tenant>, TenantError> {
    Ok(
        sqlx::query_as::<_, Tenant>("SELECT * FROM tenants WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

async fn latest_job(
    executor: impl PgExecutor<'_>,
    id: &str,
    kind: &str,
) -> Result<Option<Job>, TenantError> {
    Ok(sqlx::query_as::<_, Job>(
        "SELECT * FROM jobs WHERE tenant_id = $1 AND kind = $2 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(id)
    .bind(kind)
    .fetch_optional(executor)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_follow_the_rds_identifier_rules() {
        for ok in ["acme", "a1b", "acme-corp-2", &"a".repeat(40)] {
            validate_id(ok).unwrap();
        }
        for bad in [
            "ab",
            "1acme",
            "Acme",
            "acme-",
            "ac--me",
            "acme_corp",
            "ac me",
            "",
            &"a".repeat(41),
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
