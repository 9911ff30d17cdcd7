//! The outbox itself: ids increase in commit order under many concurrent writers (a reader
//! paging `id > last` sees every event once, never a smaller id after a larger one), an event
//! is written only with its transaction, and retention deletes only what is old.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use tenantd::maintenance::{EventPruner, lead_once};
use tenantd::store::events::{self, EventFilter, EventType, NewEvent};

use crate::support::fresh_db;

fn event(tenant: &str, n: usize) -> NewEvent {
    NewEvent::tenant(EventType::TenantRequested, tenant, json!({ "n": n }))
}

/// Writes `rounds` transactions of 1 to 3 events each; a write in a transaction that also does
/// other work first, and stays open a moment after the events (as a real change does).
async fn writer(pool: PgPool, w: usize, rounds: usize) -> usize {
    let mut written = 0;
    for r in 0..rounds {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SELECT pg_sleep(random() * 0.002)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let batch: Vec<NewEvent> = (0..1 + (w + r) % 3)
            .map(|i| event(&format!("writer-{w}"), r * 10 + i))
            .collect();
        events::record(&mut tx, &batch).await.unwrap();
        // The commit comes a little later: without the lock, a later id could commit first.
        sqlx::query("SELECT pg_sleep(random() * 0.002)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        written += batch.len();
    }
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_paging_after_the_last_id_sees_every_event_once_in_commit_order() {
    let db = fresh_db().await;
    let writers: Vec<_> = (0..16)
        .map(|w| tokio::spawn(writer(db.pool.clone(), w, 40)))
        .collect();
    let mut seen = Vec::new();
    let mut last = 0;
    let mut done = false;
    loop {
        // Whether the writers had all finished before this read: then it is the last.
        let finished = writers.iter().all(|w| w.is_finished());
        let page = events::page(&db.pool, last, &EventFilter::default(), 500)
            .await
            .unwrap();
        for e in &page {
            assert!(e.id > last, "id {} after {last}", e.id);
            last = e.id;
            seen.push(e.id);
        }
        if done {
            break;
        }
        done = finished && page.is_empty();
        if page.is_empty() {
            tokio::task::yield_now().await;
        }
    }
    let mut written = 0;
    for w in writers {
        written += w.await.unwrap();
    }
    let all: Vec<i64> = sqlx::query_scalar("SELECT id FROM events ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(all.len(), written);
    assert_eq!(
        seen, all,
        "the reader missed ids that committed after larger ones"
    );
    let distinct: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), seen.len());
}

#[tokio::test]
async fn events_of_a_rolled_back_change_are_not_written_and_a_batch_keeps_its_order() {
    let db = fresh_db().await;
    let mut tx = db.pool.begin().await.unwrap();
    events::record(&mut tx, &[event("gone", 0)]).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(events::last_id(&db.pool).await.unwrap(), 0);

    let mut conn = db.pool.acquire().await.unwrap();
    let batch: Vec<NewEvent> = (0..5).map(|n| event("kept", n)).collect();
    events::record(&mut conn, &batch).await.unwrap();
    let page = events::page(&db.pool, 0, &EventFilter::default(), 10)
        .await
        .unwrap();
    let ns: Vec<i64> = page.iter().map(|e| e.data["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, [0, 1, 2, 3, 4]);
    assert!(page.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(page[0].event_type(), Some(EventType::TenantRequested));
    assert_eq!(page[0].tenant_id.as_deref(), Some("kept"));
}

#[tokio::test]
async fn retention_deletes_the_events_older_than_it_and_nothing_else() {
    let db = fresh_db().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let batch: Vec<NewEvent> = (0..6).map(|n| event("old-and-new", n)).collect();
    events::record(&mut conn, &batch).await.unwrap();
    // Three of them are 40 days old, one is 29.
    sqlx::query(
        "UPDATE events SET time = now() - CASE WHEN data->>'n' IN ('0', '1', '2')
             THEN interval '40 days' WHEN data->>'n' = '3' THEN interval '29 days'
             ELSE interval '0' END",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let pruner = EventPruner::new(db.pool.clone(), Some(Duration::from_secs(30 * 86400)));
    lead_once(&db.pool, "test", &pruner).await.unwrap();
    let left: Vec<i64> = sqlx::query_scalar("SELECT (data->>'n')::bigint FROM events ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, [3, 4, 5]);
    // Kept forever: nothing goes.
    sqlx::query("UPDATE events SET time = now() - interval '400 days'")
        .execute(&db.pool)
        .await
        .unwrap();
    lead_once(&db.pool, "test", &EventPruner::new(db.pool.clone(), None))
        .await
        .unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(count, 3);
}
