//! The engine upgrade workflow: moves one tenant to a new PostgreSQL major by an RDS Blue/Green
//! deployment, and the job that later deletes the instance it left behind ([`retire`]).
//!
//! prechecks → parameter_groups → wait_blue → create_deployment → wait_green → verify_green →
//! await_window → switchover → wait_switchover → record → forget_deployment; any step before the switchover failing
//! for good (or a switchover RDS rolled back) → roll_back: the deployment and its green instance
//! are deleted (only what this job created) and the tenant stays on its old version, `ready`,
//! with the cause in its `error`. Each step is idempotent: the deployment's name is derived from
//! the job id, so a step run again after a crash finds the deployment it made instead of making
//! a second.

mod finish;
mod green;
mod inventory;
mod prechecks;
pub mod retire;
mod switchover;
mod window;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::aws::AwsContext;
use super::error::StepError;
use super::instance_watch::PollerSeen;
use super::runner::{StepContext, Workflow};
use super::step::{InstanceWait, Step, StepNames, Transition, steps};
use crate::queue::NewJob;

pub use super::reconcile::Apply;
pub use retire::{RETIRE_KIND, RetireInstance};

/// The job kind (`jobs.kind`).
pub const KIND: &str = "engine_upgrade";

/// Moves one tenant to a new major version.
pub struct EngineUpgrade(pub AwsContext);

steps! {
    /// The steps of an engine upgrade.
    pub enum UpgradeStep {
        /// The target is a valid upgrade target; the tenant's extensions exist in it.
        Prechecks = "prechecks",
        /// Parameter groups with logical replication on, for the old family (on the instance)
        /// and the new one (for green).
        ParameterGroups = "parameter_groups",
        /// Until the instance runs with its group's parameters (rebooted if RDS asks).
        WaitBlue = "wait_blue",
        /// CreateBlueGreenDeployment, or the one this job made before a crash.
        CreateDeployment = "create_deployment",
        /// Until the deployment is available and green in sync.
        WaitGreen = "wait_green",
        /// Green logs in with the tenant's secret, has blue's schema version and row counts.
        VerifyGreen = "verify_green",
        /// Until the tenant's maintenance window (for `apply: maintenance_window`).
        AwaitWindow = "await_window",
        /// SwitchoverBlueGreenDeployment.
        Switchover = "switchover",
        /// Until the switchover completed (or RDS rolled it back).
        WaitSwitchover = "wait_switchover",
        /// The new version on the tenant, alarms, the old instance's later deletion.
        Record = "record",
        /// The finished deployment is deleted (both instances stay).
        ForgetDeployment = "forget_deployment",
        /// Before a switchover: the deployment and green go; the tenant keeps its version.
        RollBack = "roll_back",
    }
}

impl Step for UpgradeStep {
    fn compensation(self) -> Option<Self> {
        match self {
            UpgradeStep::RollBack | UpgradeStep::Record | UpgradeStep::ForgetDeployment => None,
            _ => Some(UpgradeStep::RollBack),
        }
    }

    fn waits_for(self) -> Option<InstanceWait> {
        (self == UpgradeStep::WaitBlue).then_some(InstanceWait::Settled)
    }
}

/// What an engine upgrade is asked for (`jobs.args`). Fields added later have defaults, so
/// jobs written by earlier releases still read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineUpgradeArgs {
    /// The major to move to, e.g. `"17"`.
    pub target_major: String,
    /// At once, or in the tenant's maintenance window.
    #[serde(default)]
    pub apply: Apply,
    /// The rollout the upgrade is part of, if any.
    #[serde(default)]
    pub rollout: Option<Uuid>,
}

/// What the steps of an engine upgrade record (`jobs.data`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UpgradeData {
    /// The tenant's instance (blue), resolved once.
    pub instance_id: Option<String>,
    pub instance_arn: Option<String>,
    /// The version blue runs and the one green gets.
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    pub from_family: Option<String>,
    pub to_family: Option<String>,
    /// The parameter group green gets, and the one blue must run with.
    pub green_parameter_group: Option<String>,
    pub blue_parameter_group: Option<String>,
    /// The extensions of the tenant database.
    pub extensions: Vec<String>,
    pub rebooted_at: Option<DateTime<Utc>>,
    /// What the instance poller saw when it woke the job (at `wait_blue`).
    pub poller_seen: Option<PollerSeen>,
    /// The deployment (`bgd-...`) and the green instance.
    pub deployment: Option<String>,
    pub green_instance: Option<String>,
    pub wait_started_at: Option<DateTime<Utc>>,
    pub wait_polls: u64,
    /// How many looks at green found it not yet equal to blue.
    pub verify_tries: u32,
    /// Blue as the first look at green read it: the low end of what green may show on later
    /// looks (green replays blue with a lag, so under steady writes it is behind the blue
    /// read just before it; the switchover is what waits for it to be in sync).
    pub blue_first_look: Option<inventory::Inventory>,
    /// What the check of green found: schema version and tables compared.
    pub verified: Option<String>,
    pub switchover_refused_since: Option<DateTime<Utc>>,
    pub switchover_requested_at: Option<DateTime<Utc>>,
    /// After the switchover: the instance the tenant now runs on and the old one kept.
    pub new_instance: Option<String>,
    pub old_instance: Option<String>,
    /// The job that deletes the old instance once it has been kept long enough.
    pub retire_job: Option<Uuid>,
    /// What the rollback did.
    pub rolled_back: Option<String>,
    /// What the job did, in a sentence.
    pub result: Option<String>,
}

