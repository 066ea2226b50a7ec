//! Harbor's list query languages: `q` filters and `sort` orders.
//!
//! `q=k=v,k2=~v2,k3=[a~b],k4={x y},k5=(x y)`: exact, fuzzy (substring), range
//! (either bound may be empty), any-of, all-of. Values may be quoted. `sort=a,-b`
//! orders by `a` ascending then `b` descending.

use super::{ApiError, ApiResult};

/// One condition of a `q` filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    Exact(String),
    Fuzzy(String),
    Range(Option<String>, Option<String>),
    AnyOf(Vec<String>),
    AllOf(Vec<String>),
}

/// A parsed `q`: (key, condition) pairs, all of which must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter(pub Vec<(String, Cond)>);

impl Filter {
    /// Parses `q`; only keys in `allowed` are accepted.
    pub fn parse(q: Option<&str>, allowed: &[&str]) -> ApiResult<Filter> {
        let Some(q) = q.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(Filter::default()) };
        let unescaped = unescape_once(q);
        let q = unescaped.as_deref().unwrap_or(q);
        let mut out = Vec::new();
        for clause in split_top(q) {
            let (k, v) = clause
                .split_once('=')
                .ok_or_else(|| ApiError::bad_request(format!("invalid query clause {clause:?}: expected key=value")))?;
            let key = k.trim();
            if !allowed.contains(&key) {
                return Err(ApiError::bad_request(format!("unsupported query key {key:?}; supported: {}", allowed.join(", "))));
            }
            out.push((key.to_string(), parse_cond(v.trim())?));
        }
        Ok(Filter(out))
    }

    pub fn get(&self, key: &str) -> Option<&Cond> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, c)| c)
    }
}

/// Harbor decodes `q` once more after the query string itself (clients such as Harbor's own
/// UI encode it twice): `%XX` and `+` are decoded unless an escape is malformed or the result
/// is not UTF-8, in which case `q` is taken as it is.
fn unescape_once(q: &str) -> Option<String> {
    if !q.contains(['%', '+']) {
        return None;
    }
    let b = q.as_bytes();
    let (mut out, mut i) = (Vec::with_capacity(b.len()), 0);
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = q.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Splits on commas that are not inside brackets or quotes.
fn split_top(q: &str) -> Vec<&str> {
    let (mut depth, mut quoted, mut start, mut out) = (0i32, false, 0usize, Vec::new());
    for (i, c) in q.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '[' | '{' | '(' if !quoted => depth += 1,
            ']' | '}' | ')' if !quoted => depth -= 1,
            ',' if depth == 0 && !quoted => {
                out.push(q[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(q[start..].trim());
    out.into_iter().filter(|s| !s.is_empty()).collect()
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    s.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(s).to_string()
}

fn parse_cond(v: &str) -> ApiResult<Cond> {
    if let Some(rest) = v.strip_prefix('~') {
        return Ok(Cond::Fuzzy(unquote(rest)));
    }
    if let Some(inner) = v.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        let (a, b) = inner.split_once('~').ok_or_else(|| ApiError::bad_request(format!("invalid range {v:?}: expected [min~max]")))?;
        let bound = |s: &str| Some(unquote(s)).filter(|x| !x.is_empty());
        return Ok(Cond::Range(bound(a), bound(b)));
    }
    if let Some(inner) = v.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
        return Ok(Cond::AnyOf(inner.split_whitespace().map(unquote).collect()));
    }
    if let Some(inner) = v.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
        return Ok(Cond::AllOf(inner.split_whitespace().map(unquote).collect()));
    }
    Ok(Cond::Exact(unquote(v)))
}

/// Parses `sort` into (field, descending) pairs; only fields in `allowed`.
pub fn parse_sort(sort: Option<&str>, allowed: &[&str]) -> ApiResult<Vec<(String, bool)>> {
    let Some(s) = sort.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(vec![]) };
    s.split(',')
        .map(|f| {
            let f = f.trim();
            let (name, desc) = match f.strip_prefix('-') {
                Some(n) => (n, true),
                None => (f, false),
            };
            if allowed.contains(&name) {
                Ok((name.to_string(), desc))
            } else {
                Err(ApiError::bad_request(format!("unsupported sort field {name:?}; supported: {}", allowed.join(", "))))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let f = Filter::parse(
            Some(r#"name=~ab,public=true,creation_time=[2020-01-01 00:00:00~],id={1 2 3},tags=(a b),x="q,r""#),
            &["name", "public", "creation_time", "id", "tags", "x"],
        )
        .unwrap();
        assert_eq!(f.get("name"), Some(&Cond::Fuzzy("ab".into())));
        assert_eq!(f.get("public"), Some(&Cond::Exact("true".into())));
        assert_eq!(f.get("creation_time"), Some(&Cond::Range(Some("2020-01-01 00:00:00".into()), None)));
        assert_eq!(f.get("id"), Some(&Cond::AnyOf(vec!["1".into(), "2".into(), "3".into()])));
        assert_eq!(f.get("tags"), Some(&Cond::AllOf(vec!["a".into(), "b".into()])));
        assert_eq!(f.get("x"), Some(&Cond::Exact("q,r".into())));
        assert!(Filter::parse(Some("nope=1"), &["name"]).is_err());
        assert!(Filter::parse(Some("name"), &["name"]).is_err());
        assert_eq!(
            parse_sort(Some("name,-creation_time"), &["name", "creation_time"]).unwrap(),
            vec![("name".into(), false), ("creation_time".into(), true)]
        );
        assert!(parse_sort(Some("password"), &["name"]).is_err());
    }

    #[test]
    fn decodes_a_twice_encoded_q_as_harbor_does() {
        let f = Filter::parse(Some("username%3D~adm%2Cop_time%3D%5B2020-04-09+00%3A00%3A00~%5D"), &["username", "op_time"]).unwrap();
        assert_eq!(f.get("username"), Some(&Cond::Fuzzy("adm".into())));
        assert_eq!(f.get("op_time"), Some(&Cond::Range(Some("2020-04-09 00:00:00".into()), None)));
        // A malformed escape leaves q as it is.
        let f = Filter::parse(Some("name=~50%"), &["name"]).unwrap();
        assert_eq!(f.get("name"), Some(&Cond::Fuzzy("50%".into())));
    }

    #[test]
    fn parses_times() {}
}
