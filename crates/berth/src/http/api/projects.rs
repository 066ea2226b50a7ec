//! Harbor API groups `project` and `projectMetadata`: create, check, list, read, update and
//! delete projects, their deletability and summary, and their metadata.
//!
//! Every project endpoint answers a caller who may not read the project exactly as it
//! answers for a project that does not exist (404, same body); a reader without the
//! permission an operation needs gets 403 (401 when anonymous). Also shared here with
//! `members` and `berth`: the request context (`Req`), project resolution with those rules
//! (`project_access`), and JSON body parsing.

use super::query::{Cond, Filter, parse_sort};
use super::{ApiError, ApiResult, NameOrId, Paging, created, paged, time};
use crate::app::{App, AppState};
use crate::auth::policy::{self, Principal, ProjectFacts, Scope};
use crate::domain::members as dmembers;
use crate::domain::projects::{self as dprojects, Allowlist, CreateRequest, ProjectKey, ProjectView, UpdateRequest};
use crate::http::zerocopy::Peer;
use crate::meta::{Audit, ProjectCond, ProjectIntCol, ProjectRow, ProjectSort, accounts_role as role};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::net::SocketAddr;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects", get(list).head(head).post(create))
        .route("/projects/{project_name_or_id}", get(read).put(update).delete(remove))
        .route("/projects/{project_name_or_id}/_deletable", get(deletable))
        .route("/projects/{project_name_or_id}/summary", get(summary))
        .route("/projects/{project_name_or_id}/metadatas/", get(list_metadata).post(add_metadata))
        .route("/projects/{project_name_or_id}/metadatas", get(list_metadata).post(add_metadata))
        .route("/projects/{project_name_or_id}/metadatas/{meta_name}", get(read_metadata).put(set_metadata).delete(delete_metadata))
}

/// Harbor's base path, which nested routes no longer see in their URI.
pub(crate) const API_BASE: &str = "/api/v2.0";

/// What a handler needs from a request: the caller, headers, the peer and the query.
pub(crate) struct Req {
    pub principal: Principal,
    pub headers: HeaderMap,
    pub peer: Option<SocketAddr>,
    pub uri: Uri,
}

impl FromRequestParts<AppState> for Req {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Req, ApiError> {
        let peer = parts.extensions.get::<ConnectInfo<Peer>>().map(|c| c.0.0);
        let principal = super::caller(app, &parts.headers, peer).await?;
        Ok(Req { principal, headers: parts.headers.clone(), peer, uri: parts.uri.clone() })
    }
}

impl Req {
    /// An audit record naming the caller, its address and user agent.
    pub fn audit(&self) -> Audit {
        let (client_ip, user_agent) = crate::http::client(&self.headers, self.peer);
        Audit { operator: self.principal.name().to_string(), client_ip, user_agent, ..Default::default() }
    }

