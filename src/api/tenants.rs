//! `/v1/tenants`: ask for a tenant's database, look at tenants, and take a database away. Thin:
//! validation, idempotency and conflicts live in [`crate::tenants`]; this module maps them to
//! HTTP and shapes the answers.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use tracing::{Span, info};

use super::AppState;
use super::error::{ApiError, ApiJson, ApiQuery};
use super::jobs::JobView;
use crate::queue::{self, Job};
use crate::tenants::{self, DEPROVISION, PROVISION, Tenant, TenantError, TenantStatus};

/// `POST /v1/tenants` body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub id: String,
    pub tier: String,
}

/// `GET /v1/tenants` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub status: Option<TenantStatus>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// `DELETE /v1/tenants/{id}` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    pub final_snapshot: Option<bool>,
}

pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 1000;

#[derive(Debug, Serialize, Deserialize)]
pub struct Endpoint {
    pub host: String,
    pub port: i32,
}

/// A tenant as the API shows it, with its latest job. Never a password: the control database
/// holds none.
#[derive(Debug, Serialize, Deserialize)]
pub struct TenantView {
    pub id: String,
    pub tier: String,
    pub status: TenantStatus,
    pub db_instance_id: Option<String>,
    pub endpoint: Option<Endpoint>,
    pub secret_arn: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub job: Option<JobView>,
}

impl TenantView {
    fn new(t: Tenant, job: Option<&Job>) -> Self {
        let endpoint = match (t.endpoint_host, t.endpoint_port) {
            (Some(host), Some(port)) => Some(Endpoint { host, port }),
            _ => None,
        };
        TenantView {
            id: t.id,
            tier: t.tier,
            status: t.status,
            db_instance_id: t.db_instance_id,
            endpoint,
            secret_arn: t.secret_arn,
            error: t.error,
            created_at: t.created_at,
            updated_at: t.updated_at,
            job: job.map(JobView::from),
        }
    }
}

/// What a provisioning or deprovisioning request answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct Requested {
    pub tenant: TenantView,
    pub job: JobView,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Page {
    pub tenants: Vec<TenantView>,
    pub next_cursor: Option<String>,
}

fn requested(tenant: Tenant, job: Job, created: bool) -> (StatusCode, Json<Requested>) {
    let span = Span::current();
    span.record("job.id", tracing::field::display(job.id));
    info!(tenant.id = %tenant.id, job.id = %job.id, job.kind = %job.kind, created, "tenant request");
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let body = Requested {
        tenant: TenantView::new(tenant, Some(&job)),
        job: JobView::from(&job),
    };
    (status, Json(body))
}

/// Checks the id before it goes anywhere, logs included.
fn valid_id(id: &str) -> Result<(), ApiError> {
    tenants::validate_id(id)?;
    Span::current().record("tenant.id", id);
    Ok(())
}

/// `POST /v1/tenants`: 202 with a new provisioning job; 200 with the same job on a replay.
pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<Requested>), ApiError> {
    valid_id(&body.id)?;
    let request = tenants::request_provision(
        &state.db,
        &state.tiers,
        &body.id,
        &body.tier,
        state.max_attempts,
    )
    .await;
    match request {
        Ok((tenant, job, created)) => Ok(requested(tenant, job, created)),
        Err(e @ TenantError::Conflict { .. }) => {
            let other_tier = tenants::get(&state.db, &body.id)
                .await?
                .is_some_and(|t| t.tier != body.tier);
            Err(if other_tier {
                ApiError::TierConflict(e.to_string())
            } else {
                ApiError::Conflict(e.to_string())
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /v1/tenants/{id}`
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    valid_id(&id)?;
    let tenant = tenants::get(&state.db, &id)
        .await?
        .ok_or_else(|| ApiError::TenantNotFound(id.clone()))?;
    let job = latest_jobs(&state.db, std::slice::from_ref(&id))
        .await?
        .pop();
    Ok(Json(TenantView::new(tenant, job.as_ref())))
}

/// `GET /v1/tenants?status=&limit=&cursor=`: tenants in id order; `next_cursor` is null on the
/// last page.
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be from 1 to {MAX_PAGE}, got {limit}"
        )));
    }
    let (page, next_cursor) =
        tenants::list(&state.db, query.status, limit, query.cursor.as_deref()).await?;
    let ids: Vec<String> = page.iter().map(|t| t.id.clone()).collect();
    let mut jobs = latest_jobs(&state.db, &ids).await?;
    let tenants = page
        .into_iter()
        .map(|t| {
            let job = jobs
                .iter()
                .position(|j| j.tenant_id.as_deref() == Some(t.id.as_str()))
                .map(|i| jobs.swap_remove(i));
            TenantView::new(t, job.as_ref())
        })
        .collect();
    Ok(Json(Page {
        tenants,
        next_cursor,
    }))
}

/// `DELETE /v1/tenants/{id}?final_snapshot=false`: 202 with the deprovisioning job.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> Result<(StatusCode, Json<Requested>), ApiError> {
    valid_id(&id)?;
    let final_snapshot = query.final_snapshot.unwrap_or(true);
    match tenants::request_deprovision(&state.db, &id, final_snapshot, state.max_attempts).await {
        Ok((tenant, job, created)) => Ok(requested(tenant, job, created)),
        Err(e @ TenantError::Conflict { .. }) => {
            let provisioning = queue::active_job(&state.db, &id)
                .await?
                .is_some_and(|j| j.kind == PROVISION);
            Err(if provisioning {
                ApiError::ProvisioningInProgress(e.to_string())
            } else {
                ApiError::Conflict(e.to_string())
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The most recent provisioning or deprovisioning job of each tenant in `ids`.
async fn latest_jobs(executor: impl PgExecutor<'_>, ids: &[String]) -> Result<Vec<Job>, ApiError> {
    Ok(sqlx::query_as::<_, Job>(
        "SELECT DISTINCT ON (tenant_id) * FROM jobs
         WHERE tenant_id = ANY($1) AND kind IN ($2, $3)
         ORDER BY tenant_id, created_at DESC",
    )
    .bind(ids)
    .bind(PROVISION)
    .bind(DEPROVISION)
    .fetch_all(executor)
    .await?)
}
