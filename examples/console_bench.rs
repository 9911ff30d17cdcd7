//! The console's cost at fleet size: N tenants (default 1000) with a job history each, then
//! every page fetched through a real HTTP server, counting the SQL statements each makes and
//! timing it.
//!
//!     eval "$(localstack/up)"
//!     cargo run --release --example console_bench -- --tenants 1000
//!
//! Set-up (not measured): a scratch control database on the server `TENANTD_DATABASE_URL`
//! names (created, dropped at the end); N tenants over the three tiers (80 % ready, 10 %
//! failed, 5 % provisioning, 5 % deleted), each with a provisioning job of 15 history rows
//! (the failed ones end in a failed step, the provisioning ones wait), and a signed-in session.
//! Then each page is fetched `--rounds` times in turn; one line per page:
//! `page=... queries=Q median_ms=M p95_ms=P bytes=B`. Queries are the most statements sqlx ran
//! for one request (the session's look-up included), counted from its `sqlx::query` events; sqlx's
//! own look-ups of the enum types, once per new connection, are left out.

#[path = "support/scratch.rs"]
mod scratch;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::Parser;
use scratch::with_scratch_db;
use tenantd::api::{self, AppState};
use tenantd::config::{Env, Settings};
use tenantd::ui::{self, UiState};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Parser)]
struct Args {
    /// Tenants in the control database.
    #[arg(long, default_value_t = 1000)]
    tenants: i64,
    /// Fetches of each page.
    #[arg(long, default_value_t = 50)]
    rounds: usize,
}

/// Counts the statements sqlx runs for the console, leaving out its own catalog look-ups
/// (the enum types' labels, read once per new connection).
struct Statements(Arc<AtomicU64>);

#[derive(Default)]
struct Summary(String);

impl tracing::field::Visit for Summary {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "summary" {
            self.0 = value.to_string();
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Statements {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut summary = Summary::default();
        event.record(&mut summary);
        if summary.0.contains("pg_catalog") || summary.0.contains("regtype") {
            return;
        }
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

const TOKEN: &str = "bench-token-0123456789-abcdefghijkl";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let statements = Arc::new(AtomicU64::new(0));
    tracing_subscriber::registry()
        .with(
            Statements(statements.clone())
                .with_filter(Targets::new().with_target("sqlx::query", tracing::Level::TRACE)),
        )
        .init();
    let given = &args;
    let counter = &statements;
    with_scratch_db("tenantd_console", |url| async move {
        run(given, &url, counter).await
    })
    .await
}

/// Tenants `t-00000`.., each with a provisioning job and its 15 steps of history.
async fn seed(pool: &sqlx::PgPool, n: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO tenants (id, tier, status, error, db_instance_id, endpoint_host,
             endpoint_port, secret_arn, schema_version, engine_version, storage_gib)
         SELECT 't-' || lpad(i::text, 5, '0'), (ARRAY['starter', 'pro', 'enterprise'])[i % 3 + 1],
                s::tenant_status, CASE WHEN s = 'failed' THEN 'alarms: AccessDenied' END,
                'saas-t-' || i, CASE WHEN s = 'ready' THEN 'db.example' END,
                CASE WHEN s = 'ready' THEN 5432 END,
                'arn:aws:secretsmanager:us-east-1:0:secret:saas/tenant/t-' || i, 20260101000003,
                '16.8', 20
         FROM generate_series(0, $1 - 1) AS i,
              LATERAL (SELECT CASE WHEN i % 20 = 1 THEN 'failed' WHEN i % 20 = 2 THEN 'failed'
                                   WHEN i % 20 = 3 THEN 'provisioning'
                                   WHEN i % 20 = 4 THEN 'deleted' ELSE 'ready' END AS s) AS st",
    )
    .bind(n)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO jobs (id, kind, tenant_id, state, step, args, max_attempts, error, attempt,
             created_at, updated_at, run_at, finished_at)
         SELECT gen_random_uuid(), CASE WHEN t.status = 'deleted' THEN 'deprovision' ELSE 'provision' END,
                t.id,
                (CASE t.status WHEN 'failed' THEN 'failed' WHEN 'provisioning' THEN 'waiting'
                               ELSE 'succeeded' END)::job_state,
                CASE t.status WHEN 'provisioning' THEN 'wait_available' ELSE 'mark_ready' END,
                '{\"tier\": \"starter\"}', 8,
                CASE WHEN t.status = 'failed' THEN 'alarms: AccessDenied' END, 1,
                now() - interval '10 minutes', now(), now(),
                CASE WHEN t.status <> 'provisioning' THEN now() - interval '9 minutes' END
         FROM tenants t",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO job_history (job_id, at, step, attempt, outcome, started_at, error)
         SELECT j.id, j.created_at + make_interval(secs => k * 4 + 3),
                (ARRAY['credentials', 'instance', 'wait_available', 'wait_available',
                       'wait_available', 'wait_available', 'wait_available', 'wait_available',
                       'secret_endpoint', 'migrate', 'backups', 'alarms', 'alarms', 'protect',
                       'mark_ready'])[k + 1],
                1, CASE WHEN k BETWEEN 2 AND 6 THEN 'waiting'
                        WHEN k = 11 AND j.state = 'failed' THEN 'failed'
                        WHEN k = 14 AND j.state = 'succeeded' THEN 'succeeded'
                        ELSE 'advanced' END,
                j.created_at + make_interval(secs => k * 4),
                CASE WHEN k = 11 AND j.state = 'failed' THEN 'alarms: AccessDenied' END
         FROM jobs j, generate_series(0, 14) AS k",
    )
    .execute(pool)
    .await?;
    Ok(())
}

