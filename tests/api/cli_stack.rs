//! The command line against the real daemon (`tenantd serve`) on the local stack: `create
//! --wait` reaches ready, `/metrics` shows the provisioning that just ran, `delete --wait`
//! reaches deleted, and a provisioning that fails makes `create --wait` exit non-zero with the
//! cause. Run through `localstack/test`.

use crate::support;

use std::collections::HashMap;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::app::TOKEN;
use support::stack::{Stack, tenant_id, test_env};
use support::wait_for;
use tokio::process::{Child, Command};

const TIMEOUT: Duration = Duration::from_secs(180);

struct Daemon {
    url: String,
    _child: Child,
}

/// Starts `tenantd serve` on a free port with the test's environment, its log going to `log`;
/// returns once it is ready.
async fn serve(env: HashMap<String, String>, log: Stdio) -> Daemon {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .arg("serve")
        .envs(env)
        .env("TENANTD_LISTEN", format!("127.0.0.1:{port}"))
        .env("TENANTD_API_TOKENS", TOKEN)
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start tenantd serve");
    let http = reqwest::Client::new();
    let ready = format!("{url}/readyz");
    wait_for(
        "the daemon to be ready",
        Duration::from_secs(30),
        || async {
            let r = http.get(&ready).send().await.ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;
    Daemon { url, _child: child }
}

async fn cli(daemon: &Daemon, args: &[&str]) -> Output {
    let run = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .args(args)
        .args(["--poll-interval", "200ms"])
        .env_clear()
        .env("TENANTD_URL", &daemon.url)
        .env("TENANTD_TOKEN", TOKEN)
        .output();
    tokio::time::timeout(TIMEOUT, run)
        .await
        .expect("the CLI finished in time")
        .expect("the CLI ran")
}

async fn metrics(daemon: &Daemon) -> String {
    reqwest::get(format!("{}/metrics", daemon.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The sum of the samples of `name` whose line holds every one of `labels`.
fn total(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn create_wait_reaches_ready_metrics_move_and_delete_wait_reaches_deleted() {
    let stack = Stack::new().await;
    let log_path = std::env::temp_dir().join(format!("tenantd-cli-{}.log", uuid::Uuid::new_v4()));
    let log = std::fs::File::create(&log_path).unwrap();
    let env = test_env(
        &stack.db,
        &[("TENANTD_LOG_FORMAT", "json"), ("RUST_LOG", "trace")],
    );
    let daemon = serve(env, log.into()).await;
    let tenant = tenant_id("cli");
    let before = metrics(&daemon).await;

    let out = cli(
        &daemon,
        &["tenants", "create", &tenant, "--tier", "starter", "--wait"],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("provision {tenant}: running step")),
        "{stdout}"
    );
    assert!(stdout.contains("status       ready"), "{stdout}");

    let out = cli(&daemon, &["tenants", "get", &tenant, "--output", "json"]).await;
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["status"], "ready");
    assert!(shown["endpoint"]["port"].as_i64().is_some(), "{shown}");
    assert!(!shown.to_string().to_lowercase().contains("password"));

    let after = metrics(&daemon).await;
    for (name, labels) in [
        ("tenantd_step_outcomes_total", &["kind=\"provision\""][..]),
        (
            "tenantd_step_duration_seconds_count",
            &["kind=\"provision\""][..],
        ),
        (
            "tenantd_aws_calls_total",
            &["service=\"rds\"", "result=\"ok\""][..],
        ),
        (
            "tenantd_aws_calls_total",
            &["service=\"secretsmanager\""][..],
        ),
        (
            "tenantd_jobs",
            &["kind=\"provision\"", "state=\"succeeded\""][..],
        ),
    ] {
        assert!(
            total(&after, name, labels) > total(&before, name, labels),
            "{name} {labels:?} did not move:\n{after}"
        );
    }

    let out = cli(
        &daemon,
        &[
            "tenants",
            "delete",
            &tenant,
            "--no-final-snapshot",
            "--wait",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("status       deleted"));
    assert!(stack.instance(&format!("saas-{tenant}")).await.is_none());
    let secrets = stack
        .secrets_named(&format!("saas/tenant/{tenant}/database"))
        .await;
    assert!(
        secrets.iter().all(|s| s.deleted_date().is_some()),
        "the secret waits out its recovery window: {secrets:?}"
    );

    // The log: JSON lines, every request and every step with the tenant, never the token.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    assert!(!log.contains(TOKEN), "the API token was logged");
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON log lines"))
        .collect();
    let about_tenant = |message: &str| {
        lines
            .iter()
            .filter(|l| l["message"] == message && l.to_string().contains(&tenant))
            .count()
    };
    assert!(about_tenant("finished processing request") >= 4);
    assert!(about_tenant("step recorded") >= 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_provisioning_makes_create_wait_exit_non_zero_with_the_cause() {
    let stack = Stack::new().await;
    let broken = std::env::temp_dir().join(format!("broken-migrations-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("1_broken.sql"), "CREATE TABLE (;").unwrap();
    let env = test_env(
        &stack.db,
        &[("TENANTD_TENANT_MIGRATIONS", broken.to_str().unwrap())],
    );
    let daemon = serve(env, Stdio::null()).await;
    let tenant = tenant_id("clifail");

    let out = cli(
        &daemon,
        &["tenants", "create", &tenant, "--tier", "starter", "--wait"],
    )
    .await;
    let _ = std::fs::remove_dir_all(&broken);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.starts_with(&format!("tenantd: provision {tenant} failed: ")),
        "{stderr}"
    );
    assert!(
        stderr.contains("migrat"),
        "the cause names the migrations: {stderr}"
    );
    assert!(stdout.contains("status       failed"), "{stdout}");
    stack.assert_nothing_left(&tenant).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn set_tier_suspend_and_resume_wait_for_their_end() {
    let stack = Stack::new().await;
    let daemon = serve(test_env(&stack.db, &[]), Stdio::null()).await;
    let tenant = tenant_id("cli2");
    let run = |args: Vec<String>| {
        let daemon = &daemon;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = cli(daemon, &args).await;
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            (out.status.code(), stdout, stderr)
        }
    };
    let args = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
    let (code, out, err) = run(args(&format!(
        "tenants create {tenant} --tier starter --wait"
    )))
    .await;
    assert_eq!(code, Some(0), "{out}\n{err}");

    let (code, out, err) = run(args(&format!("tenants set-tier {tenant} pro --wait"))).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("tier         pro"), "{out}");
    assert!(out.contains("storage      100 GiB"), "{out}");
    // The same tier again: nothing to do.
    let (code, out, _) = run(args(&format!("tenants set-tier {tenant} pro"))).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("nothing to change"), "{out}");
    // A tier that does not exist: refused with its code.
    let (code, _, err) = run(args(&format!("tenants set-tier {tenant} gold"))).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("unknown_tier"), "{err}");

    let (code, out, err) = run(args(&format!("tenants suspend {tenant} --wait"))).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("status       suspended"), "{out}");
    let (code, _, err) = run(args(&format!("tenants suspend {tenant}"))).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("tenant_not_ready"), "{err}");
    let (code, out, err) = run(args(&format!("tenants resume {tenant} --wait"))).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("status       ready"), "{out}");
}
