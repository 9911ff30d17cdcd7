//! Provisioning and deprovisioning against LocalStack and real PostgreSQL, nothing mocked: every
//! tier end to end, a failure at each step, adoption and refusal of existing instances, and
//! deprovisioning.

use crate::support;

use std::time::Duration;

use serde_json::json;
use support::proxy::FaultProxy;
use support::stack::*;
use tenantd::cloud::Cloud;
use tenantd::queue::JobState;
use tenantd::tenants::{self, TenantStatus};

const TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_tier_is_provisioned_as_configured_and_deprovisioned_to_a_snapshot() {
    let stack = Stack::new().await;
    let env = test_env(&stack.db, &[]);
    let settings = settings(&env);
    let cloud = Cloud::from_sdk_config(&sdk_config(None).await);
    let (stop, worker) = stack.spawn_worker(&settings, cloud);

    let tiers = ["starter", "pro", "enterprise"];
    let mut jobs = Vec::new();
    for tier in tiers {
        let tenant = tenant_id(tier);
        jobs.push((tier, tenant.clone(), stack.provision(&tenant, tier).await));
    }
    for (tier, tenant, job) in &jobs {
        let job = stack.finished(*job, TIMEOUT).await;
        assert_eq!(job.state, JobState::Succeeded, "{tier}: {:?}", job.error);
        let row = stack.tenant(tenant).await;
        assert_eq!(row.status, TenantStatus::Ready);
        let instance_id = format!("saas-{tenant}");
        assert_eq!(row.db_instance_id.as_deref(), Some(instance_id.as_str()));
        assert_eq!(row.schema_version, Some(20260101000003));
        // Asked for the major version 16, RDS picked its default minor.
        assert_eq!(row.engine_version.as_deref(), Some("16.8"));
        assert!(row.endpoint_host.is_some() && row.endpoint_port.is_some());

        // The instance, as RDS describes it.
        let db = stack.instance(&instance_id).await.expect("instance");
        let (class, storage, retention, multi_az, protected, max_storage, low_gib) = match *tier {
            "starter" => ("db.t3.micro", 20, 7, false, false, 100, 2.0),
            "pro" => ("db.t3.small", 100, 14, false, false, 500, 10.0),
            _ => ("db.m6i.large", 500, 35, true, true, 2000, 50.0),
        };
        // Storage autoscaling up to the tier's ceiling.
        assert_eq!(db.max_allocated_storage(), Some(max_storage));
        assert_eq!(db.db_instance_class(), Some(class));
        assert_eq!(db.allocated_storage(), Some(storage));
        assert_eq!(db.backup_retention_period(), Some(retention));
        assert_eq!(db.multi_az(), Some(multi_az));
        assert_eq!(db.deletion_protection(), Some(protected));
        assert_eq!(db.storage_type(), Some("gp3"));
        assert_eq!(db.storage_encrypted(), Some(true));
        assert_eq!(db.engine(), Some("postgres"));
        assert_eq!(db.preferred_backup_window(), Some("03:00-04:00"));
        assert_eq!(
            db.preferred_maintenance_window(),
            Some("sun:04:00-sun:05:00")
        );
        let tags: Vec<(&str, &str)> = db
            .tag_list()
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect();
        for expected in [
            ("TenantId", tenant.as_str()),
            ("Tier", *tier),
            ("Environment", "test"),
            ("ManagedBy", "tenantd"),
        ] {
            assert!(tags.contains(&expected), "{expected:?} missing in {tags:?}");
        }

        // The secret, in the rotation functions' format, completed with the endpoint.
        let name = format!("saas/tenant/{tenant}/database");
        let secret = stack.secret_json(&name).await;
        assert_eq!(secret["engine"], "postgres");
        assert_eq!(secret["username"], "tenant_admin");
        assert_eq!(secret["dbname"], "app");
        assert_eq!(secret["dbInstanceIdentifier"], instance_id.as_str());
        assert_eq!(secret["host"], json!(row.endpoint_host));
        assert_eq!(secret["port"], json!(row.endpoint_port));
        assert_eq!(secret["password"].as_str().unwrap().len(), 32);
        let listed = stack.secrets_named(&name).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].arn(), row.secret_arn.as_deref());

        // The tenant database opens with the secret and has the product's tables.
        let tables = stack.tenant_tables(tenant).await;
        for table in ["audit_logs", "projects", "users"] {
            assert!(tables.contains(&table.to_string()), "{tables:?}");
        }

        // Both alarms, with their thresholds and actions.
        let alarms = stack.alarms(&format!("{instance_id}-")).await;
        assert_eq!(alarms.len(), 2, "{alarms:?}");
        let cpu = alarms
            .iter()
            .find(|a| a.alarm_name() == Some(&format!("{instance_id}-high-cpu")))
            .expect("cpu alarm");
        assert_eq!(cpu.metric_name(), Some("CPUUtilization"));
        assert_eq!(cpu.threshold(), Some(80.0));
        assert_eq!(cpu.period(), Some(300));
        assert_eq!(cpu.evaluation_periods(), Some(2));
        assert_eq!(cpu.alarm_actions(), [TOPIC.to_string()]);
        assert_eq!(cpu.dimensions()[0].name(), Some("DBInstanceIdentifier"));
        assert_eq!(cpu.dimensions()[0].value(), Some(instance_id.as_str()));
        let storage = alarms
            .iter()
            .find(|a| a.alarm_name() == Some(&format!("{instance_id}-low-storage")))
            .expect("storage alarm");
        assert_eq!(storage.metric_name(), Some("FreeStorageSpace"));
        assert_eq!(
            storage.threshold(),
            Some(low_gib * 1024.0 * 1024.0 * 1024.0)
        );
        assert_eq!(storage.evaluation_periods(), Some(1));
        assert_eq!(storage.alarm_actions(), [TOPIC.to_string()]);
    }

    // Deprovisioning: a final snapshot and a secret waiting for deletion, nothing else.
    let mut deprovisions = Vec::new();
    for (_, tenant, _) in &jobs {
        let (row, job, created) = tenants::request_deprovision(
            stack.pool(),
            &tenantd::config::Tiers::defaults(),
            tenant,
            tenantd::tenants::Deletion::KEEP_SNAPSHOT,
            5,
        )
        .await
        .unwrap();
        assert!(created);
        assert_eq!(row.status, TenantStatus::Deprovisioning);
        deprovisions.push((tenant.clone(), job.id));
    }
    for (tenant, job) in deprovisions {
        let job = stack.finished(job, TIMEOUT).await;
        assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
        assert_eq!(stack.tenant(&tenant).await.status, TenantStatus::Deleted);
        let instance_id = format!("saas-{tenant}");
        assert!(stack.instance(&instance_id).await.is_none());
        let snapshots = stack
            .rds
            .describe_db_snapshots()
            .db_instance_identifier(&instance_id)
            .snapshot_type("manual")
            .send()
            .await
            .unwrap();
        let ids: Vec<&str> = snapshots
            .db_snapshots()
            .iter()
            .filter_map(|s| s.db_snapshot_identifier())
            .collect();
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert!(ids[0].starts_with(&format!("{instance_id}-final-")));
        // The tier with point-in-time recovery keeps its automated backups; the others not.
        let kept = stack
            .rds
            .describe_db_instance_automated_backups()
            .db_instance_identifier(&instance_id)
            .send()
            .await
            .map(|out| out.db_instance_automated_backups().len())
            .unwrap_or(0);
        assert_eq!(
            kept,
            usize::from(tenant.starts_with("enterprise")),
            "{tenant}"
        );
        let secrets = stack
            .secrets_named(&format!("saas/tenant/{tenant}/database"))
            .await;
        assert_eq!(secrets.len(), 1);
        assert!(
            secrets[0].deleted_date().is_some(),
            "secret scheduled for deletion"
        );
        assert!(stack.alarms(&format!("{instance_id}-")).await.is_empty());
    }
    stop.cancel();
    worker.await.unwrap();
}