    /// The first value of a query parameter.
    pub fn query(&self, key: &str) -> Option<String> {
        crate::http::auth::form_pairs(self.uri.query().unwrap_or("")).find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn anonymous(&self) -> bool {
        matches!(self.principal, Principal::Anonymous)
    }

    /// Whether a header is `true` (case-insensitive).
    pub fn flag(&self, name: &str) -> bool {
        self.headers.get(name).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// 401 for anonymous callers, 403 for the others.
pub(crate) fn denied(req: &Req) -> ApiError {
    if req.anonymous() { ApiError::unauthorized() } else { ApiError::forbidden() }
}

/// The project named by a path value, when the caller may read it and do `action` on
/// `resource` in it. A project the caller may neither read nor do the operation in is
/// answered as a missing one.
pub(crate) async fn project_access(app: &App, req: &Req, raw: &str, resource: &str, action: &str) -> ApiResult<(ProjectRow, ProjectFacts)> {
    project_access_by(app, req, NameOrId::parse(raw, &req.headers), resource, action).await
}

/// Like `project_access`, for a project already named by id or name.
pub(crate) async fn project_access_by(
    app: &App,
    req: &Req,
    key: NameOrId,
    resource: &str,
    action: &str,
) -> ApiResult<(ProjectRow, ProjectFacts)> {
    let missing = || match &key {
        NameOrId::Id(id) => ApiError::not_found(format!("project {id} not found")),
        NameOrId::Name(name) => ApiError::not_found(format!("project {name} not found")),
    };
    let dkey = match &key {
        NameOrId::Id(id) => ProjectKey::Id(*id),
        NameOrId::Name(name) => ProjectKey::Name(name),
    };
    let Some((row, facts)) = dprojects::lookup(app, dkey, &req.principal).await? else { return Err(missing()) };
    let scope = Scope::Project(Some(&facts));
    // Whoever may do the operation knows the project (a robot holds no `read` on the project itself).
    if !policy::allows(&req.principal, scope, "", "read") && !policy::allows(&req.principal, scope, resource, action) {
        return Err(missing());
    }
    if !policy::allows(&req.principal, scope, resource, action) {
        return Err(denied(req));
    }
    Ok((row, facts))
}

/// A JSON request body; 400 with the parser's message when it is missing or malformed.
pub(crate) fn json_body<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("a JSON request body is required"));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

/// `200 OK` with an empty body.
pub(crate) fn ok() -> Response {
    StatusCode::OK.into_response()
}

/// The role Harbor reports as the caller's (the most powerful one held).
fn highest_role(roles: &[i64]) -> i64 {
    let power = |r: i64| match r {
        role::PROJECT_ADMIN => 50,
        role::MAINTAINER => 40,
        role::DEVELOPER => 30,
        role::GUEST => 20,
        role::LIMITED_GUEST => 10,
        _ => 0,
    };
    roles.iter().copied().filter(|r| power(*r) > 0).max_by_key(|r| power(*r)).unwrap_or(0)
}

/// Harbor's zero time, which it reports for an allowlist that was never stored.
const ZERO_TIME: &str = "0001-01-01T00:00:00.000Z";

/// Harbor's `Project`; `detail` adds the owner's name, the metadata and the CVE allowlist.
pub(crate) fn project_json(v: &ProjectView, detail: bool) -> Value {
    let d = &v.detail;
    let mut o = json!({
        "project_id": d.id,
        "owner_id": d.owner_id,
        "name": d.name,
        "creation_time": time(d.creation_time),
        "update_time": time(d.update_time),
        "current_user_role_id": highest_role(&v.roles),
        "current_user_role_ids": v.roles,
        "repo_count": d.repo_count,
    });
    if detail {
        o["owner_name"] = json!(d.owner_name);
        let mut md = Map::new();
        for (k, val) in &v.metadata {
            if dprojects::HARBOR_METADATA_KEYS.contains(&k.as_str()) {
                md.insert(k.clone(), json!(val));
            }
        }
        md.insert("public".into(), json!(d.public.to_string()));
        o["metadata"] = Value::Object(md);
        let mut al = match &v.allowlist {
            Some(a) => json!({
                "id": a.id,
                "project_id": d.id,
                "items": dprojects::allowlist_items(a).into_iter().map(|c| json!({"cve_id": c})).collect::<Vec<_>>(),
                "creation_time": time(a.creation_time),
                "update_time": time(a.update_time),
            }),
            None => json!({"id": 0, "project_id": d.id, "items": [], "creation_time": ZERO_TIME, "update_time": ZERO_TIME}),
        };
        if let Some(exp) = v.allowlist.as_ref().and_then(|a| a.expires_at) {
            al["expires_at"] = json!(exp);
        }
        o["cve_allowlist"] = al;
    }
    o
}

/// A boolean query parameter as go-swagger reads it; 422 otherwise.
fn bool_param(name: &str, v: &str) -> ApiResult<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "t" | "yes" | "y" | "on" => Ok(true),
        "false" | "0" | "f" | "no" | "n" | "off" => Ok(false),
        _ => Err(crate::error::Error::Unprocessable(format!("{name} in query must be of type boolean: {v:?}")).into()),
    }
}

