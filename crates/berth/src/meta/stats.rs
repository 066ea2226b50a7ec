//! Counts and sums for search, statistics, project summaries and metrics: each answer is
//! one query, whatever the number of projects or repositories.
//!
//! Storage is counted in bytes of verified blobs (`blobs.size`); manifests, which live in
//! the database, are not counted. A project's storage is the distinct blobs its
//! repositories hold (uploaded or mounted there: `repository_blobs`, Harbor's project_blob),
//! found by a range scan of that table's primary key on the `<project>/` name prefix.

use super::sql::{Sql, Value, bind_all};
use super::{Meta, on_read};
use crate::error::Result;

/// Whose view of the projects a count or search takes.
#[derive(Clone, Debug, Default)]
pub struct Viewer {
    /// A system admin: every project.
    pub all: bool,
    /// A user sees public projects and those it is a member of; without a user id only
    /// public projects are seen.
    pub user_id: Option<i64>,
    /// Only projects of these names (a personal access token limited to some projects).
    pub projects: Option<Vec<String>>,
}

impl Viewer {
    /// `p` is the alias of `projects`; `only_private` restricts to private member projects.
    fn condition(&self, sql: &mut Sql, only_private: bool) -> String {
        let mut parts = Vec::new();
        if !self.all {
            match (self.user_id, only_private) {
                (Some(uid), false) => parts.push(format!(
                    "(p.public = TRUE OR EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = p.id AND m.entity_type = 'u' AND m.entity_id = {}))",
                    sql.param(Value::Int(uid))
                )),
                (Some(uid), true) => parts.push(format!(
                    "p.public = FALSE AND EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = p.id AND m.entity_type = 'u' AND m.entity_id = {})",
                    sql.param(Value::Int(uid))
                )),
                (None, false) => parts.push("p.public = TRUE".into()),
                (None, true) => parts.push("FALSE".into()),
            }
        } else if only_private {
            parts.push("p.public = FALSE".into());
        }
        if let Some(names) = &self.projects {
            parts.push(format!("p.name IN ({})", sql.list(names.iter().cloned().map(Value::Text))));
        }
        if parts.is_empty() { "TRUE".into() } else { parts.join(" AND ") }
    }
}

/// Harbor's `Statistic`, as counted for one viewer.
#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Statistic {
    pub public_project_count: i64,
    pub public_repo_count: i64,
    pub private_project_count: i64,
    pub private_repo_count: i64,
    pub total_project_count: i64,
    pub total_repo_count: i64,
    pub total_storage_consumption: i64,
}

/// A repository found by a search, with its project and counts.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SearchRepositoryRow {
    pub project_id: i64,
    pub project_name: String,
    pub project_public: bool,
    pub repository_name: String,
    pub pull_count: i64,
    pub artifact_count: i64,
}

const STORAGE_SUM: &str = "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs";

impl Meta {
    /// Bytes of every verified blob.
    pub async fn storage_used(&self) -> Result<i64> {
        let (n,) = on_read!(self, |p| sqlx::query_as::<_, (i64,)>(STORAGE_SUM).fetch_one(p).await)?;
        Ok(n)
    }

    /// Bytes of the distinct blobs held by the repositories of the project named `project`.
    pub async fn project_storage_used(&self, project: &str) -> Result<i64> {
        // Every repository name of the project starts with "<project>/"; "0" follows "/" in byte order.
        let (from, to) = (format!("{project}/"), format!("{project}0"));
        let (n,) = on_read!(self, |p| sqlx::query_as::<_, (i64,)>(
            "SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM blobs b \
             WHERE b.digest IN (SELECT rb.digest FROM repository_blobs rb WHERE rb.repository >= $1 AND rb.repository < $2)"
        )
        .bind(&from)
        .bind(&to)
        .fetch_one(p)
        .await)?;
        Ok(n)
    }

    /// Project and repository counts as Harbor reports them to `viewer`: public counts for
    /// everyone; a system admin also gets totals (private = total - public) and the storage
    /// used; anyone else gets the private projects it is a member of and their repositories.
    pub async fn statistic(&self, viewer: &Viewer) -> Result<Statistic> {
        let public = "(SELECT COUNT(*) FROM projects p WHERE p.public = TRUE) AS public_project_count, \
             (SELECT COUNT(*) FROM repositories r JOIN projects p ON p.id = r.project_id WHERE p.public = TRUE) AS public_repo_count";
        let mut sql = Sql::default();
        let text = if viewer.all && viewer.projects.is_none() {
            format!(
                "SELECT {public}, \
                 (SELECT COUNT(*) FROM projects p WHERE p.public = FALSE) AS private_project_count, \
                 (SELECT COUNT(*) FROM repositories r JOIN projects p ON p.id = r.project_id WHERE p.public = FALSE) AS private_repo_count, \
                 (SELECT COUNT(*) FROM projects) AS total_project_count, \
                 (SELECT COUNT(*) FROM repositories) AS total_repo_count, \
                 ({STORAGE_SUM}) AS total_storage_consumption"
            )
        } else {
            let projects = viewer.condition(&mut sql, true);
            let repos = viewer.condition(&mut sql, true);
            format!(
                "SELECT {public}, \
                 (SELECT COUNT(*) FROM projects p WHERE {projects}) AS private_project_count, \
                 (SELECT COUNT(*) FROM repositories r JOIN projects p ON p.id = r.project_id WHERE {repos}) AS private_repo_count, \
                 CAST(0 AS BIGINT) AS total_project_count, CAST(0 AS BIGINT) AS total_repo_count, \
                 CAST(0 AS BIGINT) AS total_storage_consumption"
            )
        };
        Ok(on_read!(self, |p| bind_all!(sqlx::query_as::<_, Statistic>(sqlx::AssertSqlSafe(text.as_str())), &sql.values)
            .fetch_one(p)
            .await)?)
    }

    /// Repositories whose name contains `text` (case-insensitive) in projects `viewer`
    /// sees, by name, at most `limit`; the artifact count (tagged manifests and those no
    /// index includes, as Harbor counts artifacts) comes from the same query.
    pub async fn search_repositories(&self, viewer: &Viewer, text: &str, limit: i64) -> Result<Vec<SearchRepositoryRow>> {
        let mut sql = Sql::default();
        let pattern = sql.param(Value::Text(format!("%{}%", super::projects::escape_like(&text.to_lowercase()))));
        let visible = viewer.condition(&mut sql, false);
        let lim = sql.param(Value::Int(limit));
        let text = format!(
            "SELECT r.project_id, p.name AS project_name, p.public AS project_public, r.name AS repository_name, r.pull_count, \
             r.artifact_count \
             FROM repositories r JOIN projects p ON p.id = r.project_id \
             WHERE LOWER(r.name) LIKE {pattern} ESCAPE '\\' AND {visible} ORDER BY r.name LIMIT {lim}"
        );
        Ok(on_read!(self, |p| bind_all!(sqlx::query_as::<_, SearchRepositoryRow>(sqlx::AssertSqlSafe(text.as_str())), &sql.values)
            .fetch_all(p)
            .await)?)
    }
}
