//! Blob reads, cross-repository mounts and blob deletion.

use crate::app::App;
use crate::blob::BlobStream;
use crate::error::{Error, Result};
use oci::{Digest, ErrorCode, RepoName};

/// A blob's size, if the repository may serve it.
pub async fn stat(app: &App, repo: &RepoName, digest: &Digest) -> Result<u64> {
    match app.meta.repo_blob(repo.as_str(), &digest.to_string()).await? {
        Some(size) => Ok(size as u64),
        None => Err(Error::oci(ErrorCode::BlobUnknown, format!("blob {digest} is not known to repository {repo}"))),
    }
}

/// Streams bytes `start..start+len` of a blob.
pub async fn open(app: &App, digest: &Digest, start: u64, len: u64) -> Result<BlobStream> {
    app.blobs.read(digest, start, len).await
}

/// Links a blob of `from` into `repo`. False if `from` does not hold it.
pub async fn mount(app: &App, repo: &RepoName, from: &RepoName, digest: &Digest) -> Result<bool> {
    if app.meta.repo_blob(from.as_str(), &digest.to_string()).await?.is_none() {
        return Ok(false);
    }
    app.meta.link_blob(repo.as_str(), &digest.to_string()).await
}

/// Removes a blob from a repository; its bytes go when nothing references them.
pub async fn delete(app: &App, repo: &RepoName, digest: &Digest) -> Result<()> {
    if app.meta.unlink_blob(repo.as_str(), &digest.to_string()).await? {
        Ok(())
    } else {
        Err(Error::oci(ErrorCode::BlobUnknown, format!("blob {digest} is not known to repository {repo}")))
    }
}
