//! Reading one setting: a value from `TENANTD_*` (or a map in tests), parsed and checked, or a
//! [`ConfigError`] that names the variable. Secrets are wrapped and never echoed back.

use std::time::Duration;

use secrecy::SecretString;

/// A setting that is missing or malformed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{name} is not set; {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("{name}: {problem}")]
    Invalid { name: &'static str, problem: String },
}

/// Reads settings through `lookup` (the environment in production, a map in tests).
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn raw(&self, name: &'static str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    pub fn required_secret(
        &self,
        name: &'static str,
        hint: &'static str,
    ) -> Result<SecretString, ConfigError> {
        self.raw(name)
            .map(SecretString::from)
            .ok_or(ConfigError::Missing { name, hint })
    }

    pub fn string(&self, name: &'static str, default: &str) -> String {
        self.raw(name).unwrap_or_else(|| default.to_string())
    }

    /// Like [`Env::string`], but a setting that is present and empty (or blank) is refused
    /// instead of falling back to the default: for names that must never be empty.
    pub fn non_empty(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        match (self.0)(name) {
            Some(v) if v.trim().is_empty() => Err(ConfigError::Invalid {
                name,
                problem: "must not be empty".into(),
            }),
            Some(v) => Ok(v.trim().to_string()),
            None => Ok(default.to_string()),
        }
    }

    pub fn optional(&self, name: &'static str) -> Option<String> {
        self.raw(name)
    }

    pub fn parsed<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
        expected: &str,
    ) -> Result<T, ConfigError> {
        match self.raw(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid {
                name,
                problem: format!("expected {expected}, got {v:?}"),
            }),
        }
    }

    pub fn integer(
        &self,
        name: &'static str,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<i64, ConfigError> {
        let expected = format!("an integer from {} to {}", range.start(), range.end());
        let value: i64 = self.parsed(name, default, &expected)?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::Invalid {
                name,
                problem: format!("expected {expected}, got {value}"),
            })
        }
    }

    /// A duration such as `30s`, `500ms` or `5m`, within `[min, max]`.
    pub fn duration(
        &self,
        name: &'static str,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(v) = self.raw(name) else {
            return Ok(default);
        };
        let value = humantime::parse_duration(v.trim()).map_err(|_| ConfigError::Invalid {
            name,
            problem: format!("expected a duration such as 30s, 500ms or 5m, got {v:?}"),
        })?;
        if value < min || value > max {
            return Err(ConfigError::Invalid {
                name,
                problem: format!(
                    "expected a duration from {} to {}, got {v}",
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ),
            });
        }
        Ok(value)
    }

    /// Like [`Env::duration`], but `0` means "off" (`None`).
    pub fn duration_or_off(
        &self,
        name: &'static str,
        default: Option<Duration>,
        min: Duration,
        max: Duration,
    ) -> Result<Option<Duration>, ConfigError> {
        match self.raw(name) {
            None => Ok(default),
            Some(v) if v.trim() == "0" => Ok(None),
            Some(_) => Ok(Some(self.duration(name, Duration::ZERO, min, max)?)),
        }
    }
}
