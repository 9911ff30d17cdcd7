//! Helpers for tests that run against the local stack (`localstack/up`).
//!
//! The stack is found through environment variables that `localstack/up` prints; a test that
//! needs the stack and does not find them panics (it never skips silently).

#![allow(dead_code)]

use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_rds::Client;
use aws_sdk_rds::config::http::HttpResponse;
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};

/// Reads a variable that `localstack/up` exports, or panics saying how to run the tests.
pub fn stack_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: this test needs the local stack. Run the tests with \
             `localstack/test` (e.g. `localstack/test --test local_rds`), or `eval \"$(localstack/up)\"` \
             first."
        ),
    }
}

/// Seconds an instance stays `creating` (LOCAL_RDS_CREATING_SECS of the running stack).
pub fn creating_secs() -> u64 {
    stack_env("LOCAL_RDS_CREATING_SECS")
        .parse()
        .expect("LOCAL_RDS_CREATING_SECS is a number")
}

/// An RDS client configured from the environment, as tenantd configures its own.
pub async fn rds() -> Client {
    stack_env("AWS_ENDPOINT_URL");
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(tenantd::cloud::http_client())
        .load()
        .await;
    Client::new(&config)
}

/// An RDS client that does not retry, so a test sees each injected fault itself.
pub async fn rds_no_retry() -> Client {
    stack_env("AWS_ENDPOINT_URL");
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(tenantd::cloud::http_client())
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    Client::new(&config)
}

/// Static test credentials whose access key id is `account`: LocalStack takes a 12-digit access
/// key id as the account id, so a test can keep to an account of its own (quotas are per account).
pub async fn config_for_account(account: &str) -> aws_config::SdkConfig {
    stack_env("AWS_ENDPOINT_URL");
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(tenantd::cloud::http_client())
        .credentials_provider(aws_sdk_rds::config::Credentials::new(
            account, "test", None, None, "test",
        ))
        .load()
        .await
}

/// An RDS client acting in `account` (12 digits).
pub async fn rds_in_account(account: &str) -> Client {
    Client::new(&config_for_account(account).await)
}

/// A Secrets Manager client acting in `account` (12 digits).
pub async fn secrets_in_account(account: &str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&config_for_account(account).await)
}

/// A 12-digit account id of this test's own (never the shared default 000000000000).
pub fn unique_account() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:012}", 100_000_000_000 + (nanos % 800_000_000_000) as u64)
}

/// A fresh, valid DB instance identifier (tests run in parallel in separate processes).
pub fn unique_id(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("t-{prefix}-{}-{nanos}", std::process::id())
}

pub const MASTER_USER: &str = "tenant_admin";
pub const DB_NAME: &str = "app";

/// CreateDBInstance with the parameters tenantd sends.
pub async fn create_instance(
    rds: &Client,
    id: &str,
    password: &str,
    deletion_protection: bool,
) -> aws_sdk_rds::types::DbInstance {
    create_request(rds, id, password, deletion_protection)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateDBInstance {id}: {}", error_text(&e)))
        .db_instance
        .expect("CreateDBInstance returns the instance")
}

/// The CreateDBInstance request tenantd sends, for a test to change before sending.
pub fn create_request(
    rds: &Client,
    id: &str,
    password: &str,
    deletion_protection: bool,
) -> aws_sdk_rds::operation::create_db_instance::builders::CreateDBInstanceFluentBuilder {
    rds.create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .engine_version("16.4")
        .db_instance_class("db.t4g.micro")
        .allocated_storage(20)
        .storage_type("gp3")
        .storage_encrypted(true)
        .master_username(MASTER_USER)
        .master_user_password(password)
        .db_name(DB_NAME)
        .backup_retention_period(1)
        .preferred_backup_window("03:00-03:30")
        .preferred_maintenance_window("sun:04:00-sun:04:30")
        .multi_az(false)
        .enable_performance_insights(true)
        .performance_insights_retention_period(7)
        .deletion_protection(deletion_protection)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("tenant")
                .value(id)
                .build(),
        )
}

/// The instance as DescribeDBInstances shows it, or None once it is gone.
pub async fn describe(rds: &Client, id: &str) -> Option<aws_sdk_rds::types::DbInstance> {
    match rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
    {
        Ok(out) => out.db_instances.unwrap_or_default().into_iter().next(),
        Err(e) if e.code() == Some("DBInstanceNotFound") => None,
        Err(e) => panic!("DescribeDBInstances {id}: {}", error_text(&e)),
    }
}

pub fn status_of(instance: &aws_sdk_rds::types::DbInstance) -> String {
    instance
        .db_instance_status()
        .unwrap_or_default()
        .to_string()
}

