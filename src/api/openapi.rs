//! The OpenAPI 3 document of the API, served at `GET /openapi.json`. Written by hand; a test
//! holds it to the route table the router is built from.

use axum::Json;
use serde_json::{Value, json};

pub async fn serve() -> Json<Value> {
    Json(document())
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn body(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

fn path_param(name: &str, description: &str, format: Option<&str>) -> Value {
    let mut schema = json!({ "type": "string" });
    if let Some(f) = format {
        schema["format"] = json!(f);
    }
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

pub fn document() -> Value {
    let tenant_id = path_param("id", "Tenant id", None);
    let job_id = path_param("id", "Job id", Some("uuid"));
    let unauthorized = error("No or wrong bearer token (`unauthorized`)");
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "tenantd",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "One RDS PostgreSQL database per SaaS tenant. Every /v1 route needs `Authorization: Bearer <token>`. Errors are `{\"error\": {\"code\", \"message\"}}` with a stable snake_case code."
        },
        "security": [],
        "paths": {
            "/healthz": { "get": {
                "operationId": "healthz", "summary": "The process is alive",
                "responses": { "200": { "description": "ok", "content": { "text/plain": { "schema": { "type": "string" } } } } }
            }},
            "/readyz": { "get": {
                "operationId": "readyz", "summary": "The control database answers",
                "responses": {
                    "200": { "description": "ready", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "503": { "description": "control database unreachable", "content": { "application/json": { "schema": { "type": "object" } } } }
                }
            }},
            "/metrics": { "get": {
                "operationId": "metrics", "summary": "Prometheus metrics (text exposition format)",
                "responses": { "200": { "description": "metrics", "content": { "text/plain": { "schema": { "type": "string" } } } } }
            }},
            "/openapi.json": { "get": {
                "operationId": "openapi", "summary": "This document",
                "responses": { "200": { "description": "OpenAPI 3 document", "content": { "application/json": { "schema": { "type": "object" } } } } }
            }},
            "/v1/tenants": {
                "post": {
                    "operationId": "createTenant", "summary": "Provision a tenant's database",
                    "security": [{ "bearer": [] }],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/CreateTenant" } } } },
                    "responses": {
                        "202": body("Provisioning job enqueued", "Requested"),
                        "200": body("Replay: the existing tenant and job; nothing enqueued", "Requested"),
                        "400": error("`malformed_json`"),
                        "401": unauthorized,
                        "409": error("`tier_conflict` or `conflict`"),
                        "413": error("`body_too_large` (over 16 KiB)"),
                        "415": error("`unsupported_media_type`"),
                        "422": error("`invalid_body`, `invalid_tenant_id` or `unknown_tier`")
                    }
                },
                "get": {
                    "operationId": "listTenants", "summary": "A page of tenants in id order",
                    "security": [{ "bearer": [] }],
                    "parameters": [
                        query_param("status", "Only tenants in this status", json!({ "$ref": "#/components/schemas/TenantStatus" })),
                        query_param("limit", "Page size (default 50)", json!({ "type": "integer", "minimum": 1, "maximum": 1000 })),
                        query_param("cursor", "`next_cursor` of the previous page", json!({ "type": "string" }))
                    ],
                    "responses": {
                        "200": body("A page", "Page"),
                        "400": error("`invalid_query`"),
                        "401": unauthorized
                    }
                }
            },
            "/v1/tenants/{id}": {
                "get": {
                    "operationId": "getTenant", "summary": "A tenant with its latest job",
                    "security": [{ "bearer": [] }],
                    "parameters": [tenant_id],
                    "responses": {
                        "200": body("The tenant", "Tenant"),
                        "401": unauthorized,
                        "404": error("`tenant_not_found`"),
                        "422": error("`invalid_tenant_id`")
                    }
                },
                "delete": {
                    "operationId": "deleteTenant", "summary": "Deprovision a tenant's database",
                    "security": [{ "bearer": [] }],
                    "parameters": [
                        tenant_id,
                        query_param("final_snapshot", "Take a final snapshot first (default true)", json!({ "type": "boolean" }))
                    ],
                    "responses": {
                        "202": body("Deprovisioning job enqueued", "Requested"),
                        "200": body("Replay: the existing deprovisioning job", "Requested"),
                        "400": error("`invalid_query`"),
                        "401": unauthorized,
                        "404": error("`tenant_not_found`"),
                        "409": error("`provisioning_in_progress` or `conflict`"),
                        "422": error("`invalid_tenant_id`")
                    }
                }
            },
            "/v1/jobs/{id}": { "get": {
                "operationId": "getJob", "summary": "A job with its step history",
                "security": [{ "bearer": [] }],
                "parameters": [job_id],
                "responses": {
                    "200": body("The job", "JobDetail"),
                    "401": unauthorized,
                    "404": error("`job_not_found`")
                }
            }},
            "/v1/jobs/{id}/cancel": { "post": {
                "operationId": "cancelJob", "summary": "Cancel a queued or waiting job; a cancelled provisioning rolls back",
                "security": [{ "bearer": [] }],
                "parameters": [job_id],
                "responses": {
                    "202": body("Cancel requested", "Job"),
                    "401": unauthorized,
                    "404": error("`job_not_found`"),
                    "409": error("`job_not_cancellable`")
                }
            }}
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas()
        }
    })
}

fn schemas() -> Value {
    let time = json!({ "type": "string", "format": "date-time" });
    let nullable_string = json!({ "type": "string", "nullable": true });
    json!({
        "Error": {
            "type": "object", "required": ["error"],
            "properties": { "error": {
                "type": "object", "required": ["code", "message"],
                "properties": { "code": { "type": "string" }, "message": { "type": "string" } }
            }}
        },
        "CreateTenant": {
            "type": "object", "required": ["id", "tier"], "additionalProperties": false,
            "properties": {
                "id": { "type": "string", "minLength": 3, "maxLength": 40, "pattern": "^[a-z](-?[a-z0-9])*$" },
                "tier": { "type": "string" }
            }
        },
        "TenantStatus": { "type": "string", "enum": ["provisioning", "ready", "failed", "deprovisioning", "deleted"] },
        "JobState": { "type": "string", "enum": ["queued", "running", "waiting", "succeeded", "failed", "cancelled"] },
        "Job": {
            "type": "object",
            "required": ["id", "kind", "state", "step", "attempt", "max_attempts", "cancel_requested", "created_at", "updated_at"],
            "properties": {
                "id": { "type": "string", "format": "uuid" },
                "kind": { "type": "string", "enum": ["provision", "deprovision", "demo"] },
                "tenant_id": nullable_string,
                "state": { "$ref": "#/components/schemas/JobState" },
                "step": { "type": "string" },
                "attempt": { "type": "integer" },
                "max_attempts": { "type": "integer" },
                "cancel_requested": { "type": "boolean" },
                "error": nullable_string,
                "created_at": time, "updated_at": time,
                "finished_at": { "type": "string", "format": "date-time", "nullable": true }
            }
        },
        "Step": {
            "type": "object", "required": ["step", "attempt", "outcome", "finished_at"],
            "properties": {
                "step": { "type": "string" },
                "attempt": { "type": "integer" },
                "outcome": { "type": "string" },
                "started_at": { "type": "string", "format": "date-time", "nullable": true },
                "finished_at": time,
                "error": nullable_string,
                "worker": nullable_string
            }
        },
        "JobDetail": {
            "allOf": [
                { "$ref": "#/components/schemas/Job" },
                { "type": "object", "required": ["history"], "properties": {
                    "history": { "type": "array", "items": { "$ref": "#/components/schemas/Step" } } } }
            ]
        },
        "Tenant": {
            "type": "object", "required": ["id", "tier", "status", "created_at", "updated_at"],
            "properties": {
                "id": { "type": "string" },
                "tier": { "type": "string" },
                "status": { "$ref": "#/components/schemas/TenantStatus" },
                "db_instance_id": nullable_string,
                "endpoint": {
                    "type": "object", "nullable": true, "required": ["host", "port"],
                    "properties": { "host": { "type": "string" }, "port": { "type": "integer" } }
                },
                "secret_arn": nullable_string,
                "error": nullable_string,
                "created_at": time, "updated_at": time,
                "job": { "allOf": [{ "$ref": "#/components/schemas/Job" }], "nullable": true }
            }
        },
        "Requested": {
            "type": "object", "required": ["tenant", "job"],
            "properties": {
                "tenant": { "$ref": "#/components/schemas/Tenant" },
                "job": { "$ref": "#/components/schemas/Job" }
            }
        },
        "Page": {
            "type": "object", "required": ["tenants"],
            "properties": {
                "tenants": { "type": "array", "items": { "$ref": "#/components/schemas/Tenant" } },
                "next_cursor": nullable_string
            }
        }
    })
}
