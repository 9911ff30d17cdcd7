//! The command-line client against a running API: every command's output, `--wait` following a
//! job to its end (through stand-in workflows, so no AWS is needed), and errors as
//! `tenantd: <code>: <message>` with a non-zero exit.

use crate::support;

use std::process::Output;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use support::app::{TOKEN, TestApp, spawn_app};
use support::worker_settings;
use tenantd::workflow::{Registry, Step, StepContext, StepError, Transition, Workflow};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

tenantd::steps! {
    /// The stand-in provisioning's steps: the real first one, then one that ends it.
    enum FakeProvisionStep {
        Credentials = "credentials",
        CreateInstance = "create_instance",
    }
}

impl Step for FakeProvisionStep {
    fn compensation(self) -> Option<Self> {
        None
    }
}

type Cx<'a> = StepContext<'a, serde_json::Value, serde_json::Value>;

/// Stands in for the provisioning workflow: one step that makes the tenant ready, or fails
/// for tenants named `broken-*` with the cause AWS would give.
struct FakeProvision;

#[async_trait]
impl Workflow for FakeProvision {
    const KIND: &'static str = "provision";
    type Step = FakeProvisionStep;
    type Args = serde_json::Value;
    type Data = serde_json::Value;

    fn first_step() -> FakeProvisionStep {
        FakeProvisionStep::Credentials
    }

    async fn run(
        &self,
        step: FakeProvisionStep,
        cx: &mut Cx<'_>,
    ) -> Result<Transition<FakeProvisionStep>, StepError> {
        let tenant = cx.tenant()?;
        match step {
            FakeProvisionStep::Credentials => {
                Ok(Transition::Next(FakeProvisionStep::CreateInstance))
            }
            _ if tenant.starts_with("flaky") && cx.job.attempt == 0 => Err(StepError::retry(
                "throttled",
                "rds CreateDBInstance: Throttling: Rate exceeded",
            )),
            _ if tenant.starts_with("broken") => Err(StepError::fail(
                "aws_error",
                "rds CreateDBInstance: InsufficientDBInstanceCapacity: no capacity for db.t3.small",
            )),
            _ => {
                sqlx::query(
                    "UPDATE tenants SET status = 'ready', db_instance_id = 'saas-' || id,
                         endpoint_host = 'db.example', endpoint_port = 5432,
                         secret_arn = 'arn:secret:' || id WHERE id = $1",
                )
                .bind(tenant)
                .execute(cx.db)
                .await
                .unwrap();
                Ok(Transition::Done)
            }
        }
    }
}

tenantd::steps! {
    enum FakeDeprovisionStep {
        DeleteAlarms = "delete_alarms",
    }
}

impl Step for FakeDeprovisionStep {
    fn compensation(self) -> Option<Self> {
        None
    }
}

/// Stands in for the deprovisioning workflow: marks the tenant deleted.
struct FakeDeprovision;

#[async_trait]
impl Workflow for FakeDeprovision {
    const KIND: &'static str = "deprovision";
    type Step = FakeDeprovisionStep;
    type Args = serde_json::Value;
    type Data = serde_json::Value;

    fn first_step() -> FakeDeprovisionStep {
        FakeDeprovisionStep::DeleteAlarms
    }

    async fn run(
        &self,
        _: FakeDeprovisionStep,
        cx: &mut Cx<'_>,
    ) -> Result<Transition<FakeDeprovisionStep>, StepError> {
        sqlx::query("UPDATE tenants SET status = 'deleted' WHERE id = $1")
            .bind(cx.tenant()?)
            .execute(cx.db)
            .await
            .unwrap();
        Ok(Transition::Done)
    }
}

