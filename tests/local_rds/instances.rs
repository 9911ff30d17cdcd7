//! The local stack's RDS, driven only through the AWS SDK and a PostgreSQL client, the way
//! tenantd drives real RDS. Run with
//! `localstack/test --test local_rds -E 'test(/^instances::/)'`.

use std::time::{Duration, Instant};

use crate::rds::*;
use aws_sdk_rds::error::ProvideErrorMetadata;
use serde_json::json;
use sqlx::Connection;

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
    assert!(describe(&crate::rds::rds().await, &id).await.is_some());

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

// --- engine versions --------------------------------------------------------------------------

async fn engine_versions(
    rds: &aws_sdk_rds::Client,
    version: Option<&str>,
    default_only: bool,
    include_all: bool,
) -> Vec<aws_sdk_rds::types::DbEngineVersion> {
    let mut req = rds
        .describe_db_engine_versions()
        .engine("postgres")
        .default_only(default_only)
        .include_all(include_all);
    if let Some(v) = version {
        req = req.engine_version(v);
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("DescribeDBEngineVersions: {}", error_text(&e)))
        .db_engine_versions
        .unwrap_or_default()
}

fn versions_of(list: &[aws_sdk_rds::types::DbEngineVersion]) -> Vec<String> {
    list.iter()
        .map(|v| v.engine_version().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn engine_versions_list_majors_with_one_default_each() {
    let rds = rds().await;

    let all = engine_versions(&rds, None, false, false).await;
    let mut majors: Vec<&str> = all
        .iter()
        .map(|v| v.major_engine_version().unwrap())
        .collect();
    majors.dedup();
    assert_eq!(majors, ["13", "14", "15", "16", "17"]);
    for v in &all {
        assert_eq!(v.engine(), Some("postgres"));
        assert_eq!(v.status(), Some("available"), "{v:?}");
        let major = v.major_engine_version().unwrap();
        assert!(
            v.engine_version()
                .unwrap()
                .starts_with(&format!("{major}."))
        );
        assert_eq!(
            v.db_parameter_group_family(),
            Some(format!("postgres{major}").as_str())
        );
    }

    // DefaultOnly without a version: the engine's default, the newest major's default.
    assert_eq!(
        versions_of(&engine_versions(&rds, None, true, false).await),
        ["17.4"]
    );
    // A major: its minors; with DefaultOnly, exactly its default.
    assert_eq!(
        versions_of(&engine_versions(&rds, Some("16"), false, false).await),
        ["16.3", "16.4", "16.5", "16.6", "16.8", "16.9"]
    );
    for (major, default) in [
        ("13", "13.20"),
        ("14", "14.17"),
        ("15", "15.12"),
        ("16", "16.8"),
        ("17", "17.4"),
    ] {
        assert_eq!(
            versions_of(&engine_versions(&rds, Some(major), true, false).await),
            [default],
            "default of {major}"
        );
    }
    // Deprecated minors are listed only with IncludeAll.
    let with_old = engine_versions(&rds, Some("16"), false, true).await;
    let deprecated: Vec<_> = with_old
        .iter()
        .filter(|v| v.status() == Some("deprecated"))
        .map(|v| v.engine_version().unwrap())
        .collect();
    assert_eq!(deprecated, ["16.1", "16.2"]);
    // One exact version.
    let one = engine_versions(&rds, Some("16.8"), false, false).await;
    assert_eq!(versions_of(&one), ["16.8"]);
    assert_eq!(one[0].major_engine_version(), Some("16"));
    assert!(
        one[0]
            .valid_upgrade_target()
            .iter()
            .any(|t| t.engine_version() == Some("17.4")
                && t.is_major_version_upgrade() == Some(true))
    );
}

#[tokio::test]
async fn create_takes_listed_versions_only_and_resolves_a_major_to_its_default() {
    let rds = rds().await;

    for bad in ["16.7", "16.2", "12", "9.6.3"] {
        let id = unique_id("ver-bad");
        let err = create_request(&rds, &id, "Password-1234", false)
            .engine_version(bad)
            .send()
            .await
            .expect_err("a version RDS does not offer");
        assert_eq!(
            code_and_status(&err),
            (Some("InvalidParameterCombination".into()), Some(400)),
            "{bad}"
        );
        assert_eq!(
            err.message(),
            Some(format!("Cannot find version {bad} for postgres").as_str())
        );
        assert!(describe(&rds, &id).await.is_none(), "nothing created");
    }

    let (major, exact, none) = (
        unique_id("ver-major"),
        unique_id("ver-exact"),
        unique_id("ver-none"),
    );
    let created = create_request(&rds, &major, "Password-1234", false)
        .engine_version("15")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateDBInstance 15: {}", error_text(&e)));
    assert_eq!(
        created.db_instance().unwrap().engine_version(),
        Some("15.12")
    );
    create_request(&rds, &exact, "Password-1234", false)
        .engine_version("16.9")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateDBInstance 16.9: {}", error_text(&e)));
    rds.create_db_instance()
        .db_instance_identifier(&none)
        .engine("postgres")
        .db_instance_class("db.t4g.micro")
        .allocated_storage(20)
        .master_username(MASTER_USER)
        .master_user_password("Password-1234")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateDBInstance without version: {}", error_text(&e)));
    for (id, want) in [(&major, "15.12"), (&exact, "16.9"), (&none, "17.4")] {
        let inst = describe(&rds, id).await.unwrap();
        assert_eq!(inst.engine_version(), Some(want), "{id}");
    }
    for id in [&major, &exact, &none] {
        delete_skip_snapshot(&rds, id).await;
    }
}

// --- TLS ------------------------------------------------------------------------------------

#[tokio::test]
async fn endpoints_speak_tls_verified_by_the_stack_ca_and_plain_still_works() {
    use sqlx::postgres::PgSslMode;
    let rds = rds().await;
    let id = unique_id("tls");
    let password = "Password-1234";
    create_instance(&rds, &id, password, false).await;
    let inst = wait_available(&rds, &id).await;
    let (host, port) = endpoint(&inst);
    assert_eq!(host, "127.0.0.1");
    let ca = std::path::PathBuf::from(stack_env("TENANTD_TENANT_DB_CA_FILE"));

    // verify-full: the certificate chains to the stack's CA and names 127.0.0.1 and localhost.
    for h in [host.as_str(), "localhost"] {
        let mut conn = login_tls(
            h,
            port,
            MASTER_USER,
            password,
            DB_NAME,
            PgSslMode::VerifyFull,
            Some(&ca),
        )
        .await
        .unwrap_or_else(|e| panic!("verify-full login to {h}: {e}"));
        let one: i64 = sqlx::query_scalar("select 1::bigint")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(one, 1);
        conn.close().await.ok();
    }
    // require (no verification) and plain TCP keep working; a wrong password is still 28P01.
    for mode in [PgSslMode::Require, PgSslMode::Disable, PgSslMode::Prefer] {
        login_tls(&host, port, MASTER_USER, password, DB_NAME, mode, None)
            .await
            .unwrap_or_else(|e| panic!("{mode:?} login: {e}"))
            .close()
            .await
            .ok();
    }
    let err = login_tls(
        &host,
        port,
        MASTER_USER,
        "not-the-password",
        DB_NAME,
        PgSslMode::VerifyFull,
        Some(&ca),
    )
    .await
    .expect_err("wrong password over TLS");
    assert_eq!(sqlstate(&err).as_deref(), Some("28P01"), "{err}");

    // Another CA does not verify the endpoint: a TLS error, before any login.
    let dir = std::env::temp_dir().join(format!("lrds-ca-{}", unique_id("x")));
    std::fs::create_dir_all(&dir).unwrap();
    let other = dir.join("other-ca.pem");
    throwaway_ca(&other);
    let err = login_tls(
        &host,
        port,
        MASTER_USER,
        password,
        DB_NAME,
        PgSslMode::VerifyFull,
        Some(&other),
    )
    .await
    .expect_err("a certificate from another CA must not verify");
    // sqlx's rustls reports a rejected certificate as an I/O error of kind InvalidData.
    let tls_rejected = match &err {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::InvalidData
                && format!("{io:?}").contains("InvalidCertificate(UnknownIssuer)")
        }
        _ => false,
    };
    assert!(tls_rejected, "expected a certificate error, got {err:?}");
    std::fs::remove_dir_all(&dir).ok();
    delete_skip_snapshot(&rds, &id).await;
}

// --- quotas ---------------------------------------------------------------------------------

fn quota(
    out: &aws_sdk_rds::operation::describe_account_attributes::DescribeAccountAttributesOutput,
    name: &str,
) -> (i64, i64) {
    let q = out
        .account_quotas()
        .iter()
        .find(|q| q.account_quota_name() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in AccountQuotas"));
    (q.used().unwrap(), q.max().unwrap())
}

#[tokio::test]
async fn instance_and_storage_quotas_are_per_account() {
    let control = Control::new();
    let account = unique_account();
    let rds = rds_in_account(&account).await;

    // A fresh account has RDS's default quotas and uses nothing.
    let attrs = rds
        .describe_account_attributes()
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeAccountAttributes: {}", error_text(&e)));
    assert_eq!(quota(&attrs, "DBInstances"), (0, 40));
    assert_eq!(quota(&attrs, "AllocatedStorage"), (0, 100000));
    assert_eq!(quota(&attrs, "ManualSnapshots"), (0, 100));

    let (status, body) = control
        .post(
            "/quotas",
            json!({"account": account, "region": "us-east-1", "DBInstances": 2, "AllocatedStorage": 100}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["quotas"]["DBInstances"]["Max"], 2);

    let (a, b, c) = (unique_id("q-a"), unique_id("q-b"), unique_id("q-c"));
    create_instance(&rds, &a, "Password-1234", false).await;
    create_instance(&rds, &b, "Password-1234", false).await;
    let err = create_request(&rds, &c, "Password-1234", false)
        .send()
        .await
        .expect_err("a third instance exceeds DBInstances = 2");
    assert_eq!(
        code_and_status(&err),
        (Some("InstanceQuotaExceeded".into()), Some(400))
    );
    assert_eq!(err.message(), Some("DB Instance quota exceeded"));
    assert!(describe(&rds, &c).await.is_none());

    // Room for instances, not for storage: 40 GiB used + 80 > 100.
    control
        .post("/quotas", json!({"account": account, "DBInstances": 10}))
        .await;
    let err = create_request(&rds, &c, "Password-1234", false)
        .allocated_storage(80)
        .send()
        .await
        .expect_err("80 more GiB exceed AllocatedStorage = 100");
    assert_eq!(
        code_and_status(&err),
        (Some("StorageQuotaExceeded".into()), Some(400))
    );
    // Growing an instance counts too.
    wait_available(&rds, &a).await;
    let err = rds
        .modify_db_instance()
        .db_instance_identifier(&a)
        .allocated_storage(100)
        .apply_immediately(true)
        .send()
        .await
        .expect_err("20 -> 100 GiB exceeds the storage quota");
    assert_eq!(
        code_and_status(&err),
        (Some("StorageQuotaExceeded".into()), Some(400))
    );

    let attrs = rds.describe_account_attributes().send().await.unwrap();
    assert_eq!(quota(&attrs, "DBInstances"), (2, 10));
    assert_eq!(quota(&attrs, "AllocatedStorage"), (40, 100));
    // The default account is untouched by this and keeps limits the shared suite never reaches.
    let default = crate::rds::rds()
        .await
        .describe_account_attributes()
        .send()
        .await
        .unwrap();
    assert!(quota(&default, "DBInstances").1 >= 100_000);
    let (_, view) = control
        .get(&format!("/quotas?account={account}&region=us-east-1"))
        .await;
    assert_eq!(
        view["quotas"]["AllocatedStorage"],
        json!({"Max": 100, "Used": 40})
    );

    for id in [&a, &b] {
        delete_skip_snapshot(&rds, id).await;
    }
    let attrs = rds.describe_account_attributes().send().await.unwrap();
    assert_eq!(quota(&attrs, "DBInstances"), (0, 10));
}

// --- stop and start -------------------------------------------------------------------------

fn secs_env(name: &str) -> u64 {
    stack_env(name).parse().expect("a number of seconds")
}

#[tokio::test]
async fn stop_and_start_go_through_their_statuses_and_close_the_endpoint() {
    let rds = rds().await;
    let control = Control::new();
    let id = unique_id("stop");
    let password = "Password-1234";
    create_instance(&rds, &id, password, false).await;

    // Not stoppable while creating.
    if creating_secs() > 0 {
        let err = rds
            .stop_db_instance()
            .db_instance_identifier(&id)
            .send()
            .await
            .expect_err("stop while creating");
        assert_eq!(
            code_and_status(&err),
            (Some("InvalidDBInstanceState".into()), Some(400))
        );
    }
    let inst = wait_available(&rds, &id).await;
    let (host, port) = endpoint(&inst);
    let mut open = login(&host, port, MASTER_USER, password, DB_NAME)
        .await
        .expect("log in while available");

    let err = rds
        .start_db_instance()
        .db_instance_identifier(&id)
        .send()
        .await
        .expect_err("start an available instance");
    assert_eq!(
        code_and_status(&err),
        (Some("InvalidDBInstanceState".into()), Some(400))
    );
    assert_eq!(
        err.message(),
        Some(format!("Instance {id} is not stopped, it cannot be started.").as_str())
    );

    let out = rds
        .stop_db_instance()
        .db_instance_identifier(&id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("StopDBInstance: {}", error_text(&e)));
    let stopping = secs_env("LOCAL_RDS_STOPPING_SECS") > 0;
    if stopping {
        assert_eq!(status_of(out.db_instance().unwrap()), "stopping");
        let err = rds
            .stop_db_instance()
            .db_instance_identifier(&id)
            .send()
            .await
            .expect_err("stop a stopping instance");
        assert_eq!(
            code_and_status(&err),
            (Some("InvalidDBInstanceState".into()), Some(400))
        );
        assert_eq!(
            err.message(),
            Some(format!("Instance {id} is not in available state.").as_str())
        );
    }
    // The open session is gone and no new login gets through.
    assert!(
        sqlx::query("select 1").execute(&mut open).await.is_err(),
        "a session must not survive the stop"
    );
    let seen = wait_status(&rds, &id, "stopped", Duration::from_secs(30)).await;
    if stopping {
        assert_eq!(seen, ["stopping", "stopped"]);
    }
    let err = login(&host, port, MASTER_USER, password, DB_NAME)
        .await
        .expect_err("a stopped instance takes no logins");
    assert!(
        sqlstate(&err).is_none(),
        "refused by the network, not by PostgreSQL: {err}"
    );

    // A stopped instance cannot be modified or stopped again.
    let err = rds
        .modify_db_instance()
        .db_instance_identifier(&id)
        .backup_retention_period(3)
        .apply_immediately(true)
        .send()
        .await
        .expect_err("modify a stopped instance");
    assert_eq!(
        code_and_status(&err),
        (Some("InvalidDBInstanceState".into()), Some(400))
    );
    let err = rds
        .stop_db_instance()
        .db_instance_identifier(&id)
        .send()
        .await
        .expect_err("stop a stopped instance");
    assert_eq!(
        code_and_status(&err).0.as_deref(),
        Some("InvalidDBInstanceState")
    );

    let out = rds
        .start_db_instance()
        .db_instance_identifier(&id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("StartDBInstance: {}", error_text(&e)));
    let starting = secs_env("LOCAL_RDS_STARTING_SECS") > 0;
    if starting {
        assert_eq!(status_of(out.db_instance().unwrap()), "starting");
        assert!(
            login(&host, port, MASTER_USER, password, DB_NAME)
                .await
                .is_err(),
            "no logins while starting"
        );
    }
    let seen = wait_status(&rds, &id, "available", Duration::from_secs(30)).await;
    if starting {
        assert_eq!(seen, ["starting", "available"]);
    }
    login(&host, port, MASTER_USER, password, DB_NAME)
        .await
        .expect("log in again after the start")
        .close()
        .await
        .ok();

    // RDS starts an instance left stopped for 7 days by itself.
    let (status, body) = control
        .post(&format!("/instances/{id}/auto-start"), json!({}))
        .await;
    assert_eq!(status, 409, "auto-start of an available instance: {body}");
    rds.stop_db_instance()
        .db_instance_identifier(&id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("StopDBInstance: {}", error_text(&e)));
    wait_status(&rds, &id, "stopped", Duration::from_secs(30)).await;
    let (status, body) = control
        .post(&format!("/instances/{id}/auto-start"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let seen = wait_status(&rds, &id, "available", Duration::from_secs(30)).await;
    if starting {
        assert_eq!(seen, ["starting", "available"]);
    }
    login(&host, port, MASTER_USER, password, DB_NAME)
        .await
        .expect("log in after the automatic start")
        .close()
        .await
        .ok();
    delete_skip_snapshot(&rds, &id).await;
}

// --- modifications for tier changes, tags ----------------------------------------------------

#[tokio::test]
async fn tier_change_modifications_are_applied_and_described_back() {
    let rds = rds().await;
    let id = unique_id("tier");
    create_instance(&rds, &id, "Password-1234", false).await;
    let inst = wait_available(&rds, &id).await;
    assert_eq!(inst.allocated_storage(), Some(20));
    assert_eq!(inst.performance_insights_enabled(), Some(true));
    assert_eq!(inst.performance_insights_retention_period(), Some(7));
    assert_eq!(
        inst.max_allocated_storage(),
        None,
        "no autoscaling unless asked"
    );
    let dbi = inst.dbi_resource_id().unwrap().to_string();
    assert!(dbi.starts_with("db-") && dbi.len() == 29, "{dbi}");

    // gp3 below 400 GiB takes no IOPS/throughput for PostgreSQL.
    let err = rds
        .modify_db_instance()
        .db_instance_identifier(&id)
        .iops(12000)
        .apply_immediately(true)
        .send()
        .await
        .expect_err("IOPS on 20 GiB of gp3");
    assert_eq!(
        code_and_status(&err),
        (Some("InvalidParameterCombination".into()), Some(400))
    );
    assert_eq!(
        err.message(),
        Some(
            "You can't specify IOPS or storage throughput for engine postgres and a storage size less than 400."
        )
    );

    // A tier change: class, storage with IOPS and throughput, Multi-AZ, backups, insights,
    // protection and storage autoscaling, all at once.
    let out = rds
        .modify_db_instance()
        .db_instance_identifier(&id)
        .db_instance_class("db.m6g.large")
        .allocated_storage(400)
        .iops(12000)
        .storage_throughput(500)
        .multi_az(true)
        .backup_retention_period(14)
        .enable_performance_insights(true)
        .performance_insights_retention_period(31)
        .deletion_protection(true)
        .max_allocated_storage(1000)
        .apply_immediately(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ModifyDBInstance: {}", error_text(&e)));
    if secs_env("LOCAL_RDS_MODIFYING_SECS") > 0 {
        assert_eq!(status_of(out.db_instance().unwrap()), "modifying");
        let seen = wait_status(&rds, &id, "available", Duration::from_secs(30)).await;
        assert_eq!(seen, ["modifying", "available"]);
    }
    let inst = describe(&rds, &id).await.unwrap();
    assert_eq!(inst.db_instance_class(), Some("db.m6g.large"));
    assert_eq!(inst.allocated_storage(), Some(400));
    assert_eq!(inst.iops(), Some(12000));
    assert_eq!(inst.storage_throughput(), Some(500));
    assert_eq!(inst.storage_type(), Some("gp3"));
    assert_eq!(inst.multi_az(), Some(true));
    assert_eq!(inst.backup_retention_period(), Some(14));
    assert_eq!(inst.performance_insights_enabled(), Some(true));
    assert_eq!(inst.performance_insights_retention_period(), Some(31));
    assert_eq!(inst.deletion_protection(), Some(true));
    assert_eq!(inst.max_allocated_storage(), Some(1000));
    assert_eq!(inst.dbi_resource_id(), Some(dbi.as_str()), "same instance");

    // Storage never shrinks.
    let err = rds
        .modify_db_instance()
        .db_instance_identifier(&id)
        .allocated_storage(100)
        .apply_immediately(true)
        .send()
        .await
        .expect_err("400 -> 100 GiB");
    assert_eq!(
        code_and_status(&err),
        (Some("InvalidParameterCombination".into()), Some(400))
    );
    assert_eq!(
        err.message(),
        Some("Invalid storage size for engine name postgres and storage type gp3: 100")
    );
    // The autoscaling limit must leave at least 10 % of room.
    let err = rds
        .modify_db_instance()
        .db_instance_identifier(&id)
        .max_allocated_storage(420)
        .apply_immediately(true)
        .send()
        .await
        .expect_err("MaxAllocatedStorage 420 on 400 GiB");
    assert_eq!(
        code_and_status(&err),
        (Some("InvalidParameterCombination".into()), Some(400))
    );
    assert_eq!(
        describe(&rds, &id).await.unwrap().allocated_storage(),
        Some(400),
        "refused changes change nothing"
    );

    // Tags on the instance ARN, seen in TagList too.
    let arn = inst.db_instance_arn().unwrap().to_string();
    rds.add_tags_to_resource()
        .resource_name(&arn)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("tier")
                .value("large")
                .build(),
        )
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("tenant")
                .value("renamed")
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("AddTagsToResource: {}", error_text(&e)));
    rds.remove_tags_from_resource()
        .resource_name(&arn)
        .tag_keys("tier")
        .send()
        .await
        .unwrap_or_else(|e| panic!("RemoveTagsFromResource: {}", error_text(&e)));
    rds.add_tags_to_resource()
        .resource_name(&arn)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("plan")
                .value("pro")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let tags = |list: &[aws_sdk_rds::types::Tag]| {
        let mut v: Vec<(String, String)> = list
            .iter()
            .map(|t| (t.key().unwrap().into(), t.value().unwrap().into()))
            .collect();
        v.sort();
        v
    };
    let want = vec![
        ("plan".to_string(), "pro".to_string()),
        ("tenant".to_string(), "renamed".to_string()),
    ];
    let listed = rds
        .list_tags_for_resource()
        .resource_name(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(tags(listed.tag_list()), want);
    assert_eq!(tags(describe(&rds, &id).await.unwrap().tag_list()), want);

    wait_available(&rds, &id).await;
    rds.modify_db_instance()
        .db_instance_identifier(&id)
        .deletion_protection(false)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    delete_skip_snapshot(&rds, &id).await;
}

// --- final snapshots, snapshot paging, automated backups -------------------------------------

async fn snapshot_ids(
    rds: &aws_sdk_rds::Client,
    instance: &str,
    max_records: Option<i32>,
    marker: Option<String>,
) -> (Vec<String>, Option<String>) {
    let out = rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .filters(
            aws_sdk_rds::types::Filter::builder()
                .name("db-instance-id")
                .values(instance)
                .build(),
        )
        .set_max_records(max_records)
        .set_marker(marker)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeDBSnapshots: {}", error_text(&e)));
    (
        out.db_snapshots()
            .iter()
            .map(|s| s.db_snapshot_identifier().unwrap().to_string())
            .collect(),
        out.marker().map(str::to_string),
    )
}

#[tokio::test]
async fn final_snapshot_copies_tags_snapshots_page_and_backups_can_be_kept() {
    let rds = rds().await;
    let (id, other) = (unique_id("snap"), unique_id("snap-nokeep"));
    create_request(&rds, &id, "Password-1234", false)
        .copy_tags_to_snapshot(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateDBInstance: {}", error_text(&e)));
    create_instance(&rds, &other, "Password-1234", false).await;
    let inst = wait_available(&rds, &id).await;
    assert_eq!(inst.copy_tags_to_snapshot(), Some(true));
    let dbi = inst.dbi_resource_id().unwrap().to_string();

    // 24 manual snapshots page as 20 + 4.
    let mut made: Vec<String> = (0..24).map(|i| format!("{id}-m{i:02}")).collect();
    for s in &made {
        rds.create_db_snapshot()
            .db_instance_identifier(&id)
            .db_snapshot_identifier(s)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateDBSnapshot {s}: {}", error_text(&e)));
    }
    let (first, marker) = snapshot_ids(&rds, &id, Some(20), None).await;
    assert_eq!(first.len(), 20);
    let marker = marker.expect("a Marker for the next page");
    let (second, last_marker) = snapshot_ids(&rds, &id, Some(20), Some(marker)).await;
    assert_eq!(second.len(), 4);
    assert_eq!(last_marker, None);
    let mut paged: Vec<String> = first.into_iter().chain(second).collect();
    paged.sort();
    assert_eq!(paged, made);
    let err = rds
        .describe_db_snapshots()
        .max_records(5)
        .send()
        .await
        .expect_err("MaxRecords below 20");
    assert_eq!(
        code_and_status(&err),
        (Some("InvalidParameterValue".into()), Some(400))
    );

    // The automated backup is active while the instance lives...
    let backups = rds
        .describe_db_instance_automated_backups()
        .db_instance_identifier(&id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeDBInstanceAutomatedBackups: {}", error_text(&e)));
    let backups = backups.db_instance_automated_backups();
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0].status(), Some("active"));
    let backup_arn = backups[0]
        .db_instance_automated_backups_arn()
        .unwrap()
        .to_string();

    // ...and retained after a delete with DeleteAutomatedBackups=false, with a final snapshot
    // that carries the instance's tags (CopyTagsToSnapshot).
    let final_id = format!("{id}-final");
    rds.delete_db_instance()
        .db_instance_identifier(&id)
        .final_db_snapshot_identifier(&final_id)
        .delete_automated_backups(false)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteDBInstance: {}", error_text(&e)));
    wait_gone(&rds, &id, Duration::from_secs(30)).await;
    let snap = rds
        .describe_db_snapshots()
        .db_snapshot_identifier(&final_id)
        .send()
        .await
        .unwrap();
    let snap = &snap.db_snapshots()[0];
    assert_eq!(snap.snapshot_type(), Some("manual"));
    assert_eq!(snap.db_instance_identifier(), Some(id.as_str()));
    assert!(
        snap.tag_list()
            .iter()
            .any(|t| t.key() == Some("tenant") && t.value() == Some(id.as_str())),
        "final snapshot tags: {:?}",
        snap.tag_list()
    );
    made.push(final_id.clone());
    let (all, _) = snapshot_ids(&rds, &id, None, None).await;
    assert_eq!(all.len(), 25);

    let kept = rds
        .describe_db_instance_automated_backups()
        .db_instance_identifier(&id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeDBInstanceAutomatedBackups: {}", error_text(&e)));
    let kept = kept.db_instance_automated_backups();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].status(), Some("retained"));
    assert_eq!(kept[0].dbi_resource_id(), Some(dbi.as_str()));
    assert_eq!(
        kept[0].db_instance_automated_backups_arn(),
        Some(backup_arn.as_str())
    );
    assert_eq!(kept[0].engine(), Some("postgres"));
    assert_eq!(kept[0].backup_retention_period(), Some(1));

    // Without DeleteAutomatedBackups=false nothing is kept.
    delete_skip_snapshot(&rds, &other).await;
    let err = rds
        .describe_db_instance_automated_backups()
        .db_instance_identifier(&other)
        .send()
        .await
        .expect_err("no automated backup kept");
    assert_eq!(
        code_and_status(&err),
        (Some("DBInstanceAutomatedBackupNotFound".into()), Some(404))
    );

    // Cleanup through the API: snapshots and the retained backup.
    for s in &made {
        rds.delete_db_snapshot()
            .db_snapshot_identifier(s)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DeleteDBSnapshot {s}: {}", error_text(&e)));
    }
    assert!(snapshot_ids(&rds, &id, None, None).await.0.is_empty());
    let gone = rds
        .delete_db_instance_automated_backup()
        .dbi_resource_id(&dbi)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteDBInstanceAutomatedBackup: {}", error_text(&e)));
    assert_eq!(
        gone.db_instance_automated_backup().and_then(|b| b.status()),
        Some("deleting")
    );
}

#[tokio::test]
async fn no_final_snapshot_of_a_failed_instance_but_one_of_a_full_one() {
    let rds = rds().await;
    let control = Control::new();
    let id = unique_id("finalst");
    create_instance(&rds, &id, "Password-1234", false).await;
    wait_available(&rds, &id).await;
    for status in ["failed", "incompatible-restore", "incompatible-network"] {
        control.set_status(&id, Some(status)).await;
        let err = rds
            .delete_db_instance()
            .db_instance_identifier(&id)
            .final_db_snapshot_identifier(format!("{id}-{status}"))
            .send()
            .await
            .expect_err("no final snapshot in a failure state");
        assert_eq!(
            code_and_status(&err),
            (Some("InvalidDBInstanceState".into()), Some(400)),
            "{status}"
        );
        assert_eq!(status_of(&describe(&rds, &id).await.unwrap()), status);
    }
    control.set_status(&id, Some("storage-full")).await;
    let snapshot = format!("{id}-full");
    let out = rds
        .delete_db_instance()
        .db_instance_identifier(&id)
        .final_db_snapshot_identifier(&snapshot)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteDBInstance of a full instance: {}", error_text(&e)));
    assert_eq!(status_of(out.db_instance().unwrap()), "deleting");
    wait_gone(&rds, &id, Duration::from_secs(30)).await;
    let snaps = rds
        .describe_db_snapshots()
        .db_snapshot_identifier(&snapshot)
        .send()
        .await
        .unwrap();
    assert_eq!(snaps.db_snapshots().len(), 1);
    rds.delete_db_snapshot()
        .db_snapshot_identifier(&snapshot)
        .send()
        .await
        .unwrap();
}

// --- Secrets Manager --------------------------------------------------------------------------

#[tokio::test]
async fn a_force_deleted_secret_name_stays_taken_until_the_deletion_completes() {
    let control = Control::new();
    let (slow, fast) = (unique_account(), unique_account());
    let (status, body) = control
        .post(
            "/secrets-deletion-delay",
            json!({"account": slow, "seconds": 3}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let name = format!("tenants/{}/database", unique_id("sec"));

    let sm = secrets_in_account(&slow).await;
    sm.create_secret()
        .name(&name)
        .secret_string("{}")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateSecret: {}", error_text(&e)));
    sm.delete_secret()
        .secret_id(&name)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteSecret: {}", error_text(&e)));
    let deleted = Instant::now();
    let err = sm
        .create_secret()
        .name(&name)
        .secret_string("{}")
        .send()
        .await
        .expect_err("the name is still scheduled for deletion");
    assert_eq!(
        code_and_status(&err),
        (Some("InvalidRequestException".into()), Some(400))
    );
    assert_eq!(
        err.message(),
        Some(
            "You can't create this secret because a secret with this name is already scheduled for deletion."
        )
    );
    // Once the deletion completed, the name is free again.
    loop {
        match sm
            .create_secret()
            .name(&name)
            .secret_string("{}")
            .send()
            .await
        {
            Ok(_) => break,
            Err(e) => {
                assert_eq!(
                    e.code(),
                    Some("InvalidRequestException"),
                    "{}",
                    error_text(&e)
                );
                assert!(
                    deleted.elapsed() < Duration::from_secs(15),
                    "name never freed"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    assert!(
        deleted.elapsed() >= Duration::from_millis(2500),
        "freed after {:?}, before the 3 s delay",
        deleted.elapsed()
    );

    // An account without a delay (the default) can reuse the name at once.
    let sm = secrets_in_account(&fast).await;
    sm.create_secret()
        .name(&name)
        .secret_string("{}")
        .send()
        .await
        .unwrap();
    sm.delete_secret()
        .secret_id(&name)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name(&name)
        .secret_string("{}")
        .send()
        .await
        .unwrap_or_else(|e| panic!("recreate at once without a delay: {}", error_text(&e)));
}
