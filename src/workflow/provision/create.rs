//! The first provisioning steps: the master credentials, the RDS instance, and waiting for the
//! instance to become available.

use chrono::Utc;

use super::state::{KIND, ProvisionArgs, ProvisionData, ProvisionStep, QuotaWait};
use crate::cloud::rds::{InstanceChange, InstanceInfo, InstanceSpec, UNRECOVERABLE};
use crate::cloud::{self, CloudError};
use crate::config::Tier;
use crate::queue;
use crate::tenant_db::{self, DbCredentials};
use crate::workflow::aws::{AwsContext, Owner};
use crate::workflow::error::{Context, StepError};
use crate::workflow::instance_watch::Look;
use crate::workflow::runner::StepContext;
use crate::workflow::step::{StepNames, Transition};

pub type Cx<'a> = StepContext<'a, ProvisionArgs, ProvisionData>;
pub type StepResult = Result<Transition<ProvisionStep>, StepError>;

/// The secret's ARN as recorded by the credentials step (its name before that).
pub fn secret_id(owner: &Owner, cx: &Cx<'_>) -> String {
    match &cx.data.secret_arn {
        Some(arn) => arn.clone(),
        None => owner.secret.clone(),
    }
}

/// Reads the owner's credentials from Secrets Manager.
pub async fn read_credentials(
    t: &AwsContext,
    owner: &Owner,
    cx: &Cx<'_>,
) -> Result<DbCredentials, StepError> {
    let value = t
        .cloud
        .get_secret_value(&secret_id(owner, cx))
        .await
        .during("reading the tenant secret")?;
    Ok(DbCredentials::from_json(&value)?)
}

/// The master credentials for logging in: the secret's user and password, at the endpoint RDS
/// reported for the instance (recorded by the wait step, or by a claim), never the host the
/// secret names.
pub async fn master_credentials(
    t: &AwsContext,
    owner: &Owner,
    cx: &Cx<'_>,
) -> Result<DbCredentials, StepError> {
    let (Some(host), Some(port)) = (cx.data.endpoint_host.clone(), cx.data.endpoint_port) else {
        return Err(StepError::fail(
            "bad_data",
            "no endpoint was recorded for the instance",
        ));
    };
    let port = u16::try_from(port)
        .map_err(|_| StepError::fail("bad_data", format!("endpoint port {port} is not a port")))?;
    Ok(read_credentials(t, owner, cx).await?.at(&host, port))
}

/// Step 1: a master password in Secrets Manager, made once and found again after a crash.
/// A secret this job creates carries its id (`ProvisioningJob`), so that a rollback deletes
/// it, and only it, at once.
pub async fn credentials(t: &AwsContext, owner: &Owner, cx: &mut Cx<'_>) -> StepResult {
    let (tier, _) = t.tier(&cx.args.tier)?;
    let name = owner.secret.clone();
    let instance = owner.instance.clone();
    let found = t
        .cloud
        .describe_secret(&name)
        .await
        .during("looking for the tenant secret")?;
    if let Some(info) = &found
        && let Err(why) = owner.check(&info.tags)
    {
        return Err(owner.foreign(&format!("secret {name}"), &why));
    }
    let arn = match found {
        // A deprovisioned tenant's secret waits for deletion under the same name: take it
        // back with a new password.
        Some(info) if info.pending_deletion => {
            t.cloud
                .restore_secret(&info.arn)
                .await
                .during("restoring the tenant secret")?;
            t.cloud
                .put_secret_value(&info.arn, &fresh_credentials(t, &instance).to_json())
                .await
                .during("renewing the tenant secret")?;
            info.arn
        }
        Some(info) => info.arn,
        None => {
            let description = format!(
                "Master credentials of {} (managed by tenantd)",
                owner.describe()
            );
            let mut tags = owner.tags(t, tier);
            tags.push((cloud::TAG_JOB.into(), cx.job.id.to_string()));
            let created = t
                .cloud
                .create_secret(
                    &name,
                    &fresh_credentials(t, &instance).to_json(),
                    &tags,
                    &description,
                )
                .await;
            match created {
                Ok(arn) => arn,
                // Ours from an attempt that died after the call: the next visit reuses it.
                Err(CloudError::AlreadyExists(_)) => {
                    return Err(StepError::retry(
                        "already_exists",
                        "the secret appeared meanwhile; looking again",
                    ));
                }
                Err(e) => return Err(e).during("creating the tenant secret"),
            }
        }
    };
    cx.data.secret_arn = Some(arn);
    Ok(Transition::Next(ProvisionStep::Instance))
}

