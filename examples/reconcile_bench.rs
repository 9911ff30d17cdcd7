//! The reconciler's cost: N ready tenants on the local stack, then reconcile rounds over all of
//! them, counting their AWS calls and timing them.
//!
//!     eval "$(LOCAL_RDS_CREATING_SECS=0 localstack/up)"
//!     cargo run --release --example reconcile_bench -- --tenants 1000
//!
//! Set-up (not measured): a scratch control database on the server `TENANTD_DATABASE_URL`
//! names (created, dropped at the end); N instances created through the RDS API with their
//! tier's settings and tags, their alarms and secrets, and their tenants recorded `ready`.
//! Then, with the daemon's defaults (RDS rate 8/s, a quarter of it for a round): round 1
//! (instances and alarms) and round 2 (instances and secrets) with no drift; then the backup
//! retention of 5 % of the instances is changed behind tenantd's back, and round 3 finds it and
//! enqueues repairs, which a worker runs. One line per round; the last is
//! `tenants=N round_s=S rds_calls=R cloudwatch_calls=C secrets_calls=K repaired=M`.
//! The instances stay in LocalStack (restart it to drop them).

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/scratch.rs"]
mod scratch;

use scratch::with_scratch_db;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use tenantd::cloud::Cloud;
use tenantd::cloud::alarms::instance_alarms;
use tenantd::config::{Env, Settings};
use tenantd::maintenance::Reconciler;
use tenantd::maintenance::reconciler::RoundReport;
use tenantd::tenant_db::{DbCredentials, generate_password};

#[derive(Parser)]
struct Args {
    /// Ready tenants to reconcile.
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    /// Their tier.
    #[arg(long, default_value = "starter")]
    tier: String,
    /// Share of the tenants given drift before the last round, in percent.
    #[arg(long, default_value_t = 5)]
    drift_percent: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let given = &args;
    with_scratch_db(
        "tenantd_reconcile",
        |url| async move { run(given, &url).await },
    )
    .await
}

