//! The requests that start a tenant's workflows, one file each: provision it, deprovision it,
//! change its tier, upgrade its engine to a new major, suspend or resume it, re-attach it, retry its failed job, and the
//! reconciler's findings with their repair. Each is one transaction that checks what the
//! tenant is doing, updates its row (through [`crate::store::tenants`]) and enqueues the job
//! at the workflow's first step. The HTTP API and the console are thin layers over these (and
//! over the fleet's engine report, [`engine_report`]).

mod attach;
mod deprovision;
pub mod engine_report;
mod enqueue;
mod error;
mod findings;
pub mod listing;
mod power;
mod provision;
mod retry;
mod tier_change;
mod upgrade;

pub use attach::{request_attach, request_attach_by};
pub use deprovision::{Deletion, request_deprovision, request_deprovision_by};
pub use engine_report::{EngineReport, engine_report};
pub use error::TenantError;
pub use findings::{Findings, RepairRequest, record_findings, record_findings_in};
pub use listing::{TENANT_JOBS, page_with_jobs, with_latest_job};
pub use power::{Power, request_power, request_power_by};
pub use provision::{request_provision, request_provision_by};
pub use retry::{request_retry, request_retry_by};
pub use tier_change::{request_tier_change, request_tier_change_by};
pub use upgrade::{request_engine_upgrade, request_engine_upgrade_by};

pub use crate::store::tenants::{
    CensusRow, Difference, PendingMaintenance, Tenant, TenantFilter, TenantStatus, census, get,
    list,
};
