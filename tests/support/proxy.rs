//! A fault-injecting HTTP proxy in front of LocalStack: forwards every AWS request, except that
//! requests for a chosen operation can be delayed and/or answered with an error. The operation
//! is read as the services send it: the `X-Amz-Target` header (JSON protocols), the
//! `/operation/<name>` path (Smithy RPC v2 CBOR), or the `Action` form field (query protocol).
//! It can also fail a random share of all calls (503, connection reset, added latency), and
//! hold an answer after LocalStack gave it (the call took effect, its answer is slow). Every
//! call is logged with when it arrived and when it ended: answered, or given up by the client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;

#[derive(Debug, Clone)]
struct Rule {
    operation: String,
    /// Calls of the operation to let through untouched first.
    skip: u32,
    count: u32,
    latency: Duration,
    /// How long the answer is held once LocalStack gave it.
    hold: Duration,
    fail: Option<Failure>,
}

/// How an injected fault answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 400 AccessDenied: not retryable.
    AccessDenied,
    /// 503 with no body: retryable.
    Unavailable,
    /// The connection is closed without an answer (after the request reached LocalStack, or
    /// before).
    Reset { forwarded: bool },
}

/// Random faults on every call: a `share` of calls fails (half 503, half connection resets,
/// half of those after LocalStack did the work), and `slow` more are held `latency` first.
#[derive(Debug)]
struct Chaos {
    rng: rand::rngs::StdRng,
    share: f64,
    slow: f64,
    latency: Duration,
    tally: Tally,
}

/// What chaos did while it was on.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub calls: u32,
    pub failed: u32,
    pub slowed: u32,
}

/// One request as it went through the proxy.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The signing name of the service (`rds`, `secretsmanager`, `monitoring`).
    pub service: String,
    pub operation: String,
    pub content_type: String,
    pub body: Bytes,
    /// When the request arrived.
    pub arrived: Instant,
    /// When the call ended here, and whether with an answer (`false`: the client closed the
    /// connection first); `None` while it is in flight.
    pub ended: Option<(Instant, bool)>,
}

/// A running proxy; it stops when the test process ends.
#[derive(Clone)]
pub struct FaultProxy {
    pub url: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    seen: Arc<Mutex<HashMap<String, u32>>>,
    chaos: Arc<Mutex<Option<Chaos>>>,
    log: Arc<Mutex<Vec<Recorded>>>,
}

type Shared = (
    Arc<Mutex<Vec<Rule>>>,
    Arc<Mutex<HashMap<String, u32>>>,
    reqwest::Client,
    String,
    Arc<Mutex<Option<Chaos>>>,
    Arc<Mutex<Vec<Recorded>>>,
);

impl FaultProxy {
    /// Starts a proxy to `upstream` (e.g. the `AWS_ENDPOINT_URL` of the local stack).
    pub async fn start(upstream: &str) -> Self {
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let chaos: Arc<Mutex<Option<Chaos>>> = Arc::default();
        let log: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let client = reqwest::Client::new();
        let upstream = upstream.trim_end_matches('/').to_string();
        let state: Shared = (
            rules.clone(),
            seen.clone(),
            client,
            upstream,
            chaos.clone(),
            log.clone(),
        );
        let app = axum::Router::new()
            .fallback(
                |axum::extract::State(state): axum::extract::State<Shared>,
                 method: Method,
                 uri: Uri,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    // Logged as ended when this future ends: answered, or dropped because the
                    // client closed its connection.
                    let mut ended = Ended {
                        log: state.5.clone(),
                        index: record(&state.5, &uri, &headers, &body),
                        answered: false,
                    };
                    // On a task of its own: a request whose client died still reaches
                    // LocalStack, as it would reach AWS.
                    let answer = tokio::spawn(forward(state, method, uri, headers, body)).await;
                    ended.answered = matches!(answer, Ok(Some(_)));
                    match answer {
                        Ok(Some(response)) => response,
                        // Unwinding the connection's task closes the socket unanswered;
                        // resume_unwind skips the panic hook, so nothing is printed.
                        _ => std::panic::resume_unwind(Box::new("connection reset")),
                    }
                },
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FaultProxy {
            url,
            rules,
            seen,
            chaos,
            log,
        }
    }

