//! The HTTP API through a real server on port 0 over a real control PostgreSQL: authentication,
//! validation with its status codes and error codes, idempotent replays, conflicts, pagination,
//! jobs and cancelling, health, and nothing enqueued by a refused request.

use crate::support;

use reqwest::Method;
use serde_json::{Value, json};
use support::app::{SECOND_TOKEN, TOKEN, code, spawn_app, status_and_json};

#[tokio::test]
async fn requests_without_the_right_token_are_refused_and_enqueue_nothing() {
    let app = spawn_app().await;
    let body = json!({ "id": "acme", "tier": "pro" });
    let url = format!("{}/v1/tenants", app.url);
    let none = app.http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let (status, err) = status_and_json(none).await;
    assert_eq!((status, code(&err)), (401, "unauthorized"));
    for header in [
        "Bearer wrong-token",
        "Bearer ",
        "Basic dGVzdDp0ZXN0",
        TOKEN,
        &format!("Bearer {TOKEN}x"),
    ] {
        let response = app
            .http
            .post(&url)
            .header("authorization", header)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, err) = status_and_json(response).await;
        assert_eq!((status, code(&err)), (401, "unauthorized"), "{header}");
    }
    for path in ["/v1/tenants", "/v1/tenants/acme", "/v1/jobs/x"] {
        let response = app.http.get(format!("{}{path}", app.url)).send().await;
        assert_eq!(response.unwrap().status(), 401, "{path}");
    }
    assert_eq!(app.count("jobs").await, 0);
    assert_eq!(app.count("tenants").await, 0);

    let (status, _) = app.create("acme", "pro").await;
    assert_eq!(status, 202);
    let second = app
        .http
        .get(format!("{}/v1/tenants/acme", app.url))
        .bearer_auth(SECOND_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 200, "every configured token is accepted");
}

