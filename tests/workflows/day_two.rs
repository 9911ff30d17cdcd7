//! Day two against LocalStack and real PostgreSQL, nothing mocked: tier changes up and down
//! (as RDS and CloudWatch report them afterwards), a tier change RDS refuses or that fails at a
//! later step, suspend and resume, and the API's answers to changes that do not apply.

use crate::support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::app::spawn_app;
use support::proxy::FaultProxy;
use support::stack::*;
use tenantd::cloud::Cloud;
use tenantd::config::Tiers;
use tenantd::queue::{self, JobState};
use tenantd::tenants::{self, Power, TenantError, TenantStatus};
use tenantd::workflow::reconcile::Apply;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(120);
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// A stack with an in-process worker and a ready tenant on `tier`.
async fn ready_tenant(
    prefix: &str,
    tier: &str,
) -> (
    Stack,
    String,
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let stack = Stack::new().await;
    let env = test_env(&stack.db, &[]);
    let settings = settings(&env);
    let cloud = Cloud::from_sdk_config(&sdk_config(None).await);
    let (stop, worker) = stack.spawn_worker(&settings, cloud);
    let tenant = tenant_id(prefix);
    let job = stack.provision(&tenant, tier).await;
    let job = stack.finished(job, TIMEOUT).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    (stack, tenant, stop, worker)
}

