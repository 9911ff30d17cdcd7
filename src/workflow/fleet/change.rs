//! What each kind of fleet change does to one instance: the call `request` makes, when `wait`
//! has seen the target, what `verify` and `record` write.

use std::time::Duration;

use chrono::Utc;

use super::{Cx, FleetStep, StepResult, owner};
use crate::cloud::maintenance::PendingMaintenance;
use crate::cloud::rds::{InstanceChange, InstanceInfo, UNRECOVERABLE};
use crate::config::TenantDbTls;
use crate::queue;
use crate::store::rollout_tenants::{self as rollout, Outcome};
use crate::store::tenants::{self as tenant_record, TenantUpdate};
use crate::tenant_db::{self, DbCredentials};
use crate::workflow::aws::AwsContext;
use crate::workflow::error::{Context, StepError};
use crate::workflow::instance_watch::Look;
use crate::workflow::reconcile::Apply;
use crate::workflow::step::{StepNames, Transition};

/// The kinds of in-place fleet change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    EngineMinor,
    CaCertificate,
    Maintenance,
}

impl Kind {
    /// The job kind (`jobs.kind`).
    pub const fn job_kind(self) -> &'static str {
        match self {
            Kind::EngineMinor => "engine_minor",
            Kind::CaCertificate => "ca_certificate",
            Kind::Maintenance => "maintenance",
        }
    }

    /// `immediate` / `next-maintenance`: RDS's opt-in names, for maintenance actions.
    fn opt_in(apply: Apply) -> &'static str {
        match apply {
            Apply::Immediately => "immediate",
            Apply::MaintenanceWindow => "next-maintenance",
        }
    }
}

/// A kind as a type, so that each is a workflow of its own.
pub trait ChangeKind: Send + Sync + 'static {
    const KIND: Kind;
}

pub struct EngineMinor;
pub struct CaCertificate;
pub struct Maintenance;

impl ChangeKind for EngineMinor {
    const KIND: Kind = Kind::EngineMinor;
}
impl ChangeKind for CaCertificate {
    const KIND: Kind = Kind::CaCertificate;
}
impl ChangeKind for Maintenance {
    const KIND: Kind = Kind::Maintenance;
}

/// `16.9` → `[16, 9]`; `None` for anything else.
pub fn version_parts(v: &str) -> Option<Vec<u32>> {
    v.split('.').map(|p| p.parse().ok()).collect()
}

/// The major of a version (`16.9` → `16`).
pub fn major_of(v: &str) -> &str {
    v.split('.').next().unwrap_or(v)
}

/// Whether `current` is `target` or a later minor of the same major.
pub fn minor_reached(current: &str, target: &str) -> bool {
    match (version_parts(current), version_parts(target)) {
        (Some(c), Some(t)) => c.first() == t.first() && c >= t,
        _ => current == target,
    }
}

/// The actions a maintenance change applies among those pending (`all`: every one).
fn selected<'a>(pending: &'a [PendingMaintenance], target: &str) -> Vec<&'a PendingMaintenance> {
    pending
        .iter()
        .filter(|p| target == "all" || p.action == target)
        .collect()
}

/// The longest wait: the deadline for a change applied at once; eight days (a week's window
/// and a day) for one left to the maintenance window.
fn deadline(t: &AwsContext, apply: Apply) -> Duration {
    match apply {
        Apply::Immediately => t.settings.deadline,
        Apply::MaintenanceWindow => Duration::from_secs(8 * 24 * 3600),
    }
}

/// What the instance has of the kind's target, as text (for `before` and `now`).
fn has(kind: Kind, info: &InstanceInfo, pending: Option<&[PendingMaintenance]>) -> String {
    match kind {
        Kind::EngineMinor => info.engine_version.clone().unwrap_or_default(),
        Kind::CaCertificate => info.ca_certificate.clone().unwrap_or_default(),
        Kind::Maintenance => {
            let names: Vec<&str> = pending
                .unwrap_or_default()
                .iter()
                .map(|p| p.action.as_str())
                .collect();
            if names.is_empty() {
                "none pending".into()
            } else {
                format!("pending: {}", names.join(", "))
            }
        }
    }
}

