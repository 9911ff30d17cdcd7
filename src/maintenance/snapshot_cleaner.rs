//! Final snapshots are kept for `TENANTD_FINAL_SNAPSHOT_RETENTION` (default 30 days), not
//! forever: they are billed and count against the account's quota of manual snapshots. On the
//! leader, every round deletes the final snapshots tenantd took (tagged `ManagedBy=tenantd`
//! with a `TenantId`, named `<instance>-final-<time>`) once older than that, a few per round,
//! through the RDS rate limiter. Snapshots anyone else took are never touched.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tracing::info;

use super::service::{RoundError, Service};
use crate::cloud::rds::SnapshotInfo;
use crate::cloud::{self, Cloud};

/// Most snapshots one round deletes.
const BATCH: usize = 20;

pub struct SnapshotCleaner {
    cloud: Cloud,
    instance_prefix: String,
    retention: Option<Duration>,
}

impl SnapshotCleaner {
    pub fn new(cloud: Cloud, instance_prefix: String, retention: Option<Duration>) -> Self {
        SnapshotCleaner {
            cloud,
            instance_prefix,
            retention,
        }
    }

    /// Whether a snapshot is a final snapshot tenantd took, and older than `retention`.
    fn expired(&self, s: &SnapshotInfo, retention: Duration) -> bool {
        let tag = |key: &str| {
            s.tags
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let ours = tag(cloud::TAG_MANAGED_BY) == Some(cloud::MANAGER)
            && tag(cloud::TAG_TENANT).is_some()
            && s.identifier.starts_with(&self.instance_prefix)
            && s.identifier.contains("-final-");
        let age = s
            .created
            .map(|c| (Utc::now() - c).to_std().unwrap_or_default());
        ours && s.status == "available" && age.is_some_and(|a| a > retention)
    }
}

#[async_trait]
impl Service for SnapshotCleaner {
    fn name(&self) -> &'static str {
        "snapshot_cleaner"
    }

    /// A tenth of the retention, between a second and an hour; off when snapshots are kept
    /// forever.
    fn every(&self) -> Duration {
        match self.retention {
            None => Duration::ZERO,
            Some(r) => (r / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600)),
        }
    }

    async fn lead(&self, _term: &super::Term) -> Result<(), RoundError> {
        let Some(retention) = self.retention else {
            return Ok(());
        };
        let snapshots = self.cloud.describe_manual_snapshots().await?;
        let expired: Vec<&SnapshotInfo> = snapshots
            .iter()
            .filter(|s| self.expired(s, retention))
            .take(BATCH)
            .collect();
        for s in &expired {
            self.cloud.delete_db_snapshot(&s.identifier).await?;
            info!(snapshot = %s.identifier, instance = %s.instance, "deleted an expired final snapshot");
        }
        Ok(())
    }
}
