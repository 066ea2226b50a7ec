//! Users: profiles, passwords, the system-admin flag, deletion, lists, and the
//! `self_registration` system setting.
//!
//! Deleted users are kept, as Harbor keeps them: `deleted` is set, the name and e-mail get a
//! `#<id>` suffix (so both can be taken again and the old name can no longer log in) and the
//! password hash is cleared. Every query here except `user_by_id_any` skips deleted users.
//! Each change writes its audit row (resource = the user's name) in its own transaction.

use super::{Audit, Meta, audit, now_ms, on_read, on_write};
use crate::error::{Error, Result};

/// A user as the API shows it (never the password hash).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserProfileRow {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub realname: String,
    pub comment: String,
    pub sysadmin: bool,
    pub creation_time: i64,
    pub update_time: i64,
}

const PROFILE_COLUMNS: &str = "id, username, email, realname, comment, sysadmin, creation_time, update_time";

/// A user to create; `password_hash` is already an argon2 hash.
pub struct NewUserRow<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub realname: &'a str,
    pub comment: &'a str,
    pub password_hash: &'a str,
}

/// One condition on a text column of a user list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextMatch {
    Exact(String),
    /// Case-insensitive substring.
    Contains(String),
    AnyOf(Vec<String>),
}

/// The columns a user list may be filtered on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserColumn {
    Username,
    Email,
}

/// The orders a user list may be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserOrder {
    Id,
    Username,
    Email,
    Realname,
    CreationTime,
    UpdateTime,
}

/// What a user list selects: conditions (all must hold), order (then by id), one page.
#[derive(Clone, Debug, Default)]
pub struct UserListQuery {
    pub filters: Vec<(UserColumn, TextMatch)>,
    pub order: Vec<(UserOrder, bool)>,
    /// Leave out the system admin created at bootstrap (user id 1), as Harbor's lists do.
    pub exclude_bootstrap_admin: bool,
    pub offset: i64,
    pub limit: i64,
}

impl UserListQuery {
    /// The WHERE clause and its bound values (`$1`...); columns and operators come from
    /// fixed strings, values are always bound.
    fn where_clause(&self) -> (String, Vec<String>) {
        let mut sql = String::from("WHERE NOT deleted");
        let mut binds: Vec<String> = Vec::new();
        if self.exclude_bootstrap_admin {
            sql.push_str(" AND id > 1");
        }
        for (column, cond) in &self.filters {
            let col = match column {
                UserColumn::Username => "username",
                UserColumn::Email => "email",
            };
            match cond {
                TextMatch::Exact(v) => {
                    binds.push(v.clone());
                    sql.push_str(&format!(" AND {col} = ${}", binds.len()));
                }
                TextMatch::Contains(v) => {
                    binds.push(format!("%{}%", escape_like(&v.to_lowercase())));
                    sql.push_str(&format!(" AND LOWER({col}) LIKE ${} ESCAPE '\\'", binds.len()));
                }
                TextMatch::AnyOf(vs) if vs.is_empty() => sql.push_str(" AND 1 = 0"),
                TextMatch::AnyOf(vs) => {
                    let mut marks = Vec::with_capacity(vs.len());
                    for v in vs {
                        binds.push(v.clone());
                        marks.push(format!("${}", binds.len()));
                    }
                    sql.push_str(&format!(" AND {col} IN ({})", marks.join(", ")));
                }
            }
        }
        (sql, binds)
    }

    fn order_clause(&self) -> String {
        let mut parts: Vec<String> = self
            .order
            .iter()
            .map(|(o, desc)| {
                let col = match o {
                    UserOrder::Id => "id",
                    UserOrder::Username => "username",
                    // NULL sorts first on SQLite and last on PostgreSQL: compare as ''.
                    UserOrder::Email => "COALESCE(email, '')",
                    UserOrder::Realname => "realname",
                    UserOrder::CreationTime => "creation_time",
                    UserOrder::UpdateTime => "update_time",
                };
                format!("{col} {}", if *desc { "DESC" } else { "ASC" })
            })
            .collect();
        parts.push("id ASC".into());
        format!("ORDER BY {}", parts.join(", "))
    }
}

/// Escapes `%`, `_` and the escape character itself for `LIKE ... ESCAPE '\'`.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A unique-constraint failure becomes `Conflict(message)`; anything else stays internal.
fn conflict_or_internal(e: sqlx::Error, message: impl FnOnce() -> String) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict(message()),
        _ => e.into(),
    }
}

/// `value` shortened so that `value + suffix` fits in `max` characters (Harbor's `lib.Truncate`).
fn with_suffix(value: &str, suffix: &str, max: usize) -> String {
    let keep = max.saturating_sub(suffix.chars().count());
    let mut out: String = value.chars().take(keep).collect();
    out.push_str(suffix);
    out
}

