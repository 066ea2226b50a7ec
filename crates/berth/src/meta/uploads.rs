//! Upload sessions: one row per blob upload in progress (from its first stored chunk), with
//! the account and client address holding it.

use super::{Meta, now_ms, on_read, on_write};
use crate::error::Result;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UploadRow {
    pub id: String,
    pub repository: String,
    pub size: i64,
    pub started_at: i64,
    pub updated_at: i64,
}

impl Meta {
    pub async fn upload(&self, id: &str) -> Result<Option<UploadRow>> {
        Ok(on_read!(self, |p| sqlx::query_as::<_, UploadRow>(
            "SELECT id, repository, size, started_at, updated_at FROM uploads WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await)?)
    }

    /// Moves an upload from `from` bytes to `to` bytes, recording the session with its first
    /// chunk (and who holds it: account, client address); false if another request moved it first.
    pub async fn advance_upload(
        &self,
        id: &str,
        repository: &str,
        started_at: i64,
        from: i64,
        to: i64,
        holder: (&str, &str),
    ) -> Result<bool> {
        let r = on_write!(self, |p| sqlx::query(
            "INSERT INTO uploads (id, repository, size, started_at, updated_at, account, client) VALUES ($1, $2, $5, $3, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET size = excluded.size, updated_at = excluded.updated_at WHERE uploads.size = $4"
        )
        .bind(id)
        .bind(repository)
        .bind(started_at)
        .bind(from)
        .bind(to)
        .bind(now_ms())
        .bind(holder.0)
        .bind(holder.1)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(r == 1)
    }

    /// Marks a session ended (size -1), recording it if it had no row yet.
    pub async fn end_upload(&self, id: &str, repository: &str, started_at: i64) -> Result<()> {
        on_write!(self, |p| sqlx::query(
            "INSERT INTO uploads (id, repository, size, started_at, updated_at) VALUES ($1, $2, -1, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET size = -1, updated_at = excluded.updated_at"
        )
        .bind(id)
        .bind(repository)
        .bind(started_at)
        .bind(now_ms())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn delete_upload(&self, id: &str) -> Result<bool> {
        let r = on_write!(self, |p| sqlx::query("DELETE FROM uploads WHERE id = $1").bind(id).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(r == 1)
    }

    /// Upload sessions untouched since `before` (milliseconds).
    pub async fn stale_uploads(&self, before: i64, limit: i64) -> Result<Vec<UploadRow>> {
        Ok(on_read!(self, |p| sqlx::query_as::<_, UploadRow>(
            "SELECT id, repository, size, started_at, updated_at FROM uploads WHERE updated_at < $1 ORDER BY updated_at LIMIT $2"
        )
        .bind(before)
        .bind(limit)
        .fetch_all(p)
        .await)?)
    }

    /// Upload sessions in progress other than `except`, and the bytes they hold: (sessions,
    /// bytes) of `account`, then of `client`.
    pub async fn uploads_held(&self, account: &str, client: &str, except: &str) -> Result<((i64, i64), (i64, i64))> {
        let rows = on_read!(self, |p| {
            sqlx::query_as::<_, (String, i64, i64)>(
            "SELECT 'a', COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM uploads WHERE account = $1 AND size >= 0 AND id <> $3 \
             UNION ALL SELECT 'c', COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM uploads WHERE client = $2 AND size >= 0 AND id <> $3"
        )
        .bind(account)
        .bind(client)
        .bind(except)
        .fetch_all(p)
        .await
        })?;
        let of = |k: &str| rows.iter().find(|(kind, _, _)| kind == k).map(|(_, n, b)| (*n, *b)).unwrap_or((0, 0));
        Ok((of("a"), of("c")))
    }
}
