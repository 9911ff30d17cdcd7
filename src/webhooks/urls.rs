//! The URL rule: a receiver's URL is `https`, has a host, no user or password, and every
//! address its host resolves to is a public one (not loopback, private, link-local, shared,
//! unspecified, multicast or documentation), unless `TENANTD_WEBHOOK_ALLOW_PRIVATE=true`, which
//! also allows `http`. Checked when a subscription is made and again at every delivery, through
//! the delivery client's resolver (a name that later resolves to a private address is refused).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a URL is refused, with the stable API code of each case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("not a URL with a host: {0}")]
    Invalid(String),
    #[error("{0}")]
    NotAllowed(String),
}

impl UrlError {
    pub fn code(&self) -> &'static str {
        match self {
            UrlError::Invalid(_) => "invalid_url",
            UrlError::NotAllowed(_) => "url_not_allowed",
        }
    }
}

/// Whether an address may receive deliveries when private ones are not allowed.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || first == 0x2001 && ip.segments()[1] == 0x0db8
        || ip.to_ipv4().is_some_and(|v4| !public_v4(v4)) && ip.segments()[..6] == [0; 6])
}

/// Checks what can be checked without resolving: the form, the scheme, credentials, and a
/// host given as an address. Returns the parsed URL.
pub fn check_form(raw: &str, allow_private: bool) -> Result<url::Url, UrlError> {
    if raw.len() > 2048 {
        return Err(UrlError::Invalid("longer than 2048 characters".into()));
    }
    let url = url::Url::parse(raw).map_err(|e| UrlError::Invalid(format!("{raw:?}: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        other => {
            return Err(UrlError::NotAllowed(format!(
                "webhook URLs must be https, not {other}"
            )));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Invalid(
            "a webhook URL must not carry a user or password".into(),
        ));
    }
    let host = match url.host() {
        Some(host) => host,
        None => return Err(UrlError::Invalid(format!("{raw:?} has no host"))),
    };
    if !allow_private {
        let ip = match host {
            url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            url::Host::Domain(d)
                if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") =>
            {
                Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
            }
            url::Host::Domain(_) => None,
        };
        if let Some(ip) = ip.filter(|ip| !is_public(*ip)) {
            return Err(UrlError::NotAllowed(format!(
                "{host} is {ip}, a loopback, private or link-local address; set \
                 TENANTD_WEBHOOK_ALLOW_PRIVATE=true to allow those"
            )));
        }
    }
    Ok(url)
}

/// [`check_form`], then resolves the host: every address must be public (unless allowed).
pub async fn check(raw: &str, allow_private: bool) -> Result<url::Url, UrlError> {
    let url = check_form(raw, allow_private)?;
    if allow_private {
        return Ok(url);
    }
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| UrlError::NotAllowed(format!("{host} does not resolve: {e}")))?
        .map(|a| a.ip())
        .collect();
    if let Some(ip) = addrs.iter().find(|ip| !is_public(**ip)) {
        return Err(UrlError::NotAllowed(format!(
            "{host} resolves to {ip}, a loopback, private or link-local address; set \
             TENANTD_WEBHOOK_ALLOW_PRIVATE=true to allow those"
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_link_local_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn only_https_to_a_public_host_passes_unless_private_is_allowed() {
        let code = |u: &str, allow| check_form(u, allow).map(|_| ()).map_err(|e| e.code());
        assert_eq!(code("https://hooks.example.com/in", false), Ok(()));
        assert_eq!(
            code("http://hooks.example.com/in", false),
            Err("url_not_allowed")
        );
        assert_eq!(
            code("ftp://hooks.example.com/in", true),
            Err("url_not_allowed")
        );
        assert_eq!(code("https://127.0.0.1/in", false), Err("url_not_allowed"));
        assert_eq!(code("https://[::1]/in", false), Err("url_not_allowed"));
        assert_eq!(
            code("https://169.254.169.254/latest", false),
            Err("url_not_allowed")
        );
        assert_eq!(
            code("https://localhost:8443/", false),
            Err("url_not_allowed")
        );
        assert_eq!(
            code("https://u:p@hooks.example.com/", false),
            Err("invalid_url")
        );
        assert_eq!(code("not a url", false), Err("invalid_url"));
        assert_eq!(code("http://127.0.0.1:9/in", true), Ok(()));
    }
}