/// The name of a user that is not deleted, read on an open transaction; `NotFound` otherwise.
macro_rules! live_username {
    ($conn:expr, $id:expr) => {{
        let id: i64 = $id;
        sqlx::query_as::<_, (String,)>("SELECT username FROM users WHERE id = $1 AND NOT deleted")
            .bind(id)
            .fetch_optional($conn)
            .await?
            .map(|(n,)| n)
            .ok_or_else(|| Error::NotFound(format!("user {id} not found")))?
    }};
}

const SELF_REGISTRATION: &str = "self_registration";

impl Meta {
    /// A user that is not deleted.
    pub async fn user_profile(&self, id: i64) -> Result<Option<UserProfileRow>> {
        Ok(on_read!(self, |p| sqlx::query_as::<_, UserProfileRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {PROFILE_COLUMNS} FROM users WHERE id = $1 AND NOT deleted"
        )))
        .bind(id)
        .fetch_optional(p)
        .await)?)
    }

    /// One page of users and the number of users matching in all.
    pub async fn list_users(&self, query: &UserListQuery) -> Result<(Vec<UserProfileRow>, i64)> {
        let (filter, binds) = query.where_clause();
        let count_sql = format!("SELECT COUNT(*) FROM users {filter}");
        let (total,) = on_read!(self, |p| {
            let mut q = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(count_sql.clone()));
            for b in &binds {
                q = q.bind(b.as_str());
            }
            q.fetch_one(p).await
        })?;
        if total == 0 {
            return Ok((Vec::new(), 0));
        }
        let n = binds.len();
        let list_sql = format!("SELECT {PROFILE_COLUMNS} FROM users {filter} {} LIMIT ${} OFFSET ${}", query.order_clause(), n + 1, n + 2);
        let rows = on_read!(self, |p| {
            let mut q = sqlx::query_as::<_, UserProfileRow>(sqlx::AssertSqlSafe(list_sql.clone()));
            for b in &binds {
                q = q.bind(b.as_str());
            }
            q.bind(query.limit).bind(query.offset).fetch_all(p).await
        })?;
        Ok((rows, total))
    }

    /// Creates a local user with a profile; `Conflict` when the name or e-mail is taken.
    pub async fn insert_user(&self, u: &NewUserRow<'_>, a: &Audit) -> Result<i64> {
        let taken = || format!("user name {:?} or e-mail {:?} is already taken", u.username, u.email);
        on_write!(self, |p| async {
            let mut tx = p.begin().await?;
            let (clash,) =
                sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM users WHERE username = $1").bind(u.username).fetch_one(&mut *tx).await?;
            if clash > 0 {
                return Err(Error::Conflict(format!("user name {:?} is already taken", u.username)));
            }
            let (clash,) =
                sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM users WHERE email = $1").bind(u.email).fetch_one(&mut *tx).await?;
            if clash > 0 {
                return Err(Error::Conflict(format!("e-mail {:?} is already used by another user", u.email)));
            }
            let now = now_ms();
            let (id,) = sqlx::query_as::<_, (i64,)>(
                "INSERT INTO users (username, email, realname, comment, password_hash, sysadmin, creation_time, update_time) \
                 VALUES ($1, $2, $3, $4, $5, FALSE, $6, $6) RETURNING id",
            )
            .bind(u.username)
            .bind(u.email)
            .bind(u.realname)
            .bind(u.comment)
            .bind(u.password_hash)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| conflict_or_internal(e, taken))?;
            let a = Audit { resource: u.username.to_string(), resource_type: "user", operation: "create", ..a.clone() };
            audit!(&mut *tx, &a, true)?;
            tx.commit().await?;
            Ok::<i64, Error>(id)
        }
        .await)
    }

    /// Replaces a user's e-mail, real name and comment.
    pub async fn update_user_profile(&self, id: i64, email: &str, realname: &str, comment: &str, a: &Audit) -> Result<()> {
        on_write!(self, |p| async {
            let mut tx = p.begin().await?;
            let username = live_username!(&mut *tx, id);
            let (clash,) = sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM users WHERE email = $1 AND id <> $2")
                .bind(email)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            if clash > 0 {
                return Err(Error::Conflict(format!("e-mail {email:?} is already used by another user")));
            }
            sqlx::query("UPDATE users SET email = $1, realname = $2, comment = $3, update_time = $4 WHERE id = $5")
                .bind(email)
                .bind(realname)
                .bind(comment)
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or_internal(e, || format!("e-mail {email:?} is already used by another user")))?;
            let a = Audit { resource: username, resource_type: "user", operation: "update", ..a.clone() };
            audit!(&mut *tx, &a, true)?;
            tx.commit().await?;
            Ok::<(), Error>(())
        }
        .await)
    }

    /// Replaces a user's password hash.
    pub async fn set_user_password_hash(&self, id: i64, password_hash: &str, a: &Audit) -> Result<()> {
        on_write!(self, |p| async {
            let mut tx = p.begin().await?;
            let username = live_username!(&mut *tx, id);
            sqlx::query("UPDATE users SET password_hash = $1, update_time = $2 WHERE id = $3")
                .bind(password_hash)
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let a = Audit { resource: username, resource_type: "user", operation: "update", ..a.clone() };
            audit!(&mut *tx, &a, true)?;
            tx.commit().await?;
            Ok::<(), Error>(())
        }
        .await)
    }

    /// Grants or revokes the system-admin role.
    pub async fn set_user_sysadmin(&self, id: i64, sysadmin: bool, a: &Audit) -> Result<()> {
        on_write!(self, |p| async {
            let mut tx = p.begin().await?;
            let username = live_username!(&mut *tx, id);
            sqlx::query("UPDATE users SET sysadmin = $1, update_time = $2 WHERE id = $3")
                .bind(sysadmin)
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let a = Audit { resource: username, resource_type: "user", operation: "update", ..a.clone() };
            audit!(&mut *tx, &a, true)?;
            tx.commit().await?;
            Ok::<(), Error>(())
        }
        .await)
    }

    /// Marks a user deleted (name and e-mail freed, password cleared, admin role revoked) and
    /// removes its project memberships and personal access tokens, in one transaction.
    pub async fn delete_user(&self, id: i64, a: &Audit) -> Result<()> {
        on_write!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                let row = sqlx::query_as::<_, (String, Option<String>)>("SELECT username, email FROM users WHERE id = $1 AND NOT deleted")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some((username, email)) = row else { return Err(Error::NotFound(format!("user {id} not found"))) };
                let suffix = format!("#{id}");
                sqlx::query(
                    "UPDATE users SET username = $1, email = $2, password_hash = '', sysadmin = FALSE, deleted = TRUE, update_time = $3 \
                 WHERE id = $4",
                )
                .bind(with_suffix(&username, &suffix, 255))
                .bind(email.map(|e| with_suffix(&e, &suffix, 255)))
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM project_members WHERE entity_type = 'u' AND entity_id = $1").bind(id).execute(&mut *tx).await?;
                // Its personal access tokens die with it (they would otherwise still name the renamed record).
                sqlx::query("DELETE FROM access_tokens WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
                let a = Audit { resource: username, resource_type: "user", operation: "delete", ..a.clone() };
                audit!(&mut *tx, &a, true)?;
                tx.commit().await?;
                Ok::<(), Error>(())
            }
            .await
        })
    }

    /// The `self_registration` system setting (off unless set to "true").
    pub async fn self_registration(&self) -> Result<bool> {
        let v = on_read!(self, |p| sqlx::query_as::<_, (String,)>("SELECT value FROM system_settings WHERE name = $1")
            .bind(SELF_REGISTRATION)
            .fetch_optional(p)
            .await)?;
        Ok(v.is_some_and(|(v,)| v == "true"))
    }

    /// Turns self-registration on or off.
    pub async fn set_self_registration(&self, on: bool) -> Result<()> {
        on_write!(self, |p| sqlx::query(
            "INSERT INTO system_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value"
        )
        .bind(SELF_REGISTRATION)
        .bind(if on { "true" } else { "false" })
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_and_order_clauses_bind_every_value() {
        let q = UserListQuery {
            filters: vec![
                (UserColumn::Username, TextMatch::Contains("A_b%".into())),
                (UserColumn::Email, TextMatch::AnyOf(vec!["x@y.io".into(), "z@y.io".into()])),
                (UserColumn::Username, TextMatch::Exact("bob".into())),
            ],
            order: vec![(UserOrder::Email, true)],
            exclude_bootstrap_admin: true,
            offset: 0,
            limit: 10,
        };
        let (sql, binds) = q.where_clause();
        assert_eq!(sql, "WHERE NOT deleted AND id > 1 AND LOWER(username) LIKE $1 ESCAPE '\\' AND email IN ($2, $3) AND username = $4");
        assert_eq!(binds, ["%a\\_b\\%%", "x@y.io", "z@y.io", "bob"]);
        assert_eq!(q.order_clause(), "ORDER BY COALESCE(email, '') DESC, id ASC");
        assert_eq!(with_suffix("alice", "#12", 255), "alice#12");
        assert_eq!(with_suffix(&"a".repeat(255), "#12", 255).len(), 255);
    }
}
