//! `/v1/webhooks`: make a subscription (answered with its signing key, this once), list them,
//! disable, enable, rotate the key (the old one signs too during the overlap), replay events,
//! read the delivery log, delete one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::state::{AppState, WebhookKeys};
use crate::audit::Trail;
use crate::store::webhooks::deliveries::{self, Since};
use crate::webhooks::subscriptions::{self, Request};
use crate::wire::error::ErrorBody;
use crate::wire::webhooks::{
    CreateWebhook, DeliveryAttempt, DeliveryPage, DeliveryQuery, ReplayQuery, Replayed,
    WebhookList, WebhookPath, WebhookView, WebhookWithSecret,
};
use crate::wire::{DEFAULT_PAGE, MAX_PAGE};

fn webhook_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::WebhookNotFound(format!(
            "webhook subscription {} not found",
            raw.chars().take(64).collect::<String>()
        ))
    })
}

fn keys(state: &AppState) -> Result<&WebhookKeys, ApiError> {
    state.webhooks.as_ref().ok_or(ApiError::WebhooksUnavailable)
}

async fn pending_of(state: &AppState, id: Uuid) -> Result<i64, ApiError> {
    Ok(deliveries::pending(&state.db)
        .await?
        .into_iter()
        .find(|(s, _)| *s == id)
        .map_or(0, |(_, n)| n))
}

/// Subscribe a URL to event types. The answer carries the signing key (`secret`,
/// `whsec_<base64>`), shown this once; the subscription gets the events committed from now on.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", operation_id = "create_webhook",
    security(("bearer" = [])),
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "The subscription with its signing key", body = WebhookWithSecret),
        (status = 400, description = "`malformed_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_url`, `url_not_allowed` (not https, or resolving to a \
            loopback, private or link-local address), `unknown_event_type`, `invalid_body`", body = ErrorBody),
        (status = 503, description = "`webhooks_unavailable`", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Extension(trail): Extension<Trail>,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookWithSecret>), ApiError> {
    let hooks = keys(&state)?;
    let (by, _, _) = trail.asker();
    let request = Request {
        url: &body.url,
        types: &body.types,
        description: &body.description,
        by: by.as_deref(),
    };
    let (sub, key) =
        subscriptions::create(&state.db, &hooks.keys, &hooks.settings, &request).await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookWithSecret {
            webhook: WebhookView::new(&sub, 0),
            secret: key.expose_secret().to_string(),
        }),
    ))
}

/// Every subscription, oldest first (never a signing key).
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", operation_id = "list_webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The subscriptions", body = WebhookList),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ))]
pub async fn list(State(state): State<AppState>) -> Result<Json<WebhookList>, ApiError> {
    let subs = crate::store::webhooks::subscriptions::list(&state.db).await?;
    let pending = deliveries::pending(&state.db).await?;
    Ok(Json(WebhookList {
        webhooks: subs
            .iter()
            .map(|s| {
                let n = pending
                    .iter()
                    .find(|(id, _)| *id == s.id)
                    .map_or(0, |p| p.1);
                WebhookView::new(s, n)
            })
            .collect(),
    }))
}

/// One subscription.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", operation_id = "get_webhook",
    security(("bearer" = [])),
    params(WebhookPath),
    responses(
        (status = 200, description = "The subscription", body = WebhookView),
        (status = 400, description = "`invalid_path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`webhook_not_found`", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let id = webhook_id(&id)?;
    let sub = subscriptions::get(&state.db, id).await?;
    Ok(Json(WebhookView::new(&sub, pending_of(&state, id).await?)))
}

/// Stop delivering to it; its pending deliveries wait until it is enabled again.
#[utoipa::path(post, path = "/v1/webhooks/{id}/disable", tag = "webhooks", operation_id = "disable_webhook",
    security(("bearer" = [])),
    params(WebhookPath),
    responses(
        (status = 200, description = "The subscription", body = WebhookView),
        (status = 400, description = "`invalid_path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`webhook_not_found`", body = ErrorBody),
    ))]
pub async fn disable(
    State(state): State<AppState>,
    Extension(trail): Extension<Trail>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let id = webhook_id(&id)?;
    let reason = format!("disabled {}", trail.by());
    let sub = subscriptions::set_enabled(&state.db, id, Some(&reason)).await?;
    Ok(Json(WebhookView::new(&sub, pending_of(&state, id).await?)))
}

