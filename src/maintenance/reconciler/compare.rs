//! The reconciler's comparing: for one tenant, what AWS reported against what its tier, its
//! tags, its alarms, its secret and the tenant migrations say it should be, and the status that
//! follows (lost, degraded, detached).

use std::collections::{BTreeMap, HashMap};

use super::Reconciler;
use crate::cloud::alarms::instance_alarms;
use crate::cloud::maintenance::PendingMaintenance;
use crate::cloud::ownership::{self, Holder};
use crate::cloud::rds::{InstanceInfo, UNRECOVERABLE};
use crate::cloud::secrets::SecretInfo;
use crate::config::Tier;
use crate::store::tenants::{Difference, Tenant, TenantStatus};
use crate::tenant_db::SchemaMigration;
use crate::tenants::Findings;
use crate::workflow::desired::{self, Common};

impl Reconciler {
    /// What differs for one tenant, and the status it should have.
    pub(super) fn look(&self, tenant: &Tenant, tier: &Tier, seen: &Seen<'_>) -> Findings {
        let t = &self.aws;
        let s = &t.settings;
        let id = t.instance_of(tenant);
        let own = match tenant.status {
            TenantStatus::Suspended => TenantStatus::Suspended,
            _ => TenantStatus::Ready,
        };
        let Some(info) = seen.instance else {
            return Findings {
                engine_version: None,
                pending_maintenance: None,
                ca_certificate: None,
                drift: vec![Difference {
                    field: "instance".into(),
                    expected: id.clone(),
                    actual: "missing".into(),
                }],
                status: TenantStatus::Lost,
                error: Some(format!(
                    "instance {id} does not exist (deleted outside tenantd?); nothing is re-created"
                )),
            };
        };
        // Not this deployment's any more (its ownership tags were removed or changed): shown
        // and counted, never repaired; only an operator's attach ends it.
        let holder = Holder::Tenant(&tenant.id);
        if let Err(why) = ownership::check(&info.tags, &s.environment, holder) {
            return Findings {
                engine_version: None,
                pending_maintenance: None,
                ca_certificate: None,
                drift: vec![Difference {
                    field: format!("tag:{}", why.key),
                    expected: why.expected.clone(),
                    actual: why.actual.clone().unwrap_or_else(|| "missing".into()),
                }],
                status: TenantStatus::Detached,
                error: Some(format!(
                    "instance {id} is detached ({why}): tenantd leaves it alone (no repair, \
                     change, stop or delete) until it is re-attached with \
                     POST /v1/tenants/{}/attach",
                    tenant.id
                )),
            };
        }
        if tenant.status == TenantStatus::Detached {
            return Findings {
                engine_version: None,
                pending_maintenance: None,
                ca_certificate: None,
                drift: Vec::new(),
                status: TenantStatus::Detached,
                error: Some(format!(
                    "instance {id} carries this deployment's tags again, but stays detached \
                     until it is re-attached with POST /v1/tenants/{}/attach",
                    tenant.id
                )),
            };
        }
        let status = info.status.as_str();
        if UNRECOVERABLE.contains(&status) {
            return Findings {
                engine_version: None,
                pending_maintenance: None,
                ca_certificate: None,
                drift: vec![Difference {
                    field: "status".into(),
                    expected: "available".into(),
                    actual: status.into(),
                }],
                status: TenantStatus::Degraded,
                error: Some(format!("instance {id} is {status}: it needs an operator")),
            };
        }
        let mut drift = Vec::new();
        match (own, status) {
            (TenantStatus::Suspended, "available" | "starting") => drift.push(Difference {
                field: "status".into(),
                expected: "stopped".into(),
                actual: status.into(),
            }),
            (TenantStatus::Ready, "stopped" | "stopping") => drift.push(Difference {
                field: "status".into(),
                expected: "available".into(),
                actual: status.into(),
            }),
            (TenantStatus::Ready, "available") => {
                drift.extend(
                    desired::plan(
                        tier,
                        Common::of(s).with_major(tenant.engine_major.as_deref()),
                        info,
                    )
                    .differences,
                );
                for (key, value) in t.tags(&tenant.id, &tenant.tier) {
                    let actual = info.tags.iter().find(|(k, _)| *k == key).map(|(_, v)| v);
                    if actual != Some(&value) {
                        drift.push(Difference {
                            field: format!("tag:{key}"),
                            expected: value,
                            actual: actual.cloned().unwrap_or_else(|| "missing".into()),
                        });
                    }
                }
            }
            // Busy (modifying, backing-up, ...): its settings are compared next round.
            _ => {}
        }
        // What is looked at on alternate rounds keeps what the last look found.
        let previous = tenant
            .drift
            .as_ref()
            .map(|d| d.0.clone())
            .unwrap_or_default();
        match seen.alarms {
            Some(alarms) => {
                let topic = s.alarm_topic_arn.as_deref();
                for alarm in instance_alarms(&id, topic, tier.low_storage_bytes()) {
                    let expected = format!("threshold {}", alarm.threshold);
                    let actual = match alarms.get(&alarm.name) {
                        None => "missing".to_string(),
                        Some(th)
                            if (th - alarm.threshold).abs() <= 1e-6 * alarm.threshold.abs() =>
                        {
                            continue;
                        }
                        Some(th) => format!("threshold {th}"),
                    };
                    drift.push(Difference {
                        field: format!("alarm:{}", alarm.name),
                        expected,
                        actual,
                    });
                }
            }
            None => drift.extend(
                previous
                    .iter()
                    .filter(|d| group(&d.field) == "alarm")
                    .cloned(),
            ),
        }
        match seen.secrets {
            Some(secrets) => {
                let name = t.secret_name(&tenant.id);
                let actual = match secrets.get(&name) {
                    None => Some("missing"),
                    Some(s) if s.pending_deletion => Some("scheduled for deletion"),
                    Some(_) => None,
                };
                if let Some(actual) = actual {
                    drift.push(Difference {
                        field: "secret".into(),
                        expected: name,
                        actual: actual.into(),
                    });
                }
            }
            None => drift.extend(previous.iter().filter(|d| d.field == "secret").cloned()),
        }
        if let Some(catalog) = seen.schema {
            let applied = tenant.applied_migrations.as_ref().map(|a| &a.0);
            drift.extend(schema_drift(tenant.schema_version, applied, catalog));
        }
        Findings {
            engine_version: None,
            pending_maintenance: None,
            ca_certificate: None,
            drift,
            status: own,
            error: None,
        }
    }
}

