//! Personal access tokens: rows and queries.

use super::{Audit, Meta, UserRow, audit, change_audited, now_ms, on_read, on_write};
use crate::error::{Error, Result};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AccessTokenRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub projects: Option<String>,
    pub actions: Option<String>,
    pub expires_at: Option<i64>,
    pub creation_time: i64,
    pub last_used: Option<i64>,
}

/// A token to store; `token_hash` is the SHA-256 of the secret, hex.
pub struct NewAccessToken<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub projects: Option<String>,
    pub actions: Option<String>,
    pub expires_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, name, projects, actions, expires_at, creation_time, last_used";

impl Meta {
    /// Stores a token; None when the user already has a token of that name.
    pub async fn create_access_token(&self, t: &NewAccessToken<'_>, a: &Audit) -> Result<Option<i64>> {
        on_write!(self, |p| {
            async {
            let mut tx = p.begin().await?;
            let id = sqlx::query_as::<_, (i64,)>(
                "INSERT INTO access_tokens (user_id, name, token_hash, projects, actions, expires_at, creation_time) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (user_id, name) DO NOTHING RETURNING id",
            )
            .bind(t.user_id)
            .bind(t.name)
            .bind(t.token_hash)
            .bind(t.projects.as_deref())
            .bind(t.actions.as_deref())
            .bind(t.expires_at)
            .bind(now_ms())
            .fetch_optional(&mut *tx)
            .await?;
            if id.is_none() {
                return Ok(None);
            }
            audit!(&mut *tx, a, true)?;
            tx.commit().await?;
            Ok::<_, Error>(id.map(|(i,)| i))
        }
        .await
        })
    }

    pub async fn access_tokens(&self, user_id: i64) -> Result<Vec<AccessTokenRow>> {
        Ok(on_read!(self, |p| sqlx::query_as::<_, AccessTokenRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM access_tokens WHERE user_id = $1 ORDER BY id"
        )))
        .bind(user_id)
        .fetch_all(p)
        .await)?)
    }

    /// Revokes a token of `user_id`; false if there is none with that id.
    pub async fn delete_access_token(&self, user_id: i64, id: i64, a: &Audit) -> Result<bool> {
        change_audited!(self, a, sqlx::query("DELETE FROM access_tokens WHERE id = $1 AND user_id = $2").bind(id).bind(user_id))
    }

    /// The token with this hash and its user.
    pub async fn access_token_by_hash(&self, token_hash: &str) -> Result<Option<(AccessTokenRow, UserRow)>> {
        let row = on_read!(self, |p| sqlx::query_as::<_, AccessTokenRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM access_tokens WHERE token_hash = $1"
        )))
        .bind(token_hash)
        .fetch_optional(p)
        .await)?;
        let Some(t) = row else { return Ok(None) };
        let user = on_read!(self, |p| sqlx::query_as::<_, UserRow>(
            "SELECT id, username, password_hash, sysadmin, access_version FROM users WHERE id = $1"
        )
        .bind(t.user_id)
        .fetch_optional(p)
        .await)?;
        Ok(user.map(|u| (t, u)))
    }
}
