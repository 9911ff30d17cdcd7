//! Taking a tenant's resources away, step by step: shared by the rollback of a failed
//! provisioning and by deprovisioning. Each part is idempotent (what is already gone is
//! skipped), leaves alone what is not tagged as the tenant's, and waits durably for RDS.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::{StepError, Undoing};
use super::instance_watch::{Look, PollerSeen};
use super::tenancy::{Owner, Tenancy};
use crate::cloud::rds::InstanceChange;
use crate::cloud::secrets::Recovery;
use crate::cloud::{self, CloudError};
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
}

/// Where removing a resource stands after one visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// It is gone (or was never there, or is not the tenant's and was left alone).
    Done,
    /// Look again after this long.
    Later(Duration),
}

/// Deletes the alarms of `instance` (deleting a missing alarm is not an error).
pub async fn remove_alarms(t: &Tenancy, instance: &str) -> Result<(), StepError> {
    t.cloud
        .delete_alarms(&t.alarm_names(instance))
        .await
        .undoing("deleting the alarms")
}

/// One visit of the step that removes the owner's instance, running as `step`: switches
/// deletion protection off, deletes it (with `final_snapshot` if given and the instance can
/// still take one) and waits until it is gone. An instance not tagged as the tenant's is left
/// alone: a rollback goes on, a deprovisioning (which names a final snapshot) fails. With
/// `tiers`, the automated backups are kept when the instance's tier says so; without (a
/// rollback), they go with the instance.
pub async fn remove_instance(
    t: &Tenancy,
    owner: &Owner,
    step: &str,
    seen: Option<&PollerSeen>,
    removal: &mut Removal,
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
    if !owner.owns(&info.tags) {
        if final_snapshot.is_some() {
            return Err(StepError::fail(
                "foreign_resource",
                format!(
                    "instance {id} is not tagged as {}; left untouched",
                    owner.whose()
                ),
            ));
        }
        tracing::warn!(instance = %id, owner = %owner.describe(), "instance is not the owner's; leaving it untouched");
        removal.foreign_instance_left = Some(id);
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

/// Deletes the secret `name` of the owner as `recovery` says, unless it is already gone,
/// waiting for deletion, or not tagged as the owner's.
pub async fn remove_secret(
    t: &Tenancy,
    owner: &Owner,
    name: &str,
    removal: &mut Removal,
    recovery: Recovery,
) -> Result<(), StepError> {
    let name = name.to_string();
    let Some(info) = t
        .cloud
        .describe_secret(&name)
        .await
        .undoing("looking for the secret")?
    else {
        return Ok(());
    };
    if !owner.owns(&info.tags) {
        tracing::warn!(secret = %name, owner = %owner.describe(), "secret is not the owner's; leaving it untouched");
        removal.foreign_secret_left = Some(name);
        return Ok(());
    }
    if info.pending_deletion && recovery != Recovery::None {
        return Ok(());
    }
    t.cloud
        .delete_secret(&info.arn, recovery)
        .await
        .undoing("deleting the secret")
}
