//! The requests that create and steer a rollout, each one transaction: create (the tenants and
//! their stages fixed at once), pause, resume (after a halt, the failed tenants first), cancel;
//! and the view of a rollout with its counts.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::offers::{OfferError, Offers};
use crate::audit::{self, Trail};
use crate::config::Tiers;
use crate::store::events::{EventType, NewEvent};
use crate::store::rollout_tenants::{self, Failure, StageCounts, TenantState};
use crate::store::rollouts::{self, NewRow, Rollout, RolloutKind, RolloutState};
use crate::tenant_db::SchemaMigration;
use crate::tenant_id::TenantId;

/// Why a rollout request was refused.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// Another rollout runs or is paused.
    #[error("rollout {0} is {1}; one rollout runs at a time (pause does not end it: cancel it)")]
    InProgress(Uuid, &'static str),
    #[error("rollout {0} not found")]
    NotFound(Uuid),
    /// Tenants the request names do not exist.
    #[error("tenants not found: {0}")]
    TenantsNotFound(String),
    /// The request's values are not usable.
    #[error("{0}")]
    Invalid(String),
    #[error("unknown tier {tier:?} in stages; known tiers: {known}")]
    UnknownTier { tier: String, known: String },
    #[error(
        "unknown rollout kind {0:?}; kinds: schema, engine_major, engine_minor, ca_certificate, \
         maintenance"
    )]
    UnknownKind(String),
    /// The target is not one RDS offers (or not a maintenance action tenantd applies).
    #[error("{0}")]
    NotOffered(String),
    /// `apply` is not one the kind takes.
    #[error("{0}")]
    BadApply(String),
    /// RDS could not be asked about the target.
    #[error(transparent)]
    Rds(OfferError),
    /// The rollout is not in a state the request applies to.
    #[error("rollout {id} is {state}: cannot {action} it")]
    WrongState {
        id: Uuid,
        state: &'static str,
        action: &'static str,
    },
    #[error("control database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
}

/// A rollout's target as asked for: a schema version (a number), or the target of another
/// kind (a string: `"17"`, `"16.9"`, `"rds-ca-rsa4096-g1"`, `"all"`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Target {
    Version(i64),
    Named(String),
}

/// A whole JSON number (`3` or `3.0`, as JSON Schema's `integer` allows) or a string.
impl<'de> serde::Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Target::Named(s)),
            serde_json::Value::Number(n) => {
                let whole = match (n.as_i64(), n.as_f64()) {
                    (Some(i), _) => Some(i),
                    (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
                    _ => None,
                };
                whole
                    .map(Target::Version)
                    .ok_or_else(|| D::Error::custom(format!("{n} is not a whole number in range")))
            }
            other => Err(D::Error::custom(format!(
                "expected a version number or a string, got {other}"
            ))),
        }
    }
}

/// The maintenance actions a `maintenance` rollout applies (`all`: every pending one).
pub const MAINTENANCE_ACTIONS: &[&str] = &[
    "all",
    "system-update",
    "db-upgrade",
    "os-upgrade",
    "hardware-maintenance",
    "ca-certificate-rotation",
];

/// What a new rollout is asked to do; `None` takes the default.
#[derive(Debug, Clone, Default)]
pub struct NewRollout {
    /// `schema` (default), `engine_major`, `engine_minor`, `ca_certificate`, `maintenance`.
    pub kind: Option<String>,
    /// Default (schema): the newest version in the migrations directory; the other kinds
    /// need one.
    pub target_version: Option<Target>,
    /// The other kinds: `immediately` (default) or `maintenance_window`; for maintenance,
    /// `immediate` (default) or `next-maintenance`.
    pub apply: Option<String>,
    /// Tenants migrated first, alone (default 1).
    pub canary: Option<i32>,
    /// Tenants migrated at once (default 4).
    pub concurrency: Option<i32>,
    /// Failures tolerated before the rollout halts (default 0).
    pub max_failures: Option<i32>,
    /// Tier names in order, one stage each (default: every tier in one stage).
    pub stages: Option<Vec<String>>,
    /// Only these tenants (default: every tenant of the stages' tiers).
    pub tenants: Option<Vec<String>>,
}

pub const DEFAULT_CANARY: i32 = 1;
pub const DEFAULT_CONCURRENCY: i32 = 4;
pub const MAX_CONCURRENCY: i32 = 64;
pub const MAX_TENANTS: usize = 1_000;

