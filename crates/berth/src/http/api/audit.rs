//! Harbor API group `auditlog` (`/audit-logs`, `/auditlog-exts`, `/auditlog-exts/events`) and
//! the project group's logs (`/projects/{project_name}/logs`, `/projects/{project_name}/auditlog-exts`).
//!
//! Both models read the one `audit_log` table: `AuditLog` (legacy) and `AuditLogExt` (with an
//! operation description and result). Who sees what, as Harbor decides it: callers holding the
//! system permission `audit-log:list` (system admins, system robots granted it) see every
//! record; other users see the records of the projects where they may `log:list` (project
//! admins), so a user with no such project gets an empty list; anonymous callers get 401. The
//! project lists need `log:list` in that project (403 without it, 404 for a project the caller
//! may not read, as for a missing one). The event types need `audit-log:list` (403 otherwise).
//!
//! `q` keys: `username` (or `operator`), `resource`, `resource_type`, `operation` (exact `k=v`,
//! case-insensitive substring `k=~v`, any of `k={a b}`), `op_time=[from~to]` (either bound may
//! be empty; `2020-04-09 02:36:00`, UTC) and, on the global lists, `project_id`. `sort` by
//! `op_time` (default newest first), `id`, `username`, `resource`, `resource_type`, `operation`.

use super::projects::{Req, project_access_by};
use super::query::{Cond, Filter, parse_sort};
use super::{ApiError, ApiResult, NameOrId, Paging, paged, time};
use crate::app::{App, AppState};
use crate::auth::policy::{self, ProjectFacts, Scope};
use crate::meta::{AuditFilter, AuditRow, AuditSort, AuditText};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/audit-logs", get(list_logs))
        .route("/auditlog-exts", get(list_exts))
        .route("/auditlog-exts/events", get(event_types))
        .route("/projects/{project_name_or_id}/logs", get(project_logs))
        .route("/projects/{project_name_or_id}/auditlog-exts", get(project_exts))
}

/// Harbor's audit event types (`operation_resourcetype`), in Harbor's order.
pub const EVENT_TYPES: &[&str] = &[
    "create_artifact",
    "delete_artifact",
    "pull_artifact",
    "create_project",
    "delete_project",
    "delete_repository",
    "login_user",
    "logout_user",
    "create_user",
    "delete_user",
    "update_user",
    "create_robot",
    "delete_robot",
    "update_configuration",
    "create_member",
    "delete_member",
    "update_member",
    "update_project",
];

const TEXT_KEYS: &[&str] = &["username", "operator", "resource", "resource_type", "operation"];
const SORT_FIELDS: &[&str] = &["op_time", "id", "username", "operator", "resource", "resource_type", "operation"];

/// The legacy `AuditLog`.
fn log_json(r: &AuditRow) -> Value {
    json!({
        "id": r.id,
        "username": r.operator,
        "resource": r.resource,
        "resource_type": r.resource_type,
        "operation": r.operation,
        "op_time": time(r.op_time),
    })
}

/// `AuditLogExt`.
fn ext_json(r: &AuditRow) -> Value {
    let mut v = log_json(r);
    v["operation_description"] = json!(description(r));
    v["operation_result"] = json!(r.success);
    v
}

/// The operation description, worded as Harbor words its events.
fn description(r: &AuditRow) -> String {
    let (kind, op, res) = (r.resource_type.as_str(), r.operation.as_str(), r.resource.as_str());
    match (kind, op) {
        ("user", "login" | "logout") => op.to_string(),
        ("artifact", "create") => format!("push artifact: {res}"),
        ("artifact" | "repository" | "project" | "tag", _) => format!("{op} {kind}: {res}"),
        _ => format!("{op} {kind} with name: {res}"),
    }
}

fn text_match(key: &str, cond: &Cond) -> ApiResult<AuditText> {
    match cond {
        Cond::Exact(v) => Ok(AuditText::AnyOf(vec![v.clone()])),
        Cond::Fuzzy(v) => Ok(AuditText::Contains(v.clone())),
        Cond::AnyOf(vs) => Ok(AuditText::AnyOf(vs.clone())),
        _ => Err(ApiError::bad_request(format!("{key} takes k=v, k=~v or k={{v1 v2}} in q"))),
    }
}

