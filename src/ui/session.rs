//! Console sign-ins: a random session id in an HttpOnly, SameSite=Strict cookie, and in the
//! control database only its SHA-256 hash with an expiry. Server-side rather than a signed
//! cookie: every replica and every restart accepts a session without a shared signing key, and
//! signing out ends the session for good (a copied cookie stops working). The API token that
//! signed in is never stored anywhere.
//!
//! Each session has a CSRF token derived from its id (a hash under another label): bound to the
//! session, nothing to store, and it reveals nothing of the id.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
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
use crate::config::SecureCookie;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "tenantd_session";

/// A signed-in console user, as the handlers see it.
#[derive(Debug, Clone)]
pub struct Session {
    id: String,
    pub expires_at: DateTime<Utc>,
}

impl Session {
    /// The token every state-changing form of this session carries.
    pub fn csrf(&self) -> String {
        digest("csrf", &self.id)
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

/// Opens a session lasting `ttl`; returns it (its id goes into the cookie). Sessions that have
/// expired are deleted on the way.
pub async fn open(
    executor: impl PgExecutor<'_> + Copy,
    ttl: std::time::Duration,
) -> Result<Session, sqlx::Error> {
    sqlx::query("DELETE FROM ui_sessions WHERE expires_at < now()")
        .execute(executor)
        .await?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let id = hex::encode(bytes);
    let expires_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO ui_sessions (id_hash, expires_at)
         VALUES ($1, now() + make_interval(secs => $2)) RETURNING expires_at",
    )
    .bind(id_hash(&id))
    .bind(ttl.as_secs_f64())
    .fetch_one(executor)
    .await?;
    Ok(Session { id, expires_at })
}

/// The live session the cookie names, if any.
async fn find(executor: impl PgExecutor<'_>, id: &str) -> Result<Option<Session>, sqlx::Error> {
    let expires: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT expires_at FROM ui_sessions WHERE id_hash = $1 AND expires_at > now()",
    )
    .bind(id_hash(id))
    .fetch_optional(executor)
    .await?;
    Ok(expires.map(|expires_at| Session {
        id: id.to_string(),
        expires_at,
    }))
}

/// Ends a session.
pub async fn close(executor: impl PgExecutor<'_>, session: &Session) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM ui_sessions WHERE id_hash = $1")
        .bind(session.id_hash())
        .execute(executor)
        .await?;
    Ok(())
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

/// Lets a request through with its [`Session`] in the extensions, or sends the browser to the
/// sign-in page.
pub async fn require_session(
    State(state): State<UiState>,
    mut request: Request,
    next: Next,
) -> Result<Response, UiError> {
    let session = match cookie_id(request.headers()) {
        Some(id) => find(&state.app.db, &id).await?,
        None => None,
    };
    match session {
        Some(session) => {
            request.extensions_mut().insert(session);
            Ok(next.run(request).await)
        }
        None => {
            let back = request.uri().path().to_string();
            let to = if back.starts_with("/ui/") && back != "/ui/" {
                format!("/ui/login?next={back}")
            } else {
                "/ui/login".to_string()
            };
            Ok(see_other(&to))
        }
    }
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
            tracing::info!("console form refused: missing or wrong CSRF token");
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
        let a = Session {
            id: "a".repeat(64),
            expires_at: Utc::now(),
        };
        let b = Session {
            id: "b".repeat(64),
            expires_at: Utc::now(),
        };
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
