//! Schema rollouts across a fleet: N tenant databases on the local stack, one new tenant
//! migration, rolled out through `tenantd serve`'s HTTP API at concurrency 1 and at 16.
//!
//!     eval "$(LOCAL_RDS_CREATING_SECS=0 localstack/up)"
//!     cargo build --release --bin tenantd
//!     cargo run --release --example rollout_bench -- --tenants 200
//!
//! Set-up (not measured), in a scratch control database on the server `TENANTD_DATABASE_URL`
//! names (created, dropped at the end): N instances created through the RDS API with their
//! tier's settings and tags, each with its secret (the instance's endpoint) and its database
//! migrated to a copy of the example tenant migrations, and the tenants recorded `ready` at that
//! version. Then `tenantd serve` (the release binary) runs with that directory, and for each
//! concurrency asked for (`--concurrency 1,16`, in that order) one new migration is added to the
//! directory (a column and an index on `projects`) and a rollout of it is created with
//! `POST /v1/rollouts` (no canary, one stage, every tenant) and followed with
//! `GET /v1/rollouts/{id}` every 50 ms until it ends. One line per rollout:
//!
//!     tenants=N concurrency=C wall_s=W per_tenant_ms=P failed=F
//!
//! `wall_s`: from the POST until the API answers that the rollout succeeded; `per_tenant_ms`:
//! the median time one tenant took, from the conductor starting its migrate job to the job's
//! end; `failed`: the rollout's failed tenants. Before each line, where the time went, from the
//! control database: the conductor's rounds, each job's wait for a worker slot, its two steps.
//! At the end the instances and secrets are deleted.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/scratch.rs"]
mod scratch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use scratch::with_scratch_db;
use serde_json::{Value, json};
use tenantd::cloud::Cloud;
use tenantd::cloud::secrets::Recovery;
use tenantd::config::{Env, Settings, TenantDbTls};
use tenantd::tenant_db::{self, DbCredentials, generate_password};
use tokio::process::{Child, Command};

#[derive(Parser)]
struct Args {
    /// Tenant databases in the fleet.
    #[arg(long, default_value_t = 200)]
    tenants: usize,
    /// Their tier.
    #[arg(long, default_value = "starter")]
    tier: String,
    /// One rollout per value, in this order, each of a new migration.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<i32>,
    /// Canary tenants of each rollout (migrated alone first).
    #[arg(long, default_value_t = 0)]
    canary: i32,
    /// The daemon's TENANTD_CONCURRENCY (worker slots).
    #[arg(long, default_value_t = 16)]
    workers: usize,
    /// The daemon's TENANTD_ROLLOUT_ROUND (default: the daemon's own).
    #[arg(long)]
    round: Option<String>,
    /// Give up on a rollout after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// The tenantd binary (default: target/release/tenantd next to this example).
    #[arg(long)]
    bin: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let given = &args;
    with_scratch_db(
        "tenantd_rollout",
        |url| async move { run(given, &url).await },
    )
    .await
}