/// A validated target: the schema version, or the other kinds' target and apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aim {
    pub kind: RolloutKind,
    pub version: Option<i64>,
    pub target: Option<String>,
    pub apply: Option<String>,
}

/// The kind asked for (default `schema`).
fn kind_of(new: &NewRollout) -> Result<RolloutKind, RolloutError> {
    match new.kind.as_deref() {
        None => Ok(RolloutKind::Schema),
        Some(k) => RolloutKind::parse(k).ok_or_else(|| RolloutError::UnknownKind(k.to_string())),
    }
}

/// The kind, target and apply of a request, checked without RDS (the shape of the target,
/// the apply values of the kind); [`check_offered`] asks RDS after.
fn aim(catalog: &[SchemaMigration], new: &NewRollout) -> Result<Aim, RolloutError> {
    let kind = kind_of(new)?;
    let apply = new.apply.as_deref();
    let applies: &[&str] = match kind {
        RolloutKind::Schema => &[],
        RolloutKind::Maintenance => &["immediate", "next-maintenance"],
        _ => &["immediately", "maintenance_window"],
    };
    let apply = match apply {
        None => applies.first().map(|a| a.to_string()),
        Some(a) if applies.contains(&a) => Some(a.to_string()),
        Some(a) if applies.is_empty() => {
            return Err(RolloutError::BadApply(format!(
                "apply {a:?}: a schema rollout takes no apply (each tenant is migrated when its \
                 turn comes)"
            )));
        }
        Some(a) => {
            return Err(RolloutError::BadApply(format!(
                "apply {a:?} is not one a {} rollout takes: {}",
                kind.as_str(),
                applies.join(" or ")
            )));
        }
    };
    if kind == RolloutKind::Schema {
        let version = schema_target(catalog, new)?;
        return Ok(Aim {
            kind,
            version: Some(version),
            target: None,
            apply: None,
        });
    }
    let target = match &new.target_version {
        Some(Target::Named(t)) => t.clone(),
        Some(Target::Version(v)) => {
            return Err(RolloutError::Invalid(format!(
                "target_version of a {} rollout is a string (\"{v}\"), not a number",
                kind.as_str()
            )));
        }
        None => {
            return Err(RolloutError::Invalid(format!(
                "a {} rollout needs a target_version",
                kind.as_str()
            )));
        }
    };
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let shape_ok = match kind {
        RolloutKind::EngineMajor => digits(&target),
        RolloutKind::EngineMinor => {
            let parts: Vec<&str> = target.split('.').collect();
            parts.len() == 2 && parts.iter().all(|p| digits(p))
        }
        RolloutKind::CaCertificate => {
            (3..=64).contains(&target.len())
                && target
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        }
        RolloutKind::Maintenance => MAINTENANCE_ACTIONS.contains(&target.as_str()),
        RolloutKind::Schema => unreachable!("handled above"),
    };
    if !shape_ok {
        let expected = match kind {
            RolloutKind::EngineMajor => "a PostgreSQL major version such as \"17\"".to_string(),
            RolloutKind::EngineMinor => "a minor version such as \"16.9\"".to_string(),
            RolloutKind::CaCertificate => {
                "a CA identifier such as \"rds-ca-rsa4096-g1\"".to_string()
            }
            _ => format!("one of {}", MAINTENANCE_ACTIONS.join(", ")),
        };
        return Err(RolloutError::NotOffered(format!(
            "target_version {target:?} of a {} rollout: expected {expected}",
            kind.as_str()
        )));
    }
    Ok(Aim {
        kind,
        version: None,
        target: Some(target),
        apply,
    })
}

/// Asks RDS whether it offers the target (engine versions, CAs); maintenance actions are per
/// instance, and need no look.
async fn check_offered(offers: &Offers, aim: &Aim) -> Result<(), RolloutError> {
    let target = aim.target.as_deref().unwrap_or_default();
    let asked = match aim.kind {
        RolloutKind::EngineMajor | RolloutKind::EngineMinor => offers.engine_version(target).await,
        RolloutKind::CaCertificate => offers.certificate(target).await,
        RolloutKind::Schema | RolloutKind::Maintenance => Ok(()),
    };
    asked.map_err(|e| match e {
        OfferError::NotOffered(why) => RolloutError::NotOffered(why),
        other => RolloutError::Rds(other),
    })
}

