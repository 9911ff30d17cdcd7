//! Engine upgrades against the local stack, nothing mocked: a tenant moved from 16 to 17 by a
//! Blue/Green deployment with its data, secret, schema version and alarms, and its old instance
//! deleted with a final snapshot once kept long enough; each precheck and the check of green
//! failing (the tenant stays on 16, no green instance is left); a switchover RDS refuses while
//! green lags, in the tenant's maintenance window; the delete of the old instance refusing a
//! resource that is not the tenant's.

use crate::support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection;
use support::rds::Control;
use support::stack::*;
use tenantd::cloud::Cloud;
use tenantd::queue::{self, JobState};
use tenantd::tenants::{self, TenantError, TenantStatus};
use tenantd::workflow::upgrade::{Apply, RETIRE_KIND, deployment_name};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(180);

pub struct Upgrading {
    pub stack: Stack,
    pub tenant: String,
    pub instance: String,
    pub stop: CancellationToken,
    pub worker: Option<tokio::task::JoinHandle<()>>,
    pub env: HashMap<String, String>,
}

/// A stack with an in-process worker and a ready starter tenant on 16 whose database has a
/// table of 100 rows.
pub async fn ready_on_16(prefix: &str, extra: &[(&str, &str)]) -> Upgrading {
    let stack = Stack::new().await;
    let mut vars = vec![("TENANTD_RECONCILE_INTERVAL", "0")];
    vars.extend_from_slice(extra);
    let env = test_env(&stack.db, &vars);
    let settings = settings(&env);
    let cloud = Cloud::from_sdk_config(&sdk_config(None).await);
    let (stop, worker) = stack.spawn_worker(&settings, cloud);
    let tenant = tenant_id(prefix);
    let job = stack.provision(&tenant, "starter").await;
    let job = stack.finished(job, TIMEOUT).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let mut conn = stack.connect_tenant(&tenant).await.expect("log in");
    sqlx::raw_sql(
        "create table notes (id bigserial primary key, body text not null);
         insert into notes (body) select 'note ' || g from generate_series(1, 100) g",
    )
    .execute(&mut conn)
    .await
    .expect("the tenant's data");
    conn.close().await.ok();
    let row = stack.tenant(&tenant).await;
    assert!(row.engine_version.as_deref().unwrap().starts_with("16."));
    Upgrading {
        instance: format!("saas-{tenant}"),
        stack,
        tenant,
        stop,
        worker: Some(worker),
        env,
    }
}

impl Upgrading {
    /// Stops the in-process worker and its maintenance services.
    pub async fn stop_worker(&mut self) {
        self.stop.cancel();
        if let Some(worker) = self.worker.take() {
            worker.await.unwrap();
        }
    }
}

pub async fn upgrade(u: &Upgrading, target: &str, apply: Apply) -> Uuid {
    let (_, job, created) =
        tenants::request_engine_upgrade(u.stack.pool(), &u.tenant, target, apply, 5)
            .await
            .expect("upgrade request");
    assert!(created);
    job.id
}

