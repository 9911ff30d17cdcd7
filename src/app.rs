//! Assembling the daemon from its settings: the pieces `main` runs and the tests reuse.

use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::api::{self, AppState};
use crate::cloud::Cloud;
use crate::config::Settings;
use crate::db;
use crate::worker;
use crate::workflow::{Deprovision, Provision, Registry, Tenancy, poller};

/// Connects to the control database (sized for the worker plus the API) and applies the schema.
pub async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    let size = settings.worker.concurrency as u32 + 8;
    let pool = db::connect(&settings.database_url, size).await?;
    db::migrate(&pool).await?;
    Ok(pool)
}

/// The workflows this build runs: provisioning and deprovisioning tenants, and the demo.
pub fn registry(settings: &Settings, cloud: Cloud) -> Registry {
    registry_for(Tenancy::new(cloud, settings.provisioning.clone()))
}

fn registry_for(tenancy: Tenancy) -> Registry {
    Registry::new()
        .register(crate::workflow::demo::Demo)
        .register(Provision(tenancy.clone()))
        .register(Deprovision(tenancy))
}

/// The workflows, and the instance poller that wakes their wait steps, running until `stop`.
pub fn workflows(
    settings: &Settings,
    cloud: Cloud,
    pool: PgPool,
    stop: CancellationToken,
) -> (Registry, JoinHandle<()>) {
    let tenancy = Tenancy::new(cloud, settings.provisioning.clone());
    let me = settings.worker.id.clone();
    let poller = tokio::spawn(poller::run(pool, tenancy.clone(), me, stop));
    (registry_for(tenancy), poller)
}

/// The AWS clients, from the standard AWS configuration, with this process's RDS rate.
pub async fn cloud(settings: &Settings) -> anyhow::Result<Cloud> {
    Ok(Cloud::from_env().await?.with_rds_rate(settings.rds_rate))
}

/// `tenantd serve`: the HTTP API and the worker in one process, until `shutdown`.
pub async fn serve(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    if settings.api_tokens.is_empty() {
        anyhow::bail!(
            "no API token is configured: set TENANTD_API_TOKENS (comma-separated) or \
             TENANTD_API_TOKENS_FILE (a file with one token a line)"
        );
    }
    let pool = connect(&settings).await?;
    let cloud = cloud(&settings).await?;
    let background = CancellationToken::new();
    let (registry, poller) = workflows(&settings, cloud.clone(), pool.clone(), background.clone());
    let listener = api::bind(settings.listen).await?;
    info!(
        listen = %listener.local_addr()?,
        tokens = settings.api_tokens.len(),
        "HTTP API listening"
    );
    let app = api::router(AppState::new(pool.clone(), &settings, Some(cloud)));
    let http = tokio::spawn(api::serve(listener, app, shutdown.clone()));
    let worker_result = worker::run(pool, registry, settings.worker, shutdown.clone()).await;
    shutdown.cancel();
    background.cancel();
    let _ = poller.await;
    http.await??;
    worker_result?;
    Ok(())
}

/// `tenantd worker`: the worker alone.
pub async fn work(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let pool = connect(&settings).await?;
    let background = CancellationToken::new();
    let (registry, poller) = workflows(
        &settings,
        cloud(&settings).await?,
        pool.clone(),
        background.clone(),
    );
    let result = worker::run(pool, registry, settings.worker, shutdown).await;
    background.cancel();
    let _ = poller.await;
    result?;
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
