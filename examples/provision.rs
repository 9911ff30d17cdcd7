//! End to end on the local stack: provisions one tenant per tier given on the command line
//! (default: starter pro enterprise) with an in-process worker, prints each step as it is
//! recorded, then the wall time of each tenant and the AWS calls made.
//!
//!   eval "$(localstack/up)"
//!   cargo run --example provision -- starter pro enterprise [--deprovision]

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use tenantd::config::Settings;
use tenantd::queue::{self, JobState};
use tenantd::{app, tenants, worker};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let deprovision = args.iter().any(|a| a == "--deprovision");
    let mut tiers: Vec<String> = args.into_iter().filter(|a| !a.starts_with("--")).collect();
    if tiers.is_empty() {
        tiers = vec!["starter".into(), "pro".into(), "enterprise".into()];
    }
    let settings = Settings::from_env()?;
    let pool = app::connect(&settings).await?;
    let cloud = app::cloud(&settings).await?;
    let stop = CancellationToken::new();
    let (registry, aws) = app::workflows(&settings, cloud.clone());
    let maintenance = app::maintenance(&settings, &pool, &aws, &registry).spawn(stop.clone());
    let worker = tokio::spawn(worker::run(
        pool.clone(),
        registry,
        settings.worker.clone(),
        stop.clone(),
    ));

    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let started = Instant::now();
    let mut jobs = Vec::new();
    for tier in &tiers {
        let tenant = format!("demo-{tier}-{suffix}");
        let (_, job, _) = tenants::request_provision(
            &pool,
            &settings.provisioning.tiers,
            &tenant,
            tier,
            settings.max_attempts,
        )
        .await?;
        println!("{tenant}: provisioning on tier {tier} (job {})", job.id);
        jobs.push((tenant, job.id));
    }
    let mut printed = HashSet::new();
    let mut finished: BTreeMap<String, (JobState, Duration)> = BTreeMap::new();
    while finished.len() < jobs.len() {
        for (tenant, job) in &jobs {
            for (i, h) in queue::history(&pool, *job).await?.iter().enumerate() {
                if printed.insert((*job, i)) && h.outcome != "enqueued" {
                    let error = h
                        .error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default();
                    println!(
                        "{:>7.1}s  {tenant:<28} {:<16} {}{error}",
                        started.elapsed().as_secs_f64(),
                        h.step,
                        h.outcome
                    );
                }
            }
            let state = queue::get_job(&pool, *job).await?.map(|j| j.state);
            if let Some(state) = state.filter(|s| !s.is_active()) {
                finished
                    .entry(tenant.clone())
                    .or_insert((state, started.elapsed()));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!();
    for (tenant, (state, took)) in &finished {
        println!(
            "{tenant}: {} after {:.1}s",
            state.as_str(),
            took.as_secs_f64()
        );
    }
    println!("\nAWS calls: {} in all", cloud.total_calls());
    for ((service, operation, result), n) in cloud.calls() {
        println!("  {n:>4}  {service} {operation} {result}");
    }

    if deprovision {
        for (tenant, _) in &jobs {
            let (_, job, _) = tenants::request_deprovision(
                &pool,
                &tenantd::config::Tiers::defaults(),
                tenant,
                tenantd::tenants::Deletion::FORCE_NO_SNAPSHOT,
                settings.max_attempts,
            )
            .await?;
            while queue::get_job(&pool, job.id)
                .await?
                .is_some_and(|j| j.state.is_active())
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            println!("{tenant}: deprovisioned");
        }
    }
    stop.cancel();
    worker.await??;
    maintenance.await?;
    Ok(())
}
