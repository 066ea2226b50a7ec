//! Harbor API group `artifact`: list, read, copy and delete artifacts; their tags,
//! accessories, additions and labels.
//!
//! `{reference}` is a digest or a tag. A page of artifacts is read with a fixed number of
//! queries whatever its size: the rows, then tags, labels, accessories and index children for
//! the whole page.

use super::projects::{Req, json_body, ok, project_access};
use super::query::{Cond, Filter, parse_sort};
use super::repositories::{repo_path, repository_access};
use super::{ApiError, ApiResult, Paging, paged, time};
use crate::app::{App, AppState};
use crate::domain::artifacts as dartifacts;
use crate::meta::{ArtifactCond, ArtifactRow, ArtifactScope, ArtifactSort, Audit, RepositoryRow, TagRow, TagSort};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use oci::{Digest, Manifest, RepoName};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    const BASE: &str = "/projects/{project_name}/repositories/{repository_name}/artifacts";
    Router::new()
        .route(BASE, get(list).post(copy))
        .route("/projects/{project_name_or_id}/artifacts", get(list_in_project))
        .route(&format!("{BASE}/{{reference}}"), get(read).delete(remove))
        .route(&format!("{BASE}/{{reference}}/tags"), get(list_tags).post(create_tag))
        .route(&format!("{BASE}/{{reference}}/tags/{{tag_name}}"), delete(delete_tag))
        .route(&format!("{BASE}/{{reference}}/accessories"), get(list_accessories))
        .route(&format!("{BASE}/{{reference}}/additions/{{addition}}"), get(addition))
        .route(&format!("{BASE}/{{reference}}/labels"), axum::routing::post(add_label))
        .route(&format!("{BASE}/{{reference}}/labels/{{label_id}}"), delete(remove_label))
}

/// Harbor's time for "never" (an artifact or tag not pulled yet).
const NEVER: &str = "0001-01-01T00:00:00.000Z";

fn opt_time(t: Option<i64>) -> String {
    t.map(time).unwrap_or_else(|| NEVER.to_string())
}

/// Which optional parts an artifact view carries.
#[derive(Clone, Copy, Default)]
struct With {
    tag: bool,
    label: bool,
    scan_overview: bool,
    sbom_overview: bool,
    signature: bool,
    immutable_status: bool,
    accessory: bool,
}

impl With {
    fn parse(req: &Req) -> ApiResult<With> {
        let flag = |name: &str, default: bool| -> ApiResult<bool> {
            match req.query(name).as_deref() {
                None | Some("") => Ok(default),
                Some("true") => Ok(true),
                Some("false") => Ok(false),
                Some(v) => Err(ApiError::bad_request(format!("{name} must be true or false, not {v:?}"))),
            }
        };
        Ok(With {
            tag: flag("with_tag", true)?,
            label: flag("with_label", false)?,
            scan_overview: flag("with_scan_overview", false)?,
            sbom_overview: flag("with_sbom_overview", false)?,
            signature: flag("with_signature", false)?,
            immutable_status: flag("with_immutable_status", false)?,
            accessory: flag("with_accessory", false)?,
        })
    }
}

/// The artifact API path of repository `name` (`project/path`).
fn api_base(name: &str) -> String {
    let (project, path) = name.split_once('/').unwrap_or((name, ""));
    let encoded = path.replace('/', "%252F");
    format!("{}/projects/{project}/repositories/{encoded}/artifacts", super::API_PREFIX)
}

/// A tag; `immutable` is false until immutability rules exist.
fn tag_json(t: &TagRow, _with_immutable: bool) -> Value {
    json!({
        "id": t.id,
        "repository_id": t.repository_id,
        "artifact_id": t.manifest_id,
        "name": t.name,
        "push_time": time(t.push_time),
        "pull_time": opt_time(t.pull_time),
        "immutable": false,
    })
}

