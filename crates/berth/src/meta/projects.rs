//! Projects, project metadata, CVE allowlists, members, repositories created ahead of a
//! push, and system settings: rows and queries.
//!
//! Lists are built from typed conditions (`ProjectCond`) into SQL whose values are always
//! bound as parameters; column names come only from the fixed mappings below.

use super::sql::{Sql, Value, bind_all};
use super::{Audit, Meta, ProjectRow, audit, now_ms, on_read, on_write};
use crate::error::{Error, Result};

/// A project with what its API representation needs beyond the row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ProjectDetail {
    pub id: i64,
    pub name: String,
    pub owner_id: i64,
    pub owner_name: String,
    pub public: bool,
    pub creation_time: i64,
    pub update_time: i64,
    pub repo_count: i64,
}

/// A project's CVE allowlist; `items` is a JSON array of `{"cve_id": "..."}`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AllowlistRow {
    pub id: i64,
    pub project_id: i64,
    pub items: String,
    pub expires_at: Option<i64>,
    pub creation_time: i64,
    pub update_time: i64,
}

/// A project member with the name of the user (or group) it stands for.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MemberRow {
    pub id: i64,
    pub project_id: i64,
    pub entity_type: String,
    pub entity_id: i64,
    pub entity_name: String,
    pub role: i64,
}

/// An audit record of a project.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ProjectAuditRow {
    pub operator: String,
    pub resource: String,
    pub resource_type: String,
    pub operation: String,
    pub success: bool,
}

/// Integer columns of `projects` that lists filter on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectIntCol {
    Id,
    OwnerId,
}

impl ProjectIntCol {
    fn column(self) -> &'static str {
        match self {
            ProjectIntCol::Id => "p.id",
            ProjectIntCol::OwnerId => "p.owner_id",
        }
    }
}

/// One condition of a project list; all conditions must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProjectCond {
    /// The name is one of these.
    NameIn(Vec<String>),
    /// The name contains this text (compared in lower case).
    NameContains(String),
    IntIn(ProjectIntCol, Vec<i64>),
    IntRange(ProjectIntCol, Option<i64>, Option<i64>),
    Public(bool),
    /// Owned by the user with this name.
    OwnerName(String),
    /// Public, or (with a user id) the user is a member.
    VisibleTo(Option<i64>),
}

/// Orders of a project list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectSort {
    Name,
    Id,
    OwnerId,
    CreationTime,
    UpdateTime,
}

impl ProjectSort {
    fn column(self) -> &'static str {
        match self {
            ProjectSort::Name => "p.name",
            ProjectSort::Id => "p.id",
            ProjectSort::OwnerId => "p.owner_id",
            ProjectSort::CreationTime => "p.creation_time",
            ProjectSort::UpdateTime => "p.update_time",
        }
    }
}

/// A project to create.
pub struct NewProject<'a> {
    pub name: &'a str,
    pub owner_id: i64,
    pub public: bool,
    /// Metadata other than `public`, validated.
    pub metadata: &'a [(String, String)],
    /// Allowlist items (JSON) and expiry, when given.
    pub allowlist: Option<(String, Option<i64>)>,
    /// The most projects the owner may own, counting this one's predecessors (None: no limit).
    pub owner_limit: Option<i64>,
}

/// What creating a project came to.
#[derive(Debug, PartialEq, Eq)]
pub enum CreateProject {
    Created(i64),
    NameTaken,
    LimitReached(i64),
}

/// A change to a project.
#[derive(Default)]
pub struct ProjectUpdate {
    pub public: Option<bool>,
    /// Metadata other than `public` to set, validated.
    pub metadata: Vec<(String, String)>,
    pub allowlist: Option<(String, Option<i64>)>,
}

/// What deleting a project came to.
#[derive(Debug, PartialEq, Eq)]
pub enum DeleteProject {
    Deleted,
    Missing,
    HasRepositories(i64),
}

