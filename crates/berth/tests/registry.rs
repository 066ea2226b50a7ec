//! The registry's behaviour over HTTP, run against SQLite and against PostgreSQL.

mod common;

use common::{ADMIN_PASSWORD, Db, TestApp, error_code, random_bytes, sha256};
use reqwest::StatusCode;

async fn push_pull_round_trip(db: Db) {
    let t = TestApp::start(db).await;
    let tok = t.admin_token("library/app").await;
    let layer = random_bytes(300_000);
    let (digest, body) = t.push_image(&tok, "library/app", "v1", &[&layer]).await;

    // Anonymous pull from the public project `library`.
    let anon = t.token(None, &["repository:library/app:pull"]).await;
    let r = t.get(Some(&anon), "/v2/library/app/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(r.headers()["content-type"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice());
    let r = t.get(Some(&anon), &format!("/v2/library/app/manifests/{digest}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = t.get(Some(&anon), &format!("/v2/library/app/blobs/{}", sha256(&layer))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["docker-content-digest"], sha256(&layer).as_str());
    assert_eq!(r.bytes().await.unwrap().as_ref(), layer.as_slice());

    // Anonymous callers cannot push, not even with a token: the token carries pull only.
    let anon_push = t.token(None, &["repository:library/app:pull,push"]).await;
    let r = t.http.post(format!("{}/v2/library/app/blobs/uploads/", t.url)).bearer_auth(&anon_push).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"repository:library/app:pull,push\""),
        "{challenge}"
    );
    let r = t.http.post(format!("{}/v2/library/app/blobs/uploads/", t.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(challenge.starts_with("Bearer realm=\"http://127.0.0.1:"), "{challenge}");
    assert!(
        challenge.contains("service=\"harbor-registry\"") && challenge.contains("scope=\"repository:library/app:pull,push\""),
        "{challenge}"
    );

    // Basic credentials work directly on /v2 too.
    let r = t.http.get(format!("{}/v2/library/app/tags/list", t.url)).basic_auth("admin", Some(ADMIN_PASSWORD)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v, serde_json::json!({"name": "library/app", "tags": ["v1"]}));
    let r = t.http.get(format!("{}/v2/", t.url)).basic_auth("admin", Some("wrong")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    t.shutdown().await;
}

async fn push_to_missing_project(db: Db) {
    let t = TestApp::start(db).await;
    let tok = t.admin_token("nosuch/app").await;
    let data = b"some blob";
    // Blobs may be uploaded (the project check happens when the manifest arrives)...
    let digest = t.push_blob(&tok, "nosuch/app", data).await;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{digest}","size":{}}},"layers":[]}}"#,
        data.len()
    );
    let r = t.put_manifest(&tok, "nosuch/app", "v1", "application/vnd.oci.image.manifest.v1+json", manifest.as_bytes()).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "NAME_UNKNOWN");
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("project nosuch not found"), "{v}");
    // A caller who is not an admin gets no token scope there at all, the same as for a private project.
    let anon = t.token(None, &["repository:nosuch/app:pull,push"]).await;
    let r = t.get(Some(&anon), "/v2/nosuch/app/tags/list").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    t.shutdown().await;
}

async fn tags_catalog_and_deletes(db: Db) {
    let t = TestApp::start(db).await;
    let tok = t.admin_token("library/many").await;
    let (digest, body) = t.push_image(&tok, "library/many", "t00", &[b"layer"]).await;
    for i in 1..25 {
        let r = t.put_manifest(&tok, "library/many", &format!("t{i:02}"), "application/vnd.oci.image.manifest.v1+json", &body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = t.get(Some(&tok), "/v2/library/many/tags/list?n=10&last=t04").await;
    assert_eq!(r.status(), StatusCode::OK);
    let link = r.headers()["link"].to_str().unwrap().to_string();
    assert_eq!(link, "</v2/library/many/tags/list?n=10&last=t14>; rel=\"next\"");
    let v: serde_json::Value = r.json().await.unwrap();
    let tags: Vec<String> = (5..15).map(|i| format!("t{i:02}")).collect();
    assert_eq!(v["tags"], serde_json::json!(tags));
    let r = t.get(Some(&tok), "/v2/library/many/tags/list?n=10&last=t20").await;
    assert!(r.headers().get("link").is_none());
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["tags"].as_array().unwrap().len(), 4);

    // Catalog: admin only.
    let tok2 = t.admin_token("library/other").await;
    t.push_image(&tok2, "library/other", "x", &[b"l2"]).await;
    let cat = t.token(Some(("admin", ADMIN_PASSWORD)), &["registry:catalog:*"]).await;
    let r = t.get(Some(&cat), "/v2/_catalog?n=1").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["link"], "</v2/_catalog?n=1&last=library/many>; rel=\"next\"");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["repositories"], serde_json::json!(["library/many"]));
    let anon = t.token(None, &["registry:catalog:*"]).await;
    assert_eq!(t.get(Some(&anon), "/v2/_catalog").await.status(), StatusCode::UNAUTHORIZED);

    // DELETE by tag removes only the tag; by digest removes the manifest and every tag.
    let r = t.http.delete(format!("{}/v2/library/many/manifests/t00", t.url)).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(t.get(Some(&tok), "/v2/library/many/manifests/t00").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(t.get(Some(&tok), "/v2/library/many/manifests/t01").await.status(), StatusCode::OK);
    let r = t.http.delete(format!("{}/v2/library/many/manifests/{digest}", t.url)).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = t.get(Some(&tok), "/v2/library/many/manifests/t01").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");
    let v: serde_json::Value = t.get(Some(&tok), "/v2/library/many/tags/list").await.json().await.unwrap();
    assert_eq!(v["tags"], serde_json::json!([]));
    t.shutdown().await;
}

async fn chunked_upload_and_mount(db: Db) {
    let t = TestApp::start(db).await;
    let tok = t.token(Some(("admin", ADMIN_PASSWORD)), &["repository:library/dst:pull,push", "repository:library/src:pull"]).await;
    let data = random_bytes(3 * 100_000 + 17);
    let digest = sha256(&data);
    let r = t.http.post(format!("{}/v2/library/src/blobs/uploads/", t.url)).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the token holds only pull on library/src");
    let tok_src = t.admin_token("library/src").await;
    let r = t.http.post(format!("{}/v2/library/src/blobs/uploads/", t.url)).bearer_auth(&tok_src).send().await.unwrap();
    let mut loc = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(r.headers()["range"], "0-0");
    for (i, chunk) in data.chunks(100_000).enumerate() {
        let start = i * 100_000;
        let r = t
            .http
            .patch(format!("{}{loc}", t.url))
            .bearer_auth(&tok_src)
            .header("content-range", format!("{start}-{}", start + chunk.len() - 1))
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(r.headers()["range"].to_str().unwrap(), format!("0-{}", start + chunk.len() - 1));
        loc = r.headers()["location"].to_str().unwrap().to_string();
    }
    // A chunk out of order is refused with the current range.
    let r =
        t.http.patch(format!("{}{loc}", t.url)).bearer_auth(&tok_src).header("content-range", "5-9").body("abcde").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.headers()["range"].to_str().unwrap(), format!("0-{}", data.len() - 1));
    let r = t.get(Some(&tok_src), &loc).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = t.http.put(format!("{}{loc}", t.url)).query(&[("digest", &digest)]).bearer_auth(&tok_src).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = t.get(Some(&tok_src), &format!("/v2/library/src/blobs/{digest}")).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());

    // Mount into library/dst: 201 when the source may be read.
    let r = t
        .http
        .post(format!("{}/v2/library/dst/blobs/uploads/?mount={digest}&from=library/src", t.url))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["location"].to_str().unwrap(), format!("/v2/library/dst/blobs/{digest}"));
    let r = t.http.head(format!("{}/v2/library/dst/blobs/{digest}", t.url)).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"].to_str().unwrap(), data.len().to_string());
    // A mount of an unknown blob starts an ordinary upload.
    let missing = sha256(b"not stored");
    let r = t
        .http
        .post(format!("{}/v2/library/dst/blobs/uploads/?mount={missing}&from=library/src", t.url))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    t.shutdown().await;
}

