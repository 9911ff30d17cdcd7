//! The reconciler against LocalStack and real PostgreSQL, nothing mocked: changes made behind
//! tenantd's back through the SDK are reported as drift within a round and then repaired; a
//! deleted instance makes the tenant lost (nothing re-created); a suspended instance that RDS
//! started by itself is stopped again; a secret deleted out of band is restored or replaced.

use crate::support;

use std::time::Duration;

use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
use serde_json::json;
use support::stack::*;
use support::wait_for;
use tenantd::cloud::Cloud;
use tenantd::queue::{self, Job, JobState};
use tenantd::tenants::{self, Power, Tenant, TenantStatus};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const TIMEOUT: Duration = Duration::from_secs(120);

/// A worker (with maintenance) whose reconciler runs every second; `repair` says whether drift
/// gets repaired.
async fn worker(stack: &Stack, repair: bool) -> (CancellationToken, JoinHandle<()>) {
    let repair = repair.to_string();
    let env = test_env(
        &stack.db,
        &[
            ("TENANTD_RECONCILE_INTERVAL", "1s"),
            ("TENANTD_REPAIR_DRIFT", repair.as_str()),
        ],
    );
    let settings = settings(&env);
    let cloud = Cloud::from_sdk_config(&sdk_config(None).await);
    stack.spawn_worker(&settings, cloud)
}

async fn stop(worker: (CancellationToken, JoinHandle<()>)) {
    worker.0.cancel();
    worker.1.await.unwrap();
}

async fn ready(stack: &Stack, prefix: &str, tier: &str) -> String {
    let tenant = tenant_id(prefix);
    let job = stack.provision(&tenant, tier).await;
    let job = stack.finished(job, TIMEOUT).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    tenant
}

/// Waits until the tenant's row satisfies `check`.
async fn tenant_until(
    stack: &Stack,
    tenant: &str,
    what: &str,
    check: impl Fn(&Tenant) -> bool,
) -> Tenant {
    wait_for(what, TIMEOUT, || async {
        let t = stack.tenant(tenant).await;
        check(&t).then_some(t)
    })
    .await
}

/// Waits until the reconciler has looked at the tenant twice more (rounds are 1 s apart).
async fn two_more_rounds(stack: &Stack, tenant: &str, since: chrono::DateTime<chrono::Utc>) {
    tenant_until(stack, tenant, "two more rounds", |t| {
        t.checked_at
            .is_some_and(|c| c > since + chrono::Duration::milliseconds(1500))
    })
    .await;
}

fn drift_fields(t: &Tenant) -> Vec<String> {
    let mut fields: Vec<String> = t
        .drift
        .as_ref()
        .map(|d| d.0.iter().map(|d| d.field.clone()).collect())
        .unwrap_or_default();
    fields.sort();
    fields
}

