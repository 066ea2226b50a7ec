//! Nothing confirms what a caller may not see: a private project the caller cannot see is
//! answered exactly as a missing one on every surface that names projects (`/v2`, the token
//! service, the Harbor API, robot and access-token creation), and on `/v2` it costs the same
//! work, so the time of the answer tells nothing either.

mod common;

use berth::meta::{Audit, accounts_role as role};
use common::{Db, TestApp};
use serde_json::{Value, json};
use std::time::Instant;

const PW: &str = "Outsider-Pass-1";

/// A private project `secret` (with a repository) the user `outsider` is no member of, and a
/// project `mine` where the outsider is project admin.
async fn setup(t: &TestApp) -> i64 {
    let meta = &t.app.meta;
    let a = Audit { operator: "admin".into(), resource: "setup".into(), resource_type: "test", operation: "create", ..Default::default() };
    let admin = meta.user_by_name("admin").await.unwrap().unwrap().id;
    let secret = meta.create_project("secret", admin, false, &a).await.unwrap();
    let mine = meta.create_project("mine", admin, false, &a).await.unwrap();
    let outsider = meta.create_user("outsider", &berth::auth::hash_password(PW).await.unwrap(), false, &a).await.unwrap();
    meta.set_member(mine, outsider, role::PROJECT_ADMIN, &a).await.unwrap();
    let tok = t.admin_token("secret/app").await;
    t.push_image(&tok, "secret/app", "v1", &[b"hidden layer"]).await;
    secret
}

/// Status and body, with the project's name and id replaced by placeholders.
async fn answer(t: &TestApp, method: &str, path: &str, body: Option<Value>, name: &str, id: i64) -> (u16, String) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = t.http.request(m, format!("{}{path}", t.url)).basic_auth("outsider", Some(PW));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let mut headers: Vec<String> = resp
        .headers()
        .iter()
        .filter(|(k, _)| !["date", "content-length"].contains(&k.as_str()))
        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
        .collect();
    headers.sort();
    let text = resp.text().await.unwrap();
    let all = format!("{}\n{text}", headers.join("\n"));
    (status, all.replace(name, "<project>").replace(&format!("project {id} "), "project <id> "))
}

