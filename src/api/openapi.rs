//! The OpenAPI 3.1 document of the API, served at `GET /openapi.json`: derived from the
//! handlers' annotations and the request and response types in [`crate::wire`], with the
//! configured tier names filled in when served, and each operation's role (its security
//! requirement, `x-tenantd-role`, its description) and the refusals every guarded route may
//! answer taken from the route table. A test holds it to the table.

use axum::extract::State;
use serde_json::{Value, json};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Object, RefOr, Schema};
use utoipa::{Modify, OpenApi};

use super::access::Route;
use super::state::AppState;
use super::{audit, events, jobs, ops, pool, reports, rollouts, tenant_actions, tenants, upgrades};
use crate::config::Tiers;
use crate::rollouts::offers::Offered;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tenantd",
        description = "One RDS PostgreSQL database per SaaS tenant. Every /v1 route needs \
            `Authorization: Bearer <token>` (or `<name>:<token>`) of a token whose role allows \
            it: `viewer` reads, `operator` changes, `admin` deprovisions without a final \
            snapshot and reads the audit trail; each operation states its role (its security \
            requirement and `x-tenantd-role`). A token of a lesser role gets 403 `forbidden`; \
            an address that failed to authenticate too often gets 429 `too_many_failures` \
            with `Retry-After`. Every answer carries an `X-Request-Id`. Errors are `{\"error\": {\"code\", \"message\"}}` \
            with a stable snake_case code. A method a path does not serve is answered 405 \
            `method_not_allowed` with an `Allow` header, a path the API does not have 404 \
            `not_found`. A deleted tenant stays readable: `GET /v1/tenants/{id}` answers 200 \
            with `status: \"deleted\"` (not 404), and deleting it again answers 200 with the \
            job that deleted it."
    ),
    paths(
        ops::healthz,
        ops::readyz,
        ops::metrics,
        serve,
        tenants::create,
        tenants::list,
        tenants::get,
        tenants::delete,
        tenant_actions::change,
        tenant_actions::suspend,
        tenant_actions::attach,
        tenant_actions::resume,
        upgrades::upgrade,
        jobs::list,
        jobs::retry,
        jobs::get,
        jobs::cancel,
        rollouts::create,
        rollouts::list,
        rollouts::get,
        rollouts::pause,
        rollouts::resume,
        rollouts::cancel,
        pool::get,
        reports::engines,
        audit::list,
        events::list,
    ),
    components(schemas(
        crate::wire::events::CloudEvent,
        crate::wire::events::TenantEventData,
        crate::wire::events::JobFailedData,
        crate::wire::events::RolloutEventData,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "tenants", description = "A tenant's database: ask for it, look at it, take it away"),
        (name = "jobs", description = "The jobs that do the work, step by step"),
        (name = "rollouts", description = "The whole fleet brought to a tenant schema version, an engine version, a CA or RDS's pending maintenance, canary first"),
        (name = "reports", description = "The fleet's engine majors and CAs, and who is past end of support"),
        (name = "pool", description = "The warm pool of standby instances new tenants take over"),
        (name = "audit", description = "Who asked for what, from where, and how it ended"),
        (name = "events", description = "Lifecycle events (CloudEvents 1.0), in commit order: \
            a page for pollers or a Server-Sent Events stream"),
        (name = "operations", description = "Liveness, readiness, metrics and this document"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document, with `tiers` as the only tier names a request may name, `versions` (the
/// tenant migrations directory's) as the only versions a schema rollout may target, what RDS
/// `offered` as the other kinds' targets, and the roles of `routes`.
pub fn document(
    tiers: &Tiers,
    versions: &[i64],
    offered: &Offered,
    routes: &[Route],
) -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    for body in ["CreateTenant", "ChangeTenant"] {
        if let Some(components) = doc.components.as_mut()
            && let Some(RefOr::T(Schema::Object(schema))) = components.schemas.get_mut(body)
            && let Some(RefOr::T(Schema::Object(tier))) = schema.properties.get_mut("tier")
        {
            let names: Vec<serde_json::Value> = tiers.names().into_iter().map(Into::into).collect();
            let mut with_enum: Object = tier.clone();
            with_enum.enum_values = Some(names);
            *tier = with_enum;
        }
    }
    let mut doc = serde_json::to_value(doc).expect("the OpenAPI document serializes");
    camel_case_links(&mut doc);
    rollout_rules(&mut doc, tiers, versions, offered);
    roles(&mut doc, routes);
    doc
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/ErrorBody" } } }
    })
}