/// Blob uploads that finish at the same moment are recorded together (group commit): each is
/// linked to its own repository only, a blob pushed to several repositories at once is one
/// blob, and the session rows of chunked uploads are gone.
async fn concurrent_blob_commits(db: Db) {
    let t = std::sync::Arc::new(TestApp::start(db).await);
    let repos = ["library/g1", "library/g2", "library/g3"];
    let scopes: Vec<String> = repos.iter().map(|r| format!("repository:{r}:pull,push")).collect();
    let tok = t.token(Some(("admin", ADMIN_PASSWORD)), &scopes.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let shared = random_bytes(50_000);
    let mut jobs = tokio::task::JoinSet::new();
    for i in 0..48 {
        let (t, tok) = (t.clone(), tok.clone());
        let repo = repos[i % 3];
        // Every fourth upload is the same blob in each repository; the rest are their own.
        let data = if i % 4 == 0 { shared.clone() } else { random_bytes(1_000 + i) };
        jobs.spawn(async move {
            let r = t.http.post(format!("{}/v2/{repo}/blobs/uploads/", t.url)).bearer_auth(&tok).send().await.unwrap();
            let loc = r.headers()["location"].to_str().unwrap().to_string();
            let id = loc.rsplit('/').next().unwrap().to_string();
            let digest = sha256(&data);
            let put = if i % 2 == 0 {
                // Chunked: the PATCH records a session row, which the commit must remove.
                let r = t.http.patch(format!("{}{loc}", t.url)).bearer_auth(&tok).body(data.clone()).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::ACCEPTED);
                let loc = r.headers()["location"].to_str().unwrap().to_string();
                t.http.put(format!("{}{loc}", t.url)).query(&[("digest", &digest)]).bearer_auth(&tok)
            } else {
                t.http.put(format!("{}{loc}", t.url)).query(&[("digest", &digest)]).bearer_auth(&tok).body(data.clone())
            };
            assert_eq!(put.send().await.unwrap().status(), StatusCode::CREATED);
            (repo, digest, data.len(), id)
        });
    }
    let done = jobs.join_all().await;
    assert_eq!(done.len(), 48);
    for (repo, digest, len, id) in &done {
        assert_eq!(t.app.meta.repo_blob(repo, digest).await.unwrap(), Some(*len as i64), "{repo} {digest}");
        assert!(t.app.meta.upload(id).await.unwrap().is_none(), "upload {id} still has a row");
        for other in repos.iter().filter(|r| *r != repo) {
            let elsewhere = done.iter().any(|(r, d, _, _)| r == other && d == digest);
            assert_eq!(t.app.meta.repo_blob(other, digest).await.unwrap().is_some(), elsewhere, "{digest} in {other}");
        }
    }
    assert_eq!(t.app.meta.blob_size(&sha256(&shared)).await.unwrap(), Some(shared.len() as i64));
    let only_g3 = done.iter().find(|(r, d, _, _)| *r == "library/g3" && *d != sha256(&shared)).unwrap();
    let r = t.get(Some(&tok), &format!("/v2/library/g2/blobs/{}", only_g3.1)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "a blob pushed to library/g3 only is not served from library/g2");
    std::sync::Arc::into_inner(t).expect("every upload task has ended").shutdown().await;
}

