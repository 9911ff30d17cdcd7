//! The listener holds under abuse: a real `tenantd serve` on the local stack with 1,000
//! connections that sent half a request line and stopped, and 200 that trickle a header byte a
//! second, answers `/healthz` and `POST /v1/tenants` within a second every time meanwhile, and
//! closes the slow ones when their header-read timeout passes. Prints its figures.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::app::TOKEN;
use support::fleet::serve_ready;
use support::stack::{Stack, test_env};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const IDLE: usize = 1000;
const TRICKLING: usize = 200;
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits for the server to close `stream`; returns how long after `opened` it did (or `None`
/// when it still had not by `deadline`).
async fn closed_after(
    mut stream: TcpStream,
    opened: Instant,
    deadline: Instant,
) -> Option<Duration> {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(opened.elapsed()),
            // An answer to what was sent (a 408 or 400): the close follows.
            Ok(Ok(_)) => continue,
        }
    }
}

/// A connection that sends a request line and headers one byte a second, until the server
/// closes it; returns how long that took.
async fn trickle(addr: String, deadline: Instant) -> Option<Duration> {
    // Timed from before the connect, as the idle ones are.
    let opened = Instant::now();
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    stream
        .write_all(b"GET /v1/tenants HTTP/1.1\r\nHost: tenantd\r\n")
        .await
        .ok()?;
    let (mut reader, mut writer) = stream.into_split();
    let writing = async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if writer.write_all(b"X").await.is_err() {
                return;
            }
        }
    };
    let reading = async {
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout_at(deadline.into(), reader.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some(opened.elapsed()),
                Ok(Ok(_)) => continue,
            }
        }
    };
    tokio::select! {
        closed = reading => closed,
        _ = writing => Some(opened.elapsed()),
    }
}

