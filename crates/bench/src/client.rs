//! HTTP client for one registry URL: a keep-alive connection pool, requests
//! that carry (and on a 401 renew) credentials, same-origin checks on every
//! Location/redirect, and the Distribution API calls the scenarios use.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

use crate::auth::{self, Challenge, Tokens};
use crate::data::{CHUNK, Held};

pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Timeout for requests that move large blobs.
const BIG: Duration = Duration::from_secs(900);

pub type Res<T> = Result<T, String>;

/// Bodies at least this large are hashed on their own thread while they download.
const PIPELINED_HASH: u64 = 8 << 20;

pub struct Registry {
    http: reqwest::Client,
    base: Url,
    creds: Option<(String, String)>,
    challenge: RwLock<Option<Challenge>>,
    tokens: Tokens,
}

/// `repository:<name>:pull,push`
pub fn repo_scope(name: &str) -> String {
    format!("repository:{name}:pull,push")
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

/// Fail with status and body excerpt unless the status is one of `ok`.
pub async fn expect(resp: Response, ok: &[StatusCode], what: &str) -> Res<Response> {
    if ok.contains(&resp.status()) {
        return Ok(resp);
    }
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    Err(format!("{what}: HTTP {status}: {}", auth::clip(&body)))
}

impl Registry {
    /// Build a client whose pool keeps `pool` idle connections, then ping
    /// `/v2/` to learn whether and how the registry authenticates.
    pub async fn connect(url: &str, creds: Option<(String, String)>, pool: usize) -> Res<Arc<Self>> {
        let base = Url::parse(url).map_err(|e| format!("bad --url {url}: {e}"))?;
        let origin = base.clone();
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(pool)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .redirect(reqwest::redirect::Policy::custom(move |a| {
                if a.previous().len() < 5 && same_origin(a.url(), &origin) { a.follow() } else { a.stop() }
            }))
            .build()
            .map_err(|e| e.to_string())?;
        let reg = Arc::new(Registry { http, base, creds, challenge: RwLock::new(None), tokens: Tokens::default() });
        let resp = reg.http.get(reg.url("/v2/")).send().await.map_err(|e| format!("GET /v2/: {e}"))?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            reg.learn(&resp)?;
        }
        Ok(reg)
    }

    /// A Harbor API request (`/api/v2.0/...`) with Basic credentials, when given.
    pub async fn api(&self, method: Method, path: &str, body: Option<serde_json::Value>) -> Res<Response> {
        let mut req = self.http.request(method.clone(), self.url(path));
        if let Some((u, p)) = &self.creds {
            req = req.basic_auth(u, Some(p));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.map_err(|e| format!("{method} {path}: {e}"))
    }

    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("valid path")
    }

    /// Resolve a Location header; it must point at the registry under test.
    pub fn resolve(&self, loc: &str) -> Res<Url> {
        let u = self.base.join(loc).map_err(|e| format!("bad Location {loc}: {e}"))?;
        if !same_origin(&u, &self.base) {
            return Err(format!("Location {u} leaves {}", self.base));
        }
        Ok(u)
    }

    fn learn(&self, resp: &Response) -> Res<()> {
        let value = resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).ok_or("401 without WWW-Authenticate")?;
        let c = auth::parse_challenge(value, &self.base).ok_or_else(|| format!("unsupported challenge: {value}"))?;
        if let Challenge::Bearer { realm, .. } = &c
            && !same_origin(realm, &self.base)
        {
            return Err(format!("token realm {realm} is not on {}", self.base));
        }
        *self.challenge.write().expect("lock") = Some(c);
        Ok(())
    }

    /// Send the request built by `mk`, with credentials for `scopes`; on a 401
    /// learn the challenge, renew the token and send once more.
    pub async fn send(&self, scopes: &[String], mk: impl Fn(&reqwest::Client) -> RequestBuilder) -> Res<Response> {
        let key = scopes.join(" ");
        for attempt in 0..2 {
            let mut rb = mk(&self.http);
            let challenge = self.challenge.read().expect("lock").clone();
            let mut used = None;
            match &challenge {
                None => {}
                Some(Challenge::Basic) => {
                    if let Some((u, p)) = &self.creds {
                        rb = rb.basic_auth(u, Some(p));
                    }
                }
                Some(Challenge::Bearer { realm, service }) => {
                    let cell = self.tokens.cell(&key);
                    let token = cell
                        .get_or_try_init(|| auth::fetch_token(&self.http, realm, service.as_deref(), scopes, self.creds.as_ref()))
                        .await?
                        .clone();
                    rb = rb.header(AUTHORIZATION, format!("Bearer {token}"));
                    used = Some(cell);
                }
            }
            let resp = rb.send().await.map_err(|e| format!("request failed: {e}"))?;
            if resp.status() == StatusCode::UNAUTHORIZED && attempt == 0 {
                if let Some(cell) = used {
                    self.tokens.invalidate(&key, &cell);
                }
                self.learn(&resp)?;
                continue;
            }
            return Ok(resp);
        }
        unreachable!("loop returns on its second pass")
    }

    /// HEAD a blob: true if present, false on 404.
    pub async fn blob_exists(&self, name: &str, digest: &str) -> Res<bool> {
        let url = self.url(&format!("/v2/{name}/blobs/{digest}"));
        let resp = self.send(&[repo_scope(name)], |c| c.head(url.clone())).await?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(format!("HEAD blob: HTTP {s}")),
        }
    }

    /// POST an upload session; returns the Location to continue at.
    async fn start_upload(&self, name: &str) -> Res<Url> {
        let url = self.url(&format!("/v2/{name}/blobs/uploads/"));
        let resp = self.send(&[repo_scope(name)], |c| c.post(url.clone()).header(CONTENT_LENGTH, "0")).await?;
        let resp = expect(resp, &[StatusCode::ACCEPTED], "POST upload").await?;
        self.location(&resp)
    }

    fn location(&self, resp: &Response) -> Res<Url> {
        let loc = resp.headers().get("location").and_then(|v| v.to_str().ok()).ok_or("response without Location")?;
        self.resolve(loc)
    }

    /// Monolithic upload: POST, then PUT `?digest=` with the whole body.
    pub async fn upload(&self, name: &str, digest: &str, len: u64, body: impl Fn() -> reqwest::Body) -> Res<()> {
        let mut url = self.start_upload(name).await?;
        url.query_pairs_mut().append_pair("digest", digest);
        let resp = self
            .send(&[repo_scope(name)], |c| {
                c.put(url.clone()).timeout(BIG).header(CONTENT_TYPE, "application/octet-stream").header(CONTENT_LENGTH, len).body(body())
            })
            .await?;
        expect(resp, &[StatusCode::CREATED], "PUT blob").await?;
        Ok(())
    }

    /// Monolithic upload of an in-memory blob.
    pub async fn upload_small(&self, name: &str, digest: &str, data: &Bytes) -> Res<()> {
        self.upload(name, digest, data.len() as u64, || data.clone().into()).await
    }

    /// Chunked upload: POST, PATCH `chunk`-sized pieces with Content-Range,
    /// then PUT `?digest=` with no body. Returns the number of requests.
    pub async fn upload_chunked(&self, name: &str, blob: &Held, digest: &str, chunk: u64) -> Res<u64> {
        debug_assert_eq!(chunk % CHUNK, 0);
        let mut url = self.start_upload(name).await?;
        let mut requests = 1;
        let mut off = 0;
        while off < blob.len {
            let end = (off + chunk).min(blob.len);
            let u = url.clone();
            let resp = self
                .send(&[repo_scope(name)], |c| {
                    c.patch(u.clone())
                        .timeout(BIG)
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, end - off)
                        .header("content-range", format!("{off}-{}", end - 1))
                        .body(blob.body(off, end))
                })
                .await?;
            let resp = expect(resp, &[StatusCode::ACCEPTED], "PATCH blob").await?;
            url = self.location(&resp)?;
            requests += 1;
            off = end;
        }
        url.query_pairs_mut().append_pair("digest", digest);
        let resp = self.send(&[repo_scope(name)], |c| c.put(url.clone()).header(CONTENT_LENGTH, "0")).await?;
        expect(resp, &[StatusCode::CREATED], "PUT blob (final)").await?;
        Ok(requests + 1)
    }

    /// Cross-repository mount; true on 201, false if the registry opened an
    /// upload session instead (which is cancelled).
    pub async fn mount(&self, name: &str, digest: &str, from: &str) -> Res<bool> {
        let mut url = self.url(&format!("/v2/{name}/blobs/uploads/"));
        url.query_pairs_mut().append_pair("mount", digest).append_pair("from", from);
        let scopes = [repo_scope(name), format!("repository:{from}:pull")];
        let resp = self.send(&scopes, |c| c.post(url.clone()).header(CONTENT_LENGTH, "0")).await?;
        let resp = expect(resp, &[StatusCode::CREATED, StatusCode::ACCEPTED], "POST mount").await?;
        if resp.status() == StatusCode::CREATED {
            return Ok(true);
        }
        let loc = self.location(&resp)?;
        let _ = self.send(&scopes, |c| c.delete(loc.clone())).await;
        Ok(false)
    }

    /// PUT an OCI image manifest under `reference`.
    pub async fn put_manifest(&self, name: &str, reference: &str, manifest: &Bytes) -> Res<()> {
        let url = self.url(&format!("/v2/{name}/manifests/{reference}"));
        let resp = self.send(&[repo_scope(name)], |c| c.put(url.clone()).header(CONTENT_TYPE, OCI_MANIFEST).body(manifest.clone())).await?;
        expect(resp, &[StatusCode::CREATED], "PUT manifest").await?;
        Ok(())
    }

    /// GET or HEAD a manifest; returns the response after a 200.
    pub async fn manifest(&self, method: Method, name: &str, reference: &str) -> Res<Response> {
        let url = self.url(&format!("/v2/{name}/manifests/{reference}"));
        let resp = self.send(&[repo_scope(name)], |c| c.request(method.clone(), url.clone()).header(ACCEPT, MANIFEST_ACCEPT)).await?;
        expect(resp, &[StatusCode::OK], "manifest").await
    }

    /// GET a blob, streaming and hashing it; fails on a digest mismatch.
    /// Returns the number of bytes read.
    pub async fn pull_blob(&self, name: &str, digest: &str) -> Res<u64> {
        use sha2::{Digest, Sha256};
        let url = self.url(&format!("/v2/{name}/blobs/{digest}"));
        let resp = self.send(&[repo_scope(name)], |c| c.get(url.clone()).timeout(BIG)).await?;
        let mut resp = expect(resp, &[StatusCode::OK], "GET blob").await?;
        let mut n = 0u64;
        let hash = if resp.content_length().is_some_and(|l| l >= PIPELINED_HASH) {
            // Large bodies are hashed on a thread of their own while the next bytes arrive,
            // so that the client's hashing does not cap the transfer it is measuring.
            let (tx, rx) = std::sync::mpsc::sync_channel::<bytes::Bytes>(16);
            let hasher = std::thread::spawn(move || {
                let mut h = Sha256::new();
                for chunk in rx {
                    h.update(&chunk);
                }
                h.finalize()
            });
            while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET blob body: {e}"))? {
                n += chunk.len() as u64;
                if tx.send(chunk).is_err() {
                    break;
                }
            }
            drop(tx);
            hasher.join().map_err(|_| "hashing thread panicked".to_string())?
        } else {
            let mut h = Sha256::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET blob body: {e}"))? {
                n += chunk.len() as u64;
                h.update(&chunk);
            }
            h.finalize()
        };
        let got = format!("sha256:{}", hex::encode(hash));
        if got != digest {
            eprintln!("DIGEST MISMATCH: GET {name} blob {digest} returned {n} bytes hashing to {got}");
            return Err(format!("digest mismatch: wanted {digest}, got {got}"));
        }
        Ok(n)
    }

    /// GET a listing page (tags/list or _catalog): entries under `key` and
    /// whether a Link header with rel="next" came with it.
    pub async fn page(&self, path: &str, scope: String, key: &str, n: Option<usize>, last: Option<&str>) -> Res<(Vec<String>, bool)> {
        let mut url = self.url(path);
        if let Some(n) = n {
            url.query_pairs_mut().append_pair("n", &n.to_string());
        }
        if let Some(last) = last {
            url.query_pairs_mut().append_pair("last", last);
        }
        let resp = self.send(&[scope], |c| c.get(url.clone())).await?;
        let resp = expect(resp, &[StatusCode::OK], "list").await?;
        let next = resp.headers().get_all("link").iter().any(|v| v.to_str().is_ok_and(|s| s.contains("rel=\"next\"")));
        let v: serde_json::Value = resp.json().await.map_err(|e| format!("list body: {e}"))?;
        let list = match v.get(key) {
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            Some(serde_json::Value::Null) | None => Vec::new(),
            Some(other) => return Err(format!("list body: {key} is {other}")),
        };
        Ok((list, next))
    }
}
