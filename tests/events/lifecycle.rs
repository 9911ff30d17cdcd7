//! The events of a scripted lifecycle on the local stack (LocalStack and the local RDS, a real
//! worker in this process, nothing mocked): a tenant provisioned, moved to another tier,
//! suspended, resumed and deprovisioned, and another whose provisioning fails. Exactly their
//! events, in order per tenant, no id twice, and the tenant's password in none of them.

use std::time::Duration;

use serde_json::json;
use tenantd::cloud::Cloud;
use tenantd::config::Tiers;
use tenantd::queue::JobState;
use tenantd::store::events::{self, Event, EventFilter};
use tenantd::tenants::{self, Deletion, Power};
use tenantd::workflow::reconcile::Apply;

use crate::support::stack::*;

const TIMEOUT: Duration = Duration::from_secs(180);

async fn events_of(stack: &Stack, tenant: &str) -> Vec<Event> {
    let filter = EventFilter {
        types: Vec::new(),
        tenant: Some(tenant.to_string()),
    };
    events::page(stack.pool(), 0, &filter, 1000).await.unwrap()
}

fn types(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_lifecycle_and_a_failed_provisioning_tell_exactly_their_events_in_order() {
    let stack = Stack::new().await;
    let settings = settings(&test_env(&stack.db, &[]));
    let cloud = Cloud::from_sdk_config(&sdk_config(None).await);
    let (stop, worker) = stack.spawn_worker(&settings, cloud);
    let tiers = Tiers::defaults();
    let tenant = tenant_id("events");
    let broken = tenant_id("events-fail");

    // The failing one: RDS refuses its instance, which is not worth retrying.
    rds_fault(json!({
        "operation": "CreateDBInstance", "count": 1, "code": "InvalidParameterCombination",
        "status": 400, "match": { "DBInstanceIdentifier": format!("saas-{broken}") },
    }))
    .await;
    let failing = stack.provision(&broken, "starter").await;

    let job = stack.provision(&tenant, "starter").await;
    let job = stack.finished(job, TIMEOUT).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let secret = stack
        .secret_json(&format!("saas/tenant/{tenant}/database"))
        .await;
    let password = secret["password"].as_str().unwrap().to_string();
    let ready = stack.tenant(&tenant).await;

    let (_, change, _) =
        tenants::request_tier_change(stack.pool(), &tiers, &tenant, "pro", Apply::Immediately, 3)
            .await
            .unwrap();
    let change = stack.finished(change.unwrap().id, TIMEOUT).await;
    assert_eq!(change.state, JobState::Succeeded, "{:?}", change.error);
    for power in [Power::Suspend, Power::Resume] {
        let (_, job, _) = tenants::request_power(stack.pool(), &tenant, power, 3)
            .await
            .unwrap();
        let job = stack.finished(job.id, TIMEOUT).await;
        assert_eq!(job.state, JobState::Succeeded, "{power:?}: {:?}", job.error);
    }
    let (_, gone, _) = tenants::request_deprovision(
        stack.pool(),
        &tiers,
        &tenant,
        Deletion::FORCE_NO_SNAPSHOT,
        3,
    )
    .await
    .unwrap();
    let gone = stack.finished(gone.id, TIMEOUT).await;
    assert_eq!(gone.state, JobState::Succeeded, "{:?}", gone.error);
    let failed = stack.finished(failing, TIMEOUT).await;
    assert_eq!(failed.state, JobState::Failed);
    stop.cancel();
    worker.await.unwrap();

    let told = events_of(&stack, &tenant).await;
    assert_eq!(
        types(&told),
        [
            "tenantd.tenant.requested",
            "tenantd.tenant.ready",
            "tenantd.tenant.tier_changed",
            "tenantd.tenant.suspended",
            "tenantd.tenant.resumed",
            "tenantd.tenant.deleted",
        ]
    );
    assert!(told.iter().all(|e| e.subject == tenant));
    let statuses: Vec<&str> = told
        .iter()
        .map(|e| e.data["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "provisioning",
            "ready",
            "ready",
            "suspended",
            "ready",
            "deleted"
        ]
    );
    // `ready` tells where to connect, and the tier change the new tier.
    assert_eq!(
        told[1].data["endpoint"],
        json!({"host": ready.endpoint_host, "port": ready.endpoint_port})
    );
    assert_eq!(told[1].data["engine_version"], json!(ready.engine_version));
    assert_eq!(told[2].data["tier"], "pro");
    assert_eq!(told[1].data["job_id"], json!(job.id));

    let failing_told = events_of(&stack, &broken).await;
    assert_eq!(
        types(&failing_told),
        [
            "tenantd.tenant.requested",
            "tenantd.tenant.failed",
            "tenantd.job.failed",
        ]
    );
    assert!(failing_told[1].data["error"].as_str().is_some());
    assert_eq!(failing_told[2].subject, failing.to_string());
    assert_eq!(failing_told[2].data["kind"], "provision");

    // Every event of the database: ids unique and increasing, the password in none.
    let all = events::page(stack.pool(), 0, &EventFilter::default(), 1000)
        .await
        .unwrap();
    assert_eq!(all.len(), told.len() + failing_told.len());
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    for event in &all {
        let text = serde_json::to_string(event).unwrap();
        assert!(
            !text.contains(&password),
            "event {} holds the password",
            event.id
        );
        assert!(
            !text.contains("secret_arn"),
            "event {} names the secret",
            event.id
        );
    }
}
