//! Tiers: what kind of RDS instance a tenant gets. Read from a TOML file (or the built-in
//! defaults) and checked against RDS's rules at start-up, so a bad tier stops the daemon before
//! the first tenant asks for it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One tier's instance settings. Settings common to every tier (engine version, network, backup
/// and maintenance windows) live in `ProvisioningSettings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// e.g. `db.t3.micro`.
    pub instance_class: String,
    /// gp3 storage in GiB.
    pub storage_gib: i32,
    /// Provisioned gp3 IOPS; RDS for PostgreSQL accepts them from 400 GiB on.
    #[serde(default)]
    pub iops: Option<i32>,
    /// Provisioned gp3 throughput in MiB/s; needs `iops`.
    #[serde(default)]
    pub storage_throughput: Option<i32>,
    pub backup_retention_days: i32,
    #[serde(default)]
    pub multi_az: bool,
    /// Performance Insights retention in days; absent: Performance Insights off.
    #[serde(default)]
    pub performance_insights_days: Option<i32>,
    /// Point-in-time recovery must be available (needs automated backups).
    #[serde(default)]
    pub point_in_time_recovery: bool,
    /// Switched on once the tenant is otherwise ready.
    #[serde(default)]
    pub deletion_protection: bool,
    /// Storage autoscaling: RDS grows the storage up to this many GiB when it runs low
    /// (`MaxAllocatedStorage`); absent: no autoscaling.
    #[serde(default)]
    pub max_allocated_storage_gib: Option<i32>,
    /// The low-storage alarm fires below this much free storage, in GiB; absent: a tenth of
    /// the storage, at least 2 GiB.
    #[serde(default)]
    pub low_storage_alarm_gib: Option<i32>,
    /// Keep the automated backups when the instance is deleted (restorable to a point in time
    /// until their retention ends; billed until then); absent: as `point_in_time_recovery`.
    #[serde(default)]
    pub keep_automated_backups: Option<bool>,
    /// The oldest minor version (e.g. `16.9`) an instance of this tier on that major may run:
    /// one on an older minor is drift, repaired by a minor upgrade in its maintenance window.
    /// Newer minors (RDS's automatic minor upgrades) are always fine; instances on another
    /// major are not held to it. Absent: any minor.
    #[serde(default)]
    pub minimum_engine_version: Option<String>,
}

impl Tier {
    /// Free storage, in bytes, below which the low-storage alarm fires.
    pub fn low_storage_bytes(&self) -> f64 {
        let gib = self
            .low_storage_alarm_gib
            .unwrap_or((self.storage_gib / 10).max(2));
        f64::from(gib) * 1024.0 * 1024.0 * 1024.0
    }

    /// Whether the automated backups outlive the instance.
    pub fn keeps_automated_backups(&self) -> bool {
        self.keep_automated_backups
            .unwrap_or(self.point_in_time_recovery)
    }
}

/// The tiers by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tiers(pub BTreeMap<String, Tier>);

/// A rule a tier breaks, naming the tier and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TierError {
    #[error("tier {tier}: {field}: {problem}")]
    Invalid {
        tier: String,
        field: &'static str,
        problem: String,
    },
    #[error("no tiers are defined")]
    Empty,
    #[error("cannot read the tier file {path}: {problem}")]
    File { path: String, problem: String },
}

impl Tiers {
    /// starter, pro and enterprise as the product sells them.
    pub fn defaults() -> Self {
        let mut tiers = BTreeMap::new();
        tiers.insert(
            "starter".into(),
            Tier {
                instance_class: "db.t3.micro".into(),
                storage_gib: 20,
                iops: None,
                storage_throughput: None,
                backup_retention_days: 7,
                multi_az: false,
                performance_insights_days: None,
                point_in_time_recovery: false,
                deletion_protection: false,
                max_allocated_storage_gib: Some(100),
                low_storage_alarm_gib: Some(2),
                keep_automated_backups: Some(false),
                minimum_engine_version: None,
            },
        );
        tiers.insert(
            "pro".into(),
            Tier {
                instance_class: "db.t3.small".into(),
                storage_gib: 100,
                iops: None,
                storage_throughput: None,
                backup_retention_days: 14,
                multi_az: false,
                performance_insights_days: Some(7),
                point_in_time_recovery: false,
                deletion_protection: false,
                max_allocated_storage_gib: Some(500),
                low_storage_alarm_gib: Some(10),
                keep_automated_backups: Some(false),
                minimum_engine_version: None,
            },
        );
        tiers.insert(
            "enterprise".into(),
            Tier {
                instance_class: "db.m6i.large".into(),
                storage_gib: 500,
                iops: None,
                storage_throughput: None,
                backup_retention_days: 35,
                multi_az: true,
                performance_insights_days: Some(731),
                point_in_time_recovery: true,
                deletion_protection: true,
                max_allocated_storage_gib: Some(2000),
                low_storage_alarm_gib: Some(50),
                keep_automated_backups: Some(true),
                minimum_engine_version: None,
            },
        );
        Tiers(tiers)
    }

