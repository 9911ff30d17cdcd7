//! The bodies of `/v1/reports`: the fleet's engine majors and CAs, and who is past end of
//! support.

pub use crate::tenants::engine_report::{CaCount, EngineReport, MajorCount, PastEndOfSupport};
