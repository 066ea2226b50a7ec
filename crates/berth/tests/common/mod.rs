//! `TestApp`: a real Berth server on 127.0.0.1:0 with a temporary data directory,
//! on SQLite or on a fresh database of the PostgreSQL server named by
//! `BERTH_TEST_POSTGRES_URL` (the test command starts one; without it the
//! PostgreSQL tests fail, they never skip).

#![allow(dead_code)]

use berth::config::{Config, Storage};
use reqwest::{Client, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;

pub const ADMIN_PASSWORD: &str = "Test-Admin-Pw-1";

#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub url: String,
    pub http: Client,
    pub app: Arc<berth::app::App>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// A fresh, empty PostgreSQL database on the test server.
pub async fn postgres_database() -> String {
    let base = std::env::var("BERTH_TEST_POSTGRES_URL")
        .expect("BERTH_TEST_POSTGRES_URL is not set: run scripts/test, which starts a private PostgreSQL server for these tests");
    let name = format!("berth_test_{}", hex::encode(rand_bytes::<8>()));
    let admin = sqlx::PgPool::connect(&base).await.expect("connect to the test PostgreSQL server");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.expect("create test database");
    admin.close().await;
    let (prefix, _) = base.rsplit_once('/').expect("database URL has a path");
    format!("{prefix}/{name}")
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("random");
    b
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("random");
    b
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl TestApp {
    pub async fn start(db: Db) -> TestApp {
        Self::start_with(db, |_| {}).await
    }

    pub async fn start_with(db: Db, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = match db {
            Db::Sqlite => format!("sqlite://{}", dir.path().join("berth.db").display()),
            Db::Postgres => postgres_database().await,
        };
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data: dir.path().to_path_buf(),
            database,
            storage: Storage::Fs { root: dir.path().join("storage") },
            external_url: None,
            token_service: "harbor-registry".into(),
            token_expiry: 1800,
            upload_expiry: 86_400,
            upload_max_sessions: 1000,
            upload_max_bytes: 64 << 30,
            manifest_max_references: 10_000,
            admin_password: Some(ADMIN_PASSWORD.into()),
            shutdown_grace: 5,
            robot_prefix: "robot$".into(),
            log: "warn".into(),
            metrics_token: None,
            connections: Default::default(),
            trusted_proxies: berth::config::Cidr::loopback(),
        };
        tweak(&mut config);
        let app = berth::build(config).await.expect("build app");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let a = app.clone();
        let task = tokio::spawn(async move {
            berth::run(a, listener, async move {
                let _ = rx.await;
            })
            .await
            .expect("server run");
        });
        TestApp { url, http: Client::new(), app, stop: Some(tx), task: Some(task), _dir: dir }
    }

    /// Stops the server (as on SIGTERM) and keeps its data for inspection.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// A registry token for `scope`, as `user` (None: anonymous).
    pub async fn token(&self, user: Option<(&str, &str)>, scopes: &[&str]) -> String {
        let mut req = self.http.get(format!("{}/service/token", self.url)).query(&[("service", "harbor-registry")]);
        for s in scopes {
            req = req.query(&[("scope", s)]);
        }
        if let Some((u, p)) = user {
            req = req.basic_auth(u, Some(p));
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "token request failed");
        let v: serde_json::Value = r.json().await.unwrap();
        v["token"].as_str().unwrap().to_string()
    }

    pub async fn admin_token(&self, repo: &str) -> String {
        self.token(Some(("admin", ADMIN_PASSWORD)), &[&format!("repository:{repo}:pull,push,delete")]).await
    }

    /// Uploads a blob monolithically (POST + PUT) into `repo`; returns its digest.
    pub async fn push_blob(&self, token: &str, repo: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        let r = self.http.post(format!("{}/v2/{repo}/blobs/uploads/", self.url)).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        let r = self
            .http
            .put(format!("{}{loc}", self.url))
            .query(&[("digest", &digest)])
            .bearer_auth(token)
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "blob PUT failed");
        digest
    }

    /// An image manifest over a fresh config and the given layers.
    pub async fn push_image(&self, token: &str, repo: &str, tag: &str, layers: &[&[u8]]) -> (String, Vec<u8>) {
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"n":"{}"}}"#,
            hex::encode(rand_bytes::<8>())
        );
        let config_digest = self.push_blob(token, repo, config.as_bytes()).await;
        let mut ls = Vec::new();
        for l in layers {
            let d = self.push_blob(token, repo, l).await;
            ls.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": l.len()}));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": ls,
        });
        let body = serde_json::to_vec(&manifest).unwrap();
        let r = self.put_manifest(token, repo, tag, "application/vnd.oci.image.manifest.v1+json", &body).await;
        assert_eq!(r.status(), StatusCode::CREATED, "manifest PUT failed: {}", r.text().await.unwrap());
        (sha256(&body), body)
    }

    pub async fn put_manifest(&self, token: &str, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> Response {
        self.http
            .put(format!("{}/v2/{repo}/manifests/{reference}", self.url))
            .bearer_auth(token)
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> Response {
        let mut r = self.http.get(format!("{}{path}", self.url));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }
}

/// The `errors[0].code` of an error response.
pub async fn error_code(r: Response) -> String {
    let v: serde_json::Value = r.json().await.expect("error body is JSON");
    v["errors"][0]["code"].as_str().unwrap_or("").to_string()
}

/// Declares one test per metadata backend running the same body.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident => $body:ident;)*) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$body(super::common::Db::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$body(super::common::Db::Postgres).await })*
        }
    };
}

/// An OCI image manifest over `config` (digest, size) and `layers` (each of size 1), with `note`
/// as an annotation so that every call can make a new manifest.
pub fn image_manifest(config: &(String, usize), layers: &[String], note: &str) -> Vec<u8> {
    let layers: Vec<_> =
        layers.iter().map(|d| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": 1})).collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": layers,
        "annotations": {"note": note},
    }))
    .unwrap()
}