/// New master credentials; the host is filled in once the instance has one.
fn fresh_credentials(t: &AwsContext, instance: &str) -> DbCredentials {
    DbCredentials {
        engine: "postgres".into(),
        host: String::new(),
        port: 5432,
        username: t.settings.master_username.clone(),
        password: tenant_db::generate_password(),
        dbname: t.settings.db_name.clone(),
        db_instance_identifier: instance.to_string(),
    }
}

/// Step 2: CreateDBInstance, or adopt the instance of that name if its tags say it is ours.
/// When the account's quotas have no room (or older requests wait for it), wait durably,
/// saying so, instead of failing.
pub async fn instance(t: &AwsContext, owner: &Owner, cx: &mut Cx<'_>) -> StepResult {
    let (tier_name, tier) = t.tier(&cx.args.tier)?;
    if let Some(reason) = no_room(t, cx, tier.storage_gib).await? {
        return Ok(wait_for_quota(t, cx, reason));
    }
    let credentials = read_credentials(t, owner, cx).await?;
    let id = owner.instance.clone();
    let s = &t.settings;
    let mut tags = owner.tags(t, tier_name);
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
        max_allocated_storage_gib: tier.max_allocated_storage_gib,
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
        Ok(_) => {}
        Err(CloudError::AlreadyExists(_)) => {
            let info = t
                .cloud
                .describe_db_instance(&id)
                .await
                .during("looking at the existing instance")?
                .ok_or_else(|| {
                    StepError::retry(
                        "not_found",
                        format!("instance {id} existed and is gone now"),
                    )
                })?;
            if let Err(why) = owner.check(&info.tags) {
                return Err(owner.foreign(&format!("instance {id}"), &why));
            }
            let ours = info
                .tags
                .iter()
                .any(|(k, v)| k == cloud::TAG_JOB && *v == cx.job.id.to_string());
            tracing::info!(instance = %id, created_by_this_job = ours, "instance exists and is ours: adopting it");
            cx.data.adopted = Some(!ours);
        }
        Err(CloudError::Quota(f)) => {
            t.quotas.exhausted();
            let reason = format!("waiting for quota: {}", f.message);
            return Ok(wait_for_quota(t, cx, reason));
        }
        Err(e) => return Err(e).during("creating the instance"),
    }
    cx.data.quota_wait = None;
    cx.data.instance_id = Some(id);
    Ok(Transition::Next(ProvisionStep::WaitAvailable))
}

/// Why a new instance cannot be created now, if it cannot: a quota is full, or requests
/// older than this one wait for the little room there is (they go first, in request order).
/// A failure to read the quotas only skips this look: the create itself then says.
async fn no_room(
    t: &AwsContext,
    cx: &Cx<'_>,
    storage_gib: i32,
) -> Result<Option<String>, StepError> {
    let room = match t.quotas.room(storage_gib).await {
        Ok(room) => room,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the account's RDS quotas; creating anyway");
            return Ok(None);
        }
    };
    if let Some(full) = room.full {
        return Ok(Some(format!("waiting for quota: {full}")));
    }
    let ahead = queue::older_marked(cx.db, KIND, "quota_wait", cx.job).await?;
    Ok((ahead >= room.instances).then(|| {
        format!(
            "waiting for quota: {ahead} earlier requests wait for {} free DB instances",
            room.instances
        )
    }))
}

