//! Harbor API group `repository`: list (per project and across projects), read, update the
//! description, and delete a repository with its artifacts.
//!
//! `{repository_name}` is the path inside the project, URL-encoded twice by Harbor clients
//! when it contains `/` (`a%252Fb`); a single encoding is accepted too. A repository in a
//! project the caller may not read is answered as a missing one.

use super::projects::{Req, json_body, ok, project_access};
use super::query::{Cond, Filter, parse_sort};
use super::{ApiError, ApiResult, Paging, paged, time};
use crate::app::{App, AppState};
use crate::auth::policy::ProjectFacts;
use crate::meta::{Audit, ProjectRow, RepoCond, RepoSort, RepositoryRow};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/repositories", get(list_all))
        .route("/projects/{project_name}/repositories", get(list))
        .route("/projects/{project_name}/repositories/{repository_name}", get(read).put(update).delete(remove))
}

/// The repository path inside its project, from a path value decoded once by the router.
pub(crate) fn repo_path(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

/// A repository the caller may do `action` on (resource `resource`), with its project.
pub(crate) async fn repository_access(
    app: &App,
    req: &Req,
    project: &str,
    raw_repo: &str,
    resource: &str,
    action: &str,
) -> ApiResult<(ProjectRow, ProjectFacts, RepositoryRow)> {
    let path = repo_path(raw_repo);
    let (row, facts) = project_access(app, req, project, resource, action).await?;
    let full = format!("{}/{path}", row.name);
    let repo = app.meta.repository(&full).await?.ok_or_else(|| ApiError::not_found(format!("repository {full} not found")))?;
    Ok((row, facts, repo))
}

pub(crate) fn repository_json(r: &RepositoryRow) -> Value {
    json!({
        "id": r.id,
        "project_id": r.project_id,
        "name": r.name,
        "description": r.description,
        "artifact_count": r.artifact_count,
        "pull_count": r.pull_count,
        "creation_time": time(r.creation_time),
        "update_time": time(r.update_time),
    })
}

const SORTS: &[&str] = &["name", "creation_time", "update_time", "pull_count", "id", "repository_id"];

/// Conditions and order from `q` and `sort`.
type RepoQuery = (Vec<RepoCond>, Vec<(RepoSort, bool)>);

fn query(req: &Req) -> ApiResult<RepoQuery> {
    let filter = Filter::parse(req.query("q").as_deref(), &["name", "project_id"])?;
    let mut conds = Vec::new();
    for (key, cond) in &filter.0 {
        match (key.as_str(), cond) {
            ("name", Cond::Exact(n)) => conds.push(RepoCond::NameIs(n.clone())),
            ("name", Cond::Fuzzy(n)) => conds.push(RepoCond::NameContains(n.clone())),
            ("project_id", Cond::Exact(id)) => {
                conds.push(RepoCond::Project(id.parse().map_err(|_| ApiError::bad_request("project_id must be an integer"))?))
            }
            (k, _) => {
                return Err(ApiError::bad_request(format!(
                    "query key {k} takes an exact value{}",
                    if k == "name" { " or ~fuzzy" } else { "" }
                )));
            }
        }
    }
    let sort = parse_sort(req.query("sort").as_deref(), SORTS)?
        .into_iter()
        .map(|(f, desc)| {
            let s = match f.as_str() {
                "name" => RepoSort::Name,
                "creation_time" => RepoSort::CreationTime,
                "update_time" => RepoSort::UpdateTime,
                "pull_count" => RepoSort::PullCount,
                _ => RepoSort::Id,
            };
            (s, desc)
        })
        .collect();
    Ok((conds, sort))
}

fn paging(req: &Req) -> ApiResult<Paging> {
    Paging::parse(req.query("page").as_deref(), req.query("page_size").as_deref())
}

async fn list_all(State(app): State<AppState>, req: Req) -> ApiResult<Response> {
    let paging = paging(&req)?;
    let (mut conds, sort) = query(&req)?;
    if !req.principal.is_sysadmin() {
        conds.push(RepoCond::VisibleTo(req.principal.user_id()));
    }
    if let Some(names) = req.principal.token_limits().and_then(|l| l.projects.clone()) {
        conds.push(RepoCond::ProjectNameIn(names));
    }
    let (total, rows) = app.meta.list_repositories(&conds, &sort, paging.offset(), paging.limit()).await?;
    let items: Vec<Value> = rows.iter().map(repository_json).collect();
    Ok(paged(&items, total, paging, &req.uri))
}

async fn list(State(app): State<AppState>, Path(project): Path<String>, req: Req) -> ApiResult<Response> {
    let paging = paging(&req)?;
    let (row, _) = project_access(&app, &req, &project, "repository", "list").await?;
    let (mut conds, sort) = query(&req)?;
    conds.push(RepoCond::Project(row.id));
    let (total, rows) = app.meta.list_repositories(&conds, &sort, paging.offset(), paging.limit()).await?;
    let items: Vec<Value> = rows.iter().map(repository_json).collect();
    Ok(paged(&items, total, paging, &req.uri))
}

async fn read(State(app): State<AppState>, Path((project, repo)): Path<(String, String)>, req: Req) -> ApiResult<axum::Json<Value>> {
    let (_, _, r) = repository_access(&app, &req, &project, &repo, "repository", "read").await?;
    Ok(axum::Json(repository_json(&r)))
}

#[derive(Deserialize)]
struct RepositoryUpdate {
    description: Option<String>,
}

async fn update(State(app): State<AppState>, Path((project, repo)): Path<(String, String)>, req: Req, body: Bytes) -> ApiResult<Response> {
    let (row, _, r) = repository_access(&app, &req, &project, &repo, "repository", "update").await?;
    let u: RepositoryUpdate = json_body(&body)?;
    let description = u.description.unwrap_or_default();
    crate::text::check("description", &description)?;
    if description.chars().count() > 1024 {
        return Err(ApiError::bad_request("description must be at most 1024 characters"));
    }
    let audit =
        Audit { project_id: Some(row.id), resource: r.name.clone(), resource_type: "repository", operation: "update", ..req.audit() };
    if !app.meta.update_repository(r.id, &description, &audit).await? {
        return Err(ApiError::not_found(format!("repository {} not found", r.name)));
    }
    Ok(ok())
}

async fn remove(State(app): State<AppState>, Path((project, repo)): Path<(String, String)>, req: Req) -> ApiResult<Response> {
    let (row, _, r) = repository_access(&app, &req, &project, &repo, "repository", "delete").await?;
    let audit =
        Audit { project_id: Some(row.id), resource: r.name.clone(), resource_type: "repository", operation: "delete", ..req.audit() };
    if !app.meta.delete_repository(r.id, &audit).await? {
        return Err(ApiError::not_found(format!("repository {} not found", r.name)));
    }
    Ok(ok())
}