async fn bad_input_leaves_nothing(db: Db) {
    let t = TestApp::start(db).await;
    let tok = t.admin_token("library/bad").await;
    let data = b"payload";
    let wrong = sha256(b"other");
    let r = t
        .http
        .post(format!("{}/v2/library/bad/blobs/uploads/", t.url))
        .query(&[("digest", &wrong)])
        .bearer_auth(&tok)
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    for d in [&wrong, &sha256(data)] {
        let r = t.http.head(format!("{}/v2/library/bad/blobs/{d}", t.url)).bearer_auth(&tok).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    assert!(t.app.meta.blob_size(&sha256(data)).await.unwrap().is_none());
    let uploads = std::fs::read_dir(t.app.config.data.join("storage/uploads")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(uploads, 0, "a refused upload leaves no bytes behind");

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("application/vnd.oci.image.manifest.v1+json", b"{not json".to_vec(), "MANIFEST_INVALID"),
        ("application/vnd.docker.distribution.manifest.v1+prettyjws", br#"{"schemaVersion":1}"#.to_vec(), "MANIFEST_INVALID"),
        (
            "application/vnd.oci.image.manifest.v1+json",
            format!(r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{wrong}","size":1}},"layers":[]}}"#).into_bytes(),
            "MANIFEST_BLOB_UNKNOWN",
        ),
        (
            "application/vnd.oci.image.index.v1+json",
            format!(r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{wrong}","size":1}}]}}"#)
                .into_bytes(),
            "MANIFEST_UNKNOWN",
        ),
    ];
    for (ct, body, code) in cases {
        let r = t.put_manifest(&tok, "library/bad", "v1", ct, &body).await;
        let status = r.status();
        assert_eq!(error_code(r).await, code);
        assert!(status.is_client_error());
    }
    let big = vec![b' '; (4 << 20) + 1];
    let r = t.put_manifest(&tok, "library/bad", "v1", "application/vnd.oci.image.manifest.v1+json", &big).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(t.get(Some(&tok), "/v2/library/bad/tags/list").await.status(), StatusCode::NOT_FOUND, "no repository was created");

    let r = t.get(Some(&tok), "/v2/library/Bad/tags/list").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "NAME_INVALID");
    let r = t.get(Some(&tok), "/v2/library/bad/blobs/uploads/00000000-0000-4000-8000-000000000000").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    let r = t.get(Some(&tok), "/v2/library/bad/manifests/sha256:1234").await;
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    t.shutdown().await;
}

async fn referrers(db: Db) {
    let t = TestApp::start(db).await;
    let tok = t.admin_token("library/ref").await;
    let (subject, body) = t.push_image(&tok, "library/ref", "v1", &[b"base"]).await;
    let empty = t.push_blob(&tok, "library/ref", b"{}").await;
    let sig = |at: &str| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"{at}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{empty}","size":2}},"layers":[],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{subject}","size":{}}},"annotations":{{"k":"v"}}}}"#,
            body.len()
        )
    };
    let a = sig("application/vnd.example.sig");
    let r = t.put_manifest(&tok, "library/ref", &sha256(a.as_bytes()), "application/vnd.oci.image.manifest.v1+json", a.as_bytes()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["oci-subject"], subject.as_str());
    let b = sig("application/vnd.example.sbom");
    t.put_manifest(&tok, "library/ref", &sha256(b.as_bytes()), "application/vnd.oci.image.manifest.v1+json", b.as_bytes()).await;
    let r = t.get(Some(&tok), &format!("/v2/library/ref/referrers/{subject}")).await;
    assert_eq!(r.headers()["content-type"], "application/vnd.oci.image.index.v1+json");
    let v: serde_json::Value = r.json().await.unwrap();
    let list = v["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["artifactType"], "application/vnd.example.sig");
    assert_eq!(list[0]["digest"], sha256(a.as_bytes()));
    assert_eq!(list[0]["size"], a.len());
    assert_eq!(list[0]["annotations"]["k"], "v");
    let r = t.get(Some(&tok), &format!("/v2/library/ref/referrers/{subject}?artifactType=application/vnd.example.sbom")).await;
    assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    let r = t.get(Some(&tok), &format!("/v2/library/ref/referrers/{}", sha256(b"none"))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["manifests"], serde_json::json!([]));
    t.shutdown().await;
}

