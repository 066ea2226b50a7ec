//! Recording verified blobs, with group commit.
//!
//! Every blob upload ends with the same small write: the blob row, its link to the
//! repository, the end of its upload session. Concurrent pushes (a CI fleet, one image's
//! layers) finish many at once, so they are written together: one task takes every commit
//! waiting and writes them in one transaction, a statement per table whatever their number,
//! and each request returns once the transaction that holds its blob has committed. On
//! SQLite, whose single writer is what concurrent pushes queue for, this turns a transaction
//! per blob into one per batch.

use super::sql::{Batch, Value, numbered_rows, run_batch};
use super::{Meta, Pools, now_ms, on_write};
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The most blob commits written in one transaction.
const MAX_BATCH: usize = 256;

/// A verified blob to record: linked to `repository`, ending upload `upload_id` if it had a row.
struct Commit {
    repository: String,
    digest: String,
    size: i64,
    upload_id: Option<String>,
    done: oneshot::Sender<std::result::Result<(), String>>,
}

/// The sending side, kept by every `Meta` clone; the writer task ends when the last goes.
#[derive(Clone)]
pub(super) struct BlobCommits(mpsc::Sender<Commit>);

/// What the writer task needs of `Meta`: the pools, not the sender (which would keep it alive).
struct Writer {
    pools: Arc<Pools>,
}

impl BlobCommits {
    /// Starts the writer task on the current runtime.
    pub(super) fn start(pools: Arc<Pools>) -> BlobCommits {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_forever(Writer { pools }, rx));
        BlobCommits(tx)
    }
}

async fn write_forever(w: Writer, mut rx: mpsc::Receiver<Commit>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let result = w.write(&batch).await.map_err(|e| e.to_string());
        if result.is_ok() {
            crate::metrics::blob_commit(batch.len() as u64);
        }
        for c in batch.drain(..) {
            // A request that went away still has its blob recorded; nobody to tell.
            let _ = c.done.send(result.clone());
        }
    }
}

impl Writer {
    /// Writes `commits` in one transaction: their blob rows, their repository links and the
    /// removal of their upload rows, one statement each (one trip on SQLite).
    async fn write(&self, commits: &[Commit]) -> Result<()> {
        let now = now_ms();
        let mut blobs = Vec::new();
        let mut seen = HashSet::new();
        for c in commits.iter().filter(|c| seen.insert(c.digest.as_str())) {
            blobs.extend([Value::Text(c.digest.clone()), Value::Int(c.size), Value::Int(now)]);
        }
        let mut links = Vec::new();
        let mut seen = HashSet::new();
        for c in commits.iter().filter(|c| seen.insert((c.repository.as_str(), c.digest.as_str()))) {
            links.extend([Value::Text(c.repository.clone()), Value::Text(c.digest.clone()), Value::Int(now)]);
        }
        let ended: Vec<Value> = commits.iter().filter_map(|c| c.upload_id.clone().map(Value::Text)).collect();
        // Texts that vary with the batch's size are not kept prepared.
        let mut batch = Batch::default();
        batch.persistent = commits.len() == 1;
        batch.push(
            format!(
                "INSERT INTO blobs (digest, size, creation_time) VALUES {} ON CONFLICT (digest) DO NOTHING",
                numbered_rows(blobs.len() / 3, 3)
            ),
            blobs,
        );
        batch.push(
            format!(
                "INSERT INTO repository_blobs (repository, digest, creation_time) VALUES {} ON CONFLICT (repository, digest) DO NOTHING",
                numbered_rows(links.len() / 3, 3)
            ),
            links,
        );
        if !ended.is_empty() {
            batch.push(format!("DELETE FROM uploads WHERE id IN ({})", numbered_rows(1, ended.len()).trim_matches(['(', ')'])), ended);
        }
        let sqlite = self.pools.is_sqlite();
        on_write!(self, |p| async {
            let mut tx = p.begin().await?;
            run_batch!(tx, &batch, sqlite);
            tx.commit().await?;
            Ok::<(), Error>(())
        }
        .await)
    }
}

impl Meta {
    /// Records a verified blob, links it to `repository` and ends the upload, committed (with
    /// whatever other blobs are being recorded at the same moment) before it returns.
    pub async fn commit_blob(&self, repository: &str, digest: &str, size: i64, upload_id: Option<&str>) -> Result<()> {
        let (done, result) = oneshot::channel();
        let c =
            Commit { repository: repository.to_string(), digest: digest.to_string(), size, upload_id: upload_id.map(str::to_string), done };
        self.blob_commits.0.send(c).await.map_err(|_| Error::Internal("the blob commit writer has stopped".into()))?;
        match result.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Internal(format!("recording blob {digest}: {e}"))),
            Err(_) => Err(Error::Internal("the blob commit writer has stopped".into())),
        }
    }
}
