//! Harbor API groups `ping`, `systeminfo` and `health`.
//!
//! - `GET /ping`: `Pong`.
//! - `GET /systeminfo`: Harbor's `GeneralInfo`. Anonymous callers get what Harbor gives them
//!   (`auth_mode`, `primary_auth_mode`, `self_registration`, `banner_message`,
//!   `oidc_provider_name`); signed-in callers also the protected part (`external_url`,
//!   `registry_url`, `project_creation_restriction`, `has_ca_root`, `harbor_version`,
//!   `read_only`, `registry_storage_provider_name`, `notification_enable`, `current_time`).
//! - `GET /systeminfo/volumes`: total and free bytes of the volume holding the blobs (the
//!   data directory when blobs are in S3), for callers with `system-volumes:read` (admins).
//! - `GET /systeminfo/getcert`: 404; Berth has no default root certificate to hand out.
//! - `GET /health`: `core`, `database` (a query) and `registry` (the blob store lists its
//!   root), checked concurrently with a time limit; 200 whether healthy or not, as Harbor.

use super::projects::{Req, denied};
use super::{ApiError, ApiResult};
use crate::app::{App, AppState};
use crate::auth::policy::{self, Scope};
use crate::config::Storage;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::time::Duration;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ping", get(|| async { "Pong" }))
        .route("/systeminfo", get(info))
        .route("/systeminfo/volumes", get(volumes))
        .route("/systeminfo/getcert", get(cert))
        .route("/health", get(health))
}

/// The Harbor API release whose behaviour Berth follows, then Berth's own version
/// (Harbor reports `<release>-<commit>`).
pub const VERSION: &str = concat!("v2.15.2-berth.", env!("CARGO_PKG_VERSION"));

/// How long one component's health check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// `GET /systeminfo`.
async fn info(State(app): State<AppState>, req: Req) -> ApiResult<Response> {
    let mut body = json!({
        "auth_mode": "db_auth",
        "primary_auth_mode": false,
        "self_registration": app.meta.self_registration().await?,
        "banner_message": "",
        "oidc_provider_name": "",
    });
    if !req.anonymous() {
        let external_url = crate::http::base_url(&app, &req.headers);
        let registry_url = external_url.split_once("://").map(|(_, host)| host.to_string()).unwrap_or_else(|| external_url.clone());
        let restriction = if crate::domain::projects::admin_only_creation(&app).await? { "adminonly" } else { "everyone" };
        let provider = match app.config.storage {
            Storage::Fs { .. } => "filesystem",
            Storage::S3 { .. } => "s3",
        };
        body["external_url"] = json!(external_url);
        body["registry_url"] = json!(registry_url);
        body["project_creation_restriction"] = json!(restriction);
        body["has_ca_root"] = json!(false);
        body["harbor_version"] = json!(VERSION);
        body["read_only"] = json!(false);
        body["registry_storage_provider_name"] = json!(provider);
        body["notification_enable"] = json!(false);
        body["current_time"] = json!(super::time(crate::meta::now_ms()));
    }
    Ok(axum::Json(body).into_response())
}

/// `GET /systeminfo/volumes`: Harbor's `SystemInfo` with one `Storage`.
async fn volumes(State(app): State<AppState>, req: Req) -> ApiResult<Response> {
    if !policy::allows(&req.principal, Scope::System, "system-volumes", "read") {
        return Err(denied(&req));
    }
    let path = match &app.config.storage {
        Storage::Fs { root } => root.clone(),
        Storage::S3 { .. } => app.config.data.clone(),
    };
    let stat = tokio::task::spawn_blocking(move || rustix::fs::statvfs(&path).map_err(|e| format!("statvfs {}: {e}", path.display())))
        .await
        .map_err(crate::error::Error::internal)?
        .map_err(crate::error::Error::Internal)?;
    let total = stat.f_blocks.saturating_mul(stat.f_frsize);
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    Ok(axum::Json(json!({"storage": [{"total": total, "free": free}]})).into_response())
}

/// `GET /systeminfo/getcert`: Harbor answers 404 when it has no CA certificate; Berth never has one.
async fn cert() -> ApiError {
    ApiError::not_found(
        "Berth has no default root certificate: it does not issue certificates (serve it behind TLS with your own certificate)",
    )
}

/// One component's status.
fn component(name: &str, result: Result<(), String>) -> Value {
    match result {
        Ok(()) => json!({"name": name, "status": "healthy"}),
        Err(e) => json!({"name": name, "status": "unhealthy", "error": e}),
    }
}

async fn within_limit(check: impl Future<Output = Result<(), String>>) -> Result<(), String> {
    tokio::time::timeout(CHECK_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| Err(format!("failed to check the health status: no answer within {} s", CHECK_TIMEOUT.as_secs())))
}

// The reason goes to the log; the unauthenticated answer says only what failed.
async fn check_database(app: &App) -> Result<(), String> {
    app.meta.ping().await.map_err(|e| {
        tracing::warn!("health: the metadata database does not answer: {e}");
        "the metadata database does not answer".to_string()
    })
}

async fn check_registry(app: &App) -> Result<(), String> {
    app.blobs.check().await.map_err(|e| {
        tracing::warn!("health: the blob store does not answer: {e}");
        "the blob store does not answer".to_string()
    })
}

/// `GET /health`: Harbor's `OverallHealthStatus`, components by name.
async fn health(State(app): State<AppState>) -> Response {
    let (database, registry) = tokio::join!(within_limit(check_database(&app)), within_limit(check_registry(&app)));
    let components = [component("core", Ok(())), component("database", database), component("registry", registry)];
    let healthy = components.iter().all(|c| c["status"] == "healthy");
    axum::Json(json!({"status": if healthy { "healthy" } else { "unhealthy" }, "components": components})).into_response()
}
