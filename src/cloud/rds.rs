//! RDS: CreateDBInstance, DescribeDBInstances, ModifyDBInstance, DeleteDBInstance (pending
//! maintenance actions and CA certificates are in [`super::maintenance`]).

use aws_sdk_rds::types::{DbInstance, Filter, Tag};
use secrecy::{ExposeSecret, SecretString};

use super::{Cloud, CloudError, Tags};

/// Most ids one DescribeDBInstances filter takes (RDS's limit on filter values).
pub const DESCRIBE_BATCH: usize = 100;

/// Everything CreateDBInstance gets, except the password.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    pub identifier: String,
    pub instance_class: String,
    pub engine_version: String,
    pub storage_gib: i32,
    pub iops: Option<i32>,
    pub storage_throughput: Option<i32>,
    pub backup_retention_days: i32,
    pub backup_window: String,
    pub maintenance_window: String,
    pub multi_az: bool,
    pub performance_insights_days: Option<i32>,
    /// Storage autoscaling ceiling; `None`: no autoscaling.
    pub max_allocated_storage_gib: Option<i32>,
    pub security_group_ids: Vec<String>,
    pub db_subnet_group: Option<String>,
    pub master_username: String,
    pub db_name: String,
    pub tags: Tags,
}

/// What tenantd reads back about an instance. Fields added since the first release are
/// optional (`default`), so what an earlier poller handed a job still reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct InstanceInfo {
    pub identifier: String,
    pub status: String,
    pub endpoint: Option<(String, i32)>,
    pub tags: Tags,
    pub deletion_protection: bool,
    pub backup_retention_days: i32,
    pub backup_window: Option<String>,
    pub maintenance_window: Option<String>,
    /// The full version RDS runs, e.g. `16.8`.
    pub engine_version: Option<String>,
    /// The version RDS moves the instance to in its next maintenance window
    /// (`PendingModifiedValues.EngineVersion`).
    pub pending_engine_version: Option<String>,
    /// The instance's ARN (what tags are set on).
    pub arn: Option<String>,
    pub instance_class: Option<String>,
    pub allocated_storage_gib: Option<i32>,
    pub iops: Option<i32>,
    pub storage_throughput: Option<i32>,
    pub max_allocated_storage_gib: Option<i32>,
    pub multi_az: Option<bool>,
    /// Performance Insights: on, and its retention in days.
    pub performance_insights: Option<bool>,
    pub performance_insights_days: Option<i32>,
    /// The CA its certificate is issued by (`CACertificateIdentifier`).
    pub ca_certificate: Option<String>,
    /// The CA RDS moves it to in its next maintenance window
    /// (`PendingModifiedValues.CACertificateIdentifier`).
    pub pending_ca_certificate: Option<String>,
    /// The DB parameter group, and whether its parameters are applied (`in-sync`,
    /// `pending-reboot`, `applying`).
    pub parameter_group: Option<String>,
    pub parameter_apply_status: Option<String>,
}

impl From<&DbInstance> for InstanceInfo {
    fn from(db: &DbInstance) -> Self {
        InstanceInfo {
            identifier: db.db_instance_identifier().unwrap_or_default().to_string(),
            status: db.db_instance_status().unwrap_or_default().to_string(),
            endpoint: db
                .endpoint()
                .and_then(|e| Some((e.address()?.to_string(), e.port().unwrap_or(5432)))),
            tags: db
                .tag_list()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            deletion_protection: db.deletion_protection().unwrap_or(false),
            backup_retention_days: db.backup_retention_period().unwrap_or(0),
            backup_window: db.preferred_backup_window().map(str::to_string),
            maintenance_window: db.preferred_maintenance_window().map(str::to_string),
            engine_version: db.engine_version().map(str::to_string),
            pending_engine_version: db
                .pending_modified_values()
                .and_then(|p| p.engine_version())
                .map(str::to_string),
            arn: db.db_instance_arn().map(str::to_string),
            instance_class: db.db_instance_class().map(str::to_string),
            allocated_storage_gib: db.allocated_storage(),
            iops: db.iops(),
            storage_throughput: db.storage_throughput(),
            max_allocated_storage_gib: db.max_allocated_storage(),
            multi_az: db.multi_az(),
            performance_insights: db.performance_insights_enabled(),
            performance_insights_days: db.performance_insights_retention_period(),
            ca_certificate: db.ca_certificate_identifier().map(str::to_string),
            pending_ca_certificate: db
                .pending_modified_values()
                .and_then(|p| p.ca_certificate_identifier())
                .map(str::to_string),
            parameter_group: db
                .db_parameter_groups()
                .first()
                .and_then(|g| g.db_parameter_group_name())
                .map(str::to_string),
            parameter_apply_status: db
                .db_parameter_groups()
                .first()
                .and_then(|g| g.parameter_apply_status())
                .map(str::to_string),
        }
    }
}

