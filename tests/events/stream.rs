//! `GET /v1/events` on a real server on a real port: the JSON page and its cursor, filters,
//! the Server-Sent Events stream resuming after `Last-Event-ID` and pushing new events as they
//! commit, the refusals of bad queries with their codes, and the roles.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tenantd::store::events::{self, EventType, NewEvent};

use crate::support::app::{TestApp, VIEWER_TOKEN, code, spawn_app, status_and_json};

const TIMEOUT: Duration = Duration::from_secs(20);

async fn record(app: &TestApp, batch: &[NewEvent]) {
    let mut conn = app.db.pool.acquire().await.unwrap();
    events::record(&mut conn, batch).await.unwrap();
}

fn tenant_event(kind: EventType, tenant: &str) -> NewEvent {
    NewEvent::tenant(kind, tenant, json!({ "id": tenant, "status": "x" }))
}

/// The five events of two tenants the tests read.
async fn five(app: &TestApp) -> Vec<i64> {
    record(
        app,
        &[
            tenant_event(EventType::TenantRequested, "acme"),
            tenant_event(EventType::TenantRequested, "globex"),
            tenant_event(EventType::TenantReady, "acme"),
            tenant_event(EventType::TenantFailed, "globex"),
            tenant_event(EventType::TenantSuspended, "acme"),
        ],
    )
    .await;
    let page = events::page(&app.db.pool, 0, &Default::default(), 10)
        .await
        .unwrap();
    page.iter().map(|e| e.id).collect()
}

fn ids(page: &Value) -> Vec<i64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn a_poller_pages_through_the_events_as_cloudevents_by_cursor_type_and_tenant() {
    let app = spawn_app().await;
    let all = five(&app).await;
    let (status, first) = app.get("/v1/events?limit=2").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(ids(&first), all[..2]);
    let doc = &first["events"][0];
    assert_eq!(doc["specversion"], "1.0");
    assert_eq!(doc["source"], "tenantd/test");
    assert_eq!(doc["type"], "tenantd.tenant.requested");
    assert_eq!(doc["subject"], "acme");
    assert_eq!(doc["datacontenttype"], "application/json");
    assert_eq!(doc["data"]["id"], "acme");
    assert!(doc["time"].as_str().unwrap().contains('T'));
    let next = first["next_cursor"].as_i64().unwrap();
    assert_eq!(next, all[1]);
    let (_, rest) = app.get(&format!("/v1/events?since={next}")).await;
    assert_eq!(ids(&rest), all[2..]);
    // An empty page keeps the cursor.
    let end = rest["next_cursor"].as_i64().unwrap();
    let (_, empty) = app.get(&format!("/v1/events?since={end}")).await;
    assert_eq!(ids(&empty), Vec::<i64>::new());
    assert_eq!(empty["next_cursor"].as_i64(), Some(end));

    let (_, acme) = app.get("/v1/events?tenant=acme").await;
    assert_eq!(ids(&acme), [all[0], all[2], all[4]]);
    let (_, ends) = app
        .get("/v1/events?types=tenantd.tenant.ready,tenantd.tenant.failed")
        .await;
    assert_eq!(ids(&ends), [all[2], all[3]]);
    let (_, both) = app
        .get("/v1/events?types=tenantd.tenant.ready&tenant=globex")
        .await;
    assert_eq!(ids(&both), Vec::<i64>::new());
}

#[tokio::test]
async fn bad_queries_are_refused_with_their_codes_and_the_viewer_may_read() {
    let app = spawn_app().await;
    for (query, status, expected) in [
        ("types=tenantd.tenant.nope", 422, "unknown_event_type"),
        ("types=tenantd.tenant.ready,,x", 422, "unknown_event_type"),
        ("since=-1", 422, "invalid_cursor"),
        ("since=9007199254740992", 422, "invalid_cursor"),
        ("tenant=NOT_AN_ID", 422, "invalid_tenant_id"),
        ("limit=0", 422, "invalid_limit"),
        ("limit=1001", 422, "invalid_limit"),
        ("since=abc", 400, "invalid_query"),
        ("what=1", 400, "invalid_query"),
        ("since=1&since=2", 400, "invalid_query"),
    ] {
        let (got, body) = app.get(&format!("/v1/events?{query}")).await;
        assert_eq!((got, code(&body)), (status, expected), "{query}: {body}");
    }
    let response = app
        .request(Method::GET, "/v1/events")
        .header("accept", "text/event-stream")
        .header("last-event-id", "twelve")
        .send()
        .await
        .unwrap();
    let (got, body) = status_and_json(response).await;
    assert_eq!((got, code(&body)), (422, "invalid_cursor"), "{body}");

    let viewer = app
        .http
        .get(format!("{}/v1/events", app.url))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(viewer.status(), 200);
    let anonymous = app
        .http
        .get(format!("{}/v1/events", app.url))
        .send()
        .await
        .unwrap();
    let (got, body) = status_and_json(anonymous).await;
    assert_eq!((got, code(&body)), (401, "unauthorized"));
}

