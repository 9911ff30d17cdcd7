//! A real browser for the console tests: Debian's headless Chromium driven through its
//! WebDriver (`chromedriver`), started per test on a free port, and a real `tenantd serve` on
//! the local stack to point it at.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use super::app::TOKEN;
pub use super::fleet::free_port;
use super::wait_for;

/// How long a click's navigation may take.
const NAVIGATION: Duration = Duration::from_secs(30);

/// `tenantd serve` on a free port, killed when dropped.
pub struct Daemon {
    pub url: String,
    _child: Child,
}

/// Starts `tenantd serve` with `env` (the test's stack settings) and the test token; returns
/// once it is ready.
pub async fn serve(env: &HashMap<String, String>) -> Daemon {
    let mut env = env.clone();
    env.insert("TENANTD_API_TOKENS".into(), TOKEN.into());
    // Plain HTTP on the loopback interface: the cookie is Secure only behind a TLS proxy.
    env.entry("TENANTD_UI_SECURE_COOKIE".into())
        .or_insert_with(|| "auto".into());
    env.insert("RUST_LOG".into(), "warn".into());
    let (child, url) = super::fleet::serve_ready(&env).await;
    Daemon { url, _child: child }
}

/// Headless Chromium under its WebDriver. Call [`Browser::quit`] at the end of a test: it
/// closes the browser before the driver goes. The driver and the browsers it starts share a
/// process group of their own, killed when the `Browser` is dropped, so a test that fails
/// half-way leaves no browser behind.
pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(pid) = self.driver.id() {
            // SAFETY: kill(2) on the process group the driver leads; no memory is touched.
            unsafe {
                libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
            }
        }
    }
}

fn chromedriver() -> PathBuf {
    for candidate in ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"] {
        let path = PathBuf::from(candidate);
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "chromedriver is missing: install Debian's chromium and chromium-driver packages \
         (localstack/test does when it runs the suite)"
    );
}

impl Browser {
    /// A browser window of 1280×900.
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let status = format!("http://127.0.0.1:{port}/status");
        wait_for(
            "chromedriver to listen",
            Duration::from_secs(30),
            || async {
                let r = reqwest::get(&status).await.ok()?;
                let body: Value = r.json().await.ok()?;
                body["value"]["ready"].as_bool().filter(|r| *r)
            },
        )
        .await;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--no-first-run", "--password-store=basic",
            ]}),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Browser { client, driver }
    }

    pub async fn quit(self) {
        let _ = self.client.clone().close().await;
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} not on the page: {e}"))
            .text()
            .await
            .expect("text")
    }

    pub async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} not on the page: {e}"))
            .click()
            .await
            .expect("click");
    }

    /// Clicks `css` (a link or a form's button) and returns once the page it leads to has
    /// loaded. Chromium may answer a click before the navigation it starts has ended; the next
    /// `find` would then search the old page, or a `goto` would abort a form's POST (seen: a
    /// sign-in whose cookie never arrived). The old document carries a mark the new one lacks.
    pub async fn follow(&self, css: &str) {
        self.run("window.tenantdLeaving = true; return null").await;
        self.click(css).await;
        let client = &self.client;
        wait_for(
            &format!("the page {css} leads to"),
            NAVIGATION,
            || async move {
                let script =
                    "return window.tenantdLeaving !== true && document.readyState === 'complete'";
                // While the old page unloads, scripts may fail: not there yet.
                matches!(client.execute(script, vec![]).await, Ok(Value::Bool(true))).then_some(())
            },
        )
        .await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} not on the page: {e}"))
            .send_keys(text)
            .await
            .expect("type");
    }

    pub async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    pub async fn run(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .expect("run a script")
    }

    /// Waits until `css` holds text containing `want`; returns every text seen on the way.
    pub async fn wait_text(&self, css: &str, want: &str, timeout: Duration) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if seen.last() != Some(&text) {
                seen.push(text.clone());
            }
            if text.contains(want) {
                return seen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {css} to show {want:?}; saw {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Signs in with `token` from the sign-in page.
    pub async fn sign_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/ui/login")).await;
        self.type_into("#token", token).await;
        self.follow("#sign-in").await;
    }

    /// Writes a screenshot of the window to `target/tmp/console-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Whether the page fits the window's width (no sideways scrolling of the whole page).
    pub async fn fits_width(&self) -> bool {
        self.run("return document.documentElement.scrollWidth <= window.innerWidth + 1")
            .await
            .as_bool()
            .unwrap_or(false)
    }
}
