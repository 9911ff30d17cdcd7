//! The operator's console in a real browser (headless Chromium through its WebDriver) against
//! a real `tenantd serve` on the local stack: signing in, a tenant reaching ready on its page
//! without a reload, a failed tenant retried from the console, deprovisioning behind a
//! confirmation, CSRF refusals, and no secret in any page. Screenshots go to
//! `target/tmp/console-screenshots/`. Run through `localstack/test`.

mod support;

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
    browser.click("#sign-in").await;
    assert!(browser.text("#login-error").await.contains("not accepted"));
    assert!(
        browser
            .client
            .get_named_cookie("tenantd_session")
            .await
            .is_err()
    );

    browser.type_into("#token", TOKEN).await;
    browser.click("#sign-in").await;
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
    browser.click(".signout button").await;
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
    browser.click(&format!("a[href='/ui/tenants/{id}']")).await;
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

    browser.click("#retry").await;
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
    browser.click("#deprovision").await;
    assert_eq!(
        browser.path().await,
        format!("/ui/tenants/{id}/deprovision")
    );
    assert!(browser.text("h1").await.contains(&id));

    // A wrong id deletes nothing.
    browser.type_into("#confirm", "some-other-tenant").await;
    browser.click("#confirm-deprovision").await;
    assert!(browser.text("#confirm-error").await.contains(&id));
    assert_eq!(stack.tenant(&id).await.status, TenantStatus::Ready);

    browser.type_into("#confirm", &id).await;
    browser.click("#confirm-deprovision").await;
    assert_eq!(browser.path().await, format!("/ui/tenants/{id}"));
    browser
        .wait_text("#tenant-status", "deleted", TIMEOUT)
        .await;
    assert_eq!(stack.tenant(&id).await.status, TenantStatus::Deleted);
    assert!(stack.instance(&format!("saas-{id}")).await.is_none());
    browser.quit().await;
}
