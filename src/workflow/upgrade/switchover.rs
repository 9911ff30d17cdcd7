//! The switchover: at once or when the tenant's maintenance window opens, then
//! SwitchoverBlueGreenDeployment with `SwitchoverTimeout`, and the wait until RDS says it
//! completed (or rolled it back: green had not caught up within the timeout).

use chrono::Utc;

use super::super::aws::AwsContext;
use super::super::error::{Context, StepError};
use super::super::step::Transition;
use super::green::{check_deployment, find};
use super::prechecks::owner;
use super::window::until_open;
use super::{Apply, Cx, StepResult, UpgradeStep, pause, within_deadline};
use crate::cloud::CloudError;

pub(super) async fn await_window(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    if cx.args.apply == Apply::Immediately {
        return Ok(Transition::Next(UpgradeStep::Switchover));
    }
    let owner = owner(t, cx).await?;
    let info = t.owned_instance(&owner, &owner.instance.clone()).await?;
    let window = info
        .maintenance_window
        .clone()
        .unwrap_or_else(|| t.settings.maintenance_window.clone());
    match until_open(&window, Utc::now()) {
        Some(wait) if wait.is_zero() => Ok(Transition::Noted {
            next: UpgradeStep::Switchover,
            note: format!("the maintenance window {window} is open"),
        }),
        Some(wait) => Ok(Transition::WaitFor {
            after: wait
                .to_std()
                .unwrap_or_default()
                .max(std::time::Duration::from_secs(1)),
            class: "maintenance_window",
            reason: format!("the switchover waits for the maintenance window {window}"),
        }),
        None => Err(StepError::fail(
            "maintenance_window",
            format!(
                "instance {} has a maintenance window tenantd cannot read: {window:?}",
                owner.instance
            ),
        )),
    }
}

pub(super) async fn switchover(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let owner = owner(t, cx).await?;
    let d = find(t, cx).await?.ok_or_else(|| {
        StepError::fail("deployment_gone", "the Blue/Green deployment disappeared")
    })?;
    check_deployment(&owner, cx, &d)?;
    let details = d.status_details.clone().unwrap_or_default();
    match d.status.as_str() {
        // Asked for before a crash: its outcome is the next step's.
        "SWITCHOVER_IN_PROGRESS" | "SWITCHOVER_COMPLETED" => {
            return Ok(Transition::Next(UpgradeStep::WaitSwitchover));
        }
        "SWITCHOVER_FAILED" => {
            return Err(StepError::fail(
                "switchover_rolled_back",
                format!("RDS rolled the switchover back: {details}"),
            ));
        }
        "AVAILABLE" => {}
        status => {
            return Err(StepError::fail(
                "deployment_failed",
                format!(
                    "Blue/Green deployment {} is {status}: {details}",
                    d.identifier
                ),
            ));
        }
    }
    // Both members pass the ownership rule before production moves.
    t.owned_instance(&owner, &owner.instance.clone()).await?;
    let green = cx.data.green_instance.clone().unwrap_or_default();
    t.owned_instance(&owner, &green).await?;
    let timeout = t.settings.upgrade_switchover_timeout.as_secs() as i32;
    match t
        .cloud
        .switchover_blue_green_deployment(&d.identifier, timeout)
        .await
    {
        Ok(_) => {
            cx.data.switchover_requested_at = Some(Utc::now());
            cx.data.wait_polls = 0;
            Ok(Transition::Noted {
                next: UpgradeStep::WaitSwitchover,
                note: format!("switchover asked for (timeout {timeout} s)"),
            })
        }
        // Refused for now (green not in sync, lagging, or busy): production stays on blue.
        Err(CloudError::Busy(f)) => {
            let since = *cx
                .data
                .switchover_refused_since
                .get_or_insert_with(Utc::now);
            let waited = (Utc::now() - since).to_std().unwrap_or_default();
            if waited > t.settings.deadline {
                return Err(StepError::fail(
                    "switchover_refused",
                    format!(
                        "RDS refused the switchover for {}: {}",
                        humantime::format_duration(t.settings.deadline),
                        f.message
                    ),
                ));
            }
            Ok(Transition::WaitFor {
                after: pause(t, &mut cx.data.wait_polls),
                class: "switchover_refused",
                reason: f.message,
            })
        }
        Err(e) => Err(e).during("switching over"),
    }
}

pub(super) async fn wait_switchover(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    within_deadline(
        t,
        &mut cx.data.wait_started_at,
        "the switchover did not end",
    )?;
    let d = find(t, cx).await?.ok_or_else(|| {
        StepError::fail("deployment_gone", "the Blue/Green deployment disappeared")
    })?;
    let details = d.status_details.clone().unwrap_or_default();
    match d.status.as_str() {
        "SWITCHOVER_IN_PROGRESS" => Ok(Transition::Wait(pause(t, &mut cx.data.wait_polls))),
        "SWITCHOVER_COMPLETED" => {
            cx.data.wait_started_at = None;
            Ok(Transition::Next(UpgradeStep::Record))
        }
        "SWITCHOVER_FAILED" => Err(StepError::fail(
            "switchover_rolled_back",
            format!("RDS rolled the switchover back: {details}"),
        )),
        status => Err(StepError::fail(
            "deployment_failed",
            format!(
                "Blue/Green deployment {} is {status}: {details}",
                d.identifier
            ),
        )),
    }
}
