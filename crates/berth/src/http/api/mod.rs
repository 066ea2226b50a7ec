//! Harbor's REST API under `/api/v2.0`, one file per resource group.
//!
//! Shared here: the error body `{"errors":[{"code","message"}]}`, the `Caller`
//! extractor (Basic credentials; anonymous when none), pagination (`page`,
//! `page_size` ≤ 100, `X-Total-Count`, `Link`), the `q` and `sort` query
//! languages, and name-or-id path parameters. Every decision about who may do
//! what goes through `auth::policy::allows`.

pub mod artifacts;
pub mod audit;
pub mod berth;
pub mod configurations;
pub mod labels;
pub mod members;
pub mod projects;
pub mod query;
pub mod repositories;
pub mod robots;
pub mod search;
pub mod system;
pub mod tokens;
pub mod unimplemented;
pub mod users;

use crate::app::{App, AppState};
use crate::auth::policy::Principal;
use crate::error::Error;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Every `/api/v2.0` route.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(system::routes())
        .merge(users::routes())
        .merge(projects::routes())
        .merge(members::routes())
        .merge(robots::routes())
        .merge(repositories::routes())
        .merge(artifacts::routes())
        .merge(labels::routes())
        .merge(audit::routes())
        .merge(search::routes())
        .merge(configurations::routes())
        // After every route: answers 405 with Harbor's body on each of them.
        .method_not_allowed_fallback(unimplemented::method_not_allowed)
        .fallback(unimplemented::fallback)
}

/// A Harbor error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }
    pub fn forbidden() -> ApiError {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", "forbidden")
    }
    pub fn unauthorized() -> ApiError {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "unauthorized")
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match e {
            Error::NotFound(m) => ApiError::not_found(m),
            Error::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "CONFLICT", m),
            Error::Invalid(m) => ApiError::bad_request(m),
            Error::Precondition(m) => ApiError::new(StatusCode::PRECONDITION_FAILED, "PRECONDITION", m),
            Error::Unprocessable(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "UNPROCESSABLE_ENTITY", m),
            Error::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", m),
            Error::Denied => ApiError::forbidden(),
            Error::Unauthenticated | Error::BadCredentials | Error::InsufficientScope => ApiError::unauthorized(),
            Error::Oci { message, .. } | Error::Refused { message, .. } => ApiError::bad_request(message),
            Error::TooLarge(m) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "BAD_REQUEST", m),
            Error::RangeInvalid { .. } => ApiError::bad_request(e.to_string()),
            Error::Internal(detail) => {
                tracing::error!("{detail}");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", "internal error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({"errors": [{"code": self.code, "message": self.message}]}))).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The authenticated caller of an API request (anonymous without credentials).
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Caller, ApiError> {
        caller(app, &parts.headers, super::peer(&parts.extensions)).await.map(Caller)
    }
}

