//! The console's errors: each becomes an HTML page with the status code and a message an
//! operator can act on. Refusals of the API's own paths keep the API's status and message;
//! internal failures are logged once and shown as a generic message.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::api::ApiError;
use crate::api::error::ErrorCode;
use crate::queue::QueueError;
use crate::tenant_id::InvalidTenantId;
use crate::tenants::TenantError;

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// A state-changing request without this session's CSRF token.
    #[error(
        "this form is out of date or was not sent from the console; reload the page and try again"
    )]
    Forbidden,
    #[error("the form does not fit the request: {0}")]
    BadForm(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("rendering a page: {0}")]
    Render(#[from] askama::Error),
}

impl From<sqlx::Error> for UiError {
    fn from(e: sqlx::Error) -> Self {
        UiError::Api(e.into())
    }
}

impl From<TenantError> for UiError {
    fn from(e: TenantError) -> Self {
        UiError::Api(e.into())
    }
}

impl From<InvalidTenantId> for UiError {
    fn from(e: InvalidTenantId) -> Self {
        UiError::Api(e.into())
    }
}

impl From<QueueError> for UiError {
    fn from(e: QueueError) -> Self {
        UiError::Api(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    reason: &'static str,
    message: String,
}

impl UiError {
    /// The stable code the audit trail records.
    pub fn code(&self) -> &'static str {
        match self {
            UiError::Forbidden => "csrf_mismatch",
            UiError::BadForm(_) | UiError::BadRequest(_) => "bad_request",
            UiError::Api(e) => e.code(),
            UiError::Render(_) => "internal",
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let code = ErrorCode(self.code());
        let (status, message) = match &self {
            UiError::Forbidden => (StatusCode::FORBIDDEN, self.to_string()),
            UiError::BadForm(_) | UiError::BadRequest(_) => {
                (StatusCode::BAD_REQUEST, self.to_string())
            }
            UiError::Api(ApiError::Internal(detail)) => {
                tracing::error!(error = %detail, "console request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; the daemon's log has the details".to_string(),
                )
            }
            UiError::Api(e) => (e.status(), e.to_string()),
            UiError::Render(e) => {
                tracing::error!(error = %e, "console page failed to render");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; the daemon's log has the details".to_string(),
                )
            }
        };
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message,
        };
        let mut response = match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, page.message).into_response(),
        };
        if let UiError::Api(ApiError::TooManyFailures { retry_after }) = &self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, (*retry_after).into());
        }
        response.extensions_mut().insert(code);
        response
    }
}
