//! A worker killed (SIGKILL) while its CreateBlueGreenDeployment, or its
//! SwitchoverBlueGreenDeployment, is in flight, then another worker taking over: the upgrade
//! ends in one of its two end states (here: done), and the tenant never had more than one
//! Blue/Green deployment, as a watcher of the local RDS's deployments sees throughout.

use crate::engine_upgrade::{count_notes, instances_of, ready_on_16, upgrade};
use crate::support;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use support::proxy::FaultProxy;
use support::rds::Control;
use support::stack::*;
use support::wait_for;
use tenantd::cloud::Cloud;
use tenantd::queue::{self, JobState};
use tenantd::tenants::TenantStatus;
use tenantd::workflow::upgrade::{Apply, deployment_name};
use tokio::process::Command;

const TIMEOUT: Duration = Duration::from_secs(180);

/// Counts, until stopped, the most Blue/Green deployments of `instance` the local RDS held at
/// once.
fn watch_deployments(instance: String) -> (Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let most = Arc::new(AtomicUsize::new(0));
    let seen = most.clone();
    let task = tokio::spawn(async move {
        let control = Control::new();
        loop {
            let (_, body) = control.get("/blue-green-deployments").await;
            let n = body["deployments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| {
                    [&d["source"], &d["target"]]
                        .iter()
                        .any(|i| i.as_str().is_some_and(|i| i.starts_with(&instance)))
                })
                .count();
            seen.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (most, task)
}

async fn killed_during(operation: &str) {
    let mut u = ready_on_16("upgkill", &[("TENANTD_LEASE", "1s")]).await;
    // The in-process worker steps aside; the victim is a worker process whose call is held in
    // flight by the local RDS (which then carries it out: the answer is what is lost).
    u.stop_worker().await;
    let (most, watcher) = watch_deployments(u.instance.clone());
    let proxy = FaultProxy::start(&stack_endpoint()).await;
    let mut victim_env = u.env.clone();
    victim_env.insert("AWS_ENDPOINT_URL".into(), proxy.url.clone());
    let mut fault = json!({ "operation": operation, "count": 1, "latency_ms": 2500 });
    if operation == "CreateBlueGreenDeployment" {
        fault["match"] =
            json!({ "Source": u.stack.instance(&u.instance).await.unwrap().db_instance_arn() });
    }
    rds_fault(fault).await;
    let mut victim = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .arg("worker")
        .envs(&victim_env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let job = upgrade(&u, "17", Apply::Immediately).await;
    wait_for(&format!("{operation} in flight"), TIMEOUT, || async {
        (proxy.seen(operation) > 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    victim.start_kill().unwrap();
    victim.wait().await.unwrap();
    assert!(u.stack.job(job).await.state.is_active());
    // The call the victim made reaches RDS all the same, after the victim is gone; the next
    // worker starts once RDS has carried it out, so it meets what its predecessor left.
    let name = deployment_name(job);
    let carried_out = |status: Option<&str>| match operation {
        "CreateBlueGreenDeployment" => status.is_some(),
        _ => status == Some("SWITCHOVER_COMPLETED"),
    };
    wait_for(&format!("{operation} carried out"), TIMEOUT, || async {
        let out = u
            .stack
            .rds
            .describe_blue_green_deployments()
            .filters(
                aws_sdk_rds::types::Filter::builder()
                    .name("blue-green-deployment-name")
                    .values(&name)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let status = out
            .blue_green_deployments()
            .first()
            .and_then(|d| d.status());
        carried_out(status).then_some(())
    })
    .await;

    let settings = settings(&u.env);
    let cloud = Cloud::from_sdk_config(&sdk_config(None).await);
    let (stop, worker) = u.stack.spawn_worker(&settings, cloud);
    let done = u.stack.finished(job, TIMEOUT).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    let history = queue::history(u.stack.pool(), job).await.unwrap();
    assert!(
        history.iter().any(|h| h.outcome.as_str() == "rescued"),
        "{history:?}"
    );
    // The rerun found the deployment its predecessor made (and made no second one).
    if operation == "CreateBlueGreenDeployment" {
        assert!(
            history.iter().any(|h| h
                .note
                .as_deref()
                .is_some_and(|n| n.contains("made by this job"))),
            "{history:#?}"
        );
    }
    watcher.abort();
    assert_eq!(
        most.load(Ordering::SeqCst),
        1,
        "one Blue/Green deployment at most"
    );
    let row = u.stack.tenant(&u.tenant).await;
    assert_eq!(row.status, TenantStatus::Ready);
    assert_eq!(row.engine_version.as_deref(), Some("17.4"));
    assert_eq!(count_notes(&u).await, 100);
    // The upgraded instance and the old one kept: no second green.
    assert_eq!(
        instances_of(&u).await,
        [u.instance.clone(), format!("{}-old1", u.instance)]
    );
    stop.cancel();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_while_creating_green_leaves_one_deployment_and_the_upgrade_done() {
    killed_during("CreateBlueGreenDeployment").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_during_the_switchover_leaves_the_upgrade_done() {
    killed_during("SwitchoverBlueGreenDeployment").await;
}
