//! Tenants: the record of each one in the control database, and the requests that start its
//! workflows.

pub mod record;
pub mod requests;

pub use record::{Difference, Tenant, TenantError, TenantStatus, get, list, validate_id};
pub use requests::{
    Deletion, Findings, Power, RepairRequest, record_findings, request_deprovision, request_power,
    request_provision, request_retry, request_tier_change,
};
