//! A tenant's id, validated once where it comes in (the API's path and body, the console's
//! forms, the command line) and carried from there as a [`TenantId`] to the requests and, through
//! the job's row, to the steps: `<prefix><id>` must be a valid RDS identifier, and the id a DNS
//! label. The one statement of that rule.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A valid tenant id: 3 to 40 lowercase letters, digits and single hyphens, a letter first, no
/// hyphen last.
///
/// In the control database it is text (`sqlx(transparent)`): what a row holds was checked when it
/// was written, so reading it back does not check it again.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, sqlx::Type,
)]
#[serde(try_from = "String", into = "String")]
#[sqlx(transparent)]
pub struct TenantId(String);

/// Text that is not a tenant id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid tenant id {0:?}: expected 3 to 40 lowercase letters, digits and single hyphens, a letter first, no hyphen last"
)]
pub struct InvalidTenantId(pub String);

impl TenantId {
    /// Checks `id` against the rule.
    pub fn parse(id: &str) -> Result<Self, InvalidTenantId> {
        let bytes = id.as_bytes();
        let ok = (3..=40).contains(&id.len())
            && bytes[0].is_ascii_lowercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && !id.contains("--")
            && !id.ends_with('-');
        if ok {
            Ok(TenantId(id.to_string()))
        } else {
            Err(InvalidTenantId(id.to_string()))
        }
    }

    /// An id as the control database recorded it: checked when the request that wrote it came
    /// in (tenants of earlier releases were checked by the rules of their day).
    pub fn recorded(id: impl Into<String>) -> Self {
        TenantId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for TenantId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TenantId {
    type Err = InvalidTenantId;

    fn from_str(s: &str) -> Result<Self, InvalidTenantId> {
        TenantId::parse(s)
    }
}

impl TryFrom<String> for TenantId {
    type Error = InvalidTenantId;

    fn try_from(s: String) -> Result<Self, InvalidTenantId> {
        TenantId::parse(&s)
    }
}

impl From<TenantId> for String {
    fn from(id: TenantId) -> String {
        id.0
    }
}

/// A tenant id as a request is given it: parsed already (where it came in), or text, parsed by
/// the request (Rust callers: tools and tests).
pub trait IntoTenantId {
    fn into_tenant_id(self) -> Result<TenantId, InvalidTenantId>;
}

impl IntoTenantId for &TenantId {
    fn into_tenant_id(self) -> Result<TenantId, InvalidTenantId> {
        Ok(self.clone())
    }
}

impl IntoTenantId for TenantId {
    fn into_tenant_id(self) -> Result<TenantId, InvalidTenantId> {
        Ok(self)
    }
}

impl IntoTenantId for &str {
    fn into_tenant_id(self) -> Result<TenantId, InvalidTenantId> {
        TenantId::parse(self)
    }
}

impl IntoTenantId for &String {
    fn into_tenant_id(self) -> Result<TenantId, InvalidTenantId> {
        TenantId::parse(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_follow_the_rds_identifier_rules() {
        for ok in ["acme", "a1b", "acme-corp-2", &"a".repeat(40)] {
            TenantId::parse(ok).unwrap();
        }
        for bad in [
            "ab",
            "1acme",
            "Acme",
            "acme-",
            "ac--me",
            "acme_corp",
            "ac me",
            "",
            &"a".repeat(41),
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn an_id_reads_and_writes_as_its_text_and_only_a_valid_one_reads() {
        let id: TenantId = serde_json::from_str("\"acme\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"acme\"");
        assert!(serde_json::from_str::<TenantId>("\"Acme\"").is_err());
    }
}