async fn run(args: &Args, url: &str) -> anyhow::Result<()> {
    let run_id = format!("ro{}", std::process::id() % 100_000);
    let migrations = Migrations::copy(&run_id)?;
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    vars.extend(
        daemon::local_stack_settings("bench")
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    vars.insert("TENANTD_DATABASE_URL".into(), url.into());
    vars.insert(
        "TENANTD_TENANT_MIGRATIONS".into(),
        migrations.path().display().to_string(),
    );
    let settings = Settings::load(&Env(move |k| vars.get(k).cloned()))?;
    let pool = tenantd::db::connect(&settings.database_url, 4).await?;
    tenantd::db::migrate(&pool).await?;
    let cloud = Cloud::from_env(settings.aws_timeouts).await?;
    let tenants: Vec<String> = (0..args.tenants)
        .map(|i| format!("{run_id}-{i:05}"))
        .collect();
    let result = async {
        let started = Instant::now();
        let fleet = set_up(args, &settings, &cloud, &pool, &tenants, migrations.path()).await?;
        eprintln!(
            "set-up: {} tenants at version {} in {:.1} s",
            args.tenants,
            fleet.version,
            started.elapsed().as_secs_f64()
        );
        let mut daemon = Daemon::start(args, url, migrations.path()).await?;
        let rollouts = async {
            for (k, &concurrency) in args.concurrency.iter().enumerate() {
                let target = migrations.add(k + 1)?;
                let line = rollout(args, &daemon, &pool, target, concurrency).await?;
                probe_connections(&fleet.databases, concurrency as usize).await?;
                println!("{line}");
            }
            anyhow::Ok(())
        }
        .await;
        daemon.stop().await;
        rollouts
    }
    .await;
    pool.close().await;
    tear_down(&settings, &cloud, &tenants).await;
    result
}

/// Deletes the fleet's instances (no final snapshot) and secrets, whatever the run returned.
async fn tear_down(settings: &Settings, cloud: &Cloud, tenants: &[String]) {
    let p = &settings.provisioning;
    futures::stream::iter(tenants)
        .for_each_concurrent(16, |tenant| async move {
            let _ = cloud
                .delete_db_instance(&p.instance_id(tenant), None, false)
                .await;
            let _ = cloud
                .delete_secret(&p.secret_name(tenant), Recovery::None)
                .await;
        })
        .await;
}

/// The fleet: instances, secrets with their endpoints, databases at the directory's newest
/// version, tenants `ready`. Returns that version.
async fn set_up(
    args: &Args,
    settings: &Settings,
    cloud: &Cloud,
    pool: &sqlx::PgPool,
    tenants: &[String],
    migrations: &Path,
) -> anyhow::Result<Fleet> {
    let p = &settings.provisioning;
    let tier = p
        .tiers
        .get(&args.tier)
        .ok_or_else(|| anyhow::anyhow!("no tier {:?}", args.tier))?
        .clone();
    let (_, aws) = tenantd::app::workflows(settings, cloud.clone());
    let passwords: HashMap<&String, _> = tenants.iter().map(|t| (t, generate_password())).collect();
    let created = futures::stream::iter(tenants)
        .map(|tenant| {
            let spec = fleet::instance_spec(p, &tier, tenant, aws.tags(tenant, &args.tier));
            let password = &passwords[tenant];
            async move { cloud.create_db_instance(&spec, password).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for r in created {
        r?;
    }
    let ids: Vec<String> = tenants.iter().map(|t| p.instance_id(t)).collect();
    let endpoints: HashMap<String, (String, i32)> = loop {
        let found = cloud.describe_db_instances_batch(&ids).await?;
        let available: HashMap<_, _> = found
            .into_iter()
            .filter(|i| i.status == "available")
            .filter_map(|i| Some((i.identifier, i.endpoint?)))
            .collect();
        if available.len() == ids.len() {
            break available;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let versions = futures::stream::iter(tenants)
        .map(|tenant| {
            let id = p.instance_id(tenant);
            let (host, port) = endpoints[&id].clone();
            let credentials = DbCredentials {
                engine: "postgres".into(),
                host,
                port: u16::try_from(port).expect("a TCP port"),
                username: p.master_username.clone(),
                password: passwords[tenant].clone(),
                dbname: p.db_name.clone(),
                db_instance_identifier: id.clone(),
            };
            let tags = aws.tags(tenant, &args.tier);
            async move {
                let arn = cloud
                    .create_secret(
                        &p.secret_name(tenant),
                        &credentials.to_json(),
                        &tags,
                        "rollout bench",
                    )
                    .await?;
                let migrated = tenant_db::migrate(
                    &credentials,
                    &TenantDbTls::Disable,
                    Duration::from_secs(30),
                    migrations,
                    None,
                    p.migration_limits,
                )
                .await?;
                sqlx::query(
                    "INSERT INTO tenants (id, tier, status, db_instance_id, endpoint_host,
                         endpoint_port, secret_arn, storage_gib, schema_version,
                         applied_migrations)
                     VALUES ($1, $2, 'ready', $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(tenant)
                .bind(&args.tier)
                .bind(&id)
                .bind(&credentials.host)
                .bind(i32::from(credentials.port))
                .bind(&arn)
                .bind(tier.storage_gib)
                .bind(migrated.version)
                .bind(sqlx::types::Json(&migrated.applied))
                .execute(pool)
                .await?;
                anyhow::Ok((migrated.version, credentials))
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let mut fleet = Fleet {
        version: 0,
        databases: Vec::new(),
    };
    for v in versions {
        let (version, credentials) = v?;
        fleet.version = version;
        fleet.databases.push(credentials);
    }
    Ok(fleet)
}

/// The fleet as set up: the databases' version and credentials.
struct Fleet {
    version: i64,
    databases: Vec<DbCredentials>,
}

/// Connection set-up alone, as a migrate step does it (a new connection, a first statement),
/// `concurrency` at once over every database; prints the median and p95.
async fn probe_connections(databases: &[DbCredentials], concurrency: usize) -> anyhow::Result<()> {
    let mut times: Vec<f64> = futures::stream::iter(databases)
        .map(|credentials| async move {
            let started = Instant::now();
            let mut conn =
                tenant_db::connect(credentials, &TenantDbTls::Disable, Duration::from_secs(30))
                    .await?;
            let connected = started.elapsed().as_secs_f64() * 1e3;
            sqlx::query("SELECT 1").execute(&mut conn).await?;
            let first = started.elapsed().as_secs_f64() * 1e3 - connected;
            sqlx::Connection::close(conn).await?;
            anyhow::Ok([connected, first])
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|r| r.map(|[c, _]| c))
        .collect::<anyhow::Result<_>>()?;
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    eprintln!(
        "  connecting to a tenant database (through the local RDS endpoint), {concurrency} at \
         once: median {:.1} ms, p95 {:.1} ms",
        at(0.5),
        at(0.95)
    );
    Ok(())
}

/// One rollout of `target` at `concurrency`, followed until it ends; its line.
async fn rollout(
    args: &Args,
    daemon: &Daemon,
    pool: &sqlx::PgPool,
    target: i64,
    concurrency: i32,
) -> anyhow::Result<String> {
    let before = daemon.migration_times().await?;
    let started = Instant::now();
    let created = daemon
        .call(
            reqwest::Method::POST,
            "/v1/rollouts",
            Some(json!({
                "target_version": target,
                "canary": args.canary,
                "concurrency": concurrency,
                "max_failures": args.tenants,
            })),
        )
        .await?;
    let id = created["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no rollout id in {created}"))?
        .to_string();
    let path = format!("/v1/rollouts/{id}");
    let view = loop {
        let view = daemon.call(reqwest::Method::GET, &path, None).await?;
        if view["state"] != "running" {
            break view;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(args.timeout),
            "rollout {id} still running after {} s: {view}",
            args.timeout
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let wall = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        view["state"] == "succeeded",
        "rollout {id} ended {}: {}",
        view["state"],
        view["reason"]
    );
    let failed = view["totals"]["failed"].as_i64().unwrap_or(-1);
    let median_ms = profile(pool, &id).await?;
    let after = daemon.migration_times().await?;
    let mean_ms = |i: usize| (after[i].0 - before[i].0) / (after[i].1 - before[i].1).max(1.0) * 1e3;
    eprintln!(
        "  mean of the migrate step {:.1} ms: the tenant database (connect, migrations, \
         bookkeeping) {:.1} ms, the rest (the tenant's row, GetSecretValue) {:.1} ms",
        mean_ms(0),
        mean_ms(1),
        mean_ms(0) - mean_ms(1)
    );
    Ok(format!(
        "tenants={} concurrency={concurrency} wall_s={wall:.2} per_tenant_ms={median_ms:.0} \
         failed={failed}",
        args.tenants
    ))
}

/// Prints where a rollout's time went; returns the median of its jobs' durations (ms).
async fn profile(pool: &sqlx::PgPool, rollout: &str) -> anyhow::Result<f64> {
    let id: uuid::Uuid = rollout.parse()?;
    // Jobs the conductor started in one round share their transaction's created_at.
    let (rounds, first_s, last_s, end_s, span_s): (i64, f64, f64, f64, f64) = sqlx::query_as(
        "SELECT count(DISTINCT j.created_at),
                extract(epoch FROM min(j.created_at) - r.created_at)::float8,
                extract(epoch FROM max(j.created_at) - r.created_at)::float8,
                extract(epoch FROM r.finished_at - max(j.finished_at))::float8,
                extract(epoch FROM r.finished_at - r.created_at)::float8
         FROM rollouts r JOIN rollout_tenants rt ON rt.rollout_id = r.id
              JOIN jobs j ON j.id = rt.job_id
         WHERE r.id = $1
         GROUP BY r.id",
    )
    .bind(id)
    .fetch_one(pool)
    .await?;
    eprintln!(
        "  rollout {span_s:.2} s in the control database; {rounds} conductor rounds started \
         jobs, the first {first_s:.2} s after the create, the last at {last_s:.2} s; the \
         conductor saw the end {end_s:.2} s after the last job"
    );
    let parts: Vec<(String, f64, f64, f64)> = sqlx::query_as(
        "WITH j AS (
             SELECT j.id, j.created_at, j.finished_at FROM jobs j
             JOIN rollout_tenants rt ON rt.job_id = j.id WHERE rt.rollout_id = $1),
         part AS (
             SELECT 'job (start to end)' AS part,
                    (extract(epoch FROM finished_at - created_at) * 1000)::float8 AS ms FROM j
             UNION ALL
             SELECT 'waiting for a slot',
                    (extract(epoch FROM min(h.started_at) - j.created_at) * 1000)::float8
             FROM j JOIN job_history h ON h.job_id = j.id
             WHERE h.started_at IS NOT NULL GROUP BY j.id, j.created_at
             UNION ALL
             SELECT 'step ' || h.step, (extract(epoch FROM h.at - h.started_at) * 1000)::float8
             FROM j JOIN job_history h ON h.job_id = j.id
             WHERE h.started_at IS NOT NULL AND h.outcome IN ('advanced', 'succeeded'))
         SELECT part, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
                percentile_cont(0.95) WITHIN GROUP (ORDER BY ms), max(ms)
         FROM part GROUP BY part ORDER BY part",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    eprintln!("  {:<22} {:>9} {:>9} {:>9}", "ms", "median", "p95", "max");
    let mut median = 0.0;
    for (part, p50, p95, max) in parts {
        eprintln!("  {part:<22} {p50:>9.1} {p95:>9.1} {max:>9.1}");
        if part.starts_with("job") {
            median = p50;
        }
    }
    Ok(median)
}

/// A copy of the example tenant migrations in a directory of its own, to which the
/// rollouts' migrations are added.
struct Migrations(PathBuf);

impl Migrations {
    fn copy(run_id: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("tenantd-rollout-bench-{run_id}"));
        std::fs::create_dir_all(&dir)?;
        let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/tenant-migrations");
        for entry in std::fs::read_dir(examples)? {
            let path = entry?.path();
            std::fs::copy(&path, dir.join(path.file_name().expect("a file")))?;
        }
        Ok(Migrations(dir))
    }

    /// Adds the `n`th new migration (a column and an index on `projects`); its version.
    fn add(&self, n: usize) -> anyhow::Result<i64> {
        let version = 20270101000000 + n as i64;
        std::fs::write(
            self.0.join(format!("{version}_projects_label_{n}.sql")),
            format!(
                "ALTER TABLE projects ADD COLUMN label_{n} text NOT NULL DEFAULT '';\n\
                 CREATE INDEX projects_label_{n} ON projects (label_{n});\n"
            ),
        )?;
        Ok(version)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Migrations {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `tenantd serve` on a free port, with the bench's migrations directory.
struct Daemon {
    child: Child,
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Daemon {
    async fn start(args: &Args, db_url: &str, migrations: &Path) -> anyhow::Result<Self> {
        let token = format!("rollout-{}", uuid::Uuid::new_v4().simple());
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("tenantd-rollout-{port}.log"));
        let mut command = Command::new(daemon::tenantd_binary(args.bin.as_ref())?);
        command
            .arg("serve")
            .envs(daemon::local_stack_settings("bench"))
            .envs([
                ("TENANTD_DATABASE_URL", db_url),
                ("TENANTD_LISTEN", &format!("127.0.0.1:{port}")),
                ("TENANTD_API_TOKENS", &token),
                ("TENANTD_CONCURRENCY", &args.workers.to_string()),
                (
                    "TENANTD_TENANT_MIGRATIONS",
                    migrations.to_str().expect("UTF-8"),
                ),
                // Rollouts only: no reconcile rounds beside them.
                ("TENANTD_RECONCILE_INTERVAL", "0"),
            ]);
        if let Some(round) = &args.round {
            command.env("TENANTD_ROLLOUT_ROUND", round);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()?;
        let mut daemon = Daemon {
            child,
            base,
            token,
            http: reqwest::Client::new(),
        };
        eprintln!(
            "daemon on {}, log {}; worker slots {}, rollout round {}",
            daemon.base,
            log.display(),
            args.workers,
            args.round.as_deref().unwrap_or("the default")
        );
        let waited = Instant::now();
        loop {
            if let Ok(r) = daemon
                .http
                .get(format!("{}/readyz", daemon.base))
                .send()
                .await
                && r.status().is_success()
            {
                return Ok(daemon);
            }
            if let Some(status) = daemon.child.try_wait()? {
                anyhow::bail!("the daemon exited with {status}; see {}", log.display());
            }
            anyhow::ensure!(
                waited.elapsed() < Duration::from_secs(60),
                "daemon not ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One API call; its JSON body, or an error with the status and body.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
        Ok(body)
    }

    /// From the daemon's `/metrics`: (seconds, count) of the migrate steps and of the tenant
    /// database migrations in them.
    async fn migration_times(&self) -> anyhow::Result<[(f64, f64); 2]> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?;
        let sum = |name: &str, labels: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(name) && l.contains(labels))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        let step = r#"kind="migrate",step="migrate""#;
        Ok([
            (
                sum("tenantd_step_duration_seconds_sum{", step),
                sum("tenantd_step_duration_seconds_count{", step),
            ),
            (
                sum("tenantd_tenant_migration_seconds_sum{", ""),
                sum("tenantd_tenant_migration_seconds_count{", ""),
            ),
        ])
    }

    async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}
