//! Harbor API group `label`: `GET/POST /labels`, `GET/PUT/DELETE /labels/{label_id}`.
//!
//! Global labels (scope `g`) are read by any logged-in caller and managed by those
//! `policy::allows` to manage the system resource `label` (system admins). Project labels
//! (scope `p`) follow the project's `label` rows of the role matrix; a caller who may not
//! read the project gets the answer of a missing label (or project), whatever the operation
//! (an anonymous one too), and so does an anonymous caller naming a global label.

use super::projects::{API_BASE, Req, denied, json_body, ok};
use super::query::{Cond, Filter, parse_sort};
use super::{ApiError, ApiResult, Paging, created, paged, require_login, time};
use crate::app::{App, AppState};
use crate::auth::policy::{self, Scope};
use crate::domain::labels::{self as dlabels, LabelInput, SCOPE_GLOBAL};
use crate::domain::projects::{self as dprojects, ProjectKey};
use crate::meta::{LabelCond, LabelQuery, LabelRow, LabelSort};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new().route("/labels", get(list).post(create)).route("/labels/{label_id}", get(read).put(update).delete(remove))
}

/// Harbor's `Label` definition.
pub fn label_json(row: &LabelRow) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "color": row.color,
        "scope": row.scope,
        "project_id": row.project_id,
        "creation_time": time(row.creation_time),
        "update_time": time(row.update_time),
    })
}

/// Whether the caller may do `action` on the labels of `scope` (and project `project_id`):
/// `missing` when it may not know they exist, 403 (401 when anonymous) when it may read
/// the project or its labels but not do this. Global labels are read by any logged-in caller.
async fn authorize(app: &App, req: &Req, scope: &str, project_id: i64, action: &str, missing: impl Fn() -> ApiError) -> ApiResult<()> {
    let reading = matches!(action, "read" | "list");
    match scope {
        SCOPE_GLOBAL if reading => {
            if req.anonymous() {
                return Err(missing());
            }
            Ok(())
        }
        SCOPE_GLOBAL => {
            if policy::allows(&req.principal, Scope::System, "label", action) {
                Ok(())
            } else {
                Err(denied(req))
            }
        }
        _ => {
            let Some((_, facts)) = dprojects::lookup(app, ProjectKey::Id(project_id), &req.principal).await? else {
                return Err(missing());
            };
            let scope = Scope::Project(Some(&facts));
            // Holding the action is enough (a robot granted only label rights holds no
            // project read); otherwise the caller learns that the label exists only if it
            // may read the project or its labels.
            if policy::allows(&req.principal, scope, "label", action) {
                Ok(())
            } else if policy::allows(&req.principal, scope, "", "read") || policy::allows(&req.principal, scope, "label", "read") {
                Err(denied(req))
            } else {
                Err(missing())
            }
        }
    }
}

fn label_id(raw: &str) -> ApiResult<i64> {
    raw.parse::<i64>().map_err(|_| ApiError::bad_request(format!("label_id must be an integer, not {raw:?}")))
}

fn label_missing(id: i64) -> impl Fn() -> ApiError {
    move || ApiError::not_found(format!("label {id} not found"))
}

/// The label `raw` names, when the caller may do `action` on it.
async fn label_access(app: &App, req: &Req, raw: &str, action: &str) -> ApiResult<LabelRow> {
    let id = label_id(raw)?;
    let row = app.meta.label(id).await?.ok_or_else(label_missing(id))?;
    if row.scope == SCOPE_GLOBAL && req.anonymous() {
        // Anonymous callers may not read global labels, so none exists for them.
        return Err(label_missing(id)());
    }
    authorize(app, req, &row.scope, row.project_id, action, label_missing(id)).await?;
    Ok(row)
}

/// The conditions of a `q` filter on labels.
fn q_conditions(filter: &Filter) -> ApiResult<Vec<LabelCond>> {
    let int = |v: &str| v.parse::<i64>().map_err(|_| ApiError::bad_request(format!("id in q must be an integer, not {v:?}")));
    let mut out = Vec::new();
    for (key, cond) in &filter.0 {
        let c = match (key.as_str(), cond) {
            ("name", Cond::Exact(v)) => LabelCond::NameIn(vec![v.clone()]),
            ("name", Cond::AnyOf(vs)) => LabelCond::NameIn(vs.clone()),
            ("name", Cond::Fuzzy(v)) => LabelCond::NameContains(v.clone()),
            ("description", Cond::Exact(v)) => LabelCond::DescriptionIn(vec![v.clone()]),
            ("description", Cond::AnyOf(vs)) => LabelCond::DescriptionIn(vs.clone()),
            ("description", Cond::Fuzzy(v)) => LabelCond::DescriptionContains(v.clone()),
            ("color", Cond::Exact(v)) => LabelCond::ColorIn(vec![v.clone()]),
            ("color", Cond::AnyOf(vs)) => LabelCond::ColorIn(vs.clone()),
            ("id", Cond::Exact(v)) => LabelCond::IdIn(vec![int(v)?]),
            ("id", Cond::AnyOf(vs)) => LabelCond::IdIn(vs.iter().map(|v| int(v)).collect::<ApiResult<_>>()?),
            ("id", Cond::Range(a, b)) => LabelCond::IdRange(a.as_deref().map(int).transpose()?, b.as_deref().map(int).transpose()?),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unsupported condition on {key} in q: name and description take =, =~ and {{...}}, color takes = and {{...}}, id takes =, {{...}} and [min~max]"
                )));
            }
        };
        out.push(c);
    }
    Ok(out)
}

