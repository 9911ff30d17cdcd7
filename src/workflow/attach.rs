//! The attach workflow: an operator's explicit re-attach of a `detached` tenant, whose instance
//! lost its ownership tags. Nothing else ever adds ownership tags to an existing resource.
//!
//! verify → tag → record; a failure for good (or a cancel) → keep_detached: the tenant stays
//! `detached`, with why in its error.
//!
//! The identity check before the tags go on: the instance is the one the tenant's record names;
//! it carries no tag that makes it someone else's (another environment, another tenant, a
//! standby); and the tenant's secret logs in to it at the endpoint RDS reports, finding the
//! tenant schema at the version recorded on the tenant. Only then is it tagged
//! `ManagedBy`/`Environment`/`TenantId`/`Tier`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::aws::{AwsContext, update_tenant};
use super::error::{Context, StepError};
use super::runner::{StepContext, Workflow};
use super::step::{Step, Transition, steps};
use crate::cloud::{self, ownership};
use crate::store::tenants::{self as tenant_record, TenantStatus, TenantUpdate};
use crate::tenant_db::{self, DbCredentials};

/// Re-attaches one detached tenant.
pub struct Attach(pub AwsContext);

/// The job kind (`jobs.kind`).
pub const KIND: &str = "attach";

steps! {
    /// The steps of an attach job.
    pub enum AttachStep {
        /// The instance is the tenant's: its tags name nobody else, the secret opens it.
        Verify = "verify",
        /// The ownership tags go back on.
        Tag = "tag",
        /// The tenant is ready (or suspended, for a stopped instance) again.
        Record = "record",
        /// The attach failed: the tenant stays detached, with why.
        KeepDetached = "keep_detached",
    }
}

impl Step for AttachStep {
    fn compensation(self) -> Option<Self> {
        match self {
            AttachStep::KeepDetached => None,
            _ => Some(AttachStep::KeepDetached),
        }
    }
}

/// An attach job takes no arguments beyond its tenant.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AttachArgs {}

/// What the steps of an attach job record (`jobs.data`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AttachData {
    /// The instance's ARN, once verified.
    pub instance_arn: Option<String>,
    /// The instance's status when verified (`stopped`: the tenant is suspended again).
    pub instance_status: Option<String>,
    /// The schema version found in the database.
    pub schema_version: Option<i64>,
}

type Cx<'a> = StepContext<'a, AttachArgs, AttachData>;
type StepResult = Result<Transition<AttachStep>, StepError>;

#[async_trait]
impl Workflow for Attach {
    const KIND: &'static str = KIND;
    type Step = AttachStep;
    type Args = AttachArgs;
    type Data = AttachData;

    fn first_step() -> AttachStep {
        AttachStep::Verify
    }

    async fn run(&self, step: AttachStep, cx: &mut Cx<'_>) -> StepResult {
        let t = &self.0;
        match step {
            AttachStep::Verify => verify(t, cx).await,
            AttachStep::Tag => tag(t, cx).await,
            AttachStep::Record => {
                let status = match cx.data.instance_status.as_deref() {
                    Some("stopped" | "stopping") => TenantStatus::Suspended,
                    _ => TenantStatus::Ready,
                };
                update_tenant(cx, TenantUpdate::Attached { status }).await?;
                Ok(Transition::Done)
            }
            AttachStep::KeepDetached => {
                let cause = cx.job.error.as_deref().unwrap_or("failed");
                let error = format!("re-attach failed, the tenant stays detached: {cause}");
                update_tenant(cx, TenantUpdate::AttachFailed { error: &error }).await?;
                Ok(Transition::Done)
            }
        }
    }
}

/// The tag that makes the instance someone else's, if it carries one.
fn claimed_by_another(
    tags: &[(String, String)],
    environment: &str,
    tenant: &str,
) -> Option<String> {
    let other = |key: &str, ours: &str| {
        ownership::tag(tags, key)
            .filter(|v| *v != ours)
            .map(|v| format!("its tag {key} is {v:?}"))
    };
    other(cloud::TAG_ENVIRONMENT, environment)
        .or_else(|| other(cloud::TAG_TENANT, tenant))
        .or_else(|| {
            ownership::tag(tags, cloud::TAG_STANDBY)
                .map(|v| format!("its tag PoolStandby is {v:?}"))
        })
}

