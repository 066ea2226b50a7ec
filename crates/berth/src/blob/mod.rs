//! Blob storage over an OpenDAL operator (filesystem now, S3 and others by config).
//!
//! ```text
//! <root>/
//! ├── blobs/
//! │   ├── sha256/<first two hex>/<hex>     verified content, immutable, named by digest
//! │   └── sha512/<first two hex>/<hex>
//! └── uploads/<id>                         bytes of an upload in progress, written aside
//! ```
//!
//! Invariants: a file under `blobs/` holds exactly the bytes its name digests (it is
//! put there only after verification, by rename or copy); nothing reads `uploads/`
//! except the upload that owns it. On the local filesystem, upload writes and
//! blob reads take the fast paths in `local`; everything else goes through OpenDAL.

mod local;
pub(crate) mod mapped;

use crate::config::Storage;
use crate::error::{Error, Result};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use oci::{Digest, Hasher};
use opendal::Operator;
use std::path::PathBuf;

/// Bytes buffered before each write to the backend.
const WRITE_BUFFER: usize = 1 << 20;
/// Size of each read from a local file.
const READ_CHUNK: usize = 256 << 10;

/// Content-addressed blob storage.
#[derive(Clone)]
pub struct BlobStore {
    op: Operator,
    /// Root directory when the backend is the local filesystem (enables the read fast path).
    local: Option<PathBuf>,
    can_append: bool,
    /// Upload blocks of the local fast path, reused across requests.
    pool: std::sync::Arc<local::BufPool>,
}

/// A readable blob body.
pub type BlobStream = std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

impl BlobStore {
    /// Opens the configured backend.
    pub fn open(storage: &Storage) -> Result<BlobStore> {
        match storage {
            Storage::Fs { root } => {
                std::fs::create_dir_all(root).map_err(|e| Error::Internal(format!("cannot create {}: {e}", root.display())))?;
                let root = root.canonicalize().map_err(Error::internal)?;
                let builder = opendal::services::Fs::default().root(&root.to_string_lossy());
                let op = Operator::new(builder)?;
                Ok(BlobStore::from_operator(op, Some(root)))
            }
            Storage::S3 { bucket, endpoint, region, access_key_id, secret_access_key } => {
                let mut b = opendal::services::S3::default().bucket(bucket).region(region);
                if let Some(e) = endpoint {
                    b = b.endpoint(e);
                }
                if let Some(k) = access_key_id {
                    b = b.access_key_id(k);
                }
                if let Some(s) = secret_access_key {
                    b = b.secret_access_key(s);
                }
                Ok(BlobStore::from_operator(Operator::new(b)?, None))
            }
        }
    }

    /// Wraps an operator (the memory backend serves unit tests).
    pub fn from_operator(op: Operator, local: Option<PathBuf>) -> BlobStore {
        let can_append = op.info().capability().write_can_append;
        BlobStore { op, local, can_append, pool: Default::default() }
    }

    fn blob_path(d: &Digest) -> String {
        format!("blobs/{}/{}/{}", d.algorithm().as_str(), &d.hex()[..2], d.hex())
    }

    fn upload_path(id: &str) -> String {
        format!("uploads/{id}")
    }

    /// Whether the backend can append to an upload (chunked uploads need it).
    pub fn can_append(&self) -> bool {
        self.can_append
    }

