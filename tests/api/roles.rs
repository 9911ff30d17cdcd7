//! Who may do what: every operation of the OpenAPI document called with a viewer's, an
//! operator's and an admin's token answers as the route table says (403 `forbidden` naming the
//! role needed, or not refused), and a refused call changes no row of the tenants, jobs and
//! rollouts; the document states each operation's role as the table does; and `serve` refuses
//! to start with a bad token configuration, naming the entry.

use crate::support;

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};
use support::app::{
    OPERATOR_TOKEN, TOKEN, TestApp, VIEWER_TOKEN, code, spawn_app, status_and_json,
};
use tenantd::config::Role;
use tokio::process::Command;

/// Every row of the tables a refused request must not touch.
async fn rows(app: &TestApp) -> String {
    let mut all = String::new();
    for (table, order) in [
        ("tenants", "id"),
        ("jobs", "id"),
        ("job_history", "id"),
        ("rollouts", "id"),
        ("rollout_tenants", "rollout_id, tenant_id"),
    ] {
        let text: Option<String> = sqlx::query_scalar(&format!(
            "SELECT json_agg(t ORDER BY {order})::text FROM {table} t"
        ))
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        all.push_str(&format!("{table}: {}\n", text.unwrap_or_default()));
    }
    all
}

/// What the operations act on: a tenant of its own per operation that changes one, a queued
/// job, a failed one, a running rollout.
struct Fixtures {
    queued_job: String,
    failed_job: String,
    rollout: String,
}

async fn create(app: &TestApp, id: &str) -> String {
    let (status, body) = app.create(id, "starter").await;
    assert_eq!(status, 202, "{body}");
    body["job"]["id"].as_str().unwrap().to_string()
}

async fn fixtures(app: &TestApp) -> Fixtures {
    for id in [
        "read-me",
        "delete-me",
        "force-me",
        "change-me",
        "suspend-me",
        "resume-me",
        "attach-me",
        "upgrade-me",
    ] {
        create(app, id).await;
        app.finish_provisioning(id).await;
    }
    sqlx::query("UPDATE tenants SET status = 'suspended' WHERE id = 'resume-me'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE tenants SET status = 'detached' WHERE id = 'attach-me'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let queued_job = create(app, "queued-one").await;
    let failed_job = create(app, "failed-one").await;
    sqlx::query(
        "UPDATE jobs SET state = 'failed', finished_at = now(), error = 'injected' WHERE id = $1::uuid",
    )
    .bind(&failed_job)
    .execute(&app.db.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE tenants SET status = 'failed', error = 'injected' WHERE id = 'failed-one'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let r = app
        .request(Method::POST, "/v1/rollouts")
        .json(&json!({ "tenants": ["read-me"] }))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(r).await;
    assert_eq!(status, 202, "{body}");
    Fixtures {
        queued_job,
        failed_job,
        rollout: body["id"].as_str().unwrap().to_string(),
    }
}

/// The path, query and body to call an operation with.
fn call_for(op_id: &str, path: &str, f: &Fixtures) -> (String, Option<Value>) {
    let tenant = match op_id {
        "delete_tenant" => "delete-me",
        "change_tenant" => "change-me",
        "suspend_tenant" => "suspend-me",
        "resume_tenant" => "resume-me",
        "attach_tenant" => "attach-me",
        "upgrade_tenant" => "upgrade-me",
        _ => "read-me",
    };
    let job = match op_id {
        "retry_job" => f.failed_job.as_str(),
        _ => f.queued_job.as_str(),
    };
    let id = if path.starts_with("/v1/tenants/") {
        tenant
    } else if path.starts_with("/v1/jobs/") {
        job
    } else {
        f.rollout.as_str()
    };
    let body = match op_id {
        "create_tenant" => Some(json!({ "id": "created-one", "tier": "starter" })),
        "change_tenant" => Some(json!({ "tier": "pro" })),
        "upgrade_tenant" => Some(json!({ "target_version": "17" })),
        "create_rollout" => Some(json!({ "tenants": ["read-me"] })),
        _ => None,
    };
    (path.replace("{id}", id), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_each_role_as_the_table_says_and_refusals_change_nothing() {
    let app = spawn_app().await;
    let f = fixtures(&app).await;
    let (_, doc) = app.get("/openapi.json").await;
    let table: BTreeMap<(String, String), tenantd::api::Route> = tenantd::api::routes()
        .into_iter()
        .map(|r| ((r.method.to_string(), r.path.to_string()), r))
        .collect();

    let tokens = [
        (Role::Viewer, VIEWER_TOKEN, "viewer"),
        (Role::Operator, OPERATOR_TOKEN, "operator"),
        (Role::Admin, TOKEN, "admin"),
    ];
    let mut calls = 0;
    let mut refused = 0;
    let mut operations = 0;
    // A rollout is paused, resumed and cancelled in that order, then another is created, so
    // that each of these changes something when allowed.
    let order = |op_id: &str| match op_id {
        "pause_rollout" => 1,
        "resume_rollout" => 2,
        "cancel_rollout" => 3,
        "create_rollout" => 4,
        _ => 0,
    };
    let mut ops: Vec<(String, String, Value)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .iter()
                .map(|(method, op)| (method.to_uppercase(), path.clone(), op.clone()))
        })
        .collect();
    ops.sort_by_key(|(_, path, op)| (order(op["operationId"].as_str().unwrap()), path.clone()));
    for (method, path, op) in &ops {
        {
            let method = method.clone();
            let path = path.clone();
            let route = &table[&(method.clone(), path.clone())];
            // The document states the table's role.
            let Some(role) = route.role else {
                assert!(op.get("x-tenantd-role").is_none(), "{method} {path}");
                continue;
            };
            operations += 1;
            assert_eq!(op["x-tenantd-role"], role.as_str(), "{method} {path}");
            assert_eq!(op["security"], json!([{ "bearer": [role.as_str()] }]));
            let description = op["description"].as_str().unwrap_or_default();
            assert!(
                description.starts_with(&format!("**Role: {role}")),
                "{method} {path}: {description}"
            );
            for status in ["401", "403", "429"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} {status}"
                );
            }
            let op_id = op["operationId"].as_str().unwrap();
            let (target, body) = call_for(op_id, &path, &f);
            // The plain request, and the ones only an admin may make.
            let mut queries = vec![None];
            if let Some(when) = route.admin_when {
                assert_eq!(op["x-tenantd-admin-when"], when.describe());
                queries.push(Some("final_snapshot=false&force=true"));
            }
            for query in queries {
                let needed = route.role_for(query).unwrap();
                let target = match (query, op_id) {
                    (Some(q), "delete_tenant") => format!("/v1/tenants/force-me?{q}"),
                    (Some(q), _) => format!("{target}?{q}"),
                    (None, _) => target.clone(),
                };
                let mut first_allowed = true;
                for (has, token, name) in tokens {
                    let before = rows(&app).await;
                    let mut request = app
                        .http
                        .request(
                            Method::from_bytes(method.as_bytes()).unwrap(),
                            format!("{}{target}", app.url),
                        )
                        .bearer_auth(token);
                    if let Some(b) = &body {
                        request = request.json(b);
                    }
                    let (status, answer) = status_and_json(request.send().await.unwrap()).await;
                    calls += 1;
                    if has.allows(needed) {
                        assert!(
                            status != 401 && status != 403,
                            "{name} was refused {method} {target}: {status} {answer}"
                        );
                        // The first role allowed really changes something: the refusals
                        // before it were refusals of a change.
                        if first_allowed && route.mutates() {
                            assert!(
                                (200..300).contains(&status),
                                "{name}: {method} {target}: {status} {answer}"
                            );
                        }
                        first_allowed = false;
                    } else {
                        refused += 1;
                        assert_eq!(
                            (status, code(&answer)),
                            (403, "forbidden"),
                            "{name}: {method} {target}: {answer}"
                        );
                        let message = answer["error"]["message"].as_str().unwrap();
                        assert!(
                            message.contains(&format!("needs the {needed} role")),
                            "{message}"
                        );
                        assert_eq!(
                            rows(&app).await,
                            before,
                            "{name}'s refused {method} {target} changed rows"
                        );
                    }
                }
            }
        }
    }
    // Every guarded operation of the table was called by every role.
    let guarded = table.values().filter(|r| r.role.is_some()).count();
    assert_eq!(operations, guarded);
    assert!(guarded >= 19, "{guarded}");
    assert_eq!(calls, (guarded + 1) * 3);
    // Viewers are refused every change and the audit trail; operators the forced delete and
    // the audit trail.
    let changes = table.values().filter(|r| r.mutates()).count();
    assert_eq!(refused, (changes + 2) + 2);
    let forbidden: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE status = 403 AND code = 'forbidden'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(forbidden, refused as i64, "every refusal is audited");
}