fn accessory_json(a: &ArtifactRow, subject_id: i64, subject_digest: &str, repo: &str) -> Value {
    json!({
        "id": a.id,
        "artifact_id": a.id,
        "subject_artifact_id": subject_id,
        "subject_artifact_digest": subject_digest,
        "subject_artifact_repo": repo,
        "size": a.size,
        "digest": a.digest,
        "type": a.accessory_type.clone().unwrap_or_else(|| "subject.accessory".into()),
        "icon": "",
        "creation_time": time(a.push_time),
    })
}

/// What a page of artifacts needs besides the rows, fetched once for the whole page.
struct Extras {
    tags: HashMap<i64, Vec<TagRow>>,
    /// (repository id, subject digest) → accessories.
    accessories: HashMap<(i64, String), Vec<ArtifactRow>>,
    /// (repository id, digest) → manifest id.
    child_ids: HashMap<(i64, String), i64>,
    labels: HashMap<i64, Vec<Value>>,
}

async fn extras(app: &App, rows: &[ArtifactRow], with: With) -> ApiResult<Extras> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut repos: Vec<i64> = rows.iter().map(|r| r.repository_id).collect();
    repos.sort_unstable();
    repos.dedup();
    let mut tags: HashMap<i64, Vec<TagRow>> = HashMap::new();
    if with.tag {
        for t in app.meta.tags_of_artifacts(&ids).await? {
            tags.entry(t.manifest_id).or_default().push(t);
        }
    }
    let mut accessories: HashMap<(i64, String), Vec<ArtifactRow>> = HashMap::new();
    if with.accessory || with.signature {
        let digests: Vec<String> = rows.iter().map(|r| r.digest.clone()).collect();
        for a in app.meta.accessories_of(&repos, &digests).await? {
            accessories.entry((a.repository_id, a.accessory_of.clone().unwrap_or_default())).or_default().push(a);
        }
    }
    let children: Vec<String> = rows.iter().flat_map(|r| children_of(r).into_iter().map(|c| c.digest.to_string())).collect();
    let child_ids = app.meta.manifest_ids(&repos, &children).await?.into_iter().map(|(repo, d, id)| ((repo, d), id)).collect();
    let mut labels: HashMap<i64, Vec<Value>> = HashMap::new();
    if with.label {
        for (id, l) in app.meta.labels_of_artifacts(&ids).await? {
            labels.entry(id).or_default().push(super::labels::label_json(&l));
        }
    }
    Ok(Extras { tags, accessories, child_ids, labels })
}

fn children_of(r: &ArtifactRow) -> Vec<oci::Descriptor> {
    if r.media_type != oci::media::OCI_INDEX && r.media_type != oci::media::DOCKER_MANIFEST_LIST {
        return vec![];
    }
    Manifest::parse(&r.content, &r.media_type).map(|m| m.manifests).unwrap_or_default()
}

