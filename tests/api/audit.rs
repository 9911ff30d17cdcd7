//! The audit trail through a real server over a real control PostgreSQL: the rows a scripted
//! sequence of API and console requests leaves, exactly and in order; that the table refuses
//! changes by hand; `GET /v1/audit` with its filters and pages, and `tenantd audit`; retention;
//! and failed authentications limited per address, logged with the address and the name tried
//! (never the secret), and recorded without flooding the table.

use crate::csrf_of;
use crate::support;

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use support::app::{
    OPERATOR_TOKEN, SECOND_TOKEN, TOKEN, TestApp, VIEWER_TOKEN, code, spawn_app, status_and_json,
};
use tenantd::maintenance::{AuditPruner, lead_once};
use uuid::Uuid;

/// One audit row, as the test compares it.
#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
struct Row {
    token_name: Option<String>,
    role: Option<String>,
    channel: String,
    method: String,
    route: String,
    tenant_id: Option<String>,
    job_id: Option<Uuid>,
    status: i16,
    code: Option<String>,
}

async fn audit_rows(app: &TestApp) -> Vec<Row> {
    sqlx::query_as(
        "SELECT token_name, role, channel, method, route, tenant_id, job_id, status, code
         FROM audit_events ORDER BY id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

/// A row as expected: who (token, role, channel), the request (method, route), what about
/// (tenant, job), how it ended (status, code).
fn row(
    who: (&str, &str, &str),
    request: (&str, &str),
    about: (Option<&str>, Option<Uuid>),
    outcome: (i16, Option<&str>),
) -> Row {
    Row {
        token_name: Some(who.0.into()),
        role: Some(who.1.into()),
        channel: who.2.into(),
        method: request.0.into(),
        route: request.1.into(),
        tenant_id: about.0.map(str::to_string),
        job_id: about.1,
        status: outcome.0,
        code: outcome.1.map(str::to_string),
    }
}

/// Sends a request with `token`; returns status, body and the request id answered.
async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, String) {
    let mut r = app
        .http
        .request(method, format!("{}{path}", app.url))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let response = r.send().await.unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let (status, body) = status_and_json(response).await;
    (status, body, id)
}

/// Ends the tenant's active job as its workflow would, leaving the tenant as `sql` says.
async fn finish(app: &TestApp, tenant: &str, sql: &str) {
    sqlx::query(
        "UPDATE jobs SET state = 'succeeded', finished_at = now(), step = 'done'
         WHERE tenant_id = $1 AND state IN ('queued', 'running', 'waiting')",
    )
    .bind(tenant)
    .execute(&app.db.pool)
    .await
    .unwrap();
    sqlx::query(sql)
        .bind(tenant)
        .execute(&app.db.pool)
        .await
        .unwrap();
}

fn job_of(body: &Value) -> Uuid {
    body["job"]["id"].as_str().unwrap().parse().unwrap()
}

/// A console session of `token`: its cookie.
async fn console_session(app: &TestApp, token: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{}/ui/login", app.url))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_sequence_leaves_exactly_its_rows_in_order_and_they_cannot_be_changed() {
    let app = spawn_app().await;
    let t = "seq-tenant";
    let mut ids = Vec::new();
    let (status, created, id) = call(
        &app,
        OPERATOR_TOKEN,
        Method::POST,
        "/v1/tenants",
        Some(json!({ "id": t, "tier": "starter" })),
    )
    .await;
    assert_eq!(status, 202, "{created}");
    ids.push(id);
    app.finish_provisioning(t).await;
    let path = format!("/v1/tenants/{t}");
    let (status, changed, id) = call(
        &app,
        OPERATOR_TOKEN,
        Method::PATCH,
        &path,
        Some(json!({ "tier": "pro" })),
    )
    .await;
    assert_eq!(status, 202, "{changed}");
    ids.push(id);
    finish(
        &app,
        t,
        "UPDATE tenants SET tier = pending_tier, pending_tier = NULL WHERE id = $1",
    )
    .await;
    let (status, suspended, id) = call(
        &app,
        OPERATOR_TOKEN,
        Method::POST,
        &format!("{path}/suspend"),
        None,
    )
    .await;
    assert_eq!(status, 202, "{suspended}");
    ids.push(id);
    finish(
        &app,
        t,
        "UPDATE tenants SET status = 'suspended' WHERE id = $1",
    )
    .await;
    let (status, resumed, id) = call(
        &app,
        OPERATOR_TOKEN,
        Method::POST,
        &format!("{path}/resume"),
        None,
    )
    .await;
    assert_eq!(status, 202, "{resumed}");
    ids.push(id);
    finish(&app, t, "UPDATE tenants SET status = 'ready' WHERE id = $1").await;
    let forced = format!("{path}?final_snapshot=false&force=true");
    let (status, refused, id) = call(&app, OPERATOR_TOKEN, Method::DELETE, &forced, None).await;
    assert_eq!((status, code(&refused)), (403, "forbidden"));
    ids.push(id);
    let (status, deleted, id) = call(&app, TOKEN, Method::DELETE, &forced, None).await;
    assert_eq!(status, 202, "{deleted}");
    ids.push(id);
    let deprovision = job_of(&deleted);

    // A console action: an admin signs in and cancels the deprovisioning.
    let cookie = console_session(&app, SECOND_TOKEN).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(format!("{}/ui/tenants/{t}", app.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = http
        .post(format!("{}/ui/jobs/{deprovision}/cancel", app.url))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf_of(&page).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    let operator = ("operator", "operator", "api");
    let console = ("second", "admin", "console");
    let ok = (202, None);
    assert_eq!(
        audit_rows(&app).await,
        vec![
            row(
                operator,
                ("POST", "/v1/tenants"),
                (Some(t), Some(job_of(&created))),
                ok
            ),
            row(
                operator,
                ("PATCH", "/v1/tenants/{id}"),
                (Some(t), Some(job_of(&changed))),
                ok
            ),
            row(
                operator,
                ("POST", "/v1/tenants/{id}/suspend"),
                (Some(t), Some(job_of(&suspended))),
                ok
            ),
            row(
                operator,
                ("POST", "/v1/tenants/{id}/resume"),
                (Some(t), Some(job_of(&resumed))),
                ok
            ),
            row(
                operator,
                ("DELETE", "/v1/tenants/{id}"),
                (Some(t), None),
                (403, Some("forbidden"))
            ),
            row(
                ("admin", "admin", "api"),
                ("DELETE", "/v1/tenants/{id}"),
                (Some(t), Some(deprovision)),
                ok
            ),
            row(console, ("POST", "/ui/login"), (None, None), (303, None)),
            row(
                console,
                ("POST", "/ui/jobs/{id}/cancel"),
                (Some(t), Some(deprovision)),
                ok
            ),
        ]
    );
    // Each API row names the request id its answer carried, from the caller's address.
    let recorded: Vec<(String, String)> = sqlx::query_as(
        "SELECT request_id::text, source FROM audit_events WHERE channel = 'api' ORDER BY id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        recorded,
        ids.iter()
            .map(|id| (id.clone(), "127.0.0.1".to_string()))
            .collect::<Vec<_>>()
    );
    // The forced deprovisioning says in its history that it went without a snapshot, and who
    // asked.
    let (_, job, _) = call(
        &app,
        VIEWER_TOKEN,
        Method::GET,
        &format!("/v1/jobs/{deprovision}"),
        None,
    )
    .await;
    let note = job["history"][0]["note"].as_str().unwrap_or_default();
    assert!(
        note.starts_with("no final snapshot") && note.contains("by admin (admin) through the API"),
        "{job}"
    );
    // The tenant's page says who asked for each job, and who asked to cancel.
    let page = http
        .get(format!("{}/ui/tenants/{t}", app.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("asked by operator (operator) through the API"),
        "{page}"
    );
    assert!(page.contains("asked by admin (admin) through the API"));
    assert!(page.contains("cancel asked by second (admin) through the console"));

    // Nothing changes a row by hand, nor empties the table.
    for statement in [
        "UPDATE audit_events SET status = 200",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "SELECT prune_audit_events(interval '1 second', 100)",
    ] {
        let result = sqlx::query(statement).execute(&app.db.pool).await;
        match statement {
            s if s.starts_with("SELECT") => assert!(result.is_ok()),
            _ => {
                let e = result.expect_err(statement).to_string();
                assert!(e.contains("append-only"), "{statement}: {e}");
            }
        }
    }
    assert_eq!(
        app.count("audit_events").await,
        8,
        "nothing younger than a day goes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_page_through_the_trail_by_tenant_token_and_time_and_the_cli_prints_it() {
    let app = spawn_app().await;
    for id in ["alpha-one", "beta-two"] {
        let (status, _, _) = call(
            &app,
            OPERATOR_TOKEN,
            Method::POST,
            "/v1/tenants",
            Some(json!({ "id": id, "tier": "starter" })),
        )
        .await;
        assert_eq!(status, 202);
    }
    for _ in 0..3 {
        call(
            &app,
            OPERATOR_TOKEN,
            Method::POST,
            "/v1/tenants/alpha-one/suspend",
            None,
        )
        .await;
    }
    let (status, _, _) = call(
        &app,
        TOKEN,
        Method::POST,
        "/v1/tenants",
        Some(json!({ "id": "alpha-one", "tier": "pro" })),
    )
    .await;
    assert_eq!(status, 409);
    let all: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, at::text FROM audit_events ORDER BY id DESC")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(all.len(), 6);

    // Pages of two, newest first, follow each other to the end.
    let mut seen = Vec::new();
    let mut cursor = None::<i64>;
    loop {
        let path = match cursor {
            Some(c) => format!("/v1/audit?tenant=alpha-one&limit=2&cursor={c}"),
            None => "/v1/audit?tenant=alpha-one&limit=2".to_string(),
        };
        let (status, page, _) = call(&app, TOKEN, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        for e in page["events"].as_array().unwrap() {
            assert_eq!(e["tenant"], "alpha-one");
            seen.push(e["id"].as_i64().unwrap());
        }
        match page["next_cursor"].as_i64() {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let alpha: Vec<i64> = all
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| *id != all[4].0)
        .collect();
    assert_eq!(seen, alpha, "every event about alpha-one, newest first");
    let (_, page, _) = call(&app, TOKEN, Method::GET, "/v1/audit?token=admin", None).await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0]["status"].as_i64(), events[0]["code"].as_str()),
        (Some(409), Some("tier_conflict"))
    );
    // Since and until: the three suspends were refused (409: the provisioning runs), between
    // the creates and the admin's create.
    let since = urlencode(&all[3].1);
    let until = urlencode(&all[0].1);
    let (_, page, _) = call(
        &app,
        TOKEN,
        Method::GET,
        &format!("/v1/audit?since={since}&until={until}"),
        None,
    )
    .await;
    let codes: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(codes, ["job_in_progress"; 3]);
    for (token, query) in [
        (OPERATOR_TOKEN, ""),
        (VIEWER_TOKEN, ""),
        (TOKEN, "?limit=0"),
        (TOKEN, "?token=A%20B"),
        (TOKEN, "?since=yesterday"),
        (TOKEN, "?cursor=0"),
        (TOKEN, "?cursor=9007199254740992"),
    ] {
        let (status, body, _) =
            call(&app, token, Method::GET, &format!("/v1/audit{query}"), None).await;
        let want = if query.is_empty() {
            (403, "forbidden")
        } else {
            (400, "invalid_query")
        };
        assert_eq!((status, code(&body)), want, "{query}: {body}");
    }

    // The CLI: JSON lines, one event a line, newest first; a table for people.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .args([
            "audit",
            "--tenant",
            "alpha-one",
            "--output",
            "json",
            "--url",
            &app.url,
        ])
        .env("TENANTD_TOKEN", TOKEN)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON event"))
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        alpha
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .args(["audit", "--limit", "2", "--since", "1h", "--url", &app.url])
        .env("TENANTD_TOKEN", TOKEN)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("AT "), "{text}");
    // The newest two: the operator's and the viewer's refused reads of the trail.
    assert!(
        text.contains("GET /v1/audit") && text.contains("403 forbidden"),
        "{text}"
    );
    assert!(text.contains("more: --cursor"), "{text}");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .args(["audit", "--url", &app.url])
        .env("TENANTD_TOKEN", OPERATOR_TOKEN)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("tenantd: forbidden: this request needs the admin role")
    );
}

