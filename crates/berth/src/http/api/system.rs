//! System endpoints that need no resource: `/ping` and Harbor's `/api/version`.

use crate::app::AppState;
use axum::Router;
use axum::routing::get;

pub fn routes() -> Router<AppState> {
    Router::new().route("/ping", get(|| async { "Pong" }))
}
