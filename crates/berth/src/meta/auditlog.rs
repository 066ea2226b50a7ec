//! Reading the audit log: filtered, sorted pages and their exact totals, fast at tens of
//! millions of rows.
//!
//! Pages come from the indexes of migration 0008, each ordered like the default sort
//! (newest first), so a page reads `limit` index entries whatever the table's size.
//!
//! Totals are exact. Counting matching index entries costs time in proportion to the
//! matches (on SQLite about 25 million a second, so the 8 million pulls of a busy registry
//! would take a third of a second), hence two tallies, kept by triggers in the transaction
//! that writes, deletes or changes each row:
//! - `audit_log_hourly` (migration 0010): rows per UTC hour and per (resource_type,
//!   operation), about ten rows an hour. Counts that name neither a user nor a project (no
//!   filter, a time range, resource_type, operation) sum its whole hours in the range and
//!   count the partial hours at either end in the log (at most two hours of rows).
//! - `audit_log_daily` (migration 0008): rows per UTC day and per (resource_type, operation,
//!   project, operator), one row per active user and project a day. Counts that name a user
//!   or projects sum its whole days and count the partial days at either end in the log
//!   through the (operator, op_time) or (project_id, op_time) index, which hold only that
//!   user's or project's rows.
//!
//! A range with no whole bucket is counted in the log. Filters on `resource` count the log
//! through its (resource, op_time) index; only a fuzzy `resource` filter has to read every
//! row of the range.
//!
//! Measured at 10 million rows (docs/benchmarks.md): before the hourly tally a ten-day range
//! took about 80 ms a request. Its count alone, timed on one warm connection, took 24 ms: 19
//! summing some 37,000 daily tally rows (SQLite 3.51 read them by skip-scanning the
//! (project_id, day) index), 3 for the partial days; the page took 0.3 ms. The hourly sum of
//! the same range takes 0.1 ms and the whole request under 2 ms.

use super::sql::{Sql, Value, bind_all};
use super::{Meta, on_read};
use crate::error::Result;

/// One day in milliseconds: the bucket of `audit_log_daily`.
const DAY_MS: i64 = 86_400_000;
/// One hour in milliseconds: the bucket of `audit_log_hourly`.
const HOUR_MS: i64 = 3_600_000;

/// An audit record as the API lists it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub op_time: i64,
    pub operator: String,
    pub project_id: Option<i64>,
    pub resource: String,
    pub resource_type: String,
    pub operation: String,
    pub success: bool,
}

/// How a text column must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditText {
    /// Equal to one of these.
    AnyOf(Vec<String>),
    /// Contains this text, ignoring case (Harbor's `~`).
    Contains(String),
}

/// Which records a list holds; every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub operator: Option<AuditText>,
    pub resource: Option<AuditText>,
    pub resource_type: Option<AuditText>,
    pub operation: Option<AuditText>,
    /// Only records of these projects (empty: none at all).
    pub projects: Option<Vec<i64>>,
    /// Inclusive bounds on `op_time`, in Unix milliseconds.
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// Orders of an audit list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditSort {
    Time,
    Id,
    Operator,
    Resource,
    ResourceType,
    Operation,
}

impl AuditSort {
    fn column(self) -> &'static str {
        match self {
            AuditSort::Time => "op_time",
            AuditSort::Id => "id",
            AuditSort::Operator => "operator",
            AuditSort::Resource => "resource",
            AuditSort::ResourceType => "resource_type",
            AuditSort::Operation => "operation",
        }
    }
}

fn text_cond(column: &str, m: &AuditText, sql: &mut Sql) -> String {
    match m {
        AuditText::AnyOf(vs) if vs.is_empty() => "FALSE".into(),
        AuditText::AnyOf(vs) if vs.len() == 1 => format!("{column} = {}", sql.param(Value::Text(vs[0].clone()))),
        AuditText::AnyOf(vs) => {
            let ps: Vec<String> = vs.iter().map(|v| sql.param(Value::Text(v.clone()))).collect();
            format!("{column} IN ({})", ps.join(", "))
        }
        AuditText::Contains(s) => {
            let pattern = format!("%{}%", super::projects::escape_like(&s.to_lowercase()));
            format!("LOWER({column}) LIKE {} ESCAPE '\\'", sql.param(Value::Text(pattern)))
        }
    }
}

/// The conditions on the columns the log and the tally share (resource excluded).
fn shared_conds(f: &AuditFilter, sql: &mut Sql) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(m) = &f.operator {
        parts.push(text_cond("operator", m, sql));
    }
    if let Some(m) = &f.resource_type {
        parts.push(text_cond("resource_type", m, sql));
    }
    if let Some(m) = &f.operation {
        parts.push(text_cond("operation", m, sql));
    }
    if let Some(ids) = &f.projects {
        if ids.is_empty() {
            parts.push("FALSE".into());
        } else {
            let ps: Vec<String> = ids.iter().map(|id| sql.param(Value::Int(*id))).collect();
            parts.push(format!("project_id IN ({})", ps.join(", ")));
        }
    }
    parts
}

