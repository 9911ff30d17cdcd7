//! Taking a tenant's resources away, step by step: shared by the rollback of a failed
//! provisioning and by deprovisioning. Each part is idempotent (what is already gone is
//! skipped), looks at the resource's tags first and leaves alone what fails the ownership rule,
//! and waits durably for RDS. A rollback removes only what its job created: an instance whose
//! `ProvisioningJob` tag names another job (one the job adopted) is kept, and so is its secret.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::aws::{AwsContext, Owner};
use super::error::{StepError, Undoing};
use super::instance_watch::{Look, PollerSeen};
use crate::cloud::rds::InstanceChange;
use crate::cloud::secrets::Recovery;
use crate::cloud::{self, CloudError, ownership};
use crate::config::Tiers;

/// The states in which RDS refuses a final snapshot (DeleteDBInstance then needs
/// SkipFinalSnapshot); in every other state the snapshot is taken.
const NO_FINAL_SNAPSHOT: &[&str] = &["failed", "incompatible-restore", "incompatible-network"];

/// What removing an instance has recorded so far (in the job's data, under these keys).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Removal {
    /// When the wait for the instance to go began, and how often it looked.
    pub delete_started_at: Option<DateTime<Utc>>,
    pub delete_polls: u64,
    /// The final snapshot the delete asked for (none: the instance went without one).
    pub final_snapshot: Option<String>,
    /// An instance of the tenant's name that is not tagged as its own, left alone.
    pub foreign_instance_left: Option<String>,
    /// Likewise for a secret.
    pub foreign_secret_left: Option<String>,
    /// A rollback kept the instance: it is the owner's but this job did not create it (why).
    pub kept_instance: Option<String>,
    /// The alarms were left as they are (why).
    pub alarms_left: Option<String>,
    /// The secret was kept, or only scheduled for deletion (why).
    pub secret_kept: Option<String>,
}

impl Removal {
    /// What a rollback left in place, in a sentence for the tenant's error ("" when nothing).
    pub fn left_in_place(&self) -> String {
        let foreign = self
            .foreign_instance_left
            .as_ref()
            .map(|id| format!("instance {id} is not this deployment's and was left untouched"));
        let parts: Vec<&str> = [
            foreign.as_deref(),
            self.kept_instance.as_deref(),
            self.secret_kept.as_deref(),
            self.alarms_left.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!("; {}", parts.join("; "))
        }
    }
}

/// Which resources a removal may delete: any of the owner's (deprovisioning, which takes a
/// final snapshot first), or only the ones created by `jobs` (a rollback: its own job, and for
/// a standby the standby's jobs; `since` is when its job was created).
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Deprovision,
    Rollback {
        jobs: &'a [String],
        since: DateTime<Utc>,
    },
}

/// Where removing a resource stands after one visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// It is gone (or was never there, or is not the tenant's and was left alone).
    Done,
    /// Look again after this long.
    Later(Duration),
}

/// Deletes the alarms of the owner's instance once the instance passed the ownership rule
/// (CloudWatch cannot filter alarms by tag: they are the instance's by name only), and, in a
/// rollback, only when the job created the instance. A missing instance leaves its alarms in
/// place (nothing proves them ours); an instance of someone else fails a deprovisioning and is
/// noted by a rollback. Returns a note when the alarms were left.
pub async fn remove_alarms(
    t: &AwsContext,
    owner: &Owner,
    scope: Scope<'_>,
    removal: &mut Removal,
) -> Result<Option<String>, StepError> {
    let id = &owner.instance;
    let info = t
        .cloud
        .describe_db_instance(id)
        .await
        .undoing("looking at the instance the alarms watch")?;
    let left = match info {
        None => Some(format!(
            "alarms of {id} left in place: the instance does not exist, so nothing proves the alarms ours"
        )),
        Some(info) => match (owner.check(&info.tags), scope) {
            (Err(why), Scope::Deprovision) => {
                return Err(owner.foreign(&format!("instance {id}"), &why));
            }
            (Err(why), Scope::Rollback { .. }) => Some(format!(
                "alarms of {id} left in place: the instance is not {} ({why})",
                owner.whose()
            )),
            (Ok(()), Scope::Rollback { jobs, .. }) if !ownership::created_by(&info.tags, jobs) => {
                Some(format!(
                    "alarms of {id} left in place: the instance was not created by this job"
                ))
            }
            (Ok(()), _) => None,
        },
    };
    if let Some(note) = &left {
        tracing::warn!(instance = %id, owner = %owner.describe(), "{note}");
        removal.alarms_left = Some(note.clone());
        return Ok(left);
    }
    t.cloud
        .delete_alarms(&t.alarm_names(id))
        .await
        .undoing("deleting the alarms")?;
    Ok(None)
}

