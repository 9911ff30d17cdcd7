//! What RDS offers as a rollout's target: the engine versions (DescribeDBEngineVersions) and
//! the CAs (DescribeCertificates), asked when a rollout of those kinds is requested, so that a
//! fleet is never sent to a version or CA RDS would refuse for every tenant.

use chrono::Utc;

use crate::cloud::Cloud;

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
}

impl Offers {
    pub fn new(cloud: Cloud) -> Self {
        Offers { cloud: Some(cloud) }
    }

    pub fn none() -> Self {
        Offers { cloud: None }
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
