//! The webhooks page: every subscription (URL, types, enabled or why not, pending deliveries)
//! with its latest delivery attempts. Two queries plus one per subscription for its log.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;

use super::page;
use crate::store::webhooks::{deliveries, subscriptions};
use crate::ui::UiState;
use crate::ui::error::UiError;
use crate::ui::session::Session;

/// Attempts shown per subscription.
const RECENT: i64 = 10;

struct Attempt {
    at: String,
    event_id: i64,
    attempt: i32,
    outcome: String,
    ok: bool,
    duration_ms: i32,
}

struct Subscription {
    id: String,
    url: String,
    types: String,
    enabled: bool,
    reason: String,
    pending: i64,
    attempts: Vec<Attempt>,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct Webhooks {
    csrf: String,
    nav: &'static str,
    rows: Vec<Subscription>,
}

pub async fn webhooks(
    State(state): State<UiState>,
    Extension(session): Extension<Session>,
) -> Result<Response, UiError> {
    let db = &state.app.db;
    let subs = subscriptions::list(db).await?;
    let pending = deliveries::pending(db).await?;
    let mut rows = Vec::with_capacity(subs.len());
    for s in &subs {
        let log = deliveries::log(db, s.id, None, RECENT).await?;
        rows.push(Subscription {
            id: s.id.to_string(),
            url: s.url.clone(),
            types: if s.types.is_empty() {
                "every type".into()
            } else {
                s.types.join(", ")
            },
            enabled: s.enabled,
            reason: s.disabled_reason.clone().unwrap_or_default(),
            pending: pending.iter().find(|p| p.0 == s.id).map_or(0, |p| p.1),
            attempts: log
                .iter()
                .map(|l| Attempt {
                    at: l.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    event_id: l.event_id,
                    attempt: l.attempt,
                    outcome: l
                        .status_code
                        .map(|c| format!("HTTP {c}"))
                        .or_else(|| l.error.clone())
                        .unwrap_or_default(),
                    ok: l.status_code.is_some_and(|c| (200..300).contains(&c)),
                    duration_ms: l.duration_ms,
                })
                .collect(),
        });
    }
    page(Webhooks {
        csrf: session.csrf(),
        nav: "webhooks",
        rows,
    })
}
