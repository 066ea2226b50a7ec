//! Personal access tokens: created once, usable as a password on /service/token,
//! /v2 and the API, limited to their projects and actions, revocable, expiring.

mod common;

use berth::meta::{Audit, accounts_role as role};
use common::{Db, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

const DEV_PW: &str = "Dev-Password-1";

async fn setup(t: &TestApp) {
    let meta = &t.app.meta;
    let a = Audit { operator: "admin".into(), resource: "setup".into(), resource_type: "test", operation: "create", ..Default::default() };
    let hash = berth::auth::hash_password(DEV_PW).await.unwrap();
    let dev = meta.create_user("dev", &hash, false, &a).await.unwrap();
    let admin = meta.user_by_name("admin").await.unwrap().unwrap().id;
    for name in ["team", "other"] {
        let p = meta.create_project(name, admin, false, &a).await.unwrap();
        meta.set_member(p, dev, role::DEVELOPER, &a).await.unwrap();
    }
}

async fn create(t: &TestApp, body: Value) -> reqwest::Response {
    t.http.post(format!("{}/api/berth/v1/users/current/tokens", t.url)).basic_auth("dev", Some(DEV_PW)).json(&body).send().await.unwrap()
}

async fn granted(t: &TestApp, user: &str, secret: &str, scope: &str) -> Vec<String> {
    let tok = t.token(Some((user, secret)), &[scope]).await;
    let claims = t.app.auth.tokens.verify(&tok).unwrap();
    claims.access.first().map(|a| a.actions.clone()).unwrap_or_default()
}

async fn token_lifecycle(db: Db) {
    let t = TestApp::start(db).await;
    setup(&t).await;
    // Anonymous callers cannot create tokens.
    let r = t.http.post(format!("{}/api/berth/v1/users/current/tokens", t.url)).json(&json!({"name": "x"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = create(&t, json!({"name": "ci", "expires_in_days": 30})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let secret = v["token"].as_str().unwrap().to_string();
    assert!(secret.starts_with("berth_pat_") && secret.len() > 40, "{secret}");
    let id = v["id"].as_i64().unwrap();
    // Shown once: the list never carries secrets, and the database holds only a digest.
    let list: Value = t
        .http
        .get(format!("{}/api/berth/v1/users/current/tokens", t.url))
        .basic_auth("dev", Some(DEV_PW))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("token").is_none());
    assert_eq!(list[0]["name"], "ci");
    assert_eq!(create(&t, json!({"name": "ci"})).await.status(), StatusCode::CONFLICT);
    assert_eq!(create(&t, json!({"name": "bad name"})).await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(create(&t, json!({"name": "x", "actions": ["fly"]})).await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(create(&t, json!({"name": "y", "projects": ["nosuch"]})).await.status(), StatusCode::BAD_REQUEST);

    // The token works as a password on the token service, /v2 and the API.
    assert_eq!(granted(&t, "dev", &secret, "repository:team/app:pull,push").await, vec!["pull", "push"]);
    let r = t.http.get(format!("{}/v2/", t.url)).basic_auth("dev", Some(&secret)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = t.http.get(format!("{}/api/berth/v1/users/current/tokens", t.url)).basic_auth("dev", Some(&secret)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // ...only for its owner, and a token cannot mint tokens.
    let r = t.http.get(format!("{}/v2/", t.url)).basic_auth("admin", Some(&secret)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = t
        .http
        .post(format!("{}/api/berth/v1/users/current/tokens", t.url))
        .basic_auth("dev", Some(&secret))
        .json(&json!({"name": "z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Limits: a pull-only token for `team`.
    let v: Value = create(&t, json!({"name": "puller", "projects": ["team"], "actions": ["pull"]})).await.json().await.unwrap();
    let puller = v["token"].as_str().unwrap().to_string();
    assert_eq!(granted(&t, "dev", &puller, "repository:team/app:pull,push").await, vec!["pull"]);
    assert!(granted(&t, "dev", &puller, "repository:other/app:pull").await.is_empty());

    // Revoked tokens stop working at once.
    let r =
        t.http.delete(format!("{}/api/berth/v1/users/current/tokens/{id}", t.url)).basic_auth("dev", Some(DEV_PW)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = t.http.get(format!("{}/v2/", t.url)).basic_auth("dev", Some(&secret)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r =
        t.http.delete(format!("{}/api/berth/v1/users/current/tokens/{id}", t.url)).basic_auth("dev", Some(DEV_PW)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Expired tokens are refused.
    let db_url = t.app.config.database.clone();
    let expire = "UPDATE access_tokens SET expires_at = 1 WHERE name = 'puller'";
    if db_url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&db_url).await.unwrap();
        sqlx::query(expire).execute(&pool).await.unwrap();
    } else {
        let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
        sqlx::query(expire).execute(&pool).await.unwrap();
    }
    let r = t.http.get(format!("{}/v2/", t.url)).basic_auth("dev", Some(&puller)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    t.shutdown().await;
}

on_both_backends! {
    lifecycle => token_lifecycle;
}
