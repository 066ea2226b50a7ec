//! Harbor API group `user`: local accounts, profiles, passwords, the system-admin flag,
//! the caller's own account and permissions.
//!
//! Who may do what is Harbor's (`src/server/v2.0/handler/user.go`): listing, creating (unless
//! self-registration is on), deleting and the admin flag need a system admin (`user` in the
//! system scope, through `policy::allows`); a user may read and update its own account and
//! change its own password given the current one; a non-admin asking about another user gets
//! 403, whether that user exists or not. Anonymous callers get 401. What could hand a caller
//! another account's power needs a system admin itself (a user, or an access token without
//! limits), never a robot, whatever its grants: creating accounts (unless self-registration
//! is on), the admin flag, and setting another user's password. An access token limited to
//! projects or actions changes no account, not even its own user's. Harbor's lists leave out
//! the admin created at installation (user id 1), and so do these; that admin cannot be
//! deleted, and nobody can delete themselves.

use super::query::{Cond, Filter, parse_sort};
use super::{ApiError, ApiResult, Caller, Paging, created, paged, require_login, time};
use crate::app::AppState;
use crate::auth::policy::{self, Principal, Scope};
use crate::domain::users::{self, NewUser, Profile};
use crate::error::Error;
use crate::http::zerocopy::Peer;
use crate::meta::{Audit, TextMatch, UserColumn, UserListQuery, UserOrder, UserProfileRow};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, NestedPath, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/current", get(current_user))
        .route("/users/current/permissions", get(current_permissions))
        .route("/users/search", get(search_users))
        .route("/users/{user_id}", get(get_user).put(update_user).delete(delete_user))
        .route("/users/{user_id}/password", put(update_password))
        .route("/users/{user_id}/sysadmin", put(set_sysadmin))
        .route("/users/{user_id}/cli_secret", put(set_cli_secret))
}

/// The system id of the admin created at installation, which Harbor never lists nor deletes.
const BOOTSTRAP_ADMIN_ID: i64 = 1;

/// Who is asking from where, for the audit log.
struct Client {
    ip: String,
    user_agent: String,
}

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Client, ApiError> {
        let peer = parts.extensions.get::<ConnectInfo<Peer>>().map(|c| c.0.0);
        let (ip, user_agent) = crate::http::client(&parts.headers, peer);
        Ok(Client { ip, user_agent })
    }
}

impl Client {
    fn audit(self, operator: &str) -> Audit {
        Audit { operator: operator.to_string(), client_ip: self.ip, user_agent: self.user_agent, ..Default::default() }
    }
}

/// May `p` do `action` on users in general (a system admin)?
fn admin_may(p: &Principal, action: &str) -> bool {
    policy::allows(p, Scope::System, "user", action)
}

fn is_self(p: &Principal, id: i64) -> bool {
    p.user_id() == Some(id)
}

fn user_id(raw: &str) -> ApiResult<i64> {
    raw.parse::<i64>().map_err(|_| ApiError::bad_request(format!("user_id must be an integer, got {raw:?}")))
}

/// A JSON request body; a clear 400 when it is missing or malformed.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("a JSON request body is required"));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

fn query_map(raw: Option<&str>) -> HashMap<String, String> {
    crate::http::auth::form_pairs(raw.unwrap_or("")).collect()
}

fn ok() -> Response {
    StatusCode::OK.into_response()
}

/// Harbor's `UserResp`: never a password or hash; `oidc_user_meta` is left out (no OIDC users).
fn user_resp(u: &UserProfileRow) -> Value {
    json!({
        "user_id": u.id,
        "username": u.username,
        "email": u.email.as_deref().unwrap_or(""),
        "realname": u.realname,
        "comment": u.comment,
        "sysadmin_flag": u.sysadmin,
        "admin_role_in_auth": false,
        "creation_time": time(u.creation_time),
        "update_time": time(u.update_time),
    })
}

#[derive(Deserialize)]
struct UserCreationReq {
    username: Option<String>,
    email: Option<String>,
    realname: Option<String>,
    comment: Option<String>,
    password: Option<String>,
}

/// `POST /users`: a system admin creates a user; with self-registration on, anyone may.
async fn create_user(
    State(app): State<AppState>,
    Caller(p): Caller,
    client: Client,
    nested: NestedPath,
    bytes: Bytes,
) -> ApiResult<Response> {
    if !p.is_sysadmin() && !users::self_registration(&app).await? {
        require_login(&p)?;
        return Err(Error::Forbidden("only system admins may create users (self-registration is off)".into()).into());
    }
    let req: UserCreationReq = body(&bytes)?;
    let new = NewUser {
        username: req.username.unwrap_or_default(),
        email: req.email.unwrap_or_default(),
        realname: req.realname.unwrap_or_default(),
        comment: req.comment.unwrap_or_default(),
        password: req.password.unwrap_or_default(),
    };
    // A self-registered account is created by its own user.
    let operator = if require_login(&p).is_ok() { p.name().to_string() } else { new.username.clone() };
    let id = users::create(&app, new, &client.audit(&operator)).await?;
    Ok(created(&format!("{}/users/{id}", nested.as_str())))
}

