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

use super::aws::{AwsContext, Owner, update_tenant};
use super::desired::{self, Difference};
use super::error::{Context, StepError};
use super::instance_watch::{Look, PollerSeen};
use super::runner::{StepContext, Workflow};
use super::step::{InstanceWait, Step, StepNames, Transition, steps};
use crate::cloud::alarms::instance_alarms;
use crate::cloud::rds::{InstanceChange, InstanceInfo, UNRECOVERABLE};
use crate::cloud::{self, CloudError, ownership};
use crate::config::Tier;
use crate::store::tenants::{TenantStatus, TenantUpdate};
use crate::tenant_db::{self, DbCredentials};

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

type Cx<'a> = StepContext<'a, ReconcileArgs, ReconcileData>;
type StepResult = Result<Transition<ReconcileStep>, StepError>;

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

fn common(t: &AwsContext) -> desired::Common<'_> {
    desired::Common::of(&t.settings)
}

fn target<'a>(t: &'a AwsContext, cx: &Cx<'_>) -> Result<&'a Tier, StepError> {
    Ok(t.tier(&cx.args.tier)?.1)
}

/// Waits for a busy instance without using an attempt, saying why.
fn busy(t: &AwsContext, cx: &mut Cx<'_>, info: &InstanceInfo) -> Transition<ReconcileStep> {
    Transition::WaitFor {
        after: t.watch.next_pause(&mut cx.data.wait_polls),
        class: "instance_busy",
        reason: format!("instance {} is {}", info.identifier, info.status),
    }
}

/// The job's tenant as the owner of what reconcile changes, on its instance.
async fn owner(t: &AwsContext, cx: &mut Cx<'_>) -> Result<Owner, StepError> {
    let instance = instance(t, cx).await?;
    Owner::tenant_on(t, cx, None, instance)
}

/// The tenant's instance, read from its record once per job and kept in the job's data.
async fn instance(t: &AwsContext, cx: &mut Cx<'_>) -> Result<String, StepError> {
    let id = t.job_instance(cx, cx.data.instance_id.as_deref()).await?;
    cx.data.instance_id = Some(id.clone());
    Ok(id)
}

async fn apply(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let owner = owner(t, cx).await?;
    let id = owner.instance.clone();
    let info = t.owned_instance(&owner, &id).await?;
    if UNRECOVERABLE.contains(&info.status.as_str()) {
        return Err(StepError::fail(
            "instance_failed",
            format!("instance {id} is {}", info.status),
        ));
    }
    cx.data.instance_arn = info.arn.clone();
    cx.data.endpoint = info.endpoint.clone();
    cx.data.instance_status = Some(info.status.clone());
    cx.data.storage_gib = info.allocated_storage_gib;
    let status = info.status.as_str();
    match cx.args.reason {
        Reason::Suspend => match status {
            "stopped" => Ok(Transition::Next(ReconcileStep::Record)),
            "stopping" => Ok(Transition::Next(ReconcileStep::WaitApplied)),
            "available" => {
                t.cloud
                    .stop_db_instance(&id)
                    .await
                    .during("stopping the instance")?;
                cx.data.power_requested = Some(Utc::now());
                Ok(noted(ReconcileStep::WaitApplied, &cx.args.cause))
            }
            _ => Ok(busy(t, cx, &info)),
        },
        Reason::Resume => match status {
            "available" => Ok(Transition::Next(ReconcileStep::Alarms)),
            "starting" => Ok(Transition::Next(ReconcileStep::WaitApplied)),
            "stopped" => {
                t.cloud
                    .start_db_instance(&id)
                    .await
                    .during("starting the instance")?;
                cx.data.power_requested = Some(Utc::now());
                Ok(noted(ReconcileStep::WaitApplied, &cx.args.cause))
            }
            _ => Ok(busy(t, cx, &info)),
        },
        // A suspended tenant's repair leaves its stopped instance as it is (RDS modifies only
        // running instances) and repairs the rest.
        Reason::Repair if status == "stopped" => Ok(Transition::Next(ReconcileStep::Alarms)),
        Reason::TierChange | Reason::Repair => {
            if status == "stopped" {
                return Err(StepError::fail(
                    "instance_stopped",
                    format!("instance {id} is stopped: resume the tenant first"),
                ));
            }
            if status != "available" {
                return Ok(busy(t, cx, &info));
            }
            let mut plan = desired::plan(target(t, cx)?, common(t), &info);
            cx.data.note = plan.note.take();
            cx.data.storage_gib = plan.storage_gib;
            let window = cx.args.apply == Apply::MaintenanceWindow;
            // A minor upgrade waits for the maintenance window; a major is never changed here
            // (its difference has no change).
            let minor = plan.change.engine_version.take();
            let minor_difference = plan.engine().filter(|_| minor.is_some()).cloned();
            let mut changed = plan.settings();
            if changed.is_empty() && minor.is_none() {
                return Ok(Transition::Next(ReconcileStep::Alarms));
            }
            if changed.is_empty() || window {
                // RDS applies whatever is pending when a call says ApplyImmediately: the minor
                // upgrade goes with settings only when they wait for the window too.
                plan.change.engine_version = minor;
                plan.change.in_maintenance_window = true;
                changed.extend(minor_difference);
                cx.data.minor_upgrade = plan.change.engine_version.clone();
            } else if let Some(version) = &minor {
                let later = format!(
                    "the minor upgrade to {version} is asked for by a later repair, for the \
                     maintenance window (this change is applied at once)"
                );
                cx.data.note = Some(match cx.data.note.take() {
                    Some(note) => format!("{note}; {later}"),
                    None => later,
                });
            }
            t.cloud
                .modify_db_instance(&id, &plan.change)
                .await
                .during("modifying the instance")?;
            cx.data.changed = changed;
            Ok(Transition::Next(ReconcileStep::WaitApplied))
        }
    }
}

