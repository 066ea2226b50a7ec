//! Dynamically built SQL: conditions and orders chosen at run time, values always bound as
//! parameters (`$1..`, accepted by SQLite and PostgreSQL), column names only from fixed mappings.

/// A value bound to a dynamically built query.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Text(String),
    Int(i64),
    Bool(bool),
    /// An integer or NULL (typed, so PostgreSQL accepts it for an integer column).
    OptInt(Option<i64>),
}

/// SQL text with its parameters, numbered `$1..` in order.
#[derive(Default)]
pub(crate) struct Sql {
    pub values: Vec<Value>,
}

impl Sql {
    pub fn param(&mut self, v: Value) -> String {
        self.values.push(v);
        format!("${}", self.values.len())
    }
    pub fn list(&mut self, vs: impl IntoIterator<Item = Value>) -> String {
        let ps: Vec<String> = vs.into_iter().map(|v| self.param(v)).collect();
        if ps.is_empty() { "NULL".into() } else { ps.join(", ") }
    }
}

/// Binds every value of `$values` to the query `$q`.
macro_rules! bind_all {
    ($q:expr, $values:expr) => {{
        let mut q = $q;
        for v in $values {
            q = match v {
                $crate::meta::sql::Value::Text(s) => q.bind(s.clone()),
                $crate::meta::sql::Value::Int(i) => q.bind(*i),
                $crate::meta::sql::Value::Bool(b) => q.bind(*b),
                $crate::meta::sql::Value::OptInt(i) => q.bind(*i),
            };
        }
        q
    }};
}
pub(crate) use bind_all;

/// Statements of one transaction that need nothing from each other's results, sent together:
/// on SQLite as one multi-statement query (one trip to the connection's thread, which matters
/// while the single writer is held), on PostgreSQL one by one, as its extended protocol takes
/// one statement per query. Each statement numbers its own values `$1..`.
pub(crate) struct Batch {
    statements: Vec<(String, Vec<Value>)>,
    /// Whether the statements are kept prepared (false for texts that vary with a count).
    pub persistent: bool,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch { statements: Vec::new(), persistent: true }
    }
}

impl Batch {
    pub fn push(&mut self, sql: impl Into<String>, values: Vec<Value>) {
        self.statements.push((sql.into(), values));
    }

    pub fn statements(&self) -> &[(String, Vec<Value>)] {
        &self.statements
    }

    /// The statements as one SQLite text, each `$N` written `?` with its value listed where it
    /// occurs (again for a value used twice). SQLite numbers parameters across the whole text;
    /// plain `?` in order is what binds in one pass, where a named `$N` is looked up among all
    /// the names before it (N of them cost N²).
    pub fn joined(&self) -> (String, Vec<&Value>) {
        let mut sql = String::new();
        let mut values = Vec::new();
        for (text, vs) in &self.statements {
            if !sql.is_empty() {
                sql.push_str(";\n");
            }
            let mut rest = text.as_str();
            while let Some(i) = rest.find('$') {
                sql.push_str(&rest[..i]);
                sql.push('?');
                rest = &rest[i + 1..];
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                let n: usize = rest[..digits].parse().expect("a parameter number after $");
                values.push(&vs[n - 1]);
                rest = &rest[digits..];
            }
            sql.push_str(rest);
        }
        (sql, values)
    }
}

/// Runs a `Batch` on `$conn` (a transaction): in one query on SQLite, one per statement on
/// PostgreSQL. Evaluates to `Result<(), sqlx::Error>`.
macro_rules! try_batch {
    ($conn:expr, $batch:expr, $sqlite:expr) => {
        async {
            let batch: &$crate::meta::sql::Batch = $batch;
            if $sqlite {
                let (sql, values) = batch.joined();
                if !sql.is_empty() {
                    $crate::meta::sql::bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(batch.persistent), values.into_iter())
                        .execute(&mut *$conn)
                        .await?;
                }
            } else {
                for (sql, values) in batch.statements() {
                    $crate::meta::sql::bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).persistent(batch.persistent), values)
                        .execute(&mut *$conn)
                        .await?;
                }
            }
            Ok::<(), sqlx::Error>(())
        }
        .await
    };
}
pub(crate) use try_batch;

/// Runs a `Batch` on `$conn` (a transaction), returning from the enclosing function on error.
macro_rules! run_batch {
    ($conn:expr, $batch:expr, $sqlite:expr) => {
        $crate::meta::sql::try_batch!($conn, $batch, $sqlite)?
    };
}
pub(crate) use run_batch;

/// `n` rows of `cols` placeholders for a multi-row VALUES list: `(?, ?), (?, ?)` on SQLite and
/// `($1, $2), ($3, $4)` on PostgreSQL. SQLite gets anonymous placeholders because binding a
/// numbered one (`$N`) looks its name up in a list of all of them: N parameters cost N² (a
/// 500-row audit insert, 4,500 parameters, spent 80% of its time matching names).
pub(crate) fn value_rows(sqlite: bool, n: usize, cols: usize) -> String {
    let mut s = String::with_capacity(n * cols * 6);
    for r in 0..n {
        s.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            if sqlite {
                s.push('?');
            } else {
                s.push_str(&format!("${}", r * cols + c + 1));
            }
        }
        s.push(')');
    }
    s
}

/// `n` placeholders separated by commas for an `IN (...)` list, numbered from `$first` on
/// PostgreSQL and anonymous (`?`) on SQLite, where the values must then come in that order.
pub(crate) fn in_list(sqlite: bool, first: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 6);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        if sqlite {
            s.push('?');
        } else {
            s.push_str(&format!("${}", first + i));
        }
    }
    s
}

/// `rows` rows of `cols` numbered placeholders, `($1, $2), ($3, $4)`: for a statement of a
/// `Batch`, which renumbers them for SQLite itself.
pub(crate) fn numbered_rows(rows: usize, cols: usize) -> String {
    value_rows(false, rows, cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_batch_renumbers_parameters() {
        let mut b = Batch::default();
        b.push("INSERT INTO t (a, b) VALUES ($1, $2)", vec![Value::Int(1), Value::Text("x".into())]);
        b.push("UPDATE u SET c = $2 WHERE d = $1 OR e = $1", vec![Value::Int(2), Value::Int(3)]);
        b.push("DELETE FROM v", vec![]);
        b.push("DELETE FROM w WHERE id = $1", vec![Value::Bool(true)]);
        let (sql, values) = b.joined();
        assert_eq!(
            sql,
            "INSERT INTO t (a, b) VALUES (?, ?);\nUPDATE u SET c = ? WHERE d = ? OR e = ?;\nDELETE FROM v;\nDELETE FROM w WHERE id = ?"
        );
        let shown: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        assert_eq!(shown, ["Int(1)", "Text(\"x\")", "Int(3)", "Int(2)", "Int(2)", "Bool(true)"]);
    }
}
