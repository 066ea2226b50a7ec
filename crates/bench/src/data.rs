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
}

/// A blob generated once, before a measured loop, and held in memory as its 1 MiB chunks:
/// sending it costs the client no generation, only the copy into the socket.
#[derive(Clone)]
pub struct Held {
    pub len: u64,
    chunks: std::sync::Arc<Vec<Bytes>>,
}

impl Held {
    /// Generates `blob` and its digest off the async worker threads.
    pub async fn generate(blob: Blob) -> (Held, String) {
        tokio::task::spawn_blocking(move || {
            let mut h = Sha256::new();
            let chunks: Vec<Bytes> = (0..blob.chunks())
                .map(|i| {
                    let c = Bytes::from(blob.chunk(i));
                    h.update(&c);
                    c
                })
                .collect();
            (Held { len: blob.len, chunks: std::sync::Arc::new(chunks) }, format!("sha256:{}", hex::encode(h.finalize())))
        })
        .await
        .expect("generating task panicked")
    }

    /// Request body with bytes `start..end`; `start` must be a multiple of [`CHUNK`].
    pub fn body(&self, start: u64, end: u64) -> reqwest::Body {
        let pieces = self.pieces(start, end).into_iter().map(Ok::<Bytes, std::io::Error>);
        reqwest::Body::wrap_stream(futures_util::stream::iter(pieces))
    }

    /// The chunks (shared, not copied) that make up bytes `start..end`.
    fn pieces(&self, start: u64, end: u64) -> Vec<Bytes> {
        debug_assert_eq!(start % CHUNK, 0);
        let (first, last) = ((start / CHUNK) as usize, end.div_ceil(CHUNK) as usize);
        (first..last)
            .map(|i| {
                let c = &self.chunks[i];
                c.slice(..(end - i as u64 * CHUNK).min(c.len() as u64) as usize)
            })
            .collect()
    }
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
    }

    #[tokio::test]
    async fn held_blobs_send_exactly_their_bytes() {
        let b = Blob::new(7, 3 * CHUNK + 5);
        let whole: Vec<u8> = (0..4).flat_map(|i| b.chunk(i)).collect();
        let (held, digest) = Held::generate(b).await;
        assert_eq!(digest, digest_of(&whole));
        // A body from a chunk boundary to a point inside a later chunk.
        let (start, end) = (CHUNK, 2 * CHUNK + 10);
        let got: Vec<u8> = held.pieces(start, end).concat();
        assert_eq!(got, whole[start as usize..end as usize]);
        assert_eq!(held.pieces(0, held.len).concat(), whole);
    }
}
