//! `tag-list` (paginated tags of a 10,000-tag repository) and `catalog`
//! (paginated catalog over 10,000 repositories made by cross-repo mounts).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;

use super::{Ctx, setup};
use crate::client::{Registry, repo_scope};
use crate::data::{self, XorShift};
use crate::image::Image;
use crate::report::{Row, Unit};
use crate::stats::Work;

const LIMIT: Duration = Duration::from_secs(60);
const PAGE: usize = 100;
const SETUP_CONC: usize = 32;
const CONC: usize = 8;

/// True if the repository's tag list shows `tag`.
async fn has_tag(reg: &Registry, repo: &str, tag: &str) -> bool {
    let path = format!("/v2/{repo}/tags/list");
    matches!(reg.page(&path, repo_scope(repo), "tags", None, None).await,
        Ok((tags, _)) if tags.iter().any(|t| t == tag))
}

pub async fn tag_list(ctx: &Ctx) -> Result<Vec<Row>, String> {
    let n = ctx.pick(10_000u64, 1_000);
    let repo = format!("library/bench-tags-{n}");
    let tag = |i: u64| format!("t-{i:05}");
    let reg = ctx.client(SETUP_CONC).await?;
    if reg.manifest(Method::HEAD, &repo, &tag(n - 1)).await.is_ok() {
        eprintln!("  setup: {repo} already has {n} tags");
    } else {
        let img = Arc::new(Image::random(data::seed(&[0x7A65]), 1, 1));
        img.push(&reg, &repo, &tag(0)).await?;
        let (r, rp) = (reg.clone(), repo.clone());
        setup("PUT one manifest under many tags", SETUP_CONC, n - 1, move |i| {
            let (r, rp, img) = (r.clone(), rp.clone(), img.clone());
            async move {
                r.put_manifest(&rp, &tag(i + 1), &img.manifest).await?;
                Ok(Work::requests(1))
            }
        })
        .await?;
    }
    let reg = ctx.client(CONC).await?;
    let path = format!("/v2/{repo}/tags/list");
    let nonce = ctx.nonce;
    let row = ctx
        .measure("tag-list", Unit::Requests, CONC, ctx.pick(2_000, 500), LIMIT, move |i| {
            let (reg, repo, path) = (reg.clone(), repo.clone(), path.clone());
            async move {
                let idx = XorShift::new(data::seed(&[nonce, i])).range(0, n - 1);
                let (tags, next) = reg.page(&path, repo_scope(&repo), "tags", Some(PAGE), Some(&tag(idx))).await?;
                let want: Vec<String> = (idx + 1..(idx + 1 + PAGE as u64).min(n)).map(tag).collect();
                if tags != want {
                    return Err(format!(
                        "tags after {}: got {} entries (first {}), wanted {} (first {})",
                        tag(idx),
                        tags.len(),
                        tags.first().map_or("none", String::as_str),
                        want.len(),
                        want.first().map_or("none", String::as_str),
                    ));
                }
                if idx + 1 + (PAGE as u64) < n && !next {
                    return Err(format!("tags after {}: no Link rel=\"next\"", tag(idx)));
                }
                Ok(Work::requests(1))
            }
        })
        .await;
    Ok(vec![row])
}

/// The repositories the catalog scenario lists: `n` of them named `prefix` + a number, made
/// by cross-repository mounts unless they exist already. Returns (n, prefix, setup note).
pub async fn catalog_repositories(ctx: &Ctx) -> Result<(u64, &'static str, String), String> {
    let n = ctx.pick(10_000u64, 1_000);
    let prefix = ctx.pick("library/bench-cat-", "library/bench-catq-");
    let name = move |i: u64| format!("{prefix}{i:05}");
    let reg = ctx.client(SETUP_CONC).await?;
    let mut note = String::new();
    if has_tag(&reg, &name(n - 1), "latest").await {
        eprintln!("  setup: {n} repositories {prefix}* already exist");
    } else {
        let img = Arc::new(Image::random(data::seed(&[0xCA7]), 1, 1));
        let src = name(0);
        img.push(&reg, &src, "latest").await?;
        let fallbacks = Arc::new(AtomicU64::new(0));
        let (r, f) = (reg.clone(), fallbacks.clone());
        setup("mount blobs and PUT a manifest per repository", SETUP_CONC, n - 1, move |i| {
            let (r, img, src, f) = (r.clone(), img.clone(), src.clone(), f.clone());
            async move {
                let repo = name(i + 1);
                let mut requests = 1;
                for b in img.blobs() {
                    requests += 1;
                    if !r.mount(&repo, &b.digest, &src).await? {
                        f.fetch_add(1, Ordering::Relaxed);
                        r.upload_small(&repo, &b.digest, &b.data).await?;
                        requests += 3;
                    }
                }
                r.put_manifest(&repo, "latest", &img.manifest).await?;
                Ok(Work::requests(requests))
            }
        })
        .await?;
        let f = fallbacks.load(Ordering::Relaxed);
        if f > 0 {
            note = format!("setup: {f} mounts answered 202 and were uploaded instead");
        }
    }
    Ok((n, prefix, note))
}

pub async fn catalog(ctx: &Ctx) -> Result<Vec<Row>, String> {
    let (n, prefix, note) = catalog_repositories(ctx).await?;
    let name = move |i: u64| format!("{prefix}{i:05}");
    let reg = ctx.client(CONC).await?;
    let nonce = ctx.nonce;
    let row = ctx
        .measure("catalog", Unit::Requests, CONC, ctx.pick(2_000, 500), LIMIT, move |i| {
            let reg = reg.clone();
            async move {
                let idx = XorShift::new(data::seed(&[nonce, i])).range(0, n - 1);
                let last = name(idx);
                let scope = "registry:catalog:*".to_string();
                let (repos, next) = reg.page("/v2/_catalog", scope, "repositories", Some(PAGE), Some(&last)).await?;
                check_catalog(&repos, next, &last, idx, n, &name).map(|_| Work::requests(1))
            }
        })
        .await;
    Ok(vec![row.with_note(note)])
}

/// A page after `last` (= our repository `idx` of `n`): at most PAGE sorted
/// names after `last`, starting with our next repositories; full and
/// followed by a Link while more of ours remain.
fn check_catalog(repos: &[String], next: bool, last: &str, idx: u64, n: u64, name: &impl Fn(u64) -> String) -> Result<(), String> {
    let ours_left = n - 1 - idx;
    if repos.len() > PAGE {
        return Err(format!("catalog after {last}: {} entries for n={PAGE}", repos.len()));
    }
    if repos.windows(2).any(|w| w[0] >= w[1]) || repos.first().is_some_and(|f| f.as_str() <= last) {
        return Err(format!("catalog after {last}: entries not sorted after last"));
    }
    let want = ours_left.min(PAGE as u64);
    for k in 0..want {
        if repos.get(k as usize) != Some(&name(idx + 1 + k)) {
            return Err(format!("catalog after {last}: entry {k} is {:?}, wanted {}", repos.get(k as usize), name(idx + 1 + k)));
        }
    }
    if ours_left > PAGE as u64 && !next {
        return Err(format!("catalog after {last}: no Link rel=\"next\""));
    }
    Ok(())
}
