//! Shared by the integration tests: a fresh control database per test (a copy of the schema's
//! template, `schema`), worker settings sized for
//! tests, a worker with its maintenance, and waiting for a condition with a deadline. Its
//! modules: `app` (the API on a real port), `stack` (the local stack, tenantd's settings for it),
//! `fleet` (real daemon processes), `proxy` (a fault-injecting AWS proxy), `db_proxy` (a TCP
//! proxy to the control database that can be partitioned), `rds` (the local RDS
//! through the SDK), `demo` (a workflow without AWS), `wait` (polling with a deadline). Each test
//! binary (`tests/*/main.rs`) compiles it once for all its modules.
#![allow(dead_code)]

pub mod app;
pub mod browser;
pub mod db_proxy;
pub mod demo;
pub mod fleet;
pub mod iam;
pub mod proxy;
pub mod rds;
pub mod rollout_api;
pub mod schema;
pub mod stack;
pub mod wait;

pub use wait::wait_for;

use std::time::Duration;

use secrecy::SecretString;
use sqlx::{Connection, PgConnection, PgPool};
use tenantd::config::{RetryPolicy, WorkerSettings};
use tenantd::maintenance::{Election, Maintenance, Rescuer};
use tenantd::workflow::Registry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The control PostgreSQL of the local stack (`eval "$(localstack/up)"`).
pub fn control_url() -> String {
    std::env::var("TENANTD_DATABASE_URL").expect(
        "TENANTD_DATABASE_URL is not set: run the tests through localstack/test, \
         which starts the control PostgreSQL and LocalStack",
    )
}

/// A database of its own for one test, with the control schema applied.
pub struct TestDb {
    pub pool: PgPool,
    pub url: String,
    pub name: String,
}

/// A copy of the control schema's template (`schema.rs`), migrated as `tenantd::db::migrate`
/// leaves a new database.
pub async fn fresh_db() -> TestDb {
    let mut admin = PgConnection::connect(&control_url())
        .await
        .expect("connect to the control PostgreSQL");
    let template = schema::template(&mut admin, &control_url()).await;
    new_db(admin, &format!(" TEMPLATE {template}")).await
}

/// A database of its own for one test, without the control schema.
pub async fn empty_db() -> TestDb {
    let admin = PgConnection::connect(&control_url())
        .await
        .expect("connect to the control PostgreSQL");
    new_db(admin, "").await
}

async fn new_db(mut admin: PgConnection, template: &str) -> TestDb {
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}{template}"))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    admin.close().await.expect("close the admin connection");
    let url = with_database(&control_url(), &name);
    let pool = tenantd::db::connect(&SecretString::from(url.clone()), 40)
        .await
        .expect("connect to the test database");
    TestDb { pool, url, name }
}

/// `url` with its database path replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    format!("{}/{db}{query}", &base[..host_end])
}

pub fn worker_settings(id: &str) -> WorkerSettings {
    WorkerSettings {
        id: id.to_string(),
        concurrency: 8,
        prefetch: 8,
        lease: Duration::from_secs(5),
        lease_margin: Duration::from_secs(1),
        leader_ping_timeout: Duration::from_millis(2500),
        poll_interval: Duration::from_millis(200),
        shutdown_timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            base: Duration::from_millis(50),
            max: Duration::from_secs(1),
        },
    }
}

/// Inserts a tenant row directly (the queue's tests need tenants to hang jobs on).
pub async fn insert_tenant(pool: &PgPool, id: &str) {
    sqlx::query("INSERT INTO tenants (id, tier, status) VALUES ($1, 'starter', 'provisioning')")
        .bind(id)
        .execute(pool)
        .await
        .expect("insert tenant");
}

/// Runs a worker of `registry` in this process, with the lease rescuer of its maintenance, until
/// the returned token is cancelled; the handle ends when both have stopped.
pub fn spawn_worker(
    pool: &PgPool,
    registry: Registry,
    settings: WorkerSettings,
) -> (CancellationToken, JoinHandle<()>) {
    let stop = CancellationToken::new();
    let maintenance = Maintenance::new(pool.clone(), settings.id.clone(), Election::of(&settings))
        .with(Rescuer::new(pool.clone(), settings.lease))
        .spawn(stop.clone());
    let worker = tenantd::worker::run(pool.clone(), registry, settings, stop.clone());
    let handle = tokio::spawn(async move {
        worker.await.expect("worker");
        maintenance.await.expect("maintenance");
    });
    (stop, handle)
}

/// The demo worker process (`examples/demo_worker.rs`, built with the tests), for the tests
/// that kill workers.
pub fn demo_worker_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> -> target/<profile>/examples/demo_worker
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a test binary lives in <target>/<profile>/deps");
    let path = profile_dir.join("examples").join("demo_worker");
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build --example demo_worker` (cargo test and \
         cargo nextest build the examples with the tests)",
        path.display()
    );
    path
}