fn artifact_json(r: &ArtifactRow, x: &Extras, with: With) -> Value {
    let base = api_base(&r.repository_name);
    let parse = |s: &Option<String>| s.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok());
    let mut v = json!({
        "id": r.id,
        "type": r.artifact_kind,
        "media_type": r.config_media_type.clone().unwrap_or_else(|| r.media_type.clone()),
        "manifest_media_type": r.media_type,
        "artifact_type": r.artifact_type.clone().or_else(|| r.config_media_type.clone()).unwrap_or_else(|| r.media_type.clone()),
        "project_id": r.project_id,
        "repository_id": r.repository_id,
        "repository_name": r.repository_name,
        "digest": r.digest,
        "size": r.size,
        "icon": "",
        "push_time": time(r.push_time),
        "pull_time": opt_time(r.pull_time),
        "extra_attrs": parse(&r.extra_attrs).unwrap_or_else(|| json!({})),
        "annotations": parse(&r.annotations).unwrap_or_else(|| json!({})),
    });
    let refs: Vec<Value> = children_of(r)
        .iter()
        .map(|c| {
            let digest = c.digest.to_string();
            let mut e = json!({"parent_id": r.id, "child_digest": digest});
            if let Some(id) = x.child_ids.get(&(r.repository_id, digest.clone())) {
                e["child_id"] = json!(id);
            }
            if let Some(p) = &c.platform {
                e["platform"] = p.clone();
            }
            if let Some(a) = &c.annotations {
                e["annotations"] = json!(a);
            }
            e
        })
        .collect();
    if !refs.is_empty() {
        v["references"] = json!(refs);
    }
    let mut links = Map::new();
    for name in dartifacts::additions(&r.artifact_kind) {
        links.insert((*name).into(), json!({"href": format!("{base}/{}/additions/{name}", r.digest), "absolute": false}));
    }
    if r.artifact_kind == "IMAGE" {
        links
            .insert("vulnerabilities".into(), json!({"href": format!("{base}/{}/additions/vulnerabilities", r.digest), "absolute": false}));
    }
    if !links.is_empty() {
        v["addition_links"] = Value::Object(links);
    }
    if with.tag {
        let tags: Vec<Value> =
            x.tags.get(&r.id).map(|ts| ts.iter().map(|t| tag_json(t, with.immutable_status)).collect()).unwrap_or_default();
        v["tags"] = json!(tags);
    }
    if with.label {
        v["labels"] = json!(x.labels.get(&r.id).cloned().unwrap_or_default());
    }
    if with.accessory || with.signature {
        let acc: Vec<Value> = x
            .accessories
            .get(&(r.repository_id, r.digest.clone()))
            .map(|list| list.iter().map(|a| accessory_json(a, r.id, &r.digest, &r.repository_name)).collect())
            .unwrap_or_default();
        v["accessories"] = json!(acc);
    }
    if with.scan_overview {
        v["scan_overview"] = json!({});
    }
    if with.sbom_overview {
        v["sbom_overview"] = json!({});
    }
    v
}

fn parse_time(s: &str) -> ApiResult<i64> {
    crate::time_fmt::parse_ms(s)
        .ok_or_else(|| ApiError::bad_request(format!("invalid time {s:?}: use \"YYYY-MM-DD hh:mm:ss\", RFC 3339 or Unix seconds")))
}

fn time_range(cond: &Cond, key: &str) -> ApiResult<(Option<i64>, Option<i64>)> {
    match cond {
        Cond::Range(a, b) => Ok((a.as_deref().map(parse_time).transpose()?, b.as_deref().map(parse_time).transpose()?)),
        Cond::Exact(a) => {
            let t = parse_time(a)?;
            Ok((Some(t), Some(t)))
        }
        _ => Err(ApiError::bad_request(format!("{key} takes a range [from~to]"))),
    }
}

const ARTIFACT_SORTS: &[&str] = &["push_time", "pull_time", "id", "digest"];

/// Conditions and order of an artifact list.
type ArtifactQuery = (Vec<ArtifactCond>, Vec<(ArtifactSort, bool)>);

