//! Bounded work per request: the references of one manifest are capped and checked without
//! the writer, and uploads in progress are bounded per account and per client address
//! (push latency under hostile manifests: `push_latency.rs`).

mod common;

use common::{ADMIN_PASSWORD, Db, TestApp, error_code, sha256};
use reqwest::StatusCode;
use std::time::{Duration, Instant};

const IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// `n` distinct digests that no blob has.
fn absent_digests(n: usize, salt: &str) -> Vec<String> {
    (0..n).map(|i| sha256(format!("absent {salt} {i}").as_bytes())).collect()
}

/// Records `n` blobs as verified and linked to `repo` (a manifest push never reads a layer's
/// bytes, so only their rows matter); returns their digests.
async fn seed_layers(t: &TestApp, repo: &str, n: usize) -> Vec<String> {
    let digests: Vec<String> = (0..n).map(|i| sha256(format!("layer {repo} {i}").as_bytes())).collect();
    let commits = digests.iter().map(|d| t.app.meta.commit_blob(repo, d, 1, None));
    for r in futures_util::future::join_all(commits).await {
        r.unwrap();
    }
    digests
}

fn index(children: &[String]) -> Vec<u8> {
    let manifests: Vec<_> = children.iter().map(|d| serde_json::json!({"mediaType": IMAGE, "digest": d, "size": 100})).collect();
    serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests})).unwrap()
}

async fn push_config(t: &TestApp, tok: &str, repo: &str) -> (String, usize) {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    (t.push_blob(tok, repo, config).await, config.len())
}

async fn message(r: reqwest::Response) -> (StatusCode, String, String) {
    let status = r.status();
    let v: serde_json::Value = r.json().await.unwrap();
    (status, v["errors"][0]["code"].as_str().unwrap_or("").to_string(), v["errors"][0]["message"].as_str().unwrap_or("").to_string())
}

/// At the default cap of 10,000 references a manifest is checked in full (no statement runs
/// out of bound parameters) and refused or stored; one reference more is refused as invalid.
async fn manifest_references_are_capped(db: Db) {
    let t = TestApp::start(db).await;
    let repo = "library/many";
    let tok = t.admin_token(repo).await;
    let config = push_config(&t, &tok, repo).await;

    // 10,000 references the repository does not hold: refused, naming the first missing one.
    let absent = absent_digests(9_999, "a");
    let r = t.put_manifest(&tok, repo, "absent", IMAGE, &common::image_manifest(&config, &absent, "absent")).await;
    let (status, code, msg) = message(r).await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"), "{msg}");
    assert!(msg.contains(&absent[0]), "{msg}");

    // One reference more than the cap: refused before anything is looked up.
    let r = t.put_manifest(&tok, repo, "over", IMAGE, &common::image_manifest(&config, &absent_digests(10_000, "b"), "over")).await;
    let (status, code, msg) = message(r).await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"), "{msg}");
    assert!(msg.contains("10001") && msg.contains("at most 10000"), "{msg}");

    // 10,000 references it holds (config and 9,999 layers, the last one missing at first).
    let layers = seed_layers(&t, repo, 9_999).await;
    let body = common::image_manifest(&config, &layers, "held");
    let r = t.put_manifest(&tok, repo, "held", IMAGE, &body).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
    let r = t.get(Some(&tok), &format!("/v2/{repo}/manifests/held")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice());
    let mut one_missing = layers.clone();
    one_missing[9_998] = absent[5].clone();
    let r = t.put_manifest(&tok, repo, "one-missing", IMAGE, &common::image_manifest(&config, &one_missing, "one missing")).await;
    let (status, code, msg) = message(r).await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"), "{msg}");
    assert!(msg.contains(&absent[5]), "{msg}");
    let r = t.get(Some(&tok), &format!("/v2/{repo}/manifests/one-missing")).await;
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");

    // An index of 10,000 children it does not have: refused the same way.
    let r = t.put_manifest(&tok, repo, "index", INDEX, &index(&absent_digests(10_000, "c"))).await;
    let (status, code, _) = message(r).await;
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"));
    let r = t.put_manifest(&tok, repo, "index", INDEX, &index(&absent_digests(10_001, "c"))).await;
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");

    // The cap is a setting.
    let small = TestApp::start_with(db, |c| c.manifest_max_references = 3).await;
    let tok = small.admin_token(repo).await;
    let config = push_config(&small, &tok, repo).await;
    let layers = seed_layers(&small, repo, 3).await;
    let r = small.put_manifest(&tok, repo, "three", IMAGE, &common::image_manifest(&config, &layers[..2], "three")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = small.put_manifest(&tok, repo, "four", IMAGE, &common::image_manifest(&config, &layers, "four")).await;
    let (status, code, msg) = message(r).await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"), "{msg}");
    assert!(msg.contains("at most 3"), "{msg}");
    small.shutdown().await;
    t.shutdown().await;
}

/// A client whose source address is `ip` (any of 127.0.0.0/8 reaches the test server).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(Some(ip.parse().unwrap())).build().unwrap()
}

