//! Limits on the requests themselves, beside the listener's on connections: at most so many
//! requests of each class at once (operations endpoints, API reads, API changes, the console),
//! one more answered 503 `overloaded` at once, so that a flood of one class leaves the others
//! their share; and a deadline per request (`TENANTD_HTTP_REQUEST_TIMEOUT`), after which it
//! is answered 503 `request_timeout` and its work dropped (a transaction in progress rolls
//! back). Long waits by design, such as an event stream, are exempt: they are listed in
//! [`exempt`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::error::ApiError;
use crate::config::ClassLimits;

/// Which share of the server a request takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Ops,
    Read,
    Write,
    Console,
}

impl Class {
    pub fn of(method: &Method, path: &str) -> Class {
        if path == "/ui" || path.starts_with("/ui/") {
            Class::Console
        } else if !path.starts_with("/v1/") {
            Class::Ops
        } else if matches!(*method, Method::GET | Method::HEAD) {
            Class::Read
        } else {
            Class::Write
        }
    }
}

/// The permits of each class. Cheap to clone.
#[derive(Clone)]
pub struct Admission {
    ops: Arc<Semaphore>,
    read: Arc<Semaphore>,
    write: Arc<Semaphore>,
    console: Arc<Semaphore>,
    timeout: Duration,
}

impl Admission {
    pub fn new(limits: ClassLimits, timeout: Duration) -> Self {
        Admission {
            ops: Arc::new(Semaphore::new(limits.ops)),
            read: Arc::new(Semaphore::new(limits.read)),
            write: Arc::new(Semaphore::new(limits.write)),
            console: Arc::new(Semaphore::new(limits.console)),
            timeout,
        }
    }

    fn permits(&self, class: Class) -> &Arc<Semaphore> {
        match class {
            Class::Ops => &self.ops,
            Class::Read => &self.read,
            Class::Write => &self.write,
            Class::Console => &self.console,
        }
    }
}

/// Routes whose requests may outlast the deadline (they wait by design): the event stream
/// (only its head is held to the deadline anyway: the body streams after the answer).
fn exempt(path: &str) -> bool {
    path == "/v1/events" || (path.starts_with("/ui/tenants/") && path.ends_with("/events"))
}

/// Takes a permit of the request's class (503 `overloaded` when none is free) and holds an
/// operations request to its deadline (`/v1` and console requests get theirs inside their
/// guards, so that one stopped by it is audited: see [`deadline`]).
pub async fn admit(State(admission): State<Admission>, request: Request, next: Next) -> Response {
    let class = Class::of(request.method(), request.uri().path());
    let Ok(_permit) = admission.permits(class).clone().try_acquire_owned() else {
        tracing::warn!(?class, "request refused: too many of its class at once");
        return ApiError::Overloaded.into_response();
    };
    if class != Class::Ops || exempt(request.uri().path()) {
        return next.run(request).await;
    }
    run_within(admission.timeout, request, next).await
}

/// Runs the request until `timeout`; then 503 `request_timeout`.
async fn run_within(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                ?timeout,
                "request stopped: it took longer than the deadline"
            );
            ApiError::RequestTimeout.into_response()
        }
    }
}

/// The deadline alone, inside the guard of a `/v1` route or the console, so that a request
/// stopped by it is audited.
pub async fn deadline(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    if exempt(request.uri().path()) {
        return next.run(request).await;
    }
    run_within(timeout, request, next).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_fall_into_their_class() {
        assert_eq!(Class::of(&Method::GET, "/metrics"), Class::Ops);
        assert_eq!(Class::of(&Method::GET, "/openapi.json"), Class::Ops);
        assert_eq!(Class::of(&Method::GET, "/v1/tenants"), Class::Read);
        assert_eq!(Class::of(&Method::DELETE, "/v1/tenants/a"), Class::Write);
        assert_eq!(Class::of(&Method::POST, "/ui/login"), Class::Console);
        assert_eq!(Class::of(&Method::GET, "/ui"), Class::Console);
    }
}
