//! What the tenant workflows share: the AWS clients and settings, the names and tags of a
//! tenant's resources, the tier a job works on, and the fenced writes to the tenant's row.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::error::{Context, StepError};
use super::instance_watch::{InstanceWatch, Look, PollerSeen, WaitPace};
use super::quota::QuotaWatch;
use super::runner::StepContext;
use crate::cloud::{self, Cloud, Tags};
use crate::config::{ProvisioningSettings, Tier};
use crate::queue;
use crate::tenants::record::{self, TenantUpdate};

/// The AWS clients and settings the tenant workflows work with. Cheap to clone.
#[derive(Clone)]
pub struct Tenancy {
    pub cloud: Cloud,
    pub settings: Arc<ProvisioningSettings>,
    /// Looks at instances for the wait steps, through the poller when one runs.
    pub watch: InstanceWatch,
    /// The account's RDS quotas, cached.
    pub quotas: QuotaWatch,
}

impl Tenancy {
    pub fn new(cloud: Cloud, settings: ProvisioningSettings) -> Self {
        let pace = WaitPace {
            poll_interval: settings.rds_poll_interval,
            base: settings.wait_base,
            max: settings.wait_max,
        };
        Tenancy {
            watch: InstanceWatch::new(cloud.clone(), pace),
            quotas: QuotaWatch::new(cloud.clone(), settings.quota_refresh),
            cloud,
            settings: Arc::new(settings),
        }
    }

    pub fn instance_id(&self, tenant: &str) -> String {
        self.settings.instance_id(tenant)
    }

    pub fn secret_name(&self, tenant: &str) -> String {
        self.settings.secret_name(tenant)
    }

    pub fn alarm_names(&self, tenant: &str) -> Vec<String> {
        let instance = self.instance_id(tenant);
        cloud::alarms::instance_alarms(&instance, None, 0.0)
            .into_iter()
            .map(|a| a.name)
            .collect()
    }

    /// The tags every resource of the tenant carries.
    pub fn tags(&self, tenant: &str, tier: &str) -> Tags {
        vec![
            (cloud::TAG_TENANT.into(), tenant.into()),
            (cloud::TAG_TIER.into(), tier.into()),
            (
                cloud::TAG_ENVIRONMENT.into(),
                self.settings.environment.clone(),
            ),
            (cloud::TAG_MANAGED_BY.into(), cloud::MANAGER.into()),
        ]
    }

    /// The tier of that name, as configured; a job for a tier no longer configured fails.
    pub fn tier<'a>(&'a self, name: &str) -> Result<(&'a str, &'a Tier), StepError> {
        self.settings
            .tiers
            .0
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| StepError::fail("config", format!("tier {name:?} is not configured")))
    }

    /// The start of every wait step: fails once the deadline has passed since the wait began
    /// (`started`, set on the first visit; `until` says what it waited for), then looks at the
    /// instance: what the poller handed over for `step` (taken: it is acted on once), else
    /// [`Look::Later`] while a poller runs, else one describe.
    pub async fn wait_look(
        &self,
        id: &str,
        step: &str,
        started: &mut Option<DateTime<Utc>>,
        handed: &mut Option<PollerSeen>,
        until: &str,
    ) -> Result<Look, StepError> {
        let now = Utc::now();
        let began = *started.get_or_insert(now);
        let deadline = self.settings.deadline;
        if (now - began).to_std().unwrap_or_default() > deadline {
            return Err(StepError::fail(
                "deadline",
                format!(
                    "instance {id} was not {until} within {}",
                    humantime::format_duration(deadline)
                ),
            ));
        }
        let seen = handed.take();
        self.watch
            .look(seen.as_ref(), step, id, true)
            .await
            .during("looking at the instance")
    }
}

/// Writes the tenant's row inside a transaction fenced by the job's lease: a worker whose lease
/// was taken over writes nothing.
pub async fn update_tenant<A, D>(
    cx: &StepContext<'_, A, D>,
    update: TenantUpdate<'_>,
) -> Result<(), StepError> {
    let tenant = cx.tenant()?;
    let mut conn = cx.db.acquire().await.map_err(queue::QueueError::from)?;
    let mut tx = queue::fenced(&mut conn, cx.lease).await?;
    record::update(&mut tx, tenant, update)
        .await
        .map_err(|e| StepError::retry("control_db", format!("updating the tenant: {e}")))?;
    tx.commit().await.map_err(queue::QueueError::from)?;
    Ok(())
}
