//! Robot accounts and their permissions: rows and queries.

use super::{Audit, Meta, audit, change_audited, now_ms, on_read, on_write};
use crate::error::{Error, Result};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RobotRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub level: String,
    pub project_id: Option<i64>,
    pub secret_hash: String,
    pub disabled: bool,
    pub duration: i64,
    pub expires_at: i64,
    pub creator_type: String,
    pub creator_ref: i64,
    pub creation_time: i64,
    pub update_time: i64,
}

/// One permission row: (kind, namespace, resource, action, effect).
#[derive(Clone, Debug, PartialEq, Eq, Hash, sqlx::FromRow)]
pub struct RobotAccess {
    pub kind: String,
    pub namespace: String,
    pub resource: String,
    pub action: String,
    pub effect: String,
}

/// Inserts a robot's permission rows on an open transaction.
macro_rules! insert_access {
    ($conn:expr, $robot_id:expr, $access:expr) => {
        for x in $access {
            sqlx::query(
                "INSERT INTO robot_permissions (robot_id, kind, namespace, resource, action, effect) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind($robot_id)
            .bind(&x.kind)
            .bind(&x.namespace)
            .bind(&x.resource)
            .bind(&x.action)
            .bind(&x.effect)
            .execute($conn)
            .await?;
        }
    };
}

const COLUMNS: &str = "id, name, description, level, project_id, secret_hash, disabled, duration, expires_at, creator_type, creator_ref, creation_time, update_time";

impl Meta {
    /// Stores a robot with its permissions; None when the name is taken.
    pub async fn create_robot(&self, r: &RobotRow, access: &[RobotAccess], a: &Audit) -> Result<Option<i64>> {
        on_write!(self, |p| {
            async {
            let mut tx = p.begin().await?;
            let id = sqlx::query_as::<_, (i64,)>(
                "INSERT INTO robots (name, description, level, project_id, secret_hash, disabled, duration, expires_at, creator_type, creator_ref, creation_time, update_time) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) ON CONFLICT (name) DO NOTHING RETURNING id",
            )
            .bind(&r.name)
            .bind(&r.description)
            .bind(&r.level)
            .bind(r.project_id)
            .bind(&r.secret_hash)
            .bind(r.disabled)
            .bind(r.duration)
            .bind(r.expires_at)
            .bind(&r.creator_type)
            .bind(r.creator_ref)
            .bind(now_ms())
            .fetch_optional(&mut *tx)
            .await?;
            let Some((id,)) = id else { return Ok(None) };
            insert_access!(&mut *tx, id, access);
            audit!(&mut *tx, a, true)?;
            tx.commit().await?;
            Ok::<_, Error>(Some(id))
        }
        .await
        })
    }

    pub async fn robot(&self, id: i64) -> Result<Option<RobotRow>> {
        Ok(on_read!(self, |p| sqlx::query_as::<_, RobotRow>(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM robots WHERE id = $1")))
            .bind(id)
            .fetch_optional(p)
            .await)?)
    }

    pub async fn robot_by_name(&self, name: &str) -> Result<Option<RobotRow>> {
        Ok(on_read!(self, |p| sqlx::query_as::<_, RobotRow>(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM robots WHERE name = $1")))
            .bind(name)
            .fetch_optional(p)
            .await)?)
    }

    /// Robots of one project (Some) or system robots (None), a page, and the total.
    pub async fn robots(&self, project_id: Option<i64>, offset: i64, limit: i64) -> Result<(Vec<RobotRow>, i64)> {
        on_read!(self, |p| async {
            let (rows, (total,)) = match project_id {
                Some(pid) => (
                    sqlx::query_as::<_, RobotRow>(sqlx::AssertSqlSafe(format!(
                        "SELECT {COLUMNS} FROM robots WHERE project_id = $1 ORDER BY id LIMIT $2 OFFSET $3"
                    )))
                    .bind(pid)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(p)
                    .await?,
                    sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM robots WHERE project_id = $1").bind(pid).fetch_one(p).await?,
                ),
                None => (
                    sqlx::query_as::<_, RobotRow>(sqlx::AssertSqlSafe(format!(
                        "SELECT {COLUMNS} FROM robots WHERE project_id IS NULL ORDER BY id LIMIT $1 OFFSET $2"
                    )))
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(p)
                    .await?,
                    sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM robots WHERE project_id IS NULL").fetch_one(p).await?,
                ),
            };
            Ok::<_, Error>((rows, total))
        }
        .await)
    }

    /// Permissions of the given robots, in one query.
    pub async fn robot_permissions(&self, ids: &[i64]) -> Result<Vec<(i64, RobotAccess)>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let list = ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let rows = on_read!(self, |p| {
            sqlx::query_as::<_, (i64, String, String, String, String, String)>(sqlx::AssertSqlSafe(format!(
            "SELECT robot_id, kind, namespace, resource, action, effect FROM robot_permissions WHERE robot_id IN ({list}) ORDER BY robot_id, kind, namespace, resource, action"
        )))
        .fetch_all(p)
        .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, kind, namespace, resource, action, effect)| (id, RobotAccess { kind, namespace, resource, action, effect }))
            .collect())
    }

    /// Changes description, disabled flag, duration/expiry and permissions.
    pub async fn update_robot(&self, r: &RobotRow, access: &[RobotAccess], a: &Audit) -> Result<()> {
        on_write!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                sqlx::query(
                    "UPDATE robots SET description = $2, disabled = $3, duration = $4, expires_at = $5, update_time = $6 WHERE id = $1",
                )
                .bind(r.id)
                .bind(&r.description)
                .bind(r.disabled)
                .bind(r.duration)
                .bind(r.expires_at)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM robot_permissions WHERE robot_id = $1").bind(r.id).execute(&mut *tx).await?;
                insert_access!(&mut *tx, r.id, access);
                audit!(&mut *tx, a, true)?;
                tx.commit().await?;
                Ok::<_, Error>(())
            }
            .await
        })
    }

    pub async fn set_robot_secret(&self, id: i64, secret_hash: &str, a: &Audit) -> Result<()> {
        on_write!(self, |p| async {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE robots SET secret_hash = $2, update_time = $3 WHERE id = $1")
                .bind(id)
                .bind(secret_hash)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            audit!(&mut *tx, a, true)?;
            tx.commit().await?;
            Ok::<_, Error>(())
        }
        .await)
    }

    /// Whether the user is project admin of at least one project.
    pub async fn is_project_admin_anywhere(&self, user_id: i64) -> Result<bool> {
        let row = on_read!(self, |p| sqlx::query_as::<_, (i64,)>(
            "SELECT project_id FROM project_members WHERE entity_type = 'u' AND entity_id = $1 AND role = 1 LIMIT 1"
        )
        .bind(user_id)
        .fetch_optional(p)
        .await)?;
        Ok(row.is_some())
    }

    /// A project's name by id.
    pub async fn project_name(&self, project_id: i64) -> Result<Option<String>> {
        let row = on_read!(self, |p| sqlx::query_as::<_, (String,)>("SELECT name FROM projects WHERE id = $1")
            .bind(project_id)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(|(n,)| n))
    }

    pub async fn delete_robot(&self, id: i64, a: &Audit) -> Result<bool> {
        change_audited!(self, a, sqlx::query("DELETE FROM robots WHERE id = $1").bind(id))
    }
}