async fn run(args: &Args, url: &str, statements: &AtomicU64) -> anyhow::Result<()> {
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    vars.insert("TENANTD_DATABASE_URL".into(), url.into());
    vars.insert("TENANTD_API_TOKENS".into(), TOKEN.into());
    let settings = Settings::load(&Env(move |k| vars.get(k).cloned()))?;
    let pool = tenantd::db::connect(&settings.database_url, 8).await?;
    tenantd::db::migrate(&pool).await?;
    let started = Instant::now();
    seed(&pool, args.tenants).await?;
    eprintln!(
        "seeded {} tenants in {:.1}s",
        args.tenants,
        started.elapsed().as_secs_f64()
    );

    let state = AppState::new(
        pool.clone(),
        tenantd::app::ops_pool(&settings)?,
        &settings,
        tenantd::rollouts::Offers::none(),
        tokio_util::sync::CancellationToken::new(),
    );
    let app = api::router(state.clone()).merge(ui::router(UiState::new(state, &settings)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let login = http
        .post(format!("{base}/ui/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await?;
    let cookie = login
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow::anyhow!("no session cookie"))?
        .to_string();
    let middle = format!("t-{:05}", args.tenants / 2 + 1);
    let pages = [
        ("overview", "/ui/".to_string()),
        ("tenants", "/ui/tenants".to_string()),
        (
            "tenants_filtered",
            "/ui/tenants?status=failed&tier=pro&q=t-0".to_string(),
        ),
        ("tenants_page_10", format!("/ui/tenants?after=t-{:05}", 449)),
        ("tenant", format!("/ui/tenants/{middle}")),
        ("tenant_live", format!("/ui/tenants/{middle}/live")),
        ("jobs", "/ui/jobs".to_string()),
        ("jobs_failed", "/ui/jobs?state=failed".to_string()),
    ];
    for (name, path) in pages {
        let mut times = Vec::with_capacity(args.rounds);
        let (mut queries, mut bytes) = (0, 0);
        for _ in 0..args.rounds {
            let before = statements.load(Ordering::Relaxed);
            let t = Instant::now();
            let r = http
                .get(format!("{base}{path}"))
                .header(reqwest::header::COOKIE, &cookie)
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "{path}: {}", r.status());
            bytes = r.bytes().await?.len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            queries = queries.max(statements.load(Ordering::Relaxed) - before);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let median = times[times.len() / 2];
        let p95 = times[(times.len() * 95 / 100).min(times.len() - 1)];
        println!(
            "page={name} queries={queries} median_ms={median:.2} p95_ms={p95:.2} bytes={bytes}"
        );
    }
    pool.close().await;
    Ok(())
}
