//! The local stack's RDS, driven only through the AWS SDK and a PostgreSQL client, the way
//! tenantd drives real RDS. Run with `localstack/test local_rds`.

mod support;

use std::time::{Duration, Instant};

use aws_sdk_rds::error::ProvideErrorMetadata;
use serde_json::json;
use sqlx::Connection;
use support::rds::*;

/// Generous: creating lasts LOCAL_RDS_CREATING_SECS (5 by default) plus the database creation.
fn available_timeout() -> Duration {
    Duration::from_secs(creating_secs() + 60)
}

async fn wait_available(rds: &aws_sdk_rds::Client, id: &str) -> aws_sdk_rds::types::DbInstance {
    wait_status(rds, id, "available", available_timeout()).await;
    describe(rds, id).await.expect("instance exists")
}

async fn delete_skip_snapshot(rds: &aws_sdk_rds::Client, id: &str) {
    let out = rds
        .delete_db_instance()
        .db_instance_identifier(id)
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteDBInstance {id}: {}", error_text(&e)));
    assert_eq!(
        out.db_instance().and_then(|i| i.db_instance_status()),
        Some("deleting")
    );
}

#[tokio::test]
async fn same_master_user_on_two_instances_each_password_opens_only_its_own() {
    let rds = rds().await;
    let control = Control::new();
    let (a, b) = (unique_id("iso-a"), unique_id("iso-b"));
    let (pw_a, pw_b) = ("Password-A-123", "Password-B-456");

    let created_a = create_instance(&rds, &a, pw_a, false).await;
    let created_b = create_instance(&rds, &b, pw_b, false).await;
    assert_eq!(status_of(&created_a), "creating");
    assert_eq!(status_of(&created_b), "creating");

    let seen = wait_status(&rds, &a, "available", available_timeout()).await;
    if creating_secs() > 0 {
        assert_eq!(seen, ["creating", "available"], "statuses of {a}");
    }
    let inst_a = describe(&rds, &a).await.unwrap();
    let inst_b = wait_available(&rds, &b).await;
    // Still available when asked again: the status is not a one-shot.
    for _ in 0..3 {
        assert_eq!(status_of(&describe(&rds, &a).await.unwrap()), "available");
    }

    let (host_a, port_a) = endpoint(&inst_a);
    let (host_b, port_b) = endpoint(&inst_b);
    assert_ne!((host_a.as_str(), port_a), (host_b.as_str(), port_b));

    // Each master user owns its database and can create tables in it.
    let mut conn_a = login(&host_a, port_a, MASTER_USER, pw_a, DB_NAME)
        .await
        .expect("log in to A with A's password");
    sqlx::raw_sql("create table notes (body text); insert into notes values ('from a')")
        .execute(&mut conn_a)
        .await
        .expect("create a table in A");
    let mut conn_b = login(&host_b, port_b, MASTER_USER, pw_b, DB_NAME)
        .await
        .expect("log in to B with B's password");
    let b_has_notes: bool = sqlx::query_scalar("select to_regclass('notes') is not null")
        .fetch_one(&mut conn_b)
        .await
        .unwrap();
    assert!(!b_has_notes, "B must not see A's table");

    // The other instance's password (or a wrong one) fails with 28P01, as on RDS.
    for (host, port, password) in [
        (&host_a, port_a, pw_b),
        (&host_b, port_b, pw_a),
        (&host_a, port_a, "not-the-password"),
    ] {
        let err = login(host, port, MASTER_USER, password, DB_NAME)
            .await
            .expect_err("a foreign password must not log in");
        assert_eq!(sqlstate(&err).as_deref(), Some("28P01"), "{err}");
    }

    // Delete without a final snapshot: `deleting`, then gone, and the data with it.
    let real_a = control.instance(&a).await.expect("provider knows A")["real_database"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(database_exists(&real_a).await);
    conn_a.close().await.ok();
    delete_skip_snapshot(&rds, &a).await;
    wait_gone(&rds, &a, Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while database_exists(&real_a).await || role_exists(&real_a).await {
        assert!(
            Instant::now() < deadline,
            "database/role {real_a} not dropped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        login(&host_a, port_a, MASTER_USER, pw_a, DB_NAME)
            .await
            .is_err(),
        "a deleted instance's endpoint must not log in"
    );
    let err = rds
        .describe_db_instances()
        .db_instance_identifier(&a)
        .send()
        .await
        .expect_err("gone");
    assert_eq!(
        code_and_status(&err),
        (Some("DBInstanceNotFound".into()), Some(404))
    );

    // B is untouched.
    let still: i64 = sqlx::query_scalar("select 1::bigint")
        .fetch_one(&mut conn_b)
        .await
        .unwrap();
    assert_eq!(still, 1);
    conn_b.close().await.ok();
    delete_skip_snapshot(&rds, &b).await;
    wait_gone(&rds, &b, Duration::from_secs(30)).await;
}

#[tokio::test]
async fn duplicate_identifier_is_refused() {
    let rds = rds().await;
    let id = unique_id("dup");
    create_instance(&rds, &id, "Password-1234", false).await;
    let err = rds
        .create_db_instance()
        .db_instance_identifier(&id)
        .engine("postgres")
        .db_instance_class("db.t4g.micro")
        .allocated_storage(20)
        .master_username(MASTER_USER)
        .master_user_password("Password-1234")
        .db_name(DB_NAME)
        .send()
        .await
        .expect_err("second create with the same identifier");
    assert_eq!(
        code_and_status(&err),
        (Some("DBInstanceAlreadyExists".into()), Some(400))
    );
    delete_skip_snapshot(&rds, &id).await;
    wait_gone(&rds, &id, Duration::from_secs(30)).await;
}

#[tokio::test]
async fn modify_protection_and_delete_with_final_snapshot() {
    let rds = rds().await;
    let id = unique_id("mod");
    create_instance(&rds, &id, "Password-Old-1", true).await;

    // Not modifiable while creating.
    if creating_secs() > 0 {
        let err = rds
            .modify_db_instance()
            .db_instance_identifier(&id)
            .backup_retention_period(7)
            .apply_immediately(true)
            .send()
            .await
            .expect_err("modify while creating");
        assert_eq!(
            code_and_status(&err).0.as_deref(),
            Some("InvalidDBInstanceState")
        );
    }
    let inst = wait_available(&rds, &id).await;
    let (host, port) = endpoint(&inst);

    let out = rds
        .modify_db_instance()
        .db_instance_identifier(&id)
        .backup_retention_period(7)
        .preferred_backup_window("05:00-05:30")
        .preferred_maintenance_window("mon:06:00-mon:06:30")
        .master_user_password("Password-New-2")
        .apply_immediately(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ModifyDBInstance: {}", error_text(&e)));
    let modifying_secs: u64 = stack_env("LOCAL_RDS_MODIFYING_SECS").parse().unwrap();
    if modifying_secs > 0 {
        assert_eq!(status_of(out.db_instance().unwrap()), "modifying");
        assert_eq!(status_of(&describe(&rds, &id).await.unwrap()), "modifying");
    }
    let inst = wait_available(&rds, &id).await;
    assert_eq!(inst.backup_retention_period(), Some(7));
    assert_eq!(inst.preferred_backup_window(), Some("05:00-05:30"));
    assert_eq!(
        inst.preferred_maintenance_window(),
        Some("mon:06:00-mon:06:30")
    );
    // The new master password is the one that logs in.
    login(&host, port, MASTER_USER, "Password-New-2", DB_NAME)
        .await
        .expect("log in with the new password")
        .close()
        .await
        .ok();
    let err = login(&host, port, MASTER_USER, "Password-Old-1", DB_NAME)
        .await
        .expect_err("old password");
    assert_eq!(sqlstate(&err).as_deref(), Some("28P01"));

    // DeletionProtection refuses the delete with RDS's code.
    let err = rds
        .delete_db_instance()
        .db_instance_identifier(&id)
        .skip_final_snapshot(true)
        .send()
        .await
        .expect_err("protected instance");
    assert_eq!(
        code_and_status(&err),
        (Some("InvalidParameterCombination".into()), Some(400))
    );
    assert_eq!(status_of(&describe(&rds, &id).await.unwrap()), "available");

    // Without SkipFinalSnapshot, a snapshot name is required.
    rds.modify_db_instance()
        .db_instance_identifier(&id)
        .deletion_protection(false)
        .apply_immediately(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ModifyDBInstance: {}", error_text(&e)));
    let inst = wait_available(&rds, &id).await;
    assert_eq!(inst.deletion_protection(), Some(false));
    let err = rds
        .delete_db_instance()
        .db_instance_identifier(&id)
        .send()
        .await
        .expect_err("no snapshot decision");
    assert_eq!(
        code_and_status(&err).0.as_deref(),
        Some("InvalidParameterCombination")
    );

    let snapshot = format!("{id}-final");
    let out = rds
        .delete_db_instance()
        .db_instance_identifier(&id)
        .final_db_snapshot_identifier(&snapshot)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteDBInstance: {}", error_text(&e)));
    assert_eq!(status_of(out.db_instance().unwrap()), "deleting");
    wait_gone(&rds, &id, Duration::from_secs(30)).await;
    let snaps = rds
        .describe_db_snapshots()
        .db_snapshot_identifier(&snapshot)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeDBSnapshots: {}", error_text(&e)));
    let snaps = snaps.db_snapshots();
    assert_eq!(snaps.len(), 1, "final snapshot listed");
    assert_eq!(snaps[0].db_instance_identifier(), Some(id.as_str()));
    rds.delete_db_snapshot()
        .db_snapshot_identifier(&snapshot)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteDBSnapshot: {}", error_text(&e)));
}

#[tokio::test]
async fn filters_and_tags_come_back() {
    let rds = rds().await;
    let ids = [unique_id("flt-a"), unique_id("flt-b")];
    for id in &ids {
        create_instance(&rds, id, "Password-1234", false).await;
    }
    let out = rds
        .describe_db_instances()
        .filters(
            aws_sdk_rds::types::Filter::builder()
                .name("db-instance-id")
                .values(&ids[0])
                .values(&ids[1])
                .values(unique_id("missing"))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeDBInstances with filter: {}", error_text(&e)));
    let mut found: Vec<_> = out
        .db_instances()
        .iter()
        .map(|i| i.db_instance_identifier().unwrap().to_string())
        .collect();
    found.sort();
    assert_eq!(found, ids);
    for inst in out.db_instances() {
        let id = inst.db_instance_identifier().unwrap();
        let tags = inst.tag_list();
        assert!(
            tags.iter()
                .any(|t| t.key() == Some("tenant") && t.value() == Some(id)),
            "TagList of {id}: {tags:?}"
        );
        let listed = rds
            .list_tags_for_resource()
            .resource_name(inst.db_instance_arn().unwrap())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListTagsForResource: {}", error_text(&e)));
        assert!(
            listed
                .tag_list()
                .iter()
                .any(|t| t.key() == Some("tenant") && t.value() == Some(id))
        );
    }
    for id in &ids {
        delete_skip_snapshot(&rds, id).await;
    }
}

#[tokio::test]
async fn injected_faults_are_seen_with_their_code_status_and_latency() {
    let rds = rds_no_retry().await;
    let control = Control::new();
    let id = unique_id("flt");

    // CreateDBInstance fails once with InternalFailure/500, then goes through.
    control
        .fault(
            json!({"operation": "CreateDBInstance", "count": 1, "code": "InternalFailure",
                      "status": 500, "match": {"DBInstanceIdentifier": id}}),
        )
        .await;
    let err = rds
        .create_db_instance()
        .db_instance_identifier(&id)
        .engine("postgres")
        .db_instance_class("db.t4g.micro")
        .allocated_storage(20)
        .master_username(MASTER_USER)
        .master_user_password("Password-1234")
        .db_name(DB_NAME)
        .send()
        .await
        .expect_err("injected InternalFailure");
    assert_eq!(
        code_and_status(&err),
        (Some("InternalFailure".into()), Some(500))
    );
    assert!(
        describe(&rds, &id).await.is_none(),
        "a failed create creates nothing"
    );
    create_instance(&rds, &id, "Password-1234", false).await;

    // The next 2 DescribeDBInstances of this instance are throttled, the third answers.
    control
        .fault(
            json!({"operation": "DescribeDBInstances", "count": 2, "code": "Throttling",
                      "status": 400, "message": "Rate exceeded",
                      "match": {"DBInstanceIdentifier": id}}),
        )
        .await;
    for _ in 0..2 {
        let err = rds
            .describe_db_instances()
            .db_instance_identifier(&id)
            .send()
            .await
            .expect_err("injected Throttling");
        assert_eq!(
            code_and_status(&err),
            (Some("Throttling".into()), Some(400))
        );
        assert_eq!(err.message(), Some("Rate exceeded"));
    }
    assert!(describe(&rds, &id).await.is_some());

    // Latency: the call succeeds, late.
    control
        .fault(
            json!({"operation": "DescribeDBInstances", "count": 1, "latency_ms": 1500,
                      "match": {"DBInstanceIdentifier": id}}),
        )
        .await;
    let started = Instant::now();
    assert!(describe(&rds, &id).await.is_some());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "latency not added: {took:?}"
    );
    let started = Instant::now();
    describe(&rds, &id).await;
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "latency applied once only"
    );

    // The SDK's own retries absorb a single throttle (as they will for tenantd).
    control
        .fault(
            json!({"operation": "DescribeDBInstances", "count": 1, "code": "Throttling",
                      "status": 400, "match": {"DBInstanceIdentifier": id}}),
        )
        .await;
    assert!(describe(&support::rds::rds().await, &id).await.is_some());

    // A fault can be withdrawn before it fires.
    let fault = control
        .fault(
            json!({"operation": "DeleteDBInstance", "count": 5, "code": "InternalFailure",
                      "status": 503, "match": {"DBInstanceIdentifier": id}}),
        )
        .await;
    assert_eq!(control.remove_fault(fault).await, 200);
    assert_eq!(control.remove_fault(fault).await, 404);
    let pending = control.faults().await;
    assert!(
        !pending["faults"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["match"]["DBInstanceIdentifier"] == id.as_str()),
        "no fault of this test left: {pending}"
    );
    delete_skip_snapshot(&rds, &id).await;
}

#[tokio::test]
async fn an_instance_sent_to_failed_stays_failed_until_deleted() {
    let rds = rds().await;
    let control = Control::new();
    let id = unique_id("fail");
    create_instance(&rds, &id, "Password-1234", false).await;
    wait_available(&rds, &id).await;

    let shown = control.set_status(&id, Some("failed")).await;
    assert_eq!(shown["status"], "failed");
    for _ in 0..3 {
        assert_eq!(status_of(&describe(&rds, &id).await.unwrap()), "failed");
    }
    let err = rds
        .modify_db_instance()
        .db_instance_identifier(&id)
        .backup_retention_period(3)
        .apply_immediately(true)
        .send()
        .await
        .expect_err("modify a failed instance");
    assert_eq!(
        code_and_status(&err),
        (Some("InvalidDBInstanceState".into()), Some(400))
    );
    // A failed instance can still be deleted.
    delete_skip_snapshot(&rds, &id).await;
    wait_gone(&rds, &id, Duration::from_secs(30)).await;
}

#[tokio::test]
async fn a_failed_status_can_be_lifted() {
    let rds = rds().await;
    let control = Control::new();
    let id = unique_id("lift");
    create_instance(&rds, &id, "Password-1234", false).await;
    wait_available(&rds, &id).await;
    control.set_status(&id, Some("storage-full")).await;
    assert_eq!(
        status_of(&describe(&rds, &id).await.unwrap()),
        "storage-full"
    );
    control.set_status(&id, None).await;
    assert_eq!(status_of(&describe(&rds, &id).await.unwrap()), "available");
    delete_skip_snapshot(&rds, &id).await;
}

#[test]
#[should_panic(expected = "localstack/test")]
fn missing_stack_env_says_how_to_run() {
    stack_env("TENANTD_SURELY_UNSET_VARIABLE");
}
