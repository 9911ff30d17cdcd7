//! RDS's pending maintenance actions (DescribePendingMaintenanceActions): what RDS will do to
//! an instance in a coming maintenance window (`db-upgrade`, `ca-certificate-rotation`,
//! `system-update`, ...), read in batches with a `db-instance-id` filter, as the instances are;
//! applying them (ApplyPendingMaintenanceAction); and the CAs RDS offers (DescribeCertificates).

use std::collections::HashMap;

use aws_sdk_rds::types::Filter;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::rds::DESCRIBE_BATCH;
use super::{Cloud, CloudError};

/// One maintenance action RDS has pending for an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PendingMaintenance {
    /// `db-upgrade`, `ca-certificate-rotation`, `system-update`, `os-upgrade`,
    /// `hardware-maintenance`, ...
    pub action: String,
    pub description: Option<String>,
    /// Applied in the first maintenance window after this date.
    pub auto_applied_after: Option<DateTime<Utc>>,
    /// Applied at this date whatever the window.
    pub forced_apply: Option<DateTime<Utc>>,
    /// When RDS will apply it, given opt-ins and the dates above.
    pub current_apply: Option<DateTime<Utc>>,
    /// `immediate` or `next-maintenance` once someone opted in.
    pub opt_in_status: Option<String>,
}

fn time(t: Option<&aws_sdk_rds::primitives::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

impl From<&aws_sdk_rds::types::PendingMaintenanceAction> for PendingMaintenance {
    fn from(a: &aws_sdk_rds::types::PendingMaintenanceAction) -> Self {
        PendingMaintenance {
            action: a.action().unwrap_or_default().to_string(),
            description: a.description().map(str::to_string),
            auto_applied_after: time(a.auto_applied_after_date()),
            forced_apply: time(a.forced_apply_date()),
            current_apply: time(a.current_apply_date()),
            opt_in_status: a.opt_in_status().map(str::to_string),
        }
    }
}

impl Cloud {
    /// The pending maintenance actions of the instances among `identifiers` that have some, by
    /// instance identifier (instances with none are left out), and the calls it took:
    /// DescribePendingMaintenanceActions with a `db-instance-id` filter, [`DESCRIBE_BATCH`] ids
    /// a call, following `Marker` pages.
    pub async fn describe_pending_maintenance_batch(
        &self,
        identifiers: &[String],
    ) -> Result<(HashMap<String, Vec<PendingMaintenance>>, u32), CloudError> {
        let mut found = HashMap::new();
        let mut calls = 0;
        for chunk in identifiers.chunks(DESCRIBE_BATCH) {
            let mut marker: Option<String> = None;
            loop {
                let request = self
                    .rds
                    .describe_pending_maintenance_actions()
                    .filters(
                        Filter::builder()
                            .name("db-instance-id")
                            .set_values(Some(chunk.to_vec()))
                            .build(),
                    )
                    .max_records(100)
                    .set_marker(marker.clone());
                let out = self
                    .call_rds("DescribePendingMaintenanceActions", || {
                        request.clone().send()
                    })
                    .await?;
                calls += 1;
                for resource in out.pending_maintenance_actions() {
                    // arn:aws:rds:<region>:<account>:db:<identifier>
                    let Some(id) = resource
                        .resource_identifier()
                        .and_then(|arn| arn.rsplit(':').next())
                    else {
                        continue;
                    };
                    found.insert(
                        id.to_string(),
                        resource
                            .pending_maintenance_action_details()
                            .iter()
                            .map(PendingMaintenance::from)
                            .collect(),
                    );
                }
                marker = out.marker().filter(|m| !m.is_empty()).map(str::to_string);
                if marker.is_none() {
                    break;
                }
            }
        }
        Ok((found, calls))
    }
}

/// One CA RDS offers for instance certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCertificate {
    pub identifier: String,
    pub valid_till: Option<DateTime<Utc>>,
    /// RDS gives it to new instances (unless CreateDBInstance names another).
    pub default_for_new: bool,
}

impl Cloud {
    /// Opts `instance` (its ARN) in to a pending maintenance action: `immediate` applies it
    /// now, `next-maintenance` in the instance's next window.
    pub async fn apply_pending_maintenance_action(
        &self,
        arn: &str,
        action: &str,
        opt_in: &str,
    ) -> Result<(), CloudError> {
        let request = self
            .rds
            .apply_pending_maintenance_action()
            .resource_identifier(arn)
            .apply_action(action)
            .opt_in_type(opt_in);
        self.call_rds("ApplyPendingMaintenanceAction", || request.clone().send())
            .await?;
        Ok(())
    }

    /// The CAs RDS offers (every page).
    pub async fn describe_certificates(&self) -> Result<Vec<CaCertificate>, CloudError> {
        let mut found = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let request = self.rds.describe_certificates().set_marker(marker.clone());
            let out = self
                .call_rds("DescribeCertificates", || request.clone().send())
                .await?;
            let default = out
                .default_certificate_for_new_launches()
                .map(str::to_string);
            found.extend(out.certificates().iter().map(|c| {
                let identifier = c.certificate_identifier().unwrap_or_default().to_string();
                CaCertificate {
                    default_for_new: default.as_deref() == Some(identifier.as_str()),
                    identifier,
                    valid_till: time(c.valid_till()),
                }
            }));
            marker = out.marker().filter(|m| !m.is_empty()).map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
        Ok(found)
    }
}
