//! A worker killed (SIGKILL) while its ModifyDBInstance is in flight, during a tier change and
//! during a drift repair, then another worker taking over: the change is applied once (the
//! retried step finds it applied and asks for nothing more), the tenant ends as desired, with
//! one instance and one secret.

use crate::support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use support::proxy::FaultProxy;
use support::stack::*;
use support::wait_for;
use tenantd::cloud::Cloud;
use tenantd::config::Tiers;
use tenantd::queue::{self, JobState};
use tenantd::tenants::{self, Findings, RepairRequest, TenantStatus};
use tenantd::workflow::reconcile::{Apply, Reason};
use tokio::process::Command;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(120);

enum Change {
    Tier,
    Repair,
}

async fn killed_during_modify(change: Change) {
    let stack = Stack::new().await;
    let tenant = tenant_id("crash2");
    let instance = format!("saas-{tenant}");
    // Ready, through an in-process worker.
    let env = test_env(
        &stack.db,
        &[("TENANTD_LEASE", "1s"), ("TENANTD_RECONCILE_INTERVAL", "0")],
    );
    let settings = settings(&env);
    let cloud = || async { Cloud::from_sdk_config(&sdk_config(None).await) };
    let (stop, worker) = stack.spawn_worker(&settings, cloud().await);
    let job = stack.provision(&tenant, "starter").await;
    assert_eq!(
        stack.finished(job, TIMEOUT).await.state,
        JobState::Succeeded
    );
    stop.cancel();
    worker.await.unwrap();

    // The victim: a worker process whose ModifyDBInstance is held in flight.
    let proxy = FaultProxy::start(&stack_endpoint()).await;
    let victim_env = test_env(
        &stack.db,
        &[
            ("TENANTD_LEASE", "1s"),
            ("TENANTD_RECONCILE_INTERVAL", "0"),
            ("AWS_ENDPOINT_URL", proxy.url.as_str()),
        ],
    );
    if let Change::Repair = change {
        // Backups shortened behind tenantd's back (found and sent for repair below).
        stack
            .rds
            .modify_db_instance()
            .db_instance_identifier(&instance)
            .backup_retention_period(2)
            .apply_immediately(true)
            .send()
            .await
            .unwrap();
        wait_for("the instance to be available again", TIMEOUT, || async {
            let db = stack.instance(&instance).await?;
            (db.db_instance_status() == Some("available")).then_some(())
        })
        .await;
    }
    rds_fault(json!({
        "operation": "ModifyDBInstance", "count": 1, "latency_ms": 2500,
        "match": { "DBInstanceIdentifier": instance },
    }))
    .await;
    let mut victim = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .arg("worker")
        .envs(&victim_env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let job: Uuid = match change {
        Change::Tier => {
            let (_, job, _) = tenants::request_tier_change(
                stack.pool(),
                &Tiers::defaults(),
                &tenant,
                "pro",
                Apply::Immediately,
                5,
            )
            .await
            .unwrap();
            job.unwrap().id
        }
        Change::Repair => {
            let row = stack.tenant(&tenant).await;
            let findings = Findings {
                drift: vec![tenants::Difference {
                    field: "backup_retention_days".into(),
                    expected: "7".into(),
                    actual: "2".into(),
                }],
                status: TenantStatus::Ready,
                error: None,
                engine_version: None,
                pending_maintenance: None,
                ca_certificate: None,
            };
            let repair = RepairRequest {
                reason: Reason::Repair,
                cause: None,
                max_attempts: 5,
            };
            let (recorded, job) = tenants::record_findings(
                stack.pool(),
                &tenant,
                row.updated_at,
                &findings,
                Some(repair),
            )
            .await
            .unwrap();
            assert!(recorded);
            job.unwrap().id
        }
    };
    wait_for("ModifyDBInstance in flight", TIMEOUT, || async {
        (proxy.seen("ModifyDBInstance") > 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    victim.start_kill().unwrap();
    victim.wait().await.unwrap();
    assert!(stack.job(job).await.state.is_active());

    let (stop, worker) = stack.spawn_worker(&settings, cloud().await);
    let finished = stack.finished(job, TIMEOUT).await;
    assert_eq!(finished.state, JobState::Succeeded, "{:?}", finished.error);
    let history = queue::history(stack.pool(), job).await.unwrap();
    assert!(
        history.iter().any(|h| h.outcome.as_str() == "rescued"),
        "{history:?}"
    );
    let db = stack.instance(&instance).await.unwrap();
    let row = stack.tenant(&tenant).await;
    assert_eq!(row.status, TenantStatus::Ready);
    match change {
        Change::Tier => {
            assert_eq!(row.tier, "pro");
            assert_eq!(db.db_instance_class(), Some("db.t3.small"));
            assert_eq!(db.allocated_storage(), Some(100));
            assert_eq!(db.backup_retention_period(), Some(14));
        }
        Change::Repair => {
            assert_eq!(row.tier, "starter");
            assert_eq!(db.backup_retention_period(), Some(7));
            assert_eq!(db.db_instance_class(), Some("db.t3.micro"));
        }
    }
    // One job did it, and one instance and one secret remain.
    let jobs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE tenant_id = $1 AND kind = 'reconcile'")
            .bind(&tenant)
            .fetch_one(stack.pool())
            .await
            .unwrap();
    assert_eq!(jobs, 1);
    assert_eq!(stack.instances_named(&instance).await, 1);
    let secrets = stack
        .secrets_named(&format!("saas/tenant/{tenant}/database"))
        .await;
    assert_eq!(secrets.len(), 1);
    stop.cancel();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_during_a_tier_change_leaves_one_change_applied() {
    killed_during_modify(Change::Tier).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_during_a_repair_leaves_one_repair_applied() {
    killed_during_modify(Change::Repair).await;
}
