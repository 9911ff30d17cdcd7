//! The warm pool's standbys, in one place: what a standby is called (its [`StandbyId`],
//! `<prefix>pool-<12 hex digits>`, and the tenant ids that would collide with one), its row in
//! `pool_standbys` with its guarded state changes (creating → available → claimed; creating or
//! available → retiring → gone), the claim a tenant request makes in its own transaction, and
//! the figures per tier.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};

use super::tenants::{self, Tenant};
use crate::config::ProvisioningSettings;

/// What follows the instance prefix in a standby's identifier; no new tenant id starts with it.
pub const INFIX: &str = "pool-";

/// A warm-pool standby's identifier, which is its instance's: `<prefix>pool-<12 hex digits>`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct StandbyId(String);

impl StandbyId {
    /// A new standby's identifier.
    pub fn generate(settings: &ProvisioningSettings) -> Self {
        let random = uuid::Uuid::new_v4().simple().to_string();
        StandbyId(format!("{}{}", instance_prefix(settings), &random[..12]))
    }

    /// An identifier as recorded (in a row or a job's arguments).
    pub fn recorded(id: impl Into<String>) -> Self {
        StandbyId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for StandbyId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StandbyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The start of every standby's instance identifier: `<prefix>pool-`.
pub fn instance_prefix(settings: &ProvisioningSettings) -> String {
    format!("{}{INFIX}", settings.instance_prefix)
}

/// Whether a tenant of this id would have a standby's instance name (`<prefix>pool-...`): such
/// ids are refused for new tenants (tenants of earlier releases keep theirs).
pub fn reserves(tenant: &str) -> bool {
    tenant.starts_with(INFIX)
}

/// Mirrors the `standby_state` enum of the control schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "standby_state", rename_all = "snake_case")]
pub enum StandbyState {
    Creating,
    Available,
    Claimed,
    Retiring,
}

impl StandbyState {
    pub fn as_str(self) -> &'static str {
        match self {
            StandbyState::Creating => "creating",
            StandbyState::Available => "available",
            StandbyState::Claimed => "claimed",
            StandbyState::Retiring => "retiring",
        }
    }
}

/// One row of `pool_standbys`. Holds no secret: the password lives in Secrets Manager only.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Standby {
    /// The instance identifier.
    pub id: StandbyId,
    pub tier: String,
    pub state: StandbyState,
    pub secret_arn: Option<String>,
    pub endpoint_host: Option<String>,
    pub endpoint_port: Option<i32>,
    pub engine_version: Option<String>,
    pub storage_gib: Option<i32>,
    pub schema_version: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub available_at: Option<DateTime<Utc>>,
    pub claimed_by: Option<String>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
    /// The leadership term whose pool keeper started it (`None`: an earlier release did).
    pub leader_epoch: Option<i64>,
}

/// What a standby's creation found once its instance was available and migrated.
#[derive(Debug, Clone)]
pub struct Ready<'a> {
    pub secret_arn: &'a str,
    pub host: &'a str,
    pub port: i32,
    pub engine_version: Option<&'a str>,
    pub storage_gib: Option<i32>,
    pub schema_version: i64,
}

