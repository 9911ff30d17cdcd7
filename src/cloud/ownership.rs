//! The one ownership rule: a resource is this deployment's when its tags carry
//! `ManagedBy=tenantd`, `Environment=<TENANTD_ENVIRONMENT>` and the id of the tenant or warm-pool
//! standby it belongs to. Every path that changes or deletes an instance, secret, alarm or
//! snapshot asks [`check`] first and leaves a resource that fails it untouched; the [`Mismatch`]
//! names the tag that differs, for the error or the history note.

use std::fmt;

use super::{MANAGER, TAG_ENVIRONMENT, TAG_JOB, TAG_MANAGED_BY, TAG_STANDBY, TAG_TENANT};

/// Whose a resource should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder<'a> {
    Tenant(&'a str),
    Standby(&'a str),
}

impl Holder<'_> {
    fn tag(&self) -> (&'static str, &str) {
        match self {
            Holder::Tenant(id) => (TAG_TENANT, id),
            Holder::Standby(id) => (TAG_STANDBY, id),
        }
    }
}

/// The first tag by which a resource fails the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub key: &'static str,
    pub expected: String,
    /// `None`: the resource has no such tag.
    pub actual: Option<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.actual {
            Some(actual) => write!(
                f,
                "its tag {} is {actual:?}, not {:?}",
                self.key, self.expected
            ),
            None => write!(f, "it has no tag {}={}", self.key, self.expected),
        }
    }
}

/// The value of tag `key`, if the resource has it.
pub fn tag<'t>(tags: &'t [(String, String)], key: &str) -> Option<&'t str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Whether `tags` make a resource `holder`'s in `environment`: `Ok`, or the first tag that
/// differs (ManagedBy, then Environment, then the holder's id).
pub fn check(
    tags: &[(String, String)],
    environment: &str,
    holder: Holder<'_>,
) -> Result<(), Mismatch> {
    let (id_key, id) = holder.tag();
    for (key, expected) in [
        (TAG_MANAGED_BY, MANAGER),
        (TAG_ENVIRONMENT, environment),
        (id_key, id),
    ] {
        let actual = tag(tags, key);
        if actual != Some(expected) {
            return Err(Mismatch {
                key,
                expected: expected.to_string(),
                actual: actual.map(str::to_string),
            });
        }
    }
    Ok(())
}

/// Whether `tags` make a resource the deployment shares among its tenants (a parameter group)
/// this deployment's: `ManagedBy` and `Environment` as for [`check`], no holder.
pub fn check_shared(tags: &[(String, String)], environment: &str) -> Result<(), Mismatch> {
    for (key, expected) in [(TAG_MANAGED_BY, MANAGER), (TAG_ENVIRONMENT, environment)] {
        let actual = tag(tags, key);
        if actual != Some(expected) {
            return Err(Mismatch {
                key,
                expected: expected.to_string(),
                actual: actual.map(str::to_string),
            });
        }
    }
    Ok(())
}

/// Whether a resource's `ProvisioningJob` tag names one of `jobs` (the jobs allowed to delete
/// it in a rollback: the one that created it).
pub fn created_by(tags: &[(String, String)], jobs: &[String]) -> bool {
    tag(tags, TAG_JOB).is_some_and(|job| jobs.iter().any(|j| j == job))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_resource_is_ours_only_with_manager_environment_and_holder() {
        let ours = tags(&[
            ("ManagedBy", "tenantd"),
            ("Environment", "production"),
            ("TenantId", "acme"),
        ]);
        assert_eq!(check(&ours, "production", Holder::Tenant("acme")), Ok(()));

        let other_env = check(&ours, "staging", Holder::Tenant("acme")).unwrap_err();
        assert_eq!(other_env.key, "Environment");
        assert_eq!(
            other_env.to_string(),
            "its tag Environment is \"production\", not \"staging\""
        );

        let other_tenant = check(&ours, "production", Holder::Tenant("globex")).unwrap_err();
        assert_eq!(other_tenant.key, "TenantId");

        let untagged = check(&[], "production", Holder::Tenant("acme")).unwrap_err();
        assert_eq!(untagged.key, "ManagedBy");
        assert_eq!(untagged.to_string(), "it has no tag ManagedBy=tenantd");

        let detached = tags(&[("Environment", "production"), ("TenantId", "acme")]);
        assert_eq!(
            check(&detached, "production", Holder::Tenant("acme"))
                .unwrap_err()
                .key,
            "ManagedBy"
        );

        let standby = tags(&[
            ("ManagedBy", "tenantd"),
            ("Environment", "production"),
            ("PoolStandby", "saas-pool-1"),
        ]);
        assert_eq!(
            check(&standby, "production", Holder::Standby("saas-pool-1")),
            Ok(())
        );
        assert!(check(&standby, "production", Holder::Tenant("saas-pool-1")).is_err());
    }

    #[test]
    fn only_the_creating_job_may_roll_an_instance_back() {
        let t = tags(&[("ProvisioningJob", "j1")]);
        assert!(created_by(&t, &["j0".into(), "j1".into()]));
        assert!(!created_by(&t, &["j2".into()]));
        assert!(!created_by(&[], &["j1".into()]));
    }
}
