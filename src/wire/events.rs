//! The bodies of `/v1/events`: the CloudEvents 1.0 document every event is sent as (in the
//! stream, the JSON page, webhooks and EventBridge alike), the query, and a page for pollers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::events::Event;

/// The CloudEvents version of [`CloudEvent`].
pub const SPEC_VERSION: &str = "1.0";
/// The media type of every event's `data`.
pub const DATA_CONTENT_TYPE: &str = "application/json";

/// One event as a CloudEvents 1.0 JSON document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CloudEvent {
    /// Always `1.0`.
    #[schema(example = "1.0")]
    pub specversion: String,
    /// The event's id, a decimal integer increasing in commit order (the stream's cursor and
    /// `Last-Event-ID`); unique per control database, so a receiver drops duplicates by it.
    #[schema(example = "1042")]
    pub id: String,
    /// `tenantd/<TENANTD_ENVIRONMENT>`.
    #[schema(example = "tenantd/production")]
    pub source: String,
    /// What happened, e.g. `tenantd.tenant.ready` (see the event types).
    #[serde(rename = "type")]
    #[schema(example = "tenantd.tenant.ready")]
    pub kind: String,
    /// What it is about: the tenant's id (tenant and pool events), the job's id (`job.failed`)
    /// or the rollout's id (rollout events).
    #[schema(example = "acme-corp")]
    pub subject: String,
    /// When the change was written (RFC 3339).
    pub time: DateTime<Utc>,
    /// Always `application/json`.
    #[schema(example = "application/json")]
    pub datacontenttype: String,
    /// The public fields of what changed (see the event types); never a password or a secret.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl CloudEvent {
    /// The document of `event`, from the tenantd of `environment`.
    pub fn new(event: &Event, environment: &str) -> Self {
        CloudEvent {
            specversion: SPEC_VERSION.to_string(),
            id: event.id.to_string(),
            source: source(environment),
            kind: event.kind.clone(),
            subject: event.subject.clone(),
            time: event.time,
            datacontenttype: DATA_CONTENT_TYPE.to_string(),
            data: event.data.clone(),
        }
    }
}

/// The CloudEvents `source` of the tenantd of `environment`.
pub fn source(environment: &str) -> String {
    format!("tenantd/{environment}")
}

/// A page of events for pollers, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<CloudEvent>,
    /// Pass as `since` for the next page: the id of the last event of this page, or the `since`
    /// given when the page is empty (poll again with it).
    pub next_cursor: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_becomes_a_cloudevent_with_a_string_id() {
        let event = Event {
            id: 42,
            kind: "tenantd.tenant.ready".into(),
            subject: "acme".into(),
            tenant_id: Some("acme".into()),
            time: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            data: serde_json::json!({"id": "acme", "status": "ready"}),
        };
        let doc = serde_json::to_value(CloudEvent::new(&event, "prod")).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({
                "specversion": "1.0", "id": "42", "source": "tenantd/prod",
                "type": "tenantd.tenant.ready", "subject": "acme",
                "time": "2023-11-14T22:13:20Z", "datacontenttype": "application/json",
                "data": {"id": "acme", "status": "ready"}
            })
        );
    }
}
