//! The command line's `--wait` on the event stream: it wakes at the tenant's event (with a
//! poll interval so long that only the event can end it in time), and it still ends when the
//! stream breaks or cannot be opened (it polls then).

use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;
use tenantd::cli::client::Client;
use tenantd::cli::wait::{self, Ended, Target};
use tenantd::store::events::{self, EventType, NewEvent};
use tenantd::tenant_id::TenantId;
use tenantd::wire::tenants::TenantStatus;
use tokio::task::JoinHandle;

use crate::support::app::{TOKEN, TestApp, spawn_app};
use crate::support::wait_for;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A tenant asked for through the API (no worker runs its job); its job's id.
async fn requested(app: &TestApp, id: &str) -> String {
    let (status, body) = app.create(id, "starter").await;
    assert_eq!(status, 202, "{body}");
    body["job"]["id"].as_str().unwrap().to_string()
}

fn follow(app: &TestApp, id: &str, job: String, interval: Duration) -> JoinHandle<Ended> {
    let client = Client::new(&app.url, SecretString::from(TOKEN)).unwrap();
    let id = TenantId::parse(id).unwrap();
    tokio::spawn(async move {
        wait::follow(
            &client,
            &id,
            &job,
            TenantStatus::Ready,
            interval,
            Target::Stderr,
        )
        .await
        .expect("the wait")
    })
}

/// Waits until the server listens for events: a stream was opened.
async fn streaming(app: &TestApp) {
    wait_for("a stream to be open", TIMEOUT, || async {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'",
        )
        .bind(&app.db.name)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        (listening > 0).then_some(())
    })
    .await;
}

/// What a finished provisioning leaves, with its event when `tell`.
async fn finish(app: &TestApp, id: &str, tell: bool) {
    app.finish_provisioning(id).await;
    if tell {
        let mut conn = app.db.pool.acquire().await.unwrap();
        let event = NewEvent::tenant(EventType::TenantReady, id, json!({ "id": id }));
        events::record(&mut conn, &[event]).await.unwrap();
    }
}

fn reached(ended: Ended) {
    match ended {
        Ended::Reached(t) => assert_eq!(t.status, TenantStatus::Ready),
        Ended::Failed(_, cause) => panic!("the wait failed: {cause}"),
    }
}

#[tokio::test]
async fn the_wait_wakes_at_the_tenants_event_not_at_a_poll() {
    let app = spawn_app().await;
    let job = requested(&app, "woken").await;
    // A poll an hour apart: only the event can end the wait within the timeout.
    let waiting = follow(&app, "woken", job, Duration::from_secs(3600));
    streaming(&app).await;
    finish(&app, "woken", true).await;
    let ended = tokio::time::timeout(TIMEOUT, waiting)
        .await
        .expect("the wait ends at the event")
        .unwrap();
    reached(ended);
}

#[tokio::test]
async fn the_wait_still_ends_when_the_stream_breaks_or_cannot_open() {
    let app = spawn_app().await;
    let job = requested(&app, "broken-stream").await;
    let second = requested(&app, "no-stream").await;
    // Broken while open: the stream's next read fails and ends it.
    let waiting = follow(&app, "broken-stream", job, Duration::from_millis(100));
    streaming(&app).await;
    sqlx::query("ALTER TABLE events RENAME TO events_away")
        .execute(&app.db.pool)
        .await
        .unwrap();
    finish(&app, "broken-stream", false).await;
    reached(
        tokio::time::timeout(TIMEOUT, waiting)
            .await
            .unwrap()
            .unwrap(),
    );

    // No stream at all (the API answers 500): the wait polls from the start.
    let waiting = follow(&app, "no-stream", second, Duration::from_millis(100));
    let (status, _) = app.get("/v1/events?limit=1").await;
    assert_eq!(status, 500);
    finish(&app, "no-stream", false).await;
    reached(
        tokio::time::timeout(TIMEOUT, waiting)
            .await
            .unwrap()
            .unwrap(),
    );
}
