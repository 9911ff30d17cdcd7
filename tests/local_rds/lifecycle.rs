//! Helpers for the tests of the local RDS's engine lifecycle (Blue/Green deployments, CAs,
//! maintenance): driven through the AWS SDK as tenantd drives RDS, checked through the
//! provider's control endpoint and PostgreSQL logins.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{BlueGreenDeployment, DbInstance, Parameter};
use sqlx::postgres::{PgConnection, PgSslMode};

use super::rds::{
    Control, DB_NAME, MASTER_USER, create_request, describe, endpoint, error_text, login,
    login_tls, wait_status,
};

/// Generous: creating lasts LOCAL_RDS_CREATING_SECS (5 by default) plus the database creation.
pub fn available_timeout() -> Duration {
    Duration::from_secs(super::rds::creating_secs() + 60)
}

/// A DB parameter group of `family` with rds.logical_replication on, as a Blue/Green
/// deployment to a new major version needs on the blue instance.
pub async fn logical_replication_group(rds: &Client, name: &str, family: &str) {
    rds.create_db_parameter_group()
        .db_parameter_group_name(name)
        .db_parameter_group_family(family)
        .description("logical replication for Blue/Green deployments")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateDBParameterGroup {name}: {}", error_text(&e)));
    rds.modify_db_parameter_group()
        .db_parameter_group_name(name)
        .parameters(
            Parameter::builder()
                .parameter_name("rds.logical_replication")
                .parameter_value("1")
                .apply_method(aws_sdk_rds::types::ApplyMethod::PendingReboot)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("ModifyDBParameterGroup {name}: {}", error_text(&e)));
}

/// Creates an instance the way tenantd does (optionally in a parameter group and at a
/// version) and waits until it is available.
pub async fn available_instance(
    rds: &Client,
    id: &str,
    password: &str,
    version: &str,
    group: Option<&str>,
) -> DbInstance {
    let mut req = create_request(rds, id, password, false).engine_version(version);
    if let Some(g) = group {
        req = req.db_parameter_group_name(g);
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("CreateDBInstance {id}: {}", error_text(&e)));
    wait_status(rds, id, "available", available_timeout()).await;
    describe(rds, id).await.expect("instance exists")
}

/// Logs in at an instance's endpoint with the master user.
pub async fn connect(instance: &DbInstance, password: &str) -> PgConnection {
    let (host, port) = endpoint(instance);
    login(&host, port, MASTER_USER, password, DB_NAME)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "log in to {}: {e}",
                instance.db_instance_identifier().unwrap_or_default()
            )
        })
}

/// Logs in at (host, port) with verify-full against `bundle`.
pub async fn connect_verified(
    host: &str,
    port: u16,
    password: &str,
    bundle: &std::path::Path,
) -> Result<PgConnection, sqlx::Error> {
    login_tls(
        host,
        port,
        MASTER_USER,
        password,
        DB_NAME,
        PgSslMode::VerifyFull,
        Some(bundle),
    )
    .await
}

pub async fn describe_deployment(rds: &Client, id: &str) -> BlueGreenDeployment {
    rds.describe_blue_green_deployments()
        .blue_green_deployment_identifier(id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeBlueGreenDeployments {id}: {}", error_text(&e)))
        .blue_green_deployments()
        .first()
        .cloned()
        .expect("the deployment")
}

/// Polls DescribeBlueGreenDeployments until the status is `want`; returns the deployment and
/// every status seen, in order (repeats collapsed).
pub async fn wait_deployment(
    rds: &Client,
    id: &str,
    want: &str,
    timeout: Duration,
) -> (BlueGreenDeployment, Vec<String>) {
    let deadline = Instant::now() + timeout;
    let mut seen: Vec<String> = Vec::new();
    loop {
        let d = describe_deployment(rds, id).await;
        let status = d.status().unwrap_or_default().to_string();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == want {
            return (d, seen);
        }
        assert!(
            Instant::now() < deadline,
            "{id}: still not {want} after {timeout:?}; statuses seen: {seen:?}; details: {:?}",
            d.status_details()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls a `select count(...)` until it is `want`.
pub async fn wait_count(conn: &mut PgConnection, sql: &str, want: i64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        if n == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: {n}, not {want} after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many replication slots of this name the tenant server has.
pub async fn slots_named(name: &str) -> i64 {
    let mut conn = super::rds::admin().await;
    sqlx::query_scalar("select count(*) from pg_replication_slots where slot_name = $1")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .expect("query pg_replication_slots")
}

/// The identifier at the end of an ARN.
pub fn id_of(arn: &str) -> String {
    arn.rsplit(':').next().unwrap_or_default().to_string()
}

/// The provider's view of a deployment (its replication, real databases).
pub async fn deployment_view(control: &Control, id: &str) -> serde_json::Value {
    let (status, body) = control.get(&format!("/blue-green-deployments/{id}")).await;
    assert_eq!(status, 200, "GET /blue-green-deployments/{id}: {body}");
    body
}

/// The CA bundle (the CA certificate a client trusts) of an RDS CA identifier, as the stack
/// wrote it; `global` for the bundle of every CA.
pub async fn bundle(control: &Control, ca: &str) -> PathBuf {
    let (status, body) = control.get("/certificates").await;
    assert_eq!(status, 200, "GET /certificates: {body}");
    if ca == "global" {
        return PathBuf::from(body["global_bundle"].as_str().expect("global_bundle"));
    }
    let path = body["certificates"]
        .as_array()
        .expect("certificates")
        .iter()
        .find(|c| c["identifier"] == ca)
        .unwrap_or_else(|| panic!("no CA {ca} in {body}"))["bundle"]
        .as_str()
        .expect("bundle path")
        .to_string();
    PathBuf::from(path)
}

/// Deletes an instance without a final snapshot (test cleanup), ignoring one already gone.
pub async fn delete_quietly(rds: &Client, id: &str) {
    let _ = rds
        .modify_db_instance()
        .db_instance_identifier(id)
        .deletion_protection(false)
        .apply_immediately(true)
        .send()
        .await;
    let _ = rds
        .delete_db_instance()
        .db_instance_identifier(id)
        .skip_final_snapshot(true)
        .send()
        .await;
}

/// Whether a login failed on the certificate (rustls reports it as an I/O error of kind
/// InvalidData naming the reason), not on anything else.
pub fn certificate_rejected(err: &sqlx::Error, reason: &str) -> bool {
    match err {
        sqlx::Error::Tls(e) => format!("{e:?}").contains(reason),
        sqlx::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::InvalidData && format!("{io:?}").contains(reason)
        }
        _ => false,
    }
}
