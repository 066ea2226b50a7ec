//! The limits of limited credentials hold everywhere: a personal access token limited to
//! projects and actions, or a robot granted a few actions in one project, does what its
//! limits allow and nothing else on `/v2`, `/api/v2.0` and `/api/berth/v1`: no project
//! creation, no profile or password change, no token management, no robots, nothing at
//! system scope. A full token acts as its user.

mod common;

use berth::meta::{Audit, accounts_role as role};
use common::{ADMIN_PASSWORD, Db, TestApp};
use serde_json::{Value, json};

const DEV_PW: &str = "Dev-Password-1";

async fn send(t: &TestApp, method: &str, path: &str, who: (&str, &str), body: Option<Value>) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = t.http.request(m, format!("{}{path}", t.url)).basic_auth(who.0, Some(who.1));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn token(t: &TestApp, who: (&str, &str), body: Value) -> (i64, String) {
    let (s, v) = send(t, "POST", "/api/berth/v1/users/current/tokens", who, Some(body)).await;
    assert_eq!(s, 201, "{v}");
    (v["id"].as_i64().unwrap(), v["token"].as_str().unwrap().to_string())
}

/// Operations outside every limit: each must be refused (any 4xx but 400, which would mean
/// the request got past the permission checks).
fn outside(owner_id: i64, spare_token: i64) -> Vec<(&'static str, String, Option<Value>)> {
    vec![
        ("POST", "/api/v2.0/projects".into(), Some(json!({"project_name": "fresh"}))),
        ("PUT", format!("/api/v2.0/users/{owner_id}"), Some(json!({"email": "x@example.com", "realname": "X", "comment": ""}))),
        ("PUT", format!("/api/v2.0/users/{owner_id}/password"), Some(json!({"old_password": DEV_PW, "new_password": "Changed-Pass-2"}))),
        ("PUT", format!("/api/v2.0/users/{owner_id}/sysadmin"), Some(json!({"sysadmin_flag": true}))),
        ("GET", "/api/v2.0/users".into(), None),
        (
            "POST",
            "/api/v2.0/users".into(),
            Some(json!({"username": "made", "email": "m@example.com", "realname": "M", "password": "Made-Pass-1"})),
        ),
        (
            "POST",
            "/api/v2.0/robots".into(),
            Some(
                json!({"name": "r", "level": "project", "permissions": [{"kind": "project", "namespace": "team", "access": [{"resource": "repository", "action": "pull"}]}]}),
            ),
        ),
        ("GET", "/api/v2.0/configurations".into(), None),
        ("PUT", "/api/v2.0/configurations".into(), Some(json!({"project_creation_restriction": "everyone"}))),
        ("GET", "/api/v2.0/projects/other".into(), None),
        ("GET", "/api/v2.0/projects/other/repositories".into(), None),
        ("GET", "/api/berth/v1/users/current/tokens".into(), None),
        ("POST", "/api/berth/v1/users/current/tokens".into(), Some(json!({"name": "more"}))),
        ("DELETE", format!("/api/berth/v1/users/current/tokens/{spare_token}"), None),
        ("PUT", "/api/berth/v1/settings/project_limit_per_user".into(), Some(json!({"limit": 100}))),
        ("POST", "/api/berth/v1/projects/other/repositories".into(), Some(json!({"name": "x"}))),
        ("POST", "/api/berth/v1/projects/team/repositories".into(), Some(json!({"name": "x"}))),
        ("GET", "/v2/_catalog".into(), None),
        ("GET", "/v2/other/app/tags/list".into(), None),
        ("POST", "/v2/team/app/blobs/uploads/".into(), None),
        ("POST", "/v2/other/app/blobs/uploads/".into(), None),
        ("DELETE", "/v2/team/app/manifests/sha256:0000000000000000000000000000000000000000000000000000000000000000".into(), None),
    ]
}