fn int_value(key: &str, v: &str) -> ApiResult<i64> {
    v.parse::<i64>().map_err(|_| ApiError::bad_request(format!("{key} must be an integer, not {v:?}")))
}

/// The conditions of a `q` filter on projects.
fn q_conditions(filter: &Filter) -> ApiResult<Vec<ProjectCond>> {
    let mut out = Vec::new();
    for (key, cond) in &filter.0 {
        let unsupported = || ApiError::bad_request(format!("unsupported condition on {key} in q"));
        let c = match (key.as_str(), cond) {
            ("name", Cond::Exact(v)) => ProjectCond::NameIn(vec![v.clone()]),
            ("name", Cond::Fuzzy(v)) => ProjectCond::NameContains(v.clone()),
            ("name", Cond::AnyOf(vs)) => ProjectCond::NameIn(vs.clone()),
            ("project_id" | "owner_id", c) => {
                let col = if key == "project_id" { ProjectIntCol::Id } else { ProjectIntCol::OwnerId };
                match c {
                    Cond::Exact(v) => ProjectCond::IntIn(col, vec![int_value(key, v)?]),
                    Cond::AnyOf(vs) => ProjectCond::IntIn(col, vs.iter().map(|v| int_value(key, v)).collect::<ApiResult<_>>()?),
                    Cond::Range(a, b) => ProjectCond::IntRange(
                        col,
                        a.as_deref().map(|v| int_value(key, v)).transpose()?,
                        b.as_deref().map(|v| int_value(key, v)).transpose()?,
                    ),
                    _ => return Err(unsupported()),
                }
            }
            ("public", Cond::Exact(v)) => ProjectCond::Public(
                bool_param("public", v).map_err(|_| ApiError::bad_request(format!("public must be true or false, not {v:?}")))?,
            ),
            ("owner", Cond::Exact(v)) => ProjectCond::OwnerName(v.clone()),
            _ => return Err(unsupported()),
        };
        out.push(c);
    }
    Ok(out)
}

/// `GET /projects`: the projects the caller may see (public ones and those it is a member of;
/// all for a system admin), filtered, sorted and paged.
async fn list(State(app): State<AppState>, req: Req) -> ApiResult<Response> {
    let paging = Paging::parse(req.query("page").as_deref(), req.query("page_size").as_deref())?;
    let filter = Filter::parse(req.query("q").as_deref(), &["name", "project_id", "owner_id", "public", "owner"])?;
    let sort = parse_sort(req.query("sort").as_deref(), &["name", "project_id", "owner_id", "creation_time", "update_time"])?;
    let public = req.query("public").filter(|v| !v.is_empty()).map(|v| bool_param("public", &v)).transpose()?;
    let with_detail =
        req.query("with_detail").filter(|v| !v.is_empty()).map(|v| bool_param("with_detail", &v)).transpose()?.unwrap_or(true);
    let mut conds = q_conditions(&filter)?;
    if let Some(name) = req.query("name").filter(|v| !v.is_empty()) {
        conds.push(ProjectCond::NameContains(name));
    }
    if let Some(owner) = req.query("owner").filter(|v| !v.is_empty()) {
        conds.push(ProjectCond::OwnerName(owner));
    }
    if let Some(p) = public {
        conds.push(ProjectCond::Public(p));
    }
    if !req.principal.is_sysadmin() {
        conds.push(ProjectCond::VisibleTo(req.principal.user_id()));
    }
    // A personal access token limited to some projects lists only those.
    if let Some(names) = req.principal.token_limits().and_then(|l| l.projects.clone()) {
        conds.push(ProjectCond::NameIn(names));
    }
    let sort: Vec<(ProjectSort, bool)> = sort
        .iter()
        .map(|(f, desc)| {
            let s = match f.as_str() {
                "project_id" => ProjectSort::Id,
                "owner_id" => ProjectSort::OwnerId,
                "creation_time" => ProjectSort::CreationTime,
                "update_time" => ProjectSort::UpdateTime,
                _ => ProjectSort::Name,
            };
            (s, *desc)
        })
        .collect();
    let (total, views) = dprojects::list(&app, &req.principal, &conds, &sort, paging.offset(), paging.limit()).await?;
    let items: Vec<Value> = views.iter().map(|v| project_json(v, with_detail)).collect();
    Ok(paged(&items, total, paging, &req.uri))
}