    /// From now on a `share` of all calls fails at random (seeded), and `slow` more are held
    /// for `latency` first.
    pub fn chaos(&self, seed: u64, share: f64, slow: f64, latency: Duration) {
        use rand::SeedableRng;
        *self.chaos.lock().unwrap() = Some(Chaos {
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            share,
            slow,
            latency,
            tally: Tally::default(),
        });
    }

    /// Stops the random faults; says how many calls it saw, failed and slowed.
    pub fn calm(&self) -> Tally {
        self.chaos
            .lock()
            .unwrap()
            .take()
            .map(|c| c.tally)
            .unwrap_or_default()
    }

    /// The next `count` calls of `operation` fail as `failure` says.
    pub fn fail_with(&self, operation: &str, count: u32, failure: Failure) {
        self.rules.lock().unwrap().push(Rule {
            operation: operation.to_string(),
            skip: 0,
            count,
            latency: Duration::ZERO,
            hold: Duration::ZERO,
            fail: Some(failure),
        });
    }

    /// Every request that arrived so far, in order.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    /// How many calls of `operation` arrived so far.
    pub fn seen(&self, operation: &str) -> u32 {
        self.seen
            .lock()
            .unwrap()
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// The next `count` calls of `operation` fail with an access-denied error.
    pub fn fail(&self, operation: &str, count: u32) {
        self.add(operation, 0, count, Duration::ZERO, true);
    }

    /// The next `count` calls of `operation` are held for `latency`, then forwarded.
    pub fn delay(&self, operation: &str, count: u32, latency: Duration) {
        self.add(operation, 0, count, latency, false);
    }

    /// The `nth` call (1-based) of `operation` is held for `latency`, then forwarded.
    pub fn delay_nth(&self, operation: &str, nth: u32, latency: Duration) {
        self.add(operation, nth - 1, 1, latency, false);
    }

    /// The next `count` calls of `operation` are forwarded at once (they take effect), and their
    /// answers held for `latency`.
    pub fn hold_answer(&self, operation: &str, count: u32, latency: Duration) {
        self.rules.lock().unwrap().push(Rule {
            operation: operation.to_string(),
            skip: 0,
            count,
            latency: Duration::ZERO,
            hold: latency,
            fail: None,
        });
    }

    fn add(&self, operation: &str, skip: u32, count: u32, latency: Duration, fail: bool) {
        self.rules.lock().unwrap().push(Rule {
            operation: operation.to_string(),
            skip,
            count,
            latency,
            hold: Duration::ZERO,
            fail: fail.then_some(Failure::AccessDenied),
        });
    }
}

/// Marks its call in the log as ended when dropped.
struct Ended {
    log: Arc<Mutex<Vec<Recorded>>>,
    index: usize,
    answered: bool,
}

impl Drop for Ended {
    fn drop(&mut self) {
        self.log.lock().unwrap()[self.index].ended = Some((Instant::now(), self.answered));
    }
}

/// Logs a request as it arrives; returns its place in the log.
fn record(log: &Mutex<Vec<Recorded>>, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> usize {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    // Credential=<key>/<date>/<region>/<service>/aws4_request
    let service = header("authorization")
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or_default()
        .to_string();
    let mut log = log.lock().unwrap();
    log.push(Recorded {
        service,
        operation: operation_of(uri, headers, body),
        content_type: header("content-type"),
        body: body.clone(),
        arrived: Instant::now(),
        ended: None,
    });
    log.len() - 1
}

fn operation_of(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or_default().to_string();
    }
    if let Some((_, op)) = uri.path().rsplit_once("/operation/") {
        return op.to_string();
    }
    String::from_utf8_lossy(body)
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or_default()
        .to_string()
}

fn take(rules: &Mutex<Vec<Rule>>, operation: &str) -> Option<Rule> {
    let mut rules = rules.lock().unwrap();
    let i = rules.iter().position(|r| r.operation == operation)?;
    if rules[i].skip > 0 {
        rules[i].skip -= 1;
        return None;
    }
    rules[i].count -= 1;
    let rule = rules[i].clone();
    if rules[i].count == 0 {
        rules.remove(i);
    }
    Some(rule)
}

/// What chaos decides for one call: a failure, and/or a delay.
fn roll(chaos: &Mutex<Option<Chaos>>) -> (Option<Failure>, Duration) {
    use rand::Rng;
    let mut chaos = chaos.lock().unwrap();
    let Some(c) = chaos.as_mut() else {
        return (None, Duration::ZERO);
    };
    let x: f64 = c.rng.random();
    c.tally.calls += 1;
    if x < c.share / 2.0 {
        c.tally.failed += 1;
        (Some(Failure::Unavailable), Duration::ZERO)
    } else if x < c.share {
        c.tally.failed += 1;
        let forwarded = c.rng.random::<bool>();
        (Some(Failure::Reset { forwarded }), Duration::ZERO)
    } else if x < c.share + c.slow {
        c.tally.slowed += 1;
        (None, c.latency)
    } else {
        (None, Duration::ZERO)
    }
}

/// The answer to one request; `None` closes the connection without one.
async fn forward(
    (rules, seen, client, upstream, chaos, _log): Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Option<Response> {
    let operation = operation_of(&uri, &headers, &body);
    *seen.lock().unwrap().entry(operation.clone()).or_default() += 1;
    let (mut failure, mut latency) = roll(&chaos);
    let mut hold = Duration::ZERO;
    if let Some(rule) = take(&rules, &operation) {
        latency += rule.latency;
        hold = rule.hold;
        failure = rule.fail.or(failure);
    }
    tokio::time::sleep(latency).await;
    match failure {
        Some(Failure::AccessDenied) => return Some(injected_error(&headers)),
        Some(Failure::Unavailable) => {
            return Some(
                Response::builder()
                    .status(StatusCode::SERVICE_UNAVAILABLE)
                    .body(Body::empty())
                    .unwrap(),
            );
        }
        Some(Failure::Reset { forwarded: false }) => return None,
        _ => {}
    }
    let url = format!(
        "{upstream}{}",
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut request = client.request(method, url).body(body);
    for (name, value) in headers.iter() {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => {
            return Some(
                Response::builder()
                    .status(StatusCode::BAD_GATEWAY)
                    .body(Body::from(e.to_string()))
                    .unwrap(),
            );
        }
    };
    if let Some(Failure::Reset { forwarded: true }) = failure {
        let _ = answer.bytes().await;
        return None;
    }
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            response = response.header(name, value);
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    tokio::time::sleep(hold).await;
    Some(response.body(Body::from(body)).unwrap())
}

/// A 400 AccessDenied in the protocol the request used: not retryable, so the step fails.
fn injected_error(headers: &HeaderMap) -> Response {
    let message = "injected by the test proxy";
    if headers.contains_key("smithy-protocol") {
        // CBOR: {"__type": "AccessDenied", "message": message}
        let mut body = vec![0xa2];
        for s in ["__type", "AccessDenied", "message", message] {
            if s.len() < 24 {
                body.push(0x60 | s.len() as u8);
            } else {
                body.extend_from_slice(&[0x78, s.len() as u8]);
            }
            body.extend_from_slice(s.as_bytes());
        }
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"))
            .header("content-type", "application/cbor")
            .body(Body::from(body))
            .unwrap();
    }
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header("x-amzn-ErrorType", "AccessDeniedException")
        .header("content-type", "application/x-amz-json-1.1")
        .body(Body::from(format!(
            r#"{{"__type":"AccessDeniedException","message":"{message}"}}"#
        )))
        .unwrap()
}
