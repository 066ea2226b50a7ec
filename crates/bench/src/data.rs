//! Deterministic test data: a fast xorshift generator, seekable blobs made of
//! independently seeded 1 MiB chunks (streamed, never held whole in memory),
//! and their sha256 digests.

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Size of one generated chunk; chunked uploads must use multiples of it.
pub const CHUNK: u64 = 1 << 20;

/// xorshift64 pseudo-random generator (not cryptographic, just fast).
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(splitmix(seed) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut words = buf.chunks_exact_mut(8);
        for w in &mut words {
            w.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = words.into_remainder();
        let v = self.next_u64().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&v[..n]);
    }
}

/// SplitMix64 finaliser, used to derive well-mixed seeds.
pub fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Combine several numbers into one seed.
pub fn seed(parts: &[u64]) -> u64 {
    parts.iter().fold(0x5EED, |acc, p| splitmix(acc ^ p))
}

/// `sha256:<hex>` of a byte slice.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Random bytes held in memory (for small blobs).
pub fn small(seed: u64, len: usize) -> Bytes {
    let mut buf = vec![0u8; len];
    XorShift::new(seed).fill(&mut buf);
    Bytes::from(buf)
}

/// A large blob defined by a seed and a length; its content is generated on
/// demand, one 1 MiB chunk at a time, and any chunk can be produced directly.
#[derive(Clone, Copy, Debug)]
pub struct Blob {
    pub seed: u64,
    pub len: u64,
}

impl Blob {
    pub fn new(seed: u64, len: u64) -> Self {
        Blob { seed, len }
    }

    fn chunks(&self) -> u64 {
        self.len.div_ceil(CHUNK)
    }

    /// Chunk number `idx` of the blob.
    pub fn chunk(&self, idx: u64) -> Vec<u8> {
        let start = idx * CHUNK;
        let n = CHUNK.min(self.len - start) as usize;
        let mut buf = vec![0u8; n];
        XorShift::new(seed(&[self.seed, idx])).fill(&mut buf);
        buf
    }

    /// Digest, computed by a full pass over the generator (CPU-bound: call
    /// it from a blocking thread for large blobs).
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for i in 0..self.chunks() {
            h.update(self.chunk(i));
        }
        format!("sha256:{}", hex::encode(h.finalize()))
    }

    /// Streamed request body with bytes `start..end` of the blob;
    /// `start` must be a multiple of [`CHUNK`].
    pub fn body(&self, start: u64, end: u64) -> reqwest::Body {
        debug_assert_eq!(start % CHUNK, 0);
        let blob = *self;
        let first = start / CHUNK;
        let last = end.div_ceil(CHUNK);
        let stream = futures_util::stream::unfold(first, move |idx| async move {
            if idx >= last {
                return None;
            }
            let mut buf = blob.chunk(idx);
            let chunk_end = (idx + 1) * CHUNK;
            if chunk_end > end {
                buf.truncate((end - idx * CHUNK) as usize);
            }
            Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), idx + 1))
        });
        reqwest::Body::wrap_stream(stream)
    }
}

/// Digest of a large blob, computed off the async worker threads.
pub async fn digest_async(blob: Blob) -> String {
    tokio::task::spawn_blocking(move || blob.digest()).await.expect("digest task panicked")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_deterministic_and_distinct() {
        let b = Blob::new(7, 3 * CHUNK + 5);
        assert_eq!(b.chunk(1), b.chunk(1));
        assert_ne!(b.chunk(0), b.chunk(1));
        assert_eq!(b.chunk(3).len(), 5);
        let mut whole = Vec::new();
        for i in 0..4 {
            whole.extend(b.chunk(i));
        }
        assert_eq!(digest_of(&whole), b.digest());
    }
}
