//! A tenant's desired instance, from its tier and the provisioning settings, compared with what
//! RDS reports: the differences (for people) and the one ModifyDBInstance that removes them
//! (for the change workflow). The engine version is compared by [`super::engine_version`].
//! Pure: no AWS call, so the rules are unit-tested here.

use super::engine_version;
use crate::cloud::rds::{InstanceChange, InstanceInfo};
use crate::config::{ProvisioningSettings, Tier};
pub use crate::store::tenants::Difference;

/// What it takes to bring an instance to its tier.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub differences: Vec<Difference>,
    pub change: InstanceChange,
    /// What cannot be done as the tier says (e.g. storage, which only grows on RDS).
    pub note: Option<String>,
    /// The storage the instance has once the change is applied.
    pub storage_gib: Option<i32>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.differences.is_empty()
    }

    /// The differences of the instance's settings, without its engine version's.
    pub fn settings(&self) -> Vec<Difference> {
        self.differences
            .iter()
            .filter(|d| !engine_version::is_engine_field(&d.field))
            .cloned()
            .collect()
    }

    /// The difference of the engine version, if any.
    pub fn engine(&self) -> Option<&Difference> {
        self.differences
            .iter()
            .find(|d| engine_version::is_engine_field(&d.field))
    }
}

/// What every tenant shares: the windows (`backup`, `maintenance`) and the engine version
/// (`TENANTD_ENGINE_VERSION`, whose major the instances should run unless their tenant records
/// its own: [`Common::with_major`]).
#[derive(Debug, Clone, Copy)]
pub struct Common<'a> {
    pub backup_window: &'a str,
    pub maintenance_window: &'a str,
    pub engine_version: &'a str,
}

impl<'a> Common<'a> {
    pub fn of(s: &'a ProvisioningSettings) -> Self {
        Common {
            backup_window: &s.backup_window,
            maintenance_window: &s.maintenance_window,
            engine_version: &s.engine_version,
        }
    }

    /// The same, with the tenant's own desired major (recorded at provisioning, moved by an
    /// engine upgrade) in place of the setting's; a tenant of an earlier release has none and
    /// follows the setting.
    pub fn with_major(self, major: Option<&'a str>) -> Self {
        Common {
            engine_version: major.unwrap_or(self.engine_version),
            ..self
        }
    }
}

fn show<T: std::fmt::Debug>(v: &Option<T>) -> String {
    match v {
        Some(v) => format!("{v:?}").trim_matches('"').to_string(),
        None => "none".into(),
    }
}

