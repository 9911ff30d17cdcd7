//! The provisioning workflow's types: its steps, its arguments and the data its steps record.
//!
//! credentials → instance → wait_available → secret_endpoint → migrate → backups → alarms →
//! protect → mark_ready; any of them failing for good (or a cancel) → undo_alarms →
//! undo_instance → undo_secret → mark_failed. A tenant that took over a warm-pool standby
//! starts at claim → claim_secret → migrate → ... (same steps and rollback from there).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::standbys::StandbyId;
use crate::workflow::aws::AwsContext;
use crate::workflow::instance_watch::PollerSeen;
use crate::workflow::removal::Removal;
use crate::workflow::step::{InstanceWait, Step, steps};

/// Walks one tenant from nothing to a ready, monitored, backed-up database.
pub struct Provision(pub AwsContext);

/// The job kind of provisioning (`jobs.kind`).
pub const KIND: &str = "provision";

steps! {
    /// The steps of a provisioning job.
    pub enum ProvisionStep {
        /// A master password in Secrets Manager.
        Credentials = "credentials",
        /// CreateDBInstance (or adopt the tenant's own).
        Instance = "instance",
        /// Until the instance is available.
        WaitAvailable = "wait_available",
        /// The endpoint into the secret.
        SecretEndpoint = "secret_endpoint",
        /// The tenant schema.
        Migrate = "migrate",
        Backups = "backups",
        Alarms = "alarms",
        /// Deletion protection, where the tier asks for it.
        Protect = "protect",
        MarkReady = "mark_ready",
        /// (Claims) The standby instance tagged as the tenant's.
        Claim = "claim",
        /// (Claims) The standby's credentials become the tenant's secret; the standby's goes.
        ClaimSecret = "claim_secret",
        UndoAlarms = "undo_alarms",
        UndoInstance = "undo_instance",
        UndoSecret = "undo_secret",
        MarkFailed = "mark_failed",
    }
}

impl Step for ProvisionStep {
    /// Every forward step (and a cancel at any of them) leads into the rollback, whose undo
    /// steps do nothing for what was never created. A rollback step that fails for good goes
    /// on where that is safe, and the tenant always ends `failed` with the whole story.
    fn compensation(self) -> Option<Self> {
        use ProvisionStep::*;
        match self {
            UndoAlarms => Some(UndoInstance),
            // The secret stays while the instance may remain: it holds the only password.
            UndoInstance | UndoSecret => Some(MarkFailed),
            MarkFailed => None,
            _ => Some(UndoAlarms),
        }
    }

    fn waits_for(self) -> Option<InstanceWait> {
        match self {
            ProvisionStep::WaitAvailable => Some(InstanceWait::Available),
            ProvisionStep::UndoInstance => Some(InstanceWait::Gone),
            _ => None,
        }
    }
}

/// What a provisioning job is asked to do (`jobs.args`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvisionArgs {
    /// The tier's name, as configured.
    pub tier: String,
    /// The warm-pool standby this job takes over (a tenant's claim) or builds (a standby's
    /// own job); absent in jobs of earlier releases and of the cold path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<StandbyId>,
}

/// What the steps of a provisioning job record as they go (`jobs.data`). Every field is
/// optional so that jobs written by earlier releases read as they are; field names are the
/// JSON keys those releases wrote and read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProvisionData {
    /// The tenant's secret, once created or found.
    pub secret_arn: Option<String>,
    /// The instance, once created or adopted.
    pub instance_id: Option<String>,
    /// The instance existed already (tagged as the tenant's) and was taken over.
    pub adopted: Option<bool>,
    /// When an adopted instance was given the secret's password.
    pub password_reset: Option<DateTime<Utc>>,
    /// When the wait for the instance began, and how often it looked.
    pub wait_started_at: Option<DateTime<Utc>>,
    pub wait_polls: u64,
    pub endpoint_host: Option<String>,
    pub endpoint_port: Option<i32>,
    pub available_at: Option<DateTime<Utc>>,
    /// The PostgreSQL version the instance got.
    pub engine_version: Option<String>,
    /// The storage the instance got, in GiB.
    pub storage_gib: Option<i32>,
    /// The backup retention the instance had when it became available, when it already had
    /// the tier's backup settings (the backups step then has nothing to change).
    pub backup_retention_seen: Option<i32>,
    /// The tenant schema version after the migrations.
    pub schema_version: Option<i64>,
    /// The migrations the database has, version → checksum (absent in jobs of earlier
    /// releases).
    pub applied_migrations: Option<std::collections::BTreeMap<String, String>>,
    /// The rollback's progress.
    #[serde(flatten)]
    pub removal: Removal,
    /// What the instance poller saw when it woke the job.
    pub poller_seen: Option<PollerSeen>,
    /// Set while the job waits for room in the account's quotas (cleared once created).
    pub quota_wait: Option<QuotaWait>,
}

/// Why and since when a job waits for quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaWait {
    pub since: DateTime<Utc>,
    pub reason: String,
}
