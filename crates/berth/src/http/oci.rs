//! `/v2`: the OCI Distribution API. The route is parsed once (`oci::Route`),
//! credentials are read, the action is authorized, and the domain does the work.
//! Errors render as `{"errors":[{code,message}]}` with the spec's status, the
//! Bearer challenge on 401 and the `Range` header on 416.

use super::auth::{Credentials, credentials, form_pairs};
use crate::app::{App, AppState};
use crate::auth::policy::{self, Action, Scope};
use crate::domain::{blobs, manifests, uploads};
use crate::error::Error;
use crate::http::zerocopy::Peer;
use crate::meta::Audit;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oci::route::RouteError;
use oci::{Digest, ErrorCode, NameError, Reference, RepoName, Route, media};
use serde_json::json;
use std::net::SocketAddr;

const API_VERSION: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");
/// Default and largest page of the tag list and catalog.
const MAX_PAGE: usize = 10_000;

/// Entry point for every `/v2` request.
pub async fn handle(State(app): State<AppState>, req: Request) -> Response {
    let peer = req.extensions().get::<ConnectInfo<Peer>>().map(|c| c.0.0);
    let mut resp = dispatch(&app, peer, req).await.unwrap_or_else(|(e, ctx)| render(&app, e, &ctx));
    resp.headers_mut().insert(API_VERSION.0, HeaderValue::from_static(API_VERSION.1));
    resp
}

/// What an error response needs to say beyond the error: the scope to challenge for.
#[derive(Default)]
struct ErrCtx {
    scope: Option<String>,
    headers: HeaderMap,
}

type Failure = (Error, ErrCtx);

fn fail(e: Error) -> Failure {
    (e, ErrCtx::default())
}

fn render(app: &App, e: Error, ctx: &ErrCtx) -> Response {
    let (status, code, message) = match &e {
        Error::Oci { code, message } => {
            (StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST), code.as_str(), message.clone())
        }
        Error::Refused { code, message } => (StatusCode::BAD_REQUEST, code.as_str(), message.clone()),
        Error::InsufficientScope => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "the token does not grant this action".into()),
        Error::RangeInvalid { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID", e.to_string()),
        Error::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID", m.clone()),
        Error::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "authentication required".into()),
        Error::BadCredentials => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "invalid credentials".into()),
        Error::Denied => (StatusCode::FORBIDDEN, "DENIED", e.to_string()),
        Error::NotFound(m) => (StatusCode::NOT_FOUND, "NAME_UNKNOWN", m.clone()),
        Error::Conflict(m) | Error::Invalid(m) | Error::Precondition(m) | Error::Unprocessable(m) => {
            (StatusCode::BAD_REQUEST, "UNSUPPORTED", m.clone())
        }
        Error::Forbidden(m) => (StatusCode::FORBIDDEN, "DENIED", m.clone()),
        Error::Internal(detail) => {
            tracing::error!("{detail}");
            (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "internal error".into())
        }
    };
    let mut resp = (status, axum::Json(json!({"errors": [{"code": code, "message": message, "detail": null}]}))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        let base = super::base_url(app, &ctx.headers);
        let mut challenge = format!("Bearer realm=\"{base}/service/token\",service=\"{}\"", app.auth.tokens.service);
        if let Some(scope) = &ctx.scope {
            challenge.push_str(&format!(",scope=\"{scope}\""));
        }
        match e {
            Error::BadCredentials => challenge.push_str(",error=\"invalid_token\""),
            Error::InsufficientScope => challenge.push_str(",error=\"insufficient_scope\""),
            _ => {}
        }
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    if let Error::RangeInvalid { size } = e {
        resp.headers_mut().insert(header::RANGE, range_value(size));
    }
    resp
}

/// The body length a request declared (Content-Length), if any.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

fn range_value(size: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("0-{}", size.saturating_sub(1))).expect("ascii")
}

fn route_error(e: RouteError) -> Failure {
    let e = match e {
        RouteError::NotFound => Error::oci(ErrorCode::NameUnknown, "no such endpoint"),
        RouteError::MethodNotAllowed => Error::oci(ErrorCode::Unsupported, "method not allowed on this endpoint"),
        RouteError::Name(NameError::Repository) => Error::oci(ErrorCode::NameInvalid, NameError::Repository.to_string()),
        RouteError::Name(NameError::Tag) => Error::oci(ErrorCode::TagInvalid, NameError::Tag.to_string()),
        RouteError::Name(NameError::Digest(d)) => Error::oci(ErrorCode::DigestInvalid, d.to_string()),
    };
    fail(e)
}

