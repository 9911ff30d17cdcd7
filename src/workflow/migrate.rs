//! The migrate workflow: brings one tenant's database to a tenant-schema version, as part of a
//! rollout (or on its own).
//!
//! migrate → record; a failure for good (or a cancel) → record_failure: the tenant stays on its
//! previous version, with the error on the tenant and in its rollout. The tenant's status does
//! not change either way: a ready tenant stays ready.
//!
//! Each migration runs in its own transaction under the lock and statement timeouts of the
//! settings: one blocked by the application's traffic gives up and is retried later (with
//! backoff) instead of queueing the application's queries behind its lock request. What is
//! applied is recorded in the tenant database in the same transaction, so a step run again
//! after a crash applies nothing twice.

use std::collections::BTreeMap;
use std::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::aws::AwsContext;
use super::error::{Context, StepError};
use super::runner::{StepContext, Workflow};
use super::step::{Step, Transition, steps};
use crate::queue;
use crate::store::rollout_tenants::{self as rollout, Outcome};
use crate::store::tenants::{self as tenant_record, TenantUpdate};
use crate::tenant_db::{self, DbCredentials};

/// Migrates one tenant's database.
pub struct Migrate(pub AwsContext);

/// The job kind (`jobs.kind`).
pub const KIND: &str = "migrate";

steps! {
    /// The steps of a migrate job.
    pub enum MigrateStep {
        /// The migrations up to the target, with the secret's credentials.
        Migrate = "migrate",
        /// The version on the tenant and in the rollout.
        Record = "record",
        /// The migration failed for good: the error on the tenant and in the rollout.
        RecordFailure = "record_failure",
    }
}

impl Step for MigrateStep {
    fn compensation(self) -> Option<Self> {
        match self {
            MigrateStep::RecordFailure => None,
            _ => Some(MigrateStep::RecordFailure),
        }
    }
}

/// What a migrate job is asked to do (`jobs.args`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MigrateArgs {
    /// The version the database is brought to (migrations after it are not applied).
    pub target_version: i64,
    /// The rollout the job belongs to.
    #[serde(default)]
    pub rollout: Option<Uuid>,
}

/// What the steps of a migrate job record (`jobs.data`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MigrateData {
    /// The version the database is at afterwards.
    pub version: Option<i64>,
    /// The migrations this job applied.
    pub applied_now: Vec<i64>,
    /// Every migration the database has, version → checksum.
    pub applied_migrations: Option<BTreeMap<String, String>>,
}

type Cx<'a> = StepContext<'a, MigrateArgs, MigrateData>;

#[async_trait]
impl Workflow for Migrate {
    const KIND: &'static str = KIND;
    type Step = MigrateStep;
    type Args = MigrateArgs;
    type Data = MigrateData;

    fn first_step() -> MigrateStep {
        MigrateStep::Migrate
    }

    async fn run(
        &self,
        step: MigrateStep,
        cx: &mut Cx<'_>,
    ) -> Result<Transition<MigrateStep>, StepError> {
        match step {
            MigrateStep::Migrate => migrate(&self.0, cx).await,
            MigrateStep::Record => record(cx).await,
            MigrateStep::RecordFailure => record_failure(cx).await,
        }
    }
}

