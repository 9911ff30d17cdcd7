//! Who is calling, as far as the connection tells: the client's address (the peer's, or, when
//! the peer is a proxy `TENANTD_TRUSTED_PROXIES` names, the last address its
//! `X-Forwarded-For` adds that is not itself a trusted proxy), the channel (`tenantd`'s CLI
//! names itself in its `User-Agent`), and an id for the request, sent back as `X-Request-Id`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

use super::state::AppState;
use crate::audit::{Channel, Entry};
use crate::config::HttpSettings;

/// The response header that carries the request's id.
pub const REQUEST_ID: &str = "x-request-id";

/// What every request learns about its caller before anything else runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub address: IpAddr,
    pub channel: Channel,
    pub request_id: Uuid,
}

impl Caller {
    /// An audit row about this caller's request, to be filled in.
    pub fn entry(&self, method: &str, route: &str) -> Entry {
        Entry {
            source: self.address.to_string(),
            channel: self.channel,
            request_id: self.request_id,
            method: method.to_string(),
            route: route.to_string(),
            ..Entry::default()
        }
    }
}

/// The client's address: `peer`, or what trusted proxies say they saw.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, http: &HttpSettings) -> IpAddr {
    if !http.trusts(peer) {
        return peer;
    }
    // Each proxy appends the address it saw: the rightmost entry not itself a trusted proxy
    // is the client (anything further left the client may have written itself).
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|a| !http.trusts(**a))
        .or(forwarded.first())
        .copied()
        .unwrap_or(peer)
}

fn channel(headers: &HeaderMap, path: &str) -> Channel {
    if path == "/ui" || path.starts_with("/ui/") {
        return Channel::Console;
    }
    let cli = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("tenantd-cli/"));
    if cli { Channel::Cli } else { Channel::Api }
}

/// Puts the [`Caller`] into the request's extensions and its id into the answer's headers.
pub async fn identify(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let caller = Caller {
        address: client_address(peer, request.headers(), &state.http),
        channel: channel(request.headers(), request.uri().path()),
        request_id: Uuid::new_v4(),
    };
    tracing::Span::current().record("request_id", tracing::field::display(caller.request_id));
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    if let Ok(id) = HeaderValue::from_str(&caller.request_id.to_string()) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for f in forwarded {
            h.append("x-forwarded-for", HeaderValue::from_str(f).unwrap());
        }
        h
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let http = HttpSettings {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..HttpSettings::default()
        };
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let stranger: IpAddr = "192.0.2.9".parse().unwrap();
        let forged = headers(&["6.6.6.6, 198.51.100.7"]);
        assert_eq!(client_address(stranger, &forged, &http), stranger);
        assert_eq!(
            client_address(proxy, &forged, &http),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // Two proxies of ours in a row: the client is the one before them.
        let chained = headers(&["198.51.100.7", "10.0.0.9"]);
        assert_eq!(
            client_address(proxy, &chained, &http),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_address(proxy, &headers(&["junk"]), &http), proxy);
    }

    #[test]
    fn the_cli_and_the_console_are_told_apart() {
        let mut h = HeaderMap::new();
        assert_eq!(channel(&h, "/v1/tenants"), Channel::Api);
        h.insert(
            axum::http::header::USER_AGENT,
            HeaderValue::from_static("tenantd-cli/0.1.0"),
        );
        assert_eq!(channel(&h, "/v1/tenants"), Channel::Cli);
        assert_eq!(channel(&h, "/ui/tenants"), Channel::Console);
    }
}
