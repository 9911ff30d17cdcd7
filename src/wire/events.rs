//! The bodies of `/v1/events`: the CloudEvents 1.0 document every event is sent as (in the
//! stream, the JSON page, webhooks and EventBridge alike), the query, and a page for pollers.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use uuid::Uuid;

use crate::store::events::{Event, EventType};
use crate::store::tenants::TenantStatus;

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
    /// What happened, e.g. `tenantd.tenant.ready`.
    #[serde(rename = "type")]
    #[schema(value_type = EventTypeName, example = "tenantd.tenant.ready")]
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
    /// The public fields of what changed, never a password or a secret: `TenantEventData` for
    /// the `tenantd.tenant.*` types and `tenantd.pool.claimed`, `JobFailedData` for
    /// `tenantd.job.failed`, `RolloutEventData` for the `tenantd.rollout.*` types.
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

/// The name of an event's type (the CloudEvents `type`).
pub struct EventTypeName;

impl PartialSchema for EventTypeName {
    fn schema() -> RefOr<Schema> {
        let names: Vec<serde_json::Value> =
            EventType::ALL.iter().map(|t| t.as_str().into()).collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(names))
            .description(Some(
                "requested: a tenant was asked for (or asked for again); ready: its database \
                 takes connections; failed: provisioning or deprovisioning gave up (`error` \
                 says why); tier_changed, suspended, resumed: a change reached what it asked \
                 for; drift_found: the reconciler found settings that differ (`drift`); \
                 drift_repaired: a repair ran; lost: the instance is gone; deleted: the \
                 tenant's database is gone; job.failed: a job ended failed; rollout.started, \
                 rollout.halted, rollout.succeeded: a schema rollout began, stopped on failures, \
                 reached every tenant; pool.claimed: a new tenant took over a warm-pool standby \
                 (`standby`).",
            ))
            .into()
    }
}

impl ToSchema for EventTypeName {
    fn name() -> Cow<'static, str> {
        "EventType".into()
    }
}

/// A tenant's endpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EndpointData {
    pub host: String,
    pub port: i32,
}

/// The `data` of the `tenantd.tenant.*` and `tenantd.pool.claimed` events: the tenant as the
/// change left it (its public fields only; the password stays in Secrets Manager).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TenantEventData {
    pub id: String,
    pub tier: String,
    pub status: TenantStatus,
    pub engine_version: Option<String>,
    /// Where to connect, once ready.
    pub endpoint: Option<EndpointData>,
    pub schema_version: Option<i64>,
    pub storage_gib: Option<i32>,
    pub pending_tier: Option<String>,
    pub from_pool: bool,
    pub note: Option<String>,
    /// Why it failed, is lost or degraded.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The job whose final write this was (the workflows' events).
    pub job_id: Option<Uuid>,
    /// `drift_found`: the settings that differ.
    pub drift: Option<Vec<crate::store::tenants::Difference>>,
    /// `pool.claimed`: the standby instance the tenant took over.
    pub standby: Option<String>,
}

/// The `data` of `tenantd.job.failed`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobFailedData {
    pub id: Uuid,
    /// The workflow, e.g. `provision`.
    pub kind: String,
    pub tenant_id: Option<String>,
    /// The step that failed last.
    pub step: String,
    pub attempt: i32,
    pub error: Option<String>,
    pub error_class: Option<String>,
}

/// The `data` of the `tenantd.rollout.*` events.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RolloutEventData {
    pub id: Uuid,
    /// `schema`, `engine_major`, `engine_minor`, `ca_certificate` or `maintenance`.
    pub kind: String,
    /// A schema rollout's tenant-schema version.
    pub target_version: Option<i64>,
    /// The target of the other kinds (a version, a CA).
    pub target: Option<String>,
    /// `immediately` or `maintenance_window`, where the kind has it.
    pub apply: Option<String>,
    /// `running`, `halted` or `succeeded`.
    pub state: String,
    pub stages: Vec<Vec<String>>,
    pub canary: i32,
    pub concurrency: i32,
    pub max_failures: i32,
    /// Why it halted.
    pub reason: Option<String>,
}

/// `GET /v1/events` query. Any other parameter, or one given twice, is refused (400
/// `invalid_query`).
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events after this id. The default: 0 (all that are kept) for the page, the latest
    /// event's id (a live tail) for the stream. The stream's `Last-Event-ID` header takes
    /// precedence.
    #[param(minimum = 0, maximum = 9007199254740991_i64)]
    pub since: Option<i64>,
    /// Only events of these types, comma-separated (e.g.
    /// `tenantd.tenant.ready,tenantd.tenant.failed`); empty for all.
    #[param(
        pattern = "^$|^(tenantd\\.tenant\\.requested|tenantd\\.tenant\\.ready|tenantd\\.tenant\\.failed|tenantd\\.tenant\\.tier_changed|tenantd\\.tenant\\.suspended|tenantd\\.tenant\\.resumed|tenantd\\.tenant\\.drift_found|tenantd\\.tenant\\.drift_repaired|tenantd\\.tenant\\.lost|tenantd\\.tenant\\.deleted|tenantd\\.job\\.failed|tenantd\\.rollout\\.started|tenantd\\.rollout\\.halted|tenantd\\.rollout\\.succeeded|tenantd\\.pool\\.claimed)(,(tenantd\\.tenant\\.requested|tenantd\\.tenant\\.ready|tenantd\\.tenant\\.failed|tenantd\\.tenant\\.tier_changed|tenantd\\.tenant\\.suspended|tenantd\\.tenant\\.resumed|tenantd\\.tenant\\.drift_found|tenantd\\.tenant\\.drift_repaired|tenantd\\.tenant\\.lost|tenantd\\.tenant\\.deleted|tenantd\\.job\\.failed|tenantd\\.rollout\\.started|tenantd\\.rollout\\.halted|tenantd\\.rollout\\.succeeded|tenantd\\.pool\\.claimed))*$"
    )]
    pub types: Option<String>,
    /// Only events about this tenant.
    #[param(min_length = 3, max_length = 40, pattern = "^[a-z](-?[a-z0-9])*$")]
    pub tenant: Option<String>,
    /// Page size of the JSON page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// Default page size of `GET /v1/events`.
pub const DEFAULT_EVENTS_PAGE: i64 = 100;
/// The largest cursor the document allows (2^53 - 1, exact in every JSON client).
pub const MAX_EVENT_CURSOR: i64 = 9_007_199_254_740_991;

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
    fn the_documented_pattern_of_types_names_exactly_the_event_types() {
        let alternatives: Vec<String> = EventType::ALL
            .iter()
            .map(|t| t.as_str().replace('.', "\\."))
            .collect();
        let one = alternatives.join("|");
        let expected = format!("^$|^({one})(,({one}))*$");
        let params = EventsQuery::into_params(|| None);
        let types = params
            .iter()
            .find(|p| p.name == "types")
            .expect("the types parameter");
        let schema = serde_json::to_value(&types.schema).unwrap();
        assert_eq!(schema["pattern"], expected, "{schema}");
    }

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
