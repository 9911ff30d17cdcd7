//! What a rollout of each kind does per tenant: whether the tenant is at the target already
//! (its schema version, its engine version, its CA, no pending action left), to be skipped
//! (an engine minor of another major), or to be started, and the job that starts it.

use crate::queue::NewJob;
use crate::store::rollout_tenants::Pending;
use crate::store::rollouts::{Rollout, RolloutKind};
use crate::workflow::fleet::change::{major_of, minor_reached};
use crate::workflow::fleet::{self, FleetArgs, Kind};
use crate::workflow::migrate::{self, MigrateArgs};
use crate::workflow::reconcile::Apply;
use crate::workflow::runner::Workflow;
use crate::workflow::step::StepNames;
use crate::workflow::upgrade::{self, EngineUpgradeArgs};

/// Where a ready tenant goes in a conductor's round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// At the target already (what it has, for the rollout's row).
    There(Option<String>),
    /// Not a tenant this rollout can move (why).
    Skip(String),
    /// Its job is to be started (what it has now).
    Start(Option<String>),
}

/// Where a ready tenant goes, from what its row records.
pub fn place(rollout: &Rollout, kind: RolloutKind, p: &Pending) -> Place {
    let target = rollout.target.as_deref().unwrap_or_default();
    let engine = p.engine_version.clone();
    match kind {
        RolloutKind::Schema => {
            let target = rollout.target_version.unwrap_or(i64::MAX);
            if p.schema_version.unwrap_or(0) >= target {
                Place::There(None)
            } else {
                Place::Start(None)
            }
        }
        // Never downgraded: a tenant on the target major or a later one is there.
        RolloutKind::EngineMajor => match engine.as_deref().map(major_of) {
            Some(m) if m.parse::<u32>().ok() >= target.parse::<u32>().ok() => Place::There(engine),
            _ => Place::Start(engine),
        },
        RolloutKind::EngineMinor => match engine.as_deref() {
            Some(v) if major_of(v) != major_of(target) => Place::Skip(format!(
                "the tenant runs PostgreSQL {v}, not of major {}",
                major_of(target)
            )),
            Some(v) if minor_reached(v, target) => Place::There(engine),
            _ => Place::Start(engine),
        },
        RolloutKind::CaCertificate => match p.ca_certificate.as_deref() {
            Some(ca) if ca == target => Place::There(Some(ca.to_string())),
            ca => Place::Start(ca.map(str::to_string)),
        },
        // What the reconciler read before the rollout began may be stale (an action RDS added
        // since): only a read made since counts; otherwise the tenant's job reads them.
        RolloutKind::Maintenance => match &p.pending_maintenance {
            Some(pending)
                if p.checked_at.is_some_and(|at| at > rollout.created_at)
                    && !pending
                        .0
                        .iter()
                        .any(|a| target == "all" || a.action == target) =>
            {
                Place::There(Some("none pending".into()))
            }
            _ => Place::Start(None),
        },
    }
}

/// The job a rollout starts for `tenant`.
pub fn job(rollout: &Rollout, kind: RolloutKind, tenant: &str, max_attempts: i32) -> NewJob {
    let target = rollout.target.clone().unwrap_or_default();
    let apply = match rollout.apply.as_deref() {
        Some("maintenance_window" | "next-maintenance") => Apply::MaintenanceWindow,
        _ => Apply::Immediately,
    };
    let fleet = |k: Kind| {
        let args = FleetArgs {
            target: target.clone(),
            apply,
            rollout: Some(rollout.id),
        };
        fleet::job(k, tenant, &args, max_attempts)
    };
    match kind {
        RolloutKind::Schema => {
            let args = MigrateArgs {
                target_version: rollout.target_version.unwrap_or_default(),
                rollout: Some(rollout.id),
            };
            NewJob::new(
                migrate::KIND,
                migrate::Migrate::first_step().name(),
                max_attempts,
            )
            .tenant(tenant)
            .args(serde_json::to_value(&args).expect("arguments serialize"))
        }
        RolloutKind::EngineMajor => engine_upgrade_job(rollout, tenant, apply, max_attempts),
        RolloutKind::EngineMinor => fleet(Kind::EngineMinor),
        RolloutKind::CaCertificate => fleet(Kind::CaCertificate),
        RolloutKind::Maintenance => fleet(Kind::Maintenance),
    }
}

