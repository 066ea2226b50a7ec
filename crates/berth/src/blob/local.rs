//! Fast paths for a store on the local filesystem: uploads are copied into blocks, each
//! block written and hashed on the blocking pool while the request task receives the next
//! ones, and blob reads send the file's pages from the page cache through memory maps
//! (`mapped`), read by one blocking task per response.
//!
//! Uploads go through the page cache, so a blob just pushed is still cached for the pull
//! that usually follows it. Each block's writeback to the disk starts as soon as it is
//! written (`sync_file_range`), so the disk works alongside the upload and the dirty pages
//! one upload leaves are few, instead of piling up for the kernel to write back later, in
//! the middle of other requests.
//!
//! Received chunks are copied into pooled blocks rather than written as they are: holding
//! hyper's receive buffers for the writes makes it allocate fresh ones, whose first touch
//! (page faults, zeroing) cost more than the copy.

use super::AppendError;
use crate::error::Error;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use oci::Hasher;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes per write (the most a block grows to).
const BLOCK: usize = 2 << 20;
/// First size of a block: small uploads never allocate a whole one.
const FIRST: usize = 64 << 10;
/// Bytes per mapped window of a blob being sent (windows in flight count in the server's RSS).
const MAP_CHUNK: usize = 4 << 20;
/// Bytes after a window that is not cached that a response asks the kernel to read ahead
/// (into the page cache, not the server's memory). The kernel takes at most its readahead
/// size per request (8 MiB here); asking for more in steps measured no faster.
const READ_AHEAD: u64 = 8 << 20;

/// Received bytes gathered for one write; it grows to BLOCK.
struct Buf {
    data: Vec<u8>,
    pool: std::sync::Arc<BufPool>,
}

impl Buf {
    fn new(pool: &std::sync::Arc<BufPool>) -> Buf {
        Self::with_capacity(pool, FIRST)
    }
    /// Small buffers are allocated; full-size ones come from (and go back to) the pool.
    fn with_capacity(pool: &std::sync::Arc<BufPool>, cap: usize) -> Buf {
        let data = if cap >= BLOCK { pool.take() } else { Vec::with_capacity(cap) };
        Buf { data, pool: pool.clone() }
    }
    fn len(&self) -> usize {
        self.data.len()
    }
    fn room(&self) -> usize {
        BLOCK - self.len()
    }
    fn push(&mut self, b: &[u8]) {
        if self.len() + b.len() > self.data.capacity() {
            let mut bigger = Self::with_capacity(&self.pool, (self.len() + b.len()).next_power_of_two().clamp(FIRST, BLOCK));
            bigger.data.extend_from_slice(&self.data);
            *self = bigger;
        }
        self.data.extend_from_slice(b);
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.data));
    }
}

/// Opens the upload file for writing from `offset`, creating its directory on first use
/// and cutting off anything past `offset` (a request that broke off may have left more).
fn open_at(path: &Path, offset: u64) -> std::io::Result<File> {
    let open = || OpenOptions::new().write(true).create(true).truncate(false).open(path);
    let file = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            open()?
        }
        r => r?,
    };
    file.set_len(offset)?;
    Ok(file)
}

/// Writes `buf` at `at` into the page cache and starts its writeback without waiting for
/// it (where the filesystem cannot, the kernel writes it back later as it would anyway).
fn write_at(file: &File, buf: &[u8], at: u64) -> std::io::Result<()> {
    file.write_all_at(buf, at)?;
    super::mapped::start_writeback(file, at, buf.len());
    Ok(())
}

/// A write on the blocking pool: it hands back the file (opened by it if it was the
/// request's first), and the block it wrote, for reuse.
struct Write {
    job: tokio::task::JoinHandle<std::io::Result<std::sync::Arc<File>>>,
    block: std::sync::Arc<Buf>,
}

