//! Harbor API group `user` over HTTP, on SQLite and on PostgreSQL: who may do what (admin,
//! self, another user, anonymous), Harbor's field names and types (checked against the
//! swagger contract), paging headers, validation, audit rows, and the failed-login slowdown.

mod common;
mod contract;

use berth::auth::LoginThrottle;
use berth::auth::policy::PROJECT_MATRIX;
use berth::meta::{Audit, accounts_role as role};
use common::{ADMIN_PASSWORD, Db, TestApp};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

const PASSWORD: &str = "Passw0rd-Berth";
const ADMIN: Option<(&str, &str)> = Some(("admin", ADMIN_PASSWORD));

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

impl Reply {
    fn message(&self) -> &str {
        self.body["errors"][0]["message"].as_str().unwrap_or("")
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

async fn call(t: &TestApp, method: Method, path: &str, auth: Option<(&str, &str)>, body: Option<Value>) -> Reply {
    let mut r = t.http.request(method, format!("{}/api/v2.0{path}", t.url));
    if let Some((u, p)) = auth {
        r = r.basic_auth(u, Some(p));
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")) };
    Reply { status, headers, body, text }
}

async fn get(t: &TestApp, path: &str, auth: Option<(&str, &str)>) -> Reply {
    call(t, Method::GET, path, auth, None).await
}

/// Checks the status and validates the body against Harbor's swagger for that operation.
#[track_caller]
fn expect(r: &Reply, method: &str, template: &str, status: StatusCode) {
    assert_eq!(r.status, status, "{method} {template}: {}", r.text);
    if let Err(errors) = contract::validate_response(method, template, status.as_u16(), &r.body) {
        panic!("{method} {template} {status}: body does not match Harbor's contract: {errors:?}\n{}", r.text);
    }
}

/// An error whose body Harbor sends but its swagger does not declare (password 400/403).
#[track_caller]
fn expect_error(r: &Reply, status: StatusCode, message_part: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert!(r.message().contains(message_part), "message {:?} should mention {message_part:?}", r.message());
}

fn new_user(name: &str) -> Value {
    let (email, realname) = (format!("{name}@example.com"), format!("Real {name}"));
    json!({"username": name, "email": email, "realname": realname, "comment": "made in a test", "password": PASSWORD})
}

/// Creates a user as admin; returns its id.
async fn create_user(t: &TestApp, name: &str) -> i64 {
    let r = call(t, Method::POST, "/users", ADMIN, Some(new_user(name))).await;
    expect(&r, "POST", "/users", StatusCode::CREATED);
    let location = r.header("location").expect("Location").to_string();
    location.strip_prefix("/api/v2.0/users/").and_then(|id| id.parse().ok()).unwrap_or_else(|| panic!("Location {location}"))
}

fn me(name: &str) -> Option<(&str, &str)> {
    Some((name, PASSWORD))
}

/// Audit rows for `resource`: (operator, resource_type, operation, success), oldest first.
async fn audit_rows(t: &TestApp, resource: &str) -> Vec<(String, String, String, bool)> {
    let url = t.app.config.database.clone();
    let sql = "SELECT operator, resource_type, operation, success FROM audit_log WHERE resource = $1 ORDER BY id";
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let rows = sqlx::query_as(sql).bind(resource).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    } else {
        let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap().read_only(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        let rows = sqlx::query_as(sql).bind(resource).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    }
}

fn setup_audit() -> Audit {
    Audit { operator: "admin".into(), resource: "setup".into(), resource_type: "test", operation: "create", ..Default::default() }
}

async fn create_and_read(db: Db) {
    let t = TestApp::start(db).await;
    let r = call(&t, Method::POST, "/users", ADMIN, Some(new_user("alice"))).await;
    expect(&r, "POST", "/users", StatusCode::CREATED);
    assert!(r.text.is_empty(), "create answers with an empty body: {}", r.text);
    let location = r.header("location").unwrap().to_string();
    assert!(location.starts_with("/api/v2.0/users/"), "{location}");
    let id: i64 = location.rsplit('/').next().unwrap().parse().unwrap();
    let bob = create_user(&t, "bob").await;

    // A system admin reads anyone; exactly Harbor's fields, never a password or hash.
    let r = get(&t, &format!("/users/{id}"), ADMIN).await;
    expect(&r, "GET", "/users/{user_id}", StatusCode::OK);
    let keys: BTreeSet<&str> = r.body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "user_id",
            "username",
            "email",
            "realname",
            "comment",
            "sysadmin_flag",
            "admin_role_in_auth",
            "creation_time",
            "update_time"
        ])
    );
    assert_eq!(r.body["user_id"], id);
    assert_eq!(r.body["username"], "alice");
    assert_eq!(r.body["email"], "alice@example.com");
    assert_eq!(r.body["realname"], "Real alice");
    assert_eq!(r.body["comment"], "made in a test");
    assert_eq!(r.body["sysadmin_flag"], false);
    assert_eq!(r.body["admin_role_in_auth"], false);
    assert!(!r.text.contains(PASSWORD) && !r.text.contains("argon2") && !r.text.contains("password"), "{}", r.text);

