//! Engine versions as RDS has them, against LocalStack's local RDS and real PostgreSQL: a minor
//! version RDS applied by itself is recorded on the tenant without drift and without any
//! ModifyDBInstance; an instance below its tier's minimum minor gets a minor upgrade for its
//! maintenance window; another major is reported and never modified; RDS's pending maintenance
//! actions appear on the tenant (record, API, console) and go once applied. tenantd's AWS calls
//! go through a recording proxy, so the calls it made (and did not make) are counted.

use crate::support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use support::fleet::{daemon_env, serve_ready};
use support::proxy::{FaultProxy, Recorded};
use support::rds::Control;
use support::stack::*;
use support::wait_for;
use tenantd::cloud::Cloud;
use tenantd::queue::{Job, JobState};
use tenantd::tenants::{Tenant, TenantStatus};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const TIMEOUT: Duration = Duration::from_secs(120);

/// A worker (with maintenance, its reconciler every second, repairs on) whose AWS calls go
/// through `proxy`; `extra` settings override.
async fn worker(
    stack: &Stack,
    proxy: &FaultProxy,
    extra: &[(&str, &str)],
) -> (CancellationToken, JoinHandle<()>) {
    let mut all = vec![
        ("TENANTD_RECONCILE_INTERVAL", "1s"),
        ("TENANTD_REPAIR_DRIFT", "true"),
    ];
    all.extend_from_slice(extra);
    let settings = settings(&test_env(&stack.db, &all));
    let cloud = Cloud::from_sdk_config(&sdk_config(Some(&proxy.url)).await);
    stack.spawn_worker(&settings, cloud)
}

async fn stop(worker: (CancellationToken, JoinHandle<()>)) {
    worker.0.cancel();
    worker.1.await.unwrap();
}

async fn ready(stack: &Stack, prefix: &str) -> String {
    let tenant = tenant_id(prefix);
    let job = stack.provision(&tenant, "starter").await;
    let job = stack.finished(job, TIMEOUT).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    tenant
}

async fn tenant_until(
    stack: &Stack,
    tenant: &str,
    what: &str,
    check: impl Fn(&Tenant) -> bool,
) -> Tenant {
    wait_for(what, TIMEOUT, || async {
        let t = stack.tenant(tenant).await;
        check(&t).then_some(t)
    })
    .await
}

/// Waits until the reconciler has looked at the tenant twice more (rounds are 1 s apart).
async fn two_more_rounds(stack: &Stack, tenant: &str) -> Tenant {
    let since = stack.tenant(tenant).await.checked_at.unwrap_or_default();
    tenant_until(stack, tenant, "two more rounds", |t| {
        t.checked_at
            .is_some_and(|c| c > since + chrono::Duration::milliseconds(1500))
    })
    .await
}

fn drift_fields(t: &Tenant) -> Vec<String> {
    t.drift
        .as_ref()
        .map(|d| d.0.iter().map(|d| d.field.clone()).collect())
        .unwrap_or_default()
}

async fn reconcile_jobs(stack: &Stack, tenant: &str) -> Vec<Job> {
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE tenant_id = $1 AND kind = 'reconcile' ORDER BY created_at",
    )
    .bind(tenant)
    .fetch_all(stack.pool())
    .await
    .unwrap();
    let mut jobs = Vec::new();
    for id in ids {
        jobs.push(stack.job(id).await);
    }
    jobs
}

/// The form fields of a recorded query-protocol request.
fn form(r: &Recorded) -> HashMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(&r.body)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// The ModifyDBInstance calls tenantd made for `instance`, as their form fields.
fn modifies(proxy: &FaultProxy, instance: &str) -> Vec<HashMap<String, String>> {
    proxy
        .recorded()
        .iter()
        .filter(|r| r.operation == "ModifyDBInstance")
        .map(form)
        .filter(|f| f.get("DBInstanceIdentifier").map(String::as_str) == Some(instance))
        .collect()
}

