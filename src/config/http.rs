//! Settings of the HTTP listener and of who is in front of it: how long a client may take to
//! send its headers, how long a request may run, how many connections and how many requests
//! of each class run at once, which proxies may name the client's address, how many failed
//! sign-ins an address gets, and how often the fleet-wide gauges are read.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use super::env::{ConfigError, Env};

/// Requests of a class that run at once; one more is answered 503 `overloaded` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassLimits {
    /// `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.
    pub ops: usize,
    /// GET requests of `/v1`.
    pub read: usize,
    /// Requests of `/v1` that change something.
    pub write: usize,
    /// The console (`/ui`).
    pub console: usize,
}

impl Default for ClassLimits {
    fn default() -> Self {
        ClassLimits {
            ops: 16,
            read: 64,
            write: 32,
            console: 32,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// A connection that has not sent a whole request head within this is closed
    /// (`TENANTD_HTTP_HEADER_TIMEOUT`); also the longest an idle keep-alive connection stays.
    pub header_timeout: Duration,
    /// A request not answered within this gets 503 `request_timeout` and its work is dropped
    /// (`TENANTD_HTTP_REQUEST_TIMEOUT`).
    pub request_timeout: Duration,
    /// Connections held at once; more wait to be accepted (`TENANTD_HTTP_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// `TENANTD_HTTP_CONCURRENCY`, e.g. `read=64,write=32`.
    pub concurrency: ClassLimits,
    /// Peers whose `X-Forwarded-For` names the client (`TENANTD_TRUSTED_PROXIES`); nobody's by
    /// default.
    pub trusted_proxies: Vec<IpNet>,
    /// Failed authentications an address may make per minute before it gets 429
    /// (`TENANTD_AUTH_FAILURES_PER_MINUTE`).
    pub auth_failures_per_minute: u32,
    /// How often the maintenance leader's `/metrics` reads the fleet-wide gauges
    /// (`TENANTD_FLEET_GAUGES_INTERVAL`); scrapes in between get the figures last read.
    pub fleet_gauges_every: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 4096,
            concurrency: ClassLimits::default(),
            trusted_proxies: Vec::new(),
            auth_failures_per_minute: 10,
            fleet_gauges_every: Duration::from_secs(5),
        }
    }
}

impl HttpSettings {
    /// Whether `peer` is a proxy whose `X-Forwarded-For` header is believed.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    pub fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let d = HttpSettings::default();
        let header_timeout = env.duration(
            "TENANTD_HTTP_HEADER_TIMEOUT",
            d.header_timeout,
            Duration::from_millis(100),
            Duration::from_secs(300),
        )?;
        let request_timeout = env.duration(
            "TENANTD_HTTP_REQUEST_TIMEOUT",
            d.request_timeout,
            Duration::from_millis(100),
            Duration::from_secs(3600),
        )?;
        let max_connections = env.integer(
            "TENANTD_HTTP_MAX_CONNECTIONS",
            d.max_connections as i64,
            8..=1_000_000,
        )? as usize;
        let concurrency = concurrency(env.optional("TENANTD_HTTP_CONCURRENCY").as_deref())
            .map_err(|problem| ConfigError::Invalid {
                name: "TENANTD_HTTP_CONCURRENCY",
                problem,
            })?;
        let trusted_proxies = env
            .optional("TENANTD_TRUSTED_PROXIES")
            .map(|list| proxies(&list))
            .transpose()
            .map_err(|problem| ConfigError::Invalid {
                name: "TENANTD_TRUSTED_PROXIES",
                problem,
            })?
            .unwrap_or_default();
        let auth_failures_per_minute =
            env.integer("TENANTD_AUTH_FAILURES_PER_MINUTE", 10, 1..=100_000)? as u32;
        let fleet_gauges_every = env.duration(
            "TENANTD_FLEET_GAUGES_INTERVAL",
            d.fleet_gauges_every,
            Duration::from_secs(1),
            Duration::from_secs(600),
        )?;
        Ok(HttpSettings {
            header_timeout,
            request_timeout,
            max_connections,
            concurrency,
            trusted_proxies,
            auth_failures_per_minute,
            fleet_gauges_every,
        })
    }
}

/// `class=n` pairs over the defaults.
fn concurrency(text: Option<&str>) -> Result<ClassLimits, String> {
    let mut limits = ClassLimits::default();
    for pair in text.unwrap_or_default().split(',').map(str::trim) {
        if pair.is_empty() {
            continue;
        }
        let (class, n) = pair.split_once('=').ok_or_else(|| {
            format!("expected class=n pairs such as read=64,write=32, got {pair:?}")
        })?;
        let n: usize = n
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=100_000).contains(n))
            .ok_or_else(|| format!("{pair:?}: expected a number from 1 to 100000"))?;
        match class.trim() {
            "ops" => limits.ops = n,
            "read" => limits.read = n,
            "write" => limits.write = n,
            "console" => limits.console = n,
            other => {
                return Err(format!(
                    "unknown class {other:?}: the classes are ops, read, write and console"
                ));
            }
        }
    }
    Ok(limits)
}

/// Comma-separated addresses or CIDR blocks.
fn proxies(list: &str) -> Result<Vec<IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is not an address or a CIDR block such as 10.0.0.0/8"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<HttpSettings, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HttpSettings::load(&Env(move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }))
    }

    #[test]
    fn defaults_hold_unless_set() {
        assert_eq!(load(&[]).unwrap(), HttpSettings::default());
        let s = load(&[
            ("TENANTD_HTTP_HEADER_TIMEOUT", "2s"),
            ("TENANTD_HTTP_CONCURRENCY", "read=8, console=2"),
            ("TENANTD_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7"),
            ("TENANTD_AUTH_FAILURES_PER_MINUTE", "3"),
        ])
        .unwrap();
        assert_eq!(s.header_timeout, Duration::from_secs(2));
        assert_eq!(
            s.concurrency,
            ClassLimits {
                read: 8,
                console: 2,
                ..ClassLimits::default()
            }
        );
        assert!(s.trusts("10.1.2.3".parse().unwrap()));
        assert!(s.trusts("192.0.2.7".parse().unwrap()));
        assert!(!s.trusts("192.0.2.8".parse().unwrap()));
        assert!(!HttpSettings::default().trusts("127.0.0.1".parse().unwrap()));
        assert_eq!(s.auth_failures_per_minute, 3);
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (name, value) in [
            ("TENANTD_HTTP_HEADER_TIMEOUT", "forever"),
            ("TENANTD_HTTP_REQUEST_TIMEOUT", "2h"),
            ("TENANTD_HTTP_MAX_CONNECTIONS", "1"),
            ("TENANTD_HTTP_CONCURRENCY", "read"),
            ("TENANTD_HTTP_CONCURRENCY", "admin=3"),
            ("TENANTD_HTTP_CONCURRENCY", "read=0"),
            ("TENANTD_TRUSTED_PROXIES", "proxy.internal"),
            ("TENANTD_AUTH_FAILURES_PER_MINUTE", "0"),
            ("TENANTD_FLEET_GAUGES_INTERVAL", "10ms"),
        ] {
            let e = load(&[(name, value)]).unwrap_err();
            assert!(e.to_string().starts_with(name), "{name}={value}: {e}");
        }
    }
}
