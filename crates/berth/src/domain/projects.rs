//! Projects: existence and the caller's access facts (for `/v2` and the API), the naming
//! rule, metadata (project policies, stored as strings), CVE allowlists, creation limits,
//! deletion, and repositories created ahead of a push.
//!
//! Rules:
//! - A project name matches `^[a-z0-9]+(?:[._-][a-z0-9]+)*$` and has 1 to 255 characters,
//!   so every project that can be created can be pushed to.
//! - Creating projects may be restricted to system admins (`project_creation_restriction` =
//!   `adminonly`) and limited per user (`project_limit_per_user`, -1 for no limit); system
//!   admins are bound by neither. The creator owns the project and is its project admin.
//! - A project is deleted only while it holds no repositories.
//! - With the metadata `auto_create_repository` = "false", a manifest push into a repository
//!   that has not been created first is refused.

use crate::app::App;
use crate::auth::policy::{Principal, ProjectFacts};
use crate::error::{Error, Result};
use crate::meta::{
    AllowlistRow, Audit, CreateProject, DeleteProject, NewProject, ProjectCond, ProjectDetail, ProjectKeyRef, ProjectRow, ProjectSort,
    ProjectUpdate,
};
use oci::{ErrorCode, RepoName};
use std::collections::HashMap;

/// The metadata key that controls whether a push creates its repository (default "true").
pub const AUTO_CREATE_REPOSITORY: &str = "auto_create_repository";
/// System setting: `everyone` (default) or `adminonly`.
pub const CREATION_RESTRICTION: &str = "project_creation_restriction";
/// System setting: how many projects a user may own (-1, the default: no limit).
pub const LIMIT_PER_USER: &str = "project_limit_per_user";

/// Harbor's project name rule, as stated in refusals.
pub const NAME_RULE: &str = "a project name must be 1 to 255 characters of lower-case letters (a-z) and digits (0-9), \
     optionally separated by single '.', '_' or '-' characters, starting and ending with a letter or digit \
     (^[a-z0-9]+(?:[._-][a-z0-9]+)*$)";

/// Metadata keys Harbor's `ProjectMetadata` declares, in the order it declares them.
pub const HARBOR_METADATA_KEYS: &[&str] = &[
    "public",
    "enable_content_trust",
    "enable_content_trust_cosign",
    "prevent_vul",
    "severity",
    "auto_scan",
    "auto_sbom_generation",
    "reuse_sys_cve_allowlist",
    "retention_id",
    "proxy_speed_kb",
    "max_upstream_conn",
    "proxy_cache_local_on_not_found",
    "proxy_referrer_api",
    "proxy_cache_filter_pattern",
    "proxy_cache_filter_kind",
];

/// Metadata that only proxy-cache projects use (ignored on other projects' create and update, as Harbor does).
const PROXY_KEYS: &[&str] = &["proxy_speed_kb", "max_upstream_conn", "proxy_cache_filter_pattern", "proxy_cache_filter_kind"];

const BOOL_KEYS: &[&str] = &[
    "public",
    "enable_content_trust",
    "enable_content_trust_cosign",
    "prevent_vul",
    "auto_scan",
    "auto_sbom_generation",
    "reuse_sys_cve_allowlist",
    "proxy_cache_local_on_not_found",
    "proxy_referrer_api",
    AUTO_CREATE_REPOSITORY,
];

const SEVERITIES: &[&str] = &["none", "low", "medium", "high", "critical"];

/// How an API path names a project.
#[derive(Clone, Copy, Debug)]
pub enum ProjectKey<'a> {
    Id(i64),
    Name(&'a str),
}

/// The project and the principal's facts in it, or None if it does not exist. One query
/// either way: a project the caller cannot see costs the same work as a missing one.
pub async fn facts(app: &App, project: &str, principal: &Principal) -> Result<Option<(ProjectRow, ProjectFacts)>> {
    lookup(app, ProjectKey::Name(project), principal).await
}

/// Like `facts`, for a project named by id or name.
pub async fn lookup(app: &App, key: ProjectKey<'_>, principal: &Principal) -> Result<Option<(ProjectRow, ProjectFacts)>> {
    let key = match key {
        ProjectKey::Id(id) => ProjectKeyRef::Id(id),
        ProjectKey::Name(name) => ProjectKeyRef::Name(name),
    };
    let found = app.meta.project_with_roles(key, principal.user_id()).await?;
    Ok(found.map(|(row, roles)| {
        let facts = ProjectFacts { name: row.name.clone(), public: row.public, roles };
        (row, facts)
    }))
}

