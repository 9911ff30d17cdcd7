//! The provisioning workflow, and its first steps: the master credentials, the RDS instance, and
//! waiting for the instance to become available. The later steps are in `configure.rs`, the
//! rollback in `rollback.rs`.
//!
//! credentials → instance → wait_available → secret_endpoint → migrate → backups → alarms →
//! protect → mark_ready; any of them failing for good (or a cancel) → undo_alarms →
//! undo_instance → undo_secret → mark_failed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::poller::Look;
use super::tenancy::{Tenancy, data_str, data_time, data_u64, on_cloud_error, tenant_of};
use super::{StepContext, Transition, Workflow, configure, rollback};
use crate::cloud::rds::{InstanceChange, InstanceInfo, InstanceSpec, UNRECOVERABLE};
use crate::cloud::{self, CloudError};
use crate::tenant_db::{self, DbCredentials};
use crate::tenants::PROVISION;
use crate::tier::Tier;

/// Walks one tenant from nothing to a ready, monitored, backed-up database.
pub struct Provision(pub Tenancy);

#[async_trait]
impl Workflow for Provision {
    fn kind(&self) -> &'static str {
        PROVISION
    }

    fn first_step(&self) -> &'static str {
        "credentials"
    }

    async fn run_step(&self, cx: &StepContext<'_>) -> Transition {
        let t = &self.0;
        match cx.job.step.as_str() {
            "credentials" => credentials(t, cx).await,
            "instance" => instance(t, cx).await,
            "wait_available" => wait_available(t, cx).await,
            "secret_endpoint" => configure::secret_endpoint(t, cx).await,
            "migrate" => configure::migrate(t, cx).await,
            "backups" => configure::backups(t, cx).await,
            "alarms" => configure::alarms(t, cx).await,
            "protect" => configure::protect(t, cx).await,
            "mark_ready" => configure::mark_ready(cx).await,
            "undo_alarms" => rollback::undo_alarms(t, cx, "undo_instance").await,
            "undo_instance" => rollback::undo_instance(t, cx).await,
            "undo_secret" => rollback::undo_secret(t, cx).await,
            "mark_failed" => rollback::mark_failed(cx, "").await,
            other => Transition::fail(format!("provision has no step {other}")),
        }
    }

    /// Every forward step (and a cancel at any of them) leads into the rollback, whose undo
    /// steps do nothing for what was never created. A rollback step that fails for good goes
    /// on where that is safe, and the tenant always ends `failed` with the whole story.
    fn compensation(&self, step: &str) -> Option<&'static str> {
        match step {
            "undo_alarms" => Some("undo_instance"),
            // The secret stays while the instance may remain: it holds the only password.
            "undo_instance" | "undo_secret" => Some("mark_failed"),
            "mark_failed" => None,
            _ => Some("undo_alarms"),
        }
    }
}

/// The tier the job provisions.
pub fn tier_of<'a>(
    t: &'a Tenancy,
    cx: &StepContext<'_>,
) -> Result<(&'a str, &'a Tier), Transition> {
    let name = cx.job.args.0["tier"].as_str().unwrap_or_default();
    t.settings
        .tiers
        .0
        .get_key_value(name)
        .map(|(k, v)| (k.as_str(), v))
        .ok_or_else(|| Transition::fail(format!("tier {name:?} is not configured")))
}

/// The secret's ARN as recorded by the credentials step (its name before that).
pub fn secret_id(t: &Tenancy, cx: &StepContext<'_>) -> String {
    data_str(cx, "secret_arn")
        .map(str::to_string)
        .unwrap_or_else(|| t.secret_name(tenant_of(cx)))
}

/// Reads the tenant's credentials from Secrets Manager.
pub async fn read_credentials(
    t: &Tenancy,
    cx: &StepContext<'_>,
) -> Result<DbCredentials, Transition> {
    let value = t
        .cloud
        .get_secret_value(&secret_id(t, cx))
        .await
        .map_err(|e| on_cloud_error("reading the tenant secret", e))?;
    DbCredentials::from_json(&value).map_err(Transition::fail)
}