/// Compares `info` with `tier` and what every tenant shares.
pub fn plan(tier: &Tier, common: Common<'_>, info: &InstanceInfo) -> Plan {
    let mut p = Plan::default();
    let mut differ = |field: &str, expected: String, actual: String| {
        p.differences.push(Difference {
            field: field.into(),
            expected,
            actual,
        });
    };
    if info.instance_class.as_deref() != Some(tier.instance_class.as_str()) {
        differ(
            "instance_class",
            tier.instance_class.clone(),
            show(&info.instance_class),
        );
        p.change.instance_class = Some(tier.instance_class.clone());
    }
    let allocated = info.allocated_storage_gib.unwrap_or(0);
    let mut storage = allocated;
    if allocated < tier.storage_gib {
        differ(
            "storage_gib",
            tier.storage_gib.to_string(),
            allocated.to_string(),
        );
        p.change.allocated_storage_gib = Some(tier.storage_gib);
        storage = tier.storage_gib;
    } else if allocated > tier.storage_gib {
        p.note = Some(format!(
            "storage stays at {allocated} GiB: RDS storage only grows (the tier has {} GiB)",
            tier.storage_gib
        ));
    }
    p.storage_gib = (storage > 0).then_some(storage);
    if let Some(iops) = tier.iops
        && info.iops != Some(iops)
    {
        differ("iops", iops.to_string(), show(&info.iops));
        p.change.iops = Some(iops);
    }
    if let Some(throughput) = tier.storage_throughput
        && info.storage_throughput != Some(throughput)
    {
        differ(
            "storage_throughput",
            throughput.to_string(),
            show(&info.storage_throughput),
        );
        p.change.storage_throughput = Some(throughput);
    }
    // Autoscaling needs a limit above the allocated storage: a limit the kept storage already
    // exceeds is left as it is.
    if let Some(max) = tier.max_allocated_storage_gib
        && max > storage
        && info.max_allocated_storage_gib != Some(max)
    {
        differ(
            "max_allocated_storage_gib",
            max.to_string(),
            show(&info.max_allocated_storage_gib),
        );
        p.change.max_allocated_storage_gib = Some(max);
    }
    if info.backup_retention_days != tier.backup_retention_days {
        differ(
            "backup_retention_days",
            tier.backup_retention_days.to_string(),
            info.backup_retention_days.to_string(),
        );
        p.change.backup_retention_days = Some(tier.backup_retention_days);
    }
    let (backup_window, maintenance_window) = (common.backup_window, common.maintenance_window);
    if info.backup_window.as_deref() != Some(backup_window) {
        differ(
            "backup_window",
            backup_window.into(),
            show(&info.backup_window),
        );
        p.change.backup_window = Some(backup_window.into());
    }
    if info
        .maintenance_window
        .as_deref()
        .is_some_and(|w| !w.eq_ignore_ascii_case(maintenance_window))
    {
        differ(
            "maintenance_window",
            maintenance_window.into(),
            show(&info.maintenance_window),
        );
        p.change.maintenance_window = Some(maintenance_window.into());
    }
    if info.multi_az.unwrap_or(false) != tier.multi_az {
        differ("multi_az", tier.multi_az.to_string(), show(&info.multi_az));
        p.change.multi_az = Some(tier.multi_az);
    }
    let pi_on = info.performance_insights.unwrap_or(false);
    let pi_matches = match tier.performance_insights_days {
        None => !pi_on,
        Some(days) => pi_on && info.performance_insights_days == Some(days),
    };
    if !pi_matches {
        let actual = if pi_on {
            format!("{} days", show(&info.performance_insights_days))
        } else {
            "off".into()
        };
        let expected = match tier.performance_insights_days {
            Some(days) => format!("{days} days"),
            None => "off".into(),
        };
        differ("performance_insights", expected, actual);
        p.change.performance_insights = Some(tier.performance_insights_days);
    }
    if info.deletion_protection != tier.deletion_protection {
        differ(
            "deletion_protection",
            tier.deletion_protection.to_string(),
            info.deletion_protection.to_string(),
        );
        p.change.deletion_protection = Some(tier.deletion_protection);
    }
    let engine = engine_version::check(
        common.engine_version,
        tier.minimum_engine_version.as_deref(),
        info.engine_version.as_deref(),
        info.pending_engine_version.as_deref(),
    );
    p.differences.extend(engine.difference);
    p.change.engine_version = engine.upgrade_to;
    p
}

