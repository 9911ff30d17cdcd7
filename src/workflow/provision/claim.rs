//! A tenant taking over a warm-pool standby: its instance tagged as the tenant's, its
//! credentials moved into the tenant's secret. The instance keeps its identifier (the tenant's
//! record names it since the claim). From there the tenant goes on as a cold one does
//! (migrate, backups, alarms, protect, mark_ready), and a failure rolls it back the same way:
//! the instance is deleted, never returned to the pool half-claimed.

use super::create::{Cx, StepResult, backups_as_asked};
use super::state::ProvisionStep;
use crate::cloud::secrets::Recovery;
use crate::cloud::{self, CloudError};
use crate::pool;
use crate::tenant_db::DbCredentials;
use crate::workflow::error::{Context, StepError};
use crate::workflow::step::Transition;
use crate::workflow::tenancy::{Owner, Tenancy};

fn standby_of(cx: &Cx<'_>) -> Result<String, StepError> {
    cx.args
        .standby
        .clone()
        .ok_or_else(|| StepError::fail("bad_args", "a claim job names no standby"))
}

/// Step claim: the standby's instance gets the tenant's tags (TenantId and Tier added first,
/// the standby's tag removed after, so that at every instant the instance is tagged as
/// someone's); what the standby's creation found is recorded as if this job had found it.
pub async fn retag(t: &Tenancy, owner: &Owner, cx: &mut Cx<'_>) -> StepResult {
    let tenant = cx.tenant()?;
    let standby = standby_of(cx)?;
    let (tier_name, tier) = t.tier(&cx.args.tier)?;
    let row = pool::get(cx.db, &standby)
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
    if !owner.owns(&info.tags) {
        return Err(StepError::fail(
            "foreign_resource",
            format!("instance {id} is tagged as neither standby {standby} nor tenant {tenant}"),
        ));
    }
    let Some(arn) = info.arn.clone() else {
        return Err(StepError::retry(
            "bad_data",
            format!("instance {id} has no ARN yet"),
        ));
    };
    t.cloud
        .add_tags_to_resource(&arn, &t.tags(tenant, tier_name))
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

/// Step claim_secret: the tenant's secret gets the standby's credentials (created, or restored
/// and overwritten when an earlier tenant of that name left it scheduled for deletion), then
/// the standby's secret is deleted at once. Run again after a crash, it finds the standby's
/// secret gone and the tenant's in place.
pub async fn move_secret(t: &Tenancy, owner: &Owner, cx: &mut Cx<'_>) -> StepResult {
    let tenant = cx.tenant()?;
    let standby = standby_of(cx)?;
    let theirs = Owner::standby(t, &standby);
    let name = owner.secret.clone();
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
        && !cloud::tagged_for(&info.tags, tenant)
    {
        return Err(StepError::fail(
            "foreign_resource",
            format!("secret {name} exists and is not tagged as this tenant's; left untouched"),
        ));
    }
    let arn = match (&standby_secret, found) {
        // Moved already: the standby's is gone.
        (None, Some(info)) if !info.pending_deletion => info.arn,
        (None, _) => {
            return Err(StepError::fail(
                "secret_gone",
                format!(
                    "neither the standby's secret {} nor the tenant's {name} exists",
                    theirs.secret
                ),
            ));
        }
        (Some(source), found) => {
            let value = t
                .cloud
                .get_secret_value(&source.arn)
                .await
                .during("reading the standby's secret")?;
            let mut credentials = DbCredentials::from_json(&value)?;
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
                    let description =
                        format!("Master credentials of tenant {tenant} (managed by tenantd)");
                    match t
                        .cloud
                        .create_secret(&name, &json, &t.tags(tenant, &cx.args.tier), &description)
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
            t.cloud
                .delete_secret(&source.arn, Recovery::None)
                .await
                .during("deleting the standby's secret")?;
            arn
        }
    };
    cx.data.secret_arn = Some(arn);
    Ok(Transition::Next(ProvisionStep::Migrate))
}