/// `HEAD /projects?project_name=`: 200 when the caller can see a project of that name, else 404.
async fn head(State(app): State<AppState>, req: Req) -> ApiResult<Response> {
    let Some(name) = req.query("project_name").filter(|v| !v.is_empty()) else {
        return Err(ApiError::bad_request("project_name is required"));
    };
    let visible = match dprojects::lookup(&app, ProjectKey::Name(&name), &req.principal).await? {
        Some((_, facts)) => policy::allows(&req.principal, Scope::Project(Some(&facts)), "", "read"),
        None => false,
    };
    if visible { Ok(ok()) } else { Err(ApiError::not_found(format!("project {name} not found"))) }
}

/// Harbor's `CVEAllowlist` in a request.
#[derive(Deserialize)]
struct AllowlistBody {
    project_id: Option<i64>,
    expires_at: Option<i64>,
    items: Option<Vec<AllowlistItemBody>>,
}

#[derive(Deserialize)]
struct AllowlistItemBody {
    cve_id: Option<String>,
}

impl AllowlistBody {
    fn allowlist(&self) -> Allowlist {
        Allowlist {
            items: self.items.iter().flatten().map(|i| i.cve_id.clone().unwrap_or_default()).collect(),
            expires_at: self.expires_at,
        }
    }
}

/// Harbor's `ProjectReq`.
#[derive(Deserialize)]
struct ProjectReqBody {
    project_name: Option<String>,
    public: Option<bool>,
    metadata: Option<Map<String, Value>>,
    cve_allowlist: Option<AllowlistBody>,
    storage_limit: Option<i64>,
    registry_id: Option<i64>,
}

impl ProjectReqBody {
    /// Metadata pairs as sent: values must be strings (null counts as not given).
    fn metadata(&self) -> ApiResult<Vec<(String, String)>> {
        let mut out = Vec::new();
        for (k, v) in self.metadata.iter().flatten() {
            match v {
                Value::String(s) => out.push((k.clone(), s.clone())),
                Value::Null => {}
                other => return Err(ApiError::bad_request(format!("metadata.{k} must be a string, like \"true\", not {other}"))),
            }
        }
        Ok(out)
    }

    /// `metadata.public` (only "true" or "false", as Harbor checks), else the deprecated `public`.
    fn public(&self, metadata: &[(String, String)]) -> ApiResult<Option<bool>> {
        match metadata.iter().find(|(k, _)| k == "public").map(|(_, v)| v.as_str()) {
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some("") | None => Ok(self.public),
            Some(other) => Err(ApiError::bad_request(format!("metadata.public should only be 'true' or 'false', but got: '{other}'"))),
        }
    }

    fn check_unsupported(&self) -> ApiResult<()> {
        if self.registry_id.is_some_and(|r| r != 0) {
            return Err(ApiError::bad_request("proxy cache projects (registry_id) are not supported yet"));
        }
        if self.storage_limit.is_some_and(|l| l < -1) {
            return Err(ApiError::bad_request("storage_limit must be -1 (unlimited) or a number of bytes"));
        }
        Ok(())
    }
}

