//! What the tenant workflows share: the AWS clients and settings ([`AwsContext`]), the names and tags of a
//! tenant's resources, the tier a job works on, and the fenced writes to the tenant's row.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::error::{Context, StepError};
use super::instance_watch::{InstanceWatch, Look, PollerSeen, WaitPace};
use super::quota::QuotaWatch;
use super::runner::StepContext;
use crate::cloud::ownership::{self, Holder, Mismatch};
use crate::cloud::{self, Cloud, Tags};
use crate::config::{ProvisioningSettings, Tier};
use crate::queue;
use crate::store::events::{self, EventType};
use crate::store::standbys::StandbyId;
use crate::store::tenants::{self as record, Tenant, TenantUpdate};

/// The job kind of a warm-pool standby's creation or removal (`jobs.kind`; the standby
/// workflow's, named here because rollbacks look up a standby's jobs).
pub const STANDBY_KIND: &str = "standby";

/// What the tenant and standby workflows reach AWS with: the clients, the provisioning
/// settings (names, tags, waits), the instance watch and the cached quotas. Cheap to clone.
#[derive(Clone)]
pub struct AwsContext {
    pub cloud: Cloud,
    pub settings: Arc<ProvisioningSettings>,
    /// Looks at instances for the wait steps, through the poller when one runs.
    pub watch: InstanceWatch,
    /// The account's RDS quotas, cached.
    pub quotas: QuotaWatch,
}

impl AwsContext {
    pub fn new(cloud: Cloud, settings: ProvisioningSettings) -> Self {
        let pace = WaitPace {
            poll_interval: settings.rds_poll_interval,
            base: settings.wait_base,
            max: settings.wait_max,
        };
        AwsContext {
            watch: InstanceWatch::new(cloud.clone(), pace),
            quotas: QuotaWatch::new(cloud.clone(), settings.quota_refresh),
            cloud,
            settings: Arc::new(settings),
        }
    }

    /// `<prefix><tenant>`: the instance of a tenant whose record names none (tenants of
    /// earlier releases before they were ready, and new instances of the cold path).
    pub fn derived_instance_id(&self, tenant: &str) -> String {
        self.settings.instance_id(tenant)
    }

    /// The tenant's instance: the one its record names (a standby it took over keeps its
    /// identifier), else the derived one.
    pub fn instance_of(&self, tenant: &Tenant) -> String {
        tenant
            .db_instance_id
            .clone()
            .unwrap_or_else(|| self.derived_instance_id(&tenant.id))
    }

    /// The instance of the job's tenant, as its record names it now (see
    /// [`AwsContext::instance_of`]).
    pub async fn recorded_instance<A, D>(
        &self,
        cx: &StepContext<'_, A, D>,
    ) -> Result<String, StepError> {
        let id = cx.tenant()?;
        let tenant = record::get(cx.db, id)
            .await
            .map_err(|e| StepError::retry("control_db", format!("reading the tenant: {e}")))?;
        Ok(match tenant {
            Some(tenant) => self.instance_of(&tenant),
            None => self.derived_instance_id(id),
        })
    }

    /// The instance of the job's tenant, resolved once per job: `kept`, what the job's data
    /// kept of an earlier step's resolution, else the one the tenant's record names (a job of
    /// an earlier release kept none, and resolves it here as it did at every step).
    pub async fn job_instance<A, D>(
        &self,
        cx: &StepContext<'_, A, D>,
        kept: Option<&str>,
    ) -> Result<String, StepError> {
        match kept {
            Some(id) => Ok(id.to_string()),
            None => self.recorded_instance(cx).await,
        }
    }

    /// The jobs a rollback of this job may delete an instance or secret for: the ones that
    /// created it. This job, and for a standby (its own jobs, or a tenant's claim of it) the
    /// standby's jobs.
    pub async fn creating_jobs<A, D>(
        &self,
        cx: &StepContext<'_, A, D>,
        standby: Option<&StandbyId>,
    ) -> Result<Vec<String>, StepError> {
        let mut jobs = vec![cx.job.id.to_string()];
        if let Some(standby) = standby {
            let theirs = queue::jobs_naming_standby(cx.db, STANDBY_KIND, standby).await?;
            for id in theirs {
                jobs.push(id.to_string());
            }
        }
        Ok(jobs)
    }

    /// The instance `id` as RDS describes it now, when it passes the ownership rule for
    /// `owner`: every change reconcile makes is preceded by this look. A missing instance is
    /// `instance_gone`; one that fails the rule, `foreign_resource` naming the tag.
    pub async fn owned_instance(
        &self,
        owner: &Owner,
        id: &str,
    ) -> Result<cloud::rds::InstanceInfo, StepError> {
        let info = self
            .cloud
            .describe_db_instance(id)
            .await
            .during("looking at the instance")?
            .ok_or_else(|| {
                StepError::fail("instance_gone", format!("instance {id} does not exist"))
            })?;
        owner
            .check(&info.tags)
            .map_err(|why| owner.foreign(&format!("instance {id}"), &why))?;
        Ok(info)
    }

    pub fn secret_name(&self, tenant: &str) -> String {
        self.settings.secret_name(tenant)
    }

