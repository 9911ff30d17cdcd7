//! Nothing is changed or deleted that this deployment cannot prove its own. Two deployments,
//! `staging` and `production`, share one account of the local stack with the same resource
//! prefix: each provisions, changes tiers, repairs drift, deprovisions and expires final
//! snapshots, and at the end every resource of the other is as it was; a create of a tenant id
//! the other holds fails with `foreign_resource` and deletes nothing; a person's snapshot with
//! copied tags and a `-final-` name survives the cleaner. And a rollback keeps an instance its
//! job adopted, with the customer's data, which a later deprovisioning's final snapshot holds.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use support::rds::{Control, config_for_account, unique_account};
use support::stack::*;
use support::{wait_for, with_database};
use tenantd::cloud::Cloud;
use tenantd::config::Tiers;
use tenantd::queue::JobState;
use tenantd::tenants::{self, Deletion, TenantStatus};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(180);

/// One deployment: its own control database and environment, in the test's account.
struct Deployment {
    stack: Stack,
    worker: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Deployment {
    async fn start(account: &str, environment: &str, retention: &str) -> Deployment {
        let stack = Stack::new().await;
        let env = test_env(
            &stack.db,
            &[
                ("AWS_ACCESS_KEY_ID", account),
                ("TENANTD_ENVIRONMENT", environment),
                ("TENANTD_FINAL_SNAPSHOT_RETENTION", retention),
                ("TENANTD_RECONCILE_INTERVAL", "1s"),
                ("TENANTD_REPAIR_DRIFT", "true"),
            ],
        );
        let cloud = Cloud::from_sdk_config(&config_for_account(account).await);
        let worker = Some(stack.spawn_worker(&settings(&env), cloud));
        Deployment { stack, worker }
    }

    async fn ready(&self, tenant: &str, tier: &str) {
        let job = self.stack.provision(tenant, tier).await;
        let job = self.stack.finished(job, TIMEOUT).await;
        assert_eq!(job.state, JobState::Succeeded, "{tenant}: {:?}", job.error);
    }

    async fn deprovision(&self, tenant: &str) {
        // A repair the reconciler started ends first.
        wait_for("the tenant's jobs to end", TIMEOUT, || async {
            tenantd::queue::active_job(self.stack.pool(), tenant)
                .await
                .unwrap()
                .is_none()
                .then_some(())
        })
        .await;
        let (_, job, _) = tenants::request_deprovision(
            self.stack.pool(),
            &Tiers::defaults(),
            tenant,
            Deletion::KEEP_SNAPSHOT,
            5,
        )
        .await
        .unwrap();
        let job = self.stack.finished(job.id, TIMEOUT).await;
        assert_eq!(job.state, JobState::Succeeded, "{tenant}: {:?}", job.error);
    }

    /// The recorded final snapshots: identifier → state.
    async fn recorded_snapshots(&self) -> BTreeMap<String, String> {
        sqlx::query_as::<_, (String, String)>(
            "SELECT identifier, state FROM final_snapshots ORDER BY identifier",
        )
        .fetch_all(self.stack.pool())
        .await
        .unwrap()
        .into_iter()
        .collect()
    }

    async fn stop(&mut self) {
        if let Some((stop, worker)) = self.worker.take() {
            stop.cancel();
            worker.await.unwrap();
        }
    }
}

/// What an account holds, resource by resource, as text to compare: instances (status,
/// settings, tags), secrets (ARN, deletion, tags, value version), alarms (threshold, actions),
/// manual snapshots (instance, status, tags).
async fn inventory(account: &str) -> BTreeMap<String, String> {
    let config = config_for_account(account).await;
    let rds = aws_sdk_rds::Client::new(&config);
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let mut out = BTreeMap::new();
    let sorted_tags = |tags: Vec<(String, String)>| {
        let mut tags = tags;
        tags.sort();
        format!("{tags:?}")
    };
    for db in rds
        .describe_db_instances()
        .send()
        .await
        .unwrap()
        .db_instances()
    {
        let tags = db
            .tag_list()
            .iter()
            .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
            .collect();
        out.insert(
            format!("instance {}", db.db_instance_identifier().unwrap()),
            format!(
                "{:?} {:?} {:?} {:?} {:?} {}",
                db.db_instance_status(),
                db.db_instance_class(),
                db.backup_retention_period(),
                db.deletion_protection(),
                db.endpoint().and_then(|e| e.address()),
                sorted_tags(tags)
            ),
        );
    }
    for s in secrets
        .list_secrets()
        .include_planned_deletion(true)
        .send()
        .await
        .unwrap()
        .secret_list()
    {
        let tags = s
            .tags()
            .iter()
            .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
            .collect();
        let mut versions: Vec<&String> = s
            .secret_versions_to_stages()
            .map(|v| v.keys().collect())
            .unwrap_or_default();
        versions.sort();
        out.insert(
            format!("secret {}", s.name().unwrap()),
            format!(
                "{:?} deleted={:?} {} {versions:?}",
                s.arn(),
                s.deleted_date().is_some(),
                sorted_tags(tags)
            ),
        );
    }
    for a in cloudwatch
        .describe_alarms()
        .send()
        .await
        .unwrap()
        .metric_alarms()
    {
        out.insert(
            format!("alarm {}", a.alarm_name().unwrap()),
            format!("{:?} {:?}", a.threshold(), a.alarm_actions()),
        );
    }
    for s in rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap()
        .db_snapshots()
    {
        let tags = s
            .tag_list()
            .iter()
            .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
            .collect();
        out.insert(
            format!("snapshot {}", s.db_snapshot_identifier().unwrap()),
            format!(
                "{:?} {:?} {}",
                s.db_instance_identifier(),
                s.status(),
                sorted_tags(tags)
            ),
        );
    }
    out
}

/// The part of an inventory that belongs to `tenants` (by name).
fn of(inventory: &BTreeMap<String, String>, tenants: &[&str]) -> BTreeMap<String, String> {
    inventory
        .iter()
        .filter(|(k, _)| {
            tenants
                .iter()
                .any(|t| k.contains(&format!("saas-{t}")) || k.contains(&format!("/{t}/")))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_deployments_in_one_account_never_touch_each_others_resources() {
    let account = unique_account();
    let mut staging = Deployment::start(&account, "staging", "1s").await;
    let mut production = Deployment::start(&account, "production", "30d").await;
    let [s1, s2, p1, p2, shared] = ["s1", "s2", "p1", "p2", "shared"].map(tenant_id);

    // Production's fleet: two tenants and one it has already deprovisioned (its final snapshot
    // kept for 30 days).
    production.ready(&p1, "starter").await;
    production.ready(&p2, "starter").await;
    production.ready(&shared, "starter").await;
    production.deprovision(&p2).await;
    let production_snapshot = production
        .recorded_snapshots()
        .await
        .into_keys()
        .next()
        .expect("production recorded its final snapshot");
    staging.ready(&s1, "starter").await;
    staging.ready(&s2, "starter").await;
    let before = inventory(&account).await;
    let theirs = [p1.as_str(), p2.as_str(), shared.as_str()];
    assert_eq!(
        of(&before, &theirs).len(),
        // p1 and shared: instance, secret, two alarms each; p2: its secret (scheduled for
        // deletion) and its final snapshot.
        10,
        "{:#?}",
        of(&before, &theirs)
    );

    // A tenant id production holds: staging's create fails and deletes nothing.
    let job = staging.stack.provision(&shared, "starter").await;
    let job = staging.stack.finished(job, TIMEOUT).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(
        failed_class(&staging.stack, job.id).await.as_deref(),
        Some("foreign_resource")
    );
    let error = job.error.clone().unwrap();
    assert!(error.contains("\"production\", not \"staging\""), "{error}");
    // Production likewise, for one of staging's.
    let job = production.stack.provision(&s1, "starter").await;
    let job = production.stack.finished(job, TIMEOUT).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(
        failed_class(&production.stack, job.id).await.as_deref(),
        Some("foreign_resource")
    );

    // Staging's day two: a tier change, drift repaired, a person's snapshot of a tenant
    // instance (tags copied, named like a final one), deprovisioning with final snapshots that
    // expire after a second.
    let (_, change, _) = tenants::request_tier_change(
        staging.stack.pool(),
        &Tiers::defaults(),
        &s1,
        "pro",
        tenantd::workflow::reconcile::Apply::Immediately,
        5,
    )
    .await
    .unwrap();
    let change = staging.stack.finished(change.unwrap().id, TIMEOUT).await;
    assert_eq!(change.state, JobState::Succeeded, "{:?}", change.error);
    let rds = aws_sdk_rds::Client::new(&config_for_account(&account).await);
    rds.modify_db_instance()
        .db_instance_identifier(format!("saas-{s2}"))
        .backup_retention_period(2)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    wait_for("staging to repair the drift", TIMEOUT, || async {
        let db = rds
            .describe_db_instances()
            .db_instance_identifier(format!("saas-{s2}"))
            .send()
            .await
            .ok()?;
        let db = db.db_instances().first()?.clone();
        (db.backup_retention_period() == Some(7) && db.db_instance_status() == Some("available"))
            .then_some(())
    })
    .await;
    let manual = format!("saas-{s1}-final-by-hand");
    let s1_tags = rds
        .describe_db_instances()
        .db_instance_identifier(format!("saas-{s1}"))
        .send()
        .await
        .unwrap()
        .db_instances()[0]
        .tag_list()
        .to_vec();
    rds.create_db_snapshot()
        .db_instance_identifier(format!("saas-{s1}"))
        .db_snapshot_identifier(&manual)
        .set_tags(Some(s1_tags))
        .send()
        .await
        .unwrap();
    staging.deprovision(&s1).await;
    staging.deprovision(&s2).await;
    wait_for("staging's final snapshots to expire", TIMEOUT, || async {
        let recorded = staging.recorded_snapshots().await;
        (recorded.len() == 2 && recorded.values().all(|s| s == "deleted")).then_some(())
    })
    .await;
    // Two rounds more of every service on both sides, then look.
    let settled = chrono::Utc::now();
    wait_for("two more reconcile rounds", TIMEOUT, || async {
        let t = production.stack.tenant(&p1).await;
        t.checked_at
            .is_some_and(|c| c > settled + chrono::Duration::seconds(2))
            .then_some(())
    })
    .await;
    staging.stop().await;
    production.stop().await;

    let after = inventory(&account).await;
    assert_eq!(
        of(&after, &theirs),
        of(&before, &theirs),
        "production's resources changed"
    );
    assert!(
        after.contains_key(&format!("snapshot {production_snapshot}")),
        "production's final snapshot was deleted"
    );
    assert!(
        after.contains_key(&format!("snapshot {manual}")),
        "a person's snapshot was deleted"
    );
    let ours = of(&after, &[s1.as_str(), s2.as_str()]);
    let left: Vec<&String> = ours
        .keys()
        .filter(|k| k.starts_with("instance") || k.starts_with("alarm"))
        .collect();
    assert!(left.is_empty(), "staging left {left:?}");
    assert_eq!(
        staging.stack.tenant(&shared).await.status,
        TenantStatus::Failed
    );
}

/// The class of the step failure that failed the job.
async fn failed_class(stack: &Stack, job: Uuid) -> Option<String> {
    tenantd::queue::history(stack.pool(), job)
        .await
        .unwrap()
        .into_iter()
        .find(|h| matches!(h.outcome.as_str(), "compensating" | "failed"))
        .and_then(|h| h.error_class)
}

/// The contents a final snapshot kept, through the local RDS: the rows of `table`, once the
/// copy exists.
async fn snapshot_rows(account: &str, snapshot: &str, table: &str) -> Option<Vec<String>> {
    let (status, body) = Control::new()
        .get(&format!("/snapshots/{snapshot}/contents?account={account}"))
        .await;
    assert_eq!(status, 200, "{body}");
    let url = with_database(
        &std::env::var("LOCAL_RDS_ADMIN_URL").unwrap(),
        body["database"].as_str().unwrap(),
    );
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .ok()?;
    sqlx::query_scalar(&format!("SELECT note FROM {table} ORDER BY note"))
        .fetch_all(&mut conn)
        .await
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_reprovisioning_keeps_the_adopted_instance_and_its_data() {
    let account = unique_account();
    let mut d = Deployment::start(&account, "test", "30d").await;
    let tenant = tenant_id("keep");
    let instance = format!("saas-{tenant}");
    d.ready(&tenant, "enterprise").await;
    let customer_rows = ["order 1".to_string(), "order 2".to_string()];
    {
        let mut conn = d.stack.connect_tenant_in(&account, &tenant).await;
        sqlx::query("CREATE TABLE customer_data (note text)")
            .execute(&mut conn)
            .await
            .unwrap();
        for row in &customer_rows {
            sqlx::query("INSERT INTO customer_data VALUES ($1)")
                .bind(row)
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }

    // A deprovisioning that fails (RDS refuses the delete): the tenant is failed, its data
    // intact.
    let control = Control::new();
    let refuse_delete = control
        .fault(json!({
            "operation": "DeleteDBInstance", "count": 50, "code": "AccessDenied", "status": 403,
            "match": { "DBInstanceIdentifier": instance },
        }))
        .await;
    let (_, job, _) = tenants::request_deprovision(
        d.stack.pool(),
        &Tiers::defaults(),
        &tenant,
        Deletion::KEEP_SNAPSHOT,
        1,
    )
    .await
    .unwrap();
    assert_eq!(
        d.stack.finished(job.id, TIMEOUT).await.state,
        JobState::Failed
    );
    control.remove_fault(refuse_delete).await;
    assert_eq!(d.stack.tenant(&tenant).await.status, TenantStatus::Failed);

    // Someone asks for the tenant again: the job adopts the instance (tagged as the tenant's,
    // by an earlier job), and a later step fails (deletion protection refused).
    let refuse_protect = control
        .fault(json!({
            "operation": "ModifyDBInstance", "count": 50, "code": "AccessDenied", "status": 403,
            "match": { "DBInstanceIdentifier": instance, "DeletionProtection": true },
        }))
        .await;
    let job = d
        .stack
        .provision_with_attempts(&tenant, "enterprise", 1)
        .await;
    let job = d.stack.finished(job, TIMEOUT).await;
    control.remove_fault(refuse_protect).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.data.0["adopted"], json!(true));
    let row = d.stack.tenant(&tenant).await;
    assert_eq!(row.status, TenantStatus::Failed);
    let error = row.error.unwrap();
    assert!(
        error.contains(&format!("instance {instance} was kept with its data")),
        "{error}"
    );
    assert!(error.contains("secret"), "{error}");
    // The rollback kept the instance and its secret (not even scheduled for deletion), and
    // the data is there.
    let rds = aws_sdk_rds::Client::new(&config_for_account(&account).await);
    let db = rds
        .describe_db_instances()
        .db_instance_identifier(&instance)
        .send()
        .await
        .unwrap();
    assert_ne!(db.db_instances()[0].db_instance_status(), Some("deleting"));
    let secrets = aws_sdk_secretsmanager::Client::new(&config_for_account(&account).await);
    let secret = secrets
        .describe_secret()
        .secret_id(format!("saas/tenant/{tenant}/database"))
        .send()
        .await
        .unwrap();
    assert!(secret.deleted_date().is_none());
    let mut conn = d.stack.connect_tenant_in(&account, &tenant).await;
    let rows: Vec<String> = sqlx::query_scalar("SELECT note FROM customer_data ORDER BY note")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows, customer_rows);
    drop(conn);

    // A later deprovisioning takes the final snapshot as for any tenant, and it holds the data.
    d.deprovision(&tenant).await;
    // Both deprovisionings recorded theirs; the refused one's never came to exist. The names
    // carry the jobs' creation times: the last is the one taken.
    let recorded = d.recorded_snapshots().await;
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    let snapshot = recorded.keys().next_back().unwrap();
    assert!(
        snapshot.starts_with(&format!("{instance}-final-")),
        "{snapshot}"
    );
    let kept = wait_for("the snapshot's contents", TIMEOUT, || async {
        snapshot_rows(&account, snapshot, "customer_data").await
    })
    .await;
    assert_eq!(kept, customer_rows);
    d.stop().await;
}
