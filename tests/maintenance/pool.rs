//! The warm pool against LocalStack and real PostgreSQL, nothing mocked: standbys created
//! through the provisioning steps, a new tenant taking one over (tags, secret, alarms, tables as
//! for a cold tenant), the pool refilled, concurrent requests claiming each standby once, a
//! claim failing part-way rolled back, standbys past their age replaced, and deprovisioning a
//! tenant that came from the pool.
//!
//! The creating phase is the shared stack's (`LOCAL_RDS_CREATING_SECS`, 5 s by default): the
//! claim path does not wait for it, so a shorter phase only makes the tests faster.

use crate::support;

use std::collections::{BTreeSet, HashMap};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use support::app::TOKEN;
use support::rds::{Control, config_for_account, unique_account};
use support::stack::*;
use support::wait_for;
use tenantd::cloud::Cloud;
use tenantd::config::Tiers;
use tenantd::queue::{self, JobState};
use tenantd::tenants::{self, Deletion, TenantStatus};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const TIMEOUT: Duration = Duration::from_secs(180);

/// A worker with its maintenance (the pool keeper among it) and `pool` as `TENANTD_WARM_POOL`.
async fn worker(
    stack: &Stack,
    pool: &str,
    extra: &[(&str, &str)],
) -> (CancellationToken, JoinHandle<()>) {
    let cloud = Cloud::from_sdk_config(&sdk_config(None).await);
    worker_in(stack, pool, extra, cloud)
}

/// As [`worker`], with the AWS clients of `cloud` (e.g. an account of the test's own).
fn worker_in(
    stack: &Stack,
    pool: &str,
    extra: &[(&str, &str)],
    cloud: Cloud,
) -> (CancellationToken, JoinHandle<()>) {
    let mut vars = vec![("TENANTD_WARM_POOL", pool)];
    vars.extend_from_slice(extra);
    let env = test_env(&stack.db, &vars);
    let settings = settings(&env);
    stack.spawn_worker(&settings, cloud)
}

async fn stop(worker: (CancellationToken, JoinHandle<()>)) {
    worker.0.cancel();
    worker.1.await.unwrap();
}

/// The available standbys of `tier`, oldest first.
async fn available(stack: &Stack, tier: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT id FROM pool_standbys WHERE tier = $1 AND state = 'available'
         ORDER BY available_at, id",
    )
    .bind(tier)
    .fetch_all(stack.pool())
    .await
    .unwrap()
}

/// Waits until `tier` has `n` available standbys; returns them.
async fn until_available(stack: &Stack, tier: &str, n: usize) -> Vec<String> {
    wait_for(
        &format!("{n} available {tier} standbys"),
        TIMEOUT,
        || async {
            let ids = available(stack, tier).await;
            (ids.len() == n).then_some(ids)
        },
    )
    .await
}

/// Every standby this test's daemon ever started (its jobs name them).
async fn every_standby(stack: &Stack) -> BTreeSet<String> {
    sqlx::query_scalar(
        "SELECT DISTINCT args ->> 'standby' FROM jobs
         WHERE kind = 'standby' AND args ? 'standby'",
    )
    .fetch_all(stack.pool())
    .await
    .unwrap()
    .into_iter()
    .collect()
}

fn tags(db: &aws_sdk_rds::types::DbInstance) -> HashMap<String, String> {
    db.tag_list()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect()
}

/// Empties the pool (a worker with no pool retires what is left) and checks that nothing of
/// any standby remains: no instance unless a tenant took it over, no standby secret.
async fn drain_and_check(stack: &Stack) {
    drain_and_check_in(stack, Cloud::from_sdk_config(&sdk_config(None).await)).await;
}