fn artifact_query(req: &Req) -> ApiResult<ArtifactQuery> {
    let filter = Filter::parse(req.query("q").as_deref(), &["digest", "type", "media_type", "tags", "labels", "push_time", "pull_time"])?;
    let mut conds = Vec::new();
    let exact = |c: &Cond, key: &str| -> ApiResult<String> {
        match c {
            Cond::Exact(v) => Ok(v.clone()),
            _ => Err(ApiError::bad_request(format!("{key} takes an exact value"))),
        }
    };
    for (key, c) in &filter.0 {
        match key.as_str() {
            "digest" => conds.push(ArtifactCond::Digest(exact(c, key)?)),
            "type" => conds.push(ArtifactCond::Kind(exact(c, key)?.to_uppercase())),
            "media_type" => conds.push(ArtifactCond::MediaType(exact(c, key)?)),
            "tags" => conds.push(match c {
                Cond::Exact(v) if v == "nil" => ArtifactCond::Untagged,
                Cond::Exact(v) if v == "*" => ArtifactCond::Tagged,
                Cond::Exact(v) => ArtifactCond::TagIs(v.clone()),
                Cond::Fuzzy(v) => ArtifactCond::TagContains(v.clone()),
                _ => return Err(ApiError::bad_request("tags takes a name, ~part, nil (untagged) or * (tagged)")),
            }),
            "labels" => {
                let ids: Vec<String> = match c {
                    Cond::Exact(v) => vec![v.clone()],
                    Cond::AllOf(vs) => vs.clone(),
                    _ => return Err(ApiError::bad_request("labels takes a label id or (id1 id2) for all of them")),
                };
                let ids = ids
                    .iter()
                    .map(|s| s.parse::<i64>().map_err(|_| ApiError::bad_request(format!("label id {s:?} is not an integer"))))
                    .collect::<ApiResult<Vec<i64>>>()?;
                conds.push(ArtifactCond::Labels(ids));
            }
            "push_time" => {
                let (a, b) = time_range(c, key)?;
                conds.push(ArtifactCond::PushTime(a, b));
            }
            "pull_time" => {
                let (a, b) = time_range(c, key)?;
                conds.push(ArtifactCond::PullTime(a, b));
            }
            _ => {}
        }
    }
    let sort = parse_sort(req.query("sort").as_deref(), ARTIFACT_SORTS)?
        .into_iter()
        .map(|(f, d)| {
            let s = match f.as_str() {
                "push_time" => ArtifactSort::PushTime,
                "pull_time" => ArtifactSort::PullTime,
                "digest" => ArtifactSort::Digest,
                _ => ArtifactSort::Id,
            };
            (s, d)
        })
        .collect();
    Ok((conds, sort))
}

async fn list(State(app): State<AppState>, Path((project, repo)): Path<(String, String)>, req: Req) -> ApiResult<Response> {
    let paging = Paging::parse(req.query("page").as_deref(), req.query("page_size").as_deref())?;
    let with = With::parse(&req)?;
    let (_, _, repo) = repository_access(&app, &req, &project, &repo, "artifact", "list").await?;
    let (conds, sort) = artifact_query(&req)?;
    let (total, rows) = app.meta.list_artifacts(ArtifactScope::Repository(repo.id), &conds, &sort, paging.offset(), paging.limit()).await?;
    let x = extras(&app, &rows, with).await?;
    let items: Vec<Value> = rows.iter().map(|r| artifact_json(r, &x, with)).collect();
    Ok(paged(&items, total, paging, &req.uri))
}

/// `GET /projects/{project_name_or_id}/artifacts`: the artifacts of every repository of a
/// project; `latest_in_repository=true` keeps only each repository's newest one.
async fn list_in_project(State(app): State<AppState>, Path(project): Path<String>, req: Req) -> ApiResult<Response> {
    let paging = Paging::parse(req.query("page").as_deref(), req.query("page_size").as_deref())?;
    let with = With::parse(&req)?;
    let (row, _) = project_access(&app, &req, &project, "artifact", "list").await?;
    let (mut conds, sort) = artifact_query(&req)?;
    match req.query("latest_in_repository").as_deref() {
        None | Some("") | Some("false") => {}
        Some("true") => {
            let kind = conds.iter().find_map(|c| if let ArtifactCond::Kind(k) = c { Some(k.clone()) } else { None });
            let media_type = conds.iter().find_map(|c| if let ArtifactCond::MediaType(t) = c { Some(t.clone()) } else { None });
            conds.push(ArtifactCond::LatestInRepository { kind, media_type });
        }
        Some(v) => return Err(ApiError::bad_request(format!("latest_in_repository must be true or false, not {v:?}"))),
    }
    let (total, rows) = app.meta.list_artifacts(ArtifactScope::Project(row.id), &conds, &sort, paging.offset(), paging.limit()).await?;
    let x = extras(&app, &rows, with).await?;
    let items: Vec<Value> = rows.iter().map(|r| artifact_json(r, &x, with)).collect();
    Ok(paged(&items, total, paging, &req.uri))
}