pub async fn get(executor: impl PgExecutor<'_>, id: &str) -> Result<Option<Standby>, sqlx::Error> {
    sqlx::query_as::<_, Standby>("SELECT * FROM pool_standbys WHERE id = $1")
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// Every standby not claimed yet (creating, available, retiring), oldest first.
pub async fn unclaimed(executor: impl PgExecutor<'_>) -> Result<Vec<Standby>, sqlx::Error> {
    sqlx::query_as::<_, Standby>(
        "SELECT * FROM pool_standbys WHERE state <> 'claimed' ORDER BY created_at, id",
    )
    .fetch_all(executor)
    .await
}

/// Takes the oldest available standby of `tier` for `tenant`, if there is one, and names its
/// instance on the tenant's record: a row another transaction is claiming is skipped, and a
/// claimed row never becomes available again, so a standby is claimed at most once. Call it in
/// the transaction that records the tenant.
pub async fn claim(
    conn: &mut PgConnection,
    tier: &str,
    tenant: &str,
) -> Result<Option<(Standby, Tenant)>, sqlx::Error> {
    let claimed = sqlx::query_as::<_, Standby>(
        "UPDATE pool_standbys SET state = 'claimed', claimed_by = $2, claimed_at = now()
         WHERE id = (SELECT id FROM pool_standbys WHERE tier = $1 AND state = 'available'
                     ORDER BY available_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
           AND state = 'available'
         RETURNING *",
    )
    .bind(tier)
    .bind(tenant)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(standby) = claimed else {
        return Ok(None);
    };
    let tenant = tenants::take_standby(conn, tenant, &standby.id).await?;
    Ok(Some((standby, tenant)))
}

/// Whether the pool has (or had, unclaimed) standbys of `tier`: a request then counts as a
/// claim or as a pool found empty.
pub async fn has_tier(executor: impl PgExecutor<'_>, tier: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pool_standbys WHERE tier = $1 AND state <> 'claimed')",
    )
    .bind(tier)
    .fetch_one(executor)
    .await
}

/// Records a new standby, `creating`, started by the leader of term `epoch`.
pub async fn insert(
    conn: &mut PgConnection,
    id: &StandbyId,
    tier: &str,
    epoch: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO pool_standbys (id, tier, leader_epoch) VALUES ($1, $2, $3)")
        .bind(id.as_str())
        .bind(tier)
        .bind(epoch)
        .execute(conn)
        .await?;
    Ok(())
}

/// A creating standby becomes available. `false`: it is not creating (any more).
pub async fn mark_available(
    conn: &mut PgConnection,
    id: &str,
    ready: &Ready<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE pool_standbys SET state = 'available', secret_arn = $2, endpoint_host = $3,
             endpoint_port = $4, engine_version = $5, storage_gib = $6, schema_version = $7,
             available_at = now()
         WHERE id = $1 AND state = 'creating'",
    )
    .bind(id)
    .bind(ready.secret_arn)
    .bind(ready.host)
    .bind(ready.port)
    .bind(ready.engine_version)
    .bind(ready.storage_gib)
    .bind(ready.schema_version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A creating or available standby is retired (no claim can take it any more), saying why.
/// `false`: it was claimed or is retiring already.
pub async fn retire(conn: &mut PgConnection, id: &str, note: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE pool_standbys SET state = 'retiring', note = $2
         WHERE id = $1 AND state IN ('creating', 'available')",
    )
    .bind(id)
    .bind(note)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The row of a retired standby whose instance and secret are gone.
pub async fn forget(conn: &mut PgConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM pool_standbys WHERE id = $1 AND state = 'retiring'")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The pool of one tier as recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierFigures {
    pub available: i64,
    pub creating: i64,
    pub retiring: i64,
    pub claimed: i64,
    /// Age of the oldest available standby.
    pub oldest_available: Option<Duration>,
}

/// The figures of every tier that has standby rows.
pub async fn figures(
    executor: impl PgExecutor<'_>,
) -> Result<BTreeMap<String, TierFigures>, sqlx::Error> {
    let rows: Vec<(String, StandbyState, i64, Option<f64>)> = sqlx::query_as(
        "SELECT tier, state, count(*),
                EXTRACT(EPOCH FROM now() - min(available_at))::float8
         FROM pool_standbys GROUP BY tier, state",
    )
    .fetch_all(executor)
    .await?;
    let mut out: BTreeMap<String, TierFigures> = BTreeMap::new();
    for (tier, state, count, age) in rows {
        let f = out.entry(tier).or_default();
        match state {
            StandbyState::Available => {
                f.available = count;
                f.oldest_available = age.map(|s| Duration::from_secs_f64(s.max(0.0)));
            }
            StandbyState::Creating => f.creating = count,
            StandbyState::Retiring => f.retiring = count,
            StandbyState::Claimed => f.claimed = count,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    #[test]
    fn a_standby_is_named_after_the_instance_prefix_and_no_new_tenant_can_take_its_name() {
        let env = Env(|name: &str| (name == "TENANTD_TENANT_DB_TLS").then(|| "disable".into()));
        let p = ProvisioningSettings::load(&env).unwrap();
        assert_eq!(instance_prefix(&p), "saas-pool-");
        let id = StandbyId::generate(&p);
        assert!(
            id.starts_with("saas-pool-") && id.len() == "saas-pool-".len() + 12,
            "{id}"
        );
        assert!(reserves("pool-abc123"));
        assert!(!reserves("acme"));
    }
}
