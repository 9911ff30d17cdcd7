//! The HTTP client deliveries go through: reqwest (already the CLI's client) with a connect
//! timeout and a total timeout on every delivery, no redirects followed, no proxy from the
//! environment, a read limit on the receiver's answer, and a resolver that drops loopback,
//! private and link-local addresses unless `TENANTD_WEBHOOK_ALLOW_PRIVATE` is set.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::urls;
use crate::config::WebhookSettings;
use crate::store::webhooks::deliveries::Attempt;

/// The most of a receiver's answer that is read (the rest is dropped with the connection).
pub const ANSWER_LIMIT: usize = 64 * 1024;

/// Resolves names to their public addresses only.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| urls::is_public(a.ip()))
                .collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address (loopback, private and link-local \
                     ones are refused)"
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// One process's delivery client.
#[derive(Clone)]
pub struct Deliverer {
    http: reqwest::Client,
    allow_private: bool,
}

impl Deliverer {
    pub fn new(settings: &WebhookSettings) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("tenantd-webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(30));
        if !settings.allow_private {
            builder = builder.dns_resolver(std::sync::Arc::new(PublicOnly));
        }
        Ok(Deliverer {
            http: builder.build()?,
            allow_private: settings.allow_private,
        })
    }

    /// POSTs `body` (JSON) with `headers`; a 2xx answer is a success, anything else (another
    /// status, a redirect, a timeout, a refused address) a failure to retry.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Attempt {
        let started = Instant::now();
        if let Err(e) = urls::check_form(url, self.allow_private) {
            return Attempt {
                status: None,
                error: Some(e.to_string()),
                took: started.elapsed(),
            };
        }
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        match request.send().await {
            Ok(mut response) => {
                let status = response.status().as_u16();
                // Read at most ANSWER_LIMIT of the answer, then let the connection go.
                let mut read = 0usize;
                let mut error = None;
                while read < ANSWER_LIMIT {
                    match response.chunk().await {
                        Ok(Some(chunk)) => read += chunk.len(),
                        Ok(None) => break,
                        Err(e) => {
                            error = Some(describe(&e));
                            break;
                        }
                    }
                }
                let error = error.or_else(|| {
                    (!(200..300).contains(&status)).then(|| format!("answered HTTP {status}"))
                });
                Attempt {
                    status: Some(status),
                    error,
                    took: started.elapsed(),
                }
            }
            Err(e) => Attempt {
                status: None,
                error: Some(describe(&e)),
                took: started.elapsed(),
            },
        }
    }
}

/// A failure in a few words, without the URL's query (which may carry a receiver's token).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}
