//! Blob bytes sent straight from the page cache through a memory map: the response
//! body is the mapped pages themselves, so a blob goes to the socket with the
//! kernel's one copy instead of a read into a buffer and a write out of it.
//!
//! This is the only module of Berth with `unsafe` code: mapping a file. A map is
//! sound only while nobody truncates or rewrites the file. Blob files are written
//! aside, renamed into place once verified, and from then on only ever unlinked (an
//! unlinked file stays whole for a map of it), so nothing in Berth changes a mapped
//! file; a map never reaches past the file's end. A blob file cut short by hand
//! under a running server would end the process with SIGBUS.
#![allow(unsafe_code)]

use bytes::Bytes;
use memmap2::{Advice, Mmap, MmapOptions};
use std::fs::File;

/// Mapped bytes of a blob file; the map ends when the last `Bytes` of it is dropped.
struct Window(Mmap);

impl AsRef<[u8]> for Window {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The `len` bytes of `f` at `at`, mapped and read into the page cache (from disk, with
/// the kernel's readahead, where they are not cached); the `ahead` bytes after them are
/// read ahead in the background. The pages are faulted in here, on the caller's blocking
/// thread, so writing them to a socket later does not stop an async worker on the disk.
pub fn read(f: &File, at: u64, len: usize, ahead: u64) -> std::io::Result<Bytes> {
    if len == 0 {
        return Ok(Bytes::new());
    }
    if f.metadata()?.len() < at + len as u64 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    // SAFETY: blob files are never truncated or written once visible (module docs), and
    // the range lies inside the file.
    let map = unsafe { MmapOptions::new().offset(at).len(len).map(f) }?;
    if ahead > 0 {
        let _ = rustix::fs::fadvise(f, at + len as u64, std::num::NonZeroU64::new(ahead), rustix::fs::Advice::WillNeed);
    }
    map.advise(Advice::PopulateRead)?;
    Ok(Bytes::from_owner(Window(map)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(len: usize) -> (tempfile::TempDir, Vec<u8>, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::File::create(&path).unwrap().write_all(&data).unwrap();
        let f = File::open(&path).unwrap();
        (dir, data, f)
    }

    #[test]
    fn maps_ranges_at_any_offset() {
        let (_dir, data, f) = file(3 * 4096 + 123);
        for (at, len) in [(0, data.len()), (1, 10), (4095, 4098), (5000, 7000), (data.len() - 1, 1)] {
            let b = read(&f, at as u64, len, 4096).expect("read");
            assert_eq!(&b[..], &data[at..at + len], "at {at} len {len}");
        }
        assert!(read(&f, 0, 0, 0).unwrap().is_empty());
    }

    #[test]
    fn never_maps_past_the_end_of_the_file() {
        let (_dir, data, f) = file(4096 + 10);
        let e = read(&f, 4096, data.len(), 0).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn reads_pages_that_are_not_cached() {
        let (_dir, data, f) = file(1 << 20);
        f.sync_all().unwrap();
        rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        let b = read(&f, 4096, data.len() - 4096, 0).unwrap();
        assert_eq!(&b[..], &data[4096..]);
    }

    #[test]
    fn a_map_outlives_the_unlinked_file() {
        let (dir, data, f) = file(2 * 4096);
        let b = read(&f, 0, data.len(), 0).unwrap();
        drop(f);
        std::fs::remove_file(dir.path().join("blob")).unwrap();
        assert_eq!(&b[..], &data[..]);
    }
}
