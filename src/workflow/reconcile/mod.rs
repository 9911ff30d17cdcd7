//! The reconcile workflow: brings a ready (or suspended) tenant's instance to what it should be,
//! for one of three reasons: a tier change, a suspend or resume, or drift to repair.
//!
//! apply → wait_applied → alarms → tags → secret → reset_password → record; any of them failing for good (or a cancel) →
//! keep_previous: the tenant keeps its tier and status, with the cause in its `error`. A change
//! RDS has already applied when a later step fails is left as it is (undoing it would be a
//! second change of the same length).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::aws::{AwsContext, Owner, update_tenant, update_tenant_telling};
use super::desired::{self, Difference};
use super::error::StepError;
use super::instance_watch::PollerSeen;
use super::runner::{StepContext, Workflow};
use super::step::{InstanceWait, Step, Transition, steps};
use crate::cloud::rds::InstanceInfo;
use crate::config::Tier;
use crate::store::events::EventType;
use crate::store::tenants::{TenantStatus, TenantUpdate};

mod access;
mod modify;

use access::{alarms, reset_password, secret, tags};
use modify::{apply, wait_applied};

/// Brings one tenant's instance to its desired state.
pub struct Reconcile(pub AwsContext);

/// The job kind (`jobs.kind`).
pub const KIND: &str = "reconcile";

steps! {
    /// The steps of a reconcile job.
    pub enum ReconcileStep {
        /// ModifyDBInstance with what differs from the tier, or StopDBInstance/StartDBInstance.
        Apply = "apply",
        /// Until the instance is available with the tier's settings (or stopped).
        WaitApplied = "wait_applied",
        /// The alarms, with the tier's thresholds.
        Alarms = "alarms",
        /// The tenant's tags on the instance.
        Tags = "tags",
        /// (Repairs) The secret: restored, re-created, its endpoint corrected.
        Secret = "secret",
        /// (Repairs) The instance gets the secret's password.
        ResetPassword = "reset_password",
        /// The tier and status on the tenant.
        Record = "record",
        /// The change failed for good: the tenant keeps its tier and status, with the cause.
        KeepPrevious = "keep_previous",
    }
}

impl Step for ReconcileStep {
    fn compensation(self) -> Option<Self> {
        match self {
            ReconcileStep::KeepPrevious => None,
            _ => Some(ReconcileStep::KeepPrevious),
        }
    }

    fn waits_for(self) -> Option<InstanceWait> {
        (self == ReconcileStep::WaitApplied).then_some(InstanceWait::Settled)
    }
}

/// Why a reconcile job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The tenant moves to another tier.
    TierChange,
    /// The instance is stopped; the tenant becomes `suspended`.
    Suspend,
    /// The instance is started again; the tenant becomes `ready`.
    Resume,
    /// What differs from the tenant's own tier is put back.
    Repair,
}

/// When a tier change takes effect on the instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Apply {
    /// At once (the instance stays usable; a class change restarts it, a Multi-AZ one fails
    /// over).
    #[default]
    Immediately,
    /// In the instance's next maintenance window; the tenant records the new tier once RDS
    /// has accepted the change.
    MaintenanceWindow,
}

/// What a reconcile job is asked to do (`jobs.args`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReconcileArgs {
    pub reason: Reason,
    /// The tier the instance is brought to (the tenant's own for anything but a tier change).
    pub tier: String,
    #[serde(default)]
    pub apply: Apply,
    /// What made the reconciler ask (e.g. "RDS started the suspended instance by itself").
    #[serde(default)]
    pub cause: Option<String>,
}