/// Writes `block` at `at` on the blocking pool, through `file`, or opening it (cutting it to
/// `offset`) when the request has none yet.
fn spawn_write(file: Option<std::sync::Arc<File>>, path: &Path, offset: u64, block: std::sync::Arc<Buf>, at: u64) -> Write {
    let (path, b) = (path.to_path_buf(), block.clone());
    let job = tokio::task::spawn_blocking(move || {
        let file = match file {
            Some(f) => f,
            None => std::sync::Arc::new(open_at(&path, offset)?),
        };
        write_at(&file, &b.data, at)?;
        Ok(file)
    });
    Write { job, block }
}

impl Write {
    /// Waits for the write; its file, and the block's buffer when nothing else holds it.
    async fn finish(self) -> Result<(std::io::Result<std::sync::Arc<File>>, Option<Buf>), AppendError> {
        let r = self.job.await.map_err(|e| AppendError::Store(Error::internal(e)))?;
        let buf = std::sync::Arc::try_unwrap(self.block).ok().map(|mut b| {
            b.data.clear();
            b
        });
        Ok((r, buf))
    }
}

/// The smallest block a body is cut into, below a whole `BLOCK`: at its start, so that the
/// first write starts soon, and (when the body's length is known) at its end, so that the
/// last write, which the response waits for, is short.
const RAMP: usize = 256 << 10;

/// The size of the next block: double the last one up to `BLOCK`, and when `remaining` bytes
/// (if known) are fewer than two blocks, half of them, so blocks shrink toward the end.
fn next_limit(last: usize, remaining: Option<u64>) -> usize {
    let grown = (last * 2).clamp(RAMP, BLOCK);
    match remaining {
        Some(r) if r < 2 * BLOCK as u64 => grown.min((r as usize / 2).max(RAMP)),
        _ => grown,
    }
}

/// Full blocks written at once, while the next is received and the one before is hashed.
const WRITES_IN_FLIGHT: usize = 2;

