//! A rolling upgrade: jobs written by the previous release, in the JSON shapes it wrote
//! (`tests/fixtures/jobs-0.1.0.json`, captured from a run of that release), run to their end
//! under this one, on the local stack. Also: rows this release cannot run (an unknown step, a
//! tenant job without a tenant) fail their job with a clear error and hold no lease.

use crate::support;

use std::time::Duration;

use aws_sdk_rds::types::Tag;
use chrono::Utc;
use serde_json::{Value, json};
use support::stack::*;
use support::wait_for;
use tenantd::cloud::Cloud;
use tenantd::queue::{self, JobState};
use tenantd::tenants::TenantStatus;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(120);

/// One job of the fixture file, its `{{...}}` marks filled in.
fn fixture(name: &str, fill: &[(&str, &str)]) -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/jobs-0.1.0.json"
    ))
    .unwrap();
    // The previous release wrote times with `to_rfc3339`: `+00:00`, nanoseconds.
    let now = Utc::now().to_rfc3339();
    let mut text = text.replace("{{now}}", &now);
    text = text.replace("{{uuid}}", &Uuid::new_v4().to_string());
    for (mark, value) in fill {
        text = text.replace(&format!("{{{{{mark}}}}}"), value);
    }
    let all: Value = serde_json::from_str(&text).unwrap();
    all["jobs"][name].clone()
}

/// Points every endpoint the fixture recorded at the real instance.
fn with_endpoint(mut data: Value, host: &str, port: i32) -> Value {
    if data.get("endpoint_host").is_some() {
        data["endpoint_host"] = json!(host);
        data["endpoint_port"] = json!(port);
    }
    if data["poller_seen"]["instance"].is_object() {
        data["poller_seen"]["instance"]["endpoint"] = json!([host, port]);
    }
    data
}

/// What the previous release had created by the time of the fixture: the tenant's secret
/// (with its endpoint when `complete`) and its instance, available, tagged with the id of the
/// job that created it (`ProvisioningJob`, as that release tagged instances; secrets it did not
/// tag so). Returns the secret's ARN and the endpoint.
async fn resources(
    stack: &Stack,
    tenant: &str,
    tier: &str,
    complete: bool,
    job: Uuid,
) -> (String, String, i32) {
    let instance = format!("saas-{tenant}");
    let password = format!("Pw{}", Uuid::new_v4().simple());
    let mut secret = json!({
        "engine": "postgres", "host": "", "port": 5432, "username": "tenant_admin",
        "password": password, "dbname": "app", "dbInstanceIdentifier": instance,
    });
    let tags = [
        ("TenantId", tenant),
        ("Tier", tier),
        ("Environment", "test"),
        ("ManagedBy", "tenantd"),
    ];
    let arn = stack
        .secrets
        .create_secret()
        .name(format!("saas/tenant/{tenant}/database"))
        .secret_string(secret.to_string())
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| {
                    aws_sdk_secretsmanager::types::Tag::builder()
                        .key(*k)
                        .value(*v)
                        .build()
                })
                .collect(),
        ))
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let tiers = tenantd::config::Tiers::defaults();
    let t = tiers.get(tier).unwrap();
    stack
        .rds
        .create_db_instance()
        .db_instance_identifier(&instance)
        .engine("postgres")
        .engine_version("16.8")
        .db_instance_class(&t.instance_class)
        .allocated_storage(t.storage_gib)
        .storage_type("gp3")
        .storage_encrypted(true)
        .master_username("tenant_admin")
        .master_user_password(&password)
        .db_name("app")
        .backup_retention_period(t.backup_retention_days)
        .preferred_backup_window("03:00-04:00")
        .preferred_maintenance_window("sun:04:00-sun:05:00")
        .multi_az(t.multi_az)
        .copy_tags_to_snapshot(true)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .chain([Tag::builder()
                    .key("ProvisioningJob")
                    .value(job.to_string())
                    .build()])
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    let (host, port) = wait_for("the instance to be available", TIMEOUT, || async {
        let db = stack.instance(&instance).await?;
        let ep = db.endpoint()?;
        (db.db_instance_status() == Some("available"))
            .then(|| (ep.address().unwrap().to_string(), ep.port().unwrap()))
    })
    .await;
    if complete {
        secret["host"] = json!(host);
        secret["port"] = json!(port);
        stack
            .secrets
            .put_secret_value()
            .secret_id(&arn)
            .secret_string(secret.to_string())
            .send()
            .await
            .unwrap();
    }
    (arn, host, port)
}

