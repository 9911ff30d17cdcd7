//! The two ends of an engine upgrade. After the switchover: the new version and instance on
//! the tenant, its alarms on the instance that now serves it, the secret's endpoint, and the
//! job that deletes the old instance once it has been kept for `TENANTD_UPGRADE_KEEP_OLD`,
//! then the finished deployment forgotten. Before one: the rollback, which deletes the
//! deployment and its green instance (only what this job made) and leaves the tenant as it was.

use chrono::Utc;

use super::super::aws::{AwsContext, Owner, update_tenant};
use super::super::error::{Context, StepError, Undoing};
use super::super::step::Transition;
use super::green::{check_deployment, find};
use super::prechecks::owner;
use super::retire::{RETIRE_KIND, RetireArgs, RetireStep};
use super::{Cx, StepResult, UpgradeStep, inventory, pause};
use crate::cloud::alarms::instance_alarms;
use crate::cloud::bluegreen::instance_of_arn;
use crate::queue::{self, NewJob};
use crate::store::tenants::{self as record, TenantUpdate};
use crate::tenant_db;
use crate::workflow::engine_version::major;
use crate::workflow::step::StepNames;

pub(super) async fn record(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let tenant = cx.tenant()?.to_string();
    let before = owner(t, cx).await?;
    let d = find(t, cx).await?.ok_or_else(|| {
        StepError::fail("deployment_gone", "the Blue/Green deployment disappeared")
    })?;
    check_deployment(&before, cx, &d)?;
    let (Some(source), Some(target)) = (d.source.as_deref(), d.target.as_deref()) else {
        return Err(StepError::retry(
            "deployment",
            "RDS names no source or target yet",
        ));
    };
    let new_id = instance_of_arn(target).to_string();
    let old_id = instance_of_arn(source).to_string();
    let now_on = Owner::tenant_on(t, cx, None, new_id.clone())?;
    let info = t.owned_instance(&now_on, &new_id).await?;
    let version = info.engine_version.clone().unwrap_or_default();
    let endpoint = info
        .endpoint
        .clone()
        .ok_or_else(|| StepError::retry("no_endpoint", format!("{new_id} has no endpoint")))?;
    let row = record::get(cx.db, &tenant)
        .await
        .map_err(|e| StepError::retry("control_db", format!("reading the tenant: {e}")))?
        .ok_or_else(|| StepError::fail("no_tenant", format!("tenant {tenant} is gone")))?;
    let mut notes = Vec::new();
    // RDS gives green the blue's identifier: the alarms (named after it) watch the right
    // instance already. Otherwise they follow it.
    if new_id != before.instance {
        let (_, tier) = t.tier(&row.tier)?;
        let topic = t.settings.alarm_topic_arn.as_deref();
        for alarm in instance_alarms(&new_id, topic, tier.low_storage_bytes()) {
            t.cloud
                .put_metric_alarm(&alarm)
                .await
                .during(&format!("putting alarm {}", alarm.name))?;
        }
        t.cloud
            .delete_alarms(&t.alarm_names(&before.instance))
            .await
            .during("deleting the alarms of the old identifier")?;
        notes.push(format!("alarms moved from {} to {new_id}", before.instance));
    } else {
        notes.push(format!(
            "{new_id} kept its identifier: its alarms watch it already"
        ));
    }
    // The secret's host and port are for clients: they follow the endpoint.
    let secret = t.secret_name(&tenant);
    let value = t
        .cloud
        .get_secret_value(&secret)
        .await
        .during("reading the tenant secret")?;
    let mut credentials = tenant_db::DbCredentials::from_json(&value)?;
    let port = u16::try_from(endpoint.1).unwrap_or(5432);
    if credentials.host != endpoint.0 || credentials.port != port {
        credentials.host = endpoint.0.clone();
        credentials.port = port;
        credentials.db_instance_identifier = new_id.clone();
        t.cloud
            .put_secret_value(&secret, &credentials.to_json())
            .await
            .during("writing the new endpoint into the secret")?;
        notes.push("the secret names the new endpoint".into());
    }
    // The tenant's secret opens the upgraded database.
    let on_new = inventory::credentials(t, &tenant, &endpoint).await?;
    let schema = inventory::inventory(t, &on_new)
        .await
        .map_err(|e| e.during("logging in to the upgraded instance"))?
        .schema_version;

    let keep = t.settings.upgrade_keep_old;
    let delete_after = Utc::now() + chrono::Duration::from_std(keep).unwrap_or_default();
    let mut conn = cx.db.acquire().await.map_err(queue::QueueError::from)?;
    let mut tx = queue::fenced(&mut conn, cx.lease).await?;
    // The desired major moves with the version, in the same fenced write: the reconciler
    // compares the instance with 17 from now on, whatever TENANTD_ENGINE_VERSION says.
    let engine_major = major(&cx.args.target_major);
    let update = TenantUpdate::Upgraded {
        instance: &new_id,
        host: &endpoint.0,
        port: endpoint.1,
        engine_version: &version,
        engine_major: &engine_major,
    };
    record::update(&mut tx, &tenant, update)
        .await
        .map_err(|e| StepError::retry("control_db", format!("updating the tenant: {e}")))?;
    // One deleting job per old instance, even when this step runs again.
    let existing = queue::jobs_with_arg(&mut *tx, RETIRE_KIND, "instance", &old_id).await?;
    let retire = match existing.first() {
        Some(id) => *id,
        None => {
            let args = RetireArgs {
                tenant: tenant.clone(),
                instance: old_id.clone(),
                upgrade_job: cx.job.id,
            };
            let mut job = NewJob::new(
                RETIRE_KIND,
                RetireStep::DeleteOld.name(),
                cx.job.max_attempts,
            )
            .args(serde_json::to_value(&args).expect("arguments serialize"))
            .note(format!(
                "the instance {tenant} ran on before its engine upgrade"
            ));
            job.run_at = Some(delete_after);
            queue::enqueue(&mut tx, job).await?.into_job().id
        }
    };
    tx.commit().await.map_err(queue::QueueError::from)?;

    let from = cx.data.from_version.clone().unwrap_or_default();
    cx.data.new_instance = Some(new_id.clone());
    cx.data.old_instance = Some(old_id.clone());
    cx.data.retire_job = Some(retire);
    cx.data.result = Some(format!(
        "upgraded from PostgreSQL {from} to {version} on {new_id} (schema version {schema}); {}; \
         the old instance {old_id} is kept until {} and then deleted with a final snapshot (job {retire})",
        notes.join("; "),
        delete_after.format("%Y-%m-%d %H:%M UTC"),
    ));
    Ok(Transition::Next(UpgradeStep::ForgetDeployment))
}

