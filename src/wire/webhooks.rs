//! The bodies of `/v1/webhooks`: a subscription as asked for and as shown (never its key, but
//! once: in the answer that made it or rotated it), the delivery log, a replay.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::store::webhooks::deliveries::LogLine;
use crate::store::webhooks::subscriptions::Subscription;

/// `POST /v1/webhooks`: send these event types to this URL.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where events are POSTed: `https`, resolving to public addresses only (unless the
    /// server sets `TENANTD_WEBHOOK_ALLOW_PRIVATE=true`).
    #[schema(example = "https://signup.example.com/hooks/tenantd")]
    pub url: String,
    /// Event types delivered, e.g. `tenantd.tenant.ready`; empty or absent: every type.
    #[serde(default)]
    pub types: Vec<String>,
    /// Free text for people, up to 500 characters.
    #[serde(default)]
    pub description: String,
}

/// A subscription as the API shows it (never its signing key).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    pub id: Uuid,
    pub url: String,
    /// Empty: every type.
    pub types: Vec<String>,
    pub description: String,
    pub enabled: bool,
    /// Why it is disabled (by a request, or after failing for `TENANTD_WEBHOOK_DISABLE_AFTER`).
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Raised by each rotation of the signing key.
    pub key_version: i32,
    /// Until then the previous key signs too (a rotation's overlap).
    pub previous_key_until: Option<DateTime<Utc>>,
    /// Deliveries have failed since then, with no success.
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The token that made it.
    pub created_by: Option<String>,
    /// Deliveries not yet made (or being retried).
    pub pending: i64,
}

impl WebhookView {
    pub fn new(s: &Subscription, pending: i64) -> Self {
        WebhookView {
            id: s.id,
            url: s.url.clone(),
            types: s.types.clone(),
            description: s.description.clone(),
            enabled: s.enabled,
            disabled_reason: s.disabled_reason.clone(),
            disabled_at: s.disabled_at,
            key_version: s.key_version,
            previous_key_until: s.previous_until,
            failing_since: s.failing_since,
            created_at: s.created_at,
            created_by: s.created_by.clone(),
            pending,
        }
    }
}

/// A subscription with its signing key: answered once, when it is made or its key rotated.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The signing key in the Standard Webhooks form `whsec_<base64>`; not shown again.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

/// `GET /v1/webhooks`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// A subscription id in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WebhookPath {
    /// The subscription's id (a UUID).
    pub id: Uuid,
}

/// `GET /v1/webhooks/{id}/deliveries` query.
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttempt {
    /// The event delivered (`webhook-id`).
    pub event_id: i64,
    /// 1 for the first attempt of this delivery.
    pub attempt: i32,
    /// The receiver's status; null when it did not answer.
    pub status_code: Option<i32>,
    /// Why it failed (a timeout, a refused connection, a status other than 2xx).
    pub error: Option<String>,
    pub duration_ms: i32,
    pub at: DateTime<Utc>,
}

impl From<&LogLine> for DeliveryAttempt {
    fn from(l: &LogLine) -> Self {
        DeliveryAttempt {
            event_id: l.event_id,
            attempt: l.attempt,
            status_code: l.status_code,
            error: l.error.clone(),
            duration_ms: l.duration_ms,
            at: l.at,
        }
    }
}

/// The delivery log, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryAttempt>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<i64>,
}

/// `POST /v1/webhooks/{id}/replay` query.
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReplayQuery {
    /// An event id (delivered again from that one on) or an RFC 3339 time (events from then).
    #[param(example = "2026-12-08T00:00:00Z")]
    pub since: String,
}

/// What a replay queued.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Replayed {
    /// Events delivered again, in order, after those already on their way.
    pub replayed: u64,
}