/// Step 1: a master password in Secrets Manager, made once and found again after a crash.
async fn credentials(t: &Tenancy, cx: &StepContext<'_>) -> Transition {
    let tenant = tenant_of(cx);
    let (tier, _) = match tier_of(t, cx) {
        Ok(tier) => tier,
        Err(fail) => return fail,
    };
    let name = t.secret_name(tenant);
    let found = match t.cloud.describe_secret(&name).await {
        Ok(found) => found,
        Err(e) => return on_cloud_error("looking for the tenant secret", e),
    };
    let arn = match found {
        Some(info) if !cloud::tagged_for(&info.tags, tenant) => {
            return Transition::fail(format!(
                "secret {name} exists and is not tagged as this tenant's; left untouched"
            ));
        }
        // A deprovisioned tenant's secret waits for deletion under the same name: take it
        // back with a new password.
        Some(info) if info.pending_deletion => {
            if let Err(e) = t.cloud.restore_secret(&info.arn).await {
                return on_cloud_error("restoring the tenant secret", e);
            }
            if let Err(e) = t
                .cloud
                .put_secret_value(&info.arn, &fresh_credentials(t, tenant).to_json())
                .await
            {
                return on_cloud_error("renewing the tenant secret", e);
            }
            info.arn
        }
        Some(info) => info.arn,
        None => {
            let description = format!("Master credentials of tenant {tenant} (managed by tenantd)");
            let created = t
                .cloud
                .create_secret(
                    &name,
                    &fresh_credentials(t, tenant).to_json(),
                    &t.tags(tenant, tier),
                    &description,
                )
                .await;
            match created {
                Ok(arn) => arn,
                // Ours from an attempt that died after the call: the next visit reuses it.
                Err(CloudError::AlreadyExists(_)) => {
                    return Transition::retry("the secret appeared meanwhile; looking again");
                }
                Err(e) => return on_cloud_error("creating the tenant secret", e),
            }
        }
    };
    Transition::next("instance").with_data(json!({ "secret_arn": arn }))
}

/// New master credentials; the host is filled in once the instance has one.
fn fresh_credentials(t: &Tenancy, tenant: &str) -> DbCredentials {
    DbCredentials {
        engine: "postgres".into(),
        host: String::new(),
        port: 5432,
        username: t.settings.master_username.clone(),
        password: tenant_db::generate_password(),
        dbname: t.settings.db_name.clone(),
        db_instance_identifier: t.instance_id(tenant),
    }
}

/// Step 2: CreateDBInstance, or adopt the instance of that name if its tags say it is ours.
async fn instance(t: &Tenancy, cx: &StepContext<'_>) -> Transition {
    let tenant = tenant_of(cx);
    let (tier_name, tier) = match tier_of(t, cx) {
        Ok(tier) => tier,
        Err(fail) => return fail,
    };
    let credentials = match read_credentials(t, cx).await {
        Ok(c) => c,
        Err(transition) => return transition,
    };
    let id = t.instance_id(tenant);
    let s = &t.settings;
    let mut tags = t.tags(tenant, tier_name);
    tags.push((cloud::TAG_JOB.into(), cx.job.id.to_string()));
    let spec = InstanceSpec {
        identifier: id.clone(),
        instance_class: tier.instance_class.clone(),
        engine_version: s.engine_version.clone(),
        storage_gib: tier.storage_gib,
        iops: tier.iops,
        storage_throughput: tier.storage_throughput,
        backup_retention_days: tier.backup_retention_days,
        backup_window: s.backup_window.clone(),
        maintenance_window: s.maintenance_window.clone(),
        multi_az: tier.multi_az,
        performance_insights_days: tier.performance_insights_days,
        security_group_ids: s.security_group_ids.clone(),
        db_subnet_group: s.db_subnet_group.clone(),
        master_username: credentials.username.clone(),
        db_name: credentials.dbname.clone(),
        tags,
    };
    match t
        .cloud
        .create_db_instance(&spec, &credentials.password)
        .await
    {
        Ok(_) => Transition::next("wait_available").with_data(json!({ "instance_id": id })),
        Err(CloudError::AlreadyExists(_)) => match t.cloud.describe_db_instance(&id).await {
            Err(e) => on_cloud_error("looking at the existing instance", e),
            Ok(None) => Transition::retry(format!("instance {id} existed and is gone now")),
            Ok(Some(info)) if !cloud::tagged_for(&info.tags, tenant) => Transition::fail(format!(
                "instance {id} exists and is not tagged as this tenant's; left untouched"
            )),
            Ok(Some(info)) => {
                let ours = info
                    .tags
                    .iter()
                    .any(|(k, v)| k == cloud::TAG_JOB && *v == cx.job.id.to_string());
                tracing::info!(instance = %id, created_by_this_job = ours, "instance exists and is this tenant's: adopting it");
                Transition::next("wait_available")
                    .with_data(json!({ "instance_id": id, "adopted": !ours }))
            }
        },
        Err(e) => on_cloud_error("creating the instance", e),
    }
}

