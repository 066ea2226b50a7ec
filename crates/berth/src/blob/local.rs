//! Fast paths for a store on the local filesystem: uploads are written with
//! `O_DIRECT` in aligned blocks, each block written and hashed on the blocking pool
//! while the request task receives the next ones, and blob reads send the file's
//! pages from the page cache through memory maps (`mapped`), read by one blocking
//! task per response.
//!
//! Buffered writes cost several times the CPU of direct writes on ext4 and
//! throttle uploads to a few hundred MB/s; direct writes skip the page cache.
//! Unaligned pieces (the start of a chunk that continues an unaligned upload, and
//! the tail) are written with an ordinary descriptor. The kernel is asked to read
//! the start of a new blob ahead once it is in place, for the pull that usually
//! follows a push (reading all of it back costs uploads that follow too much of the
//! disk: measured, back-to-back 64 MiB pushes ran 30-40% slower).

use super::AppendError;
use crate::error::Error;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use oci::Hasher;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Alignment O_DIRECT needs for buffer addresses, offsets and lengths.
const ALIGN: usize = 4096;
/// Bytes per direct write (the most a buffer grows to).
const BLOCK: usize = 2 << 20;
/// First size of a buffer: small uploads never allocate a whole block.
const FIRST: usize = 64 << 10;
/// Bytes per mapped window of a blob being sent (windows in flight count in the server's RSS).
const MAP_CHUNK: usize = 4 << 20;
/// Bytes after a window that is not cached that a response asks the kernel to read ahead
/// (into the page cache, not the server's memory). The kernel takes at most its readahead
/// size per request (8 MiB here); asking for more in steps measured no faster.
const READ_AHEAD: u64 = 8 << 20;

/// A heap buffer whose usable part starts at an ALIGN boundary; it grows to BLOCK.
struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
    pool: std::sync::Arc<BufPool>,
}

impl AlignedBuf {
    fn new(pool: &std::sync::Arc<BufPool>) -> AlignedBuf {
        Self::with_capacity(pool, FIRST)
    }
    /// Small buffers are allocated; full-size ones come from (and go back to) the pool.
    fn with_capacity(pool: &std::sync::Arc<BufPool>, cap: usize) -> AlignedBuf {
        let raw = if cap >= BLOCK { pool.take() } else { vec![0u8; cap + ALIGN] };
        let start = raw.as_ptr().align_offset(ALIGN);
        AlignedBuf { raw, start, len: 0, pool: pool.clone() }
    }
    fn capacity(&self) -> usize {
        self.raw.len() - ALIGN
    }
    fn room(&self) -> usize {
        BLOCK - self.len
    }
    fn push(&mut self, b: &[u8]) {
        if self.len + b.len() > self.capacity() {
            let mut bigger = Self::with_capacity(&self.pool, (self.len + b.len()).next_power_of_two().clamp(FIRST, BLOCK));
            bigger.push(self.filled());
            *self = bigger;
        }
        let at = self.start + self.len;
        self.raw[at..at + b.len()].copy_from_slice(b);
        self.len += b.len();
    }
    fn filled(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.raw));
    }
}

fn open(path: &Path, direct: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create(true);
    if direct {
        o.custom_flags(libc::O_DIRECT);
    }
    o.open(path)
}

/// The upload file's descriptors: opened by a request's first write (on the blocking pool,
/// with it), then shared by the writes in flight; the direct one on the first aligned write.
struct Files {
    path: PathBuf,
    plain: File,
    /// None once `O_DIRECT` was refused (tmpfs): aligned writes then go through `plain`.
    direct: std::sync::OnceLock<Option<File>>,
}

type Shared = std::sync::Arc<Files>;

impl Files {
    /// Opens the upload file for writing from `offset`, creating its directory on first use
    /// and cutting off anything past `offset` (a request that broke off may have left more).
    fn open(path: PathBuf, offset: u64) -> std::io::Result<Files> {
        let plain = match open(&path, false) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                open(&path, false)?
            }
            r => r?,
        };
        plain.set_len(offset)?;
        Ok(Files { path, plain, direct: std::sync::OnceLock::new() })
    }

    /// Writes `buf` at `offset`: the aligned prefix directly, any remainder buffered.
    fn write(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        let aligned = if offset.is_multiple_of(ALIGN as u64) { buf.len() / ALIGN * ALIGN } else { 0 };
        if aligned > 0 {
            let direct = match self.direct.get() {
                Some(d) => d,
                None => {
                    let d = match open(&self.path, true) {
                        Ok(f) => Some(f),
                        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => None,
                        Err(e) => return Err(e),
                    };
                    // Two writes may race to open it; either descriptor will do.
                    let _ = self.direct.set(d);
                    self.direct.get().expect("set")
                }
            };
            direct.as_ref().unwrap_or(&self.plain).write_all_at(&buf[..aligned], offset)?;
        }
        if aligned < buf.len() {
            self.plain.write_all_at(&buf[aligned..], offset + aligned as u64)?;
        }
        Ok(())
    }
}

/// A write on the blocking pool: it hands back the descriptors (opened by it if it was the
/// request's first), and the block it wrote, for reuse.
struct Write {
    job: tokio::task::JoinHandle<std::io::Result<Shared>>,
    block: std::sync::Arc<AlignedBuf>,
}