/// The artifact a `{reference}` (digest or tag) names in a repository.
async fn artifact(app: &App, repo: &RepositoryRow, reference: &str) -> ApiResult<ArtifactRow> {
    let found = if reference.contains(':') {
        let d: Digest = reference.parse().map_err(|e| ApiError::bad_request(format!("invalid digest {reference:?}: {e}")))?;
        app.meta.artifact_by_digest(repo.id, &d.to_string()).await?
    } else {
        app.meta.artifact_by_tag(repo.id, reference).await?
    };
    found.ok_or_else(|| ApiError::not_found(format!("artifact {}:{reference} not found", repo.name)))
}

async fn read(
    State(app): State<AppState>,
    Path((project, repo, reference)): Path<(String, String, String)>,
    req: Req,
) -> ApiResult<Response> {
    let with = With::parse(&req)?;
    let (_, _, repo) = repository_access(&app, &req, &project, &repo, "artifact", "read").await?;
    let a = artifact(&app, &repo, &reference).await?;
    let x = extras(&app, std::slice::from_ref(&a), with).await?;
    Ok(axum::Json(artifact_json(&a, &x, with)).into_response())
}

async fn remove(
    State(app): State<AppState>,
    Path((project, repo, reference)): Path<(String, String, String)>,
    req: Req,
) -> ApiResult<Response> {
    let (row, _, repo) = repository_access(&app, &req, &project, &repo, "artifact", "delete").await?;
    let a = artifact(&app, &repo, &reference).await?;
    let audit = Audit {
        project_id: Some(row.id),
        resource: format!("{}@{}", repo.name, a.digest),
        resource_type: "artifact",
        operation: "delete",
        ..req.audit()
    };
    if !app.meta.delete_manifest(&repo.name, &a.digest, &audit).await? {
        return Err(ApiError::not_found(format!("artifact {}:{reference} not found", repo.name)));
    }
    Ok(ok())
}

/// `POST .../artifacts?from=project/repo:tag|@digest`: copies an artifact (no bytes move).
async fn copy(State(app): State<AppState>, Path((project, repo_raw)): Path<(String, String)>, req: Req) -> ApiResult<Response> {
    let from = req
        .query("from")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("from is required: project/repository:tag or project/repository@digest"))?;
    let (src_name, src_ref) = match from.split_once('@') {
        Some((n, d)) => (n.to_string(), d.to_string()),
        None => match from.rsplit_once(':').filter(|(n, t)| !t.contains('/') && !n.is_empty()) {
            Some((n, t)) => (n.to_string(), t.to_string()),
            None => {
                return Err(ApiError::bad_request(format!(
                    "invalid from {from:?}: expected project/repository:tag or project/repository@digest"
                )));
            }
        },
    };
    let (target_project, _) = project_access(&app, &req, &project, "artifact", "create").await?;
    let target: RepoName = format!("{}/{}", target_project.name, repo_path(&repo_raw))
        .parse()
        .map_err(|e| ApiError::bad_request(format!("invalid repository name: {e}")))?;
    let (src_project, src_path) = src_name
        .split_once('/')
        .ok_or_else(|| ApiError::bad_request(format!("invalid from {from:?}: the repository must include its project")))?;
    let (_, _, src_repo) = repository_access(&app, &req, src_project, src_path, "repository", "pull").await?;
    let src = artifact(&app, &src_repo, &src_ref).await?;
    let tag = (!src_ref.contains(':')).then_some(src_ref.as_str());
    let digest = dartifacts::copy(&app, &src_repo.name, &src, &target, tag, req.audit()).await?;
    let location = format!("{}/{}", api_base(target.as_str()), digest);
    let mut r = StatusCode::CREATED.into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

const TAG_SORTS: &[&str] = &["name", "push_time", "pull_time", "id"];