/// Where a failure is injected, and how.
enum Fault {
    /// The next call of this operation through the proxy (Secrets Manager, CloudWatch) fails.
    Proxy(&'static str),
    /// The local RDS provider fails the next matching call.
    Rds(&'static str, serde_json::Value),
    /// The instance goes to `failed` while it is being created.
    InstanceFails,
    /// The tenant migrations are broken.
    BrokenMigrations,
    /// The daemon trusts another CA than the one that certifies the instances.
    WrongCa,
}

async fn failure_rolls_back(step: &str, tier: &str, fault: Fault) {
    let stack = Stack::new().await;
    let tenant = tenant_id("fail");
    let instance = format!("saas-{tenant}");
    let proxy = FaultProxy::start(&stack_endpoint()).await;
    let broken = std::env::temp_dir().join(format!("broken-migrations-{tenant}"));
    let other_ca = std::env::temp_dir().join(format!("other-ca-{tenant}.pem"));
    let mut extra = vec![];
    match &fault {
        Fault::Proxy(op) => proxy.fail(op, 1),
        Fault::Rds(op, matching) => {
            let mut matching = matching.clone();
            matching["DBInstanceIdentifier"] = json!(instance);
            rds_fault(json!({
                "operation": op, "count": 1, "code": "InvalidParameterCombination",
                "status": 400, "match": matching,
            }))
            .await;
        }
        Fault::InstanceFails => {}
        Fault::BrokenMigrations => {
            std::fs::create_dir_all(&broken).unwrap();
            std::fs::write(broken.join("1_broken.sql"), "CREATE TABLE (;").unwrap();
            extra.push(("TENANTD_TENANT_MIGRATIONS", broken.to_str().unwrap()));
        }
        Fault::WrongCa => {
            support::rds::throwaway_ca(&other_ca);
            extra.push(("TENANTD_TENANT_DB_CA_FILE", other_ca.to_str().unwrap()));
        }
    }
    let settings = settings(&test_env(&stack.db, &extra));
    let cloud = Cloud::from_sdk_config(&sdk_config(Some(&proxy.url)).await);
    let (stop, worker) = stack.spawn_worker(&settings, cloud);
    let job = stack.provision(&tenant, tier).await;
    if let Fault::InstanceFails = fault {
        stack
            .reached(job, "wait_available", "waiting", TIMEOUT)
            .await;
        force_status(&instance, "failed").await;
    }

    let job = stack.finished(job, TIMEOUT).await;
    stop.cancel();
    worker.await.unwrap();
    let _ = std::fs::remove_dir_all(&broken);
    assert_eq!(job.state, JobState::Failed);
    let history = tenantd::queue::history(stack.pool(), job.id).await.unwrap();
    let failed = history
        .iter()
        .find(|h| h.outcome == "compensating")
        .expect("compensation started");
    assert_eq!(failed.step, step, "failed at the wrong step: {history:?}");
    if let Fault::WrongCa = fault {
        // At once, not after every attempt: a certificate does not verify by waiting.
        assert_eq!(failed.error_class.as_deref(), Some("tls"), "{history:?}");
        assert!(
            !history
                .iter()
                .any(|h| h.outcome == "retrying" && h.step == "migrate")
        );
        let cause = stack.tenant(&tenant).await.error.unwrap_or_default();
        assert!(
            cause.contains("TLS") && cause.contains("TENANTD_TENANT_DB_CA_FILE"),
            "{cause}"
        );
    }
    let row = stack.tenant(&tenant).await;
    assert_eq!(row.status, TenantStatus::Failed);
    assert!(row.error.is_some());
    assert!(
        !job.error.as_deref().unwrap().contains("then"),
        "a rollback step failed: {:?}",
        job.error
    );
    stack.assert_nothing_left(&tenant).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_ca_fails_the_migrations_with_a_tls_error_and_rolls_back() {
    failure_rolls_back("migrate", "starter", Fault::WrongCa).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_creating_the_secret_rolls_back() {
    failure_rolls_back("credentials", "starter", Fault::Proxy("CreateSecret")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_creating_the_instance_rolls_back() {
    failure_rolls_back(
        "instance",
        "starter",
        Fault::Rds("CreateDBInstance", json!({})),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_that_fails_while_creating_is_rolled_back() {
    failure_rolls_back("wait_available", "starter", Fault::InstanceFails).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_completing_the_secret_rolls_back() {
    failure_rolls_back("secret_endpoint", "starter", Fault::Proxy("PutSecretValue")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_tenant_migrations_roll_back() {
    failure_rolls_back("migrate", "starter", Fault::BrokenMigrations).await;
}

/// CreateDBInstance already set the tier's retention and windows, and the instance was seen
/// with them: the backups step calls nothing (a ModifyDBInstance here would fail the tenant).
#[tokio::test(flavor = "multi_thread")]
async fn backups_already_as_asked_cost_no_modify_call() {
    let stack = Stack::new().await;
    let tenant = tenant_id("backups");
    rds_fault(json!({
        "operation": "ModifyDBInstance", "count": 1, "code": "InvalidParameterCombination",
        "status": 400, "match": { "DBInstanceIdentifier": format!("saas-{tenant}") },
    }))
    .await;
    let settings = settings(&test_env(&stack.db, &[]));
    let cloud = Cloud::from_sdk_config(&sdk_config(None).await);
    let (stop, worker) = stack.spawn_worker(&settings, cloud.clone());
    let job = stack.provision(&tenant, "pro").await;
    let job = stack.finished(job, TIMEOUT).await;
    stop.cancel();
    worker.await.unwrap();
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(
        cloud
            .calls()
            .keys()
            .filter(|(_, op, _)| *op == "ModifyDBInstance")
            .count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_creating_alarms_rolls_back() {
    failure_rolls_back("alarms", "starter", Fault::Proxy("PutMetricAlarm")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_switching_on_deletion_protection_rolls_back() {
    failure_rolls_back(
        "protect",
        "enterprise",
        Fault::Rds("ModifyDBInstance", json!({ "DeletionProtection": true })),
    )
    .await;
}

/// Creates an instance the way someone else (or an earlier tenantd) might have.
async fn existing_instance(stack: &Stack, id: &str, tenant_tag: &str) {
    stack
        .rds
        .create_db_instance()
        .db_instance_identifier(id)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .engine_version("16.8")
        .allocated_storage(20)
        .master_username("tenant_admin")
        .master_user_password("AnotherPassword-123")
        .db_name("app")
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("TenantId")
                .value(tenant_tag)
                .build(),
        )
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("ManagedBy")
                .value("tenantd")
                .build(),
        )
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("Environment")
                .value("test")
                .build(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_instance_of_this_tenant_is_adopted_with_the_secrets_password() {
    let stack = Stack::new().await;
    let tenant = tenant_id("adopt");
    let instance = format!("saas-{tenant}");
    existing_instance(&stack, &instance, &tenant).await;
    let settings = settings(&test_env(&stack.db, &[]));
    let (stop, worker) =
        stack.spawn_worker(&settings, Cloud::from_sdk_config(&sdk_config(None).await));
    let job = stack.provision(&tenant, "starter").await;
    let job = stack.finished(job, TIMEOUT).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(job.data.0["adopted"], json!(true));
    assert_eq!(stack.tenant(&tenant).await.status, TenantStatus::Ready);
    // The secret's password opens the adopted database: it was reset to the secret's.
    assert!(
        stack
            .tenant_tables(&tenant)
            .await
            .contains(&"users".to_string())
    );

    let (_, job, _) = tenants::request_deprovision(
        stack.pool(),
        &tenantd::config::Tiers::defaults(),
        &tenant,
        tenantd::tenants::Deletion::FORCE_NO_SNAPSHOT,
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

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_instance_of_someone_else_is_refused_and_left_alone() {
    let stack = Stack::new().await;
    let tenant = tenant_id("refuse");
    let instance = format!("saas-{tenant}");
    existing_instance(&stack, &instance, "somebody-else").await;
    let settings = settings(&test_env(&stack.db, &[]));
    let (stop, worker) =
        stack.spawn_worker(&settings, Cloud::from_sdk_config(&sdk_config(None).await));
    let job = stack.provision(&tenant, "starter").await;
    let job = stack.finished(job, TIMEOUT).await;
    stop.cancel();
    worker.await.unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert!(
        job.error
            .as_deref()
            .unwrap()
            .contains("not tagged as this tenant's")
    );
    let row = stack.tenant(&tenant).await;
    assert_eq!(row.status, TenantStatus::Failed);
    // Untouched: still there, not being deleted; our secret is gone.
    let db = stack
        .instance(&instance)
        .await
        .expect("the foreign instance remains");
    assert_ne!(db.db_instance_status(), Some("deleting"));
    assert!(
        stack
            .secrets_named(&format!("saas/tenant/{tenant}/database"))
            .await
            .is_empty()
    );
    assert!(stack.alarms(&format!("{instance}-")).await.is_empty());
    stack
        .rds
        .delete_db_instance()
        .db_instance_identifier(&instance)
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_provisioning_rolls_back_and_ends_cancelled() {
    let stack = Stack::new().await;
    let tenant = tenant_id("cancel");
    let settings = settings(&test_env(&stack.db, &[]));
    let (stop, worker) =
        stack.spawn_worker(&settings, Cloud::from_sdk_config(&sdk_config(None).await));
    let job = stack.provision(&tenant, "starter").await;
    stack
        .reached(job, "wait_available", "waiting", TIMEOUT)
        .await;
    support::wait_for("the cancel to be accepted", TIMEOUT, || async {
        let mut conn = stack.pool().acquire().await.unwrap();
        tenantd::queue::cancel(&mut conn, job).await.ok()
    })
    .await;
    let job = stack.finished(job, TIMEOUT).await;
    stop.cancel();
    worker.await.unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    let row = stack.tenant(&tenant).await;
    assert_eq!(row.status, TenantStatus::Failed);
    assert_eq!(row.error.as_deref(), Some("cancelled"));
    stack.assert_nothing_left(&tenant).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_provisioned_again_right_after_its_rollback_waits_for_its_secret_name() {
    use support::rds::{Control, config_for_account, secrets_in_account, unique_account};
    // An account of its own, where a force-deleted secret's name stays taken for 2 s, as on
    // AWS while the deletion completes.
    let account = unique_account();
    let (status, body) = Control::new()
        .post(
            "/secrets-deletion-delay",
            json!({ "account": account, "seconds": 2 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let stack = Stack::new().await;
    let tenant = tenant_id("again");
    let instance = format!("saas-{tenant}");
    rds_fault(json!({
        "operation": "CreateDBInstance", "count": 1, "code": "InvalidParameterCombination",
        "status": 400, "match": { "DBInstanceIdentifier": instance },
    }))
    .await;
    let settings = settings(&test_env(&stack.db, &[("TENANTD_MAX_ATTEMPTS", "8")]));
    let cloud = Cloud::from_sdk_config(&config_for_account(&account).await);
    let (stop, worker) = stack.spawn_worker(&settings, cloud);
    let tiers = tenantd::config::Tiers::defaults();
    let (_, first, _) = tenants::request_provision(stack.pool(), &tiers, &tenant, "starter", 8)
        .await
        .unwrap();
    assert_eq!(
        stack.finished(first.id, TIMEOUT).await.state,
        JobState::Failed
    );
    // At once: the rollback has just force-deleted the secret.
    let (_, again, created) =
        tenants::request_provision(stack.pool(), &tiers, &tenant, "starter", 8)
            .await
            .unwrap();
    assert!(created);
    let job = stack.finished(again.id, TIMEOUT).await;
    let history = tenantd::queue::history(stack.pool(), again.id)
        .await
        .unwrap();
    stop.cancel();
    worker.await.unwrap();
    assert_eq!(job.state, JobState::Succeeded, "{history:?}");
    assert!(
        history.iter().any(|h| h.step == "credentials"
            && h.outcome == "retrying"
            && h.error_class.as_deref() == Some("pending_deletion")),
        "the name was still being deleted: {history:?}"
    );
    let secrets = secrets_in_account(&account).await;
    let value = secrets
        .get_secret_value()
        .secret_id(format!("saas/tenant/{tenant}/database"))
        .send()
        .await
        .unwrap();
    assert!(value.secret_string().unwrap().contains("\"host\""));
    // Leave nothing billed.
    let (_, gone, _) = tenants::request_deprovision(
        stack.pool(),
        &tenantd::config::Tiers::defaults(),
        &tenant,
        tenantd::tenants::Deletion::FORCE_NO_SNAPSHOT,
        5,
    )
    .await
    .unwrap();
    let (stop, worker) = stack.spawn_worker(
        &settings,
        Cloud::from_sdk_config(&config_for_account(&account).await),
    );
    assert_eq!(
        stack.finished(gone.id, TIMEOUT).await.state,
        JobState::Succeeded
    );
    stop.cancel();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_instance_is_deleted_with_its_final_snapshot_a_failed_one_without() {
    let stack = Stack::new().await;
    let settings = settings(&test_env(&stack.db, &[]));
    let (stop, worker) =
        stack.spawn_worker(&settings, Cloud::from_sdk_config(&sdk_config(None).await));
    let tiers = tenantd::config::Tiers::defaults();
    let (full, failed) = (tenant_id("full"), tenant_id("broken"));
    let jobs = [
        stack.provision(&full, "starter").await,
        stack.provision(&failed, "starter").await,
    ];
    for job in jobs {
        assert_eq!(
            stack.finished(job, TIMEOUT).await.state,
            JobState::Succeeded
        );
    }
    force_status(&format!("saas-{full}"), "storage-full").await;
    force_status(&format!("saas-{failed}"), "failed").await;
    for tenant in [&full, &failed] {
        let (_, job, _) = tenants::request_deprovision(
            stack.pool(),
            &tiers,
            tenant,
            tenants::Deletion::KEEP_SNAPSHOT,
            5,
        )
        .await
        .unwrap();
        let job = stack.finished(job.id, TIMEOUT).await;
        assert_eq!(job.state, JobState::Succeeded, "{tenant}: {:?}", job.error);
        assert!(stack.instance(&format!("saas-{tenant}")).await.is_none());
    }
    let snapshots = |tenant: String| {
        let rds = stack.rds.clone();
        async move {
            rds.describe_db_snapshots()
                .db_instance_identifier(format!("saas-{tenant}"))
                .snapshot_type("manual")
                .send()
                .await
                .unwrap()
                .db_snapshots()
                .len()
        }
    };
    // storage-full can still be snapshotted, so it is: the data is kept.
    assert_eq!(snapshots(full.clone()).await, 1);
    // RDS refuses a snapshot of a failed instance: it goes without one.
    assert_eq!(snapshots(failed.clone()).await, 0);
    stop.cancel();
    worker.await.unwrap();
}
