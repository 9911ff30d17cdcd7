//! The operator's console in a real browser (headless Chromium through its WebDriver) against
//! a real `tenantd serve` on the local stack: signing in, a tenant reaching ready on its page
//! without a reload, a failed tenant retried from the console, deprovisioning behind a
//! confirmation, CSRF refusals, and no secret in any page. Screenshots go to
//! `target/tmp/console-screenshots/`. Run through `localstack/test`.

use crate::csrf_of;
use crate::support;

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::json;
use support::app::TOKEN;
use support::browser::{Browser, Daemon, serve};
use support::iam::secret_name;
use support::proxy::FaultProxy;
use support::stack::{Stack, stack_endpoint, tenant_id, test_env};
use support::wait_for;
use tenantd::tenants::TenantStatus;

const TIMEOUT: Duration = Duration::from_secs(180);

/// Asks the API (not the console) for a tenant.
async fn request_tenant(daemon: &Daemon, id: &str) {
    let r = reqwest::Client::new()
        .post(format!("{}/v1/tenants", daemon.url))
        .bearer_auth(TOKEN)
        .json(&json!({ "id": id, "tier": "starter" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

async fn wait_status(stack: &Stack, id: &str, want: TenantStatus) {
    wait_for(&format!("{id} to be {want:?}"), TIMEOUT, || async {
        (stack.tenant(id).await.status == want).then_some(())
    })
    .await;
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the control database keeps of a session id.
fn sha256_session(id: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(format!("tenantd-session:{id}")).to_vec()
}

/// The browser's session cookie, to replay it outside the browser.
async fn session_cookie(browser: &Browser) -> String {
    let c = browser
        .client
        .get_named_cookie(tenantd::ui::COOKIE_NAME)
        .await
        .expect("a session cookie");
    format!("{}={}", c.name(), c.value())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_takes_only_an_accepted_token_into_a_strict_http_only_session() {
    let stack = Stack::new().await;
    let daemon = serve(&test_env(&stack.db, &[])).await;
    let id = tenant_id("signin");
    request_tenant(&daemon, &id).await;
    let browser = Browser::start().await;

    // Without a session every page leads to the sign-in page.
    browser.goto(&format!("{}/ui/tenants", daemon.url)).await;
    assert_eq!(browser.path().await, "/ui/login?next=/ui/tenants");

    browser.type_into("#token", "not-the-token").await;
    browser.follow("#sign-in").await;
    assert!(browser.text("#login-error").await.contains("not accepted"));
    assert!(
        browser
            .client
            .get_named_cookie("tenantd_session")
            .await
            .is_err()
    );

    browser.type_into("#token", TOKEN).await;
    browser.follow("#sign-in").await;
    assert_eq!(browser.path().await, "/ui/tenants");
    assert!(browser.text("#tenants").await.contains(&id));
    let cookie = browser
        .client
        .get_named_cookie("tenantd_session")
        .await
        .unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(cookie::SameSite::Strict));
    // Plain HTTP here: not Secure (a browser would drop it on a plain connection otherwise).
    assert_ne!(cookie.secure(), Some(true));
    // Scripts cannot read it, and the token is in no storage and no page.
    let storage = browser
        .run("return [document.cookie, JSON.stringify(localStorage), JSON.stringify(sessionStorage)]")
        .await;
    assert_eq!(storage, json!(["", "{}", "{}"]));
    for page in [
        "/ui/",
        "/ui/tenants",
        &format!("/ui/tenants/{id}"),
        "/ui/jobs",
    ] {
        browser.goto(&format!("{}{page}", daemon.url)).await;
        assert!(
            !browser.source().await.contains(TOKEN),
            "{page} shows the token"
        );
    }

    // Behind a TLS-terminating proxy the cookie is Secure too.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{}/ui/login", daemon.url))
        .header("x-forwarded-proto", "https")
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Path=/ui",
        "Max-Age=",
    ] {
        assert!(set.contains(flag), "{set}");
    }

    // The control database keeps only a hash of the session id, and an expired session opens
    // nothing.
    let proxied = set.split(';').next().unwrap().to_string();
    let (_, id_value) = proxied.split_once('=').unwrap();
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT id_hash FROM ui_sessions")
        .fetch_all(stack.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert!(
        stored
            .iter()
            .all(|h| h.len() == 32 && hex_of(h) != id_value)
    );
    let open = |cookie: String| {
        let http = http.clone();
        let url = format!("{}/ui/", daemon.url);
        async move {
            http.get(url)
                .header(COOKIE, cookie)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(open(proxied.clone()).await, StatusCode::OK);
    sqlx::query(
        "UPDATE ui_sessions SET expires_at = now() - interval '1 second' WHERE id_hash = $1",
    )
    .bind(
        stored
            .iter()
            .find(|h| *h == &sha256_session(id_value))
            .expect("the proxied session's hash"),
    )
    .execute(stack.pool())
    .await
    .unwrap();
    assert_eq!(open(proxied).await, StatusCode::SEE_OTHER);

    // A state-changing POST without the session's CSRF token is refused, and changes nothing.
    let session = session_cookie(&browser).await;
    let before = stack.tenant(&id).await;
    for body in [vec![], vec![("csrf", "0".repeat(64))]] {
        let r = http
            .post(format!("{}/ui/tenants/{id}/deprovision", daemon.url))
            .header(COOKIE, &session)
            .form(
                &body
                    .iter()
                    .chain([&("confirm", id.clone())])
                    .collect::<Vec<_>>(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    let r = http
        .post(format!("{}/ui/logout", daemon.url))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let after = stack.tenant(&id).await;
    assert_eq!(after.status, before.status);
    assert_ne!(after.status, TenantStatus::Deprovisioning);

    // Signing out ends the session: the same cookie no longer opens a page.
    browser.goto(&format!("{}/ui/", daemon.url)).await;
    browser.follow(".signout button").await;
    assert_eq!(browser.path().await, "/ui/login");
    let r = http
        .get(format!("{}/ui/", daemon.url))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_asked_for_through_the_api_reaches_ready_on_its_page_without_a_reload() {
    let stack = Stack::new().await;
    let daemon = serve(&test_env(&stack.db, &[])).await;
    let browser = Browser::start().await;
    browser.sign_in(&daemon.url, TOKEN).await;
    let id = tenant_id("live");
    request_tenant(&daemon, &id).await;

    browser.goto(&format!("{}/ui/tenants", daemon.url)).await;
    browser.follow(&format!("a[href='/ui/tenants/{id}']")).await;
    assert_eq!(browser.path().await, format!("/ui/tenants/{id}"));
    // A mark on this very page: a reload would lose it.
    browser.run("window.sameDocument = true").await;
    let seen = browser.wait_text("#tenant-status", "ready", TIMEOUT).await;
    assert!(
        seen.iter().any(|s| s.contains("provisioning")),
        "the page never showed provisioning: {seen:?}"
    );
    assert_eq!(
        browser.run("return window.sameDocument === true").await,
        json!(true)
    );
    // The timeline drew the steps, each succeeded one marked.
    assert!(browser.has(".timeline .seg.ok").await);
    let source = browser.source().await;
    assert!(
        source.contains("saas/tenant") || source.contains(":secret:"),
        "secret ARN shown"
    );

    // No page shows the tenant's password (or the API token).
    let tenant = stack.tenant(&id).await;
    let secret = stack
        .secret_json(&secret_name(tenant.secret_arn.as_deref().unwrap()))
        .await;
    let password = secret["password"]
        .as_str()
        .expect("a password in the secret");
    assert!(password.len() >= 16);
    browser.screenshot("tenant").await;
    for (page, shot) in [
        ("/ui/", "overview"),
        ("/ui/tenants", "tenants"),
        ("/ui/jobs", "jobs"),
    ] {
        browser.goto(&format!("{}{page}", daemon.url)).await;
        browser.screenshot(shot).await;
        let source = browser.source().await;
        assert!(!source.contains(password), "{page} shows the password");
        assert!(!source.contains(TOKEN), "{page} shows the token");
        assert!(
            browser.fits_width().await,
            "{page} scrolls sideways at 1280px"
        );
    }
    browser
        .goto(&format!("{}/ui/tenants/{id}", daemon.url))
        .await;
    assert!(!browser.source().await.contains(password));

    // The list's filters: by status, tier and id prefix.
    for (query, listed) in [
        ("status=ready&tier=starter&q=live-", true),
        ("status=failed", false),
        ("tier=pro", false),
        ("q=zzz", false),
    ] {
        browser
            .goto(&format!("{}/ui/tenants?{query}", daemon.url))
            .await;
        assert_eq!(
            browser.text("#tenants").await.contains(&id),
            listed,
            "{query}"
        );
    }

    // At phone width every page still fits.
    browser.client.set_window_size(390, 844).await.unwrap();
    for page in [
        "/ui/",
        "/ui/tenants",
        &format!("/ui/tenants/{id}"),
        "/ui/jobs",
    ] {
        browser.goto(&format!("{}{page}", daemon.url)).await;
        assert!(
            browser.fits_width().await,
            "{page} scrolls sideways at phone width"
        );
    }
    browser.screenshot("tenant-phone").await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_tenant_shows_its_error_and_a_retry_from_the_console_brings_it_to_ready() {
    let stack = Stack::new().await;
    let proxy = FaultProxy::start(&stack_endpoint()).await;
    // The first alarm is refused (access denied: fatal), so the provisioning rolls back.
    proxy.fail("PutMetricAlarm", 1);
    let env = test_env(&stack.db, &[("AWS_ENDPOINT_URL", proxy.url.as_str())]);
    let daemon = serve(&env).await;
    let id = tenant_id("retry");
    request_tenant(&daemon, &id).await;
    wait_status(&stack, &id, TenantStatus::Failed).await;

    let browser = Browser::start().await;
    browser.sign_in(&daemon.url, TOKEN).await;
    browser
        .goto(&format!("{}/ui/tenants/{id}", daemon.url))
        .await;
    assert!(browser.text("#tenant-status").await.contains("failed"));
    let error = browser.text("#tenant-error").await;
    assert!(error.contains("alarm"), "{error}");
    // The failed step's error is in its job's step table.
    assert!(browser.has(".job .err").await);

    browser.follow("#retry").await;
    assert_eq!(browser.path().await, format!("/ui/tenants/{id}"));
    browser.wait_text("#tenant-status", "ready", TIMEOUT).await;
    assert!(!browser.has("#tenant-error").await);
    assert_eq!(stack.tenant(&id).await.status, TenantStatus::Ready);
    assert!(proxy.seen("PutMetricAlarm") >= 2);
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprovisioning_from_the_console_asks_for_the_tenant_id_then_the_tenant_is_deleted() {
    let stack = Stack::new().await;
    let daemon = serve(&test_env(&stack.db, &[])).await;
    let id = tenant_id("gone");
    request_tenant(&daemon, &id).await;
    wait_status(&stack, &id, TenantStatus::Ready).await;

    let browser = Browser::start().await;
    browser.sign_in(&daemon.url, TOKEN).await;
    browser
        .goto(&format!("{}/ui/tenants/{id}", daemon.url))
        .await;
    browser.follow("#deprovision").await;
    assert_eq!(
        browser.path().await,
        format!("/ui/tenants/{id}/deprovision")
    );
    assert!(browser.text("h1").await.contains(&id));

    // A wrong id deletes nothing.
    browser.type_into("#confirm", "some-other-tenant").await;
    browser.follow("#confirm-deprovision").await;
    assert!(browser.text("#confirm-error").await.contains(&id));
    assert_eq!(stack.tenant(&id).await.status, TenantStatus::Ready);

    browser.type_into("#confirm", &id).await;
    browser.follow("#confirm-deprovision").await;
    assert_eq!(browser.path().await, format!("/ui/tenants/{id}"));
    browser
        .wait_text("#tenant-status", "deleted", TIMEOUT)
        .await;
    assert_eq!(stack.tenant(&id).await.status, TenantStatus::Deleted);
    assert!(stack.instance(&format!("saas-{id}")).await.is_none());
    browser.quit().await;
}

/// A tokens file naming `entries` (name, role, token).
fn tokens_file(path: &std::path::Path, entries: &[(&str, &str, &str)]) {
    use sha2::Digest;
    let text: String = entries
        .iter()
        .map(|(name, role, token)| {
            format!(
                "[[tokens]]\nname = {name:?}\nrole = {role:?}\nsha256 = \"{}\"\n",
                hex_of(&sha2::Sha256::digest(token))
            )
        })
        .collect();
    std::fs::write(path, text).unwrap();
}

const VIEWER: &str = "console-viewer-token-0123456789-abcd";
const OPERATOR: &str = "console-operator-token-0123456789-ab";

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_actions_its_crafted_posts_are_refused_and_removing_its_token_ends_it() {
    let stack = Stack::new().await;
    let dir = std::env::temp_dir().join(format!("console-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tokens.toml");
    tokens_file(&file, &[("watcher", "viewer", VIEWER)]);
    let env = test_env(
        &stack.db,
        &[("TENANTD_TOKENS_FILE", file.to_str().unwrap())],
    );
    let daemon = serve(&env).await;
    let id = tenant_id("viewed");
    request_tenant(&daemon, &id).await;
    wait_status(&stack, &id, TenantStatus::Ready).await;
    let job = stack
        .job(
            sqlx::query_scalar("SELECT id FROM jobs WHERE tenant_id = $1")
                .bind(&id)
                .fetch_one(stack.pool())
                .await
                .unwrap(),
        )
        .await;

    let browser = Browser::start().await;
    browser.sign_in(&daemon.url, VIEWER).await;
    for page in [
        "/ui/".to_string(),
        format!("/ui/tenants/{id}"),
        "/ui/jobs".to_string(),
        "/ui/jobs?state=succeeded".to_string(),
    ] {
        browser.goto(&format!("{}{page}", daemon.url)).await;
        let forms = browser
            .run("return document.querySelectorAll('form[method=post]:not(.signout)').length")
            .await;
        assert_eq!(forms, json!(0), "{page} offers a viewer an action");
        assert!(!browser.has("#deprovision").await, "{page}");
    }
    // Its own tenant page says who asked for the provisioning.
    browser
        .goto(&format!("{}/ui/tenants/{id}", daemon.url))
        .await;
    assert!(
        browser
            .text(".job .asked")
            .await
            .contains("asked by token-1 (admin) through the API")
    );
    browser
        .goto(&format!("{}/ui/tenants/{id}/deprovision", daemon.url))
        .await;
    assert!(browser.text("h1").await.contains("403"));

    // Crafted requests with the session's own CSRF token: refused, nothing changes.
    let session = session_cookie(&browser).await;
    let http = no_redirects();
    let page = http
        .get(format!("{}/ui/tenants/{id}", daemon.url))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&page);
    let before = stack.tenant(&id).await;
    let jobs_before: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(stack.pool())
        .await
        .unwrap();
    for (path, form) in [
        (format!("/ui/tenants/{id}/suspend"), vec![]),
        (format!("/ui/tenants/{id}/tier"), vec![("tier", "pro")]),
        (
            format!("/ui/tenants/{id}/deprovision"),
            vec![("confirm", id.as_str())],
        ),
        (format!("/ui/jobs/{}/retry", job.id), vec![]),
        (format!("/ui/jobs/{}/cancel", job.id), vec![]),
    ] {
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend(form);
        let r = http
            .post(format!("{}{path}", daemon.url))
            .header(COOKIE, &session)
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(r.text().await.unwrap().contains("needs the operator role"));
    }
    let after = stack.tenant(&id).await;
    assert_eq!(
        (after.status, after.tier, after.updated_at),
        (before.status, before.tier, before.updated_at)
    );
    let jobs_after: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(stack.pool())
        .await
        .unwrap();
    assert_eq!(jobs_after, jobs_before);
    let refused: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events
         WHERE token_name = 'watcher' AND channel = 'console' AND status = 403",
    )
    .fetch_one(stack.pool())
    .await
    .unwrap();
    assert_eq!(refused, 5, "every refused console action is audited");

    // The token leaves the configuration; the daemon is restarted: the session ends at its
    // next request, and the row is gone.
    drop(daemon);
    tokens_file(&file, &[("someone-else", "viewer", OPERATOR)]);
    let daemon = serve(&env).await;
    browser.goto(&format!("{}/ui/tenants", daemon.url)).await;
    assert_eq!(browser.path().await, "/ui/login?next=/ui/tenants&ended=1");
    assert!(browser.text("#session-ended").await.contains("ended"));
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM ui_sessions")
        .fetch_one(stack.pool())
        .await
        .unwrap();
    assert_eq!(sessions, 0);

    // A session that sat idle longer than TENANTD_UI_IDLE_TIMEOUT ends too.
    browser.sign_in(&daemon.url, TOKEN).await;
    assert_eq!(browser.path().await, "/ui/");
    sqlx::query("UPDATE ui_sessions SET last_seen_at = now() - interval '31 minutes'")
        .execute(stack.pool())
        .await
        .unwrap();
    browser.goto(&format!("{}/ui/jobs", daemon.url)).await;
    assert_eq!(browser.path().await, "/ui/login?next=/ui/jobs");
    browser.quit().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_tier_goes_without_a_snapshot_only_after_a_second_confirmation_by_an_admin() {
    let stack = Stack::new().await;
    let dir = std::env::temp_dir().join(format!("console-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tokens.toml");
    tokens_file(&file, &[("deployer", "operator", OPERATOR)]);
    let env = test_env(
        &stack.db,
        &[("TENANTD_TOKENS_FILE", file.to_str().unwrap())],
    );
    let daemon = serve(&env).await;
    let id = tenant_id("guarded");
    let r = reqwest::Client::new()
        .post(format!("{}/v1/tenants", daemon.url))
        .bearer_auth(TOKEN)
        .json(&json!({ "id": id, "tier": "enterprise" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    wait_status(&stack, &id, TenantStatus::Ready).await;

    // An operator is offered only the deprovisioning with a snapshot, and refused the other.
    let http = no_redirects();
    let login = http
        .post(format!("{}/ui/login", daemon.url))
        .form(&[("token", OPERATOR)])
        .send()
        .await
        .unwrap();
    let operator = login.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let confirm = http
        .get(format!("{}/ui/tenants/{id}/deprovision", daemon.url))
        .header(COOKIE, &operator)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!confirm.contains("skip_snapshot"));
    let r = http
        .post(format!("{}/ui/tenants/{id}/deprovision", daemon.url))
        .header(COOKIE, &operator)
        .form(&[
            ("csrf", csrf_of(&confirm).as_str()),
            ("confirm", id.as_str()),
            ("skip_snapshot", "on"),
            ("force", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(stack.tenant(&id).await.status, TenantStatus::Ready);

    // An admin types the id and asks for no snapshot: a second page asks again, nothing yet.
    let browser = Browser::start().await;
    browser.sign_in(&daemon.url, TOKEN).await;
    browser
        .goto(&format!("{}/ui/tenants/{id}/deprovision", daemon.url))
        .await;
    browser.type_into("#confirm", &id).await;
    browser.click("#skip-snapshot").await;
    browser.follow("#confirm-deprovision").await;
    assert!(
        browser
            .text("#force-warning")
            .await
            .contains("deletion protection")
    );
    assert_eq!(stack.tenant(&id).await.status, TenantStatus::Ready);
    // Submitting it without ticking the confirmation is stopped by the browser (required), and
    // a request without it by the server: the same second page again.
    let admin = session_cookie(&browser).await;
    let page = browser.source().await;
    let again = http
        .post(format!("{}/ui/tenants/{id}/deprovision", daemon.url))
        .header(COOKIE, &admin)
        .form(&[
            ("csrf", csrf_of(&page).as_str()),
            ("confirm", id.as_str()),
            ("skip_snapshot", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert!(again.text().await.unwrap().contains("force-warning"));
    assert_eq!(stack.tenant(&id).await.status, TenantStatus::Ready);

    browser.click("#force").await;
    browser.follow("#force-deprovision").await;
    // Back on the tenant's page (once the browser followed the redirect), which shows it go.
    browser
        .wait_text("#tenant-status", "deleted", TIMEOUT)
        .await;
    assert_eq!(browser.path().await, format!("/ui/tenants/{id}"));
    // The history says it went without a snapshot past the tier's guard, and who asked.
    let job: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM jobs WHERE tenant_id = $1 AND kind = 'deprovision'")
            .bind(&id)
            .fetch_one(stack.pool())
            .await
            .unwrap();
    assert_eq!(stack.job(job).await.args["final_snapshot"], json!(false));
    let history = tenantd::queue::history(stack.pool(), job).await.unwrap();
    let note = history[0].note.clone().unwrap_or_default();
    assert!(
        note.contains("forced past tier enterprise's deletion protection")
            && note.contains("by token-1 (admin) through the console"),
        "{note}"
    );
    assert!(
        browser
            .source()
            .await
            .contains("forced past tier enterprise")
    );
    assert!(stack.instance(&format!("saas-{id}")).await.is_none());
    browser.quit().await;
    std::fs::remove_dir_all(&dir).ok();
}