/// `text` escaped for a LIKE pattern with `ESCAPE '\'`.
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn where_clause(conds: &[ProjectCond], sql: &mut Sql) -> String {
    let mut parts = Vec::new();
    for c in conds {
        let part = match c {
            ProjectCond::NameIn(names) => format!("p.name IN ({})", sql.list(names.iter().cloned().map(Value::Text))),
            ProjectCond::NameContains(s) => {
                format!("LOWER(p.name) LIKE {} ESCAPE '\\'", sql.param(Value::Text(format!("%{}%", escape_like(&s.to_lowercase())))))
            }
            ProjectCond::IntIn(col, ids) => format!("{} IN ({})", col.column(), sql.list(ids.iter().copied().map(Value::Int))),
            ProjectCond::IntRange(col, min, max) => {
                let mut r = Vec::new();
                if let Some(v) = min {
                    r.push(format!("{} >= {}", col.column(), sql.param(Value::Int(*v))));
                }
                if let Some(v) = max {
                    r.push(format!("{} <= {}", col.column(), sql.param(Value::Int(*v))));
                }
                if r.is_empty() { "TRUE".into() } else { r.join(" AND ") }
            }
            ProjectCond::Public(b) => format!("p.public = {}", sql.param(Value::Bool(*b))),
            ProjectCond::OwnerName(n) => {
                format!("p.owner_id IN (SELECT id FROM users WHERE username = {})", sql.param(Value::Text(n.clone())))
            }
            ProjectCond::VisibleTo(None) => "p.public = TRUE".into(),
            ProjectCond::VisibleTo(Some(uid)) => format!(
                "(p.public = TRUE OR EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = p.id AND m.entity_type = 'u' AND m.entity_id = {}))",
                sql.param(Value::Int(*uid))
            ),
        };
        parts.push(part);
    }
    if parts.is_empty() { String::new() } else { format!(" WHERE {}", parts.join(" AND ")) }
}

const DETAIL_SELECT: &str = "SELECT p.id, p.name, p.owner_id, COALESCE(u.username, '') AS owner_name, p.public, p.creation_time, p.update_time, \
     (SELECT COUNT(*) FROM repositories r WHERE r.project_id = p.id) AS repo_count \
     FROM projects p LEFT JOIN users u ON u.id = p.owner_id";

const MEMBER_SELECT: &str = "SELECT m.id, m.project_id, m.entity_type, m.entity_id, COALESCE(u.username, '') AS entity_name, m.role \
     FROM project_members m LEFT JOIN users u ON m.entity_type = 'u' AND u.id = m.entity_id";

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

impl Meta {
    pub async fn project_by_id(&self, id: i64) -> Result<Option<ProjectRow>> {
        Ok(on_read!(self, |p| sqlx::query_as::<_, ProjectRow>("SELECT id, name, owner_id, public FROM projects WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await)?)
    }

    pub async fn project_detail(&self, id: i64) -> Result<Option<ProjectDetail>> {
        let sql = format!("{DETAIL_SELECT} WHERE p.id = $1");
        Ok(on_read!(self, |p| sqlx::query_as::<_, ProjectDetail>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(p).await)?)
    }

    /// One page of the projects matching every condition, and how many match in all.
    pub async fn list_projects(
        &self,
        conds: &[ProjectCond],
        sort: &[(ProjectSort, bool)],
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<ProjectDetail>)> {
        let mut sql = Sql::default();
        let filter = where_clause(conds, &mut sql);
        let count_sql = format!("SELECT COUNT(*) FROM projects p{filter}");
        let (total,) = on_read!(self, |p| bind_all!(sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(count_sql.as_str())), &sql.values)
            .fetch_one(p)
            .await)?;
        if total == 0 {
            return Ok((0, vec![]));
        }
        let mut order: Vec<String> = sort.iter().map(|(s, desc)| format!("{}{}", s.column(), if *desc { " DESC" } else { "" })).collect();
        if sort.is_empty() {
            order.push("p.name".into());
        }
        order.push("p.id".into());
        let lim = sql.param(Value::Int(limit));
        let off = sql.param(Value::Int(offset));
        let list_sql = format!("{DETAIL_SELECT}{filter} ORDER BY {} LIMIT {lim} OFFSET {off}", order.join(", "));
        let rows = on_read!(self, |p| bind_all!(sqlx::query_as::<_, ProjectDetail>(sqlx::AssertSqlSafe(list_sql.as_str())), &sql.values)
            .fetch_all(p)
            .await)?;
        Ok((total, rows))
    }

    /// The metadata of these projects: (project id, key, value), by project then key.
    pub async fn projects_metadata(&self, ids: &[i64]) -> Result<Vec<(i64, String, String)>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut sql = Sql::default();
        let list = sql.list(ids.iter().copied().map(Value::Int));
        let text = format!("SELECT project_id, name, value FROM project_metadata WHERE project_id IN ({list}) ORDER BY project_id, name");
        Ok(on_read!(self, |p| bind_all!(
            sqlx::query_as::<_, (i64, String, String)>(sqlx::AssertSqlSafe(text.as_str())).persistent(false),
            &sql.values
        )
        .fetch_all(p)
        .await)?)
    }

    /// One metadata value of a project.
    pub async fn project_metadata_value(&self, project_id: i64, key: &str) -> Result<Option<String>> {
        let row =
            on_read!(self, |p| sqlx::query_as::<_, (String,)>("SELECT value FROM project_metadata WHERE project_id = $1 AND name = $2")
                .bind(project_id)
                .bind(key)
                .fetch_optional(p)
                .await)?;
        Ok(row.map(|(v,)| v))
    }

    /// The CVE allowlists of these projects (projects without one are left out).
    pub async fn projects_allowlists(&self, ids: &[i64]) -> Result<Vec<AllowlistRow>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut sql = Sql::default();
        let list = sql.list(ids.iter().copied().map(Value::Int));
        let text = format!(
            "SELECT id, project_id, items, expires_at, creation_time, update_time FROM project_cve_allowlists WHERE project_id IN ({list})"
        );
        Ok(on_read!(self, |p| bind_all!(
            sqlx::query_as::<_, AllowlistRow>(sqlx::AssertSqlSafe(text.as_str())).persistent(false),
            &sql.values
        )
        .fetch_all(p)
        .await)?)
    }

