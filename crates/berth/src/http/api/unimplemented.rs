//! What `/api/v2.0` answers when no handler serves a request.
//!
//! Harbor's operations are compiled in (`harbor-operations.tsv`, generated from
//! swagger.yaml by `scripts/extract-harbor-contract`), so a request is answered as:
//! - an operation Harbor defines and Berth does not serve yet: `501 NOT_IMPLEMENTED`,
//!   naming the method, the path template and the operationId;
//! - a path Harbor (or Berth) has, with a method neither serves: `405 METHOD_NOT_ALLOWED`
//!   with `Allow` listing the methods Harbor defines there;
//! - anything else: `404 NOT_FOUND`.
//!
//! All three carry Harbor's error body.

use super::{API_PREFIX, ApiError};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;

/// One operation of Harbor's API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation {
    pub method: &'static str,
    /// The swagger template without the `/api/v2.0` prefix, e.g. `/projects/{project_name_or_id}`.
    pub path: &'static str,
    pub id: &'static str,
    pub tag: &'static str,
}

const OPERATIONS_TSV: &str = include_str!("harbor-operations.tsv");

/// Every operation of Harbor's API v2.0, sorted by path and method.
pub fn operations() -> &'static [Operation] {
    static OPS: OnceLock<Vec<Operation>> = OnceLock::new();
    OPS.get_or_init(|| {
        OPERATIONS_TSV
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| {
                let mut f = l.split('\t');
                Some(Operation { method: f.next()?, path: f.next()?, id: f.next()?, tag: f.next().unwrap_or("") })
            })
            .collect()
    })
}

/// How many literal segments a template has when it matches `path`, or `None` when it does not.
/// A `{placeholder}` matches one non-empty segment.
fn matches(template: &str, path: &str) -> Option<usize> {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    if t.len() != p.len() {
        return None;
    }
    let mut literal = 0;
    for (ts, ps) in t.iter().zip(&p) {
        if ts.starts_with('{') && ts.ends_with('}') {
            if ps.is_empty() {
                return None;
            }
        } else if ts == ps {
            literal += 1;
        } else {
            return None;
        }
    }
    Some(literal)
}

/// The operations whose template matches `path` best (most literal segments), any method.
pub fn operations_at(path: &str) -> Vec<&'static Operation> {
    let scored: Vec<(usize, &Operation)> = operations().iter().filter_map(|o| matches(o.path, path).map(|n| (n, o))).collect();
    let best = scored.iter().map(|(n, _)| *n).max();
    scored.into_iter().filter(|(n, _)| Some(*n) == best).map(|(_, o)| o).collect()
}

/// The path under `/api/v2.0` of a request (the nested router already strips the prefix).
fn api_path(uri: &Uri) -> &str {
    let p = uri.path();
    p.strip_prefix(API_PREFIX).unwrap_or(p)
}

/// The answer for a request no handler serves; `path_served` when Berth has a route for the path.
fn answer(method: &Method, path: &str, path_served: bool) -> Response {
    let here = operations_at(path);
    // HEAD is answered like GET where Harbor defines no HEAD.
    let wanted = if method == Method::HEAD && !here.iter().any(|o| o.method == "HEAD") { "GET" } else { method.as_str() };
    if let Some(op) = here.iter().find(|o| o.method == wanted) {
        return ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NOT_IMPLEMENTED",
            format!("Berth does not implement {} {} (operationId {}) yet", op.method, op.path, op.id),
        )
        .into_response();
    }
    if here.is_empty() && !path_served {
        return ApiError::not_found(format!("{path} is not an operation of Harbor's API v2.0 (see {API_PREFIX} in swagger.yaml)"))
            .into_response();
    }
    let mut allowed: Vec<&str> = here.iter().map(|o| o.method).collect();
    allowed.dedup();
    let listed = if allowed.is_empty() { String::from("other methods") } else { allowed.join(", ") };
    let mut r = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("{} is not allowed on {path}; allowed: {listed}", method.as_str()),
    )
    .into_response();
    if !allowed.is_empty()
        && let Ok(v) = HeaderValue::from_str(&allowed.join(", "))
    {
        r.headers_mut().insert(header::ALLOW, v);
    }
    r
}

/// The API router's fallback: no route matches the path.
pub async fn fallback(method: Method, uri: Uri) -> Response {
    answer(&method, api_path(&uri), false)
}

/// The API router's answer when a route matches the path but not the method.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    answer(&method, api_path(&uri), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_compiled_in() {
        assert_eq!(operations().len(), 203);
        assert!(operations().iter().all(|o| o.path.starts_with('/') && !o.id.is_empty() && !o.tag.is_empty()));
    }

    #[test]
    fn literal_segments_win() {
        let at = |p: &str| operations_at(p).iter().map(|o| (o.method, o.id)).collect::<Vec<_>>();
        assert_eq!(at("/users/current"), vec![("GET", "getCurrentUserInfo")]);
        assert!(at("/users/7").contains(&("DELETE", "deleteUser")));
        assert!(at("/projects/1/metadatas/").contains(&("POST", "addProjectMetadatas")));
        assert!(at("/projects//members").is_empty(), "a placeholder needs a value");
        assert!(at("/nothing/here").is_empty());
    }
}
