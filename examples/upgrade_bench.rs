//! A fleet's major upgrade under load: N tenants on the local stack (16), each with a writer
//! that inserts a row every 50 ms into its own database through its own secret during the
//! whole run, and one `engine_major` rollout to 17 through `tenantd serve`'s HTTP API.
//!
//!     eval "$(LOCAL_RDS_CREATING_SECS=0 localstack/up)"
//!     cargo build --release --bin tenantd
//!     cargo run --release --example upgrade_bench -- --tenants 100 --concurrency 16
//!
//! Set-up (not measured), in a scratch control database: N instances created through the RDS
//! API with their tier's settings and tags, each with its secret, its database migrated to the
//! example tenant migrations plus a `bench_writes` table, and the tenants recorded `ready`.
//! Then the writers start, the daemon starts, and `POST /v1/rollouts {"kind": "engine_major",
//! "target_version": "17", "canary": 1, "concurrency": C}` is followed until it ends. The
//! writers go on for two more seconds, stop, and each tenant's upgraded database is read back
//! through its secret. One line:
//!
//!     tenants=N concurrency=C wall_s=W write_gap_p50_ms=A write_gap_max_ms=B rows_lost=L
//!
//! `wall_s`: from the POST until the API says the rollout ended; write gap: per tenant, the
//! longest time its writer went without an OK (p50 and max over tenants); `rows_lost`: rows a
//! writer got an OK for that the upgraded database lacks. The run fails unless every tenant
//! runs 17 (its record and its instance) and one old instance per tenant is kept. At the end
//! the instances (old ones too) and secrets are deleted.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/scratch.rs"]
mod scratch;
#[path = "support/writers.rs"]
mod writers;

use std::collections::HashMap;
use std::path::PathBuf;
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
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    /// Tenants in the fleet, each with its writer.
    #[arg(long, default_value_t = 100)]
    tenants: usize,
    /// The rollout's concurrency.
    #[arg(long, default_value_t = 16)]
    concurrency: i32,
    /// The major the fleet moves to.
    #[arg(long, default_value = "17")]
    target: String,
    /// Give up on the rollout after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    /// The tenantd binary (default: the one built beside this example).
    #[arg(long)]
    bin: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let given = &args;
    with_scratch_db(
        "tenantd_upgrade",
        |url| async move { run(given, &url).await },
    )
    .await
}

