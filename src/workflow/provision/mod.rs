//! The provisioning workflow: from nothing to a ready, monitored, backed-up database, or, when
//! a step fails for good, back to nothing (see [`state`] for the steps).

mod configure;
mod create;
mod state;

use async_trait::async_trait;

pub use state::{Provision, ProvisionArgs, ProvisionData, ProvisionStep};

use crate::cloud::secrets::Recovery;
use crate::tenants::record::TenantUpdate;
use crate::workflow::error::StepError;
use crate::workflow::removal::{self, Removed};
use crate::workflow::runner::{StepContext, Workflow};
use crate::workflow::step::{StepNames, Transition};
use crate::workflow::tenancy::update_tenant;

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
        match step {
            Credentials => create::credentials(t, cx).await,
            Instance => create::instance(t, cx).await,
            WaitAvailable => create::wait_available(t, cx).await,
            SecretEndpoint => configure::secret_endpoint(t, cx).await,
            Migrate => configure::migrate(t, cx).await,
            Backups => configure::backups(t, cx).await,
            Alarms => configure::alarms(t, cx).await,
            Protect => configure::protect(t, cx).await,
            MarkReady => configure::mark_ready(cx).await,
            UndoAlarms => {
                removal::remove_alarms(t, cx.tenant()?).await?;
                Ok(Transition::Next(UndoInstance))
            }
            // The instance goes without a final snapshot.
            UndoInstance => {
                let tenant = cx.tenant()?;
                // What the poller handed over is acted on once: the next look is a fresh one.
                let seen = cx.data.poller_seen.take();
                let removal = &mut cx.data.removal;
                match removal::remove_instance(
                    t,
                    tenant,
                    step.name(),
                    seen.as_ref(),
                    removal,
                    None,
                    None,
                )
                .await?
                {
                    Removed::Done => Ok(Transition::Next(UndoSecret)),
                    Removed::Later(after) => Ok(Transition::Wait(after)),
                }
            }
            // The secret goes at once, with no recovery window.
            UndoSecret => {
                let tenant = cx.tenant()?;
                removal::remove_secret(t, tenant, &mut cx.data.removal, Recovery::None).await?;
                Ok(Transition::Next(MarkFailed))
            }
            MarkFailed => {
                mark_failed(cx, "").await?;
                Ok(Transition::Done)
            }
        }
    }
}

/// The last step of a failed or cancelled job: the tenant is `failed`, with the job's error
/// (the cause, then any rollback step that failed, which says what may remain).
pub async fn mark_failed<A, D>(cx: &StepContext<'_, A, D>, prefix: &str) -> Result<(), StepError> {
    let cause = cx.job.error.as_deref().unwrap_or("failed");
    let error = format!("{prefix}{cause}");
    update_tenant(cx, TenantUpdate::Failed { error: &error }).await
}
