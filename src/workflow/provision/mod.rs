//! The provisioning workflow: from nothing to a ready, monitored, backed-up database, or, when
//! a step fails for good, back to nothing (see [`state`] for the steps).

mod claim;
mod configure;
mod create;
mod rollback;
mod state;

use async_trait::async_trait;

pub use configure::{backups, migrate, secret_endpoint};
pub use create::{credentials, instance, wait_available};
pub use rollback::{Undone, undo_instance, undo_secret};
pub use state::{Provision, ProvisionArgs, ProvisionData, ProvisionStep};

use crate::store::events::EventType;
use crate::store::tenants::TenantUpdate;
use crate::workflow::aws::{Owner, update_tenant_telling};
use crate::workflow::error::StepError;
use crate::workflow::runner::{StepContext, Workflow};
use crate::workflow::step::{StepNames, Transition};

#[async_trait]
impl Workflow for Provision {
    const KIND: &'static str = state::KIND;
    type Step = ProvisionStep;
    type Args = ProvisionArgs;
    type Data = ProvisionData;

    fn first_step() -> ProvisionStep {
        ProvisionStep::Credentials
    }

    async fn run(
        &self,
        step: ProvisionStep,
        cx: &mut StepContext<'_, ProvisionArgs, ProvisionData>,
    ) -> Result<Transition<ProvisionStep>, StepError> {
        use ProvisionStep::*;
        let t = &self.0;
        // A claim's resources may still carry the standby's tags: both are the tenant's.
        let owner = Owner::tenant(t, cx, cx.args.standby.as_deref()).await?;
        let o = &owner;
        match step {
            Credentials => create::credentials(t, o, cx).await,
            Instance => create::instance(t, o, cx).await,
            WaitAvailable => create::wait_available(t, o, cx).await,
            SecretEndpoint => configure::secret_endpoint(t, o, cx).await,
            Migrate => configure::migrate(t, o, cx).await,
            Backups => configure::backups(t, o, cx).await,
            Alarms => configure::alarms(t, o, cx).await,
            Protect => configure::protect(t, o, cx).await,
            MarkReady => configure::mark_ready(t, cx).await,
            Claim => claim::retag(t, o, cx).await,
            ClaimSecret => claim::move_secret(t, o, cx).await,
            UndoAlarms => Ok(match rollback::undo_alarms(t, o, cx).await? {
                Undone::Done(note) => noted(UndoInstance, note),
                Undone::Later(after) => Transition::Wait(after),
            }),
            UndoInstance => Ok(
                match rollback::undo_instance(t, o, step.name(), cx).await? {
                    Undone::Done(note) => noted(UndoSecret, note),
                    Undone::Later(after) => Transition::Wait(after),
                },
            ),
            UndoSecret => {
                rollback::undo_secret(t, o, cx, true).await?;
                Ok(Transition::Next(MarkFailed))
            }
            MarkFailed => {
                let left = cx.data.removal.left_in_place();
                mark_failed_with(cx, "", &left).await?;
                if cx.args.standby.is_some() {
                    crate::metrics::record_pool_claim(&cx.args.tier, "failed");
                }
                Ok(Transition::Done)
            }
        }
    }
}

/// Go on to `next`, with `note` (if any) in the history.
pub fn noted<S>(next: S, note: Option<String>) -> Transition<S> {
    match note {
        Some(note) => Transition::Noted { next, note },
        None => Transition::Next(next),
    }
}

/// The last step of a failed or cancelled job: the tenant is `failed`, with the job's error
/// (the cause, then any rollback step that failed, which says what may remain).
pub async fn mark_failed<A, D>(cx: &StepContext<'_, A, D>, prefix: &str) -> Result<(), StepError> {
    mark_failed_with(cx, prefix, "").await
}

/// As [`mark_failed`], with what the rollback left in place (`suffix`) after the cause.
pub async fn mark_failed_with<A, D>(
    cx: &StepContext<'_, A, D>,
    prefix: &str,
    suffix: &str,
) -> Result<(), StepError> {
    let cause = cx.job.error.as_deref().unwrap_or("failed");
    let error = format!("{prefix}{cause}{suffix}");
    let failed = TenantUpdate::Failed { error: &error };
    update_tenant_telling(cx, failed, Some(EventType::TenantFailed)).await
}
