//! Harbor API group `member`: a project's members (users; groups are refused for now) and
//! their roles. Permissions are the project matrix's `member` create/read/update/delete/list;
//! a project the caller may not read is answered as a missing one. A caller gives a role
//! (adding a member or changing one's role) only if it holds, in the project, each of the
//! role's permissions that Harbor lets a robot hold (its project catalogue), so that no robot
//! or limited token hands out more than it has (a project admin holds them all).

use super::projects::{API_BASE, Req, json_body, ok, project_access};
use super::{ApiError, ApiResult, Paging, created, paged};
use crate::app::AppState;
use crate::auth::policy::{self, Principal, ProjectFacts, Scope};
use crate::domain::members::{self as dmembers, MemberUser};
use crate::domain::robots::PROJECT_CATALOGUE;
use crate::meta::{MemberRow, accounts_role};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects/{project_name_or_id}/members", get(list).post(create))
        .route("/projects/{project_name_or_id}/members/{mid}", get(read).put(update).delete(remove))
}

/// Harbor's `ProjectMemberEntity`.
fn member_json(m: &MemberRow) -> Value {
    json!({
        "id": m.id,
        "project_id": m.project_id,
        "entity_name": m.entity_name,
        "role_name": dmembers::role_name(m.role),
        "role_id": m.role,
        "entity_id": m.entity_id,
        "entity_type": m.entity_type,
    })
}

fn member_id(raw: &str) -> ApiResult<i64> {
    match raw.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::bad_request(format!("invalid member id {raw:?}: it must be a positive integer"))),
    }
}

/// Refuses a role whose grantable permissions the caller does not all hold itself, and
/// projectAdmin to anyone who does not hold all of its permissions (an unknown role is left to
/// the domain's validation).
fn may_give(caller: &Principal, facts: &ProjectFacts, role_id: i64) -> ApiResult<()> {
    let grantable = |r: &str, a: &str| PROJECT_CATALOGUE.iter().any(|(res, acts)| *res == r && acts.contains(&a));
    // projectAdmin holds the project itself (update, delete, members, configuration): only a
    // caller holding every one of its permissions may give it, never a robot.
    let every = role_id == accounts_role::PROJECT_ADMIN;
    let holds_all = policy::role_permissions(role_id)
        .filter(|(r, a)| every || grantable(r, a))
        .all(|(r, a)| policy::allows(caller, Scope::Project(Some(facts)), r, a));
    if holds_all {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "FORBIDDEN",
            format!("you may not give the role {}: it holds permissions you do not hold", dmembers::role_name(role_id)),
        ))
    }
}

/// `GET /projects/{project_name_or_id}/members?entityname=&page=&page_size=`.
async fn list(State(app): State<AppState>, req: Req, Path(p): Path<String>) -> ApiResult<Response> {
    let (row, _) = project_access(&app, &req, &p, "member", "list").await?;
    let paging = Paging::parse(req.query("page").as_deref(), req.query("page_size").as_deref())?;
    let name = req.query("entityname").filter(|v| !v.is_empty());
    let (total, members) = dmembers::list(&app, &row, name.as_deref(), paging.offset(), paging.limit()).await?;
    let items: Vec<Value> = members.iter().map(member_json).collect();
    Ok(paged(&items, total, paging, &req.uri))
}

#[derive(Deserialize)]
struct UserEntity {
    user_id: Option<i64>,
    username: Option<String>,
}

/// Harbor's `ProjectMember`.
#[derive(Deserialize)]
struct ProjectMemberBody {
    role_id: Option<i64>,
    member_user: Option<UserEntity>,
    member_group: Option<Value>,
}

/// `POST /projects/{project_name_or_id}/members`: 201 with `Location`; 409 for a member already there.
async fn create(State(app): State<AppState>, req: Req, Path(p): Path<String>, body: Bytes) -> ApiResult<Response> {
    let (row, facts) = project_access(&app, &req, &p, "member", "create").await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the project member should provide"));
    }
    let b: ProjectMemberBody = json_body(&body)?;
    let user = match &b.member_user {
        Some(UserEntity { user_id: Some(id), .. }) if *id > 0 => Some(MemberUser::Id(*id)),
        Some(UserEntity { username: Some(name), .. }) if !name.is_empty() => Some(MemberUser::Name(name.clone())),
        _ => None,
    };
    let user = match user {
        Some(u) => u,
        None if b.member_group.as_ref().is_some_and(|g| !g.is_null()) => {
            return Err(ApiError::bad_request("groups are not supported yet: add users with member_user"));
        }
        None => return Err(ApiError::bad_request("at least one of member_user or member_group must be provided")),
    };
    may_give(&req.principal, &facts, b.role_id.unwrap_or(0))?;
    let id = dmembers::add(&app, &row, &user, b.role_id.unwrap_or(0), req.audit()).await?;
    Ok(created(&format!("{API_BASE}/projects/{p}/members/{id}")))
}

/// `GET /projects/{project_name_or_id}/members/{mid}`.
async fn read(State(app): State<AppState>, req: Req, Path((p, mid)): Path<(String, String)>) -> ApiResult<Response> {
    let (row, _) = project_access(&app, &req, &p, "member", "read").await?;
    let m = dmembers::get(&app, &row, member_id(&mid)?).await?;
    Ok(axum::Json(member_json(&m)).into_response())
}

/// Harbor's `RoleRequest`.
#[derive(Deserialize)]
struct RoleRequest {
    role_id: Option<i64>,
}

/// `PUT /projects/{project_name_or_id}/members/{mid}` with `{"role_id": n}`.
async fn update(State(app): State<AppState>, req: Req, Path((p, mid)): Path<(String, String)>, body: Bytes) -> ApiResult<Response> {
    let (row, facts) = project_access(&app, &req, &p, "member", "update").await?;
    let mid = member_id(&mid)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("role can not be empty"));
    }
    let r: RoleRequest = json_body(&body)?;
    may_give(&req.principal, &facts, r.role_id.unwrap_or(0))?;
    dmembers::update_role(&app, &row, mid, r.role_id.unwrap_or(0), req.audit()).await?;
    Ok(ok())
}

/// `DELETE /projects/{project_name_or_id}/members/{mid}`.
async fn remove(State(app): State<AppState>, req: Req, Path((p, mid)): Path<(String, String)>) -> ApiResult<Response> {
    let (row, _) = project_access(&app, &req, &p, "member", "delete").await?;
    dmembers::remove(&app, &row, member_id(&mid)?, req.audit()).await?;
    Ok(ok())
}