/// Inserts the tenant's row and the job `id`, due now, as the previous release left them.
async fn insert(
    stack: &Stack,
    id: Uuid,
    tenant: &str,
    status: &str,
    job: &Value,
    state: &str,
) -> Uuid {
    sqlx::query("INSERT INTO tenants (id, tier, status) VALUES ($1, $2, $3::tenant_status)")
        .bind(tenant)
        .bind(job["args"]["tier"].as_str().unwrap_or("enterprise"))
        .bind(status)
        .execute(stack.pool())
        .await
        .unwrap();
    // Created before the resources it made (they are set up first here).
    sqlx::query(
        "INSERT INTO jobs (id, kind, tenant_id, state, step, args, data, error, max_attempts, begun,
                           created_at)
         VALUES ($1, $2, $3, $4::job_state, $5, $6, $7, $8, 5, true, now() - interval '10 minutes')",
    )
    .bind(id)
    .bind(job["kind"].as_str().unwrap())
    .bind(tenant)
    .bind(state)
    .bind(job["step"].as_str().unwrap())
    .bind(&job["args"])
    .bind(&job["data"])
    .bind(job["error"].as_str())
    .execute(stack.pool())
    .await
    .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_written_by_the_previous_release_run_to_their_end() {
    let stack = Stack::new().await;
    // No instance poller: a wait step that does not describe its instance must have read what
    // the previous release's poller handed it.
    let env = test_env(&stack.db, &[("TENANTD_RDS_POLL_INTERVAL", "0")]);
    let settings = settings(&env);

    // Woken at wait_available, with what the poller saw.
    let waiting = tenant_id("upw");
    let waiting_job = Uuid::new_v4();
    let (arn, host, port) = resources(&stack, &waiting, "enterprise", false, waiting_job).await;
    let job = fixture(
        "wait_available with poller_seen",
        &[("tenant", &waiting), ("secret_arn", &arn)],
    );
    let mut job = job;
    job["data"] = with_endpoint(job["data"].take(), &host, port);
    insert(
        &stack,
        waiting_job,
        &waiting,
        "provisioning",
        &job,
        "waiting",
    )
    .await;
    let cloud = Cloud::from_sdk_config(&sdk_config(None).await);
    let (stop, worker) = stack.spawn_worker(&settings, cloud.clone());
    let done = stack.finished(waiting_job, TIMEOUT).await;
    stop.cancel();
    worker.await.unwrap();
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    // It acted on what the old poller handed it: it described no instance of its own.
    let describes: u64 = cloud
        .calls()
        .iter()
        .filter(|((_, op, _), _)| *op == "DescribeDBInstances")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(describes, 0, "{:?}", cloud.calls());

    // Between steps: the migrations come next.
    let migrating = tenant_id("upm");
    let migrating_job = Uuid::new_v4();
    let (arn, host, port) = resources(&stack, &migrating, "enterprise", true, migrating_job).await;
    let job = fixture("migrate", &[("tenant", &migrating), ("secret_arn", &arn)]);
    let mut job = job;
    job["data"] = with_endpoint(job["data"].take(), &host, port);
    insert(
        &stack,
        migrating_job,
        &migrating,
        "provisioning",
        &job,
        "queued",
    )
    .await;

    // Compensating: the rollback is at undo_instance, the delete under way.
    let rolling = tenant_id("upr");
    let rolling_job = Uuid::new_v4();
    let (arn, host, port) = resources(&stack, &rolling, "enterprise", true, rolling_job).await;
    let job = fixture(
        "undo_instance compensating",
        &[("tenant", &rolling), ("secret_arn", &arn)],
    );
    let mut job = job;
    job["data"] = with_endpoint(job["data"].take(), &host, port);
    insert(
        &stack,
        rolling_job,
        &rolling,
        "provisioning",
        &job,
        "waiting",
    )
    .await;

    // Deprovisioning, waiting for the instance to go.
    let leaving = tenant_id("upd");
    let leaving_job = Uuid::new_v4();
    resources(&stack, &leaving, "starter", true, Uuid::new_v4()).await;
    let job = fixture("deprovision delete_instance", &[("tenant", &leaving)]);
    insert(
        &stack,
        leaving_job,
        &leaving,
        "deprovisioning",
        &job,
        "waiting",
    )
    .await;

    let cloud = Cloud::from_sdk_config(&sdk_config(None).await);
    let (stop, worker) = stack.spawn_worker(&settings, cloud);
    for (tenant, id, state, status) in [
        (
            &waiting,
            waiting_job,
            JobState::Succeeded,
            TenantStatus::Ready,
        ),
        (
            &migrating,
            migrating_job,
            JobState::Succeeded,
            TenantStatus::Ready,
        ),
        (
            &rolling,
            rolling_job,
            JobState::Failed,
            TenantStatus::Failed,
        ),
        (
            &leaving,
            leaving_job,
            JobState::Succeeded,
            TenantStatus::Deleted,
        ),
    ] {
        let job = stack.finished(id, TIMEOUT).await;
        let history = queue::history(stack.pool(), id).await.unwrap();
        assert_eq!(job.state, state, "{tenant}: {:?} {history:?}", job.error);
        assert_eq!(stack.tenant(tenant).await.status, status, "{tenant}");
    }
    stop.cancel();
    worker.await.unwrap();

    for tenant in [&waiting, &migrating] {
        assert!(
            stack
                .tenant_tables(tenant)
                .await
                .contains(&"users".to_string()),
            "{tenant} has its schema"
        );
    }
    // The rollback kept the cause the previous release recorded, and left nothing.
    let failed = stack.tenant(&rolling).await;
    assert!(
        failed
            .error
            .unwrap()
            .contains("switching on deletion protection"),
        "the old cause is kept"
    );
    stack.assert_nothing_left(&rolling).await;
    // The deprovisioning took its final snapshot and left no instance.
    assert!(stack.instance(&format!("saas-{leaving}")).await.is_none());
    let snapshots = stack
        .rds
        .describe_db_snapshots()
        .db_instance_identifier(format!("saas-{leaving}"))
        .send()
        .await
        .unwrap();
    assert_eq!(snapshots.db_snapshots().len(), 1, "one final snapshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_this_release_does_not_know_or_a_tenant_job_without_a_tenant_fails_clearly() {
    let stack = Stack::new().await;
    let settings = settings(&test_env(&stack.db, &[]));
    let tenant = tenant_id("unknown");
    let job = json!({ "kind": "provision", "step": "reticulate_splines",
                      "args": { "tier": "starter" }, "data": {}, "error": null });
    let unknown = insert(
        &stack,
        Uuid::new_v4(),
        &tenant,
        "provisioning",
        &job,
        "queued",
    )
    .await;
    let orphan = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO jobs (id, kind, step, args, max_attempts)
         VALUES ($1, 'provision', 'credentials', '{\"tier\": \"starter\"}', 3)",
    )
    .bind(orphan)
    .execute(stack.pool())
    .await
    .unwrap();

    let (stop, worker) =
        stack.spawn_worker(&settings, Cloud::from_sdk_config(&sdk_config(None).await));
    let failed = stack.finished(unknown, TIMEOUT).await;
    let orphaned = stack.finished(orphan, TIMEOUT).await;
    stop.cancel();
    worker.await.unwrap();

    assert_eq!(failed.state, JobState::Failed);
    let error = failed.error.unwrap();
    assert!(
        error.contains("provision has no step \"reticulate_splines\"")
            && error.contains("credentials"),
        "{error}"
    );
    let history = queue::history(stack.pool(), unknown).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        last.error_class.as_deref(),
        Some("unknown_step"),
        "{history:?}"
    );
    assert!(failed.lease_owner.is_none(), "no lease is left held");

    assert_eq!(orphaned.state, JobState::Failed);
    let error = orphaned.error.unwrap();
    assert!(error.contains("names no tenant"), "{error}");
    let classes: Vec<Option<String>> = queue::history(stack.pool(), orphan)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.error_class)
        .collect();
    assert!(classes.contains(&Some("no_tenant".into())), "{classes:?}");
}
