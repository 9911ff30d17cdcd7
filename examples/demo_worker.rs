//! A worker process that runs only the demo workflow of the tests (no AWS): what the queue's
//! crash tests start and kill. Settings as for `tenantd worker` (TENANTD_DATABASE_URL,
//! TENANTD_WORKER_ID, TENANTD_LEASE, TENANTD_CONCURRENCY, ...).
//!
//!     cargo run --example demo_worker

#[path = "../tests/support/demo.rs"]
mod demo;

use tenantd::config::{ConfigError, Env, WorkerSettings};
use tenantd::maintenance::{Election, Maintenance, Rescuer};
use tenantd::workflow::Registry;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = Env(|name| std::env::var(name).ok());
    let settings = WorkerSettings::load(&env).map_err(|e: ConfigError| anyhow::anyhow!("{e}"))?;
    let url = tenantd::config::database_url(&env)?;
    let pool = tenantd::db::connect(&url, settings.concurrency as u32 + 4).await?;
    tenantd::db::migrate(&pool).await?;
    let stop = tenantd::app::shutdown_on_signals();
    let maintenance = Maintenance::new(pool.clone(), settings.id.clone(), Election::of(&settings))
        .with(Rescuer::new(pool.clone(), settings.lease))
        .spawn(stop.clone());
    tenantd::worker::run(pool, Registry::new().register(demo::Demo), settings, stop).await?;
    maintenance.await?;
    Ok(())
}
