//! Harbor's view of content: repositories, artifacts (manifests), tags and accessories.
//!
//! Lists are one query for the page and one for the count; what a page needs per row (tags,
//! labels, accessories, child ids) is fetched for the whole page at once by id.

use super::sql::{Sql, Value, bind_all};
use super::{Audit, Meta, audit, change_audited, now_ms, on_read, on_write};
use crate::error::{Error, Result};

/// A repository with its listed artifact count.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RepositoryRow {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub description: String,
    pub pull_count: i64,
    pub creation_time: i64,
    pub update_time: i64,
    pub artifact_count: i64,
}

/// One condition of a repository list.
#[derive(Clone, Debug)]
pub enum RepoCond {
    Project(i64),
    NameIs(String),
    NameContains(String),
    /// In a project the caller may see: public, or (with a user id) one the user is a member of.
    VisibleTo(Option<i64>),
    /// In one of these projects (by name).
    ProjectNameIn(Vec<String>),
}

/// Orders of a repository list.
#[derive(Clone, Copy, Debug)]
pub enum RepoSort {
    Id,
    Name,
    CreationTime,
    UpdateTime,
    PullCount,
}

impl RepoSort {
    fn column(self) -> &'static str {
        match self {
            RepoSort::Id => "r.id",
            RepoSort::Name => "r.name",
            RepoSort::CreationTime => "r.creation_time",
            RepoSort::UpdateTime => "r.update_time",
            RepoSort::PullCount => "r.pull_count",
        }
    }
}

const LISTED: &str = "m.parents = 0 AND m.accessory_of IS NULL";

const REPO_SELECT: &str =
    "SELECT r.id, r.project_id, r.name, r.description, r.pull_count, r.creation_time, r.update_time, r.artifact_count FROM repositories r";

/// An artifact: a manifest with what Harbor shows of it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ArtifactRow {
    pub id: i64,
    pub repository_id: i64,
    pub project_id: i64,
    pub repository_name: String,
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub config_media_type: Option<String>,
    pub artifact_kind: String,
    /// The manifest and everything it references.
    pub size: i64,
    pub push_time: i64,
    pub pull_time: Option<i64>,
    pub annotations: Option<String>,
    pub extra_attrs: Option<String>,
    pub accessory_of: Option<String>,
    pub accessory_type: Option<String>,
    pub content: Vec<u8>,
}

const ARTIFACT_SELECT: &str = "SELECT m.id, m.repository_id, r.project_id, r.name AS repository_name, m.digest, m.media_type, m.artifact_type, \
     m.config_media_type, m.artifact_kind, \
     m.total_size AS size, \
     m.push_time, m.pull_time, m.annotations, m.extra_attrs, m.accessory_of, m.accessory_type, m.content \
     FROM manifests m JOIN repositories r ON r.id = m.repository_id";

/// Where an artifact list looks.
#[derive(Clone, Copy, Debug)]
pub enum ArtifactScope {
    Repository(i64),
    Project(i64),
}

/// One condition of an artifact list.
#[derive(Clone, Debug)]
pub enum ArtifactCond {
    Digest(String),
    Kind(String),
    MediaType(String),
    TagIs(String),
    TagContains(String),
    Tagged,
    Untagged,
    /// Carries every one of these labels.
    Labels(Vec<i64>),
    PushTime(Option<i64>, Option<i64>),
    PullTime(Option<i64>, Option<i64>),
    /// Only the most recently pushed listed artifact of each repository (among those of this
    /// type and media type, when given).
    LatestInRepository {
        kind: Option<String>,
        media_type: Option<String>,
    },
}

/// Orders of an artifact list.
#[derive(Clone, Copy, Debug)]
pub enum ArtifactSort {
    Id,
    PushTime,
    PullTime,
    Digest,
}

impl ArtifactSort {
    fn column(self) -> &'static str {
        match self {
            ArtifactSort::Id => "m.id",
            ArtifactSort::PushTime => "m.push_time",
            ArtifactSort::PullTime => "m.pull_time",
            ArtifactSort::Digest => "m.digest",
        }
    }
}

