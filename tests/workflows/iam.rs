//! The IAM policy in `examples/deploy/iam-policy.json` allows everything the daemon does:
//! `tenantd serve` runs against the local stack through a proxy that records every AWS
//! request, in an account of the test's own, through provisioning of every tier, a rollback,
//! deprovisioning with final snapshots, the expiry of final snapshots, a tier change, a suspend
//! and a resume, an engine upgrade (with its old instance's deletion), reconcile rounds (with
//! their reads of pending maintenance), and fleet rollouts of a CA, of RDS's pending maintenance
//! and of a minor version (their targets checked with RDS by the API); each request is turned
//! into the authorization checks AWS makes for it, and each must be allowed.

use crate::support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_json::json;
use support::fleet::{daemon_env, kill9, serve_ready};
use support::iam::{Policy, Scope, condition, glob, secret_name};
use support::proxy::FaultProxy;
use support::rds::Control;
use support::rds::unique_account;
use support::rollout_api::RolloutApi;
use support::stack::*;
use tenantd::queue::JobState;
use tenantd::tenants::{self, Deletion, TenantStatus};

const TIMEOUT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_iam_policy_allows_every_aws_call_the_daemon_makes() {
    let account = unique_account();
    let region = "us-east-1";
    let topic = format!("arn:aws:sns:{region}:{account}:tenantd-alarms");
    let stack = Stack::new().await;
    let proxy = FaultProxy::start(&stack_endpoint()).await;
    let ca_dir = support::rds::stack_env("LOCAL_RDS_TLS_DIR");
    let base = test_env(
        &stack.db,
        &[
            ("AWS_ENDPOINT_URL", proxy.url.as_str()),
            ("AWS_ACCESS_KEY_ID", account.as_str()),
            ("TENANTD_ALARM_TOPIC_ARN", topic.as_str()),
            ("TENANTD_FINAL_SNAPSHOT_RETENTION", "2s"),
            ("TENANTD_QUOTA_REFRESH", "1s"),
            // The reconciler's listing calls are checked too.
            ("TENANTD_RECONCILE_INTERVAL", "1s"),
            // And the warm pool's: a standby created, then claimed by a tenant.
            ("TENANTD_WARM_POOL", "starter=1"),
            // The CA rotation's verify-full login finds the new CA's bundle here.
            ("TENANTD_TENANT_DB_CA_DIR", ca_dir.as_str()),
            // And an engine upgrade's, the old instance deleted soon after.
            ("TENANTD_UPGRADE_KEEP_OLD", "1s"),
        ],
    );
    let (mut daemon, url) = serve_ready(&daemon_env(&base, "iam", &[])).await;
    let tiers = tenantd::config::Tiers::defaults();
    let prefix = tenant_id("iam");

    // Every tier, and an enterprise tenant whose deletion protection is refused: it rolls back.
    let doomed = format!("{prefix}-rb");
    rds_fault(json!({
        "operation": "ModifyDBInstance", "count": 20, "code": "AccessDenied", "status": 403,
        "match": { "DBInstanceIdentifier": format!("saas-{doomed}"), "DeletionProtection": true },
    }))
    .await;
    let mut jobs = Vec::new();
    for tier in ["starter", "pro", "enterprise"] {
        let tenant = format!("{prefix}-{tier}");
        jobs.push((tenant.clone(), stack.provision(&tenant, tier).await));
    }
    let rollback = stack.provision(&doomed, "enterprise").await;
    for (tenant, job) in &jobs {
        let job = stack.finished(*job, TIMEOUT).await;
        assert_eq!(job.state, JobState::Succeeded, "{tenant}: {:?}", job.error);
    }
    assert_eq!(
        stack.finished(rollback, TIMEOUT).await.state,
        JobState::Failed
    );
    assert_eq!(stack.tenant(&doomed).await.status, TenantStatus::Failed);

    // Day two on the starter tenant: a tier change (its tags too), a suspend and a resume.
    let starter = format!("{prefix}-starter");
    let (_, change, _) = tenants::request_tier_change(
        stack.pool(),
        &tiers,
        &starter,
        "pro",
        tenantd::workflow::reconcile::Apply::Immediately,
        5,
    )
    .await
    .unwrap();
    let mut day_two = vec![change.unwrap().id];
    for power in [tenants::Power::Suspend, tenants::Power::Resume] {
        let previous = stack.finished(*day_two.last().unwrap(), TIMEOUT).await;
        assert_eq!(previous.state, JobState::Succeeded, "{:?}", previous.error);
        let (_, job, _) = tenants::request_power(stack.pool(), &starter, power, 5)
            .await
            .unwrap();
        day_two.push(job.id);
    }
    let last = stack.finished(*day_two.last().unwrap(), TIMEOUT).await;
    assert_eq!(last.state, JobState::Succeeded, "{:?}", last.error);

    // An engine upgrade 16 -> 17 of the starter tenant, its old instance deleted after.
    let (_, upgrade, _) = tenants::request_engine_upgrade(
        stack.pool(),
        &starter,
        "17",
        tenantd::workflow::upgrade::Apply::Immediately,
        5,
    )
    .await
    .unwrap();
    let upgraded = stack.finished(upgrade.id, TIMEOUT).await;
    assert_eq!(upgraded.state, JobState::Succeeded, "{:?}", upgraded.error);
    let retire = tenantd::queue::jobs_with_arg(
        stack.pool(),
        tenantd::workflow::upgrade::RETIRE_KIND,
        "instance",
        &format!("saas-{starter}-old1"),
    )
    .await
    .unwrap();
    let retired = stack.finished(retire[0], TIMEOUT).await;
    assert_eq!(retired.state, JobState::Succeeded, "{:?}", retired.error);

    // Fleet rollouts on the (upgraded) starter tenant, through the API: a CA rotation, RDS's
    // pending maintenance (set through the local RDS's control endpoint), a minor version.
    let api = RolloutApi::new(&url);
    let instance = format!("saas-{starter}");
    let (status, body) = Control::new()
        .post(
            &format!("/instances/{instance}/pending-maintenance"),
            json!({"account": account, "action": "system-update"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    for (kind, target) in [
        ("ca_certificate", "rds-ca-rsa4096-g1"),
        ("maintenance", "system-update"),
        ("engine_minor", "17.5"),
    ] {
        api.run(
            json!({"kind": kind, "target_version": target, "tenants": [starter], "canary": 0}),
            TIMEOUT,
        )
        .await;
    }

    // A tenant that takes over the warm pool's standby (retagged, its secret moved).
    support::wait_for("a standby to be available", TIMEOUT, || async {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pool_standbys WHERE state = 'available'")
                .fetch_one(stack.pool())
                .await
                .unwrap();
        (n > 0).then_some(())
    })
    .await;
    let pooled = format!("{prefix}-pooled");
    let job = stack.provision(&pooled, "starter").await;
    let job = stack.finished(job, TIMEOUT).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert!(stack.tenant(&pooled).await.from_pool);
    jobs.push((pooled, job.id));

    // Deprovisioning with final snapshots, which then expire.
    let mut gone = Vec::new();
    for (tenant, _) in &jobs {
        let (_, job, _) =
            tenants::request_deprovision(stack.pool(), &tiers, tenant, Deletion::KEEP_SNAPSHOT, 5)
                .await
                .unwrap();
        gone.push(job.id);
    }
    for job in gone {
        assert_eq!(
            stack.finished(job, TIMEOUT).await.state,
            JobState::Succeeded
        );
    }
    support::wait_for("the final snapshots to expire", TIMEOUT, || async {
        (proxy.seen("DeleteDBSnapshot") >= 3).then_some(())
    })
    .await;
    kill9(&mut daemon).await;

    // Every request the daemon made, checked against the policy.
    let policy = Policy::load(&policy_texts(), &fill(region, &account, "test"));
    let mut scope = Scope::new(region, &account);
    let mut allowed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut denied = Vec::new();
    let recorded = proxy.recorded();
    for request in &recorded {
        for check in scope.checks(request) {
            match policy.allows(&check) {
                Some(sid) => {
                    allowed
                        .entry(check.action.clone())
                        .or_default()
                        .insert(sid.to_string());
                }
                None => denied.push(check),
            }
        }
    }
    eprintln!(
        "{} requests; actions and the statements that allow them:",
        recorded.len()
    );
    for (action, sids) in &allowed {
        eprintln!("  {action}: {sids:?}");
    }
    assert!(denied.is_empty(), "not allowed by the policy: {denied:#?}");
    // tenantd never adds an ownership tag to a resource that exists: the only requests carrying
    // ManagedBy or Environment are creates.
    for r in &recorded {
        if matches!(r.operation.as_str(), "AddTagsToResource" | "TagResource") {
            let body = String::from_utf8_lossy(&r.body);
            assert!(
                !body.contains("ManagedBy") && !body.contains("Environment"),
                "{} {} adds an ownership tag: {body}",
                r.service,
                r.operation
            );
        }
    }
    // The run did exercise what it was meant to.
    for action in [
        "rds:CreateDBInstance",
        "rds:AddTagsToResource",
        "rds:RemoveTagsFromResource",
        "rds:DescribeDBInstances",
        "rds:DescribePendingMaintenanceActions",
        "rds:ApplyPendingMaintenanceAction",
        "rds:DescribeCertificates",
        "rds:ModifyDBInstance",
        "rds:StopDBInstance",
        "rds:StartDBInstance",
        "cloudwatch:DescribeAlarms",
        "secretsmanager:ListSecrets",
        "rds:DeleteDBInstance",
        "rds:CreateDBSnapshot",
        "rds:DescribeDBSnapshots",
        "rds:DeleteDBSnapshot",
        "rds:DescribeDBEngineVersions",
        "rds:DescribeAccountAttributes",
        "secretsmanager:CreateSecret",
        "secretsmanager:TagResource",
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:DeleteSecret",
        "cloudwatch:PutMetricAlarm",
        "cloudwatch:DeleteAlarms",
        "rds:CreateBlueGreenDeployment",
        "rds:CreateDBInstanceReadReplica",
        "rds:DescribeBlueGreenDeployments",
        "rds:SwitchoverBlueGreenDeployment",
        "rds:DeleteBlueGreenDeployment",
        "rds:CreateDBParameterGroup",
        "rds:ModifyDBParameterGroup",
        "rds:DescribeDBParameterGroups",
        "rds:DescribeDBParameters",
        "rds:DescribeEngineDefaultParameters",
    ] {
        assert!(allowed.contains_key(action), "{action} was never made");
    }
}

/// The policy documents the daemon's role gets, side by side.
fn policy_texts() -> Vec<&'static str> {
    vec![
        include_str!("../../examples/deploy/iam-policy.json"),
        include_str!("../../examples/deploy/iam-policy-secrets.json"),
        include_str!("../../examples/deploy/iam-policy-upgrades.json"),
    ]
}

fn fill<'a>(region: &'a str, account: &'a str, environment: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("REGION", region),
        ("ACCOUNT_ID", account),
        ("ENVIRONMENT", environment),
        ("ALARM_TOPIC", "tenantd-alarms"),
        ("SUBNET_GROUP", "tenantd-tenants"),
    ]
}

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The checks AWS makes for `action` on an existing resource with `resource_tags`, sending
/// `request_tags` (for tagging) or removing `untag` keys.
fn on_existing(
    action: &str,
    resource: &str,
    resource_tags: &[(String, String)],
    request: &[(String, String)],
    untag: &[&str],
) -> support::iam::Check {
    let mut context = support::iam::request_tags(request);
    for (k, v) in resource_tags {
        context.insert(format!("aws:ResourceTag/{k}"), vec![v.clone()]);
    }
    if !untag.is_empty() {
        context.insert(
            "aws:TagKeys".into(),
            untag.iter().map(|k| k.to_string()).collect(),
        );
    }
    if action == "rds:AddTagsToResource" {
        context.insert("rds:TagsFromRequest".into(), vec!["true".into()]);
    }
    support::iam::Check {
        request: format!("{action} on {resource}"),
        action: action.into(),
        resource: resource.into(),
        context,
    }
}