async fn limits_hold_everywhere(db: Db) {
    let t = TestApp::start(db).await;
    let meta = &t.app.meta;
    let a = Audit { operator: "admin".into(), resource: "setup".into(), resource_type: "test", operation: "create", ..Default::default() };
    let dev = meta.create_user("dev", &berth::auth::hash_password(DEV_PW).await.unwrap(), false, &a).await.unwrap();
    let admin = meta.user_by_name("admin").await.unwrap().unwrap().id;
    for name in ["team", "other"] {
        let p = meta.create_project(name, admin, false, &a).await.unwrap();
        meta.set_member(p, dev, role::PROJECT_ADMIN, &a).await.unwrap();
        let tok = t.admin_token(&format!("{name}/app")).await;
        t.push_image(&tok, &format!("{name}/app"), "v1", &[b"layer"]).await;
    }
    let dev_pw = ("dev", DEV_PW);
    let admin_pw = ("admin", ADMIN_PASSWORD);
    let (spare, _) = token(&t, dev_pw, json!({"name": "spare"})).await;
    let (admin_spare, _) = token(&t, admin_pw, json!({"name": "spare"})).await;
    let (_, puller) = token(&t, dev_pw, json!({"name": "puller", "projects": ["team"], "actions": ["pull"]})).await;
    // An admin's token limited to one project (every action there).
    let (_, team_admin) = token(&t, admin_pw, json!({"name": "team-only", "projects": ["team"]})).await;
    let (s, v) = send(
        &t,
        "POST",
        "/api/v2.0/robots",
        admin_pw,
        Some(json!({"name": "ci", "level": "project", "duration": -1, "permissions": [{"kind": "project", "namespace": "team", "access": [{"resource": "repository", "action": "pull"}]}]})),
    )
    .await;
    assert_eq!(s, 201);
    let robot = (v["name"].as_str().unwrap().to_string(), v["secret"].as_str().unwrap().to_string());

    let limited: Vec<(&str, (&str, &str), i64, i64)> = vec![
        ("dev's token for team and pull", ("dev", &puller), dev, spare),
        ("admin's token for team", ("admin", &team_admin), admin, admin_spare),
        ("team's pull robot", (&robot.0, &robot.1), dev, spare),
    ];
    for (label, who, owner, spare) in &limited {
        // Inside its limits it works.
        assert_eq!(send(&t, "GET", "/v2/team/app/tags/list", *who, None).await.0, 200, "{label}");
        assert_eq!(send(&t, "GET", "/v2/team/app/manifests/v1", *who, None).await.0, 200, "{label}");
        let tok = t.token(Some(*who), &["repository:team/app:pull,push,delete", "repository:other/app:pull"]).await;
        let claims = t.app.auth.tokens.verify(&tok).unwrap();
        let team_actions = claims.access.iter().find(|a| a.name == "team/app").map(|a| a.actions.clone()).unwrap_or_default();
        assert!(team_actions.contains(&"pull".to_string()), "{label}: {team_actions:?}");
        assert!(claims.access.iter().all(|a| a.name == "team/app"), "{label}: a grant outside its projects: {:?}", claims.access);
        for (method, path, body) in outside(*owner, *spare) {
            // The admin's token may do anything inside team, so a repository there or a push is within its limits.
            let within_team_admin =
                label.starts_with("admin") && (path.starts_with("/v2/team/") || path == "/api/berth/v1/projects/team/repositories");
            if within_team_admin {
                continue;
            }
            let (s, v) = send(&t, method, &path, *who, body).await;
            assert!((401..500).contains(&s) && s != 400 && s != 409, "{label}: {method} {path} answered {s}: {v}");
        }
    }
    // Nothing changed: the profile, the password, the flag and the tokens are as they were.
    let (s, v) = send(&t, "GET", &format!("/api/v2.0/users/{dev}"), dev_pw, None).await;
    assert_eq!((s, v["sysadmin_flag"].clone(), v["email"].clone()), (200, json!(false), json!("")));
    let (_, list) = send(&t, "GET", "/api/berth/v1/users/current/tokens", dev_pw, None).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(send(&t, "GET", "/api/v2.0/projects/fresh", admin_pw, None).await.0, 404);

    // A full token acts as its user: it may change its user's profile and list tokens.
    let (_, full) = token(&t, dev_pw, json!({"name": "full"})).await;
    let profile = json!({"email": "dev@example.com", "realname": "Dev", "comment": ""});
    assert_eq!(send(&t, "PUT", &format!("/api/v2.0/users/{dev}"), ("dev", &full), Some(profile)).await.0, 200);
    assert_eq!(send(&t, "GET", "/api/berth/v1/users/current/tokens", ("dev", &full), None).await.0, 200);
    assert_eq!(send(&t, "POST", "/api/v2.0/projects", ("dev", &full), Some(json!({"project_name": "mine"}))).await.0, 201);
    t.shutdown().await;
}

on_both_backends! {
    limits_hold_everywhere => limits_hold_everywhere;
}
