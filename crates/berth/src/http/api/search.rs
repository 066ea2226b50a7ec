//! Harbor API groups `search` and `statistic`.
//!
//! - `GET /search?q=`: projects and repositories whose name contains `q` (case-insensitive),
//!   among those the caller may see: every project for a system admin; public projects and
//!   those it is a member of for a user (a personal access token limited to some projects
//!   sees only those); public projects for anyone else (anonymous callers and robots, as
//!   Harbor does). At most `SEARCH_LIMIT` of each, by name.
//! - `GET /statistics`: signed-in callers only. Public counts for everyone; a system admin
//!   also gets totals and the storage used; anyone else the private projects it is a member
//!   of and their repositories (totals and storage stay 0, as Harbor reports them).

use super::projects::{Req, project_json};
use super::{ApiError, ApiResult, require_login};
use crate::app::AppState;
use crate::auth::policy::Principal;
use crate::domain::projects as dprojects;
use crate::error::Error;
use crate::meta::{ProjectCond, Viewer};
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The most projects and the most repositories one search returns.
pub const SEARCH_LIMIT: i64 = 1000;

pub fn routes() -> Router<AppState> {
    Router::new().route("/search", get(search)).route("/statistics", get(statistics))
}

/// What `principal` sees of the projects.
pub(crate) fn viewer(principal: &Principal) -> Viewer {
    Viewer {
        all: principal.is_sysadmin(),
        user_id: principal.user_id(),
        projects: principal.token_limits().and_then(|l| l.projects.clone()),
    }
}

/// `GET /search?q=`: Harbor's `Search` (`project`: `Project`s with repo counts and the
/// caller's roles; `repository`: `SearchRepository`s with pull and artifact counts).
async fn search(State(app): State<AppState>, req: Req) -> ApiResult<Response> {
    let Some(q) = req.query("q").filter(|q| !q.is_empty()) else {
        return Err(Error::Unprocessable("q in query is required: the text to look for in project and repository names".into()).into());
    };
    let v = viewer(&req.principal);
    let mut conds = vec![ProjectCond::NameContains(q.clone())];
    if !v.all {
        conds.push(ProjectCond::VisibleTo(v.user_id));
    }
    if let Some(names) = &v.projects {
        conds.push(ProjectCond::NameIn(names.clone()));
    }
    let (_, projects) = dprojects::list(&app, &req.principal, &conds, &[], 0, SEARCH_LIMIT).await?;
    let repositories = app.meta.search_repositories(&v, &q, SEARCH_LIMIT).await.map_err(ApiError::from)?;
    let body = json!({
        "project": projects.iter().map(|p| project_json(p, true)).collect::<Vec<_>>(),
        "repository": repositories.iter().map(|r| json!({
            "project_id": r.project_id,
            "project_name": r.project_name,
            "project_public": r.project_public,
            "repository_name": r.repository_name,
            "pull_count": r.pull_count,
            "artifact_count": r.artifact_count,
        })).collect::<Vec<Value>>(),
    });
    Ok(axum::Json(body).into_response())
}

/// `GET /statistics`: Harbor's `Statistic` for the caller.
async fn statistics(State(app): State<AppState>, req: Req) -> ApiResult<Response> {
    require_login(&req.principal)?;
    let s = app.meta.statistic(&viewer(&req.principal)).await.map_err(ApiError::from)?;
    Ok(axum::Json(json!({
        "private_project_count": s.private_project_count,
        "private_repo_count": s.private_repo_count,
        "public_project_count": s.public_project_count,
        "public_repo_count": s.public_repo_count,
        "total_project_count": s.total_project_count,
        "total_repo_count": s.total_repo_count,
        "total_storage_consumption": s.total_storage_consumption,
    }))
    .into_response())
}
