//! Asking for a ready tenant to move to a new PostgreSQL major: an `engine_upgrade` job, in one
//! transaction. What RDS allows (`ValidUpgradeTarget`, extensions) is the job's first step's to
//! check; the request refuses what can never be an upgrade.

use std::cmp::Ordering;

use sqlx::PgPool;

use super::enqueue::{enqueue, note_job, note_tenant};
use super::error::TenantError;
use crate::audit::{self, Trail};
use crate::queue::{self, Job};
use crate::store::tenants::{self, Tenant, TenantStatus};
use crate::tenant_id::{IntoTenantId, TenantId};
use crate::workflow::engine_version::{compare, major};
use crate::workflow::upgrade::{self, Apply, EngineUpgradeArgs, engine_upgrade_job};

/// Asks for tenant `id` to be upgraded to `target_major` (e.g. `"17"`). A replay while the same
/// upgrade runs returns its job (`created` false).
pub async fn request_engine_upgrade(
    pool: &PgPool,
    id: impl IntoTenantId,
    target_major: &str,
    apply: Apply,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    let id = id.into_tenant_id()?;
    engine_upgrade(pool, None, &id, target_major, apply, max_attempts).await
}

/// [`request_engine_upgrade`] asked for by a caller whose `trail` is written with the change.
pub async fn request_engine_upgrade_by(
    pool: &PgPool,
    trail: &Trail,
    id: impl IntoTenantId,
    target_major: &str,
    apply: Apply,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    let id = id.into_tenant_id()?;
    engine_upgrade(pool, Some(trail), &id, target_major, apply, max_attempts).await
}

/// A major version as RDS spells one: digits only (`17`), not a minor.
fn valid_major(text: &str) -> bool {
    (1..=3).contains(&text.len())
        && text.chars().all(|c| c.is_ascii_digit())
        && !text.starts_with('0')
}

async fn engine_upgrade(
    pool: &PgPool,
    trail: Option<&Trail>,
    id: &TenantId,
    target: &str,
    apply: Apply,
    max_attempts: i32,
) -> Result<(Tenant, Job, bool), TenantError> {
    note_tenant(trail, id);
    if !valid_major(target) {
        return Err(TenantError::InvalidTargetVersion(target.to_string()));
    }
    let mut tx = pool.begin().await?;
    let tenant = tenants::lock(&mut tx, id)
        .await?
        .ok_or_else(|| TenantError::NotFound(id.to_string()))?;
    if let Some(job) = queue::active_job(&mut *tx, id).await? {
        if job.kind == upgrade::KIND && job.args.0["target_major"].as_str() == Some(target) {
            note_job(trail, &job);
            return Ok((tenant, job, false));
        }
        return Err(TenantError::in_progress(id, &job));
    }
    if tenant.status == TenantStatus::Detached {
        return Err(TenantError::Detached(id.to_string()));
    }
    if tenant.status != TenantStatus::Ready {
        return Err(TenantError::NotApplicable {
            id: id.to_string(),
            status: tenant.status.as_str(),
            wanted: TenantStatus::Ready,
            reason: "only a ready tenant is upgraded".into(),
        });
    }
    if let Some(current) = &tenant.engine_version
        && compare(&major(current), target) != Ordering::Less
    {
        return Err(TenantError::NotAnUpgrade {
            id: id.to_string(),
            current: current.clone(),
            target: target.to_string(),
        });
    }
    let args = EngineUpgradeArgs {
        target_major: target.to_string(),
        apply,
        rollout: None,
    };
    let (job, created) = enqueue(&mut tx, engine_upgrade_job(id, &args, max_attempts)).await?;
    note_job(trail, &job);
    audit::commit(tx, trail, if created { 202 } else { 200 }).await?;
    Ok((tenant, job, created))
}

#[cfg(test)]
mod tests {
    use super::valid_major;

    #[test]
    fn only_a_major_is_a_target() {
        for ok in ["17", "9", "100"] {
            assert!(valid_major(ok), "{ok}");
        }
        for bad in ["", "17.4", "v17", "017", "1000", " 17"] {
            assert!(!valid_major(bad), "{bad}");
        }
    }
}