/// A schema rollout's target: the version asked for (a number), else the newest one.
fn schema_target(catalog: &[SchemaMigration], new: &NewRollout) -> Result<i64, RolloutError> {
    let Some(newest) = catalog.iter().map(|m| m.version).max() else {
        return Err(RolloutError::Invalid(
            "the tenant migrations directory has no migrations to roll out".into(),
        ));
    };
    let target = match &new.target_version {
        None => newest,
        Some(Target::Version(v)) => *v,
        Some(Target::Named(text)) => {
            return Err(RolloutError::Invalid(format!(
                "target_version {text:?} of a schema rollout: a tenant migration version is a \
                 number"
            )));
        }
    };
    if !catalog.iter().any(|m| m.version == target) {
        let versions: Vec<String> = catalog.iter().map(|m| m.version.to_string()).collect();
        return Err(RolloutError::Invalid(format!(
            "target_version {target} is not a tenant migration here; versions: {}",
            versions.join(", ")
        )));
    }
    Ok(target)
}

/// Checks a request against the configured tiers and the migrations directory; returns the
/// target and the stages (each a list of tiers).
fn validate(
    tiers: &Tiers,
    catalog: &[SchemaMigration],
    new: &NewRollout,
) -> Result<(Aim, Vec<Vec<String>>), RolloutError> {
    let target = aim(catalog, new)?;
    let range = |name: &str, value: Option<i32>, min: i32, max: i32| match value {
        Some(v) if !(min..=max).contains(&v) => Err(RolloutError::Invalid(format!(
            "{name} must be from {min} to {max}, got {v}"
        ))),
        _ => Ok(()),
    };
    range("canary", new.canary, 0, 1000)?;
    range("concurrency", new.concurrency, 1, MAX_CONCURRENCY)?;
    range("max_failures", new.max_failures, 0, 1_000_000)?;
    let stages = match &new.stages {
        None => vec![tiers.names().into_iter().map(str::to_string).collect()],
        Some(names) if names.is_empty() => {
            return Err(RolloutError::Invalid(
                "stages must name at least one tier".into(),
            ));
        }
        Some(names) => {
            let mut seen = BTreeSet::new();
            for name in names {
                if tiers.get(name).is_none() {
                    return Err(RolloutError::UnknownTier {
                        tier: name.clone(),
                        known: tiers.names().join(", "),
                    });
                }
                if !seen.insert(name) {
                    return Err(RolloutError::Invalid(format!(
                        "stages name tier {name} twice"
                    )));
                }
            }
            names.iter().map(|n| vec![n.clone()]).collect()
        }
    };
    if let Some(tenants) = &new.tenants {
        if tenants.is_empty() || tenants.len() > MAX_TENANTS {
            return Err(RolloutError::Invalid(format!(
                "tenants must list 1 to {MAX_TENANTS} tenant ids"
            )));
        }
        if let Some(bad) = tenants.iter().find(|t| TenantId::parse(t).is_err()) {
            return Err(RolloutError::Invalid(format!(
                "tenants: {bad:?} is not a tenant id"
            )));
        }
    }
    Ok((target, stages))
}

