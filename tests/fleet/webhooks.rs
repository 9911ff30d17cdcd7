//! Webhooks on real parts: `tenantd serve` (the real binary) against the local stack, a real
//! receiver on a real port, events written to the control database as the changes write them
//! (`store::events::record` in a transaction of its own). Exactly the events of a script, in
//! order per tenant, each signed; SIGKILLs between send and record lose nothing; a receiver
//! failing for two minutes gets everything in order; a rotation signs with both keys; the URL
//! rule; a subscription failing past its window is disabled; every event reaches the
//! EventBridge bus (read back through an SQS queue a rule targets) with the SaaS Builder
//! Toolkit's detail types.

use crate::support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use support::fleet::*;
use support::receiver::{Received, Receiver};
use support::stack::*;
use support::wait_for;
use tenantd::store::events::{self, EventType, NewEvent};

const TOKEN: &str = "scale-test-token-0123456789abcdefgh";

fn env(stack: &Stack, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let base = test_env(&stack.db, &[]);
    let mut all = vec![
        ("TENANTD_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("TENANTD_WEBHOOK_POLL", "50ms"),
        ("TENANTD_WEBHOOK_RETRY_BASE", "100ms"),
        ("TENANTD_WEBHOOK_RETRY_MAX", "1s"),
        ("TENANTD_WEBHOOK_TIMEOUT", "5s"),
    ];
    all.extend_from_slice(extra);
    daemon_env(&base, "hooks", &all)
}

async fn call(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Subscribes `target` to `types`; returns the subscription's id and signing key.
async fn subscribe(api: &str, target: &str, types: &[&str]) -> (String, String) {
    let (status, body) = call(
        reqwest::Method::POST,
        &format!("{api}/v1/webhooks"),
        Some(json!({ "url": target, "types": types, "description": "test" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let secret = body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (body["id"].as_str().unwrap().to_string(), secret)
}

/// Writes one event about `tenant` in a transaction of its own, as a change would.
async fn emit(pool: &sqlx::PgPool, kind: EventType, tenant: &str) {
    let mut tx = pool.begin().await.unwrap();
    let event = NewEvent::tenant(
        kind,
        tenant,
        json!({ "id": tenant, "status": kind.as_str() }),
    );
    events::record(&mut tx, &[event]).await.unwrap();
    tx.commit().await.unwrap();
}

/// The ids of the events of these types, in id order, with their tenants.
async fn written(stack: &Stack, types: &[&str]) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT id, tenant_id FROM events WHERE type = ANY($1) ORDER BY id")
        .bind(types)
        .fetch_all(stack.pool())
        .await
        .unwrap()
}

/// Waits until every id of `want` was answered 2xx; returns what was received.
async fn all_accepted(
    receiver: &Receiver,
    want: &[(i64, String)],
    timeout: Duration,
) -> Vec<Received> {
    let ids: BTreeSet<String> = want.iter().map(|(id, _)| id.to_string()).collect();
    wait_for("every event to be accepted", timeout, || async {
        let got: BTreeSet<String> = receiver.accepted().into_iter().map(|r| r.id).collect();
        ids.is_subset(&got).then_some(())
    })
    .await;
    receiver.got()
}

/// Each tenant's events were first accepted in id order, no event before the one before it
/// was accepted, and nothing else was received.
fn assert_in_order_per_tenant(got: &[Received], want: &[(i64, String)]) {
    let tenant_of: HashMap<String, String> = want
        .iter()
        .map(|(id, t)| (id.to_string(), t.clone()))
        .collect();
    let mut firsts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for r in got.iter().filter(|r| (200..300).contains(&r.status)) {
        let tenant = tenant_of
            .get(&r.id)
            .unwrap_or_else(|| panic!("received event {} that the script did not write", r.id));
        if seen.insert(r.id.clone()) {
            firsts
                .entry(tenant.clone())
                .or_default()
                .push(r.id.parse().unwrap());
        }
        assert_eq!(
            r.json()["id"].as_str(),
            Some(r.id.as_str()),
            "webhook-id is the event id"
        );
        assert_eq!(r.json()["subject"].as_str(), Some(tenant.as_str()));
    }
    for (tenant, ids) in &firsts {
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, &sorted, "tenant {tenant}'s events out of order");
    }
    // The receiver never saw a tenant's event before the previous one had been accepted.
    let mut accepted: HashMap<String, i64> = HashMap::new();
    for r in got {
        let tenant = &tenant_of[&r.id];
        let id: i64 = r.id.parse().unwrap();
        let previous = want
            .iter()
            .filter(|(i, t)| t == tenant && *i < id)
            .map(|(i, _)| *i)
            .max();
        if let Some(previous) = previous {
            assert!(
                accepted.get(tenant).is_some_and(|a| *a >= previous),
                "event {id} of {tenant} arrived before {previous} was accepted"
            );
        }
        if (200..300).contains(&r.status) {
            let a = accepted.entry(tenant.clone()).or_insert(id);
            *a = (*a).max(id);
        }
    }
}

const SUBSCRIBED: [&str; 3] = [
    "tenantd.tenant.requested",
    "tenantd.tenant.ready",
    "tenantd.tenant.deleted",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_sequence_arrives_once_per_id_in_order_per_tenant_and_signed() {
    let stack = Stack::new().await;
    let receiver = Receiver::start().await;
    let (_daemon, api) = serve_ready(&env(&stack, &[])).await;
    let (id, secret) = subscribe(&api, &receiver.url, &SUBSCRIBED).await;

    // Six tenants' lives written by six concurrent writers, with a type not subscribed to.
    let mut writers = Vec::new();
    for t in 0..6 {
        let pool = stack.pool().clone();
        writers.push(tokio::spawn(async move {
            let tenant = format!("t{t}");
            for kind in [
                EventType::TenantRequested,
                EventType::TenantReady,
                EventType::TenantTierChanged,
                EventType::TenantReady,
                EventType::TenantDeleted,
            ] {
                emit(&pool, kind, &tenant).await;
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let want = written(&stack, &SUBSCRIBED).await;
    assert_eq!(want.len(), 6 * 4);
    let got = all_accepted(&receiver, &want, Duration::from_secs(30)).await;
    assert_in_order_per_tenant(&got, &want);
    let unique: BTreeSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(unique.len(), want.len(), "exactly the script's events");
    for r in &got {
        assert!(
            r.signed_by(&secret),
            "event {} not signed with the key",
            r.id
        );
        assert_eq!(r.signature.split(' ').count(), 1);
    }

    // The key is in Secrets Manager only: not in the control database, not in the list.
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_subscriptions w WHERE w::text LIKE '%whsec_%'
             OR secret_arn NOT LIKE 'arn:aws:secretsmanager:%'",
    )
    .fetch_one(stack.pool())
    .await
    .unwrap();
    assert_eq!(rows, 0);
    let (status, list) = call(reqwest::Method::GET, &format!("{api}/v1/webhooks"), None).await;
    assert_eq!(status, 200);
    assert!(!list.to_string().contains("whsec_"), "{list}");
    assert_eq!(list["webhooks"][0]["id"], id.as_str());
    let stored = stack
        .secrets
        .get_secret_value()
        .secret_id(format!("saas/webhook/{id}"))
        .send()
        .await
        .unwrap();
    assert!(stored.secret_string().unwrap().contains(&secret));

    // The delivery log has an attempt answered 200 per event.
    let (status, log) = call(
        reqwest::Method::GET,
        &format!("{api}/v1/webhooks/{id}/deliveries?limit=1000"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let ok: BTreeSet<i64> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status_code"] == 200)
        .map(|d| d["event_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ok.len(), want.len(), "{log}");

    // A replay from the first event delivers all of them again, in order per tenant.
    let (status, body) = call(
        reqwest::Method::POST,
        &format!("{api}/v1/webhooks/{id}/replay?since={}", want[0].0),
        None,
    )
    .await;
    assert_eq!(
        (status, body["replayed"].as_u64()),
        (202, Some(want.len() as u64))
    );
    let before = got.len();
    let again = wait_for("the replay", Duration::from_secs(30), || async {
        let got = receiver.accepted();
        (got.len() >= before + want.len()).then_some(got)
    })
    .await;
    assert_in_order_per_tenant(&again[before..], &want);
    let (status, body) = call(
        reqwest::Method::POST,
        &format!("{api}/v1/webhooks/{id}/replay?since=yesterday"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );

    // Deleting it deletes its key too.
    let (status, _) = call(
        reqwest::Method::DELETE,
        &format!("{api}/v1/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let gone = stack
        .secrets
        .describe_secret()
        .secret_id(format!("saas/webhook/{id}"))
        .send()
        .await;
    assert!(gone.is_err(), "the signing key is still there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkills_between_send_and_record_lose_no_event() {
    let stack = Stack::new().await;
    let receiver = Receiver::start().await;
    // Each answer takes a while: kills land between the send and the record.
    receiver.delay(Duration::from_millis(150));
    let env = env(&stack, &[("TENANTD_WEBHOOK_CONCURRENCY", "8")]);
    let (mut daemon, api) = serve_ready(&env).await;
    let (_, secret) = subscribe(&api, &receiver.url, &[]).await;
    let port = api.rsplit(':').next().unwrap().to_string();
    let mut env = env.clone();
    env.insert("TENANTD_LISTEN".into(), format!("127.0.0.1:{port}"));

    let pool = stack.pool().clone();
    let writer = tokio::spawn(async move {
        for i in 0..160 {
            let kind = [EventType::TenantRequested, EventType::TenantReady][i % 2];
            emit(&pool, kind, &format!("k{}", i % 8)).await;
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    });
    // A fixed seed: the same kill schedule on every run.
    let mut rng = StdRng::seed_from_u64(0x4f0c);
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1200))).await;
        kill9(&mut daemon).await;
        daemon = spawn_serve(&env);
    }
    writer.await.unwrap();
    let want = written(&stack, &SUBSCRIBED).await;
    assert_eq!(want.len(), 160);
    let got = all_accepted(&receiver, &want, Duration::from_secs(90)).await;
    kill9(&mut daemon).await;
    assert_in_order_per_tenant(&got, &want);
    for r in &got {
        assert!(
            r.signed_by(&secret),
            "event {} not signed with the key",
            r.id
        );
    }
    let unique: BTreeSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
    let duplicates = got.len() - unique.len();
    eprintln!(
        "{} requests for {} events: {duplicates} sent again after a kill",
        got.len(),
        unique.len()
    );
    // Some kill landed between a send and its record: the delivery was sent again, same id.
    assert!(
        duplicates > 0,
        "no kill landed between a send and its record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_for_two_minutes_gets_every_event_in_order() {
    let stack = Stack::new().await;
    let receiver = Receiver::start().await;
    receiver.answer(500);
    let env = env(
        &stack,
        &[
            ("TENANTD_WEBHOOK_RETRY_BASE", "1s"),
            ("TENANTD_WEBHOOK_RETRY_MAX", "8s"),
            ("TENANTD_WEBHOOK_RETRY_FOR", "10m"),
        ],
    );
    let (_daemon, api) = serve_ready(&env).await;
    let (id, secret) = subscribe(&api, &receiver.url, &[]).await;
    let started = std::time::Instant::now();
    // Events keep coming while the receiver is down.
    let pool = stack.pool().clone();
    let writer = tokio::spawn(async move {
        for i in 0..40 {
            let kind = [EventType::TenantRequested, EventType::TenantReady][i % 2];
            emit(&pool, kind, &format!("r{}", i % 4)).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    // The receiver's outage: two minutes of 500s.
    tokio::time::sleep(Duration::from_secs(120)).await;
    receiver.answer(200);
    writer.await.unwrap();
    let want = written(&stack, &SUBSCRIBED).await;
    let got = all_accepted(&receiver, &want, Duration::from_secs(60)).await;
    assert_in_order_per_tenant(&got, &want);
    let refused = got.iter().filter(|r| r.status == 500).count();
    assert!(
        refused >= 4 * 10,
        "only {refused} attempts during the outage"
    );
    for r in &got {
        assert!(r.signed_by(&secret));
    }
    // Backoff: no attempt within the outage came sooner than the first pause (base/2).
    let (_, sub) = call(
        reqwest::Method::GET,
        &format!("{api}/v1/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(sub["enabled"], true);
    assert_eq!(sub["failing_since"], Value::Null);
    eprintln!(
        "every event in order {:?} after the outage began; {refused} attempts refused",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_signs_beside_the_old_one_during_the_overlap() {
    let stack = Stack::new().await;
    let receiver = Receiver::start().await;
    let (_daemon, api) =
        serve_ready(&env(&stack, &[("TENANTD_WEBHOOK_ROTATION_OVERLAP", "3s")])).await;
    let (id, old) = subscribe(&api, &receiver.url, &[]).await;
    emit(stack.pool(), EventType::TenantReady, "rot").await;
    let first = wait_for("the first event", Duration::from_secs(20), || async {
        receiver.accepted().first().cloned()
    })
    .await;
    assert!(first.signed_by(&old));

    let (status, body) = call(
        reqwest::Method::POST,
        &format!("{api}/v1/webhooks/{id}/rotate"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let new = body["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(body["key_version"], 2);
    emit(stack.pool(), EventType::TenantReady, "rot").await;
    let second = wait_for("the second event", Duration::from_secs(20), || async {
        receiver.accepted().get(1).cloned()
    })
    .await;
    let signatures: Vec<&str> = second.signature.split(' ').collect();
    assert_eq!(signatures.len(), 2, "{}", second.signature);
    assert!(second.signed_by(&new) && second.signed_by(&old));
    // The new key's signature comes first.
    let only_new = Received {
        signature: signatures[0].to_string(),
        ..second.clone()
    };
    assert!(only_new.signed_by(&new));

    // After the overlap, the new key alone.
    let after = wait_for(
        "a delivery after the overlap",
        Duration::from_secs(30),
        || async {
            emit(stack.pool(), EventType::TenantReady, "rot").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            receiver
                .accepted()
                .into_iter()
                .find(|r| !r.signature.contains(' ') && r.id != first.id)
        },
    )
    .await;
    assert!(after.signed_by(&new) && !after.signed_by(&old));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_url_rule_refuses_plain_http_private_addresses_and_unknown_types() {
    let stack = Stack::new().await;
    let env = env(&stack, &[("TENANTD_WEBHOOK_ALLOW_PRIVATE", "false")]);
    let (_daemon, api) = serve_ready(&env).await;
    for (url, types, code) in [
        ("http://hooks.example.com/in", json!([]), "url_not_allowed"),
        ("https://127.0.0.1:8443/in", json!([]), "url_not_allowed"),
        ("https://10.1.2.3/in", json!([]), "url_not_allowed"),
        (
            "https://169.254.169.254/latest/meta-data",
            json!([]),
            "url_not_allowed",
        ),
        ("https://[::1]/in", json!([]), "url_not_allowed"),
        ("https://localhost/in", json!([]), "url_not_allowed"),
        ("ftp://hooks.example.com/in", json!([]), "url_not_allowed"),
        (
            "https://user:pw@hooks.example.com/in",
            json!([]),
            "invalid_url",
        ),
        ("not a url", json!([]), "invalid_url"),
        (
            "https://hooks.example.com/in",
            json!(["tenantd.tenant.nope"]),
            "unknown_event_type",
        ),
    ] {
        let (status, body) = call(
            reqwest::Method::POST,
            &format!("{api}/v1/webhooks"),
            Some(json!({ "url": url, "types": types })),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some(code)),
            "{url}: {body}"
        );
    }
    // Nothing was made: no row, no key.
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_subscriptions")
        .fetch_one(stack.pool())
        .await
        .unwrap();
    assert_eq!(rows, 0);
    let (status, body) = call(
        reqwest::Method::POST,
        &format!("{api}/v1/webhooks/{}/rotate", uuid::Uuid::new_v4()),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("webhook_not_found"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_failing_past_its_window_is_disabled_with_the_reason() {
    let stack = Stack::new().await;
    let receiver = Receiver::start().await;
    receiver.answer(503);
    let env = env(
        &stack,
        &[
            ("TENANTD_WEBHOOK_RETRY_BASE", "50ms"),
            ("TENANTD_WEBHOOK_RETRY_MAX", "200ms"),
            ("TENANTD_WEBHOOK_RETRY_FOR", "2s"),
            ("TENANTD_WEBHOOK_DISABLE_AFTER", "3s"),
        ],
    );
    let (_daemon, api) = serve_ready(&env).await;
    let (id, _) = subscribe(&api, &receiver.url, &[]).await;
    emit(stack.pool(), EventType::TenantRequested, "d").await;
    emit(stack.pool(), EventType::TenantReady, "d").await;
    let sub = wait_for(
        "the subscription to be disabled",
        Duration::from_secs(30),
        || async {
            let (_, sub) = call(
                reqwest::Method::GET,
                &format!("{api}/v1/webhooks/{id}"),
                None,
            )
            .await;
            (sub["enabled"] == false).then_some(sub)
        },
    )
    .await;
    let reason = sub["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("HTTP 503"), "{reason}");
    // The first event was given up after TENANTD_WEBHOOK_RETRY_FOR (2 s), the tenant's next
    // one was tried after it, and a second later (3 s of failures) the subscription was
    // disabled.
    let (_, log) = call(
        reqwest::Method::GET,
        &format!("{api}/v1/webhooks/{id}/deliveries?limit=1000"),
        None,
    )
    .await;
    let attempted: BTreeSet<i64> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["event_id"].as_i64().unwrap())
        .collect();
    assert_eq!(attempted.len(), 2, "{log}");
    let failed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE state = 'failed'")
            .fetch_one(stack.pool())
            .await
            .unwrap();
    assert!(failed >= 1);
    // Disabled: nothing more is sent.
    let sent = receiver.got().len();
    emit(stack.pool(), EventType::TenantReady, "d").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.got().len(), sent);
    // Enabled again, it delivers what came since.
    receiver.answer(200);
    let (status, _) = call(
        reqwest::Method::POST,
        &format!("{api}/v1/webhooks/{id}/enable"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let newest = written(&stack, &SUBSCRIBED)
        .await
        .last()
        .unwrap()
        .0
        .to_string();
    wait_for(
        "the newest event after enabling",
        Duration::from_secs(20),
        || async {
            receiver
                .accepted()
                .iter()
                .any(|r| r.id == newest)
                .then_some(())
        },
    )
    .await;
}

/// One SQS request to the local stack (JSON protocol; LocalStack does not check signatures).
async fn sqs(target: &str, body: Value) -> Value {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let response = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header("X-Amz-Target", format!("AmazonSQS.{target}"))
        .header("Content-Type", "application/x-amz-json-1.0")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=000000000000/20261208/us-east-1/sqs/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_the_eventbridge_bus_with_saas_builder_detail_types() {
    let stack = Stack::new().await;
    let name = run_prefix("tenantd-bus");
    let config = sdk_config(None).await;
    let bridge = aws_sdk_eventbridge::Client::new(&config);
    bridge.create_event_bus().name(&name).send().await.unwrap();
    let queue = sqs("CreateQueue", json!({ "QueueName": name })).await;
    let queue_url = queue["QueueUrl"].as_str().unwrap().to_string();
    bridge
        .put_rule()
        .name(&name)
        .event_bus_name(&name)
        .event_pattern(r#"{"source": ["tenantd"]}"#)
        .send()
        .await
        .unwrap();
    bridge
        .put_targets()
        .rule(&name)
        .event_bus_name(&name)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(format!("arn:aws:sqs:us-east-1:000000000000:{name}"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let (_daemon, _api) = serve_ready(&env(&stack, &[("TENANTD_EVENTBRIDGE_BUS", &name)])).await;
    // The bus gets the events committed once its sender started.
    wait_for("the bus's cursor", Duration::from_secs(20), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM event_sinks")
            .fetch_one(stack.pool())
            .await
            .unwrap();
        (n == 1).then_some(())
    })
    .await;
    for t in 0..4 {
        let tenant = format!("b{t}");
        for kind in [
            EventType::TenantRequested,
            EventType::TenantReady,
            EventType::TenantDeleted,
        ] {
            emit(stack.pool(), kind, &tenant).await;
        }
    }
    let mut tx = stack.pool().begin().await.unwrap();
    let failed = NewEvent::tenant(
        EventType::JobFailed,
        "b0",
        json!({ "workflow": "deprovision", "error": "DeleteDBInstance refused" }),
    );
    events::record(&mut tx, &[failed]).await.unwrap();
    tx.commit().await.unwrap();
    let want: Vec<(i64, String)> = sqlx::query_as("SELECT id, type FROM events ORDER BY id")
        .fetch_all(stack.pool())
        .await
        .unwrap();
    assert_eq!(want.len(), 13);

    let got = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::<String, Value>::new()));
    wait_for(
        "every event on the bus",
        Duration::from_secs(60),
        || async {
            let out = sqs(
            "ReceiveMessage",
            json!({ "QueueUrl": queue_url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 600 }),
        )
        .await;
            for m in out["Messages"].as_array().cloned().unwrap_or_default() {
                let entry: Value = serde_json::from_str(m["Body"].as_str().unwrap()).unwrap();
                got.lock()
                    .unwrap()
                    .insert(entry["detail"]["id"].as_str().unwrap().to_string(), entry);
            }
            (got.lock().unwrap().len() >= want.len()).then_some(())
        },
    )
    .await;
    let got = got.lock().unwrap().clone();
    let expected = |kind: &str| -> String {
        match kind {
            "tenantd.tenant.ready" => "provisionSuccess",
            "tenantd.tenant.deleted" => "deprovisionSuccess",
            "tenantd.job.failed" => "deprovisionFailure",
            other => other,
        }
        .to_string()
    };
    for (id, kind) in &want {
        let entry = &got[&id.to_string()];
        assert_eq!(entry["source"], "tenantd");
        assert_eq!(entry["detail-type"], expected(kind), "{entry}");
        assert_eq!(entry["detail"]["type"], kind.as_str());
        assert_eq!(entry["detail"]["specversion"], "1.0");
    }
    assert_eq!(
        got.len(),
        want.len(),
        "events that were not written: {got:?}"
    );
    let through: i64 = sqlx::query_scalar("SELECT delivered_through FROM event_sinks")
        .fetch_one(stack.pool())
        .await
        .unwrap();
    assert_eq!(through, want.last().unwrap().0);
}