async fn pending_of(t: &AwsContext, id: &str) -> Result<Vec<PendingMaintenance>, StepError> {
    let (mut found, _) = t
        .cloud
        .describe_pending_maintenance_batch(&[id.to_string()])
        .await
        .during("reading the pending maintenance actions")?;
    Ok(found.remove(id).unwrap_or_default())
}

/// The ownership check on a fresh describe, then the kind's call (or none: already there).
pub(super) async fn request(kind: Kind, t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let owner = owner(t, cx).await?;
    let id = owner.instance.clone();
    let info = t.owned_instance(&owner, &id).await?;
    let status = info.status.as_str();
    if UNRECOVERABLE.contains(&status) {
        return Err(StepError::fail(
            "instance_failed",
            format!("instance {id} is {status}"),
        ));
    }
    if status != "available" {
        return Ok(Transition::WaitFor {
            after: t.watch.next_pause(&mut cx.data.wait_polls),
            class: "instance_busy",
            reason: format!("instance {id} is {status}"),
        });
    }
    cx.data.instance_arn = info.arn.clone();
    cx.data.endpoint = info.endpoint.clone();
    let target = cx.args.target.clone();
    let window = cx.args.apply == Apply::MaintenanceWindow;
    match kind {
        Kind::EngineMinor => {
            let current = info.engine_version.clone().unwrap_or_default();
            cx.data.before.get_or_insert(current.clone());
            if major_of(&current) != major_of(&target) {
                return Err(StepError::fail(
                    "engine_major",
                    format!(
                        "instance {id} runs PostgreSQL {current}: a minor version change stays \
                         within a major, and {target} is of another (that is an engine_major \
                         rollout)"
                    ),
                ));
            }
            if minor_reached(&current, &target) {
                return Ok(Transition::Next(waiting(cx.args.apply)));
            }
            if info.pending_engine_version.as_deref() != Some(target.as_str()) || !window {
                let change = InstanceChange {
                    engine_version: Some(target.clone()),
                    in_maintenance_window: window,
                    ..InstanceChange::default()
                };
                t.cloud
                    .modify_db_instance(&id, &change)
                    .await
                    .during("asking for the minor version")?;
                cx.data.requested_at = Some(Utc::now());
            }
        }
        Kind::CaCertificate => {
            let current = info.ca_certificate.clone().unwrap_or_default();
            cx.data.before.get_or_insert(current.clone());
            if current == target {
                return Ok(Transition::Next(waiting(cx.args.apply)));
            }
            if info.pending_ca_certificate.as_deref() != Some(target.as_str()) || !window {
                let change = InstanceChange {
                    ca_certificate: Some(target.clone()),
                    in_maintenance_window: window,
                    ..InstanceChange::default()
                };
                t.cloud
                    .modify_db_instance(&id, &change)
                    .await
                    .during("asking for the CA")?;
                cx.data.requested_at = Some(Utc::now());
            }
        }
        Kind::Maintenance => {
            let pending = pending_of(t, &id).await?;
            cx.data
                .before
                .get_or_insert_with(|| has(kind, &info, Some(&pending)));
            let opt_in = Kind::opt_in(cx.args.apply);
            let Some(arn) = info.arn.clone() else {
                return Err(StepError::retry(
                    "bad_data",
                    format!("RDS described instance {id} without its ARN"),
                ));
            };
            for action in selected(&pending, &target) {
                if !cx.data.actions.contains(&action.action) {
                    cx.data.actions.push(action.action.clone());
                }
                if action.opt_in_status.as_deref() == Some(opt_in) {
                    continue;
                }
                t.cloud
                    .apply_pending_maintenance_action(&arn, &action.action, opt_in)
                    .await
                    .during(&format!("applying maintenance action {}", action.action))?;
                cx.data.requested_at = Some(Utc::now());
            }
        }
    }
    Ok(Transition::Next(waiting(cx.args.apply)))
}

/// The wait step of a change applied at once, or left to the window.
fn waiting(apply: Apply) -> FleetStep {
    match apply {
        Apply::Immediately => FleetStep::Wait,
        Apply::MaintenanceWindow => FleetStep::WaitWindow,
    }
}

