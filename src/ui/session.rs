//! Console sign-ins: a random session id in an HttpOnly, SameSite=Strict cookie (Secure unless
//! set otherwise), and in the control database only its SHA-256 hash with an expiry, the last
//! time it was used, and the name, role and a fingerprint of the token that signed in (never
//! the token). Server-side rather than a signed cookie: every replica and every restart accepts
//! a session without a shared signing key, and signing out ends the session for good (a copied
//! cookie stops working). A session ends at its next request once its token is no longer
//! configured or has another role, and once it sat idle for `TENANTD_UI_IDLE_TIMEOUT` (the
//! live part a page fetches by itself does not count as use).
//!
//! Each session has a CSRF token derived from its id (a hash under another label): bound to the
//! session, nothing to store, and it reveals nothing of the id. Every state-changing request of
//! a session is audited like the API's, as the console's.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, MatchedPath, Request, State};
use axum::http::header::{COOKIE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use cookie::{Cookie, SameSite};
use rand::RngCore;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use sqlx::PgExecutor;
use subtle::ConstantTimeEq;

use super::UiState;
use super::error::UiError;
use crate::api::ApiError;
use crate::api::auth::note_ids;
use crate::api::caller::Caller;
use crate::api::error::ErrorCode;
use crate::audit::Trail;
use crate::config::{NamedToken, Role, SecureCookie};
use crate::store::sessions;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "tenantd_session";

/// A signed-in console user, as the handlers see it.
#[derive(Debug, Clone)]
pub struct Session {
    id: String,
    pub expires_at: DateTime<Utc>,
    /// The name of the token that signed in.
    pub token: String,
    pub role: Role,
    fingerprint: String,
    /// Last marked used more than a few seconds ago.
    stale: bool,
}

impl Session {
    /// The token every state-changing form of this session carries.
    pub fn csrf(&self) -> String {
        digest("csrf", &self.id)
    }

    /// Whether the session's role allows what `needed` allows.
    pub fn may(&self, needed: Role) -> bool {
        self.role.allows(needed)
    }

    /// Refuses (403) what the session's role does not allow.
    pub fn require(&self, needed: Role) -> Result<(), UiError> {
        if self.may(needed) {
            return Ok(());
        }
        tracing::info!(token.name = %self.token, needed = %needed, "console action refused: role");
        Err(UiError::Api(ApiError::Forbidden {
            needed,
            token: self.token.clone(),
            has: self.role,
        }))
    }

    fn id_hash(&self) -> Vec<u8> {
        id_hash(&self.id)
    }
}

fn digest(label: &str, id: &str) -> String {
    hex::encode(Sha256::digest(format!("tenantd-{label}:{id}")))
}

fn id_hash(id: &str) -> Vec<u8> {
    Sha256::digest(format!("tenantd-session:{id}")).to_vec()
}

/// Opens a session of `token` lasting `ttl`; returns it (its id goes into the cookie).
/// Sessions that have expired or sat idle longer than `idle` are deleted on the way.
pub async fn open(
    executor: impl PgExecutor<'_> + Copy,
    ttl: Duration,
    idle: Duration,
    token: &NamedToken,
) -> Result<Session, sqlx::Error> {
    sessions::delete_stale(executor, idle).await?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let id = hex::encode(bytes);
    let fingerprint = token.fingerprint();
    let expires_at = sessions::insert(
        executor,
        &id_hash(&id),
        ttl,
        &fingerprint,
        &token.name,
        token.role.as_str(),
    )
    .await?;
    Ok(Session {
        id,
        expires_at,
        token: token.name.clone(),
        role: token.role,
        fingerprint,
        stale: false,
    })
}

/// The session the cookie names, unless it expired or sat idle longer than `idle`. A session
/// of an earlier release (no token recorded) is found with an empty fingerprint, which no
/// token has.
async fn find(
    executor: impl PgExecutor<'_>,
    id: &str,
    idle: Duration,
) -> Result<Option<Session>, sqlx::Error> {
    let row = sessions::find(executor, &id_hash(id), idle).await?;
    Ok(row.map(|r| Session {
        id: id.to_string(),
        expires_at: r.expires_at,
        token: r.token_name.unwrap_or_default(),
        role: r
            .role
            .as_deref()
            .and_then(Role::parse)
            .unwrap_or(Role::Viewer),
        fingerprint: r.token_fingerprint.unwrap_or_default(),
        stale: r.stale,
    }))
}

/// Marks the session used now (a write only when it was last marked a few seconds ago).
async fn touch(executor: impl PgExecutor<'_>, session: &Session) -> Result<(), sqlx::Error> {
    if !session.stale {
        return Ok(());
    }
    sessions::touch(executor, &session.id_hash()).await
}

/// Ends a session.
pub async fn close(executor: impl PgExecutor<'_>, session: &Session) -> Result<(), sqlx::Error> {
    sessions::delete(executor, &session.id_hash()).await
}

/// The session id the request's cookie carries.
fn cookie_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE_NAME)
        .map(|c| c.value().to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether the request reached the proxy in front of tenantd over TLS.
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value that stores `session` (or, with `None`, removes the cookie).
pub fn set_cookie(state: &UiState, headers: &HeaderMap, session: Option<&Session>) -> HeaderValue {
    let secure = match state.settings.secure_cookie {
        SecureCookie::Always => true,
        SecureCookie::Auto => over_tls(headers),
        SecureCookie::Off => false,
    };
    let (value, age) = match session {
        Some(s) => (
            s.id.clone(),
            (s.expires_at - Utc::now()).num_seconds().max(0),
        ),
        None => (String::new(), 0),
    };
    let cookie = Cookie::build((COOKIE_NAME, value))
        .path("/ui")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(age))
        .build();
    HeaderValue::from_str(&cookie.to_string()).expect("a cookie of hex digits is a valid header")
}

