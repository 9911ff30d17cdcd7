//! Webhook latency under a burst: starts `tenantd serve` (the release binary) on the local
//! stack with a webhook receiver on loopback (`TENANTD_WEBHOOK_ALLOW_PRIVATE=true`), subscribes
//! it to every event, asks for N tenants at once (64 requests in flight), and measures from
//! each event's commit (its `time`) to the receiver's answer.
//!
//!     eval "$(localstack/up)"          # instances take LOCAL_RDS_CREATING_SECS (5 s) to create
//!     cargo build --release --bin tenantd --example event_bench
//!     target/release/examples/event_bench --tenants 500
//!     target/release/examples/event_bench --tenants 500 --no-webhooks   # the burst alone
//!
//! Prints `burst tenants=N ready=R failed=F wall_s=W webhooks=on|off`, then (with webhooks)
//! `tenants=N events=E delivered=D dup_deliveries=U p50_ms=A p99_ms=B`: events written, events
//! the receiver answered 2xx at least once, requests beyond the first per event.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/scratch.rs"]
mod scratch;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use clap::Parser;
use futures::StreamExt;
use scratch::with_scratch_db;
use tokio::process::Command;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 500)]
    tenants: usize,
    #[arg(long, default_value = "starter")]
    tier: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// The daemon's TENANTD_CONCURRENCY.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// The daemon's TENANTD_RDS_RATE.
    #[arg(long, default_value = "8")]
    rds_rate: String,
    /// The daemon's TENANTD_RDS_POLL_INTERVAL.
    #[arg(long, default_value = "5s")]
    poll: String,
    /// The burst alone, without a subscription.
    #[arg(long)]
    no_webhooks: bool,
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
    #[arg(long)]
    bin: Option<PathBuf>,
}

/// Per event id: requests received, and the first 2xx answer's latency from the event's time.
type Seen = Arc<Mutex<HashMap<String, (u32, Option<f64>)>>>;

async fn hook(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> &'static str {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let latency = event["time"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1000.0
        });
    let mut seen = seen.lock().unwrap();
    let entry = seen.entry(id).or_insert((0, None));
    entry.0 += 1;
    if entry.1.is_none() {
        entry.1 = latency;
    }
    "ok"
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let given = &args;
    let lines = with_scratch_db(
        "tenantd_events",
        |url| async move { run(given, &url).await },
    )
    .await?;
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

async fn run(args: &Args, db_url: &str) -> anyhow::Result<Vec<String>> {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let token = format!("events-{}", uuid::Uuid::new_v4().simple());
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let run_id = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let log = std::env::temp_dir().join(format!("tenantd-events-{run_id}.log"));
    let mut daemon = Command::new(daemon::tenantd_binary(args.bin.as_ref())?)
        .arg("serve")
        .envs([
            ("TENANTD_DATABASE_URL", db_url),
            ("TENANTD_LISTEN", &format!("127.0.0.1:{port}")),
            ("TENANTD_API_TOKENS", &token),
            ("TENANTD_CONCURRENCY", &args.concurrency.to_string()),
            ("TENANTD_RDS_RATE", &args.rds_rate),
            ("TENANTD_RDS_POLL_INTERVAL", &args.poll),
            ("TENANTD_WEBHOOK_ALLOW_PRIVATE", "true"),
        ])
        .envs(daemon::local_stack_settings("events"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()?;
    eprintln!("daemon on {base}, log {}", log.display());
    let http = reqwest::Client::new();
    let waiting = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        if let Some(status) = daemon.try_wait()? {
            anyhow::bail!("the daemon exited with {status}; see {}", log.display());
        }
        anyhow::ensure!(
            waiting.elapsed() < Duration::from_secs(60),
            "daemon not ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !args.no_webhooks {
        let r = http
            .post(format!("{base}/v1/webhooks"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "url": hook_url }))
            .send()
            .await?;
        anyhow::ensure!(r.status().as_u16() == 201, "subscribe: {}", r.text().await?);
    }

    let started = Instant::now();
    let ids: Vec<String> = (0..args.tenants)
        .map(|i| format!("ev-{run_id}-{i:05}"))
        .collect();
    futures::stream::iter(ids.iter())
        .map(|id| {
            let (http, token, base, tier) = (&http, &token, &base, &args.tier);
            async move {
                loop {
                    let r = http
                        .post(format!("{base}/v1/tenants"))
                        .bearer_auth(token)
                        .json(&serde_json::json!({ "id": id, "tier": tier }))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().as_u16() == 503 => {
                            tokio::time::sleep(Duration::from_secs(1)).await
                        }
                        _ => return,
                    }
                }
            }
        })
        .buffer_unordered(args.clients)
        .collect::<Vec<()>>()
        .await;

    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(db_url)
        .await?;
    let (ready, failed) = loop {
        let (ready, failed): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'ready'),
                    count(*) FILTER (WHERE status = 'failed') FROM tenants",
        )
        .fetch_one(&pool)
        .await?;
        if (ready + failed) as usize >= args.tenants
            || started.elapsed() > Duration::from_secs(args.timeout)
        {
            break (ready, failed);
        }
        eprintln!(
            "{:>6.1}s ready {ready} failed {failed}",
            started.elapsed().as_secs_f64()
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    let wall = started.elapsed().as_secs_f64();
    let webhooks = if args.no_webhooks { "off" } else { "on" };
    let mut lines = vec![format!(
        "burst tenants={} ready={ready} failed={failed} wall_s={wall:.1} webhooks={webhooks}",
        args.tenants
    )];
    if !args.no_webhooks {
        let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&pool)
            .await?;
        let settle = Instant::now();
        while seen
            .lock()
            .unwrap()
            .values()
            .filter(|v| v.1.is_some())
            .count()
            < events as usize
            && settle.elapsed() < Duration::from_secs(120)
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let seen = seen.lock().unwrap().clone();
        let mut latencies: Vec<f64> = seen.values().filter_map(|v| v.1).collect();
        latencies.sort_by(|a, b| a.total_cmp(b));
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or(f64::NAN)
        };
        let dups: u32 = seen.values().map(|v| v.0.saturating_sub(1)).sum();
        lines.push(format!(
            "tenants={} events={events} delivered={} dup_deliveries={dups} p50_ms={:.0} p99_ms={:.0}",
            args.tenants,
            latencies.len(),
            pct(0.50),
            pct(0.99)
        ));
    }
    pool.close().await;
    daemon.kill().await?;
    Ok(lines)
}