async fn list_tags(
    State(app): State<AppState>,
    Path((project, repo, reference)): Path<(String, String, String)>,
    req: Req,
) -> ApiResult<Response> {
    let paging = Paging::parse(req.query("page").as_deref(), req.query("page_size").as_deref())?;
    let with_immutable = req.query("with_immutable_status").as_deref() == Some("true");
    let (_, _, repo) = repository_access(&app, &req, &project, &repo, "tag", "list").await?;
    let a = artifact(&app, &repo, &reference).await?;
    let filter = Filter::parse(req.query("q").as_deref(), &["name"])?;
    let name = match filter.get("name") {
        Some(Cond::Exact(n)) => Some((n.as_str(), false)),
        Some(Cond::Fuzzy(n)) => Some((n.as_str(), true)),
        Some(_) => return Err(ApiError::bad_request("name takes an exact value or ~part")),
        None => None,
    };
    let sort: Vec<(TagSort, bool)> = parse_sort(req.query("sort").as_deref(), TAG_SORTS)?
        .into_iter()
        .map(|(f, d)| {
            let s = match f.as_str() {
                "name" => TagSort::Name,
                "push_time" => TagSort::PushTime,
                "pull_time" => TagSort::PullTime,
                _ => TagSort::Id,
            };
            (s, d)
        })
        .collect();
    let (total, rows) = app.meta.list_tags_of(a.id, name, &sort, paging.offset(), paging.limit()).await?;
    let items: Vec<Value> = rows.iter().map(|t| tag_json(t, with_immutable)).collect();
    Ok(paged(&items, total, paging, &req.uri))
}

#[derive(Deserialize)]
struct NewTag {
    name: Option<String>,
}

async fn create_tag(
    State(app): State<AppState>,
    Path((project, repo, reference)): Path<(String, String, String)>,
    req: Req,
    body: Bytes,
) -> ApiResult<Response> {
    let (row, _, repo) = repository_access(&app, &req, &project, &repo, "tag", "create").await?;
    let a = artifact(&app, &repo, &reference).await?;
    let t: NewTag = json_body(&body)?;
    let name = t.name.unwrap_or_default();
    let tag: oci::Tag = name.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "invalid tag name {name:?}: up to 128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        ))
    })?;
    let audit = Audit {
        project_id: Some(row.id),
        resource: format!("{}:{}", repo.name, tag.as_str()),
        resource_type: "tag",
        operation: "create",
        ..req.audit()
    };
    if !app.meta.create_tag(repo.id, a.id, tag.as_str(), &audit).await? {
        return Err(ApiError::new(StatusCode::CONFLICT, "CONFLICT", format!("tag {} already exists in {}", tag.as_str(), repo.name)));
    }
    let location = format!("{}/{}/tags/{}", api_base(&repo.name), a.digest, tag.as_str());
    Ok(super::created(&location))
}

async fn delete_tag(
    State(app): State<AppState>,
    Path((project, repo, reference, tag)): Path<(String, String, String, String)>,
    req: Req,
) -> ApiResult<Response> {
    let (row, _, repo) = repository_access(&app, &req, &project, &repo, "tag", "delete").await?;
    let a = artifact(&app, &repo, &reference).await?;
    let audit = Audit {
        project_id: Some(row.id),
        resource: format!("{}:{tag}", repo.name),
        resource_type: "tag",
        operation: "delete",
        ..req.audit()
    };
    if !app.meta.delete_tag_of(a.id, &tag, &audit).await? {
        return Err(ApiError::not_found(format!("tag {tag} of artifact {}@{} not found", repo.name, a.digest)));
    }
    Ok(ok())
}

