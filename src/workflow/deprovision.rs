//! The deprovisioning workflow: alarms, then the instance (after a final snapshot unless the
//! request said otherwise), then the secret (restorable for the recovery window); the tenant
//! ends `deleted`. A failure leaves the tenant `failed` with what went wrong.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::aws::{AwsContext, Owner, update_tenant_telling};
use super::error::StepError;
use super::instance_watch::PollerSeen;
use super::provision::mark_failed;
use super::removal::{self, Removal, Removed, Scope};
use super::runner::{StepContext, Workflow};
use super::step::{InstanceWait, Step, StepNames, Transition, steps};
use crate::queue;
use crate::store::events::EventType;
use crate::store::snapshots;
use crate::store::tenants::TenantUpdate;

/// Takes one tenant's database away.
pub struct Deprovision(pub AwsContext);

steps! {
    /// The steps of a deprovisioning job.
    pub enum DeprovisionStep {
        DeleteAlarms = "delete_alarms",
        DeleteInstance = "delete_instance",
        DeleteSecret = "delete_secret",
        MarkDeleted = "mark_deleted",
        MarkFailed = "mark_failed",
    }
}

impl Step for DeprovisionStep {
    fn compensation(self) -> Option<Self> {
        match self {
            DeprovisionStep::MarkFailed => None,
            _ => Some(DeprovisionStep::MarkFailed),
        }
    }

    fn waits_for(self) -> Option<InstanceWait> {
        (self == DeprovisionStep::DeleteInstance).then_some(InstanceWait::Gone)
    }
}

/// What a deprovisioning job is asked to do (`jobs.args`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeprovisionArgs {
    /// Take a final snapshot before the instance goes (jobs of earlier releases may lack it:
    /// then they do).
    #[serde(default = "yes")]
    pub final_snapshot: bool,
}

fn yes() -> bool {
    true
}

/// What the steps of a deprovisioning job record (`jobs.data`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DeprovisionData {
    #[serde(flatten)]
    pub removal: Removal,
    /// The final snapshot was recorded in the control database (before it was asked for).
    pub snapshot_recorded: bool,
    /// What the instance poller saw when it woke the job.
    pub poller_seen: Option<PollerSeen>,
    /// The tenant's instance, resolved by the first step that succeeded and kept. Absent in
    /// jobs of earlier releases.
    pub instance_id: Option<String>,
}

#[async_trait]
impl Workflow for Deprovision {
    const KIND: &'static str = "deprovision";
    type Step = DeprovisionStep;
    type Args = DeprovisionArgs;
    type Data = DeprovisionData;

    fn first_step() -> DeprovisionStep {
        DeprovisionStep::DeleteAlarms
    }

    async fn run(
        &self,
        step: DeprovisionStep,
        cx: &mut StepContext<'_, DeprovisionArgs, DeprovisionData>,
    ) -> Result<Transition<DeprovisionStep>, StepError> {
        use DeprovisionStep::*;
        let t = &self.0;
        let instance = t.job_instance(cx, cx.data.instance_id.as_deref()).await?;
        cx.data.instance_id = Some(instance.clone());
        let owner = Owner::tenant_on(t, cx, None, instance)?;
        match step {
            DeleteAlarms => {
                let removal = &mut cx.data.removal;
                match removal::remove_alarms(t, &owner, Scope::Deprovision, removal).await? {
                    Some(note) => Ok(Transition::Noted {
                        next: DeleteInstance,
                        note,
                    }),
                    None => Ok(Transition::Next(DeleteInstance)),
                }
            }
            DeleteInstance => {
                let snapshot = cx
                    .args
                    .final_snapshot
                    .then(|| final_snapshot_id(&owner.instance, cx.job.created_at));
                // Recorded before it is asked for: the snapshot cleaner deletes only what
                // this deployment recorded taking.
                if let Some(id) = snapshot.as_deref()
                    && !cx.data.snapshot_recorded
                {
                    record_snapshot(t, cx, &owner, id).await?;
                    cx.data.snapshot_recorded = true;
                }
                // What the poller handed over is acted on once: the next look is a fresh one.
                let seen = cx.data.poller_seen.take();
                let removal = &mut cx.data.removal;
                match removal::remove_instance(
                    t,
                    &owner,
                    step.name(),
                    seen.as_ref(),
                    removal,
                    Scope::Deprovision,
                    snapshot,
                    Some(&t.settings.tiers),
                )
                .await?
                {
                    Removed::Done => Ok(Transition::Next(DeleteSecret)),
                    Removed::Later(after) => Ok(Transition::Wait(after)),
                }
            }
            DeleteSecret => {
                let removal = &mut cx.data.removal;
                removal::remove_secret(t, &owner, &owner.secret, removal, Scope::Deprovision)
                    .await?;
                Ok(Transition::Next(MarkDeleted))
            }
            MarkDeleted => {
                update_tenant_telling(cx, TenantUpdate::Deleted, Some(EventType::TenantDeleted))
                    .await?;
                Ok(Transition::Done)
            }
            MarkFailed => {
                mark_failed(cx, "deprovisioning: ").await?;
                Ok(Transition::Done)
            }
        }
    }
}

/// Records the final snapshot `id` this job is about to ask for, in a transaction fenced by
/// the job's lease.
async fn record_snapshot(
    t: &AwsContext,
    cx: &StepContext<'_, DeprovisionArgs, DeprovisionData>,
    owner: &Owner,
    id: &str,
) -> Result<(), StepError> {
    let tenant = cx.tenant()?;
    let mut conn = cx.db.acquire().await.map_err(queue::QueueError::from)?;
    let mut tx = queue::fenced(&mut conn, cx.lease).await?;
    let taken = snapshots::Taken {
        identifier: id,
        tenant,
        job: cx.job.id,
        instance: &owner.instance,
        environment: &t.settings.environment,
    };
    snapshots::record(&mut tx, taken)
        .await
        .map_err(|e| StepError::retry("control_db", format!("recording the snapshot: {e}")))?;
    tx.commit().await.map_err(queue::QueueError::from)?;
    Ok(())
}

/// `<instance>-final-<job creation time>`: the same on every attempt of the job, so a retried
/// delete cannot leave two snapshots.
pub fn final_snapshot_id(instance: &str, job_created: DateTime<Utc>) -> String {
    format!("{instance}-final-{}", job_created.format("%Y%m%d%H%M%S"))
}