/// One visit of the step that removes the owner's instance, running as `step`: switches
/// deletion protection off, deletes it (with `final_snapshot` if given and the instance can
/// still take one) and waits until it is gone. An instance that fails the ownership rule is
/// left alone: a rollback goes on, a deprovisioning fails. A rollback keeps an instance its job
/// did not create (one it adopted). With `tiers`, the automated backups are kept when the
/// instance's tier says so; without (a rollback), they go with the instance.
#[allow(clippy::too_many_arguments)]
pub async fn remove_instance(
    t: &AwsContext,
    owner: &Owner,
    step: &str,
    seen: Option<&PollerSeen>,
    removal: &mut Removal,
    scope: Scope<'_>,
    final_snapshot: Option<String>,
    tiers: Option<&Tiers>,
) -> Result<Removed, StepError> {
    let id = owner.instance.clone();
    let now = Utc::now();
    let started = *removal.delete_started_at.get_or_insert(now);
    let polls = removal.delete_polls;
    if (now - started).to_std().unwrap_or_default() > t.settings.deadline {
        return Err(StepError::fail(
            "deadline",
            format!(
                "instance {id} was not deleted within {}; it may remain",
                humantime::format_duration(t.settings.deadline)
            ),
        ));
    }
    let wait = |removal: &mut Removal| {
        removal.delete_polls = polls + 1;
        Ok(Removed::Later(t.watch.pause(polls)))
    };
    // The first look is our own; later ones (while it is deleted) come from the poller.
    let info = match t
        .watch
        .look(seen, step, &id, polls > 0)
        .await
        .undoing("looking at the instance")?
    {
        Look::Seen(Some(info)) => info,
        Look::Seen(None) => return Ok(Removed::Done),
        Look::Later => return wait(removal),
    };
    if let Err(why) = owner.check(&info.tags) {
        if let Scope::Deprovision = scope {
            return Err(owner.foreign(&format!("instance {id}"), &why));
        }
        tracing::warn!(instance = %id, owner = %owner.describe(), %why, "instance is not the owner's; leaving it untouched");
        removal.foreign_instance_left = Some(id);
        return Ok(Removed::Done);
    }
    if let Scope::Rollback { jobs, .. } = scope
        && !ownership::created_by(&info.tags, jobs)
    {
        let by = ownership::tag(&info.tags, cloud::TAG_JOB).unwrap_or("no job");
        tracing::warn!(instance = %id, owner = %owner.describe(), created_by = by, "rollback keeps an instance this job did not create");
        removal.kept_instance = Some(format!(
            "instance {id} was kept with its data: it was not created by this job \
             (its ProvisioningJob tag is {by:?}); deprovision the tenant to remove it with a final snapshot"
        ));
        return Ok(Removed::Done);
    }
    if info.status == "deleting" {
        return wait(removal);
    }
    if info.deletion_protection {
        let change = InstanceChange {
            deletion_protection: Some(false),
            ..Default::default()
        };
        return match t.cloud.modify_db_instance(&id, &change).await {
            Ok(_) | Err(CloudError::Busy(_)) => wait(removal),
            Err(CloudError::NotFound(_)) => Ok(Removed::Done),
            Err(e) => Err(e).undoing("switching off deletion protection"),
        };
    }
    // Only where RDS refuses a final snapshot does the instance go without one; the data says
    // so.
    let snapshot = final_snapshot.filter(|_| !NO_FINAL_SNAPSHOT.contains(&info.status.as_str()));
    let tier = info
        .tags
        .iter()
        .find(|(k, _)| k == cloud::TAG_TIER)
        .map(|(_, v)| v.as_str());
    let keep_backups = tiers
        .zip(tier)
        .and_then(|(tiers, tier)| tiers.get(tier))
        .is_some_and(|tier| tier.keeps_automated_backups());
    match t
        .cloud
        .delete_db_instance(&id, snapshot.as_deref(), keep_backups)
        .await
    {
        Ok(()) => {
            removal.final_snapshot = snapshot;
            wait(removal)
        }
        Err(CloudError::NotFound(_)) => Ok(Removed::Done),
        // e.g. still creating or modifying: look again later, without using up attempts.
        Err(CloudError::Busy(_)) => wait(removal),
        Err(e) => Err(e).undoing("deleting the instance"),
    }
}

/// Deletes the secret `name` of the owner, unless it is already gone, fails the ownership
/// rule, or (in a rollback) belongs to an instance the rollback kept. A rollback deletes at
/// once only a secret its job created (`ProvisioningJob` tag); any other it schedules for
/// deletion with the recovery window (`recovery_days`), never forced. A deprovisioning uses
/// the recovery window.
pub async fn remove_secret(
    t: &AwsContext,
    owner: &Owner,
    name: &str,
    removal: &mut Removal,
    scope: Scope<'_>,
) -> Result<(), StepError> {
    let name = name.to_string();
    let days = t.settings.secret_recovery_days;
    if matches!(scope, Scope::Rollback { .. }) && removal.kept_instance.is_some() {
        let note = format!("secret {name} was kept with the instance (it holds its password)");
        tracing::warn!(secret = %name, owner = %owner.describe(), "{note}");
        removal.secret_kept = Some(note);
        return Ok(());
    }
    let Some(info) = t
        .cloud
        .describe_secret(&name)
        .await
        .undoing("looking for the secret")?
    else {
        return Ok(());
    };
    if let Err(why) = owner.check(&info.tags) {
        tracing::warn!(secret = %name, owner = %owner.describe(), %why, "secret is not the owner's; leaving it untouched");
        removal.foreign_secret_left = Some(name);
        return Ok(());
    }
    // Secrets of earlier releases carry no ProvisioningJob tag: one created after the job was
    // is the job's (the tenant has one job at a time; one the job found is older).
    let untagged_and_newer = |since: DateTime<Utc>| {
        ownership::tag(&info.tags, cloud::TAG_JOB).is_none()
            && info.created.is_some_and(|created| created >= since)
    };
    let recovery = match scope {
        Scope::Rollback { jobs, since }
            if ownership::created_by(&info.tags, jobs) || untagged_and_newer(since) =>
        {
            Recovery::None
        }
        Scope::Rollback { .. } => {
            removal.secret_kept = Some(format!(
                "secret {name} was not created by this job: scheduled for deletion with a {days}-day recovery window"
            ));
            Recovery::Days(days)
        }
        Scope::Deprovision => Recovery::Days(days),
    };
    if info.pending_deletion && recovery != Recovery::None {
        return Ok(());
    }
    t.cloud
        .delete_secret(&info.arn, recovery)
        .await
        .undoing("deleting the secret")
}