/// Until RDS describes the target (and, for maintenance, no longer lists the actions).
pub(super) async fn wait(
    kind: Kind,
    step: FleetStep,
    t: &AwsContext,
    cx: &mut Cx<'_>,
) -> StepResult {
    let owner = owner(t, cx).await?;
    let id = owner.instance.clone();
    let limit = deadline(t, cx.args.apply);
    let began = *cx.data.wait_started_at.get_or_insert_with(Utc::now);
    if (Utc::now() - began).to_std().unwrap_or_default() > limit {
        return Err(StepError::fail(
            "deadline",
            format!(
                "instance {id} did not reach {} {} within {}",
                kind.job_kind(),
                cx.args.target,
                humantime::format_duration(limit)
            ),
        ));
    }
    // A change left to the window is looked at seldom, by the step itself (the poller does not
    // wake it): the window may be a week away.
    let window = step == FleetStep::WaitWindow;
    let seen = cx.data.poller_seen.take();
    let look = t
        .watch
        .look(seen.as_ref(), step.name(), &id, !window)
        .await
        .during("looking at the instance")?;
    let later = |t: &AwsContext, cx: &mut Cx<'_>| {
        let pause = t.watch.next_pause(&mut cx.data.wait_polls);
        Ok(Transition::Wait(if window { pause * 10 } else { pause }))
    };
    let info = match look {
        Look::Later => return later(t, cx),
        Look::Seen(None) => {
            return Err(StepError::fail(
                "instance_gone",
                format!("instance {id} disappeared during the change"),
            ));
        }
        Look::Seen(Some(info)) => info,
    };
    if UNRECOVERABLE.contains(&info.status.as_str()) {
        return Err(StepError::fail(
            "instance_failed",
            format!("instance {id} is {}", info.status),
        ));
    }
    if info.status != "available" {
        return later(t, cx);
    }
    owner
        .check(&info.tags)
        .map_err(|why| owner.foreign(&format!("instance {id}"), &why))?;
    let target = cx.args.target.as_str();
    let reached = match kind {
        Kind::EngineMinor => info
            .engine_version
            .as_deref()
            .is_some_and(|v| minor_reached(v, target)),
        Kind::CaCertificate => info.ca_certificate.as_deref() == Some(target),
        Kind::Maintenance => {
            let pending = pending_of(t, &id).await?;
            let left = pending.iter().any(|p| cx.data.actions.contains(&p.action));
            if !left {
                cx.data.pending_left = Some(pending);
            }
            !left
        }
    };
    if !reached {
        return later(t, cx);
    }
    cx.data.endpoint = info.endpoint.clone().or(cx.data.endpoint.take());
    cx.data.now = Some(match kind {
        Kind::Maintenance if cx.data.actions.is_empty() => "nothing pending".into(),
        Kind::Maintenance => format!("applied: {}", cx.data.actions.join(", ")),
        _ => has(kind, &info, None),
    });
    Ok(Transition::Next(match kind {
        Kind::CaCertificate => FleetStep::Verify,
        _ => FleetStep::Record,
    }))
}

