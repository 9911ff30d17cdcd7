//! Settings of the operator's console (`/ui/`): how long a sign-in lasts, how long it may sit
//! idle, and whether its cookie is marked `Secure`.

use std::time::Duration;

use super::env::{ConfigError, Env};

/// When the session cookie carries the `Secure` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecureCookie {
    /// Always: the browser sends it back only over HTTPS (the console is reached through a
    /// TLS-terminating proxy).
    #[default]
    Always,
    /// When the request came over TLS, as the TLS-terminating proxy in front says
    /// (`X-Forwarded-Proto: https`). A forged header can only make the cookie stricter.
    Auto,
    /// Never: for a console reached over plain HTTP on a trusted network or the loopback
    /// interface (the local demo). Only when set explicitly.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UiSettings {
    /// A sign-in lasts this long at most (`TENANTD_UI_SESSION_TTL`, default 8h).
    pub session_ttl: Duration,
    /// A session not used for this long ends (`TENANTD_UI_IDLE_TIMEOUT`, default 30m).
    pub idle_timeout: Duration,
    /// `TENANTD_UI_SECURE_COOKIE`: `always` (default), `auto` or `off`.
    pub secure_cookie: SecureCookie,
}

impl Default for UiSettings {
    fn default() -> Self {
        UiSettings {
            session_ttl: Duration::from_secs(8 * 3600),
            idle_timeout: Duration::from_secs(30 * 60),
            secure_cookie: SecureCookie::Always,
        }
    }
}

impl UiSettings {
    pub fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let d = UiSettings::default();
        let session_ttl = env.duration(
            "TENANTD_UI_SESSION_TTL",
            d.session_ttl,
            Duration::from_secs(60),
            Duration::from_secs(30 * 86400),
        )?;
        let idle_timeout = env.duration(
            "TENANTD_UI_IDLE_TIMEOUT",
            d.idle_timeout,
            Duration::from_secs(60),
            Duration::from_secs(86400),
        )?;
        let secure_cookie = match env.string("TENANTD_UI_SECURE_COOKIE", "always").as_str() {
            "always" => SecureCookie::Always,
            "auto" => SecureCookie::Auto,
            "off" => SecureCookie::Off,
            other => {
                return Err(ConfigError::Invalid {
                    name: "TENANTD_UI_SECURE_COOKIE",
                    problem: format!("expected always, auto or off, got {other:?}"),
                });
            }
        };
        Ok(UiSettings {
            session_ttl,
            idle_timeout,
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
    fn sessions_last_eight_hours_idle_half_an_hour_and_are_secure_unless_set() {
        let d = load(&[]).unwrap();
        assert_eq!(d, UiSettings::default());
        assert_eq!(d.secure_cookie, SecureCookie::Always);
        assert_eq!(d.idle_timeout, Duration::from_secs(1800));
        let s = load(&[
            ("TENANTD_UI_SESSION_TTL", "30m"),
            ("TENANTD_UI_IDLE_TIMEOUT", "5m"),
            ("TENANTD_UI_SECURE_COOKIE", "off"),
        ])
        .unwrap();
        assert_eq!(s.session_ttl, Duration::from_secs(1800));
        assert_eq!(s.idle_timeout, Duration::from_secs(300));
        assert_eq!(s.secure_cookie, SecureCookie::Off);
        let s = load(&[("TENANTD_UI_SECURE_COOKIE", "auto")]).unwrap();
        assert_eq!(s.secure_cookie, SecureCookie::Auto);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let e = load(&[("TENANTD_UI_SECURE_COOKIE", "never")]).unwrap_err();
        assert!(e.to_string().starts_with("TENANTD_UI_SECURE_COOKIE"), "{e}");
        let e = load(&[("TENANTD_UI_SESSION_TTL", "1s")]).unwrap_err();
        assert!(e.to_string().starts_with("TENANTD_UI_SESSION_TTL"), "{e}");
        let e = load(&[("TENANTD_UI_IDLE_TIMEOUT", "2d")]).unwrap_err();
        assert!(e.to_string().starts_with("TENANTD_UI_IDLE_TIMEOUT"), "{e}");
    }
}
