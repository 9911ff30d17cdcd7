//! The overview: the fleet at a glance, from a few aggregates and this process's metrics.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;

use super::{STATUSES, page};
use crate::metrics;
use crate::queue::{self, JobState};
use crate::store::rollouts;
use crate::tenants;
use crate::ui::UiState;
use crate::ui::error::UiError;
use crate::ui::session::Session;
use crate::ui::views::{ago, human, tenant_badge};

struct CensusLine {
    status: &'static str,
    icon: &'static str,
    class: &'static str,
    counts: Vec<i64>,
    total: i64,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    csrf: String,
    nav: &'static str,
    tiers: Vec<String>,
    census: Vec<CensusLine>,
    tenants: i64,
    drifted: i64,
    depth: i64,
    oldest: String,
    jobs_by_state: Vec<(&'static str, i64)>,
    recent: queue::RecentEnds,
    aws: Vec<(String, u64, u64)>,
    rds_rate: f64,
    rds_share: Option<String>,
    leader: bool,
    poller: bool,
    me: String,
    /// The rollout that runs or is paused: id, state, target version, started.
    rollout: Option<(String, &'static str, String, String)>,
}

pub async fn overview(
    State(state): State<UiState>,
    Extension(session): Extension<Session>,
) -> Result<Response, UiError> {
    let db = &state.app.db;
    let rows = tenants::census(db).await?;
    let stats = queue::fleet_stats(db).await?;
    let recent = queue::recent_ends(db).await?;
    let rollout = rollouts::active(db).await?;
    let now = chrono::Utc::now();
    let mut tiers: Vec<String> = state
        .app
        .tiers
        .names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    for r in &rows {
        if !tiers.contains(&r.tier) {
            tiers.push(r.tier.clone());
        }
    }
    let census = STATUSES
        .iter()
        .filter_map(|s| {
            let counts: Vec<i64> = tiers
                .iter()
                .map(|t| {
                    rows.iter()
                        .filter(|r| r.status == *s && &r.tier == t)
                        .map(|r| r.tenants)
                        .sum()
                })
                .collect();
            let total: i64 = counts.iter().sum();
            let badge = tenant_badge(*s);
            (total > 0).then_some(CensusLine {
                status: badge.word,
                icon: badge.icon,
                class: badge.class,
                counts,
                total,
            })
        })
        .collect();
    let jobs_by_state = JobState::ALL
        .iter()
        .map(|st| {
            let n = stats
                .jobs
                .iter()
                .filter(|(_, s, _)| s == st)
                .map(|(_, _, n)| n)
                .sum();
            (st.as_str(), n)
        })
        .collect();
    let aws = metrics::aws_calls_by_service();
    let rds_total = aws
        .iter()
        .filter(|(s, _, _)| s == "rds")
        .map(|(_, n, _)| *n)
        .sum();
    let rds_share = state
        .rds_calls_per_second(rds_total)
        .map(|r| format!("{:.0}% ({r:.2}/s)", r / state.rds_rate * 100.0));
    page(Overview {
        csrf: session.csrf(),
        nav: "overview",
        tiers,
        census,
        tenants: rows.iter().map(|r| r.tenants).sum(),
        drifted: rows.iter().map(|r| r.drifted).sum(),
        depth: stats.depth,
        oldest: human(chrono::Duration::from_std(stats.oldest_waiting).unwrap_or_default()),
        jobs_by_state,
        recent,
        aws,
        rds_rate: state.rds_rate,
        rds_share,
        leader: metrics::is_leader(),
        poller: metrics::poller_active(),
        me: state.me.clone(),
        rollout: rollout.map(|r| {
            (
                r.id.to_string(),
                r.state.as_str(),
                format!("{} {}", r.kind, r.target_text()),
                ago(r.created_at, now),
            )
        }),
    })
}
