//! The job that deletes the instance a tenant ran on before its engine upgrade, once it has
//! been kept for `TENANTD_UPGRADE_KEEP_OLD`: enqueued by the upgrade with its `run_at` that far
//! ahead, so it survives restarts and rolling upgrades like any job. It names no tenant in
//! `jobs.tenant_id` (it would hold the tenant's one active job for days); its arguments do.
//! The instance must pass the ownership rule for that tenant before anything is done to it;
//! its final snapshot is recorded before it is asked for, as deprovisioning does.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::super::aws::{AwsContext, Owner};
use super::super::deprovision::final_snapshot_id;
use super::super::error::{StepError, Undoing};
use super::super::instance_watch::PollerSeen;
use super::super::removal::{self, Removal, Removed, Scope};
use super::super::runner::{StepContext, Workflow};
use super::super::step::{Step, StepNames, Transition, steps};
use crate::queue;
use crate::store::snapshots;

/// The job kind (`jobs.kind`).
pub const RETIRE_KIND: &str = "retire_instance";

/// Deletes an instance an engine upgrade left behind.
pub struct RetireInstance(pub AwsContext);

steps! {
    /// The steps of a retire job.
    pub enum RetireStep {
        /// The final snapshot recorded, the instance deleted with it, until it is gone.
        DeleteOld = "delete_old",
    }
}

impl Step for RetireStep {
    fn compensation(self) -> Option<Self> {
        None
    }
}

/// Which instance goes, and whose it is (`jobs.args`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetireArgs {
    pub tenant: String,
    pub instance: String,
    /// The engine upgrade that left it.
    pub upgrade_job: Uuid,
}

/// What the retire job records (`jobs.data`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RetireData {
    #[serde(flatten)]
    pub removal: Removal,
    pub snapshot_recorded: bool,
    pub result: Option<String>,
}

type Cx<'a> = StepContext<'a, RetireArgs, RetireData>;

#[async_trait]
impl Workflow for RetireInstance {
    const KIND: &'static str = RETIRE_KIND;
    type Step = RetireStep;
    type Args = RetireArgs;
    type Data = RetireData;

    fn first_step() -> RetireStep {
        RetireStep::DeleteOld
    }

    async fn run(
        &self,
        step: RetireStep,
        cx: &mut Cx<'_>,
    ) -> Result<Transition<RetireStep>, StepError> {
        let t = &self.0;
        let RetireStep::DeleteOld = step;
        let owner = Owner {
            tenant: Some(cx.args.tenant.clone()),
            standby: None,
            instance: cx.args.instance.clone(),
            secret: t.secret_name(&cx.args.tenant),
            environment: t.settings.environment.clone(),
        };
        let snapshot = final_snapshot_id(&owner.instance, cx.job.created_at);
        // The instance poller knows tenants' instances only: this step looks for itself, and
        // hands what it saw to the removal as the poller would.
        let seen = PollerSeen {
            step: step.name().into(),
            at: chrono::Utc::now(),
            instance: t
                .cloud
                .describe_db_instance(&owner.instance)
                .await
                .undoing("looking at the old instance")?,
        };
        if let Some(info) = &seen.instance {
            // Nothing is recorded or asked for an instance that is not the tenant's.
            owner
                .check(&info.tags)
                .map_err(|why| owner.foreign(&format!("instance {}", owner.instance), &why))?;
            if !cx.data.snapshot_recorded {
                record_snapshot(t, cx, &snapshot).await?;
                cx.data.snapshot_recorded = true;
            }
        }
        match removal::remove_instance(
            t,
            &owner,
            step.name(),
            Some(&seen),
            &mut cx.data.removal,
            Scope::Deprovision,
            Some(snapshot.clone()),
            Some(&t.settings.tiers),
        )
        .await?
        {
            Removed::Later(after) => Ok(Transition::Wait(after)),
            Removed::Done => {
                cx.data.result = Some(match &cx.data.removal.final_snapshot {
                    Some(s) => format!("deleted {} with final snapshot {s}", owner.instance),
                    None => format!("{} was already gone", owner.instance),
                });
                Ok(Transition::Done)
            }
        }
    }
}

async fn record_snapshot(t: &AwsContext, cx: &Cx<'_>, id: &str) -> Result<(), StepError> {
    let mut conn = cx.db.acquire().await.map_err(queue::QueueError::from)?;
    let mut tx = queue::fenced(&mut conn, cx.lease).await?;
    let taken = snapshots::Taken {
        identifier: id,
        tenant: &cx.args.tenant,
        job: cx.job.id,
        instance: &cx.args.instance,
        environment: &t.settings.environment,
    };
    snapshots::record(&mut tx, taken)
        .await
        .map_err(|e| StepError::retry("control_db", format!("recording the snapshot: {e}")))?;
    tx.commit().await.map_err(queue::QueueError::from)?;
    Ok(())
}
