//! Engine lifecycle settings: the date each PostgreSQL major leaves RDS standard support
//! (`TENANTD_ENGINE_END_OF_SUPPORT`, for the engine report) and where the bundle of each RDS CA
//! is (`TENANTD_TENANT_DB_CA_DIR`, for the verify-full check after a CA rotation).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::config::env::{ConfigError, Env};

/// The engine lifecycle settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineSettings {
    /// Major → the date RDS standard support ends (`15=2027-11-11,16=2028-11-09`); tenants on a
    /// major past its date are listed by the engine report. Empty: none is past.
    pub end_of_support: BTreeMap<String, NaiveDate>,
    /// A directory of CA bundles, one per RDS CA: `<ca>.pem` or `<ca>/ca.pem`.
    pub ca_dir: Option<PathBuf>,
}

impl EngineSettings {
    pub fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let end_of_support = match env.optional("TENANTD_ENGINE_END_OF_SUPPORT") {
            None => BTreeMap::new(),
            Some(text) => parse_end_of_support(&text).map_err(|problem| ConfigError::Invalid {
                name: "TENANTD_ENGINE_END_OF_SUPPORT",
                problem,
            })?,
        };
        let ca_dir = match env.optional("TENANTD_TENANT_DB_CA_DIR") {
            None => None,
            Some(dir) if Path::new(&dir).is_dir() => Some(PathBuf::from(dir)),
            Some(dir) => {
                return Err(ConfigError::Invalid {
                    name: "TENANTD_TENANT_DB_CA_DIR",
                    problem: format!("{dir:?} is not a directory"),
                });
            }
        };
        Ok(EngineSettings {
            end_of_support,
            ca_dir,
        })
    }

    /// The bundle of CA `ca` in [`EngineSettings::ca_dir`], if it has one.
    pub fn ca_bundle(&self, ca: &str) -> Option<PathBuf> {
        let dir = self.ca_dir.as_ref()?;
        if ca.is_empty() || !ca.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return None;
        }
        [dir.join(format!("{ca}.pem")), dir.join(ca).join("ca.pem")]
            .into_iter()
            .find(|p| p.is_file())
    }
}

/// `15=2027-11-11,16=2028-11-09`: majors (whole numbers, each once) and ISO dates.
fn parse_end_of_support(text: &str) -> Result<BTreeMap<String, NaiveDate>, String> {
    let mut out = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((major, date)) = entry.split_once('=') else {
            return Err(format!(
                "expected <major>=<YYYY-MM-DD>, comma-separated (15=2027-11-11), got {entry:?}"
            ));
        };
        let major = major.trim();
        if major.is_empty() || !major.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "{major:?} is not a PostgreSQL major version such as 16"
            ));
        }
        let date = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
            .map_err(|_| format!("major {major}: {:?} is not a date YYYY-MM-DD", date.trim()))?;
        if out.insert(major.to_string(), date).is_some() {
            return Err(format!("major {major} is given twice"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<EngineSettings, ConfigError> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EngineSettings::load(&Env(|name: &str| map.get(name).cloned()))
    }

    #[test]
    fn end_of_support_dates_are_read_per_major() {
        let s = load(&[(
            "TENANTD_ENGINE_END_OF_SUPPORT",
            "15=2027-11-11, 16=2028-11-09",
        )])
        .unwrap();
        assert_eq!(
            s.end_of_support.get("15"),
            NaiveDate::from_ymd_opt(2027, 11, 11).as_ref()
        );
        assert_eq!(s.end_of_support.len(), 2);
        assert!(load(&[]).unwrap().end_of_support.is_empty());
    }

    #[test]
    fn bad_end_of_support_values_name_the_setting_and_the_entry() {
        for (value, says) in [
            ("16", "expected <major>=<YYYY-MM-DD>"),
            ("sixteen=2028-11-09", "not a PostgreSQL major"),
            ("16=2028-13-40", "not a date"),
            ("16=2028-11-09,16=2029-01-01", "twice"),
        ] {
            let e = load(&[("TENANTD_ENGINE_END_OF_SUPPORT", value)])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("TENANTD_ENGINE_END_OF_SUPPORT") && e.contains(says),
                "{value}: {e}"
            );
        }
        let e = load(&[("TENANTD_TENANT_DB_CA_DIR", "/no/such/dir")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("TENANTD_TENANT_DB_CA_DIR"), "{e}");
    }
}