async fn hidden_is_missing(db: Db) {
    let t = TestApp::start(db).await;
    let secret_id = setup(&t).await;
    let missing_id = secret_id + 1000;
    // (method, path template, body template): `{p}` is the project's name, `{id}` its id.
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("GET", "/v2/{p}/app/tags/list", None),
        ("GET", "/v2/{p}/app/manifests/v1", None),
        ("HEAD", "/v2/{p}/app/manifests/v1", None),
        ("PUT", "/v2/{p}/app/manifests/v1", Some(r#"{"schemaVersion": 2}"#)),
        ("POST", "/v2/{p}/app/blobs/uploads/", None),
        ("DELETE", "/v2/{p}/app/manifests/v1", None),
        ("GET", "/api/v2.0/projects/{p}", None),
        ("HEAD", "/api/v2.0/projects?project_name={p}", None),
        ("GET", "/api/v2.0/projects/{p}/summary", None),
        ("GET", "/api/v2.0/projects/{p}/members", None),
        ("GET", "/api/v2.0/projects/{p}/repositories", None),
        ("GET", "/api/v2.0/projects/{p}/repositories/app/artifacts", None),
        ("GET", "/api/v2.0/projects/{p}/logs", None),
        ("DELETE", "/api/v2.0/projects/{p}", None),
        ("GET", "/api/v2.0/robots?q=Level=project,ProjectID={id}", None),
        (
            "POST",
            "/api/v2.0/robots",
            Some(
                r#"{"name": "x", "level": "project", "permissions": [{"kind": "project", "namespace": "{p}", "access": [{"resource": "repository", "action": "pull"}]}]}"#,
            ),
        ),
        (
            "POST",
            "/api/v2.0/robots",
            Some(
                r#"{"name": "y", "level": "system", "permissions": [{"kind": "project", "namespace": "{p}", "access": [{"resource": "repository", "action": "pull"}]}]}"#,
            ),
        ),
        ("POST", "/api/berth/v1/users/current/tokens", Some(r#"{"name": "t", "projects": ["{p}"]}"#)),
        ("POST", "/api/berth/v1/users/current/tokens", Some(r#"{"name": "u", "projects": ["mine", "{p}"], "actions": ["pull"]}"#)),
        ("POST", "/api/berth/v1/projects/{p}/repositories", Some(r#"{"name": "app2"}"#)),
    ];
    for (method, path, body) in cases {
        let fill = |s: &str, name: &str, id: i64| s.replace("{p}", name).replace("{id}", &id.to_string());
        let body_for = |name: &str, id: i64| body.map(|b| serde_json::from_str::<Value>(&fill(b, name, id)).unwrap());
        let hidden = answer(&t, method, &fill(path, "secret", secret_id), body_for("secret", secret_id), "secret", secret_id).await;
        let missing = answer(&t, method, &fill(path, "nosuch", missing_id), body_for("nosuch", missing_id), "nosuch", missing_id).await;
        assert_eq!(hidden, missing, "{method} {path}: a hidden project is answered unlike a missing one");
        assert!(hidden.0 >= 400, "{method} {path}: {hidden:?}");
    }
    // The token service grants nothing on either, and says so the same way.
    let mut access = Vec::new();
    for name in ["secret", "nosuch"] {
        let tok = t.token(Some(("outsider", PW)), &[&format!("repository:{name}/app:pull,push,delete")]).await;
        access.push(t.app.auth.tokens.verify(&tok).unwrap().access.len());
    }
    assert_eq!(access, vec![0, 0]);
    // A token naming only a visible project is made; naming a hidden one answers 400 as for a missing one.
    let r = t
        .http
        .post(format!("{}/api/berth/v1/users/current/tokens", t.url))
        .basic_auth("outsider", Some(PW))
        .json(&json!({"name": "ok", "projects": ["mine"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let (status, body) =
        answer(&t, "POST", "/api/berth/v1/users/current/tokens", Some(json!({"name": "v", "projects": ["secret"]})), "secret", secret_id)
            .await;
    assert_eq!(status, 400);
    assert!(body.contains("project <project> not found"), "{body}");
    t.shutdown().await;
}

on_both_backends! {
    hidden_is_missing => hidden_is_missing;
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// `/v2` for a hidden project costs what it costs for a missing one. Requests for each
/// alternate (in a random order within each pair, after a warm-up), and the median of the
/// paired differences must lie within four standard errors of zero, the standard error taken
/// from the spread of the differences themselves (median absolute deviation), with a floor
/// of 8 µs for a very quiet machine. The extra membership query this guards against cost
/// tens of microseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_costs_what_missing_costs() {
    const PAIRS: usize = 3000;
    const WARMUP: usize = 300;
    let t = TestApp::start(Db::Sqlite).await;
    setup(&t).await;
    let get = |path: &'static str| {
        let req = t.http.get(format!("{}{path}", t.url)).basic_auth("outsider", Some(PW));
        async move {
            let start = Instant::now();
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let _ = r.bytes().await.unwrap();
            (start.elapsed().as_secs_f64() * 1e6, status)
        }
    };
    let mut diffs = Vec::with_capacity(PAIRS);
    let mut coin = [0u8; 1];
    for k in 0..PAIRS + WARMUP {
        getrandom::fill(&mut coin).unwrap();
        let (hidden, missing) = if coin[0] & 1 == 0 {
            let h = get("/v2/secret/app/tags/list").await;
            (h, get("/v2/nosuch/app/tags/list").await)
        } else {
            let m = get("/v2/nosuch/app/tags/list").await;
            (get("/v2/secret/app/tags/list").await, m)
        };
        assert_eq!((hidden.1, missing.1), (403, 403));
        if k >= WARMUP {
            diffs.push(hidden.0 - missing.0);
        }
    }
    let mid = median(&mut diffs.clone());
    let mut deviations: Vec<f64> = diffs.iter().map(|d| (d - mid).abs()).collect();
    let sigma = 1.4826 * median(&mut deviations);
    let standard_error = 1.2533 * sigma / (PAIRS as f64).sqrt();
    let bound = (4.0 * standard_error).max(8.0);
    assert!(
        mid.abs() <= bound,
        "a hidden project's /v2 answer takes {mid:.1} µs longer (median of {PAIRS} paired differences) than a missing one's; \
         noise allows {bound:.1} µs (σ ≈ {sigma:.1} µs)"
    );
    t.shutdown().await;
}