    /// The names of the alarms of `instance` (they are named after it).
    pub fn alarm_names(&self, instance: &str) -> Vec<String> {
        cloud::alarms::instance_alarms(instance, None, 0.0)
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

/// Whose resources a workflow works on: a tenant's, a warm-pool standby's, or (while a tenant
/// takes a standby over) both: the instance may still carry the standby's tags, the standby's
/// secret may still exist. Resources are the owner's when they pass the ownership rule
/// ([`ownership::check`]) for one of them in this deployment's environment.
#[derive(Debug, Clone)]
pub struct Owner {
    pub tenant: Option<String>,
    pub standby: Option<String>,
    /// The instance identifier.
    pub instance: String,
    /// The Secrets Manager name of the master credentials.
    pub secret: String,
    /// This deployment's `TENANTD_ENVIRONMENT`.
    pub environment: String,
}

impl Owner {
    /// The job's tenant, with the instance its record names; `standby`: the standby it claimed.
    pub async fn tenant<A, D>(
        t: &AwsContext,
        cx: &StepContext<'_, A, D>,
        standby: Option<&str>,
    ) -> Result<Owner, StepError> {
        let instance = t.recorded_instance(cx).await?;
        Owner::tenant_on(t, cx, standby, instance)
    }

    /// The job's tenant on `instance`, resolved already (see [`AwsContext::job_instance`]).
    pub fn tenant_on<A, D>(
        t: &AwsContext,
        cx: &StepContext<'_, A, D>,
        standby: Option<&str>,
        instance: String,
    ) -> Result<Owner, StepError> {
        let tenant = cx.tenant()?;
        Ok(Owner {
            tenant: Some(tenant.to_string()),
            standby: standby.map(str::to_string),
            instance,
            secret: t.secret_name(tenant),
            environment: t.settings.environment.clone(),
        })
    }

    /// A standby of the warm pool (its id is its instance identifier).
    pub fn standby(t: &AwsContext, id: &str) -> Owner {
        Owner {
            tenant: None,
            standby: Some(id.to_string()),
            instance: id.to_string(),
            secret: t.settings.pool_secret_name(id),
            environment: t.settings.environment.clone(),
        }
    }

    /// Whether tags make a resource this owner's: `Ok`, or the tag that differs (for the
    /// tenant, when the owner is both).
    pub fn check(&self, tags: &Tags) -> Result<(), Mismatch> {
        let env = self.environment.as_str();
        let as_standby = self
            .standby
            .as_deref()
            .map(|s| ownership::check(tags, env, Holder::Standby(s)));
        match self.tenant.as_deref() {
            Some(tenant) => match ownership::check(tags, env, Holder::Tenant(tenant)) {
                Ok(()) => Ok(()),
                Err(_) if as_standby == Some(Ok(())) => Ok(()),
                Err(e) => Err(e),
            },
            None => as_standby.unwrap_or(Err(Mismatch {
                key: cloud::TAG_STANDBY,
                expected: String::new(),
                actual: None,
            })),
        }
    }

    /// Whether tags make a resource this owner's.
    pub fn owns(&self, tags: &Tags) -> bool {
        self.check(tags).is_ok()
    }

    /// The error of a step that found `what` (e.g. "instance saas-acme") not to be the
    /// owner's: nothing was done to it.
    pub fn foreign(&self, what: &str, why: &Mismatch) -> StepError {
        StepError::fail(
            "foreign_resource",
            format!(
                "{what} is not tagged as {} in environment {:?} ({why}); left untouched",
                self.whose(),
                self.environment
            ),
        )
    }

    /// The tags the owner's resources carry: a tenant's, else the standby's.
    pub fn tags(&self, t: &AwsContext, tier: &str) -> Tags {
        match (&self.tenant, &self.standby) {
            (Some(tenant), _) => t.tags(tenant, tier),
            (None, standby) => vec![
                (
                    cloud::TAG_STANDBY.into(),
                    standby.clone().unwrap_or_default(),
                ),
                (cloud::TAG_TIER.into(), tier.into()),
                (
                    cloud::TAG_ENVIRONMENT.into(),
                    t.settings.environment.clone(),
                ),
                (cloud::TAG_MANAGED_BY.into(), cloud::MANAGER.into()),
            ],
        }
    }

    /// Whose a resource should be, in messages: `this tenant's` or `this standby's`.
    pub fn whose(&self) -> &'static str {
        match self.tenant {
            Some(_) => "this tenant's",
            None => "this standby's",
        }
    }

    /// Names the owner in messages: `tenant acme` or `standby saas-pool-x`.
    pub fn describe(&self) -> String {
        match (&self.tenant, &self.standby) {
            (Some(tenant), _) => format!("tenant {tenant}"),
            (None, Some(standby)) => format!("warm-pool standby {standby}"),
            (None, None) => "nobody".into(),
        }
    }
}

/// Writes the tenant's row inside a transaction fenced by the job's lease: a worker whose lease
/// was taken over writes nothing.
pub async fn update_tenant<A, D>(
    cx: &StepContext<'_, A, D>,
    update: TenantUpdate<'_>,
) -> Result<(), StepError> {
    update_tenant_telling(cx, update, None).await
}

/// [`update_tenant`] with the lifecycle event `told` about the tenant as the update leaves it,
/// written in the same fenced transaction (last: it holds the events' lock to the commit).
pub async fn update_tenant_telling<A, D>(
    cx: &StepContext<'_, A, D>,
    update: TenantUpdate<'_>,
    told: Option<EventType>,
) -> Result<(), StepError> {
    let tenant = cx.tenant()?;
    let mut conn = cx.db.acquire().await.map_err(queue::QueueError::from)?;
    let mut tx = queue::fenced(&mut conn, cx.lease).await?;
    let failed =
        |e: sqlx::Error| StepError::retry("control_db", format!("updating the tenant: {e}"));
    record::update(&mut tx, tenant, update)
        .await
        .map_err(failed)?;
    if let Some(kind) = told {
        let job = serde_json::json!({"job_id": cx.job.id});
        events::record_about(&mut tx, kind, tenant, job)
            .await
            .map_err(failed)?;
    }
    tx.commit().await.map_err(queue::QueueError::from)?;
    Ok(())
}
