//! The local RDS's engine upgrade targets and Blue/Green deployments, driven through the AWS SDK
//! the way tenantd drives RDS, with real data in the blue and green databases. Run with
//! `localstack/test --test local_rds -E 'test(/^bluegreen::/)'`.

use std::time::Duration;

use crate::lifecycle::*;
use crate::rds::*;
use aws_sdk_rds::error::ProvideErrorMetadata;
use aws_sdk_rds::types::{Filter, Tag};
use sqlx::Connection;

const PASSWORD: &str = "Password-BlueGreen-1";

/// (version, AutoUpgrade, IsMajorVersionUpgrade) of each ValidUpgradeTarget of `version`.
async fn targets(rds: &aws_sdk_rds::Client, version: &str) -> Vec<(String, bool, bool)> {
    let out = rds
        .describe_db_engine_versions()
        .engine("postgres")
        .engine_version(version)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeDBEngineVersions {version}: {}", error_text(&e)));
    let entry = out.db_engine_versions().first().expect("the version");
    assert_eq!(entry.engine_version(), Some(version));
    entry
        .valid_upgrade_target()
        .iter()
        .map(|t| {
            assert_eq!(t.engine(), Some("postgres"));
            (
                t.engine_version().unwrap().to_string(),
                t.auto_upgrade().unwrap(),
                t.is_major_version_upgrade().unwrap(),
            )
        })
        .collect()
}

fn t(v: &str, auto: bool, major: bool) -> (String, bool, bool) {
    (v.to_string(), auto, major)
}

#[tokio::test]
async fn upgrade_targets_of_15_16_and_17_are_listed_as_rds_lists_them() {
    let rds = rds().await;
    // Newer minors of the major, AutoUpgrade only on the one automatic upgrades move to (the
    // major's default); higher majors from minors released on or after the source (15.7 is of
    // May 2024: 16.3 on).
    assert_eq!(
        targets(&rds, "15.7").await,
        [
            t("15.8", false, false),
            t("15.10", false, false),
            t("15.12", true, false),
            t("15.13", false, false),
            t("16.3", false, true),
            t("16.4", false, true),
            t("16.5", false, true),
            t("16.6", false, true),
            t("16.8", false, true),
            t("16.9", false, true),
            t("17.1", false, true),
            t("17.2", false, true),
            t("17.4", false, true),
            t("17.5", false, true),
        ]
    );
    // The newest 15 goes to the 16 and 17 of its own release only.
    assert_eq!(
        targets(&rds, "15.13").await,
        [t("16.9", false, true), t("17.5", false, true)]
    );
    assert_eq!(
        targets(&rds, "16.4").await,
        [
            t("16.5", false, false),
            t("16.6", false, false),
            t("16.8", true, false),
            t("16.9", false, false),
            t("17.1", false, true),
            t("17.2", false, true),
            t("17.4", false, true),
            t("17.5", false, true),
        ]
    );
    assert_eq!(
        targets(&rds, "16.8").await,
        [
            t("16.9", false, false),
            t("17.4", false, true),
            t("17.5", false, true),
        ]
    );
    // 17.4 is 17's default: nothing newer is an automatic upgrade; 17.5 is the newest.
    assert_eq!(targets(&rds, "17.4").await, [t("17.5", false, false)]);
    assert!(targets(&rds, "17.5").await.is_empty());
}

/// The allowed values of a family's `rds.extensions`, and its `rds.logical_replication`.
async fn engine_defaults(rds: &aws_sdk_rds::Client, family: &str) -> (Vec<String>, String) {
    let out = rds
        .describe_engine_default_parameters()
        .db_parameter_group_family(family)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "DescribeEngineDefaultParameters {family}: {}",
                error_text(&e)
            )
        });
    let defaults = out.engine_defaults().expect("engine defaults");
    assert_eq!(defaults.db_parameter_group_family(), Some(family));
    let find = |name: &str| {
        defaults
            .parameters()
            .iter()
            .find(|p| p.parameter_name() == Some(name))
            .unwrap_or_else(|| panic!("{family} has no {name}"))
            .clone()
    };
    let extensions = find("rds.extensions")
        .allowed_values()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let logical = find("rds.logical_replication");
    assert_eq!(logical.apply_type(), Some("static"));
    (extensions, logical.parameter_value().unwrap().to_string())
}

