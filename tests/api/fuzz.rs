//! Bad input does no harm: a few thousand random and malformed requests (seeded, so a failure
//! replays) to every `/v1` route of a real server. Every answer is a 4xx with a JSON error
//! code, never a 5xx, and afterwards no tenant and no job exist. The generator never sends a
//! valid create: every create body it makes has an invalid id, an unknown tier, a wrong type or
//! a broken encoding.

use crate::support;

use futures::StreamExt;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use support::app::{TOKEN, spawn_app};

const REQUESTS: usize = 3000;
const SEED: u64 = 0x7e4a_17d0;

/// Strings no tenant id, tier or job id can be.
const NASTY: &[&str] = &[
    "'",
    "\"",
    "'; DROP TABLE jobs; --",
    "\" OR 1=1 --",
    "acme' OR '1'='1",
    "Robert'); DELETE FROM tenants;--",
    "ACME",
    "a",
    "-acme",
    "acme-",
    "ac--me",
    "acme_corp",
    "acme corp",
    "ácme",
    "租户",
    "😀😀😀",
    "acme\u{0}",
    "acme\n",
    "\u{202e}emca",
    "../../etc/passwd",
    "%00",
    "${jndi:ldap://x}",
    "<script>alert(1)</script>",
    "null",
    "NaN",
    "",
    " ",
    "00000000-0000-0000-0000-00000000000g",
];

fn nasty_string(rng: &mut StdRng) -> String {
    match rng.random_range(0..6) {
        0 => "x".repeat(rng.random_range(10_000..10_300)),
        1 => format!("{}{}", NASTY.choose(rng).unwrap(), "a".repeat(41)),
        2 => {
            (0..rng.random_range(1..60))
                .map(|_| char::from_u32(rng.random_range(0x20..0x3000)).unwrap_or('?'))
                .collect::<String>()
                + "'"
        }
        _ => NASTY.choose(rng).unwrap().to_string(),
    }
}

fn junk_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 3 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>()),
        4 | 5 => json!(nasty_string(rng)),
        6 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| junk_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let mut map = serde_json::Map::new();
            for _ in 0..rng.random_range(0..4) {
                map.insert(nasty_string(rng), junk_value(rng, depth + 1));
            }
            Value::Object(map)
        }
    }
}

/// A create body that can never be valid.
fn bad_create_body(rng: &mut StdRng) -> Vec<u8> {
    let good_ids = ["acme", "tenant-one", "globex"];
    let tiers = ["starter", "pro", "enterprise"];
    let value = match rng.random_range(0..9) {
        // Invalid id, any tier.
        0 => json!({ "id": nasty_string(rng), "tier": tiers.choose(rng).unwrap() }),
        // Valid id, unknown tier.
        1 => json!({ "id": good_ids.choose(rng).unwrap(), "tier": nasty_string(rng) }),
        // Wrong types.
        2 => json!({ "id": junk_value(rng, 4), "tier": [1, 2] }),
        3 => json!({ "id": 42, "tier": "starter" }),
        // Missing or extra fields.
        4 => json!({ "id": good_ids.choose(rng).unwrap() }),
        5 => {
            json!({ "id": good_ids.choose(rng).unwrap(), "tier": "starter", nasty_string(rng): 1 })
        }
        // Not an object at all.
        6 => junk_value(rng, 0),
        7 => json!([{ "id": "acme", "tier": "starter" }]),
        _ => {
            // Broken JSON: a valid body cut short, or random bytes.
            let body = json!({ "id": "acme", "tier": "starter" }).to_string();
            if rng.random::<bool>() {
                return body.as_bytes()[..rng.random_range(0..body.len() - 1)].to_vec();
            }
            return (0..rng.random_range(1..200))
                .map(|_| rng.random())
                .collect();
        }
    };
    // `junk_value` may, against all odds, produce a valid create; refuse that by construction.
    if let Some(obj) = value.as_object()
        && obj.len() == 2
        && obj.get("id").and_then(Value::as_str).is_some_and(valid_id)
        && obj
            .get("tier")
            .and_then(Value::as_str)
            .is_some_and(|t| tiers.contains(&t))
    {
        return b"{\"id\": \"acme\", \"tier\": }".to_vec();
    }
    value.to_string().into_bytes()
}