    /// Parses and validates a TOML document of `[name]` tables.
    pub fn from_toml(text: &str) -> Result<Self, TierError> {
        let tiers: Tiers = toml::from_str(text).map_err(|e| TierError::File {
            path: "(inline)".into(),
            problem: e.message().to_string(),
        })?;
        tiers.validate()?;
        Ok(tiers)
    }

    /// Reads, parses and validates a tier file.
    pub fn from_file(path: &Path) -> Result<Self, TierError> {
        let text = std::fs::read_to_string(path).map_err(|e| TierError::File {
            path: path.display().to_string(),
            problem: e.to_string(),
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            TierError::File { problem, .. } => TierError::File {
                path: path.display().to_string(),
                problem,
            },
            other => other,
        })
    }

    pub fn get(&self, name: &str) -> Option<&Tier> {
        self.0.get(name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }

    /// Checks every tier against RDS for PostgreSQL's rules for gp3 instances.
    pub fn validate(&self) -> Result<(), TierError> {
        if self.0.is_empty() {
            return Err(TierError::Empty);
        }
        for (name, tier) in &self.0 {
            let invalid = |field: &'static str, problem: String| TierError::Invalid {
                tier: name.clone(),
                field,
                problem,
            };
            let name_ok = name.len() <= 32
                && name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !name_ok {
                return Err(invalid(
                    "name",
                    "expected up to 32 lowercase letters, digits, '-' or '_', a letter first"
                        .into(),
                ));
            }
            tier.validate()
                .map_err(|(field, problem)| invalid(field, problem))?;
        }
        Ok(())
    }
}

