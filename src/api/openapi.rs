//! The OpenAPI 3.1 document of the API, served at `GET /openapi.json`: derived from the
//! handlers' annotations and the request and response types in [`crate::model`], with the
//! configured tier names filled in when served. A test holds it to the route table.

use axum::Json;
use axum::extract::State;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Object, RefOr, Schema};
use utoipa::{Modify, OpenApi};

use super::state::AppState;
use super::{jobs, ops, pool, rollouts, tenants};
use crate::config::Tiers;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tenantd",
        description = "One RDS PostgreSQL database per SaaS tenant. Every /v1 route needs \
            `Authorization: Bearer <token>`. Errors are `{\"error\": {\"code\", \"message\"}}` \
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
        tenants::change,
        tenants::suspend,
        tenants::attach,
        tenants::resume,
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
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "tenants", description = "A tenant's database: ask for it, look at it, take it away"),
        (name = "jobs", description = "The jobs that do the work, step by step"),
        (name = "rollouts", description = "Tenant schema versions brought to the whole fleet, canary first"),
        (name = "pool", description = "The warm pool of standby instances new tenants take over"),
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

/// The document, with `tiers` as the only tier names a request may name and `versions` (the
/// tenant migrations directory's) as the only versions a rollout may target.
pub fn document(tiers: &Tiers, versions: &[i64]) -> serde_json::Value {
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
    rollout_rules(&mut doc, tiers, versions);
    doc
}

/// What `POST /v1/rollouts` accepts beyond its types: the configured tiers as stages, the
/// directory's versions as targets, tenant ids as tenants.
fn rollout_rules(doc: &mut serde_json::Value, tiers: &Tiers, versions: &[i64]) {
    let Some(props) = doc
        .pointer_mut("/components/schemas/CreateRollout/properties")
        .and_then(|p| p.as_object_mut())
    else {
        return;
    };
    if let Some(stages) = props.get_mut("stages") {
        stages["minItems"] = 1.into();
        stages["uniqueItems"] = true.into();
        stages["items"] = serde_json::json!({ "type": "string", "enum": tiers.names() });
    }
    if let Some(tenants) = props.get_mut("tenants") {
        tenants["minItems"] = 1.into();
        tenants["maxItems"] = crate::rollouts::requests::MAX_TENANTS.into();
        tenants["items"] = serde_json::json!({
            "type": "string",
            "minLength": 3,
            "maxLength": 40,
            "pattern": crate::model::TENANT_ID_PATTERN,
        });
    }
    if let Some(target) = props.get_mut("target_version") {
        let mut allowed: Vec<serde_json::Value> = versions.iter().map(|v| (*v).into()).collect();
        allowed.push(serde_json::Value::Null);
        target["enum"] = allowed.into();
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
pub async fn serve(State(state): State<AppState>) -> Json<serde_json::Value> {
    // An unreadable directory is reported when a rollout is asked for; here it offers none.
    let versions: Vec<i64> = crate::tenant_db::catalog(&state.tenant_migrations)
        .await
        .map(|c| c.iter().map(|m| m.version).collect())
        .unwrap_or_default();
    Json(document(&state.tiers, &versions))
}