async fn run(args: &Args, url: &str) -> anyhow::Result<()> {
    let run_id = format!("ug{}", std::process::id() % 100_000);
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    vars.extend(
        daemon::local_stack_settings("bench")
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    vars.insert("TENANTD_DATABASE_URL".into(), url.into());
    let settings = Settings::load(&Env(move |k| vars.get(k).cloned()))?;
    let pool = tenantd::db::connect(&settings.database_url, 4).await?;
    tenantd::db::migrate(&pool).await?;
    let cloud = Cloud::from_env(settings.aws_timeouts).await?;
    let tenants: Vec<String> = (0..args.tenants)
        .map(|i| format!("{run_id}-{i:04}"))
        .collect();
    let result = async {
        let started = Instant::now();
        set_up(&settings, &cloud, &pool, &tenants).await?;
        eprintln!(
            "set-up: {} tenants on {} in {:.1} s",
            tenants.len(),
            settings.provisioning.engine_version,
            started.elapsed().as_secs_f64()
        );
        let stop = CancellationToken::new();
        let secrets: Vec<String> = tenants
            .iter()
            .map(|t| settings.provisioning.secret_name(t))
            .collect();
        let writing = writers::start(&cloud, &secrets, stop.clone());
        let mut daemon = Daemon::start(args, url).await?;
        let rolled = rollout(args, &daemon).await;
        daemon.stop().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.cancel();
        let written = writing.await?;
        let wall = rolled?;
        let lost = writers::lost(&cloud, &written).await?;
        check_fleet(args, &settings, &cloud, &pool, &tenants).await?;
        let mut gaps: Vec<u128> = written.iter().map(|w| w.longest_gap.as_millis()).collect();
        gaps.sort_unstable();
        println!(
            "tenants={} concurrency={} wall_s={wall:.1} write_gap_p50_ms={} \
             write_gap_max_ms={} rows_lost={lost}",
            tenants.len(),
            args.concurrency,
            gaps[(gaps.len() - 1) / 2],
            gaps.last().copied().unwrap_or(0),
        );
        anyhow::Ok(())
    }
    .await;
    pool.close().await;
    tear_down(&settings, &cloud, &tenants).await;
    result
}

/// The fleet on 16: instances, secrets, migrated databases with the writers' table, tenants
/// `ready` with the version their instance runs.
async fn set_up(
    settings: &Settings,
    cloud: &Cloud,
    pool: &sqlx::PgPool,
    tenants: &[String],
) -> anyhow::Result<()> {
    let p = &settings.provisioning;
    let tier = p.tiers.get("starter").expect("the starter tier").clone();
    let (_, aws) = tenantd::app::workflows(settings, cloud.clone());
    let passwords: HashMap<&String, _> = tenants.iter().map(|t| (t, generate_password())).collect();
    let created = futures::stream::iter(tenants)
        .map(|tenant| {
            let spec = fleet::instance_spec(p, &tier, tenant, aws.tags(tenant, "starter"));
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
    let instances: HashMap<String, (String, i32, String)> = loop {
        let found = cloud.describe_db_instances_batch(&ids).await?;
        let available: HashMap<_, _> = found
            .into_iter()
            .filter(|i| i.status == "available")
            .filter_map(|i| {
                let (host, port) = i.endpoint?;
                Some((i.identifier, (host, port, i.engine_version?)))
            })
            .collect();
        if available.len() == ids.len() {
            break available;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let recorded = futures::stream::iter(tenants)
        .map(|tenant| {
            let id = p.instance_id(tenant);
            let (host, port, version) = instances[&id].clone();
            let credentials = DbCredentials {
                engine: "postgres".into(),
                host,
                port: u16::try_from(port).expect("a TCP port"),
                username: p.master_username.clone(),
                password: passwords[tenant].clone(),
                dbname: p.db_name.clone(),
                db_instance_identifier: id.clone(),
            };
            let tags = aws.tags(tenant, "starter");
            let storage = tier.storage_gib;
            async move {
                let arn = cloud
                    .create_secret(
                        &p.secret_name(tenant),
                        &credentials.to_json(),
                        &tags,
                        "upgrade bench",
                    )
                    .await?;
                let migrated = tenant_db::migrate(
                    &credentials,
                    &TenantDbTls::Disable,
                    Duration::from_secs(30),
                    &p.tenant_migrations,
                    None,
                    p.migration_limits,
                )
                .await?;
                writers::create_table(&credentials).await?;
                sqlx::query(
                    "INSERT INTO tenants (id, tier, status, db_instance_id, endpoint_host,
                         endpoint_port, secret_arn, storage_gib, schema_version,
                         applied_migrations, engine_version)
                     VALUES ($1, 'starter', 'ready', $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(tenant)
                .bind(&id)
                .bind(&credentials.host)
                .bind(i32::from(credentials.port))
                .bind(&arn)
                .bind(storage)
                .bind(migrated.version)
                .bind(sqlx::types::Json(&migrated.applied))
                .bind(&version)
                .execute(pool)
                .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    recorded.into_iter().collect()
}

/// The rollout, created through the API and followed until it ends; its wall time (s).
async fn rollout(args: &Args, daemon: &Daemon) -> anyhow::Result<f64> {
    let started = Instant::now();
    let created = daemon
        .call(
            reqwest::Method::POST,
            "/v1/rollouts",
            Some(json!({
                "kind": "engine_major",
                "target_version": args.target,
                "canary": 1,
                "concurrency": args.concurrency,
                "max_failures": args.tenants,
            })),
        )
        .await?;
    let id = created["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no rollout id in {created}"))?
        .to_string();
    let path = format!("/v1/rollouts/{id}");
    let mut shown = Instant::now();
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
        if shown.elapsed() > Duration::from_secs(30) {
            eprintln!(
                "  {:.0} s: {}",
                started.elapsed().as_secs_f64(),
                view["totals"]
            );
            shown = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let wall = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        view["state"] == "succeeded",
        "rollout {id} ended {}: {} {}",
        view["state"],
        view["reason"],
        view["totals"]
    );
    Ok(wall)
}

/// Every tenant on the target (its record and its instance), and one old instance kept each.
async fn check_fleet(
    args: &Args,
    settings: &Settings,
    cloud: &Cloud,
    pool: &sqlx::PgPool,
    tenants: &[String],
) -> anyhow::Result<()> {
    let on_target: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tenants WHERE split_part(engine_version, '.', 1) = $1
             AND engine_major = $1 AND status = 'ready'",
    )
    .bind(&args.target)
    .fetch_one(pool)
    .await?;
    anyhow::ensure!(
        on_target as usize == tenants.len(),
        "{on_target} of {} tenants recorded on {}",
        tenants.len(),
        args.target
    );
    let p = &settings.provisioning;
    let ids: Vec<String> = tenants.iter().map(|t| p.instance_id(t)).collect();
    let old: Vec<String> = ids.iter().map(|i| format!("{i}-old1")).collect();
    let running = cloud.describe_db_instances_batch(&ids).await?;
    let wanted = format!("{}.", args.target);
    let upgraded = running
        .iter()
        .filter(|i| {
            i.engine_version
                .as_deref()
                .is_some_and(|v| v.starts_with(&wanted))
        })
        .count();
    let kept = cloud.describe_db_instances_batch(&old).await?.len();
    eprintln!(
        "  {upgraded} of {} instances run {}; {kept} old instances kept",
        ids.len(),
        args.target
    );
    anyhow::ensure!(
        upgraded == ids.len(),
        "not every instance runs {}",
        args.target
    );
    anyhow::ensure!(
        kept == ids.len(),
        "{kept} old instances kept, not one per tenant"
    );
    Ok(())
}

/// Deletes the fleet's instances, old ones too (no final snapshot), and secrets.
async fn tear_down(settings: &Settings, cloud: &Cloud, tenants: &[String]) {
    let p = &settings.provisioning;
    futures::stream::iter(tenants)
        .for_each_concurrent(16, |tenant| async move {
            let id = p.instance_id(tenant);
            for instance in [format!("{id}-old1"), id] {
                let _ = cloud.delete_db_instance(&instance, None, false).await;
            }
            let _ = cloud
                .delete_secret(&p.secret_name(tenant), Recovery::None)
                .await;
        })
        .await;
}

/// `tenantd serve` on a free port, old instances kept (the default 7 days).
struct Daemon {
    child: Child,
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Daemon {
    async fn start(args: &Args, db_url: &str) -> anyhow::Result<Self> {
        let token = format!("upgrade-{}", uuid::Uuid::new_v4().simple());
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("tenantd-upgrade-{port}.log"));
        let child = Command::new(daemon::tenantd_binary(args.bin.as_ref())?)
            .arg("serve")
            .envs(daemon::local_stack_settings("bench"))
            .envs([
                ("TENANTD_DATABASE_URL", db_url),
                ("TENANTD_LISTEN", &format!("127.0.0.1:{port}")),
                ("TENANTD_API_TOKENS", &token),
                ("TENANTD_CONCURRENCY", &args.concurrency.max(1).to_string()),
                ("TENANTD_RECONCILE_INTERVAL", "0"),
            ])
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
        eprintln!("daemon on {}, log {}", daemon.base, log.display());
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

    async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}
