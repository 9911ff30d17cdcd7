//! Provisioning steps once the instance is available: complete the secret, migrate the tenant
//! schema, set backups, create alarms, switch on deletion protection, mark the tenant ready.

use super::create::{Cx, StepResult, master_credentials, read_credentials, secret_id};
use super::state::ProvisionStep;
use crate::cloud::alarms::instance_alarms;
use crate::cloud::rds::InstanceChange;
use crate::store::events::EventType;
use crate::store::tenants::TenantUpdate;
use crate::tenant_db;
use crate::workflow::aws::{AwsContext, Owner, update_tenant_telling};
use crate::workflow::engine_version::major;
use crate::workflow::error::{Context, StepError};
use crate::workflow::step::Transition;

/// Step 4: the secret gets the endpoint, so that it alone is enough to connect.
pub async fn secret_endpoint(t: &AwsContext, owner: &Owner, cx: &mut Cx<'_>) -> StepResult {
    let (Some(host), Some(port)) = (cx.data.endpoint_host.clone(), cx.data.endpoint_port) else {
        return Err(StepError::fail(
            "bad_data",
            "no endpoint was recorded for the instance",
        ));
    };
    let mut credentials = read_credentials(t, owner, cx).await?;
    let id = owner.instance.clone();
    let port = u16::try_from(port)
        .map_err(|_| StepError::fail("bad_data", format!("endpoint port {port} is not a port")))?;
    if credentials.host != host
        || credentials.port != port
        || credentials.db_instance_identifier != id
    {
        credentials.host = host;
        credentials.port = port;
        credentials.db_instance_identifier = id;
        t.cloud
            .put_secret_value(&secret_id(owner, cx), &credentials.to_json())
            .await
            .during("writing the endpoint into the secret")?;
    }
    Ok(Transition::Next(ProvisionStep::Migrate))
}

/// Step 5: the tenant schema, applied with the secret's credentials at the endpoint RDS
/// reported.
pub async fn migrate(t: &AwsContext, owner: &Owner, cx: &mut Cx<'_>) -> StepResult {
    let credentials = master_credentials(t, owner, cx).await?;
    let s = &t.settings;
    let migrated = tenant_db::migrate(
        &credentials,
        &s.tenant_db_tls,
        s.tenant_db_connect_timeout,
        &s.tenant_migrations,
        None,
        s.migration_limits,
    )
    .await?;
    cx.data.schema_version = Some(migrated.version);
    cx.data.applied_migrations = Some(migrated.applied);
    Ok(Transition::Next(ProvisionStep::Backups))
}

/// Step 6: retention and windows as the tier says. Set declaratively (one ModifyDBInstance,
/// a no-op when they already match), then checked: point-in-time recovery needs backups.
pub async fn backups(t: &AwsContext, owner: &Owner, cx: &mut Cx<'_>) -> StepResult {
    let (_, tier) = t.tier(&cx.args.tier)?;
    let id = owner.instance.clone();
    let no_pitr = || {
        StepError::fail(
            "instance_settings",
            format!("instance {id} reports no automated backups: point-in-time recovery is off"),
        )
    };
    // The instance was seen available with these settings already: nothing to change.
    if let Some(days) = cx.data.backup_retention_seen {
        if tier.point_in_time_recovery && days == 0 {
            return Err(no_pitr());
        }
        return Ok(Transition::Next(ProvisionStep::Alarms));
    }
    let change = InstanceChange {
        backup_retention_days: Some(tier.backup_retention_days),
        backup_window: Some(t.settings.backup_window.clone()),
        maintenance_window: Some(t.settings.maintenance_window.clone()),
        ..Default::default()
    };
    let info = t
        .cloud
        .modify_db_instance(&id, &change)
        .await
        .during("setting backups")?;
    if tier.point_in_time_recovery && info.is_some_and(|i| i.backup_retention_days == 0) {
        return Err(no_pitr());
    }
    Ok(Transition::Next(ProvisionStep::Alarms))
}

/// Step 7: high CPU and low storage alarms (PutMetricAlarm replaces by name).
pub async fn alarms(t: &AwsContext, owner: &Owner, cx: &mut Cx<'_>) -> StepResult {
    let id = owner.instance.clone();
    let (_, tier) = t.tier(&cx.args.tier)?;
    let topic = t.settings.alarm_topic_arn.as_deref();
    for alarm in instance_alarms(&id, topic, tier.low_storage_bytes()) {
        t.cloud
            .put_metric_alarm(&alarm)
            .await
            .during(&format!("creating alarm {}", alarm.name))?;
    }
    Ok(Transition::Next(ProvisionStep::Protect))
}

/// Step 8: deletion protection where the tier asks for it, now that all else succeeded.
pub async fn protect(t: &AwsContext, owner: &Owner, cx: &mut Cx<'_>) -> StepResult {
    let (_, tier) = t.tier(&cx.args.tier)?;
    if tier.deletion_protection {
        let id = owner.instance.clone();
        let change = InstanceChange {
            deletion_protection: Some(true),
            ..Default::default()
        };
        t.cloud
            .modify_db_instance(&id, &change)
            .await
            .during("switching on deletion protection")?;
    }
    Ok(Transition::Next(ProvisionStep::MarkReady))
}

/// Step 9: the tenant is ready, with its endpoint, secret and schema version, and the engine
/// major it should run from now on: the setting's (what the reconciler compares with until an
/// engine upgrade moves it).
pub async fn mark_ready(t: &AwsContext, cx: &mut Cx<'_>) -> StepResult {
    let engine_major = major(&t.settings.engine_version);
    let d = &cx.data;
    let (Some(instance), Some(host), Some(port), Some(secret_arn)) = (
        d.instance_id.as_deref(),
        d.endpoint_host.as_deref(),
        d.endpoint_port,
        d.secret_arn.as_deref(),
    ) else {
        return Err(StepError::fail(
            "bad_data",
            "the job's data lacks the instance, endpoint or secret",
        ));
    };
    let update = TenantUpdate::Ready {
        instance,
        host,
        port,
        secret_arn,
        schema_version: d.schema_version.unwrap_or(0),
        applied_migrations: d.applied_migrations.as_ref(),
        engine_version: d.engine_version.as_deref(),
        storage_gib: d.storage_gib,
        engine_major: &engine_major,
    };
    update_tenant_telling(cx, update, Some(EventType::TenantReady)).await?;
    if cx.args.standby.is_some() {
        crate::metrics::record_pool_claim(&cx.args.tier, "ready");
    }
    Ok(Transition::Done)
}