/// Reads Basic credentials; wrong ones are refused, never treated as anonymous. `peer`: the
/// connection's address (credential guessing is slowed per client address).
pub async fn caller(app: &App, headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> ApiResult<Principal> {
    match super::auth::credentials(app, headers, peer).await {
        Ok(super::auth::Credentials::Principal(p)) => Ok(p),
        Ok(super::auth::Credentials::None) => Ok(Principal::Anonymous),
        // Registry tokens are for /v2 only.
        Ok(super::auth::Credentials::Token(_)) | Err(Error::BadCredentials) => Err(ApiError::unauthorized()),
        Err(e) => Err(e.into()),
    }
}

/// The audit record of a change `caller` makes, with the client's address and user agent.
pub fn caller_audit(caller: &Caller, headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> crate::meta::Audit {
    let (client_ip, user_agent) = crate::http::client(headers, peer);
    crate::meta::Audit { operator: caller.0.name().to_string(), client_ip, user_agent, ..Default::default() }
}

/// Fails with 401 for anonymous callers.
pub fn require_login(p: &Principal) -> ApiResult<()> {
    if matches!(p, Principal::Anonymous) { Err(ApiError::unauthorized()) } else { Ok(()) }
}

/// `page` and `page_size`, validated as Harbor validates them.
#[derive(Clone, Copy, Debug)]
pub struct Paging {
    pub page: u64,
    pub size: u64,
}

impl Paging {
    pub const DEFAULT_SIZE: u64 = 10;
    pub const MAX_SIZE: u64 = 100;

    /// From raw query values; 422 when out of range, as Harbor answers.
    pub fn parse(page: Option<&str>, page_size: Option<&str>) -> ApiResult<Paging> {
        let num = |v: Option<&str>, default: u64, name: &str| -> ApiResult<i64> {
            match v {
                None | Some("") => Ok(default as i64),
                Some(s) => s.parse::<i64>().map_err(|e| match e.kind() {
                    std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                        Error::Unprocessable(format!("{name} in query is too large: at most {}", i64::MAX)).into()
                    }
                    _ => ApiError::bad_request(format!("{name} must be an integer")),
                }),
            }
        };
        let page = num(page, 1, "page")?;
        let size = num(page_size, Self::DEFAULT_SIZE, "page_size")?;
        if page < 1 {
            return Err(Error::Unprocessable("page in query should be greater than or equal to 1".into()).into());
        }
        if size > Self::MAX_SIZE as i64 {
            return Err(Error::Unprocessable("page_size in query should be less than or equal to 100".into()).into());
        }
        if size < 1 {
            return Err(Error::Unprocessable("page_size in query should be greater than or equal to 1".into()).into());
        }
        // The page's offset and its end must be numbers the database takes.
        if page.checked_mul(size).is_none() {
            return Err(Error::Unprocessable(format!("page in query is too large: page × page_size must be at most {}", i64::MAX)).into());
        }
        Ok(Paging { page: page as u64, size: size as u64 })
    }

    pub fn offset(&self) -> i64 {
        ((self.page - 1) * self.size) as i64
    }
    pub fn limit(&self) -> i64 {
        self.size as i64
    }
}

/// Where Harbor's API is mounted.
pub const API_PREFIX: &str = "/api/v2.0";

/// A JSON list response with `X-Total-Count` and Harbor's `Link` header.
pub fn paged<T: serde::Serialize>(items: &T, total: i64, paging: Paging, uri: &axum::http::Uri) -> Response {
    let mut r = axum::Json(items).into_response();
    let h = r.headers_mut();
    h.insert("x-total-count", HeaderValue::from(total));
    let last_page = (total.max(0) as u64).div_ceil(paging.size).max(1);
    let link_to = |page: u64| {
        let mut pairs: Vec<(String, String)> =
            super::auth::form_pairs(uri.query().unwrap_or("")).filter(|(k, _)| k != "page" && k != "page_size").collect();
        pairs.push(("page".into(), page.to_string()));
        pairs.push(("page_size".into(), paging.size.to_string()));
        let q = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        // Handlers under the nested router see paths without the API prefix.
        let path = uri.path();
        if path.starts_with("/api/") { format!("<{path}?{q}>") } else { format!("<{API_PREFIX}{path}?{q}>") }
    };
    let mut links = Vec::new();
    if paging.page > 1 {
        links.push(format!("{}; rel=\"prev\"", link_to(paging.page - 1)));
    }
    if paging.page < last_page {
        links.push(format!("{}; rel=\"next\"", link_to(paging.page + 1)));
    }
    if !links.is_empty()
        && let Ok(v) = HeaderValue::from_str(&links.join(" , "))
    {
        h.insert(header::LINK, v);
    }
    r
}

/// A `201 Created` with an empty body and `Location`.
pub fn created(location: &str) -> Response {
    let mut r = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// A `{project_name_or_id}` path value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameOrId {
    Id(i64),
    Name(String),
}

impl NameOrId {
    /// An integer is an id unless the client sent `X-Is-Resource-Name: true`.
    pub fn parse(value: &str, headers: &HeaderMap) -> NameOrId {
        let is_name = headers.get("x-is-resource-name").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        match value.parse::<i64>() {
            Ok(id) if !is_name => NameOrId::Id(id),
            _ => NameOrId::Name(value.to_string()),
        }
    }
}

/// Harbor's time format in API bodies.
pub fn time(ms: i64) -> String {
    crate::time_fmt::rfc3339_ms(ms)
}