async fn run(args: &Args, url: &str) -> anyhow::Result<()> {
    let run_id = format!("rb{}", std::process::id() % 100_000);
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    vars.insert("TENANTD_DATABASE_URL".into(), url.into());
    // The bench runs its rounds itself.
    vars.insert("TENANTD_RECONCILE_INTERVAL".into(), "0".into());
    vars.insert("TENANTD_ENVIRONMENT".into(), "bench".into());
    let settings = Settings::load(&Env(move |k| vars.get(k).cloned()))?;
    let pool = tenantd::db::connect(&settings.database_url, 8).await?;
    tenantd::db::migrate(&pool).await?;
    let cloud = Cloud::from_env(settings.aws_timeouts)
        .await?
        .with_rds_rate(settings.rds_rate);
    let (registry, aws) = tenantd::app::workflows(&settings, cloud.clone());
    let p = &settings.provisioning;
    let (tier_name, tier) = aws.tier(&args.tier).map_err(|e| anyhow::anyhow!("{e}"))?;
    let tier = tier.clone();
    // The tenants are recorded at the newest tenant schema, as a provisioned tenant is (else
    // every one of them is behind: schema drift in every round).
    let schema_version = tenantd::tenant_db::catalog(&p.tenant_migrations)
        .await?
        .iter()
        .map(|m| m.version)
        .max();

    // Set-up: instances, alarms, secrets and tenant rows, 16 at a time.
    let setup = Instant::now();
    let tenants: Vec<String> = (0..args.tenants)
        .map(|i| format!("{run_id}-{i:05}"))
        .collect();
    let setup_cloud = Cloud::from_env(settings.aws_timeouts).await?;
    let created = futures::stream::iter(tenants.iter().cloned())
        .map(|tenant| {
            let cloud = setup_cloud.clone();
            let aws = aws.clone();
            let tier = tier.clone();
            let pool = pool.clone();
            async move {
                let p = &aws.settings;
                let id = p.instance_id(&tenant);
                let spec = fleet::instance_spec(p, &tier, &tenant, aws.tags(&tenant, tier_name));
                let password = generate_password();
                cloud.create_db_instance(&spec, &password).await?;
                for alarm in
                    instance_alarms(&id, p.alarm_topic_arn.as_deref(), tier.low_storage_bytes())
                {
                    cloud.put_metric_alarm(&alarm).await?;
                }
                let credentials = DbCredentials {
                    engine: "postgres".into(),
                    host: "pending".into(),
                    port: 5432,
                    username: p.master_username.clone(),
                    password,
                    dbname: p.db_name.clone(),
                    db_instance_identifier: id.clone(),
                };
                let arn = cloud
                    .create_secret(
                        &p.secret_name(&tenant),
                        &credentials.to_json(),
                        &aws.tags(&tenant, tier_name),
                        "reconcile bench",
                    )
                    .await?;
                sqlx::query(
                    "INSERT INTO tenants (id, tier, status, db_instance_id, endpoint_host,
                         endpoint_port, secret_arn, storage_gib, schema_version)
                     VALUES ($1, $2, 'ready', $3, 'pending', 5432, $4, $5, $6)",
                )
                .bind(&tenant)
                .bind(tier_name)
                .bind(&id)
                .bind(&arn)
                .bind(tier.storage_gib)
                .bind(schema_version)
                .execute(&pool)
                .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for r in created {
        r?;
    }
    // Until every instance is available.
    let ids: Vec<String> = tenants.iter().map(|t| p.instance_id(t)).collect();
    loop {
        let found = setup_cloud.describe_db_instances_batch(&ids).await?;
        let available = found.iter().filter(|i| i.status == "available").count();
        if available == ids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!(
        "set-up: {} tenants in {:.1} s",
        args.tenants,
        setup.elapsed().as_secs_f64()
    );

    let reconciler = Reconciler::new(
        pool.clone(),
        aws.clone(),
        settings.rds_rate,
        settings.max_attempts,
    );
    let line = |r: &RoundReport, took: Duration, repaired: usize| {
        format!(
            "tenants={} round_s={:.2} rds_calls={} cloudwatch_calls={} secrets_calls={} \
             repaired={repaired}",
            r.tenants,
            took.as_secs_f64(),
            r.rds_calls,
            r.cloudwatch_calls,
            r.secrets_calls
        )
    };
    for round in 1..=2 {
        let started = Instant::now();
        let report = reconciler
            .round()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let took = started.elapsed();
        eprintln!(
            "round {round} (no drift): with_drift={} repairs={}",
            report.with_drift, report.repairs
        );
        println!("{}", line(&report, took, 0));
    }

    // Drift in a share of them, behind tenantd's back.
    let drifted: Vec<&String> = ids
        .iter()
        .step_by(100 / args.drift_percent.clamp(1, 100))
        .collect();
    for id in &drifted {
        let change = tenantd::cloud::rds::InstanceChange {
            backup_retention_days: Some(1),
            ..Default::default()
        };
        setup_cloud.modify_db_instance(id, &change).await?;
    }
    // Until the modifications show (the local RDS reports `modifying` for a while).
    loop {
        let found = setup_cloud.describe_db_instances_batch(&ids).await?;
        if found.iter().all(|i| i.status == "available") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let started = Instant::now();
    let report = reconciler
        .round()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let took = started.elapsed();
    // The repairs, run by a worker.
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(tenantd::worker::run(
        pool.clone(),
        registry,
        settings.worker.clone(),
        stop.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(600);
    let repaired = loop {
        let (done, active): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state = 'succeeded'),
                    count(*) FILTER (WHERE state IN ('queued', 'running', 'waiting'))
             FROM jobs WHERE kind = 'reconcile'",
        )
        .fetch_one(&pool)
        .await?;
        if active == 0 || Instant::now() > deadline {
            break done as usize;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    stop.cancel();
    worker.await??;
    eprintln!(
        "round 3 ({} drifted): with_drift={} repairs={}",
        drifted.len(),
        report.with_drift,
        report.repairs
    );
    println!("{}", line(&report, took, repaired));
    Ok(())
}