async fn change_tier(stack: &Stack, tenant: &str, tier: &str) -> Uuid {
    let (row, job, created) = tenants::request_tier_change(
        stack.pool(),
        &Tiers::defaults(),
        tenant,
        tier,
        Apply::Immediately,
        3,
    )
    .await
    .expect("tier change");
    assert!(created);
    assert_eq!(row.pending_tier.as_deref(), Some(tier));
    job.expect("a job").id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_moves_up_and_down_the_tiers_as_rds_and_cloudwatch_report() {
    let (stack, tenant, stop, worker) = ready_tenant("tiers", "starter").await;
    let instance = format!("saas-{tenant}");
    // tier, class, allocated storage, retention, multi-AZ, PI days, protection, low-storage GiB
    let steps = [
        ("pro", "db.t3.small", 100, 14, false, Some(7), false, 10.0),
        (
            "enterprise",
            "db.m6i.large",
            500,
            35,
            true,
            Some(731),
            true,
            50.0,
        ),
        // Down again: the storage stays at 500 GiB (RDS storage only grows).
        ("starter", "db.t3.micro", 500, 7, false, None, false, 2.0),
    ];
    for (tier, class, storage, retention, multi_az, pi, protected, low_gib) in steps {
        let job = change_tier(&stack, &tenant, tier).await;
        // The tenant stays ready (and usable) while the change runs.
        assert_eq!(stack.tenant(&tenant).await.status, TenantStatus::Ready);
        let job = stack.finished(job, TIMEOUT).await;
        assert_eq!(job.state, JobState::Succeeded, "{tier}: {:?}", job.error);

        let db = stack.instance(&instance).await.expect("instance");
        assert_eq!(db.db_instance_status(), Some("available"), "{tier}");
        assert_eq!(db.db_instance_class(), Some(class), "{tier}");
        assert_eq!(db.allocated_storage(), Some(storage), "{tier}");
        assert_eq!(db.backup_retention_period(), Some(retention), "{tier}");
        assert_eq!(db.multi_az(), Some(multi_az), "{tier}");
        assert_eq!(db.deletion_protection(), Some(protected), "{tier}");
        assert_eq!(
            db.performance_insights_enabled().unwrap_or(false),
            pi.is_some(),
            "{tier}"
        );
        if let Some(days) = pi {
            assert_eq!(db.performance_insights_retention_period(), Some(days));
        }
        let tier_tag: Vec<&str> = db
            .tag_list()
            .iter()
            .filter(|t| t.key() == Some("Tier"))
            .filter_map(|t| t.value())
            .collect();
        assert_eq!(tier_tag, [tier]);

        let alarms = stack.alarms(&format!("{instance}-")).await;
        let low = alarms
            .iter()
            .find(|a| a.alarm_name() == Some(&format!("{instance}-low-storage")))
            .expect("storage alarm");
        assert_eq!(low.threshold(), Some(low_gib * GIB), "{tier}");

        let row = stack.tenant(&tenant).await;
        assert_eq!(row.tier, tier);
        assert_eq!(row.status, TenantStatus::Ready);
        assert_eq!(row.pending_tier, None);
        assert_eq!(row.storage_gib, Some(storage));
        assert!(stack.can_log_in(&tenant).await, "{tier}");
    }
    // The downgrade says what it kept, on the tenant and in the job's result.
    let row = stack.tenant(&tenant).await;
    let note = row.note.expect("a note on the kept storage");
    assert!(note.contains("500 GiB"), "{note}");
    let last = queue::latest_job(stack.pool(), &tenant, "reconcile")
        .await
        .unwrap()
        .unwrap();
    let result = last.data.0["result"].as_str().unwrap().to_string();
    assert!(result.contains("instance_class"), "{result}");
    assert!(result.contains("storage stays at 500 GiB"), "{result}");

    // The same tier again changes nothing.
    let (_, job, created) = tenants::request_tier_change(
        stack.pool(),
        &Tiers::defaults(),
        &tenant,
        "starter",
        Apply::Immediately,
        3,
    )
    .await
    .unwrap();
    assert!(job.is_none() && !created);
    stop.cancel();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tier_change_that_fails_at_any_step_leaves_the_tenant_ready_on_its_old_tier() {
    let stack = Stack::new().await;
    let proxy = FaultProxy::start(&stack_endpoint()).await;
    let env = test_env(&stack.db, &[("TENANTD_RECONCILE_INTERVAL", "0")]);
    let settings = settings(&env);
    let cloud = Cloud::from_sdk_config(&sdk_config(Some(&proxy.url)).await);
    let (stop, worker) = stack.spawn_worker(&settings, cloud);
    let tenant = tenant_id("tierfail");
    let job = stack.provision(&tenant, "starter").await;
    assert_eq!(
        stack.finished(job, TIMEOUT).await.state,
        JobState::Succeeded
    );
    let instance = format!("saas-{tenant}");
    let arn = stack
        .instance(&instance)
        .await
        .unwrap()
        .db_instance_arn()
        .unwrap()
        .to_string();
    // RDS refuses the modification; the instance fails while it is modified; then, with the
    // modification applied, creating an alarm and tagging fail.
    for step in ["apply", "wait_applied", "alarms", "tags"] {
        match step {
            "apply" => {
                rds_fault(json!({
                    "operation": "ModifyDBInstance", "count": 1,
                    "code": "InvalidParameterCombination", "status": 400,
                    "match": { "DBInstanceIdentifier": instance },
                }))
                .await
            }
            "alarms" => proxy.fail("PutMetricAlarm", 1),
            "tags" => {
                rds_fault(json!({
                    "operation": "AddTagsToResource", "count": 1,
                    "code": "InvalidParameterCombination", "status": 400,
                    "match": { "ResourceName": arn },
                }))
                .await
            }
            _ => {}
        }
        let job = change_tier(&stack, &tenant, "pro").await;
        if step == "wait_applied" {
            // The instance breaks while it is being modified (it is for 2 s).
            stack.reached(job, "apply", "advanced", TIMEOUT).await;
            force_status(&instance, "incompatible-parameters").await;
        }
        let job = stack.finished(job, TIMEOUT).await;
        assert_eq!(job.state, JobState::Failed, "{step}");
        assert_eq!(job.step, "keep_previous", "{step}");
        let history = queue::history(stack.pool(), job.id).await.unwrap();
        let failed = history
            .iter()
            .find(|h| h.outcome.as_str() == "compensating")
            .expect("a failed step");
        assert_eq!(failed.step, step, "{history:?}");
        assert!(failed.error.is_some());

        let row = stack.tenant(&tenant).await;
        assert_eq!(row.status, TenantStatus::Ready, "{step}");
        assert_eq!(row.tier, "starter", "{step}");
        assert_eq!(row.pending_tier, None);
        let error = row.error.expect("the cause on the tenant");
        assert!(error.starts_with("tier change to pro: "), "{error}");
        if step == "wait_applied" {
            lift_status(&instance).await;
        }
        assert!(stack.can_log_in(&tenant).await, "{step}");
        // Nothing new was created: still one instance, one secret.
        assert!(stack.instance(&instance).await.is_some());
        let secrets = stack
            .secrets_named(&format!("saas/tenant/{tenant}/database"))
            .await;
        assert_eq!(secrets.len(), 1);
    }
    // Once nothing fails, the change goes through and the error is gone.
    let job = change_tier(&stack, &tenant, "pro").await;
    let job = stack.finished(job, TIMEOUT).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let row = stack.tenant(&tenant).await;
    assert_eq!((row.tier.as_str(), row.error), ("pro", None));
    stop.cancel();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_suspended_tenant_is_stopped_and_a_resumed_one_is_usable_again() {
    let (stack, tenant, stop, worker) = ready_tenant("suspend", "starter").await;
    let instance = format!("saas-{tenant}");

    // Only a suspended tenant resumes.
    let err = tenants::request_power(stack.pool(), &tenant, Power::Resume, 3)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TenantError::NotApplicable {
                status: "ready",
                ..
            }
        ),
        "{err}"
    );

    let (_, job, created) = tenants::request_power(stack.pool(), &tenant, Power::Suspend, 3)
        .await
        .unwrap();
    assert!(created);
    // A replay while it runs is the same job.
    let (_, again, created) = tenants::request_power(stack.pool(), &tenant, Power::Suspend, 3)
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.id, job.id);
    let job = stack.finished(job.id, TIMEOUT).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let row = stack.tenant(&tenant).await;
    assert_eq!(row.status, TenantStatus::Suspended);
    let db = stack.instance(&instance).await.unwrap();
    assert_eq!(db.db_instance_status(), Some("stopped"));
    assert!(
        !stack.can_log_in(&tenant).await,
        "a stopped instance took a login"
    );
    // A suspended tenant changes no tier and is not suspended twice.
    for err in [
        tenants::request_tier_change(
            stack.pool(),
            &Tiers::defaults(),
            &tenant,
            "pro",
            Apply::Immediately,
            3,
        )
        .await
        .map(|_| ())
        .unwrap_err(),
        tenants::request_power(stack.pool(), &tenant, Power::Suspend, 3)
            .await
            .map(|_| ())
            .unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                TenantError::NotApplicable {
                    status: "suspended",
                    ..
                }
            ),
            "{err}"
        );
    }

    let (_, job, _) = tenants::request_power(stack.pool(), &tenant, Power::Resume, 3)
        .await
        .unwrap();
    let job = stack.finished(job.id, TIMEOUT).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let row = stack.tenant(&tenant).await;
    assert_eq!(row.status, TenantStatus::Ready);
    let db = stack.instance(&instance).await.unwrap();
    assert_eq!(db.db_instance_status(), Some("available"));
    assert!(stack.can_log_in(&tenant).await);
    stop.cancel();
    worker.await.unwrap();
}