/// Creates a rollout and fixes its tenants: every tenant of the stages' tiers (or of the list
/// asked for), `pending` when ready or being provisioned, `skipped` otherwise (suspended,
/// failed, deprovisioning, deleted, lost, degraded); the canary is the first `canary` ready
/// tenants of the first stage. Refused while another rollout (of any kind) runs or is paused:
/// one rollout at a time, so a tenant is never in two at once. A target of an RDS kind is
/// checked with RDS (`offers`) before anything is written.
/// With a `trail`, the request's audit row is written in the same transaction.
pub async fn create(
    pool: &PgPool,
    trail: Option<&Trail>,
    tiers: &Tiers,
    catalog: &[SchemaMigration],
    offers: &Offers,
    new: &NewRollout,
) -> Result<Rollout, RolloutError> {
    let (target, stages) = validate(tiers, catalog, new)?;
    check_offered(offers, &target).await?;
    let mut tx = pool.begin().await?;
    if let Some(tenants) = &new.tenants {
        let known = crate::store::tenants::existing(&mut *tx, tenants).await?;
        let known: BTreeSet<&String> = known.iter().collect();
        let missing: Vec<&str> = tenants
            .iter()
            .filter(|t| !known.contains(t))
            .take(10)
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(RolloutError::TenantsNotFound(missing.join(", ")));
        }
    }
    let row = NewRow {
        id: Uuid::new_v4(),
        kind: target.kind,
        target_version: target.version,
        target: target.target.as_deref(),
        apply: target.apply.as_deref(),
        canary: new.canary.unwrap_or(DEFAULT_CANARY),
        concurrency: new.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
        max_failures: new.max_failures.unwrap_or(0),
        stages: &stages,
        tenants: new.tenants.as_deref(),
    };
    // One active rollout at a time (a partial unique index): an insert that meets the active
    // one inserts nothing. If that one ended between the insert and the look at it, its slot is
    // free: try again rather than refuse a valid request.
    let mut tries = 0;
    let rollout = loop {
        if let Some(rollout) = rollouts::insert(&mut tx, &row).await? {
            break rollout;
        }
        tries += 1;
        if let Some(active) = rollouts::active(&mut *tx).await? {
            return Err(RolloutError::InProgress(active.id, active.state.as_str()));
        }
        if tries == 3 {
            return Err(in_progress(&mut tx).await?);
        }
    };
    rollout_tenants::fix_tenants(&mut tx, &rollout).await?;
    if let Some(t) = trail {
        t.rollout(rollout.id);
    }
    let told = [NewEvent::rollout(EventType::RolloutStarted, &rollout)];
    audit::commit_with(tx, trail, 202, &told).await?;
    Ok(rollout)
}

async fn in_progress(conn: &mut sqlx::PgConnection) -> Result<RolloutError, RolloutError> {
    Ok(match rollouts::active(&mut *conn).await? {
        Some(active) => RolloutError::InProgress(active.id, active.state.as_str()),
        // It ended between the insert and this read: the caller may try again.
        None => RolloutError::Invalid("another rollout just ended; try again".into()),
    })
}

/// What a request to steer a rollout asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steer {
    Pause,
    Resume,
    Cancel,
}

impl Steer {
    fn action(self) -> &'static str {
        match self {
            Steer::Pause => "pause",
            Steer::Resume => "resume",
            Steer::Cancel => "cancel",
        }
    }
}

/// Pauses, resumes or cancels a rollout. Asking for the state it is in already changes
/// nothing. Resuming a halted rollout puts its failed tenants back first in their stage.
/// With a `trail`, the request's audit row is written in the same transaction.
pub async fn steer(
    pool: &PgPool,
    trail: Option<&Trail>,
    id: Uuid,
    steer: Steer,
) -> Result<Rollout, RolloutError> {
    use RolloutState::*;
    if let Some(t) = trail {
        t.rollout(id);
    }
    let mut tx = pool.begin().await?;
    let rollout = rollouts::lock(&mut tx, id)
        .await?
        .ok_or(RolloutError::NotFound(id))?;
    let next = match (steer, rollout.state) {
        (Steer::Pause, Paused) | (Steer::Resume, Running) | (Steer::Cancel, Cancelled) => {
            return Ok(rollout);
        }
        (Steer::Pause, Running) => Paused,
        (Steer::Resume, Paused | Halted) => Running,
        (Steer::Cancel, Running | Paused | Halted) => Cancelled,
        (_, state) => {
            return Err(RolloutError::WrongState {
                id,
                state: state.as_str(),
                action: steer.action(),
            });
        }
    };
    if rollout.state == Halted && next == Running {
        // Failed tenants go first, in the order they failed.
        rollout_tenants::requeue_failed(&mut tx, id).await?;
    }
    let reason = match next {
        Cancelled => Some("cancelled"),
        _ => None,
    };
    let updated = rollouts::steer(&mut tx, id, next, reason).await;
    let updated = match updated {
        Ok(r) => r,
        // Resuming a halted rollout while another one runs.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            drop(tx);
            let mut conn = pool.acquire().await?;
            return Err(in_progress(&mut conn).await?);
        }
        Err(e) => return Err(e.into()),
    };
    audit::commit(tx, trail, 202).await?;
    Ok(updated)
}

/// One stage of a rollout as shown: its name (`canary`, or its tiers) and its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageView {
    pub stage: i32,
    pub name: String,
    pub counts: StageCounts,
}

/// A rollout with its stages' counts and its failures.
#[derive(Debug, Clone)]
pub struct RolloutView {
    pub rollout: Rollout,
    pub stages: Vec<StageView>,
    pub failures: Vec<Failure>,
}