struct World {
    app: TestApp,
    stop: CancellationToken,
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn world() -> World {
    let app = spawn_app().await;
    let stop = CancellationToken::new();
    tokio::spawn(tenantd::worker::run(
        app.db.pool.clone(),
        Registry::new()
            .register(FakeProvision)
            .register(FakeDeprovision),
        worker_settings("cli"),
        stop.clone(),
    ));
    World { app, stop }
}

/// Runs `tenantd <args>` against `url` with the test token and no daemon settings at all.
async fn tenantd(url: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenantd"));
    command
        .args(args)
        .args(["--poll-interval", "50ms"])
        .env_clear()
        .env("TENANTD_URL", url)
        .env("TENANTD_TOKEN", TOKEN);
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the CLI finished within a minute")
        .expect("the CLI ran")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_wait_follows_the_steps_until_the_tenant_is_ready() {
    let w = world().await;
    let out = tenantd(
        &w.app.url,
        &["tenants", "create", "acme", "--tier", "pro", "--wait"],
    )
    .await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("provision acme:"), "progress lines: {text}");
    assert!(text.contains("status       ready"), "{text}");
    assert!(text.contains("db.example:5432"), "{text}");

    let out = tenantd(&w.app.url, &["tenants", "get", "acme", "--output", "json"]).await;
    assert!(out.status.success());
    let tenant: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(tenant["status"], "ready");
    let job_id = tenant["job"]["id"].as_str().unwrap().to_string();

    let out = tenantd(&w.app.url, &["jobs", "get", &job_id]).await;
    let text = stdout(&out);
    assert!(out.status.success());
    for expected in [
        "succeeded",
        "credentials",
        "create_instance",
        "advanced",
        "enqueued",
    ] {
        assert!(text.contains(expected), "no {expected} in {text}");
    }
    let out = tenantd(&w.app.url, &["jobs", "get", &job_id, "--output", "json"]).await;
    let job: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(job["history"].as_array().unwrap().len(), 3, "{job}");

    let out = tenantd(&w.app.url, &["tenants", "list"]).await;
    let text = stdout(&out);
    assert!(
        text.starts_with("ID") && text.contains("acme") && text.contains("ready"),
        "{text}"
    );
    let out = tenantd(
        &w.app.url,
        &["tenants", "list", "--status", "failed", "--output", "json"],
    )
    .await;
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["tenants"], serde_json::json!([]));