fn time_bound(v: &str) -> ApiResult<i64> {
    crate::time_fmt::parse_ms(v)
        .ok_or_else(|| ApiError::bad_request(format!("op_time bound {v:?} is not a time like 2020-04-09 02:36:00 (UTC)")))
}

/// The filter a `q` describes (with `project_id` only where `global`).
fn filter_of(q: Option<&str>, global: bool) -> ApiResult<(AuditFilter, Option<Vec<i64>>)> {
    let mut keys: Vec<&str> = TEXT_KEYS.to_vec();
    keys.push("op_time");
    if global {
        keys.push("project_id");
    }
    let parsed = Filter::parse(q, &keys)?;
    let mut f = AuditFilter::default();
    let mut projects = None;
    for (key, cond) in &parsed.0 {
        match key.as_str() {
            "username" | "operator" => f.operator = Some(text_match(key, cond)?),
            "resource" => f.resource = Some(text_match(key, cond)?),
            "resource_type" => f.resource_type = Some(text_match(key, cond)?),
            "operation" => f.operation = Some(text_match(key, cond)?),
            "op_time" => match cond {
                Cond::Range(a, b) => {
                    f.from = a.as_deref().map(time_bound).transpose()?;
                    f.to = b.as_deref().map(time_bound).transpose()?;
                }
                Cond::Exact(v) => {
                    let t = time_bound(v)?;
                    (f.from, f.to) = (Some(t), Some(t));
                }
                _ => return Err(ApiError::bad_request("op_time takes a range in q: op_time=[2020-04-09 00:00:00~2020-04-10 00:00:00]")),
            },
            _ => {
                let id =
                    |v: &String| v.parse::<i64>().map_err(|_| ApiError::bad_request(format!("project_id must be an integer, not {v:?}")));
                projects = Some(match cond {
                    Cond::Exact(v) => vec![id(v)?],
                    Cond::AnyOf(vs) => vs.iter().map(id).collect::<ApiResult<_>>()?,
                    _ => return Err(ApiError::bad_request("project_id takes k=v or k={v1 v2} in q")),
                });
            }
        }
    }
    Ok((f, projects))
}

fn sort_of(s: Option<&str>) -> ApiResult<Vec<(AuditSort, bool)>> {
    Ok(parse_sort(s, SORT_FIELDS)?
        .into_iter()
        .map(|(field, desc)| {
            let s = match field.as_str() {
                "id" => AuditSort::Id,
                "username" | "operator" => AuditSort::Operator,
                "resource" => AuditSort::Resource,
                "resource_type" => AuditSort::ResourceType,
                "operation" => AuditSort::Operation,
                _ => AuditSort::Time,
            };
            (s, desc)
        })
        .collect())
}

/// The projects whose records the caller may list; `None` for all of them.
async fn visible_projects(app: &App, req: &Req) -> ApiResult<Option<Vec<i64>>> {
    if req.anonymous() {
        return Err(ApiError::unauthorized());
    }
    if policy::allows(&req.principal, Scope::System, "audit-log", "list") {
        return Ok(None);
    }
    let Some(uid) = req.principal.user_id() else { return Ok(Some(vec![])) };
    let mut by_project: Vec<(i64, ProjectFacts)> = Vec::new();
    for (id, name, public, role) in app.meta.memberships(uid).await? {
        match by_project.last_mut() {
            Some((last, facts)) if *last == id => facts.roles.push(role),
            _ => by_project.push((id, ProjectFacts { name, public, roles: vec![role] })),
        }
    }
    Ok(Some(
        by_project
            .into_iter()
            .filter(|(_, facts)| policy::allows(&req.principal, Scope::Project(Some(facts)), "log", "list"))
            .map(|(id, _)| id)
            .collect(),
    ))
}