#[tokio::test]
async fn each_family_lists_the_extensions_it_supports_as_rds_does() {
    let rds = rds().await;
    let (on16, logical) = engine_defaults(&rds, "postgres16").await;
    let (on17, _) = engine_defaults(&rds, "postgres17").await;
    assert_eq!(logical, "0");
    for common in [
        "plpgsql",
        "pg_stat_statements",
        "pgcrypto",
        "uuid-ossp",
        "postgis",
    ] {
        assert!(
            on16.iter().any(|e| e == common) && on17.iter().any(|e| e == common),
            "{common}"
        );
    }
    // PostgreSQL 17 removed adminpack.
    assert!(on16.iter().any(|e| e == "adminpack"));
    assert!(!on17.iter().any(|e| e == "adminpack"));
}

#[tokio::test]
async fn a_blue_green_deployment_copies_blue_keeps_green_in_sync_and_switches_over() {
    let rds = rds().await;
    let id = unique_id("bg");
    let group = format!("{id}-pg16");
    logical_replication_group(&rds, &group, "postgres16").await;
    let blue = available_instance(&rds, &id, PASSWORD, "16.8", Some(&group)).await;
    let (host, blue_port) = endpoint(&blue);
    let mut conn = connect(&blue, PASSWORD).await;
    sqlx::raw_sql(
        "create table notes (id bigserial primary key, body text not null);
         insert into notes (body) select 'before ' || g from generate_series(1, 100) g",
    )
    .execute(&mut conn)
    .await
    .expect("blue's data");
    conn.close().await.ok();

    let created = rds
        .create_blue_green_deployment()
        .blue_green_deployment_name(&id)
        .source(blue.db_instance_arn().unwrap())
        .target_engine_version("17.4")
        .tags(Tag::builder().key("purpose").value("upgrade").build())
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateBlueGreenDeployment: {}", error_text(&e)))
        .blue_green_deployment
        .expect("the deployment");
    assert_eq!(created.status(), Some("PROVISIONING"));
    assert_eq!(created.source(), blue.db_instance_arn());
    let bgd = created
        .blue_green_deployment_identifier()
        .unwrap()
        .to_string();
    assert!(bgd.starts_with("bgd-") && bgd.len() == 20, "{bgd}");
    let green_id = id_of(created.target().unwrap());
    let suffix = green_id
        .strip_prefix(&format!("{id}-green-"))
        .unwrap_or_else(|| panic!("green identifier {green_id}"));
    assert!(
        suffix.len() == 6
            && suffix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{green_id}"
    );
    let tasks: Vec<_> = created.tasks().iter().filter_map(|t| t.name()).collect();
    assert_eq!(
        tasks,
        [
            "CREATING_READ_REPLICA_OF_SOURCE",
            "DB_ENGINE_VERSION_UPGRADE",
            "CONFIGURE_BACKUPS"
        ]
    );
    assert_eq!(created.tag_list().len(), 1);

    // Green: the target version, the blue's settings and tags (RDS copies them), its own endpoint.
    let green = describe(&rds, &green_id).await.expect("green exists");
    assert_eq!(green.engine_version(), Some("17.4"));
    assert_eq!(green.db_instance_class(), blue.db_instance_class());
    assert_eq!(green.allocated_storage(), blue.allocated_storage());
    assert_eq!(green.master_username(), Some(MASTER_USER));
    let tag = |i: &aws_sdk_rds::types::DbInstance| {
        i.tag_list()
            .iter()
            .find(|t| t.key() == Some("tenant"))
            .and_then(|t| t.value().map(str::to_string))
    };
    assert_eq!(tag(&green), Some(id.clone()));

    let (available, seen) = wait_deployment(
        &rds,
        &bgd,
        "AVAILABLE",
        available_timeout() + Duration::from_secs(30),
    )
    .await;
    assert_eq!(seen.first().map(String::as_str), Some("PROVISIONING"));
    assert!(
        available
            .tasks()
            .iter()
            .all(|t| t.status() == Some("COMPLETED")),
        "{:?}",
        available.tasks()
    );
    assert_eq!(
        available.switchover_details()[0].status(),
        Some("AVAILABLE")
    );

    // Rows written on blue after the copy reach green, which logs in with the same password.
    let blue = describe(&rds, &id).await.unwrap();
    let mut conn = connect(&blue, PASSWORD).await;
    sqlx::query("insert into notes (body) select 'after ' || g from generate_series(1, 50) g")
        .execute(&mut conn)
        .await
        .expect("write to blue");
    let green = describe(&rds, &green_id).await.unwrap();
    assert_eq!(status_of(&green), "available");
    let green_port = endpoint(&green).1;
    assert_ne!(green_port, blue_port);
    let mut green_conn = connect(&green, PASSWORD).await;
    wait_count(
        &mut green_conn,
        "select count(*) from notes",
        150,
        Duration::from_secs(30),
    )
    .await;
    green_conn.close().await.ok();

    // Switchover: the last rows blue acknowledged are on green, green takes the blue's
    // identifier and endpoint, blue becomes <id>-old1 on green's endpoint.
    sqlx::query("insert into notes (body) select 'last ' || g from generate_series(1, 10) g")
        .execute(&mut conn)
        .await
        .expect("write to blue");
    let started = rds
        .switchover_blue_green_deployment()
        .blue_green_deployment_identifier(&bgd)
        .switchover_timeout(120)
        .send()
        .await
        .unwrap_or_else(|e| panic!("SwitchoverBlueGreenDeployment: {}", error_text(&e)))
        .blue_green_deployment
        .unwrap();
    assert_eq!(started.status(), Some("SWITCHOVER_IN_PROGRESS"));
    let (done, _) =
        wait_deployment(&rds, &bgd, "SWITCHOVER_COMPLETED", Duration::from_secs(120)).await;
    let old_id = format!("{id}-old1");
    assert_eq!(id_of(done.source().unwrap()), old_id);
    assert_eq!(id_of(done.target().unwrap()), id);
    assert_eq!(
        done.switchover_details()[0].status(),
        Some("SWITCHOVER_COMPLETED")
    );
    assert!(describe(&rds, &green_id).await.is_none(), "renamed");
    let new = describe(&rds, &id)
        .await
        .expect("the new production instance");
    assert_eq!(new.engine_version(), Some("17.4"));
    assert_eq!(endpoint(&new), (host.clone(), blue_port));
    assert_eq!(new.dbi_resource_id(), green.dbi_resource_id());
    let old = describe(&rds, &old_id)
        .await
        .expect("the old blue instance");
    assert_eq!(old.engine_version(), Some("16.8"));
    assert_eq!(endpoint(&old).1, green_port);
    assert_eq!(old.dbi_resource_id(), blue.dbi_resource_id());
    assert_eq!(tag(&old), Some(id.clone()));

    // The old endpoint now reaches the new engine's database, with every row; its sequence
    // continues after blue's.
    let mut c = login(&host, blue_port, MASTER_USER, PASSWORD, DB_NAME)
        .await
        .expect("log in at the old endpoint");
    let n: i64 = sqlx::query_scalar("select count(*) from notes")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 160);
    let next: i64 = sqlx::query_scalar("insert into notes (body) values ('new') returning id")
        .fetch_one(&mut c)
        .await
        .expect("the new production instance takes writes");
    assert_eq!(next, 161);
    c.close().await.ok();

    // The old blue keeps its data, read-only until it is rebooted.
    let mut o = connect(&old, PASSWORD).await;
    let n: i64 = sqlx::query_scalar("select count(*) from notes")
        .fetch_one(&mut o)
        .await
        .unwrap();
    assert_eq!(n, 160);
    let err = sqlx::query("insert into notes (body) values ('old')")
        .execute(&mut o)
        .await
        .expect_err("the old blue is read-only");
    assert_eq!(sqlstate(&err).as_deref(), Some("25006"), "{err}");
    o.close().await.ok();
    rds.reboot_db_instance()
        .db_instance_identifier(&old_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("RebootDBInstance: {}", error_text(&e)));
    wait_status(&rds, &old_id, "available", Duration::from_secs(30)).await;
    let mut o = connect(&old, PASSWORD).await;
    sqlx::query("insert into notes (body) values ('old')")
        .execute(&mut o)
        .await
        .expect("writable after the reboot");
    o.close().await.ok();

    // A completed deployment is deleted without its target (which is production now).
    let err = rds
        .delete_blue_green_deployment()
        .blue_green_deployment_identifier(&bgd)
        .delete_target(true)
        .send()
        .await
        .expect_err("DeleteTarget after the switchover");
    assert_eq!(
        code_and_status(&err),
        (
            Some("InvalidBlueGreenDeploymentStateFault".into()),
            Some(400)
        )
    );
    rds.delete_blue_green_deployment()
        .blue_green_deployment_identifier(&bgd)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteBlueGreenDeployment: {}", error_text(&e)));
    let err = rds
        .describe_blue_green_deployments()
        .blue_green_deployment_identifier(&bgd)
        .send()
        .await
        .expect_err("deleted");
    assert_eq!(
        code_and_status(&err),
        (Some("BlueGreenDeploymentNotFoundFault".into()), Some(404))
    );
    assert!(describe(&rds, &id).await.is_some(), "production stays");
    conn.close().await.ok();
    for i in [&id, &old_id] {
        delete_quietly(&rds, i).await;
    }
}

