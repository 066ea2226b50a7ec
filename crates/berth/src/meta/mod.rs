//! The metadata store: every row the registry keeps, on SQLite or PostgreSQL.
//!
//! One implementation serves both backends: each query is written once in SQL
//! that both accept (`$1` parameters, `ON CONFLICT`, `RETURNING`) and the
//! `on_read!`/`on_write!` macros run it on whichever pool is configured. Schema
//! differences live only in the per-backend migrations.
//!
//! Invariants:
//! - A `blobs` row exists only after the blob's bytes are in the store and verified.
//! - A manifest, its references, its tag and its audit row are written in one transaction.
//! - SQLite runs in WAL mode with one writer connection (writers queue in-process,
//!   readers never block); PostgreSQL uses one pool for both. Because every statement of a
//!   transaction is a trip to the writer's thread, the hot writes send statements together
//!   (`sql::Batch`) and verified blobs are group-committed (`blobs`).

mod accounts;
mod artifacts;
mod auditlog;
mod blobs;
mod content;
mod labels;
mod projects;
mod robots;
mod sql;
mod stats;
mod tokens;
mod uploads;
mod users;

pub use accounts::{ProjectKeyRef, ProjectRow, UserRow, role as accounts_role};
pub use artifacts::{ArtifactCond, ArtifactRow, ArtifactScope, ArtifactSort, RepoCond, RepoSort, RepositoryRow, TagRow, TagSort};
pub use auditlog::{AuditFilter, AuditRow, AuditSort, AuditText};
pub use content::{ManifestRow, NewManifest, PutOutcome, ReferrerRow};
pub use labels::{LabelChange, LabelCond, LabelQuery, LabelRow, LabelSort};
pub use projects::{
    AllowlistRow, CreateProject, DeleteProject, MemberRow, NewProject, ProjectAuditRow, ProjectCond, ProjectDetail, ProjectIntCol,
    ProjectSort, ProjectUpdate,
};
pub use robots::{RobotAccess, RobotRow};
pub use stats::{SearchRepositoryRow, Statistic, Viewer};
pub use tokens::{AccessTokenRow, NewAccessToken};
pub use uploads::UploadRow;
pub use users::{NewUserRow, TextMatch, UserColumn, UserListQuery, UserOrder, UserProfileRow};

use crate::error::Result;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

enum Pools {
    Sqlite { read: SqlitePool, write: SqlitePool },
    Postgres(PgPool),
}

impl Pools {
    fn is_sqlite(&self) -> bool {
        matches!(self, Pools::Sqlite { .. })
    }
}

/// Handle to the metadata database; cheap to clone.
#[derive(Clone)]
pub struct Meta {
    pools: std::sync::Arc<Pools>,
    blob_commits: blobs::BlobCommits,
}

/// Runs `$body` with `$p` bound to a pool that serves reads.
macro_rules! on_read {
    ($meta:expr, |$p:ident| $body:expr) => {
        match &*$meta.pools {
            $crate::meta::Pools::Sqlite { read: $p, .. } => $body,
            $crate::meta::Pools::Postgres($p) => $body,
        }
    };
}
/// Runs `$body` with `$p` bound to the pool that serves writes.
macro_rules! on_write {
    ($meta:expr, |$p:ident| $body:expr) => {
        match &*$meta.pools {
            $crate::meta::Pools::Sqlite { write: $p, .. } => $body,
            $crate::meta::Pools::Postgres($p) => $body,
        }
    };
}
pub(crate) use {on_read, on_write};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// An audit record, written in the transaction of the change it records.
#[derive(Clone, Debug, Default)]
pub struct Audit {
    pub operator: String,
    pub project_id: Option<i64>,
    pub resource: String,
    pub resource_type: &'static str,
    pub operation: &'static str,
    pub client_ip: String,
    pub user_agent: String,
}