/// Deliver to it again: its pending deliveries first, then the events committed since.
#[utoipa::path(post, path = "/v1/webhooks/{id}/enable", tag = "webhooks", operation_id = "enable_webhook",
    security(("bearer" = [])),
    params(WebhookPath),
    responses(
        (status = 200, description = "The subscription", body = WebhookView),
        (status = 400, description = "`invalid_path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`webhook_not_found`", body = ErrorBody),
    ))]
pub async fn enable(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let id = webhook_id(&id)?;
    let sub = subscriptions::set_enabled(&state.db, id, None).await?;
    Ok(Json(WebhookView::new(&sub, pending_of(&state, id).await?)))
}

/// A new signing key, answered this once; for `TENANTD_WEBHOOK_ROTATION_OVERLAP` (default
/// 24 h) deliveries carry both signatures, `v1,<new> v1,<old>`.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate", tag = "webhooks", operation_id = "rotate_webhook_secret",
    security(("bearer" = [])),
    params(WebhookPath),
    responses(
        (status = 200, description = "The subscription with its new signing key", body = WebhookWithSecret),
        (status = 400, description = "`invalid_path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`webhook_not_found`", body = ErrorBody),
        (status = 503, description = "`webhooks_unavailable`", body = ErrorBody),
    ))]
pub async fn rotate(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookWithSecret>, ApiError> {
    let id = webhook_id(&id)?;
    let hooks = keys(&state)?;
    let (sub, key) = subscriptions::rotate(&state.db, &hooks.keys, &hooks.settings, id).await?;
    Ok(Json(WebhookWithSecret {
        webhook: WebhookView::new(&sub, pending_of(&state, id).await?),
        secret: key.expose_secret().to_string(),
    }))
}

/// Deliver again the subscription's events from `since` (an event id, or an RFC 3339 time),
/// in order per tenant, with their original ids.
#[utoipa::path(post, path = "/v1/webhooks/{id}/replay", tag = "webhooks", operation_id = "replay_webhook",
    security(("bearer" = [])),
    params(WebhookPath, ReplayQuery),
    responses(
        (status = 202, description = "How many events are delivered again", body = Replayed),
        (status = 400, description = "`invalid_query`: `since` is neither an event id nor an RFC 3339 time", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`webhook_not_found`", body = ErrorBody),
    ))]
pub async fn replay(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ReplayQuery>,
) -> Result<(StatusCode, Json<Replayed>), ApiError> {
    let id = webhook_id(&id)?;
    let since = match query.since.parse::<i64>() {
        Ok(n) if n >= 0 => Since::Event(n),
        _ => match DateTime::parse_from_rfc3339(&query.since) {
            Ok(t) => Since::Time(t.with_timezone(&Utc)),
            Err(_) => {
                return Err(ApiError::InvalidQuery(format!(
                    "since must be an event id or an RFC 3339 time, got {:?}",
                    query.since.chars().take(64).collect::<String>()
                )));
            }
        },
    };
    let replayed = subscriptions::replay(&state.db, id, since).await?;
    Ok((StatusCode::ACCEPTED, Json(Replayed { replayed })))
}

/// The delivery log: every attempt, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks", operation_id = "list_webhook_deliveries",
    security(("bearer" = [])),
    params(WebhookPath, DeliveryQuery),
    responses(
        (status = 200, description = "A page of attempts", body = DeliveryPage),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`webhook_not_found`", body = ErrorBody),
    ))]
pub async fn deliveries(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let id = webhook_id(&id)?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be from 1 to {MAX_PAGE}, got {limit}"
        )));
    }
    subscriptions::get(&state.db, id).await?;
    let lines = deliveries::log(&state.db, id, query.cursor, limit).await?;
    let next_cursor = (lines.len() as i64 == limit)
        .then(|| lines.last().map(|l| l.id))
        .flatten();
    Ok(Json(DeliveryPage {
        deliveries: lines.iter().map(DeliveryAttempt::from).collect(),
        next_cursor,
    }))
}

/// Delete the subscription, its deliveries and log, and its signing key (when the key's tags
/// say it is this subscription's).
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", operation_id = "delete_webhook",
    security(("bearer" = [])),
    params(WebhookPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`invalid_path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`webhook_not_found`", body = ErrorBody),
        (status = 503, description = "`webhooks_unavailable`", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = webhook_id(&id)?;
    let hooks = keys(&state)?;
    subscriptions::delete(&state.db, &hooks.keys, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