/// The project a push goes to; refused with a message that names it when it does not exist.
pub async fn for_push(app: &App, project: &str) -> Result<ProjectRow> {
    app.meta
        .project_by_name(project)
        .await?
        .ok_or_else(|| Error::oci(ErrorCode::NameUnknown, format!("project {project} not found: create the project before pushing to it")))
}

/// Refuses a manifest push into a repository that does not exist yet when the project does
/// not create repositories on push.
pub async fn check_auto_create(app: &App, project: &ProjectRow, repo: &RepoName) -> Result<()> {
    let auto = app.meta.project_metadata_value(project.id, AUTO_CREATE_REPOSITORY).await?;
    if auto.as_deref() != Some("false") || app.meta.repository_exists(repo.as_str()).await? {
        return Ok(());
    }
    Err(Error::oci(
        ErrorCode::Denied,
        format!(
            "repository {repo} must be created first: project {project} does not create repositories automatically on push \
             (create it with POST /api/berth/v1/projects/{project}/repositories {{\"name\": \"{path}\"}})",
            project = project.name,
            path = repo.path(),
        ),
    ))
}

/// Whether `name` follows the project name rule.
pub fn valid_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    let mut after_separator = true;
    for c in name.bytes() {
        match c {
            b'a'..=b'z' | b'0'..=b'9' => after_separator = false,
            b'.' | b'_' | b'-' if !after_separator => after_separator = true,
            _ => return false,
        }
    }
    !after_separator
}

pub fn validate_name(name: &str) -> Result<()> {
    if valid_name(name) { Ok(()) } else { Err(Error::Invalid(format!("invalid project name {name:?}: {NAME_RULE}"))) }
}

/// Go's `strconv.ParseBool`, which Harbor uses for boolean metadata.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Every metadata key a project may hold.
pub fn metadata_keys() -> impl Iterator<Item = &'static str> {
    HARBOR_METADATA_KEYS.iter().copied().chain(std::iter::once(AUTO_CREATE_REPOSITORY))
}

