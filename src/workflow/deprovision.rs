//! The deprovisioning workflow: alarms, then the instance (after a final snapshot unless the
//! request said otherwise), then the secret (restorable for the recovery window); the tenant
//! ends `deleted`. A failure leaves the tenant `failed` with what went wrong.

use async_trait::async_trait;

use super::rollback::{mark_failed, remove_instance, remove_secret, undo_alarms};
use super::tenancy::{Tenancy, TenantUpdate, on_write_error, tenant_of, update_tenant};
use super::{StepContext, Transition, Workflow};
use crate::cloud::secrets::Recovery;
use crate::tenants::DEPROVISION;

/// Takes one tenant's database away.
pub struct Deprovision(pub Tenancy);

#[async_trait]
impl Workflow for Deprovision {
    fn kind(&self) -> &'static str {
        DEPROVISION
    }

    fn first_step(&self) -> &'static str {
        "delete_alarms"
    }

    async fn run_step(&self, cx: &StepContext<'_>) -> Transition {
        let t = &self.0;
        match cx.job.step.as_str() {
            "delete_alarms" => undo_alarms(t, cx, "delete_instance").await,
            "delete_instance" => {
                let snapshot = cx.job.args.0["final_snapshot"]
                    .as_bool()
                    .unwrap_or(true)
                    .then(|| final_snapshot_id(t, cx));
                remove_instance(t, cx, snapshot, "delete_secret").await
            }
            "delete_secret" => {
                let days = t.settings.secret_recovery_days;
                remove_secret(t, cx, Recovery::Days(days), "mark_deleted").await
            }
            "mark_deleted" => match update_tenant(cx, TenantUpdate::Deleted).await {
                Ok(()) => Transition::done(),
                Err(e) => on_write_error(e),
            },
            "mark_failed" => mark_failed(cx, "deprovisioning: ").await,
            other => Transition::fail(format!("deprovision has no step {other}")),
        }
    }

    fn compensation(&self, step: &str) -> Option<&'static str> {
        match step {
            "mark_failed" => None,
            _ => Some("mark_failed"),
        }
    }
}

/// `<instance>-final-<job creation time>`: the same on every attempt of the job, so a retried
/// delete cannot leave two snapshots.
pub fn final_snapshot_id(t: &Tenancy, cx: &StepContext<'_>) -> String {
    format!(
        "{}-final-{}",
        t.instance_id(tenant_of(cx)),
        cx.job.created_at.format("%Y%m%d%H%M%S")
    )
}
