//! Rollouts of the other kinds on the local stack, through a real `tenantd serve`: a CA
//! rotation of 20 tenants with one canary (each tenant's database then verified with the new
//! CA's bundle alone), a minor version, RDS's pending maintenance set through the local RDS's
//! control endpoint, a foreign instance refused, and the requests each kind refuses.

use crate::support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::postgres::PgSslMode;
use support::fleet::{daemon_env, serve_ready, settled};
use support::rds::{Control, login_tls, stack_env};
use support::rollout_api::RolloutApi;
use support::stack::{Stack, test_env};
use tenantd::tenants::TenantStatus;

const TIMEOUT: Duration = Duration::from_secs(300);
const NEW_CA: &str = "rds-ca-rsa4096-g1";

/// Provisions `n` starter tenants `<prefix>-<i>` and waits for all to be ready.
async fn ready_fleet(stack: &Stack, prefix: &str, n: usize) -> Vec<String> {
    let mut tenants = Vec::new();
    for i in 0..n {
        let tenant = format!("{prefix}-{i:02}");
        stack.provision(&tenant, "starter").await;
        tenants.push(tenant);
    }
    let statuses = settled(stack, TIMEOUT).await;
    assert!(
        statuses.values().all(|s| *s == TenantStatus::Ready),
        "{statuses:?}"
    );
    tenants
}

/// A daemon for these tests: the CA bundles of the local RDS, end-of-support dates.
fn env(
    stack: &Stack,
    worker: &str,
    extra: &[(&str, &str)],
) -> std::collections::HashMap<String, String> {
    let ca_dir = stack_env("LOCAL_RDS_TLS_DIR");
    let mut all = vec![
        ("TENANTD_TENANT_DB_CA_DIR", ca_dir.as_str()),
        (
            "TENANTD_ENGINE_END_OF_SUPPORT",
            "15=2025-02-27,16=2028-11-09",
        ),
    ];
    all.extend_from_slice(extra);
    daemon_env(&test_env(&stack.db, &all), worker, &[])
}

/// A verify-full login to the tenant's database with one CA's bundle, with its secret.
async fn verify_full(stack: &Stack, tenant: &str, ca: &str) -> Result<(), sqlx::Error> {
    let s = stack
        .secret_json(&format!("saas/tenant/{tenant}/database"))
        .await;
    let bundle = std::path::Path::new(&stack_env("LOCAL_RDS_TLS_DIR"))
        .join(ca)
        .join("ca.pem");
    let conn = login_tls(
        s["host"].as_str().unwrap(),
        s["port"].as_u64().unwrap() as u16,
        s["username"].as_str().unwrap(),
        s["password"].as_str().unwrap(),
        s["dbname"].as_str().unwrap(),
        PgSslMode::VerifyFull,
        Some(&bundle),
    )
    .await?;
    drop(conn);
    Ok(())
}

/// The jobs of a kind, with when they were created and finished.
async fn jobs_of(
    stack: &Stack,
    kind: &str,
) -> Vec<(
    String,
    chrono::DateTime<chrono::Utc>,
    Option<chrono::DateTime<chrono::Utc>>,
)> {
    sqlx::query_as(
        "SELECT tenant_id, created_at, finished_at FROM jobs WHERE kind = $1 ORDER BY created_at",
    )
    .bind(kind)
    .fetch_all(stack.pool())
    .await
    .unwrap()
}

/// Waits until the instance is `available` (after a change it is `modifying` for a while).
async fn available(stack: &Stack, instance: &str) {
    support::wait_for(&format!("{instance} to be available"), TIMEOUT, || async {
        let i = stack.instance(instance).await?;
        (i.db_instance_status() == Some("available")).then_some(())
    })
    .await;
}