/// `q` keys and `sort` fields of `GET /users`.
const LIST_KEYS: &[&str] = &["username", "email"];
const SORT_FIELDS: &[&str] = &["user_id", "username", "email", "realname", "creation_time", "update_time"];

fn text_match(key: &str, cond: &Cond) -> ApiResult<TextMatch> {
    match cond {
        Cond::Exact(v) => Ok(TextMatch::Exact(v.clone())),
        Cond::Fuzzy(v) => Ok(TextMatch::Contains(v.clone())),
        Cond::AnyOf(vs) => Ok(TextMatch::AnyOf(vs.clone())),
        Cond::Range(..) | Cond::AllOf(_) => {
            Err(ApiError::bad_request(format!("{key} supports exact (k=v), fuzzy (k=~v) and any-of (k={{v1 v2}}) matches only")))
        }
    }
}

fn column(key: &str) -> UserColumn {
    if key == "email" { UserColumn::Email } else { UserColumn::Username }
}

/// `GET /users`: system admins only; `q` on username and email, `sort`, paging.
async fn list_users(State(app): State<AppState>, Caller(p): Caller, uri: Uri, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    require_login(&p)?;
    if !admin_may(&p, "list") {
        return Err(Error::Forbidden("only system admins may list users".into()).into());
    }
    let q = query_map(raw.as_deref());
    let paging = Paging::parse(q.get("page").map(String::as_str), q.get("page_size").map(String::as_str))?;
    let filter = Filter::parse(q.get("q").map(String::as_str), LIST_KEYS)?;
    let mut filters = Vec::new();
    for (key, cond) in &filter.0 {
        filters.push((column(key), text_match(key, cond)?));
    }
    // Harbor also accepts `username=` and `email=` as fuzzy matches.
    for key in LIST_KEYS {
        if let Some(v) = q.get(*key).filter(|v| !v.is_empty()) {
            filters.push((column(key), TextMatch::Contains(v.clone())));
        }
    }
    let mut order: Vec<(UserOrder, bool)> = parse_sort(q.get("sort").map(String::as_str), SORT_FIELDS)?
        .into_iter()
        .map(|(field, desc)| {
            let o = match field.as_str() {
                "user_id" => UserOrder::Id,
                "email" => UserOrder::Email,
                "realname" => UserOrder::Realname,
                "creation_time" => UserOrder::CreationTime,
                "update_time" => UserOrder::UpdateTime,
                _ => UserOrder::Username,
            };
            (o, desc)
        })
        .collect();
    if order.is_empty() {
        order.push((UserOrder::Username, false));
    }
    let query = UserListQuery { filters, order, exclude_bootstrap_admin: true, offset: paging.offset(), limit: paging.limit() };
    let (rows, total) = users::list(&app, &query).await?;
    let items: Vec<Value> = rows.iter().map(user_resp).collect();
    Ok(paged(&items, total, paging, &uri))
}

/// `GET /users/search?username=`: any logged-in user; user ids and names only.
async fn search_users(State(app): State<AppState>, Caller(p): Caller, uri: Uri, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    require_login(&p)?;
    let q = query_map(raw.as_deref());
    let paging = Paging::parse(q.get("page").map(String::as_str), q.get("page_size").map(String::as_str))?;
    let Some(name) = q.get("username").filter(|v| !v.is_empty()) else {
        return Err(ApiError::bad_request("the query parameter username is required: the text to look for in user names"));
    };
    let query = UserListQuery {
        filters: vec![(UserColumn::Username, TextMatch::Contains(name.clone()))],
        order: vec![(UserOrder::Username, false)],
        exclude_bootstrap_admin: true,
        offset: paging.offset(),
        limit: paging.limit(),
    };
    let (rows, total) = users::list(&app, &query).await?;
    let items: Vec<Value> = rows.iter().map(|u| json!({"user_id": u.id, "username": u.username})).collect();
    Ok(paged(&items, total, paging, &uri))
}

/// `GET /users/current`: the caller's own account.
async fn current_user(State(app): State<AppState>, Caller(p): Caller) -> ApiResult<Response> {
    require_login(&p)?;
    let Some(id) = p.user_id() else {
        return Err(Error::Precondition(format!("{} is not a user account", p.name())).into());
    };
    let u = users::get(&app, id).await?;
    Ok(axum::Json(user_resp(&u)).into_response())
}

/// `GET /users/current/permissions?scope=/project/<id>&relative=`: what the caller may do there.
async fn current_permissions(State(app): State<AppState>, Caller(p): Caller, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    require_login(&p)?;
    let q = query_map(raw.as_deref());
    let scope = q.get("scope").map(String::as_str).unwrap_or("");
    let relative = match q.get("relative").map(String::as_str) {
        None | Some("") | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => return Err(ApiError::bad_request(format!("relative must be true or false, got {other:?}"))),
    };
    let perms = users::permissions(&app, &p, scope, relative).await?;
    let items: Vec<Value> = perms.iter().map(|x| json!({"resource": x.resource, "action": x.action})).collect();
    Ok(axum::Json(items).into_response())
}

