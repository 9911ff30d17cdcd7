//! Reconcile's instance steps: ModifyDBInstance (or stop/start) with what differs from the tier,
//! then a durable wait until RDS has applied it.

use chrono::Utc;

use crate::cloud::rds::UNRECOVERABLE;
use crate::workflow::aws::AwsContext;
use crate::workflow::desired::{self};
use crate::workflow::error::{Context, StepError};
use crate::workflow::instance_watch::Look;
use crate::workflow::step::{StepNames, Transition};

use super::{
    Apply, Cx, Reason, ReconcileStep, StepResult, busy, common, instance, noted, owner, pause,
    target,
};

pub(super) async fn apply(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
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
            let (shared, major) = common(t, cx).await?;
            let shared = shared.with_major(major.as_deref());
            let mut plan = desired::plan(target(t, cx)?, shared, &info);
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

pub(super) async fn wait_applied(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
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
        // The engine version is not compared here (a minor comes with the window): the
        // setting's major serves.
        _ => {
            status == "available"
                && desired::reached(target(t, cx)?, desired::Common::of(&t.settings), &info)
        }
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