/// Each operation's role from the route table, and the refusals its guard and the server's
/// limits may answer.
fn roles(doc: &mut Value, routes: &[Route]) {
    let retry_after = json!({ "Retry-After": {
        "description": "Seconds to wait before trying again", "schema": { "type": "integer" } } });
    for route in routes {
        let method = route.method.as_str().to_ascii_lowercase();
        let Some(op) = doc
            .pointer_mut(&format!(
                "/paths/{}/{method}",
                route.path.replace('/', "~1")
            ))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let responses = op
            .entry("responses")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("responses is an object");
        let mut busy = error_response(
            "`overloaded` (too many requests of this kind at once) or `request_timeout` (the \
             request took longer than the server allows; nothing it started was kept)",
        );
        busy["headers"] = retry_after.clone();
        responses.entry("503").or_insert(busy);
        let Some(role) = route.role else {
            continue;
        };
        responses.entry("403").or_insert_with(|| {
            error_response(
                "`forbidden`: the token's role does not allow this request (the message names \
                 the role it needs)",
            )
        });
        let mut limited = error_response(
            "`too_many_failures`: this address failed to authenticate too often; wait as \
             `Retry-After` says (a valid token is never refused this way)",
        );
        limited["headers"] = retry_after.clone();
        responses.entry("429").or_insert(limited);
        op.insert("security".into(), json!([{ "bearer": [role.as_str()] }]));
        op.insert("x-tenantd-role".into(), role.as_str().into());
        if let Some(when) = route.admin_when {
            op.insert("x-tenantd-admin-when".into(), when.describe().into());
        }
        let stated = format!("**Role: {}.**", route.describe_role());
        let description = match op.get("description").and_then(Value::as_str) {
            Some(d) => format!("{stated}\n\n{d}"),
            None => stated,
        };
        op.insert("description".into(), description.into());
    }
}

/// What `POST /v1/rollouts` accepts beyond its types: the configured tiers as stages, tenant
/// ids as tenants, and per kind (one variant each) the targets and `apply` values it takes: the
/// directory's versions for a schema rollout, what RDS offers now for the engine and CA kinds
/// (a kind RDS offers nothing for, or could not be asked about, has no variant), the
/// maintenance actions.
fn rollout_rules(doc: &mut Value, tiers: &Tiers, versions: &[i64], offered: &Offered) {
    let Some(schema) = doc.pointer_mut("/components/schemas/CreateRollout") else {
        return;
    };
    if let Some(props) = schema["properties"].as_object_mut() {
        if let Some(stages) = props.get_mut("stages") {
            stages["minItems"] = 1.into();
            stages["uniqueItems"] = true.into();
            stages["items"] = json!({ "type": "string", "enum": tiers.names() });
        }
        if let Some(tenants) = props.get_mut("tenants") {
            tenants["minItems"] = 1.into();
            tenants["maxItems"] = crate::rollouts::requests::MAX_TENANTS.into();
            tenants["items"] = json!({
                "type": "string",
                "minLength": 3,
                "maxLength": 40,
                "pattern": crate::wire::tenants::TENANT_ID_PATTERN,
            });
        }
    }
    let base = schema.clone();
    let variant = |kind: Option<&str>, target: Value, apply: Value| {
        let mut v = base.clone();
        v.as_object_mut().map(|o| o.remove("description"));
        if let Some(props) = v["properties"].as_object_mut() {
            for (name, mut rule) in [
                (
                    "kind",
                    match kind {
                        None => json!({ "enum": ["schema", null] }),
                        Some(k) => json!({ "type": "string", "const": k }),
                    },
                ),
                ("target_version", target),
                ("apply", apply),
            ] {
                if let Some(d) = props.get(name).and_then(|p| p.get("description")) {
                    rule["description"] = d.clone();
                }
                props.insert(name.to_string(), rule);
            }
        }
        if kind.is_some() {
            v["required"] = json!(["kind", "target_version"]);
        }
        v
    };
    let strings = |values: Vec<&str>| json!({ "type": "string", "enum": values });
    let window = json!({ "enum": ["immediately", "maintenance_window", null] });
    let minors: Vec<&str> = offered
        .versions
        .iter()
        .map(String::as_str)
        .filter(|v| v.split('.').count() == 2)
        .collect();
    let mut variants = vec![variant(
        None,
        json!({ "anyOf": [{ "type": "integer", "enum": versions }, { "type": "null" }] }),
        json!({ "type": "null" }),
    )];
    for (kind, targets) in [
        (
            "engine_major",
            offered.majors.iter().map(String::as_str).collect(),
        ),
        ("engine_minor", minors),
        (
            "ca_certificate",
            offered.cas.iter().map(String::as_str).collect(),
        ),
    ] {
        if !targets.is_empty() {
            variants.push(variant(Some(kind), strings(targets), window.clone()));
        }
    }
    variants.push(variant(
        Some("maintenance"),
        strings(crate::rollouts::requests::MAINTENANCE_ACTIONS.to_vec()),
        json!({ "enum": ["immediate", "next-maintenance", null] }),
    ));
    let description = base.get("description").cloned();
    *schema = json!({ "anyOf": variants });
    if let Some(d) = description {
        schema["description"] = d;
    }
}

/// utoipa 5 writes the fields of a Link Object in snake case (`operation_id`); OpenAPI names
/// them `operationId`, `operationRef` and `requestBody`, and clients ignore the others.
fn camel_case_links(doc: &mut serde_json::Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    let links = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links")?.as_object_mut())
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        for (snake, camel) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(value) = link.remove(snake) {
                link.insert(camel.to_string(), value);
            }
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "OpenAPI document", body = serde_json::Value)))]
pub async fn serve(State(state): State<AppState>, routes: &[Route]) -> serde_json::Value {
    // An unreadable directory is reported when a rollout is asked for; here it offers none.
    let versions: Vec<i64> = crate::tenant_db::catalog(&state.tenant_migrations)
        .await
        .map(|c| c.iter().map(|m| m.version).collect())
        .unwrap_or_default();
    let offered = state.offers.offered().await;
    document(&state.tiers, &versions, &offered, routes)
}
