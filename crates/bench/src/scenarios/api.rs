//! Harbor API list speed (Berth or Harbor only; plain registries have no `/api/v2.0`):
//! `api-artifacts` pages through one repository of 50,000 tagged artifacts, with tags and
//! labels; `api-repositories` pages through a project of 10,000 repositories (the catalog
//! scenario's).

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Ctx, setup};
use crate::client::Registry;
use crate::data::{self, XorShift};
use crate::image::Image;
use crate::report::{Row, Unit};
use crate::stats::Work;

/// The scenarios of this file, which run only when named.
pub const NAMES: &[&str] = &["api-artifacts", "api-repositories"];

const LIMIT: Duration = Duration::from_secs(120);
const PAGE: u64 = 100;
const SETUP_CONC: usize = 16;
const CONC: usize = 4;
/// Every LABEL_EVERY-th artifact carries the benchmark's label.
const LABEL_EVERY: u64 = 10;

async fn json_of(resp: reqwest::Response, what: &str) -> Result<(Value, u64), String> {
    let status = resp.status();
    let total = resp.headers().get("x-total-count").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    let body = resp.text().await.map_err(|e| format!("{what}: {e}"))?;
    if status != StatusCode::OK && status != StatusCode::CREATED {
        return Err(format!("{what}: HTTP {status}: {}", &body[..body.len().min(300)]));
    }
    Ok((serde_json::from_str(&body).unwrap_or(Value::Null), total))
}

/// The id of the benchmark's global label, created when missing.
async fn label(reg: &Registry) -> Result<i64, String> {
    let r = reg.api(Method::POST, "/api/v2.0/labels", Some(json!({"name": "bench", "scope": "g"}))).await?;
    if r.status() != StatusCode::CREATED && r.status() != StatusCode::CONFLICT {
        return Err(format!("POST /api/v2.0/labels: HTTP {}", r.status()));
    }
    let (v, _) = json_of(reg.api(Method::GET, "/api/v2.0/labels?scope=g&name=bench", None).await?, "GET /labels").await?;
    v.as_array()
        .and_then(|a| a.iter().find(|l| l["name"] == "bench"))
        .and_then(|l| l["id"].as_i64())
        .ok_or_else(|| "the bench label is not listed".to_string())
}

pub async fn artifacts(ctx: &Ctx) -> Result<Vec<Row>, String> {
    let n = ctx.pick(50_000u64, 2_000);
    let repo = format!("library/bench-api-{n}");
    let tag = |i: u64| format!("a-{i:05}");
    let reg = ctx.client(SETUP_CONC).await?;
    let label_id = label(&reg).await?;
    let path = format!("/api/v2.0/projects/library/repositories/{}/artifacts", repo.trim_start_matches("library/").replace('/', "%252F"));
    let (_, have) =
        json_of(reg.api(Method::GET, &format!("{path}?page_size=1"), None).await?, "list artifacts").await.unwrap_or((Value::Null, 0));
    if have >= n {
        eprintln!("  setup: {repo} already has {have} artifacts");
    } else {
        // One config and layer; each artifact is a manifest of its own (an annotation differs).
        let img = Arc::new(Image::random(data::seed(&[0xA57]), 1, 1));
        img.push(&reg, &repo, "seed").await?;
        let base: Value = serde_json::from_slice(&img.manifest).map_err(|e| e.to_string())?;
        let (r, rp, b) = (reg.clone(), repo.clone(), Arc::new(base));
        setup("PUT a distinct tagged manifest per artifact", SETUP_CONC, n, move |i| {
            let (r, rp, b) = (r.clone(), rp.clone(), b.clone());
            async move {
                let mut m = (*b).clone();
                m["annotations"] = json!({"org.example.bench.n": i.to_string()});
                r.put_manifest(&rp, &tag(i), &bytes::Bytes::from(m.to_string())).await?;
                Ok(Work::requests(1))
            }
        })
        .await?;
        let (r, p) = (reg.clone(), path.clone());
        setup("label every 10th artifact", SETUP_CONC, n / LABEL_EVERY, move |i| {
            let (r, p) = (r.clone(), p.clone());
            async move {
                let resp = r.api(Method::POST, &format!("{p}/{}/labels", tag(i * LABEL_EVERY)), Some(json!({"id": label_id}))).await?;
                if resp.status() != StatusCode::OK && resp.status() != StatusCode::CONFLICT {
                    return Err(format!("label artifact: HTTP {}", resp.status()));
                }
                Ok(Work::requests(1))
            }
        })
        .await?;
    }
    let reg = ctx.client(CONC).await?;
    let pages = n.div_ceil(PAGE);
    let nonce = ctx.nonce;
    let row = ctx
        .measure("api-artifacts", Unit::Requests, CONC, ctx.pick(1_000, 200), LIMIT, move |i| {
            let (reg, path) = (reg.clone(), path.clone());
            async move {
                let page = XorShift::new(data::seed(&[nonce, i])).range(1, pages);
                let url = format!("{path}?page={page}&page_size={PAGE}&with_tag=true&with_label=true");
                let (v, total) = json_of(reg.api(Method::GET, &url, None).await?, "list artifacts").await?;
                let items = v.as_array().ok_or("artifact list is not an array")?;
                // The repository holds n artifacts, plus the seed image.
                let want = (total.saturating_sub((page - 1) * PAGE)).min(PAGE) as usize;
                if total < n || items.len() != want {
                    return Err(format!("page {page}: {} items of {total}, wanted {want} of at least {n}", items.len()));
                }
                if items.iter().any(|a| a["tags"].as_array().is_none_or(|t| t.is_empty()) || a["labels"].as_array().is_none()) {
                    return Err(format!("page {page}: an artifact without tags or labels"));
                }
                Ok(Work::requests(1))
            }
        })
        .await;
    Ok(vec![row])
}

pub async fn repositories(ctx: &Ctx) -> Result<Vec<Row>, String> {
    let (n, _, note) = super::listing::catalog_repositories(ctx).await?;
    let reg = ctx.client(CONC).await?;
    let pages = n.div_ceil(PAGE);
    let nonce = ctx.nonce;
    let row = ctx
        .measure("api-repositories", Unit::Requests, CONC, ctx.pick(1_000, 200), LIMIT, move |i| {
            let reg = reg.clone();
            async move {
                let page = XorShift::new(data::seed(&[nonce, i])).range(1, pages);
                let url = format!("/api/v2.0/projects/library/repositories?page={page}&page_size={PAGE}");
                let (v, total) = json_of(reg.api(Method::GET, &url, None).await?, "list repositories").await?;
                let items = v.as_array().ok_or("repository list is not an array")?;
                if total < n || items.len() != PAGE as usize || items.iter().any(|r| r["artifact_count"].as_i64().is_none()) {
                    return Err(format!("page {page}: {} repositories of {total}, wanted {PAGE} of at least {n}", items.len()));
                }
                Ok(Work::requests(1))
            }
        })
        .await;
    Ok(vec![row.with_note(note)])
}
