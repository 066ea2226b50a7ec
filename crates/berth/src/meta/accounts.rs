//! Users, projects and project members.

use super::{Audit, Meta, audit, now_ms, on_read, on_write};
use crate::error::Result;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub sysadmin: bool,
    /// Raised by every change that takes access away (see migration 0011).
    pub access_version: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ProjectRow {
    pub id: i64,
    pub name: String,
    pub owner_id: i64,
    pub public: bool,
}

/// How `Meta::project_with_roles` names a project.
#[derive(Clone, Copy, Debug)]
pub enum ProjectKeyRef<'a> {
    Id(i64),
    Name(&'a str),
}

/// Harbor's role ids.
pub mod role {
    pub const PROJECT_ADMIN: i64 = 1;
    pub const DEVELOPER: i64 = 2;
    pub const GUEST: i64 = 3;
    pub const MAINTAINER: i64 = 4;
    pub const LIMITED_GUEST: i64 = 5;
}

impl Meta {
    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRow>> {
        Ok(on_read!(self, |p| sqlx::query_as::<_, UserRow>(
            "SELECT id, username, password_hash, sysadmin, access_version FROM users WHERE username = $1"
        )
        .bind(username)
        .fetch_optional(p)
        .await)?)
    }

    pub async fn user_count(&self) -> Result<i64> {
        let (n,) = on_read!(self, |p| sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM users").fetch_one(p).await)?;
        Ok(n)
    }

    /// On an empty database: creates the system admin and the public project `library`
    /// in one transaction. Returns false when the database already had users.
    pub async fn bootstrap(&self, admin_password_hash: &str) -> Result<bool> {
        on_write!(self, |p| {
            async {
            let mut tx = p.begin().await?;
            let (n,) = sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM users").fetch_one(&mut *tx).await?;
            if n > 0 {
                return Ok(false);
            }
            let now = now_ms();
            let (admin_id,) = sqlx::query_as::<_, (i64,)>(
                "INSERT INTO users (username, realname, comment, password_hash, sysadmin, creation_time, update_time) VALUES ('admin', 'system admin', 'admin user', $1, TRUE, $2, $2) RETURNING id",
            )
            .bind(admin_password_hash)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let a = Audit { operator: "admin".into(), resource: "admin".into(), resource_type: "user", operation: "create", ..Default::default() };
            audit!(&mut *tx, &a, true)?;
            let (project_id,) = sqlx::query_as::<_, (i64,)>(
                "INSERT INTO projects (name, owner_id, public, creation_time, update_time) VALUES ('library', $1, TRUE, $2, $2) RETURNING id",
            )
            .bind(admin_id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO project_metadata (project_id, name, value) VALUES ($1, 'public', 'true')").bind(project_id).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO project_members (project_id, entity_type, entity_id, role, creation_time, update_time) VALUES ($1, 'u', $2, $3, $4, $4)")
                .bind(project_id)
                .bind(admin_id)
                .bind(role::PROJECT_ADMIN)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let a = Audit { operator: "admin".into(), project_id: Some(project_id), resource: "library".into(), resource_type: "project", operation: "create", ..Default::default() };
            audit!(&mut *tx, &a, true)?;
            tx.commit().await?;
            Ok::<bool, crate::error::Error>(true)
        }
        .await
        })
    }

    /// Creates a user; returns its id.
    pub async fn create_user(&self, username: &str, password_hash: &str, sysadmin: bool, a: &Audit) -> Result<i64> {
        on_write!(self, |p| {
            async {
            let mut tx = p.begin().await?;
            let now = now_ms();
            let (id,) = sqlx::query_as::<_, (i64,)>(
                "INSERT INTO users (username, password_hash, sysadmin, creation_time, update_time) VALUES ($1, $2, $3, $4, $4) RETURNING id",
            )
            .bind(username)
            .bind(password_hash)
            .bind(sysadmin)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            audit!(&mut *tx, a, true)?;
            tx.commit().await?;
            Ok::<i64, crate::error::Error>(id)
        }
        .await
        })
    }

    pub async fn project_by_name(&self, name: &str) -> Result<Option<ProjectRow>> {
        Ok(on_read!(self, |p| sqlx::query_as::<_, ProjectRow>("SELECT id, name, owner_id, public FROM projects WHERE name = $1")
            .bind(name)
            .fetch_optional(p)
            .await)?)
    }

    /// Creates a project owned by `owner_id`, who becomes its project admin.
    pub async fn create_project(&self, name: &str, owner_id: i64, public: bool, a: &Audit) -> Result<i64> {
        on_write!(self, |p| {
            async {
            let mut tx = p.begin().await?;
            let now = now_ms();
            let (id,) = sqlx::query_as::<_, (i64,)>("INSERT INTO projects (name, owner_id, public, creation_time, update_time) VALUES ($1, $2, $3, $4, $4) RETURNING id")
                .bind(name)
                .bind(owner_id)
                .bind(public)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO project_metadata (project_id, name, value) VALUES ($1, 'public', $2)")
                .bind(id)
                .bind(if public { "true" } else { "false" })
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO project_members (project_id, entity_type, entity_id, role, creation_time, update_time) VALUES ($1, 'u', $2, $3, $4, $4)")
                .bind(id)
                .bind(owner_id)
                .bind(role::PROJECT_ADMIN)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let a = Audit { project_id: Some(id), ..a.clone() };
            audit!(&mut *tx, &a, true)?;
            tx.commit().await?;
            Ok::<i64, crate::error::Error>(id)
        }
        .await
        })
    }

    /// Adds or changes a user's role in a project.
    pub async fn set_member(&self, project_id: i64, user_id: i64, role: i64, a: &Audit) -> Result<()> {
        on_write!(self, |p| {
            async {
            let mut tx = p.begin().await?;
            let now = now_ms();
            sqlx::query("INSERT INTO project_members (project_id, entity_type, entity_id, role, creation_time, update_time) VALUES ($1, 'u', $2, $3, $4, $4) ON CONFLICT (project_id, entity_type, entity_id) DO UPDATE SET role = excluded.role, update_time = excluded.update_time")
                .bind(project_id)
                .bind(user_id)
                .bind(role)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            audit!(&mut *tx, a, true)?;
            tx.commit().await?;
            Ok::<(), crate::error::Error>(())
        }
        .await
        })
    }

    /// The roles a user holds in a project (directly; groups come later).
    pub async fn member_roles(&self, project_id: i64, user_id: i64) -> Result<Vec<i64>> {
        let rows = on_read!(self, |p| sqlx::query_as::<_, (i64,)>(
            "SELECT role FROM project_members WHERE project_id = $1 AND entity_type = 'u' AND entity_id = $2"
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().map(|(r,)| r).collect())
    }

    /// A project, by name or by id, with the roles `user_id` holds in it: one query, whose work
    /// is the same for a missing project as for one the user is no member of (the membership
    /// is an outer join that finds nothing either way), so the time of an answer tells nothing.
    pub async fn project_with_roles(&self, key: ProjectKeyRef<'_>, user_id: Option<i64>) -> Result<Option<(ProjectRow, Vec<i64>)>> {
        const SELECT: &str = "SELECT p.id, p.name, p.owner_id, p.public, m.role FROM projects p \
             LEFT JOIN project_members m ON m.project_id = p.id AND m.entity_type = 'u' AND m.entity_id = $2";
        let sql = match key {
            ProjectKeyRef::Name(_) => format!("{SELECT} WHERE p.name = $1"),
            ProjectKeyRef::Id(_) => format!("{SELECT} WHERE p.id = $1"),
        };
        type Row = (i64, String, i64, bool, Option<i64>);
        let rows: Vec<Row> = match key {
            ProjectKeyRef::Name(name) => {
                on_read!(self, |p| sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql.as_str())).bind(name).bind(user_id).fetch_all(p).await)?
            }
            ProjectKeyRef::Id(id) => {
                on_read!(self, |p| sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).bind(user_id).fetch_all(p).await)?
            }
        };
        let Some((id, name, owner_id, public, _)) = rows.first().cloned() else { return Ok(None) };
        let roles = rows.into_iter().filter_map(|r| r.4).collect();
        Ok(Some((ProjectRow { id, name, owner_id, public }, roles)))
    }

    /// The access version of a live user (`robot` false) or robot (true), by id; None when it
    /// no longer exists (a deleted user, a deleted robot).
    pub async fn access_version(&self, robot: bool, id: i64) -> Result<Option<i64>> {
        let sql = if robot {
            "SELECT access_version FROM robots WHERE id = $1"
        } else {
            "SELECT access_version FROM users WHERE id = $1 AND NOT deleted"
        };
        let row = on_read!(self, |p| sqlx::query_as::<_, (i64,)>(sql).bind(id).fetch_optional(p).await)?;
        Ok(row.map(|(v,)| v))
    }

    /// The id and access version of the robot or live user named `name`, read before its
    /// credentials are checked, so that a change after this read makes what is issued stale.
    pub async fn access_version_by_name(&self, robot: bool, name: &str) -> Result<Option<(i64, i64)>> {
        let sql = if robot {
            "SELECT id, access_version FROM robots WHERE name = $1"
        } else {
            "SELECT id, access_version FROM users WHERE username = $1 AND NOT deleted"
        };
        Ok(on_read!(self, |p| sqlx::query_as::<_, (i64, i64)>(sql).bind(name).fetch_optional(p).await)?)
    }

    /// Records an event that changes nothing else (a failed login, for example).
    pub async fn record(&self, a: &Audit, ok: bool) -> Result<()> {
        on_write!(self, |p| audit!(p, a, ok))?;
        Ok(())
    }
}
