//! What the API shows of itself: the OpenAPI document matches the routes the router serves, and
//! `/metrics` reflects the work that just ran.

use crate::support;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use support::app::{code, spawn_app, status_and_json};
use support::{wait_for, worker_settings};
use tenantd::queue::{self, JobState, NewJob};
use tenantd::workflow::Registry;

#[tokio::test]
async fn the_openapi_document_parses_and_lists_exactly_the_routes_the_router_serves() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(format!("{}/openapi.json", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.unwrap();
    let version = doc["openapi"].as_str().expect("an OpenAPI version");
    assert!(version.starts_with("3."), "{version}");

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            documented.insert((method.to_uppercase(), path.clone()));
            let responses = op["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path} lists no response");
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(
                secured,
                path.starts_with("/v1/"),
                "{method} {path} security"
            );
            if secured {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path} does not document its 401"
                );
            }
        }
    }
    let routes = tenantd::api::routes();
    let served: BTreeSet<_> = routes
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(documented, served);

    // The rules the server enforces are in the document: the tenant id's length and pattern
    // (in bodies and paths), the configured tiers, the page size.
    let create = &doc["components"]["schemas"]["CreateTenant"]["properties"];
    assert_eq!(
        create["id"]["pattern"],
        tenantd::wire::tenants::TENANT_ID_PATTERN
    );
    assert_eq!(
        (
            create["id"]["minLength"].as_u64(),
            create["id"]["maxLength"].as_u64()
        ),
        (Some(3), Some(40))
    );
    assert_eq!(
        create["tier"]["enum"],
        json!(["enterprise", "pro", "starter"])
    );
    let get_tenant = &doc["paths"]["/v1/tenants/{id}"]["get"]["parameters"][0];
    assert_eq!(
        get_tenant["schema"]["pattern"],
        tenantd::wire::tenants::TENANT_ID_PATTERN
    );
    let limit = doc["paths"]["/v1/tenants"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .expect("the limit parameter");
    assert_eq!(
        (
            limit["schema"]["minimum"].as_u64(),
            limit["schema"]["maximum"].as_u64()
        ),
        (Some(1), Some(1000))
    );

    // The list's cursor is a tenant id (the last of the previous page), and the server
    // refuses any other.
    let cursor = doc["paths"]["/v1/tenants"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "cursor")
        .expect("the cursor parameter");
    assert_eq!(
        cursor["schema"]["pattern"],
        tenantd::wire::tenants::TENANT_ID_PATTERN
    );
    let (_, err) = app.get("/v1/tenants?cursor=").await;
    assert_eq!(code(&err), "invalid_query");

    // Every operation has an id of its own, and every link names one of them with the
    // parameters it takes, in OpenAPI's spelling (`operationId`), so a client can follow it.
    let mut operations = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().expect("an operationId");
            let previous = operations.insert(id.to_string(), op.clone());
            assert!(
                previous.is_none(),
                "operationId {id} is not unique ({method} {path})"
            );
        }
    }
    let mut links = 0;
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            for response in op["responses"].as_object().unwrap().values() {
                let Some(named) = response["links"].as_object() else {
                    continue;
                };
                for (name, link) in named {
                    links += 1;
                    let target = link["operationId"]
                        .as_str()
                        .unwrap_or_else(|| panic!("link {name} has no operationId: {link}"));
                    let target = operations
                        .get(target)
                        .unwrap_or_else(|| panic!("link {name} names no operation: {link}"));
                    for param in link["parameters"].as_object().unwrap().keys() {
                        assert!(
                            target["parameters"]
                                .as_array()
                                .is_some_and(|ps| ps.iter().any(|p| p["name"] == *param)),
                            "link {name} passes {param}, which its operation does not take"
                        );
                    }
                }
            }
        }
    }
    assert!(links >= 4, "the create's links to its tenant and job");

    // Where the API deliberately differs from what a generic client assumes, the document
    // says so: a deleted tenant stays readable (200, `status: "deleted"`), a DELETE replay
    // answers 200.
    for id in ["get_tenant", "delete_tenant"] {
        let description = operations[id]["description"].as_str().unwrap_or_default();
        assert!(
            description.contains(r#"`status: "deleted"`"#) && description.contains("not 404"),
            "{id}: {description}"
        );
    }
    assert!(operations["delete_tenant"]["responses"]["200"].is_object());

    // Every path with an id documents its 400 (`invalid_path`: not UTF-8 once decoded).
    for id in ["get_tenant", "delete_tenant", "get_job", "cancel_job"] {
        assert!(
            operations[id]["responses"]["400"].is_object(),
            "{id} does not document its 400"
        );
    }

    // And the router really answers each of them (not with its own 404 or 405).
    for route in routes {
        let path = route
            .path
            .replace("{id}", "00000000-0000-0000-0000-000000000000");
        let response = app
            .request(route.method.clone(), &path)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(response).await;
        assert!(
            status != 405 && code(&body) != "not_found",
            "{} {} is not served: {status} {body}",
            route.method,
            route.path
        );
    }
}

