//! The warm pool's standby workflow: a standby instance built through the same steps as a
//! tenant's (secret first, instance, wait, endpoint, migrations at the newest version, backups;
//! the alarms wait until a tenant claims it), then recorded `available`. A step failing for
//! good, or the pool keeper retiring the standby (too old), removes it by the rollback of a
//! tenant's provisioning (the same code: [`provision::undo_instance`],
//! [`provision::undo_secret`]): instance, then secret, then its record.
//!
//! credentials → instance → wait_available → secret_endpoint → migrate → backups →
//! mark_available; retiring (or a failure) → undo_instance → undo_secret → forget.

use async_trait::async_trait;

use super::aws::{AwsContext, Owner};
use super::error::StepError;
use super::provision::{self, ProvisionArgs, ProvisionData, ProvisionStep, Undone};
use super::runner::{StepContext, Workflow};
use super::step::{InstanceWait, Step, StepNames, Transition, steps};
use crate::queue;
use crate::store::standbys;

/// Builds (or removes) one standby of the warm pool.
pub struct StandbyBuild(pub AwsContext);

/// The job kind of a standby's creation or removal (`jobs.kind`).
pub const KIND: &str = super::aws::STANDBY_KIND;

steps! {
    /// The steps of a standby's job.
    pub enum StandbyStep {
        Credentials = "credentials",
        Instance = "instance",
        WaitAvailable = "wait_available",
        SecretEndpoint = "secret_endpoint",
        Migrate = "migrate",
        Backups = "backups",
        /// The standby is recorded available: claims may take it from now on.
        MarkAvailable = "mark_available",
        UndoInstance = "undo_instance",
        UndoSecret = "undo_secret",
        /// The standby's record goes: nothing of it is left.
        Forget = "forget",
    }
}

impl Step for StandbyStep {
    fn compensation(self) -> Option<Self> {
        use StandbyStep::*;
        match self {
            // The secret stays while the instance may remain: it holds the only password; the
            // record stays `retiring`, with the job's error saying what may remain.
            UndoInstance | Forget => None,
            UndoSecret => Some(Forget),
            _ => Some(UndoInstance),
        }
    }

    fn waits_for(self) -> Option<InstanceWait> {
        match self {
            StandbyStep::WaitAvailable => Some(InstanceWait::Available),
            StandbyStep::UndoInstance => Some(InstanceWait::Gone),
            _ => None,
        }
    }
}

/// Where a provisioning step's transition leads in a standby's job: the tenant-only steps
/// (alarms, protect, mark_ready) become mark_available.
fn as_standby(step: ProvisionStep) -> StandbyStep {
    use ProvisionStep as P;
    match step {
        P::Credentials => StandbyStep::Credentials,
        P::Instance => StandbyStep::Instance,
        P::WaitAvailable => StandbyStep::WaitAvailable,
        P::SecretEndpoint => StandbyStep::SecretEndpoint,
        P::Migrate => StandbyStep::Migrate,
        P::Backups => StandbyStep::Backups,
        _ => StandbyStep::MarkAvailable,
    }
}

type Cx<'a> = StepContext<'a, ProvisionArgs, ProvisionData>;

#[async_trait]
impl Workflow for StandbyBuild {
    const KIND: &'static str = KIND;
    type Step = StandbyStep;
    type Args = ProvisionArgs;
    type Data = ProvisionData;

    fn first_step() -> StandbyStep {
        StandbyStep::Credentials
    }

    async fn run(
        &self,
        step: StandbyStep,
        cx: &mut Cx<'_>,
    ) -> Result<Transition<StandbyStep>, StepError> {
        use StandbyStep::*;
        let t = &self.0;
        let Some(id) = cx.args.standby.clone() else {
            return Err(StepError::fail(
                "bad_args",
                "a standby job names no standby",
            ));
        };
        let owner = Owner::standby(t, &id);
        let o = &owner;
        let tr = match step {
            Credentials => provision::credentials(t, o, cx).await?,
            Instance => provision::instance(t, o, cx).await?,
            WaitAvailable => provision::wait_available(t, o, cx).await?,
            SecretEndpoint => provision::secret_endpoint(t, o, cx).await?,
            Migrate => provision::migrate(t, o, cx).await?,
            Backups => provision::backups(t, o, cx).await?,
            MarkAvailable => return mark_available(cx, &id).await,
            UndoInstance => {
                record(cx, &id, Change::Retire).await?;
                return Ok(
                    match provision::undo_instance(t, o, step.name(), cx).await? {
                        Undone::Done(note) => provision::noted(UndoSecret, note),
                        Undone::Later(after) => Transition::Wait(after),
                    },
                );
            }
            UndoSecret => {
                provision::undo_secret(t, o, cx, false).await?;
                return Ok(Transition::Next(Forget));
            }
            Forget => {
                record(cx, &id, Change::Forget).await?;
                return Ok(Transition::Done);
            }
        };
        Ok(tr.map(as_standby))
    }
}

/// The standby is available for claims, with what its creation found.
async fn mark_available(cx: &mut Cx<'_>, id: &str) -> Result<Transition<StandbyStep>, StepError> {
    let d = cx.data.clone();
    let (Some(host), Some(port), Some(secret_arn)) = (
        d.endpoint_host.as_deref(),
        d.endpoint_port,
        d.secret_arn.as_deref(),
    ) else {
        return Err(StepError::fail(
            "bad_data",
            "the job's data lacks the endpoint or secret",
        ));
    };
    let ready = standbys::Ready {
        secret_arn,
        host,
        port,
        engine_version: d.engine_version.as_deref(),
        storage_gib: d.storage_gib,
        schema_version: d.schema_version.unwrap_or(0),
    };
    let marked = record(cx, id, Change::Available(ready)).await?;
    if !marked {
        // Retired while it was being created: it goes.
        return Err(StepError::fail(
            "standby_retired",
            "the standby was retired while it was being created",
        ));
    }
    Ok(Transition::Done)
}

/// What a standby's job writes into its record.
enum Change<'a> {
    Retire,
    Available(standbys::Ready<'a>),
    Forget,
}

/// Writes the standby's record inside a transaction fenced by the job's lease; `false`: the
/// record was not in a state the change applies to.
async fn record(cx: &Cx<'_>, id: &str, change: Change<'_>) -> Result<bool, StepError> {
    let mut conn = cx.db.acquire().await.map_err(queue::QueueError::from)?;
    let mut tx = queue::fenced(&mut conn, cx.lease).await?;
    let done = match change {
        Change::Retire => standbys::retire(&mut tx, id, "removed: failed or retired").await,
        Change::Available(ready) => standbys::mark_available(&mut tx, id, &ready).await,
        Change::Forget => standbys::forget(&mut tx, id).await.map(|()| true),
    }
    .map_err(|e| StepError::retry("control_db", format!("updating the standby: {e}")))?;
    tx.commit().await.map_err(queue::QueueError::from)?;
    Ok(done)
}
