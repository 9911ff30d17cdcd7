//! Webhook and EventBridge settings (`TENANTD_WEBHOOK_*`, `TENANTD_EVENTBRIDGE_BUS`): the URL
//! rule, the delivery timeouts, how long and how often a delivery is retried, when a failing
//! subscription is disabled, and where the signing keys live in Secrets Manager.

use std::time::Duration;

use super::env::{ConfigError, Env};

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSettings {
    /// `TENANTD_WEBHOOK_ALLOW_PRIVATE`: URLs may be http and resolve to loopback, link-local
    /// and private addresses (tests, a receiver inside the VPC). Default false.
    pub allow_private: bool,
    /// A delivery is retried for this long, then marked failed (default 24 h).
    pub retry_for: Duration,
    /// The first pause between two attempts, doubled each time (default 5 s) ...
    pub retry_base: Duration,
    /// ... up to this (default 1 h); each pause gets up to half of itself as jitter.
    pub retry_max: Duration,
    /// A subscription whose deliveries have failed for this long without one success is
    /// disabled, with the reason (default 3 days).
    pub disable_after: Duration,
    /// Connecting to a receiver (default 5 s).
    pub connect_timeout: Duration,
    /// A whole delivery: connect, send, answer (default 15 s).
    pub timeout: Duration,
    /// How often an idle process looks for new events (default 200 ms).
    pub poll: Duration,
    /// Deliveries one process claims and sends at once (default 32).
    pub concurrency: usize,
    /// After a rotation the old key signs too, this long (default 24 h).
    pub rotation_overlap: Duration,
    /// Where the signing keys live: `<prefix><subscription id>` (default `saas/webhook/`).
    pub secret_prefix: String,
    /// `TENANTD_EVENTBRIDGE_BUS`: every event also goes to this bus (name or ARN).
    pub eventbridge_bus: Option<String>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allow_private: false,
            retry_for: Duration::from_secs(24 * 3600),
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(3600),
            disable_after: Duration::from_secs(3 * 86400),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            poll: Duration::from_millis(200),
            concurrency: 32,
            rotation_overlap: Duration::from_secs(24 * 3600),
            secret_prefix: "saas/webhook/".into(),
            eventbridge_bus: None,
        }
    }
}

impl WebhookSettings {
    pub fn load<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        other_prefixes: &[&str],
    ) -> Result<Self, ConfigError> {
        let d = WebhookSettings::default();
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        let allow_private = match env
            .string("TENANTD_WEBHOOK_ALLOW_PRIVATE", "false")
            .as_str()
        {
            "true" => true,
            "false" => false,
            other => {
                return Err(ConfigError::Invalid {
                    name: "TENANTD_WEBHOOK_ALLOW_PRIVATE",
                    problem: format!("expected true or false, got {other:?}"),
                });
            }
        };
        let secret_prefix = env.non_empty("TENANTD_WEBHOOK_SECRET_PREFIX", &d.secret_prefix)?;
        let prefix_ok = secret_prefix.len() <= 400
            && secret_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
            && other_prefixes
                .iter()
                .all(|p| !secret_prefix.starts_with(p) && !p.starts_with(secret_prefix.as_str()));
        if !prefix_ok {
            return Err(ConfigError::Invalid {
                name: "TENANTD_WEBHOOK_SECRET_PREFIX",
                problem: format!(
                    "Secrets Manager names allow letters, digits and /_+=.@- only, and it must \
                     not overlap TENANTD_SECRET_PREFIX or TENANTD_POOL_SECRET_PREFIX; got \
                     {secret_prefix:?}"
                ),
            });
        }
        let day = 86400;
        Ok(WebhookSettings {
            allow_private,
            retry_for: env.duration("TENANTD_WEBHOOK_RETRY_FOR", d.retry_for, s(1), s(30 * day))?,
            retry_base: env.duration("TENANTD_WEBHOOK_RETRY_BASE", d.retry_base, ms(10), s(day))?,
            retry_max: env.duration("TENANTD_WEBHOOK_RETRY_MAX", d.retry_max, ms(10), s(day))?,
            disable_after: env.duration(
                "TENANTD_WEBHOOK_DISABLE_AFTER",
                d.disable_after,
                s(1),
                s(90 * day),
            )?,
            connect_timeout: env.duration(
                "TENANTD_WEBHOOK_CONNECT_TIMEOUT",
                d.connect_timeout,
                ms(100),
                s(60),
            )?,
            timeout: env.duration("TENANTD_WEBHOOK_TIMEOUT", d.timeout, ms(100), s(120))?,
            poll: env.duration("TENANTD_WEBHOOK_POLL", d.poll, ms(10), s(60))?,
            concurrency: env.integer("TENANTD_WEBHOOK_CONCURRENCY", 32, 1..=256)? as usize,
            rotation_overlap: env.duration(
                "TENANTD_WEBHOOK_ROTATION_OVERLAP",
                d.rotation_overlap,
                s(1),
                s(30 * day),
            )?,
            secret_prefix,
            eventbridge_bus: env.optional("TENANTD_EVENTBRIDGE_BUS"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<WebhookSettings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        WebhookSettings::load(
            &Env(|n| map.get(n).cloned()),
            &["saas/tenant/", "saas/pool/"],
        )
    }

    #[test]
    fn defaults_retry_for_a_day_and_disable_after_three() {
        let s = load(&[]).unwrap();
        assert_eq!(s, WebhookSettings::default());
        assert_eq!(s.retry_for, Duration::from_secs(86400));
        assert!(!s.allow_private);
    }

    #[test]
    fn a_bad_flag_or_an_overlapping_prefix_names_the_setting() {
        let e = load(&[("TENANTD_WEBHOOK_ALLOW_PRIVATE", "yes")]).unwrap_err();
        assert!(e.to_string().starts_with("TENANTD_WEBHOOK_ALLOW_PRIVATE"));
        let e = load(&[("TENANTD_WEBHOOK_SECRET_PREFIX", "saas/tenant/hooks/")]).unwrap_err();
        assert!(e.to_string().starts_with("TENANTD_WEBHOOK_SECRET_PREFIX"));
        let s = load(&[("TENANTD_WEBHOOK_RETRY_FOR", "90s")]).unwrap();
        assert_eq!(s.retry_for, Duration::from_secs(90));
    }
}
