//! Scenario registry and the shared plumbing: the run context, measuring a
//! bounded loop together with the server's CPU and peak RSS, and unmeasured
//! setup loops.

mod api;
mod blob;
mod image;
mod listing;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::client::Registry;
use crate::report::{Row, Unit};
use crate::server::Server;
use crate::stats::{Work, run_loop};

/// Scenario names, in the order they run by default.
pub const ALL: &[&str] =
    &["blob-push", "blob-pull", "image-push-16", "image-push-64", "manifest-get-64", "manifest-get-256", "tag-list", "catalog", "mix-128"];

/// Whether `name` is a scenario: one of ALL, or one run only when named (Harbor API lists).
pub fn known(name: &str) -> bool {
    ALL.contains(&name) || api::NAMES.contains(&name)
}

/// Every scenario name, for messages.
pub fn all_names() -> String {
    ALL.iter().chain(api::NAMES).copied().collect::<Vec<_>>().join(", ")
}

/// Limit on unmeasured setup loops.
pub const SETUP_LIMIT: Duration = Duration::from_secs(900);

pub struct Ctx {
    pub url: String,
    pub creds: Option<(String, String)>,
    pub server: Server,
    pub quick: bool,
    /// Differs on every run so pushed content is new each time.
    pub nonce: u64,
}

impl Ctx {
    /// A fresh client (own pool and token cache) sized for `conc` workers.
    pub async fn client(&self, conc: usize) -> Result<Arc<Registry>, String> {
        Registry::connect(&self.url, self.creds.clone(), conc).await
    }

    /// `full` normally, `quick` with --quick.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick { quick } else { full }
    }

    /// Run a bounded loop while accounting the server's resources.
    pub async fn measure<F, Fut>(&self, name: &str, unit: Unit, conc: usize, count: u64, limit: Duration, op: F) -> Row
    where
        F: Fn(u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Work, String>> + Send + 'static,
    {
        eprintln!("{name}: {count} operations at concurrency {conc} (at most {}s)", limit.as_secs());
        self.server.settle().await;
        let probe = self.server.begin();
        let out = run_loop(conc, count, limit, op).await;
        let usage = self.server.end(probe);
        let mut note = String::new();
        if out.ok + out.errors < count {
            note = format!("time limit reached after {} of {count}", out.ok + out.errors);
        }
        Row::measured(name, unit, out, usage).with_note(note)
    }
}

/// Unmeasured bounded loop; fails on the first error or if it did not finish.
pub async fn setup<F, Fut>(what: &str, conc: usize, count: u64, op: F) -> Result<(), String>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Work, String>> + Send + 'static,
{
    eprintln!("  setup: {what} ({count} operations at concurrency {conc})");
    let out = run_loop(conc, count, SETUP_LIMIT, op).await;
    if let Some(e) = out.first_error {
        return Err(format!("setup ({what}) failed: {} errors, first: {e}", out.errors));
    }
    if out.ok < count {
        return Err(format!("setup ({what}) timed out after {} of {count}", out.ok));
    }
    Ok(())
}

/// Run one scenario by name; its rows, or one failed row.
pub async fn run(name: &str, ctx: &Ctx) -> Vec<Row> {
    let res = match name {
        "blob-push" => blob::push(ctx).await,
        "blob-pull" => blob::pull(ctx).await,
        "image-push-16" => image::push(ctx, 16).await,
        "image-push-64" => image::push(ctx, 64).await,
        "manifest-get-64" => image::manifest_get(ctx, 64).await,
        "manifest-get-256" => image::manifest_get(ctx, 256).await,
        "tag-list" => listing::tag_list(ctx).await,
        "catalog" => listing::catalog(ctx).await,
        "mix-128" => image::mix(ctx, 128).await,
        "api-artifacts" => api::artifacts(ctx).await,
        "api-repositories" => api::repositories(ctx).await,
        other => Err(format!("unknown scenario {other}")),
    };
    res.unwrap_or_else(|e| {
        eprintln!("{name}: FAILED: {e}");
        vec![Row::failed(name, e)]
    })
}