/// Writes `block` at `at` on the blocking pool, through `files`, or opening them (cutting the
/// file to `offset`) when the request has none yet.
fn spawn_write(files: Option<Shared>, path: &Path, offset: u64, block: std::sync::Arc<AlignedBuf>, at: u64) -> Write {
    let (path, b) = (path.to_path_buf(), block.clone());
    let job = tokio::task::spawn_blocking(move || {
        let files = match files {
            Some(f) => f,
            None => std::sync::Arc::new(Files::open(path, offset)?),
        };
        files.write(b.filled(), at)?;
        Ok(files)
    });
    Write { job, block }
}

impl Write {
    /// Waits for the write; its descriptors, and the block's buffer when nothing else holds it.
    async fn finish(self) -> Result<(std::io::Result<Shared>, Option<AlignedBuf>), AppendError> {
        let r = self.job.await.map_err(|e| AppendError::Store(Error::internal(e)))?;
        let buf = std::sync::Arc::try_unwrap(self.block).ok().map(|mut b| {
            b.len = 0;
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
        Some(r) if r < 2 * BLOCK as u64 => grown.min((r as usize / 2 / ALIGN * ALIGN).max(RAMP)),
        _ => grown,
    }
}

/// Full blocks written at once: two keep the device busy between one write's end and the
/// next one's start (one 2 MiB direct write at a time runs this disk at 1.2 GB/s, two at 1.75).
const WRITES_IN_FLIGHT: usize = 2;

/// Appends `body` (`length` bytes if declared: only block sizes depend on it) to the file at
/// `path` from `offset`, feeding `hasher` if given.
///
/// A pipeline: this task receives the body into aligned blocks; each full block is written
/// and hashed on the blocking pool while the next ones are received. So receiving, hashing
/// and writing each get a core of their own, where hashing on this task would add its time
/// to receiving's. Blocks are hashed in order (a block's hash starts once the one before has
/// handed the hasher back); up to `WRITES_IN_FLIGHT` writes run at once, through descriptors
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
    let mut buf = AlignedBuf::new(pool);
    let mut spare: Vec<AlignedBuf> = Vec::new();
    let mut writes: std::collections::VecDeque<Write> = Default::default();
    let mut files: Option<Shared> = None;
    let mut pos = offset;
    // The first block ends at an ALIGN boundary so that later blocks are aligned.
    let mut limit = if offset.is_multiple_of(ALIGN as u64) { next_limit(0, length) } else { ALIGN - (offset % ALIGN as u64) as usize };
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
            let take = rest.len().min(buf.room()).min(limit - buf.len);
            buf.push(&rest[..take]);
            rest = &rest[take..];
            if buf.len < limit {
                continue;
            }
            if let Some(h) = hashing.take() {
                running = Some(h.await.map_err(join)?);
            }
            // Until the first write has opened the file, one write at a time.
            while writes.len() >= WRITES_IN_FLIGHT || (files.is_none() && !writes.is_empty()) {
                let (r, b) = writes.pop_front().expect("a write in flight").finish().await?;
                spare.extend(b);
                match r {
                    Ok(f) => files = Some(f),
                    Err(e) => {
                        failure = Some(store(e));
                        break 'recv;
                    }
                }
            }
            let next = spare.pop().unwrap_or_else(|| AlignedBuf::new(pool));
            let full = std::sync::Arc::new(std::mem::replace(&mut buf, next));
            writes.push_back(spawn_write(files.clone(), &path, offset, full.clone(), pos));
            hashing = running.take().map(|mut h| {
                tokio::task::spawn_blocking(move || {
                    h.update(full.filled());
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
        if buf.len > 0 || pos == offset {
            if files.is_none()
                && let Some(first) = writes.pop_front()
            {
                // The tail needs the descriptors the first write opens.
                let (r, _) = first.finish().await?;
                match r {
                    Ok(f) => files = Some(f),
                    Err(e) => failure = Some(store(e)),
                }
            }
            if failure.is_none() {
                let tail = std::sync::Arc::new(buf);
                writes.push_back(spawn_write(files.clone(), &path, offset, tail.clone(), pos));
                // Hashed here while it is written.
                if let Some(h) = running.as_mut() {
                    h.update(tail.filled());
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

/// Size of a pooled block buffer: a block plus room to align it.
const POOL_BUF: usize = BLOCK + ALIGN;
/// Pooled buffers kept for reuse.
const POOL_KEEP: usize = 8;

/// Block buffers recycled across uploads: reusing a few large buffers keeps the
/// server's resident memory bounded, where fresh allocations from many threads
/// would leave freed memory spread over the allocator's per-thread arenas.
#[derive(Default)]
pub struct BufPool(std::sync::Mutex<Vec<Vec<u8>>>);

impl BufPool {
    fn take(&self) -> Vec<u8> {
        self.0.lock().expect("pool lock").pop().unwrap_or_else(|| vec![0u8; POOL_BUF])
    }
    fn give(&self, v: Vec<u8>) {
        let mut free = self.0.lock().expect("pool lock");
        if free.len() < POOL_KEEP && v.len() == POOL_BUF {
            free.push(v);
        }
    }
}

/// Makes the verified upload `from` the blob `to` in one trip to the blocking pool: kept as is
/// if the blob exists already (the upload is removed), else renamed into place (creating
/// the blob's directory on first use). Then asks the kernel to read the start of a new blob
/// into the page cache (one request, which the kernel caps at its readahead size): its blocks
/// were written with `O_DIRECT`, so they are not there.
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
        if let Ok(f) = File::open(&to) {
            let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::WillNeed);
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
