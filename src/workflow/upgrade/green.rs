//! The green copy: CreateBlueGreenDeployment (or the deployment this job made before a crash,
//! found by its name), the durable wait until it is available, and the check of green through
//! its own endpoint against blue.

use super::super::aws::{AwsContext, Owner};
use super::super::error::{Context, StepError};
use super::super::step::Transition;
use super::prechecks::owner;
use super::{Cx, StepResult, UpgradeStep, deployment_name, inventory, pause, within_deadline};
use crate::cloud::bluegreen::{Deployment, DeploymentSpec, instance_of_arn};
use crate::cloud::{self, CloudError, ownership};

/// Looks at green this many times (growing pauses) before a difference from blue fails it.
const VERIFY_TRIES: u32 = 5;

/// Whether the deployment is this job's: tagged as the tenant's in this environment, and by
/// this job. Every destructive call on it (or its green instance) asks first.
pub(super) fn check_deployment(
    owner: &Owner,
    cx: &Cx<'_>,
    d: &Deployment,
) -> Result<(), StepError> {
    let what = format!("Blue/Green deployment {} ({})", d.identifier, d.name);
    owner
        .check(&d.tags)
        .map_err(|why| owner.foreign(&what, &why))?;
    if !ownership::created_by(&d.tags, &[cx.job.id.to_string()]) {
        let by = ownership::tag(&d.tags, cloud::TAG_JOB).unwrap_or("no job");
        return Err(StepError::fail(
            "foreign_resource",
            format!(
                "{what} was not created by this job (its ProvisioningJob tag is {by:?}); left untouched"
            ),
        ));
    }
    Ok(())
}

/// The deployment this job made, by the identifier it recorded or else by its name.
pub(super) async fn find(t: &AwsContext, cx: &Cx<'_>) -> Result<Option<Deployment>, StepError> {
    if let Some(id) = &cx.data.deployment {
        return t
            .cloud
            .describe_blue_green_deployment(id)
            .await
            .during("looking at the Blue/Green deployment");
    }
    let named = t
        .cloud
        .describe_blue_green_deployments_named(&deployment_name(cx.job.id))
        .await
        .during("looking for the Blue/Green deployment")?;
    Ok(named.into_iter().next())
}

fn remember(cx: &mut Cx<'_>, d: &Deployment) {
    cx.data.deployment = Some(d.identifier.clone());
    if let Some(target) = &d.target {
        cx.data.green_instance = Some(instance_of_arn(target).to_string());
    }
}

pub(super) async fn create_deployment(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let owner = owner(t, cx).await?;
    if let Some(d) = find(t, cx).await? {
        check_deployment(&owner, cx, &d)?;
        remember(cx, &d);
        return Ok(Transition::Noted {
            next: UpgradeStep::WaitGreen,
            note: format!(
                "found Blue/Green deployment {} made by this job",
                d.identifier
            ),
        });
    }
    let id = owner.instance.clone();
    let info = t.owned_instance(&owner, &id).await?;
    if info.status != "available" {
        return Ok(Transition::WaitFor {
            after: pause(t, &mut cx.data.wait_polls),
            class: "instance_busy",
            reason: format!("instance {id} is {}", info.status),
        });
    }
    let arn = info
        .arn
        .clone()
        .ok_or_else(|| StepError::retry("no_arn", format!("RDS describes no ARN of {id}")))?;
    let tier = ownership::tag(&info.tags, cloud::TAG_TIER).unwrap_or_default();
    let mut tags = t.tags(cx.tenant()?, tier);
    tags.push((cloud::TAG_JOB.into(), cx.job.id.to_string()));
    let spec = DeploymentSpec {
        name: deployment_name(cx.job.id),
        source_arn: arn,
        target_engine_version: cx.data.to_version.clone().unwrap_or_default(),
        target_parameter_group: cx.data.green_parameter_group.clone(),
        tags,
    };
    let d = match t.cloud.create_blue_green_deployment(&spec).await {
        Ok(d) => d,
        Err(CloudError::AlreadyExists(_)) => {
            return Err(StepError::retry(
                "already_exists",
                "the Blue/Green deployment exists already; looking again",
            ));
        }
        Err(e) => return Err(e).during("creating the Blue/Green deployment"),
    };
    remember(cx, &d);
    cx.data.wait_polls = 0;
    Ok(Transition::Noted {
        next: UpgradeStep::WaitGreen,
        note: format!(
            "Blue/Green deployment {} creates green at PostgreSQL {}",
            d.identifier, spec.target_engine_version
        ),
    })
}

