//! The engines page: the daily engine report (tenants per major with its end of support, per
//! CA, and who is past end of support), each figure a link to the tenants it counts.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use chrono::Utc;

use super::page;
use crate::tenants::{self, EngineReport};
use crate::ui::UiState;
use crate::ui::error::UiError;
use crate::ui::session::Session;

#[derive(Template)]
#[template(path = "engines.html")]
struct Engines {
    csrf: String,
    nav: &'static str,
    report: EngineReport,
}

pub async fn engines(
    State(state): State<UiState>,
    Extension(session): Extension<Session>,
) -> Result<Response, UiError> {
    let today = Utc::now().date_naive();
    let report =
        tenants::engine_report(&state.app.db, &state.app.engines.end_of_support, today).await?;
    page(Engines {
        csrf: session.csrf(),
        nav: "engines",
        report,
    })
}
