//! The bodies of `/v1/audit`: the list's parameters and a page of events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub use crate::audit::Event;

/// `GET /v1/audit` query. Any other parameter, or one given twice, is refused (400
/// `invalid_query`).
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events about this tenant.
    #[param(min_length = 3, max_length = 40, pattern = "^[a-z](-?[a-z0-9])*$")]
    pub tenant: Option<String>,
    /// Only events of the token of this name.
    #[param(min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9._-]*$")]
    pub token: Option<String>,
    /// Only events at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (the id of its last event).
    #[param(minimum = 1, maximum = 9007199254740991_i64)]
    pub cursor: Option<i64>,
}

/// The largest audit cursor the document allows (2^53 - 1, exact in every JSON client).
pub const MAX_AUDIT_CURSOR: i64 = 9_007_199_254_740_991;

/// A page of audit events, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<Event>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<i64>,
}