/// A redirect (303, so a form's POST becomes a GET).
pub fn see_other(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/ui/")),
        )],
    )
        .into_response()
}

fn to_sign_in(request: &Request, ended: bool) -> Response {
    let back = request.uri().path().to_string();
    let mut query = Vec::new();
    if back.starts_with("/ui/") && back != "/ui/" {
        query.push(("next", back.as_str()));
    }
    if ended {
        query.push(("ended", "1"));
    }
    let query = serde_urlencoded::to_string(&query).unwrap_or_default();
    if query.is_empty() {
        see_other("/ui/login")
    } else {
        see_other(&format!("/ui/login?{}", query.replace("%2F", "/")))
    }
}

/// Lets a request through with its [`Session`] (and, for a POST, its audit [`Trail`]) in the
/// extensions, or sends the browser to the sign-in page: without a live session, or when the
/// session's token is gone or has another role now (the session ends then). A request is held
/// to `TENANTD_HTTP_REQUEST_TIMEOUT`; a POST's audit row is written once answered unless the
/// change wrote it.
pub async fn require_session(
    State(state): State<UiState>,
    mut request: Request,
    next: Next,
) -> Result<Response, UiError> {
    let db = &state.app.db;
    let session = match cookie_id(request.headers()) {
        Some(id) => find(db, &id, state.settings.idle_timeout).await?,
        None => None,
    };
    let Some(session) = session else {
        return Ok(to_sign_in(&request, false));
    };
    let current = state.app.tokens.by_fingerprint(&session.fingerprint);
    if !current.is_some_and(|t| t.role == session.role && t.name == session.token) {
        close(db, &session).await?;
        tracing::info!(
            token.name = %session.token,
            "console session ended: its token is no longer configured with the role it signed in with"
        );
        return Ok(to_sign_in(&request, true));
    }
    // What a page fetches by itself (its live part, its events) is not use.
    let path = request.uri().path();
    if !path.ends_with("/live") && !path.ends_with("/events") {
        touch(db, &session).await?;
    }
    let trail = (request.method() != axum::http::Method::GET).then(|| {
        let caller = request.extensions().get::<Caller>().copied();
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| request.uri().path().to_string());
        let trail = Trail::new(
            caller
                .map(|c| c.entry(request.method().as_str(), &route))
                .unwrap_or_default(),
        );
        trail.token(Some(&session.token), Some(session.role));
        note_ids(&route, request.uri().path(), &trail);
        trail
    });
    request.extensions_mut().insert(session);
    if let Some(t) = &trail {
        request.extensions_mut().insert(t.clone());
    }
    let timeout = state.app.http.request_timeout;
    let response = match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => UiError::Api(ApiError::RequestTimeout).into_response(),
    };
    if let Some(t) = trail {
        let code = response.extensions().get::<ErrorCode>().map(|c| c.0);
        t.finish(db, response.status().as_u16(), code).await;
    }
    Ok(response)
}

/// A form body checked against the session's CSRF token: a request whose `csrf` field is
/// missing or wrong is refused (403) before the handler runs, whatever else its body holds.
pub struct Checked<T>(pub T);

impl<S, T> FromRequest<S> for Checked<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send + 'static,
{
    type Rejection = UiError;

    async fn from_request(mut request: Request, state: &S) -> Result<Self, UiError> {
        let session = request
            .extensions_mut()
            .remove::<Session>()
            .ok_or(UiError::Forbidden)?;
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|_| UiError::Forbidden)?;
        let fields: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&body).map_err(|_| UiError::Forbidden)?;
        let presented = fields
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        if !bool::from(session.csrf().as_bytes().ct_eq(presented.as_bytes())) {
            tracing::info!(token.name = %session.token, "console form refused: missing or wrong CSRF token");
            return Err(UiError::Forbidden);
        }
        let form =
            serde_urlencoded::from_bytes(&body).map_err(|e| UiError::BadForm(e.to_string()))?;
        Ok(Checked(form))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_token_is_bound_to_the_session_and_is_not_its_id() {
        let session = |c: &str| Session {
            id: c.repeat(64),
            expires_at: Utc::now(),
            token: "ops".into(),
            role: Role::Operator,
            fingerprint: String::new(),
            stale: false,
        };
        let (a, b) = (session("a"), session("b"));
        assert_ne!(a.csrf(), b.csrf());
        assert_eq!(a.csrf(), a.clone().csrf());
        assert!(!a.csrf().contains(&a.id));
        assert_ne!(hex::encode(a.id_hash()), a.csrf());
    }

    #[test]
    fn only_a_well_formed_cookie_names_a_session() {
        let mut headers = HeaderMap::new();
        let id = "0f".repeat(32);
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE_NAME}={id}")).unwrap(),
        );
        assert_eq!(cookie_id(&headers), Some(id));
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("{COOKIE_NAME}=short")).unwrap(),
        );
        assert_eq!(cookie_id(&headers), None);
    }
}
