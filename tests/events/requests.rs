//! The events of the changes that need no AWS, against a real control PostgreSQL: a request
//! that takes over a warm-pool standby, the reconciler's findings (told once per change), and a
//! rollout's start and end.

use std::path::Path;

use serde_json::json;
use tenantd::config::Tiers;
use tenantd::rollouts::conduct;
use tenantd::rollouts::requests::{self as rollouts, NewRollout};
use tenantd::store::events::{self, Event, EventFilter};
use tenantd::store::tenants::Difference;
use tenantd::tenants::{self, Findings, TenantStatus};

use crate::support::{fresh_db, insert_tenant};

async fn all(pool: &sqlx::PgPool) -> Vec<Event> {
    events::page(pool, 0, &EventFilter::default(), 1000)
        .await
        .unwrap()
}

fn types(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

#[tokio::test]
async fn a_request_that_takes_over_a_standby_tells_requested_then_pool_claimed() {
    let db = fresh_db().await;
    sqlx::query(
        "INSERT INTO pool_standbys (id, tier, state, secret_arn, endpoint_host, endpoint_port,
             engine_version, available_at)
         VALUES ('pool-0123456789ab', 'starter', 'available', 'arn:secret:standby',
                 'standby.example', 5432, '16.8', now())",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let (_, _, created) =
        tenants::request_provision(&db.pool, &Tiers::defaults(), "acme", "starter", 3)
            .await
            .unwrap();
    assert!(created);
    let told = all(&db.pool).await;
    assert_eq!(
        types(&told),
        ["tenantd.tenant.requested", "tenantd.pool.claimed"]
    );
    assert_eq!(told[1].data["standby"], "pool-0123456789ab");
    assert_eq!(told[1].data["from_pool"], true);
    assert_eq!(told[1].subject, "acme");
    // The standby's secret ARN is not a public field.
    assert!(!serde_json::to_string(&told).unwrap().contains("arn:secret"));
}

#[tokio::test]
async fn findings_tell_drift_found_and_lost_once_each() {
    let db = fresh_db().await;
    insert_tenant(&db.pool, "drifty").await;
    sqlx::query(
        "UPDATE tenants SET status = 'ready', db_instance_id = 'saas-drifty',
             endpoint_host = 'db.example', endpoint_port = 5432, secret_arn = 'arn:secret:x'
         WHERE id = 'drifty'",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let drift = vec![Difference {
        field: "backup_retention".into(),
        expected: "7".into(),
        actual: "1".into(),
    }];
    let found = |status: TenantStatus, drift: Vec<Difference>| Findings {
        drift,
        status,
        error: (status == TenantStatus::Lost).then(|| "the instance is gone".to_string()),
        engine_version: None,
        pending_maintenance: None,
        ca_certificate: None,
    };
    for findings in [
        found(TenantStatus::Ready, drift.clone()),
        // The same drift again is not news.
        found(TenantStatus::Ready, drift.clone()),
        found(TenantStatus::Lost, Vec::new()),
        found(TenantStatus::Lost, Vec::new()),
    ] {
        let seen = tenants::get(&db.pool, "drifty").await.unwrap().unwrap();
        let (recorded, _) =
            tenants::record_findings(&db.pool, "drifty", seen.updated_at, &findings, None)
                .await
                .unwrap();
        assert!(recorded);
    }
    let told = all(&db.pool).await;
    assert_eq!(
        types(&told),
        ["tenantd.tenant.drift_found", "tenantd.tenant.lost"]
    );
    assert_eq!(
        told[0].data["drift"],
        json!([{"field": "backup_retention", "expected": "7", "actual": "1"}])
    );
    assert_eq!(told[1].data["status"], "lost");
    assert_eq!(told[1].data["error"], "the instance is gone");
}

#[tokio::test]
async fn a_rollout_tells_started_and_succeeded_about_itself() {
    let db = fresh_db().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tenant-migrations");
    let catalog = tenantd::tenant_db::catalog(&dir).await.unwrap();
    let rollout = rollouts::create(
        &db.pool,
        None,
        &Tiers::defaults(),
        &catalog,
        &tenantd::rollouts::Offers::none(),
        &NewRollout::default(),
    )
    .await
    .unwrap();
    // No tenant to migrate: the first round ends it.
    let round = conduct::advance(&db.pool, 3).await.unwrap();
    assert_eq!(
        round.state.map(|s| s.as_str()),
        Some("succeeded"),
        "{round:?}"
    );
    let told = all(&db.pool).await;
    assert_eq!(
        types(&told),
        ["tenantd.rollout.started", "tenantd.rollout.succeeded"]
    );
    for event in &told {
        assert_eq!(event.subject, rollout.id.to_string());
        assert_eq!(event.tenant_id, None);
        assert_eq!(event.data["id"], json!(rollout.id));
    }
    assert_eq!(told[0].data["state"], "running");
    assert_eq!(told[1].data["state"], "succeeded");
}
