//! An account's RDS quota is a passing condition: tenants that do not fit wait durably, with
//! the reason in their history, and go on in request order when capacity frees up. On the local
//! stack, in an account of the test's own whose DB instance quota is 3.

use crate::support;

use std::time::Duration;

use serde_json::json;
use support::rds::{Control, config_for_account, rds_in_account, unique_account};
use support::stack::*;
use support::wait_for;
use tenantd::cloud::Cloud;
use tenantd::queue::{self, JobState, Outcome};
use tenantd::tenants::{self, Deletion, TenantStatus};
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(120);

/// The reason the job's history gives for its latest wait at `instance`, if it waits for quota.
async fn quota_reason(stack: &Stack, job: Uuid) -> Option<String> {
    let history = queue::history(stack.pool(), job).await.unwrap();
    let last = history.last()?;
    (last.step == "instance" && last.error_class.as_deref() == Some("quota_exceeded"))
        .then(|| last.error.clone().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenants_beyond_the_instance_quota_wait_with_the_reason_and_go_on_in_request_order() {
    let account = unique_account();
    let (status, body) = Control::new()
        .post(
            "/quotas",
            json!({ "account": account, "region": "us-east-1", "DBInstances": 3 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let stack = Stack::new().await;
    let settings = settings(&test_env(
        &stack.db,
        &[
            ("TENANTD_QUOTA_REFRESH", "1s"),
            ("TENANTD_MAX_ATTEMPTS", "8"),
        ],
    ));
    let cloud = Cloud::from_sdk_config(&config_for_account(&account).await);
    let (stop, worker) = stack.spawn_worker(&settings, cloud.clone());
    let tiers = tenantd::config::Tiers::defaults();
    let prefix = tenant_id("quota");
    let mut jobs = Vec::new();
    for i in 0..5 {
        let tenant = format!("{prefix}-{i}");
        let (_, job, _) = tenants::request_provision(stack.pool(), &tiers, &tenant, "starter", 8)
            .await
            .unwrap();
        jobs.push((tenant, job.id));
    }

    // Three fit; two wait, saying why.
    let (ready, waiting) = wait_for("three ready, two waiting for quota", TIMEOUT, || async {
        let mut ready = Vec::new();
        let mut waiting = Vec::new();
        for (tenant, job) in &jobs {
            if stack.tenant(tenant).await.status == TenantStatus::Ready {
                ready.push(tenant.clone());
            } else if let Some(reason) = quota_reason(&stack, *job).await {
                waiting.push((tenant.clone(), *job, reason));
            }
        }
        (ready.len() == 3 && waiting.len() == 2).then_some((ready, waiting))
    })
    .await;
    for (tenant, job, reason) in &waiting {
        // From the quota figures ("DB instances 3/3"), or from RDS refusing the create.
        assert!(
            reason == "waiting for quota: DB instances 3/3"
                || reason == "waiting for quota: DB Instance quota exceeded",
            "{tenant}: {reason}"
        );
        // A durable wait: the step released its worker (it may be looking again right now, a
        // new run of the same step, so the history says it, not the row's state of the moment).
        let history = queue::history(stack.pool(), *job).await.unwrap();
        let quota_waits: Vec<_> = history
            .iter()
            .filter(|h| h.error_class.as_deref() == Some("quota_exceeded"))
            .collect();
        assert!(!quota_waits.is_empty());
        assert!(
            quota_waits.iter().all(|h| h.outcome == Outcome::Waiting),
            "a durable wait, never a retry: {quota_waits:?}"
        );
        let row = queue::get_job(stack.pool(), *job).await.unwrap().unwrap();
        assert!(
            matches!(row.state, JobState::Waiting | JobState::Running),
            "{:?}",
            row.state
        );
        assert_eq!(row.attempt, 0, "waiting for quota uses no attempt");
    }
    let rds = rds_in_account(&account).await;
    let instances = rds.describe_db_instances().send().await.unwrap();
    assert_eq!(instances.db_instances().len(), 3);

    // One tenant goes: the earlier of the two waiting requests takes its place, the later
    // one keeps waiting.
    let order = |t: &str| jobs.iter().position(|(j, _)| j == t);
    let (first, second) = if order(&waiting[0].0) < order(&waiting[1].0) {
        (&waiting[0], &waiting[1])
    } else {
        (&waiting[1], &waiting[0])
    };
    let (_, gone, _) = tenants::request_deprovision(
        stack.pool(),
        &tiers,
        &ready[0],
        Deletion::FORCE_NO_SNAPSHOT,
        5,
    )
    .await
    .unwrap();
    assert_eq!(
        stack.finished(gone.id, TIMEOUT).await.state,
        JobState::Succeeded
    );
    let done = stack.finished(first.1, TIMEOUT).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(stack.tenant(&first.0).await.status, TenantStatus::Ready);
    let still = quota_reason(&stack, second.1).await;
    assert!(
        still.is_some_and(|r| r.starts_with("waiting for quota")),
        "the later request still waits"
    );
    assert_eq!(
        stack.tenant(&second.0).await.status,
        TenantStatus::Provisioning
    );

    // Leave nothing billed in the account.
    let mut leaving = Vec::new();
    for tenant in ready.iter().skip(1).chain([&first.0]) {
        let (_, job, _) = tenants::request_deprovision(
            stack.pool(),
            &tiers,
            tenant,
            Deletion::FORCE_NO_SNAPSHOT,
            5,
        )
        .await
        .unwrap();
        leaving.push(job.id);
    }
    for job in leaving {
        assert_eq!(
            stack.finished(job, TIMEOUT).await.state,
            JobState::Succeeded
        );
    }
    // The last one got its turn too, and goes the same way.
    assert_eq!(
        stack.finished(second.1, TIMEOUT).await.state,
        JobState::Succeeded
    );
    let (_, job, _) = tenants::request_deprovision(
        stack.pool(),
        &tiers,
        &second.0,
        Deletion::FORCE_NO_SNAPSHOT,
        5,
    )
    .await
    .unwrap();
    assert_eq!(
        stack.finished(job.id, TIMEOUT).await.state,
        JobState::Succeeded
    );
    stop.cancel();
    worker.await.unwrap();
}