async fn restart_keeps_keys_and_content(db: Db) {
    // SQLite only needs the same data directory; PostgreSQL keeps its own state.
    let t = TestApp::start(db).await;
    let tok = t.admin_token("library/keep").await;
    t.push_image(&tok, "library/keep", "v1", &[b"kept"]).await;
    let config = t.app.config.clone();
    assert!(t.app.auth.tokens.verify(&tok).is_some());
    let meta = t.app.meta.clone();
    let key = meta.signing_key().await.unwrap();
    assert_eq!(key.len(), 32);
    assert_eq!(meta.signing_key().await.unwrap(), key, "the signing key persists");
    drop(config);
    t.shutdown().await;
}

/// Sends a raw HTTP/1.1 request whose body is `sent` bytes while Content-Length says `declared`.
async fn raw_upload(t: &TestApp, digest: &str, declared: usize, sent: &[u8], close: bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = t.url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = base64_basic("admin", ADMIN_PASSWORD);
    let head = format!(
        "POST /v2/library/raw/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(sent).await.unwrap();
    if close {
        s.shutdown().await.unwrap();
    }
    // Read until the response head (and a little body) arrived, the peer closed, or 10 s passed.
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while !out.windows(4).any(|w| w == b"\r\n\r\n") || !out.ends_with(b"}") && out.len() < 300 {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base64_basic(u: &str, p: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
}

async fn bodies_shorter_or_longer_than_declared(db: Db) {
    let t = TestApp::start(db).await;
    let data = random_bytes(200_000);
    let digest = sha256(&data);
    // Shorter: the connection ends before Content-Length bytes arrived.
    let reply = raw_upload(&t, &digest, data.len(), &data[..120_000], true).await;
    assert!(!reply.starts_with("HTTP/1.1 201"), "an incomplete body must not create a blob: {reply}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Longer: only Content-Length bytes are the body, so the digest of the whole does not match.
    let reply = raw_upload(&t, &digest, 100_000, &data, false).await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("DIGEST_INVALID"), "{reply}");
    // Nothing of either attempt is visible or left in storage.
    let tok = t.admin_token("library/raw").await;
    let r = t.http.head(format!("{}/v2/library/raw/blobs/{digest}", t.url)).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(t.app.meta.blob_size(&digest).await.unwrap().is_none());
    let left = std::fs::read_dir(t.app.config.data.join("storage/uploads")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "no upload bytes are left behind");
    assert!(t.app.meta.stale_uploads(i64::MAX, 10).await.unwrap().is_empty(), "no upload session is left behind");
    // The exact body works.
    let reply = raw_upload(&t, &digest, data.len(), &data, false).await;
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    t.shutdown().await;
}

async fn sha512_digests(db: Db) {
    let t = TestApp::start(db).await;
    let tok = t.admin_token("library/s512").await;
    let data = random_bytes(70_000);
    let d512 = format!("sha512:{}", hex::encode(<sha2::Sha512 as sha2::Digest>::digest(&data)));
    let r = t
        .http
        .post(format!("{}/v2/library/s512/blobs/uploads/", t.url))
        .query(&[("digest", &d512)])
        .bearer_auth(&tok)
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["docker-content-digest"], d512.as_str());
    let r = t.get(Some(&tok), &format!("/v2/library/s512/blobs/{d512}")).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());
    let wrong = format!("sha512:{}", "0".repeat(128));
    let r = t
        .http
        .post(format!("{}/v2/library/s512/blobs/uploads/", t.url))
        .query(&[("digest", &wrong)])
        .bearer_auth(&tok)
        .body(data)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    t.shutdown().await;
}

async fn abandoned_uploads_expire(db: Db) {
    let t = TestApp::start_with(db, |c| c.upload_expiry = 1).await;
    let tok = t.admin_token("library/gone").await;
    let r = t.http.post(format!("{}/v2/library/gone/blobs/uploads/", t.url)).bearer_auth(&tok).send().await.unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let r = t.http.patch(format!("{}{loc}", t.url)).bearer_auth(&tok).body(vec![7u8; 50_000]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let uploads = t.app.config.data.join("storage/uploads");
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 1);
    let mut gone = false;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        if t.get(Some(&tok), &loc).await.status() == StatusCode::NOT_FOUND {
            gone = true;
            break;
        }
    }
    assert!(gone, "the abandoned session expired");
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 0, "its bytes were reclaimed");
    t.shutdown().await;
}

