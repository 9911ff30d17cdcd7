//! `/v1/events`: the lifecycle events after a cursor, by type and tenant, for viewers: a JSON
//! page for pollers, or with `Accept: text/event-stream` a stream of Server-Sent Events that
//! resumes after `Last-Event-ID`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::ApiQuery;
use super::state::AppState;
use crate::store::events::{self, EventFilter, EventType};
use crate::tenant_id::TenantId;
use crate::wire::MAX_PAGE;
use crate::wire::error::ErrorBody;
use crate::wire::events::{DEFAULT_EVENTS_PAGE, EventPage, EventsQuery, MAX_EVENT_CURSOR};

/// How often an idle stream sends a comment line, so that proxies keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Lifecycle events after `since`, oldest first: a JSON page, or a stream of Server-Sent
/// Events.
///
/// Every event is a CloudEvents 1.0 document; ids increase in commit order, so a reader that
/// asks for the events after the last id it saw misses none and sees none twice. With
/// `Accept: text/event-stream` the answer is a stream: each event as `id: <id>` and
/// `data: <CloudEvent>`, new events as they commit, a comment line every 15 s when idle; a
/// client that reconnects with `Last-Event-ID` gets exactly the events after it, and one that
/// gives neither it nor `since` gets the events committed from its request on. Without, the
/// answer is a page of up to `limit` events and the cursor to poll with next. Events are kept
/// for `TENANTD_EVENT_RETENTION` (30 days by default). Only the parameters below are accepted:
/// any other, or one given twice, is refused with 400 `invalid_query`.
#[utoipa::path(get, path = "/v1/events", tag = "events", operation_id = "list_events",
    security(("bearer" = [])),
    params(EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, nullable = false, pattern = "^[0-9]{1,15}$",
            description = "Events after this event id (what an EventSource sends when it \
            reconnects); takes precedence over `since`.")),
    responses(
        (status = 200, description = "A page (JSON), or the stream (`text/event-stream`, \
            each event's `data` a CloudEvent)", content(
            (EventPage = "application/json"),
            (String = "text/event-stream"))),
        (status = 400, description = "`invalid_query`: an unknown or repeated parameter, a \
            number that is not one", body = ErrorBody),
        (status = 422, description = "`unknown_event_type`: `types` names a type there is \
            not; `invalid_cursor`: `since` or `Last-Event-ID` is not an event id (0 to \
            2^53-1); `invalid_tenant_id`: `tenant` is not a tenant id; `invalid_limit`: \
            `limit` outside 1..1000", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let filter = filter(&query)?;
    let mut after = cursor(query.since)?;
    let limit = query.limit.unwrap_or(DEFAULT_EVENTS_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidLimit(format!(
            "limit must be from 1 to {MAX_PAGE}, got {limit}"
        )));
    }
    let resumed = headers.get("last-event-id");
    if let Some(last) = resumed {
        let last = last.to_str().ok().and_then(|l| l.trim().parse().ok());
        after = cursor(Some(last.ok_or_else(|| {
            ApiError::InvalidCursor("Last-Event-ID must be an event id".into())
        })?))?;
    }
    let streaming = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    if streaming {
        if resumed.is_none() && query.since.is_none() {
            // A live tail: what commits from now on. Read before the answer's head goes out,
            // so a client that looks at the state after the head misses nothing in between.
            after = events::last_id(&state.db).await?;
        }
        let stream = state.events.stream(after, filter);
        return Ok(Sse::new(stream)
            .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
            .into_response());
    }
    let page = events::page(&state.db, after, &filter, limit).await?;
    let next_cursor = page.last().map_or(after, |e| e.id);
    Ok(Json(EventPage {
        events: page.iter().map(|e| state.events.document(e)).collect(),
        next_cursor,
    })
    .into_response())
}

fn cursor(since: Option<i64>) -> Result<i64, ApiError> {
    match since {
        None => Ok(0),
        Some(c) if (0..=MAX_EVENT_CURSOR).contains(&c) => Ok(c),
        Some(c) => Err(ApiError::InvalidCursor(format!(
            "since must be an event id (0 to {MAX_EVENT_CURSOR}), got {c}"
        ))),
    }
}

fn filter(query: &EventsQuery) -> Result<EventFilter, ApiError> {
    let mut types = Vec::new();
    // Empty: every type; otherwise each name one of the types (an empty one is none).
    let names = query.types.as_deref().filter(|t| !t.is_empty());
    for name in names.into_iter().flat_map(|t| t.split(',')) {
        let kind: EventType = name.parse().map_err(|_| {
            ApiError::UnknownEventType(format!(
                "unknown event type {:?}; known: {}",
                name.chars().take(64).collect::<String>(),
                EventType::ALL.map(EventType::as_str).join(", ")
            ))
        })?;
        types.push(kind);
    }
    let tenant = match query.tenant.as_deref() {
        Some(t) => Some(TenantId::parse(t)?.to_string()),
        None => None,
    };
    Ok(EventFilter { types, tenant })
}
