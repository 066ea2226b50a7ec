//! The request metrics layer and `GET /metrics`.
//!
//! `MetricsLayer` wraps every route: it notes the method and the route template when a
//! request arrives and, when the response head is ready, counts it with its status and
//! latency (`crate::metrics::observe`). `/v2` requests are labelled by operation
//! (`/v2/{name}/manifests/{reference}`, ...) from the shape of the path, never by repository.
//! The future it returns is the inner one plus an `Instant`: nothing is boxed or allocated.
//!
//! `GET /metrics` answers a caller that sends `Authorization: Bearer <metrics_token>` (when
//! that option is set) or a system admin's credentials; anyone else gets 401 (403 for a
//! signed-in non-admin), because the exposition names every project, private ones included.

use super::api::{ApiError, ApiResult, caller};
use crate::app::AppState;
use crate::metrics::{self, Route};
use axum::extract::{MatchedPath, State};
use axum::http::{HeaderMap, HeaderValue, Request, Response, header};
use axum::response::IntoResponse;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;
use subtle::ConstantTimeEq;

/// Records every request it wraps.
#[derive(Clone, Copy, Debug, Default)]
pub struct MetricsLayer;

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;
    fn layer(&self, inner: S) -> MetricsService<S> {
        MetricsService { inner }
    }
}

#[derive(Clone, Debug)]
pub struct MetricsService<S> {
    inner: S,
}

impl<S, B, R> tower::Service<Request<B>> for MetricsService<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let labels = Some((metrics::Method::of(req.method()), route_of(&req)));
        ResponseFuture { inner: self.inner.call(req), start: Instant::now(), labels }
    }
}

pin_project_lite::pin_project! {
    /// The inner response future, timed.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        start: Instant,
        labels: Option<(metrics::Method, Route)>,
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let out = ready!(this.inner.poll(cx));
        if let (Ok(resp), Some((method, route))) = (&out, this.labels.take()) {
            metrics::observe(method, route, resp.status().as_u16(), this.start.elapsed());
        }
        Poll::Ready(out)
    }
}

/// The route label of a request: its `/v2` operation, the template axum matched, or `unmatched`.
fn route_of<B>(req: &Request<B>) -> Route {
    let path = req.uri().path();
    if path == "/v2" || path.starts_with("/v2/") {
        return Route::Static(v2_operation(path));
    }
    match req.extensions().get::<MatchedPath>() {
        // A nested router's fallback matches a private catch-all template: one label for all of them.
        Some(m) if m.as_str().contains("__private__") => Route::Static("unmatched"),
        Some(m) => Route::Matched(m.clone()),
        None => Route::Static("unmatched"),
    }
}

/// The Distribution API operation a `/v2` path addresses, as its path template.
fn v2_operation(path: &str) -> &'static str {
    let rest = path.strip_prefix("/v2").unwrap_or(path).trim_start_matches('/');
    if rest.is_empty() {
        return "/v2/";
    }
    if rest == "_catalog" {
        return "/v2/_catalog";
    }
    let mut back = rest.strip_suffix('/').unwrap_or(rest).rsplit('/');
    let (last, second, third) = (back.next().unwrap_or(""), back.next().unwrap_or(""), back.next().unwrap_or(""));
    match (third, second, last) {
        (_, "tags", "list") => "/v2/{name}/tags/list",
        (_, "blobs", "uploads") => "/v2/{name}/blobs/uploads/",
        ("blobs", "uploads", _) => "/v2/{name}/blobs/uploads/{session_id}",
        (_, "manifests", _) => "/v2/{name}/manifests/{reference}",
        (_, "blobs", _) => "/v2/{name}/blobs/{digest}",
        (_, "referrers", _) => "/v2/{name}/referrers/{digest}",
        _ => "/v2/{unknown}",
    }
}

/// `GET /metrics`.
pub async fn serve(
    State(app): State<AppState>,
    super::ClientAddr(peer): super::ClientAddr,
    headers: HeaderMap,
) -> ApiResult<axum::response::Response> {
    authorize(&app, &headers, peer).await?;
    let used = app.meta.storage_used().await?;
    let mut r = metrics::render(used).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(metrics::CONTENT_TYPE));
    Ok(r)
}

async fn authorize(app: &crate::app::App, headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> ApiResult<()> {
    if let Some(expected) = app.config.metrics_token.as_deref().filter(|t| !t.is_empty()) {
        let sent = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
        if let Some(token) = sent {
            return if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) { Ok(()) } else { Err(ApiError::unauthorized()) };
        }
    }
    let principal = caller(app, headers, peer).await?;
    if principal.is_sysadmin() {
        Ok(())
    } else if matches!(principal, crate::auth::policy::Principal::Anonymous) {
        Err(ApiError::unauthorized())
    } else {
        Err(ApiError::forbidden())
    }
}

#[cfg(test)]
mod tests {
    use super::v2_operation;

    #[test]
    fn v2_paths_are_grouped_by_operation() {
        assert_eq!(v2_operation("/v2/"), "/v2/");
        assert_eq!(v2_operation("/v2"), "/v2/");
        assert_eq!(v2_operation("/v2/_catalog"), "/v2/_catalog");
        assert_eq!(v2_operation("/v2/a/b/tags/list"), "/v2/{name}/tags/list");
        assert_eq!(v2_operation("/v2/lib/app/manifests/latest"), "/v2/{name}/manifests/{reference}");
        assert_eq!(v2_operation("/v2/lib/manifests/manifests/v1"), "/v2/{name}/manifests/{reference}");
        assert_eq!(v2_operation("/v2/lib/app/blobs/sha256:ab"), "/v2/{name}/blobs/{digest}");
        assert_eq!(v2_operation("/v2/lib/app/blobs/uploads/"), "/v2/{name}/blobs/uploads/");
        assert_eq!(v2_operation("/v2/lib/app/blobs/uploads/0f3c"), "/v2/{name}/blobs/uploads/{session_id}");
        assert_eq!(v2_operation("/v2/lib/app/referrers/sha256:ab"), "/v2/{name}/referrers/{digest}");
        assert_eq!(v2_operation("/v2/lib/app/whatever"), "/v2/{unknown}");
    }
}