fn wait_for_quota(t: &AwsContext, cx: &mut Cx<'_>, reason: String) -> Transition<ProvisionStep> {
    let since = cx
        .data
        .quota_wait
        .as_ref()
        .map_or_else(Utc::now, |w| w.since);
    cx.data.quota_wait = Some(QuotaWait {
        since,
        reason: reason.clone(),
    });
    Transition::WaitFor {
        after: t.settings.quota_refresh.min(t.settings.wait_max),
        class: "quota_exceeded",
        reason,
    }
}

/// Step 3: one look at the instance per visit; a durable, growing wait until it is available.
pub async fn wait_available(t: &AwsContext, owner: &Owner, cx: &mut Cx<'_>) -> StepResult {
    let id = owner.instance.clone();
    let now = Utc::now();
    let d = &mut cx.data;
    let step = ProvisionStep::WaitAvailable.name();
    let look = t
        .wait_look(
            &id,
            step,
            &mut d.wait_started_at,
            &mut d.poller_seen,
            "available",
        )
        .await?;
    let info = match look {
        Look::Seen(Some(info)) => info,
        Look::Seen(None) => {
            return Err(StepError::fail(
                "instance_gone",
                format!("instance {id} disappeared while being created"),
            ));
        }
        Look::Later => return Ok(keep_waiting(t, cx)),
    };
    match info.status.as_str() {
        "available" => {
            // An adopted instance has a password we never saw: give it the secret's.
            if cx.data.adopted == Some(true) && cx.data.password_reset.is_none() {
                if let Err(why) = owner.check(&info.tags) {
                    return Err(owner.foreign(&format!("instance {id}"), &why));
                }
                let credentials = read_credentials(t, owner, cx).await?;
                let change = InstanceChange {
                    master_password: Some(credentials.password),
                    ..Default::default()
                };
                t.cloud
                    .modify_db_instance(&id, &change)
                    .await
                    .during("setting the adopted instance's password")?;
                cx.data.password_reset = Some(now);
                cx.data.wait_polls = 0;
                return Ok(keep_waiting(t, cx));
            }
            let Some((host, port)) = info.endpoint.clone() else {
                return Ok(keep_waiting(t, cx));
            };
            cx.data.endpoint_host = Some(host);
            cx.data.endpoint_port = Some(port);
            cx.data.available_at = Some(now);
            cx.data.engine_version = info.engine_version.clone();
            cx.data.storage_gib = info.allocated_storage_gib;
            cx.data.backup_retention_seen =
                backups_as_asked(t, tier_of(t, cx)?, &info).then_some(info.backup_retention_days);
            Ok(Transition::Next(ProvisionStep::SecretEndpoint))
        }
        status if UNRECOVERABLE.contains(&status) || status == "deleting" => Err(StepError::fail(
            "instance_failed",
            format!("instance {id} is {status}"),
        )),
        _ => Ok(keep_waiting(t, cx)),
    }
}

fn tier_of<'a>(t: &'a AwsContext, cx: &Cx<'_>) -> Result<&'a Tier, StepError> {
    Ok(t.tier(&cx.args.tier)?.1)
}

/// Whether the instance already has the backup settings the tier asks for (CreateDBInstance
/// sets them), so the backups step need not call ModifyDBInstance.
pub(super) fn backups_as_asked(t: &AwsContext, tier: &Tier, info: &InstanceInfo) -> bool {
    info.backup_retention_days == tier.backup_retention_days
        && info.backup_window.as_deref() == Some(t.settings.backup_window.as_str())
        && info.maintenance_window.as_deref() == Some(t.settings.maintenance_window.as_str())
}

fn keep_waiting(t: &AwsContext, cx: &mut Cx<'_>) -> Transition<ProvisionStep> {
    Transition::Wait(t.watch.next_pause(&mut cx.data.wait_polls))
}