/// `GET /users/{user_id}`: a system admin, or the user itself.
async fn get_user(State(app): State<AppState>, Caller(p): Caller, Path(raw): Path<String>) -> ApiResult<Response> {
    require_login(&p)?;
    let id = user_id(&raw)?;
    if !is_self(&p, id) && !admin_may(&p, "read") {
        return Err(Error::Forbidden(format!("not authorized to read user {id}")).into());
    }
    let u = users::get(&app, id).await?;
    Ok(axum::Json(user_resp(&u)).into_response())
}

/// A system admin may change any user; a user may change itself (not through a limited token).
fn require_modifiable(p: &Principal, id: i64) -> ApiResult<()> {
    require_login(p)?;
    if p.is_limited() {
        return Err(Error::Forbidden("an access token limited to projects or actions cannot change accounts".into()).into());
    }
    if is_self(p, id) || admin_may(p, "update") {
        Ok(())
    } else {
        Err(Error::Forbidden(format!("user {id} can't be updated by {}", p.name())).into())
    }
}

#[derive(Deserialize)]
struct UserProfileReq {
    email: Option<String>,
    realname: Option<String>,
    comment: Option<String>,
}

/// `PUT /users/{user_id}`: replaces e-mail, real name and comment.
async fn update_user(
    State(app): State<AppState>,
    Caller(p): Caller,
    client: Client,
    Path(raw): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    require_login(&p)?;
    let id = user_id(&raw)?;
    require_modifiable(&p, id)?;
    let req: UserProfileReq = body(&bytes)?;
    let profile = Profile {
        email: req.email.unwrap_or_default(),
        realname: req.realname.unwrap_or_default(),
        comment: req.comment.unwrap_or_default(),
    };
    users::update_profile(&app, id, &profile, &client.audit(p.name())).await?;
    Ok(ok())
}

/// `DELETE /users/{user_id}`: system admins; not themselves, not the installation's admin.
async fn delete_user(State(app): State<AppState>, Caller(p): Caller, client: Client, Path(raw): Path<String>) -> ApiResult<Response> {
    require_login(&p)?;
    let id = user_id(&raw)?;
    if !admin_may(&p, "delete") {
        return Err(Error::Forbidden("only system admins may delete users".into()).into());
    }
    if is_self(&p, id) || id == BOOTSTRAP_ADMIN_ID {
        return Err(Error::Forbidden(format!("user {id} cannot be deleted: nobody can delete themselves or the initial admin")).into());
    }
    users::delete(&app, id, &client.audit(p.name())).await?;
    Ok(ok())
}

#[derive(Deserialize)]
struct PasswordReq {
    old_password: Option<String>,
    new_password: Option<String>,
}

/// `PUT /users/{user_id}/password`: users change their own password given the current one;
/// a system admin resets another user's without it.
async fn update_password(
    State(app): State<AppState>,
    Caller(p): Caller,
    client: Client,
    Path(raw): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    require_login(&p)?;
    let id = user_id(&raw)?;
    require_modifiable(&p, id)?;
    let req: PasswordReq = body(&bytes)?;
    let old = req.old_password.unwrap_or_default();
    let current = if is_self(&p, id) { Some((p.name(), old.as_str())) } else { None };
    if current.is_none() && !p.is_sysadmin() {
        return Err(Error::Forbidden(format!("only a system admin may set the password of user {id}")).into());
    }
    users::change_password(&app, id, current, &req.new_password.unwrap_or_default(), &client.audit(p.name())).await?;
    Ok(ok())
}

#[derive(Deserialize)]
struct SysAdminFlagReq {
    sysadmin_flag: Option<bool>,
}

/// `PUT /users/{user_id}/sysadmin`: system admins grant or revoke the role.
async fn set_sysadmin(
    State(app): State<AppState>,
    Caller(p): Caller,
    client: Client,
    Path(raw): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    require_login(&p)?;
    let id = user_id(&raw)?;
    if !p.is_sysadmin() {
        return Err(Error::Forbidden("only system admins may change the system admin role".into()).into());
    }
    let req: SysAdminFlagReq = body(&bytes)?;
    let Some(flag) = req.sysadmin_flag else {
        return Err(ApiError::bad_request("sysadmin_flag (true or false) is required"));
    };
    users::set_sysadmin(&app, id, flag, &client.audit(p.name())).await?;
    Ok(ok())
}

/// `PUT /users/{user_id}/cli_secret`: CLI secrets exist only for OIDC users, and Berth
/// authenticates against its own database, so Harbor's answer applies: 412.
async fn set_cli_secret() -> ApiResult<Response> {
    Err(Error::Precondition("unable to update CLI secret under authmode: db_auth".into()).into())
}