/// The conditions on the log itself, with `op_time` within [from, to].
fn log_conds(f: &AuditFilter, from: Option<i64>, to: Option<i64>, sql: &mut Sql) -> Vec<String> {
    let mut parts = shared_conds(f, sql);
    if let Some(m) = &f.resource {
        parts.push(text_cond("resource", m, sql));
    }
    if let Some(v) = from {
        parts.push(format!("op_time >= {}", sql.param(Value::Int(v))));
    }
    if let Some(v) = to {
        parts.push(format!("op_time <= {}", sql.param(Value::Int(v))));
    }
    parts
}

fn where_of(parts: &[String]) -> String {
    if parts.is_empty() { String::new() } else { format!(" WHERE {}", parts.join(" AND ")) }
}

/// The whole buckets of `size` ms inside [from, to]: (first, last) bucket numbers, each
/// unbounded when None.
fn whole_buckets(size: i64, from: Option<i64>, to: Option<i64>) -> (Option<i64>, Option<i64>) {
    (from.map(|a| a.div_euclid(size) + i64::from(a.rem_euclid(size) != 0)), to.map(|b| (b + 1).div_euclid(size) - 1))
}

/// Which tally a count reads: (table, bucket column, bucket length in ms).
fn tally_of(f: &AuditFilter) -> Option<(&'static str, &'static str, i64)> {
    if f.resource.is_some() {
        None
    } else if f.operator.is_some() || f.projects.is_some() {
        Some(("audit_log_daily", "day", DAY_MS))
    } else {
        Some(("audit_log_hourly", "hour", HOUR_MS))
    }
}

/// The SQL (and its parameters) of the exact number of records `f` selects.
fn count_sql(f: &AuditFilter) -> (String, Sql) {
    let mut sql = Sql::default();
    let Some((table, column, size)) = tally_of(f) else {
        let w = where_of(&log_conds(f, f.from, f.to, &mut sql));
        return (format!("SELECT COUNT(*) FROM audit_log{w}"), sql);
    };
    let (first, last) = whole_buckets(size, f.from, f.to);
    if matches!((first, last), (Some(a), Some(b)) if a > b) {
        // Not one whole bucket in the range: at most two buckets' rows, counted in the log.
        let w = where_of(&log_conds(f, f.from, f.to, &mut sql));
        return (format!("SELECT COUNT(*) FROM audit_log{w}"), sql);
    }
    let mut tally = shared_conds(f, &mut sql);
    if let Some(d) = first {
        tally.push(format!("{column} >= {}", sql.param(Value::Int(d))));
    }
    if let Some(d) = last {
        tally.push(format!("{column} <= {}", sql.param(Value::Int(d))));
    }
    let mut text = format!("SELECT (SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM {table}{})", where_of(&tally));
    // The partial buckets at the ends of the range, counted in the log.
    if let (Some(a), Some(d)) = (f.from, first)
        && a < d * size
    {
        let w = where_of(&log_conds(f, Some(a), Some(d * size - 1), &mut sql));
        text.push_str(&format!(" + (SELECT COUNT(*) FROM audit_log{w})"));
    }
    if let (Some(b), Some(d)) = (f.to, last)
        && b >= (d + 1) * size
    {
        let w = where_of(&log_conds(f, Some((d + 1) * size), Some(b), &mut sql));
        text.push_str(&format!(" + (SELECT COUNT(*) FROM audit_log{w})"));
    }
    (text, sql)
}