impl RolloutView {
    /// The counts over every stage.
    pub fn totals(&self) -> BTreeMap<TenantState, i64> {
        let mut out = BTreeMap::new();
        for s in &self.stages {
            for (state, n) in &s.counts.counts {
                *out.entry(*state).or_default() += n;
            }
        }
        out
    }
}

/// Failures a view lists at most.
const FAILURES_SHOWN: i64 = 100;

/// A rollout with its counts (three queries).
pub async fn view(pool: &PgPool, id: Uuid) -> Result<RolloutView, RolloutError> {
    let rollout = rollouts::get(pool, id)
        .await?
        .ok_or(RolloutError::NotFound(id))?;
    view_of(pool, rollout).await
}

pub async fn view_of(pool: &PgPool, rollout: Rollout) -> Result<RolloutView, RolloutError> {
    let counts = rollout_tenants::counts(pool, rollout.id).await?;
    let failures = rollout_tenants::failures(pool, rollout.id, FAILURES_SHOWN).await?;
    let mut stages = Vec::new();
    let canary = counts.get(&0).cloned().unwrap_or_default();
    if rollout.canary > 0 || !canary.counts.is_empty() {
        stages.push(StageView {
            stage: 0,
            name: "canary".into(),
            counts: canary,
        });
    }
    for (i, tiers) in rollout.stages.0.iter().enumerate() {
        let stage = i as i32 + 1;
        stages.push(StageView {
            stage,
            name: tiers.join(","),
            counts: counts.get(&stage).cloned().unwrap_or_default(),
        });
    }
    Ok(RolloutView {
        rollout,
        stages,
        failures,
    })
}

