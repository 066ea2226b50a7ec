//! `image-push-N` (small images pushed like docker), `manifest-get-N`
//! (GET/HEAD of one manifest by tag) and `mix-N` (90% pulls, 10% pushes).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;

use super::Ctx;
use crate::data::{self, XorShift};
use crate::image::{Image, Small};
use crate::report::{Row, Unit};
use crate::stats::Work;

const LIMIT: Duration = Duration::from_secs(60);
const MANIFEST_LIMIT: Duration = Duration::from_secs(30);

pub async fn push(ctx: &Ctx, conc: usize) -> Result<Vec<Row>, String> {
    let reg = ctx.client(conc).await?;
    let repo = format!("library/bench-image-{conc}");
    let nonce = ctx.nonce;
    let count = ctx.pick(1000, 200);
    let name = format!("image-push-{conc}");
    let row = ctx.measure(&name, Unit::Images, conc, count, LIMIT, {
        let reg = reg.clone();
        move |i| {
            let (reg, repo) = (reg.clone(), repo.clone());
            async move {
                let img = Image::random(data::seed(&[nonce, conc as u64, i]), 1, 3);
                let requests = img.push(&reg, &repo, &format!("i{nonce:x}-{i}")).await?;
                Ok(Work::requests(requests))
            }
        }
    });
    Ok(vec![with_blob_commits(&reg, row).await])
}

/// Counters of Berth's `/metrics`, by name; None for a registry without them.
async fn counters<const N: usize>(reg: &crate::client::Registry, names: [&str; N]) -> Option<[f64; N]> {
    let resp = reg.api(Method::GET, "/metrics", None).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let text = resp.text().await.ok()?;
    let sample = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.trim().parse::<f64>().ok()))
    };
    let values = names.map(sample);
    values.iter().all(Option::is_some).then(|| values.map(|v| v.unwrap_or_default()))
}

/// Berth's pull-accounting counters (pulls written, transactions, seconds writing).
async fn accounting(reg: &crate::client::Registry) -> Option<[f64; 3]> {
    counters(
        reg,
        ["berth_pull_accounting_pulls_total", "berth_pull_accounting_writes_total", "berth_pull_accounting_write_duration_seconds_total"],
    )
    .await
}

/// Runs `loop_` and, on a registry that reports them, notes how many transactions recorded
/// the loop's blobs (Berth writes blobs that finish together in one).
async fn with_blob_commits(reg: &crate::client::Registry, loop_: impl std::future::Future<Output = Row>) -> Row {
    const NAMES: [&str; 2] = ["berth_blob_commit_blobs_total", "berth_blob_commit_writes_total"];
    let before = counters(reg, NAMES).await;
    let row = loop_.await;
    let (Some(before), Some(after)) = (before, counters(reg, NAMES).await) else { return row };
    let (blobs, writes) = (after[0] - before[0], after[1] - before[1]);
    row.with_note(format!("blob commits: {blobs} blobs in {writes} transactions"))
}

/// Runs `loop_` and, on a registry that reports pull accounting, notes what writing the
/// loop's pulls cost: the batches are written off the request path, so this is the part of
/// the server's CPU the accounting can account for (wall time of the writes: an upper bound).
async fn with_accounting(reg: &crate::client::Registry, loop_: impl std::future::Future<Output = Row>) -> Row {
    let before = accounting(reg).await;
    let row = loop_.await;
    let Some(before) = before else { return row };
    // Pulls are written at most a second after they happen.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let Some(after) = accounting(reg).await else { return row };
    let [pulls, writes, secs] = [after[0] - before[0], after[1] - before[1], after[2] - before[2]];
    let share = row.cpu_s.filter(|c| *c > 0.0).map(|c| format!(" = {:.1}% of the server CPU", 100.0 * secs / c)).unwrap_or_default();
    row.with_note(format!("pull accounting wrote {pulls} pulls in {writes} transactions, {secs:.3} s{share}"))
}

pub async fn manifest_get(ctx: &Ctx, conc: usize) -> Result<Vec<Row>, String> {
    const REPO: &str = "library/bench-manifest";
    let reg = ctx.client(conc).await?;
    let img = Arc::new(Image::random(data::seed(&[0xA11CE]), 1, 1));
    img.push(&reg, REPO, "latest").await?;
    let count = ctx.pick(20_000, 5_000);
    let metrics = reg.clone();
    let row = with_accounting(
        &metrics,
        ctx.measure(&format!("manifest-get-{conc}"), Unit::Requests, conc, count, MANIFEST_LIMIT, move |i| {
            let (reg, img) = (reg.clone(), img.clone());
            async move {
                if i % 2 == 0 {
                    let resp = reg.manifest(Method::GET, REPO, "latest").await?;
                    let body = resp.bytes().await.map_err(|e| format!("manifest body: {e}"))?;
                    if body != img.manifest {
                        return Err("GET manifest returned other bytes".to_string());
                    }
                } else {
                    let resp = reg.manifest(Method::HEAD, REPO, "latest").await?;
                    if let Some(d) = resp.headers().get("docker-content-digest")
                        && d.as_bytes() != img.digest.as_bytes()
                    {
                        return Err(format!("HEAD manifest: digest {d:?}, wanted {}", img.digest));
                    }
                }
                Ok(Work::requests(1))
            }
        }),
    )
    .await;
    Ok(vec![row])
}

pub async fn mix(ctx: &Ctx, conc: usize) -> Result<Vec<Row>, String> {
    const REPO: &str = "library/bench-mix";
    const BASES: u64 = 16;
    let reg = ctx.client(conc).await?;
    let mut bases = Vec::new();
    for j in 0..BASES {
        let img = Image::random(data::seed(&[0x31C, j]), 1, 1);
        img.push(&reg, REPO, &format!("base-{j}")).await?;
        bases.push(img);
    }
    let bases = Arc::new(bases);
    let nonce = ctx.nonce;
    let count = ctx.pick(20_000, 5_000);
    let metrics = reg.clone();
    let row = with_accounting(
        &metrics,
        ctx.measure(&format!("mix-{conc}"), Unit::Ops, conc, count, LIMIT, move |i| {
            let (reg, bases) = (reg.clone(), bases.clone());
            async move {
                let mut rng = XorShift::new(data::seed(&[nonce, i]));
                if i % 10 == 9 {
                    let layer = Small::random(data::seed(&[nonce, i, 1]), rng.range(1024, 8192) as usize);
                    reg.upload_small(REPO, &layer.digest, &layer.data).await?;
                    let img = Image::from_parts(bases[0].config.clone(), vec![layer]);
                    reg.put_manifest(REPO, &format!("m{nonce:x}-{i}"), &img.manifest).await?;
                    Ok(Work::requests(3))
                } else {
                    let j = rng.range(0, BASES - 1);
                    let img = &bases[j as usize];
                    let resp = reg.manifest(Method::GET, REPO, &format!("base-{j}")).await?;
                    let body = resp.bytes().await.map_err(|e| format!("manifest body: {e}"))?;
                    if body != img.manifest {
                        return Err("GET manifest returned other bytes".to_string());
                    }
                    reg.pull_blob(REPO, &img.layers[0].digest).await?;
                    Ok(Work::requests(2))
                }
            }
        }),
    )
    .await;
    Ok(vec![row])
}