/// `POST /projects`: 201 with `Location` (the id, or the name with `X-Resource-Name-In-Location: true`).
async fn create(State(app): State<AppState>, req: Req, body: Bytes) -> ApiResult<Response> {
    if req.anonymous() {
        return Err(ApiError::unauthorized());
    }
    let r: ProjectReqBody = json_body(&body)?;
    r.check_unsupported()?;
    let name = r.project_name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::bad_request(format!("project_name is required: {}", dprojects::NAME_RULE)));
    }
    let metadata = r.metadata()?;
    let public = r.public(&metadata)?.unwrap_or(false);
    let allowlist = r.cve_allowlist.as_ref().map(AllowlistBody::allowlist);
    let create = CreateRequest { name: name.clone(), public, metadata, allowlist };
    let id = dprojects::create(&app, &req.principal, &create, req.audit()).await?;
    let location =
        if req.flag("x-resource-name-in-location") { format!("{API_BASE}/projects/{name}") } else { format!("{API_BASE}/projects/{id}") };
    Ok(created(&location))
}

/// `GET /projects/{project_name_or_id}`.
async fn read(State(app): State<AppState>, req: Req, Path(p): Path<String>) -> ApiResult<Response> {
    let (row, _) = project_access(&app, &req, &p, "", "read").await?;
    let view = dprojects::view(&app, &req.principal, &row).await?;
    Ok(axum::Json(project_json(&view, true)).into_response())
}

/// `PUT /projects/{project_name_or_id}`: visibility, metadata (merged) and CVE allowlist.
async fn update(State(app): State<AppState>, req: Req, Path(p): Path<String>, body: Bytes) -> ApiResult<Response> {
    let (row, _) = project_access(&app, &req, &p, "", "update").await?;
    let r: ProjectReqBody = json_body(&body)?;
    let metadata = r.metadata()?;
    let public = r.public(&metadata)?;
    if let Some(a) = &r.cve_allowlist
        && a.project_id.is_some_and(|id| id != 0 && id != row.id)
    {
        return Err(ApiError::bad_request(format!(
            "project_id in cve_allowlist must be {} but it's {}",
            row.id,
            a.project_id.unwrap_or_default()
        )));
    }
    let allowlist = r.cve_allowlist.as_ref().map(AllowlistBody::allowlist);
    dprojects::update(&app, &row, &UpdateRequest { public, metadata, allowlist }, req.audit()).await?;
    Ok(ok())
}

/// `DELETE /projects/{project_name_or_id}`: 412 while the project holds repositories.
async fn remove(State(app): State<AppState>, req: Req, Path(p): Path<String>) -> ApiResult<Response> {
    let (row, _) = project_access(&app, &req, &p, "", "delete").await?;
    dprojects::delete(&app, &row, req.audit()).await?;
    Ok(ok())
}

/// `GET /projects/{project_name_or_id}/_deletable`.
async fn deletable(State(app): State<AppState>, req: Req, Path(p): Path<String>) -> ApiResult<Response> {
    let (row, _) = project_access(&app, &req, &p, "", "delete").await?;
    let body = match dprojects::undeletable_reason(&app, &row).await? {
        None => json!({"deletable": true}),
        Some(message) => json!({"deletable": false, "message": message}),
    };
    Ok(axum::Json(body).into_response())
}

