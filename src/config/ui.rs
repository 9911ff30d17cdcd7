//! Settings of the operator's console (`/ui/`): how long a sign-in lasts and when its cookie
//! is marked `Secure`.

use std::time::Duration;

use super::env::{ConfigError, Env};

/// When the session cookie carries the `Secure` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecureCookie {
    /// When the request came over TLS: tenantd itself serves plain HTTP, so that is what the
    /// TLS-terminating proxy in front says (`X-Forwarded-Proto: https`). A forged header can
    /// only make the cookie stricter.
    #[default]
    Auto,
    /// Always (the console is only ever reached over HTTPS).
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UiSettings {
    /// A sign-in lasts this long (`TENANTD_UI_SESSION_TTL`, default 8h).
    pub session_ttl: Duration,
    /// `TENANTD_UI_SECURE_COOKIE`: `auto` (default) or `always`.
    pub secure_cookie: SecureCookie,
}

impl Default for UiSettings {
    fn default() -> Self {
        UiSettings {
            session_ttl: Duration::from_secs(8 * 3600),
            secure_cookie: SecureCookie::Auto,
        }
    }
}

impl UiSettings {
    pub fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let session_ttl = env.duration(
            "TENANTD_UI_SESSION_TTL",
            UiSettings::default().session_ttl,
            Duration::from_secs(60),
            Duration::from_secs(30 * 86400),
        )?;
        let secure_cookie = match env.string("TENANTD_UI_SECURE_COOKIE", "auto").as_str() {
            "auto" => SecureCookie::Auto,
            "always" => SecureCookie::Always,
            other => {
                return Err(ConfigError::Invalid {
                    name: "TENANTD_UI_SECURE_COOKIE",
                    problem: format!("expected auto or always, got {other:?}"),
                });
            }
        };
        Ok(UiSettings {
            session_ttl,
            secure_cookie,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<UiSettings, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        UiSettings::load(&Env(move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }))
    }

    #[test]
    fn sessions_last_eight_hours_unless_set() {
        assert_eq!(load(&[]).unwrap(), UiSettings::default());
        let s = load(&[
            ("TENANTD_UI_SESSION_TTL", "30m"),
            ("TENANTD_UI_SECURE_COOKIE", "always"),
        ])
        .unwrap();
        assert_eq!(s.session_ttl, Duration::from_secs(1800));
        assert_eq!(s.secure_cookie, SecureCookie::Always);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let e = load(&[("TENANTD_UI_SECURE_COOKIE", "never")]).unwrap_err();
        assert!(e.to_string().starts_with("TENANTD_UI_SECURE_COOKIE"), "{e}");
        let e = load(&[("TENANTD_UI_SESSION_TTL", "1s")]).unwrap_err();
        assert!(e.to_string().starts_with("TENANTD_UI_SESSION_TTL"), "{e}");
    }
}
