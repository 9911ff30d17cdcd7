//! Final snapshots are not kept forever: the maintenance leader deletes the ones this
//! deployment recorded taking (`final_snapshots`, of its environment) once older than
//! `TENANTD_FINAL_SNAPSHOT_RETENTION`, after checking their tags, and never a snapshot nobody
//! recorded, however it is named or tagged. In an account of the test's own, so no other
//! test's snapshots are in reach.

use crate::support;

use std::time::{Duration, Instant};

use aws_sdk_rds::types::Tag;
use support::rds::{config_for_account, rds_in_account, unique_account};
use support::stack::*;
use support::wait_for;
use tenantd::cloud::Cloud;

/// An available instance with `tags`, then deleted with a final snapshot; returns the
/// snapshot's identifier.
async fn final_snapshot_of(rds: &aws_sdk_rds::Client, id: &str, tags: &[(&str, &str)]) -> String {
    rds.create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("tenant_admin")
        .master_user_password("Password-1234")
        .db_name("app")
        .copy_tags_to_snapshot(true)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    wait_for(
        "the instance to be available",
        Duration::from_secs(60),
        || async {
            let out = rds
                .describe_db_instances()
                .db_instance_identifier(id)
                .send()
                .await
                .ok()?;
            (out.db_instances()[0].db_instance_status() == Some("available")).then_some(())
        },
    )
    .await;
    let snapshot = format!("{id}-final-20261202000000");
    rds.delete_db_instance()
        .db_instance_identifier(id)
        .final_db_snapshot_identifier(&snapshot)
        .send()
        .await
        .unwrap();
    snapshot
}

async fn manual_snapshots(rds: &aws_sdk_rds::Client) -> Vec<String> {
    let out = rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    let mut ids: Vec<String> = out
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

/// Records a final snapshot as the deprovisioning workflow does before asking for it.
async fn record(stack: &Stack, snapshot: &str, tenant: &str, environment: &str) {
    sqlx::query("INSERT INTO tenants (id, tier, status) VALUES ($1, 'starter', 'deleted') ON CONFLICT DO NOTHING")
        .bind(tenant)
        .execute(stack.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO final_snapshots (identifier, tenant_id, job_id, instance_id, environment)
         VALUES ($1, $2, gen_random_uuid(), $3, $4)",
    )
    .bind(snapshot)
    .bind(tenant)
    .bind(format!("saas-{tenant}"))
    .bind(environment)
    .execute(stack.pool())
    .await
    .unwrap();
}

async fn recorded_state(stack: &Stack, snapshot: &str) -> (String, Option<String>) {
    sqlx::query_as("SELECT state, note FROM final_snapshots WHERE identifier = $1")
        .bind(snapshot)
        .fetch_one(stack.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_recorded_final_snapshots_of_this_environment_expire_and_only_when_still_ours() {
    let account = unique_account();
    let rds = rds_in_account(&account).await;
    let tenant = tenant_id("snap");
    let ours_tags = [
        ("ManagedBy", "tenantd"),
        ("Environment", "test"),
        ("TenantId", tenant.as_str()),
        ("Tier", "starter"),
    ];
    // Named and tagged exactly like tenantd's final snapshots, but nobody recorded them: a
    // person's copy, and another environment's.
    let unrecorded = final_snapshot_of(&rds, &format!("saas-{tenant}-copy"), &ours_tags).await;
    let other_env = final_snapshot_of(
        &rds,
        &format!("saas-{tenant}-other"),
        &[
            ("ManagedBy", "tenantd"),
            ("Environment", "production"),
            ("TenantId", tenant.as_str()),
        ],
    )
    .await;

    let stack = Stack::new().await;
    // Recorded by this deployment, but someone changed its Environment tag since: kept.
    let retagged = final_snapshot_of(
        &rds,
        &format!("saas-{tenant}-retagged"),
        &[
            ("ManagedBy", "tenantd"),
            ("Environment", "staging"),
            ("TenantId", tenant.as_str()),
        ],
    )
    .await;
    record(&stack, &retagged, &tenant, "test").await;
    // Recorded by another environment sharing this control database: not this cleaner's.
    record(&stack, &other_env, &tenant, "production").await;
    // Recorded, never taken (the delete was refused): gone.
    let never = format!("saas-{tenant}-never-final-20261202000000");
    record(&stack, &never, &tenant, "test").await;

    let settings = settings(&test_env(
        &stack.db,
        &[("TENANTD_FINAL_SNAPSHOT_RETENTION", "3s")],
    ));
    let cloud = Cloud::from_sdk_config(&config_for_account(&account).await);
    let (stop, worker) = stack.spawn_worker(&settings, cloud);
    // Taken while the cleaner runs: it must outlive its retention.
    let ours = final_snapshot_of(&rds, &format!("saas-{tenant}"), &ours_tags).await;
    record(&stack, &ours, &tenant, "test").await;
    let taken = Instant::now();
    wait_for(
        "the expired final snapshot to go",
        Duration::from_secs(60),
        || async { (!manual_snapshots(&rds).await.contains(&ours)).then_some(()) },
    )
    .await;
    assert!(
        taken.elapsed() >= Duration::from_secs(3),
        "deleted after {:?}, before its retention ended",
        taken.elapsed()
    );
    wait_for(
        "every due record to be decided",
        Duration::from_secs(60),
        || async {
            (recorded_state(&stack, &retagged).await.0 != "recorded"
                && recorded_state(&stack, &never).await.0 != "recorded")
                .then_some(())
        },
    )
    .await;
    stop.cancel();
    worker.await.unwrap();

    assert_eq!(recorded_state(&stack, &ours).await.0, "deleted");
    assert_eq!(recorded_state(&stack, &never).await.0, "gone");
    let (state, note) = recorded_state(&stack, &retagged).await;
    assert_eq!(state, "kept");
    assert!(note.as_deref().unwrap().contains("Environment"), "{note:?}");
    assert_eq!(recorded_state(&stack, &other_env).await.0, "recorded");
    let mut left = vec![unrecorded.clone(), other_env.clone(), retagged.clone()];
    left.sort();
    assert_eq!(manual_snapshots(&rds).await, left);
    for s in left {
        rds.delete_db_snapshot()
            .db_snapshot_identifier(&s)
            .send()
            .await
            .unwrap();
    }
}