async fn list_accessories(
    State(app): State<AppState>,
    Path((project, repo, reference)): Path<(String, String, String)>,
    req: Req,
) -> ApiResult<Response> {
    let paging = Paging::parse(req.query("page").as_deref(), req.query("page_size").as_deref())?;
    let (_, _, repo) = repository_access(&app, &req, &project, &repo, "accessory", "list").await?;
    let a = artifact(&app, &repo, &reference).await?;
    let filter = Filter::parse(req.query("q").as_deref(), &["type"])?;
    let want = match filter.get("type") {
        Some(Cond::Exact(t)) => Some(t.clone()),
        Some(_) => return Err(ApiError::bad_request("type takes an exact value")),
        None => None,
    };
    let all: Vec<ArtifactRow> = app
        .meta
        .accessories_of(&[repo.id], std::slice::from_ref(&a.digest))
        .await?
        .into_iter()
        .filter(|x| want.as_deref().is_none_or(|w| x.accessory_type.as_deref() == Some(w)))
        .collect();
    let total = all.len() as i64;
    let items: Vec<Value> = all
        .iter()
        .skip(paging.offset() as usize)
        .take(paging.limit() as usize)
        .map(|x| accessory_json(x, a.id, &a.digest, &repo.name))
        .collect();
    Ok(paged(&items, total, paging, &req.uri))
}

async fn addition(
    State(app): State<AppState>,
    Path((project, repo, reference, name)): Path<(String, String, String, String)>,
    req: Req,
) -> ApiResult<Response> {
    let (_, _, repo) = repository_access(&app, &req, &project, &repo, "artifact-addition", "read").await?;
    let a = artifact(&app, &repo, &reference).await?;
    if name == "vulnerabilities" {
        // No scanner has reported on this artifact yet.
        return Ok(axum::Json(json!({})).into_response());
    }
    if name == "sbom" {
        return Err(ApiError::new(StatusCode::NOT_IMPLEMENTED, "NOT_IMPLEMENTED", "Berth does not generate SBOMs yet"));
    }
    let (content_type, body) = dartifacts::addition(&app, &a.content, &a.media_type, &a.artifact_kind, &name).await?;
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

#[derive(Deserialize)]
struct LabelRef {
    id: Option<i64>,
}

/// `POST .../artifacts/{reference}/labels`: puts a global label or a label of the artifact's
/// project on it; 409 when it is there already.
async fn add_label(
    State(app): State<AppState>,
    Path((project, repo, reference)): Path<(String, String, String)>,
    req: Req,
    body: Bytes,
) -> ApiResult<Response> {
    let (row, _, repo) = repository_access(&app, &req, &project, &repo, "artifact-label", "create").await?;
    let a = artifact(&app, &repo, &reference).await?;
    let l: LabelRef = json_body(&body)?;
    let id = l.id.ok_or_else(|| ApiError::bad_request("the label's id is required, e.g. {\"id\": 1}"))?;
    let label = app.meta.label(id).await?.ok_or_else(|| ApiError::not_found(format!("label {id} not found")))?;
    crate::domain::labels::applicable(&label, row.id)?;
    let audit = Audit {
        project_id: Some(row.id),
        resource: format!("{}@{}", repo.name, a.digest),
        resource_type: "artifact",
        operation: "label",
        ..req.audit()
    };
    if !app.meta.attach_label(a.id, id, &audit).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "CONFLICT",
            format!("label {} is already on artifact {}@{}", label.name, repo.name, a.digest),
        ));
    }
    Ok(ok())
}

async fn remove_label(
    State(app): State<AppState>,
    Path((project, repo, reference, label_id)): Path<(String, String, String, String)>,
    req: Req,
) -> ApiResult<Response> {
    let (row, _, repo) = repository_access(&app, &req, &project, &repo, "artifact-label", "delete").await?;
    let a = artifact(&app, &repo, &reference).await?;
    let id: i64 = label_id.parse().map_err(|_| ApiError::bad_request(format!("label id {label_id:?} is not an integer")))?;
    let audit = Audit {
        project_id: Some(row.id),
        resource: format!("{}@{}", repo.name, a.digest),
        resource_type: "artifact",
        operation: "unlabel",
        ..req.audit()
    };
    if !app.meta.detach_label(a.id, id, &audit).await? {
        return Err(ApiError::not_found(format!("label {id} is not on artifact {}@{}", repo.name, a.digest)));
    }
    Ok(ok())
}
