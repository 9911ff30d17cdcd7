//! Tenants made cheaply for the benchmarks: what CreateDBInstance gets for a tenant of a tier,
//! so that set-ups create instances through the RDS API as provisioning would, without
//! running provisioning's other steps.

use tenantd::cloud::Tags;
use tenantd::cloud::rds::InstanceSpec;
use tenantd::config::{ProvisioningSettings, Tier};

/// The instance provisioning would create for `tenant` on `tier`, carrying `tags`.
pub fn instance_spec(
    p: &ProvisioningSettings,
    tier: &Tier,
    tenant: &str,
    tags: Tags,
) -> InstanceSpec {
    InstanceSpec {
        identifier: p.instance_id(tenant),
        instance_class: tier.instance_class.clone(),
        engine_version: p.engine_version.clone(),
        storage_gib: tier.storage_gib,
        iops: tier.iops,
        storage_throughput: tier.storage_throughput,
        backup_retention_days: tier.backup_retention_days,
        backup_window: p.backup_window.clone(),
        maintenance_window: p.maintenance_window.clone(),
        multi_az: tier.multi_az,
        performance_insights_days: tier.performance_insights_days,
        max_allocated_storage_gib: tier.max_allocated_storage_gib,
        security_group_ids: Vec::new(),
        db_subnet_group: None,
        master_username: p.master_username.clone(),
        db_name: p.db_name.clone(),
        tags,
    }
}