    /// Appends `body` (`length` bytes, if the request declared it) to upload `id`, feeding
    /// `hasher` when given; returns the bytes written.
    /// On a body error the bytes written so far stay in the upload file: the caller
    /// keeps the upload's recorded size, so they are overwritten or discarded later.
    pub async fn append<S, E>(
        &self,
        id: &str,
        offset: u64,
        length: Option<u64>,
        mut body: S,
        mut hasher: Option<&mut Hasher>,
    ) -> Result<u64, AppendError>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let path = Self::upload_path(id);
        if let Some(root) = &self.local {
            return local::append(&self.pool, root.join(&path), offset, length, body, hasher).await;
        }
        if offset > 0 && !self.can_append {
            return Err(AppendError::Store(Error::Internal("this storage backend cannot append to uploads".into())));
        }
        let mut writer = if offset == 0 { self.op.writer_with(&path).await } else { self.op.writer_with(&path).append(true).await }
            .map_err(|e| AppendError::Store(e.into()))?;
        let mut buf = BytesMut::with_capacity(WRITE_BUFFER);
        let mut written = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(AppendError::Body(e.to_string()));
                }
            };
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&chunk);
            }
            written += chunk.len() as u64;
            if buf.is_empty() && chunk.len() >= WRITE_BUFFER {
                writer.write(chunk).await.map_err(|e| AppendError::Store(e.into()))?;
                continue;
            }
            buf.extend_from_slice(&chunk);
            if buf.len() >= WRITE_BUFFER {
                writer.write(buf.split().freeze()).await.map_err(|e| AppendError::Store(e.into()))?;
            }
        }
        if !buf.is_empty() {
            writer.write(buf.freeze()).await.map_err(|e| AppendError::Store(e.into()))?;
        }
        writer.close().await.map_err(|e| AppendError::Store(e.into()))?;
        Ok(written)
    }

    /// Digest of the first `size` bytes of an upload, read back from storage.
    pub async fn hash_upload(&self, id: &str, algorithm: oci::Algorithm, size: u64) -> Result<(Digest, u64)> {
        let mut h = Hasher::new(algorithm);
        let mut n = 0u64;
        if size == 0 {
            return Ok((h.finish(), 0));
        }
        let mut s = self.op.reader_with(&Self::upload_path(id)).chunk(READ_CHUNK).await?.into_bytes_stream(..size).await?;
        while let Some(chunk) = s.next().await {
            let chunk = chunk.map_err(Error::internal)?;
            n += chunk.len() as u64;
            h.update(&chunk);
        }
        Ok((h.finish(), n))
    }

    /// Makes a verified upload the blob `digest` (idempotent: an existing blob is kept).
    pub async fn promote(&self, id: &str, digest: &Digest) -> Result<()> {
        let from = Self::upload_path(id);
        let to = Self::blob_path(digest);
        if let Some(root) = &self.local {
            return local::promote(root.join(&from), root.join(&to))
                .await
                .map_err(|e| Error::Internal(format!("storing blob {digest}: {e}")));
        }
        if self.op.exists(&to).await? {
            self.op.delete(&from).await?;
            return Ok(());
        }
        let cap = self.op.info().capability();
        if cap.rename {
            self.op.rename(&from, &to).await?;
            return Ok(());
        }
        if cap.copy {
            self.op.copy(&from, &to).await?;
        } else {
            // Backends without copy: stream the bytes across.
            let mut reader = self.op.reader_with(&from).chunk(READ_CHUNK).await?.into_bytes_stream(..).await?;
            let mut writer = self.op.writer(&to).await?;
            while let Some(chunk) = reader.next().await {
                writer.write(chunk.map_err(Error::internal)?).await?;
            }
            writer.close().await?;
        }
        self.op.delete(&from).await?;
        Ok(())
    }

    /// Removes an upload's bytes, if any.
    pub async fn discard_upload(&self, id: &str) -> Result<()> {
        Ok(self.op.delete(&Self::upload_path(id)).await?)
    }

    /// Whether the store answers: its root directory exists (a local store) and can be listed.
    pub async fn check(&self) -> Result<()> {
        if let Some(root) = &self.local {
            let meta = tokio::fs::metadata(root).await.map_err(|e| Error::Internal(format!("{}: {e}", root.display())))?;
            if !meta.is_dir() {
                return Err(Error::Internal(format!("{} is not a directory", root.display())));
            }
        }
        Ok(self.op.check().await?)
    }

    /// Whether the blob's bytes are present.
    pub async fn exists(&self, digest: &Digest) -> Result<bool> {
        Ok(self.op.exists(&Self::blob_path(digest)).await?)
    }

    /// Streams `len` bytes of blob `digest` from `start`.
    pub async fn read(&self, digest: &Digest, start: u64, len: u64) -> Result<BlobStream> {
        let path = Self::blob_path(digest);
        if let Some(root) = &self.local {
            return Ok(local::read(root.join(&path), start, len));
        }
        let s = self.op.reader_with(&path).chunk(READ_CHUNK).await?.into_bytes_stream(start..start + len).await?;
        Ok(Box::pin(s))
    }

    /// The whole of a small blob (configs, chart files), refusing anything larger than `max` bytes.
    pub async fn read_small(&self, digest: &Digest, max: u64) -> Result<Option<Vec<u8>>> {
        let path = Self::blob_path(digest);
        if let Some(root) = &self.local {
            return local::read_small(root.join(&path), max).await.map_err(|e| Error::Internal(format!("reading blob {digest}: {e}")));
        }
        let meta = match self.op.stat(&path).await {
            Ok(m) => m,
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let len = meta.content_length();
        if len > max {
            return Ok(None);
        }
        // A bounded range: an open-ended read makes the filesystem backend size (and pool) a
        // full read buffer per call, megabytes for a config of a few hundred bytes.
        Ok(Some(self.op.read_with(&path).range(0..len).await?.to_vec()))
    }

    /// Ids of upload files last written before `cutoff` (for reclaiming orphans).
    pub async fn upload_files_older_than(&self, cutoff: std::time::SystemTime) -> Result<Vec<String>> {
        let entries = match self.op.list("uploads/").await {
            Ok(e) => e,
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e.into()),
        };
        let mut old = Vec::new();
        for e in entries {
            let name = e.name().trim_end_matches('/');
            if name.is_empty() || name == "uploads" || e.metadata().is_dir() {
                continue;
            }
            let meta = self.op.stat(e.path()).await?;
            let modified = meta.last_modified().map(std::time::SystemTime::from);
            if modified.is_some_and(|m| m < cutoff) {
                old.push(name.to_string());
            }
        }
        Ok(old)
    }
}

