//! Final snapshots are kept for `TENANTD_FINAL_SNAPSHOT_RETENTION` (default 30 days), not
//! forever: they are billed and count against the account's quota of manual snapshots. On the
//! leader, every round deletes the final snapshots this deployment recorded taking
//! (`final_snapshots`, of its own environment) once older than that, a few per round, through
//! the RDS rate limiter, each after checking its tags (`ManagedBy=tenantd`, this
//! `Environment`, the recorded `TenantId`). A snapshot nobody recorded (a person's copy with
//! the same tags and name, another deployment's, one taken by an earlier release) is never
//! touched; a recorded one whose tags no longer say it is ours is kept and noted.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use tracing::{info, warn};

use super::service::{RoundError, Service};
use crate::cloud::Cloud;
use crate::cloud::ownership::{self, Holder};
use crate::store::snapshots::{self, End};

/// Most snapshots one round deletes.
const BATCH: i64 = 20;

pub struct SnapshotCleaner {
    pool: PgPool,
    cloud: Cloud,
    environment: String,
    retention: Option<Duration>,
}

impl SnapshotCleaner {
    pub fn new(
        pool: PgPool,
        cloud: Cloud,
        environment: String,
        retention: Option<Duration>,
    ) -> Self {
        SnapshotCleaner {
            pool,
            cloud,
            environment,
            retention,
        }
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

    async fn lead(&self, term: &super::Term) -> Result<(), RoundError> {
        let Some(retention) = self.retention else {
            return Ok(());
        };
        let due = snapshots::due(&self.pool, &self.environment, retention, BATCH).await?;
        for recorded in &due {
            let id = recorded.identifier.as_str();
            // Every write is fenced: a leader whose term is over records nothing.
            let end = |how: End, note: Option<String>| async move {
                let mut tx = term.fence(&self.pool).await?;
                snapshots::end(&mut *tx, id, how, note.as_deref()).await?;
                tx.commit().await?;
                Ok::<(), RoundError>(())
            };
            let Some(found) = self.cloud.describe_db_snapshot(id).await? else {
                end(End::Gone, Some("the snapshot does not exist".into())).await?;
                continue;
            };
            // Being created (or deleted): look again next round.
            if found.status != "available" {
                continue;
            }
            let holder = Holder::Tenant(&recorded.tenant_id);
            if let Err(why) = ownership::check(&found.tags, &self.environment, holder) {
                let note = format!("kept: the snapshot is not this deployment's ({why})");
                warn!(snapshot = %id, tenant.id = %recorded.tenant_id, "{note}");
                end(End::Kept, Some(note)).await?;
                continue;
            }
            if term.lost().is_cancelled() {
                break;
            }
            self.cloud.delete_db_snapshot(id).await?;
            end(End::Deleted, None).await?;
            info!(snapshot = %id, tenant.id = %recorded.tenant_id, instance = %found.instance,
                  "deleted an expired final snapshot");
        }
        Ok(())
    }
}
