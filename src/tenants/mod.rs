//! Tenants: the record of each one in the control database, and the requests that start its
//! workflows.

pub mod listing;
pub mod record;
pub mod requests;
pub mod snapshots;

pub use listing::{TENANT_JOBS, page_with_jobs, with_latest_job};
pub use record::{
    CensusRow, Difference, Tenant, TenantError, TenantFilter, TenantStatus, census, get, list,
    validate_id,
};
pub use requests::{
    Deletion, Findings, Power, RepairRequest, record_findings, request_attach, request_deprovision,
    request_power, request_provision, request_retry, request_tier_change,
};