/// The value of the sample of `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn scrape(app: &support::app::TestApp) -> String {
    let response = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_reflect_the_jobs_and_steps_that_just_ran() {
    let app = spawn_app().await;
    let before = scrape(&app).await;
    let outcome = ["kind=\"demo\"", "step=\"wait\"", "outcome=\"succeeded\""];
    let succeeded_before = sample(&before, "tenantd_step_outcomes_total", &outcome).unwrap_or(0.0);
    let durations_before = sample(
        &before,
        "tenantd_step_duration_seconds_count",
        &["kind=\"demo\"", "step=\"start\""],
    )
    .unwrap_or(0.0);

    let mut conn = app.db.pool.acquire().await.unwrap();
    let job = queue::enqueue(
        &mut conn,
        NewJob::new("demo", "start", 3).args(json!({ "wait_ms": 50 })),
    )
    .await
    .unwrap()
    .into_job();
    let waiting = queue::enqueue(
        &mut conn,
        NewJob::new("demo", "start", 3).args(json!({ "wait_ms": 60_000 })),
    )
    .await
    .unwrap()
    .into_job();
    drop(conn);

    // Not the maintenance leader (no maintenance runs yet): no fleet-wide gauges here, so
    // that summing them over replicas counts them once.
    let follower = scrape(&app).await;
    assert_eq!(
        sample(&follower, "tenantd_queue_depth", &[]),
        None,
        "{follower}"
    );
    assert_eq!(sample(&follower, "tenantd_jobs", &[]), None);

    let (stop, worker) = support::spawn_worker(
        &app.db.pool,
        Registry::new().register(support::demo::Demo),
        worker_settings("metrics"),
    );
    wait_for(
        "this process to lead maintenance",
        Duration::from_secs(10),
        || async {
            let text = scrape(&app).await;
            (sample(&text, "tenantd_maintenance_leader", &[]) == Some(1.0)).then_some(())
        },
    )
    .await;
    wait_for(
        "the demo job to succeed",
        Duration::from_secs(30),
        || async {
            let state = queue::get_job(&app.db.pool, job.id).await.unwrap()?.state;
            (state == JobState::Succeeded).then_some(())
        },
    )
    .await;
    wait_for(
        "the long wait to start",
        Duration::from_secs(30),
        || async {
            let state = queue::get_job(&app.db.pool, waiting.id)
                .await
                .unwrap()?
                .state;
            (state == JobState::Waiting).then_some(())
        },
    )
    .await;
    // The fleet's gauges are read at most once per interval (a second here): the scrape that
    // follows the jobs' ends may show the figures read just before.
    let after = wait_for(
        "the fleet gauges to show both jobs",
        Duration::from_secs(5),
        || async {
            let text = scrape(&app).await;
            let seen = |state: &str| {
                sample(
                    &text,
                    "tenantd_jobs",
                    &["kind=\"demo\"", &format!("state=\"{state}\"")],
                )
            };
            (seen("succeeded").is_some() && seen("waiting").is_some()).then_some(text)
        },
    )
    .await;
    let succeeded = sample(&after, "tenantd_step_outcomes_total", &outcome).unwrap();
    assert!(succeeded > succeeded_before, "{after}");
    let durations = sample(
        &after,
        "tenantd_step_duration_seconds_count",
        &["kind=\"demo\"", "step=\"start\""],
    )
    .unwrap();
    assert!(durations >= durations_before + 2.0, "{after}");
    assert_eq!(
        sample(
            &after,
            "tenantd_jobs",
            &["kind=\"demo\"", "state=\"succeeded\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &after,
            "tenantd_jobs",
            &["kind=\"demo\"", "state=\"waiting\""]
        ),
        Some(1.0)
    );
    // The waiting job is not due for a minute: nothing is runnable.
    assert_eq!(sample(&after, "tenantd_queue_depth", &[]), Some(0.0));
    assert_eq!(
        sample(&after, "tenantd_queue_oldest_waiting_seconds", &[]),
        Some(0.0)
    );

    // A queued job is due at once: depth and age move.
    app.create("acme", "pro").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let text = scrape(&app).await;
    assert_eq!(sample(&text, "tenantd_queue_depth", &[]), Some(1.0));
    assert!(sample(&text, "tenantd_queue_oldest_waiting_seconds", &[]).unwrap() >= 1.0);
    let r = app.request(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(r.status(), 200, "a token does not hurt");
    stop.cancel();
    worker.await.unwrap();
}
