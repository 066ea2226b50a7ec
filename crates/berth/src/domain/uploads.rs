//! Blob upload sessions: start, append chunks, finish with digest verification,
//! cancel, and the sweeper that expires abandoned sessions.
//!
//! Bytes are written aside (`uploads/<id>`) and become a blob only after their
//! digest is verified; the blob row and the repository link are committed after
//! the bytes are in place. A running sha256 per session is kept in this node's
//! memory; when it is missing (another node took the earlier chunks, or a
//! restart) the upload is hashed again from storage at the end.
//!
//! Sessions in progress are bounded per account and per client address, in number and in
//! bytes (`upload_max_sessions`, `upload_max_bytes`), counted from the database so the bounds
//! hold across nodes. A session counts from its first stored chunk until it is finished,
//! cancelled or expired; an upload in one request (POST with a digest, or POST then PUT)
//! keeps nothing between requests and is bounded by its request.

use crate::app::App;
use crate::blob::AppendError;
use crate::error::{Error, Result};
use crate::meta::{UploadRow, now_ms};
use bytes::Bytes;
use futures_util::Stream;
use oci::{Algorithm, Digest, ErrorCode, Hasher, RepoName};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Running hashes of sessions in progress: upload id → (bytes hashed, hasher).
#[derive(Default)]
pub struct Hashers(Mutex<HashMap<String, (u64, Hasher)>>);

impl Hashers {
    fn take(&self, id: &str, at: u64) -> Option<Hasher> {
        let mut m = self.0.lock().expect("hashers lock");
        match m.remove(id) {
            Some((n, h)) if n == at => Some(h),
            _ => None,
        }
    }
    fn put(&self, id: &str, at: u64, h: Hasher) {
        self.0.lock().expect("hashers lock").insert(id.to_string(), (at, h));
    }
    fn forget(&self, id: &str) {
        self.0.lock().expect("hashers lock").remove(id);
    }
}

/// Derives the key that signs upload ids from the registry's shared signing key, so every
/// node accepts ids any node issued.
pub fn derive_key(signing_key: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(b"berth upload ids\0");
    h.update(signing_key);
    h.finalize().into()
}

/// Hex characters of an upload id: 32 random, 12 of the start time (Unix seconds), 16 of MAC.
const ID_LEN: usize = 60;

fn mac(key: &[u8; 32], repo: &str, random_and_time: &str) -> String {
    use hmac::Mac as _;
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    m.update(repo.as_bytes());
    m.update(b"\0");
    m.update(random_and_time.as_bytes());
    hex::encode(&m.finalize().into_bytes()[..8])
}

/// A new upload id for `repo`: random, with its start time, signed for that repository. A
/// session keeps no row until its first chunk, so starting an upload writes nothing.
fn new_id(app: &App, repo: &str) -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(Error::internal)?;
    let head = format!("{}{:012x}", hex::encode(b), now_ms() / 1000);
    let tag = mac(&app.upload_key, repo, &head);
    Ok(format!("{head}{tag}"))
}

/// The start time (ms) of an id this registry issued for `repo`; None for anything else.
fn issued(app: &App, repo: &str, id: &str) -> Option<i64> {
    if id.len() != ID_LEN || !id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let (head, tag) = id.split_at(ID_LEN - 16);
    let want = mac(&app.upload_key, repo, head);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(want.as_bytes(), tag.as_bytes())) {
        return None;
    }
    i64::from_str_radix(&head[32..], 16).ok().map(|s| s * 1000)
}

fn unknown(id: &str) -> Error {
    Error::oci(ErrorCode::BlobUploadUnknown, format!("upload {id} is not known"))
}

/// Starts an upload session in `repo`; returns its id.
pub async fn start(app: &App, repo: &RepoName) -> Result<String> {
    new_id(app, repo.as_str())
}

/// The session, if it belongs to `repo`: its row once a chunk was stored, else a fresh
/// session of 0 bytes when the id was issued for `repo` and has not expired.
pub async fn get(app: &App, repo: &RepoName, id: &str) -> Result<UploadRow> {
    // Ids are generated, never user paths: refuse anything else before touching storage.
    if !(id.len() == ID_LEN || id.len() == 36) || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(unknown(id));
    }
    match app.meta.upload(id).await? {
        Some(u) if u.repository == repo.as_str() && u.size >= 0 => Ok(u),
        Some(_) => Err(unknown(id)),
        None => {
            let started = issued(app, repo.as_str(), id).ok_or_else(|| unknown(id))?;
            if now_ms() - started > app.config.upload_expiry as i64 * 1000 {
                return Err(unknown(id));
            }
            Ok(UploadRow { id: id.to_string(), repository: repo.to_string(), size: 0, started_at: started, updated_at: started })
        }
    }
}