/// Appends `body` (`length` bytes if declared: only block sizes depend on it) to the file at
/// `path` from `offset`, feeding `hasher` if given.
///
/// A pipeline: this task receives the body into blocks; each full block is written and
/// hashed on the blocking pool while the next ones are received. So receiving, hashing
/// and writing each get a core of their own, where hashing on this task would add its time
/// to receiving's. Blocks are hashed in order (a block's hash starts once the one before has
/// handed the hasher back); up to `WRITES_IN_FLIGHT` writes run at once, through the file
/// the request's first write opened.
pub async fn append<S, E>(
    pool: &std::sync::Arc<BufPool>,
    path: PathBuf,
    offset: u64,
    length: Option<u64>,
    mut body: S,
    hasher: Option<&mut Hasher>,
) -> Result<u64, AppendError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let store = |e: std::io::Error| AppendError::Store(Error::Internal(format!("writing upload: {e}")));
    let join = |e: tokio::task::JoinError| AppendError::Store(Error::internal(e));
    // The running hash leaves `hasher` for the blocking pool and goes back at the end.
    let (mut running, home) = match hasher {
        Some(h) => (Some(std::mem::replace(h, Hasher::new(h.algorithm()))), Some(h)),
        None => (None, None),
    };
    let mut hashing: Option<tokio::task::JoinHandle<Hasher>> = None;
    // Nothing touches the file before the first block (or the end of a small body) is
    // written: opening it goes with that write, one trip to the blocking pool.
    let mut buf = Buf::new(pool);
    let mut spare: Vec<Buf> = Vec::new();
    let mut writes: std::collections::VecDeque<Write> = Default::default();
    let mut file: Option<std::sync::Arc<File>> = None;
    let mut pos = offset;
    let mut limit = next_limit(0, length);
    let mut written = 0u64;
    let mut failure = None;
    'recv: loop {
        let chunk = match body.next().await {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                failure = Some(AppendError::Body(e.to_string()));
                break;
            }
            None => break,
        };
        written += chunk.len() as u64;
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            let take = rest.len().min(buf.room()).min(limit - buf.len());
            buf.push(&rest[..take]);
            rest = &rest[take..];
            if buf.len() < limit {
                continue;
            }
            if let Some(h) = hashing.take() {
                running = Some(h.await.map_err(join)?);
            }
            // Until the first write has opened the file, one write at a time.
            while writes.len() >= WRITES_IN_FLIGHT || (file.is_none() && !writes.is_empty()) {
                let (r, b) = writes.pop_front().expect("a write in flight").finish().await?;
                spare.extend(b);
                match r {
                    Ok(f) => file = Some(f),
                    Err(e) => {
                        failure = Some(store(e));
                        break 'recv;
                    }
                }
            }
            let next = spare.pop().unwrap_or_else(|| Buf::new(pool));
            let full = std::sync::Arc::new(std::mem::replace(&mut buf, next));
            writes.push_back(spawn_write(file.clone(), &path, offset, full.clone(), pos));
            hashing = running.take().map(|mut h| {
                tokio::task::spawn_blocking(move || {
                    h.update(&full.data);
                    h
                })
            });
            pos += limit as u64;
            limit = next_limit(limit, length.map(|n| n.saturating_sub(pos - offset)));
        }
    }
    if let Some(h) = hashing.take() {
        running = Some(h.await.map_err(join)?);
    }
    if failure.is_none() {
        // The tail, or for an empty body the file itself, which must exist with `offset` bytes.
        if buf.len() > 0 || pos == offset {
            if file.is_none()
                && let Some(first) = writes.pop_front()
            {
                // The tail needs the file the first write opens.
                let (r, _) = first.finish().await?;
                match r {
                    Ok(f) => file = Some(f),
                    Err(e) => failure = Some(store(e)),
                }
            }
            if failure.is_none() {
                let tail = std::sync::Arc::new(buf);
                writes.push_back(spawn_write(file.clone(), &path, offset, tail.clone(), pos));
                // Hashed here while it is written.
                if let Some(h) = running.as_mut() {
                    h.update(&tail.data);
                }
            }
        }
    }
    // No write may outlive the request: after a failure the caller may remove the file next.
    for w in writes {
        if let (Err(e), _) = w.finish().await?
            && failure.is_none()
        {
            failure = Some(store(e));
        }
    }
    if let Some(f) = failure {
        return Err(f);
    }
    if let (Some(h), Some(home)) = (running, home) {
        *home = h;
    }
    Ok(written)
}

/// Pooled buffers kept for reuse.
const POOL_KEEP: usize = 8;

/// Block buffers recycled across uploads: reusing a few large buffers keeps the
/// server's resident memory bounded, where fresh allocations from many threads
/// would leave freed memory spread over the allocator's per-thread arenas.
#[derive(Default)]
pub struct BufPool(std::sync::Mutex<Vec<Vec<u8>>>);

impl BufPool {
    fn take(&self) -> Vec<u8> {
        self.0.lock().expect("pool lock").pop().unwrap_or_else(|| Vec::with_capacity(BLOCK))
    }
    fn give(&self, mut v: Vec<u8>) {
        let mut free = self.0.lock().expect("pool lock");
        if free.len() < POOL_KEEP && v.capacity() == BLOCK {
            v.clear();
            free.push(v);
        }
    }
}

