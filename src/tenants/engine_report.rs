//! The engine report: how many tenants run each PostgreSQL major and each CA, and which run a
//! major past the end-of-support date `TENANTD_ENGINE_END_OF_SUPPORT` gives it. Two queries
//! over the tenants' rows (what the reconciler last described), whatever the fleet's size.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;

use super::error::TenantError;
use crate::store::tenants;

/// Tenants past end of support a report lists at most (the count is always whole).
pub const PAST_LISTED: i64 = 1000;

/// The tenants on one major.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MajorCount {
    /// `16`; `unknown` for tenants whose engine version is not recorded yet.
    pub major: String,
    pub tenants: i64,
    /// When RDS standard support of the major ends, as configured (absent: not configured).
    pub end_of_support: Option<NaiveDate>,
    /// That date has passed.
    pub past_end_of_support: bool,
}

/// The tenants on one CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CaCount {
    /// `rds-ca-rsa2048-g1`; `unknown` for tenants whose CA is not recorded yet.
    pub ca_certificate: String,
    pub tenants: i64,
}

/// A tenant on a major past its end of support.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PastEndOfSupport {
    pub tenant: String,
    pub engine_version: Option<String>,
    pub end_of_support: NaiveDate,
}

/// `GET /v1/reports/engines`: the fleet's engines and CAs on `as_of`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EngineReport {
    /// The day the report is for (UTC).
    pub as_of: NaiveDate,
    /// Tenants with an instance (ready, suspended, degraded, detached).
    pub tenants: i64,
    pub majors: Vec<MajorCount>,
    pub cas: Vec<CaCount>,
    /// How many tenants run a major past its end of support.
    pub past_end_of_support_total: i64,
    /// Those tenants in id order (at most 1,000).
    pub past_end_of_support: Vec<PastEndOfSupport>,
}

/// The report for `as_of`, with the configured end-of-support dates.
pub async fn engine_report(
    pool: &PgPool,
    end_of_support: &BTreeMap<String, NaiveDate>,
    as_of: NaiveDate,
) -> Result<EngineReport, TenantError> {
    let rows = tenants::engine_census(pool).await?;
    let unknown = || "unknown".to_string();
    let mut majors: BTreeMap<String, i64> = BTreeMap::new();
    let mut cas: BTreeMap<String, i64> = BTreeMap::new();
    for r in &rows {
        *majors
            .entry(r.major.clone().unwrap_or_else(unknown))
            .or_default() += r.tenants;
        *cas.entry(r.ca_certificate.clone().unwrap_or_else(unknown))
            .or_default() += r.tenants;
    }
    let past: Vec<String> = end_of_support
        .iter()
        .filter(|(_, end)| **end <= as_of)
        .map(|(major, _)| major.clone())
        .collect();
    let past_total: i64 = past.iter().filter_map(|m| majors.get(m)).sum();
    let listed = if past.is_empty() {
        Vec::new()
    } else {
        tenants::on_majors(pool, &past, PAST_LISTED).await?
    };
    let mut by_major: Vec<MajorCount> = majors
        .into_iter()
        .map(|(major, n)| {
            let end = end_of_support.get(&major).copied();
            MajorCount {
                past_end_of_support: end.is_some_and(|e| e <= as_of),
                end_of_support: end,
                major,
                tenants: n,
            }
        })
        .collect();
    // Numerically: 9 before 16; unknown last.
    by_major.sort_by_key(|m| m.major.parse::<u32>().unwrap_or(u32::MAX));
    Ok(EngineReport {
        as_of,
        tenants: rows.iter().map(|r| r.tenants).sum(),
        majors: by_major,
        cas: cas
            .into_iter()
            .map(|(ca_certificate, tenants)| CaCount {
                ca_certificate,
                tenants,
            })
            .collect(),
        past_end_of_support_total: past_total,
        past_end_of_support: listed
            .into_iter()
            .filter_map(|(tenant, engine_version)| {
                let major = engine_version.as_deref()?.split('.').next()?.to_string();
                Some(PastEndOfSupport {
                    tenant,
                    end_of_support: *end_of_support.get(&major)?,
                    engine_version,
                })
            })
            .collect(),
    })
}