/// Whether the instance shows `tier`'s settings already (what a change waits for before it
/// records the new tier). Only the settings a change sets at once are compared: a minor
/// upgrade comes with the maintenance window, and a major is not a setting.
pub fn reached(tier: &Tier, common: Common<'_>, info: &InstanceInfo) -> bool {
    plan(tier, common, info).settings().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Tiers;

    const WINDOWS: Common<'static> = Common {
        backup_window: "03:00-04:00",
        maintenance_window: "sun:05:00-sun:06:00",
        engine_version: "16",
    };

    fn tier(name: &str) -> Tier {
        Tiers::defaults().get(name).unwrap().clone()
    }

    /// An instance exactly as `tier` wants it.
    fn as_tier(t: &Tier) -> InstanceInfo {
        InstanceInfo {
            identifier: "saas-acme".into(),
            status: "available".into(),
            instance_class: Some(t.instance_class.clone()),
            allocated_storage_gib: Some(t.storage_gib),
            max_allocated_storage_gib: t.max_allocated_storage_gib,
            backup_retention_days: t.backup_retention_days,
            backup_window: Some(WINDOWS.backup_window.into()),
            maintenance_window: Some(WINDOWS.maintenance_window.into()),
            engine_version: Some("16.8".into()),
            multi_az: Some(t.multi_az),
            performance_insights: Some(t.performance_insights_days.is_some()),
            performance_insights_days: t.performance_insights_days,
            deletion_protection: t.deletion_protection,
            ..InstanceInfo::default()
        }
    }

    #[test]
    fn an_instance_on_its_tier_needs_nothing() {
        for name in ["starter", "pro", "enterprise"] {
            let t = tier(name);
            let p = plan(&t, WINDOWS, &as_tier(&t));
            assert!(p.is_empty(), "{name}: {:?}", p.differences);
            assert!(p.note.is_none());
            assert_eq!(p.storage_gib, Some(t.storage_gib));
        }
    }

    #[test]
    fn the_tenants_own_major_comes_before_the_setting() {
        let t = tier("starter");
        let mut on_17 = as_tier(&t);
        on_17.engine_version = Some("17.4".into());
        // Upgraded to 17 while the setting says 16: no drift.
        assert!(plan(&t, WINDOWS.with_major(Some("17")), &on_17).is_empty());
        // A tenant of an earlier release (none recorded) follows the setting: drift.
        let p = plan(&t, WINDOWS.with_major(None), &on_17);
        let d = p.engine().expect("another major");
        assert_eq!(
            (d.field.as_str(), d.expected.as_str()),
            ("engine_major", "16")
        );
        // Recorded on 16 while the setting moved to 17: its 16 instance is no drift.
        let setting_17 = Common {
            engine_version: "17",
            ..WINDOWS
        };
        assert!(plan(&t, setting_17.with_major(Some("16")), &as_tier(&t)).is_empty());
    }

    #[test]
    fn an_upgrade_changes_every_setting_that_differs() {
        let p = plan(&tier("enterprise"), WINDOWS, &as_tier(&tier("starter")));
        let fields: Vec<&str> = p.differences.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "instance_class",
                "storage_gib",
                "max_allocated_storage_gib",
                "backup_retention_days",
                "multi_az",
                "performance_insights",
                "deletion_protection"
            ]
        );
        let c = &p.change;
        assert_eq!(c.instance_class.as_deref(), Some("db.m6i.large"));
        assert_eq!(c.allocated_storage_gib, Some(500));
        assert_eq!(c.multi_az, Some(true));
        assert_eq!(c.performance_insights, Some(Some(731)));
        assert_eq!(c.deletion_protection, Some(true));
        assert_eq!(p.storage_gib, Some(500));
    }

    #[test]
    fn a_downgrade_keeps_the_storage_and_says_so() {
        let p = plan(&tier("starter"), WINDOWS, &as_tier(&tier("enterprise")));
        assert_eq!(p.change.allocated_storage_gib, None);
        assert_eq!(p.storage_gib, Some(500));
        assert!(
            p.note.as_deref().unwrap().contains("500 GiB"),
            "{:?}",
            p.note
        );
        // starter's autoscaling limit (100) is below the kept 500 GiB: left alone.
        assert_eq!(p.change.max_allocated_storage_gib, None);
        assert_eq!(p.change.performance_insights, Some(None));
        assert_eq!(p.change.deletion_protection, Some(false));
        assert_eq!(p.change.multi_az, Some(false));
    }

    #[test]
    fn drift_behind_tenantds_back_shows_expected_and_actual() {
        let t = tier("pro");
        let mut info = as_tier(&t);
        info.backup_retention_days = 1;
        info.deletion_protection = true;
        let p = plan(&t, WINDOWS, &info);
        assert_eq!(
            p.differences,
            [
                Difference {
                    field: "backup_retention_days".into(),
                    expected: "14".into(),
                    actual: "1".into()
                },
                Difference {
                    field: "deletion_protection".into(),
                    expected: "false".into(),
                    actual: "true".into()
                },
            ]
        );
        assert!(!reached(&t, WINDOWS, &info));
    }

    #[test]
    fn a_minor_below_the_tiers_minimum_is_upgraded_and_another_major_only_reported() {
        let mut t = tier("pro");
        let info = as_tier(&t);
        // RDS moved the instance to a newer minor by itself: nothing to do.
        let mut newer = info.clone();
        newer.engine_version = Some("16.9".into());
        assert!(plan(&t, WINDOWS, &newer).is_empty());
        t.minimum_engine_version = Some("16.9".into());
        let p = plan(&t, WINDOWS, &info);
        assert_eq!(p.engine().map(|d| d.field.as_str()), Some("engine_version"));
        assert_eq!(p.change.engine_version.as_deref(), Some("16.9"));
        assert!(p.settings().is_empty());
        // What waits for the window is not waited for.
        assert!(reached(&t, WINDOWS, &info));
        let mut pending = info.clone();
        pending.pending_engine_version = Some("16.9".into());
        assert!(plan(&t, WINDOWS, &pending).is_empty());
        // Another major: reported, never changed.
        let mut other = info.clone();
        other.engine_version = Some("17.4".into());
        other.backup_retention_days = 1;
        let p = plan(&t, WINDOWS, &other);
        assert_eq!(
            p.engine(),
            Some(&Difference {
                field: "engine_major".into(),
                expected: "16".into(),
                actual: "17.4".into()
            })
        );
        assert_eq!(p.change.engine_version, None);
        assert_eq!(p.settings().len(), 1);
    }
}