/// As [`drain_and_check`], with the AWS clients of `cloud` (the stack's SDK clients must look at
/// the same account).
async fn drain_and_check_in(stack: &Stack, cloud: Cloud) {
    let w = worker_in(stack, "", &[], cloud);
    wait_for("the pool to be empty", TIMEOUT, || async {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pool_standbys WHERE state <> 'claimed'")
                .fetch_one(stack.pool())
                .await
                .unwrap();
        (left == 0).then_some(())
    })
    .await;
    stop(w).await;
    let claimed: HashMap<String, String> =
        sqlx::query_as("SELECT id, claimed_by FROM pool_standbys WHERE state = 'claimed'")
            .fetch_all(stack.pool())
            .await
            .unwrap()
            .into_iter()
            .collect();
    for id in every_standby(stack).await {
        let secret = format!("saas/pool/{id}/database");
        assert!(
            stack.secrets_named(&secret).await.is_empty(),
            "standby secret {secret} remains"
        );
        let instance = stack.instance(&id).await;
        match claimed.get(&id) {
            Some(tenant) => {
                let row = stack.tenant(tenant).await;
                if row.status == TenantStatus::Ready {
                    let db = instance.expect("a ready tenant's instance");
                    assert_eq!(tags(&db).get("TenantId"), Some(tenant));
                } else {
                    assert!(instance.is_none(), "instance {id} of {tenant} remains");
                }
            }
            None => assert!(instance.is_none(), "standby instance {id} remains"),
        }
    }
}