/// Makes the verified upload `from` the blob `to` in one trip to the blocking pool: kept as is
/// if the blob exists already (the upload is removed), else renamed into place (creating
/// the blob's directory on first use).
pub async fn promote(from: PathBuf, to: PathBuf) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || {
        if to.try_exists()? {
            return match std::fs::remove_file(&from) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        match std::fs::rename(&from, &to) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && to.parent().is_some_and(|d| !d.exists()) => {
                std::fs::create_dir_all(to.parent().expect("checked"))?;
                std::fs::rename(&from, &to)?;
            }
            r => r?,
        }
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The whole of the file at `path` if it exists and holds at most `max` bytes, read in one
/// trip to the blocking pool.
pub async fn read_small(path: PathBuf, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    tokio::task::spawn_blocking(move || {
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        if len > max {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(len as usize);
        std::io::Read::read_to_end(&mut std::io::Read::take(&mut f, max + 1), &mut out)?;
        Ok((out.len() as u64 <= max).then_some(out))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Streams `len` bytes of `path` from `start`, read by one blocking task: each window of
/// the file is mapped and read into the page cache if it is not cached, with the bytes
/// after it read ahead while it is sent.
pub fn read(path: PathBuf, start: u64, len: u64) -> super::BlobStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(1);
    tokio::task::spawn_blocking(move || {
        let blob = match super::mapped::Blob::open(&path) {
            Ok(b) => b,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let (mut at, end) = (start, start + len);
        while at < end {
            // Windows after the first start on window boundaries.
            let n = ((end - at) as usize).min(MAP_CHUNK - (at % MAP_CHUNK as u64) as usize);
            let ahead = (end - at - n as u64).min(READ_AHEAD);
            let chunk = blob.window(at, n, ahead);
            let stop = chunk.is_err();
            at += n as u64;
            if tx.blocking_send(chunk).is_err() || stop {
                return; // the client went away, or the read failed
            }
        }
    });
    Box::pin(tokio_stream_from(rx))
}

fn tokio_stream_from(mut rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unaligned_appends_reassemble_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uploads/u");
        let data: Vec<u8> = (0..(BLOCK * 2 + 12_345)).map(|i| (i * 31 % 251) as u8).collect();
        let mut h = Hasher::new(oci::Algorithm::Sha256);
        let mut at = 0u64;
        // Chunks of odd sizes, sent as several body pieces each.
        for piece in data.chunks(BLOCK / 3 + 7) {
            let parts: Vec<Result<Bytes, std::io::Error>> = piece.chunks(65_521).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
            // Every other piece declares its length (blocks then shrink toward its end).
            let length = (at / (BLOCK as u64 / 3 + 7)).is_multiple_of(2).then_some(piece.len() as u64);
            at += append(&Default::default(), path.clone(), at, length, futures_util::stream::iter(parts), Some(&mut h))
                .await
                .map_err(|_| ())
                .unwrap();
        }
        assert_eq!(at, data.len() as u64);
        // Written through the page cache: the pull that follows a push finds it there.
        assert!(super::super::mapped::cached(&path).unwrap(), "an upload's pages are cached once written");
        assert_eq!(std::fs::read(&path).unwrap(), data);
        assert!(h.finish().verify(&data));
        // Ranges that start unaligned, cross read chunks, and end at the file's end.
        for (a, n) in [(100usize, 5000usize), (1_000_000, 1_500_000), (0, data.len()), (data.len() - 7, 7)] {
            let mut s = read(path.clone(), a as u64, n as u64);
            let mut out = Vec::new();
            while let Some(c) = s.next().await {
                out.extend_from_slice(&c.unwrap());
            }
            assert_eq!(out, &data[a..a + n], "range {a}+{n}");
        }
    }

    #[test]
    fn blocks_ramp_up_and_shrink_toward_a_known_end() {
        assert_eq!(next_limit(0, None), RAMP);
        assert_eq!(next_limit(RAMP, None), 2 * RAMP);
        assert_eq!(next_limit(BLOCK, None), BLOCK);
        assert_eq!(next_limit(BLOCK, Some(64 << 20)), BLOCK);
        assert_eq!(next_limit(BLOCK, Some(3 << 20)), (3 << 20) / 2);
        assert_eq!(next_limit(BLOCK, Some(1 << 20)), 512 << 10);
        assert_eq!(next_limit(512 << 10, Some(300 << 10)), RAMP);
        assert_eq!(next_limit(BLOCK, Some(1000)), RAMP);
    }
}
