//! A worker-only process (`tenantd worker`) is observable like `serve`: it answers `/healthz`,
//! `/readyz` and `/metrics` on `TENANTD_METRICS_LISTEN`, and nothing of the API there.

use crate::support;

use std::process::Stdio;
use std::time::Duration;

use support::fleet::free_port;
use support::stack::{Stack, test_env};
use support::wait_for;
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_serves_health_and_metrics_on_its_metrics_address() {
    let stack = Stack::new().await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let env = test_env(&stack.db, &[("TENANTD_METRICS_LISTEN", &listen)]);
    let mut worker = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .arg("worker")
        .envs(&env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://{listen}");
    let get = |path: &str| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let r = http.get(url).send().await.ok()?;
            Some((r.status().as_u16(), r.text().await.ok()?))
        }
    };
    wait_for(
        "the worker's health endpoint",
        Duration::from_secs(30),
        || get("/healthz"),
    )
    .await;
    assert_eq!(get("/readyz").await.unwrap().0, 200);
    // Alone, it is the maintenance leader, so it exports the fleet-wide gauges too.
    // The gauges come with the leader's first fleet read, a moment after leadership itself.
    let what = "leadership and the fleet gauges";
    wait_for(what, Duration::from_secs(30), || async {
        let (_, text) = get("/metrics").await?;
        // A whole line: the metric's HELP text also starts with "tenantd_maintenance_leader 1".
        let leader = text
            .lines()
            .any(|line| line == "tenantd_maintenance_leader 1");
        let gauges = text
            .lines()
            .any(|line| line.starts_with("tenantd_queue_depth "));
        (leader && gauges).then_some(())
    })
    .await;
    // The API is not served there.
    let (status, body) = get("/v1/tenants").await.unwrap();
    assert_eq!(status, 404, "{body}");
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_version_rds_does_not_offer_stops_the_start_naming_the_setting() {
    let stack = Stack::new().await;
    for (command, version) in [("worker", "16.0"), ("serve", "12")] {
        let env = test_env(
            &stack.db,
            &[
                ("TENANTD_ENGINE_VERSION", version),
                ("TENANTD_API_TOKENS", "worker-process-token-0123456789abcd"),
                ("TENANTD_LISTEN", "127.0.0.1:0"),
            ],
        );
        let out = Command::new(env!("CARGO_BIN_EXE_tenantd"))
            .arg(command)
            .envs(&env)
            .output()
            .await
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {err}");
        assert!(
            err.contains("configuration error: TENANTD_ENGINE_VERSION") && err.contains(version),
            "{command}: {err}"
        );
    }
    // A tier's minimum minor that RDS does not offer stops it too, naming the tier.
    let mut tiers = tenantd::config::Tiers::defaults();
    tiers.0.get_mut("pro").unwrap().minimum_engine_version = Some("16.99".into());
    let file = std::env::temp_dir().join(format!("{}.toml", support::stack::tenant_id("tiers")));
    std::fs::write(&file, toml::to_string(&tiers).unwrap()).unwrap();
    let env = test_env(&stack.db, &[("TENANTD_TIERS", file.to_str().unwrap())]);
    let out = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .arg("worker")
        .envs(&env)
        .output()
        .await
        .unwrap();
    std::fs::remove_file(&file).ok();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("configuration error: TENANTD_TIERS")
            && err.contains("tier pro: minimum_engine_version")
            && err.contains("16.99"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aws_call_that_never_answers_times_out_and_the_tenant_still_ends_ready() {
    use support::proxy::FaultProxy;
    use support::stack::stack_endpoint;
    let stack = Stack::new().await;
    let proxy = FaultProxy::start(&stack_endpoint()).await;
    // The first read of the tenant's secret and the first alarm are held for an hour.
    proxy.delay("GetSecretValue", 1, Duration::from_secs(3600));
    proxy.delay("PutMetricAlarm", 1, Duration::from_secs(3600));
    let env = test_env(
        &stack.db,
        &[
            ("AWS_ENDPOINT_URL", proxy.url.as_str()),
            ("TENANTD_AWS_OPERATION_TIMEOUT", "1s"),
        ],
    );
    let mut worker = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .arg("worker")
        .envs(&env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let tenant = support::stack::tenant_id("hung");
    let job = stack.provision(&tenant, "starter").await;
    let done = stack.finished(job, Duration::from_secs(120)).await;
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
    let history = tenantd::queue::history(stack.pool(), job).await.unwrap();
    assert_eq!(
        done.state,
        tenantd::queue::JobState::Succeeded,
        "{history:?}"
    );
    // Each held call was given up after the timeout and made again.
    assert!(
        proxy.seen("GetSecretValue") >= 2,
        "{}",
        proxy.seen("GetSecretValue")
    );
    assert!(
        proxy.seen("PutMetricAlarm") >= 3,
        "{}",
        proxy.seen("PutMetricAlarm")
    );
    assert_eq!(
        stack.tenant(&tenant).await.status,
        tenantd::tenants::TenantStatus::Ready
    );
}
