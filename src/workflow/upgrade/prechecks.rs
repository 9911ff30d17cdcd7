//! The checks before anything is created: the target is one of the instance's
//! `ValidUpgradeTarget`s, the tenant database's extensions exist in it, and parameter groups
//! with logical replication on exist (created by tenantd, tagged as this deployment's) for the
//! old family (on the instance: RDS replicates to a new major logically) and the new one (for
//! green).

use std::cmp::Ordering;

use chrono::Utc;

use super::super::aws::{AwsContext, Owner};
use super::super::engine_version::{compare, major};
use super::super::error::{Context, StepError};
use super::super::instance_watch::Look;
use super::super::step::{StepNames, Transition};
use super::{Cx, StepResult, UpgradeStep, inventory, pause};
use crate::cloud::rds::{InstanceChange, UNRECOVERABLE};
use crate::cloud::upgrades::LOGICAL_REPLICATION;
use crate::cloud::{self, CloudError, ownership};

/// The job's tenant on its instance (resolved once per job, kept in the data).
pub(super) async fn owner(t: &AwsContext, cx: &mut Cx<'_>) -> Result<Owner, StepError> {
    let id = t.job_instance(cx, cx.data.instance_id.as_deref()).await?;
    cx.data.instance_id = Some(id.clone());
    Owner::tenant_on(t, cx, None, id)
}

pub(super) async fn prechecks(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let tenant = cx.tenant()?.to_string();
    let owner = owner(t, cx).await?;
    let id = owner.instance.clone();
    let info = t.owned_instance(&owner, &id).await?;
    if info.status != "available" {
        return Ok(Transition::WaitFor {
            after: pause(t, &mut cx.data.wait_polls),
            class: "instance_busy",
            reason: format!("instance {id} is {}", info.status),
        });
    }
    cx.data.wait_polls = 0;
    cx.data.instance_arn = info.arn.clone();
    let current = info.engine_version.clone().ok_or_else(|| {
        StepError::fail(
            "engine_version",
            format!("RDS describes no version of {id}"),
        )
    })?;
    let wanted = cx.args.target_major.clone();
    if compare(&major(&current), &wanted) != Ordering::Less {
        return Err(StepError::fail(
            "not_an_upgrade",
            format!("instance {id} runs PostgreSQL {current}: {wanted} is not a newer major"),
        ));
    }
    let targets = t
        .cloud
        .upgrade_targets(&current)
        .await
        .during("reading the upgrade targets")?
        .ok_or_else(|| {
            StepError::fail(
                "engine_version",
                format!("RDS does not list version {current}"),
            )
        })?;
    let mut candidates: Vec<String> = targets
        .iter()
        .filter(|u| u.major && major(&u.version) == wanted)
        .map(|u| u.version.clone())
        .collect();
    if candidates.is_empty() {
        let listed: Vec<&str> = targets.iter().map(|u| u.version.as_str()).collect();
        return Err(StepError::fail(
            "not_a_valid_upgrade_target",
            format!(
                "PostgreSQL {wanted} is not a valid upgrade target of {current} (RDS lists: {})",
                if listed.is_empty() {
                    "none".to_string()
                } else {
                    listed.join(", ")
                }
            ),
        ));
    }
    // The major's default version when it is a target, else its newest target.
    let defaults = t
        .cloud
        .describe_db_engine_versions(&wanted)
        .await
        .during("reading the target's versions")?;
    candidates.sort_by(|a, b| compare(a, b));
    let to = defaults
        .iter()
        .find(|v| v.default && candidates.contains(&v.version))
        .map(|v| v.version.clone())
        .or_else(|| candidates.last().cloned())
        .unwrap_or_default();
    let family = |v: String| async move {
        t.cloud
            .parameter_group_family(&v)
            .await
            .during("reading the parameter group family")?
            .ok_or_else(|| StepError::fail("engine_version", format!("no family for {v}")))
    };
    let from_family = family(current.clone()).await?;
    let to_family = family(to.clone()).await?;

    let endpoint = info
        .endpoint
        .clone()
        .ok_or_else(|| StepError::retry("no_endpoint", format!("{id} has no endpoint yet")))?;
    let credentials = inventory::credentials(t, &tenant, &endpoint).await?;
    let installed = inventory::extensions(t, &credentials).await?;
    let supported = t
        .cloud
        .supported_extensions(&to_family)
        .await
        .during("reading the extensions the target supports")?
        .ok_or_else(|| {
            StepError::fail(
                "extensions_unknown",
                format!("RDS does not say which extensions {to_family} supports"),
            )
        })?;
    let missing: Vec<&str> = installed
        .iter()
        .filter(|e| !supported.contains(e))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(StepError::fail(
            "extension_unsupported",
            format!(
                "the tenant database has extensions PostgreSQL {to} on RDS does not support: {}",
                missing.join(", ")
            ),
        ));
    }
    let d = &mut cx.data;
    d.from_version = Some(current);
    d.to_version = Some(to);
    d.from_family = Some(from_family);
    d.to_family = Some(to_family);
    d.extensions = installed;
    Ok(Transition::Next(UpgradeStep::ParameterGroups))
}

/// The name of this deployment's parameter group of `family`: the resource prefix, the
/// environment and the family, spelled as RDS allows (letters, digits, single hyphens).
pub(super) fn group_name(t: &AwsContext, family: &str) -> String {
    let raw = format!(
        "{}-{}-{family}-logical",
        t.settings.instance_prefix, t.settings.environment
    )
    .to_lowercase();
    let mut name = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (name.is_empty() || name.ends_with('-'))) {
            name.push(c);
        }
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        name.insert_str(0, "tenantd-");
    }
    name.truncate(255);
    name.trim_end_matches('-').to_string()
}