/// One page of records for `f`, rendered by `render`, with `X-Total-Count` and `Link`.
async fn page(app: &App, req: &Req, f: &AuditFilter, render: fn(&AuditRow) -> Value) -> ApiResult<Response> {
    let paging = Paging::parse(req.query("page").as_deref(), req.query("page_size").as_deref())?;
    let sort = sort_of(req.query("sort").as_deref())?;
    let total = app.meta.count_audit(f).await?;
    let rows = if total > paging.offset() { app.meta.list_audit(f, &sort, paging.offset(), paging.limit()).await? } else { vec![] };
    let items: Vec<Value> = rows.iter().map(render).collect();
    Ok(paged(&items, total, paging, &req.uri))
}

async fn global(app: &App, req: &Req, render: fn(&AuditRow) -> Value) -> ApiResult<Response> {
    let (mut f, wanted) = filter_of(req.query("q").as_deref(), true)?;
    f.projects = match (visible_projects(app, req).await?, wanted) {
        (None, wanted) => wanted,
        (Some(visible), None) => Some(visible),
        (Some(visible), Some(wanted)) => Some(wanted.into_iter().filter(|id| visible.contains(id)).collect()),
    };
    page(app, req, &f, render).await
}

async fn project(app: &App, req: &Req, name: &str, render: fn(&AuditRow) -> Value) -> ApiResult<Response> {
    // The path holds a project name, numeric or not.
    let (row, _) = project_access_by(app, req, NameOrId::Name(name.to_string()), "log", "list").await?;
    let (mut f, _) = filter_of(req.query("q").as_deref(), false)?;
    f.projects = Some(vec![row.id]);
    page(app, req, &f, render).await
}

/// `GET /audit-logs` (legacy model).
async fn list_logs(State(app): State<AppState>, req: Req) -> ApiResult<Response> {
    global(&app, &req, log_json).await
}

/// `GET /auditlog-exts`.
async fn list_exts(State(app): State<AppState>, req: Req) -> ApiResult<Response> {
    global(&app, &req, ext_json).await
}

/// `GET /projects/{project_name}/logs` (legacy model).
async fn project_logs(State(app): State<AppState>, req: Req, Path(name): Path<String>) -> ApiResult<Response> {
    project(&app, &req, &name, log_json).await
}

/// `GET /projects/{project_name}/auditlog-exts`.
async fn project_exts(State(app): State<AppState>, req: Req, Path(name): Path<String>) -> ApiResult<Response> {
    project(&app, &req, &name, ext_json).await
}

/// `GET /auditlog-exts/events`: `[{"event_type": ...}]`.
async fn event_types(req: Req) -> ApiResult<Response> {
    if !policy::allows(&req.principal, Scope::System, "audit-log", "list") {
        return Err(super::projects::denied(&req));
    }
    let body: Vec<Value> = EVENT_TYPES.iter().map(|e| json!({"event_type": e})).collect();
    Ok(axum::Json(body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, op: &str, res: &str) -> AuditRow {
        AuditRow {
            id: 1,
            op_time: 0,
            operator: "u".into(),
            project_id: None,
            resource: res.into(),
            resource_type: kind.into(),
            operation: op.into(),
            success: true,
        }
    }

    #[test]
    fn descriptions() {
        assert_eq!(description(&row("user", "login", "kim")), "login");
        assert_eq!(description(&row("artifact", "create", "p/a:v1")), "push artifact: p/a:v1");
        assert_eq!(description(&row("artifact", "pull", "p/a@sha256:1")), "pull artifact: p/a@sha256:1");
        assert_eq!(description(&row("project", "create", "p")), "create project: p");
        assert_eq!(description(&row("member", "update", "kim")), "update member with name: kim");
    }

    #[test]
    fn q_to_filter() {
        let (f, p) =
            filter_of(Some("username=~adm,resource_type={artifact tag},op_time=[2020-04-09 00:00:00~],project_id=3"), true).unwrap();
        assert_eq!(f.operator, Some(AuditText::Contains("adm".into())));
        assert_eq!(f.resource_type, Some(AuditText::AnyOf(vec!["artifact".into(), "tag".into()])));
        assert_eq!((f.from, f.to), (Some(1_586_390_400_000), None));
        assert_eq!(p, Some(vec![3]));
        assert!(filter_of(Some("project_id=3"), false).is_err());
        assert!(filter_of(Some("op_time=[yesterday~]"), true).is_err());
        assert!(filter_of(Some("password=x"), true).is_err());
    }
}