pub(crate) type Cx<'a> = StepContext<'a, EngineUpgradeArgs, UpgradeData>;
pub(crate) type StepResult = Result<Transition<UpgradeStep>, StepError>;

/// The job that moves `tenant` to `args.target_major`: for a tenant request and for a rollout,
/// which enqueue it like any tenant job (one active job per tenant).
pub fn engine_upgrade_job(tenant: &str, args: &EngineUpgradeArgs, max_attempts: i32) -> NewJob {
    let args = serde_json::to_value(args).expect("job arguments serialize");
    NewJob::new(KIND, UpgradeStep::Prechecks.name(), max_attempts)
        .tenant(tenant)
        .args(args)
}

/// The Blue/Green deployment's name for a job: RDS keeps names unique, so a create repeated
/// after a crash finds the first one (letters, digits and hyphens, a letter first, at most 60).
pub fn deployment_name(job: Uuid) -> String {
    format!("tenantd-upgrade-{}", job.simple())
}

#[async_trait]
impl Workflow for EngineUpgrade {
    const KIND: &'static str = KIND;
    type Step = UpgradeStep;
    type Args = EngineUpgradeArgs;
    type Data = UpgradeData;

    fn first_step() -> UpgradeStep {
        UpgradeStep::Prechecks
    }

    async fn run(&self, step: UpgradeStep, cx: &mut Cx<'_>) -> StepResult {
        use UpgradeStep::*;
        let t = &self.0;
        match step {
            Prechecks => prechecks::prechecks(t, cx).await,
            ParameterGroups => prechecks::parameter_groups(t, cx).await,
            WaitBlue => prechecks::wait_blue(t, cx).await,
            CreateDeployment => green::create_deployment(t, cx).await,
            WaitGreen => green::wait_green(t, cx).await,
            VerifyGreen => green::verify_green(t, cx).await,
            AwaitWindow => switchover::await_window(t, cx).await,
            Switchover => switchover::switchover(t, cx).await,
            WaitSwitchover => switchover::wait_switchover(t, cx).await,
            Record => finish::record(t, cx).await,
            ForgetDeployment => finish::forget_deployment(t, cx).await,
            RollBack => finish::roll_back(t, cx).await,
        }
    }
}

/// A pause of a step that looks at a deployment itself (the instance poller knows only
/// instances): growing from `TENANTD_WAIT_BASE` to `TENANTD_WAIT_MAX`.
pub(crate) fn pause(t: &AwsContext, polls: &mut u64) -> std::time::Duration {
    let s = &t.settings;
    let pause = s
        .wait_base
        .mul_f64(1.5f64.powi((*polls).min(30) as i32))
        .min(s.wait_max);
    *polls += 1;
    pause
}

/// Fails once `TENANTD_PROVISION_DEADLINE` has passed since `started` (set on the first call).
pub(crate) fn within_deadline(
    t: &AwsContext,
    started: &mut Option<DateTime<Utc>>,
    what: &str,
) -> Result<(), StepError> {
    let began = *started.get_or_insert_with(Utc::now);
    let deadline = t.settings.deadline;
    if (Utc::now() - began).to_std().unwrap_or_default() > deadline {
        return Err(StepError::fail(
            "deadline",
            format!("{what} within {}", humantime::format_duration(deadline)),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_of_the_first_shape_read_with_defaults() {
        let old: EngineUpgradeArgs =
            serde_json::from_value(serde_json::json!({"target_major": "17"})).unwrap();
        assert_eq!(old.apply, Apply::Immediately);
        assert_eq!(old.rollout, None);
        let job = engine_upgrade_job("acme", &old, 5);
        assert_eq!(job.kind, KIND);
        assert_eq!(job.step, "prechecks");
        assert_eq!(job.tenant_id.as_deref(), Some("acme"));
    }

    #[test]
    fn a_deployment_name_is_valid_for_rds_and_the_same_for_the_same_job() {
        let job = Uuid::new_v4();
        let name = deployment_name(job);
        assert_eq!(name, deployment_name(job));
        assert!(name.len() <= 60 && name.starts_with(|c: char| c.is_ascii_lowercase()));
        assert!(!name.contains("--") && !name.ends_with('-'));
    }
}
