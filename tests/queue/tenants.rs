//! The tenant requests against a real control database (no worker runs): creation, replays,
//! conflicts, re-provisioning and the precise errors the API will map.

use crate::support;

use support::fresh_db;
use tenantd::config::Tiers;
use tenantd::tenants::{self, TenantError, TenantFilter, TenantStatus};

#[tokio::test]
async fn a_provision_request_creates_the_tenant_and_one_job_and_replays_return_it() {
    let db = fresh_db().await;
    let tiers = Tiers::defaults();
    let (tenant, job, created) = tenants::request_provision(&db.pool, &tiers, "acme", "pro", 5)
        .await
        .unwrap();
    assert!(created);
    assert_eq!(tenant.status, TenantStatus::Provisioning);
    assert_eq!(
        (job.kind.as_str(), job.step.as_str()),
        ("provision", "credentials")
    );
    assert_eq!(job.args.0["tier"], "pro");

    let (_, again, created) = tenants::request_provision(&db.pool, &tiers, "acme", "pro", 5)
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.id, job.id);

    let err = tenants::request_provision(&db.pool, &tiers, "acme", "starter", 5)
        .await
        .unwrap_err();
    assert!(matches!(err, TenantError::Conflict { .. }), "{err}");
}

#[tokio::test]
async fn bad_ids_and_unknown_tiers_are_refused_precisely() {
    let db = fresh_db().await;
    let tiers = Tiers::defaults();
    let err = tenants::request_provision(&db.pool, &tiers, "Acme", "pro", 5)
        .await
        .unwrap_err();
    assert!(matches!(err, TenantError::InvalidId(_)));
    let err = tenants::request_provision(&db.pool, &tiers, "acme", "platinum", 5)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TenantError::UnknownTier { tier, .. } if tier == "platinum"),
        "{err}"
    );
    assert!(err.to_string().contains("enterprise, pro, starter"));
    let err = tenants::request_deprovision(
        &db.pool,
        &tenantd::config::Tiers::defaults(),
        "nobody",
        tenantd::tenants::Deletion::KEEP_SNAPSHOT,
        5,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, TenantError::NotFound(_)));
}

#[tokio::test]
async fn deprovisioning_is_refused_while_provisioning_runs() {
    let db = fresh_db().await;
    let tiers = Tiers::defaults();
    tenants::request_provision(&db.pool, &tiers, "busy", "starter", 5)
        .await
        .unwrap();
    let err = tenants::request_deprovision(
        &db.pool,
        &tenantd::config::Tiers::defaults(),
        "busy",
        tenantd::tenants::Deletion::KEEP_SNAPSHOT,
        5,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, TenantError::Conflict { .. }), "{err}");
}

#[tokio::test]
async fn a_failed_tenant_may_be_provisioned_again_on_another_tier() {
    let db = fresh_db().await;
    let tiers = Tiers::defaults();
    let (_, job, _) = tenants::request_provision(&db.pool, &tiers, "again", "starter", 5)
        .await
        .unwrap();
    // End the job and the tenant as a failed rollback would.
    sqlx::query(
        "UPDATE jobs SET state = 'failed', error = 'boom', finished_at = now() WHERE id = $1",
    )
    .bind(job.id)
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE tenants SET status = 'failed', error = 'boom' WHERE id = 'again'")
        .execute(&db.pool)
        .await
        .unwrap();
    let (tenant, second, created) = tenants::request_provision(&db.pool, &tiers, "again", "pro", 5)
        .await
        .unwrap();
    assert!(created);
    assert_ne!(second.id, job.id);
    assert_eq!(tenant.tier, "pro");
    assert_eq!(tenant.status, TenantStatus::Provisioning);
    assert_eq!(tenant.error, None);
}

#[tokio::test]
async fn tenants_are_listed_in_pages_by_status() {
    let db = fresh_db().await;
    let tiers = Tiers::defaults();
    for id in ["t-a", "t-b", "t-c"] {
        tenants::request_provision(&db.pool, &tiers, id, "starter", 5)
            .await
            .unwrap();
    }
    let (page, next) = tenants::list(&db.pool, &TenantFilter::default(), 2, None)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["t-a", "t-b"]
    );
    let (page, next) = tenants::list(&db.pool, &TenantFilter::default(), 2, next.as_deref())
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(next, None);
    let ready = TenantFilter {
        status: Some(TenantStatus::Ready),
        ..TenantFilter::default()
    };
    let (ready, _) = tenants::list(&db.pool, &ready, 10, None).await.unwrap();
    assert!(ready.is_empty());
    // Tier and id prefix narrow the listing too.
    let by_prefix = TenantFilter {
        tier: Some("starter".into()),
        prefix: Some("t-b".into()),
        ..TenantFilter::default()
    };
    let (found, _) = tenants::list(&db.pool, &by_prefix, 10, None).await.unwrap();
    assert_eq!(
        found.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["t-b"]
    );
    let other_tier = TenantFilter {
        tier: Some("pro".into()),
        ..TenantFilter::default()
    };
    let (found, _) = tenants::list(&db.pool, &other_tier, 10, None)
        .await
        .unwrap();
    assert!(found.is_empty());
    assert!(tenants::get(&db.pool, "t-c").await.unwrap().is_some());
}
