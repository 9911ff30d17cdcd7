//! The operations endpoints stay apart from the work: a real `tenantd serve` on the local stack
//! (the maintenance leader, so its `/metrics` carries the fleet's gauges) provisions a burst of
//! tenants while it is scraped 50 times a second (and `/readyz` 10 times a second) for 30 s:
//! every scrape answers, no lease is lost (no job is rescued, no step fails with
//! `lease_lost`), and the fleet gauges are read from the database once per interval, not per
//! scrape. The same burst without scrapes runs first; both times are printed.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::app::TOKEN;
use support::fleet::serve_ready;
use support::stack::{Stack, test_env};
use support::wait_for;
use tenantd::tenants::TenantStatus;

const BURST: usize = 20;
const SCRAPING: Duration = Duration::from_secs(30);

/// The value of a sample without labels.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Asks for `BURST` starter tenants at once; returns how long until all were ready.
async fn burst(stack: &Stack, url: &str, prefix: &str) -> Duration {
    let started = Instant::now();
    let http = reqwest::Client::new();
    let asks = (0..BURST).map(|i| {
        let http = http.clone();
        let url = url.to_string();
        let id = format!("{prefix}-{i}");
        async move {
            let r = http
                .post(format!("{url}/v1/tenants"))
                .bearer_auth(TOKEN)
                .json(&json!({ "id": id, "tier": "starter" }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
        }
    });
    futures::future::join_all(asks).await;
    wait_for(
        "the burst to be ready",
        Duration::from_secs(300),
        || async {
            let ready: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM tenants WHERE id LIKE $1 AND status = 'ready'",
            )
            .bind(format!("{prefix}-%"))
            .fetch_one(stack.pool())
            .await
            .unwrap();
            let failed: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM tenants WHERE id LIKE $1 AND status = 'failed'",
            )
            .bind(format!("{prefix}-%"))
            .fetch_one(stack.pool())
            .await
            .unwrap();
            assert_eq!(failed, 0, "a tenant of the burst failed");
            (ready == BURST as i64).then_some(())
        },
    )
    .await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_scrapes_a_second_during_a_burst_cost_no_lease() {
    let stack = Stack::new().await;
    let run = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let env = test_env(
        &stack.db,
        &[
            ("TENANTD_API_TOKENS", TOKEN),
            // A small worker pool (4 + 8 connections), short leases (test_env: 2 s).
            ("TENANTD_CONCURRENCY", "4"),
            ("RUST_LOG", "warn"),
        ],
    );
    let (_daemon, url) = serve_ready(&env).await;
    let http = reqwest::Client::new();
    let metrics = |http: reqwest::Client, url: String| async move {
        http.get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    wait_for("the daemon to lead", Duration::from_secs(30), || async {
        let text = metrics(http.clone(), url.clone()).await;
        (sample(&text, "tenantd_maintenance_leader") == Some(1.0)).then_some(())
    })
    .await;

    let quiet = burst(&stack, &url, &format!("quiet{run}")).await;

    // 50 scrapes of /metrics and 10 of /readyz a second, for 30 s, beside a burst like the
    // first.
    let reads_before = sample(
        &metrics(http.clone(), url.clone()).await,
        "tenantd_fleet_gauge_reads_total",
    )
    .unwrap_or(0.0);
    let scraping = {
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let until = Instant::now() + SCRAPING;
            let mut scrapes = Vec::new();
            let mut n = 0u64;
            while Instant::now() < until {
                tick.tick().await;
                let paths: &[&'static str] = if n % 5 == 4 {
                    &["/metrics", "/readyz"]
                } else {
                    &["/metrics"]
                };
                for path in paths {
                    let (http, url) = (http.clone(), url.clone());
                    scrapes.push(tokio::spawn(async move {
                        let t = Instant::now();
                        let r = http.get(format!("{url}{path}")).send().await.unwrap();
                        (*path, r.status().as_u16(), t.elapsed())
                    }));
                }
                n += 1;
            }
            let mut answers = Vec::new();
            for s in scrapes {
                answers.push(s.await.unwrap());
            }
            answers
        })
    };
    let busy = burst(&stack, &url, &format!("busy{run}")).await;
    let answers = scraping.await.unwrap();
    let reads = sample(
        &metrics(http.clone(), url.clone()).await,
        "tenantd_fleet_gauge_reads_total",
    )
    .unwrap()
        - reads_before;

    let refused: Vec<_> = answers.iter().filter(|(_, s, _)| *s != 200).collect();
    assert!(refused.is_empty(), "scrapes not answered 200: {refused:?}");
    let metrics_scrapes = answers.iter().filter(|(p, _, _)| *p == "/metrics").count();
    let mut took: Vec<Duration> = answers.iter().map(|(_, _, t)| *t).collect();
    took.sort();
    let rescued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM job_history WHERE outcome = 'rescued' OR error_class = 'lease_lost'",
    )
    .fetch_one(stack.pool())
    .await
    .unwrap();
    let ready: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants WHERE status = $1")
        .bind(TenantStatus::Ready)
        .fetch_one(stack.pool())
        .await
        .unwrap();
    eprintln!(
        "ops load: burst of {BURST} without scrapes {:.1}s, with {} scrapes ({} of /metrics) over \
         {SCRAPING:?} {:.1}s; scrape p50 {:.1}ms p99 {:.1}ms max {:.1}ms; fleet gauge reads {reads}; \
         rescued {rescued}",
        quiet.as_secs_f64(),
        answers.len(),
        metrics_scrapes,
        busy.as_secs_f64(),
        took[took.len() / 2].as_secs_f64() * 1e3,
        took[took.len() * 99 / 100].as_secs_f64() * 1e3,
        took[took.len() - 1].as_secs_f64() * 1e3,
    );
    assert_eq!(
        rescued, 0,
        "a lease was lost while the endpoints were scraped"
    );
    assert_eq!(ready, 2 * BURST as i64);
    assert!(metrics_scrapes >= 1400, "{metrics_scrapes}");
    // Once per interval (5 s by default) over 30 s, give or take the edges.
    assert!(reads <= 8.0, "the fleet's gauges were read {reads} times");
}
