//! A tenant taking over a warm-pool standby: its instance tagged as the tenant's, the tenant's
//! secret written with a new master password that the instance then gets (a standby's password
//! may be days old and sat under the pool's prefix). The instance keeps its identifier (the tenant's
//! record names it since the claim). From there the tenant goes on as a cold one does
//! (migrate, backups, alarms, protect, mark_ready), and a failure rolls it back the same way:
//! the instance is deleted, never returned to the pool half-claimed.

use secrecy::ExposeSecret;

use super::create::{Cx, StepResult, backups_as_asked};
use super::state::ProvisionStep;
use crate::cloud::secrets::Recovery;
use crate::cloud::{self, CloudError};
use crate::store::standbys::{self, StandbyId};
use crate::tenant_db::{self, DbCredentials};
use crate::workflow::aws::{AwsContext, Owner};
use crate::workflow::error::{Context, StepError};
use crate::workflow::step::Transition;

fn standby_of(cx: &Cx<'_>) -> Result<StandbyId, StepError> {
    cx.args
        .standby
        .clone()
        .ok_or_else(|| StepError::fail("bad_args", "a claim job names no standby"))
}

/// Step claim: the standby's instance gets the tenant's tags (TenantId and Tier added first,
/// the standby's tag removed after, so that at every instant the instance is tagged as
/// someone's); what the standby's creation found is recorded as if this job had found it.
pub async fn retag(t: &AwsContext, owner: &Owner, cx: &mut Cx<'_>) -> StepResult {
    let tenant = cx.tenant()?;
    let standby = standby_of(cx)?;
    let (tier_name, tier) = t.tier(&cx.args.tier)?;
    let row = standbys::get(cx.db, &standby)
        .await
        .map_err(|e| StepError::retry("control_db", format!("reading the standby: {e}")))?
        .ok_or_else(|| StepError::fail("bad_data", format!("no standby {standby} is recorded")))?;
    let id = &owner.instance;
    let info = t
        .cloud
        .describe_db_instance(id)
        .await
        .during("looking at the standby's instance")?
        .ok_or_else(|| {
            StepError::fail(
                "instance_gone",
                format!("the standby's instance {id} does not exist"),
            )
        })?;
    if let Err(why) = owner.check(&info.tags) {
        return Err(owner.foreign(&format!("instance {id}"), &why));
    }
    let Some(arn) = info.arn.clone() else {
        return Err(StepError::retry(
            "bad_data",
            format!("instance {id} has no ARN yet"),
        ));
    };
    // The instance carries ManagedBy and Environment since its creation: only the tenant's id
    // and tier go on (tenantd never adds ownership tags to an existing resource).
    let tags = vec![
        (cloud::TAG_TENANT.to_string(), tenant.to_string()),
        (cloud::TAG_TIER.to_string(), tier_name.to_string()),
    ];
    t.cloud
        .add_tags_to_resource(&arn, &tags)
        .await
        .during("tagging the instance as the tenant's")?;
    t.cloud
        .remove_tags_from_resource(&arn, &[cloud::TAG_STANDBY])
        .await
        .during("removing the standby tag")?;
    let d = &mut cx.data;
    d.instance_id = Some(id.clone());
    let (host, port) = match (&info.endpoint, &row.endpoint_host, row.endpoint_port) {
        (Some((host, port)), _, _) => (host.clone(), *port),
        (None, Some(host), Some(port)) => (host.clone(), port),
        _ => {
            return Err(StepError::fail(
                "bad_data",
                format!("no endpoint is known for instance {id}"),
            ));
        }
    };
    d.endpoint_host = Some(host);
    d.endpoint_port = Some(port);
    d.available_at = row.available_at;
    d.engine_version = info.engine_version.clone().or(row.engine_version);
    d.storage_gib = info.allocated_storage_gib.or(row.storage_gib);
    d.backup_retention_seen =
        backups_as_asked(t, tier, &info).then_some(info.backup_retention_days);
    Ok(Transition::Next(ProvisionStep::ClaimSecret))
}

