//! Taking a tenant's resources away, step by step: shared by the rollback of a failed
//! provisioning and by deprovisioning. Each step is idempotent (what is already gone is
//! skipped), leaves alone what is not tagged as the tenant's, and waits durably for RDS.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::poller::Look;
use super::tenancy::{
    Tenancy, TenantUpdate, data_time, data_u64, on_undo_error, on_write_error, tenant_of,
    update_tenant,
};
use super::{StepContext, Transition};
use crate::cloud::rds::{InstanceChange, UNRECOVERABLE};
use crate::cloud::secrets::Recovery;
use crate::cloud::{self, CloudError};

/// Deletes both alarms (deleting a missing alarm is not an error), then goes to `next`.
pub async fn undo_alarms(t: &Tenancy, cx: &StepContext<'_>, next: &'static str) -> Transition {
    match t.cloud.delete_alarms(&t.alarm_names(tenant_of(cx))).await {
        Ok(()) => Transition::next(next),
        Err(e) => on_undo_error("deleting the alarms", e),
    }
}

/// Rollback: the instance goes without a final snapshot.
pub async fn undo_instance(t: &Tenancy, cx: &StepContext<'_>) -> Transition {
    remove_instance(t, cx, None, "undo_secret").await
}

/// Rollback: the secret goes at once, with no recovery window.
pub async fn undo_secret(t: &Tenancy, cx: &StepContext<'_>) -> Transition {
    remove_secret(t, cx, Recovery::None, "mark_failed").await
}

/// Switches deletion protection off, deletes the instance (with `final_snapshot` if given and
/// the instance can still take one), and waits until it is gone; then goes to `next`. An
/// instance not tagged as the tenant's is left alone: a rollback goes on, a deprovisioning
/// (which names a final snapshot) fails.
pub async fn remove_instance(
    t: &Tenancy,
    cx: &StepContext<'_>,
    final_snapshot: Option<String>,
    next: &'static str,
) -> Transition {
    let tenant = tenant_of(cx);
    let id = t.instance_id(tenant);
    let now = Utc::now();
    let started = data_time(cx, "delete_started_at").unwrap_or(now);
    let polls = data_u64(cx, "delete_polls");
    if (now - started).to_std().unwrap_or_default() > t.settings.deadline {
        return Transition::fail(format!(
            "instance {id} was not deleted within {}; it may remain",
            humantime::format_duration(t.settings.deadline)
        ));
    }
    // The first look is our own; later ones (while it is deleted) come from the poller.
    let info = match t.look(cx, &id, polls > 0).await {
        Ok(Look::Seen(Some(info))) => info,
        Ok(Look::Seen(None)) => return Transition::next(next),
        Ok(Look::Later) => return wait_gone(t, started, polls),
        Err(e) => return on_undo_error("looking at the instance", e),
    };
    if !cloud::tagged_for(&info.tags, tenant) {
        if final_snapshot.is_some() {
            return Transition::fail(format!(
                "instance {id} is not tagged as this tenant's; left untouched"
            ));
        }
        tracing::warn!(instance = %id, "instance is not this tenant's; leaving it untouched");
        return Transition::next(next).with_data(json!({ "foreign_instance_left": id }));
    }
    if info.status == "deleting" {
        return wait_gone(t, started, polls);
    }
    if info.deletion_protection {
        let change = InstanceChange {
            deletion_protection: Some(false),
            ..Default::default()
        };
        return match t.cloud.modify_db_instance(&id, &change).await {
            Ok(_) | Err(CloudError::Busy(_)) => wait_gone(t, started, polls),
            Err(CloudError::NotFound(_)) => Transition::next(next),
            Err(e) => on_undo_error("switching off deletion protection", e),
        };
    }
    // An instance in a state RDS cannot snapshot goes without one; the data says so.
    let snapshot = final_snapshot.filter(|_| !UNRECOVERABLE.contains(&info.status.as_str()));
    match t.cloud.delete_db_instance(&id, snapshot.as_deref()).await {
        Ok(()) => wait_gone(t, started, polls).with_data(json!({
            "delete_started_at": started.to_rfc3339(),
            "delete_polls": polls + 1,
            "final_snapshot": snapshot,
        })),
        Err(CloudError::NotFound(_)) => Transition::next(next),
        // e.g. still creating or modifying: look again later, without using up attempts.
        Err(CloudError::Busy(_)) => wait_gone(t, started, polls),
        Err(e) => on_undo_error("deleting the instance", e),
    }
}

fn wait_gone(t: &Tenancy, started: DateTime<Utc>, polls: u64) -> Transition {
    Transition::wait(t.wait_pause(polls)).with_data(json!({
        "delete_started_at": started.to_rfc3339(),
        "delete_polls": polls + 1,
    }))
}

/// Deletes the tenant's secret as `recovery` says, unless it is already gone, waiting for
/// deletion, or not tagged as the tenant's; then goes to `next`.
pub async fn remove_secret(
    t: &Tenancy,
    cx: &StepContext<'_>,
    recovery: Recovery,
    next: &'static str,
) -> Transition {
    let tenant = tenant_of(cx);
    let name = t.secret_name(tenant);
    let info = match t.cloud.describe_secret(&name).await {
        Ok(Some(info)) => info,
        Ok(None) => return Transition::next(next),
        Err(e) => return on_undo_error("looking for the secret", e),
    };
    if !cloud::tagged_for(&info.tags, tenant) {
        tracing::warn!(secret = %name, "secret is not this tenant's; leaving it untouched");
        return Transition::next(next).with_data(json!({ "foreign_secret_left": name }));
    }
    if info.pending_deletion && recovery != Recovery::None {
        return Transition::next(next);
    }
    match t.cloud.delete_secret(&info.arn, recovery).await {
        Ok(()) => Transition::next(next),
        Err(e) => on_undo_error("deleting the secret", e),
    }
}

/// The last step of a failed or cancelled job: the tenant is `failed`, with the job's error
/// (the cause, then any rollback step that failed, which says what may remain).
pub async fn mark_failed(cx: &StepContext<'_>, prefix: &str) -> Transition {
    let cause = cx.job.error.as_deref().unwrap_or("failed");
    let error = format!("{prefix}{cause}");
    match update_tenant(cx, TenantUpdate::Failed { error: &error }).await {
        Ok(()) => Transition::done(),
        Err(e) => on_write_error(e),
    }
}