    // The user itself; another user gets 403 (existing or not), anonymous 401.
    let r = get(&t, &format!("/users/{id}"), me("alice")).await;
    expect(&r, "GET", "/users/{user_id}", StatusCode::OK);
    assert_eq!(r.body["username"], "alice");
    let r = get(&t, &format!("/users/{id}"), me("bob")).await;
    expect(&r, "GET", "/users/{user_id}", StatusCode::FORBIDDEN);
    let r = get(&t, "/users/999999", me("bob")).await;
    expect(&r, "GET", "/users/{user_id}", StatusCode::FORBIDDEN);
    let r = get(&t, &format!("/users/{id}"), None).await;
    expect(&r, "GET", "/users/{user_id}", StatusCode::UNAUTHORIZED);
    let r = get(&t, &format!("/users/{id}"), Some(("alice", "Wrong-Passw0rd"))).await;
    expect(&r, "GET", "/users/{user_id}", StatusCode::UNAUTHORIZED);
    let r = get(&t, "/users/999999", ADMIN).await;
    expect(&r, "GET", "/users/{user_id}", StatusCode::NOT_FOUND);
    let r = get(&t, "/users/abc", ADMIN).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().contains("user_id"), "{}", r.text);
    assert!(bob > id);

    // The creation is in the audit log, by the admin (beside the failed login above).
    let rows = audit_rows(&t, "alice").await;
    assert_eq!(rows, [("admin".into(), "user".into(), "create".into(), true), ("alice".into(), "user".into(), "login".into(), false)]);

    // CLI secrets are for OIDC users only.
    let r = call(&t, Method::PUT, &format!("/users/{id}/cli_secret"), ADMIN, Some(json!({"secret": "Abcdefg12345"}))).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.text);
    t.shutdown().await;
}

async fn create_rules(db: Db) {
    let t = TestApp::start(db).await;
    create_user(&t, "carol").await;

    // Only system admins create users while self-registration is off (the default).
    let r = call(&t, Method::POST, "/users", None, Some(new_user("anon1"))).await;
    expect(&r, "POST", "/users", StatusCode::UNAUTHORIZED);
    let r = call(&t, Method::POST, "/users", me("carol"), Some(new_user("carol2"))).await;
    expect(&r, "POST", "/users", StatusCode::FORBIDDEN);

    // Duplicates.
    let r = call(&t, Method::POST, "/users", ADMIN, Some(new_user("carol"))).await;
    expect(&r, "POST", "/users", StatusCode::CONFLICT);
    let mut dup_email = new_user("carol3");
    dup_email["email"] = json!("carol@example.com");
    let r = call(&t, Method::POST, "/users", ADMIN, Some(dup_email)).await;
    expect(&r, "POST", "/users", StatusCode::CONFLICT);
    assert!(r.message().contains("carol@example.com"), "{}", r.text);

    // Weak passwords: 8-128 characters with an upper-case letter, a lower-case letter and a digit.
    for weak in ["Short1a", "alllowercase1", "ALLUPPERCASE1", "NoDigitsHere", &format!("Aa1{}", "x".repeat(126))] {
        let mut u = new_user("weakling");
        u["password"] = json!(weak);
        let r = call(&t, Method::POST, "/users", ADMIN, Some(u)).await;
        expect(&r, "POST", "/users", StatusCode::BAD_REQUEST);
        assert!(r.message().contains("8 to 128") && r.message().contains("uppercase"), "{}", r.text);
    }
    let mut u = new_user("weakling");
    u.as_object_mut().unwrap().remove("password");
    let r = call(&t, Method::POST, "/users", ADMIN, Some(u)).await;
    expect(&r, "POST", "/users", StatusCode::BAD_REQUEST);

    // User names: 1-255 characters without special characters.
    for bad in ["", "a,b", "a\"b", "a~b", "a#b", "robot$x", "a%b", "a:b", &"n".repeat(256)] {
        let mut u = new_user("x");
        u["username"] = json!(bad);
        u["email"] = json!("x@example.com");
        let r = call(&t, Method::POST, "/users", ADMIN, Some(u)).await;
        expect(&r, "POST", "/users", StatusCode::BAD_REQUEST);
        assert!(r.message().contains("1 to 255 characters") && r.message().contains('%'), "{bad:?}: {}", r.text);
    }
    // Profile fields, as Harbor checks them.
    let cases: [(&str, Value, &str); 6] = [
        ("email", Value::Null, "email"),
        ("email", json!("not-an-email"), "email"),
        ("realname", Value::Null, "realname"),
        ("realname", json!("a#b"), "realname"),
        ("comment", json!("c".repeat(31)), "comment"),
        ("email", json!(12), "invalid request body"),
    ];
    for (field, value, mentions) in cases {
        let mut u = new_user("dave");
        if value.is_null() {
            u.as_object_mut().unwrap().remove(field);
        } else {
            u[field] = value;
        }
        let r = call(&t, Method::POST, "/users", ADMIN, Some(u)).await;
        expect(&r, "POST", "/users", StatusCode::BAD_REQUEST);
        assert!(r.message().contains(mentions), "{field}: {}", r.text);
    }
    let r =
        t.http.post(format!("{}/api/v2.0/users", t.url)).basic_auth("admin", Some(ADMIN_PASSWORD)).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = call(&t, Method::POST, "/users", ADMIN, None).await;
    expect(&r, "POST", "/users", StatusCode::BAD_REQUEST);
    // Nothing was created by the refused requests.
    let r = get(&t, "/users?page_size=100", ADMIN).await;
    let names: Vec<&str> = r.body.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["carol"]);

    // With self-registration on, anyone may create an account; the new user is the operator.
    t.app.meta.set_self_registration(true).await.unwrap();
    let r = call(&t, Method::POST, "/users", None, Some(new_user("selfmade"))).await;
    expect(&r, "POST", "/users", StatusCode::CREATED);
    assert_eq!(audit_rows(&t, "selfmade").await, [("selfmade".into(), "user".into(), "create".into(), true)]);
    let r = get(&t, "/users/current", me("selfmade")).await;
    expect(&r, "GET", "/users/current", StatusCode::OK);
    assert_eq!(r.body["sysadmin_flag"], false);
    let r = call(&t, Method::POST, "/users", me("carol"), Some(new_user("byfriend"))).await;
    expect(&r, "POST", "/users", StatusCode::CREATED);
    assert_eq!(audit_rows(&t, "byfriend").await[0].0, "carol");
    t.app.meta.set_self_registration(false).await.unwrap();
    let r = call(&t, Method::POST, "/users", None, Some(new_user("late"))).await;
    expect(&r, "POST", "/users", StatusCode::UNAUTHORIZED);
    t.shutdown().await;
}