/// Checks one metadata pair and returns the value as stored ("true"/"false" for booleans,
/// lower case for the severity).
pub fn normalize_metadata(key: &str, value: &str) -> Result<String> {
    let invalid = |expected: &str| Error::Invalid(format!("invalid value {value:?} for metadata {key}: expected {expected}"));
    if BOOL_KEYS.contains(&key) {
        return parse_bool(value).map(|b| b.to_string()).ok_or_else(|| invalid("\"true\" or \"false\""));
    }
    match key {
        "severity" => {
            let v = value.to_ascii_lowercase();
            if SEVERITIES.contains(&v.as_str()) { Ok(v) } else { Err(invalid("one of none, low, medium, high, critical")) }
        }
        "retention_id" => value.parse::<i64>().map(|n| n.to_string()).map_err(|_| invalid("the integer id of a retention policy")),
        "proxy_speed_kb" | "max_upstream_conn" => {
            value.parse::<i32>().map(|n| n.to_string()).map_err(|_| invalid("an integer (-1: no limit)"))
        }
        "proxy_cache_filter_kind" => match value {
            "" | "doublestar" | "regex" => Ok(value.to_string()),
            _ => Err(invalid("\"doublestar\" or \"regex\"")),
        },
        "proxy_cache_filter_pattern" => Ok(value.to_string()),
        _ => Err(Error::Invalid(format!(
            "invalid metadata key {key:?}: project metadata keys are {}",
            metadata_keys().collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// A CVE allowlist as given: items (CVE ids) and expiry in Unix seconds.
#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    pub items: Vec<String>,
    pub expires_at: Option<i64>,
}

impl Allowlist {
    /// Checked and encoded for storage: no empty or repeated CVE ids.
    fn encode(&self) -> Result<(String, Option<i64>)> {
        let mut seen = std::collections::HashSet::new();
        let mut items = Vec::new();
        for id in &self.items {
            let id = id.trim();
            if id.is_empty() {
                return Err(Error::Invalid("cve_allowlist.items: every item needs a cve_id".into()));
            }
            if !seen.insert(id.to_string()) {
                return Err(Error::Invalid(format!("cve_allowlist.items: {id} is listed twice")));
            }
            items.push(serde_json::json!({"cve_id": id}));
        }
        Ok((serde_json::Value::Array(items).to_string(), self.expires_at))
    }
}

/// The CVE ids of a stored allowlist.
pub fn allowlist_items(row: &AllowlistRow) -> Vec<String> {
    let v: Vec<serde_json::Value> = serde_json::from_str(&row.items).unwrap_or_default();
    v.iter().filter_map(|i| i.get("cve_id").and_then(|c| c.as_str()).map(str::to_string)).collect()
}

/// A project to create, as the caller asked for it (metadata: raw pairs, not yet checked).
#[derive(Clone, Debug, Default)]
pub struct CreateRequest {
    pub name: String,
    pub public: bool,
    pub metadata: Vec<(String, String)>,
    pub allowlist: Option<Allowlist>,
}

/// Checks metadata given with a project create or update: known keys, valid values; proxy-cache
/// settings are dropped (Berth has no proxy-cache projects yet), empty values mean "not given".
fn checked_metadata(pairs: &[(String, String)]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        if !metadata_keys().any(|m| m == k) {
            normalize_metadata(k, v)?; // refuses the key with the list of known ones
        }
        if v.is_empty() || PROXY_KEYS.contains(&k.as_str()) || k == "public" {
            continue;
        }
        out.push((k.clone(), normalize_metadata(k, v)?));
    }
    Ok(out)
}

/// Whether only system admins may create projects.
pub async fn admin_only_creation(app: &App) -> Result<bool> {
    Ok(app.meta.setting(CREATION_RESTRICTION).await?.is_some_and(|v| v.trim().trim_matches('"') == "adminonly"))
}

/// How many projects a user may own (-1: no limit).
pub async fn limit_per_user(app: &App) -> Result<i64> {
    Ok(app.meta.setting(LIMIT_PER_USER).await?.and_then(|v| v.trim().trim_matches('"').parse::<i64>().ok()).unwrap_or(-1))
}

pub async fn set_limit_per_user(app: &App, limit: i64, audit: Audit) -> Result<()> {
    if limit < -1 {
        return Err(Error::Invalid(format!("{LIMIT_PER_USER} must be -1 (no limit) or a number of projects (0 or more), not {limit}")));
    }
    let audit = Audit { resource: LIMIT_PER_USER.into(), resource_type: "configuration", operation: "update", ..audit };
    app.meta.set_setting(LIMIT_PER_USER, &limit.to_string(), &audit).await
}

/// Creates a project owned by the caller, who becomes its project admin. Returns its id.
pub async fn create(app: &App, principal: &Principal, req: &CreateRequest, audit: Audit) -> Result<i64> {
    let Some(owner_id) = principal.user_id() else { return Err(Error::Unauthenticated) };
    if principal.is_limited() {
        return Err(Error::Forbidden("an access token limited to projects or actions cannot create projects".into()));
    }
    let mut owner_limit = None;
    if !principal.is_sysadmin() {
        if admin_only_creation(app).await? {
            return Err(Error::Forbidden("Only system admin can create project".into()));
        }
        let limit = limit_per_user(app).await?;
        if limit >= 0 {
            owner_limit = Some(limit);
        }
    }
    validate_name(&req.name)?;
    if let Some((_, v)) = req.metadata.iter().find(|(k, _)| k == "retention_id")
        && !v.is_empty()
    {
        return Err(Error::Invalid(
            "the retention_id in the request's payload when creating a project should be omitted, alternatively passing an empty string"
                .into(),
        ));
    }
    let metadata = checked_metadata(&req.metadata)?;
    let allowlist = req.allowlist.as_ref().map(Allowlist::encode).transpose()?;
    let new = NewProject { name: &req.name, owner_id, public: req.public, metadata: &metadata, allowlist, owner_limit };
    let audit = Audit { resource: req.name.clone(), resource_type: "project", operation: "create", ..audit };
    match app.meta.create_project_with(&new, &audit).await? {
        CreateProject::Created(id) => Ok(id),
        CreateProject::NameTaken => Err(Error::Conflict(format!("The project named {} already exists", req.name))),
        CreateProject::LimitReached(n) => Err(Error::Forbidden(format!(
            "user {} may own at most {n} projects ({LIMIT_PER_USER}); delete one or ask a system admin to raise the limit",
            principal.name()
        ))),
    }
}

/// A change to a project, as the caller asked for it.
#[derive(Clone, Debug, Default)]
pub struct UpdateRequest {
    pub public: Option<bool>,
    pub metadata: Vec<(String, String)>,
    pub allowlist: Option<Allowlist>,
}

pub async fn update(app: &App, project: &ProjectRow, req: &UpdateRequest, audit: Audit) -> Result<()> {
    if let Some((_, v)) = req.metadata.iter().find(|(k, _)| k == "retention_id")
        && !v.is_empty()
        && app.meta.project_metadata_value(project.id, "retention_id").await?.as_deref() != Some(v.as_str())
    {
        return Err(Error::Invalid(
            "the retention_id in the request's payload when updating a project should be omitted, alternatively passing the one that has already been associated to this project".into(),
        ));
    }
    let metadata = checked_metadata(&req.metadata)?;
    let allowlist = req.allowlist.as_ref().map(Allowlist::encode).transpose()?;
    let update = ProjectUpdate { public: req.public, metadata, allowlist };
    let audit =
        Audit { project_id: Some(project.id), resource: project.name.clone(), resource_type: "project", operation: "update", ..audit };
    if app.meta.update_project(project.id, &update, &audit).await? {
        Ok(())
    } else {
        Err(Error::NotFound(format!("project {} not found", project.name)))
    }
}

/// Why a project cannot be deleted now, if it cannot.
pub async fn undeletable_reason(app: &App, project: &ProjectRow) -> Result<Option<String>> {
    let repos = app.meta.project_detail(project.id).await?.map(|d| d.repo_count).unwrap_or(0);
    Ok((repos > 0).then(|| not_empty(project, repos)))
}

fn not_empty(project: &ProjectRow, repos: i64) -> String {
    format!(
        "the project {} contains {repos} {}, can not be deleted: delete its repositories first",
        project.name,
        if repos == 1 { "repository" } else { "repositories" }
    )
}

pub async fn delete(app: &App, project: &ProjectRow, audit: Audit) -> Result<()> {
    let audit =
        Audit { project_id: Some(project.id), resource: project.name.clone(), resource_type: "project", operation: "delete", ..audit };
    match app.meta.delete_project(project.id, &audit).await? {
        DeleteProject::Deleted => {
            // The project's robots went with it: no cached credential may outlive them.
            app.auth.forget_credentials();
            Ok(())
        }
        DeleteProject::Missing => Err(Error::NotFound(format!("project {} not found", project.name))),
        DeleteProject::HasRepositories(n) => Err(Error::Precondition(not_empty(project, n))),
    }
}

/// A project as the API shows it, with the caller's roles in it.
#[derive(Clone, Debug)]
pub struct ProjectView {
    pub detail: ProjectDetail,
    /// Stored metadata, by key.
    pub metadata: Vec<(String, String)>,
    pub allowlist: Option<AllowlistRow>,
    pub roles: Vec<i64>,
}

/// Loads metadata, allowlists and the principal's roles for these projects.
pub async fn views(app: &App, principal: &Principal, details: Vec<ProjectDetail>) -> Result<Vec<ProjectView>> {
    let ids: Vec<i64> = details.iter().map(|d| d.id).collect();
    let mut metadata: HashMap<i64, Vec<(String, String)>> = HashMap::new();
    for (pid, k, v) in app.meta.projects_metadata(&ids).await? {
        metadata.entry(pid).or_default().push((k, v));
    }
    let mut allowlists: HashMap<i64, AllowlistRow> =
        app.meta.projects_allowlists(&ids).await?.into_iter().map(|a| (a.project_id, a)).collect();
    let mut roles: HashMap<i64, Vec<i64>> = HashMap::new();
    if let Some(uid) = principal.user_id() {
        for (pid, role) in app.meta.user_roles_in(uid, &ids).await? {
            roles.entry(pid).or_default().push(role);
        }
    }
    Ok(details
        .into_iter()
        .map(|d| ProjectView {
            metadata: metadata.remove(&d.id).unwrap_or_default(),
            allowlist: allowlists.remove(&d.id),
            roles: roles.remove(&d.id).unwrap_or_default(),
            detail: d,
        })
        .collect())
}

/// One project as the API shows it.
pub async fn view(app: &App, principal: &Principal, project: &ProjectRow) -> Result<ProjectView> {
    let detail =
        app.meta.project_detail(project.id).await?.ok_or_else(|| Error::NotFound(format!("project {} not found", project.name)))?;
    Ok(views(app, principal, vec![detail]).await?.remove(0))
}

/// One page of projects matching `conds` (which must include what the caller may see).
pub async fn list(
    app: &App,
    principal: &Principal,
    conds: &[ProjectCond],
    sort: &[(ProjectSort, bool)],
    offset: i64,
    limit: i64,
) -> Result<(i64, Vec<ProjectView>)> {
    let (total, details) = app.meta.list_projects(conds, sort, offset, limit).await?;
    Ok((total, views(app, principal, details).await?))
}

/// Adds metadata keys (each must be new to the project).
pub async fn add_metadata(app: &App, project: &ProjectRow, pairs: &[(String, String)], audit: Audit) -> Result<()> {
    if pairs.is_empty() {
        return Err(Error::Invalid("no metadata given: send an object of key/value strings".into()));
    }
    let mut checked = Vec::new();
    for (k, v) in pairs {
        checked.push((k.clone(), normalize_metadata(k, v)?));
    }
    let audit =
        Audit { project_id: Some(project.id), resource: project.name.clone(), resource_type: "project", operation: "update", ..audit };
    match app.meta.add_project_metadata(project.id, &checked, &audit).await? {
        Ok(()) => Ok(()),
        Err(key) => Err(Error::Conflict(format!("metadata {key} already exists in project {}: use PUT to change it", project.name))),
    }
}

/// Sets one metadata key.
pub async fn set_metadata(app: &App, project: &ProjectRow, key: &str, value: &str, audit: Audit) -> Result<()> {
    let value = normalize_metadata(key, value)?;
    let audit =
        Audit { project_id: Some(project.id), resource: project.name.clone(), resource_type: "project", operation: "update", ..audit };
    app.meta.set_project_metadata(project.id, key, &value, &audit).await
}

/// Removes one metadata key.
pub async fn delete_metadata(app: &App, project: &ProjectRow, key: &str, audit: Audit) -> Result<()> {
    let audit =
        Audit { project_id: Some(project.id), resource: project.name.clone(), resource_type: "project", operation: "update", ..audit };
    if app.meta.delete_project_metadata(project.id, key, &audit).await? {
        Ok(())
    } else {
        Err(Error::NotFound(format!("metadata {key} not found in project {}", project.name)))
    }
}

/// Creates an empty repository `path` (the part after the project) in a project. Returns its full name.
pub async fn create_repository(app: &App, project: &ProjectRow, path: &str, audit: Audit) -> Result<RepoName> {
    let path = path.trim_matches('/');
    if path.is_empty() {
        return Err(Error::Invalid("name is required: the repository path inside the project, e.g. {\"name\": \"team/app\"}".into()));
    }
    let full = format!("{}/{path}", project.name);
    let repo: RepoName = full.parse().map_err(|e| Error::Invalid(format!("invalid repository name {full:?}: {e}")))?;
    let audit =
        Audit { project_id: Some(project.id), resource: repo.to_string(), resource_type: "repository", operation: "create", ..audit };
    if app.meta.create_repository(project.id, repo.as_str(), &audit).await? {
        Ok(repo)
    } else {
        Err(Error::Conflict(format!("repository {repo} already exists")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rule() {
        for ok in ["a", "library", "a.b", "a_b", "a-b", "a1-b2.c3_d4", "0", &"a".repeat(255)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "A", "a..b", "a-", "-a", ".a", "a__b", "a b", "a/b", "ä", &"a".repeat(256)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn metadata_values() {
        assert_eq!(normalize_metadata("public", "True").unwrap(), "true");
        assert_eq!(normalize_metadata("auto_scan", "0").unwrap(), "false");
        assert!(normalize_metadata("public", "yes").is_err());
        assert_eq!(normalize_metadata("severity", "HIGH").unwrap(), "high");
        assert!(normalize_metadata("severity", "severe").is_err());
        assert_eq!(normalize_metadata(AUTO_CREATE_REPOSITORY, "false").unwrap(), "false");
        assert!(normalize_metadata("retention_id", "x").is_err());
        assert!(normalize_metadata("colour", "red").unwrap_err().to_string().contains("invalid metadata key"));
    }
}