pub async fn count_notes(u: &Upgrading) -> i64 {
    let mut conn = u.stack.connect_tenant(&u.tenant).await.expect("log in");
    sqlx::query_scalar("select count(*) from notes")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// Instances whose identifier starts with the tenant's.
pub async fn instances_of(u: &Upgrading) -> Vec<String> {
    support::fleet::instances_with_prefix(&u.stack, &u.instance).await
}

/// The Blue/Green deployments of the job (by the name it gives them).
pub async fn deployments_of(u: &Upgrading, job: Uuid) -> usize {
    let out = u
        .stack
        .rds
        .describe_blue_green_deployments()
        .filters(
            aws_sdk_rds::types::Filter::builder()
                .name("blue-green-deployment-name")
                .values(deployment_name(job))
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.blue_green_deployments().len()
}

/// The tenant stayed on 16, ready, usable, with the cause; nothing green is left.
pub async fn still_on_16(u: &Upgrading, job: Uuid, class: &str) -> String {
    still_on_16_with(u, job, class, 100).await
}

/// [`still_on_16`], the tenant's table holding `rows`.
pub async fn still_on_16_with(u: &Upgrading, job: Uuid, class: &str, rows: i64) -> String {
    let done = u.stack.finished(job, TIMEOUT).await;
    assert_eq!(done.state, JobState::Failed, "{:?}", done.data);
    let history = queue::history(u.stack.pool(), job).await.unwrap();
    assert!(
        history
            .iter()
            .any(|h| h.error_class.as_deref() == Some(class)),
        "no {class} in {history:#?}"
    );
    let row = u.stack.tenant(&u.tenant).await;
    assert_eq!(row.status, TenantStatus::Ready);
    assert!(row.engine_version.as_deref().unwrap().starts_with("16."));
    let error = row.error.expect("the cause on the tenant");
    assert!(error.contains("engine upgrade to PostgreSQL"), "{error}");
    assert_eq!(instances_of(u).await, vec![u.instance.clone()]);
    assert_eq!(deployments_of(u, job).await, 0);
    let db = u.stack.instance(&u.instance).await.unwrap();
    assert!(db.engine_version().unwrap().starts_with("16."));
    assert_eq!(count_notes(u).await, rows);
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_moves_from_16_to_17_with_its_data_secret_schema_and_alarms() {
    let mut u = ready_on_16("upg", &[("TENANTD_UPGRADE_KEEP_OLD", "3s")]).await;
    let before = u.stack.tenant(&u.tenant).await;
    let started = Instant::now();
    let job = upgrade(&u, "17", Apply::Immediately).await;
    // The tenant stays ready while it runs.
    assert_eq!(u.stack.tenant(&u.tenant).await.status, TenantStatus::Ready);
    let done = u.stack.finished(job, TIMEOUT).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    eprintln!(
        "engine upgrade 16 -> 17 of one tenant: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let result = done.data.0["result"].as_str().unwrap().to_string();
    assert!(result.contains("to 17.4"), "{result}");

    // The tenant runs 17 under its identifier, with its data, through its secret.
    let row = u.stack.tenant(&u.tenant).await;
    assert_eq!(row.status, TenantStatus::Ready);
    assert_eq!(row.engine_version.as_deref(), Some("17.4"));
    assert_eq!(row.db_instance_id.as_deref(), Some(u.instance.as_str()));
    assert_eq!(row.schema_version, before.schema_version);
    assert_eq!(row.error, None);
    let db = u.stack.instance(&u.instance).await.unwrap();
    assert_eq!(db.engine_version(), Some("17.4"));
    assert_eq!(count_notes(&u).await, 100);
    let mut conn = u.stack.connect_tenant(&u.tenant).await.unwrap();
    let version: i64 = sqlx::query_scalar("select max(version) from _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(Some(version), before.schema_version);
    sqlx::query("insert into notes (body) values ('after the upgrade')")
        .execute(&mut conn)
        .await
        .expect("the upgraded database takes writes");
    conn.close().await.ok();
    // The alarms watch the instance that now serves the tenant (same identifier).
    let alarms = u.stack.alarms(&format!("{}-", u.instance)).await;
    assert!(!alarms.is_empty());
    for alarm in &alarms {
        let dims: Vec<_> = alarm
            .dimensions()
            .iter()
            .filter_map(|d| d.value())
            .collect();
        assert_eq!(dims, [u.instance.as_str()], "{:?}", alarm.alarm_name());
    }
    // The finished deployment is gone; the old instance is deleted with a final snapshot once
    // kept for TENANTD_UPGRADE_KEEP_OLD, by a job of its own.
    assert_eq!(deployments_of(&u, job).await, 0);
    let old = format!("{}-old1", u.instance);
    let retire = queue::jobs_with_arg(u.stack.pool(), RETIRE_KIND, "instance", &old)
        .await
        .unwrap();
    assert_eq!(retire.len(), 1);
    let retired = u.stack.finished(retire[0], TIMEOUT).await;
    assert_eq!(retired.state, JobState::Succeeded, "{:?}", retired.error);
    assert!(u.stack.instance(&old).await.is_none());
    let snapshot: String =
        sqlx::query_scalar("SELECT identifier FROM final_snapshots WHERE job_id = $1")
            .bind(retire[0])
            .fetch_one(u.stack.pool())
            .await
            .expect("the final snapshot recorded");
    assert!(snapshot.starts_with(&format!("{old}-final-")), "{snapshot}");
    assert_eq!(instances_of(&u).await, vec![u.instance.clone()]);
    u.stop_worker().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upgraded_tenant_shows_no_engine_major_drift_while_the_setting_stays_16() {
    // The reconciler looks every second; TENANTD_ENGINE_VERSION stays 16 throughout.
    let mut u = ready_on_16("upgdrift", &[("TENANTD_RECONCILE_INTERVAL", "1s")]).await;
    assert_eq!(
        u.stack.tenant(&u.tenant).await.engine_major.as_deref(),
        Some("16"),
        "provisioning records the setting's major"
    );
    let job = upgrade(&u, "17", Apply::Immediately).await;
    let done = u.stack.finished(job, TIMEOUT).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    let row = u.stack.tenant(&u.tenant).await;
    assert_eq!(row.engine_major.as_deref(), Some("17"));
    assert_eq!(row.engine_version.as_deref(), Some("17.4"));
    // Two rounds that looked after the upgrade ended: no engine drift, and none ever since.
    let ended = done.finished_at.expect("a finished job has its end");
    let looked = support::wait_for("two rounds after the upgrade", TIMEOUT, || async {
        let t = u.stack.tenant(&u.tenant).await;
        t.checked_at
            .is_some_and(|c| c > ended + chrono::Duration::milliseconds(2500))
            .then_some(t)
    })
    .await;
    let fields: Vec<String> = looked
        .drift
        .as_ref()
        .expect("the reconciler looked")
        .0
        .iter()
        .map(|d| d.field.clone())
        .collect();
    assert!(
        !fields.iter().any(|f| f.starts_with("engine")),
        "no engine drift after the upgrade: {fields:?}"
    );
    assert_eq!(looked.engine_version.as_deref(), Some("17.4"));
    u.stop_worker().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_target_that_is_no_upgrade_target_fails_the_prechecks() {
    let mut u = ready_on_16("upgpre", &[]).await;
    // 18 is a newer major, but RDS lists no such target.
    let job = upgrade(&u, "18", Apply::Immediately).await;
    let error = still_on_16(&u, job, "not_a_valid_upgrade_target").await;
    assert!(error.contains("17.4"), "names what RDS lists: {error}");
    // The request itself refuses what can never be an upgrade, and changes nothing.
    for target in ["16", "15"] {
        let e = tenants::request_engine_upgrade(
            u.stack.pool(),
            &u.tenant,
            target,
            Apply::Immediately,
            5,
        )
        .await
        .expect_err(target);
        assert!(
            matches!(e, TenantError::NotAnUpgrade { .. }),
            "{target}: {e}"
        );
    }
    let e =
        tenants::request_engine_upgrade(u.stack.pool(), &u.tenant, "17.4", Apply::Immediately, 5)
            .await
            .expect_err("a minor");
    assert!(matches!(e, TenantError::InvalidTargetVersion(_)), "{e}");
    assert!(
        queue::active_job(u.stack.pool(), &u.tenant)
            .await
            .unwrap()
            .is_none()
    );
    u.stop_worker().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_extension_the_target_lacks_fails_the_prechecks() {
    let mut u = ready_on_16("upgext", &[]).await;
    // adminpack exists up to 16 and is gone in 17 (installed by the server's superuser).
    let real = Control::new().instance(&u.instance).await.unwrap()["real_database"]
        .as_str()
        .unwrap()
        .to_string();
    let url = support::rds::stack_env("LOCAL_RDS_ADMIN_URL");
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let mut on_tenant = sqlx::PgConnection::connect_with(&options.database(&real))
        .await
        .unwrap();
    sqlx::query("create extension adminpack")
        .execute(&mut on_tenant)
        .await
        .unwrap();
    on_tenant.close().await.ok();
    let job = upgrade(&u, "17", Apply::Immediately).await;
    let error = still_on_16(&u, job, "extension_unsupported").await;
    assert!(error.contains("adminpack"), "{error}");
    u.stop_worker().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parameter_group_name_taken_by_someone_else_fails_the_prechecks() {
    // An environment of its own: the group's name is the environment's.
    let env = format!("pg{}", &Uuid::new_v4().simple().to_string()[..8]);
    let mut u = ready_on_16("upgpg", &[("TENANTD_ENVIRONMENT", env.as_str())]).await;
    let name = format!("saas-{env}-postgres17-logical");
    u.stack
        .rds
        .create_db_parameter_group()
        .db_parameter_group_name(&name)
        .db_parameter_group_family("postgres17")
        .description("someone else's")
        .send()
        .await
        .unwrap();
    let job = upgrade(&u, "17", Apply::Immediately).await;
    let error = still_on_16(&u, job, "foreign_resource").await;
    assert!(error.contains(&name), "{error}");
    u.stop_worker().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn green_that_differs_from_blue_is_deleted_and_the_tenant_stays_on_16() {
    let mut u = ready_on_16("upggreen", &[]).await;
    let control = Control::new();
    let job = upgrade(&u, "17", Apply::Immediately).await;
    u.stack
        .reached(job, "create_deployment", "advanced", TIMEOUT)
        .await;
    // Green stops receiving blue's writes (hidden from RDS's guardrails) once it is available,
    // and blue gets more: the job's first look at green, once the deployment is available, is
    // held long enough for that.
    let data = queue::get_job(u.stack.pool(), job)
        .await
        .unwrap()
        .unwrap()
        .data
        .0;
    let bgd = data["deployment"].as_str().unwrap().to_string();
    let green = data["green_instance"].as_str().unwrap().to_string();
    rds_fault(json!({
        "operation": "DescribeDBInstances", "count": 1, "latency_ms": 4000,
        "match": { "DBInstanceIdentifier": green },
    }))
    .await;
    let replication = format!("/blue-green-deployments/{bgd}/replication");
    support::wait_for("green to be available", TIMEOUT, || async {
        let (status, _) = control
            .post(&replication, json!({"paused": true, "hidden": true}))
            .await;
        (status == 200).then_some(())
    })
    .await;
    let mut conn = u.stack.connect_tenant(&u.tenant).await.unwrap();
    sqlx::query("insert into notes (body) select 'late ' || g from generate_series(1, 10) g")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    let done = u.stack.finished(job, TIMEOUT).await;
    assert_eq!(done.state, JobState::Failed);
    let row = u.stack.tenant(&u.tenant).await;
    let error = row.error.clone().unwrap();
    assert!(error.contains("110 rows on blue, 100 on green"), "{error}");
    assert_eq!(row.status, TenantStatus::Ready);
    assert!(row.engine_version.as_deref().unwrap().starts_with("16."));
    assert_eq!(instances_of(&u).await, vec![u.instance.clone()]);
    assert_eq!(deployments_of(&u, job).await, 0);
    assert_eq!(count_notes(&u).await, 110);
    u.stop_worker().await;
}

/// A 30-minute weekly window opening at the first full minute at least 40 s from now, and a
/// daily backup window an hour later (RDS refuses overlapping ones).
fn window_soon() -> (String, String) {
    use chrono::{Duration as D, Timelike, Utc};
    let at = Utc::now() + D::seconds(100);
    let start = at - D::seconds(i64::from(at.second()));
    let day = |t: chrono::DateTime<Utc>| t.format("%a").to_string().to_lowercase();
    let hm = |t: chrono::DateTime<Utc>| format!("{:02}:{:02}", t.hour(), t.minute());
    let end = start + D::minutes(30);
    let backup = (start + D::minutes(60), start + D::minutes(90));
    (
        format!("{}:{}-{}:{}", day(start), hm(start), day(end), hm(end)),
        format!("{}-{}", hm(backup.0), hm(backup.1)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_switchover_in_the_window_is_refused_while_green_lags_and_goes_on_once_it_caught_up() {
    let mut u = ready_on_16("upglag", &[]).await;
    let (window, backups) = window_soon();
    u.stack
        .rds
        .modify_db_instance()
        .db_instance_identifier(&u.instance)
        .preferred_maintenance_window(&window)
        .preferred_backup_window(&backups)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    let job = upgrade(&u, "17", Apply::MaintenanceWindow).await;
    u.stack
        .reached(job, "verify_green", "advanced", TIMEOUT)
        .await;
    // Green checked; the switchover waits for the window. Meanwhile green falls behind.
    u.stack
        .reached(job, "await_window", "waiting", TIMEOUT)
        .await;
    let bgd = queue::get_job(u.stack.pool(), job)
        .await
        .unwrap()
        .unwrap()
        .data
        .0["deployment"]
        .as_str()
        .unwrap()
        .to_string();
    let control = Control::new();
    let replication = format!("/blue-green-deployments/{bgd}/replication");
    let (status, body) = control.post(&replication, json!({"paused": true})).await;
    assert_eq!(status, 200, "{body}");
    let mut conn = u.stack.connect_tenant(&u.tenant).await.unwrap();
    sqlx::query("insert into notes (body) select 'late ' || g from generate_series(1, 20) g")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    // In the window RDS refuses the switchover: production stays on 16 and takes writes.
    support::wait_for("the switchover to be refused", TIMEOUT, || async {
        let history = queue::history(u.stack.pool(), job).await.unwrap();
        history
            .iter()
            .any(|h| {
                h.step == "switchover" && h.error_class.as_deref() == Some("switchover_refused")
            })
            .then_some(())
    })
    .await;
    let row = u.stack.tenant(&u.tenant).await;
    assert!(row.engine_version.as_deref().unwrap().starts_with("16."));
    assert_eq!(row.status, TenantStatus::Ready);
    assert!(u.stack.job(job).await.state.is_active());
    let mut conn = u.stack.connect_tenant(&u.tenant).await.unwrap();
    sqlx::query("insert into notes (body) values ('while refused')")
        .execute(&mut conn)
        .await
        .expect("blue still takes writes");
    conn.close().await.ok();
    // Caught up: the next try switches over, with every row.
    let (status, body) = control.post(&replication, json!({"paused": false})).await;
    assert_eq!(status, 200, "{body}");
    let done = u.stack.finished(job, TIMEOUT).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(
        u.stack.tenant(&u.tenant).await.engine_version.as_deref(),
        Some("17.4")
    );
    assert_eq!(count_notes(&u).await, 121);
    u.stop_worker().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_old_instance_is_not_deleted_when_it_is_no_longer_the_tenants() {
    let mut u = ready_on_16("upgold", &[("TENANTD_UPGRADE_KEEP_OLD", "1h")]).await;
    let job = upgrade(&u, "17", Apply::Immediately).await;
    let done = u.stack.finished(job, TIMEOUT).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    let old = format!("{}-old1", u.instance);
    let retire = queue::jobs_with_arg(u.stack.pool(), RETIRE_KIND, "instance", &old)
        .await
        .unwrap()[0];
    // Kept for an hour.
    let run_at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT run_at FROM jobs WHERE id = $1")
            .bind(retire)
            .fetch_one(u.stack.pool())
            .await
            .unwrap();
    assert!(run_at > chrono::Utc::now() + chrono::Duration::minutes(55));
    // Someone takes the old instance over (another environment's tag), then its time comes.
    let arn = u
        .stack
        .instance(&old)
        .await
        .unwrap()
        .db_instance_arn()
        .unwrap()
        .to_string();
    u.stack
        .rds
        .add_tags_to_resource()
        .resource_name(&arn)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("Environment")
                .value("production")
                .build(),
        )
        .send()
        .await
        .unwrap();
    sqlx::query("UPDATE jobs SET run_at = now() WHERE id = $1")
        .bind(retire)
        .execute(u.stack.pool())
        .await
        .unwrap();
    let retired = u.stack.finished(retire, TIMEOUT).await;
    assert_eq!(retired.state, JobState::Failed);
    let error = retired.error.unwrap();
    assert!(error.contains("not tagged as this tenant's"), "{error}");
    assert!(u.stack.instance(&old).await.is_some(), "left untouched");
    let snapshots: i64 =
        sqlx::query_scalar("SELECT count(*) FROM final_snapshots WHERE job_id = $1")
            .bind(retire)
            .fetch_one(u.stack.pool())
            .await
            .unwrap();
    assert_eq!(snapshots, 0);
    u.stop_worker().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_switchover_rds_rolls_back_leaves_the_tenant_on_16_without_green() {
    let mut u = ready_on_16("upgrb", &[("TENANTD_UPGRADE_SWITCHOVER_TIMEOUT", "30s")]).await;
    let (window, backups) = window_soon();
    u.stack
        .rds
        .modify_db_instance()
        .db_instance_identifier(&u.instance)
        .preferred_maintenance_window(&window)
        .preferred_backup_window(&backups)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    let job = upgrade(&u, "17", Apply::MaintenanceWindow).await;
    u.stack
        .reached(job, "await_window", "waiting", TIMEOUT)
        .await;
    // Green falls behind where RDS's guardrails do not see it: the switchover starts, green
    // does not catch up within the timeout, and RDS rolls it back.
    let bgd = queue::get_job(u.stack.pool(), job)
        .await
        .unwrap()
        .unwrap()
        .data
        .0["deployment"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = Control::new()
        .post(
            &format!("/blue-green-deployments/{bgd}/replication"),
            json!({"paused": true, "hidden": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut conn = u.stack.connect_tenant(&u.tenant).await.unwrap();
    sqlx::query("insert into notes (body) values ('late')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    let error = still_on_16_with(&u, job, "switchover_rolled_back", 101).await;
    assert!(error.contains("rolled the switchover back"), "{error}");
    u.stop_worker().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_in_someone_elses_group_without_logical_replication_fails_the_prechecks() {
    let mut u = ready_on_16("upgblue", &[]).await;
    // People moved the instance to a group of their own, which tenantd does not change.
    let group = format!("{}-own", u.instance);
    u.stack
        .rds
        .create_db_parameter_group()
        .db_parameter_group_name(&group)
        .db_parameter_group_family("postgres16")
        .description("the customer's own")
        .send()
        .await
        .unwrap();
    u.stack
        .rds
        .modify_db_instance()
        .db_instance_identifier(&u.instance)
        .db_parameter_group_name(&group)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    support::wait_for("the instance to be available again", TIMEOUT, || async {
        let db = u.stack.instance(&u.instance).await?;
        (db.db_instance_status() == Some("available")).then_some(())
    })
    .await;
    let job = upgrade(&u, "17", Apply::Immediately).await;
    let error = still_on_16(&u, job, "blue_parameter_group").await;
    assert!(
        error.contains(&group) && error.contains("rds.logical_replication"),
        "{error}"
    );
    let db = u.stack.instance(&u.instance).await.unwrap();
    let groups: Vec<_> = db
        .db_parameter_groups()
        .iter()
        .filter_map(|g| g.db_parameter_group_name())
        .collect();
    assert_eq!(groups, [group.as_str()], "left as it was");
    u.stop_worker().await;
}
