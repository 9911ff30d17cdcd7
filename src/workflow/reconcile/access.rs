//! Reconcile's steps after the instance: the alarms with the tier's thresholds, the tier tag,
//! the tenant's secret and, when the secret no longer logs in, a new password.

use chrono::Utc;

use crate::cloud::alarms::instance_alarms;
use crate::cloud::rds::InstanceChange;
use crate::cloud::{self, CloudError, ownership};
use crate::tenant_db::{self, DbCredentials};
use crate::workflow::aws::AwsContext;
use crate::workflow::error::{Context, StepError};
use crate::workflow::step::Transition;

use super::{Cx, Reason, ReconcileStep, StepResult, owner, target};

/// The alarms with the tier's thresholds (PutMetricAlarm replaces by name), once the instance
/// they watch passed the ownership rule.
pub(super) async fn alarms(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
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
pub(super) async fn tags(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
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
pub(super) async fn secret(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
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
pub(super) async fn reset_password(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
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