    /// The roles a user holds in each of these projects: (project id, role).
    pub async fn user_roles_in(&self, user_id: i64, ids: &[i64]) -> Result<Vec<(i64, i64)>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut sql = Sql::default();
        let uid = sql.param(Value::Int(user_id));
        let list = sql.list(ids.iter().copied().map(Value::Int));
        let text = format!(
            "SELECT project_id, role FROM project_members WHERE entity_type = 'u' AND entity_id = {uid} AND project_id IN ({list}) ORDER BY project_id, role"
        );
        Ok(on_read!(self, |p| bind_all!(
            sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(text.as_str())).persistent(false),
            &sql.values
        )
        .fetch_all(p)
        .await)?)
    }

    /// Creates a project with its metadata, its owner as project admin and its allowlist, in one transaction.
    pub async fn create_project_with(&self, new: &NewProject<'_>, a: &Audit) -> Result<CreateProject> {
        on_write!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                if let Some(limit) = new.owner_limit {
                    let (owned,) = sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM projects WHERE owner_id = $1")
                        .bind(new.owner_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    if owned >= limit {
                        return Ok(CreateProject::LimitReached(limit));
                    }
                }
                let now = now_ms();
                let inserted = sqlx::query_as::<_, (i64,)>(
                    "INSERT INTO projects (name, owner_id, public, creation_time, update_time) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO NOTHING RETURNING id",
                )
                .bind(new.name)
                .bind(new.owner_id)
                .bind(new.public)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((id,)) = inserted else { return Ok(CreateProject::NameTaken) };
                sqlx::query("INSERT INTO project_metadata (project_id, name, value) VALUES ($1, 'public', $2)")
                    .bind(id)
                    .bind(bool_str(new.public))
                    .execute(&mut *tx)
                    .await?;
                for (k, v) in new.metadata.iter().filter(|(k, _)| k != "public") {
                    sqlx::query("INSERT INTO project_metadata (project_id, name, value) VALUES ($1, $2, $3)")
                        .bind(id)
                        .bind(k)
                        .bind(v)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(
                    "INSERT INTO project_members (project_id, entity_type, entity_id, role, creation_time, update_time) VALUES ($1, 'u', $2, $3, $4, $4)",
                )
                .bind(id)
                .bind(new.owner_id)
                .bind(super::accounts_role::PROJECT_ADMIN)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let (items, expires_at) = new.allowlist.clone().unwrap_or_else(|| ("[]".into(), None));
                sqlx::query(
                    "INSERT INTO project_cve_allowlists (project_id, items, expires_at, creation_time, update_time) VALUES ($1, $2, $3, $4, $4)",
                )
                .bind(id)
                .bind(items)
                .bind(expires_at)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let a = Audit { project_id: Some(id), ..a.clone() };
                audit!(&mut *tx, &a, true)?;
                tx.commit().await?;
                Ok::<CreateProject, Error>(CreateProject::Created(id))
            }
            .await
        })
    }

    /// Changes a project's visibility, metadata and allowlist in one transaction. False if it is gone.
    pub async fn update_project(&self, id: i64, u: &ProjectUpdate, a: &Audit) -> Result<bool> {
        on_write!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                let now = now_ms();
                let n = sqlx::query("UPDATE projects SET public = COALESCE($2, public), update_time = $3 WHERE id = $1")
                    .bind(id)
                    .bind(u.public)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                let public = u.public.map(|b| ("public".to_string(), bool_str(b).to_string()));
                for (k, v) in u.metadata.iter().filter(|(k, _)| k != "public").chain(public.iter()) {
                    sqlx::query(
                        "INSERT INTO project_metadata (project_id, name, value) VALUES ($1, $2, $3) ON CONFLICT (project_id, name) DO UPDATE SET value = excluded.value",
                    )
                    .bind(id)
                    .bind(k)
                    .bind(v)
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some((items, expires_at)) = &u.allowlist {
                    sqlx::query(
                        "INSERT INTO project_cve_allowlists (project_id, items, expires_at, creation_time, update_time) VALUES ($1, $2, $3, $4, $4) \
                         ON CONFLICT (project_id) DO UPDATE SET items = excluded.items, expires_at = excluded.expires_at, update_time = excluded.update_time",
                    )
                    .bind(id)
                    .bind(items)
                    .bind(*expires_at)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                audit!(&mut *tx, a, true)?;
                tx.commit().await?;
                Ok::<bool, Error>(true)
            }
            .await
        })
    }

    /// Deletes a project that holds no repositories, with its labels and the blob links left under its name.
    pub async fn delete_project(&self, id: i64, a: &Audit) -> Result<DeleteProject> {
        on_write!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                let Some((name,)) =
                    sqlx::query_as::<_, (String,)>("SELECT name FROM projects WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?
                else {
                    return Ok(DeleteProject::Missing);
                };
                let (repos,) = sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM repositories WHERE project_id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                if repos > 0 {
                    return Ok(DeleteProject::HasRepositories(repos));
                }
                sqlx::query("DELETE FROM repository_blobs WHERE repository LIKE $1 ESCAPE '\\'")
                    .bind(format!("{}/%", escape_like(&name)))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM labels WHERE scope = 'p' AND project_id = $1").bind(id).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM projects WHERE id = $1").bind(id).execute(&mut *tx).await?;
                audit!(&mut *tx, a, true)?;
                tx.commit().await?;
                Ok::<DeleteProject, Error>(DeleteProject::Deleted)
            }
            .await
        })
    }

    /// Adds metadata keys; `Err(key)` names a key the project already has (nothing is written then).
    pub async fn add_project_metadata(&self, id: i64, pairs: &[(String, String)], a: &Audit) -> Result<std::result::Result<(), String>> {
        on_write!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                for (k, v) in pairs {
                    let n = sqlx::query("INSERT INTO project_metadata (project_id, name, value) VALUES ($1, $2, $3) ON CONFLICT (project_id, name) DO NOTHING")
                        .bind(id)
                        .bind(k)
                        .bind(v)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if n == 0 {
                        return Ok(Err(k.clone()));
                    }
                    if k == "public" {
                        sqlx::query("UPDATE projects SET public = $2 WHERE id = $1").bind(id).bind(v == "true").execute(&mut *tx).await?;
                    }
                }
                sqlx::query("UPDATE projects SET update_time = $2 WHERE id = $1").bind(id).bind(now_ms()).execute(&mut *tx).await?;
                audit!(&mut *tx, a, true)?;
                tx.commit().await?;
                Ok::<_, Error>(Ok(()))
            }
            .await
        })
    }

    /// Sets one metadata key (created when absent); `public` also sets the project's visibility.
    pub async fn set_project_metadata(&self, id: i64, key: &str, value: &str, a: &Audit) -> Result<()> {
        on_write!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                sqlx::query(
                    "INSERT INTO project_metadata (project_id, name, value) VALUES ($1, $2, $3) ON CONFLICT (project_id, name) DO UPDATE SET value = excluded.value",
                )
                .bind(id)
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await?;
                if key == "public" {
                    sqlx::query("UPDATE projects SET public = $2 WHERE id = $1").bind(id).bind(value == "true").execute(&mut *tx).await?;
                }
                sqlx::query("UPDATE projects SET update_time = $2 WHERE id = $1").bind(id).bind(now_ms()).execute(&mut *tx).await?;
                audit!(&mut *tx, a, true)?;
                tx.commit().await?;
                Ok::<(), Error>(())
            }
            .await
        })
    }

    /// Removes one metadata key; removing `public` makes the project private. False if it was not set.
    pub async fn delete_project_metadata(&self, id: i64, key: &str, a: &Audit) -> Result<bool> {
        on_write!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                let n = sqlx::query("DELETE FROM project_metadata WHERE project_id = $1 AND name = $2")
                    .bind(id)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                if key == "public" {
                    sqlx::query("UPDATE projects SET public = FALSE WHERE id = $1").bind(id).execute(&mut *tx).await?;
                }
                sqlx::query("UPDATE projects SET update_time = $2 WHERE id = $1").bind(id).bind(now_ms()).execute(&mut *tx).await?;
                audit!(&mut *tx, a, true)?;
                tx.commit().await?;
                Ok::<bool, Error>(true)
            }
            .await
        })
    }

    /// Members of a project (optionally only the one with this exact name), by name, and how many match.
    pub async fn list_members(&self, project_id: i64, entity_name: Option<&str>, offset: i64, limit: i64) -> Result<(i64, Vec<MemberRow>)> {
        let mut sql = Sql::default();
        let pid = sql.param(Value::Int(project_id));
        let mut filter = format!(" WHERE m.project_id = {pid} AND m.entity_type = 'u'");
        if let Some(n) = entity_name {
            filter.push_str(&format!(" AND u.username = {}", sql.param(Value::Text(n.to_string()))));
        }
        let count_sql = format!("SELECT COUNT(*) FROM project_members m LEFT JOIN users u ON u.id = m.entity_id{filter}");
        let (total,) = on_read!(self, |p| bind_all!(sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(count_sql.as_str())), &sql.values)
            .fetch_one(p)
            .await)?;
        if total == 0 {
            return Ok((0, vec![]));
        }
        let lim = sql.param(Value::Int(limit));
        let off = sql.param(Value::Int(offset));
        let list_sql = format!("{MEMBER_SELECT}{filter} ORDER BY entity_name, m.id LIMIT {lim} OFFSET {off}");
        let rows = on_read!(self, |p| bind_all!(sqlx::query_as::<_, MemberRow>(sqlx::AssertSqlSafe(list_sql.as_str())), &sql.values)
            .fetch_all(p)
            .await)?;
        Ok((total, rows))
    }

    /// One member of a project by its id.
    pub async fn member(&self, project_id: i64, member_id: i64) -> Result<Option<MemberRow>> {
        let sql = format!("{MEMBER_SELECT} WHERE m.project_id = $1 AND m.id = $2");
        Ok(on_read!(self, |p| sqlx::query_as::<_, MemberRow>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(project_id)
            .bind(member_id)
            .fetch_optional(p)
            .await)?)
    }

    /// Adds a user to a project; None when the user is a member already.
    pub async fn add_member(&self, project_id: i64, user_id: i64, role: i64, a: &Audit) -> Result<Option<i64>> {
        on_write!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                let inserted = sqlx::query_as::<_, (i64,)>(
                    "INSERT INTO project_members (project_id, entity_type, entity_id, role, creation_time, update_time) VALUES ($1, 'u', $2, $3, $4, $4) \
                     ON CONFLICT (project_id, entity_type, entity_id) DO NOTHING RETURNING id",
                )
                .bind(project_id)
                .bind(user_id)
                .bind(role)
                .bind(now_ms())
                .fetch_optional(&mut *tx)
                .await?;
                let Some((id,)) = inserted else { return Ok(None) };
                audit!(&mut *tx, a, true)?;
                tx.commit().await?;
                Ok::<Option<i64>, Error>(Some(id))
            }
            .await
        })
    }

    /// Changes a member's role. False if there is no such member.
    pub async fn update_member_role(&self, project_id: i64, member_id: i64, role: i64, a: &Audit) -> Result<bool> {
        on_write!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                let n = sqlx::query("UPDATE project_members SET role = $3, update_time = $4 WHERE project_id = $1 AND id = $2")
                    .bind(project_id)
                    .bind(member_id)
                    .bind(role)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                audit!(&mut *tx, a, true)?;
                tx.commit().await?;
                Ok::<bool, Error>(true)
            }
            .await
        })
    }

    /// Removes a member. False if there is no such member.
    pub async fn delete_member(&self, project_id: i64, member_id: i64, a: &Audit) -> Result<bool> {
        on_write!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                let n = sqlx::query("DELETE FROM project_members WHERE project_id = $1 AND id = $2")
                    .bind(project_id)
                    .bind(member_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                audit!(&mut *tx, a, true)?;
                tx.commit().await?;
                Ok::<bool, Error>(true)
            }
            .await
        })
    }

    /// How many members a project has in each role: (role, count).
    pub async fn member_role_counts(&self, project_id: i64) -> Result<Vec<(i64, i64)>> {
        Ok(on_read!(self, |p| sqlx::query_as::<_, (i64, i64)>(
            "SELECT role, COUNT(*) FROM project_members WHERE project_id = $1 GROUP BY role ORDER BY role"
        )
        .bind(project_id)
        .fetch_all(p)
        .await)?)
    }

    /// The id and name of a user who may become a member (not deleted), by id.
    pub async fn member_candidate_by_id(&self, user_id: i64) -> Result<Option<(i64, String)>> {
        Ok(on_read!(self, |p| sqlx::query_as::<_, (i64, String)>("SELECT id, username FROM users WHERE id = $1 AND NOT deleted")
            .bind(user_id)
            .fetch_optional(p)
            .await)?)
    }

    /// The id and name of a user who may become a member (not deleted), by name.
    pub async fn member_candidate_by_name(&self, username: &str) -> Result<Option<(i64, String)>> {
        Ok(on_read!(self, |p| sqlx::query_as::<_, (i64, String)>("SELECT id, username FROM users WHERE username = $1 AND NOT deleted")
            .bind(username)
            .fetch_optional(p)
            .await)?)
    }

    /// A system setting's stored value.
    pub async fn setting(&self, name: &str) -> Result<Option<String>> {
        let row = on_read!(self, |p| sqlx::query_as::<_, (String,)>("SELECT value FROM system_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(|(v,)| v))
    }

    /// Stores a system setting, with its audit record.
    pub async fn set_setting(&self, name: &str, value: &str, a: &Audit) -> Result<()> {
        on_write!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                sqlx::query(
                    "INSERT INTO system_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )
                .bind(name)
                .bind(value)
                .execute(&mut *tx)
                .await?;
                audit!(&mut *tx, a, true)?;
                tx.commit().await?;
                Ok::<(), Error>(())
            }
            .await
        })
    }

    /// Several system settings' stored values: (name, value) for those that are set.
    pub async fn settings(&self, names: &[&str]) -> Result<Vec<(String, String)>> {
        let mut sql = Sql::default();
        let list = sql.list(names.iter().map(|n| Value::Text(n.to_string())));
        let text = format!("SELECT name, value FROM system_settings WHERE name IN ({list})");
        Ok(on_read!(self, |p| bind_all!(
            sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(text.as_str())).persistent(false),
            &sql.values
        )
        .fetch_all(p)
        .await)?)
    }

    /// Stores several system settings in one transaction, with one audit record each.
    pub async fn set_settings(&self, pairs: &[(&str, String)], a: &Audit) -> Result<()> {
        on_write!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                for (name, value) in pairs {
                    sqlx::query(
                        "INSERT INTO system_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    )
                    .bind(*name)
                    .bind(value)
                    .execute(&mut *tx)
                    .await?;
                    let a = Audit { resource: name.to_string(), ..a.clone() };
                    audit!(&mut *tx, &a, true)?;
                }
                tx.commit().await?;
                Ok::<(), Error>(())
            }
            .await
        })
    }

    /// Whether a repository row exists (created through the API or by a push).
    pub async fn repository_exists(&self, name: &str) -> Result<bool> {
        let row = on_read!(self, |p| sqlx::query_as::<_, (i64,)>("SELECT id FROM repositories WHERE name = $1")
            .bind(name)
            .fetch_optional(p)
            .await)?;
        Ok(row.is_some())
    }

    /// Creates an empty repository in a project; false if one with this name exists.
    pub async fn create_repository(&self, project_id: i64, name: &str, a: &Audit) -> Result<bool> {
        on_write!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                let now = now_ms();
                let n = sqlx::query(
                    "INSERT INTO repositories (project_id, name, creation_time, update_time) VALUES ($1, $2, $3, $3) ON CONFLICT (name) DO NOTHING",
                )
                .bind(project_id)
                .bind(name)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                audit!(&mut *tx, a, true)?;
                tx.commit().await?;
                Ok::<bool, Error>(true)
            }
            .await
        })
    }

    /// The audit records of a project, oldest first.
    pub async fn project_audit_log(&self, project_id: i64) -> Result<Vec<ProjectAuditRow>> {
        Ok(on_read!(self, |p| sqlx::query_as::<_, ProjectAuditRow>(
            "SELECT operator, resource, resource_type, operation, success FROM audit_log WHERE project_id = $1 ORDER BY id"
        )
        .bind(project_id)
        .fetch_all(p)
        .await)?)
    }
}