/// Who stores a chunk: the account and the client address the session is counted against.
pub struct Holder<'a> {
    pub account: &'a str,
    pub client: &'a str,
}

/// Refuses a chunk of `length` bytes (None: not declared) for session `u` when its holder
/// would go past the bounds on sessions in progress; else the bytes the session may still add.
async fn within_bounds(app: &App, u: &UploadRow, holder: &Holder<'_>, length: Option<u64>) -> Result<u64> {
    let (max_sessions, max_bytes) = (app.config.upload_max_sessions, app.config.upload_max_bytes);
    if max_sessions == 0 && max_bytes == 0 {
        return Ok(u64::MAX);
    }
    let (by_account, by_client) = app.meta.uploads_held(holder.account, holder.client, &u.id).await?;
    let mut allowance = u64::MAX;
    let mut holders = vec![(format!("account {}", holder.account), by_account)];
    if !holder.client.is_empty() {
        holders.push((format!("client address {}", holder.client), by_client));
    }
    for (who, (sessions, bytes)) in holders {
        if max_sessions > 0 && sessions as u64 >= max_sessions {
            return Err(Error::Forbidden(format!(
                "{who} has {sessions} uploads in progress, the most this registry allows; finish or cancel one, or wait for them to expire"
            )));
        }
        if max_bytes > 0 {
            let held = bytes as u64 + u.size as u64;
            let left = max_bytes.saturating_sub(held);
            if let Some(n) = length.filter(|n| *n > left) {
                return Err(Error::Forbidden(format!(
                    "{who} holds {held} bytes in uploads in progress; a chunk of {n} more would pass the {max_bytes} bytes this registry allows"
                )));
            }
            allowance = allowance.min(left);
        }
    }
    Ok(allowance)
}

/// Appends a request body to session `u`. A body that ends the upload (`keep` None)
/// does not advance the session row, which the commit deletes anyway, and
/// hands back the running hash instead of keeping it; otherwise the row records `keep` as
/// the session's holder.
async fn append_body<S, E>(
    app: &App,
    u: &UploadRow,
    length: Option<u64>,
    body: S,
    keep: Option<&Holder<'_>>,
) -> Result<(u64, Option<Hasher>)>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let at = u.size as u64;
    let mut hasher = app.hashers.take(&u.id, at).or_else(|| (at == 0).then(|| Hasher::new(Algorithm::Sha256)));
    match app.blobs.append(&u.id, at, length, body, hasher.as_mut()).await {
        Ok(n) => {
            let Some(holder) = keep else {
                return Ok((at + n, hasher));
            };
            if n > 0
                && !app
                    .meta
                    .advance_upload(&u.id, &u.repository, u.started_at, u.size, u.size + n as i64, (holder.account, holder.client))
                    .await?
            {
                return Err(Error::oci(ErrorCode::BlobUploadInvalid, "upload was changed by another request"));
            }
            if let Some(h) = hasher {
                app.hashers.put(&u.id, at + n, h);
            }
            Ok((at + n, None))
        }
        Err(AppendError::Body(msg)) => {
            // The stored bytes now run past the recorded size: the session cannot go on.
            cancel_row(app, u).await?;
            Err(Error::oci(ErrorCode::BlobUploadInvalid, format!("upload body broke off: {msg}")))
        }
        Err(AppendError::Store(e)) => Err(e),
    }
}

/// Appends a chunk for `holder`. `range` is the Content-Range the client sent, if any. A chunk
/// that would take its holder past the bounds on uploads in progress is refused; one of
/// undeclared length found to pass them once stored ends the session.
pub async fn patch<S, E>(
    app: &App,
    repo: &RepoName,
    id: &str,
    range: Option<(u64, u64)>,
    length: Option<u64>,
    body: S,
    holder: &Holder<'_>,
) -> Result<u64>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let u = get(app, repo, id).await?;
    if let Some((start, _)) = range
        && start != u.size as u64
    {
        return Err(Error::RangeInvalid { size: u.size as u64 });
    }
    let allowance = within_bounds(app, &u, holder, length).await?;
    let size = append_body(app, &u, length, body, Some(holder)).await?.0;
    if size - u.size as u64 > allowance {
        cancel_row(app, &u).await?;
        return Err(Error::Forbidden(format!(
            "upload {id} was cancelled: its chunk took account {} or client address {} past the {} bytes of uploads in progress this registry allows",
            holder.account, holder.client, app.config.upload_max_bytes
        )));
    }
    Ok(size)
}