fn required(route: &Route) -> Action {
    if route.deletes() {
        Action::Delete
    } else if route.writes() {
        Action::Push
    } else {
        Action::Pull
    }
}

fn scope_of(name: &RepoName, action: Action) -> String {
    match action {
        Action::Pull => format!("repository:{name}:pull"),
        Action::Push => format!("repository:{name}:pull,push"),
        Action::Delete => format!("repository:{name}:delete"),
    }
}

/// Whether the caller may do `action` on `name`; if not, a challenge (no credentials or
/// a token) or Denied (Basic credentials that do not allow it).
async fn authorize(app: &App, creds: &Credentials, name: &RepoName, action: Action) -> Result<(), Error> {
    let ok = match creds {
        Credentials::Token(c) => c.grants("repository", name.as_str(), action.as_str()),
        Credentials::Principal(p) => !super::auth::granted(app, p, name, &[action]).await?.is_empty(),
        Credentials::None => !super::auth::granted(app, &policy::Principal::Anonymous, name, &[action]).await?.is_empty(),
    };
    match (ok, creds) {
        (true, _) => Ok(()),
        (false, Credentials::None) => Err(Error::Unauthenticated),
        // As the Distribution registry does: a token without the action gets a challenge
        // naming the scope, which clients treat as final once a fresh token still lacks it.
        (false, Credentials::Token(_)) => Err(Error::InsufficientScope),
        (false, Credentials::Principal(_)) => Err(Error::Denied),
    }
}

fn operator(creds: &Credentials) -> String {
    match creds {
        Credentials::Token(c) => c.sub.clone(),
        Credentials::Principal(p) => p.name().to_string(),
        Credentials::None => "anonymous".into(),
    }
}