/// One PostgreSQL version RDS offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineVersion {
    pub version: String,
    pub major: String,
    /// The version RDS picks when asked for the major alone.
    pub default: bool,
    /// `available`, or `deprecated` once it can no longer be created.
    pub status: String,
}

/// A manual DB snapshot, as tenantd reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub identifier: String,
    pub instance: String,
    pub status: String,
    pub created: Option<chrono::DateTime<chrono::Utc>>,
    pub tags: Tags,
}

/// An account's use of one RDS quota, as DescribeAccountAttributes reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    /// `DBInstances`, `AllocatedStorage` (GiB), `ManualSnapshots`, ...
    pub name: String,
    pub used: i64,
    pub max: i64,
}

/// Instance settings to change; `None` leaves a setting alone.
#[derive(Debug, Clone, Default)]
pub struct InstanceChange {
    pub backup_retention_days: Option<i32>,
    pub backup_window: Option<String>,
    pub maintenance_window: Option<String>,
    pub deletion_protection: Option<bool>,
    pub master_password: Option<SecretString>,
    pub instance_class: Option<String>,
    pub allocated_storage_gib: Option<i32>,
    pub iops: Option<i32>,
    pub storage_throughput: Option<i32>,
    pub max_allocated_storage_gib: Option<i32>,
    pub multi_az: Option<bool>,
    /// Performance Insights on (with its retention in days) or off.
    pub performance_insights: Option<Option<i32>>,
    /// A minor version of the same major to move to (never a major: the call says
    /// `AllowMajorVersionUpgrade=false`).
    pub engine_version: Option<String>,
    /// Another CA for the instance's certificate (`CACertificateIdentifier`).
    pub ca_certificate: Option<String>,
    /// Leave the change to the next maintenance window instead of applying it at once.
    pub in_maintenance_window: bool,
    /// Another DB parameter group.
    pub parameter_group: Option<String>,
}

/// Statuses an instance does not leave without help: waiting for them is pointless.
pub const UNRECOVERABLE: &[&str] = &[
    "failed",
    "incompatible-parameters",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-restore",
    "incompatible-credentials",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "insufficient-capacity",
    "restore-error",
    "storage-full",
];

fn snapshot_info(s: &aws_sdk_rds::types::DbSnapshot) -> SnapshotInfo {
    SnapshotInfo {
        identifier: s.db_snapshot_identifier().unwrap_or_default().to_string(),
        instance: s.db_instance_identifier().unwrap_or_default().to_string(),
        status: s.status().unwrap_or_default().to_string(),
        created: s
            .snapshot_create_time()
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
        tags: s
            .tag_list()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect(),
    }
}

fn tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

