//! The account's RDS quotas, looked at before creating an instance: DescribeAccountAttributes,
//! cached (refreshed at most once per `TENANTD_QUOTA_REFRESH`), so that a tenant that would not
//! fit waits durably, with the reason visible, instead of failing and rolling back.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cloud::rds::Quota;
use crate::cloud::{Cloud, CloudError};

/// How much room the account has for new instances, as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// Instances that may still be created (`i64::MAX`: no quota reported).
    pub instances: i64,
    /// Why nothing fits right now (`DB instances 40/40`), if nothing does.
    pub full: Option<String>,
}

/// The quota figures of this process, shared by its steps. Cheap to clone.
#[derive(Clone)]
pub struct QuotaWatch {
    cloud: Cloud,
    refresh: Duration,
    seen: Arc<Mutex<Option<Seen>>>,
    /// Held by the one step that refreshes the figures: the others wait for its answer instead
    /// of all describing at once (a burst of creates would otherwise make one call each).
    refreshing: Arc<tokio::sync::Mutex<()>>,
}

/// The quotas as last described, and when.
type Seen = (Instant, Vec<Quota>);

impl QuotaWatch {
    pub fn new(cloud: Cloud, refresh: Duration) -> Self {
        QuotaWatch {
            cloud,
            refresh,
            seen: Arc::default(),
            refreshing: Arc::default(),
        }
    }

    /// The room for one more instance of `storage_gib`.
    pub async fn room(&self, storage_gib: i32) -> Result<Room, CloudError> {
        if let Some(q) = self.fresh() {
            return Ok(room(&q, storage_gib));
        }
        let _refreshing = self.refreshing.lock().await;
        // Another step may have refreshed them while this one waited.
        let quotas = match self.fresh() {
            Some(q) => q,
            None => {
                let q = self.cloud.describe_account_attributes().await?;
                *self.seen.lock().unwrap() = Some((Instant::now(), q.clone()));
                q
            }
        };
        Ok(room(&quotas, storage_gib))
    }

    fn fresh(&self) -> Option<Vec<Quota>> {
        let seen = self.seen.lock().unwrap();
        seen.as_ref()
            .filter(|(at, _)| at.elapsed() < self.refresh)
            .map(|(_, q)| q.clone())
    }

    /// A create was refused for a quota: until the next refresh, count the account as full.
    pub fn exhausted(&self) {
        let mut seen = self.seen.lock().unwrap();
        if let Some((_, quotas)) = seen.as_mut() {
            for q in quotas.iter_mut().filter(|q| q.name == "DBInstances") {
                q.used = q.used.max(q.max);
            }
        }
    }
}

fn room(quotas: &[Quota], storage_gib: i32) -> Room {
    let get = |name: &str| quotas.iter().find(|q| q.name == name);
    let instances = get("DBInstances").map_or(i64::MAX, |q| q.max - q.used);
    let full = if let Some(q) = get("DBInstances").filter(|q| q.used >= q.max) {
        Some(format!("DB instances {}/{}", q.used, q.max))
    } else {
        get("AllocatedStorage")
            .filter(|q| q.used + i64::from(storage_gib) > q.max)
            .map(|q| {
                format!(
                    "storage {} GiB of {} GiB used, {storage_gib} GiB more asked",
                    q.used, q.max
                )
            })
    };
    Room {
        instances: instances.max(0),
        full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &str, used: i64, max: i64) -> Quota {
        Quota {
            name: name.into(),
            used,
            max,
        }
    }

    #[test]
    fn a_full_quota_says_which_and_how_full() {
        let r = room(
            &[q("DBInstances", 40, 40), q("AllocatedStorage", 10, 100_000)],
            20,
        );
        assert_eq!(r.full.as_deref(), Some("DB instances 40/40"));
        assert_eq!(r.instances, 0);
        let r = room(
            &[
                q("DBInstances", 2, 40),
                q("AllocatedStorage", 99_990, 100_000),
            ],
            20,
        );
        assert_eq!(
            r.full.as_deref(),
            Some("storage 99990 GiB of 100000 GiB used, 20 GiB more asked")
        );
        let r = room(&[q("DBInstances", 38, 40)], 20);
        assert_eq!((r.instances, r.full), (2, None));
        assert_eq!(room(&[], 20).instances, i64::MAX);
    }
}
