//! Final snapshots are not kept forever: the maintenance leader deletes the ones tenantd took
//! once older than `TENANTD_FINAL_SNAPSHOT_RETENTION`, and never a snapshot someone else took.
//! In an account of the test's own, so no other test's snapshots are in reach.

mod support;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_final_snapshots_of_tenantd_go_and_other_snapshots_stay() {
    let account = unique_account();
    let rds = rds_in_account(&account).await;
    let tenant = tenant_id("snap");
    // Named like tenantd's, but not tagged as tenantd's: someone else's.
    let theirs = final_snapshot_of(&rds, &format!("saas-{tenant}-copy"), &[("Team", "data")]).await;

    let stack = Stack::new().await;
    let settings = settings(&test_env(
        &stack.db,
        &[("TENANTD_FINAL_SNAPSHOT_RETENTION", "3s")],
    ));
    let cloud = Cloud::from_sdk_config(&config_for_account(&account).await);
    let (stop, worker) = stack.spawn_worker(&settings, cloud);
    // Taken while the cleaner runs: it must outlive its retention.
    let ours = final_snapshot_of(
        &rds,
        &format!("saas-{tenant}"),
        &[
            ("ManagedBy", "tenantd"),
            ("TenantId", &tenant),
            ("Tier", "starter"),
        ],
    )
    .await;
    let taken = Instant::now();
    assert_eq!(manual_snapshots(&rds).await.len(), 2);
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
    stop.cancel();
    worker.await.unwrap();
    assert_eq!(manual_snapshots(&rds).await, std::slice::from_ref(&theirs));
    rds.delete_db_snapshot()
        .db_snapshot_identifier(&theirs)
        .send()
        .await
        .unwrap();
}
