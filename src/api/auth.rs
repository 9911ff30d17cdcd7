//! Bearer-token authentication of the `/v1` routes. Tokens are compared in constant time and
//! never logged, not even the one a caller presented.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;
use super::state::AppState;

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Lets the request through only with an accepted bearer token; 401 `unauthorized` otherwise,
/// before any handler runs.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    match bearer(&request) {
        Some(token) if state.tokens.accepts(token) => Ok(next.run(request).await),
        presented => {
            tracing::info!(
                token_presented = presented.is_some(),
                "request refused: no valid bearer token"
            );
            Err(ApiError::Unauthorized)
        }
    }
}
