//! The local RDS's CA certificates, engine upgrades and pending maintenance, driven through the
//! AWS SDK the way tenantd drives RDS and checked with verify-full logins. Run with
//! `localstack/test --test local_rds -E 'test(/^maintenance::/)'`.

use std::time::{Duration, SystemTime};

use crate::lifecycle::*;
use crate::rds::*;
use aws_sdk_rds::error::ProvideErrorMetadata;
use aws_sdk_rds::types::Filter;
use serde_json::json;
use sqlx::Connection;

const PASSWORD: &str = "Password-Maintenance-1";

fn ca_of(instance: &aws_sdk_rds::types::DbInstance) -> (Option<String>, Option<String>) {
    (
        instance.ca_certificate_identifier().map(str::to_string),
        instance
            .certificate_details()
            .and_then(|d| d.ca_identifier())
            .map(str::to_string),
    )
}

fn some(ca: &str) -> (Option<String>, Option<String>) {
    (Some(ca.to_string()), Some(ca.to_string()))
}

#[tokio::test]
async fn ca_certificates_are_listed_chosen_rotated_and_verified_with_their_bundles() {
    let rds = rds().await;
    let control = Control::new();

    let listed = rds.describe_certificates().send().await.unwrap();
    let mut ids: Vec<_> = listed
        .certificates()
        .iter()
        .map(|c| c.certificate_identifier().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "rds-ca-2019",
            "rds-ca-ecc384-g1",
            "rds-ca-rsa2048-g1",
            "rds-ca-rsa4096-g1"
        ]
    );
    assert_eq!(
        listed.default_certificate_for_new_launches(),
        Some("rds-ca-rsa2048-g1")
    );
    let expired = listed
        .certificates()
        .iter()
        .find(|c| c.certificate_identifier() == Some("rds-ca-2019"))
        .unwrap();
    assert!(
        expired.valid_till().unwrap().secs()
            < SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64,
        "rds-ca-2019 expired in 2024"
    );
    assert_eq!(expired.certificate_type(), Some("CA"));

    // An unknown CA is refused and creates nothing.
    let bad = unique_id("ca-bad");
    let err = create_request(&rds, &bad, PASSWORD, false)
        .ca_certificate_identifier("rds-ca-unknown-g9")
        .send()
        .await
        .expect_err("unknown CA");
    assert_eq!(
        code_and_status(&err),
        (Some("CertificateNotFound".into()), Some(404))
    );
    assert!(describe(&rds, &bad).await.is_none());

    // A new instance is on the default CA; its endpoint verifies with that CA's bundle only.
    let id = unique_id("ca");
    let created = create_request(&rds, &id, PASSWORD, false)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateDBInstance: {}", error_text(&e)))
        .db_instance
        .unwrap();
    assert_eq!(ca_of(&created), some("rds-ca-rsa2048-g1"));
    wait_status(&rds, &id, "available", available_timeout()).await;
    let inst = describe(&rds, &id).await.unwrap();
    assert_eq!(ca_of(&inst), some("rds-ca-rsa2048-g1"));
    assert!(inst.certificate_details().unwrap().valid_till().is_some());
    let (host, port) = endpoint(&inst);
    let (rsa2048, rsa4096, ecc384, ca2019, global) = (
        bundle(&control, "rds-ca-rsa2048-g1").await,
        bundle(&control, "rds-ca-rsa4096-g1").await,
        bundle(&control, "rds-ca-ecc384-g1").await,
        bundle(&control, "rds-ca-2019").await,
        bundle(&control, "global").await,
    );
    for ok in [&rsa2048, &global] {
        connect_verified(&host, port, PASSWORD, ok)
            .await
            .unwrap_or_else(|e| panic!("verify-full with {ok:?}: {e}"))
            .close()
            .await
            .ok();
    }
    let err = connect_verified(&host, port, PASSWORD, &rsa4096)
        .await
        .expect_err("another CA's bundle");
    assert!(certificate_rejected(&err, "UnknownIssuer"), "{err:?}");

    // Without ApplyImmediately the new CA waits for the maintenance window.
    let modified = rds
        .modify_db_instance()
        .db_instance_identifier(&id)
        .ca_certificate_identifier("rds-ca-rsa4096-g1")
        .send()
        .await
        .unwrap_or_else(|e| panic!("ModifyDBInstance: {}", error_text(&e)))
        .db_instance
        .unwrap();
    let pending = |i: &aws_sdk_rds::types::DbInstance| {
        i.pending_modified_values()
            .and_then(|p| p.ca_certificate_identifier())
            .map(str::to_string)
    };
    assert_eq!(pending(&modified), Some("rds-ca-rsa4096-g1".into()));
    assert_eq!(ca_of(&modified), some("rds-ca-rsa2048-g1"));
    wait_status(&rds, &id, "available", Duration::from_secs(30)).await;
    connect_verified(&host, port, PASSWORD, &rsa2048)
        .await
        .expect("still the old CA until the window")
        .close()
        .await
        .ok();
    let (status, body) = control
        .post(&format!("/instances/{id}/maintenance-window"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let inst = describe(&rds, &id).await.unwrap();
    assert_eq!(ca_of(&inst), some("rds-ca-rsa4096-g1"));
    assert_eq!(pending(&inst), None);
    connect_verified(&host, port, PASSWORD, &rsa4096)
        .await
        .expect("verify-full against the new CA's bundle")
        .close()
        .await
        .ok();
    let err = connect_verified(&host, port, PASSWORD, &rsa2048)
        .await
        .expect_err("the old CA's bundle no longer verifies");
    assert!(certificate_rejected(&err, "UnknownIssuer"), "{err:?}");

    // ApplyImmediately: at once; an ECC CA; the expired rds-ca-2019 fails verification.
    rds.modify_db_instance()
        .db_instance_identifier(&id)
        .ca_certificate_identifier("rds-ca-ecc384-g1")
        .apply_immediately(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ModifyDBInstance: {}", error_text(&e)));
    connect_verified(&host, port, PASSWORD, &ecc384)
        .await
        .expect("verify-full against rds-ca-ecc384-g1")
        .close()
        .await
        .ok();
    wait_status(&rds, &id, "available", Duration::from_secs(30)).await;
    rds.modify_db_instance()
        .db_instance_identifier(&id)
        .ca_certificate_identifier("rds-ca-2019")
        .apply_immediately(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ModifyDBInstance: {}", error_text(&e)));
    let err = connect_verified(&host, port, PASSWORD, &ca2019)
        .await
        .expect_err("an expired certificate");
    assert!(certificate_rejected(&err, "Expired"), "{err:?}");
    let err = rds
        .modify_db_instance()
        .db_instance_identifier(&id)
        .ca_certificate_identifier("rds-ca-nope")
        .apply_immediately(true)
        .send()
        .await
        .expect_err("unknown CA");
    assert_eq!(
        code_and_status(&err),
        (Some("CertificateNotFound".into()), Some(404))
    );

    // An account's override of the default CA for new instances (in an account of its own:
    // other tests create instances in the default one).
    let account = unique_account();
    let other = rds_in_account(&account).await;
    other
        .modify_certificates()
        .certificate_identifier("rds-ca-rsa4096-g1")
        .send()
        .await
        .unwrap_or_else(|e| panic!("ModifyCertificates: {}", error_text(&e)));
    let listed = other.describe_certificates().send().await.unwrap();
    assert_eq!(
        listed.default_certificate_for_new_launches(),
        Some("rds-ca-rsa4096-g1")
    );
    assert!(
        listed
            .certificates()
            .iter()
            .any(|c| c.certificate_identifier() == Some("rds-ca-rsa4096-g1")
                && c.customer_override() == Some(true))
    );
    let in_other = unique_id("ca-over");
    let created = create_request(&other, &in_other, PASSWORD, false)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateDBInstance: {}", error_text(&e)))
        .db_instance
        .unwrap();
    assert_eq!(ca_of(&created), some("rds-ca-rsa4096-g1"));
    other
        .modify_certificates()
        .remove_customer_override(true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        other
            .describe_certificates()
            .send()
            .await
            .unwrap()
            .default_certificate_for_new_launches(),
        Some("rds-ca-rsa2048-g1")
    );
    assert_eq!(
        rds.describe_certificates()
            .send()
            .await
            .unwrap()
            .default_certificate_for_new_launches(),
        Some("rds-ca-rsa2048-g1"),
        "the default account kept RDS's default"
    );
    delete_quietly(&other, &in_other).await;
    delete_quietly(&rds, &id).await;
}

#[tokio::test]
async fn engine_upgrades_minor_on_demand_and_by_modify_change_the_described_version() {
    let rds = rds().await;
    let control = Control::new();
    let id = unique_id("minor");
    let inst = available_instance(&rds, &id, PASSWORD, "16.4", None).await;
    assert_eq!(inst.auto_minor_version_upgrade(), Some(true));
    let (host, port) = endpoint(&inst);
    let mut conn = connect(&inst, PASSWORD).await;
    sqlx::raw_sql("create table kept (v int); insert into kept values (1), (2), (3)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();

    // RDS's automatic minor upgrade, on demand: `upgrading` (endpoint closed), then the new
    // version, the data intact.
    let (status, body) = control
        .post(
            &format!("/instances/{id}/minor-upgrade"),
            json!({"to": "16.9", "secs": 3}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let during = describe(&rds, &id).await.unwrap();
    assert_eq!(status_of(&during), "upgrading");
    assert_eq!(during.engine_version(), Some("16.4"));
    assert!(
        login(&host, port, MASTER_USER, PASSWORD, DB_NAME)
            .await
            .is_err(),
        "the server is down while it is upgraded"
    );
    let seen = wait_status(&rds, &id, "available", Duration::from_secs(30)).await;
    assert_eq!(seen.first().map(String::as_str), Some("upgrading"));
    let after = describe(&rds, &id).await.unwrap();
    assert_eq!(after.engine_version(), Some("16.9"));
    let mut conn = connect(&after, PASSWORD).await;
    let n: i64 = sqlx::query_scalar("select count(*) from kept")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 3);
    conn.close().await.ok();

    // Nothing newer in 16; not across a major; not with automatic upgrades off unless forced.
    for (body, want) in [
        (json!({}), 400),
        (json!({"to": "17.4"}), 400),
        (json!({"to": "16.7"}), 400),
    ] {
        let (status, answer) = control
            .post(&format!("/instances/{id}/minor-upgrade"), body.clone())
            .await;
        assert_eq!(status, want, "{body}: {answer}");
    }

    // ModifyDBInstance EngineVersion: RDS's upgrade targets only; a new major needs
    // AllowMajorVersionUpgrade; without ApplyImmediately it waits for the maintenance window.
    for (version, allow, message) in [
        ("16.4", true, "Cannot upgrade postgres from 16.9 to 16.4"),
        ("17.4", true, "Cannot upgrade postgres from 16.9 to 17.4"),
        (
            "17.5",
            false,
            "The AllowMajorVersionUpgrade flag must be present when upgrading to a new major version.",
        ),
    ] {
        let err = rds
            .modify_db_instance()
            .db_instance_identifier(&id)
            .engine_version(version)
            .allow_major_version_upgrade(allow)
            .send()
            .await
            .expect_err("not a valid upgrade");
        assert_eq!(
            code_and_status(&err),
            (Some("InvalidParameterCombination".into()), Some(400)),
            "{version}"
        );
        assert_eq!(err.message(), Some(message));
    }
    let modified = rds
        .modify_db_instance()
        .db_instance_identifier(&id)
        .engine_version("17.5")
        .allow_major_version_upgrade(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ModifyDBInstance: {}", error_text(&e)))
        .db_instance
        .unwrap();
    assert_eq!(modified.engine_version(), Some("16.9"));
    assert_eq!(
        modified
            .pending_modified_values()
            .and_then(|p| p.engine_version()),
        Some("17.5")
    );
    wait_status(&rds, &id, "available", Duration::from_secs(30)).await;
    let (status, body) = control
        .post(&format!("/instances/{id}/maintenance-window"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied"], json!(["EngineVersion=17.5"]));
    let seen = wait_status(&rds, &id, "available", Duration::from_secs(30)).await;
    assert_eq!(seen.first().map(String::as_str), Some("upgrading"));
    let upgraded = describe(&rds, &id).await.unwrap();
    assert_eq!(upgraded.engine_version(), Some("17.5"));
    assert!(
        upgraded
            .pending_modified_values()
            .and_then(|p| p.engine_version())
            .is_none()
    );

    // An instance with automatic minor upgrades off is upgraded only when forced.
    let off = unique_id("minor-off");
    available_instance(&rds, &off, PASSWORD, "15.7", None).await;
    rds.modify_db_instance()
        .db_instance_identifier(&off)
        .auto_minor_version_upgrade(false)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    wait_status(&rds, &off, "available", Duration::from_secs(30)).await;
    let (status, body) = control
        .post(&format!("/instances/{off}/minor-upgrade"), json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = control
        .post(
            &format!("/instances/{off}/minor-upgrade"),
            json!({"force": true, "secs": 0}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Without "to": the minor RDS's automatic upgrades move to (the major's default).
    assert_eq!(body["upgrading_to"], "15.12");
    wait_status(&rds, &off, "available", Duration::from_secs(30)).await;
    assert_eq!(
        describe(&rds, &off).await.unwrap().engine_version(),
        Some("15.12")
    );
    for i in [&id, &off] {
        delete_quietly(&rds, i).await;
    }
}

async fn pending_page(
    rds: &aws_sdk_rds::Client,
    marker: Option<String>,
) -> aws_sdk_rds::operation::describe_pending_maintenance_actions::DescribePendingMaintenanceActionsOutput{
    rds.describe_pending_maintenance_actions()
        .max_records(20)
        .set_marker(marker)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribePendingMaintenanceActions: {}", error_text(&e)))
}

async fn actions_of(
    rds: &aws_sdk_rds::Client,
    id: &str,
) -> Vec<aws_sdk_rds::types::PendingMaintenanceAction> {
    rds.describe_pending_maintenance_actions()
        .filters(Filter::builder().name("db-instance-id").values(id).build())
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribePendingMaintenanceActions {id}: {}", error_text(&e)))
        .pending_maintenance_actions()
        .first()
        .map(|r| r.pending_maintenance_action_details().to_vec())
        .unwrap_or_default()
}

#[tokio::test]
async fn pending_maintenance_actions_are_described_paged_and_applied_as_rds_does() {
    // An account of its own, so the pages hold exactly this test's instances.
    let account = unique_account();
    let rds = rds_in_account(&account).await;
    let control = Control::new();
    let ids: Vec<String> = (0..21).map(|i| unique_id(&format!("pm{i}"))).collect();
    for id in &ids {
        create_request(&rds, id, PASSWORD, false)
            .engine_version("16.4")
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateDBInstance {id}: {}", error_text(&e)));
        let (status, body) = control
            .post(
                &format!("/instances/{id}/pending-maintenance"),
                json!({"account": account, "action": "system-update"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let first = pending_page(&rds, None).await;
    assert_eq!(first.pending_maintenance_actions().len(), 20);
    let second = pending_page(&rds, first.marker().map(str::to_string)).await;
    assert_eq!(second.pending_maintenance_actions().len(), 1);
    assert!(second.marker().is_none());
    let mut arns: Vec<_> = first
        .pending_maintenance_actions()
        .iter()
        .chain(second.pending_maintenance_actions())
        .map(|r| id_of(r.resource_identifier().unwrap()))
        .collect();
    arns.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(arns, want);

    let id = &ids[0];
    wait_status(&rds, id, "available", available_timeout()).await;
    let arn = describe(&rds, id)
        .await
        .unwrap()
        .db_instance_arn()
        .unwrap()
        .to_string();
    let by_arn = rds
        .describe_pending_maintenance_actions()
        .resource_identifier(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(by_arn.pending_maintenance_actions().len(), 1);
    let err = rds
        .describe_pending_maintenance_actions()
        .resource_identifier(format!("{arn}-gone"))
        .send()
        .await
        .expect_err("no such resource");
    assert_eq!(
        code_and_status(&err),
        (Some("ResourceNotFoundFault".into()), Some(404))
    );
    for (action, extra) in [
        ("db-upgrade", json!({"engine_version": "16.9"})),
        (
            "ca-certificate-rotation",
            json!({"ca_certificate_identifier": "rds-ca-rsa4096-g1"}),
        ),
    ] {
        let mut spec = json!({"account": account, "action": action});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, body) = control
            .post(&format!("/instances/{id}/pending-maintenance"), spec)
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let names: Vec<_> = actions_of(&rds, id)
        .await
        .iter()
        .map(|a| a.action().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["system-update", "db-upgrade", "ca-certificate-rotation"]
    );

    let apply = |action: &str, opt_in: &str| {
        rds.apply_pending_maintenance_action()
            .resource_identifier(&arn)
            .apply_action(action)
            .opt_in_type(opt_in)
            .send()
    };
    // Refusals, as RDS's.
    let err = apply("db-upgrade", "tomorrow")
        .await
        .expect_err("bad opt-in type");
    assert_eq!(
        code_and_status(&err),
        (Some("InvalidParameterValue".into()), Some(400))
    );
    let err = apply("hardware-maintenance", "immediate")
        .await
        .expect_err("not pending");
    assert_eq!(
        code_and_status(&err),
        (Some("InvalidParameterValue".into()), Some(400))
    );

    // immediate: applied now (the minor upgrade), gone from the list.
    let out = apply("db-upgrade", "immediate")
        .await
        .unwrap_or_else(|e| panic!("ApplyPendingMaintenanceAction: {}", error_text(&e)));
    let details = out
        .resource_pending_maintenance_actions()
        .unwrap()
        .pending_maintenance_action_details();
    let applied = details
        .iter()
        .find(|a| a.action() == Some("db-upgrade"))
        .unwrap();
    assert_eq!(applied.opt_in_status(), Some("immediate"));
    assert!(applied.current_apply_date().is_some());
    let seen = wait_status(&rds, id, "available", Duration::from_secs(30)).await;
    assert_eq!(seen.first().map(String::as_str), Some("upgrading"));
    assert_eq!(
        describe(&rds, id).await.unwrap().engine_version(),
        Some("16.9")
    );

    // next-maintenance: the window's start (sun:04:00 UTC) is the apply date; undo-opt-in
    // takes it back; the window applies what is opted in.
    let out = apply("ca-certificate-rotation", "next-maintenance")
        .await
        .unwrap();
    let opted = out
        .resource_pending_maintenance_actions()
        .unwrap()
        .pending_maintenance_action_details()
        .iter()
        .find(|a| a.action() == Some("ca-certificate-rotation"))
        .unwrap()
        .clone();
    assert_eq!(opted.opt_in_status(), Some("next-maintenance"));
    let at = opted.current_apply_date().unwrap().secs();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(at > now && at <= now + 7 * 86_400, "within a week: {at}");
    // 1970-01-01 was a Thursday: Sunday is day 3 of a week counted from it.
    assert_eq!((at / 86_400 + 4) % 7, 0, "a Sunday");
    assert_eq!(at % 86_400, 4 * 3600, "at 04:00");
    let out = apply("ca-certificate-rotation", "undo-opt-in")
        .await
        .unwrap();
    assert!(
        out.resource_pending_maintenance_actions()
            .unwrap()
            .pending_maintenance_action_details()
            .iter()
            .all(|a| a.opt_in_status().is_none())
    );
    apply("ca-certificate-rotation", "next-maintenance")
        .await
        .unwrap();
    let (status, body) = control
        .post(
            &format!("/instances/{id}/maintenance-window"),
            json!({"account": account}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied"], json!(["ca-certificate-rotation"]));
    assert_eq!(
        describe(&rds, id)
            .await
            .unwrap()
            .ca_certificate_identifier(),
        Some("rds-ca-rsa4096-g1")
    );

    // A system update applied at once: `maintenance`, then available; nothing pending is left.
    apply("system-update", "immediate").await.unwrap();
    assert_eq!(status_of(&describe(&rds, id).await.unwrap()), "maintenance");
    wait_status(&rds, id, "available", Duration::from_secs(30)).await;
    assert!(actions_of(&rds, id).await.is_empty());

    // An action past its auto-apply date is applied by the next window without an opt-in.
    let other = &ids[1];
    wait_status(&rds, other, "available", available_timeout()).await;
    let (status, body) = control
        .post(
            &format!("/instances/{other}/pending-maintenance"),
            json!({"account": account, "action": "hardware-maintenance",
                   "auto_applied_after": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let listed = actions_of(&rds, other).await;
    let hw = listed
        .iter()
        .find(|a| a.action() == Some("hardware-maintenance"))
        .unwrap();
    assert!(hw.auto_applied_after_date().is_some() && hw.current_apply_date().is_some());
    let (status, body) = control
        .post(
            &format!("/instances/{other}/maintenance-window"),
            json!({"account": account}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let applied = body["applied"].as_array().unwrap();
    assert!(
        applied.contains(&json!("hardware-maintenance"))
            && !applied.contains(&json!("system-update")),
        "{body}"
    );
    let names: Vec<_> = actions_of(&rds, other)
        .await
        .iter()
        .map(|a| a.action().unwrap().to_string())
        .collect();
    assert_eq!(names, ["system-update"], "the one not due stays");

    let mut c = connect(&describe(&rds, id).await.unwrap(), PASSWORD).await;
    sqlx::query("select 1").execute(&mut c).await.unwrap();
    c.close().await.ok();
    for id in &ids {
        delete_quietly(&rds, id).await;
    }
}
