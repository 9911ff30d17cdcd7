//! A scratch control database for the benchmarks, on the server `TENANTD_DATABASE_URL` names:
//! created for one run and dropped afterwards, whatever the run returned.

use std::future::Future;
use std::str::FromStr;

use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

/// Runs `run` with the URL of a new database `<prefix>_<pid>`, then drops that database.
pub async fn with_scratch_db<T, F, Fut>(prefix: &str, run: F) -> anyhow::Result<T>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let url = std::env::var("TENANTD_DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("set TENANTD_DATABASE_URL (eval \"$(localstack/up)\")"))?;
    let server = PgConnectOptions::from_str(&url)?;
    let scratch = format!("{prefix}_{}", std::process::id());
    let mut admin = server.clone().connect().await?;
    sqlx::query(&format!("CREATE DATABASE {scratch}"))
        .execute(&mut admin)
        .await?;
    let scratch_url = server.clone().database(&scratch).to_url_lossy().to_string();
    let result = run(scratch_url).await;
    sqlx::query(&format!("DROP DATABASE {scratch} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    result
}
