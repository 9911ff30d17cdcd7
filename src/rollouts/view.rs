//! The view of a rollout: its row with the counts of its tenants per stage and state, and the
//! first failures; one rollout or a page of them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::store::rollout_tenants::{self, Failure, StageCounts, TenantState};
use crate::store::rollouts::{self, Rollout};

use super::error::RolloutError;

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
