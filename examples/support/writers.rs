//! Writers for the benchmarks: one per tenant, each inserting a numbered row every 50 ms into
//! its own database through its own secret (read again after any failure, as a client would
//! after a switchover), recording which rows got an OK and the longest time without one.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use sqlx::Connection;
use tenantd::cloud::Cloud;
use tenantd::config::TenantDbTls;
use tenantd::tenant_db::{self, DbCredentials};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_millis(50);
const TIMEOUT: Duration = Duration::from_secs(5);

/// What one writer did.
pub struct Written {
    pub secret: String,
    /// The rows that got an OK.
    pub acked: BTreeSet<i64>,
    /// The longest time between two OKs (or from the start to the first).
    pub longest_gap: Duration,
}

/// The writers' table, in a tenant database.
pub async fn create_table(credentials: &DbCredentials) -> anyhow::Result<()> {
    let mut conn = tenant_db::connect(credentials, &TenantDbTls::Disable, TIMEOUT).await?;
    sqlx::query("CREATE TABLE bench_writes (seq bigint PRIMARY KEY, at timestamptz DEFAULT now())")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// Starts one writer per secret; they stop when `stop` is cancelled.
pub fn start(
    cloud: &Cloud,
    secrets: &[String],
    stop: CancellationToken,
) -> JoinHandle<Vec<Written>> {
    let handles: Vec<_> = secrets
        .iter()
        .map(|secret| tokio::spawn(write(cloud.clone(), secret.clone(), stop.clone())))
        .collect();
    tokio::spawn(async move {
        let mut all = Vec::new();
        for h in handles {
            all.push(h.await.expect("a writer"));
        }
        all
    })
}

async fn credentials(cloud: &Cloud, secret: &str) -> Option<DbCredentials> {
    let value = cloud.get_secret_value(secret).await.ok()?;
    DbCredentials::from_json(&value).ok()
}

async fn write(cloud: Cloud, secret: String, stop: CancellationToken) -> Written {
    let mut w = Written {
        secret: secret.clone(),
        acked: BTreeSet::new(),
        longest_gap: Duration::ZERO,
    };
    let mut last_ok = Instant::now();
    let mut conn = None;
    let mut seq = 0i64;
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.is_cancelled() {
        tick.tick().await;
        if conn.is_none() {
            let Some(c) = credentials(&cloud, &secret).await else {
                continue;
            };
            conn = tenant_db::connect(&c, &TenantDbTls::Disable, TIMEOUT)
                .await
                .ok();
        }
        let Some(c) = conn.as_mut() else {
            continue;
        };
        seq += 1;
        let insert = sqlx::query("INSERT INTO bench_writes (seq) VALUES ($1)")
            .bind(seq)
            .execute(c);
        match tokio::time::timeout(TIMEOUT, insert).await {
            Ok(Ok(_)) => {
                w.acked.insert(seq);
                w.longest_gap = w.longest_gap.max(last_ok.elapsed());
                last_ok = Instant::now();
            }
            // Refused, broken or stuck: a new connection through the secret next tick.
            _ => conn = None,
        }
    }
    w.longest_gap = w.longest_gap.max(last_ok.elapsed().saturating_sub(EVERY));
    w
}

/// Rows a writer got an OK for that its (upgraded) database lacks, over all writers.
pub async fn lost(cloud: &Cloud, written: &[Written]) -> anyhow::Result<usize> {
    let counts = futures::stream::iter(written)
        .map(|w| async move {
            let c = credentials(cloud, &w.secret)
                .await
                .ok_or_else(|| anyhow::anyhow!("secret {} unreadable", w.secret))?;
            let mut conn = tenant_db::connect(&c, &TenantDbTls::Disable, TIMEOUT).await?;
            let rows: Vec<i64> = sqlx::query_scalar("SELECT seq FROM bench_writes")
                .fetch_all(&mut conn)
                .await?;
            conn.close().await?;
            let present: BTreeSet<i64> = rows.into_iter().collect();
            anyhow::Ok(w.acked.difference(&present).count())
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    counts.into_iter().sum()
}