/// Step 3: one look at the instance per visit; a durable, growing wait until it is available.
async fn wait_available(t: &Tenancy, cx: &StepContext<'_>) -> Transition {
    let id = t.instance_id(tenant_of(cx));
    let now = Utc::now();
    let started = data_time(cx, "wait_started_at").unwrap_or(now);
    let deadline = t.settings.deadline;
    if (now - started).to_std().unwrap_or_default() > deadline {
        return Transition::fail(format!(
            "instance {id} was not available within {}",
            humantime::format_duration(deadline)
        ));
    }
    let polls = data_u64(cx, "wait_polls");
    let info = match t.look(cx, &id, true).await {
        Ok(Look::Seen(Some(info))) => info,
        Ok(Look::Seen(None)) => {
            return Transition::fail(format!("instance {id} disappeared while being created"));
        }
        Ok(Look::Later) => return keep_waiting(t, started, polls),
        Err(e) => return on_cloud_error("looking at the instance", e),
    };
    match info.status.as_str() {
        "available" => {
            // An adopted instance has a password we never saw: give it the secret's.
            if cx.job.data.0["adopted"] == json!(true) && data_str(cx, "password_reset").is_none() {
                let credentials = match read_credentials(t, cx).await {
                    Ok(c) => c,
                    Err(transition) => return transition,
                };
                let change = InstanceChange {
                    master_password: Some(credentials.password),
                    ..Default::default()
                };
                if let Err(e) = t.cloud.modify_db_instance(&id, &change).await {
                    return on_cloud_error("setting the adopted instance's password", e);
                }
                return keep_waiting(t, started, 0).with_data(json!({
                    "wait_started_at": started.to_rfc3339(),
                    "wait_polls": 1,
                    "password_reset": now.to_rfc3339(),
                }));
            }
            let Some((host, port)) = info.endpoint.clone() else {
                return keep_waiting(t, started, polls);
            };
            Transition::next("secret_endpoint").with_data(json!({
                "endpoint_host": host,
                "endpoint_port": port,
                "available_at": now.to_rfc3339(),
                "backup_retention_seen": backups_as_asked(t, cx, &info)
                    .then_some(info.backup_retention_days),
            }))
        }
        status if UNRECOVERABLE.contains(&status) || status == "deleting" => {
            Transition::fail(format!("instance {id} is {status}"))
        }
        _ => keep_waiting(t, started, polls),
    }
}

/// Whether the instance already has the backup settings the tier asks for (CreateDBInstance
/// sets them), so the backups step need not call ModifyDBInstance.
fn backups_as_asked(t: &Tenancy, cx: &StepContext<'_>, info: &InstanceInfo) -> bool {
    let Ok((_, tier)) = tier_of(t, cx) else {
        return false;
    };
    info.backup_retention_days == tier.backup_retention_days
        && info.backup_window.as_deref() == Some(t.settings.backup_window.as_str())
        && info.maintenance_window.as_deref() == Some(t.settings.maintenance_window.as_str())
}

fn keep_waiting(t: &Tenancy, started: DateTime<Utc>, polls: u64) -> Transition {
    Transition::wait(t.wait_pause(polls)).with_data(json!({
        "wait_started_at": started.to_rfc3339(),
        "wait_polls": polls + 1,
    }))
}