/// The `engine_upgrade` job (a Blue/Green major upgrade of one tenant,
/// [`crate::workflow::upgrade`]) of an `engine_major` rollout.
fn engine_upgrade_job(rollout: &Rollout, tenant: &str, apply: Apply, max_attempts: i32) -> NewJob {
    let args = EngineUpgradeArgs {
        target_major: rollout.target.clone().unwrap_or_default(),
        apply,
        rollout: Some(rollout.id),
    };
    upgrade::engine_upgrade_job(tenant, &args, max_attempts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::maintenance::PendingMaintenance;
    use crate::store::rollouts::RolloutState;

    fn rollout(kind: RolloutKind, target: &str) -> Rollout {
        Rollout {
            id: uuid::Uuid::nil(),
            kind: kind.as_str().into(),
            target_version: (kind == RolloutKind::Schema).then_some(5),
            target: (kind != RolloutKind::Schema).then(|| target.to_string()),
            apply: None,
            canary: 1,
            concurrency: 1,
            max_failures: 0,
            stages: sqlx::types::Json(vec![]),
            tenants: None,
            state: RolloutState::Running,
            reason: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            finished_at: None,
        }
    }

    fn tenant(engine: &str, ca: &str, pending: Option<&[&str]>) -> Pending {
        Pending {
            checked_at: Some(chrono::Utc::now() + chrono::Duration::seconds(1)),
            tenant_id: "acme".into(),
            status: None,
            schema_version: Some(5),
            engine_version: Some(engine.into()),
            ca_certificate: Some(ca.into()),
            pending_maintenance: pending.map(|names| {
                sqlx::types::Json(
                    names
                        .iter()
                        .map(|n| PendingMaintenance {
                            action: n.to_string(),
                            description: None,
                            auto_applied_after: None,
                            forced_apply: None,
                            current_apply: None,
                            opt_in_status: None,
                        })
                        .collect(),
                )
            }),
        }
    }

    #[test]
    fn each_kind_knows_a_tenant_at_its_target() {
        let t = tenant("16.8", "rds-ca-rsa2048-g1", Some(&["system-update"]));
        let at = |kind, target: &str| place(&rollout(kind, target), kind, &t);
        assert_eq!(at(RolloutKind::Schema, ""), Place::There(None));
        assert_eq!(
            at(RolloutKind::EngineMajor, "16"),
            Place::There(Some("16.8".into()))
        );
        assert_eq!(
            at(RolloutKind::EngineMajor, "17"),
            Place::Start(Some("16.8".into()))
        );
        assert_eq!(
            at(RolloutKind::EngineMinor, "16.9"),
            Place::Start(Some("16.8".into()))
        );
        assert_eq!(
            at(RolloutKind::EngineMinor, "16.4"),
            Place::There(Some("16.8".into()))
        );
        assert!(matches!(
            at(RolloutKind::EngineMinor, "15.9"),
            Place::Skip(_)
        ));
        assert_eq!(
            at(RolloutKind::CaCertificate, "rds-ca-rsa2048-g1"),
            Place::There(Some("rds-ca-rsa2048-g1".into()))
        );
        assert!(matches!(
            at(RolloutKind::CaCertificate, "rds-ca-rsa4096-g1"),
            Place::Start(_)
        ));
        assert!(matches!(
            at(RolloutKind::Maintenance, "all"),
            Place::Start(_)
        ));
        assert!(matches!(
            at(RolloutKind::Maintenance, "os-upgrade"),
            Place::There(_)
        ));
        let unread = tenant("16.8", "x", None);
        assert!(matches!(
            place(
                &rollout(RolloutKind::Maintenance, "all"),
                RolloutKind::Maintenance,
                &unread
            ),
            Place::Start(_)
        ));
        // Read before the rollout began: an action may have come since.
        let mut stale = tenant("16.8", "x", Some(&[]));
        stale.checked_at = Some(chrono::Utc::now() - chrono::Duration::hours(1));
        let maintenance = rollout(RolloutKind::Maintenance, "all");
        assert!(matches!(
            place(&maintenance, RolloutKind::Maintenance, &stale),
            Place::Start(_)
        ));
    }

    #[test]
    fn an_engine_major_rollout_starts_an_engine_upgrade_of_each_tenant() {
        let r = rollout(RolloutKind::EngineMajor, "17");
        let major = job(&r, RolloutKind::EngineMajor, "acme", 3);
        assert_eq!(major.kind, upgrade::KIND);
        let args: EngineUpgradeArgs = serde_json::from_value(major.args).unwrap();
        assert_eq!(args.target_major, "17");
        assert_eq!(args.rollout, Some(r.id));
        let minor = rollout(RolloutKind::EngineMinor, "16.9");
        let job = job(&minor, RolloutKind::EngineMinor, "acme", 3);
        assert_eq!(job.kind, "engine_minor");
    }
}
