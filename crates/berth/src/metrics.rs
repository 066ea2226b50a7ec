//! Prometheus metrics: request counts and latencies per route, storage used, and pushes and
//! pulls per project. Rendered by `GET /metrics` (`http::metrics`) in the Prometheus text
//! exposition format (0.0.4).
//!
//! The metrics live in one process-wide registry (`pull` and `push` are called from the
//! registry path without any handle). Recording is cheap and never waits on anything slow:
//! - a request is counted under labels built from `&'static str`s, a `u16` and axum's
//!   `MatchedPath` (a shared string, cloned by reference count), so nothing is allocated;
//!   each series is found under a read lock held only for the lookup and increment;
//! - per-project counters are two atomics in a map keyed by the project name, looked up
//!   by `&str` under a read lock (the name is copied once, when its project is first seen).
//!
//! No lock is ever held across an `.await`. Cardinality is bounded: routes are templates
//! (`/v2` requests are grouped by operation, never by repository), statuses are the few a
//! route answers, and there is one series per project.

use axum::extract::MatchedPath;
use axum::http::Method as HttpMethod;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, RwLock};
use std::time::Duration;

/// The `Content-Type` of `GET /metrics`.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Counts one manifest pull in `project`.
pub fn pull(project: &str) {
    METRICS.projects.add(project, PULLS);
}

/// Counts one manifest push in `project`.
pub fn push(project: &str) {
    METRICS.projects.add(project, PUSHES);
}

/// Counts one write of batched pull accounting: `pulls` pulls written in `elapsed`.
pub fn pull_accounting(pulls: u64, elapsed: Duration) {
    METRICS.accounting_writes.inc();
    METRICS.accounting_pulls.inc_by(pulls);
    METRICS.accounting_seconds.inc_by(elapsed.as_secs_f64());
}

/// Counts one group commit of verified blobs: `blobs` of them in one transaction.
pub fn blob_commit(blobs: u64) {
    METRICS.blob_commit_writes.inc();
    METRICS.blob_commit_blobs.inc_by(blobs);
}

/// Counts blob bytes sent from their file with `sendfile` (`http::zerocopy`).
pub fn sendfile(bytes: u64) {
    METRICS.sendfile_bytes.inc_by(bytes);
}

/// Counts one answered request and its latency (until the response head was ready).
pub fn observe(method: Method, route: Route, status: u16, elapsed: Duration) {
    let labels = RequestLabels { method, route, status };
    METRICS.requests.get_or_create(&labels).inc();
    let labels = LatencyLabels { method, route: labels.route };
    METRICS.latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
}

/// The whole text exposition, with `storage_used` bytes as the storage gauge.
pub fn render(storage_used: i64) -> String {
    let mut out = String::with_capacity(16 << 10);
    // Writing to a String cannot fail. The storage gauge is the caller's measurement, so it
    // is encoded from a registry of this scrape's own (two concurrent scrapes cannot mix).
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &METRICS.registry);
    let mut scrape = Registry::default();
    let storage = Gauge::<i64>::default();
    storage.set(storage_used);
    scrape.register_with_unit("berth_storage_used", "Bytes of the verified blobs in the blob store", Unit::Bytes, storage);
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &scrape);
    out
}

/// The label of a route: a template named in code, or the template axum matched.
#[derive(Clone, Debug)]
pub enum Route {
    Static(&'static str),
    Matched(MatchedPath),
}

impl Route {
    pub fn as_str(&self) -> &str {
        match self {
            Route::Static(s) => s,
            Route::Matched(m) => m.as_str(),
        }
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Route) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for Route {}
impl Hash for Route {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}
impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// Request methods, the standard ones by name and any other as `OTHER`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    pub fn of(m: &HttpMethod) -> Method {
        match *m {
            HttpMethod::GET => Method::Get,
            HttpMethod::HEAD => Method::Head,
            HttpMethod::POST => Method::Post,
            HttpMethod::PUT => Method::Put,
            HttpMethod::PATCH => Method::Patch,
            HttpMethod::DELETE => Method::Delete,
            HttpMethod::OPTIONS => Method::Options,
            _ => Method::Other,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
        }
    }
}

