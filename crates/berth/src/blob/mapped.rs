//! Blob bytes sent straight from the page cache through a memory map: the response
//! body is the mapped pages themselves, never copied into a buffer of Berth's.
//!
//! Every live map is listed with the file and offset it shows, so the connection
//! that writes a response body (`http::zerocopy`) can recognise mapped bytes by
//! their address and send them from the file with `sendfile` instead of copying
//! them into the socket: the same bytes, without the copy. Anything else that reads
//! the bytes (a consumer that copies them, a test) reads ordinary memory.
//!
//! This is the only module of Berth with `unsafe` code: mapping a file, asking which of
//! its pages are cached, and starting the writeback of pages just written
//! (`start_writeback`, used by uploads; no safe binding of the call exists). A map is
//! sound only while nobody truncates or rewrites the file. Blob files are written
//! aside, renamed into place once verified, and from then on only ever unlinked (an
//! unlinked file stays whole for a map of it), so nothing in Berth changes a mapped
//! file; a map never reaches past the file's end. A blob file cut short by hand
//! under a running server would end the process with SIGBUS.
#![allow(unsafe_code)]

use bytes::Bytes;
use memmap2::{Advice, Mmap, MmapOptions};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Mapped bytes of a blob file; the map ends when the last `Bytes` of it is dropped.
struct Window(Mmap);

impl AsRef<[u8]> for Window {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // Unlisted before the map goes (the field is dropped after this body).
        let mut live = LIVE.lock().expect("map list lock");
        live.remove(&(self.0.as_ptr() as usize));
        COUNT.store(live.len(), Ordering::Release);
    }
}

/// Where a live map's bytes come from.
struct Source {
    len: usize,
    file: Arc<File>,
    at: u64,
}

/// Live maps by start address (maps never overlap, so the address names one).
static LIVE: Mutex<BTreeMap<usize, Source>> = Mutex::new(BTreeMap::new());
/// How many maps are live: writes skip the lookup when none is.
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// The file and offset that `bytes` show, when they lie inside one live map.
pub fn source(bytes: &[u8]) -> Option<(Arc<File>, u64)> {
    if bytes.is_empty() || COUNT.load(Ordering::Acquire) == 0 {
        return None;
    }
    let addr = bytes.as_ptr() as usize;
    let live = LIVE.lock().expect("map list lock");
    let (&start, src) = live.range(..=addr).next_back()?;
    (addr + bytes.len() <= start + src.len).then(|| (src.file.clone(), src.at + (addr - start) as u64))
}

/// An open blob file and its length, taken once: blob files never change once visible.
pub struct Blob {
    file: Arc<File>,
    len: u64,
}

impl Blob {
    pub fn open(path: &Path) -> std::io::Result<Blob> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Blob { file: Arc::new(file), len })
    }

    /// The `len` bytes at `at`, mapped and read into the page cache (from disk where they
    /// are not cached, the `ahead` bytes after them then read ahead in the background).
    /// Pages missing from the cache are read in here, on the caller's blocking thread, so
    /// sending them later does not stop an async worker on the disk.
    pub fn window(&self, at: u64, len: usize, ahead: u64) -> std::io::Result<Bytes> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        if self.len < at + len as u64 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let f = &self.file;
        // SAFETY: blob files are never truncated or written once visible (module docs), and
        // the range lies inside the file.
        let map = unsafe { MmapOptions::new().offset(at).len(len).map(&**f) }?;
        // Pages not yet cached are read in now, after asking for this window and the bytes
        // after it, so the disk has the next reads queued while this one is sent. Cached
        // pages are left alone: `sendfile` does not need them mapped, and a copy faults them
        // in cheaply.
        if !resident(&map) {
            let advise = |from: u64, n: u64| rustix::fs::fadvise(f, from, std::num::NonZeroU64::new(n), rustix::fs::Advice::WillNeed);
            let _ = advise(at, len as u64);
            if ahead > 0 {
                let _ = advise(at + len as u64, ahead);
            }
            map.advise(Advice::PopulateRead)?;
        }
        let mut live = LIVE.lock().expect("map list lock");
        live.insert(map.as_ptr() as usize, Source { len, file: f.clone(), at });
        COUNT.store(live.len(), Ordering::Release);
        drop(live);
        Ok(Bytes::from_owner(Window(map)))
    }
}