fn summary(mut times: Vec<Duration>) -> String {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    format!(
        "n={} min={:.3}s p50={:.3}s max={:.3}s",
        times.len(),
        times[0].as_secs_f64(),
        at(0.5).as_secs_f64(),
        times[times.len() - 1].as_secs_f64()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_do_not_hold_the_listener_and_are_closed_by_the_timeout() {
    let stack = Stack::new().await;
    let env = test_env(
        &stack.db,
        &[
            ("TENANTD_API_TOKENS", TOKEN),
            ("TENANTD_HTTP_HEADER_TIMEOUT", "5s"),
            ("TENANTD_CONCURRENCY", "2"),
        ],
    );
    let (_daemon, url) = serve_ready(&env).await;
    let addr = url.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let deadline = started + HEADER_TIMEOUT + Duration::from_secs(10);

    // 1,000 connections send half a request line and stop.
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        // Timed from before the connect: the server's timer cannot start earlier, so a close
        // seen sooner than the timeout is one, however late this task is scheduled.
        let opened = Instant::now();
        let mut stream = TcpStream::connect(&addr).await.expect("connect");
        stream.write_all(b"GET /healthz HT").await.unwrap();
        idle.push((stream, opened));
    }
    let idle_closed: Vec<_> = idle
        .into_iter()
        .map(|(stream, opened)| tokio::spawn(closed_after(stream, opened, deadline)))
        .collect();
    // 200 trickle a header byte a second.
    let trickled: Vec<_> = (0..TRICKLING)
        .map(|_| tokio::spawn(trickle(addr.clone(), deadline)))
        .collect();

    // Meanwhile, each on a new connection: /healthz every 200 ms, a new tenant every second.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let (mut health, mut creates) = (Vec::new(), Vec::new());
    let probing_until = Instant::now() + HEADER_TIMEOUT + Duration::from_secs(3);
    let mut n = 0;
    while Instant::now() < probing_until {
        let t = Instant::now();
        let r = http.get(format!("{url}/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        health.push(t.elapsed());
        if n % 5 == 0 {
            let t = Instant::now();
            let r = http
                .post(format!("{url}/v1/tenants"))
                .bearer_auth(TOKEN)
                .json(&json!({ "id": format!("held-{n}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]), "tier": "starter" }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            creates.push(t.elapsed());
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut idle_times = Vec::new();
    for handle in idle_closed {
        idle_times.push(
            handle
                .await
                .unwrap()
                .expect("an idle connection was never closed"),
        );
    }
    let mut trickle_times = Vec::new();
    for handle in trickled {
        trickle_times.push(
            handle
                .await
                .unwrap()
                .expect("a trickling connection was never closed"),
        );
    }
    eprintln!(
        "listener: {IDLE} idle + {TRICKLING} trickling connections, header timeout {HEADER_TIMEOUT:?}\n  \
         /healthz {}\n  POST /v1/tenants {}\n  idle closed after {}\n  trickling closed after {}",
        summary(health.clone()),
        summary(creates.clone()),
        summary(idle_times.clone()),
        summary(trickle_times.clone()),
    );
    for (what, times) in [("/healthz", &health), ("POST /v1/tenants", &creates)] {
        let slowest = times.iter().max().unwrap();
        assert!(*slowest < Duration::from_secs(1), "{what} took {slowest:?}");
    }
    // Closed by the header-read timeout: not before it, and not long after.
    for (what, times) in [("idle", &idle_times), ("trickling", &trickle_times)] {
        let first = times.iter().min().unwrap();
        let last = times.iter().max().unwrap();
        assert!(
            *first >= HEADER_TIMEOUT - Duration::from_millis(100),
            "a {what} connection closed after {first:?}"
        );
        assert!(
            *last <= HEADER_TIMEOUT + Duration::from_secs(5),
            "a {what} connection closed only after {last:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_a_slow_one_is_closed() {
    let app = support::app::spawn_app_with(tenantd::config::HttpSettings {
        max_connections: 8,
        header_timeout: Duration::from_secs(1),
        ..support::app::test_http()
    })
    .await;
    let addr = app.url.trim_start_matches("http://").to_string();
    // Eight connections hold every slot, sending nothing.
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let r = reqwest::Client::new()
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(r.status(), 200);
    // Accepted once the header timeout closed the held ones, not before.
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    for stream in held {
        assert!(closed_after(stream, started, deadline).await.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_deadline_is_stopped_and_audited_and_a_full_class_refuses_at_once() {
    let app = support::app::spawn_app_with(tenantd::config::HttpSettings {
        request_timeout: Duration::from_secs(1),
        concurrency: tenantd::config::ClassLimits {
            write: 1,
            ..tenantd::config::ClassLimits::default()
        },
        ..support::app::test_http()
    })
    .await;
    let (status, _) = app.create("held-tenant", "starter").await;
    assert_eq!(status, 202);
    app.finish_provisioning("held-tenant").await;
    // Someone holds the tenant's row: a tier change waits for it.
    let mut holder = app.db.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM tenants WHERE id = 'held-tenant' FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let change = {
        let request = app
            .request(reqwest::Method::PATCH, "/v1/tenants/held-tenant")
            .json(&json!({ "tier": "pro" }));
        tokio::spawn(async move {
            let started = Instant::now();
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body, started.elapsed())
        })
    };
    // While it waits it holds the only write permit: another change is refused at once, a read
    // is answered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = app
        .request(reqwest::Method::POST, "/v1/tenants/held-tenant/suspend")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let (_, body) = support::app::status_and_json(r).await;
    assert_eq!(support::app::code(&body), "overloaded");
    let (status, _) = app.get("/v1/tenants/held-tenant").await;
    assert_eq!(status, 200);

    let (status, body, took) = change.await.unwrap();
    assert_eq!(
        (status, support::app::code(&body)),
        (503, "request_timeout")
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    holder.rollback().await.unwrap();
    // Nothing of it was kept, and the trail says how it ended.
    let tenant = tenantd::tenants::get(&app.db.pool, "held-tenant")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (tenant.tier.as_str(), tenant.pending_tier),
        ("starter", None)
    );
    let ended: (i16, Option<String>) = sqlx::query_as(
        "SELECT status, code FROM audit_events WHERE method = 'PATCH' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(ended, (503, Some("request_timeout".to_string())));
}