#[tokio::test]
async fn a_switchover_is_refused_while_green_lags_and_done_once_it_caught_up() {
    let rds = rds().await;
    let control = Control::new();
    let id = unique_id("bglag");
    let blue = available_instance(&rds, &id, PASSWORD, "16.4", None).await;
    let mut conn = connect(&blue, PASSWORD).await;
    sqlx::raw_sql("create table events (id bigserial primary key, at timestamptz default now())")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    // The same version: no logical replication parameter needed, no upgrade task.
    let created = rds
        .create_blue_green_deployment()
        .blue_green_deployment_name(&id)
        .source(blue.db_instance_arn().unwrap())
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateBlueGreenDeployment: {}", error_text(&e)))
        .blue_green_deployment
        .unwrap();
    let bgd = created
        .blue_green_deployment_identifier()
        .unwrap()
        .to_string();
    let green_id = id_of(created.target().unwrap());
    let (available, _) = wait_deployment(&rds, &bgd, "AVAILABLE", available_timeout()).await;
    let tasks: Vec<_> = available.tasks().iter().filter_map(|t| t.name()).collect();
    assert_eq!(
        tasks,
        ["CREATING_READ_REPLICA_OF_SOURCE", "CONFIGURE_BACKUPS"]
    );
    assert_eq!(
        describe(&rds, &green_id).await.unwrap().engine_version(),
        Some("16.4")
    );

    // Green stops applying blue's changes; blue takes 20 rows green lacks.
    let (status, body) = control
        .post(
            &format!("/blue-green-deployments/{bgd}/replication"),
            serde_json::json!({"paused": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let blue = describe(&rds, &id).await.unwrap();
    let mut conn = connect(&blue, PASSWORD).await;
    sqlx::query("insert into events (at) select now() from generate_series(1, 20)")
        .execute(&mut conn)
        .await
        .unwrap();
    crate::wait::wait_for(
        "the replica lag to show",
        Duration::from_secs(30),
        || async {
            let view = deployment_view(&control, &bgd).await;
            (view["replication"]["pending_changes"].as_i64() == Some(20)).then_some(())
        },
    )
    .await;
    let err = rds
        .switchover_blue_green_deployment()
        .blue_green_deployment_identifier(&bgd)
        .send()
        .await
        .expect_err("green lags");
    assert_eq!(
        code_and_status(&err),
        (
            Some("InvalidBlueGreenDeploymentStateFault".into()),
            Some(400)
        )
    );
    assert!(
        err.message().unwrap_or_default().contains("replica lag"),
        "{:?}",
        err.message()
    );
    let still = describe_deployment(&rds, &bgd).await;
    assert_eq!(still.status(), Some("AVAILABLE"));
    assert_eq!(id_of(still.source().unwrap()), id);
    let green = describe(&rds, &green_id).await.unwrap();
    let mut green_conn = connect(&green, PASSWORD).await;
    let n: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&mut green_conn)
        .await
        .unwrap();
    assert_eq!(n, 0, "green has not applied the rows");

    // Resumed: green catches up, and the switchover goes through.
    let (status, body) = control
        .post(
            &format!("/blue-green-deployments/{bgd}/replication"),
            serde_json::json!({"paused": false}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_count(
        &mut green_conn,
        "select count(*) from events",
        20,
        Duration::from_secs(30),
    )
    .await;
    green_conn.close().await.ok();
    rds.switchover_blue_green_deployment()
        .blue_green_deployment_identifier(&bgd)
        .send()
        .await
        .unwrap_or_else(|e| panic!("SwitchoverBlueGreenDeployment: {}", error_text(&e)));
    wait_deployment(&rds, &bgd, "SWITCHOVER_COMPLETED", Duration::from_secs(60)).await;
    let new = describe(&rds, &id).await.unwrap();
    assert_eq!(new.dbi_resource_id(), green.dbi_resource_id());
    let mut c = connect(&new, PASSWORD).await;
    let n: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 20);
    c.close().await.ok();
    conn.close().await.ok();
    for i in [id.clone(), format!("{id}-old1")] {
        delete_quietly(&rds, &i).await;
    }
}

#[tokio::test]
async fn a_switchover_not_caught_up_within_its_timeout_is_rolled_back() {
    let rds = rds().await;
    let control = Control::new();
    let id = unique_id("bgto");
    let blue = available_instance(&rds, &id, PASSWORD, "16.8", None).await;
    let (host, blue_port) = endpoint(&blue);
    let mut conn = connect(&blue, PASSWORD).await;
    sqlx::raw_sql("create table events (id bigserial primary key)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    let created = rds
        .create_blue_green_deployment()
        .blue_green_deployment_name(&id)
        .source(blue.db_instance_arn().unwrap())
        .target_engine_version("16.9")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateBlueGreenDeployment: {}", error_text(&e)))
        .blue_green_deployment
        .unwrap();
    let bgd = created
        .blue_green_deployment_identifier()
        .unwrap()
        .to_string();
    let green_id = id_of(created.target().unwrap());
    wait_deployment(&rds, &bgd, "AVAILABLE", available_timeout()).await;

    // Lag the guardrails do not see (it grew after they looked): green never catches up.
    let (status, body) = control
        .post(
            &format!("/blue-green-deployments/{bgd}/replication"),
            serde_json::json!({"paused": true, "hidden": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut conn = connect(&blue, PASSWORD).await;
    sqlx::query("insert into events default values")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    let started = rds
        .switchover_blue_green_deployment()
        .blue_green_deployment_identifier(&bgd)
        .switchover_timeout(30)
        .send()
        .await
        .unwrap_or_else(|e| panic!("SwitchoverBlueGreenDeployment: {}", error_text(&e)))
        .blue_green_deployment
        .unwrap();
    assert_eq!(started.status(), Some("SWITCHOVER_IN_PROGRESS"));
    // Writes are stopped meanwhile: the endpoint takes no connections.
    assert!(
        login(&host, blue_port, MASTER_USER, PASSWORD, DB_NAME)
            .await
            .is_err(),
        "blue refuses connections during the switchover"
    );
    let (failed, _) =
        wait_deployment(&rds, &bgd, "SWITCHOVER_FAILED", Duration::from_secs(90)).await;
    assert!(
        failed
            .status_details()
            .unwrap_or_default()
            .contains("timed out"),
        "{:?}",
        failed.status_details()
    );
    assert_eq!(
        failed.switchover_details()[0].status(),
        Some("SWITCHOVER_FAILED")
    );
    // Nothing changed: blue keeps its identifier, endpoint, version and data, and takes writes.
    assert_eq!(id_of(failed.source().unwrap()), id);
    assert_eq!(id_of(failed.target().unwrap()), green_id);
    let blue_now = describe(&rds, &id).await.unwrap();
    assert_eq!(blue_now.engine_version(), Some("16.8"));
    assert_eq!(blue_now.dbi_resource_id(), blue.dbi_resource_id());
    let mut c = login(&host, blue_port, MASTER_USER, PASSWORD, DB_NAME)
        .await
        .expect("blue is back");
    sqlx::query("insert into events default values")
        .execute(&mut c)
        .await
        .expect("blue takes writes again");
    c.close().await.ok();

    // Given up: deleted with its green instance.
    let deleted = rds
        .delete_blue_green_deployment()
        .blue_green_deployment_identifier(&bgd)
        .delete_target(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteBlueGreenDeployment: {}", error_text(&e)))
        .blue_green_deployment
        .unwrap();
    assert_eq!(deleted.status(), Some("DELETING"));
    wait_gone(&rds, &green_id, Duration::from_secs(30)).await;
    assert!(describe(&rds, &id).await.is_some(), "blue stays");
    delete_quietly(&rds, &id).await;
}

#[tokio::test]
async fn creating_is_refused_as_rds_refuses_and_delete_target_removes_green_and_its_replication() {
    let rds = rds().await;
    let control = Control::new();
    let id = unique_id("bgno");
    let blue = available_instance(&rds, &id, PASSWORD, "16.8", None).await;
    let arn = blue.db_instance_arn().unwrap().to_string();
    let create = |name: &str| {
        rds.create_blue_green_deployment()
            .blue_green_deployment_name(name)
            .source(&arn)
    };
    // A new major needs logical replication on blue (its default parameter group has it off).
    let err = create(&format!("{id}-major"))
        .target_engine_version("17.4")
        .send()
        .await
        .expect_err("no logical replication");
    assert_eq!(
        code_and_status(&err),
        (Some("SourceDatabaseNotSupportedFault".into()), Some(400))
    );
    assert!(err.message().unwrap().contains("logical replication"));
    for (version, code) in [
        ("16.4", "Cannot upgrade postgres from 16.8 to 16.4"),
        ("16.7", "Cannot find version 16.7 for postgres"),
    ] {
        let err = create(&format!("{id}-down"))
            .target_engine_version(version)
            .send()
            .await
            .expect_err("not an upgrade target");
        assert_eq!(
            code_and_status(&err),
            (Some("InvalidParameterCombination".into()), Some(400)),
            "{version}"
        );
        assert_eq!(err.message(), Some(code));
    }
    let err = create(&format!("{id}-pg"))
        .target_db_parameter_group_name("no-such-group")
        .send()
        .await
        .expect_err("unknown parameter group");
    assert_eq!(
        code_and_status(&err),
        (Some("DBParameterGroupNotFound".into()), Some(404))
    );
    let err = rds
        .create_blue_green_deployment()
        .blue_green_deployment_name(format!("{id}-gone"))
        .source(arn.replace(&id, &format!("{id}-nope")))
        .send()
        .await
        .expect_err("no such source");
    assert_eq!(
        code_and_status(&err),
        (Some("DBInstanceNotFound".into()), Some(404))
    );
    let err = create("1-not-a-name")
        .send()
        .await
        .expect_err("invalid name");
    assert_eq!(
        code_and_status(&err),
        (Some("InvalidParameterValue".into()), Some(400))
    );
    assert!(
        rds.describe_blue_green_deployments()
            .filters(Filter::builder().name("source").values(&arn).build())
            .send()
            .await
            .unwrap()
            .blue_green_deployments()
            .is_empty(),
        "nothing was created"
    );

    let created = create(&id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateBlueGreenDeployment: {}", error_text(&e)))
        .blue_green_deployment
        .unwrap();
    let bgd = created
        .blue_green_deployment_identifier()
        .unwrap()
        .to_string();
    let green_id = id_of(created.target().unwrap());
    let err = create(&id).send().await.expect_err("same name");
    assert_eq!(
        code_and_status(&err),
        (
            Some("BlueGreenDeploymentAlreadyExistsFault".into()),
            Some(400)
        )
    );
    let err = create(&format!("{id}-again"))
        .send()
        .await
        .expect_err("blue is in a deployment already");
    assert_eq!(
        code_and_status(&err),
        (Some("InvalidDBInstanceState".into()), Some(400))
    );
    // Filters and the deployment's own tags.
    let by_name = rds
        .describe_blue_green_deployments()
        .filters(
            Filter::builder()
                .name("blue-green-deployment-name")
                .values(&id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(by_name.blue_green_deployments().len(), 1);
    let deployment_arn = format!("{}:deployment:{bgd}", arn.rsplit_once(":db:").unwrap().0);
    rds.add_tags_to_resource()
        .resource_name(&deployment_arn)
        .tags(Tag::builder().key("TenantId").value(&id).build())
        .send()
        .await
        .unwrap_or_else(|e| panic!("AddTagsToResource: {}", error_text(&e)));
    let tags = rds
        .list_tags_for_resource()
        .resource_name(&deployment_arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListTagsForResource: {}", error_text(&e)));
    assert_eq!(tags.tag_list().len(), 1);
    let err = rds
        .switchover_blue_green_deployment()
        .blue_green_deployment_identifier("bgd-doesnotexist0000")
        .send()
        .await
        .expect_err("no such deployment");
    assert_eq!(
        code_and_status(&err),
        (Some("BlueGreenDeploymentNotFoundFault".into()), Some(404))
    );

    wait_deployment(&rds, &bgd, "AVAILABLE", available_timeout()).await;
    let err = rds
        .switchover_blue_green_deployment()
        .blue_green_deployment_identifier(&bgd)
        .switchover_timeout(10)
        .send()
        .await
        .expect_err("a timeout below 30 s");
    assert_eq!(
        code_and_status(&err),
        (Some("InvalidParameterValue".into()), Some(400))
    );
    let view = deployment_view(&control, &bgd).await;
    let slot = view["replication"]["name"].as_str().unwrap().to_string();
    let green_db = view["target_database"].as_str().unwrap().to_string();
    assert_eq!(slots_named(&slot).await, 1);

    let deleted = rds
        .delete_blue_green_deployment()
        .blue_green_deployment_identifier(&bgd)
        .delete_target(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteBlueGreenDeployment: {}", error_text(&e)))
        .blue_green_deployment
        .unwrap();
    assert_eq!(deleted.status(), Some("DELETING"));
    wait_gone(&rds, &green_id, Duration::from_secs(30)).await;
    crate::wait::wait_for(
        "green's database and blue's slot to be dropped",
        Duration::from_secs(30),
        || {
            let (slot, green_db) = (slot.clone(), green_db.clone());
            async move {
                (slots_named(&slot).await == 0 && !database_exists(&green_db).await).then_some(())
            }
        },
    )
    .await;
    // Blue is unharmed and may start a new deployment.
    let mut c = connect(&describe(&rds, &id).await.unwrap(), PASSWORD).await;
    sqlx::query("select 1").execute(&mut c).await.unwrap();
    c.close().await.ok();
    delete_quietly(&rds, &id).await;
}
