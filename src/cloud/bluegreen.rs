//! RDS Blue/Green deployments: CreateBlueGreenDeployment, DescribeBlueGreenDeployments (by
//! identifier or by name), SwitchoverBlueGreenDeployment, DeleteBlueGreenDeployment.

use aws_sdk_rds::types::{BlueGreenDeployment, Filter, Tag};
use serde::{Deserialize, Serialize};

use super::{Cloud, CloudError, Tags};

/// What tenantd reads back about a Blue/Green deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Deployment {
    /// `bgd-...`
    pub identifier: String,
    pub name: String,
    /// The blue instance's ARN (after a switchover: the old instance's, under its new name).
    pub source: Option<String>,
    /// The green instance's ARN (after a switchover: under the blue's former name).
    pub target: Option<String>,
    /// `PROVISIONING`, `AVAILABLE`, `SWITCHOVER_IN_PROGRESS`, `SWITCHOVER_COMPLETED`,
    /// `SWITCHOVER_FAILED`, `INVALID_CONFIGURATION`, `DELETING`, ...
    pub status: String,
    /// What RDS says about the status (e.g. "Replication degraded: ...", a timed-out
    /// switchover's reason).
    pub status_details: Option<String>,
    pub tags: Tags,
}

/// What CreateBlueGreenDeployment is asked for.
#[derive(Debug, Clone)]
pub struct DeploymentSpec {
    pub name: String,
    /// The blue instance's ARN.
    pub source_arn: String,
    pub target_engine_version: String,
    pub target_parameter_group: Option<String>,
    pub tags: Tags,
}

/// The identifier at the end of an instance ARN (`arn:aws:rds:<region>:<account>:db:<id>`).
pub fn instance_of_arn(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

impl From<&BlueGreenDeployment> for Deployment {
    fn from(d: &BlueGreenDeployment) -> Self {
        Deployment {
            identifier: d
                .blue_green_deployment_identifier()
                .unwrap_or_default()
                .to_string(),
            name: d
                .blue_green_deployment_name()
                .unwrap_or_default()
                .to_string(),
            source: d.source().map(str::to_string),
            target: d.target().map(str::to_string),
            status: d.status().unwrap_or_default().to_string(),
            status_details: d.status_details().map(str::to_string),
            tags: d
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
}

impl Cloud {
    /// Starts a Blue/Green deployment: RDS creates the green copy of the source at the target
    /// version and keeps it in sync. The name is the idempotency key: a second create of the
    /// same name is `AlreadyExists`.
    pub async fn create_blue_green_deployment(
        &self,
        spec: &DeploymentSpec,
    ) -> Result<Deployment, CloudError> {
        let tags: Vec<Tag> = spec
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let request = self
            .rds
            .create_blue_green_deployment()
            .blue_green_deployment_name(&spec.name)
            .source(&spec.source_arn)
            .target_engine_version(&spec.target_engine_version)
            .set_target_db_parameter_group_name(spec.target_parameter_group.clone())
            .set_tags(Some(tags));
        let out = self
            .call_rds("CreateBlueGreenDeployment", || request.clone().send())
            .await?;
        Ok(out
            .blue_green_deployment()
            .map(Deployment::from)
            .unwrap_or_default())
    }

    /// The deployment of that identifier, or `None` when it does not exist.
    pub async fn describe_blue_green_deployment(
        &self,
        identifier: &str,
    ) -> Result<Option<Deployment>, CloudError> {
        let request = self
            .rds
            .describe_blue_green_deployments()
            .blue_green_deployment_identifier(identifier);
        match self
            .call_rds("DescribeBlueGreenDeployments", || request.clone().send())
            .await
        {
            Ok(out) => Ok(out
                .blue_green_deployments()
                .iter()
                .map(Deployment::from)
                .find(|d| d.identifier == identifier)),
            Err(CloudError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The deployments named `name` (RDS keeps names unique while a deployment exists), every
    /// page of them.
    pub async fn describe_blue_green_deployments_named(
        &self,
        name: &str,
    ) -> Result<Vec<Deployment>, CloudError> {
        let mut found = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let request = self
                .rds
                .describe_blue_green_deployments()
                .filters(
                    Filter::builder()
                        .name("blue-green-deployment-name")
                        .values(name)
                        .build(),
                )
                .set_marker(marker.clone());
            let out = self
                .call_rds("DescribeBlueGreenDeployments", || request.clone().send())
                .await?;
            found.extend(
                out.blue_green_deployments()
                    .iter()
                    .map(Deployment::from)
                    .filter(|d| d.name == name),
            );
            marker = out.marker().filter(|m| !m.is_empty()).map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
        Ok(found)
    }

    /// Switches production over to green: RDS refuses (`Busy`) while green is not ready or
    /// lags, and rolls back by itself when green has not caught up within `timeout_secs`.
    pub async fn switchover_blue_green_deployment(
        &self,
        identifier: &str,
        timeout_secs: i32,
    ) -> Result<Deployment, CloudError> {
        let request = self
            .rds
            .switchover_blue_green_deployment()
            .blue_green_deployment_identifier(identifier)
            .switchover_timeout(timeout_secs);
        let out = self
            .call_rds("SwitchoverBlueGreenDeployment", || request.clone().send())
            .await?;
        Ok(out
            .blue_green_deployment()
            .map(Deployment::from)
            .unwrap_or_default())
    }

    /// Deletes the deployment (with its green instance when `delete_target`, only allowed
    /// before a switchover); one already gone counts as deleted.
    pub async fn delete_blue_green_deployment(
        &self,
        identifier: &str,
        delete_target: bool,
    ) -> Result<(), CloudError> {
        let request = self
            .rds
            .delete_blue_green_deployment()
            .blue_green_deployment_identifier(identifier)
            .delete_target(delete_target);
        match self
            .call_rds("DeleteBlueGreenDeployment", || request.clone().send())
            .await
        {
            Ok(_) | Err(CloudError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_arn_names_its_identifier_last() {
        assert_eq!(
            instance_of_arn("arn:aws:rds:eu-west-1:000000000000:db:saas-acme-old1"),
            "saas-acme-old1"
        );
        assert_eq!(instance_of_arn("saas-acme"), "saas-acme");
    }
}