/// A Server-Sent Events reader: the (id, data) of each event as it comes.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    async fn open(app: &TestApp, query: &str, last_event_id: Option<i64>) -> SseReader {
        let mut request = app
            .http
            .get(format!("{}/v1/events{query}", app.url))
            .bearer_auth(VIEWER_TOKEN)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        SseReader {
            response,
            buffer: String::new(),
        }
    }

    async fn next(&mut self) -> (i64, Value) {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let frame: String = self.buffer.drain(..end + 2).collect();
                    let mut id = None;
                    let mut data = String::new();
                    for line in frame.lines() {
                        if let Some(v) = line.strip_prefix("id:") {
                            id = Some(v.trim().parse::<i64>().unwrap());
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.trim_start());
                        }
                    }
                    // A comment (the keep-alive) has neither.
                    if let Some(id) = id {
                        return (id, serde_json::from_str(&data).unwrap());
                    }
                    continue;
                }
                let chunk = self
                    .response
                    .chunk()
                    .await
                    .unwrap()
                    .expect("the stream ended");
                self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        })
        .await
        .expect("an event within the timeout")
    }
}

#[tokio::test]
async fn the_stream_resumes_after_last_event_id_and_pushes_new_events_as_they_commit() {
    let app = spawn_app().await;
    let all = five(&app).await;
    // Resuming after the second event: exactly the third, fourth and fifth, in order.
    let mut stream = SseReader::open(&app, "", Some(all[1])).await;
    for expected in &all[2..] {
        let (id, doc) = stream.next().await;
        assert_eq!(id, *expected);
        assert_eq!(doc["id"], expected.to_string());
        assert_eq!(doc["specversion"], "1.0");
    }
    // New events come as they commit; one of another tenant is filtered out of the other.
    let mut acme = SseReader::open(&app, "?tenant=acme", Some(all[4])).await;
    record(&app, &[tenant_event(EventType::TenantResumed, "acme")]).await;
    record(&app, &[tenant_event(EventType::TenantDeleted, "globex")]).await;
    record(&app, &[tenant_event(EventType::TenantDeleted, "acme")]).await;
    let (sixth, doc) = stream.next().await;
    assert_eq!(doc["type"], "tenantd.tenant.resumed");
    let (seventh, doc) = stream.next().await;
    assert_eq!(
        (doc["type"].as_str(), doc["subject"].as_str()),
        (Some("tenantd.tenant.deleted"), Some("globex"))
    );
    let (eighth, _) = stream.next().await;
    assert!(all[4] < sixth && sixth < seventh && seventh < eighth);
    let (id, _) = acme.next().await;
    assert_eq!(id, sixth);
    let (id, doc) = acme.next().await;
    assert_eq!((id, doc["subject"].as_str()), (eighth, Some("acme")));

    // Without a cursor the stream is a live tail: only what commits after it opened.
    let mut tail = SseReader::open(&app, "", None).await;
    record(&app, &[tenant_event(EventType::TenantLost, "initech")]).await;
    let (id, doc) = tail.next().await;
    assert!(id > eighth);
    assert_eq!(doc["type"], "tenantd.tenant.lost");

    // `since` works for the stream too, and Last-Event-ID wins over it.
    let mut since = SseReader::open(&app, &format!("?since={seventh}"), None).await;
    assert_eq!(since.next().await.0, eighth);
    let mut both = SseReader::open(&app, "?since=0", Some(seventh)).await;
    assert_eq!(both.next().await.0, eighth);
}
