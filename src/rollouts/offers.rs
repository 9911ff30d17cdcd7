//! What RDS offers as a rollout's target: the engine versions (DescribeDBEngineVersions) and
//! the CAs (DescribeCertificates), asked when a rollout of those kinds is requested, so that a
//! fleet is never sent to a version or CA RDS would refuse for every tenant.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::Mutex;

use crate::cloud::Cloud;

/// How long what RDS offers is trusted for the API's document.
const OFFERED_FRESH: Duration = Duration::from_secs(300);

/// What RDS offers now, as targets: PostgreSQL majors and versions, unexpired CAs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offered {
    pub majors: Vec<String>,
    pub versions: Vec<String>,
    pub cas: Vec<String>,
}

/// Why a target could not be checked or is not offered.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    /// RDS does not offer it (the message names what it offers, when that helps).
    #[error("{0}")]
    NotOffered(String),
    /// RDS could not be asked.
    #[error("RDS could not be asked what it offers: {0}")]
    Unavailable(String),
}

/// Asks RDS what it offers. Without AWS clients (`none`: the API of a test without the local
/// stack) every target of an RDS kind is refused as unknown.
#[derive(Clone, Debug, Default)]
pub struct Offers {
    cloud: Option<Cloud>,
    /// [`Offers::offered`], when last asked.
    cache: Arc<Mutex<Option<(Instant, Offered)>>>,
}

impl Offers {
    pub fn new(cloud: Cloud) -> Self {
        Offers {
            cloud: Some(cloud),
            cache: Arc::default(),
        }
    }

    pub fn none() -> Self {
        Offers::default()
    }

    /// Every target RDS offers now (for the API's document: the values a rollout of each kind
    /// may name), asked at most every five minutes; nothing when RDS cannot be asked.
    pub async fn offered(&self) -> Offered {
        let mut cache = self.cache.lock().await;
        if let Some((at, offered)) = cache.as_ref()
            && at.elapsed() < OFFERED_FRESH
        {
            return offered.clone();
        }
        let Ok(cloud) = self.cloud() else {
            return Offered::default();
        };
        let (versions, cas) = match (
            cloud.postgres_versions().await,
            cloud.describe_certificates().await,
        ) {
            (Ok(v), Ok(c)) => (v, c),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "cannot ask RDS what it offers");
                return Offered::default();
            }
        };
        let available: Vec<_> = versions
            .iter()
            .filter(|v| v.status == "available")
            .collect();
        let mut majors: Vec<String> = available.iter().map(|v| v.major.clone()).collect();
        majors.sort_by_key(|m| m.parse::<u32>().unwrap_or(u32::MAX));
        majors.dedup();
        let now = Utc::now();
        let offered = Offered {
            majors,
            versions: available.iter().map(|v| v.version.clone()).collect(),
            cas: cas
                .into_iter()
                .filter(|c| c.valid_till.is_none_or(|t| t > now))
                .map(|c| c.identifier)
                .collect(),
        };
        *cache = Some((Instant::now(), offered.clone()));
        offered
    }

    fn cloud(&self) -> Result<&Cloud, OfferError> {
        self.cloud
            .as_ref()
            .ok_or_else(|| OfferError::Unavailable("this process has no AWS clients".into()))
    }

    /// `version` (a major such as `17`, or a full version such as `16.9`) is a PostgreSQL
    /// version RDS offers (`available`).
    pub async fn engine_version(&self, version: &str) -> Result<(), OfferError> {
        let offered = self
            .cloud()?
            .describe_db_engine_versions(version)
            .await
            .map_err(|e| OfferError::Unavailable(e.to_string()))?;
        let ok = offered
            .iter()
            .any(|v| v.status == "available" && (v.version == version || v.major == version));
        if ok {
            return Ok(());
        }
        Err(OfferError::NotOffered(format!(
            "RDS offers no PostgreSQL {version} (DescribeDBEngineVersions)"
        )))
    }

    /// `ca` is a CA RDS offers and not expired.
    pub async fn certificate(&self, ca: &str) -> Result<(), OfferError> {
        let listed = self
            .cloud()?
            .describe_certificates()
            .await
            .map_err(|e| OfferError::Unavailable(e.to_string()))?;
        let names: Vec<&str> = listed.iter().map(|c| c.identifier.as_str()).collect();
        match listed.iter().find(|c| c.identifier == ca) {
            None => Err(OfferError::NotOffered(format!(
                "RDS offers no CA {ca:?} (DescribeCertificates lists {})",
                names.join(", ")
            ))),
            Some(c) if c.valid_till.is_some_and(|t| t <= Utc::now()) => {
                Err(OfferError::NotOffered(format!(
                    "CA {ca} expired on {}",
                    c.valid_till
                        .map(|t| t.date_naive().to_string())
                        .unwrap_or_default()
                )))
            }
            Some(_) => Ok(()),
        }
    }
}
