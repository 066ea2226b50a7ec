//! Repositories, blobs, manifests, tags and referrers.

use super::sql::{Batch, Value, in_list, try_batch, value_rows};
use super::{Audit, Meta, audit, change_audited, now_ms, on_read, on_write};
use crate::error::{Error, Result};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ManifestRow {
    pub id: i64,
    pub repository_id: i64,
    pub project_id: i64,
    /// The tag it was read by, if any.
    pub tag_id: Option<i64>,
    pub digest: String,
    pub media_type: String,
    pub content: Vec<u8>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ReferrerRow {
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub config_media_type: Option<String>,
    pub size: i64,
    pub annotations: Option<String>,
}

/// A manifest to store, with what it references.
pub struct NewManifest<'a> {
    pub repository: &'a str,
    pub project_id: i64,
    pub digest: &'a str,
    pub media_type: &'a str,
    pub artifact_type: Option<&'a str>,
    pub config_media_type: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub annotations: Option<String>,
    pub content: &'a [u8],
    /// (digest, size) of config and layers: must be linked to the repository.
    pub blobs: Vec<(String, i64)>,
    /// (digest, size) of an index's children: must be manifests of the repository.
    pub children: Vec<(String, i64)>,
    pub tag: Option<&'a str>,
    /// Harbor's artifact type (IMAGE, CHART, ...).
    pub artifact_kind: &'a str,
    /// Harbor's `extra_attrs`, as JSON.
    pub extra_attrs: Option<String>,
    /// The subject digest and accessory type, when this manifest is an accessory.
    pub accessory: Option<(String, &'static str)>,
}

/// What a manifest push came to.
#[derive(Debug, PartialEq, Eq)]
pub enum PutOutcome {
    Stored,
    BlobUnknown(String),
    ManifestUnknown(String),
}

impl Meta {
    /// Size of a blob the repository may serve.
    pub async fn repo_blob(&self, repository: &str, digest: &str) -> Result<Option<i64>> {
        let row = on_read!(self, |p| sqlx::query_as::<_, (i64,)>(
            "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest WHERE rb.repository = $1 AND rb.digest = $2"
        )
        .bind(repository)
        .bind(digest)
        .fetch_optional(p)
        .await)?;
        Ok(row.map(|(s,)| s))
    }

    /// Size of a stored blob, in any repository.
    pub async fn blob_size(&self, digest: &str) -> Result<Option<i64>> {
        let row = on_read!(self, |p| sqlx::query_as::<_, (i64,)>("SELECT size FROM blobs WHERE digest = $1")
            .bind(digest)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(|(s,)| s))
    }

    /// Links an existing blob into `repository` (cross-repository mount). False if it is not stored.
    pub async fn link_blob(&self, repository: &str, digest: &str) -> Result<bool> {
        let r = on_write!(self, |p| {
            sqlx::query(
            "INSERT INTO repository_blobs (repository, digest, creation_time) SELECT $1, digest, $3 FROM blobs WHERE digest = $2 ON CONFLICT (repository, digest) DO NOTHING"
        )
        .bind(repository)
        .bind(digest)
        .bind(now_ms())
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        })?;
        if r > 0 {
            return Ok(true);
        }
        Ok(self.repo_blob(repository, digest).await?.is_some())
    }

    /// Removes a blob from a repository. False if it was not there.
    pub async fn unlink_blob(&self, repository: &str, digest: &str) -> Result<bool> {
        let r = on_write!(self, |p| sqlx::query("DELETE FROM repository_blobs WHERE repository = $1 AND digest = $2")
            .bind(repository)
            .bind(digest)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(r > 0)
    }

    /// The first reference of a manifest to push that `repository` does not hold: a blob not
    /// linked to it or a child manifest not in it. Read on a reader (never the writer), in
    /// statements of at most `CHECK_CHUNK` digests.
    pub async fn missing_reference(
        &self,
        repository: &str,
        blobs: &[(String, i64)],
        children: &[(String, i64)],
    ) -> Result<Option<PutOutcome>> {
        let sqlite = self.is_sqlite();
        let p1 = if sqlite { "?" } else { "$1" };
        for (kind, refs) in [("b", blobs), ("m", children)] {
            let wanted: Vec<&str> = refs.iter().map(|(d, _)| d.as_str()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
            let mut present = std::collections::HashSet::new();
            for chunk in wanted.chunks(CHECK_CHUNK) {
                let sql = if kind == "b" {
                    format!(
                        "SELECT digest FROM repository_blobs WHERE repository = {p1} AND digest IN ({})",
                        in_list(sqlite, 2, chunk.len())
                    )
                } else {
                    format!(
                        "SELECT m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE r.name = {p1} AND m.digest IN ({})",
                        in_list(sqlite, 2, chunk.len())
                    )
                };
                let rows = on_read!(self, |p| {
                    let mut q = sqlx::query_as::<_, (String,)>(sqlx::AssertSqlSafe(sql.as_str()))
                        .persistent(chunk.len() == CHECK_CHUNK)
                        .bind(repository);
                    for d in chunk {
                        q = q.bind(*d);
                    }
                    q.fetch_all(p).await
                })?;
                present.extend(rows.into_iter().map(|(d,)| d));
            }
            if let Some((d, _)) = refs.iter().find(|(d, _)| !present.contains(d)) {
                return Ok(Some(if kind == "b" { PutOutcome::BlobUnknown(d.clone()) } else { PutOutcome::ManifestUnknown(d.clone()) }));
            }
        }
        Ok(None)
    }

    /// Stores a manifest with its references and optional tag, in one transaction. The
    /// references are checked first on a reader (`missing_reference`), so a manifest naming
    /// what the repository lacks never takes the writer. Inside the transaction the insert of
    /// the references re-checks each against its blob link or child manifest as it writes it
    /// (a reference that went away in between yields a NULL size, which the NOT NULL
    /// constraint refuses, and the push is answered as if the reader had seen it). While
    /// SQLite's single writer is held a new manifest without children takes five trips to the
    /// connection: begin, the repository's id, the insert, one batch for references, tag,
    /// repository and audit record, commit.
    pub async fn put_manifest(&self, m: &NewManifest<'_>, a: &Audit) -> Result<PutOutcome> {
        if let Some(missing) = self.missing_reference(m.repository, &m.blobs, &m.children).await? {
            return Ok(missing);
        }
        // On SQLite a manifest of many references holds the single writer for a while: one
        // such write at a time, and each followed by as long a pause, so other writes queue
        // behind at most one and have the writer at least half the time.
        let heavy = self.is_sqlite() && m.blobs.len() + m.children.len() > CHECK_CHUNK;
        let permit = if heavy { Some(HEAVY_WRITES.acquire().await.map_err(Error::internal)?) } else { None };
        let started = std::time::Instant::now();
        let written = self.write_manifest(m, a).await;
        if let Some(permit) = permit {
            tokio::time::sleep(started.elapsed()).await;
            drop(permit);
        }
        match written? {
            Some(()) => Ok(PutOutcome::Stored),
            // A reference went away since the reader's check: name it.
            None => Ok(self.missing_reference(m.repository, &m.blobs, &m.children).await?.unwrap_or_else(|| {
                PutOutcome::BlobUnknown(m.blobs.first().or(m.children.first()).map(|(d, _)| d.clone()).unwrap_or_default())
            })),
        }
    }

    /// The write transaction of `put_manifest`; None when a reference was missing.
    async fn write_manifest(&self, m: &NewManifest<'_>, a: &Audit) -> Result<Option<()>> {
        let sqlite = self.is_sqlite();
        on_write!(self, |p| {
            async {
            let mut tx = p.begin().await?;
            let held = std::time::Instant::now();
            let repo_id = sqlx::query_as::<_, (i64,)>("SELECT id FROM repositories WHERE name = $1")
                .bind(m.repository)
                .fetch_optional(&mut *tx)
                .await?
                .map(|(id,)| id);
            let now = now_ms();
            let repo_id = match repo_id {
                Some(id) => id,
                None => {
                    let created = sqlx::query_as::<_, (i64,)>(
                        "INSERT INTO repositories (project_id, name, creation_time, update_time) VALUES ($1, $2, $3, $3) \
                         ON CONFLICT (name) DO NOTHING RETURNING id",
                    )
                    .bind(m.project_id)
                    .bind(m.repository)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                    match created {
                        Some((id,)) => id,
                        // Created by a concurrent push (PostgreSQL) since the check.
                        None => sqlx::query_as::<_, (i64,)>("SELECT id FROM repositories WHERE name = $1").bind(m.repository).fetch_one(&mut *tx).await?.0,
                    }
                }
            };
            // How the repository's count of listed artifacts changes.
            let mut listed_delta: i64 = 0;
            let (accessory_of, accessory_type) = match &m.accessory {
                Some((subject, kind)) => (Some(subject.as_str()), Some(*kind)),
                None => (None, None),
            };
            let inserted = sqlx::query_as::<_, (i64,)>(
                "INSERT INTO manifests (repository_id, digest, media_type, artifact_type, config_media_type, subject_digest, annotations, size, content, push_time, \
                 artifact_kind, extra_attrs, accessory_of, accessory_type, total_size) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT (repository_id, digest) DO NOTHING RETURNING id",
            )
            .bind(repo_id)
            .bind(m.digest)
            .bind(m.media_type)
            .bind(m.artifact_type)
            .bind(m.config_media_type)
            .bind(m.subject)
            .bind(m.annotations.as_deref())
            .bind(m.content.len() as i64)
            .bind(m.content)
            .bind(now)
            .bind(m.artifact_kind)
            .bind(m.extra_attrs.as_deref())
            .bind(accessory_of)
            .bind(accessory_type)
            .bind(m.content.len() as i64 + m.blobs.iter().chain(m.children.iter()).map(|(_, s)| *s).sum::<i64>())
            .fetch_optional(&mut *tx)
            .await?;
            let mut batch = Batch::default();
            let manifest_id = match inserted {
                Some((id,)) => {
                    if accessory_of.is_none() {
                        listed_delta += 1;
                    }
                    for (sql, values) in refs_insert(id, m.repository, repo_id, &m.blobs, &m.children) {
                        batch.push(sql, values);
                    }
                    if !m.children.is_empty() {
                        // The children are referenced once more; one referenced for the first
                        // time is no longer listed on its own.
                        if !refs_written(try_batch!(tx, &batch, sqlite))? {
                            return Ok(None);
                        }
                        batch = Batch::default();
                        let taken = sqlx::query_as::<_, (i64, Option<String>)>(
                            "UPDATE manifests SET parents = parents + 1 WHERE repository_id = $1 \
                             AND digest IN (SELECT digest FROM manifest_refs WHERE manifest_id = $2 AND kind = 'm') RETURNING parents, accessory_of",
                        )
                        .bind(repo_id)
                        .bind(id)
                        .fetch_all(&mut *tx)
                        .await?;
                        listed_delta -= taken.iter().filter(|(parents, accessory)| *parents == 1 && accessory.is_none()).count() as i64;
                    }
                    id
                }
                None => {
                    // Pushed again: it is new to the repository's history, and a cosign-style tag
                    // makes an existing manifest an accessory.
                    let (parents, before) = sqlx::query_as::<_, (i64, Option<String>)>(
                        "SELECT parents, accessory_of FROM manifests WHERE repository_id = $1 AND digest = $2",
                    )
                    .bind(repo_id)
                    .bind(m.digest)
                    .fetch_one(&mut *tx)
                    .await?;
                    if parents == 0 && before.is_none() && accessory_of.is_some() {
                        listed_delta -= 1;
                    }
                    sqlx::query_as::<_, (i64,)>(
                        "UPDATE manifests SET push_time = $3, accessory_of = COALESCE(accessory_of, $4), accessory_type = COALESCE(accessory_type, $5) \
                         WHERE repository_id = $1 AND digest = $2 RETURNING id",
                    )
                    .bind(repo_id)
                    .bind(m.digest)
                    .bind(now)
                    .bind(accessory_of)
                    .bind(accessory_type)
                    .fetch_one(&mut *tx)
                    .await?
                    .0
                }
            };
            if let Some(tag) = m.tag {
                batch.push(
                    "INSERT INTO tags (repository_id, manifest_id, name, push_time) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (repository_id, name) DO UPDATE SET manifest_id = excluded.manifest_id, push_time = excluded.push_time",
                    vec![Value::Int(repo_id), Value::Int(manifest_id), Value::Text(tag.to_string()), Value::Int(now)],
                );
            }
            batch.push(
                "UPDATE repositories SET update_time = $1, artifact_count = artifact_count + $3 WHERE id = $2",
                vec![Value::Int(now), Value::Int(repo_id), Value::Int(listed_delta)],
            );
            batch.push(super::AUDIT_INSERT, super::audit_values(a, true));
            if !refs_written(try_batch!(tx, &batch, sqlite))? {
                return Ok(None);
            }
            tx.commit().await?;
            let references = m.blobs.len() + m.children.len();
            tracing::debug!(references, held_ms = held.elapsed().as_secs_f64() * 1e3, "manifest written");
            Ok::<Option<()>, Error>(Some(()))
        }
        .await
        })
    }

    pub async fn manifest_by_tag(&self, repository: &str, tag: &str) -> Result<Option<ManifestRow>> {
        Ok(on_read!(self, |p| {
            sqlx::query_as::<_, ManifestRow>(
            "SELECT m.id, m.repository_id, r.project_id, t.id AS tag_id, m.digest, m.media_type, m.content FROM repositories r JOIN tags t ON t.repository_id = r.id JOIN manifests m ON m.id = t.manifest_id WHERE r.name = $1 AND t.name = $2"
        )
        .bind(repository)
        .bind(tag)
        .fetch_optional(p)
        .await
        })?)
    }

    pub async fn manifest_by_digest(&self, repository: &str, digest: &str) -> Result<Option<ManifestRow>> {
        Ok(on_read!(self, |p| {
            sqlx::query_as::<_, ManifestRow>(
            "SELECT m.id, m.repository_id, r.project_id, CAST(NULL AS BIGINT) AS tag_id, m.digest, m.media_type, m.content FROM repositories r JOIN manifests m ON m.repository_id = r.id WHERE r.name = $1 AND m.digest = $2"
        )
        .bind(repository)
        .bind(digest)
        .fetch_optional(p)
        .await
        })?)
    }

    /// Deletes a manifest with its tags, labels and accessories. False if it was not there.
    /// The children of an index stay, listed again once no index references them.
    pub async fn delete_manifest(&self, repository: &str, digest: &str, a: &Audit) -> Result<bool> {
        on_write!(self, |p| {
            async {
            let mut tx = p.begin().await?;
            let found = sqlx::query_as::<_, (i64, i64)>(
                "SELECT m.id, m.repository_id FROM repositories r JOIN manifests m ON m.repository_id = r.id WHERE r.name = $1 AND m.digest = $2",
            )
            .bind(repository)
            .bind(digest)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((id, repo_id)) = found else { return Ok(false) };
            remove_manifest!(tx, id, repo_id);
            let accessories = sqlx::query_as::<_, (i64,)>("SELECT id FROM manifests WHERE repository_id = $1 AND accessory_of = $2")
                .bind(repo_id)
                .bind(digest)
                .fetch_all(&mut *tx)
                .await?;
            for (acc,) in accessories {
                remove_manifest!(tx, acc, repo_id);
            }
            audit!(&mut *tx, a, true)?;
            tx.commit().await?;
            Ok::<bool, Error>(true)
        }
        .await
        })
    }

    /// Deletes a tag, leaving its manifest. False if it was not there.
    pub async fn delete_tag(&self, repository: &str, tag: &str, a: &Audit) -> Result<bool> {
        change_audited!(
            self,
            a,
            sqlx::query("DELETE FROM tags WHERE name = $2 AND repository_id = (SELECT id FROM repositories WHERE name = $1)")
                .bind(repository)
                .bind(tag)
        )
    }

    /// Up to `n` tag names after `last`, in lexical order; None if the repository does not exist.
    pub async fn list_tags(&self, repository: &str, last: &str, n: i64) -> Result<Option<Vec<String>>> {
        on_read!(self, |p| async {
            let Some((repo_id,)) =
                sqlx::query_as::<_, (i64,)>("SELECT id FROM repositories WHERE name = $1").bind(repository).fetch_optional(p).await?
            else {
                return Ok(None);
            };
            let rows =
                sqlx::query_as::<_, (String,)>("SELECT name FROM tags WHERE repository_id = $1 AND name > $2 ORDER BY name LIMIT $3")
                    .bind(repo_id)
                    .bind(last)
                    .bind(n)
                    .fetch_all(p)
                    .await?;
            Ok::<_, Error>(Some(rows.into_iter().map(|(s,)| s).collect()))
        }
        .await)
    }

    /// Up to `n` repository names after `last`, in lexical order.
    pub async fn catalog(&self, last: &str, n: i64) -> Result<Vec<String>> {
        let rows =
            on_read!(self, |p| sqlx::query_as::<_, (String,)>("SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2")
                .bind(last)
                .bind(n)
                .fetch_all(p)
                .await)?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    /// Manifests of `repository` whose subject is `digest`, oldest first.
    pub async fn referrers(&self, repository: &str, digest: &str) -> Result<Vec<ReferrerRow>> {
        Ok(on_read!(self, |p| {
            sqlx::query_as::<_, ReferrerRow>(
            "SELECT m.digest, m.media_type, m.artifact_type, m.config_media_type, m.size, m.annotations FROM repositories r JOIN manifests m ON m.repository_id = r.id \
             WHERE r.name = $1 AND m.subject_digest = $2 ORDER BY m.id"
        )
        .bind(repository)
        .bind(digest)
        .fetch_all(p)
        .await
        })?)
    }
}

/// Deletes one manifest row (tags, refs and labels cascade) and releases its children, on an
/// open transaction of either backend.
macro_rules! remove_manifest {
    ($tx:expr, $id:expr, $repo_id:expr) => {{
        let mut delta: i64 = 0;
        let released = sqlx::query_as::<_, (i64, Option<String>)>(
            "UPDATE manifests SET parents = parents - 1 WHERE repository_id = $1 AND parents > 0 \
             AND digest IN (SELECT digest FROM manifest_refs WHERE manifest_id = $2 AND kind = 'm') RETURNING parents, accessory_of",
        )
        .bind($repo_id)
        .bind($id)
        .fetch_all(&mut *$tx)
        .await?;
        delta += released.iter().filter(|(parents, accessory)| *parents == 0 && accessory.is_none()).count() as i64;
        let gone = sqlx::query_as::<_, (i64, Option<String>)>("DELETE FROM manifests WHERE id = $1 RETURNING parents, accessory_of")
            .bind($id)
            .fetch_optional(&mut *$tx)
            .await?;
        if let Some((0, None)) = gone {
            delta -= 1;
        }
        sqlx::query("UPDATE repositories SET artifact_count = artifact_count + $1, update_time = $2 WHERE id = $3")
            .bind(delta)
            .bind($crate::meta::now_ms())
            .bind($repo_id)
            .execute(&mut *$tx)
            .await?;
    }};
}
pub(crate) use remove_manifest;

impl Meta {
    /// Writes a batch of pulls in one transaction: pull times, repository pull counts and one
    /// audit row per pull, a statement per 500 rows whatever the number of artifacts.
    pub async fn record_pulls(&self, batch: &crate::domain::pulls::PendingPulls) -> Result<()> {
        const ROWS: usize = 500;
        let sqlite = self.is_sqlite();
        let latest = |table: &str, n: usize| {
            format!(
                "WITH v(id, t) AS (VALUES {}) UPDATE {table} SET pull_time = v.t FROM v \
                 WHERE {table}.id = v.id AND ({table}.pull_time IS NULL OR {table}.pull_time < v.t)",
                value_rows(sqlite, n, 2)
            )
        };
        let manifests: Vec<(i64, i64)> = batch.manifests.iter().map(|(k, v)| (*k, *v)).collect();
        let tags: Vec<(i64, i64)> = batch.tags.iter().map(|(k, v)| (*k, *v)).collect();
        let repositories: Vec<(i64, i64)> = batch.repositories.iter().map(|(k, v)| (*k, *v)).collect();
        on_write!(self, |p| {
            async {
            let mut tx = p.begin().await?;
            // Not kept prepared: the texts vary with the number of rows.
            for (table, rows) in [("manifests", &manifests), ("tags", &tags)] {
                for chunk in rows.chunks(ROWS) {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(latest(table, chunk.len()))).persistent(false);
                    for (id, t) in chunk {
                        q = q.bind(*id).bind(*t);
                    }
                    q.execute(&mut *tx).await?;
                }
            }
            for chunk in repositories.chunks(ROWS) {
                let sql = format!(
                    "WITH v(id, n) AS (VALUES {}) UPDATE repositories SET pull_count = repositories.pull_count + v.n FROM v \
                     WHERE repositories.id = v.id",
                    value_rows(sqlite, chunk.len(), 2)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
                for (id, n) in chunk {
                    q = q.bind(*id).bind(*n);
                }
                q.execute(&mut *tx).await?;
            }
            for chunk in batch.audits.chunks(ROWS) {
                let sql = format!(
                    "INSERT INTO audit_log (op_time, operator, project_id, resource, resource_type, operation, success, client_ip, user_agent) VALUES {}",
                    value_rows(sqlite, chunk.len(), 9)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
                for (t, a) in chunk {
                    q = q
                        .bind(*t)
                        .bind(&a.operator)
                        .bind(a.project_id)
                        .bind(&a.resource)
                        .bind(a.resource_type)
                        .bind(a.operation)
                        .bind(true)
                        .bind(&a.client_ip)
                        .bind(&a.user_agent);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<(), Error>(())
        }
        .await
        })
    }
}

/// Manifest writes of more than `CHECK_CHUNK` references under way on SQLite (one at a time).
static HEAVY_WRITES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Digests per statement: the reader's checks bind one each and the inserts of references
/// two, far below SQLite's 32,766 and PostgreSQL's 65,535 parameters.
const CHECK_CHUNK: usize = 1000;

/// The inserts of a new manifest's references, each (kind, digest) once, first size kept, at
/// most `CHECK_CHUNK` per statement. Each row takes its size only from a matching blob link
/// (blobs) or manifest of the repository (children), so a reference that is not there any more
/// inserts a NULL size, which the column refuses.
fn refs_insert(
    manifest_id: i64,
    repository: &str,
    repo_id: i64,
    blobs: &[(String, i64)],
    children: &[(String, i64)],
) -> Vec<(String, Vec<Value>)> {
    let mut statements = Vec::new();
    for (kind, refs) in [("b", blobs), ("m", children)] {
        // In digest order, so the inserts walk the indexes in order.
        let mut seen = std::collections::HashSet::new();
        let mut unique: Vec<&(String, i64)> = refs.iter().filter(|(d, _)| seen.insert(d.as_str())).collect();
        unique.sort_by(|a, b| a.0.cmp(&b.0));
        for chunk in unique.chunks(CHECK_CHUNK) {
            let (join, holder) = if kind == "b" {
                ("repository_blobs h ON h.repository = $2 AND h.digest = v.digest", Value::Text(repository.to_string()))
            } else {
                ("manifests h ON h.repository_id = $2 AND h.digest = v.digest", Value::Int(repo_id))
            };
            let sql = format!(
                "WITH v(digest, size) AS (VALUES {}) INSERT INTO manifest_refs (manifest_id, kind, digest, size) \
                 SELECT $1, '{kind}', v.digest, CASE WHEN h.digest IS NULL THEN NULL ELSE v.size END FROM v LEFT JOIN {join}",
                shifted_rows(chunk.len(), 2, 2)
            );
            let mut values = vec![Value::Int(manifest_id), holder];
            for (d, size) in chunk {
                values.extend([Value::Text(d.clone()), Value::Int(*size)]);
            }
            statements.push((sql, values));
        }
    }
    statements
}

/// `rows` rows of `cols` numbered placeholders starting after `$skip`: `($3, $4), ($5, $6)`.
fn shifted_rows(rows: usize, cols: usize, skip: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 8);
    for r in 0..rows {
        s.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push_str(&format!("${}", skip + r * cols + c + 1));
        }
        s.push(')');
    }
    s
}

/// Whether a batch holding references was written: false when a reference was missing (the
/// NOT NULL refusal of `refs_insert`), an error for anything else.
fn refs_written(r: std::result::Result<(), sqlx::Error>) -> Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(sqlx::Error::Database(e)) if e.kind() == sqlx::error::ErrorKind::NotNullViolation => Ok(false),
        Err(e) => Err(e.into()),
    }
}