/// Checks the bytes of upload `id` (`size` of them, `hasher` fed with all of them
/// if present) against `digest`, and makes them the blob.
async fn verify_and_commit(
    app: &App,
    repo: &RepoName,
    id: &str,
    digest: &Digest,
    size: u64,
    hasher: Option<Hasher>,
    has_row: bool,
) -> Result<()> {
    let computed = match (digest.algorithm(), hasher) {
        (Algorithm::Sha256, Some(h)) => h.finish(),
        _ => app.blobs.hash_upload(id, digest.algorithm(), size).await?.0,
    };
    if &computed != digest {
        if has_row {
            let u = get(app, repo, id).await?;
            cancel_row(app, &u).await?;
        } else {
            app.blobs.discard_upload(id).await?;
        }
        return Err(Error::oci(ErrorCode::DigestInvalid, format!("content digest is {computed}, not {digest}")));
    }
    app.blobs.promote(id, digest).await?;
    app.meta.commit_blob(repo.as_str(), &digest.to_string(), size as i64, has_row.then_some(id)).await?;
    Ok(())
}

/// Appends the last bytes (if any), verifies the digest and commits the blob.
pub async fn finish<S, E>(app: &App, repo: &RepoName, id: &str, digest: &Digest, length: Option<u64>, body: S) -> Result<u64>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let u = get(app, repo, id).await?;
    let (size, hasher) = append_body(app, &u, length, body, None).await?;
    verify_and_commit(app, repo, id, digest, size, hasher, true).await?;
    Ok(size)
}

/// Uploads a whole blob in one request (POST with `digest`). No session row is
/// needed: if the process dies midway, the sweeper removes the orphaned bytes.
pub async fn monolithic<S, E>(app: &App, repo: &RepoName, digest: &Digest, length: Option<u64>, body: S) -> Result<u64>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let id = new_id(app, repo.as_str())?;
    let mut hasher = Hasher::new(Algorithm::Sha256);
    let size = match app.blobs.append(&id, 0, length, body, Some(&mut hasher)).await {
        Ok(n) => n,
        Err(e) => {
            app.blobs.discard_upload(&id).await?;
            return Err(match e {
                AppendError::Body(msg) => Error::oci(ErrorCode::BlobUploadInvalid, format!("upload body broke off: {msg}")),
                AppendError::Store(e) => e,
            });
        }
    };
    verify_and_commit(app, repo, &id, digest, size, Some(hasher), false).await?;
    Ok(size)
}

/// Cancels a session and removes its bytes.
pub async fn cancel(app: &App, repo: &RepoName, id: &str) -> Result<()> {
    let u = get(app, repo, id).await?;
    cancel_row(app, &u).await
}

/// Ends a session for good: its bytes go, and a tombstone row keeps its id refused until the
/// sweeper removes it with the other expired sessions.
async fn cancel_row(app: &App, u: &UploadRow) -> Result<()> {
    app.hashers.forget(&u.id);
    app.blobs.discard_upload(&u.id).await?;
    app.meta.end_upload(&u.id, &u.repository, u.started_at).await?;
    Ok(())
}

/// Expires sessions untouched for longer than the configured lifetime, and
/// removes upload bytes that no session owns (left by a crash) once as old.
pub async fn sweep(app: &App) -> Result<usize> {
    let before = now_ms() - (app.config.upload_expiry as i64) * 1000;
    let mut n = 0;
    loop {
        let stale = app.meta.stale_uploads(before, 500).await?;
        if stale.is_empty() {
            break;
        }
        for u in &stale {
            app.hashers.forget(&u.id);
            app.blobs.discard_upload(&u.id).await?;
            app.meta.delete_upload(&u.id).await?;
            n += 1;
        }
    }
    let cutoff = std::time::SystemTime::now() - Duration::from_secs(app.config.upload_expiry);
    for id in app.blobs.upload_files_older_than(cutoff).await? {
        if app.meta.upload(&id).await?.is_none() {
            app.blobs.discard_upload(&id).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// Runs `sweep` periodically for the life of the process.
pub async fn sweep_forever(app: std::sync::Arc<App>) {
    let every = Duration::from_secs((app.config.upload_expiry / 4).clamp(1, 900));
    loop {
        tokio::time::sleep(every).await;
        match sweep(&app).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "expired abandoned upload sessions"),
            Err(e) => tracing::warn!("upload sweep failed: {e}"),
        }
        if let Err(e) = app.meta.optimize().await {
            tracing::warn!("refreshing planner statistics failed: {e}");
        }
    }
}
