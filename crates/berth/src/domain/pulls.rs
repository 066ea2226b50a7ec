//! Pull accounting: each manifest GET moves the artifact's and the tag's `pull_time`, adds one
//! to the repository's `pull_count`, and is written to the audit log as a "pull".
//!
//! The pull path never writes to the database: pulls gather in memory and one transaction a
//! second writes them all (sooner when many are waiting, and once more on shutdown), so the
//! counts are exact after a clean shutdown and a crash loses at most the last second.

use crate::app::App;
use crate::error::Result;
use crate::meta::{Audit, ManifestRow};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// Pulls waiting to be written.
#[derive(Debug, Default)]
pub struct PendingPulls {
    /// manifest id → latest pull time.
    pub manifests: HashMap<i64, i64>,
    /// tag id → latest pull time.
    pub tags: HashMap<i64, i64>,
    /// repository id → pulls.
    pub repositories: HashMap<i64, i64>,
    /// One audit record per pull, with its time.
    pub audits: Vec<(i64, Audit)>,
}

impl PendingPulls {
    pub fn is_empty(&self) -> bool {
        self.repositories.is_empty()
    }
}

/// Pulls seen by this node and not yet written.
#[derive(Default)]
pub struct Pulls {
    pending: Mutex<PendingPulls>,
    wake: Notify,
}

/// More waiting pulls than this are written at once rather than at the next tick.
const EARLY_FLUSH: usize = 10_000;
/// How often waiting pulls are written.
const INTERVAL: Duration = Duration::from_secs(1);

impl Pulls {
    /// Records one pull of `m` (read by `resource`, e.g. `proj/app:v1`) in project `project_id`.
    pub fn record(&self, m: &ManifestRow, project_id: i64, resource: String, audit: Audit) {
        let now = crate::meta::now_ms();
        let audit = Audit { project_id: Some(project_id), resource, resource_type: "artifact", operation: "pull", ..audit };
        let waiting = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.manifests.insert(m.id, now);
            if let Some(t) = m.tag_id {
                p.tags.insert(t, now);
            }
            *p.repositories.entry(m.repository_id).or_default() += 1;
            p.audits.push((now, audit));
            p.audits.len()
        };
        if waiting >= EARLY_FLUSH {
            self.wake.notify_one();
        }
    }

    fn take(&self) -> PendingPulls {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Puts back a batch that could not be written, merging it with pulls seen since.
    fn restore(&self, batch: PendingPulls) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (id, t) in batch.manifests {
            let e = p.manifests.entry(id).or_default();
            *e = (*e).max(t);
        }
        for (id, t) in batch.tags {
            let e = p.tags.entry(id).or_default();
            *e = (*e).max(t);
        }
        for (id, n) in batch.repositories {
            *p.repositories.entry(id).or_default() += n;
        }
        let mut audits = batch.audits;
        audits.append(&mut p.audits);
        p.audits = audits;
    }
}

/// Writes the pulls waiting now.
pub async fn flush(app: &App) -> Result<()> {
    let batch = app.pulls.take();
    if batch.is_empty() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    match app.meta.record_pulls(&batch).await {
        Ok(()) => {
            crate::metrics::pull_accounting(batch.audits.len() as u64, started.elapsed());
            Ok(())
        }
        Err(e) => {
            app.pulls.restore(batch);
            Err(e)
        }
    }
}

/// Writes waiting pulls every second, or sooner when many wait, until `stop` turns true.
/// A write in progress always finishes (it is never cancelled half-way, which would lose the
/// batch it took); the caller writes what is left after this returns.
pub async fn flush_forever(app: std::sync::Arc<App>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = app.pulls.wake.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = flush(&app).await {
            tracing::warn!(error = %e, "writing pull counts failed; retrying at the next tick");
        }
    }
}
