//! The rollback of a provisioning job, shared by a tenant's and a standby's: alarms, then the
//! instance (without a final snapshot, and only if this job, or for a claim the standby's, created
//! it; an adopted one is kept), then the secret (one the job created goes at once; one it found
//! is scheduled for deletion with the recovery window; one of a kept instance is kept).

use std::time::Duration;

use super::state::{ProvisionArgs, ProvisionData};
use crate::workflow::aws::{AwsContext, Owner};
use crate::workflow::error::StepError;
use crate::workflow::removal::{self, Removed, Scope};
use crate::workflow::runner::StepContext;

type Cx<'a> = StepContext<'a, ProvisionArgs, ProvisionData>;

/// What undoing a resource came to.
pub enum Undone {
    /// Gone, or kept; with a note for the history the first time something was kept.
    Done(Option<String>),
    /// Not settled yet: the same step again after this long.
    Later(Duration),
}

/// The jobs whose resources a rollback may remove: this one, and for a claim (or a standby's
/// own job) the jobs that created the standby.
async fn jobs(t: &AwsContext, cx: &Cx<'_>) -> Result<Vec<String>, StepError> {
    t.creating_jobs(cx, cx.args.standby.as_ref()).await
}

/// The alarms of the instance, if this job created them.
pub async fn undo_alarms(
    t: &AwsContext,
    owner: &Owner,
    cx: &mut Cx<'_>,
) -> Result<Undone, StepError> {
    let jobs = jobs(t, cx).await?;
    let scope = Scope::Rollback {
        jobs: &jobs,
        since: cx.job.created_at,
    };
    let note = removal::remove_alarms(t, owner, scope, &mut cx.data.removal).await?;
    Ok(Undone::Done(note))
}

/// The instance, as the module says; `step` names the step for the poller's hand-over.
pub async fn undo_instance(
    t: &AwsContext,
    owner: &Owner,
    step: &'static str,
    cx: &mut Cx<'_>,
) -> Result<Undone, StepError> {
    let jobs = jobs(t, cx).await?;
    // What the poller handed over is acted on once: the next look is a fresh one.
    let seen = cx.data.poller_seen.take();
    let kept_before = cx.data.removal.kept_instance.is_some();
    let removal = &mut cx.data.removal;
    let scope = Scope::Rollback {
        jobs: &jobs,
        since: cx.job.created_at,
    };
    Ok(
        match removal::remove_instance(t, owner, step, seen.as_ref(), removal, scope, None, None)
            .await?
        {
            Removed::Done => Undone::Done(removal.kept_instance.clone().filter(|_| !kept_before)),
            Removed::Later(after) => Undone::Later(after),
        },
    )
}

/// The owner's secret; after a claim (`standby_too`), the standby's as well if it was not moved
/// yet.
pub async fn undo_secret(
    t: &AwsContext,
    owner: &Owner,
    cx: &mut Cx<'_>,
    standby_too: bool,
) -> Result<(), StepError> {
    let jobs = jobs(t, cx).await?;
    let scope = Scope::Rollback {
        jobs: &jobs,
        since: cx.job.created_at,
    };
    let removal = &mut cx.data.removal;
    removal::remove_secret(t, owner, &owner.secret, removal, scope).await?;
    if standby_too && let Some(standby) = cx.args.standby.as_deref() {
        let theirs = Owner::standby(t, standby);
        removal::remove_secret(t, &theirs, &theirs.secret, removal, scope).await?;
    }
    Ok(())
}
