//! A worker killed (SIGKILL) between steps and in the middle of them, then another one taking
//! over: the tenant ends ready with exactly one instance and one secret, whose password opens
//! the database. Also: the password never appears in the daemon's log output, even at trace.

use crate::support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use support::proxy::FaultProxy;
use support::stack::*;
use support::wait_for;
use tenantd::cloud::Cloud;
use tenantd::queue::JobState;
use tenantd::tenants::{self, TenantStatus};
use tokio::process::{Child, Command};

const TIMEOUT: Duration = Duration::from_secs(120);

/// When the first worker is killed.
enum Kill {
    /// Once `step` is recorded as done (the next step is then under way).
    After(&'static str),
    /// While the instance is being created and the job waits.
    Waiting,
    /// While a call of this operation is held in flight for a while.
    During(&'static str),
}

fn spawn_daemon(env: &std::collections::HashMap<String, String>, log: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .arg("worker")
        .envs(env)
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start tenantd worker")
}

async fn crash_and_resume(tier: &str, kill: Kill) {
    let stack = Stack::new().await;
    let tenant = tenant_id("crash");
    let instance = format!("saas-{tenant}");
    let proxy = FaultProxy::start(&stack_endpoint()).await;
    let victim_env = test_env(
        &stack.db,
        &[
            ("TENANTD_LEASE", "1s"),
            ("AWS_ENDPOINT_URL", proxy.url.as_str()),
            // No instance poller: the wait step makes its own describe, where the kill lands.
            ("TENANTD_RDS_POLL_INTERVAL", "0"),
        ],
    );
    let hold = Duration::from_millis(2500);
    // Hold the step after the kill point, so the kill lands right after the point is recorded.
    let next_call = match kill {
        Kill::After("credentials") => Some(("CreateDBInstance", 1)),
        Kill::After("instance") => Some(("DescribeDBInstances", 1)),
        Kill::After("secret_endpoint") => Some(("GetSecretValue", 3)),
        // The backups step calls nothing when the instance already has the tier's settings.
        Kill::After("migrate") => Some(("PutMetricAlarm", 1)),
        Kill::After("backups") => Some(("PutMetricAlarm", 1)),
        Kill::After("alarms") => Some(("ModifyDBInstance", 1)),
        _ => None,
    };
    if let Some((op, nth)) = next_call {
        proxy.delay_nth(op, nth, hold);
    }
    if let Kill::During(op) = kill {
        match op {
            "CreateDBInstance" | "ModifyDBInstance" => {
                rds_fault(json!({
                    "operation": op, "count": 1, "latency_ms": hold.as_millis() as u64,
                    "match": { "DBInstanceIdentifier": instance },
                }))
                .await
            }
            _ => proxy.delay(op, 1, hold),
        }
    }
    let mut victim = spawn_daemon(&victim_env, Stdio::null());
    let job = stack.provision(&tenant, tier).await;
    match kill {
        Kill::After(step) => stack.reached(job, step, "advanced", TIMEOUT).await,
        Kill::Waiting => {
            stack
                .reached(job, "wait_available", "waiting", TIMEOUT)
                .await
        }
        Kill::During(op) => {
            wait_for(&format!("{op} in flight"), TIMEOUT, || async {
                (proxy.seen(op) > 0).then_some(())
            })
            .await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    victim.start_kill().unwrap();
    victim.wait().await.unwrap();
    assert!(
        !stack.job(job).await.state.eq(&JobState::Succeeded),
        "the victim finished before it was killed"
    );

    let env = test_env(&stack.db, &[("TENANTD_LEASE", "1s")]);
    let settings = settings(&env);
    let (stop, worker) =
        stack.spawn_worker(&settings, Cloud::from_sdk_config(&sdk_config(None).await));
    let finished = stack.finished(job, TIMEOUT).await;
    assert_eq!(finished.state, JobState::Succeeded, "{:?}", finished.error);
    assert_eq!(stack.tenant(&tenant).await.status, TenantStatus::Ready);
    let history = tenantd::queue::history(stack.pool(), job).await.unwrap();
    if !matches!(kill, Kill::Waiting) {
        // The killed worker held the job: its lease expired and the job was taken over.
        assert!(
            history.iter().any(|h| h.outcome == "rescued"),
            "{history:?}"
        );
    }

    // Exactly one instance and one secret, and the secret opens the database.
    assert_eq!(stack.instances_named(&instance).await, 1);
    let secrets = stack
        .secrets_named(&format!("saas/tenant/{tenant}/database"))
        .await;
    assert_eq!(secrets.len(), 1);
    assert!(secrets[0].deleted_date().is_none());
    assert!(
        stack
            .tenant_tables(&tenant)
            .await
            .contains(&"users".to_string())
    );

    // Leave nothing behind for the other tests.
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
async fn a_crash_after_the_credentials_step_resumes_to_ready() {
    crash_and_resume("starter", Kill::After("credentials")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_the_instance_step_resumes_to_ready() {
    crash_and_resume("starter", Kill::After("instance")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_while_waiting_for_the_instance_resumes_to_ready() {
    crash_and_resume("starter", Kill::Waiting).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_completing_the_secret_resumes_to_ready() {
    crash_and_resume("starter", Kill::After("secret_endpoint")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_the_migrations_resumes_to_ready() {
    crash_and_resume("starter", Kill::After("migrate")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_the_backups_step_resumes_to_ready() {
    crash_and_resume("enterprise", Kill::After("backups")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_the_alarms_resumes_to_ready() {
    crash_and_resume("enterprise", Kill::After("alarms")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_while_creating_the_secret_resumes_with_one_secret() {
    crash_and_resume("starter", Kill::During("CreateSecret")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_while_creating_the_instance_resumes_with_one_instance() {
    crash_and_resume("starter", Kill::During("CreateDBInstance")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_while_completing_the_secret_resumes_to_ready() {
    crash_and_resume("starter", Kill::During("PutSecretValue")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_while_switching_on_deletion_protection_resumes_to_ready() {
    crash_and_resume("enterprise", Kill::During("ModifyDBInstance")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_while_creating_alarms_resumes_to_ready() {
    crash_and_resume("starter", Kill::During("PutMetricAlarm")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_password_never_appears_in_the_daemon_log_even_at_trace_level() {
    let stack = Stack::new().await;
    let tenant = tenant_id("log");
    let log_path = std::env::temp_dir().join(format!("tenantd-{tenant}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let env = test_env(&stack.db, &[("RUST_LOG", "trace")]);
    let mut daemon = spawn_daemon(&env, Stdio::from(log));
    let job = stack.provision(&tenant, "starter").await;
    let finished = stack.finished(job, TIMEOUT).await;
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    assert_eq!(finished.state, JobState::Succeeded, "{:?}", finished.error);

    let secret = stack
        .secret_json(&format!("saas/tenant/{tenant}/database"))
        .await;
    let password = secret["password"].as_str().unwrap().to_string();
    let output = std::fs::read_to_string(&log_path).unwrap();
    std::fs::remove_file(&log_path).unwrap();
    assert!(output.contains("TRACE"), "the log was not at trace level");
    assert!(output.contains("CreateDBInstance"));
    for step in ["credentials", "instance", "migrate", "mark_ready"] {
        assert!(output.contains(step), "no log of step {step}");
    }
    assert!(
        !output.contains(&password),
        "the password appears in the daemon's log"
    );

    let settings = settings(&test_env(&stack.db, &[]));
    let (stop, worker) =
        stack.spawn_worker(&settings, Cloud::from_sdk_config(&sdk_config(None).await));
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