/// This deployment's parameter group of `family` with logical replication on: created when
/// missing, refused (left untouched) when the name is taken by a group not tagged as ours.
async fn ensure_group(t: &AwsContext, family: &str) -> Result<String, StepError> {
    let name = group_name(t, family);
    let env = &t.settings.environment;
    match t
        .cloud
        .describe_db_parameter_group(&name)
        .await
        .during("looking for the parameter group")?
    {
        Some(group) => {
            let tags = match &group.arn {
                Some(arn) => t
                    .cloud
                    .list_tags_for_resource(arn)
                    .await
                    .during("reading the parameter group's tags")?,
                None => Vec::new(),
            };
            if let Err(why) = ownership::check_shared(&tags, env) {
                return Err(StepError::fail(
                    "foreign_resource",
                    format!(
                        "parameter group {name} is not tagged as this deployment's in \
                         environment {env:?} ({why}); left untouched"
                    ),
                ));
            }
            if group.family != family {
                return Err(StepError::fail(
                    "parameter_group",
                    format!(
                        "parameter group {name} is of family {}, not {family}",
                        group.family
                    ),
                ));
            }
        }
        None => {
            let tags = vec![
                (
                    cloud::TAG_MANAGED_BY.to_string(),
                    cloud::MANAGER.to_string(),
                ),
                (cloud::TAG_ENVIRONMENT.to_string(), env.clone()),
            ];
            let description = format!("{family} with logical replication (managed by tenantd)");
            match t
                .cloud
                .create_db_parameter_group(&name, family, &description, &tags)
                .await
            {
                Ok(_) => {}
                Err(CloudError::AlreadyExists(_)) => {
                    return Err(StepError::retry(
                        "already_exists",
                        format!("parameter group {name} appeared meanwhile; looking again"),
                    ));
                }
                Err(e) => return Err(e).during("creating the parameter group"),
            }
        }
    }
    let value = t
        .cloud
        .db_parameter(&name, LOGICAL_REPLICATION)
        .await
        .during("reading the parameter group")?;
    if value.as_deref() != Some("1") {
        t.cloud
            .modify_db_parameter_group(&name, &[(LOGICAL_REPLICATION.into(), "1".into())])
            .await
            .during("turning logical replication on")?;
    }
    Ok(name)
}

pub(super) async fn parameter_groups(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let (Some(from), Some(to)) = (cx.data.from_family.clone(), cx.data.to_family.clone()) else {
        return Err(StepError::fail(
            "bad_data",
            "the prechecks recorded no families",
        ));
    };
    cx.data.green_parameter_group = Some(ensure_group(t, &to).await?);
    let owner = owner(t, cx).await?;
    let id = owner.instance.clone();
    let info = t.owned_instance(&owner, &id).await?;
    let ours = group_name(t, &from);
    let blue_group = match info.parameter_group.as_deref() {
        Some(g) if g == ours => ours,
        Some(g) if !g.starts_with("default.") => {
            // A group someone else made: used as it is when it has logical replication on.
            let value = t
                .cloud
                .db_parameter(g, LOGICAL_REPLICATION)
                .await
                .during("reading the instance's parameter group")?;
            if value.as_deref() != Some("1") {
                return Err(StepError::fail(
                    "blue_parameter_group",
                    format!(
                        "instance {id} uses parameter group {g}, which tenantd did not create \
                         and which does not set {LOGICAL_REPLICATION}=1 (a Blue/Green deployment \
                         to a new major needs it); left untouched"
                    ),
                ));
            }
            g.to_string()
        }
        _ => {
            let ours = ensure_group(t, &from).await?;
            let change = InstanceChange {
                parameter_group: Some(ours.clone()),
                ..Default::default()
            };
            t.cloud
                .modify_db_instance(&id, &change)
                .await
                .during("giving the instance the parameter group")?;
            ours
        }
    };
    cx.data.blue_parameter_group = Some(blue_group);
    Ok(Transition::Next(UpgradeStep::WaitBlue))
}

/// Until the instance is available with its parameter group applied: a static parameter
/// (logical replication) waits for a reboot, which this step asks for once.
pub(super) async fn wait_blue(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let owner = owner(t, cx).await?;
    let id = owner.instance.clone();
    let d = &mut cx.data;
    let look = t
        .wait_look(
            &id,
            UpgradeStep::WaitBlue.name(),
            &mut d.wait_started_at,
            &mut d.poller_seen,
            "running with its parameter group",
        )
        .await?;
    let later =
        |d: &mut super::UpgradeData| Ok(Transition::Wait(t.watch.next_pause(&mut d.wait_polls)));
    let info = match look {
        Look::Seen(Some(info)) => info,
        Look::Seen(None) => {
            return Err(StepError::fail(
                "instance_gone",
                format!("instance {id} does not exist"),
            ));
        }
        Look::Later => return later(d),
    };
    let status = info.status.as_str();
    if UNRECOVERABLE.contains(&status) || status == "deleting" {
        return Err(StepError::fail(
            "instance_failed",
            format!("instance {id} is {status}"),
        ));
    }
    if status != "available" || info.parameter_group != d.blue_parameter_group {
        return later(d);
    }
    if info.parameter_apply_status.as_deref() == Some("pending-reboot") {
        if d.rebooted_at.is_none() {
            owner
                .check(&info.tags)
                .map_err(|why| owner.foreign(&format!("instance {id}"), &why))?;
            t.cloud
                .reboot_db_instance(&id)
                .await
                .during("rebooting the instance to apply logical replication")?;
            d.rebooted_at = Some(Utc::now());
        }
        return later(d);
    }
    d.wait_started_at = None;
    d.wait_polls = 0;
    Ok(Transition::Next(UpgradeStep::CreateDeployment))
}