fn engine_version_of(db: &aws_sdk_rds::types::DbInstance) -> String {
    db.engine_version().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_automatic_minor_upgrade_is_recorded_without_drift_and_without_any_modify_call() {
    let stack = Stack::new().await;
    let proxy = FaultProxy::start(&stack_endpoint()).await;
    let w = worker(&stack, &proxy, &[]).await;
    let tenant = ready(&stack, "minorauto").await;
    let instance = format!("saas-{tenant}");
    // RDS picked the major's default minor; a round has looked and found nothing.
    let seen = tenant_until(&stack, &tenant, "a first round", |t| t.drift.is_some()).await;
    assert_eq!(seen.engine_version.as_deref(), Some("16.8"));
    assert_eq!(drift_fields(&seen), Vec::<String>::new());
    let modifies_before = modifies(&proxy, &instance).len();

    // RDS's automatic minor upgrade, behind tenantd's back.
    let (status, body) = Control::new()
        .post(
            &format!("/instances/{instance}/minor-upgrade"),
            json!({"to": "16.9", "secs": 1}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let upgraded = tenant_until(&stack, &tenant, "the new minor to be recorded", |t| {
        t.engine_version.as_deref() == Some("16.9")
    })
    .await;
    assert_eq!(drift_fields(&upgraded), Vec::<String>::new());
    // Rounds go by: no drift, no repair, no ModifyDBInstance, the instance stays on 16.9.
    let later = two_more_rounds(&stack, &tenant).await;
    assert_eq!(drift_fields(&later), Vec::<String>::new());
    assert_eq!(later.status, TenantStatus::Ready);
    assert_eq!(later.engine_version.as_deref(), Some("16.9"));
    assert!(reconcile_jobs(&stack, &tenant).await.is_empty());
    assert_eq!(modifies(&proxy, &instance).len(), modifies_before);
    assert_eq!(
        engine_version_of(&stack.instance(&instance).await.unwrap()),
        "16.9"
    );
    stop(w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_below_its_tiers_minimum_minor_gets_a_minor_upgrade_in_its_window() {
    let stack = Stack::new().await;
    let proxy = FaultProxy::start(&stack_endpoint()).await;
    // The starter tier holds its instances to 16.9 at least; new instances get 16.4.
    let mut tiers = tenantd::config::Tiers::defaults();
    tiers.0.get_mut("starter").unwrap().minimum_engine_version = Some("16.9".into());
    let file = std::env::temp_dir().join(format!("{}.toml", tenant_id("tiers")));
    std::fs::write(&file, toml::to_string(&tiers).unwrap()).unwrap();
    let file = file.to_string_lossy().to_string();
    let w = worker(
        &stack,
        &proxy,
        &[
            ("TENANTD_TIERS", file.as_str()),
            ("TENANTD_ENGINE_VERSION", "16.4"),
        ],
    )
    .await;
    let tenant = ready(&stack, "minormin").await;
    let instance = format!("saas-{tenant}");

    // Found below the minimum, repaired by one ModifyDBInstance asking for 16.9 in the
    // maintenance window, never for another major.
    let repair = wait_for("the minor upgrade's repair", TIMEOUT, || async {
        let jobs = reconcile_jobs(&stack, &tenant).await;
        jobs.into_iter().find(|j| !j.state.is_active())
    })
    .await;
    assert_eq!(repair.state, JobState::Succeeded, "{:?}", repair.error);
    assert_eq!(repair.args.0["reason"], "repair");
    let result = repair.data.0["result"].as_str().unwrap().to_string();
    assert!(
        result.contains("engine_version") && result.contains("maintenance window"),
        "{result}"
    );
    let asked: Vec<_> = modifies(&proxy, &instance)
        .into_iter()
        .filter(|f| f.contains_key("EngineVersion"))
        .collect();
    assert_eq!(asked.len(), 1, "{asked:?}");
    for (key, value) in [
        ("EngineVersion", "16.9"),
        ("ApplyImmediately", "false"),
        ("AllowMajorVersionUpgrade", "false"),
    ] {
        assert_eq!(asked[0].get(key).map(String::as_str), Some(value), "{key}");
    }
    let db = stack.instance(&instance).await.unwrap();
    assert_eq!(engine_version_of(&db), "16.4");
    assert_eq!(
        db.pending_modified_values()
            .and_then(|p| p.engine_version()),
        Some("16.9")
    );
    // Asked for, it is no longer drift: no second repair while it waits for the window.
    let waiting = tenant_until(&stack, &tenant, "no drift once asked for", |t| {
        t.drift.as_ref().is_some_and(|d| d.0.is_empty())
    })
    .await;
    assert_eq!(waiting.engine_version.as_deref(), Some("16.4"));
    two_more_rounds(&stack, &tenant).await;
    assert_eq!(reconcile_jobs(&stack, &tenant).await.len(), 1);

    // The maintenance window comes: the instance runs 16.9, and the tenant records it.
    let (status, body) = Control::new()
        .post(
            &format!("/instances/{instance}/maintenance-window"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied"], json!(["EngineVersion=16.9"]));
    let upgraded = tenant_until(&stack, &tenant, "16.9 to be recorded", |t| {
        t.engine_version.as_deref() == Some("16.9")
    })
    .await;
    assert_eq!(drift_fields(&upgraded), Vec::<String>::new());
    two_more_rounds(&stack, &tenant).await;
    assert_eq!(reconcile_jobs(&stack, &tenant).await.len(), 1);
    let asked = modifies(&proxy, &instance)
        .into_iter()
        .filter(|f| f.contains_key("EngineVersion"))
        .count();
    assert_eq!(asked, 1);
    stop(w).await;
    std::fs::remove_file(&file).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_on_another_major_is_reported_and_never_modified_for_it() {
    let stack = Stack::new().await;
    let proxy = FaultProxy::start(&stack_endpoint()).await;
    let w = worker(&stack, &proxy, &[]).await;
    let tenant = ready(&stack, "major").await;
    let instance = format!("saas-{tenant}");
    tenant_until(&stack, &tenant, "a first round", |t| t.drift.is_some()).await;
    assert_eq!(
        stack.tenant(&tenant).await.engine_major.as_deref(),
        Some("16")
    );
    // The setting moves to 17 (for tenants provisioned from now on): the tenant, recorded on
    // 16 and running 16, is compared with its own major and shows no drift.
    stop(w).await;
    let w = worker(&stack, &proxy, &[("TENANTD_ENGINE_VERSION", "17")]).await;
    let after = two_more_rounds(&stack, &tenant).await;
    assert!(
        !drift_fields(&after).iter().any(|f| f.starts_with("engine")),
        "{:?}",
        after.drift
    );

    // Someone moves the instance to 17 behind tenantd's back, and shortens its backups.
    stack
        .rds
        .modify_db_instance()
        .db_instance_identifier(&instance)
        .engine_version("17.4")
        .allow_major_version_upgrade(true)
        .backup_retention_period(2)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    // The backups are repaired; the major is reported, recorded, and left as it is.
    let found = tenant_until(&stack, &tenant, "the major to be reported alone", |t| {
        drift_fields(t) == ["engine_major"] && t.engine_version.as_deref() == Some("17.4")
    })
    .await;
    let major = &found.drift.as_ref().unwrap().0[0];
    assert_eq!(
        (major.expected.as_str(), major.actual.as_str()),
        ("16", "17.4")
    );
    let jobs = reconcile_jobs(&stack, &tenant).await;
    assert_eq!(jobs.len(), 1, "one repair, for the backups: {jobs:?}");
    assert_eq!(jobs[0].state, JobState::Succeeded, "{:?}", jobs[0].error);
    let db = stack.instance(&instance).await.unwrap();
    assert_eq!(db.backup_retention_period(), Some(7));
    assert_eq!(engine_version_of(&db), "17.4");
    wait_for("the drift gauge to count it", TIMEOUT, || async {
        let metrics = tenantd::metrics::render(None).unwrap();
        metrics
            .lines()
            .any(|l| l == "tenantd_drift_tenants{field=\"engine_major\"} 1")
            .then_some(())
    })
    .await;
    // Rounds go by: the major alone gets no repair; no call ever asked for a version.
    let later = two_more_rounds(&stack, &tenant).await;
    assert_eq!(drift_fields(&later), ["engine_major"]);
    assert_eq!(reconcile_jobs(&stack, &tenant).await.len(), 1);
    let calls = modifies(&proxy, &instance);
    assert!(
        !calls.is_empty(),
        "the backups' repair modified the instance"
    );
    assert!(
        calls.iter().all(
            |f| !f.contains_key("EngineVersion") && !f.contains_key("AllowMajorVersionUpgrade")
        ),
        "{calls:?}"
    );
    assert_eq!(
        engine_version_of(&stack.instance(&instance).await.unwrap()),
        "17.4"
    );
    stop(w).await;
}

/// `GET path` on the daemon with its token.
async fn get(url: &str, path: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{url}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

const TOKEN: &str = "scale-test-token-0123456789abcdefgh";

/// The console's page of a tenant, signed in with the daemon's token.
async fn console_page(url: &str, tenant: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http
        .post(format!("{url}/ui/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = http
        .get(format!("{url}/ui/tenants/{tenant}"))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}

fn actions(view: &Value) -> Option<Vec<String>> {
    view["pending_maintenance"].as_array().map(|a| {
        a.iter()
            .map(|x| x["action"].as_str().unwrap().to_string())
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pending_maintenance_actions_appear_on_the_tenant_and_go_once_applied() {
    let stack = Stack::new().await;
    let proxy = FaultProxy::start(&stack_endpoint()).await;
    let base = test_env(
        &stack.db,
        &[
            ("AWS_ENDPOINT_URL", proxy.url.as_str()),
            ("TENANTD_RECONCILE_INTERVAL", "1s"),
            ("TENANTD_UI_SECURE_COOKIE", "off"),
        ],
    );
    let (_daemon, url) = serve_ready(&daemon_env(&base, "maint", &[])).await;
    let tenants = [ready(&stack, "maint").await, ready(&stack, "maint").await];
    let [first, second] = tenants.clone();
    let instance = format!("saas-{first}");
    let view = wait_for("a round to read the pending actions", TIMEOUT, || async {
        let v = get(&url, &format!("/v1/tenants/{first}")).await;
        actions(&v).is_some().then_some(v)
    })
    .await;
    assert_eq!(actions(&view), Some(Vec::new()));

    // RDS schedules two actions for the first tenant's instance.
    let control = Control::new();
    for spec in [
        json!({"action": "system-update", "description": "New operating system patches"}),
        json!({"action": "db-upgrade", "engine_version": "16.9",
               "auto_applied_after": "2030-01-01T00:00:00Z"}),
    ] {
        let (status, body) = control
            .post(&format!("/instances/{instance}/pending-maintenance"), spec)
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let view = wait_for("the actions on the tenant", TIMEOUT, || async {
        let v = get(&url, &format!("/v1/tenants/{first}")).await;
        (actions(&v)?.len() == 2).then_some(v)
    })
    .await;
    assert_eq!(
        actions(&view),
        Some(vec!["system-update".to_string(), "db-upgrade".to_string()])
    );
    let update = &view["pending_maintenance"][0];
    assert_eq!(update["description"], "New operating system patches");
    let upgrade = &view["pending_maintenance"][1];
    assert_eq!(upgrade["auto_applied_after"], "2030-01-01T00:00:00Z");
    // Pending maintenance is not drift, and the other tenant has none.
    assert_eq!(view["drift"], json!([]));
    // Recorded (as none) once a round has looked at it, which may be a round later.
    let other = wait_for("the other tenant's record", TIMEOUT, || async {
        let v = get(&url, &format!("/v1/tenants/{second}")).await;
        actions(&v).is_some().then_some(v)
    })
    .await;
    assert_eq!(actions(&other), Some(Vec::new()));
    // One call a round asks for both instances (a db-instance-id filter), not one per tenant.
    let batched = proxy
        .recorded()
        .iter()
        .filter(|r| r.operation == "DescribePendingMaintenanceActions")
        .map(form)
        .any(|f| {
            f.values().any(|v| v == "db-instance-id")
                && tenants
                    .iter()
                    .all(|t| f.values().any(|v| *v == format!("saas-{t}")))
        });
    assert!(batched, "no DescribePendingMaintenanceActions named both");
    let page = console_page(&url, &first).await;
    let shown = &page[page.find("id=\"tenant-maintenance\"").expect("the row")..];
    let shown = &shown[..shown.find("</dd>").unwrap()];
    assert!(
        shown.contains("system-update") && shown.contains("db-upgrade"),
        "{shown}"
    );

    // Applied at once through RDS: gone from the tenant at the next round.
    let arn = stack
        .instance(&instance)
        .await
        .unwrap()
        .db_instance_arn()
        .unwrap()
        .to_string();
    stack
        .rds
        .apply_pending_maintenance_action()
        .resource_identifier(&arn)
        .apply_action("system-update")
        .opt_in_type("immediate")
        .send()
        .await
        .unwrap();
    let view = wait_for("the applied action to go", TIMEOUT, || async {
        let v = get(&url, &format!("/v1/tenants/{first}")).await;
        (actions(&v)? == ["db-upgrade"]).then_some(v)
    })
    .await;
    assert_eq!(view["status"], "ready");
    let page = console_page(&url, &first).await;
    let shown = &page[page.find("id=\"tenant-maintenance\"").unwrap()..];
    let shown = &shown[..shown.find("</dd>").unwrap()];
    assert!(
        !shown.contains("system-update") && shown.contains("db-upgrade"),
        "{shown}"
    );
}
