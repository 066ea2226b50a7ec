//! Harbor API groups `robot` (`/robots`) and `permissions` (`/permissions`).

use super::projects::json_body;
use super::query::{Cond, Filter};
use super::{ApiError, ApiResult, Caller, Paging, paged, require_login, time};
use crate::app::AppState;
use crate::auth::policy::{self, Scope};
use crate::domain::robots::{self, PROJECT_CATALOGUE, RobotCreate, SYSTEM_CATALOGUE};
use crate::http::ClientAddr;
use crate::meta::{RobotAccess, RobotRow};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/robots", get(list).post(create))
        .route("/robots/{robot_id}", get(read).put(update).delete(remove).patch(refresh))
        .route("/permissions", get(permissions))
}

fn view(r: &RobotRow, access: &[RobotAccess]) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "level": r.level,
        "duration": r.duration,
        "editable": true,
        "disable": r.disabled,
        "expires_at": r.expires_at,
        "permissions": robots::group(access),
        "creator_type": r.creator_type,
        "creator_ref": r.creator_ref,
        "creation_time": time(r.creation_time),
        "update_time": time(r.update_time),
    })
}

async fn create(
    State(app): State<AppState>,
    caller: Caller,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    require_login(&caller.0)?;
    let req: RobotCreate = json_body(&body)?;
    crate::text::check("description", req.description.as_deref().unwrap_or(""))?;
    let (row, secret) = robots::create(&app, &caller.0, req, super::caller_audit(&caller, &headers, peer)).await?;
    let body =
        json!({"id": row.id, "name": row.name, "secret": secret, "creation_time": time(row.creation_time), "expires_at": row.expires_at});
    let mut r = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v2.0/robots/{}", row.id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// `q=Level=project,ProjectID=3` lists a project's robots; otherwise system robots.
async fn list(State(app): State<AppState>, caller: Caller, uri: Uri, Query(q): Query<HashMap<String, String>>) -> ApiResult<Response> {
    require_login(&caller.0)?;
    let paging = Paging::parse(q.get("page").map(String::as_str), q.get("page_size").map(String::as_str))?;
    let filter = Filter::parse(q.get("q").map(String::as_str), &["Level", "ProjectID", "level", "project_id", "name"])?;
    let exact = |k: &str, k2: &str| match filter.get(k).or_else(|| filter.get(k2)) {
        Some(Cond::Exact(v)) => Some(v.clone()),
        _ => None,
    };
    let project_id = match (exact("Level", "level").as_deref(), exact("ProjectID", "project_id")) {
        (Some("project"), Some(id)) | (None, Some(id)) => {
            Some(id.parse::<i64>().map_err(|_| ApiError::bad_request("ProjectID must be an integer"))?)
        }
        (Some("project"), None) => return Err(ApiError::bad_request("Level=project needs ProjectID")),
        _ => None,
    };
    let (rows, total) = robots::list(&app, &caller.0, project_id, paging.offset(), paging.limit()).await?;
    let items: Vec<Value> = rows.iter().map(|(r, a)| view(r, a)).collect();
    Ok(paged(&items, total, paging, &uri))
}

async fn read(State(app): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<Json<Value>> {
    require_login(&caller.0)?;
    let (row, access) = robots::get(&app, &caller.0, id).await?;
    Ok(Json(view(&row, &access)))
}

async fn update(
    State(app): State<AppState>,
    caller: Caller,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    require_login(&caller.0)?;
    let req: RobotCreate = json_body(&body)?;
    crate::text::check("description", req.description.as_deref().unwrap_or(""))?;
    robots::update(&app, &caller.0, id, req, super::caller_audit(&caller, &headers, peer)).await?;
    Ok(StatusCode::OK)
}

#[derive(serde::Deserialize, Default)]
struct RobotSec {
    secret: Option<String>,
}

async fn refresh(
    State(app): State<AppState>,
    caller: Caller,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Option<Json<RobotSec>>,
) -> ApiResult<Json<Value>> {
    require_login(&caller.0)?;
    let wanted = body.and_then(|Json(b)| b.secret);
    let secret = robots::refresh(&app, &caller.0, id, wanted, super::caller_audit(&caller, &headers, peer)).await?;
    Ok(Json(json!({"secret": secret})))
}

async fn remove(
    State(app): State<AppState>,
    caller: Caller,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    require_login(&caller.0)?;
    robots::delete(&app, &caller.0, id, super::caller_audit(&caller, &headers, peer)).await?;
    Ok(StatusCode::OK)
}

/// The catalogue of grantable permissions: `system` for system admins, `project` for them and project admins.
async fn permissions(State(app): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    require_login(&caller.0)?;
    let flat = |c: &[(&str, &[&str])]| {
        c.iter().flat_map(|(r, acts)| acts.iter().map(move |a| json!({"resource": r, "action": a}))).collect::<Vec<_>>()
    };
    let admin = policy::allows(&caller.0, Scope::System, "robot", "create");
    let project_admin =
        admin || caller.0.user_id().is_some() && app.meta.is_project_admin_anywhere(caller.0.user_id().unwrap_or(0)).await?;
    if !project_admin {
        return Err(ApiError::forbidden());
    }
    let mut body = json!({"project": flat(PROJECT_CATALOGUE)});
    if admin {
        body["system"] = json!(flat(SYSTEM_CATALOGUE));
    }
    Ok(Json(body))
}