/// Starts a session and stores a first chunk of `len` bytes; returns the status and the
/// session's location (Ok) or the error's (code, message).
async fn open_session(
    t: &TestApp,
    http: &reqwest::Client,
    tok: &str,
    repo: &str,
    len: usize,
) -> Result<String, (StatusCode, String, String)> {
    let r = http.post(format!("{}/v2/{repo}/blobs/uploads/", t.url)).bearer_auth(tok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let r = http.patch(format!("{}{loc}", t.url)).bearer_auth(tok).body(vec![7u8; len]).send().await.unwrap();
    if r.status() == StatusCode::ACCEPTED { Ok(r.headers()["location"].to_str().unwrap().to_string()) } else { Err(message(r).await) }
}

/// Uploads in progress are bounded per account and per client address, in sessions and in
/// bytes; sessions that finish, are cancelled or expire free their share.
async fn uploads_in_progress_are_bounded(db: Db) {
    let t = TestApp::start_with(db, |c| {
        c.upload_max_sessions = 2;
        c.upload_max_bytes = 1000;
        c.upload_expiry = 2;
    })
    .await;
    let repo = "library/up";
    let admin = t.admin_token(repo).await;
    let r = t
        .http
        .post(format!("{}/api/v2.0/users", t.url))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&serde_json::json!({"username": "dev", "email": "dev@example.com", "realname": "Dev", "password": "Dev-Pass-1234"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = t
        .http
        .post(format!("{}/api/v2.0/projects/library/members", t.url))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&serde_json::json!({"role_id": 2, "member_user": {"username": "dev"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let dev = t.token(Some(("dev", "Dev-Pass-1234")), &[&format!("repository:{repo}:pull,push")]).await;
    let (a1, a2, a3) = (client_from("127.0.0.1"), client_from("127.0.0.2"), client_from("127.0.0.3"));

    // Two sessions of admin's from 127.0.0.1; a third is refused, from there or elsewhere.
    let first = open_session(&t, &a1, &admin, repo, 100).await.unwrap();
    let second = open_session(&t, &a1, &admin, repo, 100).await.unwrap();
    let (status, code, msg) = open_session(&t, &a2, &admin, repo, 100).await.unwrap_err();
    assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "DENIED"));
    assert!(msg.contains("account admin has 2 uploads in progress"), "{msg}");
    // dev from the same address is refused too; from another address it may upload.
    let (status, code, msg) = open_session(&t, &a1, &dev, repo, 100).await.unwrap_err();
    assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "DENIED"));
    assert!(msg.contains("client address 127.0.0.1 has 2 uploads in progress"), "{msg}");
    let dev_session = open_session(&t, &a3, &dev, repo, 100).await.unwrap();
    // An existing session may go on.
    let r = a1.patch(format!("{}{second}", t.url)).bearer_auth(&admin).body(vec![1u8; 50]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let second = r.headers()["location"].to_str().unwrap().to_string();

    // Finishing one frees its share.
    let data = [vec![7u8; 100], vec![1u8; 50]].concat();
    let r = a1.put(format!("{}{second}", t.url)).query(&[("digest", sha256(&data))]).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let third = open_session(&t, &a2, &admin, repo, 100).await.unwrap();
    // Cancelling one frees its share.
    assert!(open_session(&t, &a2, &admin, repo, 100).await.is_err());
    let r = a1.delete(format!("{}{first}", t.url)).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // Bytes: admin holds 100 (third); a chunk that would take it past 1000 is refused...
    let r = a2.patch(format!("{}{third}", t.url)).bearer_auth(&admin).body(vec![1u8; 901]).send().await.unwrap();
    let (status, code, msg) = message(r).await;
    assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "DENIED"));
    assert!(msg.contains("holds 100 bytes") && msg.contains("1000 bytes"), "{msg}");
    let r = a2.patch(format!("{}{third}", t.url)).bearer_auth(&admin).body(vec![1u8; 900]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // ...and one of undeclared length that does ends its session.
    let r = a2.delete(format!("{}{third}", t.url)).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let fourth = open_session(&t, &a2, &admin, repo, 600).await.unwrap();
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(vec![2u8; 500]))]);
    let r = a2.patch(format!("{}{fourth}", t.url)).bearer_auth(&admin).body(reqwest::Body::wrap_stream(stream)).send().await.unwrap();
    let (status, code, msg) = message(r).await;
    assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "DENIED"), "{msg}");
    assert!(msg.contains("was cancelled"), "{msg}");
    let r = a2.get(format!("{}{fourth}", t.url)).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Bytes count per address too: dev holds 100 from 127.0.0.3, admin nothing.
    let (status, _, msg) = open_session(&t, &a3, &admin, repo, 901).await.unwrap_err();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(msg.contains("client address 127.0.0.3 holds 100 bytes"), "{msg}");
    let r = a3.delete(format!("{}{dev_session}", t.url)).bearer_auth(&dev).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    t.shutdown().await;

    // Sessions that expire free their share.
    let t = TestApp::start_with(db, |c| {
        c.upload_max_sessions = 1;
        c.upload_expiry = 2;
    })
    .await;
    let admin = t.admin_token(repo).await;
    open_session(&t, &t.http, &admin, repo, 10).await.unwrap();
    let (status, _, msg) = open_session(&t, &t.http, &admin, repo, 10).await.unwrap_err();
    assert_eq!(status, StatusCode::FORBIDDEN, "{msg}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        match open_session(&t, &t.http, &admin, repo, 10).await {
            Ok(_) => break,
            Err(e) => assert!(Instant::now() < deadline, "expired sessions still count: {e:?}"),
        }
    }
    t.shutdown().await;
}

on_both_backends! {
    manifest_references_are_capped => manifest_references_are_capped;
    uploads_in_progress_are_bounded => uploads_in_progress_are_bounded;
}