impl Cloud {
    /// The instance, or `None` when it does not exist.
    pub async fn describe_db_instance(
        &self,
        identifier: &str,
    ) -> Result<Option<InstanceInfo>, CloudError> {
        let request = self
            .rds
            .describe_db_instances()
            .db_instance_identifier(identifier);
        match self
            .call_rds("DescribeDBInstances", || request.clone().send())
            .await
        {
            Ok(out) => Ok(out
                .db_instances()
                .iter()
                .find(|db| db.db_instance_identifier() == Some(identifier))
                .map(InstanceInfo::from)),
            Err(CloudError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The instances among `identifiers` that exist (missing ones are simply not returned):
    /// DescribeDBInstances with a `db-instance-id` filter, [`DESCRIBE_BATCH`] ids a call,
    /// following `Marker` pages.
    pub async fn describe_db_instances_batch(
        &self,
        identifiers: &[String],
    ) -> Result<Vec<InstanceInfo>, CloudError> {
        let mut found = Vec::with_capacity(identifiers.len());
        for chunk in identifiers.chunks(DESCRIBE_BATCH) {
            let mut marker: Option<String> = None;
            loop {
                let request = self
                    .rds
                    .describe_db_instances()
                    .filters(
                        Filter::builder()
                            .name("db-instance-id")
                            .set_values(Some(chunk.to_vec()))
                            .build(),
                    )
                    .max_records(100)
                    .set_marker(marker.clone());
                let out = self
                    .call_rds("DescribeDBInstances", || request.clone().send())
                    .await?;
                found.extend(out.db_instances().iter().map(InstanceInfo::from));
                marker = out.marker().filter(|m| !m.is_empty()).map(str::to_string);
                if marker.is_none() {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Starts creating an instance: gp3, encrypted, not public, tags copied to snapshots.
    pub async fn create_db_instance(
        &self,
        spec: &InstanceSpec,
        password: &SecretString,
    ) -> Result<InstanceInfo, CloudError> {
        let mut request = self
            .rds
            .create_db_instance()
            .db_instance_identifier(&spec.identifier)
            .db_instance_class(&spec.instance_class)
            .engine("postgres")
            .engine_version(&spec.engine_version)
            .allocated_storage(spec.storage_gib)
            .storage_type("gp3")
            .set_iops(spec.iops)
            .set_storage_throughput(spec.storage_throughput)
            .storage_encrypted(true)
            .master_username(&spec.master_username)
            .master_user_password(password.expose_secret())
            .db_name(&spec.db_name)
            .backup_retention_period(spec.backup_retention_days)
            .preferred_backup_window(&spec.backup_window)
            .preferred_maintenance_window(&spec.maintenance_window)
            .multi_az(spec.multi_az)
            .publicly_accessible(false)
            .copy_tags_to_snapshot(true)
            .deletion_protection(false)
            .enable_performance_insights(spec.performance_insights_days.is_some())
            .set_performance_insights_retention_period(spec.performance_insights_days)
            .set_max_allocated_storage(spec.max_allocated_storage_gib)
            .set_db_subnet_group_name(spec.db_subnet_group.clone())
            .set_tags(Some(tags(&spec.tags)));
        for sg in &spec.security_group_ids {
            request = request.vpc_security_group_ids(sg);
        }
        let out = self
            .call_rds("CreateDBInstance", || request.clone().send())
            .await?;
        Ok(out
            .db_instance()
            .map(InstanceInfo::from)
            .unwrap_or_else(|| InstanceInfo {
                identifier: spec.identifier.clone(),
                status: "creating".into(),
                endpoint: None,
                tags: spec.tags.clone(),
                deletion_protection: false,
                backup_retention_days: spec.backup_retention_days,
                backup_window: None,
                maintenance_window: None,
                engine_version: Some(spec.engine_version.clone()),
                ..InstanceInfo::default()
            }))
    }

    /// Applies `change`, at once unless it asks for the maintenance window.
    pub async fn modify_db_instance(
        &self,
        identifier: &str,
        change: &InstanceChange,
    ) -> Result<Option<InstanceInfo>, CloudError> {
        let (pi, pi_days) = match change.performance_insights {
            None => (None, None),
            Some(None) => (Some(false), None),
            Some(Some(days)) => (Some(true), Some(days)),
        };
        let request = self
            .rds
            .modify_db_instance()
            .db_instance_identifier(identifier)
            .apply_immediately(!change.in_maintenance_window)
            .set_db_instance_class(change.instance_class.clone())
            .set_allocated_storage(change.allocated_storage_gib)
            .set_iops(change.iops)
            .set_storage_throughput(change.storage_throughput)
            .set_max_allocated_storage(change.max_allocated_storage_gib)
            .set_multi_az(change.multi_az)
            .set_enable_performance_insights(pi)
            .set_performance_insights_retention_period(pi_days)
            .set_backup_retention_period(change.backup_retention_days)
            .set_preferred_backup_window(change.backup_window.clone())
            .set_preferred_maintenance_window(change.maintenance_window.clone())
            .set_deletion_protection(change.deletion_protection)
            .set_engine_version(change.engine_version.clone())
            .set_db_parameter_group_name(change.parameter_group.clone())
            .set_allow_major_version_upgrade(change.engine_version.as_ref().map(|_| false))
            .set_ca_certificate_identifier(change.ca_certificate.clone())
            .set_master_user_password(
                change
                    .master_password
                    .as_ref()
                    .map(|p| p.expose_secret().to_string()),
            );
        let out = self
            .call_rds("ModifyDBInstance", || request.clone().send())
            .await?;
        Ok(out.db_instance().map(InstanceInfo::from))
    }

    /// Stops an available instance (its storage and backups stay; RDS starts it again by
    /// itself after seven days).
    pub async fn stop_db_instance(&self, identifier: &str) -> Result<(), CloudError> {
        let request = self
            .rds
            .stop_db_instance()
            .db_instance_identifier(identifier);
        self.call_rds("StopDBInstance", || request.clone().send())
            .await?;
        Ok(())
    }

    /// Starts a stopped instance.
    pub async fn start_db_instance(&self, identifier: &str) -> Result<(), CloudError> {
        let request = self
            .rds
            .start_db_instance()
            .db_instance_identifier(identifier);
        self.call_rds("StartDBInstance", || request.clone().send())
            .await?;
        Ok(())
    }

    /// Adds (or overwrites) tags on an RDS resource.
    pub async fn add_tags_to_resource(&self, arn: &str, tags: &Tags) -> Result<(), CloudError> {
        let request = self
            .rds
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(self::tags(tags)));
        self.call_rds("AddTagsToResource", || request.clone().send())
            .await?;
        Ok(())
    }

    /// Removes tags (by key) from an RDS resource; keys it does not have are no error.
    pub async fn remove_tags_from_resource(
        &self,
        arn: &str,
        keys: &[&str],
    ) -> Result<(), CloudError> {
        let request = self
            .rds
            .remove_tags_from_resource()
            .resource_name(arn)
            .set_tag_keys(Some(keys.iter().map(|k| k.to_string()).collect()));
        self.call_rds("RemoveTagsFromResource", || request.clone().send())
            .await?;
        Ok(())
    }

    /// Starts deleting an instance, with a final snapshot of that name or none, keeping its
    /// automated backups or not.
    pub async fn delete_db_instance(
        &self,
        identifier: &str,
        final_snapshot: Option<&str>,
        keep_automated_backups: bool,
    ) -> Result<(), CloudError> {
        let request = self
            .rds
            .delete_db_instance()
            .db_instance_identifier(identifier)
            .skip_final_snapshot(final_snapshot.is_none())
            .set_final_db_snapshot_identifier(final_snapshot.map(str::to_string))
            .delete_automated_backups(!keep_automated_backups);
        self.call_rds("DeleteDBInstance", || request.clone().send())
            .await?;
        Ok(())
    }

    /// The PostgreSQL versions RDS offers for `version` (a major such as `16`, or a full
    /// version), every page of them.
    pub async fn describe_db_engine_versions(
        &self,
        version: &str,
    ) -> Result<Vec<EngineVersion>, CloudError> {
        let mut found = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let request = self
                .rds
                .describe_db_engine_versions()
                .engine("postgres")
                .engine_version(version)
                .set_marker(marker.clone());
            let out = self
                .call_rds("DescribeDBEngineVersions", || request.clone().send())
                .await?;
            found.extend(out.db_engine_versions().iter().map(|v| EngineVersion {
                version: v.engine_version().unwrap_or_default().to_string(),
                major: v.major_engine_version().unwrap_or_default().to_string(),
                default: false,
                status: v.status().unwrap_or("available").to_string(),
            }));
            marker = out.marker().filter(|m| !m.is_empty()).map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
        // RDS answers `DefaultOnly` with the version a major alone gets.
        let request = self
            .rds
            .describe_db_engine_versions()
            .engine("postgres")
            .engine_version(version)
            .default_only(true);
        let out = self
            .call_rds("DescribeDBEngineVersions", || request.clone().send())
            .await?;
        for default in out.db_engine_versions() {
            if let Some(v) = found
                .iter_mut()
                .find(|v| Some(v.version.as_str()) == default.engine_version())
            {
                v.default = true;
            }
        }
        Ok(found)
    }

    /// Every PostgreSQL version RDS offers, every page of them (no default look).
    pub async fn postgres_versions(&self) -> Result<Vec<EngineVersion>, CloudError> {
        let mut found = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let request = self
                .rds
                .describe_db_engine_versions()
                .engine("postgres")
                .set_marker(marker.clone());
            let out = self
                .call_rds("DescribeDBEngineVersions", || request.clone().send())
                .await?;
            found.extend(out.db_engine_versions().iter().map(|v| EngineVersion {
                version: v.engine_version().unwrap_or_default().to_string(),
                major: v.major_engine_version().unwrap_or_default().to_string(),
                default: false,
                status: v.status().unwrap_or("available").to_string(),
            }));
            marker = out.marker().filter(|m| !m.is_empty()).map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
        Ok(found)
    }

    /// The account's RDS quotas and how much of each is used.
    pub async fn describe_account_attributes(&self) -> Result<Vec<Quota>, CloudError> {
        let request = self.rds.describe_account_attributes();
        let out = self
            .call_rds("DescribeAccountAttributes", || request.clone().send())
            .await?;
        Ok(out
            .account_quotas()
            .iter()
            .map(|q| Quota {
                name: q.account_quota_name().unwrap_or_default().to_string(),
                used: q.used().unwrap_or(0),
                max: q.max().unwrap_or(i64::MAX),
            })
            .collect())
    }

    /// Every manual snapshot of the account (paged), with its tags and creation time.
    pub async fn describe_manual_snapshots(&self) -> Result<Vec<SnapshotInfo>, CloudError> {
        let mut found = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let request = self
                .rds
                .describe_db_snapshots()
                .snapshot_type("manual")
                .max_records(100)
                .set_marker(marker.clone());
            let out = self
                .call_rds("DescribeDBSnapshots", || request.clone().send())
                .await?;
            found.extend(out.db_snapshots().iter().map(snapshot_info));
            marker = out.marker().filter(|m| !m.is_empty()).map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
        Ok(found)
    }

    /// The snapshot, or `None` when it does not exist.
    pub async fn describe_db_snapshot(
        &self,
        identifier: &str,
    ) -> Result<Option<SnapshotInfo>, CloudError> {
        let request = self
            .rds
            .describe_db_snapshots()
            .db_snapshot_identifier(identifier);
        match self
            .call_rds("DescribeDBSnapshots", || request.clone().send())
            .await
        {
            Ok(out) => Ok(out
                .db_snapshots()
                .iter()
                .find(|s| s.db_snapshot_identifier() == Some(identifier))
                .map(snapshot_info)),
            Err(CloudError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a manual snapshot; one already gone counts as deleted.
    pub async fn delete_db_snapshot(&self, identifier: &str) -> Result<(), CloudError> {
        let request = self
            .rds
            .delete_db_snapshot()
            .db_snapshot_identifier(identifier);
        match self
            .call_rds("DeleteDBSnapshot", || request.clone().send())
            .await
        {
            Ok(_) | Err(CloudError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
