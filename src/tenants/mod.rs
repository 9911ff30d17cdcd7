//! Tenants: the record of each one in the control database, and the requests that start its
//! workflows.

pub mod listing;
pub mod record;
pub mod requests;
pub mod snapshots;

pub use listing::{TENANT_JOBS, page_with_jobs, with_latest_job};
pub use record::{
    CensusRow, Difference, PendingMaintenance, Tenant, TenantError, TenantFilter, TenantStatus,
    census, get, list, validate_id,
};
pub use requests::{
    Deletion, Findings, Power, RepairRequest, record_findings, record_findings_in, request_attach,
    request_attach_by, request_deprovision, request_deprovision_by, request_power,
    request_power_by, request_provision, request_provision_by, request_retry, request_retry_by,
    request_tier_change, request_tier_change_by,
};
