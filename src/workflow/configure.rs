//! Provisioning steps once the instance is available: complete the secret, migrate the tenant
//! schema, set backups, create alarms, switch on deletion protection, mark the tenant ready.

use serde_json::json;

use super::provision::{read_credentials, secret_id, tier_of};
use super::tenancy::{
    Tenancy, TenantUpdate, data_str, on_cloud_error, on_write_error, tenant_of, update_tenant,
};
use super::{StepContext, Transition};
use crate::cloud::alarms::instance_alarms;
use crate::cloud::rds::InstanceChange;
use crate::tenant_db;

/// Step 4: the secret gets the endpoint, so that it alone is enough to connect.
pub async fn secret_endpoint(t: &Tenancy, cx: &StepContext<'_>) -> Transition {
    let (Some(host), Some(port)) = (
        data_str(cx, "endpoint_host"),
        cx.job.data.0["endpoint_port"].as_u64(),
    ) else {
        return Transition::fail("no endpoint was recorded for the instance");
    };
    let mut credentials = match read_credentials(t, cx).await {
        Ok(c) => c,
        Err(transition) => return transition,
    };
    let id = t.instance_id(tenant_of(cx));
    let port = port as u16;
    if credentials.host != host
        || credentials.port != port
        || credentials.db_instance_identifier != id
    {
        credentials.host = host.to_string();
        credentials.port = port;
        credentials.db_instance_identifier = id;
        if let Err(e) = t
            .cloud
            .put_secret_value(&secret_id(t, cx), &credentials.to_json())
            .await
        {
            return on_cloud_error("writing the endpoint into the secret", e);
        }
    }
    Transition::next("migrate")
}

/// Step 5: the tenant schema, applied with the secret's credentials.
pub async fn migrate(t: &Tenancy, cx: &StepContext<'_>) -> Transition {
    let credentials = match read_credentials(t, cx).await {
        Ok(c) => c,
        Err(transition) => return transition,
    };
    let s = &t.settings;
    match tenant_db::migrate(&credentials, &s.tenant_db_tls, &s.tenant_migrations).await {
        Ok(version) => Transition::next("backups").with_data(json!({ "schema_version": version })),
        Err(e) if e.is_retryable() => Transition::retry(e),
        Err(e) => Transition::fail(e),
    }
}

/// Step 6: retention and windows as the tier says. Set declaratively (one ModifyDBInstance,
/// a no-op when they already match), then checked: point-in-time recovery needs backups.
pub async fn backups(t: &Tenancy, cx: &StepContext<'_>) -> Transition {
    let (_, tier) = match tier_of(t, cx) {
        Ok(tier) => tier,
        Err(fail) => return fail,
    };
    let id = t.instance_id(tenant_of(cx));
    // The instance was seen available with these settings already: nothing to change.
    if let Some(days) = cx.job.data.0["backup_retention_seen"].as_i64() {
        if tier.point_in_time_recovery && days == 0 {
            return Transition::fail(format!(
                "instance {id} reports no automated backups: point-in-time recovery is off"
            ));
        }
        return Transition::next("alarms");
    }
    let change = InstanceChange {
        backup_retention_days: Some(tier.backup_retention_days),
        backup_window: Some(t.settings.backup_window.clone()),
        maintenance_window: Some(t.settings.maintenance_window.clone()),
        ..Default::default()
    };
    match t.cloud.modify_db_instance(&id, &change).await {
        Ok(Some(info)) if tier.point_in_time_recovery && info.backup_retention_days == 0 => {
            Transition::fail(format!(
                "instance {id} reports no automated backups: point-in-time recovery is off"
            ))
        }
        Ok(_) => Transition::next("alarms"),
        Err(e) => on_cloud_error("setting backups", e),
    }
}

/// Step 7: high CPU and low storage alarms (PutMetricAlarm replaces by name).
pub async fn alarms(t: &Tenancy, cx: &StepContext<'_>) -> Transition {
    let id = t.instance_id(tenant_of(cx));
    for alarm in instance_alarms(&id, t.settings.alarm_topic_arn.as_deref()) {
        if let Err(e) = t.cloud.put_metric_alarm(&alarm).await {
            return on_cloud_error(&format!("creating alarm {}", alarm.name), e);
        }
    }
    Transition::next("protect")
}

/// Step 8: deletion protection where the tier asks for it, now that all else succeeded.
pub async fn protect(t: &Tenancy, cx: &StepContext<'_>) -> Transition {
    let (_, tier) = match tier_of(t, cx) {
        Ok(tier) => tier,
        Err(fail) => return fail,
    };
    if tier.deletion_protection {
        let id = t.instance_id(tenant_of(cx));
        let change = InstanceChange {
            deletion_protection: Some(true),
            ..Default::default()
        };
        if let Err(e) = t.cloud.modify_db_instance(&id, &change).await {
            return on_cloud_error("switching on deletion protection", e);
        }
    }
    Transition::next("mark_ready")
}

/// Step 9: the tenant is ready, with its endpoint, secret and schema version.
pub async fn mark_ready(cx: &StepContext<'_>) -> Transition {
    let data = &cx.job.data.0;
    let (Some(instance), Some(host), Some(port), Some(secret_arn)) = (
        data_str(cx, "instance_id"),
        data_str(cx, "endpoint_host"),
        data["endpoint_port"].as_i64(),
        data_str(cx, "secret_arn"),
    ) else {
        return Transition::fail("the job's data lacks the instance, endpoint or secret");
    };
    let update = TenantUpdate::Ready {
        instance,
        host,
        port: port as i32,
        secret_arn,
        schema_version: data["schema_version"].as_i64().unwrap_or(0),
    };
    match update_tenant(cx, update).await {
        Ok(()) => Transition::done(),
        Err(e) => on_write_error(e),
    }
}
