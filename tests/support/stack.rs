//! For the provisioning tests: settings pointing at the local stack, a worker run in-process or
//! as the real binary, the RDS provider's fault injection, and looking at what exists in AWS
//! through the SDK.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use serde_json::{Value, json};
use sqlx::PgPool;
use tenantd::cloud::Cloud;
use tenantd::config::{Env, Settings};
use tenantd::queue::{self, Job, JobState};
use tenantd::tenants::{self, Tenant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{TestDb, fresh_db, wait_for};

pub const TOPIC: &str = "arn:aws:sns:us-east-1:000000000000:tenantd-alarms";

/// A unique tenant id for one test (tests share one LocalStack).
pub fn tenant_id(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..10])
}

/// Environment for tenantd in tests: the stack's variables, the test's control database, and
/// fast waits. `extra` overrides.
pub fn test_env(db: &TestDb, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("TENANTD_") || k.starts_with("AWS_"))
        .collect();
    for (k, v) in [
        ("TENANTD_DATABASE_URL", db.url.as_str()),
        // Worker processes serve their metrics on a port of their own.
        ("TENANTD_METRICS_LISTEN", "127.0.0.1:0"),
        // Tenant databases are verified against the stack's CA, as against RDS's.
        ("TENANTD_TENANT_DB_TLS", "verify-full"),
        ("TENANTD_ALARM_TOPIC_ARN", TOPIC),
        ("TENANTD_ENVIRONMENT", "test"),
        ("TENANTD_WAIT_BASE", "200ms"),
        ("TENANTD_WAIT_MAX", "1s"),
        ("TENANTD_RETRY_BASE", "100ms"),
        ("TENANTD_RETRY_MAX", "1s"),
        ("TENANTD_MAX_ATTEMPTS", "5"),
        ("TENANTD_LEASE", "2s"),
        ("TENANTD_POLL_INTERVAL", "100ms"),
        ("TENANTD_SHUTDOWN_TIMEOUT", "2s"),
        ("TENANTD_PROVISION_DEADLINE", "2m"),
        // The maintenance leader's instance poller runs in the tests' workers too: quickly.
        ("TENANTD_RDS_POLL_INTERVAL", "500ms"),
        (
            "TENANTD_TENANT_MIGRATIONS",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/tenant-migrations"),
        ),
    ] {
        env.insert(k.to_string(), v.to_string());
    }
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

pub fn settings(env: &HashMap<String, String>) -> Settings {
    let env = env.clone();
    Settings::load(&Env(move |k| env.get(k).cloned())).expect("test settings")
}

/// SDK configuration for the local stack, or for a proxy in front of it.
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).http_client(tenantd::cloud::http_client());
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The CA the local stack's instance endpoints are certified by (`localstack/up`).
pub fn stack_ca() -> String {
    std::env::var("TENANTD_TENANT_DB_CA_FILE")
        .expect("TENANTD_TENANT_DB_CA_FILE: run through localstack/test")
}

pub fn stack_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL: run through localstack/test")
}