async fn wait_applied(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let id = instance(t, cx).await?;
    let d = &mut cx.data;
    let step = ReconcileStep::WaitApplied.name();
    let look = t
        .wait_look(
            &id,
            step,
            &mut d.wait_started_at,
            &mut d.poller_seen,
            "changed as asked",
        )
        .await?;
    let info = match look {
        Look::Seen(Some(info)) => info,
        Look::Seen(None) => {
            return Err(StepError::fail(
                "instance_gone",
                format!("instance {id} disappeared during the change"),
            ));
        }
        Look::Later => return Ok(pause(t, cx)),
    };
    let status = info.status.as_str();
    if UNRECOVERABLE.contains(&status) || status == "deleting" {
        return Err(StepError::fail(
            "instance_failed",
            format!("instance {id} is {status}"),
        ));
    }
    let done = match cx.args.reason {
        Reason::Suspend => status == "stopped",
        Reason::Resume => status == "available",
        // RDS has accepted the change and applies it in the maintenance window.
        _ if cx.args.apply == Apply::MaintenanceWindow => status == "available",
        _ => status == "available" && desired::reached(target(t, cx)?, common(t), &info),
    };
    if !done {
        return Ok(pause(t, cx));
    }
    if let Some(gib) = info.allocated_storage_gib {
        cx.data.storage_gib = Some(gib);
    }
    Ok(Transition::Next(if cx.args.reason == Reason::Suspend {
        ReconcileStep::Record
    } else {
        ReconcileStep::Alarms
    }))
}

/// Go on to `next`, with the cause (if any) in the history.
fn noted(next: ReconcileStep, cause: &Option<String>) -> Transition<ReconcileStep> {
    match cause {
        Some(note) => Transition::Noted {
            next,
            note: note.clone(),
        },
        None => Transition::Next(next),
    }
}

fn pause(t: &AwsContext, cx: &mut Cx<'_>) -> Transition<ReconcileStep> {
    Transition::Wait(t.watch.next_pause(&mut cx.data.wait_polls))
}

/// The alarms with the tier's thresholds (PutMetricAlarm replaces by name), once the instance
/// they watch passed the ownership rule.
async fn alarms(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let owner = owner(t, cx).await?;
    let id = owner.instance.clone();
    t.owned_instance(&owner, &id).await?;
    let tier = target(t, cx)?;
    let topic = t.settings.alarm_topic_arn.as_deref();
    for alarm in instance_alarms(&id, topic, tier.low_storage_bytes()) {
        t.cloud
            .put_metric_alarm(&alarm)
            .await
            .during(&format!("updating alarm {}", alarm.name))?;
    }
    Ok(Transition::Next(ReconcileStep::Tags))
}

/// The tier's tag on the instance (a tier change, or a repair of a `Tier` tag), once the
/// instance passed the ownership rule. Only `Tier`: the ownership tags are never added, so a
/// repair cannot make a resource ours again.
async fn tags(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    if !matches!(cx.args.reason, Reason::TierChange | Reason::Repair) {
        return Ok(Transition::Next(ReconcileStep::Secret));
    }
    let owner = owner(t, cx).await?;
    let info = t.owned_instance(&owner, &owner.instance).await?;
    let tier = cx.args.tier.as_str();
    if ownership::tag(&info.tags, cloud::TAG_TIER) != Some(tier)
        && let Some(arn) = info.arn.clone()
    {
        let tags = vec![(cloud::TAG_TIER.to_string(), tier.to_string())];
        t.cloud
            .add_tags_to_resource(&arn, &tags)
            .await
            .during("tagging the instance")?;
    }
    Ok(Transition::Next(ReconcileStep::Secret))
}