    let out = tenantd(
        &w.app.url,
        &["tenants", "delete", "acme", "--no-final-snapshot", "--wait"],
    )
    .await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("status       deleted"));
    let args: Value = sqlx::query_scalar("SELECT args FROM jobs WHERE kind = 'deprovision'")
        .fetch_one(&w.app.db.pool)
        .await
        .unwrap();
    assert_eq!(args["final_snapshot"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_provisioning_makes_create_wait_exit_non_zero_with_the_cause() {
    let w = world().await;
    let out = tenantd(
        &w.app.url,
        &[
            "tenants",
            "create",
            "broken-co",
            "--tier",
            "pro",
            "--wait",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("tenantd: provision broken-co failed: rds CreateDBInstance: InsufficientDBInstanceCapacity"),
        "{err}"
    );
    let tenant: Value = serde_json::from_slice(&out.stdout).expect("stdout is only JSON");
    assert_eq!(tenant["job"]["state"], "failed");
}

#[tokio::test]
async fn api_errors_print_their_code_and_message_and_exit_non_zero() {
    let app = spawn_app().await;
    let out = tenantd(&app.url, &["tenants", "get", "nobody"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "tenantd: tenant_not_found: tenant nobody not found\n"
    );

    let out = tenantd(&app.url, &["tenants", "create", "Bad_Id", "--tier", "pro"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("tenantd: invalid_tenant_id: "),
        "{}",
        stderr(&out)
    );

    let out = tenantd(&app.url, &["tenants", "create", "acme", "--tier", "gold"]).await;
    assert!(
        stderr(&out).starts_with("tenantd: unknown_tier: "),
        "{}",
        stderr(&out)
    );

    let out = tenantd(&app.url, &["tenants", "create", "acme", "--tier", "pro"]).await;
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("requested: provision acme, job "));
    let out = tenantd(&app.url, &["tenants", "create", "acme", "--tier", "pro"]).await;
    assert!(stdout(&out).starts_with("already requested: provision acme"));
    let out = tenantd(&app.url, &["tenants", "delete", "acme"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("tenantd: provisioning_in_progress: "));
}

#[tokio::test]
async fn the_client_refuses_to_run_without_a_token_or_with_a_wrong_one() {
    let app = spawn_app().await;
    let out = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .args(["tenants", "list", "--url", &app.url])
        .env_clear()
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("TENANTD_TOKEN is not set"));

    let out = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .args(["tenants", "list", "--url", &app.url])
        .env_clear()
        .env("TENANTD_TOKEN", "wrong")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("tenantd: unauthorized: "));

    let out = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .args(["tenants", "list", "--url", "http://127.0.0.1:9"])
        .env_clear()
        .env("TENANTD_TOKEN", TOKEN)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("tenantd: cannot reach the API"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn attempts_are_counted_from_one_by_wait_and_by_jobs_get() {
    let w = world().await;
    let out = tenantd(
        &w.app.url,
        &["tenants", "create", "flaky-co", "--tier", "pro", "--wait"],
    )
    .await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    // The first try failed: it was attempt 1 of 3 (worker_settings give 3).
    assert!(
        text.contains("create_instance retrying (attempt 1 of 3)") && text.contains("Throttling"),
        "{text}"
    );
    let job_id = serde_json::from_slice::<Value>(
        &tenantd(
            &w.app.url,
            &["tenants", "get", "flaky-co", "--output", "json"],
        )
        .await
        .stdout,
    )
    .unwrap()["job"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let text = stdout(&tenantd(&w.app.url, &["jobs", "get", &job_id]).await);
    let retry_row = text
        .lines()
        .find(|l| l.contains("retrying"))
        .unwrap_or_else(|| panic!("no retrying row in {text}"));
    let columns: Vec<&str> = retry_row.split_whitespace().collect();
    assert_eq!(
        columns[1..4],
        ["create_instance", "1", "retrying"],
        "{text}"
    );
    let done_row = text
        .lines()
        .find(|l| l.contains("succeeded") && l.contains("create_instance"));
    assert_eq!(
        done_row.map(|l| l.split_whitespace().nth(2)),
        Some(Some("2")),
        "the second try is attempt 2: {text}"
    );
}

#[tokio::test]
async fn serve_refuses_to_start_without_an_api_token() {
    let out = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .arg("serve")
        .env_clear()
        .env("TENANTD_DATABASE_URL", "postgres://nobody@127.0.0.1:9/none")
        .env("TENANTD_TENANT_DB_TLS", "disable")
        .output()
        .await
        .unwrap();
    // A configuration error like every other: exit 2, the setting named, before any
    // connection is tried.
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("tenantd: configuration error: TENANTD_API_TOKENS")
            && err.contains("TENANTD_API_TOKENS_FILE"),
        "{err}"
    );
}

#[tokio::test]
async fn migrate_needs_only_the_database_url() {
    let db = support::empty_db().await;
    let out = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .arg("migrate")
        .env_clear()
        .env("TENANTD_DATABASE_URL", &db.url)
        // Provisioning settings that would stop `serve` are of no concern to `migrate`.
        .env("TENANTD_TENANT_MIGRATIONS", "/no/such/dir")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('jobs', 'tenants')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(tables, 2);
    let out = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .arg("migrate")
        .env_clear()
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("TENANTD_DATABASE_URL is not set"));
}

#[tokio::test]
async fn tenants_upgrade_asks_for_an_engine_upgrade_and_names_a_refusal() {
    let app = spawn_app().await;
    let (status, body) = app.create("upgrade-cli", "starter").await;
    assert_eq!(status, 202, "{body}");
    app.finish_provisioning("upgrade-cli").await;
    sqlx::query("UPDATE tenants SET engine_version = '16.8' WHERE id = 'upgrade-cli'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let out = tenantd(
        &app.url,
        &["tenants", "upgrade", "upgrade-cli", "--to", "16"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .starts_with("tenantd: not_an_upgrade: tenant upgrade-cli runs PostgreSQL 16.8"),
        "{}",
        stderr(&out)
    );
    let args = [
        "tenants",
        "upgrade",
        "upgrade-cli",
        "--to",
        "17",
        "--apply",
        "maintenance-window",
    ];
    let out = tenantd(&app.url, &args).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("requested: engine upgrade upgrade-cli, job "),
        "{}",
        stdout(&out)
    );
    let apply: String =
        sqlx::query_scalar("SELECT args->>'apply' FROM jobs WHERE kind = 'engine_upgrade'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(apply, "maintenance_window");
    let out = tenantd(&app.url, &args).await;
    assert!(stdout(&out).starts_with("already requested: engine upgrade upgrade-cli"));
}
