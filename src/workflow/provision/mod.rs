//! The provisioning workflow: from nothing to a ready, monitored, backed-up database, or, when
//! a step fails for good, back to nothing (see [`state`] for the steps).

mod claim;
mod configure;
mod create;
mod state;

use async_trait::async_trait;

pub use configure::{backups, migrate, secret_endpoint};
pub use create::{credentials, instance, wait_available};
pub use state::{Provision, ProvisionArgs, ProvisionData, ProvisionStep};

use crate::store::tenants::TenantUpdate;
use crate::workflow::aws::{Owner, update_tenant};
use crate::workflow::error::StepError;
use crate::workflow::removal::{self, Removed, Scope};
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
            MarkReady => configure::mark_ready(cx).await,
            Claim => claim::retag(t, o, cx).await,
            ClaimSecret => claim::move_secret(t, o, cx).await,
            UndoAlarms => {
                let jobs = t.creating_jobs(cx, cx.args.standby.as_ref()).await?;
                let scope = Scope::Rollback {
                    jobs: &jobs,
                    since: cx.job.created_at,
                };
                match removal::remove_alarms(t, o, scope, &mut cx.data.removal).await? {
                    Some(note) => Ok(Transition::Noted {
                        next: UndoInstance,
                        note,
                    }),
                    None => Ok(Transition::Next(UndoInstance)),
                }
            }
            // The instance goes without a final snapshot, if this job (or, for a claim, the
            // standby's) created it; an adopted one is kept.
            UndoInstance => {
                let jobs = t.creating_jobs(cx, cx.args.standby.as_ref()).await?;
                // What the poller handed over is acted on once: the next look is a fresh one.
                let seen = cx.data.poller_seen.take();
                let kept_before = cx.data.removal.kept_instance.is_some();
                let removal = &mut cx.data.removal;
                match removal::remove_instance(
                    t,
                    &owner,
                    step.name(),
                    seen.as_ref(),
                    removal,
                    Scope::Rollback {
                        jobs: &jobs,
                        since: cx.job.created_at,
                    },
                    None,
                    None,
                )
                .await?
                {
                    Removed::Done => match removal.kept_instance.clone() {
                        Some(note) if !kept_before => Ok(Transition::Noted {
                            next: UndoSecret,
                            note,
                        }),
                        _ => Ok(Transition::Next(UndoSecret)),
                    },
                    Removed::Later(after) => Ok(Transition::Wait(after)),
                }
            }
            // A secret this job created goes at once, with no recovery window; after a claim,
            // the standby's too, if it was not moved yet. One the job found is scheduled for
            // deletion with the recovery window; one of a kept instance is kept.
            UndoSecret => {
                let jobs = t.creating_jobs(cx, cx.args.standby.as_ref()).await?;
                let scope = Scope::Rollback {
                    jobs: &jobs,
                    since: cx.job.created_at,
                };
                let removal = &mut cx.data.removal;
                removal::remove_secret(t, &owner, &owner.secret, removal, scope).await?;
                if let Some(standby) = cx.args.standby.as_deref() {
                    let theirs = Owner::standby(t, standby);
                    removal::remove_secret(t, &theirs, &theirs.secret, removal, scope).await?;
                }
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
    update_tenant(cx, TenantUpdate::Failed { error: &error }).await
}