impl Meta {
    /// How many records `f` selects, exactly (see the module's notes on speed).
    pub async fn count_audit(&self, f: &AuditFilter) -> Result<i64> {
        let (text, sql) = count_sql(f);
        let (n,) =
            on_read!(self, |p| bind_all!(sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(text.as_str())), &sql.values).fetch_one(p).await)?;
        Ok(n)
    }

    /// One page of the records `f` selects, in `sort` order (newest first when empty; ties by id).
    pub async fn list_audit(&self, f: &AuditFilter, sort: &[(AuditSort, bool)], offset: i64, limit: i64) -> Result<Vec<AuditRow>> {
        let mut sql = Sql::default();
        let w = where_of(&log_conds(f, f.from, f.to, &mut sql));
        let mut order: Vec<String> = sort.iter().map(|(s, desc)| format!("{}{}", s.column(), if *desc { " DESC" } else { "" })).collect();
        if sort.is_empty() {
            order.push("op_time DESC".into());
        }
        // Ties follow the direction of the first key, so that the index order serves the default.
        let tie_desc = sort.first().is_none_or(|(_, desc)| *desc);
        if !sort.iter().any(|(s, _)| *s == AuditSort::Id) {
            order.push(if tie_desc { "id DESC".into() } else { "id".into() });
        }
        let lim = sql.param(Value::Int(limit));
        let off = sql.param(Value::Int(offset));
        let text = format!(
            "SELECT id, op_time, operator, project_id, resource, resource_type, operation, success FROM audit_log{w} ORDER BY {} LIMIT {lim} OFFSET {off}",
            order.join(", ")
        );
        Ok(on_read!(self, |p| bind_all!(sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(text.as_str())), &sql.values)
            .fetch_all(p)
            .await)?)
    }

    /// The projects a user is a member of (directly): (id, name, public, role), one row per role.
    pub async fn memberships(&self, user_id: i64) -> Result<Vec<(i64, String, bool, i64)>> {
        Ok(on_read!(self, |p| sqlx::query_as::<_, (i64, String, bool, i64)>(
            "SELECT p.id, p.name, p.public, m.role FROM project_members m JOIN projects p ON p.id = m.project_id \
             WHERE m.entity_type = 'u' AND m.entity_id = $1 ORDER BY p.id"
        )
        .bind(user_id)
        .fetch_all(p)
        .await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_buckets_inside_a_range() {
        let d = DAY_MS;
        assert_eq!(whole_buckets(d, None, None), (None, None));
        assert_eq!(whole_buckets(d, Some(0), Some(d - 1)), (Some(0), Some(0)));
        assert_eq!(whole_buckets(d, Some(1), Some(3 * d)), (Some(1), Some(2)));
        assert_eq!(whole_buckets(d, Some(d + 5), Some(d + 10)), (Some(2), Some(0)));
        let h = HOUR_MS;
        assert_eq!(whole_buckets(h, Some(d + 5), Some(d + 3 * h)), (Some(25), Some(26)));
    }

    fn text(f: AuditFilter) -> String {
        count_sql(&f).0
    }

    #[test]
    fn counts_read_the_coarsest_tally_that_fits() {
        let one = |v: &str| Some(AuditText::AnyOf(vec![v.into()]));
        // Time, type and operation alone: the hourly tally, with or without a range.
        let t = text(AuditFilter::default());
        assert!(t.contains("audit_log_hourly") && !t.contains("COUNT(*)"), "{t}");
        let t = text(AuditFilter { operation: one("create"), resource_type: one("artifact"), ..Default::default() });
        assert!(t.contains("audit_log_hourly"), "{t}");
        // Whole hours plus both ends, each less than an hour of the log.
        let t = text(AuditFilter { from: Some(DAY_MS + 1), to: Some(DAY_MS + 5 * HOUR_MS + 2), ..Default::default() });
        assert!(t.contains("audit_log_hourly") && t.contains("hour >= ") && t.contains("hour <= "), "{t}");
        assert_eq!(t.matches("COUNT(*)").count(), 2, "{t}");
        // Range bounds on whole hours: no partial hour to count.
        let t = text(AuditFilter { from: Some(2 * HOUR_MS), to: Some(7 * HOUR_MS - 1), ..Default::default() });
        assert_eq!(t.matches("COUNT(*)").count(), 0, "{t}");
        // Within one hour: the log.
        let t = text(AuditFilter { from: Some(HOUR_MS + 1), to: Some(HOUR_MS + 2), operation: one("pull"), ..Default::default() });
        assert!(!t.contains("audit_log_hourly") && !t.contains("audit_log_daily"), "{t}");
        // A user or project: the daily tally (whole days plus both ends).
        let t = text(AuditFilter { operator: one("a"), ..Default::default() });
        assert!(t.contains("audit_log_daily"), "{t}");
        let t = text(AuditFilter { projects: Some(vec![3]), from: Some(DAY_MS + 1), to: Some(5 * DAY_MS + 2), ..Default::default() });
        assert!(t.contains("audit_log_daily") && t.contains("day >= "), "{t}");
        assert_eq!(t.matches("COUNT(*)").count(), 2, "{t}");
        // A user within one day: the log.
        let t = text(AuditFilter { operator: one("a"), from: Some(DAY_MS + 1), to: Some(DAY_MS + 5 * HOUR_MS), ..Default::default() });
        assert!(!t.contains("audit_log_daily") && !t.contains("audit_log_hourly"), "{t}");
        // A resource: always the log.
        let t = text(AuditFilter { resource: Some(AuditText::Contains("x".into())), ..Default::default() });
        assert!(!t.contains("audit_log_daily") && !t.contains("audit_log_hourly"), "{t}");
    }
}
