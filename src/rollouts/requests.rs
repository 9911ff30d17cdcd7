//! The requests that create and steer a rollout, each one transaction: create (the tenants and
//! their stages fixed at once), pause, resume (after a halt, the failed tenants first), cancel;
//! and the view of a rollout with its counts.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::{self, Trail};
use crate::config::Tiers;
use crate::store::events::{EventType, NewEvent};
use crate::store::rollout_tenants::{self, Failure, StageCounts, TenantState};
use crate::store::rollouts::{self, NewRow, Rollout, RolloutState};
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

/// What a new rollout is asked to do; `None` takes the default.
#[derive(Debug, Clone, Default)]
pub struct NewRollout {
    /// Default: the newest version in the migrations directory.
    pub target_version: Option<i64>,
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

/// Checks a request against the configured tiers and the migrations directory; returns the
/// target version and the stages (each a list of tiers).
fn validate(
    tiers: &Tiers,
    catalog: &[SchemaMigration],
    new: &NewRollout,
) -> Result<(i64, Vec<Vec<String>>), RolloutError> {
    let Some(newest) = catalog.iter().map(|m| m.version).max() else {
        return Err(RolloutError::Invalid(
            "the tenant migrations directory has no migrations to roll out".into(),
        ));
    };
    let target = new.target_version.unwrap_or(newest);
    if !catalog.iter().any(|m| m.version == target) {
        let versions: Vec<String> = catalog.iter().map(|m| m.version.to_string()).collect();
        return Err(RolloutError::Invalid(format!(
            "target_version {target} is not a tenant migration here; versions: {}",
            versions.join(", ")
        )));
    }
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
/// tenants of the first stage. Refused while another rollout runs or is paused.
/// With a `trail`, the request's audit row is written in the same transaction.
pub async fn create(
    pool: &PgPool,
    trail: Option<&Trail>,
    tiers: &Tiers,
    catalog: &[SchemaMigration],
    new: &NewRollout,
) -> Result<Rollout, RolloutError> {
    let (target, stages) = validate(tiers, catalog, new)?;
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
        target_version: target,
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
        assert_eq!(target, 3);
        assert_eq!(stages.len(), 1);
        let mut tiers = stages[0].clone();
        tiers.sort();
        assert_eq!(tiers, ["enterprise", "pro", "starter"]);
        let asked = NewRollout {
            target_version: Some(2),
            stages: Some(vec!["pro".into(), "starter".into()]),
            ..NewRollout::default()
        };
        let (target, stages) = validate(&Tiers::defaults(), &catalog(), &asked).unwrap();
        assert_eq!(target, 2);
        assert_eq!(
            stages,
            [vec!["pro".to_string()], vec!["starter".to_string()]]
        );
    }

    #[test]
    fn bad_requests_name_what_is_wrong() {
        let v = invalid(NewRollout {
            target_version: Some(7),
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
}
