//! Assembling the daemon from its settings: the pieces `main` runs and the tests reuse. The
//! HTTP API, the worker and the maintenance services run side by side until one shutdown
//! token is cancelled.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::api::{self, AppState};
use crate::cloud::Cloud;
use crate::cloud::rds::EngineVersion;
use crate::config::{ConfigError, Settings, Tiers};
use crate::db;
use crate::maintenance::{
    AuditPruner, Conductor, Election, EventPruner, InstancePoller, Maintenance, PoolKeeper, Pruner,
    Reconciler, Rescuer, SnapshotCleaner,
};
use crate::ui;
use crate::worker;
use crate::workflow::fleet::{CaCertificate, EngineMinor, Maintenance as MaintenanceActions};
use crate::workflow::{
    Attach, AwsContext, Deprovision, EngineUpgrade, FleetChange, Migrate, Provision, Reconcile,
    Registry, RetireInstance, StandbyBuild,
};

/// Connects to the control database (sized for the worker plus the API) and applies the schema.
pub async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    let size = settings.worker.concurrency as u32 + 8;
    let pool = db::connect(&settings.database_url, size).await?;
    db::migrate(&pool).await?;
    Ok(pool)
}

/// The operations endpoints' own pool: two connections, never the worker's.
pub fn ops_pool(settings: &Settings) -> anyhow::Result<PgPool> {
    Ok(db::connect_lazy(
        &settings.database_url,
        2,
        Duration::from_secs(2),
    )?)
}

/// The AWS clients, from the standard AWS configuration, with this process's RDS rate.
pub async fn cloud(settings: &Settings) -> anyhow::Result<Cloud> {
    Ok(Cloud::from_env(settings.aws_timeouts)
        .await?
        .with_rds_rate(settings.rds_rate))
}

/// Stops the start when RDS does not offer `TENANTD_ENGINE_VERSION` for new instances (a
/// minor version RDS retired, a typo), instead of failing and rolling back every tenant.
pub async fn check_engine_version(cloud: &Cloud, version: &str) -> anyhow::Result<()> {
    let offered = cloud
        .describe_db_engine_versions(version)
        .await
        .map_err(|e| {
            anyhow::anyhow!("cannot check TENANTD_ENGINE_VERSION={version} with RDS: {e}")
        })?;
    let usable: Vec<&EngineVersion> = offered.iter().filter(|v| v.status == "available").collect();
    let ok = usable
        .iter()
        .any(|v| v.version == version || v.major == version);
    if ok {
        let picked = usable
            .iter()
            .find(|v| v.version == version || v.default)
            .map(|v| v.version.as_str())
            .unwrap_or(version);
        info!(
            engine_version = version,
            resolves_to = picked,
            "engine version offered by RDS"
        );
        return Ok(());
    }
    let problem = if offered.is_empty() {
        format!("RDS offers no PostgreSQL {version:?} in this region")
    } else {
        let retired: Vec<&str> = offered.iter().map(|v| v.version.as_str()).collect();
        format!(
            "RDS no longer creates PostgreSQL {version} ({}); use a major version such as 16",
            retired.join(", ")
        )
    };
    Err(ConfigError::Invalid {
        name: "TENANTD_ENGINE_VERSION",
        problem,
    }
    .into())
}

/// Stops the start when a tier's `minimum_engine_version` is not a version RDS offers (its
/// repairs would all be refused), naming the tier. One look per distinct minimum.
pub async fn check_tier_minimums(cloud: &Cloud, tiers: &Tiers) -> anyhow::Result<()> {
    let mut checked = std::collections::BTreeSet::new();
    for (name, tier) in &tiers.0 {
        let Some(minimum) = tier.minimum_engine_version.as_deref() else {
            continue;
        };
        if !checked.insert(minimum) {
            continue;
        }
        let offered = cloud
            .describe_db_engine_versions(minimum)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot check tier {name}'s minimum_engine_version {minimum} with RDS: {e}"
                )
            })?;
        if !offered
            .iter()
            .any(|v| v.version == minimum && v.status == "available")
        {
            return Err(ConfigError::Invalid {
                name: "TENANTD_TIERS",
                problem: format!(
                    "tier {name}: minimum_engine_version: RDS offers no PostgreSQL {minimum} to upgrade to"
                ),
            }
            .into());
        }
    }
    Ok(())
}

/// The workflows this build runs: provisioning, deprovisioning, reconciling and migrating
/// tenants, and the in-place fleet changes (minor version, CA, maintenance). The returned
/// [`AwsContext`] is the one their steps share (and the instance poller must share).
pub fn workflows(settings: &Settings, cloud: Cloud) -> (Registry, AwsContext) {
    let aws = AwsContext::new(cloud, settings.provisioning.clone());
    let registry = Registry::new()
        .register(Provision(aws.clone()))
        .register(Deprovision(aws.clone()))
        .register(Reconcile(aws.clone()))
        .register(Migrate(aws.clone()))
        .register(StandbyBuild(aws.clone()))
        .register(Attach(aws.clone()))
        .register(EngineUpgrade(aws.clone()))
        .register(RetireInstance(aws.clone()))
        .register(FleetChange::<EngineMinor>::new(aws.clone()))
        .register(FleetChange::<CaCertificate>::new(aws.clone()))
        .register(FleetChange::<MaintenanceActions>::new(aws.clone()));
    (registry, aws)
}

