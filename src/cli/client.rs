//! The HTTP client the command line uses: one method per API call, the API's error body turned
//! into a typed error, and the token sent only in the `Authorization` header.

use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::event_stream::EventStream;
use crate::tenant_id::{InvalidTenantId, TenantId};
use crate::wire::audit::AuditPage;
use crate::wire::error::ErrorBody;
use crate::wire::jobs::{JobDetail, JobPage, JobView};
use crate::wire::pool::PoolView;
use crate::wire::rollouts::{CreateRollout, RolloutPage, RolloutView};
use crate::wire::tenants::{
    Apply, ChangeTenant, Changed, CreateTenant, Page, Requested, TenantView, UpgradeTenant,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API refused the request; `code` is its stable error code.
    #[error("{code}: {message}")]
    Api {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("cannot reach the API at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("unexpected answer from the API ({status}): {detail}")]
    Unexpected { status: StatusCode, detail: String },
    #[error("{0}")]
    Usage(String),
    /// A tenant id the API would refuse, refused before asking it (the same code and message).
    #[error("invalid_tenant_id: {0}")]
    InvalidTenantId(#[from] InvalidTenantId),
}

pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
}

impl Client {
    pub fn new(base_url: &str, token: SecretString) -> Result<Self, ClientError> {
        let base = Url::parse(base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                ClientError::Usage(format!(
                    "--url / TENANTD_URL: expected an http(s) URL such as http://127.0.0.1:8080, got {base_url:?}"
                ))
            })?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("tenantd-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| ClientError::Usage(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client { http, base, token })
    }

    /// `base` with `segments` appended, each percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("an http(s) URL has a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
    ) -> Result<(StatusCode, T), ClientError> {
        let mut request = self
            .http
            .request(method, url.clone())
            .bearer_auth(self.token.expose_secret());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.to_string(),
            detail: e.without_url().to_string(),
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Unexpected {
                status,
                detail: e.without_url().to_string(),
            })?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(b) => ClientError::Api {
                    status,
                    code: b.error.code,
                    message: b.error.message,
                },
                Err(_) => ClientError::Unexpected {
                    status,
                    detail: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                },
            });
        }
        let value = serde_json::from_slice(&bytes).map_err(|e| ClientError::Unexpected {
            status,
            detail: e.to_string(),
        })?;
        Ok((status, value))
    }

    /// Asks for a tenant; `true` when a new job was enqueued (202), `false` on a replay (200).
    pub async fn create_tenant(
        &self,
        id: &TenantId,
        tier: &str,
    ) -> Result<(Requested, bool), ClientError> {
        let body = CreateTenant {
            id: id.to_string(),
            tier: tier.to_string(),
        };
        let url = self.url(&["v1", "tenants"]);
        let body = serde_json::to_value(&body).expect("a request body serializes");
        let (status, r) = self.call(Method::POST, url, Some(body)).await?;
        Ok((r, status == StatusCode::ACCEPTED))
    }

    /// Asks for a tenant to move to `tier`; `true` when a new job was enqueued (202).
    pub async fn change_tier(
        &self,
        id: &TenantId,
        tier: &str,
        apply: Apply,
    ) -> Result<(Changed, bool), ClientError> {
        let body = ChangeTenant {
            tier: tier.to_string(),
            apply: Some(apply),
        };
        let url = self.url(&["v1", "tenants", id.as_str()]);
        let body = serde_json::to_value(&body).expect("a request body serializes");
        let (status, r) = self.call(Method::PATCH, url, Some(body)).await?;
        Ok((r, status == StatusCode::ACCEPTED))
    }

    /// Asks for a tenant to move to PostgreSQL major `target_version`; `true` when a new job
    /// was enqueued (202).
    pub async fn upgrade(
        &self,
        id: &TenantId,
        target_version: &str,
        apply: Apply,
    ) -> Result<(Requested, bool), ClientError> {
        let body = UpgradeTenant {
            target_version: target_version.to_string(),
            apply: Some(apply),
        };
        let url = self.url(&["v1", "tenants", id.as_str(), "upgrade"]);
        let body = serde_json::to_value(&body).expect("a request body serializes");
        let (status, r) = self.call(Method::POST, url, Some(body)).await?;
        Ok((r, status == StatusCode::ACCEPTED))
    }

    /// Asks for a tenant to be suspended; `true` when a new job was enqueued.
    pub async fn suspend(&self, id: &TenantId) -> Result<(Requested, bool), ClientError> {
        self.power(id, "suspend").await
    }

    /// Asks for a tenant to be resumed; `true` when a new job was enqueued.
    pub async fn resume(&self, id: &TenantId) -> Result<(Requested, bool), ClientError> {
        self.power(id, "resume").await
    }

    /// `POST /v1/tenants/{id}/<action>`, `suspend` or `resume`.
    async fn power(&self, id: &TenantId, action: &str) -> Result<(Requested, bool), ClientError> {
        let url = self.url(&["v1", "tenants", id.as_str(), action]);
        let (status, r) = self.call(Method::POST, url, None).await?;
        Ok((r, status == StatusCode::ACCEPTED))
    }

    /// Asks for a detached tenant to be re-attached; `true` when a new job was enqueued.
    pub async fn attach(&self, id: &TenantId) -> Result<(Requested, bool), ClientError> {
        let url = self.url(&["v1", "tenants", id.as_str(), "attach"]);
        let (status, r) = self.call(Method::POST, url, None).await?;
        Ok((r, status == StatusCode::ACCEPTED))
    }

    pub async fn get_pool(&self) -> Result<PoolView, ClientError> {
        let url = self.url(&["v1", "pool"]);
        Ok(self.call(Method::GET, url, None).await?.1)
    }

    /// The stream of `id`'s events from now on; `None` when the API answers none (the caller
    /// polls).
    pub async fn tenant_events(&self, id: &TenantId) -> Option<EventStream> {
        let mut url = self.url(&["v1", "events"]);
        url.query_pairs_mut().append_pair("tenant", id.as_str());
        let request = self.http.get(url).bearer_auth(self.token.expose_secret());
        EventStream::open(request).await
    }

    pub async fn get_tenant(&self, id: &TenantId) -> Result<TenantView, ClientError> {
        let url = self.url(&["v1", "tenants", id.as_str()]);
        Ok(self.call(Method::GET, url, None).await?.1)
    }

    pub async fn list_tenants(
        &self,
        status: Option<&str>,
        schema_version_below: Option<i64>,
        engine_version: Option<&str>,
        ca_certificate: Option<&str>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page, ClientError> {
        let mut url = self.url(&["v1", "tenants"]);
        {
            let mut query = url.query_pairs_mut();
            if let Some(s) = status {
                query.append_pair("status", s);
            }
            if let Some(v) = schema_version_below {
                query.append_pair("schema_version_below", &v.to_string());
            }
            if let Some(v) = engine_version {
                query.append_pair("engine_version", v);
            }
            if let Some(ca) = ca_certificate {
                query.append_pair("ca_certificate", ca);
            }
            if let Some(l) = limit {
                query.append_pair("limit", &l.to_string());
            }
            if let Some(c) = cursor {
                query.append_pair("cursor", c);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        Ok(self.call(Method::GET, url, None).await?.1)
    }

    /// Asks for a tenant's database to go; `true` when a new job was enqueued.
    pub async fn delete_tenant(
        &self,
        id: &TenantId,
        final_snapshot: bool,
        force: bool,
    ) -> Result<(Requested, bool), ClientError> {
        let mut url = self.url(&["v1", "tenants", id.as_str()]);
        match (final_snapshot, force) {
            (true, _) => {}
            (false, false) => url.set_query(Some("final_snapshot=false")),
            (false, true) => url.set_query(Some("final_snapshot=false&force=true")),
        }
        let (status, r) = self.call(Method::DELETE, url, None).await?;
        Ok((r, status == StatusCode::ACCEPTED))
    }

    pub async fn list_jobs(
        &self,
        state: Option<&str>,
        kind: Option<&str>,
        tenant: Option<&str>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<JobPage, ClientError> {
        let mut url = self.url(&["v1", "jobs"]);
        {
            let mut query = url.query_pairs_mut();
            for (key, value) in [
                ("state", state),
                ("kind", kind),
                ("tenant", tenant),
                ("cursor", cursor),
            ] {
                if let Some(v) = value {
                    query.append_pair(key, v);
                }
            }
            if let Some(l) = limit {
                query.append_pair("limit", &l.to_string());
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        Ok(self.call(Method::GET, url, None).await?.1)
    }

    pub async fn cancel_job(&self, id: &str) -> Result<JobView, ClientError> {
        let url = self.url(&["v1", "jobs", id, "cancel"]);
        Ok(self.call(Method::POST, url, None).await?.1)
    }

    pub async fn retry_job(&self, id: &str) -> Result<Requested, ClientError> {
        let url = self.url(&["v1", "jobs", id, "retry"]);
        Ok(self.call(Method::POST, url, None).await?.1)
    }

    pub async fn get_job(&self, id: &str) -> Result<JobDetail, ClientError> {
        let url = self.url(&["v1", "jobs", id]);
        Ok(self.call(Method::GET, url, None).await?.1)
    }

    pub async fn create_rollout(&self, body: &CreateRollout) -> Result<RolloutView, ClientError> {
        let url = self.url(&["v1", "rollouts"]);
        let body = serde_json::to_value(body).expect("the request serializes");
        Ok(self.call(Method::POST, url, Some(body)).await?.1)
    }

    pub async fn get_rollout(&self, id: &str) -> Result<RolloutView, ClientError> {
        let url = self.url(&["v1", "rollouts", id]);
        Ok(self.call(Method::GET, url, None).await?.1)
    }

    pub async fn list_rollouts(
        &self,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<RolloutPage, ClientError> {
        let mut url = self.url(&["v1", "rollouts"]);
        {
            let mut query = url.query_pairs_mut();
            if let Some(l) = limit {
                query.append_pair("limit", &l.to_string());
            }
            if let Some(c) = cursor {
                query.append_pair("cursor", c);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        Ok(self.call(Method::GET, url, None).await?.1)
    }

    /// `pause`, `resume` or `cancel`.
    pub async fn steer_rollout(&self, id: &str, action: &str) -> Result<RolloutView, ClientError> {
        let url = self.url(&["v1", "rollouts", id, action]);
        Ok(self.call(Method::POST, url, None).await?.1)
    }

    /// A page of the audit trail, newest first: `filters` are (parameter, value) pairs.
    pub async fn list_audit(
        &self,
        filters: &[(&str, String)],
        limit: u32,
        cursor: Option<i64>,
    ) -> Result<AuditPage, ClientError> {
        let mut url = self.url(&["v1", "audit"]);
        {
            let mut query = url.query_pairs_mut();
            for (key, value) in filters {
                query.append_pair(key, value);
            }
            query.append_pair("limit", &limit.to_string());
            if let Some(c) = cursor {
                query.append_pair("cursor", &c.to_string());
            }
        }
        Ok(self.call(Method::GET, url, None).await?.1)
    }
}