impl Meta {
    /// Connects to `url` (`sqlite://PATH` or `postgres://...`) and applies migrations.
    pub async fn connect(url: &str) -> Result<Meta> {
        let pools = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(32)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts)
                .await?;
            sqlx::migrate!("migrations/postgres").run(&pool).await.map_err(crate::error::Error::internal)?;
            Pools::Postgres(pool)
        } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let opts = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30))
                .statement_cache_capacity(256);
            let write = SqlitePoolOptions::new().max_connections(1).min_connections(1).connect_with(opts.clone()).await?;
            sqlx::migrate!("migrations/sqlite").run(&write).await.map_err(crate::error::Error::internal)?;
            // Planner statistics for the lists' multi-condition filters (cheap: bounded analysis).
            sqlx::query("PRAGMA analysis_limit = 1000").execute(&write).await?;
            sqlx::query("PRAGMA optimize = 0x10002").execute(&write).await?;
            let readers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(2, 8) as u32 * 2;
            let read = SqlitePoolOptions::new().max_connections(readers).min_connections(1).connect_with(opts.read_only(true)).await?;
            Pools::Sqlite { read, write }
        } else {
            return Err(crate::error::Error::Internal(format!("unsupported database URL {url:?}; use sqlite://PATH or postgres://...")));
        };
        let pools = std::sync::Arc::new(pools);
        Ok(Meta { blob_commits: blobs::BlobCommits::start(pools.clone()), pools })
    }

    /// Whether the metadata lives in SQLite (its single writer makes trips to the connection
    /// while a transaction is open the cost to cut).
    pub(crate) fn is_sqlite(&self) -> bool {
        self.pools.is_sqlite()
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        on_read!(self, |p| sqlx::query("SELECT 1").execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Refreshes SQLite's planner statistics where they went stale (no-op on PostgreSQL, whose
    /// autovacuum does it).
    pub async fn optimize(&self) -> Result<()> {
        if let Pools::Sqlite { write, .. } = &*self.pools {
            sqlx::query("PRAGMA optimize").execute(write).await?;
        }
        Ok(())
    }

    /// Closes all connections (on shutdown: lets SQLite checkpoint its WAL).
    pub async fn close(&self) {
        match &*self.pools {
            Pools::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Pools::Postgres(p) => p.close().await,
        }
    }

    /// The token signing key, created on first use and shared by every node.
    pub async fn signing_key(&self) -> Result<Vec<u8>> {
        if let Some((k,)) =
            on_read!(self, |p| sqlx::query_as::<_, (Vec<u8>,)>("SELECT secret FROM signing_keys WHERE id = 'registry-token'")
                .fetch_optional(p)
                .await)?
        {
            return Ok(k);
        }
        let mut secret = vec![0u8; 32];
        getrandom::fill(&mut secret).map_err(crate::error::Error::internal)?;
        on_write!(self, |p| {
            sqlx::query("INSERT INTO signing_keys (id, algorithm, secret, creation_time) VALUES ('registry-token', 'HS256', $1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(&secret)
            .bind(now_ms())
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })?;
        let (k,) = on_write!(self, |p| sqlx::query_as::<_, (Vec<u8>,)>("SELECT secret FROM signing_keys WHERE id = 'registry-token'")
            .fetch_one(p)
            .await)?;
        Ok(k)
    }
}

/// The insert of one audit record; its values are `audit_values`.
const AUDIT_INSERT: &str = "INSERT INTO audit_log (op_time, operator, project_id, resource, resource_type, operation, success, client_ip, user_agent) \
                            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// The values of `AUDIT_INSERT` for record `a`, time now.
fn audit_values(a: &Audit, ok: bool) -> Vec<sql::Value> {
    use sql::Value::{Bool, Int, OptInt, Text};
    vec![
        Int(now_ms()),
        Text(a.operator.clone()),
        OptInt(a.project_id),
        Text(a.resource.clone()),
        Text(a.resource_type.into()),
        Text(a.operation.into()),
        Bool(ok),
        Text(a.client_ip.clone()),
        Text(a.user_agent.clone()),
    ]
}

/// Inserts an audit row on an open transaction or connection.
macro_rules! audit {
    ($conn:expr, $a:expr, $ok:expr) => {{
        let a: &$crate::meta::Audit = $a;
        sqlx::query($crate::meta::AUDIT_INSERT)
            .bind($crate::meta::now_ms())
            .bind(&a.operator)
            .bind(a.project_id)
            .bind(&a.resource)
            .bind(a.resource_type)
            .bind(a.operation)
            .bind($ok)
            .bind(&a.client_ip)
            .bind(&a.user_agent)
            .execute($conn)
            .await
            .map(|r| r.rows_affected())
    }};
}
pub(crate) use audit;

/// Runs one changing statement (`$query`, built without executing) and, if it changed a row,
/// writes the audit record `$a`, both in one transaction. Evaluates to `Result<bool>`: false
/// when no row changed, in which case nothing is written.
macro_rules! change_audited {
    ($meta:expr, $a:expr, $query:expr) => {
        $crate::meta::on_write!($meta, |p| async {
            let mut tx = p.begin().await?;
            if $query.execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(false);
            }
            $crate::meta::audit!(&mut *tx, $a, true)?;
            tx.commit().await?;
            Ok::<bool, $crate::error::Error>(true)
        }
        .await)
    };
}
pub(crate) use change_audited;
