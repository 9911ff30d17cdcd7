//! Queue throughput and pickup latency against a real control PostgreSQL.
//!
//! `cargo run --release --example queue_bench -- --jobs 20000 --concurrency 16`
//!
//! Works in a scratch database on the server named by `TENANTD_DATABASE_URL` (created, migrated
//! and dropped again). Phase 1 enqueues `--jobs` no-op jobs, then starts one worker with
//! `--concurrency` slots and times the drain until every job is recorded `succeeded`. Phase 2
//! keeps the worker idle-waiting and enqueues `--samples` jobs one at a time at `--rate` per
//! second, measuring from the enqueue call to the start of the job's step.
//! The last line is `jobs=N drain_per_s=X p50_ms=Y p95_ms=Z`.

#[path = "support/scratch.rs"]
mod scratch;

use scratch::with_scratch_db;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::Parser;
use secrecy::SecretString;
use tenantd::config::{RetryPolicy, WorkerSettings};
use tenantd::queue::{self, NewJob};
use tenantd::worker;
use tenantd::workflow::{Registry, Step, StepContext, StepError, Transition, Workflow};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    /// No-op jobs to drain.
    #[arg(long, default_value_t = 20_000)]
    jobs: usize,
    /// Steps running at once in the worker.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Claimed jobs that may wait for a free slot (TENANTD_PREFETCH). No-op jobs take
    /// microseconds, so claims pay off only when large: the default is 15 x the concurrency
    /// (the daemon's own default is 1 x, for steps that take a few hundred milliseconds).
    #[arg(long)]
    prefetch: Option<usize>,
    /// Jobs enqueued one by one for the pickup-latency phase.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Enqueue rate of the latency phase, jobs per second.
    #[arg(long, default_value_t = 200)]
    rate: u32,
}

/// Does nothing but count its runs and note when each started.
struct Noop {
    runs: AtomicUsize,
    target: AtomicUsize,
    all_ran: Notify,
    started: Mutex<HashMap<Uuid, Instant>>,
}

struct NoopFlow(Arc<Noop>);

tenantd::steps! {
    enum NoopStep {
        Run = "run",
    }
}

impl Step for NoopStep {
    fn compensation(self) -> Option<Self> {
        None
    }
}

#[async_trait]
impl Workflow for NoopFlow {
    const KIND: &'static str = "noop";
    type Step = NoopStep;
    type Args = serde_json::Value;
    type Data = serde_json::Value;

    fn first_step() -> NoopStep {
        NoopStep::Run
    }

    async fn run(
        &self,
        _: NoopStep,
        cx: &mut StepContext<'_, serde_json::Value, serde_json::Value>,
    ) -> Result<Transition<NoopStep>, StepError> {
        let now = Instant::now();
        let noop = &self.0;
        if cx.args.get("timed").is_some() {
            noop.started.lock().unwrap().insert(cx.job.id, now);
        }
        if noop.runs.fetch_add(1, Ordering::Relaxed) + 1 == noop.target.load(Ordering::Relaxed) {
            noop.all_ran.notify_one();
        }
        Ok(Transition::Done)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if std::env::var_os("RUST_LOG").is_some() {
        tenantd::telemetry::init(tenantd::config::LogFormat::Text);
    }
    let given = &args;
    let line =
        with_scratch_db("tenantd_bench", |url| async move { run(given, &url).await }).await?;
    eprintln!(
        "concurrency={} prefetch={}",
        args.concurrency,
        args.prefetch.unwrap_or(args.concurrency * 15)
    );
    println!("{line}");
    Ok(())
}

async fn run(args: &Args, url: &str) -> anyhow::Result<String> {
    let pool = tenantd::db::connect(
        &SecretString::from(url.to_string()),
        8 + args.concurrency as u32,
    )
    .await?;
    tenantd::db::migrate(&pool).await?;

    let noop = Arc::new(Noop {
        runs: AtomicUsize::new(0),
        target: AtomicUsize::new(args.jobs),
        all_ran: Notify::new(),
        started: Mutex::default(),
    });
    let settings = WorkerSettings {
        id: "bench".into(),
        concurrency: args.concurrency,
        prefetch: args.prefetch.unwrap_or(args.concurrency * 15),
        lease: Duration::from_secs(30),
        lease_margin: Duration::from_secs(6),
        leader_ping_timeout: Duration::from_secs(10),
        poll_interval: Duration::from_secs(1),
        shutdown_timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        },
    };

    // Phase 1: a backlog of no-op jobs, drained by one worker.
    let t = Instant::now();
    for chunk in (0..args.jobs).collect::<Vec<_>>().chunks(5000) {
        let batch: Vec<NewJob> = chunk
            .iter()
            .map(|_| NewJob::new("noop", "run", 3))
            .collect();
        queue::enqueue_batch(&pool, &batch).await?;
    }
    eprintln!("enqueued {} jobs in {:.2?}", args.jobs, t.elapsed());

    let stop = CancellationToken::new();
    let start = Instant::now();
    let worker = tokio::spawn(worker::run(
        pool.clone(),
        Registry::new().register(NoopFlow(noop.clone())),
        settings,
        stop.clone(),
    ));
    noop.all_ran.notified().await;
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state <> 'succeeded'")
            .fetch_one(&pool)
            .await?;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let drain = start.elapsed();
    let drain_per_s = args.jobs as f64 / drain.as_secs_f64();
    eprintln!("drained {} jobs in {drain:.2?}", args.jobs);

    // Phase 2: pickup latency at a steady, low rate.
    noop.target
        .store(args.jobs + args.samples, Ordering::Relaxed);
    let mut conn = pool.acquire().await?;
    let mut enqueued_at = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    for _ in 0..args.samples {
        tick.tick().await;
        let at = Instant::now();
        let job = queue::enqueue(
            &mut conn,
            NewJob::new("noop", "run", 3).args(serde_json::json!({ "timed": true })),
        )
        .await?
        .into_job();
        enqueued_at.insert(job.id, at);
    }
    drop(conn);
    noop.all_ran.notified().await;
    stop.cancel();
    worker.await??;

    let started = noop.started.lock().unwrap();
    let mut latencies: Vec<f64> = enqueued_at
        .iter()
        .map(|(id, at)| (started[id] - *at).as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    Ok(format!(
        "jobs={} drain_per_s={:.0} p50_ms={:.2} p95_ms={:.2}",
        args.jobs,
        drain_per_s,
        pct(0.50),
        pct(0.95)
    ))
}
