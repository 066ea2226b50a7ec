//! The HTTP edge: routing, credential extraction, status codes and headers.
//! Handlers parse, authorize with `auth::policy`, call `domain`, and render.

pub mod api;
pub mod auth;
pub mod metrics;
pub mod oci;
pub mod server;
pub mod zerocopy;

use crate::app::AppState;
use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;

/// The whole HTTP surface of a node.
pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/service/token", get(auth::token))
        .route("/api/version", get(|| async { axum::Json(serde_json::json!({"version": "v2.0"})) }))
        .nest("/api/v2.0", api::router())
        // The nested router does not see its bare prefix with a trailing slash.
        .route("/api/v2.0/", axum::routing::any(api::unimplemented::fallback))
        .merge(api::berth::routes())
        .merge(api::tokens::routes())
        .route("/v2", axum::routing::any(oci::handle))
        .route("/v2/", axum::routing::any(oci::handle))
        .route("/v2/{*rest}", axum::routing::any(oci::handle))
        .route("/metrics", get(metrics::serve))
        .layer(metrics::MetricsLayer)
        .with_state(app)
}

/// The registry's public base URL: the configured one, else the request's scheme and host.
/// `X-Forwarded-Proto` and `X-Forwarded-Host` reach this point only from trusted proxies (the
/// server removes them from other peers' requests), and a host that is not a plain
/// `host[:port]` is ignored, so nothing a client sends can move or break a challenge's realm.
pub fn base_url(app: &crate::app::App, headers: &HeaderMap) -> String {
    if let Some(u) = &app.config.external_url {
        return u.clone();
    }
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.split(',').next().unwrap_or("").trim().to_string());
    let proto = h("x-forwarded-proto").filter(|p| p == "http" || p == "https").unwrap_or_else(|| "http".into());
    let host = h("x-forwarded-host")
        .filter(|v| is_host(v))
        .or_else(|| h("host").filter(|v| is_host(v)))
        .unwrap_or_else(|| app.config.listen.to_string());
    format!("{proto}://{host}")
}

/// A `host[:port]` (a name, an IPv4 address or a bracketed IPv6 address): nothing that could
/// end a quoted header parameter or add another.
pub fn is_host(s: &str) -> bool {
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = s.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else { return false };
        return v6.parse::<std::net::Ipv6Addr>().is_ok() && (after.is_empty() || after.strip_prefix(':').is_some_and(port_ok));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    port.is_none_or(port_ok)
        && !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// The peer address of the connection a request came on (set by `server`).
pub fn peer(extensions: &axum::http::Extensions) -> Option<std::net::SocketAddr> {
    extensions.get::<axum::extract::ConnectInfo<zerocopy::Peer>>().map(|c| c.0.0)
}

/// Extracts the connection's peer address (None when the request did not come through `server`).
pub struct ClientAddr(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<ClientAddr, Self::Rejection> {
        Ok(ClientAddr(peer(&parts.extensions)))
    }
}

/// Client IP and user agent, for the audit log. The first `X-Forwarded-For` address is the
/// client's when the request came through a trusted proxy (the server removes the header from
/// other peers' requests); without a peer address the header is not trusted at all.
pub fn client(headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> (String, String) {
    let forwarded = || {
        headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.trim().parse::<std::net::IpAddr>().ok())
            .map(|ip| ip.to_string())
    };
    let ip = peer.map(|p| forwarded().unwrap_or_else(|| p.ip().to_canonical().to_string())).unwrap_or_default();
    let ua = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").chars().take(256).collect();
    (ip, ua)
}

#[cfg(test)]
mod tests {
    #[test]
    fn forwarded_hosts_are_plain_host_and_port() {
        for ok in ["registry.example", "registry.example:443", "127.0.0.1:5000", "[::1]:5000", "[2001:db8::1]", "localhost"] {
            assert!(super::is_host(ok), "{ok}");
        }
        for bad in ["evil\"x", "a b", "a,b", "", ":80", "host:", "host:80:80", "[::1", "[zz]:1", "h/x", "a..b", "host:123456"] {
            assert!(!super::is_host(bad), "{bad}");
        }
    }
}