async fn migrate(t: &AwsContext, cx: &mut Cx<'_>) -> Result<Transition<MigrateStep>, StepError> {
    let tenant = cx.tenant()?;
    let record = tenant_record::get(cx.db, tenant)
        .await
        .map_err(|e| StepError::retry("control_db", format!("reading the tenant: {e}")))?
        .ok_or_else(|| StepError::fail("bad_data", format!("no tenant {tenant} is recorded")))?;
    let secret = record
        .secret_arn
        .clone()
        .unwrap_or_else(|| t.secret_name(tenant));
    // The login goes to the endpoint RDS reported for the instance, as recorded on the
    // tenant, never to the host the secret names.
    let (Some(host), Some(port)) = (record.endpoint_host.as_deref(), record.endpoint_port) else {
        return Err(StepError::fail(
            "bad_data",
            format!("tenant {tenant} has no recorded endpoint"),
        ));
    };
    let port = u16::try_from(port)
        .map_err(|_| StepError::fail("bad_data", format!("endpoint port {port} is not a port")))?;
    let value = t
        .cloud
        .get_secret_value(&secret)
        .await
        .during("reading the tenant secret")?;
    let credentials = DbCredentials::from_json(&value)?.at(host, port);
    let s = &t.settings;
    let started = Instant::now();
    let result = tenant_db::migrate(
        &credentials,
        &s.tenant_db_tls,
        s.tenant_db_connect_timeout,
        &s.tenant_migrations,
        Some(cx.args.target_version),
        s.migration_limits,
    )
    .await;
    crate::metrics::record_tenant_migration(started.elapsed(), result.is_ok());
    let migrated = result?;
    cx.data.version = Some(migrated.version);
    cx.data.applied_now = migrated.applied_now;
    cx.data.applied_migrations = Some(migrated.applied);
    Ok(Transition::Next(MigrateStep::Record))
}

async fn record(cx: &mut Cx<'_>) -> Result<Transition<MigrateStep>, StepError> {
    let tenant = cx.tenant()?;
    let (Some(version), Some(applied)) = (cx.data.version, cx.data.applied_migrations.as_ref())
    else {
        return Err(StepError::fail(
            "bad_data",
            "the job's data lacks the version it migrated to",
        ));
    };
    let mut conn = cx.db.acquire().await.map_err(queue::QueueError::from)?;
    let mut tx = queue::fenced(&mut conn, cx.lease).await?;
    let update = TenantUpdate::Migrated {
        schema_version: version,
        applied_migrations: applied,
    };
    tenant_record::update(&mut tx, tenant, update)
        .await
        .map_err(control_db)?;
    if let Some(id) = cx.args.rollout {
        rollout::record_outcome(
            &mut tx,
            id,
            tenant,
            cx.job.id,
            Outcome::Succeeded { version },
        )
        .await
        .map_err(control_db)?;
    }
    tx.commit().await.map_err(queue::QueueError::from)?;
    Ok(Transition::Done)
}

async fn record_failure(cx: &mut Cx<'_>) -> Result<Transition<MigrateStep>, StepError> {
    let cause = cx.job.error.as_deref().unwrap_or("cancelled");
    let error = format!(
        "migrating to version {} failed: {cause}",
        cx.args.target_version
    );
    record_rollout_failure(cx, &error, cx.args.rollout).await?;
    Ok(Transition::Done)
}

/// A rollout's per-tenant job failed for good: the tenant keeps its status with `error`, and the
/// rollout (if the job is one of its) counts it failed with the job's cause and the class of
/// the failure it ended with, in one fenced transaction. Shared by schema migrations and the
/// fleet's engine, CA and maintenance changes.
pub(crate) async fn record_rollout_failure<A, D>(
    cx: &StepContext<'_, A, D>,
    error: &str,
    rollout_id: Option<Uuid>,
) -> Result<(), StepError> {
    let tenant = cx.tenant()?;
    let cause = cx.job.error.as_deref().unwrap_or("cancelled");
    // The class of the failure the job ended with, from its history.
    let class = queue::history(cx.db, cx.job.id)
        .await?
        .into_iter()
        .rev()
        .find_map(|h| h.error_class);
    let mut conn = cx.db.acquire().await.map_err(queue::QueueError::from)?;
    let mut tx = queue::fenced(&mut conn, cx.lease).await?;
    tenant_record::update(&mut tx, tenant, TenantUpdate::MigrationFailed { error })
        .await
        .map_err(control_db)?;
    if let Some(id) = rollout_id {
        rollout::record_outcome(
            &mut tx,
            id,
            tenant,
            cx.job.id,
            Outcome::Failed {
                error: cause,
                class: class.as_deref(),
            },
        )
        .await
        .map_err(control_db)?;
    }
    tx.commit().await.map_err(queue::QueueError::from)?;
    Ok(())
}

fn control_db(e: sqlx::Error) -> StepError {
    StepError::retry("control_db", format!("recording the migration: {e}"))
}