/// A tag of an artifact.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TagRow {
    pub id: i64,
    pub repository_id: i64,
    pub manifest_id: i64,
    pub name: String,
    pub push_time: i64,
    pub pull_time: Option<i64>,
}

/// Orders of a tag list.
#[derive(Clone, Copy, Debug)]
pub enum TagSort {
    Id,
    Name,
    PushTime,
    PullTime,
}

impl TagSort {
    fn column(self) -> &'static str {
        match self {
            TagSort::Id => "t.id",
            TagSort::Name => "t.name",
            TagSort::PushTime => "t.push_time",
            TagSort::PullTime => "t.pull_time",
        }
    }
}

fn order_by(sort: &[(&'static str, bool)], default: &str, tiebreak: &str) -> String {
    let mut order: Vec<String> = sort.iter().map(|(c, desc)| format!("{c}{}", if *desc { " DESC" } else { "" })).collect();
    if order.is_empty() {
        order.push(default.into());
    }
    order.push(tiebreak.into());
    order.join(", ")
}

fn like(s: &str) -> String {
    let escaped = s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

impl Meta {
    /// One page of repositories matching every condition, and how many match.
    pub async fn list_repositories(
        &self,
        conds: &[RepoCond],
        sort: &[(RepoSort, bool)],
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<RepositoryRow>)> {
        let mut sql = Sql::default();
        let mut parts = Vec::new();
        for c in conds {
            parts.push(match c {
                RepoCond::Project(id) => format!("r.project_id = {}", sql.param(Value::Int(*id))),
                RepoCond::NameIs(n) => format!("r.name = {}", sql.param(Value::Text(n.clone()))),
                RepoCond::NameContains(n) => format!("LOWER(r.name) LIKE {} ESCAPE '\\'", sql.param(Value::Text(like(&n.to_lowercase())))),
                RepoCond::VisibleTo(None) => "r.project_id IN (SELECT p.id FROM projects p WHERE p.public = TRUE)".into(),
                RepoCond::VisibleTo(Some(uid)) => format!(
                    "r.project_id IN (SELECT p.id FROM projects p WHERE p.public = TRUE UNION \
                     SELECT pm.project_id FROM project_members pm WHERE pm.entity_type = 'u' AND pm.entity_id = {})",
                    sql.param(Value::Int(*uid))
                ),
                RepoCond::ProjectNameIn(names) => {
                    format!(
                        "r.project_id IN (SELECT p.id FROM projects p WHERE p.name IN ({}))",
                        sql.list(names.iter().cloned().map(Value::Text))
                    )
                }
            });
        }
        let filter = if parts.is_empty() { String::new() } else { format!(" WHERE {}", parts.join(" AND ")) };
        let count_sql = format!("SELECT COUNT(*) FROM repositories r{filter}");
        let (total,) = on_read!(self, |p| bind_all!(sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(count_sql.as_str())), &sql.values)
            .fetch_one(p)
            .await)?;
        if total == 0 || offset >= total {
            return Ok((total, vec![]));
        }
        let sort: Vec<(&'static str, bool)> = sort.iter().map(|(s, d)| (s.column(), *d)).collect();
        let order = order_by(&sort, "r.creation_time DESC", "r.id DESC");
        let lim = sql.param(Value::Int(limit));
        let off = sql.param(Value::Int(offset));
        let list_sql = format!("{REPO_SELECT}{filter} ORDER BY {order} LIMIT {lim} OFFSET {off}");
        let rows = on_read!(self, |p| bind_all!(sqlx::query_as::<_, RepositoryRow>(sqlx::AssertSqlSafe(list_sql.as_str())), &sql.values)
            .fetch_all(p)
            .await)?;
        Ok((total, rows))
    }

    /// A repository by full name.
    pub async fn repository(&self, name: &str) -> Result<Option<RepositoryRow>> {
        let sql = format!("{REPO_SELECT} WHERE r.name = $1");
        Ok(on_read!(self, |p| sqlx::query_as::<_, RepositoryRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(name).fetch_optional(p).await)?)
    }

    /// Sets a repository's description. False if it is gone.
    pub async fn update_repository(&self, id: i64, description: &str, a: &Audit) -> Result<bool> {
        change_audited!(
            self,
            a,
            sqlx::query("UPDATE repositories SET description = $1, update_time = $2 WHERE id = $3")
                .bind(description)
                .bind(now_ms())
                .bind(id)
        )
    }

    /// Deletes a repository with all its artifacts, tags and blob links. False if it is gone.
    pub async fn delete_repository(&self, id: i64, a: &Audit) -> Result<bool> {
        on_write!(self, |p| async {
            let mut tx = p.begin().await?;
            let Some((name,)) =
                sqlx::query_as::<_, (String,)>("SELECT name FROM repositories WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?
            else {
                return Ok(false);
            };
            sqlx::query("DELETE FROM manifests WHERE repository_id = $1").bind(id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM repository_blobs WHERE repository = $1").bind(&name).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM repositories WHERE id = $1").bind(id).execute(&mut *tx).await?;
            audit!(&mut *tx, a, true)?;
            tx.commit().await?;
            Ok::<bool, Error>(true)
        }
        .await)
    }

    /// One page of the artifacts a repository lists (not index children, not accessories).
    pub async fn list_artifacts(
        &self,
        scope: ArtifactScope,
        conds: &[ArtifactCond],
        sort: &[(ArtifactSort, bool)],
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<ArtifactRow>)> {
        let mut sql = Sql::default();
        let scope_kind = scope;
        let scope = match scope {
            ArtifactScope::Repository(id) => format!("m.repository_id = {}", sql.param(Value::Int(id))),
            ArtifactScope::Project(id) => {
                format!("m.repository_id IN (SELECT r.id FROM repositories r WHERE r.project_id = {})", sql.param(Value::Int(id)))
            }
        };
        let mut parts = vec![scope, LISTED.to_string()];
        for c in conds {
            parts.push(match c {
                ArtifactCond::Digest(d) => format!("m.digest = {}", sql.param(Value::Text(d.clone()))),
                ArtifactCond::Kind(k) => format!("m.artifact_kind = {}", sql.param(Value::Text(k.clone()))),
                ArtifactCond::MediaType(t) => format!("m.media_type = {}", sql.param(Value::Text(t.clone()))),
                ArtifactCond::TagIs(t) => {
                    format!("EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id AND t.name = {})", sql.param(Value::Text(t.clone())))
                }
                ArtifactCond::TagContains(t) => format!(
                    "EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id AND t.name LIKE {} ESCAPE '\\')",
                    sql.param(Value::Text(like(t)))
                ),
                ArtifactCond::Tagged => "EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)".into(),
                ArtifactCond::Untagged => "NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)".into(),
                ArtifactCond::Labels(ids) => ids
                    .iter()
                    .map(|id| {
                        format!(
                            "EXISTS (SELECT 1 FROM artifact_labels al WHERE al.manifest_id = m.id AND al.label_id = {})",
                            sql.param(Value::Int(*id))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" AND "),
                ArtifactCond::PushTime(from, to) => range("m.push_time", *from, *to, &mut sql),
                ArtifactCond::PullTime(from, to) => range("m.pull_time", *from, *to, &mut sql),
                ArtifactCond::LatestInRepository { kind, media_type } => {
                    let mut inner = String::new();
                    if let Some(k) = kind {
                        inner.push_str(&format!(" AND l.artifact_kind = {}", sql.param(Value::Text(k.clone()))));
                    }
                    if let Some(t) = media_type {
                        inner.push_str(&format!(" AND l.media_type = {}", sql.param(Value::Text(t.clone()))));
                    }
                    format!(
                        "m.id = (SELECT l.id FROM manifests l WHERE l.repository_id = m.repository_id AND l.parents = 0 \
                         AND l.accessory_of IS NULL{inner} ORDER BY l.push_time DESC, l.id DESC LIMIT 1)"
                    )
                }
            });
        }
        let parts: Vec<String> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        let filter = format!(" WHERE {}", parts.join(" AND "));
        // Unfiltered, a repository's total is kept with it; anything else is counted.
        let total = match (scope_kind, conds.is_empty()) {
            (ArtifactScope::Repository(id), true) => {
                on_read!(self, |p| sqlx::query_as::<_, (i64,)>("SELECT artifact_count FROM repositories WHERE id = $1")
                    .bind(id)
                    .fetch_optional(p)
                    .await)?
                .map_or(0, |(n,)| n)
            }
            _ => {
                let count_sql = format!("SELECT COUNT(*) FROM manifests m{filter}");
                on_read!(self, |p| bind_all!(sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(count_sql.as_str())), &sql.values)
                    .fetch_one(p)
                    .await)?
                .0
            }
        };
        if total == 0 || offset >= total {
            return Ok((total, vec![]));
        }
        let sort: Vec<(&'static str, bool)> = sort.iter().map(|(s, d)| (s.column(), *d)).collect();
        let order = order_by(&sort, "m.push_time DESC", "m.id DESC");
        let lim = sql.param(Value::Int(limit));
        let off = sql.param(Value::Int(offset));
        // Pick the page's ids from the manifests alone, then read the page's rows.
        let list_sql = format!(
            "{ARTIFACT_SELECT} WHERE m.id IN (SELECT m.id FROM manifests m{filter} ORDER BY {order} LIMIT {lim} OFFSET {off}) ORDER BY {order}"
        );
        let rows = on_read!(self, |p| bind_all!(sqlx::query_as::<_, ArtifactRow>(sqlx::AssertSqlSafe(list_sql.as_str())), &sql.values)
            .fetch_all(p)
            .await)?;
        Ok((total, rows))
    }

    /// An artifact of a repository by digest (listed or not).
    pub async fn artifact_by_digest(&self, repository_id: i64, digest: &str) -> Result<Option<ArtifactRow>> {
        let sql = format!("{ARTIFACT_SELECT} WHERE m.repository_id = $1 AND m.digest = $2");
        Ok(on_read!(self, |p| sqlx::query_as::<_, ArtifactRow>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(repository_id)
            .bind(digest)
            .fetch_optional(p)
            .await)?)
    }

    /// The artifact a tag of a repository points to.
    pub async fn artifact_by_tag(&self, repository_id: i64, tag: &str) -> Result<Option<ArtifactRow>> {
        let sql = format!("{ARTIFACT_SELECT} JOIN tags t ON t.manifest_id = m.id WHERE t.repository_id = $1 AND t.name = $2");
        Ok(on_read!(self, |p| sqlx::query_as::<_, ArtifactRow>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(repository_id)
            .bind(tag)
            .fetch_optional(p)
            .await)?)
    }

    /// The tags of these artifacts, newest first per artifact.
    pub async fn tags_of_artifacts(&self, ids: &[i64]) -> Result<Vec<TagRow>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut sql = Sql::default();
        let list = sql.list(ids.iter().copied().map(Value::Int));
        let text = format!(
            "SELECT t.id, t.repository_id, t.manifest_id, t.name, t.push_time, t.pull_time FROM tags t WHERE t.manifest_id IN ({list}) \
             ORDER BY t.manifest_id, t.push_time DESC, t.id DESC"
        );
        Ok(on_read!(self, |p| bind_all!(sqlx::query_as::<_, TagRow>(sqlx::AssertSqlSafe(text.as_str())).persistent(false), &sql.values)
            .fetch_all(p)
            .await)?)
    }

    /// One page of an artifact's tags.
    pub async fn list_tags_of(
        &self,
        manifest_id: i64,
        name: Option<(&str, bool)>,
        sort: &[(TagSort, bool)],
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<TagRow>)> {
        let mut sql = Sql::default();
        let mut filter = format!(" WHERE t.manifest_id = {}", sql.param(Value::Int(manifest_id)));
        match name {
            Some((n, false)) => filter.push_str(&format!(" AND t.name = {}", sql.param(Value::Text(n.into())))),
            Some((n, true)) => filter.push_str(&format!(" AND t.name LIKE {} ESCAPE '\\'", sql.param(Value::Text(like(n))))),
            None => {}
        }
        let count_sql = format!("SELECT COUNT(*) FROM tags t{filter}");
        let (total,) = on_read!(self, |p| bind_all!(sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(count_sql.as_str())), &sql.values)
            .fetch_one(p)
            .await)?;
        let sort: Vec<(&'static str, bool)> = sort.iter().map(|(s, d)| (s.column(), *d)).collect();
        let order = order_by(&sort, "t.push_time DESC", "t.id DESC");
        let lim = sql.param(Value::Int(limit));
        let off = sql.param(Value::Int(offset));
        let text = format!(
            "SELECT t.id, t.repository_id, t.manifest_id, t.name, t.push_time, t.pull_time FROM tags t{filter} ORDER BY {order} LIMIT {lim} OFFSET {off}"
        );
        let rows =
            on_read!(self, |p| bind_all!(sqlx::query_as::<_, TagRow>(sqlx::AssertSqlSafe(text.as_str())).persistent(false), &sql.values)
                .fetch_all(p)
                .await)?;
        Ok((total, rows))
    }

    /// Tags an artifact. False when the repository already has a tag of that name.
    pub async fn create_tag(&self, repository_id: i64, manifest_id: i64, name: &str, a: &Audit) -> Result<bool> {
        on_write!(self, |p| {
            async {
            let mut tx = p.begin().await?;
            let now = now_ms();
            let r = sqlx::query(
                "INSERT INTO tags (repository_id, manifest_id, name, push_time) VALUES ($1, $2, $3, $4) ON CONFLICT (repository_id, name) DO NOTHING",
            )
            .bind(repository_id)
            .bind(manifest_id)
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query("UPDATE repositories SET update_time = $1 WHERE id = $2").bind(now).bind(repository_id).execute(&mut *tx).await?;
            audit!(&mut *tx, a, true)?;
            tx.commit().await?;
            Ok::<bool, Error>(true)
        }
        .await
        })
    }

    /// Removes a tag of an artifact. False if the artifact has no such tag.
    pub async fn delete_tag_of(&self, manifest_id: i64, name: &str, a: &Audit) -> Result<bool> {
        change_audited!(self, a, sqlx::query("DELETE FROM tags WHERE manifest_id = $1 AND name = $2").bind(manifest_id).bind(name))
    }

    /// The accessories of these subjects in these repositories, oldest first (match them to
    /// their subject by repository and digest).
    pub async fn accessories_of(&self, repository_ids: &[i64], subjects: &[String]) -> Result<Vec<ArtifactRow>> {
        if subjects.is_empty() || repository_ids.is_empty() {
            return Ok(vec![]);
        }
        let mut sql = Sql::default();
        let repos = sql.list(repository_ids.iter().copied().map(Value::Int));
        let list = sql.list(subjects.iter().cloned().map(Value::Text));
        let text = format!("{ARTIFACT_SELECT} WHERE m.repository_id IN ({repos}) AND m.accessory_of IN ({list}) ORDER BY m.id");
        Ok(on_read!(self, |p| bind_all!(
            sqlx::query_as::<_, ArtifactRow>(sqlx::AssertSqlSafe(text.as_str())).persistent(false),
            &sql.values
        )
        .fetch_all(p)
        .await)?)
    }

    /// (repository id, digest, id) of the manifests of these repositories with these digests.
    pub async fn manifest_ids(&self, repository_ids: &[i64], digests: &[String]) -> Result<Vec<(i64, String, i64)>> {
        if digests.is_empty() || repository_ids.is_empty() {
            return Ok(vec![]);
        }
        let mut sql = Sql::default();
        let repos = sql.list(repository_ids.iter().copied().map(Value::Int));
        let list = sql.list(digests.iter().cloned().map(Value::Text));
        let text = format!("SELECT repository_id, digest, id FROM manifests WHERE repository_id IN ({repos}) AND digest IN ({list})");
        Ok(on_read!(self, |p| bind_all!(
            sqlx::query_as::<_, (i64, String, i64)>(sqlx::AssertSqlSafe(text.as_str())).persistent(false),
            &sql.values
        )
        .fetch_all(p)
        .await)?)
    }
}

fn range(column: &str, from: Option<i64>, to: Option<i64>, sql: &mut Sql) -> String {
    let mut parts = Vec::new();
    if let Some(f) = from {
        parts.push(format!("{column} >= {}", sql.param(Value::Int(f))));
    }
    if let Some(t) = to {
        parts.push(format!("{column} <= {}", sql.param(Value::Int(t))));
    }
    parts.join(" AND ")
}
