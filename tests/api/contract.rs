//! The API holds to its OpenAPI document, as a client that knows only the document sees it:
//! schemathesis (a schema-driven fuzzer, pinned in tests/contract/requirements.txt and installed
//! by tests/contract/venv) reads `GET /openapi.json` of a real `tenantd serve` on the local
//! stack and sends about a thousand requests generated from it, valid and invalid, with a fixed
//! seed: every check it has, over its examples, coverage, fuzzing and stateful phases (the
//! stateful one follows the document's links: create, read, cancel, delete). Zero failures: a
//! request the document allows is never refused, one it forbids is never accepted, and every
//! answer has a documented status and schema. Run through `localstack/test`.
//!
//! The tenants its valid creates ask for are provisioned for real, by a daemon with two worker
//! slots, under instance and secret prefixes of this run's own; afterwards the test
//! deprovisions every one of them through the API and checks nothing is left.

use crate::support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::Method;
use support::app::TOKEN;
use support::fleet::{
    alarms_with_prefix, daemon_env, free_port, instances_with_prefix, run_prefix,
};
use support::stack::{Stack, test_env};
use support::wait_for;
use tenantd::tenants::TenantStatus;
use tokio::process::{Child, Command};

/// Generated test cases per operation and phase: about 1,000 requests over the nine operations
/// (the document's own is left out).
const MAX_EXAMPLES: &str = "130";
const SEED: &str = "1204";

/// The checks that do not apply to this API, each with the reason.
const EXCLUDED_CHECKS: &[&str] = &[
    // "Use after free" expects 404 from a resource once its DELETE succeeded. A deleted tenant
    // stays readable on purpose: `GET /v1/tenants/{id}` answers 200 with `status: "deleted"`
    // (and `deprovisioning` while it goes), so that a caller can see how and when it went and
    // a replayed DELETE answers 200 with the same job; the document says so on both operations.
    "use_after_free",
];

/// The `schemathesis` of tests/contract/venv (which creates its venv when missing).
fn schemathesis() -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/contract/venv");
    let out = std::process::Command::new(script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed ({}): schemathesis could not be installed",
        out.status
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Starts `tenantd serve` with its log in `log` (killed when dropped).
fn serve(env: &HashMap<String, String>, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("create the daemon's log");
    Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .arg("serve")
        .envs(env)
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start tenantd serve")
}

/// Every tenant's status; a tenant with an active job (a rollout's migration, a tier change)
/// reads as provisioning, since it cannot be deprovisioned until that job ends.
async fn statuses(stack: &Stack) -> Vec<(String, TenantStatus)> {
    sqlx::query_as(
        "SELECT t.id, CASE WHEN EXISTS (SELECT 1 FROM jobs j WHERE j.tenant_id = t.id
                 AND j.state IN ('queued', 'running', 'waiting') AND j.kind <> 'deprovision')
             AND t.status <> 'deprovisioning' THEN 'provisioning'::tenant_status
             ELSE t.status END
         FROM tenants t ORDER BY t.id",
    )
    .fetch_all(stack.pool())
    .await
    .unwrap()
}