fn stage<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {r}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ca_rotation_reaches_twenty_tenants_canary_first_each_verified_with_the_new_bundle() {
    let stack = Stack::new().await;
    let (_daemon, url) = serve_ready(&env(&stack, "ca", &[])).await;
    let api = RolloutApi::new(&url);
    let prefix = support::stack::tenant_id("ca");
    let tenants = ready_fleet(&stack, &prefix, 20).await;
    for t in &tenants[..2] {
        verify_full(&stack, t, "rds-ca-rsa2048-g1")
            .await
            .expect("a new instance is on RDS's default CA");
        assert!(verify_full(&stack, t, NEW_CA).await.is_err());
    }

    let started = Instant::now();
    let (status, created) = api
        .create(json!({
            "kind": "ca_certificate", "target_version": NEW_CA, "canary": 1, "concurrency": 8,
        }))
        .await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["kind"], "ca_certificate");
    assert_eq!(created["target_version"], NEW_CA);
    assert_eq!(created["apply"], "immediately");
    let id = created["id"].as_str().unwrap();
    let r = api.ended(id, TIMEOUT).await;
    let wall = started.elapsed();
    eprintln!("ca rotation of 20 tenants, canary 1, concurrency 8: {wall:.1?}");
    assert_eq!(r["state"], "succeeded", "{r:#}");
    assert_eq!(r["totals"]["succeeded"], 20, "{r:#}");
    assert_eq!(stage(&r, "canary")["succeeded"], 1);

    // The canary's job ended before any other began.
    let jobs = jobs_of(&stack, "ca_certificate").await;
    assert_eq!(jobs.len(), 20);
    let canary_done = jobs[0].2.expect("the canary's job finished");
    assert!(
        jobs[1..]
            .iter()
            .all(|(_, created, _)| *created >= canary_done),
        "a tenant started before the canary ended: {jobs:?}"
    );
    // Every instance on the new CA, recorded on the tenant, and verify-full with its bundle
    // alone (the old one no longer verifies).
    for t in &tenants {
        let instance = stack.instance(&format!("saas-{t}")).await.unwrap();
        assert_eq!(instance.ca_certificate_identifier(), Some(NEW_CA), "{t}");
        assert_eq!(
            stack.tenant(t).await.ca_certificate.as_deref(),
            Some(NEW_CA)
        );
        verify_full(&stack, t, NEW_CA)
            .await
            .unwrap_or_else(|e| panic!("{t}: verify-full with {NEW_CA}: {e}"));
        assert!(
            verify_full(&stack, t, "rds-ca-rsa2048-g1").await.is_err(),
            "{t}"
        );
    }
    // The job's own verify-full login is in its history.
    let noted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM job_history h JOIN jobs j ON j.id = h.job_id
         WHERE j.kind = 'ca_certificate' AND h.note LIKE 'verify-full login with the bundle of %'",
    )
    .fetch_one(stack.pool())
    .await
    .unwrap();
    assert_eq!(noted, 20);

    // The tenants list and the engine report see the new CA.
    let (status, page) = api
        .call(
            Method::GET,
            &format!("/v1/tenants?ca_certificate={NEW_CA}&limit=100"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["tenants"].as_array().unwrap().len(), 20);
    let (_, none) = api
        .call(
            Method::GET,
            "/v1/tenants?ca_certificate=rds-ca-rsa2048-g1",
            None,
        )
        .await;
    assert_eq!(none["tenants"].as_array().unwrap().len(), 0, "{none}");
    let (status, report) = api.call(Method::GET, "/v1/reports/engines", None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["cas"],
        json!([{"ca_certificate": NEW_CA, "tenants": 20}])
    );
    assert_eq!(report["majors"][0]["major"], "16", "{report}");
    assert_eq!(report["majors"][0]["end_of_support"], "2028-11-09");
    assert_eq!(report["past_end_of_support_total"], 0);
    // A second rotation to the same CA finds every tenant there already.
    let again = api
        .run(
            json!({"kind": "ca_certificate", "target_version": NEW_CA}),
            TIMEOUT,
        )
        .await;
    assert_eq!(again["totals"]["succeeded"], 20);
    assert_eq!(
        jobs_of(&stack, "ca_certificate").await.len(),
        20,
        "no new job"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_minor_version_and_pending_maintenance_reach_the_fleet_and_a_foreign_instance_is_refused()
{
    let stack = Stack::new().await;
    // No reconciler: the maintenance jobs read the pending actions themselves, and the
    // retagged instance stays a ready tenant (the reconciler would make it detached).
    let (_daemon, url) = serve_ready(&env(
        &stack,
        "minor",
        &[("TENANTD_RECONCILE_INTERVAL", "0")],
    ))
    .await;
    let api = RolloutApi::new(&url);
    let prefix = support::stack::tenant_id("mn");
    let tenants = ready_fleet(&stack, &prefix, 4).await;
    let (ours, foreign) = (&tenants[..3], &tenants[3]);
    let before = stack.tenant(&ours[0]).await.engine_version.unwrap();
    assert!(before.starts_with("16.") && before != "16.9", "{before}");

    // Another environment's instance now (its Environment tag changed): the CA rotation's
    // canary refuses it, changes nothing, and the rollout halts.
    let arn = stack
        .instance(&format!("saas-{foreign}"))
        .await
        .unwrap()
        .db_instance_arn()
        .unwrap()
        .to_string();
    stack
        .rds
        .add_tags_to_resource()
        .resource_name(&arn)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("Environment")
                .value("production")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (status, created) = api
        .create(json!({"kind": "ca_certificate", "target_version": NEW_CA, "tenants": [foreign]}))
        .await;
    assert_eq!(status, 202, "{created}");
    let r = api.ended(created["id"].as_str().unwrap(), TIMEOUT).await;
    assert_eq!(r["state"], "halted", "{r:#}");
    let failure = r["failures"][0]["error"].as_str().unwrap();
    assert!(
        failure.contains("not tagged as this tenant's") && failure.contains("production"),
        "{failure}"
    );
    let instance = stack.instance(&format!("saas-{foreign}")).await.unwrap();
    assert_eq!(
        instance.ca_certificate_identifier(),
        Some("rds-ca-rsa2048-g1")
    );
    assert_eq!(
        instance
            .pending_modified_values()
            .and_then(|p| p.ca_certificate_identifier()),
        None
    );
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/v1/rollouts/{}/cancel", created["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 202);

    // A minor version, canary first, for our three.
    let r = api
        .run(
            json!({"kind": "engine_minor", "target_version": "16.9", "tenants": ours,
                   "canary": 1, "concurrency": 2}),
            TIMEOUT,
        )
        .await;
    assert_eq!(r["totals"]["succeeded"], 3, "{r:#}");
    for t in ours {
        let instance = stack.instance(&format!("saas-{t}")).await.unwrap();
        assert_eq!(instance.engine_version(), Some("16.9"), "{t}");
        assert_eq!(
            stack.tenant(t).await.engine_version.as_deref(),
            Some("16.9")
        );
    }
    let (_, page) = api
        .call(Method::GET, "/v1/tenants?engine_version=16.9", None)
        .await;
    assert_eq!(page["tenants"].as_array().unwrap().len(), 3, "{page}");
    let (_, page) = api
        .call(Method::GET, "/v1/tenants?engine_version=16", None)
        .await;
    assert_eq!(page["tenants"].as_array().unwrap().len(), 4, "{page}");

    // Pending maintenance on two of the three (through the local RDS's control endpoint);
    // a maintenance rollout applies them at once and finds none on the third.
    let control = Control::new();
    for t in &ours[..2] {
        let (status, body) = control
            .post(
                &format!("/instances/saas-{t}/pending-maintenance"),
                json!({"action": "system-update"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let r = api
        .run(
            json!({"kind": "maintenance", "target_version": "all", "apply": "immediate",
                   "tenants": ours, "canary": 1}),
            TIMEOUT,
        )
        .await;
    assert_eq!(r["totals"]["succeeded"], 3, "{r:#}");
    for t in ours {
        let (status, body) = control
            .get(&format!("/instances/saas-{t}/pending-maintenance"))
            .await;
        assert_eq!(status, 200, "{body}");
        let left = body["actions"].as_array().map(Vec::len).unwrap_or(0)
            + body["pending_maintenance_actions"]
                .as_array()
                .map(Vec::len)
                .unwrap_or(0);
        assert_eq!(left, 0, "{t}: {body}");
        let pending = stack.tenant(t).await.pending_maintenance.map(|p| p.0);
        assert_eq!(pending, Some(vec![]), "{t}");
    }
    let results: Vec<String> = sqlx::query_scalar(
        "SELECT data->>'result' FROM jobs WHERE kind = 'maintenance' ORDER BY tenant_id",
    )
    .fetch_all(stack.pool())
    .await
    .unwrap();
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(
        results
            .iter()
            .filter(|r| r.contains("applied: system-update"))
            .count(),
        2,
        "{results:?}"
    );
}

#[tokio::test]
async fn each_kind_refuses_what_rds_does_not_offer_and_a_refused_request_changes_nothing() {
    let stack = Stack::new().await;
    let (_daemon, url) = serve_ready(&env(&stack, "refuse", &[])).await;
    let api = RolloutApi::new(&url);
    for (body, code) in [
        (
            json!({"kind": "firmware", "target_version": "1"}),
            "unknown_rollout_kind",
        ),
        (
            json!({"kind": "engine_minor", "target_version": "16.99"}),
            "target_not_offered",
        ),
        (
            json!({"kind": "engine_minor", "target_version": "16"}),
            "target_not_offered",
        ),
        (
            json!({"kind": "engine_major", "target_version": "42"}),
            "target_not_offered",
        ),
        (
            json!({"kind": "ca_certificate", "target_version": "rds-ca-nope-g9"}),
            "target_not_offered",
        ),
        // Expired in 2024.
        (
            json!({"kind": "ca_certificate", "target_version": "rds-ca-2019"}),
            "target_not_offered",
        ),
        (
            json!({"kind": "maintenance", "target_version": "reboot"}),
            "target_not_offered",
        ),
        (
            json!({"kind": "ca_certificate", "target_version": NEW_CA, "apply": "next-maintenance"}),
            "invalid_apply",
        ),
        (
            json!({"kind": "maintenance", "target_version": "all", "apply": "immediately"}),
            "invalid_apply",
        ),
        (json!({"apply": "immediately"}), "invalid_apply"),
        (json!({"kind": "engine_minor"}), "invalid_body"),
        (json!({"target_version": "newest"}), "invalid_body"),
        (
            json!({"kind": "engine_major", "target_version": 17}),
            "invalid_body",
        ),
    ] {
        let (status, answer) = api.create(body.clone()).await;
        assert_eq!(status, 422, "{body} → {answer}");
        assert_eq!(answer["error"]["code"], code, "{body} → {answer}");
    }
    let (_, page) = api.call(Method::GET, "/v1/rollouts", None).await;
    assert_eq!(
        page["rollouts"],
        json!([]),
        "a refused request made a rollout"
    );

    // A tenant list filter that is no version or CA.
    for query in ["engine_version=sixteen", "ca_certificate=RDS%20CA"] {
        let (status, answer) = api
            .call(Method::GET, &format!("/v1/tenants?{query}"), None)
            .await;
        assert_eq!(status, 400, "{query} → {answer}");
        assert_eq!(answer["error"]["code"], "invalid_query");
    }

    // The CLI names the refusal's code (exit 1) and sends kind, target and apply as asked.
    for (args, code) in [
        (
            vec![
                "rollouts",
                "create",
                "--kind",
                "maintenance",
                "--target",
                "reboot",
            ],
            "target_not_offered",
        ),
        (
            vec![
                "rollouts",
                "create",
                "--kind",
                "ca_certificate",
                "--target",
                NEW_CA,
                "--apply",
                "immediate",
            ],
            "invalid_apply",
        ),
        (
            vec!["tenants", "list", "--engine-version", "sixteen"],
            "invalid_query",
        ),
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenantd"))
            .args(&args)
            .env("TENANTD_URL", &url)
            .env("TENANTD_TOKEN", support::rollout_api::TOKEN)
            .env("RUST_LOG", "warn")
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(code), "{args:?}: {stderr}");
    }

    // One rollout at a time, whatever the kinds: a maintenance rollout whose only tenant is
    // busy (a job of its own due in an hour) keeps running, and a CA rotation is refused.
    sqlx::query(
        "INSERT INTO tenants (id, tier, status, engine_version, db_instance_id, endpoint_host,
             endpoint_port, secret_arn)
         VALUES ('lone', 'starter', 'ready', '16.8', 'saas-lone', 'nowhere.invalid', 5432,
             'arn:aws:secretsmanager:us-east-1:000000000000:secret:none')",
    )
    .execute(stack.pool())
    .await
    .unwrap();
    let mut busy = tenantd::queue::NewJob::new("reconcile", "apply", 1)
        .tenant("lone")
        .args(json!({"reason": "repair", "tier": "starter"}));
    busy.run_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    let mut conn = stack.pool().acquire().await.unwrap();
    let busy = match tenantd::queue::enqueue(&mut conn, busy).await.unwrap() {
        tenantd::queue::Enqueued::Created(job) => job,
        other => panic!("{other:?}"),
    };
    let (status, running) = api
        .create(json!({"kind": "maintenance", "target_version": "all"}))
        .await;
    assert_eq!(status, 202, "{running}");
    let running = running["id"].as_str().unwrap().to_string();
    let (status, answer) = api
        .create(json!({"kind": "ca_certificate", "target_version": NEW_CA}))
        .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "rollout_in_progress");
    assert_eq!(api.rollout(&running).await["state"], "running");
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/v1/rollouts/{running}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let (status, answer) = api
        .call(Method::POST, &format!("/v1/jobs/{}/cancel", busy.id), None)
        .await;
    assert_eq!(status, 202, "{answer}");
    support::wait_for("the busy job to end", TIMEOUT, || async {
        let job = stack.job(busy.id).await;
        support::stack::is_final(&job).then_some(())
    })
    .await;

    // engine_major (RDS offers 17) starts an engine_upgrade job per tenant, with the rollout
    // in its arguments; this tenant has no instance, so the canary's upgrade fails its
    // prechecks and the rollout halts with that job's error.
    let (status, created) = api
        .create(json!({"kind": "engine_major", "target_version": "17", "canary": 1}))
        .await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["target_version"], "17");
    let id = created["id"].as_str().unwrap();
    let r = api.ended(id, TIMEOUT).await;
    assert_eq!(r["state"], "halted", "{r:#}");
    assert!(r["reason"].as_str().unwrap().contains("canary"), "{r}");
    let (rollout, target): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT args->>'rollout', args->>'target_major' FROM jobs
         WHERE kind = 'engine_upgrade' AND tenant_id = 'lone'",
    )
    .fetch_one(stack.pool())
    .await
    .unwrap();
    assert_eq!(rollout.as_deref(), Some(id));
    assert_eq!(target.as_deref(), Some("17"));
    let failure = &r["failures"][0];
    assert_eq!(failure["tenant_id"], "lone");
    assert!(
        failure["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_left_to_the_maintenance_window_wait_for_it_then_are_recorded() {
    let stack = Stack::new().await;
    let (_daemon, url) = serve_ready(&env(&stack, "window", &[])).await;
    let api = RolloutApi::new(&url);
    let prefix = support::stack::tenant_id("win");
    let tenant = ready_fleet(&stack, &prefix, 1).await.remove(0);
    let instance = format!("saas-{tenant}");
    let control = Control::new();

    // The CA waits in PendingModifiedValues until the window comes; the rollout waits with it.
    let (status, created) = api
        .create(json!({"kind": "ca_certificate", "target_version": NEW_CA,
                       "apply": "maintenance_window", "canary": 0}))
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    support::wait_for("the CA to be pending", TIMEOUT, || async {
        let i = stack.instance(&instance).await?;
        (i.pending_modified_values()?.ca_certificate_identifier() == Some(NEW_CA)).then_some(())
    })
    .await;
    support::wait_for("the job to wait for the window", TIMEOUT, || async {
        let (step, state): (String, String) =
            sqlx::query_as("SELECT step, state::text FROM jobs WHERE kind = 'ca_certificate'")
                .fetch_one(stack.pool())
                .await
                .ok()?;
        (step == "wait_window" && state == "waiting").then_some(())
    })
    .await;
    let r = api.rollout(&id).await;
    assert_eq!(r["state"], "running", "{r:#}");
    assert_eq!(r["totals"]["migrating"], 1, "{r:#}");
    assert_eq!(
        stack
            .instance(&instance)
            .await
            .unwrap()
            .ca_certificate_identifier(),
        Some("rds-ca-rsa2048-g1")
    );
    available(&stack, &instance).await;
    let (status, body) = control
        .post(
            &format!("/instances/{instance}/maintenance-window"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let r = api.ended(&id, TIMEOUT).await;
    assert_eq!(r["state"], "succeeded", "{r:#}");
    assert_eq!(
        stack.tenant(&tenant).await.ca_certificate.as_deref(),
        Some(NEW_CA)
    );
    verify_full(&stack, &tenant, NEW_CA).await.unwrap();

    // A pending action opted in for the next window: applied only once it comes.
    let (status, body) = control
        .post(
            &format!("/instances/{instance}/pending-maintenance"),
            json!({"action": "system-update"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, created) = api
        .create(
            json!({"kind": "maintenance", "target_version": "system-update",
                       "apply": "next-maintenance", "canary": 0}),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    support::wait_for("the opt-in", TIMEOUT, || async {
        let (_, body) = control
            .get(&format!("/instances/{instance}/pending-maintenance"))
            .await;
        body.to_string().contains("next-maintenance").then_some(())
    })
    .await;
    assert_eq!(api.rollout(&id).await["state"], "running");
    available(&stack, &instance).await;
    let (status, body) = control
        .post(
            &format!("/instances/{instance}/maintenance-window"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let r = api.ended(&id, TIMEOUT).await;
    assert_eq!(r["state"], "succeeded", "{r:#}");
    assert_eq!(
        stack.tenant(&tenant).await.pending_maintenance.map(|p| p.0),
        Some(vec![])
    );
}