/// What a round saw, for one tenant.
pub(super) struct Seen<'a> {
    pub instance: Option<&'a InstanceInfo>,
    /// RDS's pending maintenance actions for the instance; `None` when they could not be read.
    pub pending: Option<Vec<PendingMaintenance>>,
    /// Alarm name → threshold; `None` on rounds that do not look at alarms.
    pub alarms: Option<&'a HashMap<String, f64>>,
    /// Secret name → secret; `None` on rounds that do not look at secrets.
    pub secrets: Option<&'a HashMap<String, SecretInfo>>,
    /// The tenant migrations in the directory; `None` when it could not be read.
    pub schema: Option<&'a [SchemaMigration]>,
}

/// How a tenant's schema differs from the migrations directory: behind its newest version
/// (`schema:version`), or a migration whose file changed after it was applied to the tenant
/// (`schema:<version>`, from the checksums recorded when tenantd applied it) or that the
/// directory no longer has.
fn schema_drift(
    version: Option<i64>,
    applied: Option<&BTreeMap<String, String>>,
    catalog: &[SchemaMigration],
) -> Vec<Difference> {
    let mut drift = Vec::new();
    let newest = catalog.iter().map(|m| m.version).max().unwrap_or(0);
    let at = version.unwrap_or(0);
    if at < newest {
        drift.push(Difference {
            field: "schema:version".into(),
            expected: newest.to_string(),
            actual: at.to_string(),
        });
    }
    let short = |c: &str| c.chars().take(12).collect::<String>();
    for (v, checksum) in applied.into_iter().flatten() {
        let field = format!("schema:{v}");
        match catalog.iter().find(|m| m.version.to_string() == *v) {
            Some(m) if m.checksum != *checksum => drift.push(Difference {
                field,
                expected: format!("checksum {}", short(&m.checksum)),
                actual: format!(
                    "checksum {} (the file changed after it was applied)",
                    short(checksum)
                ),
            }),
            Some(_) => {}
            None => drift.push(Difference {
                field,
                expected: "not applied (the directory has no such migration)".into(),
                actual: "applied".into(),
            }),
        }
    }
    drift
}

/// The metric label of a drift field: alarms and tags grouped.
pub(super) fn group(field: &str) -> &str {
    field.split_once(':').map(|(g, _)| g).unwrap_or(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migration(version: i64, checksum: &str) -> SchemaMigration {
        SchemaMigration {
            version,
            description: format!("m{version}"),
            checksum: checksum.into(),
        }
    }

    #[test]
    fn schema_drift_names_a_tenant_behind_and_a_migration_changed_or_gone() {
        let catalog = [
            migration(1, "aaaa"),
            migration(2, "bbbb"),
            migration(3, "cccc"),
        ];
        let applied: BTreeMap<String, String> = [
            ("1".to_string(), "aaaa".to_string()),
            ("2".into(), "bbbb".into()),
        ]
        .into();
        let drift = schema_drift(Some(2), Some(&applied), &catalog);
        assert_eq!(drift.len(), 1);
        assert_eq!(
            (
                drift[0].field.as_str(),
                drift[0].expected.as_str(),
                drift[0].actual.as_str()
            ),
            ("schema:version", "3", "2")
        );

        let changed: BTreeMap<String, String> = [
            ("1".to_string(), "aaaa".to_string()),
            ("2".into(), "ffff".into()),
            ("3".into(), "cccc".into()),
            ("9".into(), "9999".into()),
        ]
        .into();
        let drift = schema_drift(Some(9), Some(&changed), &catalog);
        let fields: Vec<&str> = drift.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["schema:2", "schema:9"]);
        assert!(drift[0].actual.contains("changed"), "{:?}", drift[0]);
        assert_eq!(group(&drift[0].field), "schema");

        // A tenant of an earlier release (no checksums recorded), up to date: nothing.
        assert!(schema_drift(Some(3), None, &catalog).is_empty());
        // Never migrated: behind.
        assert_eq!(schema_drift(None, None, &catalog)[0].actual, "0");
    }
}