/// (Repairs only) The secret: restored when it is only scheduled for deletion; when it is gone
/// for good, a new one with a new password is written first and the instance then gets that
/// password (the next step). Its host and port follow the instance's endpoint, and a password
/// that no longer opens the database is given to the instance again.
async fn secret(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    if cx.args.reason != Reason::Repair {
        return Ok(Transition::Next(ReconcileStep::Record));
    }
    let tenant = cx.tenant()?;
    let name = t.secret_name(tenant);
    let owner = owner(t, cx).await?;
    let instance = owner.instance.clone();
    let found = t
        .cloud
        .describe_secret(&name)
        .await
        .during("looking at the tenant secret")?;
    let (host, port) = cx.data.endpoint.clone().unwrap_or_default();
    let port = u16::try_from(port).unwrap_or(5432);
    match found {
        Some(info) if let Err(why) = owner.check(&info.tags) => {
            return Err(owner.foreign(&format!("secret {name}"), &why));
        }
        Some(info) if info.pending_deletion => {
            t.cloud
                .restore_secret(&info.arn)
                .await
                .during("restoring the tenant secret")?;
            cx.data.secret_repair =
                Some("restored the secret, which was scheduled for deletion".into());
        }
        Some(_) => {}
        None => {
            let credentials = DbCredentials {
                engine: "postgres".into(),
                host,
                port,
                username: t.settings.master_username.clone(),
                password: tenant_db::generate_password(),
                dbname: t.settings.db_name.clone(),
                db_instance_identifier: instance,
            };
            let description = format!("Master credentials of tenant {tenant} (managed by tenantd)");
            let mut tags = t.tags(tenant, &cx.args.tier);
            tags.push((cloud::TAG_JOB.into(), cx.job.id.to_string()));
            match t
                .cloud
                .create_secret(&name, &credentials.to_json(), &tags, &description)
                .await
            {
                Ok(_) => {}
                Err(CloudError::AlreadyExists(_)) => {
                    return Err(StepError::retry(
                        "already_exists",
                        "the secret appeared meanwhile; looking again",
                    ));
                }
                Err(e) => return Err(e).during("re-creating the tenant secret"),
            }
            let note = "the secret was gone for good: wrote a new one with a new master password";
            cx.data.secret_repair = Some(note.into());
            return Ok(Transition::Noted {
                next: ReconcileStep::ResetPassword,
                note: note.into(),
            });
        }
    }
    let value = t
        .cloud
        .get_secret_value(&name)
        .await
        .during("reading the tenant secret")?;
    let mut credentials = DbCredentials::from_json(&value)?;
    if !host.is_empty() && (credentials.host != host || credentials.port != port) {
        credentials.host = host.clone();
        credentials.port = port;
        t.cloud
            .put_secret_value(&name, &credentials.to_json())
            .await
            .during("writing the endpoint into the secret")?;
    }
    let s = &t.settings;
    let restored = cx.data.secret_repair.clone();
    let next = match restored {
        Some(note) => Transition::Noted {
            next: ReconcileStep::Record,
            note,
        },
        None => Transition::Next(ReconcileStep::Record),
    };
    // A stopped instance takes no login: its password is checked once it runs again. The
    // login goes to the endpoint RDS reported, not to the host the secret names.
    if cx.data.instance_status.as_deref() == Some("stopped") || host.is_empty() {
        return Ok(next);
    }
    let credentials = credentials.at(&host, port);
    match tenant_db::connect(&credentials, &s.tenant_db_tls, s.tenant_db_connect_timeout).await {
        Ok(_) => Ok(next),
        Err(e) if e.class() == "tenant_db_auth" => {
            cx.data.secret_repair =
                Some("the secret's password no longer opened the database".into());
            Ok(Transition::Next(ReconcileStep::ResetPassword))
        }
        Err(e) => Err(e.into()),
    }
}

/// (Repairs only) The instance gets the secret's password (ModifyDBInstance
/// MasterUserPassword): the secret was written first, so it never holds a password the
/// instance does not know for longer than this step.
async fn reset_password(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let tenant = cx.tenant()?;
    let owner = owner(t, cx).await?;
    let instance = owner.instance.clone();
    t.owned_instance(&owner, &instance).await?;
    let value = t
        .cloud
        .get_secret_value(&t.secret_name(tenant))
        .await
        .during("reading the tenant secret")?;
    let credentials = DbCredentials::from_json(&value)?;
    let change = InstanceChange {
        master_password: Some(credentials.password),
        ..Default::default()
    };
    t.cloud
        .modify_db_instance(&instance, &change)
        .await
        .during("resetting the master password")?;
    cx.data.password_reset = Some(Utc::now());
    Ok(Transition::Noted {
        next: ReconcileStep::Record,
        note: "the instance got the secret's password as its master password".into(),
    })
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
    update_tenant(cx, update).await?;
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
