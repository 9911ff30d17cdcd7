//! The reconciler's listing: what AWS reports about the tenants of a round, in as few calls as
//! it can (100 instances a DescribeDBInstances, alarms and secrets by name prefix on alternate
//! rounds), paced to the reconciler's share of the RDS rate.

use std::collections::HashMap;

use tracing::warn;

use super::{Reconciler, RoundReport};
use crate::cloud::maintenance::PendingMaintenance;
use crate::cloud::rds::{DESCRIBE_BATCH, InstanceInfo};
use crate::cloud::secrets::SecretInfo;
use crate::maintenance::service::RoundError;
use crate::store::tenants::Tenant;

/// What AWS reported for a round's tenants.
pub(super) struct Observed {
    /// Instance identifier -> what DescribeDBInstances said.
    pub instances: HashMap<String, InstanceInfo>,
    /// Instance identifier -> pending maintenance; `None` when it could not be read.
    pub pending: Option<HashMap<String, Vec<PendingMaintenance>>>,
    /// Alarm name -> threshold, on the rounds that look at alarms.
    pub alarms: Option<HashMap<String, f64>>,
    /// Secret name -> secret, on the other rounds.
    pub secrets: Option<HashMap<String, SecretInfo>>,
}

impl Reconciler {
    /// Describes the instances of `tenants`, their pending maintenance and, by turns, the
    /// alarms or the secrets; counts the calls in `report`.
    pub(super) async fn observe(
        &self,
        tenants: &[Tenant],
        alarm_round: bool,
        report: &mut RoundReport,
    ) -> Result<Observed, RoundError> {
        let t = &self.aws;
        let s = &t.settings;
        let _ids: Vec<String> = tenants.iter().map(|x| t.instance_of(x)).collect();
        let ids: Vec<String> = tenants.iter().map(|x| t.instance_of(x)).collect();
        let mut instances: HashMap<String, InstanceInfo> = HashMap::new();
        for (i, chunk) in ids.chunks(DESCRIBE_BATCH).enumerate() {
            if i > 0 {
                tokio::time::sleep(self.rds_pace).await;
            }
            let found = t.cloud.describe_db_instances_batch(chunk).await?;
            report.rds_calls += 1;
            instances.extend(found.into_iter().map(|i| (i.identifier.clone(), i)));
        }
        // RDS's pending maintenance of the instances that exist, batched the same way. A
        // failure (e.g. a policy without the action) keeps what was recorded.
        let existing: Vec<String> = ids
            .iter()
            .filter(|id| instances.contains_key(*id))
            .cloned()
            .collect();
        let mut pending: Option<HashMap<String, Vec<PendingMaintenance>>> = None;
        if !existing.is_empty() {
            tokio::time::sleep(self.rds_pace).await;
            match t.cloud.describe_pending_maintenance_batch(&existing).await {
                Ok((found, calls)) => {
                    report.rds_calls += calls;
                    pending = Some(found);
                }
                Err(e) => {
                    report.rds_calls += 1;
                    warn!(error = %e, "cannot read pending maintenance actions; kept as recorded");
                }
            }
        }
        let alarms = if alarm_round && !tenants.is_empty() {
            let (found, calls) = t
                .cloud
                .describe_alarms_by_prefix(&s.instance_prefix)
                .await?;
            report.cloudwatch_calls = calls;
            Some(found.into_iter().collect::<HashMap<_, _>>())
        } else {
            None
        };
        let secrets = if !alarm_round && !tenants.is_empty() {
            let (found, calls) = t.cloud.list_secrets_by_prefix(&s.secret_prefix).await?;
            report.secrets_calls = calls;
            Some(
                found
                    .into_iter()
                    .map(|s| (s.name.clone(), s))
                    .collect::<HashMap<_, _>>(),
            )
        } else {
            None
        };
        Ok(Observed {
            instances,
            pending,
            alarms,
            secrets,
        })
    }
}