#[test]
fn the_policy_denies_tagging_changing_or_deleting_what_another_environment_or_nobody_owns() {
    let policy = Policy::load(
        &policy_texts(),
        &fill("us-east-1", "123456789012", "production"),
    );
    let db = "arn:aws:rds:us-east-1:123456789012:db:saas-acme";
    let snapshot = "arn:aws:rds:us-east-1:123456789012:snapshot:saas-acme-final-20261207000000";
    let secret =
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:saas/tenant/acme/database-AbCdEf";
    let staging = tags(&[
        ("ManagedBy", "tenantd"),
        ("Environment", "staging"),
        ("TenantId", "acme"),
        ("Tier", "starter"),
    ]);
    let untagged = tags(&[]);
    let a_persons = tags(&[("Team", "data"), ("TenantId", "acme")]);
    let ours = tags(&[
        ("ManagedBy", "tenantd"),
        ("Environment", "production"),
        ("TenantId", "acme"),
        ("Tier", "starter"),
    ]);
    let tier = tags(&[("Tier", "pro")]);
    let claim = tags(&[("ManagedBy", "tenantd"), ("Environment", "production")]);
    let claim_as_created = tags(&[
        ("ManagedBy", "tenantd"),
        ("Environment", "production"),
        ("TenantId", "acme"),
        ("ProvisioningJob", "00000000-0000-0000-0000-000000000000"),
    ]);
    for resource_tags in [&staging, &untagged, &a_persons] {
        let mut checks = vec![
            on_existing("rds:AddTagsToResource", db, resource_tags, &tier, &[]),
            on_existing("rds:AddTagsToResource", db, resource_tags, &claim, &[]),
            on_existing("rds:ModifyDBInstance", db, resource_tags, &[], &[]),
            on_existing("rds:StopDBInstance", db, resource_tags, &[], &[]),
            on_existing("rds:StartDBInstance", db, resource_tags, &[], &[]),
            on_existing("rds:DeleteDBInstance", db, resource_tags, &[], &[]),
            on_existing(
                "rds:RemoveTagsFromResource",
                db,
                resource_tags,
                &[],
                &["PoolStandby"],
            ),
            on_existing(
                "rds:AddTagsToResource",
                snapshot,
                resource_tags,
                &claim,
                &[],
            ),
            on_existing(
                "rds:AddTagsToResource",
                snapshot,
                resource_tags,
                &claim_as_created,
                &[],
            ),
            on_existing("rds:DeleteDBSnapshot", snapshot, resource_tags, &[], &[]),
            on_existing(
                "secretsmanager:TagResource",
                secret,
                resource_tags,
                &claim,
                &[],
            ),
            on_existing(
                "secretsmanager:GetSecretValue",
                secret,
                resource_tags,
                &[],
                &[],
            ),
            on_existing(
                "secretsmanager:PutSecretValue",
                secret,
                resource_tags,
                &[],
                &[],
            ),
            on_existing(
                "secretsmanager:DeleteSecret",
                secret,
                resource_tags,
                &[],
                &[],
            ),
            on_existing(
                "secretsmanager:RestoreSecret",
                secret,
                resource_tags,
                &[],
                &[],
            ),
        ];
        // Another environment's resource, even tagged exactly as a create would tag it.
        if resource_tags == &staging {
            checks.push(on_existing(
                "rds:AddTagsToResource",
                db,
                resource_tags,
                &claim_as_created,
                &[],
            ));
            checks.push(on_existing(
                "secretsmanager:TagResource",
                secret,
                resource_tags,
                &claim_as_created,
                &[],
            ));
        }
        for check in checks {
            assert_eq!(
                policy.allows(&check),
                None,
                "allowed on a resource tagged {resource_tags:?}: {check:#?}"
            );
        }
    }
    // This environment's own resources: what tenantd does to them is allowed, and still no
    // ownership tag can be added or removed.
    for (check, allowed) in [
        (
            on_existing("rds:AddTagsToResource", db, &ours, &tier, &[]),
            true,
        ),
        (
            on_existing("rds:ModifyDBInstance", db, &ours, &[], &[]),
            true,
        ),
        (
            on_existing("rds:DeleteDBInstance", db, &ours, &[], &[]),
            true,
        ),
        (
            on_existing("rds:DeleteDBSnapshot", snapshot, &ours, &[], &[]),
            true,
        ),
        (
            on_existing("secretsmanager:DeleteSecret", secret, &ours, &[], &[]),
            true,
        ),
        (
            on_existing("rds:AddTagsToResource", db, &ours, &claim, &[]),
            false,
        ),
        (
            on_existing("rds:RemoveTagsFromResource", db, &ours, &[], &["ManagedBy"]),
            false,
        ),
        (
            on_existing(
                "rds:RemoveTagsFromResource",
                db,
                &ours,
                &[],
                &["Environment"],
            ),
            false,
        ),
        (
            on_existing("rds:RemoveTagsFromResource", db, &ours, &[], &["TenantId"]),
            false,
        ),
    ] {
        assert_eq!(policy.allows(&check).is_some(), allowed, "{check:#?}");
    }
    // What IAM cannot tell apart from a create (documented in iam-policy.md): tags exactly as
    // CreateDBInstance sends them, onto an instance under the prefix that carries neither
    // ManagedBy nor Environment. Anything short of the create's shape is denied above.
    let as_create = on_existing(
        "rds:AddTagsToResource",
        db,
        &untagged,
        &claim_as_created,
        &[],
    );
    assert_eq!(policy.allows(&as_create), Some("RdsTagOnCreate"));
}

