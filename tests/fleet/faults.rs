//! Flaky AWS: the daemon talks to LocalStack through a proxy that fails a random share of all
//! calls (HTTP 503, connections closed unanswered, before or after LocalStack did the work) and
//! holds some for seconds. With 20% failing, 30 tenants all end ready, each with exactly its
//! resources; a step that always fails ends its tenant failed and rolled back.

use crate::support;

use std::time::Duration;

use support::fleet::*;
use support::proxy::{Failure, FaultProxy};
use support::stack::*;
use tenantd::tenants::TenantStatus;

const TENANTS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_tenants_end_ready_with_a_fifth_of_aws_calls_failing() {
    let stack = Stack::new().await;
    let prefix = run_prefix("flaky");
    let proxy = FaultProxy::start(&stack_endpoint()).await;
    proxy.chaos(0xf1a4, 0.20, 0.03, Duration::from_secs(3));
    let base = test_env(
        &stack.db,
        &[
            ("AWS_ENDPOINT_URL", proxy.url.as_str()),
            ("TENANTD_MAX_ATTEMPTS", "8"),
        ],
    );
    let mut daemon = spawn_serve(&daemon_env(&base, "flaky", &[]));
    let tenants = provision_many(&stack, &prefix, TENANTS, 5).await;
    let statuses = settled(&stack, Duration::from_secs(300)).await;
    kill9(&mut daemon).await;
    let tally = proxy.calm();
    // The faults really happened: about a fifth of the calls failed, some were slowed.
    assert!(tally.calls >= 100, "{tally:?}");
    assert!(
        f64::from(tally.failed) >= 0.12 * f64::from(tally.calls)
            && f64::from(tally.failed) <= 0.28 * f64::from(tally.calls),
        "{tally:?}"
    );
    assert!(tally.slowed > 0, "{tally:?}");
    assert!(
        statuses.values().all(|s| *s == TenantStatus::Ready),
        "{statuses:?}"
    );
    let ids: Vec<String> = tenants.into_iter().map(|(t, _)| t).collect();
    assert_exactly_provisioned(&stack, &prefix, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_always_fails_ends_the_tenant_failed_and_rolled_back() {
    let stack = Stack::new().await;
    let prefix = run_prefix("doomed");
    let proxy = FaultProxy::start(&stack_endpoint()).await;
    proxy.chaos(0xd00d, 0.20, 0.0, Duration::ZERO);
    proxy.fail_with("PutMetricAlarm", u32::MAX, Failure::Unavailable);
    let base = test_env(&stack.db, &[("AWS_ENDPOINT_URL", proxy.url.as_str())]);
    let mut daemon = spawn_serve(&daemon_env(&base, "doomed", &[]));
    let tenants = provision_many(&stack, &prefix, 2, 5).await;
    let statuses = settled(&stack, Duration::from_secs(180)).await;
    kill9(&mut daemon).await;
    proxy.calm();
    for (tenant, _) in &tenants {
        assert_eq!(statuses[tenant], TenantStatus::Failed);
        let row = stack.tenant(tenant).await;
        assert!(
            row.error.as_deref().unwrap_or_default().contains("alarm"),
            "{:?}",
            row.error
        );
        stack.assert_nothing_left(tenant).await;
    }
    // The history says what kind of failure it was, in the class the metrics use too.
    let classes: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT DISTINCT step, error_class FROM job_history WHERE outcome IN ('retrying', 'compensating')",
    )
    .fetch_all(stack.pool())
    .await
    .unwrap();
    assert!(
        classes.contains(&("alarms".to_string(), Some("aws_unavailable".to_string()))),
        "{classes:?}"
    );
}
