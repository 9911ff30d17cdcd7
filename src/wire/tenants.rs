//! The bodies of `/v1/tenants`: a provisioning and a tier change as asked for, the list's and
//! the deletion's parameters, and a tenant as the API shows it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::jobs::JobView;
use crate::queue::Job;
use crate::store::tenants::Tenant;
pub use crate::store::tenants::{Difference, PendingMaintenance, TenantStatus};
use crate::workflow::reconcile;

/// The pattern of a tenant id (3 to 40 characters): lowercase letters, digits and single inner
/// hyphens, a letter first, so that `<prefix><id>` is a valid RDS instance identifier.
pub const TENANT_ID_PATTERN: &str = "^[a-z](-?[a-z0-9])*$";

/// `POST /v1/tenants`: provision a tenant's database.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// The tenant's id: 3 to 40 lowercase letters, digits and single hyphens, a letter first,
    /// no hyphen last.
    #[schema(min_length = 3, max_length = 40, pattern = "^[a-z](-?[a-z0-9])*$")]
    pub id: String,
    /// One of the configured tiers (the document served lists them).
    pub tier: String,
}

/// `PATCH /v1/tenants/{id}`: move a ready tenant to another tier.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeTenant {
    /// One of the configured tiers.
    pub tier: String,
    /// When the instance takes the change: `immediately` (default) or in its
    /// `maintenance_window`.
    pub apply: Option<Apply>,
}

/// `POST /v1/tenants/{id}/upgrade`: move a ready tenant to a new PostgreSQL major.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeTenant {
    /// The major version to move to, e.g. `"17"`: one RDS lists as a valid upgrade target of
    /// the tenant's version.
    #[schema(pattern = "^[1-9][0-9]{0,2}$")]
    pub target_version: String,
    /// When production moves to the upgraded copy: `immediately` (default) or in the
    /// tenant's `maintenance_window`.
    pub apply: Option<Apply>,
}

/// When a tier change (or an engine upgrade's switchover) takes effect on the instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Apply {
    /// At once (the instance stays usable; a class change restarts it, a Multi-AZ one fails
    /// over).
    #[default]
    Immediately,
    /// In the instance's next maintenance window; the tenant records the new tier once RDS
    /// has accepted the change.
    MaintenanceWindow,
}

impl From<Apply> for reconcile::Apply {
    fn from(apply: Apply) -> Self {
        match apply {
            Apply::Immediately => reconcile::Apply::Immediately,
            Apply::MaintenanceWindow => reconcile::Apply::MaintenanceWindow,
        }
    }
}

/// A tenant id in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TenantPath {
    /// The tenant's id.
    #[param(min_length = 3, max_length = 40, pattern = "^[a-z](-?[a-z0-9])*$")]
    pub id: String,
}

/// `GET /v1/tenants` query. Any other parameter, or one given twice, is refused (400
/// `invalid_query`).
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only tenants in this status.
    pub status: Option<TenantStatus>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page: the last tenant id it held, so a tenant id (3 to 40
    /// characters of the id pattern).
    #[param(min_length = 3, max_length = 40, pattern = "^[a-z](-?[a-z0-9])*$")]
    pub cursor: Option<String>,
    /// Only tenants whose schema version is below this one (tenants never migrated count as
    /// version 0).
    pub schema_version_below: Option<i64>,
    /// Only tenants on this engine version: a major (`16`: any 16.x) or an exact version
    /// (`16.9`).
    #[param(pattern = "^[0-9]{1,3}(\\.[0-9]{1,4})?$")]
    pub engine_version: Option<String>,
    /// Only tenants whose instance's certificate is issued by this CA (`rds-ca-rsa4096-g1`).
    #[param(min_length = 3, max_length = 64, pattern = "^[a-z0-9-]+$")]
    pub ca_certificate: Option<String>,
}

