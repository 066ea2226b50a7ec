//! Push latency while hostile manifests arrive, on SQLite: alone in its test binary, so no
//! other test's load is measured with it.

mod common;

use common::{Db, TestApp, sha256};
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

const IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";

fn absent_digests(n: usize, salt: &str) -> Vec<String> {
    (0..n).map(|i| sha256(format!("absent {salt} {i}").as_bytes())).collect()
}

async fn push_config(t: &TestApp, tok: &str, repo: &str) -> (String, usize) {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    (t.push_blob(tok, repo, config).await, config.len())
}

/// The p-th percentile of `xs` (sorted in place).
fn percentile(xs: &mut [Duration], p: f64) -> Duration {
    xs.sort();
    xs[((xs.len() as f64 - 1.0) * p).round() as usize]
}

/// While hostile clients keep pushing manifests of 10,000 references (missing ones, held ones
/// repeated, or one over the cap), an ordinary client's small pushes stay fast: the missing
/// ones are found without the writer and nothing else holds it for long.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pushes_stay_fast_while_hostile_manifests_arrive() {
    let t = Arc::new(TestApp::start(Db::Sqlite).await);
    let hostile_repo = "library/hostile";
    let hostile = t.admin_token(hostile_repo).await;
    let config = push_config(&t, &hostile, hostile_repo).await;
    let held = vec![t.push_blob(&hostile, hostile_repo, b"a held layer").await; 9_999];
    let stop = Instant::now() + Duration::from_secs(4);
    let mut attackers = tokio::task::JoinSet::new();
    for kind in ["absent", "absent", "over", "held", "held"] {
        let (t, tok, config, held) = (t.clone(), hostile.clone(), config.clone(), held.clone());
        attackers.spawn(async move {
            // One body per client, made once, so the test's own work stays small.
            let (body, want) = match kind {
                "absent" => (common::image_manifest(&config, &absent_digests(9_999, kind), kind), StatusCode::BAD_REQUEST),
                "over" => (common::image_manifest(&config, &absent_digests(10_000, kind), kind), StatusCode::BAD_REQUEST),
                _ => (common::image_manifest(&config, &held, kind), StatusCode::CREATED),
            };
            let mut n = 0u32;
            while Instant::now() < stop {
                n += 1;
                let r = t.put_manifest(&tok, hostile_repo, &format!("h{n}"), IMAGE, &body).await;
                assert_eq!(r.status(), want, "{kind}: {}", r.text().await.unwrap());
            }
            n
        });
    }
    // Give the attackers a moment to be under way.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let repo = "library/ordinary";
    let tok = t.admin_token(repo).await;
    let (mut manifests, mut images) = (Vec::new(), Vec::new());
    let mut i = 0;
    while Instant::now() + Duration::from_millis(200) < stop {
        i += 1;
        let started = Instant::now();
        let config = push_config(&t, &tok, repo).await;
        let layer = t.push_blob(&tok, repo, format!("ordinary layer {i}").as_bytes()).await;
        let body = common::image_manifest(&config, &[layer], &format!("ordinary {i}"));
        let put = Instant::now();
        let r = t.put_manifest(&tok, repo, &format!("v{i}"), IMAGE, &body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        manifests.push(put.elapsed());
        images.push(started.elapsed());
    }
    let mut rounds = Vec::new();
    while let Some(n) = attackers.join_next().await {
        rounds.push(n.unwrap());
    }
    let (p95, max) = (percentile(&mut manifests, 0.95), *manifests.last().unwrap());
    let image_p95 = percentile(&mut images, 0.95);
    eprintln!(
        "{} ordinary pushes: manifest PUT p95 {p95:?} max {max:?}, whole image p95 {image_p95:?}; hostile manifests per client: {rounds:?}",
        manifests.len()
    );
    assert!(manifests.len() >= 20, "only {} ordinary pushes finished", manifests.len());
    assert!(rounds.iter().all(|n| *n >= 3), "the hostile clients were not kept busy: {rounds:?}");
    assert!(p95 < Duration::from_millis(100), "manifest PUT p95 {p95:?}");
    Arc::into_inner(t).expect("attackers are done").shutdown().await;
}
