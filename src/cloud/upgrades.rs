//! What a major version upgrade asks RDS besides the Blue/Green deployment: a version's
//! upgrade targets (DescribeDBEngineVersions `ValidUpgradeTarget`), the extensions a family
//! supports (DescribeEngineDefaultParameters, `rds.extensions`), DB parameter groups (create,
//! describe, modify, their tags) and RebootDBInstance.

use aws_sdk_rds::types::{ApplyMethod, Parameter, Tag};

use super::{Cloud, CloudError, Tags};

/// One version a PostgreSQL version can move to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeTarget {
    pub version: String,
    pub major: bool,
}

/// A DB parameter group as tenantd reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterGroup {
    pub name: String,
    /// e.g. `postgres17`
    pub family: String,
    pub arn: Option<String>,
}

/// The parameter a Blue/Green deployment to a new major needs on (static: applied at reboot).
pub const LOGICAL_REPLICATION: &str = "rds.logical_replication";
/// The parameter whose allowed values list the extensions a family supports.
pub const EXTENSIONS: &str = "rds.extensions";

impl Cloud {
    /// The versions `version` (a full version, e.g. `16.8`) can be upgraded to; `None` when
    /// RDS does not know the version.
    pub async fn upgrade_targets(
        &self,
        version: &str,
    ) -> Result<Option<Vec<UpgradeTarget>>, CloudError> {
        let request = self
            .rds
            .describe_db_engine_versions()
            .engine("postgres")
            .engine_version(version);
        let out = self
            .call_rds("DescribeDBEngineVersions", || request.clone().send())
            .await?;
        Ok(out
            .db_engine_versions()
            .iter()
            .find(|v| v.engine_version() == Some(version))
            .map(|v| {
                v.valid_upgrade_target()
                    .iter()
                    .map(|t| UpgradeTarget {
                        version: t.engine_version().unwrap_or_default().to_string(),
                        major: t.is_major_version_upgrade().unwrap_or(false),
                    })
                    .collect()
            }))
    }

    /// The parameter group family of a version (`16.8` → `postgres16`), as RDS lists it.
    pub async fn parameter_group_family(
        &self,
        version: &str,
    ) -> Result<Option<String>, CloudError> {
        let request = self
            .rds
            .describe_db_engine_versions()
            .engine("postgres")
            .engine_version(version);
        let out = self
            .call_rds("DescribeDBEngineVersions", || request.clone().send())
            .await?;
        Ok(out
            .db_engine_versions()
            .iter()
            .find_map(|v| v.db_parameter_group_family().map(str::to_string)))
    }

    /// The extensions a parameter group family supports: the allowed values of its
    /// `rds.extensions` parameter (DescribeEngineDefaultParameters, every page). `None` when
    /// the family does not list them.
    pub async fn supported_extensions(
        &self,
        family: &str,
    ) -> Result<Option<Vec<String>>, CloudError> {
        let mut marker: Option<String> = None;
        loop {
            let request = self
                .rds
                .describe_engine_default_parameters()
                .db_parameter_group_family(family)
                .set_marker(marker.clone());
            let out = self
                .call_rds("DescribeEngineDefaultParameters", || request.clone().send())
                .await?;
            let Some(defaults) = out.engine_defaults() else {
                return Ok(None);
            };
            if let Some(p) = defaults
                .parameters()
                .iter()
                .find(|p| p.parameter_name() == Some(EXTENSIONS))
            {
                return Ok(p.allowed_values().map(|v| {
                    v.split(',')
                        .map(|e| e.trim().to_string())
                        .filter(|e| !e.is_empty())
                        .collect()
                }));
            }
            marker = defaults
                .marker()
                .filter(|m| !m.is_empty())
                .map(str::to_string);
            if marker.is_none() {
                return Ok(None);
            }
        }
    }

