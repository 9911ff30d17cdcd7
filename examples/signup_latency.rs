//! Signup latency with and without the warm pool: starts `tenantd serve` (the release binary)
//! on the local stack and measures, per signup, the time from its request to its tenant being
//! ready: N signups of one tier, one every `--every`, with a pool of P standbys; the same with
//! no pool (the cold path); then a burst of `--burst` signups at once with the pool refilled.
//!
//!     eval "$(LOCAL_RDS_CREATING_SECS=30 localstack/up)"
//!     cargo build --release --bin tenantd
//!     cargo run --release --example signup_latency -- --pool 3 --signups 10 --every 15s
//!
//! Each run works in a scratch control database on the server named by `TENANTD_DATABASE_URL`
//! (created, dropped at the end); the instances stay in LocalStack (restart it to drop them).
//! The last line is `pool=P signups=N p50_s=X p95_s=Y cold_p50_s=Z burst_p50_s=B`.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/scratch.rs"]
mod scratch;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Parser;
use scratch::with_scratch_db;
use tokio::process::{Child, Command};

#[derive(Parser, Clone)]
struct Args {
    /// Standbys in the pool (`TENANTD_WARM_POOL=<tier>=P`).
    #[arg(long, default_value_t = 3)]
    pool: u32,
    /// Signups at the steady rate, with and without the pool.
    #[arg(long, default_value_t = 10)]
    signups: usize,
    /// Time between two signups at the steady rate.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    every: Duration,
    /// Signups at once after the steady run (with the pool refilled); 0: no burst.
    #[arg(long, default_value_t = 10)]
    burst: usize,
    #[arg(long, default_value = "starter")]
    tier: String,
    /// The daemon's TENANTD_RDS_POLL_INTERVAL.
    #[arg(long, default_value = "1s")]
    poll: String,
    /// Longest wait for one signup.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The tenantd binary (default: target/release/tenantd next to this example).
    #[arg(long)]
    bin: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = daemon::tenantd_binary(args.bin.as_ref())?;
    let a = &args;
    let b = &bin;
    let (pooled, burst) = with_scratch_db("tenantd_signup_pool", |url| async move {
        let daemon = Daemon::start(b, &url, a, a.pool).await?;
        daemon.until_pool(a.pool, a.timeout).await?;
        eprintln!("pool of {} available; steady signups", a.pool);
        let steady = daemon.signups(a.signups, a.every, "p").await?;
        let burst = if a.burst > 0 {
            daemon.until_pool(a.pool, a.timeout).await?;
            eprintln!("pool refilled; a burst of {}", a.burst);
            daemon.signups(a.burst, Duration::ZERO, "b").await?
        } else {
            Vec::new()
        };
        daemon.stop().await;
        Ok((steady, burst))
    })
    .await?;
    let cold = with_scratch_db("tenantd_signup_cold", |url| async move {
        let daemon = Daemon::start(b, &url, a, 0).await?;
        eprintln!("no pool; steady signups");
        let cold = daemon.signups(a.signups, a.every, "c").await?;
        daemon.stop().await;
        Ok(cold)
    })
    .await?;
    eprintln!("with the pool (s): {pooled:.1?}");
    eprintln!("cold (s):          {cold:.1?}");
    eprintln!("burst (s):         {burst:.1?}");
    println!(
        "pool={} signups={} p50_s={:.1} p95_s={:.1} cold_p50_s={:.1} burst_p50_s={:.1}",
        args.pool,
        args.signups,
        percentile(&pooled, 0.50),
        percentile(&pooled, 0.95),
        percentile(&cold, 0.50),
        percentile(&burst, 0.50),
    );
    Ok(())
}

/// The `q` quantile (nearest rank) of `values`; 0 when there are none.
fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

struct Daemon {
    child: Child,
    base: String,
    token: String,
    http: reqwest::Client,
    db: sqlx::PgPool,
    tier: String,
    run_id: String,
    timeout: Duration,
}

impl Daemon {
    async fn start(bin: &Path, db_url: &str, args: &Args, pool: u32) -> anyhow::Result<Daemon> {
        let token = format!("signup-{}", uuid::Uuid::new_v4().simple());
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let run_id = uuid::Uuid::new_v4().simple().to_string()[..6].to_string();
        let log = std::env::temp_dir().join(format!("tenantd-signup-{run_id}.log"));
        let warm_pool = if pool > 0 {
            format!("{}={pool}", args.tier)
        } else {
            String::new()
        };
        let child = Command::new(bin)
            .arg("serve")
            .envs([
                ("TENANTD_DATABASE_URL", db_url),
                ("TENANTD_LISTEN", &format!("127.0.0.1:{port}")),
                ("TENANTD_API_TOKENS", &token),
                ("TENANTD_WARM_POOL", &warm_pool),
                ("TENANTD_RDS_POLL_INTERVAL", &args.poll),
            ])
            .envs(daemon::local_stack_settings("signup"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()?;
        eprintln!(
            "daemon on {base} (pool {}), log {}",
            if pool > 0 { &warm_pool } else { "none" },
            log.display()
        );
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "daemon not ready; see {}",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let db = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(db_url)
            .await?;
        Ok(Daemon {
            child,
            base,
            token,
            http,
            db,
            tier: args.tier.clone(),
            run_id,
            timeout: args.timeout,
        })
    }

    /// Waits until the tier has `n` available standbys (GET /v1/pool).
    async fn until_pool(&self, n: u32, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let body: serde_json::Value = self
                .http
                .get(format!("{}/v1/pool", self.base))
                .bearer_auth(&self.token)
                .send()
                .await?
                .json()
                .await?;
            let available = body["tiers"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["tier"] == self.tier.as_str())
                .and_then(|t| t["available"].as_u64())
                .unwrap_or(0);
            if available >= u64::from(n) {
                return Ok(());
            }
            anyhow::ensure!(started.elapsed() < timeout, "the pool did not fill: {body}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `n` signups, one every `every` (all at once for zero); returns each one's seconds from
    /// request to ready.
    async fn signups(&self, n: usize, every: Duration, tag: &str) -> anyhow::Result<Vec<f64>> {
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        for i in 0..n {
            let at = start + every * i as u32;
            let id = format!("signup-{}-{tag}{i:02}", self.run_id);
            let (http, base, token, db, tier, timeout) = (
                self.http.clone(),
                self.base.clone(),
                self.token.clone(),
                self.db.clone(),
                self.tier.clone(),
                self.timeout,
            );
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                let asked = Instant::now();
                let r = http
                    .post(format!("{base}/v1/tenants"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({ "id": id, "tier": tier }))
                    .send()
                    .await?;
                anyhow::ensure!(r.status().as_u16() == 202, "{id}: {}", r.status());
                loop {
                    let status: Option<String> =
                        sqlx::query_scalar("SELECT status::text FROM tenants WHERE id = $1")
                            .bind(&id)
                            .fetch_optional(&db)
                            .await?;
                    match status.as_deref() {
                        Some("ready") => break,
                        Some("failed") => anyhow::bail!("{id} failed"),
                        _ => {}
                    }
                    anyhow::ensure!(asked.elapsed() < timeout, "{id} not ready in time");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let took = asked.elapsed().as_secs_f64();
                eprintln!("  {id} ready after {took:.1}s");
                Ok(took)
            }));
        }
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await??);
        }
        Ok(out)
    }

    async fn stop(mut self) {
        self.db.close().await;
        self.child.kill().await.ok();
    }
}