async fn deprovision_all(stack: &Stack, tenants: &[String]) {
    let mut jobs = Vec::new();
    for tenant in tenants {
        let (_, job, _) = tenants::request_deprovision(
            stack.pool(),
            &Tiers::defaults(),
            tenant,
            Deletion::FORCE_NO_SNAPSHOT,
            5,
        )
        .await
        .unwrap();
        jobs.push(job.id);
    }
    for job in jobs {
        let job = stack.finished(job, TIMEOUT).await;
        assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_tenant_takes_over_a_standby_ready_like_a_cold_one_and_the_pool_refills() {
    let stack = Stack::new().await;
    let w = worker(&stack, "starter=2", &[]).await;
    let standbys = until_available(&stack, "starter", 2).await;
    for id in &standbys {
        assert!(id.starts_with("saas-pool-"), "{id}");
        let db = stack.instance(id).await.expect("standby instance");
        let t = tags(&db);
        assert_eq!(t.get("PoolStandby"), Some(id));
        assert_eq!(t.get("ManagedBy").map(String::as_str), Some("tenantd"));
        assert!(!t.contains_key("TenantId"), "{t:?}");
        assert_eq!(
            stack
                .secrets_named(&format!("saas/pool/{id}/database"))
                .await
                .len(),
            1
        );
    }

    // The oldest standby's password, as its own secret holds it before the claim.
    let standby_secret = stack
        .secret_json(&format!("saas/pool/{}/database", standbys[0]))
        .await;

    let tenant = tenant_id("pooled");
    let job = stack.provision(&tenant, "starter").await;
    let job = stack.finished(job, TIMEOUT).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let history: Vec<String> = queue::history(stack.pool(), job.id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.step)
        .collect();
    assert!(
        history.contains(&"claim".to_string()) && !history.contains(&"instance".to_string()),
        "the tenant took a standby over without creating an instance: {history:?}"
    );

    // The tenant's record names the standby's instance, the oldest one.
    let row = stack.tenant(&tenant).await;
    assert_eq!(row.status, TenantStatus::Ready);
    assert!(row.from_pool);
    let instance = row.db_instance_id.clone().unwrap();
    assert_eq!(instance, standbys[0]);
    assert_eq!(row.schema_version, Some(20260101000003));

    // Tags as for a cold tenant, the standby's gone.
    let db = stack.instance(&instance).await.expect("instance");
    let t = tags(&db);
    for (k, v) in [
        ("TenantId", tenant.as_str()),
        ("Tier", "starter"),
        ("Environment", "test"),
        ("ManagedBy", "tenantd"),
    ] {
        assert_eq!(t.get(k).map(String::as_str), Some(v), "{t:?}");
    }
    assert!(!t.contains_key("PoolStandby"), "{t:?}");

    // The tenant's secret holds the standby's credentials; the standby's secret is gone.
    let secret = stack
        .secret_json(&format!("saas/tenant/{tenant}/database"))
        .await;
    assert_eq!(secret["dbInstanceIdentifier"], instance.as_str());
    assert_eq!(secret["host"], json!(row.endpoint_host));
    assert!(
        stack
            .secrets_named(&format!("saas/pool/{instance}/database"))
            .await
            .is_empty()
    );
    // The instance got a new master password, written to the tenant's secret first: the
    // standby's (days old, kept under the pool's prefix) no longer opens it.
    assert_ne!(secret["password"], standby_secret["password"]);
    assert_eq!(secret["password"].as_str().unwrap().len(), 32);
    let mut old = secret.clone();
    old["password"] = standby_secret["password"].clone();
    let refused = login_with(&old).await.unwrap_err();
    assert_eq!(
        support::rds::sqlstate(&refused).as_deref(),
        Some("28P01"),
        "{refused}"
    );
    // Logging in with it works, and the tables are there.
    let tables = stack.tenant_tables(&tenant).await;
    for table in ["audit_logs", "projects", "users"] {
        assert!(tables.contains(&table.to_string()), "{tables:?}");
    }
    // The alarms, named after the instance.
    let alarms = stack.alarms(&format!("{instance}-")).await;
    assert_eq!(alarms.len(), 2, "{alarms:?}");

    // The pool is refilled: two available again, the claimed one not among them.
    let refilled = until_available(&stack, "starter", 2).await;
    assert!(!refilled.contains(&instance));

    // Deprovisioning a tenant from the pool takes its (recorded) instance away.
    deprovision_all(&stack, std::slice::from_ref(&tenant)).await;
    assert_eq!(stack.tenant(&tenant).await.status, TenantStatus::Deleted);
    assert!(stack.instance(&instance).await.is_none());
    assert!(stack.alarms(&format!("{instance}-")).await.is_empty());
    stop(w).await;
    drain_and_check(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_requests_with_two_standbys_claim_each_once_and_all_get_ready() {
    let stack = Stack::new().await;
    let w = worker(&stack, "starter=2", &[]).await;
    let standbys = until_available(&stack, "starter", 2).await;

    let names: Vec<String> = (0..20).map(|_| tenant_id("burst")).collect();
    let requests = names.iter().map(|tenant| {
        let pool = stack.pool().clone();
        let tenant = tenant.clone();
        tokio::spawn(async move {
            tenants::request_provision(&pool, &Tiers::defaults(), &tenant, "starter", 5)
                .await
                .expect("request")
                .1
                .id
        })
    });
    let jobs: Vec<_> = futures::future::join_all(requests)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for job in jobs {
        let job = stack.finished(job, TIMEOUT).await;
        assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    }
    let mut from_pool = Vec::new();
    for tenant in &names {
        let row = stack.tenant(tenant).await;
        assert_eq!(row.status, TenantStatus::Ready);
        if row.from_pool {
            from_pool.push(row.db_instance_id.clone().unwrap());
        } else {
            assert_eq!(
                row.db_instance_id.as_deref(),
                Some(format!("saas-{tenant}").as_str())
            );
        }
    }
    from_pool.sort();
    let mut expected = standbys.clone();
    expected.sort();
    assert_eq!(from_pool, expected, "the two standbys, each claimed once");
    let claims: Vec<(String, i64)> = sqlx::query_as(
        "SELECT id, count(DISTINCT claimed_by) FROM pool_standbys WHERE state = 'claimed'
         GROUP BY id",
    )
    .fetch_all(stack.pool())
    .await
    .unwrap();
    assert_eq!(claims.len(), 2, "{claims:?}");
    assert!(claims.iter().all(|(_, n)| *n == 1), "{claims:?}");

    deprovision_all(&stack, &names).await;
    stop(w).await;
    drain_and_check(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_failing_part_way_rolls_the_tenant_back_and_the_pool_refills() {
    let stack = Stack::new().await;
    let w = worker(&stack, "starter=1", &[]).await;
    let standby = until_available(&stack, "starter", 1).await.remove(0);
    let arn = stack
        .instance(&standby)
        .await
        .unwrap()
        .db_instance_arn()
        .unwrap()
        .to_string();
    // The claim tags the instance as the tenant's, then fails to remove the standby tag.
    rds_fault(json!({
        "operation": "RemoveTagsFromResource", "count": 1,
        "code": "InvalidParameterCombination", "status": 400,
        "match": { "ResourceName": arn },
    }))
    .await;

    let tenant = tenant_id("claimfail");
    let job = stack.provision(&tenant, "starter").await;
    let job = stack.finished(job, TIMEOUT).await;
    assert_eq!(job.state, JobState::Failed);
    let row = stack.tenant(&tenant).await;
    assert_eq!(row.status, TenantStatus::Failed);
    assert!(row.error.unwrap().contains("standby tag"));
    // Rolled back: the instance deleted (never back in the pool), both secrets gone.
    assert!(stack.instance(&standby).await.is_none());
    assert!(
        stack
            .secrets_named(&format!("saas/tenant/{tenant}/database"))
            .await
            .is_empty()
    );
    assert!(
        stack
            .secrets_named(&format!("saas/pool/{standby}/database"))
            .await
            .is_empty()
    );
    assert!(stack.alarms(&format!("{standby}-")).await.is_empty());

    // A new standby takes its place.
    let refilled = until_available(&stack, "starter", 1).await;
    assert_ne!(refilled[0], standby);
    stop(w).await;
    drain_and_check(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standbys_past_their_maximum_age_are_replaced() {
    let stack = Stack::new().await;
    let w = worker(&stack, "starter=1", &[("TENANTD_POOL_MAX_AGE", "15s")]).await;
    let first = until_available(&stack, "starter", 1).await.remove(0);
    // Make before break: from now on the tier never lacks an available standby.
    let second = wait_for("a younger standby in its place", TIMEOUT, || async {
        let ids = available(&stack, "starter").await;
        assert!(
            !ids.is_empty(),
            "the pool was empty while its standby was replaced"
        );
        ids.first().filter(|id| **id != first).cloned()
    })
    .await;
    assert_ne!(first, second);
    wait_for("the old standby's instance to go", TIMEOUT, || async {
        stack.instance(&first).await.is_none().then_some(())
    })
    .await;
    stop(w).await;
    drain_and_check(&stack).await;
}

struct Daemon {
    url: String,
    child: Child,
}

/// Starts `tenantd serve` with the test's environment and `pool` as `TENANTD_WARM_POOL` on a
/// free port; returns once it is ready (killed when dropped).
async fn serve(stack: &Stack, pool: &str) -> Daemon {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let env = test_env(
        &stack.db,
        &[("TENANTD_WARM_POOL", pool), ("TENANTD_LEASE", "1s")],
    );
    let child = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .arg("serve")
        .envs(env)
        .env("TENANTD_LISTEN", format!("127.0.0.1:{port}"))
        .env("TENANTD_API_TOKENS", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start tenantd serve");
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
    Daemon { url, child }
}

impl Daemon {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn kill9(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

/// The value of the sample `line_start` (name and labels, as rendered), if present.
fn sample(metrics: &str, line_start: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_the_cli_and_the_metrics_show_the_pool_and_a_tenant_says_it_came_from_it() {
    let stack = Stack::new().await;
    let daemon = serve(&stack, "starter=1").await;
    let pool = wait_for("GET /v1/pool to show one available", TIMEOUT, || async {
        let (status, body) = daemon.call(reqwest::Method::GET, "/v1/pool", None).await;
        assert_eq!(status, 200, "{body}");
        (body["tiers"][0]["available"] == 1).then_some(body)
    })
    .await;
    assert_eq!(pool["tiers"].as_array().unwrap().len(), 1, "{pool}");
    assert_eq!(pool["tiers"][0]["tier"], "starter");
    assert_eq!(pool["tiers"][0]["wanted"], 1);
    assert!(pool["tiers"][0]["oldest_age_s"].as_f64().unwrap() >= 0.0);

    // The CLI shows the same.
    let out = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .args(["pool", "--output", "json"])
        .env_clear()
        .env("TENANTD_URL", &daemon.url)
        .env("TENANTD_TOKEN", TOKEN)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["tiers"][0]["available"], 1, "{shown}");
    let out = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .arg("pool")
        .env_clear()
        .env("TENANTD_URL", &daemon.url)
        .env("TENANTD_TOKEN", TOKEN)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("starter") && l.contains(" 1 ")),
        "{text}"
    );

    // The keeper's gauge, on the leader, after its next round.
    wait_for("the gauge to count the standby", TIMEOUT, || async {
        let metrics = daemon.metrics().await;
        let line = "tenantd_pool_standbys{state=\"available\",tier=\"starter\"}";
        (sample(&metrics, line) == Some(1.0)).then_some(())
    })
    .await;

    // A tenant id that would name a standby's instance is refused, and nothing changes.
    let (status, body) = daemon
        .call(
            reqwest::Method::POST,
            "/v1/tenants",
            Some(json!({ "id": "pool-abc123", "tier": "starter" })),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_tenant_id");
    assert!(
        tenants::get(stack.pool(), "pool-abc123")
            .await
            .unwrap()
            .is_none()
    );

    // A tenant from the pool says so, with the standby's identifier.
    let tenant = tenant_id("shown");
    let (status, body) = daemon
        .call(
            reqwest::Method::POST,
            "/v1/tenants",
            Some(json!({ "id": tenant, "tier": "starter" })),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["tenant"]["from_pool"], true, "{body}");
    let id = body["tenant"]["db_instance_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(id.starts_with("saas-pool-"), "{body}");
    let job = body["job"]["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        stack.finished(job, TIMEOUT).await.state,
        JobState::Succeeded
    );
    let metrics = daemon.metrics().await;
    for result in ["claimed", "ready"] {
        assert_eq!(
            sample(
                &metrics,
                &format!("tenantd_pool_claims_total{{result=\"{result}\",tier=\"starter\"}}")
            ),
            Some(1.0),
            "{metrics}"
        );
    }
    daemon.kill9().await;
    deprovision_with_worker(&stack, &tenant).await;
    drain_and_check(&stack).await;
}

/// Deprovisions one tenant with an in-process worker (no pool).
async fn deprovision_with_worker(stack: &Stack, tenant: &str) {
    let w = worker(stack, "", &[]).await;
    deprovision_all(stack, &[tenant.to_string()]).await;
    stop(w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_while_a_standby_is_created_and_while_it_is_claimed_leaks_nothing_and_claims_once() {
    let stack = Stack::new().await;

    // Killed while the standby's instance is being created.
    let victim = serve(&stack, "starter=1").await;
    let job = wait_for("a standby's job", TIMEOUT, || async {
        sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM jobs WHERE kind = 'standby'")
            .fetch_optional(stack.pool())
            .await
            .unwrap()
    })
    .await;
    stack
        .reached(job, "wait_available", "waiting", TIMEOUT)
        .await;
    victim.kill9().await;
    let heir = serve(&stack, "starter=1").await;
    let standby = until_available(&stack, "starter", 1).await.remove(0);
    assert_eq!(
        every_standby(&stack).await.len(),
        1,
        "one standby, created once"
    );
    assert_eq!(stack.instances_named(&standby).await, 1);

    // Killed while the claim's first call is held in flight.
    let arn = stack
        .instance(&standby)
        .await
        .unwrap()
        .db_instance_arn()
        .unwrap()
        .to_string();
    rds_fault(json!({
        "operation": "AddTagsToResource", "count": 1, "latency_ms": 2500,
        "match": { "ResourceName": arn },
    }))
    .await;
    let tenant = tenant_id("claimcrash");
    let (status, body) = heir
        .call(
            reqwest::Method::POST,
            "/v1/tenants",
            Some(json!({ "id": tenant, "tier": "starter" })),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let job: uuid::Uuid = body["job"]["id"].as_str().unwrap().parse().unwrap();
    wait_for("the claim under way", TIMEOUT, || async {
        let job = stack.job(job).await;
        (job.state == JobState::Running && job.step == "claim").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    heir.kill9().await;
    assert_ne!(stack.job(job).await.state, JobState::Succeeded);

    let w = worker(&stack, "starter=1", &[("TENANTD_LEASE", "1s")]).await;
    let finished = stack.finished(job, TIMEOUT).await;
    assert_eq!(finished.state, JobState::Succeeded, "{:?}", finished.error);
    let row = stack.tenant(&tenant).await;
    assert_eq!(row.db_instance_id.as_deref(), Some(standby.as_str()));
    assert!(stack.can_log_in(&tenant).await);
    assert_eq!(stack.instances_named(&standby).await, 1);
    let claimed: Vec<(String, String)> =
        sqlx::query_as("SELECT id, claimed_by FROM pool_standbys WHERE state = 'claimed'")
            .fetch_all(stack.pool())
            .await
            .unwrap();
    assert_eq!(claimed, [(standby.clone(), tenant.clone())]);
    // The pool refills after the claim.
    let refilled = until_available(&stack, "starter", 1).await;
    assert_ne!(refilled[0], standby);
    deprovision_all(&stack, std::slice::from_ref(&tenant)).await;
    stop(w).await;
    drain_and_check(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pool_takes_only_its_share_of_the_free_instances_and_tenants_get_the_rest() {
    // An account of the test's own with room for four instances; a pool asking for four
    // starter standbys may take a quarter of the free ones (TENANTD_POOL_RDS_SHARE=0.25).
    let account = unique_account();
    let (status, body) = Control::new()
        .post(
            "/quotas",
            json!({ "account": account, "region": "us-east-1", "DBInstances": 4 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let config = config_for_account(&account).await;
    let mut stack = Stack::new().await;
    stack.rds = aws_sdk_rds::Client::new(&config);
    stack.secrets = aws_sdk_secretsmanager::Client::new(&config);
    stack.cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let cloud = Cloud::from_sdk_config(&config);
    let w = worker_in(
        &stack,
        "starter=4",
        &[
            ("TENANTD_QUOTA_REFRESH", "1s"),
            ("TENANTD_POOL_RDS_SHARE", "0.25"),
        ],
        cloud.clone(),
    );
    until_available(&stack, "starter", 1).await;

    // Tenants of another tier still find room, while the keeper runs its rounds.
    let mut tenants = Vec::new();
    for _ in 0..2 {
        let tenant = tenant_id("share");
        let job = stack.provision(&tenant, "pro").await;
        tenants.push((tenant, job));
    }
    for (_, job) in &tenants {
        let job = stack.finished(*job, TIMEOUT).await;
        assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    }
    // Free instances: 4, then 3 with one standby: a quarter of 3 rounds down to none.
    assert_eq!(every_standby(&stack).await.len(), 1);

    let names: Vec<String> = tenants.into_iter().map(|(t, _)| t).collect();
    deprovision_all(&stack, &names).await;
    stop(w).await;
    drain_and_check_in(&stack, cloud).await;
}

/// Logs in to a tenant database with the credentials of a secret's JSON.
async fn login_with(secret: &serde_json::Value) -> Result<sqlx::PgConnection, sqlx::Error> {
    let options = sqlx::postgres::PgConnectOptions::new()
        .host(secret["host"].as_str().unwrap())
        .port(secret["port"].as_u64().unwrap() as u16)
        .username(secret["username"].as_str().unwrap())
        .password(secret["password"].as_str().unwrap())
        .database(secret["dbname"].as_str().unwrap())
        .ssl_mode(sqlx::postgres::PgSslMode::VerifyFull)
        .ssl_root_cert(stack_ca());
    sqlx::ConnectOptions::connect(&options).await
}