/// Polls DescribeDBInstances until the status is `want`; returns every status seen, in order
/// (consecutive repeats collapsed). Panics after `timeout`.
pub async fn wait_status(rds: &Client, id: &str, want: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen: Vec<String> = Vec::new();
    loop {
        let status = describe(rds, id)
            .await
            .map(|i| status_of(&i))
            .unwrap_or_else(|| "<gone>".into());
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == want {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{id}: still not {want} after {timeout:?}; statuses seen: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls until DescribeDBInstances answers DBInstanceNotFound. Panics after `timeout`.
pub async fn wait_gone(rds: &Client, id: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while describe(rds, id).await.is_some() {
        assert!(
            Instant::now() < deadline,
            "{id}: still described after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Endpoint (address, port) of an instance.
pub fn endpoint(instance: &aws_sdk_rds::types::DbInstance) -> (String, u16) {
    let ep = instance
        .endpoint()
        .expect("an available instance has an Endpoint");
    let port = ep.port().expect("Endpoint.Port") as u16;
    (ep.address().expect("Endpoint.Address").to_string(), port)
}

/// Logs in the way tenantd does: host/port from the Endpoint, the master user, DBName.
pub async fn login(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    database: &str,
) -> Result<PgConnection, sqlx::Error> {
    let ssl = match std::env::var("TENANTD_TENANT_DB_TLS").as_deref() {
        Ok("disable") => PgSslMode::Disable,
        _ => PgSslMode::Prefer,
    };
    let opts = PgConnectOptions::new()
        .host(host)
        .port(port)
        .username(user)
        .password(password)
        .database(database)
        .ssl_mode(ssl);
    PgConnection::connect_with(&opts).await
}

/// Logs in with an explicit TLS mode and, for verify-ca/verify-full, a root certificate file.
pub async fn login_tls(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    database: &str,
    mode: PgSslMode,
    root_cert: Option<&std::path::Path>,
) -> Result<PgConnection, sqlx::Error> {
    let mut opts = PgConnectOptions::new()
        .host(host)
        .port(port)
        .username(user)
        .password(password)
        .database(database)
        .ssl_mode(mode);
    if let Some(path) = root_cert {
        opts = opts.ssl_root_cert(path);
    }
    PgConnection::connect_with(&opts).await
}

/// The SQLSTATE of a failed login or query.
pub fn sqlstate(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) => db.code().map(|c| c.to_string()),
        _ => None,
    }
}

/// Error code and HTTP status of a failed SDK call.
pub fn code_and_status<E: ProvideErrorMetadata>(
    err: &SdkError<E, HttpResponse>,
) -> (Option<String>, Option<u16>) {
    (
        err.code().map(str::to_string),
        err.raw_response().map(|r| r.status().as_u16()),
    )
}

pub fn error_text<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> String {
    format!(
        "{} ({})",
        err.code().unwrap_or("no code"),
        err.message().unwrap_or("no message")
    )
}

/// The provider's control endpoint (faults, forced statuses).
pub struct Control {
    base: String,
    http: reqwest::Client,
}

impl Control {
    pub fn new() -> Self {
        Self {
            base: stack_env("LOCAL_RDS_CONTROL_URL"),
            http: reqwest::Client::new(),
        }
    }

    /// Adds a fault; returns its id.
    pub async fn fault(&self, spec: serde_json::Value) -> u64 {
        let resp = self
            .http
            .post(format!("{}/faults", self.base))
            .json(&spec)
            .send()
            .await
            .expect("POST /faults");
        assert_eq!(resp.status().as_u16(), 201, "POST /faults {spec}");
        let body: serde_json::Value = resp.json().await.expect("JSON");
        body["id"].as_u64().expect("fault id")
    }

    pub async fn remove_fault(&self, id: u64) -> u16 {
        self.http
            .delete(format!("{}/faults/{id}", self.base))
            .send()
            .await
            .expect("DELETE /faults/<id>")
            .status()
            .as_u16()
    }

    pub async fn faults(&self) -> serde_json::Value {
        self.http
            .get(format!("{}/faults", self.base))
            .send()
            .await
            .expect("GET /faults")
            .json()
            .await
            .expect("JSON")
    }

    /// Forces an instance's status (e.g. "failed"); None lifts it.
    pub async fn set_status(&self, id: &str, status: Option<&str>) -> serde_json::Value {
        let resp = self
            .http
            .post(format!("{}/instances/{id}/status", self.base))
            .json(&serde_json::json!({ "status": status }))
            .send()
            .await
            .expect("POST /instances/<id>/status");
        assert_eq!(resp.status().as_u16(), 200, "set status of {id}");
        resp.json().await.expect("JSON")
    }

    /// POSTs JSON to a control path (e.g. "/quotas"); returns HTTP status and JSON body.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON"))
    }

    /// GETs a control path (e.g. "/quotas?account=..."); returns HTTP status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON"))
    }

    /// The provider's view of an instance: real database name, port, status.
    pub async fn instance(&self, id: &str) -> Option<serde_json::Value> {
        let body: serde_json::Value = self
            .http
            .get(format!("{}/instances", self.base))
            .send()
            .await
            .expect("GET /instances")
            .json()
            .await
            .expect("JSON");
        body["instances"]
            .as_array()
            .expect("instances")
            .iter()
            .find(|i| i["identifier"] == id)
            .cloned()
    }
}

/// A superuser connection to the tenant server, to check what the provider did.
pub async fn admin() -> PgConnection {
    let url = stack_env("LOCAL_RDS_ADMIN_URL");
    PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect LOCAL_RDS_ADMIN_URL: {e}"))
}

pub async fn database_exists(name: &str) -> bool {
    let mut conn = admin().await;
    sqlx::query_scalar::<_, bool>("select exists(select 1 from pg_database where datname = $1)")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .expect("query pg_database")
}

pub async fn role_exists(name: &str) -> bool {
    let mut conn = admin().await;
    sqlx::query_scalar::<_, bool>("select exists(select 1 from pg_roles where rolname = $1)")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .expect("query pg_roles")
}

/// A CA certificate nobody signed the endpoints with, made for this test by the stack's venv.
pub fn throwaway_ca(path: &std::path::Path) {
    let stack = stack_env("TENANTD_STACK_DIR");
    let venv = std::fs::read_to_string(format!("{stack}/localstack/venv"))
        .expect("the stack records its venv in $TENANTD_STACK_DIR/localstack/venv");
    let status = std::process::Command::new(format!("{}/bin/python", venv.trim()))
        .args(["-m", "local_rds.certs", "--ca-only"])
        .arg(path)
        .status()
        .expect("run the venv's python");
    assert!(status.success(), "making a throwaway CA failed");
}