/// Whether every page of the file at `path` is in the page cache.
#[cfg(test)]
pub fn cached(path: &Path) -> std::io::Result<bool> {
    let file = File::open(path)?;
    let len = file.metadata()?.len() as usize;
    // SAFETY: a test's file, which nothing changes while it is mapped.
    let map = unsafe { MmapOptions::new().len(len).map(&file) }?;
    Ok(resident(&map))
}

/// Whether every page under `map` is in the page cache.
fn resident(map: &Mmap) -> bool {
    let page = rustix::param::page_size();
    let addr = map.as_ptr() as usize;
    let start = addr & !(page - 1);
    let span = addr + map.len() - start;
    let mut pages = vec![0u8; span.div_ceil(page)];
    // SAFETY: [start, start + span) lies within the live map (memmap2 maps from the page
    // boundary below the requested offset), and `pages` holds one byte per page of it.
    let rc = unsafe { libc::mincore(start as *mut libc::c_void, span, pages.as_mut_ptr()) };
    rc == 0 && pages.iter().all(|p| p & 1 == 1)
}

/// Starts writing `len` bytes of `file` from `at` back to the disk, without waiting for it
/// (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`): the pages stay cached. Advisory; where
/// the filesystem refuses, the kernel writes the pages back later as it would anyway.
pub fn start_writeback(file: &File, at: u64, len: usize) {
    use std::os::fd::AsRawFd;
    // SAFETY: the call reads no memory of the process; `file` is an open descriptor.
    let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), at as libc::off64_t, len as libc::off64_t, libc::SYNC_FILE_RANGE_WRITE) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(len: usize) -> (tempfile::TempDir, Vec<u8>, Blob) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::File::create(&path).unwrap().write_all(&data).unwrap();
        let f = Blob::open(&path).unwrap();
        (dir, data, f)
    }

    #[test]
    fn maps_ranges_at_any_offset() {
        let (_dir, data, f) = file(3 * 4096 + 123);
        for (at, len) in [(0, data.len()), (1, 10), (4095, 4098), (5000, 7000), (data.len() - 1, 1)] {
            let b = f.window(at as u64, len, 4096).expect("read");
            assert_eq!(&b[..], &data[at..at + len], "at {at} len {len}");
        }
        assert!(f.window(0, 0, 0).unwrap().is_empty());
    }

    #[test]
    fn mapped_bytes_name_their_file_and_offset_while_they_live() {
        let (_dir, data, f) = file(5 * 4096);
        let b = f.window(4096 + 7, 3 * 4096, 0).unwrap();
        let (file, at) = source(&b[100..200]).expect("listed");
        assert!(Arc::ptr_eq(&file, &f.file));
        assert_eq!(at, 4096 + 7 + 100);
        assert!(source(&b[..]).is_some());
        let copy = b.to_vec();
        assert!(source(&copy).is_none(), "a copy is not mapped");
        let addr = b.as_ptr() as usize;
        drop((b, file));
        // The map is gone from the list with its last Bytes (another test's map may
        // since have taken the address, but not with this file).
        assert!(LIVE.lock().unwrap().get(&addr).is_none_or(|s| !Arc::ptr_eq(&s.file, &f.file)));
        assert_eq!(Arc::strong_count(&f.file), 1);
        let _ = data;
    }

    #[test]
    fn never_maps_past_the_end_of_the_file() {
        let (_dir, data, f) = file(4096 + 10);
        let e = f.window(4096, data.len(), 0).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn reads_pages_that_are_not_cached() {
        let (_dir, data, f) = file(1 << 20);
        f.file.sync_all().unwrap();
        rustix::fs::fadvise(&*f.file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        let b = f.window(4096, data.len() - 4096, 0).unwrap();
        assert_eq!(&b[..], &data[4096..]);
    }

    #[test]
    fn a_map_outlives_the_unlinked_file() {
        let (dir, data, f) = file(2 * 4096);
        let b = f.window(0, data.len(), 0).unwrap();
        drop(f);
        std::fs::remove_file(dir.path().join("blob")).unwrap();
        assert_eq!(&b[..], &data[..]);
    }
}
