//! The HTTP edge: routing, credential extraction, status codes and headers.
//! Handlers parse, authorize with `auth::policy`, call `domain`, and render.

pub mod api;
pub mod auth;
pub mod metrics;
pub mod oci;
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

/// The registry's public base URL: the configured one, else the request's
/// scheme and host (honouring X-Forwarded-Proto and X-Forwarded-Host).
pub fn base_url(app: &crate::app::App, headers: &HeaderMap) -> String {
    if let Some(u) = &app.config.external_url {
        return u.clone();
    }
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.split(',').next().unwrap_or("").trim().to_string());
    let proto = h("x-forwarded-proto").filter(|p| p == "http" || p == "https").unwrap_or_else(|| "http".into());
    let host = h("x-forwarded-host").or_else(|| h("host")).unwrap_or_else(|| app.config.listen.to_string());
    format!("{proto}://{host}")
}

/// The address of the connection a request came on, when the listener recorded it.
pub fn peer(extensions: &axum::http::Extensions) -> Option<std::net::SocketAddr> {
    extensions.get::<axum::extract::ConnectInfo<zerocopy::Peer>>().map(|c| c.0.0)
}

/// Client IP and user agent, for the audit log.
pub fn client(headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> (String, String) {
    let ip = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.split(',').next())
        .map(|s| s.trim().to_string())
        .or_else(|| peer.map(|p| p.ip().to_string()))
        .unwrap_or_default();
    let ua = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").chars().take(256).collect();
    (ip, ua)
}
