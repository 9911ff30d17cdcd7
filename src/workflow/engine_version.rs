//! PostgreSQL versions as RDS names them (`16.8`): their major, their order, and how the version
//! an instance runs compares with what its tenant should run. The desired state holds the
//! *major* (the tenant's own, recorded at provisioning and moved by an engine upgrade; the
//! major of `TENANTD_ENGINE_VERSION` for tenants of earlier releases) and, if the tier sets one,
//! a minimum minor: a newer minor
//! that RDS applied by itself is what the instance runs now, never drift; an older one than the
//! tier's minimum is drift repaired by a minor upgrade in the maintenance window; another major
//! is drift that only people (or an engine upgrade) act on. Pure: unit-tested here.

use std::cmp::Ordering;

use crate::store::tenants::Difference;

/// Drift field of an instance on another major than the tenant's (reported, never repaired).
pub const MAJOR_FIELD: &str = "engine_major";
/// Drift field of an instance on an older minor than its tier's minimum (repaired).
pub const MINOR_FIELD: &str = "engine_version";

/// The numbers of a version (`16.8` → `[16, 8]`; a suffix such as `-rds.2024` is ignored).
fn numbers(version: &str) -> Vec<u32> {
    version
        .split('.')
        .map_while(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// The major of a version: `16` of `16.8` (and of `16`).
pub fn major(version: &str) -> String {
    numbers(version)
        .first()
        .map(u32::to_string)
        .unwrap_or_else(|| version.to_string())
}

/// Orders two versions by their numbers (`16.10` after `16.9`).
pub fn compare(a: &str, b: &str) -> Ordering {
    numbers(a).cmp(&numbers(b))
}

/// How an instance's version stands against the tenant's desired one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineCheck {
    /// What differs (at most one: the major, or a minor below the minimum).
    pub difference: Option<Difference>,
    /// The minor upgrade that repairs it (only for a minor below the minimum).
    pub upgrade_to: Option<String>,
}

/// Compares the version an instance runs (`actual`, and what RDS holds for its next maintenance
/// window, `pending`) with the desired `major` and the tier's `minimum` minor.
pub fn check(
    major_wanted: &str,
    minimum: Option<&str>,
    actual: Option<&str>,
    pending: Option<&str>,
) -> EngineCheck {
    let none = EngineCheck {
        difference: None,
        upgrade_to: None,
    };
    let Some(actual) = actual else {
        return none;
    };
    let wanted = major(major_wanted);
    if major(actual) != wanted {
        return EngineCheck {
            difference: Some(Difference {
                field: MAJOR_FIELD.into(),
                expected: wanted,
                actual: actual.into(),
            }),
            upgrade_to: None,
        };
    }
    let Some(minimum) = minimum.filter(|m| major(m) == wanted) else {
        return none;
    };
    let meets = |v: &str| compare(v, minimum) != Ordering::Less;
    // Already asked for (an earlier repair, or people): it comes with the window.
    if meets(actual) || pending.is_some_and(|p| major(p) == wanted && meets(p)) {
        return none;
    }
    EngineCheck {
        difference: Some(Difference {
            field: MINOR_FIELD.into(),
            expected: format!("{minimum} or newer"),
            actual: actual.into(),
        }),
        upgrade_to: Some(minimum.to_string()),
    }
}

/// Whether a drift field is about the engine version (which a settings change leaves alone).
pub fn is_engine_field(field: &str) -> bool {
    field == MAJOR_FIELD || field == MINOR_FIELD
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_by_their_numbers() {
        assert_eq!(compare("16.10", "16.9"), Ordering::Greater);
        assert_eq!(compare("16.9", "16.9"), Ordering::Equal);
        assert_eq!(compare("15.13", "16.1"), Ordering::Less);
        assert_eq!(major("16.8"), "16");
        assert_eq!(major("17"), "17");
        assert_eq!(major("11.22-rds.20240418"), "11");
    }

    #[test]
    fn a_newer_minor_than_any_minimum_is_no_drift() {
        for minimum in [None, Some("16.4"), Some("16.9")] {
            let c = check("16", minimum, Some("16.9"), None);
            assert_eq!(c.difference, None, "{minimum:?}");
            assert_eq!(c.upgrade_to, None);
        }
        // The setting may name a minor: only its major counts.
        assert_eq!(check("16.4", None, Some("16.9"), None).difference, None);
        // Nothing known about the instance's version: nothing to say.
        assert_eq!(check("16", Some("16.9"), None, None).difference, None);
    }

    #[test]
    fn a_minor_below_the_minimum_is_repaired_unless_the_upgrade_is_pending() {
        let c = check("16", Some("16.9"), Some("16.4"), None);
        let d = c.difference.unwrap();
        assert_eq!(
            (d.field.as_str(), d.expected.as_str(), d.actual.as_str()),
            (MINOR_FIELD, "16.9 or newer", "16.4")
        );
        assert_eq!(c.upgrade_to.as_deref(), Some("16.9"));
        // 16.10 is newer than 16.9, not older.
        assert_eq!(
            check("16", Some("16.9"), Some("16.10"), None).difference,
            None
        );
        for pending in ["16.9", "16.10"] {
            assert_eq!(
                check("16", Some("16.9"), Some("16.4"), Some(pending)),
                EngineCheck {
                    difference: None,
                    upgrade_to: None
                },
                "{pending}"
            );
        }
        // A pending minor still below the minimum does not count.
        assert!(
            check("16", Some("16.9"), Some("16.4"), Some("16.6"))
                .difference
                .is_some()
        );
    }

    #[test]
    fn another_major_is_reported_and_never_given_an_upgrade() {
        for (wanted, actual) in [("16", "17.4"), ("16", "15.12"), ("17", "16.9")] {
            let c = check(wanted, Some("16.9"), Some(actual), None);
            let d = c.difference.unwrap();
            assert_eq!(
                (d.field.as_str(), d.expected.as_str(), d.actual.as_str()),
                (MAJOR_FIELD, major(wanted).as_str(), actual)
            );
            assert_eq!(c.upgrade_to, None);
        }
        // A minimum of another major than the desired one holds nobody.
        assert_eq!(
            check("17", Some("16.9"), Some("17.1"), None).difference,
            None
        );
        assert!(is_engine_field(MAJOR_FIELD) && is_engine_field(MINOR_FIELD));
        assert!(!is_engine_field("instance_class"));
    }
}