/// A ready tenant's row, as a finished provisioning leaves it (the API test runs no worker).
async fn insert_ready(pool: &sqlx::PgPool, id: &str, tier: &str) {
    sqlx::query(
        "INSERT INTO tenants (id, tier, status, db_instance_id, endpoint_host, endpoint_port,
             secret_arn)
         VALUES ($1, $2, 'ready', 'saas-' || $1, 'db.example', 5432, 'arn:secret')",
    )
    .bind(id)
    .bind(tier)
    .execute(pool)
    .await
    .unwrap();
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn the_api_answers_tier_changes_suspends_and_resumes_that_do_not_apply() {
    let app = spawn_app().await;
    let pool = &app.db.pool;
    insert_ready(pool, "acme", "starter").await;
    support::insert_tenant(pool, "busy").await;
    let patch = |id: &str, body: Value| {
        let request = app
            .request(Method::PATCH, &format!("/v1/tenants/{id}"))
            .json(&body);
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let post = |path: String| {
        let request = app.request(Method::POST, &path);
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };

    let (status, body) = patch("acme", json!({ "tier": "platinum" })).await;
    assert_eq!((status, code(&body)), (422, "unknown_tier"), "{body}");
    let (status, body) = patch("acme", json!({ "tier": "pro", "size": 1 })).await;
    assert_eq!((status, code(&body)), (422, "invalid_body"), "{body}");
    let (status, body) = patch("nobody", json!({ "tier": "pro" })).await;
    assert_eq!((status, code(&body)), (404, "tenant_not_found"), "{body}");
    let (status, body) = patch("busy", json!({ "tier": "pro" })).await;
    assert_eq!((status, code(&body)), (409, "tenant_not_ready"), "{body}");
    // Its own tier: nothing to do.
    let (status, body) = patch("acme", json!({ "tier": "starter" })).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["job"].is_null(), "{body}");
    assert_eq!(app.count("jobs").await, 0);

    let (status, body) = patch(
        "acme",
        json!({ "tier": "pro", "apply": "maintenance_window" }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["job"]["kind"], "reconcile");
    assert_eq!(body["tenant"]["pending_tier"], "pro");
    assert_eq!(body["tenant"]["status"], "ready");
    let job = body["job"]["id"].clone();
    // A replay is the same job; anything else waits for it.
    let (status, body) = patch("acme", json!({ "tier": "pro" })).await;
    assert_eq!((status, &body["job"]["id"]), (200, &job), "{body}");
    let (status, body) = patch("acme", json!({ "tier": "enterprise" })).await;
    assert_eq!((status, code(&body)), (409, "job_in_progress"), "{body}");
    let (status, body) = post("/v1/tenants/acme/suspend".into()).await;
    assert_eq!((status, code(&body)), (409, "job_in_progress"), "{body}");
    let (status, body) = post("/v1/tenants/acme/resume".into()).await;
    assert_eq!((status, code(&body)), (409, "job_in_progress"), "{body}");
    assert_eq!(app.count("jobs").await, 1);
    // The tenant shows the change in progress.
    let (status, body) = app.get("/v1/tenants/acme").await;
    assert_eq!(status, 200);
    assert_eq!(body["pending_tier"], "pro");
    assert_eq!(body["job"]["kind"], "reconcile");

    insert_ready(pool, "quiet", "pro").await;
    let (status, body) = post("/v1/tenants/quiet/resume".into()).await;
    assert_eq!(
        (status, code(&body)),
        (409, "tenant_not_suspended"),
        "{body}"
    );
    let (status, body) = post("/v1/tenants/busy/suspend".into()).await;
    assert_eq!((status, code(&body)), (409, "tenant_not_ready"), "{body}");
    let (status, body) = post("/v1/tenants/quiet/suspend".into()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["job"]["kind"], "reconcile");
    let (status, body) = post("/v1/tenants/nobody/suspend".into()).await;
    assert_eq!((status, code(&body)), (404, "tenant_not_found"), "{body}");
}