async fn update_profile(db: Db) {
    let t = TestApp::start(db).await;
    let erin = create_user(&t, "erin").await;
    create_user(&t, "frank").await;
    let path = format!("/users/{erin}");

    let r =
        call(&t, Method::PUT, &path, me("erin"), Some(json!({"email": "erin@new.example.io", "realname": "Erin E", "comment": "mine"})))
            .await;
    expect(&r, "PUT", "/users/{user_id}", StatusCode::OK);
    assert!(r.text.is_empty());
    let r = get(&t, &path, me("erin")).await;
    expect(&r, "GET", "/users/{user_id}", StatusCode::OK);
    assert_eq!(
        (r.body["email"].as_str(), r.body["realname"].as_str(), r.body["comment"].as_str()),
        (Some("erin@new.example.io"), Some("Erin E"), Some("mine"))
    );
    assert!(r.body["update_time"].as_str() >= r.body["creation_time"].as_str());

    let profile = json!({"email": "erin2@example.com", "realname": "Erin", "comment": ""});
    let r = call(&t, Method::PUT, &path, me("frank"), Some(profile.clone())).await;
    expect(&r, "PUT", "/users/{user_id}", StatusCode::FORBIDDEN);
    let r = call(&t, Method::PUT, &path, None, Some(profile.clone())).await;
    expect(&r, "PUT", "/users/{user_id}", StatusCode::UNAUTHORIZED);
    let r = call(&t, Method::PUT, &path, ADMIN, Some(profile.clone())).await;
    expect(&r, "PUT", "/users/{user_id}", StatusCode::OK);
    assert_eq!(get(&t, &path, ADMIN).await.body["email"], "erin2@example.com");
    let r = call(&t, Method::PUT, "/users/999999", ADMIN, Some(profile.clone())).await;
    expect(&r, "PUT", "/users/{user_id}", StatusCode::NOT_FOUND);
    let r = call(&t, Method::PUT, "/users/999999", me("frank"), Some(profile)).await;
    expect(&r, "PUT", "/users/{user_id}", StatusCode::FORBIDDEN);
    // Another user's e-mail, a malformed one, none at all, a bad real name.
    let r = call(&t, Method::PUT, &path, me("erin"), Some(json!({"email": "frank@example.com", "realname": "Erin"}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    for bad in
        [json!({"email": "erin@", "realname": "Erin"}), json!({"realname": "Erin"}), json!({"email": "e@example.com", "realname": ""})]
    {
        let r = call(&t, Method::PUT, &path, me("erin"), Some(bad)).await;
        expect(&r, "PUT", "/users/{user_id}", StatusCode::BAD_REQUEST);
    }
    // The name cannot be changed through the profile.
    let r =
        call(&t, Method::PUT, &path, me("erin"), Some(json!({"username": "mallory", "email": "erin@example.com", "realname": "E"}))).await;
    expect(&r, "PUT", "/users/{user_id}", StatusCode::OK);
    assert_eq!(get(&t, &path, ADMIN).await.body["username"], "erin");

    let ops: Vec<(String, String)> = audit_rows(&t, "erin").await.into_iter().map(|(op, _, o, _)| (op, o)).collect();
    assert_eq!(
        ops,
        [
            ("admin".into(), "create".into()),
            ("erin".into(), "update".into()),
            ("admin".into(), "update".into()),
            ("erin".into(), "update".into())
        ]
    );
    t.shutdown().await;
}

async fn delete_users(db: Db) {
    let t = TestApp::start(db).await;
    let gone = create_user(&t, "gone").await;
    let keeper = create_user(&t, "keeper").await;
    let project = t.app.meta.create_project("teamx", 1, false, &setup_audit()).await.unwrap();
    t.app.meta.set_member(project, gone, role::DEVELOPER, &setup_audit()).await.unwrap();
    // The credential works before the deletion (and is cached).
    assert_eq!(get(&t, "/users/current", me("gone")).await.status, StatusCode::OK);
    // So does a personal access token of the user.
    let r = t
        .http
        .post(format!("{}/api/berth/v1/users/current/tokens", t.url))
        .basic_auth("gone", Some(PASSWORD))
        .json(&json!({"name": "ci"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let pat = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    assert_eq!(get(&t, "/users/current", Some(("gone", &pat))).await.status, StatusCode::OK);

    let path = format!("/users/{gone}");
    let r = call(&t, Method::DELETE, &path, me("keeper"), None).await;
    expect(&r, "DELETE", "/users/{user_id}", StatusCode::FORBIDDEN);
    let r = call(&t, Method::DELETE, &path, None, None).await;
    expect(&r, "DELETE", "/users/{user_id}", StatusCode::UNAUTHORIZED);
    // Nobody deletes themselves, nor the initial admin.
    let r = call(&t, Method::DELETE, "/users/1", ADMIN, None).await;
    expect(&r, "DELETE", "/users/{user_id}", StatusCode::FORBIDDEN);
    let r = call(&t, Method::PUT, &format!("/users/{keeper}/sysadmin"), ADMIN, Some(json!({"sysadmin_flag": true}))).await;
    expect(&r, "PUT", "/users/{user_id}/sysadmin", StatusCode::OK);
    let r = call(&t, Method::DELETE, &format!("/users/{keeper}"), me("keeper"), None).await;
    expect(&r, "DELETE", "/users/{user_id}", StatusCode::FORBIDDEN);
    let r = call(&t, Method::DELETE, "/users/1", me("keeper"), None).await;
    expect(&r, "DELETE", "/users/{user_id}", StatusCode::FORBIDDEN);

    let r = call(&t, Method::DELETE, &path, ADMIN, None).await;
    expect(&r, "DELETE", "/users/{user_id}", StatusCode::OK);
    assert!(r.text.is_empty());
    let r = get(&t, &path, ADMIN).await;
    expect(&r, "GET", "/users/{user_id}", StatusCode::NOT_FOUND);
    let r = call(&t, Method::DELETE, &path, ADMIN, None).await;
    expect(&r, "DELETE", "/users/{user_id}", StatusCode::NOT_FOUND);
    // Its credentials stop working at once (the cache is dropped), its memberships are gone.
    let r = get(&t, "/users/current", me("gone")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for name in ["gone".to_string(), format!("gone#{gone}")] {
        assert_eq!(get(&t, "/users/current", Some((&name, &pat))).await.status, StatusCode::UNAUTHORIZED, "{name}");
    }
    assert!(t.app.meta.member_roles(project, gone).await.unwrap().is_empty());
    let r = get(&t, "/users/search?username=gone", me("keeper")).await;
    assert_eq!(r.body, json!([]));
    // The name and e-mail can be used again, by a new account.
    let again = create_user(&t, "gone").await;
    assert_ne!(again, gone);
    assert_eq!(get(&t, "/users/current", me("gone")).await.body["user_id"], again);

    // (The refused login of the deleted account is recorded as a failed login.)
    let ops: Vec<(String, String)> =
        audit_rows(&t, "gone").await.into_iter().filter(|r| r.2 != "login").map(|(op, _, o, _)| (op, o)).collect();
    assert_eq!(ops, [("admin".into(), "create".into()), ("admin".into(), "delete".into()), ("admin".into(), "create".into())]);
    t.shutdown().await;
}

async fn list_and_search(db: Db) {
    let t = TestApp::start(db).await;
    for i in 0..12 {
        create_user(&t, &format!("user{i:02}")).await;
    }

    // Default page: 10 of 12, sorted by name; the initial admin is not listed (as in Harbor).
    let r = get(&t, "/users", ADMIN).await;
    expect(&r, "GET", "/users", StatusCode::OK);
    assert_eq!(r.header("x-total-count"), Some("12"));
    let names =
        |r: &Reply| -> Vec<String> { r.body.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_string()).collect() };
    assert_eq!(names(&r), (0..10).map(|i| format!("user{i:02}")).collect::<Vec<_>>());
    assert_eq!(r.header("link"), Some("</api/v2.0/users?page=2&page_size=10>; rel=\"next\""));

    let r = get(&t, "/users?page=2&page_size=5", ADMIN).await;
    expect(&r, "GET", "/users", StatusCode::OK);
    assert_eq!(names(&r), ["user05", "user06", "user07", "user08", "user09"]);
    let link = r.header("link").unwrap();
    assert!(
        link.contains("</api/v2.0/users?page=1&page_size=5>; rel=\"prev\"")
            && link.contains("</api/v2.0/users?page=3&page_size=5>; rel=\"next\""),
        "{link}"
    );
    let r = get(&t, "/users?page=3&page_size=5", ADMIN).await;
    assert_eq!(names(&r), ["user10", "user11"]);
    assert_eq!(r.header("x-total-count"), Some("12"));
    assert_eq!(r.header("link"), Some("</api/v2.0/users?page=2&page_size=5>; rel=\"prev\""));

    // Sorting and filtering.
    let r = get(&t, "/users?sort=-username&page_size=3", ADMIN).await;
    assert_eq!(names(&r), ["user11", "user10", "user09"]);
    let r = get(&t, "/users?sort=-creation_time,username&page_size=1", ADMIN).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = get(&t, "/users?q=username%3D~ER0", ADMIN).await;
    expect(&r, "GET", "/users", StatusCode::OK);
    assert_eq!(r.header("x-total-count"), Some("10"));
    let r = get(&t, "/users?q=email%3Duser03%40example.com", ADMIN).await;
    assert_eq!(names(&r), ["user03"]);
    let r = get(&t, "/users?q=username%3D%7Buser01%20user02%7D", ADMIN).await;
    assert_eq!(names(&r), ["user01", "user02"]);
    let r = get(&t, "/users?username=user1", ADMIN).await;
    assert_eq!(names(&r), ["user10", "user11"]);
    let r = get(&t, "/users?q=username%3D~user1%25", ADMIN).await;
    assert_eq!(r.header("x-total-count"), Some("0"), "% is matched literally");
    assert_eq!(r.body, json!([]));

    // Bad parameters.
    let r = get(&t, "/users?page_size=101", ADMIN).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    for bad in ["/users?q=password%3Dx", "/users?sort=password", "/users?q=username%3D%5Ba~b%5D", "/users?page=x"] {
        let r = get(&t, bad, ADMIN).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
    }
    // Only system admins list users.
    let r = get(&t, "/users", me("user00")).await;
    expect(&r, "GET", "/users", StatusCode::FORBIDDEN);
    let r = get(&t, "/users", None).await;
    expect(&r, "GET", "/users", StatusCode::UNAUTHORIZED);

    // Search: any logged-in user, ids and names only.
    let r = get(&t, "/users/search?username=user1", me("user00")).await;
    expect(&r, "GET", "/users/search", StatusCode::OK);
    assert_eq!(r.header("x-total-count"), Some("2"));
    for item in r.body.as_array().unwrap() {
        let keys: BTreeSet<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["user_id", "username"]));
    }
    assert_eq!(names(&r), ["user10", "user11"]);
    let r = get(&t, "/users/search?username=USER&page_size=5&page=2", me("user00")).await;
    expect(&r, "GET", "/users/search", StatusCode::OK);
    assert_eq!(r.header("x-total-count"), Some("12"));
    assert_eq!(names(&r), ["user05", "user06", "user07", "user08", "user09"]);
    let link = r.header("link").unwrap();
    assert!(link.contains("</api/v2.0/users/search?username=USER&page=3&page_size=5>; rel=\"next\""), "{link}");
    let r = get(&t, "/users/search?username=nobody", me("user00")).await;
    expect(&r, "GET", "/users/search", StatusCode::OK);
    assert_eq!((r.body.clone(), r.header("x-total-count")), (json!([]), Some("0")));
    let r = get(&t, "/users/search", me("user00")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().contains("username"), "{}", r.text);
    let r = get(&t, "/users/search?username=user", None).await;
    expect(&r, "GET", "/users/search", StatusCode::UNAUTHORIZED);
    t.shutdown().await;
}

async fn passwords(db: Db) {
    let t = TestApp::start(db).await;
    let gina = create_user(&t, "gina").await;
    create_user(&t, "hank").await;
    let path = format!("/users/{gina}/password");
    const NEW: &str = "Brand-New-Passw0rd";
    // Used (and cached) before the change.
    assert_eq!(get(&t, "/users/current", me("gina")).await.status, StatusCode::OK);

    // The user must prove the current password.
    let r = call(&t, Method::PUT, &path, me("gina"), Some(json!({"old_password": "Not-The-Passw0rd", "new_password": NEW}))).await;
    expect_error(&r, StatusCode::FORBIDDEN, "current password is incorrect");
    let r = call(&t, Method::PUT, &path, me("gina"), Some(json!({"new_password": NEW}))).await;
    expect_error(&r, StatusCode::FORBIDDEN, "current password is incorrect");
    // Harbor's password rule, and a new password must differ.
    let r = call(&t, Method::PUT, &path, me("gina"), Some(json!({"old_password": PASSWORD, "new_password": "weakpass"}))).await;
    expect_error(&r, StatusCode::BAD_REQUEST, "8 to 128 characters long with at least 1 uppercase letter, 1 lowercase letter and 1 number");
    let r = call(&t, Method::PUT, &path, me("gina"), Some(json!({"old_password": PASSWORD, "new_password": PASSWORD}))).await;
    expect_error(&r, StatusCode::BAD_REQUEST, "differ");
    // Nobody else but a system admin; anonymous 401.
    let r = call(&t, Method::PUT, &path, me("hank"), Some(json!({"old_password": PASSWORD, "new_password": NEW}))).await;
    expect_error(&r, StatusCode::FORBIDDEN, "can't be updated");
    let r = call(&t, Method::PUT, &path, None, Some(json!({"old_password": PASSWORD, "new_password": NEW}))).await;
    expect(&r, "PUT", "/users/{user_id}/password", StatusCode::UNAUTHORIZED);
    assert_eq!(get(&t, "/users/current", me("gina")).await.status, StatusCode::OK, "refused changes change nothing");

    let r = call(&t, Method::PUT, &path, me("gina"), Some(json!({"old_password": PASSWORD, "new_password": NEW}))).await;
    expect(&r, "PUT", "/users/{user_id}/password", StatusCode::OK);
    assert!(r.text.is_empty());
    // The old password stops working at once, though it was cached; the new one works.
    assert_eq!(get(&t, "/users/current", me("gina")).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&t, "/users/current", Some(("gina", NEW))).await.status, StatusCode::OK);

    // A system admin resets it without the current one.
    const RESET: &str = "Reset-By-Admin-9";
    let r = call(&t, Method::PUT, &path, ADMIN, Some(json!({"new_password": RESET}))).await;
    expect(&r, "PUT", "/users/{user_id}/password", StatusCode::OK);
    assert_eq!(get(&t, "/users/current", Some(("gina", NEW))).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&t, "/users/current", Some(("gina", RESET))).await.status, StatusCode::OK);
    let r = call(&t, Method::PUT, &path, ADMIN, Some(json!({"new_password": "short"}))).await;
    expect_error(&r, StatusCode::BAD_REQUEST, "8 to 128");
    let r = call(&t, Method::PUT, "/users/999999/password", ADMIN, Some(json!({"new_password": RESET}))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    // The admin changing its own password proves the current one too.
    let r = call(&t, Method::PUT, "/users/1/password", ADMIN, Some(json!({"new_password": RESET}))).await;
    expect_error(&r, StatusCode::FORBIDDEN, "current password is incorrect");

    let updates = audit_rows(&t, "gina").await.into_iter().filter(|r| r.2 == "update").map(|r| r.0).collect::<Vec<_>>();
    assert_eq!(updates, ["gina", "admin"]);
    // The stored value is an argon2 hash, never the password.
    let stored = t.app.meta.user_by_name("gina").await.unwrap().unwrap().password_hash;
    assert!(stored.starts_with("$argon2") && !stored.contains(RESET), "{stored}");
    t.shutdown().await;
}

async fn sysadmin_flag(db: Db) {
    let t = TestApp::start(db).await;
    let ivy = create_user(&t, "ivy").await;
    let path = format!("/users/{ivy}/sysadmin");
    assert_eq!(get(&t, "/users", me("ivy")).await.status, StatusCode::FORBIDDEN);

    let r = call(&t, Method::PUT, &path, me("ivy"), Some(json!({"sysadmin_flag": true}))).await;
    expect(&r, "PUT", "/users/{user_id}/sysadmin", StatusCode::FORBIDDEN);
    let r = call(&t, Method::PUT, &path, None, Some(json!({"sysadmin_flag": true}))).await;
    expect(&r, "PUT", "/users/{user_id}/sysadmin", StatusCode::UNAUTHORIZED);
    let r = call(&t, Method::PUT, &path, ADMIN, Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().contains("sysadmin_flag"), "{}", r.text);
    let r = call(&t, Method::PUT, "/users/999999/sysadmin", ADMIN, Some(json!({"sysadmin_flag": true}))).await;
    expect(&r, "PUT", "/users/{user_id}/sysadmin", StatusCode::NOT_FOUND);

    let r = call(&t, Method::PUT, &path, ADMIN, Some(json!({"sysadmin_flag": true}))).await;
    expect(&r, "PUT", "/users/{user_id}/sysadmin", StatusCode::OK);
    // Takes effect on the next request, though the credential was cached without the role.
    let r = get(&t, "/users", me("ivy")).await;
    expect(&r, "GET", "/users", StatusCode::OK);
    assert_eq!(get(&t, &format!("/users/{ivy}"), ADMIN).await.body["sysadmin_flag"], true);
    let r = call(&t, Method::PUT, &path, ADMIN, Some(json!({"sysadmin_flag": false}))).await;
    expect(&r, "PUT", "/users/{user_id}/sysadmin", StatusCode::OK);
    assert_eq!(get(&t, "/users", me("ivy")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(get(&t, "/users/current", me("ivy")).await.body["sysadmin_flag"], false);

    let ops: Vec<String> = audit_rows(&t, "ivy").await.into_iter().map(|r| r.2).collect();
    assert_eq!(ops, ["create", "update", "update"]);
    t.shutdown().await;
}

async fn current_user_and_permissions(db: Db) {
    let t = TestApp::start(db).await;
    let jack = create_user(&t, "jack").await;

    let r = get(&t, "/users/current", None).await;
    expect(&r, "GET", "/users/current", StatusCode::UNAUTHORIZED);
    let r = get(&t, "/users/current", me("jack")).await;
    expect(&r, "GET", "/users/current", StatusCode::OK);
    assert_eq!((r.body["user_id"].as_i64(), r.body["username"].as_str()), (Some(jack), Some("jack")));
    assert_eq!(r.body["sysadmin_flag"], false);
    let r = get(&t, "/users/current", ADMIN).await;
    expect(&r, "GET", "/users/current", StatusCode::OK);
    assert_eq!(
        (r.body["user_id"].as_i64(), r.body["username"].as_str(), r.body["sysadmin_flag"].as_bool()),
        (Some(1), Some("admin"), Some(true))
    );

    let library = t.app.meta.project_by_name("library").await.unwrap().unwrap().id;
    let private = t.app.meta.create_project("secret", 1, false, &setup_audit()).await.unwrap();
    let guested = t.app.meta.create_project("guested", 1, false, &setup_audit()).await.unwrap();
    t.app.meta.set_member(guested, jack, role::GUEST, &setup_audit()).await.unwrap();

    let perms = |r: &Reply| -> BTreeSet<(String, String)> {
        r.body.as_array().unwrap().iter().map(|p| (p["resource"].as_str().unwrap().into(), p["action"].as_str().unwrap().into())).collect()
    };
    let pair = |r: &str, a: &str| (r.to_string(), a.to_string());
    let path = |scope: String, relative: bool| format!("/users/current/permissions?scope={scope}&relative={relative}");

    let r = get(&t, &path(format!("/project/{library}"), true), None).await;
    expect(&r, "GET", "/users/current/permissions", StatusCode::UNAUTHORIZED);
    // A public project gives a non-member what Harbor gives anyone there.
    let r = get(&t, &path(format!("/project/{library}"), true), me("jack")).await;
    expect(&r, "GET", "/users/current/permissions", StatusCode::OK);
    let public = perms(&r);
    assert_eq!(public.len(), PROJECT_MATRIX.iter().filter(|m| m.3).count());
    assert!(public.contains(&pair(".", "read")) && public.contains(&pair("repository", "pull")));
    assert!(!public.contains(&pair("repository", "push")));
    let r = get(&t, &path(format!("/project/{library}"), false), me("jack")).await;
    expect(&r, "GET", "/users/current/permissions", StatusCode::OK);
    let absolute = perms(&r);
    assert!(absolute.contains(&pair(&format!("/project/{library}"), "read")));
    assert!(absolute.contains(&pair(&format!("/project/{library}/repository"), "pull")));
    // A guest of a private project; nothing in one it is not a member of, nor in a missing one.
    let r = get(&t, &path(format!("/project/{guested}"), true), me("jack")).await;
    let guest = perms(&r);
    assert_eq!(guest.len(), 20);
    assert!(guest.contains(&pair("repository", "pull")) && !guest.contains(&pair("repository", "push")));
    for scope in [format!("/project/{private}"), "/project/999999".to_string(), "/project/secret".into(), "".into()] {
        let r = get(&t, &path(scope.clone(), true), me("jack")).await;
        expect(&r, "GET", "/users/current/permissions", StatusCode::OK);
        assert_eq!(r.body, json!([]), "{scope}");
    }
    let r = get(&t, "/users/current/permissions", me("jack")).await;
    assert_eq!((r.status, r.body.clone()), (StatusCode::OK, json!([])));
    // A system admin holds everything.
    let r = get(&t, &path(format!("/project/{private}"), true), ADMIN).await;
    expect(&r, "GET", "/users/current/permissions", StatusCode::OK);
    let all = perms(&r);
    assert_eq!(all.len(), PROJECT_MATRIX.len());
    assert!(all.contains(&pair("repository", "push")) && all.contains(&pair(".", "delete")));
    let r = get(&t, &format!("/users/current/permissions?scope=/project/{private}&relative=maybe"), me("jack")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    t.shutdown().await;
}

async fn failed_login_slowdown(db: Db) {
    let t = TestApp::start(db).await;
    let cooldown = Duration::from_secs(2);
    t.app.auth.set_login_throttle(LoginThrottle {
        max_failures: 5,
        window: Duration::from_secs(300),
        cooldown,
        max_cooldown: Duration::from_secs(4),
        ..LoginThrottle::default()
    });
    create_user(&t, "kim").await;
    create_user(&t, "lee").await;
    let wrong = Some(("kim", "Wrong-Passw0rd"));
    let status = |r: Reply| r.status;
    // The right password works, and is cached.
    assert_eq!(status(get(&t, "/users/current", me("kim")).await), StatusCode::OK);

    for _ in 0..5 {
        assert_eq!(status(get(&t, "/users/current", wrong).await), StatusCode::UNAUTHORIZED);
    }
    // Locked: even the right (cached) password is refused; other users are not affected.
    assert_eq!(status(get(&t, "/users/current", me("kim")).await), StatusCode::UNAUTHORIZED);
    assert_eq!(status(get(&t, "/users/current", me("lee")).await), StatusCode::OK);
    let token =
        t.http.get(format!("{}/service/token?service=harbor-registry", t.url)).basic_auth("kim", Some(PASSWORD)).send().await.unwrap();
    assert_eq!(token.status(), StatusCode::UNAUTHORIZED, "the token service is locked too");
    // Attempts during the cool-down are not even checked, so they are not counted.
    assert_eq!(status(get(&t, "/users/current", wrong).await), StatusCode::UNAUTHORIZED);
    let failures = |rows: Vec<(String, String, String, bool)>| rows.into_iter().filter(|r| r.2 == "login").collect::<Vec<_>>();
    let rows = failures(audit_rows(&t, "kim").await);
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r == &("kim".to_string(), "user".to_string(), "login".to_string(), false)), "{rows:?}");

    // After the cool-down the right password works again.
    tokio::time::sleep(cooldown + Duration::from_millis(300)).await;
    assert_eq!(status(get(&t, "/users/current", me("kim")).await), StatusCode::OK);

    // Consecutive lock-outs double the cool-down (2 s, then 4 s).
    for _ in 0..5 {
        assert_eq!(status(get(&t, "/users/current", wrong).await), StatusCode::UNAUTHORIZED);
    }
    tokio::time::sleep(cooldown + Duration::from_millis(300)).await;
    for _ in 0..5 {
        assert_eq!(status(get(&t, "/users/current", wrong).await), StatusCode::UNAUTHORIZED);
    }
    tokio::time::sleep(cooldown + Duration::from_millis(500)).await;
    assert_eq!(status(get(&t, "/users/current", me("kim")).await), StatusCode::UNAUTHORIZED, "the second lock-out lasts twice as long");
    tokio::time::sleep(cooldown).await;
    assert_eq!(status(get(&t, "/users/current", me("kim")).await), StatusCode::OK);
    assert_eq!(failures(audit_rows(&t, "kim").await).len(), 15);

    // Unknown names are slowed down the same way (nothing tells them apart from real ones).
    for _ in 0..5 {
        assert_eq!(status(get(&t, "/users/current", Some(("nobody", "Wrong-Passw0rd"))).await), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(failures(audit_rows(&t, "nobody").await).len(), 5);
    // No audit row or response carries a password.
    let all: Vec<String> = audit_rows(&t, "kim").await.into_iter().map(|r| format!("{r:?}")).collect();
    assert!(all.iter().all(|r| !r.contains("Wrong-Passw0rd") && !r.contains(PASSWORD)));
    t.shutdown().await;
}

on_both_backends! {
    create_and_read => create_and_read;
    create_rules => create_rules;
    update_profile => update_profile;
    delete_users => delete_users;
    list_and_search => list_and_search;
    passwords => passwords;
    sysadmin_flag => sysadmin_flag;
    current_user_and_permissions => current_user_and_permissions;
    failed_login_slowdown => failed_login_slowdown;
}