impl EncodeLabelValue for Method {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: Method,
    route: Route,
    status: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LatencyLabels {
    method: Method,
    route: Route,
}

const PUSHES: usize = 0;
const PULLS: usize = 1;

/// Pushes and pulls per project name.
#[derive(Debug, Default)]
struct ProjectCounters {
    map: RwLock<HashMap<Box<str>, [AtomicU64; 2]>>,
}

impl ProjectCounters {
    fn add(&self, project: &str, which: usize) {
        {
            let map = self.map.read().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = map.get(project) {
                c[which].fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.entry(project.into()).or_default()[which].fetch_add(1, Ordering::Relaxed);
    }

    /// (project, pushes, pulls), by project name.
    fn snapshot(&self) -> Vec<(String, u64, u64)> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<(String, u64, u64)> =
            map.iter().map(|(k, c)| (k.to_string(), c[PUSHES].load(Ordering::Relaxed), c[PULLS].load(Ordering::Relaxed))).collect();
        drop(map);
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        rows
    }
}

/// Encodes the per-project counters at scrape time.
#[derive(Debug)]
struct ProjectCollector;

impl Collector for ProjectCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rows = METRICS.projects.snapshot();
        for (name, help, pushes) in [
            ("berth_project_pushes", "Manifests pushed into each project", true),
            ("berth_project_pulls", "Manifests pulled (GET) from each project", false),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (project, push, pull) in &rows {
                let labels = [("project", project.as_str())];
                let counter = ConstCounter::new(if pushes { *push } else { *pull });
                counter.encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

type HistogramMaker = fn() -> Histogram;

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram, HistogramMaker>,
    projects: ProjectCounters,
    accounting_writes: Counter,
    accounting_pulls: Counter,
    accounting_seconds: Counter<f64, AtomicU64>,
    blob_commit_writes: Counter,
    blob_commit_blobs: Counter,
    sendfile_bytes: Counter,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to 16 s, doubling.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::default();
    let requests = Family::<RequestLabels, Counter>::default();
    registry.register("berth_http_requests", "HTTP requests answered, by method, route template and status", requests.clone());
    let latency = Family::<LatencyLabels, Histogram, HistogramMaker>::new_with_constructor(latency_histogram as HistogramMaker);
    registry.register_with_unit(
        "berth_http_request_duration",
        "Time until the response head was ready, by method and route template",
        Unit::Seconds,
        latency.clone(),
    );
    registry.register_collector(Box::new(ProjectCollector));
    let accounting_writes = Counter::default();
    registry.register("berth_pull_accounting_writes", "Transactions that wrote batched pull accounting", accounting_writes.clone());
    let accounting_pulls = Counter::default();
    registry.register("berth_pull_accounting_pulls", "Pulls written by batched pull accounting", accounting_pulls.clone());
    let accounting_seconds = Counter::<f64, AtomicU64>::default();
    registry.register_with_unit(
        "berth_pull_accounting_write_duration",
        "Time spent writing batched pull accounting (wall clock, from taking the batch to commit)",
        Unit::Seconds,
        accounting_seconds.clone(),
    );
    let blob_commit_writes = Counter::default();
    registry.register("berth_blob_commit_writes", "Transactions that recorded verified blobs (group commit)", blob_commit_writes.clone());
    let blob_commit_blobs = Counter::default();
    registry.register("berth_blob_commit_blobs", "Verified blobs recorded by group commit", blob_commit_blobs.clone());
    let sendfile_bytes = Counter::default();
    registry.register_with_unit(
        "berth_blob_sendfile",
        "Blob bytes sent to clients straight from their file (sendfile), not copied through the server",
        Unit::Bytes,
        sendfile_bytes.clone(),
    );
    Metrics {
        registry,
        requests,
        latency,
        projects: ProjectCounters::default(),
        accounting_writes,
        accounting_pulls,
        accounting_seconds,
        blob_commit_writes,
        blob_commit_blobs,
        sendfile_bytes,
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_latency_storage_and_projects() {
        observe(Method::Get, Route::Static("/v2/{name}/manifests/{reference}"), 200, Duration::from_millis(3));
        observe(Method::Get, Route::Static("/v2/{name}/manifests/{reference}"), 200, Duration::from_millis(1));
        push("unit-metrics");
        pull("unit-metrics");
        pull("unit-metrics");
        let text = render(1234);
        assert!(
            text.contains(r#"berth_http_requests_total{method="GET",route="/v2/{name}/manifests/{reference}",status="200"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"berth_http_request_duration_seconds_count{method="GET",route="/v2/{name}/manifests/{reference}"} 2"#));
        assert!(text.contains("berth_storage_used_bytes 1234"));
        assert!(text.contains(r#"berth_project_pushes_total{project="unit-metrics"} 1"#));
        assert!(text.contains(r#"berth_project_pulls_total{project="unit-metrics"} 2"#));
        assert!(text.contains("# TYPE berth_project_pulls_total counter"), "{text}");
    }
}