async fn verify(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let tenant_id = cx.tenant()?.to_string();
    let tenant = tenant_record::get(cx.db, &tenant_id)
        .await
        .map_err(|e| StepError::retry("control_db", format!("reading the tenant: {e}")))?
        .ok_or_else(|| StepError::fail("bad_data", format!("no tenant {tenant_id} is recorded")))?;
    if tenant.status != TenantStatus::Detached {
        return Err(StepError::fail(
            "not_detached",
            format!(
                "tenant {tenant_id} is {}, not detached",
                tenant.status.as_str()
            ),
        ));
    }
    let id = t.instance_of(&tenant);
    let info = t
        .cloud
        .describe_db_instance(&id)
        .await
        .during("looking at the instance")?
        .ok_or_else(|| StepError::fail("instance_gone", format!("instance {id} does not exist")))?;
    if let Some(why) = claimed_by_another(&info.tags, &t.settings.environment, &tenant_id) {
        return Err(StepError::fail(
            "foreign_resource",
            format!("instance {id} is not re-attached: {why}; left untouched"),
        ));
    }
    let Some((host, port)) = info.endpoint.clone() else {
        return Err(StepError::retry(
            "no_endpoint",
            format!("instance {id} has no endpoint (it is {})", info.status),
        ));
    };
    let port = u16::try_from(port).unwrap_or(5432);
    if info.status != "stopped" {
        let secret = tenant
            .secret_arn
            .clone()
            .unwrap_or_else(|| t.secret_name(&tenant_id));
        let value = t
            .cloud
            .get_secret_value(&secret)
            .await
            .during("reading the tenant secret")?;
        let credentials = DbCredentials::from_json(&value)?.at(&host, port);
        let s = &t.settings;
        let version =
            tenant_db::schema_version(&credentials, &s.tenant_db_tls, s.tenant_db_connect_timeout)
                .await
                .map_err(|e| {
                    StepError::from(e).during(&format!(
                        "logging in to instance {id} with tenant {tenant_id}'s secret"
                    ))
                })?;
        if let Some(recorded) = tenant.schema_version
            && version != recorded
        {
            return Err(StepError::fail(
                "identity",
                format!(
                    "instance {id} has the tenant schema at version {version}, the tenant's record says {recorded}: not re-attached"
                ),
            ));
        }
        cx.data.schema_version = Some(version);
    }
    cx.data.instance_arn = info.arn.clone();
    cx.data.instance_status = Some(info.status.clone());
    Ok(Transition::Next(AttachStep::Tag))
}

async fn tag(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let tenant = cx.tenant()?.to_string();
    let Some(arn) = cx.data.instance_arn.clone() else {
        return Err(StepError::fail(
            "bad_data",
            "the instance's ARN was not recorded",
        ));
    };
    let record = tenant_record::get(cx.db, &tenant)
        .await
        .map_err(|e| StepError::retry("control_db", format!("reading the tenant: {e}")))?;
    let tier = record.map(|r| r.tier).unwrap_or_default();
    t.cloud
        .add_tags_to_resource(&arn, &t.tags(&tenant, &tier))
        .await
        .during("tagging the instance as the tenant's")?;
    Ok(Transition::Next(AttachStep::Record))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_instance_naming_another_owner_is_not_attached() {
        assert_eq!(claimed_by_another(&[], "prod", "acme"), None);
        assert_eq!(
            claimed_by_another(
                &tags(&[("TenantId", "acme"), ("Tier", "pro")]),
                "prod",
                "acme"
            ),
            None
        );
        assert!(claimed_by_another(&tags(&[("Environment", "staging")]), "prod", "acme").is_some());
        assert!(claimed_by_another(&tags(&[("TenantId", "globex")]), "prod", "acme").is_some());
        assert!(
            claimed_by_another(&tags(&[("PoolStandby", "saas-pool-1")]), "prod", "acme").is_some()
        );
    }
}