/// A verify-full login to the tenant database with the new CA's bundle alone (from
/// `TENANTD_TENANT_DB_CA_DIR`; else the bundle of `TENANTD_TENANT_DB_CA_FILE`, said so).
pub(super) async fn verify(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let tenant = cx.tenant()?;
    let ca = cx.args.target.clone();
    let s = &t.settings;
    let bundle = match (s.engines.ca_bundle(&ca), &s.tenant_db_tls) {
        (Some(path), _) => path,
        (None, TenantDbTls::VerifyFull { ca_file }) => ca_file.clone(),
        (None, _) => {
            return Ok(Transition::Noted {
                next: FleetStep::Record,
                note: format!(
                    "not verified: no bundle for {ca} in TENANTD_TENANT_DB_CA_DIR, and \
                     TENANTD_TENANT_DB_TLS is not verify-full"
                ),
            });
        }
    };
    let Some((host, port)) = cx.data.endpoint.clone() else {
        return Err(StepError::fail(
            "bad_data",
            "the instance was described without an endpoint",
        ));
    };
    let port = u16::try_from(port)
        .map_err(|_| StepError::fail("bad_data", format!("endpoint port {port} is not a port")))?;
    let value = t
        .cloud
        .get_secret_value(&t.secret_name(tenant))
        .await
        .during("reading the tenant secret")?;
    let credentials = DbCredentials::from_json(&value)?.at(&host, port);
    let tls = TenantDbTls::VerifyFull {
        ca_file: bundle.clone(),
    };
    let conn = tenant_db::connect(&credentials, &tls, s.tenant_db_connect_timeout)
        .await
        .map_err(|e| StepError::from(e).during(&format!("verify-full with the bundle of {ca}")))?;
    drop(conn);
    cx.data.verified_with = Some(bundle.display().to_string());
    Ok(Transition::Noted {
        next: FleetStep::Record,
        note: format!("verify-full login with the bundle of {ca} alone succeeded"),
    })
}

/// What the instance has now, on the tenant and in the rollout, in one fenced transaction.
pub(super) async fn record(kind: Kind, cx: &mut Cx<'_>) -> StepResult {
    let tenant = cx.tenant()?;
    let now = cx.data.now.clone().unwrap_or_default();
    let update = TenantUpdate::InstanceChanged {
        engine_version: (kind == Kind::EngineMinor).then_some(now.as_str()),
        ca_certificate: (kind == Kind::CaCertificate).then_some(now.as_str()),
        pending_maintenance: cx.data.pending_left.as_deref(),
    };
    let mut conn = cx.db.acquire().await.map_err(queue::QueueError::from)?;
    let mut tx = queue::fenced(&mut conn, cx.lease).await?;
    tenant_record::update(&mut tx, tenant, update)
        .await
        .map_err(control_db)?;
    if let Some(id) = cx.args.rollout {
        rollout::record_outcome(
            &mut tx,
            id,
            tenant,
            cx.job.id,
            Outcome::Reached { now: &now },
        )
        .await
        .map_err(control_db)?;
    }
    tx.commit().await.map_err(queue::QueueError::from)?;
    let before = cx.data.before.clone().unwrap_or_default();
    cx.data.result = Some(match (kind, cx.data.requested_at) {
        (Kind::Maintenance, _) => format!("{before}; {now}"),
        (_, None) => format!("already on {now}"),
        (_, Some(_)) => format!("{before} → {now}"),
    });
    Ok(Transition::Done)
}

/// The change failed for good: the tenant keeps its status, with the cause; the rollout
/// counts it failed.
pub(super) async fn record_failure(kind: Kind, cx: &mut Cx<'_>) -> StepResult {
    let cause = cx.job.error.as_deref().unwrap_or("cancelled");
    let error = format!("{} to {} failed: {cause}", kind.job_kind(), cx.args.target);
    crate::workflow::migrate::record_rollout_failure(cx, &error, cx.args.rollout).await?;
    Ok(Transition::Done)
}

fn control_db(e: sqlx::Error) -> StepError {
    StepError::retry("control_db", format!("recording the change: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minor_is_reached_by_itself_or_a_later_minor_of_the_same_major() {
        assert!(minor_reached("16.9", "16.9"));
        assert!(minor_reached("16.10", "16.9"));
        assert!(!minor_reached("16.8", "16.9"));
        assert!(!minor_reached("17.1", "16.9"));
        assert_eq!(major_of("16.9"), "16");
    }

    #[test]
    fn all_selects_every_pending_action_and_a_name_only_its_own() {
        let action = |name: &str| PendingMaintenance {
            action: name.into(),
            description: None,
            auto_applied_after: None,
            forced_apply: None,
            current_apply: None,
            opt_in_status: None,
        };
        let pending = [action("system-update"), action("os-upgrade")];
        assert_eq!(selected(&pending, "all").len(), 2);
        let one = selected(&pending, "os-upgrade");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].action, "os-upgrade");
        assert!(selected(&pending, "db-upgrade").is_empty());
    }
}