/// What the steps of a reconcile job record (`jobs.data`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcileData {
    /// What the apply step changed (empty: nothing differed).
    pub changed: Vec<Difference>,
    /// What could not be done as the tier says.
    pub note: Option<String>,
    /// The minor version asked for in the maintenance window.
    pub minor_upgrade: Option<String>,
    /// The storage the instance has once the change is applied.
    pub storage_gib: Option<i32>,
    /// The instance's ARN, for its tags.
    pub instance_arn: Option<String>,
    /// StopDBInstance or StartDBInstance was called.
    pub power_requested: Option<DateTime<Utc>>,
    pub wait_started_at: Option<DateTime<Utc>>,
    pub wait_polls: u64,
    /// What the instance poller saw when it woke the job.
    pub poller_seen: Option<PollerSeen>,
    /// The instance's endpoint and status, as the apply step saw them.
    pub endpoint: Option<(String, i32)>,
    pub instance_status: Option<String>,
    /// What the secret step did (restored, re-created with a new password).
    pub secret_repair: Option<String>,
    /// When the instance was given the secret's password.
    pub password_reset: Option<DateTime<Utc>>,
    /// What the job did, in a sentence (shown as the job's result).
    pub result: Option<String>,
    /// The tenant's instance, resolved by the first step that succeeded and kept (a reconcile
    /// never moves a tenant to another instance). Absent in jobs of earlier releases.
    pub instance_id: Option<String>,
}

pub(super) type Cx<'a> = StepContext<'a, ReconcileArgs, ReconcileData>;
pub(super) type StepResult = Result<Transition<ReconcileStep>, StepError>;

#[async_trait]
impl Workflow for Reconcile {
    const KIND: &'static str = KIND;
    type Step = ReconcileStep;
    type Args = ReconcileArgs;
    type Data = ReconcileData;

    fn first_step() -> ReconcileStep {
        ReconcileStep::Apply
    }

    async fn run(&self, step: ReconcileStep, cx: &mut Cx<'_>) -> StepResult {
        use ReconcileStep::*;
        let t = &self.0;
        match step {
            Apply => apply(t, cx).await,
            WaitApplied => wait_applied(t, cx).await,
            Alarms => alarms(t, cx).await,
            Tags => tags(t, cx).await,
            Secret => secret(t, cx).await,
            ResetPassword => reset_password(t, cx).await,
            Record => record(cx).await,
            KeepPrevious => {
                let cause = cx.job.error.as_deref().unwrap_or("failed");
                let error = format!("{}: {cause}", describe(&cx.args));
                update_tenant(cx, TenantUpdate::ChangeFailed { error: &error }).await?;
                Ok(Transition::Done)
            }
        }
    }
}

/// "tier change to pro", "suspend", ...
fn describe(args: &ReconcileArgs) -> String {
    match args.reason {
        Reason::TierChange => format!("tier change to {}", args.tier),
        Reason::Suspend => "suspend".into(),
        Reason::Resume => "resume".into(),
        Reason::Repair => "drift repair".into(),
    }
}

/// What every tenant shares, with this job's tenant's own desired major (as the reconciler
/// compares it): a repair never works towards another major than the one the reconciler saw.
pub(super) async fn common<'a>(
    t: &'a AwsContext,
    cx: &Cx<'_>,
) -> Result<(desired::Common<'a>, Option<String>), StepError> {
    let tenant = crate::store::tenants::get(cx.db, cx.tenant()?)
        .await
        .map_err(|e| StepError::retry("control_db", format!("reading the tenant: {e}")))?;
    Ok((
        desired::Common::of(&t.settings),
        tenant.and_then(|t| t.engine_major),
    ))
}

pub(super) fn target<'a>(t: &'a AwsContext, cx: &Cx<'_>) -> Result<&'a Tier, StepError> {
    Ok(t.tier(&cx.args.tier)?.1)
}

/// Waits for a busy instance without using an attempt, saying why.
pub(super) fn busy(
    t: &AwsContext,
    cx: &mut Cx<'_>,
    info: &InstanceInfo,
) -> Transition<ReconcileStep> {
    Transition::WaitFor {
        after: t.watch.next_pause(&mut cx.data.wait_polls),
        class: "instance_busy",
        reason: format!("instance {} is {}", info.identifier, info.status),
    }
}