/// `tenantd serve` with `vars` and nothing else: its exit code and standard error.
async fn serve_with(vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .arg("serve")
        .env_clear()
        .env("TENANTD_DATABASE_URL", "postgres://nobody@127.0.0.1:9/none")
        .env("TENANTD_TENANT_DB_TLS", "disable")
        .envs(vars.iter().copied())
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn digest(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token))
}

#[tokio::test]
async fn serve_refuses_a_bad_token_configuration_naming_the_entry_and_never_the_token() {
    let dir = std::env::temp_dir().join(format!("tokens-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = digest("a-good-token-0123456789-abcdefghijkl");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "short",
            format!("[[tokens]]\nname = \"ok\"\nrole = \"viewer\"\nsha256 = \"{good}\"\n"),
            "TENANTD_API_TOKENS: token-2 (entry 2",
        ),
        (
            "digest",
            "[[tokens]]\nname = \"ci\"\nrole = \"admin\"\nsha256 = \"0123\"\n".to_string(),
            "TENANTD_TOKENS_FILE: entry 1 (\"ci\"): sha256 must be 64 hex characters",
        ),
        (
            "role",
            format!("[[tokens]]\nname = \"ci\"\nrole = \"root\"\nsha256 = \"{good}\"\n"),
            "TENANTD_TOKENS_FILE: entry 1 (\"ci\"): role \"root\"",
        ),
        (
            "duplicate",
            format!(
                "[[tokens]]\nname = \"ci\"\nrole = \"admin\"\nsha256 = \"{good}\"\n\
                 [[tokens]]\nname = \"ci\"\nrole = \"viewer\"\nsha256 = \"{}\"\n",
                digest("another-token-0123456789-abcdefghij")
            ),
            "TENANTD_TOKENS_FILE: the name \"ci\" is given twice",
        ),
    ];
    for (case, file, named) in cases {
        let path = dir.join(format!("{case}.toml"));
        std::fs::write(&path, file).unwrap();
        let short = "short-but-secret";
        let list = if case == "short" {
            format!("a-fine-legacy-token-0123456789-abcdef,{short}")
        } else {
            "a-fine-legacy-token-0123456789-abcdef".to_string()
        };
        let (code, err) = serve_with(&[
            ("TENANTD_TOKENS_FILE", path.to_str().unwrap()),
            ("TENANTD_API_TOKENS", &list),
        ])
        .await;
        assert_eq!(code, Some(2), "{case}: {err}");
        assert!(
            err.starts_with(&format!("tenantd: configuration error: {named}")),
            "{case}: {err}"
        );
        assert!(
            !err.contains(short) && !err.contains("a-fine-legacy"),
            "{case}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
