//! Job operations through the real HTTP server on a real port and the real CLI binary: jobs
//! listed newest first with filters and cursor paging, a failed job retried from its first step,
//! and the refusals.

use crate::support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::app::{TOKEN, TestApp, spawn_app};

/// A tenant row in `status`, with one finished `provision` job per entry of `jobs` (its final
/// state), the oldest first; returns the job ids.
async fn seed(app: &TestApp, tenant: &str, status: &str, jobs: &[&str]) -> Vec<String> {
    let pool = &app.db.pool;
    let reachable = status == "ready";
    sqlx::query(
        "INSERT INTO tenants (id, tier, status, error, db_instance_id, endpoint_host,
             endpoint_port, secret_arn)
         VALUES ($1, 'starter', $2::tenant_status,
                 CASE WHEN $2 = 'failed' THEN 'it broke' END,
                 CASE WHEN $3 THEN 'saas-' || $1 END, CASE WHEN $3 THEN 'db.example' END,
                 CASE WHEN $3 THEN 5432 END, CASE WHEN $3 THEN 'arn:secret' END)",
    )
    .bind(tenant)
    .bind(status)
    .bind(reachable)
    .execute(pool)
    .await
    .unwrap();
    let mut ids = Vec::new();
    for (i, state) in jobs.iter().enumerate() {
        let id: uuid::Uuid = sqlx::query_scalar(
            "INSERT INTO jobs (id, kind, tenant_id, state, step, args, max_attempts, error,
                 created_at, finished_at)
             VALUES (gen_random_uuid(), 'provision', $1, $2::job_state, 'mark_failed',
                     '{\"tier\": \"starter\"}', 3,
                     CASE WHEN $2 = 'failed' THEN 'it broke' END,
                     now() - make_interval(mins => 10 - $3), now() - make_interval(mins => 9 - $3))
             RETURNING id",
        )
        .bind(tenant)
        .bind(state)
        .bind(i as i32)
        .fetch_one(pool)
        .await
        .unwrap();
        ids.push(id.to_string());
    }
    ids
}

async fn call(app: &TestApp, method: Method, path: &str) -> (u16, Value) {
    let r = app.request(method, path).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn ids(page: &Value) -> Vec<String> {
    page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn jobs_are_listed_newest_first_with_filters_and_pages() {
    let app = spawn_app().await;
    let acme = seed(&app, "acme", "failed", &["failed", "failed"]).await;
    let beta = seed(&app, "beta", "ready", &["succeeded"]).await;

    let (status, page) = call(&app, Method::GET, "/v1/jobs").await;
    assert_eq!(status, 200, "{page}");
    // Seeded 10, 9 and 10 minutes ago: beta's and acme's first are the oldest.
    let all = ids(&page);
    assert_eq!(all.len(), 3);
    assert_eq!(all[0], acme[1]);
    assert!(page["next_cursor"].is_null());

    let (_, page) = call(&app, Method::GET, "/v1/jobs?state=succeeded").await;
    assert_eq!(ids(&page), beta);
    let (_, page) = call(&app, Method::GET, "/v1/jobs?tenant=acme&kind=provision").await;
    assert_eq!(ids(&page), [acme[1].clone(), acme[0].clone()]);

    // Pages of one follow each other without gaps or repeats.
    let mut seen = Vec::new();
    let mut path = "/v1/jobs?limit=1".to_string();
    loop {
        let (status, page) = call(&app, Method::GET, &path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/jobs?limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, all);

    for bad in [
        "/v1/jobs?state=bogus",
        "/v1/jobs?limit=0",
        "/v1/jobs?tenant=Not_A_Tenant",
        "/v1/jobs?kind=Provision",
        "/v1/jobs?cursor=nope",
        "/v1/jobs?colour=red",
        "/v1/jobs?state=failed&state=queued",
    ] {
        let (status, body) = call(&app, Method::GET, bad).await;
        assert_eq!(
            (status, code(&body)),
            (400, "invalid_query"),
            "{bad}: {body}"
        );
    }
}

#[tokio::test]
async fn a_failed_job_of_a_failed_tenant_is_retried_from_its_first_step_and_nothing_else_is() {
    let app = spawn_app().await;
    let acme = seed(&app, "acme", "failed", &["failed", "failed"]).await;
    let beta = seed(&app, "beta", "ready", &["succeeded"]).await;
    let gamma = seed(&app, "gamma", "ready", &["failed"]).await;

    // Not the latest failed job of acme; beta's succeeded; gamma is ready; unknown ids.
    for (id, status, expected) in [
        (acme[0].as_str(), 409, "job_not_retryable"),
        (beta[0].as_str(), 409, "job_not_retryable"),
        (gamma[0].as_str(), 409, "job_not_retryable"),
        ("5b0c7c1e-1111-4222-8333-944455556666", 404, "job_not_found"),
        ("not-a-uuid", 404, "job_not_found"),
    ] {
        let (got, body) = call(&app, Method::POST, &format!("/v1/jobs/{id}/retry")).await;
        assert_eq!((got, code(&body)), (status, expected), "{id}: {body}");
    }
    let (_, body) = call(&app, Method::POST, &format!("/v1/jobs/{}/retry", gamma[0])).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("gamma is ready"), "{message}");
    assert_eq!(app.count("jobs").await, 4, "a refusal enqueued something");

    let (status, body) = call(&app, Method::POST, &format!("/v1/jobs/{}/retry", acme[1])).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["job"]["kind"], "provision");
    assert_eq!(body["job"]["step"], "credentials");
    assert_eq!(body["job"]["state"], "queued");
    assert_eq!(body["tenant"]["status"], "provisioning");
    let args: Value = sqlx::query_scalar("SELECT args FROM jobs WHERE state = 'queued'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(args, json!({ "tier": "starter" }));
    // Once retried, the old job is no longer the one to retry.
    let (status, body) = call(&app, Method::POST, &format!("/v1/jobs/{}/retry", acme[1])).await;
    assert_eq!((status, code(&body)), (409, "job_not_retryable"), "{body}");
}

#[tokio::test]
async fn the_cli_lists_cancels_and_retries_jobs() {
    let app = spawn_app().await;
    let acme = seed(&app, "acme", "failed", &["failed"]).await;
    let cli = |args: Vec<String>| {
        let url = app.url.clone();
        async move {
            let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenantd"))
                .args(&args)
                .env_clear()
                .env("TENANTD_URL", url)
                .env("TENANTD_TOKEN", TOKEN)
                .output();
            let out = tokio::time::timeout(Duration::from_secs(30), run)
                .await
                .unwrap()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).to_string(),
                String::from_utf8_lossy(&out.stderr).to_string(),
            )
        }
    };
    let words = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();

    let (code, out, err) = cli(words("jobs list --state failed")).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&acme[0]) && out.contains("failed"), "{out}");

    let (code, out, err) = cli(words(&format!("jobs retry {}", acme[0]))).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("provision retry acme"), "{out}");
    let (code, out, _) = cli(words(
        "jobs list --tenant acme --state queued --output json",
    ))
    .await;
    assert_eq!(code, Some(0));
    let page: Value = serde_json::from_str(&out).unwrap();
    let queued = page["jobs"][0]["id"].as_str().unwrap().to_string();

    let (code, out, err) = cli(words(&format!("jobs cancel {queued}"))).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("cancel requested"), "{out}");
    // Retrying what is not retryable names the code.
    let (code, _, err) = cli(words(&format!("jobs retry {queued}"))).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("job_not_retryable"), "{err}");
}