/// Why an append stopped.
#[derive(Debug)]
pub enum AppendError {
    /// The client's body broke off (shorter than declared, connection lost).
    Body(String),
    Store(Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn upload_append_promote_read() {
        let store = BlobStore::from_operator(Operator::new(opendal::services::Memory::default()).unwrap(), None);
        let data = Bytes::from_static(b"hello blob");
        let mut h = Hasher::new(oci::Algorithm::Sha256);
        let n =
            store.append("u1", 0, None, futures_util::stream::iter([Ok::<_, std::io::Error>(data.clone())]), Some(&mut h)).await.unwrap();
        assert_eq!(n, 10);
        let d = h.finish();
        assert_eq!(store.hash_upload("u1", oci::Algorithm::Sha256, 10).await.unwrap(), (d.clone(), 10));
        store.promote("u1", &d).await.unwrap();
        assert!(store.exists(&d).await.unwrap());
        let mut s = store.read(&d, 6, 4).await.unwrap();
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.unwrap());
        }
        assert_eq!(out, b"blob");
    }

    /// The local fast path: blocks written while the next arrive, a tail written
    /// beside the last block, a session continued at an unaligned offset, a request that
    /// restarts lower cutting off what a broken one left, promotion and a whole read.
    #[tokio::test]
    async fn local_appends_of_many_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&crate::config::Storage::Fs { root: dir.path().to_path_buf() }).unwrap();
        let data: Vec<u8> = (0..(9u32 << 20) + 12_345).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        // Odd-sized pieces, as a socket hands them over.
        let body = |from: usize, to: usize| {
            let pieces: Vec<_> = data[from..to].chunks(100_003).map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c))).collect();
            futures_util::stream::iter(pieces)
        };
        let first = (5 << 20) + 777;
        // The running hash is fed on the blocking pool, block by block, and handed back. With
        // the length declared, blocks grow at the start and shrink toward the end.
        let mut running = Hasher::new(oci::Algorithm::Sha256);
        assert_eq!(store.append("u2", 0, Some(first as u64), body(0, first), Some(&mut running)).await.unwrap(), first as u64);
        // A request that broke off after writing past what the session recorded...
        assert_eq!(store.append("u2", first as u64, None, body(first, first + 3_000_000), None).await.unwrap(), 3_000_000);
        // ...is written over from the recorded size.
        let rest = data.len() - first;
        assert_eq!(
            store.append("u2", first as u64, Some(rest as u64), body(first, data.len()), Some(&mut running)).await.unwrap(),
            rest as u64
        );
        let (d, n) = store.hash_upload("u2", oci::Algorithm::Sha256, data.len() as u64).await.unwrap();
        assert_eq!(n, data.len() as u64);
        let mut h = Hasher::new(oci::Algorithm::Sha256);
        h.update(&data);
        assert_eq!(d, h.finish());
        assert_eq!(running.finish(), d, "the running hash covers every byte in order");
        // A short continuation (under one block) still cuts what a broken request left past it.
        let mut small = Hasher::new(oci::Algorithm::Sha256);
        assert_eq!(store.append("u3", 0, None, body(0, 10_000), Some(&mut small)).await.unwrap(), 10_000);
        assert_eq!(store.append("u3", 10_000, None, body(10_000, 2_000_000), None).await.unwrap(), 1_990_000);
        assert_eq!(store.append("u3", 10_000, None, body(10_000, 10_100), Some(&mut small)).await.unwrap(), 100);
        let (d, n) = store.hash_upload("u3", oci::Algorithm::Sha256, 10_100).await.unwrap();
        assert_eq!(n, 10_100);
        assert_eq!(small.finish(), d);
        let mut h = Hasher::new(oci::Algorithm::Sha256);
        h.update(&data[..10_100]);
        assert_eq!(d, h.finish());
        assert_eq!(std::fs::metadata(dir.path().join("uploads/u3")).unwrap().len(), 10_100, "nothing past the recorded size is left");
        store.promote("u2", &d).await.unwrap();
        let mut s = store.read(&d, 0, data.len() as u64).await.unwrap();
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.unwrap());
        }
        assert!(out == data, "the blob read back differs from what was written");
    }
}
