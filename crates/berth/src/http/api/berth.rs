//! Berth's own project endpoints, which Harbor lacks, under `/api/berth/v1` (never inside
//! `/api/v2.0`, so no future Harbor path collides with them):
//!
//! - `POST /api/berth/v1/projects/{project_name}/repositories` with `{"name": "<path>"}`:
//!   creates an empty repository (needed before a push when the project's metadata
//!   `auto_create_repository` is "false"); needs `repository:create` in the project.
//! - `GET|PUT /api/berth/v1/settings/project_limit_per_user`: how many projects a user may
//!   own, `{"project_limit_per_user": n}` with -1 for no limit; system admins only.

use super::projects::{Req, json_body, project_access};
use super::{ApiError, ApiResult, created};
use crate::app::AppState;
use crate::auth::policy::{self, Scope};
use crate::domain::projects as dprojects;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/berth/v1/projects/{project_name}/repositories", post(create_repository))
        .route("/api/berth/v1/settings/project_limit_per_user", get(read_limit).put(set_limit))
}

/// Harbor's way of putting a repository path in a URL: `/` encoded twice (`a/b` → `a%252Fb`).
fn encode_twice(path: &str) -> String {
    path.replace('/', "%252F")
}

async fn create_repository(State(app): State<AppState>, req: Req, Path(project): Path<String>, body: Bytes) -> ApiResult<Response> {
    // The project is named, never numbered, here.
    let mut req = req;
    req.headers.insert("x-is-resource-name", axum::http::HeaderValue::from_static("true"));
    let (row, _) = project_access(&app, &req, &project, "repository", "create").await?;
    let b: Value = json_body(&body)?;
    let Some(name) = b.get("name").and_then(Value::as_str) else {
        return Err(ApiError::bad_request("name is required: the repository path inside the project, e.g. {\"name\": \"team/app\"}"));
    };
    let repo = dprojects::create_repository(&app, &row, name, req.audit()).await?;
    Ok(created(&format!("/api/v2.0/projects/{}/repositories/{}", row.name, encode_twice(repo.path()))))
}

fn require_admin(req: &Req) -> ApiResult<()> {
    if policy::allows(&req.principal, Scope::System, "configuration", "update") {
        Ok(())
    } else if req.anonymous() {
        Err(ApiError::unauthorized())
    } else {
        Err(ApiError::forbidden())
    }
}

async fn read_limit(State(app): State<AppState>, req: Req) -> ApiResult<Response> {
    require_admin(&req)?;
    let limit = dprojects::limit_per_user(&app).await?;
    Ok(axum::Json(json!({ dprojects::LIMIT_PER_USER: limit })).into_response())
}

/// Takes `{"project_limit_per_user": n}` or a bare integer.
async fn set_limit(State(app): State<AppState>, req: Req, body: Bytes) -> ApiResult<Response> {
    require_admin(&req)?;
    let b: Value = json_body(&body)?;
    let limit = b
        .as_i64()
        .or_else(|| b.get(dprojects::LIMIT_PER_USER).and_then(Value::as_i64))
        .ok_or_else(|| ApiError::bad_request(format!("expected {{\"{}\": <integer, -1 for no limit>}}", dprojects::LIMIT_PER_USER)))?;
    dprojects::set_limit_per_user(&app, limit, req.audit()).await?;
    Ok(axum::Json(json!({ dprojects::LIMIT_PER_USER: limit })).into_response())
}