async fn private_projects_and_mounts(db: Db) {
    use berth::meta::{Audit, accounts_role as role};
    let t = TestApp::start(db).await;
    let meta = &t.app.meta;
    let hash = berth::auth::hash_password("dev-password-1").await.unwrap();
    let audit = Audit { operator: "admin".into(), resource: "x".into(), resource_type: "test", operation: "create", ..Default::default() };
    let dev = meta.create_user("dev", &hash, false, &audit).await.unwrap();
    let admin = meta.user_by_name("admin").await.unwrap().unwrap().id;
    let team = meta.create_project("team", admin, false, &audit).await.unwrap();
    meta.create_project("secret", admin, false, &audit).await.unwrap();
    meta.set_member(team, dev, role::DEVELOPER, &audit).await.unwrap();

    // Content in the private project `secret`, pushed by the admin.
    let atok = t.admin_token("secret/app").await;
    let data = random_bytes(1000);
    let digest = t.push_blob(&atok, "secret/app", &data).await;
    let (_, _) = t.push_image(&atok, "secret/app", "v1", &[&data]).await;

    // The developer's token carries push on team/app and nothing on secret/app or nosuch/app.
    let dev_creds = Some(("dev", "dev-password-1"));
    let tok =
        t.token(dev_creds, &["repository:team/app:pull,push,delete", "repository:secret/app:pull", "repository:nosuch/app:pull"]).await;
    let claims = t.app.auth.tokens.verify(&tok).unwrap();
    assert_eq!(claims.access.len(), 1);
    assert_eq!(claims.access[0].name, "team/app");
    assert_eq!(claims.access[0].actions, vec!["pull", "push"], "a developer may not delete");

    // Mounting from a repository the caller may not read starts an ordinary upload (202), never 201.
    let r =
        t.http.post(format!("{}/v2/team/app/blobs/uploads/?mount={digest}&from=secret/app", t.url)).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = t.http.head(format!("{}/v2/team/app/blobs/{digest}", t.url)).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // An existing private repository and a missing one look the same to this caller, with Basic too.
    for path in ["/v2/secret/app/manifests/v1", "/v2/nosuch/app/manifests/v1", "/v2/secret/app/tags/list", "/v2/nosuch/app/tags/list"] {
        let r = t.get(Some(&tok), path).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body = r.text().await.unwrap();
        assert_eq!(
            body, r#"{"errors":[{"code":"UNAUTHORIZED","detail":null,"message":"the token does not grant this action"}]}"#,
            "{path}"
        );
        let r = t.http.get(format!("{}{path}", t.url)).basic_auth("dev", Some("dev-password-1")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(error_code(r).await, "DENIED");
    }
    // The developer pushes to team and may not delete there.
    t.push_image(&tok, "team/app", "v1", &[b"team layer"]).await;
    let r = t.http.delete(format!("{}/v2/team/app/manifests/v1", t.url)).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = t.http.delete(format!("{}/v2/team/app/manifests/v1", t.url)).basic_auth("dev", Some("dev-password-1")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Anonymous callers see nothing of a private project.
    let anon = t.token(None, &["repository:team/app:pull"]).await;
    assert!(t.app.auth.tokens.verify(&anon).unwrap().access.is_empty());
    t.shutdown().await;
}

/// Starting an upload writes nothing; its id is signed for its repository, remembered from the
/// first chunk, refused after cancel, elsewhere, when forged, and once expired.
async fn upload_ids(db: Db) {
    let t = TestApp::start_with(db, |c| c.upload_expiry = 2).await;
    let tok = t.token(Some(("admin", ADMIN_PASSWORD)), &["repository:library/a:pull,push", "repository:library/b:pull,push"]).await;
    let start = |repo: &'static str| {
        let (t, tok) = (&t, tok.clone());
        async move {
            let r = t.http.post(format!("{}/v2/{repo}/blobs/uploads/", t.url)).bearer_auth(&tok).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            r.headers()["location"].to_str().unwrap().to_string()
        }
    };
    let loc = start("library/a").await;
    let id = loc.rsplit('/').next().unwrap().to_string();
    assert!(t.app.meta.upload(&id).await.unwrap().is_none(), "POST writes no session row");
    let r = t.http.get(format!("{}{loc}", t.url)).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // The same id in another repository, or with its signature changed, is unknown.
    let r = t.get(Some(&tok), &format!("/v2/library/b/blobs/uploads/{id}")).await;
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    let forged = format!("{}{}", &id[..id.len() - 1], if id.ends_with('0') { '1' } else { '0' });
    let r = t.get(Some(&tok), &format!("/v2/library/a/blobs/uploads/{forged}")).await;
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    // The first chunk records the session; DELETE ends it for good.
    let r = t.http.patch(format!("{}{loc}", t.url)).bearer_auth(&tok).header("content-range", "0-2").body("abc").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(t.app.meta.upload(&id).await.unwrap().unwrap().size, 3);
    let r = t.http.delete(format!("{}{loc}", t.url)).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for r in [
        t.http.get(format!("{}{loc}", t.url)).bearer_auth(&tok).send().await.unwrap(),
        t.http.patch(format!("{}{loc}", t.url)).bearer_auth(&tok).body("abc").send().await.unwrap(),
    ] {
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    }
    // A session never written to is cancelled too.
    let loc = start("library/a").await;
    let r = t.http.delete(format!("{}{loc}", t.url)).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = t.http.put(format!("{}{loc}", t.url)).query(&[("digest", sha256(b"x"))]).bearer_auth(&tok).body("x").send().await.unwrap();
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    // Ids expire with the configured upload lifetime.
    let loc = start("library/a").await;
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let r = t.http.put(format!("{}{loc}", t.url)).query(&[("digest", sha256(b"x"))]).bearer_auth(&tok).body("x").send().await.unwrap();
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    t.shutdown().await;
}

/// Blobs on the local store are sent from mapped windows of their file with sendfile: whole,
/// in ranges that cross windows, to many readers at once, and to a reader whose blob file is
/// unlinked (as garbage collection does) halfway through.
async fn zero_copy_pulls(db: Db) {
    let t = TestApp::start(db).await;
    let tok = t.admin_token("library/big").await;
    let blob = random_bytes((9 << 20) + 321);
    let digest = t.push_blob(&tok, "library/big", &blob).await;
    let url = format!("{}/v2/library/big/blobs/{digest}", t.url);

    let r = t.http.get(&url).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], blob.len().to_string().as_str());
    assert_eq!(r.bytes().await.unwrap().as_ref(), blob.as_slice());
    let r = t.http.head(&url).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.headers()["content-length"], blob.len().to_string().as_str());

    let n = blob.len();
    for (spec, a, b) in [
        (format!("bytes={}-{}", (4 << 20) - 5, (8 << 20) + 5), (4 << 20) - 5, (8 << 20) + 5),
        ("bytes=100-199".to_string(), 100, 199),
        ("bytes=-1000".to_string(), n - 1000, n - 1),
        (format!("bytes={}-", n - 10), n - 10, n - 1),
    ] {
        let r = t.http.get(&url).bearer_auth(&tok).header("range", &spec).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{spec}");
        assert_eq!(r.headers()["content-range"], format!("bytes {a}-{b}/{n}").as_str(), "{spec}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), &blob[a..=b], "{spec}");
    }

    let pulls = (0..8).map(|_| {
        let (http, url, tok) = (t.http.clone(), url.clone(), tok.clone());
        tokio::spawn(async move { http.get(&url).bearer_auth(&tok).send().await.unwrap().bytes().await.unwrap() })
    });
    for p in pulls {
        assert_eq!(p.await.unwrap().as_ref(), blob.as_slice());
    }

    // The file goes while a pull is under way: the pull still gets every byte.
    let mut r = t.http.get(&url).bearer_auth(&tok).send().await.unwrap();
    let mut got = r.chunk().await.unwrap().unwrap().to_vec();
    let hex = digest.strip_prefix("sha256:").unwrap();
    std::fs::remove_file(t.app.config.data.join("storage/blobs/sha256").join(&hex[..2]).join(hex)).unwrap();
    while let Some(c) = r.chunk().await.unwrap() {
        got.extend_from_slice(&c);
    }
    assert_eq!(got, blob);
    t.shutdown().await;
}

on_both_backends! {
    upload_sessions => upload_ids;
    private_projects => private_projects_and_mounts;
    body_length_mismatch => bodies_shorter_or_longer_than_declared;
    sha512 => sha512_digests;
    upload_expiry => abandoned_uploads_expire;
    push_and_pull => push_pull_round_trip;
    missing_project => push_to_missing_project;
    tags_catalog_deletes => tags_catalog_and_deletes;
    chunked_and_mount => chunked_upload_and_mount;
    bad_input => bad_input_leaves_nothing;
    group_commit => concurrent_blob_commits;
    referrers_api => referrers;
    signing_key_persists => restart_keeps_keys_and_content;
    zero_copy => zero_copy_pulls;
}
