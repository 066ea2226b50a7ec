//! Dynamically built SQL: conditions and orders chosen at run time, values always bound as
//! parameters (`$1..`, accepted by SQLite and PostgreSQL), column names only from fixed mappings.

/// A value bound to a dynamically built query.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Text(String),
    Int(i64),
    Bool(bool),
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
                Value::Text(s) => q.bind(s.clone()),
                Value::Int(i) => q.bind(*i),
                Value::Bool(b) => q.bind(*b),
            };
        }
        q
    }};
}
pub(crate) use bind_all;
