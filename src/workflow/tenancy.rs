//! What the provisioning and deprovisioning steps share: the AWS clients and settings, the
//! names and tags of a tenant's resources, how failures become transitions, and the fenced
//! writes to the tenant's row.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::poller::PollerHealth;
use super::{StepContext, Transition};
use crate::cloud::{self, Cloud, CloudError, Tags};
use crate::config::ProvisioningSettings;
use crate::queue::{self, QueueError};

/// The AWS clients and settings the tenant workflows work with. Cheap to clone.
#[derive(Clone)]
pub struct Tenancy {
    pub cloud: Cloud,
    pub settings: Arc<ProvisioningSettings>,
    /// Whether an instance poller (this process's or another's) is at work.
    pub poller: Arc<PollerHealth>,
}

impl Tenancy {
    pub fn new(cloud: Cloud, settings: ProvisioningSettings) -> Self {
        Tenancy {
            cloud,
            settings: Arc::new(settings),
            poller: Arc::default(),
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
        cloud::alarms::instance_alarms(&instance, None)
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

    /// The pause before the `polls`-th look at something that is not ready: from the base,
    /// growing by half each time, up to the maximum.
    pub fn wait_delay(&self, polls: u64) -> Duration {
        let base = self.settings.wait_base;
        base.mul_f64(1.5f64.powi(polls.min(30) as i32))
            .min(self.settings.wait_max)
    }
}

/// The tenant a job is for (every tenant job has one).
pub fn tenant_of<'a>(cx: &'a StepContext<'_>) -> &'a str {
    cx.job.tenant_id.as_deref().unwrap_or_default()
}

/// A string the job recorded earlier.
pub fn data_str<'a>(cx: &'a StepContext<'_>, key: &str) -> Option<&'a str> {
    cx.job.data.0.get(key).and_then(Value::as_str)
}

pub fn data_u64(cx: &StepContext<'_>, key: &str) -> u64 {
    cx.job.data.0.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// When the job started waiting under `key`, if it did.
pub fn data_time(cx: &StepContext<'_>, key: &str) -> Option<DateTime<Utc>> {
    data_str(cx, key).and_then(|s| DateTime::parse_from_rfc3339(s).ok().map(|t| t.to_utc()))
}

/// An AWS failure as a transition: passing failures retry, the rest fail the step.
pub fn on_cloud_error(what: &str, e: CloudError) -> Transition {
    if e.is_retryable() {
        Transition::retry(format!("{what}: {e}"))
    } else {
        Transition::fail(format!("{what}: {e}"))
    }
}

/// An AWS failure in a rollback step: anything but "fatal" is retried.
pub fn on_undo_error(what: &str, e: CloudError) -> Transition {
    match e {
        CloudError::Fatal(_) => Transition::fail(format!("{what}: {e}")),
        e => Transition::retry(format!("{what}: {e}")),
    }
}

/// The outcome of a fenced write to the tenant's row.
pub fn on_write_error(e: QueueError) -> Transition {
    match e {
        // Another worker owns the job: whatever we return is not recorded.
        QueueError::LeaseLost(_) => Transition::retry("lease lost"),
        e => Transition::retry(format!("updating the tenant: {e}")),
    }
}

/// What a final step writes into the tenant's row.
pub enum TenantUpdate<'a> {
    Ready {
        instance: &'a str,
        host: &'a str,
        port: i32,
        secret_arn: &'a str,
        schema_version: i64,
    },
    Failed {
        error: &'a str,
    },
    Deleted,
}

/// Writes the tenant's row inside a transaction fenced by the job's lease.
pub async fn update_tenant(
    cx: &StepContext<'_>,
    update: TenantUpdate<'_>,
) -> Result<(), QueueError> {
    let tenant = tenant_of(cx);
    let mut conn = cx.db.acquire().await?;
    let mut tx = queue::fenced(&mut conn, cx.lease).await?;
    let query = match update {
        TenantUpdate::Ready {
            instance,
            host,
            port,
            secret_arn,
            schema_version,
        } => sqlx::query(
            "UPDATE tenants SET status = 'ready', db_instance_id = $2, endpoint_host = $3,
                 endpoint_port = $4, secret_arn = $5, schema_version = $6, error = NULL,
                 updated_at = now()
             WHERE id = $1",
        )
        .bind(tenant)
        .bind(instance)
        .bind(host)
        .bind(port)
        .bind(secret_arn)
        .bind(schema_version),
        // Nothing the row pointed at is left (or the error says what may be).
        TenantUpdate::Failed { error } => sqlx::query(
            "UPDATE tenants SET status = 'failed', error = $2, endpoint_host = NULL,
                 endpoint_port = NULL, updated_at = now()
             WHERE id = $1",
        )
        .bind(tenant)
        .bind(error),
        TenantUpdate::Deleted => sqlx::query(
            "UPDATE tenants SET status = 'deleted', error = NULL, endpoint_host = NULL,
                 endpoint_port = NULL, updated_at = now()
             WHERE id = $1",
        )
        .bind(tenant),
    };
    query.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}
