//! Labels (global or of one project) and the labels on artifacts: rows and queries.

use super::sql::{Sql, Value, bind_all};
use super::{Audit, Meta, audit, change_audited, now_ms, on_read, on_write};
use crate::error::{Error, Result};

/// A label as stored: scope `g` (global, `project_id` 0) or `p` (of project `project_id`).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LabelRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub color: String,
    pub scope: String,
    pub project_id: i64,
    pub creation_time: i64,
    pub update_time: i64,
}

/// A label on an artifact: the manifest and the label.
#[derive(sqlx::FromRow)]
struct AttachedRow {
    manifest_id: i64,
    #[sqlx(flatten)]
    label: LabelRow,
}

/// One condition of a label list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelCond {
    NameIn(Vec<String>),
    /// Case-insensitive substring.
    NameContains(String),
    DescriptionIn(Vec<String>),
    DescriptionContains(String),
    ColorIn(Vec<String>),
    IdIn(Vec<i64>),
    IdRange(Option<i64>, Option<i64>),
}

/// What a label list may be ordered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelSort {
    Id,
    Name,
    Description,
    Color,
    CreationTime,
    UpdateTime,
}

impl LabelSort {
    fn column(self) -> &'static str {
        match self {
            LabelSort::Id => "id",
            LabelSort::Name => "name",
            LabelSort::Description => "description",
            LabelSort::Color => "color",
            LabelSort::CreationTime => "creation_time",
            LabelSort::UpdateTime => "update_time",
        }
    }
}

/// A page of the labels of one scope (and project), filtered and ordered.
#[derive(Clone, Debug)]
pub struct LabelQuery {
    pub scope: String,
    pub project_id: i64,
    pub conds: Vec<LabelCond>,
    /// Then by id, so that pages never overlap.
    pub sort: Vec<(LabelSort, bool)>,
    pub offset: i64,
    pub limit: i64,
}

/// The outcome of a label update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelChange {
    Done,
    /// Another label of the same scope and project has that name.
    NameTaken,
    /// The label is gone.
    Missing,
}

/// The WHERE clause of a label list, with its parameters numbered from `$1`.
fn where_clause(q: &LabelQuery, sql: &mut Sql) -> String {
    let mut param = |b: Value| sql.param(b);
    let mut parts =
        vec![format!("scope = {}", param(Value::Text(q.scope.clone()))), format!("project_id = {}", param(Value::Int(q.project_id)))];
    let like = |s: &str| format!("%{}%", super::projects::escape_like(&s.to_lowercase()));
    for c in &q.conds {
        let part = match c {
            LabelCond::NameIn(vs) | LabelCond::DescriptionIn(vs) | LabelCond::ColorIn(vs) => {
                let col = match c {
                    LabelCond::NameIn(_) => "name",
                    LabelCond::DescriptionIn(_) => "description",
                    _ => "color",
                };
                if vs.is_empty() {
                    "FALSE".to_string()
                } else {
                    let ps: Vec<String> = vs.iter().map(|v| param(Value::Text(v.clone()))).collect();
                    format!("{col} IN ({})", ps.join(", "))
                }
            }
            LabelCond::NameContains(s) => format!("LOWER(name) LIKE {} ESCAPE '\\'", param(Value::Text(like(s)))),
            LabelCond::DescriptionContains(s) => format!("LOWER(description) LIKE {} ESCAPE '\\'", param(Value::Text(like(s)))),
            LabelCond::IdIn(ids) => {
                if ids.is_empty() {
                    "FALSE".to_string()
                } else {
                    let ps: Vec<String> = ids.iter().map(|i| param(Value::Int(*i))).collect();
                    format!("id IN ({})", ps.join(", "))
                }
            }
            LabelCond::IdRange(min, max) => {
                let mut r = Vec::new();
                if let Some(v) = min {
                    r.push(format!("id >= {}", param(Value::Int(*v))));
                }
                if let Some(v) = max {
                    r.push(format!("id <= {}", param(Value::Int(*v))));
                }
                if r.is_empty() { "TRUE".to_string() } else { r.join(" AND ") }
            }
        };
        parts.push(part);
    }
    format!(" WHERE {}", parts.join(" AND "))
}

const COLUMNS: &str = "id, name, description, color, scope, project_id, creation_time, update_time";

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
}

fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_foreign_key_violation())
}

impl Meta {
    /// Stores a label; None when its scope and project already have a label of that name.
    pub async fn create_label(&self, l: &LabelRow, a: &Audit) -> Result<Option<i64>> {
        on_write!(self, |p| async {
            let mut tx = p.begin().await?;
            let id = sqlx::query_as::<_, (i64,)>(
                "INSERT INTO labels (name, description, color, scope, project_id, creation_time, update_time) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (scope, project_id, name) DO NOTHING RETURNING id",
            )
            .bind(&l.name)
            .bind(&l.description)
            .bind(&l.color)
            .bind(&l.scope)
            .bind(l.project_id)
            .bind(l.creation_time)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((id,)) = id else { return Ok(None) };
            audit!(&mut *tx, a, true)?;
            tx.commit().await?;
            Ok::<_, Error>(Some(id))
        }
        .await)
    }