#[test]
fn globs_and_conditions_follow_iam() {
    assert!(glob(
        "arn:aws:rds:*:db:saas-*",
        "arn:aws:rds:x:db:saas-acme"
    ));
    assert!(!glob("arn:aws:rds:*:db:saas-*", "arn:aws:rds:x:db:other"));
    assert!(glob(
        "secret:a/*/database-??????",
        "secret:a/b/database-AbCdEf"
    ));
    assert!(!glob(
        "secret:a/*/database-??????",
        "secret:a/b/database-AbCdE"
    ));
    let ctx: HashMap<String, Vec<String>> = [(
        "aws:TagKeys".to_string(),
        vec!["A".to_string(), "B".to_string()],
    )]
    .into();
    let keys = ["A".to_string(), "B".to_string()];
    assert!(condition(
        "ForAllValues:StringEquals",
        "aws:TagKeys",
        &keys,
        &ctx
    ));
    assert!(!condition(
        "ForAllValues:StringEquals",
        "aws:TagKeys",
        &keys[..1],
        &ctx
    ));
    assert!(condition(
        "ForAllValues:StringEquals",
        "missing",
        &keys,
        &ctx
    ));
    assert!(!condition("StringEquals", "missing", &keys, &ctx));
    assert!(
        !condition("NumericLessThan", "aws:TagKeys", &keys, &ctx),
        "unknown operators allow nothing"
    );
    let yes = ["true".to_string()];
    let no = ["false".to_string()];
    assert!(condition("Null", "missing", &yes, &ctx));
    assert!(!condition("Null", "aws:TagKeys", &yes, &ctx));
    assert!(condition("Null", "aws:TagKeys", &no, &ctx));
    assert_eq!(
        secret_name("arn:aws:secretsmanager:r:1:secret:saas/tenant/a/database-AbCdEf"),
        "saas/tenant/a/database"
    );
}
