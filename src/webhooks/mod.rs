//! Webhooks and the EventBridge bus: subscriptions (their signing keys in Secrets Manager),
//! Standard Webhooks signing, the URL rule, the delivery client, and the loop every process
//! runs that fans events out to subscriptions and delivers them in order per tenant, at least
//! once, with retries (`dispatch.rs`); the EventBridge sender (`eventbridge.rs`).

pub mod client;
pub mod dispatch;
pub mod eventbridge;
pub mod keys;
pub mod signing;
pub mod subscriptions;
pub mod urls;

pub use dispatch::Dispatcher;
pub use keys::Keys;
pub use urls::UrlError;

use uuid::Uuid;

/// What a webhook request or a delivery round can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error(
        "unknown event type {0:?}; known types: tenantd.tenant.ready, ... (see GET /openapi.json)"
    )]
    UnknownEventType(String),
    #[error("{0}")]
    Invalid(String),
    #[error("webhook subscription {0} not found")]
    NotFound(Uuid),
    /// Secrets Manager failed; the message names no key.
    #[error("signing keys: {0}")]
    Keys(String),
    /// This process has no AWS clients (a test server of the API alone).
    #[error("webhooks are not available on this server")]
    Unavailable,
    #[error("control database: {0}")]
    Database(#[from] sqlx::Error),
}