/// `GET /projects/{project_name_or_id}/summary`: repositories; the quota for members (`quota:read`);
/// members by role for callers who may list members.
async fn summary(State(app): State<AppState>, req: Req, Path(p): Path<String>) -> ApiResult<Response> {
    let (row, facts) = project_access(&app, &req, &p, "", "read").await?;
    let view = dprojects::view(&app, &req.principal, &row).await?;
    let mut body = json!({"repo_count": view.detail.repo_count});
    // As Harbor with quota_per_project_enable (its default): members see the storage used
    // (bytes of the distinct blobs the project's repositories hold) against the hard limit,
    // -1 (unlimited) until quotas exist.
    if policy::allows(&req.principal, Scope::Project(Some(&facts)), "quota", "read") {
        let used = app.meta.project_storage_used(&row.name).await?;
        body["quota"] = json!({"hard": {"storage": -1}, "used": {"storage": used}});
    }
    if policy::allows(&req.principal, Scope::Project(Some(&facts)), "member", "list") {
        let [admins, maintainers, developers, guests, limited] = dmembers::counts(&app, &row).await?;
        body["project_admin_count"] = json!(admins);
        body["maintainer_count"] = json!(maintainers);
        body["developer_count"] = json!(developers);
        body["guest_count"] = json!(guests);
        body["limited_guest_count"] = json!(limited);
    }
    Ok(axum::Json(body).into_response())
}

/// A metadata request body: an object of strings.
fn metadata_body(body: &[u8]) -> ApiResult<Vec<(String, String)>> {
    let map: Map<String, Value> = json_body(body)?;
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            other => Err(ApiError::bad_request(format!("the value of {k} must be a string, like \"true\", not {other}"))),
        })
        .collect()
}

/// `GET /projects/{project_name_or_id}/metadatas/`: every stored key (Berth's own keys included).
async fn list_metadata(State(app): State<AppState>, req: Req, Path(p): Path<String>) -> ApiResult<Response> {
    let (row, _) = project_access(&app, &req, &p, "metadata", "read").await?;
    let view = dprojects::view(&app, &req.principal, &row).await?;
    let map: Map<String, Value> = view.metadata.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    Ok(axum::Json(Value::Object(map)).into_response())
}

/// `POST /projects/{project_name_or_id}/metadatas/`: adds keys; 409 for a key the project has.
async fn add_metadata(State(app): State<AppState>, req: Req, Path(p): Path<String>, body: Bytes) -> ApiResult<Response> {
    let (row, _) = project_access(&app, &req, &p, "metadata", "create").await?;
    let pairs = metadata_body(&body)?;
    dprojects::add_metadata(&app, &row, &pairs, req.audit()).await?;
    Ok(ok())
}

/// `GET /projects/{project_name_or_id}/metadatas/{meta_name}`: `{meta_name: value}`.
async fn read_metadata(State(app): State<AppState>, req: Req, Path((p, key)): Path<(String, String)>) -> ApiResult<Response> {
    let (row, _) = project_access(&app, &req, &p, "metadata", "read").await?;
    match app.meta.project_metadata_value(row.id, &key).await.map_err(ApiError::from)? {
        Some(v) => Ok(axum::Json(json!({ key: v })).into_response()),
        None => Err(ApiError::not_found(format!("metadata {key} not found in project {}", row.name))),
    }
}

/// `PUT /projects/{project_name_or_id}/metadatas/{meta_name}` with `{meta_name: value}`.
async fn set_metadata(State(app): State<AppState>, req: Req, Path((p, key)): Path<(String, String)>, body: Bytes) -> ApiResult<Response> {
    let (row, _) = project_access(&app, &req, &p, "metadata", "update").await?;
    let pairs = metadata_body(&body)?;
    let Some((_, value)) = pairs.into_iter().find(|(k, _)| *k == key) else {
        return Err(ApiError::bad_request(format!("the body must hold the key {key}, like {{\"{key}\": \"true\"}}")));
    };
    dprojects::set_metadata(&app, &row, &key, &value, req.audit()).await?;
    Ok(ok())
}

/// `DELETE /projects/{project_name_or_id}/metadatas/{meta_name}`.
async fn delete_metadata(State(app): State<AppState>, req: Req, Path((p, key)): Path<(String, String)>) -> ApiResult<Response> {
    let (row, _) = project_access(&app, &req, &p, "metadata", "delete").await?;
    dprojects::delete_metadata(&app, &row, &key, req.audit()).await?;
    Ok(ok())
}