/// The finished deployment is deleted (its instances stay): RDS allows one deployment per
/// source, and the next upgrade makes its own.
pub(super) async fn forget_deployment(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let before = owner(t, cx).await?;
    if let Some(d) = find(t, cx).await? {
        check_deployment(&before, cx, &d)?;
        if d.status == "SWITCHOVER_COMPLETED" {
            t.cloud
                .delete_blue_green_deployment(&d.identifier, false)
                .await
                .during("deleting the finished Blue/Green deployment")?;
        }
    }
    Ok(Transition::Done)
}

/// Deletes what this job created before a switchover, then records the cause on the tenant,
/// which keeps its version and status. A switchover that completed after all is recorded
/// instead (the tenant runs the new version).
pub(super) async fn roll_back(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let before = owner(t, cx).await?;
    let cause = cx.job.error.clone().unwrap_or_else(|| "failed".into());
    let wanted = cx.args.target_major.clone();
    if let Some(d) = find(t, cx)
        .await
        .map_err(|e| StepError { retry: true, ..e })?
    {
        if let Err(e) = check_deployment(&before, cx, &d) {
            cx.data.rolled_back = Some(e.message.clone());
        } else {
            match d.status.as_str() {
                "SWITCHOVER_COMPLETED" => {
                    return Ok(Transition::Noted {
                        next: UpgradeStep::Record,
                        note: "the switchover had completed: the tenant runs the new version"
                            .into(),
                    });
                }
                "SWITCHOVER_IN_PROGRESS" | "DELETING" => {
                    return Ok(Transition::Wait(pause(t, &mut cx.data.wait_polls)));
                }
                _ => {
                    let green = d.target.as_deref().map(instance_of_arn).unwrap_or_default();
                    // Never production: green is a copy under its own identifier.
                    let delete_target = !green.is_empty() && green != before.instance;
                    if delete_target {
                        t.owned_instance(&before, green).await?;
                    }
                    t.cloud
                        .delete_blue_green_deployment(&d.identifier, delete_target)
                        .await
                        .undoing("deleting the Blue/Green deployment")?;
                    cx.data.green_instance = (!green.is_empty()).then(|| green.to_string());
                    cx.data.deployment = Some(d.identifier.clone());
                    return Ok(Transition::Wait(pause(t, &mut cx.data.wait_polls)));
                }
            }
        }
    }
    // The deployment is gone; its green instance goes too (it was this job's deployment's).
    if let Some(green) = cx
        .data
        .green_instance
        .clone()
        .filter(|g| *g != before.instance)
    {
        match t
            .cloud
            .describe_db_instance(&green)
            .await
            .undoing("looking at green")?
        {
            None => {}
            Some(info) if before.check(&info.tags).is_err() => {
                cx.data.rolled_back =
                    Some(format!("green {green} is not the tenant's: left untouched"));
            }
            Some(info) if info.status == "deleting" => {
                return Ok(Transition::Wait(pause(t, &mut cx.data.wait_polls)));
            }
            Some(_) => {
                match t.cloud.delete_db_instance(&green, None, false).await {
                    Ok(()) | Err(crate::cloud::CloudError::NotFound(_)) => {}
                    Err(crate::cloud::CloudError::Busy(_)) => {}
                    Err(e) => return Err(e).undoing("deleting green"),
                }
                return Ok(Transition::Wait(pause(t, &mut cx.data.wait_polls)));
            }
        }
    }
    let left = cx
        .data
        .rolled_back
        .clone()
        .map(|l| format!(" ({l})"))
        .unwrap_or_default();
    let error = format!("engine upgrade to PostgreSQL {wanted}: {cause}{left}");
    update_tenant(cx, TenantUpdate::ChangeFailed { error: &error }).await?;
    cx.data.result = Some(format!(
        "not upgraded: the tenant stays on PostgreSQL {}; no Blue/Green deployment or green instance of this job is left{left}",
        cx.data
            .from_version
            .clone()
            .unwrap_or_else(|| "its version".into())
    ));
    Ok(Transition::Done)
}