/// `GET /labels?scope=g` or `?scope=p&project_id=N`, with `name` (substring), `q`, `sort` and paging.
async fn list(State(app): State<AppState>, req: Req) -> ApiResult<Response> {
    let paging = Paging::parse(req.query("page").as_deref(), req.query("page_size").as_deref())?;
    let filter = Filter::parse(req.query("q").as_deref(), &["name", "description", "color", "id"])?;
    let sort = parse_sort(req.query("sort").as_deref(), &["id", "name", "description", "color", "creation_time", "update_time"])?;
    let project_id = match req.query("project_id").filter(|v| !v.is_empty()) {
        Some(v) => Some(v.parse::<i64>().map_err(|_| ApiError::bad_request(format!("project_id must be an integer, not {v:?}")))?),
        None => None,
    };
    let (scope, project_id) = dlabels::scope_of(&LabelInput { scope: req.query("scope"), project_id, ..Default::default() })?;
    if scope == SCOPE_GLOBAL {
        require_login(&req.principal)?;
    }
    authorize(&app, &req, scope, project_id, "list", || ApiError::not_found(format!("project {project_id} not found"))).await?;
    let mut conds = q_conditions(&filter)?;
    if let Some(name) = req.query("name").filter(|v| !v.is_empty()) {
        conds.push(LabelCond::NameContains(name));
    }
    let sort = sort
        .iter()
        .map(|(f, desc)| {
            let s = match f.as_str() {
                "name" => LabelSort::Name,
                "description" => LabelSort::Description,
                "color" => LabelSort::Color,
                "creation_time" => LabelSort::CreationTime,
                "update_time" => LabelSort::UpdateTime,
                _ => LabelSort::Id,
            };
            (s, *desc)
        })
        .collect();
    let query = LabelQuery { scope: scope.into(), project_id, conds, sort, offset: paging.offset(), limit: paging.limit() };
    let (rows, total) = app.meta.labels(&query).await?;
    let items: Vec<Value> = rows.iter().map(label_json).collect();
    Ok(paged(&items, total, paging, &req.uri))
}

/// `POST /labels`: 201 with `Location`; 409 when the scope (and project) has a label of that name.
async fn create(State(app): State<AppState>, req: Req, body: Bytes) -> ApiResult<Response> {
    let input: LabelInput = json_body(&body)?;
    let label = dlabels::new_label(&input)?;
    let pid = label.project_id;
    authorize(&app, &req, &label.scope, pid, "create", || ApiError::not_found(format!("project {pid} not found"))).await?;
    let label = dlabels::create(&app, label, req.audit()).await?;
    Ok(created(&format!("{API_BASE}/labels/{}", label.id)))
}

/// `GET /labels/{label_id}`.
async fn read(State(app): State<AppState>, req: Req, Path(raw): Path<String>) -> ApiResult<Response> {
    let row = label_access(&app, &req, &raw, "read").await?;
    Ok(axum::Json(label_json(&row)).into_response())
}

/// `PUT /labels/{label_id}`: name, description and color (scope and project stay).
async fn update(State(app): State<AppState>, req: Req, Path(raw): Path<String>, body: Bytes) -> ApiResult<Response> {
    let row = label_access(&app, &req, &raw, "update").await?;
    let input: LabelInput = json_body(&body)?;
    dlabels::update(&app, row, &input, req.audit()).await?;
    Ok(ok())
}

/// `DELETE /labels/{label_id}`: the label goes from every artifact too.
async fn remove(State(app): State<AppState>, req: Req, Path(raw): Path<String>) -> ApiResult<Response> {
    let row = label_access(&app, &req, &raw, "delete").await?;
    dlabels::delete(&app, &row, req.audit()).await?;
    Ok(ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_maps_to_conditions() {
        let f = Filter::parse(Some("name=~Re,id=[2~],color={#fff #000}"), &["name", "description", "color", "id"]).unwrap();
        assert_eq!(
            q_conditions(&f).unwrap(),
            vec![
                LabelCond::NameContains("Re".into()),
                LabelCond::IdRange(Some(2), None),
                LabelCond::ColorIn(vec!["#fff".into(), "#000".into()])
            ]
        );
        let bad = Filter::parse(Some("color=~f"), &["color"]).unwrap();
        assert!(q_conditions(&bad).is_err());
        let bad = Filter::parse(Some("id=x"), &["id"]).unwrap();
        assert!(q_conditions(&bad).is_err());
    }
}