/// The job's tenant as the owner of what reconcile changes, on its instance.
pub(super) async fn owner(t: &AwsContext, cx: &mut Cx<'_>) -> Result<Owner, StepError> {
    let instance = instance(t, cx).await?;
    Owner::tenant_on(t, cx, None, instance)
}

/// The tenant's instance, read from its record once per job and kept in the job's data.
pub(super) async fn instance(t: &AwsContext, cx: &mut Cx<'_>) -> Result<String, StepError> {
    let id = t.job_instance(cx, cx.data.instance_id.as_deref()).await?;
    cx.data.instance_id = Some(id.clone());
    Ok(id)
}

/// Go on to `next`, with the cause (if any) in the history.
pub(super) fn noted(next: ReconcileStep, cause: &Option<String>) -> Transition<ReconcileStep> {
    match cause {
        Some(note) => Transition::Noted {
            next,
            note: note.clone(),
        },
        None => Transition::Next(next),
    }
}

pub(super) fn pause(t: &AwsContext, cx: &mut Cx<'_>) -> Transition<ReconcileStep> {
    Transition::Wait(t.watch.next_pause(&mut cx.data.wait_polls))
}

async fn record(cx: &mut Cx<'_>) -> StepResult {
    // A repair leaves the tenant's status as it is (a suspended tenant stays suspended).
    let status = match cx.args.reason {
        Reason::Suspend => Some(TenantStatus::Suspended),
        Reason::Resume | Reason::TierChange => Some(TenantStatus::Ready),
        Reason::Repair => None,
    };
    let mut result = match (cx.args.reason, cx.data.changed.len()) {
        (Reason::Suspend, _) => "instance stopped".to_string(),
        (Reason::Resume, _) => "instance started".to_string(),
        (_, 0) => "nothing to change".to_string(),
        (_, _) => {
            let fields: Vec<&str> = cx.data.changed.iter().map(|d| d.field.as_str()).collect();
            format!("changed {}", fields.join(", "))
        }
    };
    if (cx.args.apply == Apply::MaintenanceWindow || cx.data.minor_upgrade.is_some())
        && !cx.data.changed.is_empty()
    {
        result.push_str(" (applied in the next maintenance window)");
    }
    if let Some(repair) = &cx.data.secret_repair {
        result = format!("{result}; {repair}");
        if cx.data.password_reset.is_some() {
            result.push_str(", and the instance got it as its master password");
        }
    }
    if let Some(cause) = &cx.args.cause {
        result = format!("{cause}: {result}");
    }
    if let Some(note) = &cx.data.note {
        result = format!("{result}; {note}");
    }
    let update = TenantUpdate::Changed {
        tier: &cx.args.tier,
        status,
        storage_gib: cx.data.storage_gib,
        // Only a change of the instance's settings says anew what it could not do.
        note: matches!(cx.args.reason, Reason::TierChange | Reason::Repair)
            .then_some(cx.data.note.as_deref()),
    };
    let told = match cx.args.reason {
        Reason::TierChange => EventType::TenantTierChanged,
        Reason::Suspend => EventType::TenantSuspended,
        Reason::Resume => EventType::TenantResumed,
        Reason::Repair => EventType::TenantDriftRepaired,
    };
    update_tenant_telling(cx, update, Some(told)).await?;
    cx.data.result = Some(result);
    Ok(Transition::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_of_an_earlier_release_reads_without_a_kept_instance_and_a_later_one_with_it() {
        let earlier = serde_json::json!({"instance_arn": "arn:aws:rds:x", "wait_polls": 2});
        let data: ReconcileData = serde_json::from_value(earlier).unwrap();
        assert_eq!(data.instance_id, None);
        assert_eq!(data.wait_polls, 2);
        let later = serde_json::json!({"instance_id": "saas-pool-0123456789ab"});
        let data: ReconcileData = serde_json::from_value(later).unwrap();
        assert_eq!(data.instance_id.as_deref(), Some("saas-pool-0123456789ab"));
    }
}