impl Tier {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        let class_ok = self
            .instance_class
            .strip_prefix("db.")
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(family, size)| {
                let part = |s: &str| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                };
                part(family) && part(size)
            });
        if !class_ok {
            return Err((
                "instance_class",
                format!(
                    "expected an RDS class such as db.t3.micro, got {:?}",
                    self.instance_class
                ),
            ));
        }
        if !(20..=65536).contains(&self.storage_gib) {
            return Err((
                "storage_gib",
                format!(
                    "gp3 storage for PostgreSQL is 20 to 65536 GiB, got {}",
                    self.storage_gib
                ),
            ));
        }
        if let Some(iops) = self.iops {
            if self.storage_gib < 400 {
                return Err((
                    "iops",
                    format!(
                        "RDS for PostgreSQL accepts gp3 IOPS only from 400 GiB of storage, this tier has {}",
                        self.storage_gib
                    ),
                ));
            }
            if !(12000..=64000).contains(&iops) {
                return Err((
                    "iops",
                    format!("gp3 IOPS from 400 GiB on are 12000 to 64000, got {iops}"),
                ));
            }
            if iops > self.storage_gib.saturating_mul(500) {
                return Err((
                    "iops",
                    format!(
                        "at most 500 IOPS per GiB: {} GiB allows {}, got {iops}",
                        self.storage_gib,
                        self.storage_gib * 500
                    ),
                ));
            }
        }
        if let Some(throughput) = self.storage_throughput {
            let Some(iops) = self.iops else {
                return Err((
                    "storage_throughput",
                    "gp3 throughput can only be set together with iops".into(),
                ));
            };
            if !(500..=4000).contains(&throughput) {
                return Err((
                    "storage_throughput",
                    format!(
                        "gp3 throughput from 400 GiB on is 500 to 4000 MiB/s, got {throughput}"
                    ),
                ));
            }
            if f64::from(throughput) > f64::from(iops) * 0.25 {
                return Err((
                    "storage_throughput",
                    format!(
                        "at most 0.25 MiB/s per IOPS: {iops} IOPS allow {}",
                        iops / 4
                    ),
                ));
            }
        }
        if !(0..=35).contains(&self.backup_retention_days) {
            return Err((
                "backup_retention_days",
                format!("expected 0 to 35 days, got {}", self.backup_retention_days),
            ));
        }
        if self.point_in_time_recovery && self.backup_retention_days == 0 {
            return Err((
                "point_in_time_recovery",
                "needs automated backups: backup_retention_days must be at least 1".into(),
            ));
        }
        if self.multi_az && self.backup_retention_days == 0 {
            // Not an RDS rule, but a Multi-AZ tier without backups is surely a typo.
            return Err((
                "backup_retention_days",
                "a Multi-AZ tier must keep backups (1 to 35 days)".into(),
            ));
        }
        if let Some(max) = self.max_allocated_storage_gib {
            // RDS: at least 10 % above the allocated storage, at most the gp3 limit.
            let least = self.storage_gib + (self.storage_gib + 9) / 10;
            if !(least..=65536).contains(&max) {
                return Err((
                    "max_allocated_storage_gib",
                    format!(
                        "must be from {least} (10% above storage_gib {}) to 65536, got {max}",
                        self.storage_gib
                    ),
                ));
            }
        }
        if let Some(low) = self.low_storage_alarm_gib
            && !(1..self.storage_gib).contains(&low)
        {
            return Err((
                "low_storage_alarm_gib",
                format!(
                    "must be from 1 to below storage_gib ({}), got {low}",
                    self.storage_gib
                ),
            ));
        }
        if let Some(version) = &self.minimum_engine_version {
            let parts: Vec<&str> = version.split('.').collect();
            let numeric = parts
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()));
            if parts.len() != 2 || !numeric {
                return Err((
                    "minimum_engine_version",
                    format!("expected a PostgreSQL minor version such as 16.9, got {version:?}"),
                ));
            }
        }
        if let Some(days) = self.performance_insights_days {
            let ok = days == 7 || days == 731 || (days % 31 == 0 && (31..=713).contains(&days));
            if !ok {
                return Err((
                    "performance_insights_days",
                    format!("RDS accepts 7, 731, or a multiple of 31 up to 713 days, got {days}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starter() -> Tier {
        Tiers::defaults().get("starter").unwrap().clone()
    }

    fn check(tier: Tier) -> Result<(), TierError> {
        let mut tiers = BTreeMap::new();
        tiers.insert("custom".to_string(), tier);
        Tiers(tiers).validate()
    }

    fn field_of(err: TierError) -> &'static str {
        match err {
            TierError::Invalid { tier, field, .. } => {
                assert_eq!(tier, "custom");
                field
            }
            other => panic!("expected an invalid field, got {other}"),
        }
    }

    #[test]
    fn the_defaults_are_valid_and_match_the_product() {
        let tiers = Tiers::defaults();
        tiers.validate().unwrap();
        assert_eq!(tiers.names(), ["enterprise", "pro", "starter"]);
        let e = tiers.get("enterprise").unwrap();
        assert_eq!(
            (e.storage_gib, e.backup_retention_days, e.multi_az),
            (500, 35, true)
        );
        assert_eq!(e.performance_insights_days, Some(731));
        assert!(e.deletion_protection && e.point_in_time_recovery);
        assert_eq!(tiers.get("pro").unwrap().performance_insights_days, Some(7));
        let limits: Vec<(Option<i32>, f64, bool)> = ["starter", "pro", "enterprise"]
            .iter()
            .map(|n| {
                let t = tiers.get(n).unwrap();
                let gib = t.low_storage_bytes() / f64::from(1 << 30);
                (
                    t.max_allocated_storage_gib,
                    gib,
                    t.keeps_automated_backups(),
                )
            })
            .collect();
        assert_eq!(
            limits,
            [
                (Some(100), 2.0, false),
                (Some(500), 10.0, false),
                (Some(2000), 50.0, true)
            ]
        );
    }

    #[test]
    fn the_deployment_example_tiers_file_is_the_built_in_tiers() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/deploy/tiers.toml");
        assert_eq!(Tiers::from_file(&path).unwrap(), Tiers::defaults());
    }

    #[test]
    fn iops_below_400_gib_are_refused_naming_tier_and_field() {
        let err = check(Tier {
            iops: Some(12000),
            ..starter()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("tier custom: iops:"), "{err}");
        let ok = Tier {
            storage_gib: 400,
            iops: Some(12000),
            storage_throughput: Some(500),
            max_allocated_storage_gib: None,
            ..starter()
        };
        check(ok).unwrap();
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases: Vec<(Tier, &str)> = vec![
            (
                Tier {
                    instance_class: "t3.micro".into(),
                    ..starter()
                },
                "instance_class",
            ),
            (
                Tier {
                    storage_gib: 10,
                    ..starter()
                },
                "storage_gib",
            ),
            (
                Tier {
                    storage_gib: 70000,
                    ..starter()
                },
                "storage_gib",
            ),
            (
                Tier {
                    backup_retention_days: 36,
                    ..starter()
                },
                "backup_retention_days",
            ),
            (
                Tier {
                    backup_retention_days: 0,
                    point_in_time_recovery: true,
                    ..starter()
                },
                "point_in_time_recovery",
            ),
            (
                Tier {
                    performance_insights_days: Some(30),
                    ..starter()
                },
                "performance_insights_days",
            ),
            (
                Tier {
                    max_allocated_storage_gib: Some(21),
                    ..starter()
                },
                "max_allocated_storage_gib",
            ),
            (
                Tier {
                    low_storage_alarm_gib: Some(20),
                    ..starter()
                },
                "low_storage_alarm_gib",
            ),
            (
                Tier {
                    minimum_engine_version: Some("16".into()),
                    ..starter()
                },
                "minimum_engine_version",
            ),
            (
                Tier {
                    minimum_engine_version: Some("16.x".into()),
                    ..starter()
                },
                "minimum_engine_version",
            ),
            (
                Tier {
                    storage_gib: 400,
                    iops: Some(3000),
                    ..starter()
                },
                "iops",
            ),
            (
                Tier {
                    storage_gib: 400,
                    storage_throughput: Some(500),
                    ..starter()
                },
                "storage_throughput",
            ),
            (
                Tier {
                    storage_gib: 400,
                    iops: Some(12000),
                    storage_throughput: Some(3001),
                    ..starter()
                },
                "storage_throughput",
            ),
        ];
        for (tier, field) in cases {
            assert_eq!(field_of(check(tier).unwrap_err()), field);
        }
    }

    #[test]
    fn performance_insights_retention_follows_rds() {
        for ok in [7, 31, 62, 713, 731] {
            check(Tier {
                performance_insights_days: Some(ok),
                ..starter()
            })
            .unwrap();
        }
        for bad in [0, 8, 32, 744, 730] {
            assert!(
                check(Tier {
                    performance_insights_days: Some(bad),
                    ..starter()
                })
                .is_err()
            );
        }
    }

    #[test]
    fn a_tier_file_is_parsed_and_unknown_fields_are_refused() {
        let tiers = Tiers::from_toml(
            r#"
            [tiny]
            instance_class = "db.t4g.micro"
            storage_gib = 20
            backup_retention_days = 1
            "#,
        )
        .unwrap();
        assert_eq!(tiers.get("tiny").unwrap().instance_class, "db.t4g.micro");
        assert_eq!(tiers.get("tiny").unwrap().minimum_engine_version, None);
        let held = Tiers::from_toml(
            "[held]\ninstance_class = \"db.t4g.micro\"\nstorage_gib = 20\nbackup_retention_days = 1\nminimum_engine_version = \"16.9\"\n",
        )
        .unwrap();
        assert_eq!(
            held.get("held").unwrap().minimum_engine_version.as_deref(),
            Some("16.9")
        );
        let err = Tiers::from_toml(
            "[tiny]\ninstance_class = \"db.t4g.micro\"\nstorage_gib = 20\nbackup_retention_days = 1\nstorage_gb = 5\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("storage_gb"), "{err}");
        let err = Tiers::from_toml(
            "[Big]\ninstance_class = \"db.t4g.micro\"\nstorage_gib = 20\nbackup_retention_days = 1\n",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("tier Big: name"), "{err}");
        assert_eq!(Tiers::from_toml("").unwrap_err(), TierError::Empty);
    }
}
