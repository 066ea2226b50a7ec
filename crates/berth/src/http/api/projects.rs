//! Harbor API group `projects` (filled in by its own change).

use crate::app::AppState;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
}