async fn dispatch(app: &App, peer: Option<SocketAddr>, req: Request) -> Result<Response, Failure> {
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let route = Route::parse(parts.method.as_str(), parts.uri.path()).map_err(route_error)?;
    let query: Vec<(String, String)> = form_pairs(parts.uri.query().unwrap_or("")).collect();
    let q = |k: &str| query.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let challenge = |scope: Option<String>| ErrCtx { scope, headers: headers.clone() };
    let creds = credentials(app, &headers, peer).await.map_err(|e| (e, challenge(None)))?;

    if let Some(name) = route.name() {
        let action = required(&route);
        authorize(app, &creds, name, action).await.map_err(|e| (e, challenge(Some(scope_of(name, action)))))?;
    }
    let (ip, ua) = super::client(&headers, peer);
    let audit = Audit { operator: operator(&creds), client_ip: ip, user_agent: ua, ..Default::default() };

    match route {
        Route::Base => match creds {
            Credentials::None => Err((Error::Unauthenticated, challenge(None))),
            _ => Ok(axum::Json(json!({})).into_response()),
        },
        Route::Catalog => {
            let ok = match &creds {
                Credentials::Token(c) => c.grants("registry", "catalog", "*"),
                Credentials::Principal(p) => policy::allows(p, Scope::System, "catalog", "read"),
                Credentials::None => false,
            };
            if !ok {
                let e = if matches!(creds, Credentials::Principal(_)) { Error::Denied } else { Error::Unauthenticated };
                return Err((e, challenge(Some("registry:catalog:*".into()))));
            }
            let (n, last) = paging(q("n"), q("last")).map_err(fail)?;
            let page = manifests::catalog(app, last, n).await.map_err(fail)?;
            let link = page
                .more
                .then(|| format!("</v2/_catalog?n={n}&last={}>; rel=\"next\"", page.items.last().map(String::as_str).unwrap_or("")));
            Ok(with_link(axum::Json(json!({"repositories": page.items})).into_response(), link))
        }
        Route::ListTags { name } => {
            let (n, last) = paging(q("n"), q("last")).map_err(fail)?;
            let page = manifests::tags(app, &name, last, n).await.map_err(fail)?;
            let link = page.more.then(|| {
                format!("</v2/{name}/tags/list?n={n}&last={}>; rel=\"next\"", page.items.last().map(String::as_str).unwrap_or(""))
            });
            Ok(with_link(axum::Json(json!({"name": name.as_str(), "tags": page.items})).into_response(), link))
        }
        Route::GetManifest { name, reference, head } => {
            let m = manifests::get(app, &name, &reference).await.map_err(fail)?;
            if !head {
                let resource = match &reference {
                    Reference::Tag(t) => format!("{name}:{}", t.as_str()),
                    Reference::Digest(d) => format!("{name}@{d}"),
                };
                app.pulls.record(&m, m.project_id, resource, audit);
                crate::metrics::pull(name.project());
            }
            let len = m.content.len();
            let body = if head { Body::empty() } else { Body::from(m.content) };
            let mut r = Response::new(body);
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, hv(&m.media_type));
            h.insert("docker-content-digest", hv(&m.digest));
            h.insert(header::ETAG, hv(&format!("\"{}\"", m.digest)));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            Ok(r)
        }
        Route::PutManifest { name, reference } => {
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let bytes = match axum::body::to_bytes(body, manifests::MAX_MANIFEST).await {
                Ok(b) => b,
                Err(_) => return Err(fail(Error::TooLarge(format!("manifest is larger than {} bytes", manifests::MAX_MANIFEST)))),
            };
            let stored = manifests::put(app, &name, &reference, &ct, &bytes, audit).await.map_err(fail)?;
            crate::metrics::push(name.project());
            let mut r = StatusCode::CREATED.into_response();
            let h = r.headers_mut();
            h.insert(header::LOCATION, hv(&format!("/v2/{name}/manifests/{}", stored.digest)));
            h.insert("docker-content-digest", hv(&stored.digest.to_string()));
            if stored.has_subject {
                let m = oci::Manifest::parse(&bytes, &ct).ok();
                if let Some(s) = m.and_then(|m| m.subject) {
                    h.insert("oci-subject", hv(&s.digest.to_string()));
                }
            }
            Ok(r)
        }
        Route::DeleteManifest { name, reference } => {
            manifests::delete(app, &name, &reference, audit).await.map_err(fail)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        Route::GetBlob { name, digest, head } => get_blob(app, &name, &digest, head, &headers).await.map_err(fail),
        Route::DeleteBlob { name, digest } => {
            blobs::delete(app, &name, &digest).await.map_err(fail)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        Route::StartUpload { name } => {
            if let (Some(mount), Some(from)) = (q("mount"), q("from"))
                && let (Ok(digest), Ok(from)) = (mount.parse::<Digest>(), from.parse::<RepoName>())
                && authorize(app, &creds, &from, Action::Pull).await.is_ok()
                && blobs::mount(app, &name, &from, &digest).await.map_err(fail)?
            {
                return Ok(blob_created(&name, &digest));
            }
            if let Some(d) = q("digest") {
                let digest: Digest =
                    d.parse().map_err(|e: oci::digest::DigestError| fail(Error::oci(ErrorCode::DigestInvalid, e.to_string())))?;
                uploads::monolithic(app, &name, &digest, declared_length(&headers), body.into_data_stream()).await.map_err(fail)?;
                return Ok(blob_created(&name, &digest));
            }
            let id = uploads::start(app, &name).await.map_err(fail)?;
            Ok(upload_accepted(&name, &id, 0, StatusCode::ACCEPTED))
        }
        Route::UploadStatus { name, id } => {
            let u = uploads::get(app, &name, &id).await.map_err(fail)?;
            Ok(upload_accepted(&name, &id, u.size as u64, StatusCode::NO_CONTENT))
        }
        Route::PatchUpload { name, id } => {
            let range = match headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()) {
                Some(v) => Some(
                    parse_content_range(v)
                        .ok_or_else(|| fail(Error::oci(ErrorCode::BlobUploadInvalid, "Content-Range must be <start>-<end>")))?,
                ),
                None => None,
            };
            let size = uploads::patch(app, &name, &id, range, declared_length(&headers), body.into_data_stream()).await.map_err(fail)?;
            Ok(upload_accepted(&name, &id, size, StatusCode::ACCEPTED))
        }
        Route::PutUpload { name, id } => {
            let Some(d) = q("digest") else {
                return Err(fail(Error::oci(ErrorCode::DigestInvalid, "the digest query parameter is required to finish an upload")));
            };
            let digest: Digest =
                d.parse().map_err(|e: oci::digest::DigestError| fail(Error::oci(ErrorCode::DigestInvalid, e.to_string())))?;
            uploads::finish(app, &name, &id, &digest, declared_length(&headers), body.into_data_stream()).await.map_err(fail)?;
            Ok(blob_created(&name, &digest))
        }
        Route::CancelUpload { name, id } => {
            uploads::cancel(app, &name, &id).await.map_err(fail)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Route::Referrers { name, digest } => {
            let filter = q("artifactType");
            let body = manifests::referrers(app, &name, &digest, filter).await.map_err(fail)?;
            let mut r = Response::new(Body::from(body));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(media::OCI_INDEX));
            if filter.is_some() {
                r.headers_mut().insert("oci-filters-applied", HeaderValue::from_static("artifactType"));
            }
            Ok(r)
        }
    }
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn with_link(mut r: Response, link: Option<String>) -> Response {
    if let Some(l) = link {
        r.headers_mut().insert(header::LINK, hv(&l));
    }
    r
}

fn paging<'a>(n: Option<&str>, last: Option<&'a str>) -> Result<(usize, &'a str), Error> {
    let n = match n {
        None => MAX_PAGE,
        Some(s) => s.parse::<usize>().map_err(|_| Error::oci(ErrorCode::Unsupported, "n must be a non-negative integer"))?.min(MAX_PAGE),
    };
    Ok((n, last.unwrap_or("")))
}

fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let v = v.trim().trim_start_matches("bytes").trim_start_matches(['=', ' ']);
    let v = v.split('/').next()?;
    let (a, b) = v.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

fn blob_created(name: &RepoName, digest: &Digest) -> Response {
    let mut r = StatusCode::CREATED.into_response();
    let h = r.headers_mut();
    h.insert(header::LOCATION, hv(&format!("/v2/{name}/blobs/{digest}")));
    h.insert("docker-content-digest", hv(&digest.to_string()));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    r
}

fn upload_accepted(name: &RepoName, id: &str, size: u64, status: StatusCode) -> Response {
    let mut r = status.into_response();
    let h = r.headers_mut();
    h.insert(header::LOCATION, hv(&format!("/v2/{name}/blobs/uploads/{id}")));
    h.insert(header::RANGE, range_value(size));
    h.insert("docker-upload-uuid", hv(id));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    r
}

/// Parses a single `bytes=a-b` / `bytes=a-` / `bytes=-n` range against `size`.
fn byte_range(v: &str, size: u64) -> Option<Option<(u64, u64)>> {
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 {
                return Some(None);
            }
            (size.saturating_sub(n), size.checked_sub(1)?)
        }
        (a, "") => (a.parse().ok()?, size.checked_sub(1)?),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(size.saturating_sub(1))),
    };
    if start >= size || start > end { Some(None) } else { Some(Some((start, end))) }
}

async fn get_blob(app: &App, name: &RepoName, digest: &Digest, head: bool, headers: &HeaderMap) -> Result<Response, Error> {
    let size = blobs::stat(app, name, digest).await?;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(v) => match byte_range(v, size) {
            Some(Some(r)) => Some(r),
            Some(None) => {
                let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                r.headers_mut().insert(header::CONTENT_RANGE, hv(&format!("bytes */{size}")));
                return Ok(r);
            }
            None => None,
        },
    };
    let (start, len, status) = match range {
        Some((a, b)) => (a, b - a + 1, StatusCode::PARTIAL_CONTENT),
        None => (0, size, StatusCode::OK),
    };
    let body = if head { Body::empty() } else { Body::from_stream(blobs::open(app, digest, start, len).await?) };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert("docker-content-digest", hv(&digest.to_string()));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, hv(&format!("\"{digest}\"")));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(header::CONTENT_RANGE, hv(&format!("bytes {start}-{}/{size}", start + len - 1)));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(byte_range("bytes=0-9", 100), Some(Some((0, 9))));
        assert_eq!(byte_range("bytes=90-", 100), Some(Some((90, 99))));
        assert_eq!(byte_range("bytes=-10", 100), Some(Some((90, 99))));
        assert_eq!(byte_range("bytes=50-500", 100), Some(Some((50, 99))));
        assert_eq!(byte_range("bytes=100-", 100), Some(None));
        assert_eq!(byte_range("items=1-2", 100), None);
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 5-9/20"), Some((5, 9)));
        assert_eq!(parse_content_range("9-5"), None);
    }
}