/// One test's world: a control database, and SDK clients to look at AWS.
pub struct Stack {
    pub db: TestDb,
    pub rds: aws_sdk_rds::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Stack {
    pub async fn new() -> Self {
        let config = sdk_config(None).await;
        Stack {
            db: fresh_db().await,
            rds: aws_sdk_rds::Client::new(&config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    /// Asks for a tenant on `tier`; returns its job's id.
    pub async fn provision(&self, tenant: &str, tier: &str) -> Uuid {
        self.provision_with_attempts(tenant, tier, 5).await
    }

    /// As [`Stack::provision`], with `attempts` per step instead of 5.
    pub async fn provision_with_attempts(&self, tenant: &str, tier: &str, attempts: i32) -> Uuid {
        let tiers = tenantd::config::Tiers::defaults();
        let (_, job, created) =
            tenants::request_provision(self.pool(), &tiers, tenant, tier, attempts)
                .await
                .expect("request provisioning");
        assert!(created);
        job.id
    }

    pub async fn tenant(&self, id: &str) -> Tenant {
        tenants::get(self.pool(), id)
            .await
            .unwrap()
            .expect("tenant")
    }

    pub async fn job(&self, id: Uuid) -> Job {
        queue::get_job(self.pool(), id).await.unwrap().unwrap()
    }

    /// Waits for the job to end; returns it.
    pub async fn finished(&self, id: Uuid, timeout: Duration) -> Job {
        wait_for("the job to finish", timeout, || async {
            let job = self.job(id).await;
            (!job.state.is_active()).then_some(job)
        })
        .await
    }

    /// Waits until the job's history shows `outcome` for `step`.
    pub async fn reached(&self, id: Uuid, step: &str, outcome: &str, timeout: Duration) {
        wait_for(&format!("{step} {outcome}"), timeout, || async {
            let history = queue::history(self.pool(), id).await.unwrap();
            history
                .iter()
                .any(|h| h.step == step && h.outcome.as_str() == outcome)
                .then_some(())
        })
        .await
    }

    /// Runs a worker in this process, with the maintenance services the daemon runs beside
    /// it, until the returned token is cancelled.
    pub fn spawn_worker(
        &self,
        settings: &Settings,
        cloud: Cloud,
    ) -> (CancellationToken, JoinHandle<()>) {
        let stop = CancellationToken::new();
        let pool = &self.db.pool;
        let (registry, aws) = tenantd::app::workflows(settings, cloud);
        let maintenance =
            tenantd::app::maintenance(settings, pool, &aws, &registry).spawn(stop.clone());
        let run = tenantd::worker::run(
            pool.clone(),
            registry,
            settings.worker.clone(),
            stop.clone(),
        );
        let handle = tokio::spawn(async move {
            run.await.expect("worker");
            maintenance.await.expect("maintenance");
        });
        (stop, handle)
    }

    /// The instance as RDS describes it, if it exists.
    pub async fn instance(&self, id: &str) -> Option<aws_sdk_rds::types::DbInstance> {
        match self
            .rds
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
        {
            Ok(out) => out.db_instances().first().cloned(),
            Err(e) => {
                let code = aws_sdk_rds::error::ProvideErrorMetadata::code(&e);
                assert_eq!(code, Some("DBInstanceNotFound"), "{e:?}");
                None
            }
        }
    }

    /// How many instances of this identifier RDS lists (through a `db-instance-id` filter, which
    /// would show duplicates a describe by identifier hides).
    pub async fn instances_named(&self, id: &str) -> usize {
        self.rds
            .describe_db_instances()
            .filters(
                aws_sdk_rds::types::Filter::builder()
                    .name("db-instance-id")
                    .values(id)
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .db_instances()
            .len()
    }

    /// Secrets with this exact name, including those scheduled for deletion.
    pub async fn secrets_named(
        &self,
        name: &str,
    ) -> Vec<aws_sdk_secretsmanager::types::SecretListEntry> {
        let out = self
            .secrets
            .list_secrets()
            .include_planned_deletion(true)
            .filters(
                aws_sdk_secretsmanager::types::Filter::builder()
                    .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                    .values(name)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.secret_list()
            .iter()
            .filter(|s| s.name() == Some(name))
            .cloned()
            .collect()
    }

    pub async fn secret_json(&self, name: &str) -> Value {
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .unwrap();
        serde_json::from_str(out.secret_string().unwrap()).unwrap()
    }

    pub async fn alarms(&self, prefix: &str) -> Vec<aws_sdk_cloudwatch::types::MetricAlarm> {
        let out = self
            .cloudwatch
            .describe_alarms()
            .alarm_name_prefix(prefix)
            .send()
            .await
            .unwrap();
        out.metric_alarms().to_vec()
    }

    /// Nothing billable or secret is left for the tenant: no instance, no secret (not even one
    /// waiting for deletion), no alarms.
    pub async fn assert_nothing_left(&self, tenant: &str) {
        let instance = format!("saas-{tenant}");
        assert!(
            self.instance(&instance).await.is_none(),
            "instance {instance} remains"
        );
        let secrets = self
            .secrets_named(&format!("saas/tenant/{tenant}/database"))
            .await;
        assert!(secrets.is_empty(), "secret remains: {secrets:?}");
        let alarms = self.alarms(&format!("{instance}-")).await;
        assert!(alarms.is_empty(), "alarms remain: {alarms:?}");
    }

    /// Whether the tenant's database takes a login with the secret's credentials.
    pub async fn can_log_in(&self, tenant: &str) -> bool {
        self.connect_tenant(tenant).await.is_ok()
    }

    /// Logs in to the tenant database with the secret's credentials.
    pub async fn connect_tenant(&self, tenant: &str) -> Result<sqlx::PgConnection, sqlx::Error> {
        let s = self
            .secret_json(&format!("saas/tenant/{tenant}/database"))
            .await;
        let options = sqlx::postgres::PgConnectOptions::new()
            .host(s["host"].as_str().unwrap())
            .port(s["port"].as_u64().unwrap() as u16)
            .username(s["username"].as_str().unwrap())
            .password(s["password"].as_str().unwrap())
            .database(s["dbname"].as_str().unwrap())
            .ssl_mode(sqlx::postgres::PgSslMode::VerifyFull)
            .ssl_root_cert(stack_ca());
        sqlx::ConnectOptions::connect(&options).await
    }

    /// Logs in to the tenant database with the secret's credentials, the secret being in
    /// `account` (a test's own).
    pub async fn connect_tenant_in(&self, account: &str, tenant: &str) -> sqlx::PgConnection {
        let secrets = super::rds::secrets_in_account(account).await;
        let out = secrets
            .get_secret_value()
            .secret_id(format!("saas/tenant/{tenant}/database"))
            .send()
            .await
            .unwrap();
        let s: Value = serde_json::from_str(out.secret_string().unwrap()).unwrap();
        let options = sqlx::postgres::PgConnectOptions::new()
            .host(s["host"].as_str().unwrap())
            .port(s["port"].as_u64().unwrap() as u16)
            .username(s["username"].as_str().unwrap())
            .password(s["password"].as_str().unwrap())
            .database(s["dbname"].as_str().unwrap())
            .ssl_mode(sqlx::postgres::PgSslMode::VerifyFull)
            .ssl_root_cert(stack_ca());
        sqlx::ConnectOptions::connect(&options)
            .await
            .expect("log in with the secret's credentials")
    }

    /// Logs in to the tenant database with the secret's credentials; returns its tables.
    pub async fn tenant_tables(&self, tenant: &str) -> Vec<String> {
        let mut conn = self
            .connect_tenant(tenant)
            .await
            .expect("log in with the secret's credentials");
        sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
    }
}

/// The local RDS provider's fault injection (see localstack/README.md).
pub async fn rds_fault(spec: Value) {
    let url = std::env::var("LOCAL_RDS_CONTROL_URL").expect("LOCAL_RDS_CONTROL_URL");
    let answer = reqwest::Client::new()
        .post(format!("{url}/faults"))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{:?}", answer.text().await);
}

/// Forces an instance of the local RDS provider into `status`.
pub async fn force_status(instance: &str, status: &str) {
    let url = std::env::var("LOCAL_RDS_CONTROL_URL").expect("LOCAL_RDS_CONTROL_URL");
    let answer = reqwest::Client::new()
        .post(format!("{url}/instances/{instance}/status"))
        .json(&json!({ "status": status }))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{:?}", answer.text().await);
}

/// Lifts a status forced with [`force_status`].
pub async fn lift_status(instance: &str) {
    let url = std::env::var("LOCAL_RDS_CONTROL_URL").expect("LOCAL_RDS_CONTROL_URL");
    let answer = reqwest::Client::new()
        .post(format!("{url}/instances/{instance}/status"))
        .json(&json!({ "status": null }))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{:?}", answer.text().await);
}

pub fn is_final(job: &Job) -> bool {
    matches!(
        job.state,
        JobState::Succeeded | JobState::Failed | JobState::Cancelled
    )
}
