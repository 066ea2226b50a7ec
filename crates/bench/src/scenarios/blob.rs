//! `blob-push` (monolithic and chunked uploads) and `blob-pull` (streamed,
//! digest-verified downloads) of 1 MiB, 64 MiB and 1 GiB blobs.

use std::sync::Arc;
use std::time::Duration;

use super::Ctx;
use crate::data::{self, Blob, Held};
use crate::report::{Row, Unit};
use crate::stats::Work;

const PUSH_REPO: &str = "library/bench-blob";
const PULL_REPO: &str = "library/bench-blob-pull";
/// PATCH size for chunked uploads.
const PATCH: u64 = 16 << 20;
const LIMIT: Duration = Duration::from_secs(600);

struct Size {
    label: &'static str,
    len: u64,
    count: u64,
    conc: usize,
    /// Distinct blobs that the pulls cycle through.
    distinct: u64,
}

fn sizes(ctx: &Ctx) -> Vec<Size> {
    let s = |label, len, count, conc, distinct| Size { label, len, count, conc, distinct };
    if ctx.quick {
        vec![s("1MiB", 1 << 20, 20, 4, 8), s("64MiB", 64 << 20, 2, 1, 1)]
    } else {
        vec![s("1MiB", 1 << 20, 50, 4, 8), s("64MiB", 64 << 20, 12, 1, 1), s("1GiB", 1 << 30, 1, 1, 1)]
    }
}

/// The blobs of one push loop, generated and held in memory before it starts.
async fn blobs(seeds: impl Iterator<Item = u64>, len: u64) -> Arc<Vec<(Held, String)>> {
    let mut v = Vec::new();
    for s in seeds {
        v.push(Held::generate(Blob::new(s, len)).await);
    }
    Arc::new(v)
}

pub async fn push(ctx: &Ctx) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for size in sizes(ctx) {
        let reg = ctx.client(size.conc).await?;
        for chunked in [false, true] {
            let mode = if chunked { "chunked" } else { "monolithic" };
            let seeds = (0..size.count).map(|i| data::seed(&[ctx.nonce, size.len, chunked as u64, i]));
            let set = blobs(seeds, size.len).await;
            let reg = reg.clone();
            let name = format!("blob-push {} {mode}", size.label);
            let row = ctx
                .measure(&name, Unit::Bytes, size.conc, size.count, LIMIT, move |i| {
                    let (reg, set) = (reg.clone(), set.clone());
                    async move {
                        let (b, d) = &set[i as usize];
                        let requests = if chunked {
                            reg.upload_chunked(PUSH_REPO, b, d, PATCH).await?
                        } else {
                            reg.upload(PUSH_REPO, d, b.len, || b.body(0, b.len)).await?;
                            2
                        };
                        Ok(Work { requests, bytes: b.len })
                    }
                })
                .await;
            rows.push(row);
        }
    }
    Ok(rows)
}

pub async fn pull(ctx: &Ctx) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for size in sizes(ctx) {
        let reg = ctx.client(size.conc).await?;
        let seeds = (0..size.distinct).map(|i| data::seed(&[0xB10B, size.len, i]));
        let set = blobs(seeds, size.len).await;
        for (b, d) in set.iter() {
            if !reg.blob_exists(PULL_REPO, d).await? {
                eprintln!("  setup: upload {} blob {d}", size.label);
                reg.upload(PULL_REPO, d, b.len, || b.body(0, b.len)).await?;
            }
        }
        let name = format!("blob-pull {}", size.label);
        let distinct = size.distinct;
        let row = ctx
            .measure(&name, Unit::Bytes, size.conc, size.count, LIMIT, move |i| {
                let (reg, set) = (reg.clone(), set.clone());
                async move {
                    let (_, d) = &set[(i % distinct) as usize];
                    let bytes = reg.pull_blob(PULL_REPO, d).await?;
                    Ok(Work { requests: 1, bytes })
                }
            })
            .await;
        rows.push(row);
    }
    Ok(rows)
}
