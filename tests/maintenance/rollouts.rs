//! Fleet schema rollouts on the local stack, nothing mocked: real `tenantd serve` processes
//! with a copy of the tenant migrations to which a new migration is added, tenants whose
//! databases are checked by logging in with their secrets, a tenant poisoned through its own
//! credentials, a busy tenant, and replicas killed with SIGKILL mid-rollout.

use crate::support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::fleet::{TIERS, daemon_env, kill9, run_prefix, serve_ready, settled};
use support::stack::{Stack, test_env};
use support::wait_for;
use tenantd::tenants::TenantStatus;
use tokio::process::Child;

const TOKEN: &str = "scale-test-token-0123456789abcdefgh";
const TIMEOUT: Duration = Duration::from_secs(300);
/// The version of the migration the tests add.
const NEW_VERSION: i64 = 20270101000001;
/// Creates a table and writes one row: a migration applied twice would fail, or write two.
const NEW_MIGRATION: &str = "CREATE TABLE rollout_marker (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO rollout_marker DEFAULT VALUES;
";

/// A copy of the example tenant migrations in a directory of its own.
struct Migrations(PathBuf);

impl Migrations {
    fn copy() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tenantd-rollout-migrations-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/tenant-migrations");
        for entry in std::fs::read_dir(examples).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
        Migrations(dir)
    }

    /// Adds the new migration, with `extra` SQL after it.
    fn add_new(&self, extra: &str) {
        std::fs::write(
            self.0.join(format!("{NEW_VERSION}_rollout_marker.sql")),
            format!("{NEW_MIGRATION}{extra}"),
        )
        .unwrap();
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Migrations {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Api {
    url: String,
    http: reqwest::Client,
}

impl Api {
    fn new(url: String) -> Self {
        Api {
            url,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn create(&self, body: Value) -> (u16, Value) {
        self.call(Method::POST, "/v1/rollouts", Some(body)).await
    }

    async fn rollout(&self, id: &str) -> Value {
        let (status, body) = self
            .call(Method::GET, &format!("/v1/rollouts/{id}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn steer(&self, id: &str, action: &str) -> (u16, Value) {
        self.call(Method::POST, &format!("/v1/rollouts/{id}/{action}"), None)
            .await
    }

    /// Waits until the rollout is in `state`; returns it.
    async fn until(&self, id: &str, state: &str) -> Value {
        wait_for(&format!("rollout {id} {state}"), TIMEOUT, || async {
            let r = self.rollout(id).await;
            assert!(
                r["state"] == state
                    || !["succeeded", "halted", "cancelled"]
                        .contains(&r["state"].as_str().unwrap()),
                "rollout ended {} while waiting for {state}: {r}",
                r["state"]
            );
            (r["state"] == state).then_some(r)
        })
        .await
    }
}

/// Runs the CLI against the daemon; returns its exit code and standard output.
async fn cli(url: &str, args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .args(args)
        .env("TENANTD_URL", url)
        .env("TENANTD_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run the CLI");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn stage<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {r}"))
}

/// Provisions tenants `<prefix>-<i>` (tiers in turn) through the daemons' database and waits
/// for all to be ready.
async fn ready_fleet(stack: &Stack, prefix: &str, n: usize) -> Vec<(String, &'static str)> {
    let mut tenants = Vec::new();
    for i in 0..n {
        let tenant = format!("{prefix}-{i:02}");
        let tier = TIERS[i % TIERS.len()];
        stack.provision(&tenant, tier).await;
        tenants.push((tenant, tier));
    }
    let statuses = settled(stack, TIMEOUT).await;
    assert!(
        statuses.values().all(|s| *s == TenantStatus::Ready),
        "{statuses:?}"
    );
    tenants
}

/// The rows of `rollout_marker` in the tenant's database (`None`: no such table), read with
/// the tenant's own credentials.
async fn marker_rows(stack: &Stack, tenant: &str) -> Option<i64> {
    let mut conn = stack.connect_tenant(tenant).await.expect("log in");
    sqlx::query_scalar("SELECT count(*) FROM rollout_marker")
        .fetch_one(&mut conn)
        .await
        .ok()
}

/// How many times each version is recorded as applied in the tenant's database.
async fn applied_versions(stack: &Stack, tenant: &str) -> Vec<(i64, i64)> {
    let mut conn = stack.connect_tenant(tenant).await.expect("log in");
    sqlx::query_as("SELECT version, count(*) FROM _sqlx_migrations GROUP BY version ORDER BY 1")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

async fn migrate_jobs_of(stack: &Stack, tenant: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'migrate' AND tenant_id = $1")
        .bind(tenant)
        .fetch_one(stack.pool())
        .await
        .unwrap()
}

/// Every tenant is at the new version: the table exists with its one row, each version
/// applied once, the version recorded on the tenant.
async fn assert_migrated_once(stack: &Stack, tenants: &[String]) {
    for tenant in tenants {
        assert_eq!(marker_rows(stack, tenant).await, Some(1), "{tenant}");
        let versions = applied_versions(stack, tenant).await;
        assert!(
            versions.iter().all(|(_, n)| *n == 1),
            "{tenant}: {versions:?}"
        );
        assert_eq!(versions.last().map(|v| v.0), Some(NEW_VERSION), "{tenant}");
        assert_eq!(
            stack.tenant(tenant).await.schema_version,
            Some(NEW_VERSION),
            "{tenant}"
        );
    }
}

fn daemon(stack: &Stack, migrations: &Migrations, worker: &str) -> HashMap<String, String> {
    let base = test_env(
        &stack.db,
        &[
            ("TENANTD_TENANT_MIGRATIONS", migrations.path()),
            ("TENANTD_ROLLOUT_ROUND", "200ms"),
        ],
    );
    daemon_env(&base, worker, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rollout_reaches_thirty_tenants_canary_first_halts_on_a_poisoned_one_and_resumes() {
    let stack = Stack::new().await;
    let migrations = Migrations::copy();
    let prefix = run_prefix("ro");
    let (mut first, _) = serve_ready(&daemon(&stack, &migrations, "first")).await;
    let fleet = ready_fleet(&stack, &prefix, 30).await;
    let ids: Vec<String> = fleet.iter().map(|(t, _)| t.clone()).collect();
    kill9(&mut first).await;

    // A release with a new tenant migration.
    migrations.add_new("");
    let (_daemon, url) = serve_ready(&daemon(&stack, &migrations, "second")).await;
    let api = Api::new(url);
    let (status, behind) = api
        .call(
            Method::GET,
            &format!("/v1/tenants?schema_version_below={NEW_VERSION}&limit=1000"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(behind["tenants"].as_array().unwrap().len(), 30, "{behind}");

    // One pro tenant has an object in the way of the migration, created with its credentials.
    let poisoned = fleet
        .iter()
        .find(|(_, tier)| *tier == "pro")
        .map(|(t, _)| t.clone())
        .unwrap();
    let mut conn = stack.connect_tenant(&poisoned).await.unwrap();
    sqlx::query("CREATE TABLE rollout_marker (conflict text)")
        .execute(&mut conn)
        .await
        .unwrap();

    let (status, created) = api
        .create(json!({
            "canary": 2, "concurrency": 4, "max_failures": 0,
            "stages": ["starter", "pro", "enterprise"],
        }))
        .await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["target_version"], NEW_VERSION);
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(stage(&created, "canary")["pending"], 2);
    assert_eq!(stage(&created, "starter")["pending"], 8);

    let (status, refused) = api.create(json!({})).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "rollout_in_progress");

    let halted = api.until(&id, "halted").await;
    let failures = halted["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{halted}");
    assert_eq!(failures[0]["tenant_id"], poisoned.as_str());
    assert_eq!(failures[0]["stage"], "pro");
    assert!(
        failures[0]["error"]
            .as_str()
            .unwrap()
            .contains("rollout_marker"),
        "{halted}"
    );
    assert!(halted["reason"].as_str().unwrap().contains(&poisoned));
    // Nothing past the halt started: the enterprise stage is untouched, and the canary and
    // the starter stage finished first.
    let enterprise = stage(&halted, "enterprise");
    assert_eq!(enterprise["pending"], 10, "{halted}");
    for (tenant, tier) in &fleet {
        if *tier == "enterprise" {
            assert_eq!(migrate_jobs_of(&stack, tenant).await, 0, "{tenant}");
            assert_eq!(marker_rows(&stack, tenant).await, None, "{tenant}");
        }
    }
    assert_eq!(stage(&halted, "canary")["succeeded"], 2);
    assert_eq!(stage(&halted, "starter")["succeeded"], 8);
    // The poisoned tenant stays ready on its previous version, with the error.
    let tenant = stack.tenant(&poisoned).await;
    assert_eq!(tenant.status, TenantStatus::Ready);
    assert!(tenant.schema_version.unwrap() < NEW_VERSION);
    assert!(tenant.error.unwrap().contains(&NEW_VERSION.to_string()));

    // A tenant provisioned meanwhile gets every migration at creation and counts as
    // succeeded once the rollout runs again.
    let late = format!("{prefix}-late");
    let job = stack.provision(&late, "starter").await;
    stack.finished(job, TIMEOUT).await;
    assert_eq!(stack.tenant(&late).await.schema_version, Some(NEW_VERSION));

    // The conflict removed, the rollout resumed: the failed tenant first, then the rest.
    sqlx::query("DROP TABLE rollout_marker")
        .execute(&mut conn)
        .await
        .unwrap();
    let (status, resumed) = api.steer(&id, "resume").await;
    assert_eq!(status, 202, "{resumed}");
    // The CLI follows it to the end: one line per change (no terminal here), exit 0.
    let (code, out) = cli(&api.url, &["rollouts", "get", &id, "--wait"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("succeeded: canary: 2/2; starter: 9/9; pro: 10/10; enterprise: 10/10"),
        "{out}"
    );
    let done = api.until(&id, "succeeded").await;
    assert_eq!(done["totals"]["succeeded"], 31, "{done}");
    assert_eq!(done["totals"]["failed"], 0);
    assert_eq!(done["totals"]["skipped"], 0);
    assert!(done["failures"].as_array().unwrap().is_empty());
    assert!(done["finished_at"].is_string());
    assert_migrated_once(&stack, &ids).await;
    assert!(stack.tenant(&poisoned).await.error.is_none());

    // The failed tenant was retried before any enterprise tenant started.
    let retried: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT max(created_at) FROM jobs WHERE kind = 'migrate' AND tenant_id = $1",
    )
    .bind(&poisoned)
    .fetch_one(stack.pool())
    .await
    .unwrap();
    let enterprise_first: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT min(j.created_at) FROM jobs j JOIN tenants t ON t.id = j.tenant_id
         WHERE j.kind = 'migrate' AND t.tier = 'enterprise'",
    )
    .fetch_one(stack.pool())
    .await
    .unwrap();
    assert!(retried < enterprise_first);
    let (_, behind) = api
        .call(
            Method::GET,
            &format!("/v1/tenants?schema_version_below={NEW_VERSION}"),
            None,
        )
        .await;
    assert!(behind["tenants"].as_array().unwrap().is_empty(), "{behind}");
    let (code, out) = cli(
        &api.url,
        &[
            "tenants",
            "list",
            "--schema-version-below",
            &(NEW_VERSION + 1).to_string(),
        ],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(
        out.lines().filter(|l| l.contains(&prefix)).count(),
        31,
        "{out}"
    );
    let metrics = api
        .http
        .get(format!("{}/metrics", api.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tenantd_rollout_tenants{state=\"succeeded\"} 31"),
        "{metrics}"
    );
    let migrated = metrics
        .lines()
        .find(|l| l.starts_with("tenantd_tenant_migration_seconds_count{result=\"ok\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert!(migrated.is_some_and(|n| n >= 29.0), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_canary_stops_the_rollout_and_pause_resume_cancel_steer_the_next() {
    let stack = Stack::new().await;
    let migrations = Migrations::copy();
    let prefix = run_prefix("rc");
    let (_daemon, url) = serve_ready(&daemon(&stack, &migrations, "only")).await;
    let api = Api::new(url);
    let mut tenants = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let tenant = format!("{prefix}-{name}");
        stack.provision(&tenant, "starter").await;
        tenants.push(tenant);
    }
    settled(&stack, TIMEOUT).await;
    migrations.add_new("");

    // The canary (the first starter tenant by id) is poisoned.
    let mut conn = stack.connect_tenant(&tenants[0]).await.unwrap();
    sqlx::query("CREATE TABLE rollout_marker (conflict text)")
        .execute(&mut conn)
        .await
        .unwrap();
    let (status, created) = api.create(json!({ "canary": 1, "max_failures": 5 })).await;
    assert_eq!(status, 202, "{created}");
    let first = created["id"].as_str().unwrap().to_string();
    let halted = api.until(&first, "halted").await;
    assert!(
        halted["reason"].as_str().unwrap().contains("canary"),
        "{halted}"
    );
    assert_eq!(stage(&halted, "canary")["failed"], 1);
    for tenant in &tenants[1..] {
        assert_eq!(migrate_jobs_of(&stack, tenant).await, 0, "{tenant}");
    }
    let (status, _) = api.steer(&first, "cancel").await;
    assert_eq!(status, 202);
    let (status, again) = api.steer(&first, "resume").await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "rollout_state_conflict");

    // A rollout of the three others, paused at once: a second one is refused while it is
    // paused, and while paused it starts no tenant beyond those it had started.
    let rest: Vec<&String> = tenants[1..].iter().collect();
    let (status, created) = api
        .create(json!({ "canary": 0, "concurrency": 1, "tenants": rest }))
        .await;
    assert_eq!(status, 202, "{created}");
    let second = created["id"].as_str().unwrap().to_string();
    let (status, paused) = api.steer(&second, "pause").await;
    assert_eq!(status, 202);
    assert_eq!(paused["state"], "paused");
    let (status, refused) = api.create(json!({})).await;
    assert_eq!(status, 409);
    assert_eq!(refused["error"]["code"], "rollout_in_progress");
    let started_when_paused = wait_for("the started migrations to end", TIMEOUT, || async {
        let r = api.rollout(&second).await;
        (r["totals"]["migrating"] == 0).then(|| r["totals"]["succeeded"].as_i64().unwrap())
    })
    .await;
    assert!(started_when_paused <= 1, "concurrency 1 while running");
    // Rounds of the conductor pass (the metric counts them): nothing new starts.
    let rounds = |body: String| {
        body.lines()
            .find(|l| {
                l.starts_with("tenantd_maintenance_rounds_total{")
                    && l.contains("rollout_conductor")
                    && l.contains("\"ok\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let metrics = format!("{}/metrics", api.url);
    let before = rounds(
        api.http
            .get(&metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    wait_for("three conductor rounds", TIMEOUT, || async {
        let now = rounds(
            api.http
                .get(&metrics)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
        (now >= before + 3.0).then_some(())
    })
    .await;
    let still = api.rollout(&second).await;
    assert_eq!(still["state"], "paused");
    assert_eq!(still["totals"]["succeeded"], started_when_paused, "{still}");
    assert_eq!(still["totals"]["migrating"], 0, "{still}");

    // The last tenant is busy with a tier change when the rollout resumes: it is migrated
    // once that job has ended.
    let busy = tenants[3].clone();
    let (_, job, _) = tenantd::tenants::request_tier_change(
        stack.pool(),
        &tenantd::config::Tiers::defaults(),
        &busy,
        "pro",
        tenantd::workflow::reconcile::Apply::Immediately,
        5,
    )
    .await
    .unwrap();
    let change = job.expect("a tier change job");
    let (status, _) = api.steer(&second, "resume").await;
    assert_eq!(status, 202);
    let done = api.until(&second, "succeeded").await;
    assert_eq!(done["totals"]["succeeded"], 3, "{done}");
    let change = stack.finished(change.id, TIMEOUT).await;
    // Its migration started running only once the tier change had ended (the step's start,
    // not the job's created_at: that is the conductor's transaction start, which may precede
    // the other job's recorded end).
    let migration_started: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT min(h.started_at) FROM job_history h JOIN jobs j ON j.id = h.job_id
         WHERE j.kind = 'migrate' AND j.tenant_id = $1 AND h.step = 'migrate'",
    )
    .bind(&busy)
    .fetch_one(stack.pool())
    .await
    .unwrap();
    assert!(migration_started >= change.finished_at.unwrap());
    let rest: Vec<String> = tenants[1..].to_vec();
    assert_migrated_once(&stack, &rest).await;
    // The canary tenant was never migrated: still poisoned, still on its old version.
    assert!(stack.tenant(&tenants[0]).await.schema_version.unwrap() < NEW_VERSION);

    // The new migration's file is edited after tenants applied it, and a newer one is added.
    // The tenant that has it fails, naming the version, and the rollout halts whatever
    // max_failures allows, before the tenant without it (a later stage) is touched.
    std::fs::write(
        migrations
            .0
            .join(format!("{NEW_VERSION}_rollout_marker.sql")),
        format!("{NEW_MIGRATION}-- edited after the release\n"),
    )
    .unwrap();
    std::fs::write(
        migrations.0.join("20270101000002_more.sql"),
        "CREATE TABLE more_things (id integer);\n",
    )
    .unwrap();
    let untouched = tenants[0].clone();
    let jobs_before = migrate_jobs_of(&stack, &untouched).await;
    let (status, created) = api
        .create(json!({
            "canary": 0, "max_failures": 5, "stages": ["pro", "starter"],
            "tenants": [busy, untouched],
        }))
        .await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["target_version"], 20270101000002_i64);
    let third = created["id"].as_str().unwrap().to_string();
    let halted = api.until(&third, "halted").await;
    let failure = &halted["failures"][0];
    assert_eq!(failure["tenant_id"], busy.as_str(), "{halted}");
    assert!(
        failure["error"]
            .as_str()
            .unwrap()
            .contains(&NEW_VERSION.to_string()),
        "{halted}"
    );
    assert!(
        halted["reason"].as_str().unwrap().contains("changed"),
        "{halted}"
    );
    assert_eq!(stage(&halted, "starter")["pending"], 1, "{halted}");
    assert_eq!(migrate_jobs_of(&stack, &untouched).await, jobs_before);
    assert_eq!(stack.tenant(&busy).await.schema_version, Some(NEW_VERSION));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_killed_mid_rollout_leave_every_tenant_migrated_exactly_once() {
    let stack = Stack::new().await;
    let migrations = Migrations::copy();
    let prefix = run_prefix("rk");
    let env_of = |worker: &str| daemon(&stack, &migrations, worker);
    let mut replicas: HashMap<String, Child> = HashMap::new();
    let mut url = String::new();
    for worker in ["r1", "r2"] {
        let (child, u) = serve_ready(&env_of(worker)).await;
        replicas.insert(worker.to_string(), child);
        url = u;
    }
    let fleet = ready_fleet(&stack, &prefix, 8).await;
    let ids: Vec<String> = fleet.iter().map(|(t, _)| t.clone()).collect();
    // Each tenant's migration takes longer than a lease (2s), so that a kill lands inside one
    // and the others keep their lease by heartbeat.
    migrations.add_new("SELECT pg_sleep(2.5);\n");
    let (mut api, mut next_worker) = (Api::new(url), 3);
    let (status, created) = api.create(json!({ "canary": 1, "concurrency": 2 })).await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    for _ in 0..2 {
        // The replica holding a running migration goes down; a new one comes up.
        let live: Vec<String> = replicas.keys().cloned().collect();
        let owner: String = wait_for("a migration running", TIMEOUT, || async {
            sqlx::query_scalar(
                "SELECT lease_owner FROM jobs WHERE kind = 'migrate' AND state = 'running'
                 AND step = 'migrate' AND lease_owner = ANY($1) LIMIT 1",
            )
            .bind(&live)
            .fetch_optional(stack.pool())
            .await
            .unwrap()
        })
        .await;
        let mut victim = replicas.remove(&owner).expect("a live replica holds it");
        kill9(&mut victim).await;
        let worker = format!("r{next_worker}");
        next_worker += 1;
        let (child, u) = serve_ready(&env_of(&worker)).await;
        replicas.insert(worker, child);
        api = Api::new(u);
    }
    let done = api.until(&id, "succeeded").await;
    assert_eq!(done["totals"]["succeeded"], 8, "{done}");
    assert_eq!(done["totals"]["failed"], 0, "{done}");
    assert_migrated_once(&stack, &ids).await;
    for tenant in &ids {
        assert_eq!(migrate_jobs_of(&stack, tenant).await, 1, "{tenant}");
    }
    // Only the two killed migrations were rescued; the others outlived their lease untouched.
    let rescued: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'migrate' AND rescues > 0")
            .fetch_one(stack.pool())
            .await
            .unwrap();
    assert!(rescued <= 2, "{rescued} migrations were rescued");
}