/// The maintenance services: the instance poller for the workflows' waits, the lease
/// rescuer, the cleaner of expired final snapshots, the pruners of old jobs and of old audit
/// events, the reconciler, the rollout conductor and the warm pool's keeper.
pub fn maintenance(
    settings: &Settings,
    pool: &PgPool,
    aws: &AwsContext,
    registry: &Registry,
) -> Maintenance {
    let me = settings.worker.id.clone();
    Maintenance::new(pool.clone(), me.clone(), Election::of(&settings.worker))
        .with(InstancePoller::new(pool.clone(), aws.clone(), registry, me))
        .with(Rescuer::new(pool.clone(), settings.worker.lease))
        .with(SnapshotCleaner::new(
            pool.clone(),
            aws.cloud.clone(),
            settings.provisioning.environment.clone(),
            settings.provisioning.final_snapshot_retention,
        ))
        .with(Pruner::new(pool.clone(), settings.job_retention))
        .with(AuditPruner::new(pool.clone(), settings.audit_retention))
        .with(EventPruner::new(pool.clone(), settings.event_retention))
        .with(Reconciler::new(
            pool.clone(),
            aws.clone(),
            settings.rds_rate,
            settings.max_attempts,
        ))
        .with(Conductor::new(
            pool.clone(),
            settings.provisioning.rollout_round,
            settings.max_attempts,
        ))
        .with(PoolKeeper::new(
            pool.clone(),
            aws.clone(),
            settings.rds_rate,
            settings.max_attempts,
        ))
}

/// `tenantd serve`: the HTTP API with the console, the worker and maintenance in one process, until `shutdown`.
pub async fn serve(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = api::bind(settings.listen, "TENANTD_LISTEN").await?;
    let pool = connect(&settings).await?;
    let offers = crate::rollouts::Offers::new(cloud(&settings).await?);
    let state = AppState::new(
        pool.clone(),
        ops_pool(&settings)?,
        &settings,
        offers,
        shutdown.clone(),
    );
    let console = ui::router(ui::UiState::new(state.clone(), &settings));
    let app = api::admitted(api::router(state).merge(console), &settings.http);
    let names: Vec<String> = settings
        .api_tokens
        .iter()
        .map(|t| format!("{}={}", t.name, t.role))
        .collect();
    info!(
        listen = %listener.local_addr()?,
        tokens = %names.join(","),
        "HTTP API and console (/ui/) listening"
    );
    run(settings, pool, listener, app, shutdown).await
}

/// `tenantd worker`: the worker and maintenance, with `/healthz`, `/readyz` and `/metrics` on
/// the metrics address.
pub async fn work(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = api::bind(settings.metrics_listen, "TENANTD_METRICS_LISTEN").await?;
    let pool = connect(&settings).await?;
    let offers = crate::rollouts::Offers::none();
    let state = AppState::new(
        pool.clone(),
        ops_pool(&settings)?,
        &settings,
        offers,
        shutdown.clone(),
    );
    let app = api::admitted(api::ops_router(state), &settings.http);
    info!(listen = %listener.local_addr()?, "health and metrics listening");
    run(settings, pool, listener, app, shutdown).await
}

/// Runs `app` on `listener`, the worker and the maintenance services until `shutdown`; then
/// the worker drains, the server finishes its requests, and maintenance stops.
async fn run(
    settings: Settings,
    pool: PgPool,
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let cloud = cloud(&settings).await?;
    check_engine_version(&cloud, &settings.provisioning.engine_version).await?;
    check_tier_minimums(&cloud, &settings.provisioning.tiers).await?;
    let (registry, aws) = workflows(&settings, cloud);
    let background = CancellationToken::new();
    let maintenance = maintenance(&settings, &pool, &aws, &registry).spawn(background.clone());
    let limits = settings.http.clone();
    let stop_serving = shutdown.clone();
    let http = tokio::spawn(async move { api::serve(listener, app, &limits, stop_serving).await });
    let worker_result = worker::run(pool, registry, settings.worker, shutdown.clone()).await;
    shutdown.cancel();
    background.cancel();
    let _ = maintenance.await;
    http.await??;
    worker_result?;
    Ok(())
}

/// `tenantd migrate`: applies the control schema; needs only the database URL.
pub async fn migrate(database_url: &secrecy::SecretString) -> anyhow::Result<()> {
    let pool = db::connect(database_url, 2).await?;
    db::migrate(&pool).await?;
    info!("control schema is up to date");
    Ok(())
}

/// A token cancelled by the first SIGINT or SIGTERM.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        info!(signal = name, "shutdown requested");
        trigger.cancel();
    });
    token
}
