//! The body of every error the API answers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error the API answers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code clients match on (`invalid_tenant_id`, `unknown_tier`, ...).
    pub code: String,
    /// For people; may change.
    pub message: String,
}
