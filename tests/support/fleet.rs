//! For the scale tests: real `tenantd serve` processes on the local stack, many tenants under
//! one id prefix, and checking that exactly their resources exist in AWS.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::time::Duration;

use tenantd::tenants::TenantStatus;
use tokio::process::{Child, Command};

use super::stack::Stack;
use super::wait_for;

pub const TIERS: [&str; 3] = ["starter", "pro", "enterprise"];

/// A short id prefix of its own for one test run (LocalStack is shared by parallel tests).
pub fn run_prefix(name: &str) -> String {
    format!("{name}{}", &uuid::Uuid::new_v4().simple().to_string()[..6])
}

/// Settings for daemons in the scale tests: short leases, a fast instance poller, a worker id.
pub fn daemon_env(
    base: &HashMap<String, String>,
    worker: &str,
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    let mut env = base.clone();
    for (k, v) in [
        ("TENANTD_LISTEN", "127.0.0.1:0"),
        ("TENANTD_API_TOKENS", "scale-test-token-0123456789abcdefgh"),
        ("TENANTD_WORKER_ID", worker),
        ("TENANTD_CONCURRENCY", "16"),
        ("TENANTD_RDS_POLL_INTERVAL", "500ms"),
        ("TENANTD_RDS_RATE", "200"),
        ("RUST_LOG", "warn"),
    ] {
        env.insert(k.to_string(), v.to_string());
    }
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

/// Starts `tenantd serve` (killed when dropped).
pub fn spawn_serve(env: &HashMap<String, String>) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .arg("serve")
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start tenantd serve")
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `tenantd serve` on a free port (killed when dropped); returns once it answers
/// `/readyz`, with its base URL.
pub async fn serve_ready(env: &HashMap<String, String>) -> (Child, String) {
    let port = free_port();
    let mut env = env.clone();
    env.insert("TENANTD_LISTEN".into(), format!("127.0.0.1:{port}"));
    let child = spawn_serve(&env);
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_for(
        "the daemon to be ready",
        Duration::from_secs(60),
        || async {
            let r = http.get(format!("{url}/readyz")).send().await.ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;
    (child, url)
}

/// SIGKILL, and reap.
pub async fn kill9(child: &mut Child) {
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("reap");
}

/// Asks for `n` tenants `<prefix>-<i>`, tiers in turn, with `attempts` per step; returns
/// (tenant, tier) pairs.
pub async fn provision_many(
    stack: &Stack,
    prefix: &str,
    n: usize,
    attempts: i32,
) -> Vec<(String, &'static str)> {
    let mut tenants = Vec::new();
    for i in 0..n {
        let tenant = format!("{prefix}-{i}");
        let tier = TIERS[i % TIERS.len()];
        stack.provision_with_attempts(&tenant, tier, attempts).await;
        tenants.push((tenant, tier));
    }
    tenants
}

/// Waits until no tenant under `prefix` is still provisioning; returns them by status.
pub async fn settled(stack: &Stack, timeout: Duration) -> BTreeMap<String, TenantStatus> {
    wait_for("every tenant to settle", timeout, || async {
        let rows: Vec<(String, TenantStatus)> =
            sqlx::query_as("SELECT id, status FROM tenants ORDER BY id")
                .fetch_all(stack.pool())
                .await
                .unwrap();
        rows.iter()
            .all(|(_, s)| *s != TenantStatus::Provisioning)
            .then(|| rows.into_iter().collect())
    })
    .await
}

/// Every RDS instance whose identifier starts with `prefix`.
pub async fn instances_with_prefix(stack: &Stack, prefix: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut marker = None;
    loop {
        let out = stack
            .rds
            .describe_db_instances()
            .max_records(100)
            .set_marker(marker)
            .send()
            .await
            .unwrap();
        ids.extend(
            out.db_instances()
                .iter()
                .filter_map(|d| d.db_instance_identifier())
                .filter(|id| id.starts_with(prefix))
                .map(str::to_string),
        );
        marker = out.marker().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    ids.sort();
    ids
}

/// Every secret (also those waiting for deletion) whose name starts with `prefix`.
pub async fn secrets_with_prefix(stack: &Stack, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let out = stack
            .secrets
            .list_secrets()
            .include_planned_deletion(true)
            .filters(
                aws_sdk_secretsmanager::types::Filter::builder()
                    .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                    .values(prefix)
                    .build(),
            )
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        names.extend(
            out.secret_list()
                .iter()
                .filter_map(|s| s.name())
                .filter(|n| n.starts_with(prefix))
                .map(str::to_string),
        );
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    names.sort();
    names
}

/// Every alarm whose name starts with `prefix`.
pub async fn alarms_with_prefix(stack: &Stack, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let out = stack
            .cloudwatch
            .describe_alarms()
            .alarm_name_prefix(prefix)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        names.extend(
            out.metric_alarms()
                .iter()
                .filter_map(|a| a.alarm_name())
                .map(str::to_string),
        );
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    names.sort();
    names
}

/// Every tenant is ready, with exactly one instance, one secret and two alarms, and nothing
/// else under the run's prefix exists.
pub async fn assert_exactly_provisioned(stack: &Stack, prefix: &str, tenants: &[String]) {
    let statuses = settled(stack, Duration::from_secs(1)).await;
    let not_ready: Vec<_> = statuses
        .iter()
        .filter(|(_, s)| **s != TenantStatus::Ready)
        .collect();
    if !not_ready.is_empty() {
        // Why, from the history: the last error each of them met.
        let why: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT DISTINCT ON (j.tenant_id) j.tenant_id, h.step, coalesce(h.error, h.outcome)
             FROM job_history h JOIN jobs j ON j.id = h.job_id
             WHERE h.error IS NOT NULL ORDER BY j.tenant_id, h.id DESC",
        )
        .fetch_all(stack.pool())
        .await
        .unwrap();
        panic!("not ready: {not_ready:?}; last errors: {why:?}");
    }
    assert_eq!(statuses.len(), tenants.len());

    let mut want_instances: Vec<String> = tenants.iter().map(|t| format!("saas-{t}")).collect();
    want_instances.sort();
    assert_eq!(
        instances_with_prefix(stack, &format!("saas-{prefix}-")).await,
        want_instances,
        "instances"
    );
    let mut want_secrets: Vec<String> = tenants
        .iter()
        .map(|t| format!("saas/tenant/{t}/database"))
        .collect();
    want_secrets.sort();
    assert_eq!(
        secrets_with_prefix(stack, &format!("saas/tenant/{prefix}-")).await,
        want_secrets,
        "secrets"
    );
    let alarms = alarms_with_prefix(stack, &format!("saas-{prefix}-")).await;
    assert_eq!(alarms.len(), 2 * tenants.len(), "alarms: {alarms:?}");
    for t in tenants {
        let own = alarms
            .iter()
            .filter(|a| a.starts_with(&format!("saas-{t}-")))
            .count();
        assert_eq!(own, 2, "alarms of {t}: {alarms:?}");
    }
}
