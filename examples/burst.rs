//! A burst of tenants at once: starts `tenantd serve` (the release binary) on the local stack,
//! asks for N tenants concurrently through its HTTP API, and measures until all are ready.
//!
//!     eval "$(LOCAL_RDS_CREATING_SECS=30 localstack/up)"
//!     cargo build --release --bin tenantd
//!     cargo run --release --example burst -- --tenants 1000
//!
//! Works in a scratch control database on the server named by `TENANTD_DATABASE_URL` (created,
//! dropped at the end); the tenants' instances stay in LocalStack (restart it to drop them).
//! The last line is `tenants=N ready=R failed=F wall_s=W rds_calls=C peak_rss_mb=M`: RDS calls
//! as the daemon's `/metrics` counts them, and the daemon's peak resident memory (VmHWM).

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/scratch.rs"]
mod scratch;

use scratch::with_scratch_db;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use tokio::process::{Child, Command};

#[derive(Parser)]
struct Args {
    /// Tenants to ask for.
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    /// Their tier.
    #[arg(long, default_value = "starter")]
    tier: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// The daemon's TENANTD_CONCURRENCY.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// The daemon's TENANTD_RDS_RATE (requests/s).
    #[arg(long, default_value = "8")]
    rds_rate: String,
    /// The daemon's TENANTD_RDS_POLL_INTERVAL.
    #[arg(long, default_value = "5s")]
    poll: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
    /// The tenantd binary (default: target/release/tenantd next to this example).
    #[arg(long)]
    bin: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let given = &args;
    let line =
        with_scratch_db("tenantd_burst", |url| async move { run(given, &url).await }).await?;
    println!("{line}");
    Ok(())
}

async fn run(args: &Args, db_url: &str) -> anyhow::Result<String> {
    let token = format!("burst-{}", uuid::Uuid::new_v4().simple());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let run_id = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let log = std::env::temp_dir().join(format!("tenantd-burst-{run_id}.log"));
    let concurrency = args.concurrency.to_string();
    let mut daemon: Child = Command::new(daemon::tenantd_binary(args.bin.as_ref())?)
        .arg("serve")
        .envs([
            ("TENANTD_DATABASE_URL", db_url),
            ("TENANTD_LISTEN", &format!("127.0.0.1:{port}")),
            ("TENANTD_API_TOKENS", &token),
            ("TENANTD_CONCURRENCY", &concurrency),
            ("TENANTD_RDS_RATE", &args.rds_rate),
            ("TENANTD_RDS_POLL_INTERVAL", &args.poll),
        ])
        .envs(daemon::local_stack_settings("burst"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()?;
    let pid = daemon.id().expect("running");
    eprintln!(
        "daemon pid {pid} on {base}, log {}; tier {}, concurrency {}, RDS rate {}/s, poll {}",
        log.display(),
        args.tier,
        args.concurrency,
        args.rds_rate,
        args.poll
    );
    let http = reqwest::Client::new();
    let started_wait = Instant::now();
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
            started_wait.elapsed() < Duration::from_secs(60),
            "daemon not ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let started = Instant::now();
    let ids: Vec<String> = (0..args.tenants)
        .map(|i| format!("burst-{run_id}-{i:05}"))
        .collect();
    // A signup service retries a 503 (`overloaded`: more writes in flight than the daemon's
    // TENANTD_HTTP_CONCURRENCY allows) after its Retry-After, as this client does.
    let (refused, retried): (usize, usize) = futures::stream::iter(ids.iter())
        .map(|id| {
            let http = &http;
            let token = &token;
            let base = &base;
            let tier = &args.tier;
            async move {
                let mut retried = 0;
                loop {
                    let sent = http
                        .post(format!("{base}/v1/tenants"))
                        .bearer_auth(token)
                        .json(&serde_json::json!({ "id": id, "tier": tier }))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().as_u16() == 202 => return (0, retried),
                        Ok(r) if r.status().as_u16() == 503 => {
                            let after = r
                                .headers()
                                .get(reqwest::header::RETRY_AFTER)
                                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                                .unwrap_or(1);
                            retried += 1;
                            tokio::time::sleep(Duration::from_secs(after)).await;
                        }
                        Ok(r) => {
                            eprintln!(
                                "{id}: {} {}",
                                r.status(),
                                r.text().await.unwrap_or_default()
                            );
                            return (1, retried);
                        }
                        Err(e) => {
                            eprintln!("{id}: {e}");
                            return (1, retried);
                        }
                    }
                }
            }
        })
        .buffer_unordered(args.clients)
        .fold((0, 0), |(n, m), (r, t)| async move { (n + r, m + t) })
        .await;
    eprintln!(
        "{} tenants asked for in {:.1}s ({refused} refused, {retried} answers 503 retried)",
        args.tenants,
        started.elapsed().as_secs_f64()
    );

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
        let done = (ready + failed) as usize + refused >= args.tenants;
        if done || started.elapsed() > Duration::from_secs(args.timeout) {
            break (ready, failed);
        }
        if let Some(status) = daemon.try_wait()? {
            anyhow::bail!("the daemon exited with {status}; see {}", log.display());
        }
        eprintln!(
            "{:>6.1}s ready {ready} failed {failed} rds_calls {}",
            started.elapsed().as_secs_f64(),
            rds_calls(&http, &base).await.unwrap_or(0)
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    let wall = started.elapsed().as_secs_f64();
    let calls = rds_calls(&http, &base).await?;
    timeline(&pool).await?;
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    for line in metrics.lines().filter(|l| {
        l.starts_with("tenantd_instance_poll_rounds_total")
            || (l.starts_with("tenantd_aws_calls_total{") && l.contains("service=\"rds\""))
    }) {
        eprintln!("  {line}");
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    pool.close().await;
    daemon.kill().await?;
    Ok(format!(
        "tenants={} ready={ready} failed={failed} wall_s={wall:.1} rds_calls={calls} peak_rss_mb={}",
        args.tenants,
        hwm_kb / 1024
    ))
}

/// When the tenants left each step, in seconds from the first enqueue: where the time went.
async fn timeline(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let rows: Vec<(String, i64, f64, f64, f64)> = sqlx::query_as(
        "WITH t0 AS (SELECT min(created_at) AS t0 FROM jobs),
              left_step AS (
                SELECT step, extract(epoch FROM at - t0)::float8 AS s
                FROM job_history, t0
                WHERE outcome IN ('advanced', 'succeeded'))
         SELECT step, count(*), min(s),
                percentile_cont(0.5) WITHIN GROUP (ORDER BY s), max(s)
         FROM left_step GROUP BY step ORDER BY 4",
    )
    .fetch_all(pool)
    .await?;
    eprintln!("step left (s from the first enqueue): step count first median last");
    for (step, n, first, median, last) in rows {
        eprintln!("  {step:<16} {n:>5} {first:>7.1} {median:>7.1} {last:>7.1}");
    }
    Ok(())
}

/// RDS calls the daemon made, summed from its `/metrics`.
async fn rds_calls(http: &reqwest::Client, base: &str) -> anyhow::Result<u64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("tenantd_aws_calls_total{") && l.contains("service=\"rds\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}