fn valid_id(id: &str) -> bool {
    (3..=40).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && !id.contains("--")
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Every byte outside [A-Za-z0-9] percent-encoded, so any string fits in a path segment.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

struct Request {
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    auth: bool,
}

fn odd_id(rng: &mut StdRng) -> String {
    match rng.random_range(0..4) {
        0 => encode(&nasty_string(rng)),
        1 => "..%2F..%2Fetc".into(),
        2 => uuid::Uuid::from_u128(rng.random()).to_string(),
        _ => encode(&format!("nobody-{}", rng.random::<u32>())),
    }
}

/// A list query with at least one refused parameter, so a list never succeeds.
fn bad_list_query(rng: &mut StdRng) -> String {
    let bad = [
        format!("limit={}", encode(&nasty_string(rng))),
        "limit=-1".into(),
        "limit=0".into(),
        "limit=100000".into(),
        format!("status={}", encode(&nasty_string(rng))),
        format!("{}=1", encode(&nasty_string(rng))),
        "status=ready&status=failed".into(),
    ];
    let mut q = bad.choose(rng).unwrap().clone();
    if rng.random::<bool>() {
        q.push_str(&format!("&cursor={}", encode(&nasty_string(rng))));
    }
    q
}

fn request(rng: &mut StdRng) -> Request {
    let content_types = [
        Some("application/json"),
        Some("application/json"),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/json; charset=latin1"),
        None,
    ];
    let auth = rng.random_range(0..20) != 0;
    let (method, path, body) = match rng.random_range(0..10) {
        0..=3 => {
            let mut body = bad_create_body(rng);
            if rng.random_range(0..30) == 0 {
                body = vec![b' '; 17 * 1024];
            }
            (Method::POST, "/v1/tenants".to_string(), body)
        }
        4 => (Method::GET, format!("/v1/tenants/{}", odd_id(rng)), vec![]),
        5 => (
            Method::GET,
            format!("/v1/tenants?{}", bad_list_query(rng)),
            vec![],
        ),
        6 => {
            let query = if rng.random::<bool>() {
                format!("?final_snapshot={}", encode(&nasty_string(rng)))
            } else {
                String::new()
            };
            (
                Method::DELETE,
                format!("/v1/tenants/{}{query}", odd_id(rng)),
                vec![],
            )
        }
        7 => (Method::GET, format!("/v1/jobs/{}", odd_id(rng)), vec![]),
        8 => (
            Method::POST,
            format!("/v1/jobs/{}/cancel", odd_id(rng)),
            junk_value(rng, 0).to_string().into_bytes(),
        ),
        _ => {
            let method = [Method::PUT, Method::PATCH, Method::DELETE, Method::POST]
                .choose(rng)
                .unwrap()
                .clone();
            let path = [
                "/v1/tenants".to_string(),
                "/v1/jobs".to_string(),
                format!("/v1/{}", odd_id(rng)),
                format!("/v1/tenants/{}/{}", odd_id(rng), odd_id(rng)),
            ]
            .choose(rng)
            .unwrap()
            .clone();
            // POST /v1/tenants is the create route: its body stays invalid.
            (method, path, bad_create_body(rng))
        }
    };
    Request {
        method,
        path,
        content_type: *content_types.choose(rng).unwrap(),
        body,
        auth,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_malformed_requests_get_4xx_json_errors_and_change_nothing() {
    let app = spawn_app().await;
    let mut rng = StdRng::seed_from_u64(SEED);
    let requests: Vec<Request> = (0..REQUESTS).map(|_| request(&mut rng)).collect();
    let failures: Vec<String> = futures::stream::iter(requests)
        .map(|r| {
            let mut builder = app
                .http
                .request(r.method.clone(), format!("{}{}", app.url, r.path));
            if r.auth {
                builder = builder.bearer_auth(TOKEN);
            } else {
                builder = builder.bearer_auth("wrong-token");
            }
            if let Some(ct) = r.content_type {
                builder = builder.header("content-type", ct);
            }
            let summary = format!(
                "{} {} ({:?}, {} bytes: {:?})",
                r.method,
                &r.path[..r.path.len().min(120)],
                r.content_type,
                r.body.len(),
                String::from_utf8_lossy(&r.body[..r.body.len().min(120)])
            );
            let builder = builder.body(r.body);
            async move {
                let response = builder.send().await.expect("the server answers");
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                let code = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["error"]["code"].as_str().map(str::to_string));
                match code {
                    Some(_) if (400..500).contains(&status) => None,
                    _ => Some(format!("{summary} -> {status} {text:.200}")),
                }
            }
        })
        .buffer_unordered(16)
        .filter_map(|f| async move { f })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} of {REQUESTS} answers were not a 4xx JSON error, e.g.:\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );
    assert_eq!(app.count("jobs").await, 0, "a job was enqueued");
    assert_eq!(app.count("tenants").await, 0, "a tenant was created");
    assert_eq!(app.count("job_history").await, 0);
}
