//! Revocation reaches registry tokens already issued: removing a member, changing its role,
//! disabling or deleting a robot, deleting a user and revoking a personal access token make
//! the tokens issued before refused on `/v2` (401), at once on the node that made the change
//! and within about a second on another node sharing the database. Tokens that name no
//! holder (issued before Berth recorded access versions) are refused; changes that take
//! nothing away from a holder leave its tokens alone.

mod common;

use berth::auth::token::{Access, Claims};
use common::{ADMIN_PASSWORD, Db, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PW: &str = "Member-Passw0rd";
const ADMIN: (&str, &str) = ("admin", ADMIN_PASSWORD);
const PUSH: &str = "repository:team/app:pull,push";

async fn api(t: &TestApp, method: reqwest::Method, path: &str, who: (&str, &str), body: Option<Value>) -> reqwest::Response {
    let mut r = t.http.request(method, format!("{}{path}", t.url)).basic_auth(who.0, Some(who.1));
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

/// A private project `team` with user `dev` as developer; returns (dev's user id, member id).
async fn setup(t: &TestApp) -> (i64, i64) {
    let r =
        api(t, reqwest::Method::POST, "/api/v2.0/projects", ADMIN, Some(json!({"project_name": "team", "metadata": {"public": "false"}})))
            .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body = json!({"username": "dev", "email": "dev@example.com", "realname": "Dev", "password": PW});
    let r = api(t, reqwest::Method::POST, "/api/v2.0/users", ADMIN, Some(body)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let uid = location_id(&r);
    let r = api(
        t,
        reqwest::Method::POST,
        "/api/v2.0/projects/team/members",
        ADMIN,
        Some(json!({"role_id": 2, "member_user": {"username": "dev"}})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    (uid, location_id(&r))
}

fn location_id(r: &reqwest::Response) -> i64 {
    r.headers()["location"].to_str().unwrap().rsplit('/').next().unwrap().parse().unwrap()
}

/// The first step of a push: starting an upload (202 when the token grants push).
async fn start_push(t: &TestApp, token: &str) -> StatusCode {
    t.http.post(format!("{}/v2/team/app/blobs/uploads/", t.url)).bearer_auth(token).send().await.unwrap().status()
}

/// The actions a fresh token for `PUSH` would carry.
async fn fresh_actions(t: &TestApp, who: (&str, &str)) -> Vec<String> {
    let token = t.token(Some(who), &[PUSH]).await;
    let claims = t.app.auth.tokens.verify(&token).unwrap();
    claims.access.first().map(|a| a.actions.clone()).unwrap_or_default()
}

async fn member_removed_and_role_changed(db: Db) {
    let t = TestApp::start(db).await;
    let (_, mid) = setup(&t).await;
    let dev = ("dev", PW);
    let token = t.token(Some(dev), &[PUSH]).await;
    assert_eq!(start_push(&t, &token).await, StatusCode::ACCEPTED);
    // A whole push works with it.
    t.push_image(&token, "team/app", "v1", &[b"layer".as_slice()]).await;

    // A role change from developer to guest: the push token is refused, a new one pulls only.
    let r = api(&t, reqwest::Method::PUT, &format!("/api/v2.0/projects/team/members/{mid}"), ADMIN, Some(json!({"role_id": 3}))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(start_push(&t, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(fresh_actions(&t, dev).await, vec!["pull"]);
    let guest = t.token(Some(dev), &[PUSH]).await;
    assert_eq!(t.get(Some(&guest), "/v2/team/app/manifests/v1").await.status(), StatusCode::OK);

    // Removal: the guest token is refused too, even for a pull.
    let r = api(&t, reqwest::Method::DELETE, &format!("/api/v2.0/projects/team/members/{mid}"), ADMIN, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = t.get(Some(&guest), "/v2/team/app/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    assert_eq!(fresh_actions(&t, dev).await, Vec::<String>::new());

    // Changes that take nothing from a holder leave its tokens alone: the admin's token
    // outlives dev's removal, and a profile change.
    let admin = t.admin_token("team/app").await;
    let r = api(
        &t,
        reqwest::Method::POST,
        "/api/v2.0/projects/team/members",
        ADMIN,
        Some(json!({"role_id": 2, "member_user": {"username": "dev"}})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = api(&t, reqwest::Method::PUT, "/api/v2.0/users/1", ADMIN, Some(json!({"email": "admin@example.com", "realname": "A"}))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(start_push(&t, &admin).await, StatusCode::ACCEPTED);
    t.shutdown().await;
}

async fn robots_disabled_and_deleted(db: Db) {
    let t = TestApp::start(db).await;
    setup(&t).await;
    let robot = |name: &str| {
        json!({"name": name, "level": "project", "duration": -1, "permissions": [{"kind": "project", "namespace": "team",
            "access": [{"resource": "repository", "action": "pull"}, {"resource": "repository", "action": "push"}]}]})
    };
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for name in ["ci", "cd"] {
        let r = api(&t, reqwest::Method::POST, "/api/v2.0/robots", ADMIN, Some(robot(name))).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        let token = t.token(Some((v["name"].as_str().unwrap(), v["secret"].as_str().unwrap())), &[PUSH]).await;
        assert_eq!(start_push(&t, &token).await, StatusCode::ACCEPTED);
        ids.push(v["id"].as_i64().unwrap());
        tokens.push(token);
    }
    // Disabled: its token is refused; the other robot's is not.
    let mut body = robot("ci");
    body["disable"] = json!(true);
    let r = api(&t, reqwest::Method::PUT, &format!("/api/v2.0/robots/{}", ids[0]), ADMIN, Some(body)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(start_push(&t, &tokens[0]).await, StatusCode::UNAUTHORIZED);
    assert_eq!(start_push(&t, &tokens[1]).await, StatusCode::ACCEPTED);
    // Deleted.
    let r = api(&t, reqwest::Method::DELETE, &format!("/api/v2.0/robots/{}", ids[1]), ADMIN, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(start_push(&t, &tokens[1]).await, StatusCode::UNAUTHORIZED);
    t.shutdown().await;
}

async fn user_deleted_and_token_revoked(db: Db) {
    let t = TestApp::start(db).await;
    let (uid, _) = setup(&t).await;
    let dev = ("dev", PW);
    // A personal access token, and a registry token issued with it.
    let r = api(&t, reqwest::Method::POST, "/api/berth/v1/users/current/tokens", dev, Some(json!({"name": "ci"}))).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let pat = v["token"].as_str().unwrap().to_string();
    let with_pat = t.token(Some(("dev", &pat)), &[PUSH]).await;
    assert_eq!(start_push(&t, &with_pat).await, StatusCode::ACCEPTED);
    let r = api(&t, reqwest::Method::DELETE, &format!("/api/berth/v1/users/current/tokens/{}", v["id"]), dev, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(start_push(&t, &with_pat).await, StatusCode::UNAUTHORIZED);

    // The user deleted: a token issued with the password is refused, and so is the password.
    let with_password = t.token(Some(dev), &[PUSH]).await;
    assert_eq!(start_push(&t, &with_password).await, StatusCode::ACCEPTED);
    let r = api(&t, reqwest::Method::DELETE, &format!("/api/v2.0/users/{uid}"), ADMIN, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(start_push(&t, &with_password).await, StatusCode::UNAUTHORIZED);
    let r = api(&t, reqwest::Method::GET, "/api/v2.0/users/current", dev, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    t.shutdown().await;
}

async fn tokens_without_a_holder_are_refused(db: Db) {
    let t = TestApp::start(db).await;
    setup(&t).await;
    let key = t.app.meta.signing_key().await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = Claims {
        iss: berth::auth::token::ISSUER.into(),
        sub: "admin".into(),
        aud: "harbor-registry".into(),
        exp: now + 600,
        nbf: now - 1,
        iat: now,
        jti: "old".into(),
        access: vec![Access { kind: "repository".into(), name: "team/app".into(), actions: vec!["pull".into(), "push".into()] }],
        holder: None,
    };
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let old = jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(&key)).unwrap();
    assert!(t.app.auth.tokens.verify(&old).is_some(), "well signed");
    assert_eq!(start_push(&t, &old).await, StatusCode::UNAUTHORIZED);
    // Anonymous tokens hold nothing revocable and keep working.
    let anon = t.token(None, &["repository:team/app:pull"]).await;
    assert_eq!(t.get(Some(&anon), "/v2/").await.status(), StatusCode::OK);
    t.shutdown().await;
}

on_both_backends! {
    member_removed_and_role_changed => member_removed_and_role_changed;
    robots_disabled_and_deleted => robots_disabled_and_deleted;
    user_deleted_and_token_revoked => user_deleted_and_token_revoked;
    tokens_without_a_holder_are_refused => tokens_without_a_holder_are_refused;
}

/// Polls `check` every 20 ms until it returns true; returns how long that took.
async fn until<F: std::future::Future<Output = bool>>(mut check: impl FnMut() -> F) -> Duration {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < Duration::from_secs(5), "never happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// Two nodes on one PostgreSQL database: a member removed on one node is refused on the other
/// within about a second, with a token and with Basic credentials that node had cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_refuses_within_a_second() {
    let a = TestApp::start(Db::Postgres).await;
    let database = a.app.config.database.clone();
    let b = TestApp::start_with(Db::Sqlite, move |c| c.database = database).await;
    let (uid, mid) = setup(&a).await;
    let dev = ("dev", PW);
    let token = a.token(Some(dev), &[PUSH]).await;
    // Node B accepts node A's token (one signing key) and has read dev's version.
    assert_eq!(start_push(&b, &token).await, StatusCode::ACCEPTED);
    assert_eq!(api(&b, reqwest::Method::GET, "/api/v2.0/users/current", dev, None).await.status(), StatusCode::OK);

    let r = api(&a, reqwest::Method::DELETE, &format!("/api/v2.0/projects/team/members/{mid}"), ADMIN, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let took = until(|| async { start_push(&b, &token).await == StatusCode::UNAUTHORIZED }).await;
    assert!(took <= Duration::from_millis(1_300), "refused on the other node after {took:?}");

    // Deleting the user on A ends dev's cached Basic credentials on B as quickly.
    let r = api(&a, reqwest::Method::DELETE, &format!("/api/v2.0/users/{uid}"), ADMIN, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let took =
        until(|| async { api(&b, reqwest::Method::GET, "/api/v2.0/users/current", dev, None).await.status() == StatusCode::UNAUTHORIZED })
            .await;
    assert!(took <= Duration::from_millis(1_300), "Basic refused on the other node after {took:?}");
    b.shutdown().await;
    a.shutdown().await;
}