/// `DELETE /v1/tenants/{id}` query. Any other parameter, or one given twice, is refused (400
/// `invalid_query`).
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Take a final snapshot before the instance goes: `true` or `false` (default true).
    pub final_snapshot: Option<bool>,
    /// With `final_snapshot=false`: go without one even on a tier with deletion protection
    /// (default false).
    pub force: Option<bool>,
}

/// Where a tenant's database answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Endpoint {
    pub host: String,
    pub port: i32,
}

/// A tenant as the API shows it, with its latest job. Never a password: the control database
/// holds none. A deleted tenant stays readable, with `status: "deleted"`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TenantView {
    pub id: String,
    pub tier: String,
    pub status: TenantStatus,
    /// The RDS instance identifier, as recorded: `<prefix><id>`, or the identifier of the
    /// warm-pool standby the tenant took over (set from the claim on; for a tenant created
    /// cold, once ready).
    pub db_instance_id: Option<String>,
    /// The instance was a warm-pool standby the tenant took over.
    #[serde(default)]
    pub from_pool: bool,
    pub endpoint: Option<Endpoint>,
    /// The Secrets Manager secret with the master credentials.
    pub secret_arn: Option<String>,
    /// The PostgreSQL version the instance runs (e.g. `16.8`), as RDS last described it: a
    /// newer minor that RDS applied by itself (automatic minor upgrades, maintenance) shows
    /// here once the reconciler has seen it.
    pub engine_version: Option<String>,
    /// RDS's pending maintenance actions for the instance (`db-upgrade`,
    /// `ca-certificate-rotation`, `system-update`, ...), as the reconciler last read them
    /// (empty: none; absent: not read yet).
    #[serde(default)]
    pub pending_maintenance: Option<Vec<PendingMaintenance>>,
    /// The CA the instance's certificate is issued by (`CACertificateIdentifier`), as the
    /// reconciler last described it or a CA rotation recorded it (absent: not known yet).
    #[serde(default)]
    pub ca_certificate: Option<String>,
    /// The tenant schema version applied (the newest migration's version).
    pub schema_version: Option<i64>,
    /// The tier a change in progress moves the tenant to (it stays usable meanwhile).
    pub pending_tier: Option<String>,
    /// The storage the instance has allocated, in GiB (RDS storage only grows: after a
    /// downgrade it may exceed the tier's).
    pub storage_gib: Option<i32>,
    /// What the last change could not do as asked.
    pub note: Option<String>,
    /// What the reconciler last found different from the desired state (empty: nothing;
    /// absent: it has not looked yet).
    pub drift: Option<Vec<Difference>>,
    /// When the reconciler last looked.
    pub checked_at: Option<DateTime<Utc>>,
    /// Why the tenant failed, or why its last change did.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub job: Option<JobView>,
}

impl TenantView {
    pub fn new(t: Tenant, job: Option<&Job>) -> Self {
        let endpoint = match (t.endpoint_host, t.endpoint_port) {
            (Some(host), Some(port)) => Some(Endpoint { host, port }),
            _ => None,
        };
        TenantView {
            id: t.id,
            tier: t.tier,
            status: t.status,
            db_instance_id: t.db_instance_id,
            from_pool: t.from_pool,
            endpoint,
            secret_arn: t.secret_arn,
            engine_version: t.engine_version,
            pending_maintenance: t.pending_maintenance.map(|p| p.0),
            ca_certificate: t.ca_certificate,
            schema_version: t.schema_version,
            pending_tier: t.pending_tier,
            storage_gib: t.storage_gib,
            note: t.note,
            drift: t.drift.map(|d| d.0),
            checked_at: t.checked_at,
            error: t.error,
            created_at: t.created_at,
            updated_at: t.updated_at,
            job: job.map(JobView::from),
        }
    }
}

/// What a provisioning or deprovisioning request answers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Requested {
    pub tenant: TenantView,
    pub job: JobView,
}

/// What a tier change answers: the tenant, and the job that changes it (none when the
/// tenant is on that tier already).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Changed {
    pub tenant: TenantView,
    pub job: Option<JobView>,
}

/// A page of tenants in id order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Page {
    pub tenants: Vec<TenantView>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}