    /// The parameter group of that name, or `None`.
    pub async fn describe_db_parameter_group(
        &self,
        name: &str,
    ) -> Result<Option<ParameterGroup>, CloudError> {
        let request = self
            .rds
            .describe_db_parameter_groups()
            .db_parameter_group_name(name);
        match self
            .call_rds("DescribeDBParameterGroups", || request.clone().send())
            .await
        {
            Ok(out) => Ok(out
                .db_parameter_groups()
                .iter()
                .find(|g| g.db_parameter_group_name() == Some(name))
                .map(|g| ParameterGroup {
                    name: name.to_string(),
                    family: g
                        .db_parameter_group_family()
                        .unwrap_or_default()
                        .to_string(),
                    arn: g.db_parameter_group_arn().map(str::to_string),
                })),
            Err(CloudError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a parameter group of `family` with `tags`.
    pub async fn create_db_parameter_group(
        &self,
        name: &str,
        family: &str,
        description: &str,
        tags: &Tags,
    ) -> Result<ParameterGroup, CloudError> {
        let request = self
            .rds
            .create_db_parameter_group()
            .db_parameter_group_name(name)
            .db_parameter_group_family(family)
            .description(description)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ));
        let out = self
            .call_rds("CreateDBParameterGroup", || request.clone().send())
            .await?;
        let group = out.db_parameter_group();
        Ok(ParameterGroup {
            name: name.to_string(),
            family: family.to_string(),
            arn: group
                .and_then(|g| g.db_parameter_group_arn())
                .map(str::to_string),
        })
    }

    /// Sets parameters of a group (applied at the next reboot of its instances: the ones
    /// tenantd sets are static).
    pub async fn modify_db_parameter_group(
        &self,
        name: &str,
        parameters: &[(String, String)],
    ) -> Result<(), CloudError> {
        let request = self
            .rds
            .modify_db_parameter_group()
            .db_parameter_group_name(name)
            .set_parameters(Some(
                parameters
                    .iter()
                    .map(|(k, v)| {
                        Parameter::builder()
                            .parameter_name(k)
                            .parameter_value(v)
                            .apply_method(ApplyMethod::PendingReboot)
                            .build()
                    })
                    .collect(),
            ));
        self.call_rds("ModifyDBParameterGroup", || request.clone().send())
            .await?;
        Ok(())
    }

    /// The value a group sets for `parameter` (every page of DescribeDBParameters); `None`
    /// when it sets none.
    pub async fn db_parameter(
        &self,
        group: &str,
        parameter: &str,
    ) -> Result<Option<String>, CloudError> {
        let mut marker: Option<String> = None;
        loop {
            let request = self
                .rds
                .describe_db_parameters()
                .db_parameter_group_name(group)
                .set_marker(marker.clone());
            let out = self
                .call_rds("DescribeDBParameters", || request.clone().send())
                .await?;
            if let Some(p) = out
                .parameters()
                .iter()
                .find(|p| p.parameter_name() == Some(parameter))
            {
                return Ok(p.parameter_value().map(str::to_string));
            }
            marker = out.marker().filter(|m| !m.is_empty()).map(str::to_string);
            if marker.is_none() {
                return Ok(None);
            }
        }
    }

    /// The tags of an RDS resource (by ARN).
    pub async fn list_tags_for_resource(&self, arn: &str) -> Result<Tags, CloudError> {
        let request = self.rds.list_tags_for_resource().resource_name(arn);
        let out = self
            .call_rds("ListTagsForResource", || request.clone().send())
            .await?;
        Ok(out
            .tag_list()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }

    /// Reboots an instance (applies its parameter group's pending static parameters).
    pub async fn reboot_db_instance(&self, identifier: &str) -> Result<(), CloudError> {
        let request = self
            .rds
            .reboot_db_instance()
            .db_instance_identifier(identifier);
        self.call_rds("RebootDBInstance", || request.clone().send())
            .await?;
        Ok(())
    }
}