pub(super) async fn wait_green(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    within_deadline(t, &mut cx.data.wait_started_at, "green was not available")?;
    let d = find(t, cx).await?.ok_or_else(|| {
        StepError::fail("deployment_gone", "the Blue/Green deployment disappeared")
    })?;
    remember(cx, &d);
    let details = d.status_details.clone().unwrap_or_default();
    match d.status.as_str() {
        "PROVISIONING" => Ok(Transition::Wait(pause(t, &mut cx.data.wait_polls))),
        "AVAILABLE" if details.to_lowercase().contains("degraded") => Err(StepError::fail(
            "replication_degraded",
            format!("Blue/Green deployment {}: {details}", d.identifier),
        )),
        "AVAILABLE" => {
            let green = cx.data.green_instance.clone().unwrap_or_default();
            let info = t
                .cloud
                .describe_db_instance(&green)
                .await
                .during("looking at green")?;
            match info {
                Some(i) if i.status == "available" => {
                    cx.data.wait_started_at = None;
                    cx.data.wait_polls = 0;
                    Ok(Transition::Next(UpgradeStep::VerifyGreen))
                }
                Some(_) => Ok(Transition::Wait(pause(t, &mut cx.data.wait_polls))),
                None => Err(StepError::fail(
                    "instance_gone",
                    format!("green instance {green} does not exist"),
                )),
            }
        }
        status => Err(StepError::fail(
            "deployment_failed",
            format!(
                "Blue/Green deployment {} is {status}: {details}",
                d.identifier
            ),
        )),
    }
}

/// Green, through its own endpoint, with the tenant's secret: the same schema version and the
/// same row count in every table as blue (read before and after green; on later looks, between
/// blue at the first look and blue after green, since green lags a tenant that keeps writing).
pub(super) async fn verify_green(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let tenant = cx.tenant()?.to_string();
    let owner = owner(t, cx).await?;
    let blue = t.owned_instance(&owner, &owner.instance.clone()).await?;
    let green_id = cx.data.green_instance.clone().unwrap_or_default();
    if green_id.is_empty() || green_id == owner.instance {
        return Err(StepError::fail("bad_data", "no green instance recorded"));
    }
    let green = t.owned_instance(&owner, &green_id).await?;
    let endpoint = |i: &cloud::rds::InstanceInfo| {
        i.endpoint.clone().ok_or_else(|| {
            StepError::retry("no_endpoint", format!("{} has no endpoint", i.identifier))
        })
    };
    let on_blue = inventory::credentials(t, &tenant, &endpoint(&blue)?).await?;
    let on_green = inventory::credentials(t, &tenant, &endpoint(&green)?).await?;
    let before = inventory::inventory(t, &on_blue).await?;
    let seen = inventory::inventory(t, &on_green)
        .await
        .map_err(|e| e.during("logging in to green with the tenant's secret"))?;
    let after = inventory::inventory(t, &on_blue).await?;
    let floor = cx.data.blue_first_look.get_or_insert(before).clone();
    if let Some(difference) = inventory::difference(&floor, &seen, &after) {
        cx.data.verify_tries += 1;
        if cx.data.verify_tries >= VERIFY_TRIES {
            return Err(StepError::fail(
                "green_differs",
                format!(
                    "green {green_id} differs from blue after {} looks: {difference}",
                    cx.data.verify_tries
                ),
            ));
        }
        return Ok(Transition::WaitFor {
            after: pause(t, &mut cx.data.wait_polls),
            class: "green_behind",
            reason: difference,
        });
    }
    let rows: i64 = seen.rows.values().sum();
    cx.data.verified = Some(format!(
        "green {green_id} logged in with the tenant's secret: schema version {}, {} tables, {rows} rows, as on blue",
        seen.schema_version,
        seen.rows.len()
    ));
    cx.data.wait_polls = 0;
    Ok(Transition::Noted {
        next: UpgradeStep::AwaitWindow,
        note: cx.data.verified.clone().unwrap_or_default(),
    })
}