    pub async fn label(&self, id: i64) -> Result<Option<LabelRow>> {
        Ok(on_read!(self, |p| sqlx::query_as::<_, LabelRow>(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM labels WHERE id = $1")))
            .bind(id)
            .fetch_optional(p)
            .await)?)
    }

    /// A page of labels and the total that match.
    pub async fn labels(&self, q: &LabelQuery) -> Result<(Vec<LabelRow>, i64)> {
        let mut sql = Sql::default();
        let filter = where_clause(q, &mut sql);
        let binds = sql.values;
        let mut order: Vec<String> =
            q.sort.iter().map(|(s, desc)| format!("{} {}", s.column(), if *desc { "DESC" } else { "ASC" })).collect();
        if !q.sort.iter().any(|(s, _)| *s == LabelSort::Id) {
            order.push("id ASC".into());
        }
        let n = binds.len();
        let list_sql = format!("SELECT {COLUMNS} FROM labels{filter} ORDER BY {} LIMIT ${} OFFSET ${}", order.join(", "), n + 1, n + 2);
        let count_sql = format!("SELECT COUNT(*) FROM labels{filter}");
        on_read!(self, |p| async {
            let (total,) = bind_all!(sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(count_sql.clone())), &binds).fetch_one(p).await?;
            let rows = if total > q.offset {
                bind_all!(sqlx::query_as::<_, LabelRow>(sqlx::AssertSqlSafe(list_sql.clone())), &binds)
                    .bind(q.limit)
                    .bind(q.offset)
                    .fetch_all(p)
                    .await?
            } else {
                Vec::new()
            };
            Ok::<_, Error>((rows, total))
        }
        .await)
    }

    /// Changes a label's name, description and color.
    pub async fn update_label(&self, l: &LabelRow, a: &Audit) -> Result<LabelChange> {
        on_write!(self, |p| async {
            let mut tx = p.begin().await?;
            let r = sqlx::query("UPDATE labels SET name = $2, description = $3, color = $4, update_time = $5 WHERE id = $1")
                .bind(l.id)
                .bind(&l.name)
                .bind(&l.description)
                .bind(&l.color)
                .bind(now_ms())
                .execute(&mut *tx)
                .await;
            match r {
                Err(e) if is_unique_violation(&e) => return Ok(LabelChange::NameTaken),
                Err(e) => return Err(e.into()),
                Ok(r) if r.rows_affected() == 0 => return Ok(LabelChange::Missing),
                Ok(_) => {}
            }
            audit!(&mut *tx, a, true)?;
            tx.commit().await?;
            Ok::<_, Error>(LabelChange::Done)
        }
        .await)
    }

    /// Deletes a label, which detaches it from every artifact; false when it was not there.
    pub async fn delete_label(&self, id: i64, a: &Audit) -> Result<bool> {
        change_audited!(self, a, sqlx::query("DELETE FROM labels WHERE id = $1").bind(id))
    }

    /// (manifest_id, label) for every label on these manifests, in ONE query, in the order
    /// they were attached.
    pub async fn labels_of_artifacts(&self, manifest_ids: &[i64]) -> Result<Vec<(i64, LabelRow)>> {
        if manifest_ids.is_empty() {
            return Ok(vec![]);
        }
        // Integers only: safe to inline, and no limit on the number of parameters.
        let list = manifest_ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let rows = on_read!(self, |p| sqlx::query_as::<_, AttachedRow>(sqlx::AssertSqlSafe(format!(
            "SELECT al.manifest_id, l.id, l.name, l.description, l.color, l.scope, l.project_id, l.creation_time, l.update_time \
             FROM artifact_labels al JOIN labels l ON l.id = al.label_id \
             WHERE al.manifest_id IN ({list}) ORDER BY al.manifest_id, al.creation_time, l.id"
        )))
        .persistent(false)
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().map(|r| (r.manifest_id, r.label)).collect())
    }

    /// Puts a label on an artifact; false when it was already attached (nothing is written then).
    /// A label or manifest that does not exist is `Error::NotFound`.
    pub async fn attach_label(&self, manifest_id: i64, label_id: i64, a: &Audit) -> Result<bool> {
        on_write!(self, |p| async {
            let mut tx = p.begin().await?;
            let r = sqlx::query(
                "INSERT INTO artifact_labels (manifest_id, label_id, creation_time) VALUES ($1, $2, $3) \
                 ON CONFLICT (manifest_id, label_id) DO NOTHING",
            )
            .bind(manifest_id)
            .bind(label_id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await;
            match r {
                Err(e) if is_foreign_key_violation(&e) => {
                    return Err(Error::NotFound(format!("label {label_id} or artifact {manifest_id} not found")));
                }
                Err(e) => return Err(e.into()),
                Ok(r) if r.rows_affected() == 0 => return Ok(false),
                Ok(_) => {}
            }
            audit!(&mut *tx, a, true)?;
            tx.commit().await?;
            Ok::<_, Error>(true)
        }
        .await)
    }

    /// Takes a label off an artifact; false when it was not attached (nothing is written then).
    pub async fn detach_label(&self, manifest_id: i64, label_id: i64, a: &Audit) -> Result<bool> {
        change_audited!(
            self,
            a,
            sqlx::query("DELETE FROM artifact_labels WHERE manifest_id = $1 AND label_id = $2").bind(manifest_id).bind(label_id)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_clause_numbers_parameters_in_order() {
        let q = LabelQuery {
            scope: "p".into(),
            project_id: 3,
            conds: vec![
                LabelCond::NameContains("A_b".into()),
                LabelCond::IdIn(vec![1, 2]),
                LabelCond::IdRange(None, Some(9)),
                LabelCond::ColorIn(vec![]),
            ],
            sort: vec![],
            offset: 0,
            limit: 10,
        };
        let mut params = Sql::default();
        let sql = where_clause(&q, &mut params);
        let binds = params.values;
        assert_eq!(
            sql,
            " WHERE scope = $1 AND project_id = $2 AND LOWER(name) LIKE $3 ESCAPE '\\' AND id IN ($4, $5) AND id <= $6 AND FALSE"
        );
        assert_eq!(binds.len(), 6);
        assert!(matches!(&binds[2], Value::Text(s) if s == "%a\\_b%"));
    }
}