#[tokio::test]
async fn health_and_readiness_need_no_token() {
    let app = spawn_app().await;
    let health = app.http.get(format!("{}/healthz", app.url)).send().await;
    assert_eq!(health.unwrap().status(), 200);
    let ready = app.http.get(format!("{}/readyz", app.url)).send().await;
    let (status, body) = status_and_json(ready.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
}

#[tokio::test]
async fn creating_a_tenant_answers_202_with_the_tenant_and_its_provisioning_job() {
    let app = spawn_app().await;
    let (status, body) = app.create("acme", "pro").await;
    assert_eq!(status, 202, "{body}");
    let tenant = &body["tenant"];
    assert_eq!(tenant["id"], "acme");
    assert_eq!(tenant["tier"], "pro");
    assert_eq!(tenant["status"], "provisioning");
    for nullable in ["endpoint", "secret_arn", "error", "db_instance_id"] {
        assert_eq!(tenant[nullable], Value::Null, "{nullable}");
    }
    let job = &body["job"];
    assert_eq!(job["kind"], "provision");
    assert_eq!(job["state"], "queued");
    let job_id = job["id"].as_str().unwrap();
    uuid::Uuid::parse_str(job_id).unwrap();
    assert_eq!(tenant["job"]["id"], job["id"]);
    assert_eq!(app.count("jobs").await, 1);
    let text = body.to_string();
    assert!(
        !text.contains("password") && !text.contains("lease"),
        "{text}"
    );
}

#[tokio::test]
async fn replaying_a_create_returns_the_same_job_with_200_while_active_and_once_ready() {
    let app = spawn_app().await;
    let (_, first) = app.create("acme", "pro").await;
    let (status, replay) = app.create("acme", "pro").await;
    assert_eq!(status, 200);
    assert_eq!(replay["job"]["id"], first["job"]["id"]);
    assert_eq!(app.count("jobs").await, 1);

    app.finish_provisioning("acme").await;
    let (status, replay) = app.create("acme", "pro").await;
    assert_eq!(status, 200, "{replay}");
    assert_eq!(replay["job"]["id"], first["job"]["id"]);
    assert_eq!(replay["tenant"]["status"], "ready");
    assert_eq!(app.count("jobs").await, 1);
}

#[tokio::test]
async fn the_same_id_with_another_tier_is_a_tier_conflict_while_active_or_ready() {
    let app = spawn_app().await;
    app.create("acme", "pro").await;
    let (status, err) = app.create("acme", "starter").await;
    assert_eq!((status, code(&err)), (409, "tier_conflict"), "{err}");
    app.finish_provisioning("acme").await;
    let (status, err) = app.create("acme", "enterprise").await;
    assert_eq!((status, code(&err)), (409, "tier_conflict"), "{err}");
    assert_eq!(app.count("jobs").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicate_creates_make_one_job() {
    let app = spawn_app().await;
    let answers =
        futures::future::join_all((0..16).map(|_| app.create("race-corp", "starter"))).await;
    let created = answers.iter().filter(|(s, _)| *s == 202).count();
    let replayed = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!((created, replayed), (1, 15), "{answers:?}");
    let ids: std::collections::HashSet<_> = answers
        .iter()
        .map(|(_, b)| b["job"]["id"].clone())
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(app.count("jobs").await, 1);
}

#[tokio::test]
async fn every_invalid_request_has_its_own_status_and_code_and_enqueues_nothing() {
    let app = spawn_app().await;
    let json_cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({ "id": "ab", "tier": "pro" }),
            422,
            "invalid_tenant_id",
        ),
        (
            json!({ "id": "a".repeat(41), "tier": "pro" }),
            422,
            "invalid_tenant_id",
        ),
        (
            json!({ "id": "1acme", "tier": "pro" }),
            422,
            "invalid_tenant_id",
        ),
        (
            json!({ "id": "Acme", "tier": "pro" }),
            422,
            "invalid_tenant_id",
        ),
        (
            json!({ "id": "acme-", "tier": "pro" }),
            422,
            "invalid_tenant_id",
        ),
        (
            json!({ "id": "ac--me", "tier": "pro" }),
            422,
            "invalid_tenant_id",
        ),
        (
            json!({ "id": "acme_co", "tier": "pro" }),
            422,
            "invalid_tenant_id",
        ),
        (
            json!({ "id": "acme", "tier": "platinum" }),
            422,
            "unknown_tier",
        ),
        (
            json!({ "id": "acme", "tier": "pro", "size": 1 }),
            422,
            "invalid_body",
        ),
        (json!({ "id": "acme" }), 422, "invalid_body"),
        (json!({ "id": 7, "tier": "pro" }), 422, "invalid_body"),
        (json!(["acme", "pro"]), 422, "invalid_body"),
        (
            json!({ "id": "acme", "tier": "pro", "note": "x".repeat(17 * 1024) }),
            413,
            "body_too_large",
        ),
    ];
    for (body, status, expected) in json_cases {
        let response = app
            .request(Method::POST, "/v1/tenants")
            .json(&body)
            .send()
            .await
            .unwrap();
        let (got, err) = status_and_json(response).await;
        let shown: String = body.to_string().chars().take(80).collect();
        assert_eq!((got, code(&err)), (status, expected), "{shown}: {err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let raw_cases: Vec<(&str, Option<&str>, u16, &str)> = vec![
        (
            r#"{"id": "acme", "tier": "#,
            Some("application/json"),
            400,
            "malformed_json",
        ),
        ("", Some("application/json"), 400, "malformed_json"),
        (
            r#"{"id": "acme", "tier": "pro"}"#,
            None,
            415,
            "unsupported_media_type",
        ),
        (
            r#"{"id": "acme", "tier": "pro"}"#,
            Some("text/plain"),
            415,
            "unsupported_media_type",
        ),
    ];
    for (body, content_type, status, expected) in raw_cases {
        let mut request = app.request(Method::POST, "/v1/tenants").body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let (got, err) = status_and_json(request.send().await.unwrap()).await;
        assert_eq!(
            (got, code(&err)),
            (status, expected),
            "{body:?} {content_type:?}"
        );
    }
    for (path, status, expected) in [
        ("/v1/tenants?limit=0", 400, "invalid_query"),
        ("/v1/tenants?limit=1001", 400, "invalid_query"),
        ("/v1/tenants?limit=many", 400, "invalid_query"),
        ("/v1/tenants?status=gone", 400, "invalid_query"),
        ("/v1/tenants?colour=red", 400, "invalid_query"),
        ("/v1/tenants?cursor=", 400, "invalid_query"),
        ("/v1/tenants?cursor=ab", 400, "invalid_query"),
        ("/v1/tenants?cursor=0.5", 400, "invalid_query"),
        ("/v1/tenants?cursor=acme%00", 400, "invalid_query"),
        ("/v1/tenants/%FF%FE", 400, "invalid_path"),
        ("/v1/jobs/%FF%FE", 400, "invalid_path"),
        ("/v1/tenants/Not_An_Id", 422, "invalid_tenant_id"),
        ("/v1/nothing-here", 404, "not_found"),
    ] {
        let (got, err) = app.get(path).await;
        assert_eq!((got, code(&err)), (status, expected), "{path}");
    }
    let response = app
        .request(Method::DELETE, "/v1/tenants/acme?final_snapshot=maybe")
        .send()
        .await
        .unwrap();
    let (got, err) = status_and_json(response).await;
    assert_eq!((got, code(&err)), (400, "invalid_query"));
    let response = app
        .request(Method::PUT, "/v1/tenants")
        .send()
        .await
        .unwrap();
    let (got, err) = status_and_json(response).await;
    assert_eq!((got, code(&err)), (405, "method_not_allowed"));

    assert_eq!(app.count("jobs").await, 0);
    assert_eq!(app.count("tenants").await, 0);
}

#[tokio::test]
async fn a_tenant_shows_its_status_endpoint_and_latest_job_and_never_a_password() {
    let app = spawn_app().await;
    let (_, created) = app.create("acme", "starter").await;
    app.finish_provisioning("acme").await;
    let (status, tenant) = app.get("/v1/tenants/acme").await;
    assert_eq!(status, 200);
    assert_eq!(tenant["status"], "ready");
    assert_eq!(
        tenant["endpoint"],
        json!({ "host": "db.example", "port": 5432 })
    );
    assert_eq!(tenant["db_instance_id"], "saas-acme");
    assert!(tenant["secret_arn"].as_str().unwrap().ends_with(":acme"));
    assert_eq!(tenant["job"]["id"], created["job"]["id"]);
    assert_eq!(tenant["job"]["state"], "succeeded");
    assert!(!tenant.to_string().to_lowercase().contains("password"));

    let (status, err) = app.get("/v1/tenants/nobody").await;
    assert_eq!((status, code(&err)), (404, "tenant_not_found"));
}

#[tokio::test]
async fn listing_pages_through_every_tenant_once_in_id_order() {
    let app = spawn_app().await;
    let mut ids: Vec<String> = (0..7).map(|n| format!("tenant-{n}")).collect();
    for id in &ids {
        assert_eq!(app.create(id, "starter").await.0, 202);
    }
    sqlx::query("UPDATE tenants SET status = 'failed', error = 'boom' WHERE id = 'tenant-3'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/tenants?limit=3&cursor={c}"),
            None => "/v1/tenants?limit=3".to_string(),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for t in page["tenants"].as_array().unwrap() {
            seen.push(t["id"].as_str().unwrap().to_string());
            assert_eq!(t["job"]["kind"], "provision");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    ids.sort();
    assert_eq!(seen, ids);
    assert_eq!(pages, 3);

    let (_, failed) = app.get("/v1/tenants?status=failed").await;
    let failed: Vec<&str> = failed["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["tenant-3"]);
}

#[tokio::test]
async fn deleting_waits_for_provisioning_then_enqueues_one_deprovisioning_job() {
    let app = spawn_app().await;
    let (status, err) = {
        let r = app
            .request(Method::DELETE, "/v1/tenants/ghost")
            .send()
            .await;
        status_and_json(r.unwrap()).await
    };
    assert_eq!((status, code(&err)), (404, "tenant_not_found"));

    app.create("acme", "pro").await;
    let r = app.request(Method::DELETE, "/v1/tenants/acme").send().await;
    let (status, err) = status_and_json(r.unwrap()).await;
    assert_eq!(
        (status, code(&err)),
        (409, "provisioning_in_progress"),
        "{err}"
    );
    assert_eq!(app.count("jobs").await, 1);

    app.finish_provisioning("acme").await;
    let delete = "/v1/tenants/acme?final_snapshot=false";
    let r = app.request(Method::DELETE, delete).send().await;
    let (status, body) = status_and_json(r.unwrap()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["job"]["kind"], "deprovision");
    assert_eq!(body["tenant"]["status"], "deprovisioning");
    let args: Value = sqlx::query_scalar("SELECT args FROM jobs WHERE kind = 'deprovision'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(args["final_snapshot"], false);

    let r = app.request(Method::DELETE, delete).send().await;
    let (status, replay) = status_and_json(r.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(replay["job"]["id"], body["job"]["id"]);
    let (status, err) = app.create("acme", "pro").await;
    assert_eq!((status, code(&err)), (409, "conflict"), "{err}");
    assert_eq!(app.count("jobs").await, 2);
}

#[tokio::test]
async fn a_job_shows_its_history_and_a_queued_job_can_be_cancelled_once() {
    let app = spawn_app().await;
    let (_, created) = app.create("acme", "pro").await;
    let job_id = created["job"]["id"].as_str().unwrap().to_string();
    let (status, job) = app.get(&format!("/v1/jobs/{job_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(job["tenant_id"], "acme");
    let history = job["history"].as_array().unwrap();
    assert_eq!(history[0]["outcome"], "enqueued");
    for field in ["step", "outcome", "started_at", "finished_at", "error"] {
        assert!(history[0].get(field).is_some(), "history has no {field}");
    }

    let cancel = format!("/v1/jobs/{job_id}/cancel");
    let r = app.request(Method::POST, &cancel).send().await;
    let (status, cancelled) = status_and_json(r.unwrap()).await;
    assert_eq!(status, 202, "{cancelled}");
    assert_eq!(cancelled["cancel_requested"], true);
    let (_, job) = app.get(&format!("/v1/jobs/{job_id}")).await;
    let outcomes: Vec<&str> = job["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["enqueued", "cancel_requested"]);

    app.finish_provisioning("acme").await;
    let (_, other) = app.create("other", "pro").await;
    let other_id = other["job"]["id"].as_str().unwrap();
    app.finish_provisioning("other").await;
    let r = app
        .request(Method::POST, &format!("/v1/jobs/{other_id}/cancel"))
        .send()
        .await;
    let (status, err) = status_and_json(r.unwrap()).await;
    assert_eq!((status, code(&err)), (409, "job_not_cancellable"), "{err}");

    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/v1/jobs/{unknown}"),
        "/v1/jobs/not-a-uuid".to_string(),
    ] {
        let (status, err) = app.get(&path).await;
        assert_eq!((status, code(&err)), (404, "job_not_found"), "{path}");
    }
    let r = app
        .request(Method::POST, &format!("/v1/jobs/{unknown}/cancel"))
        .send()
        .await;
    let (status, err) = status_and_json(r.unwrap()).await;
    assert_eq!((status, code(&err)), (404, "job_not_found"));
}

#[tokio::test]
async fn a_protected_tier_is_deleted_without_a_final_snapshot_only_when_forced() {
    let app = spawn_app().await;
    app.create("bigco", "enterprise").await;
    app.finish_provisioning("bigco").await;
    let r = app
        .request(Method::DELETE, "/v1/tenants/bigco?final_snapshot=false")
        .send()
        .await;
    let (status, err) = status_and_json(r.unwrap()).await;
    assert_eq!(
        (status, code(&err)),
        (409, "final_snapshot_required"),
        "{err}"
    );
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("force=true")
    );
    assert_eq!(app.count("jobs").await, 1, "nothing enqueued");
    let tenant = app.get("/v1/tenants/bigco").await.1;
    assert_eq!(tenant["status"], "ready", "nothing changed");

    let r = app
        .request(
            Method::DELETE,
            "/v1/tenants/bigco?final_snapshot=false&force=true",
        )
        .send()
        .await;
    let (status, body) = status_and_json(r.unwrap()).await;
    assert_eq!(status, 202, "{body}");
    // With its final snapshot, a protected tier needs no force.
    app.create("otherco", "enterprise").await;
    app.finish_provisioning("otherco").await;
    let r = app
        .request(Method::DELETE, "/v1/tenants/otherco")
        .send()
        .await;
    assert_eq!(status_and_json(r.unwrap()).await.0, 202);
}

#[tokio::test]
async fn an_engine_upgrade_is_asked_for_like_the_other_tenant_actions_and_bad_targets_change_nothing()
 {
    let app = spawn_app().await;
    let (status, body) = app.create("upgrade-one", "starter").await;
    assert_eq!(status, 202, "{body}");
    app.finish_provisioning("upgrade-one").await;
    sqlx::query("UPDATE tenants SET engine_version = '16.8' WHERE id = 'upgrade-one'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let app = &app;
    let post = |body: Value| async move {
        let r = app
            .request(Method::POST, "/v1/tenants/upgrade-one/upgrade")
            .json(&body)
            .send()
            .await
            .unwrap();
        status_and_json(r).await
    };
    // Refused, each with its code, and nothing enqueued.
    for (body, status, expected) in [
        (json!({ "target_version": "16" }), 422, "not_an_upgrade"),
        (json!({ "target_version": "15" }), 422, "not_an_upgrade"),
        (
            json!({ "target_version": "17.4" }),
            422,
            "invalid_target_version",
        ),
        (
            json!({ "target_version": "seventeen" }),
            422,
            "invalid_target_version",
        ),
        (
            json!({ "target_version": "17", "apply": "never" }),
            422,
            "invalid_body",
        ),
        (
            json!({ "target_version": "17", "extra": 1 }),
            422,
            "invalid_body",
        ),
        (json!({}), 422, "invalid_body"),
    ] {
        let (got, answer) = post(body.clone()).await;
        assert_eq!((got, code(&answer)), (status, expected), "{body}: {answer}");
    }
    assert_eq!(app.count("jobs").await, 1, "only the provisioning job");
    // Asked for: 202 with the job; the same again while it runs: 200 with the same job.
    let (status, first) =
        post(json!({ "target_version": "17", "apply": "maintenance_window" })).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["job"]["kind"], "engine_upgrade");
    assert_eq!(first["job"]["state"], "queued");
    assert_eq!(first["tenant"]["status"], "ready");
    let (status, again) = post(json!({ "target_version": "17" })).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["job"]["id"], first["job"]["id"]);
    // Another target while it runs: the tenant has a job in progress.
    let (status, other) = post(json!({ "target_version": "18" })).await;
    assert_eq!((status, code(&other)), (409, "job_in_progress"), "{other}");
    let args: Value = sqlx::query_scalar("SELECT args FROM jobs WHERE kind = 'engine_upgrade'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        args,
        json!({ "target_major": "17", "apply": "maintenance_window", "rollout": null })
    );
    // Recorded in the audit trail like every change.
    let audited: Vec<(i16, Option<String>)> = sqlx::query_as(
        "SELECT status, tenant_id FROM audit_events WHERE route = '/v1/tenants/{id}/upgrade' ORDER BY id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(audited.len(), 10, "{audited:?}");
    assert_eq!(audited[7], (202, Some("upgrade-one".to_string())));
    let r = app
        .request(Method::POST, "/v1/tenants/nobody-here/upgrade")
        .json(&json!({ "target_version": "17" }))
        .send()
        .await
        .unwrap();
    let (status, missing) = status_and_json(r).await;
    assert_eq!((status, code(&missing)), (404, "tenant_not_found"));
}
