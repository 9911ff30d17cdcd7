//! The per-tenant jobs of fleet rollouts that change an instance in place: a minor version
//! (`engine_minor`), the CA of its certificate (`ca_certificate`), RDS's pending maintenance
//! actions (`maintenance`). One state machine for the three, each kind's calls in [`change`]:
//!
//! request → wait (or wait_window) → verify (CA only) → record; a failure for good (or a cancel) →
//! record_failure: the tenant keeps its status, with the cause in its `error` and in its
//! rollout. `request` makes the kind's one modifying call (ModifyDBInstance or
//! ApplyPendingMaintenanceAction) after a fresh DescribeDBInstances whose tags pass the
//! ownership rule; it makes none when the instance has the target already (or has it pending,
//! for a step run again). `wait` waits durably until RDS describes the target, woken by the
//! instance poller; `wait_window` instead, when the change waits for the maintenance window,
//! looks by itself every ten `TENANTD_WAIT_MAX`, for up to eight days. `verify` logs in to the
//! tenant database with verify-full against the new CA's bundle alone.

pub mod change;

use std::marker::PhantomData;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::StepError;
use super::aws::{AwsContext, Owner};
use super::instance_watch::PollerSeen;
use super::reconcile::Apply;
use super::runner::{StepContext, Workflow};
use super::step::{InstanceWait, Step, StepNames, Transition, steps};
pub use change::{CaCertificate, ChangeKind, EngineMinor, Kind, Maintenance};

/// Changes one tenant's instance as a fleet rollout of kind `K` asks.
pub struct FleetChange<K>(pub AwsContext, PhantomData<K>);

impl<K> FleetChange<K> {
    pub fn new(aws: AwsContext) -> Self {
        FleetChange(aws, PhantomData)
    }
}

steps! {
    /// The steps of a fleet change job.
    pub enum FleetStep {
        /// The ownership check, then the kind's modifying call (none when already there).
        Request = "request",
        /// Until RDS describes the target (applied at once: woken by the instance poller).
        Wait = "wait",
        /// Until RDS describes the target, left to the maintenance window: a look of its own
        /// every ten `TENANTD_WAIT_MAX` (the poller does not wake it: the window may be a
        /// week away).
        WaitWindow = "wait_window",
        /// (CA) A verify-full login with the new CA's bundle.
        Verify = "verify",
        /// What the instance has now, on the tenant and in the rollout.
        Record = "record",
        /// The change failed for good: the cause on the tenant and in the rollout.
        RecordFailure = "record_failure",
    }
}

impl Step for FleetStep {
    fn compensation(self) -> Option<Self> {
        match self {
            FleetStep::RecordFailure => None,
            _ => Some(FleetStep::RecordFailure),
        }
    }

    fn waits_for(self) -> Option<InstanceWait> {
        (self == FleetStep::Wait).then_some(InstanceWait::Settled)
    }
}

/// What a fleet change job is asked to do (`jobs.args`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetArgs {
    /// The minor version, CA identifier, or maintenance action (`all`: every pending one).
    pub target: String,
    /// At once, or in the instance's maintenance window (for maintenance actions:
    /// `immediate` or `next-maintenance`).
    #[serde(default)]
    pub apply: Apply,
    /// The rollout the job belongs to.
    #[serde(default)]
    pub rollout: Option<Uuid>,
}

/// What the steps of a fleet change job record (`jobs.data`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FleetData {
    /// The tenant's instance, resolved once.
    pub instance_id: Option<String>,
    pub instance_arn: Option<String>,
    pub endpoint: Option<(String, i32)>,
    /// What the instance had before (version, CA, pending actions).
    pub before: Option<String>,
    /// When the modifying call was made (`None`: none was needed).
    pub requested_at: Option<DateTime<Utc>>,
    /// The maintenance actions opted in to.
    pub actions: Vec<String>,
    /// RDS's pending maintenance actions left once the wait ended.
    pub pending_left: Option<Vec<crate::cloud::maintenance::PendingMaintenance>>,
    pub wait_started_at: Option<DateTime<Utc>>,
    pub wait_polls: u64,
    pub poller_seen: Option<PollerSeen>,
    /// What the instance has afterwards (version, CA, actions applied).
    pub now: Option<String>,
    /// The bundle the verify-full login trusted.
    pub verified_with: Option<String>,
    /// What the job did, in a sentence (shown as the job's result).
    pub result: Option<String>,
}

type Cx<'a> = StepContext<'a, FleetArgs, FleetData>;
type StepResult = Result<Transition<FleetStep>, StepError>;

#[async_trait]
impl<K: ChangeKind> Workflow for FleetChange<K> {
    const KIND: &'static str = K::KIND.job_kind();
    type Step = FleetStep;
    type Args = FleetArgs;
    type Data = FleetData;

    fn first_step() -> FleetStep {
        FleetStep::Request
    }

    async fn run(&self, step: FleetStep, cx: &mut Cx<'_>) -> StepResult {
        let t = &self.0;
        match step {
            FleetStep::Request => change::request(K::KIND, t, cx).await,
            FleetStep::Wait | FleetStep::WaitWindow => change::wait(K::KIND, step, t, cx).await,
            FleetStep::Verify => change::verify(t, cx).await,
            FleetStep::Record => change::record(K::KIND, cx).await,
            FleetStep::RecordFailure => change::record_failure(K::KIND, cx).await,
        }
    }
}

/// The job's tenant as the owner of its instance (resolved once per job).
async fn owner(t: &AwsContext, cx: &mut Cx<'_>) -> Result<Owner, StepError> {
    let id = t.job_instance(cx, cx.data.instance_id.as_deref()).await?;
    cx.data.instance_id = Some(id.clone());
    Owner::tenant_on(t, cx, None, id)
}

/// Builds the job a rollout starts for `tenant`.
pub fn job(kind: Kind, tenant: &str, args: &FleetArgs, max_attempts: i32) -> crate::queue::NewJob {
    crate::queue::NewJob::new(kind.job_kind(), FleetStep::Request.name(), max_attempts)
        .tenant(tenant)
        .args(serde_json::to_value(args).expect("arguments serialize"))
}