/// Waits for every tenant to reach one of `settled`; returns the tenants, or the ones that did
/// not within `timeout`.
async fn settle(
    stack: &Stack,
    settled: &[TenantStatus],
    timeout: Duration,
) -> Result<Vec<(String, TenantStatus)>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let all = statuses(stack).await;
        let pending: Vec<_> = all.iter().filter(|(_, s)| !settled.contains(s)).collect();
        if pending.is_empty() {
            return Ok(all);
        }
        if Instant::now() > deadline {
            return Err(format!("not settled after {timeout:?}: {pending:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Deprovisions (without final snapshot) every tenant the run left, through the API, and
/// checks that no instance or alarm under the run's prefix remains.
async fn deprovision_all(stack: &Stack, url: &str, instance_prefix: &str) -> Result<(), String> {
    use TenantStatus::*;
    let timeout = Duration::from_secs(90);
    let http = reqwest::Client::new();
    // A rollout the run started stops starting migrations (cancelled through the API).
    let page: serde_json::Value = http
        .get(format!("{url}/v1/rollouts?limit=1000"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .map_err(|e| format!("GET /v1/rollouts: {e}"))?
        .json()
        .await
        .map_err(|e| format!("GET /v1/rollouts: {e}"))?;
    for r in page["rollouts"].as_array().into_iter().flatten() {
        if r["state"] == "running" || r["state"] == "paused" {
            let id = r["id"].as_str().unwrap_or_default();
            http.post(format!("{url}/v1/rollouts/{id}/cancel"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .map_err(|e| format!("cancel rollout {id}: {e}"))?;
        }
    }
    // The stateful phase may leave a tenant suspended: it is deprovisioned like the others.
    let left = settle(stack, &[Ready, Suspended, Failed, Deleted], timeout).await?;
    for (id, status) in &left {
        if *status == Deleted {
            continue;
        }
        let response = http
            .request(
                Method::DELETE,
                format!("{url}/v1/tenants/{id}?final_snapshot=false&force=true"),
            )
            .bearer_auth(TOKEN)
            .send()
            .await
            .map_err(|e| format!("DELETE {id}: {e}"))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(format!("DELETE {id}: {status} {body}"));
        }
    }
    let gone = settle(stack, &[Deleted], timeout).await?;
    let instances = instances_with_prefix(stack, instance_prefix).await;
    let alarms = alarms_with_prefix(stack, instance_prefix).await;
    if !instances.is_empty() || !alarms.is_empty() {
        return Err(format!(
            "left after deprovisioning: instances {instances:?}, alarms {alarms:?}"
        ));
    }
    eprintln!(
        "contract: {} tenants were provisioned and deprovisioned",
        gone.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_request_where_the_document_and_the_server_disagree() {
    let schemathesis = schemathesis();
    let stack = Stack::new().await;
    let run = run_prefix("contract");
    let instance_prefix = format!("saas-{run}-");
    let secret_prefix = format!("saas/{run}/");
    let listen = format!("127.0.0.1:{}", free_port());
    let env = daemon_env(
        &test_env(&stack.db, &[]),
        &run,
        &[
            ("TENANTD_LISTEN", listen.as_str()),
            ("TENANTD_API_TOKENS", TOKEN),
            // The client here is no guesser: its checks of every operation without and with a
            // wrong token are many failed authentications from one address, which would get
            // 429 (tested in tests/api/audit.rs) where these checks want the 401 they test.
            ("TENANTD_AUTH_FAILURES_PER_MINUTE", "100000"),
            // What the generated creates ask for is cheap: two steps at a time, on names of
            // this run's own (the stack is shared with tests running in parallel).
            ("TENANTD_CONCURRENCY", "2"),
            ("TENANTD_INSTANCE_PREFIX", instance_prefix.as_str()),
            ("TENANTD_SECRET_PREFIX", secret_prefix.as_str()),
        ],
    );
    let workdir = std::env::temp_dir().join(format!("tenantd-{run}"));
    std::fs::create_dir_all(&workdir).unwrap();
    let log = workdir.join("tenantd.log");
    let mut daemon = serve(&env, &log);
    let url = format!("http://{listen}");
    let http = reqwest::Client::new();
    wait_for(
        "the daemon to be ready",
        Duration::from_secs(30),
        || async {
            let r = http.get(format!("{url}/readyz")).send().await.ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;

    let started = Instant::now();
    let mut command = Command::new(&schemathesis);
    command
        .arg("run")
        .arg(format!("{url}/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--checks", "all"])
        .args(["--exclude-checks", &EXCLUDED_CHECKS.join(",")])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", SEED])
        .args(["--workers", "1"])
        .args(["--continue-on-failure"])
        .args(["--request-timeout", "10"])
        // No example database: every run replays the seed, not earlier runs' failures.
        .args(["--generation-database", "none"])
        .arg("--no-color")
        .current_dir(&workdir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .expect("schemathesis finishes within 5 minutes")
        .expect("run schemathesis");
    let fuzz_time = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    let cleanup = deprovision_all(&stack, &url, &instance_prefix).await;
    daemon.start_kill().ok();
    daemon.wait().await.ok();

    // Its summary: operations, phases, failures, test cases generated, the seed.
    let summary = stdout
        .find("= SUMMARY =")
        .and_then(|at| stdout[..at].rfind('\n').map(|line| &stdout[line + 1..]))
        .unwrap_or("<no summary>");
    eprintln!("contract: schemathesis ran for {fuzz_time:.1?}\n{summary}");
    assert!(
        output.status.success(),
        "schemathesis found requests where the document and the server disagree ({}):\n\
         {stdout}\n{stderr}\n--- daemon log ({}) ---\n{}",
        output.status,
        log.display(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    if let Err(e) = cleanup {
        panic!(
            "the run's tenants were not all deprovisioned: {e}\n--- daemon log ({}) ---\n{}",
            log.display(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    std::fs::remove_dir_all(&workdir).ok();
}