/// Step claim_secret: the tenant's secret gets the standby's instance with a new master
/// password (created, or restored and overwritten when an earlier tenant of that name left it
/// scheduled for deletion), the instance is given that password through the database, then the
/// standby's secret, which held the old one, is deleted at once. The secret is written first,
/// so it never lacks the password the instance has; run again after a crash, the step finds
/// the new password already in the tenant's secret (and takes it), or the standby's secret
/// gone and the tenant's in place. The login goes to the endpoint RDS reported for the
/// instance, never to the host a secret names.
pub async fn move_secret(t: &AwsContext, owner: &Owner, cx: &mut Cx<'_>) -> StepResult {
    let tenant = cx.tenant()?;
    let standby = standby_of(cx)?;
    let theirs = Owner::standby(t, &standby);
    let name = owner.secret.clone();
    let (host, port) = reported_endpoint(cx)?;
    let standby_secret = t
        .cloud
        .describe_secret(&theirs.secret)
        .await
        .during("looking for the standby's secret")?
        .filter(|s| theirs.owns(&s.tags) && !s.pending_deletion);
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
    let Some(source) = standby_secret else {
        // Moved already: the standby's is gone.
        return match found {
            Some(info) if !info.pending_deletion => {
                cx.data.secret_arn = Some(info.arn);
                Ok(Transition::Next(ProvisionStep::Migrate))
            }
            _ => Err(StepError::fail(
                "secret_gone",
                format!(
                    "neither the standby's secret {} nor the tenant's {name} exists",
                    theirs.secret
                ),
            )),
        };
    };
    let value = t
        .cloud
        .get_secret_value(&source.arn)
        .await
        .during("reading the standby's secret")?;
    let old = DbCredentials::from_json(&value)?.at(&host, port);
    // A password an earlier visit already wrote into the tenant's secret is kept: the
    // instance may have it by now.
    let mut earlier = None;
    if let Some(info) = &found
        && !info.pending_deletion
    {
        let value = t
            .cloud
            .get_secret_value(&info.arn)
            .await
            .during("reading the tenant secret")?;
        if let Ok(written) = DbCredentials::from_json(&value)
            && !same_password(&written, &old)
        {
            earlier = Some(written.password);
        }
    }
    let mut credentials = old.clone();
    credentials.password = earlier.unwrap_or_else(tenant_db::generate_password);
    credentials.db_instance_identifier = owner.instance.clone();
    let json = credentials.to_json();
    let arn = match found {
        Some(info) => {
            if info.pending_deletion {
                t.cloud
                    .restore_secret(&info.arn)
                    .await
                    .during("restoring the tenant secret")?;
            }
            t.cloud
                .put_secret_value(&info.arn, &json)
                .await
                .during("writing the tenant secret")?;
            info.arn
        }
        None => {
            let description = format!("Master credentials of tenant {tenant} (managed by tenantd)");
            let mut tags = t.tags(tenant, &cx.args.tier);
            tags.push((cloud::TAG_JOB.into(), cx.job.id.to_string()));
            match t
                .cloud
                .create_secret(&name, &json, &tags, &description)
                .await
            {
                Ok(arn) => arn,
                Err(CloudError::AlreadyExists(_)) => {
                    return Err(StepError::retry(
                        "already_exists",
                        "the tenant secret appeared meanwhile; looking again",
                    ));
                }
                Err(e) => return Err(e).during("creating the tenant secret"),
            }
        }
    };
    rotate_password(t, &old, &credentials).await?;
    t.cloud
        .delete_secret(&source.arn, Recovery::None)
        .await
        .during("deleting the standby's secret")?;
    cx.data.secret_arn = Some(arn);
    cx.data.password_reset = Some(chrono::Utc::now());
    Ok(Transition::Next(ProvisionStep::Migrate))
}

fn same_password(a: &DbCredentials, b: &DbCredentials) -> bool {
    a.password.expose_secret() == b.password.expose_secret()
}

/// The endpoint RDS reported for the claimed instance (recorded by the claim step).
fn reported_endpoint(cx: &Cx<'_>) -> Result<(String, u16), StepError> {
    let d = &cx.data;
    match (&d.endpoint_host, d.endpoint_port) {
        (Some(host), Some(port)) => Ok((
            host.clone(),
            u16::try_from(port).map_err(|_| {
                StepError::fail("bad_data", format!("endpoint port {port} is not a port"))
            })?,
        )),
        _ => Err(StepError::fail(
            "bad_data",
            "no endpoint was recorded for the claimed instance",
        )),
    }
}

/// The instance's master user gets `new`'s password, logged in with `old`'s; when the old one
/// no longer opens the database, an earlier visit changed it: the new one must.
async fn rotate_password(
    t: &AwsContext,
    old: &DbCredentials,
    new: &DbCredentials,
) -> Result<(), StepError> {
    let s = &t.settings;
    let (tls, timeout) = (&s.tenant_db_tls, s.tenant_db_connect_timeout);
    match tenant_db::set_own_password(old, tls, timeout, &new.password).await {
        Ok(()) => Ok(()),
        Err(e) if e.class() == "tenant_db_auth" => {
            tenant_db::connect(new, tls, timeout)
                .await
                .map_err(|e| StepError::from(e).during("logging in with the new password"))?;
            Ok(())
        }
        Err(e) => Err(StepError::from(e).during("giving the instance a new master password")),
    }
}