/// A page of rollouts, newest first, with their counts.
pub async fn list(
    pool: &PgPool,
    limit: i64,
    cursor: Option<Uuid>,
) -> Result<(Vec<RolloutView>, Option<Uuid>), RolloutError> {
    let after: Option<(DateTime<Utc>, Uuid)> = match cursor {
        None => None,
        Some(id) => match rollouts::get(pool, id).await? {
            Some(r) => Some((r.created_at, r.id)),
            // A cursor that names no rollout (one pruned, or made up): nothing after it.
            None => return Ok((Vec::new(), None)),
        },
    };
    let (rows, next) = rollouts::list(pool, limit, after).await?;
    let mut views = Vec::with_capacity(rows.len());
    for r in rows {
        views.push(view_of(pool, r).await?);
    }
    Ok((views, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Vec<SchemaMigration> {
        [1, 2, 3]
            .into_iter()
            .map(|version| SchemaMigration {
                version,
                description: String::new(),
                checksum: String::new(),
            })
            .collect()
    }

    fn invalid(new: NewRollout) -> String {
        match validate(&Tiers::defaults(), &catalog(), &new) {
            Err(e @ (RolloutError::Invalid(_) | RolloutError::UnknownTier { .. })) => e.to_string(),
            other => panic!("accepted: {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_newest_version_and_every_tier_in_one_stage() {
        let (target, stages) =
            validate(&Tiers::defaults(), &catalog(), &NewRollout::default()).unwrap();
        assert_eq!(target.version, Some(3));
        assert_eq!(target.kind, RolloutKind::Schema);
        assert_eq!(stages.len(), 1);
        let mut tiers = stages[0].clone();
        tiers.sort();
        assert_eq!(tiers, ["enterprise", "pro", "starter"]);
        let asked = NewRollout {
            target_version: Some(Target::Version(2)),
            stages: Some(vec!["pro".into(), "starter".into()]),
            ..NewRollout::default()
        };
        let (target, stages) = validate(&Tiers::defaults(), &catalog(), &asked).unwrap();
        assert_eq!(target.version, Some(2));
        assert_eq!(
            stages,
            [vec!["pro".to_string()], vec!["starter".to_string()]]
        );
    }

    #[test]
    fn bad_requests_name_what_is_wrong() {
        let v = invalid(NewRollout {
            target_version: Some(Target::Version(7)),
            ..NewRollout::default()
        });
        assert!(
            v.contains("target_version 7") && v.contains("1, 2, 3"),
            "{v}"
        );
        let c = invalid(NewRollout {
            concurrency: Some(0),
            ..NewRollout::default()
        });
        assert!(c.contains("concurrency must be from 1 to 64"), "{c}");
        let t = invalid(NewRollout {
            stages: Some(vec!["gold".into()]),
            ..NewRollout::default()
        });
        assert!(t.contains("gold") && t.contains("starter"), "{t}");
        let d = invalid(NewRollout {
            stages: Some(vec!["pro".into(), "pro".into()]),
            ..NewRollout::default()
        });
        assert!(d.contains("twice"), "{d}");
        let e = invalid(NewRollout {
            stages: Some(vec![]),
            ..NewRollout::default()
        });
        assert!(e.contains("at least one tier"), "{e}");
        let i = invalid(NewRollout {
            tenants: Some(vec!["Not An Id".into()]),
            ..NewRollout::default()
        });
        assert!(i.contains("not a tenant id"), "{i}");
        let empty = validate(&Tiers::defaults(), &[], &NewRollout::default());
        assert!(matches!(empty, Err(RolloutError::Invalid(_))));
    }

    fn of_kind(kind: &str, target: Option<&str>, apply: Option<&str>) -> Result<Aim, RolloutError> {
        let new = NewRollout {
            kind: Some(kind.into()),
            target_version: target.map(|t| Target::Named(t.into())),
            apply: apply.map(str::to_string),
            ..NewRollout::default()
        };
        validate(&Tiers::defaults(), &catalog(), &new).map(|(aim, _)| aim)
    }

    #[test]
    fn each_kind_takes_its_own_target_and_apply() {
        let ca = of_kind("ca_certificate", Some("rds-ca-rsa4096-g1"), None).unwrap();
        assert_eq!(ca.kind, RolloutKind::CaCertificate);
        assert_eq!(ca.target.as_deref(), Some("rds-ca-rsa4096-g1"));
        assert_eq!(ca.apply.as_deref(), Some("immediately"));
        assert_eq!(ca.version, None);
        let minor = of_kind("engine_minor", Some("16.9"), Some("maintenance_window")).unwrap();
        assert_eq!(minor.apply.as_deref(), Some("maintenance_window"));
        let m = of_kind(
            "maintenance",
            Some("system-update"),
            Some("next-maintenance"),
        )
        .unwrap();
        assert_eq!(m.apply.as_deref(), Some("next-maintenance"));
        let major = of_kind("engine_major", Some("17"), None).unwrap();
        assert_eq!(major.target.as_deref(), Some("17"));
        let number = NewRollout {
            kind: Some("engine_major".into()),
            target_version: Some(Target::Version(17)),
            ..NewRollout::default()
        };
        assert!(matches!(
            validate(&Tiers::defaults(), &catalog(), &number),
            Err(RolloutError::Invalid(m)) if m.contains("a string")
        ));
    }

    #[test]
    fn a_bad_kind_target_or_apply_is_refused_with_its_own_error() {
        assert!(matches!(
            of_kind("firmware", Some("1"), None),
            Err(RolloutError::UnknownKind(k)) if k == "firmware"
        ));
        assert!(matches!(
            of_kind("engine_minor", Some("17"), None),
            Err(RolloutError::NotOffered(m)) if m.contains("16.9")
        ));
        assert!(matches!(
            of_kind("engine_major", Some("17.1"), None),
            Err(RolloutError::NotOffered(_))
        ));
        assert!(matches!(
            of_kind("maintenance", Some("reboot"), None),
            Err(RolloutError::NotOffered(m)) if m.contains("system-update")
        ));
        assert!(matches!(
            of_kind("ca_certificate", None, None),
            Err(RolloutError::Invalid(m)) if m.contains("needs a target_version")
        ));
        assert!(matches!(
            of_kind("ca_certificate", Some("rds-ca-rsa4096-g1"), Some("next-maintenance")),
            Err(RolloutError::BadApply(m)) if m.contains("immediately or maintenance_window")
        ));
        assert!(matches!(
            of_kind("maintenance", Some("all"), Some("immediately")),
            Err(RolloutError::BadApply(m)) if m.contains("immediate or next-maintenance")
        ));
        assert!(matches!(
            of_kind("schema", None, Some("immediately")),
            Err(RolloutError::BadApply(_))
        ));
        let text = NewRollout {
            target_version: Some(Target::Named("two".into())),
            ..NewRollout::default()
        };
        assert!(matches!(
            validate(&Tiers::defaults(), &catalog(), &text),
            Err(RolloutError::Invalid(_))
        ));
    }
}