fn urlencode(s: &str) -> String {
    // PostgreSQL's text form of a timestamptz is "2026-12-08 10:00:00.123+00": RFC 3339 with a
    // T and a zone of minutes.
    let rfc = s.replacen(' ', "T", 1) + ":00";
    serde_urlencoded::to_string([("x", rfc)]).unwrap()[2..].to_string()
}

#[tokio::test]
async fn the_maintenance_leader_prunes_events_past_the_retention_and_never_younger_than_a_day() {
    let db = support::fresh_db().await;
    for age in ["500 days", "401 days", "30 days", "2 days", "0 days"] {
        sqlx::query(&format!(
            "INSERT INTO audit_events (at, source, channel, request_id, method, route, status)
             VALUES (now() - interval '{age}', '127.0.0.1', 'api', gen_random_uuid(), 'POST',
                     '/v1/tenants', 202)"
        ))
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_events")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };
    lead_once(
        &db.pool,
        "audit-test",
        &AuditPruner::new(db.pool.clone(), Some(Duration::from_secs(400 * 86400))),
    )
    .await
    .unwrap();
    assert_eq!(count().await, 3, "the two older than 400 days are gone");
    lead_once(
        &db.pool,
        "audit-test",
        &AuditPruner::new(db.pool.clone(), Some(Duration::from_secs(86400))),
    )
    .await
    .unwrap();
    assert_eq!(count().await, 1, "only the one younger than a day stays");
    lead_once(
        &db.pool,
        "audit-test",
        &AuditPruner::new(db.pool.clone(), None),
    )
    .await
    .unwrap();
    assert_eq!(count().await, 1);
}

/// `tenantd serve` on the local stack with JSON logs into `log`; returns once it is ready.
async fn serve_logged(
    env: &std::collections::HashMap<String, String>,
    log: &std::path::Path,
) -> (tokio::process::Child, String) {
    let port = support::fleet::free_port();
    let file = std::fs::File::create(log).unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenantd"))
        .arg("serve")
        .envs(env)
        .env("TENANTD_LISTEN", format!("127.0.0.1:{port}"))
        .env("TENANTD_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    support::wait_for("the daemon to answer", Duration::from_secs(60), || async {
        let r = reqwest::get(format!("{url}/healthz")).await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_are_limited_per_address_logged_by_name_and_recorded_sparingly() {
    let stack = support::stack::Stack::new().await;
    let secret = "ci-token-0123456789-abcdefghijklmnop";
    let wrong = "wrong-secret-XYZ123";
    let dir = std::env::temp_dir().join(format!("audit-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let tokens = dir.join("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[tokens]]\nname = \"ci\"\nrole = \"operator\"\nsha256 = \"{}\"\n",
            {
                use sha2::Digest;
                hex::encode(sha2::Sha256::digest(secret))
            }
        ),
    )
    .unwrap();
    let env = support::stack::test_env(
        &stack.db,
        &[
            ("TENANTD_TOKENS_FILE", tokens.to_str().unwrap()),
            ("TENANTD_API_TOKENS", TOKEN),
            ("TENANTD_AUTH_FAILURES_PER_MINUTE", "3"),
            ("TENANTD_UI_SECURE_COOKIE", "off"),
        ],
    );
    let log = dir.join("tenantd.log");
    let (mut daemon, url) = serve_logged(&env, &log).await;
    let http = reqwest::Client::new();
    let get = |auth: Option<String>| {
        let mut r = http.get(format!("{url}/v1/tenants"));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    for _ in 0..3 {
        let r = get(Some(format!("Bearer ci:{wrong}"))).await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = get(Some(format!("Bearer ci:{wrong}"))).await.unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=21).contains(&wait), "{wait}");
    let (_, body) = status_and_json(r).await;
    assert_eq!(code(&body), "too_many_failures");
    // A valid token from the same address is not refused, in either form.
    for auth in [format!("Bearer {secret}"), format!("Bearer ci:{secret}")] {
        assert_eq!(get(Some(auth)).await.unwrap().status(), 200);
    }
    // Everything else from the address waits, the console's sign-in included.
    for auth in [None, Some("Bearer nobody-knows-this".to_string())]
        .into_iter()
        .cycle()
        .take(10)
    {
        assert_eq!(get(auth).await.unwrap().status(), 429);
    }
    let r = http
        .post(format!("{url}/ui/login"))
        .form(&[("token", wrong)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));

    // Recorded: the three refusals, then the first 429 only.
    let rows: Vec<(Option<String>, String, i16, String)> =
        sqlx::query_as("SELECT token_name, source, status, code FROM audit_events ORDER BY id")
            .fetch_all(stack.pool())
            .await
            .unwrap();
    let ci = Some("ci".to_string());
    let local = "127.0.0.1".to_string();
    assert_eq!(
        rows,
        vec![
            (ci.clone(), local.clone(), 401, "unauthorized".into()),
            (ci.clone(), local.clone(), 401, "unauthorized".into()),
            (ci.clone(), local.clone(), 401, "unauthorized".into()),
            (ci.clone(), local.clone(), 429, "too_many_failures".into()),
        ]
    );
    daemon.start_kill().ok();
    daemon.wait().await.ok();

    // Logged as recorded: with the address and the name tried, never a secret.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(wrong) && !text.contains(secret) && !text.contains(TOKEN));
    let refusals: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("request refused: no valid bearer token"))
        })
        .collect();
    assert_eq!(refusals.len(), 4, "{text}");
    for r in &refusals {
        assert_eq!(r["address"], "127.0.0.1", "{r}");
        assert_eq!(r["token.name"], "ci", "{r}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