/// The tenant's reconcile jobs, oldest first.
async fn reconcile_jobs(stack: &Stack, tenant: &str) -> Vec<Job> {
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE tenant_id = $1 AND kind = 'reconcile' ORDER BY created_at",
    )
    .bind(tenant)
    .fetch_all(stack.pool())
    .await
    .unwrap();
    let mut jobs = Vec::new();
    for id in ids {
        jobs.push(stack.job(id).await);
    }
    jobs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_behind_tenantds_back_are_reported_within_a_round_and_then_repaired() {
    let stack = Stack::new().await;
    let w = worker(&stack, false).await;
    let tenant = ready(&stack, "drift", "enterprise").await;
    let instance = format!("saas-{tenant}");
    let arn = stack
        .instance(&instance)
        .await
        .unwrap()
        .db_instance_arn()
        .unwrap()
        .to_string();

    // Behind tenantd's back: backups shortened, protection off, the Tier tag removed (an
    // ownership tag removed detaches the tenant instead: see below), one alarm deleted and the
    // other's threshold changed.
    stack
        .rds
        .modify_db_instance()
        .db_instance_identifier(&instance)
        .backup_retention_period(3)
        .deletion_protection(false)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    stack
        .rds
        .remove_tags_from_resource()
        .resource_name(&arn)
        .tag_keys("Tier")
        .send()
        .await
        .unwrap();
    stack
        .cloudwatch
        .delete_alarms()
        .alarm_names(format!("{instance}-high-cpu"))
        .send()
        .await
        .unwrap();
    stack
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(format!("{instance}-low-storage"))
        .namespace("AWS/RDS")
        .metric_name("FreeStorageSpace")
        .statistic(Statistic::Average)
        .comparison_operator(ComparisonOperator::LessThanThreshold)
        .threshold(1.0)
        .period(300)
        .evaluation_periods(1)
        .send()
        .await
        .unwrap();

    let expected = [
        "alarm:".to_string() + &instance + "-high-cpu",
        "alarm:".to_string() + &instance + "-low-storage",
        "backup_retention_days".into(),
        "deletion_protection".into(),
        "tag:Tier".into(),
    ];
    let found = tenant_until(&stack, &tenant, "the drift to be reported", |t| {
        drift_fields(t) == expected
    })
    .await;
    assert_eq!(found.status, TenantStatus::Ready);
    assert!(found.checked_at.is_some());
    let retention = found
        .drift
        .as_ref()
        .unwrap()
        .0
        .iter()
        .find(|d| d.field == "backup_retention_days")
        .unwrap()
        .clone();
    assert_eq!(
        (retention.expected.as_str(), retention.actual.as_str()),
        ("35", "3")
    );
    // The metrics count the tenants with drift per field, and the rounds. The round sets the
    // gauges once its findings are committed, so they may follow the row by a moment.
    let lines = [
        "tenantd_drift_tenants{field=\"backup_retention_days\"} 1",
        "tenantd_drift_tenants{field=\"alarm\"} 1",
        "tenantd_drift_tenants{field=\"tag\"} 1",
    ];
    let metrics = wait_for("the drift gauges", Duration::from_secs(30), || async {
        let metrics = tenantd::metrics::render(None).unwrap();
        lines
            .iter()
            .all(|line| metrics.lines().any(|l| l == *line))
            .then_some(metrics)
    })
    .await;
    assert!(
        metrics.contains("tenantd_reconcile_rounds_total "),
        "{metrics}"
    );
    // One DescribeDBInstances and one DescribePendingMaintenanceActions for the round.
    assert!(
        metrics.contains("tenantd_reconcile_round_aws_calls{service=\"rds\"} 2"),
        "{metrics}"
    );
    // Repairs are off: nothing was changed.
    assert!(reconcile_jobs(&stack, &tenant).await.is_empty());
    stop(w).await;

    // With repairs on, one job puts it all back.
    let w = worker(&stack, true).await;
    tenant_until(&stack, &tenant, "the drift to be repaired", |t| {
        t.drift.as_ref().is_some_and(|d| d.0.is_empty())
    })
    .await;
    let jobs = reconcile_jobs(&stack, &tenant).await;
    assert!(!jobs.is_empty());
    assert!(
        jobs.iter().all(|j| j.args.0["reason"] == "repair"),
        "{jobs:?}"
    );
    let last = jobs.last().unwrap();
    assert_eq!(last.state, JobState::Succeeded, "{:?}", last.error);
    let db = stack.instance(&instance).await.unwrap();
    assert_eq!(db.backup_retention_period(), Some(35));
    assert_eq!(db.deletion_protection(), Some(true));
    assert!(
        db.tag_list()
            .iter()
            .any(|t| t.key() == Some("Tier") && t.value() == Some("enterprise"))
    );
    let alarms = stack.alarms(&format!("{instance}-")).await;
    assert_eq!(alarms.len(), 2, "{alarms:?}");
    let low = alarms
        .iter()
        .find(|a| a.alarm_name() == Some(&format!("{instance}-low-storage")))
        .unwrap();
    assert_eq!(low.threshold(), Some(50.0 * 1024.0 * 1024.0 * 1024.0));
    stop(w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repair_that_fails_leaves_the_tenant_ready_with_drift_and_error_and_is_tried_again() {
    let stack = Stack::new().await;
    let w = worker(&stack, true).await;
    let tenant = ready(&stack, "repairfail", "starter").await;
    let instance = format!("saas-{tenant}");
    stack
        .rds
        .modify_db_instance()
        .db_instance_identifier(&instance)
        .backup_retention_period(2)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    // RDS refuses the first repair's modification (the instance is `modifying` for 2 s, so no
    // repair has been asked for yet).
    rds_fault(json!({
        "operation": "ModifyDBInstance", "count": 1, "code": "InvalidParameterCombination",
        "status": 400, "match": { "DBInstanceIdentifier": instance },
    }))
    .await;
    let failed = wait_for("a failed repair", TIMEOUT, || async {
        let jobs = reconcile_jobs(&stack, &tenant).await;
        jobs.into_iter().find(|j| j.state == JobState::Failed)
    })
    .await;
    assert_eq!(failed.step, "keep_previous");
    let row = stack.tenant(&tenant).await;
    assert_eq!(row.status, TenantStatus::Ready);
    let error = row.error.clone().expect("the repair's error on the tenant");
    assert!(error.starts_with("drift repair: "), "{error}");
    assert!(error.contains("InvalidParameterCombination"), "{error}");
    assert_eq!(drift_fields(&row), ["backup_retention_days"]);
    // A later round tries again (after a pause), and that repair goes through.
    let repaired = tenant_until(&stack, &tenant, "the drift to be repaired", |t| {
        t.drift.as_ref().is_some_and(|d| d.0.is_empty()) && t.error.is_none()
    })
    .await;
    assert_eq!(repaired.status, TenantStatus::Ready);
    let jobs = reconcile_jobs(&stack, &tenant).await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(jobs[1].state, JobState::Succeeded);
    let pause = jobs[1].created_at - failed.finished_at.unwrap();
    assert!(pause >= chrono::Duration::milliseconds(900), "{pause}");
    assert_eq!(
        stack
            .instance(&instance)
            .await
            .unwrap()
            .backup_retention_period(),
        Some(7)
    );
    stop(w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_instance_makes_its_tenant_lost_and_nothing_is_recreated() {
    let stack = Stack::new().await;
    let w = worker(&stack, true).await;
    let tenant = ready(&stack, "lost", "starter").await;
    let instance = format!("saas-{tenant}");
    stack
        .rds
        .delete_db_instance()
        .db_instance_identifier(&instance)
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    wait_for("the instance to be gone", TIMEOUT, || async {
        stack.instance(&instance).await.is_none().then_some(())
    })
    .await;
    let lost = tenant_until(&stack, &tenant, "the tenant to be lost", |t| {
        t.status == TenantStatus::Lost
    })
    .await;
    let error = lost.error.clone().unwrap();
    assert!(error.contains("does not exist"), "{error}");
    // Two more rounds later: still lost, nothing created, no job.
    two_more_rounds(&stack, &tenant, lost.checked_at.unwrap()).await;
    assert_eq!(stack.tenant(&tenant).await.status, TenantStatus::Lost);
    assert!(stack.instance(&instance).await.is_none());
    assert!(reconcile_jobs(&stack, &tenant).await.is_empty());
    stop(w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_stuck_in_storage_full_makes_its_tenant_degraded_until_it_recovers() {
    let stack = Stack::new().await;
    let w = worker(&stack, true).await;
    let tenant = ready(&stack, "degraded", "starter").await;
    let instance = format!("saas-{tenant}");
    force_status(&instance, "storage-full").await;
    let degraded = tenant_until(&stack, &tenant, "the tenant to be degraded", |t| {
        t.status == TenantStatus::Degraded
    })
    .await;
    let error = degraded.error.clone().unwrap();
    assert!(error.contains("storage-full"), "{error}");
    // Shown, not repaired.
    two_more_rounds(&stack, &tenant, degraded.checked_at.unwrap()).await;
    assert!(reconcile_jobs(&stack, &tenant).await.is_empty());
    // Once an operator has helped it, the tenant is ready again.
    lift_status(&instance).await;
    let ready = tenant_until(&stack, &tenant, "the tenant to be ready again", |t| {
        t.status == TenantStatus::Ready
    })
    .await;
    assert_eq!(ready.drift.map(|d| d.0), Some(Vec::new()));
    assert_eq!(ready.error, None);
    stop(w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_suspended_tenants_drift_is_repaired_and_it_stays_suspended() {
    let stack = Stack::new().await;
    let w = worker(&stack, true).await;
    let tenant = ready(&stack, "susdrift", "starter").await;
    let instance = format!("saas-{tenant}");
    let (_, job, _) = tenants::request_power(stack.pool(), &tenant, Power::Suspend, 3)
        .await
        .unwrap();
    assert_eq!(
        stack.finished(job.id, TIMEOUT).await.state,
        JobState::Succeeded
    );
    stack
        .cloudwatch
        .delete_alarms()
        .alarm_names(format!("{instance}-high-cpu"))
        .send()
        .await
        .unwrap();
    let repair = wait_for("the repair", TIMEOUT, || async {
        let jobs = reconcile_jobs(&stack, &tenant).await;
        jobs.into_iter()
            .find(|j| j.args.0["reason"] == "repair" && !j.state.is_active())
    })
    .await;
    assert_eq!(repair.state, JobState::Succeeded, "{:?}", repair.error);
    assert_eq!(stack.alarms(&format!("{instance}-")).await.len(), 2);
    assert_eq!(stack.tenant(&tenant).await.status, TenantStatus::Suspended);
    assert_eq!(
        stack
            .instance(&instance)
            .await
            .unwrap()
            .db_instance_status(),
        Some("stopped")
    );
    stop(w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_suspended_instance_that_rds_started_by_itself_is_stopped_again() {
    let stack = Stack::new().await;
    let w = worker(&stack, true).await;
    let tenant = ready(&stack, "restart", "starter").await;
    let instance = format!("saas-{tenant}");
    let (_, job, _) = tenants::request_power(stack.pool(), &tenant, Power::Suspend, 3)
        .await
        .unwrap();
    let job = stack.finished(job.id, TIMEOUT).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(
        stack
            .instance(&instance)
            .await
            .unwrap()
            .db_instance_status(),
        Some("stopped")
    );

    // RDS's seven-day restart, now.
    let url = std::env::var("LOCAL_RDS_CONTROL_URL").unwrap();
    let answer = reqwest::Client::new()
        .post(format!("{url}/instances/{instance}/auto-start"))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{:?}", answer.text().await);

    let again = wait_for("the instance to be stopped again", TIMEOUT, || async {
        let jobs = reconcile_jobs(&stack, &tenant).await;
        jobs.into_iter()
            .find(|j| j.args.0["cause"].is_string() && j.state == JobState::Succeeded)
    })
    .await;
    assert_eq!(again.args.0["reason"], "suspend");
    let result = again.data.0["result"].as_str().unwrap().to_string();
    assert!(result.contains("by itself"), "{result}");
    // The history says so too, at the step that stopped it.
    let history = queue::history(stack.pool(), again.id).await.unwrap();
    let noted = history
        .iter()
        .find(|h| h.note.as_deref().is_some_and(|n| n.contains("by itself")))
        .expect("a note in the history");
    assert_eq!(noted.step, "apply");
    assert_eq!(
        stack
            .instance(&instance)
            .await
            .unwrap()
            .db_instance_status(),
        Some("stopped")
    );
    assert_eq!(stack.tenant(&tenant).await.status, TenantStatus::Suspended);
    stop(w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_deleted_out_of_band_is_restored_or_replaced_with_a_new_password() {
    let stack = Stack::new().await;
    let w = worker(&stack, true).await;
    let tenant = ready(&stack, "secret", "starter").await;
    let name = format!("saas/tenant/{tenant}/database");
    let before = stack.secret_json(&name).await;

    // Scheduled for deletion: restored as it was.
    stack
        .secrets
        .delete_secret()
        .secret_id(&name)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let restored = wait_for("the secret to be restored", TIMEOUT, || async {
        let jobs = reconcile_jobs(&stack, &tenant).await;
        jobs.into_iter().find(|j| j.state == JobState::Succeeded)
    })
    .await;
    let result = restored.data.0["result"].as_str().unwrap().to_string();
    assert!(result.contains("restored the secret"), "{result}");
    let secrets = stack.secrets_named(&name).await;
    assert_eq!(secrets.len(), 1);
    assert!(secrets[0].deleted_date().is_none());
    assert_eq!(stack.secret_json(&name).await, before);
    assert!(stack.can_log_in(&tenant).await);

    // Gone for good: a new secret first, then the instance gets its password.
    stack
        .secrets
        .delete_secret()
        .secret_id(&name)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let replaced = wait_for("the secret to be replaced", TIMEOUT, || async {
        let jobs = reconcile_jobs(&stack, &tenant).await;
        jobs.into_iter()
            .filter(|j| j.state == JobState::Succeeded)
            .nth(1)
    })
    .await;
    let result = replaced.data.0["result"].as_str().unwrap().to_string();
    assert!(result.contains("new master password"), "{result}");
    let history = queue::history(stack.pool(), replaced.id).await.unwrap();
    let steps: Vec<&str> = history
        .iter()
        .filter(|h| h.outcome.as_str() == "advanced")
        .map(|h| h.step.as_str())
        .collect();
    let notes: Vec<(&str, &str)> = history
        .iter()
        .filter_map(|h| Some((h.step.as_str(), h.note.as_deref()?)))
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(notes[0].0, "secret");
    assert!(notes[0].1.contains("gone for good"), "{notes:?}");
    assert_eq!(notes[1].0, "reset_password");
    let secret_at = steps.iter().position(|s| *s == "secret").unwrap();
    let reset_at = steps.iter().position(|s| *s == "reset_password").unwrap();
    assert!(secret_at < reset_at, "{steps:?}");
    let after = stack.secret_json(&name).await;
    assert_ne!(after["password"], before["password"]);
    assert_eq!(after["host"], before["host"]);
    wait_for("a login with the new secret", TIMEOUT, || async {
        stack.can_log_in(&tenant).await.then_some(())
    })
    .await;
    stop(w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_that_lost_its_ownership_tags_is_detached_untouched_until_reattached() {
    let stack = Stack::new().await;
    let w = worker(&stack, true).await;
    let tenant = ready(&stack, "detach", "starter").await;
    let instance = format!("saas-{tenant}");
    let arn = stack
        .instance(&instance)
        .await
        .unwrap()
        .db_instance_arn()
        .unwrap()
        .to_string();
    let tiers = tenantd::config::Tiers::defaults();
    let retention = tiers.get("starter").unwrap().backup_retention_days;

    // Detached the way people detach a resource from a tool: its ManagedBy and TenantId tags
    // removed. A setting changed as well, which a repair would put back.
    stack
        .rds
        .remove_tags_from_resource()
        .resource_name(&arn)
        .tag_keys("ManagedBy")
        .tag_keys("TenantId")
        .send()
        .await
        .unwrap();
    stack
        .rds
        .modify_db_instance()
        .db_instance_identifier(&instance)
        .backup_retention_period(retention + 3)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    let found = tenant_until(&stack, &tenant, "the tenant to be detached", |t| {
        t.status == TenantStatus::Detached
    })
    .await;
    let error = found.error.clone().unwrap();
    assert!(error.contains("no tag ManagedBy=tenantd"), "{error}");
    assert_eq!(drift_fields(&found), ["tag:ManagedBy"]);
    // The drift gauge is set once the round that found it ends.
    wait_for("the drift gauge to count it", TIMEOUT, || async {
        let metrics = tenantd::metrics::render(None).unwrap();
        metrics
            .lines()
            .any(|l| l == "tenantd_drift_tenants{field=\"tag\"} 1")
            .then_some(())
    })
    .await;

    // Rounds go by: no repair, no change, the tags are not added back.
    two_more_rounds(&stack, &tenant, found.checked_at.unwrap()).await;
    assert_eq!(stack.tenant(&tenant).await.status, TenantStatus::Detached);
    assert!(reconcile_jobs(&stack, &tenant).await.is_empty());
    let db = stack.instance(&instance).await.unwrap();
    assert_eq!(db.backup_retention_period(), Some(retention + 3));
    let keys: Vec<&str> = db.tag_list().iter().filter_map(|t| t.key()).collect();
    assert!(
        !keys.contains(&"ManagedBy") && !keys.contains(&"TenantId"),
        "{keys:?}"
    );

    // Every request that would change or delete it is refused, and enqueues nothing.
    let refused = tenants::request_tier_change(
        stack.pool(),
        &tiers,
        &tenant,
        "pro",
        tenantd::workflow::reconcile::Apply::Immediately,
        5,
    )
    .await
    .unwrap_err();
    assert!(refused.to_string().contains("detached"), "{refused}");
    let refused = tenants::request_power(stack.pool(), &tenant, Power::Suspend, 5)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("detached"), "{refused}");
    for refused in [
        tenants::request_deprovision(
            stack.pool(),
            &tiers,
            &tenant,
            tenants::Deletion::FORCE_NO_SNAPSHOT,
            5,
        )
        .await
        .unwrap_err(),
        tenants::request_provision(stack.pool(), &tiers, &tenant, "starter", 5)
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(refused, tenants::TenantError::Detached(_)),
            "{refused}"
        );
    }
    assert!(
        queue::active_job(stack.pool(), &tenant)
            .await
            .unwrap()
            .is_none()
    );
    assert!(stack.instance(&instance).await.is_some());

    // A re-attach checks the instance's identity first: tagged as another tenant's, it stays
    // detached.
    stack
        .rds
        .add_tags_to_resource()
        .resource_name(&arn)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("TenantId")
                .value("somebody-else")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (_, job, created) = tenants::request_attach(stack.pool(), &tenant, 5)
        .await
        .unwrap();
    assert!(created);
    let job = stack.finished(job.id, TIMEOUT).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(stack.tenant(&tenant).await.status, TenantStatus::Detached);
    assert!(
        job.error.as_deref().unwrap().contains("somebody-else"),
        "{:?}",
        job.error
    );

    // Without the other owner's tag, the re-attach proves it the tenant's (its secret logs in,
    // its schema version is the recorded one), tags it, and the tenant is managed again: the
    // setting changed meanwhile is repaired.
    stack
        .rds
        .remove_tags_from_resource()
        .resource_name(&arn)
        .tag_keys("TenantId")
        .send()
        .await
        .unwrap();
    let (_, job, _) = tenants::request_attach(stack.pool(), &tenant, 5)
        .await
        .unwrap();
    let job = stack.finished(job.id, TIMEOUT).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let db = stack.instance(&instance).await.unwrap();
    for (k, v) in [
        ("ManagedBy", "tenantd"),
        ("Environment", "test"),
        ("TenantId", tenant.as_str()),
        ("Tier", "starter"),
    ] {
        assert!(
            db.tag_list()
                .iter()
                .any(|t| t.key() == Some(k) && t.value() == Some(v)),
            "{k}={v} missing: {:?}",
            db.tag_list()
        );
    }
    tenant_until(&stack, &tenant, "the setting to be repaired", |t| {
        t.status == TenantStatus::Ready && t.drift.as_ref().is_some_and(|d| d.0.is_empty())
    })
    .await;
    let db = stack.instance(&instance).await.unwrap();
    assert_eq!(db.backup_retention_period(), Some(retention));
    let refused = tenants::request_attach(stack.pool(), &tenant, 5)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("is ready"), "{refused}");
    stop(w).await;
}
