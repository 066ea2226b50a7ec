//! Harbor API group `member` over HTTP, on SQLite and PostgreSQL: adding users by id or name,
//! roles 1 to 5, duplicates, role changes, removal, the `entityname` filter and paging, the
//! role matrix on private and public projects, discovery safety, the effect of membership
//! on access, and audit records. Every JSON body is checked against Harbor's swagger contract.

mod common;
mod contract;
mod harbor;

use berth::meta::{Audit, ProjectAuditRow};
use common::{ADMIN_PASSWORD, Db, TestApp};
use harbor::{Resp, Who, api};
use serde_json::{Value, json};

const PW: &str = "Member-Passw0rd";
const ADMIN: Who = Some(("admin", ADMIN_PASSWORD));
const LIST: &str = "/projects/{project_name_or_id}/members";
const ONE: &str = "/projects/{project_name_or_id}/members/{mid}";

fn audit() -> Audit {
    Audit { operator: "test".into(), resource: "setup".into(), resource_type: "test", operation: "create", ..Default::default() }
}

async fn users(t: &TestApp, names: &[&str]) -> Vec<i64> {
    let hash = berth::auth::hash_password(PW).await.unwrap();
    let mut ids = Vec::new();
    for n in names {
        ids.push(t.app.meta.create_user(n, &hash, false, &audit()).await.unwrap());
    }
    ids
}

fn as_user(name: &'static str) -> Who {
    Some((name, PW))
}

async fn new_project(t: &TestApp, name: &str, public: bool) -> i64 {
    let r =
        api(t, "POST", "/projects", "/projects", ADMIN, Some(json!({"project_name": name, "metadata": {"public": public.to_string()}})))
            .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap()
}

async fn add(t: &TestApp, project: &str, who: Who, body: Value) -> Resp {
    api(t, "POST", LIST, &format!("/projects/{project}/members"), who, Some(body)).await
}

/// The member id at the end of a `Location`.
fn mid(r: &Resp) -> i64 {
    r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap()
}

async fn member_lifecycle(db: Db) {
    let t = TestApp::start(db).await;
    let ids = users(&t, &["alice", "bob", "carol", "dave", "erin"]).await;
    let pid = new_project(&t, "team", false).await;
    // By user id and by user name; Location names the project as the path did.
    let r = add(&t, "team", ADMIN, json!({"role_id": 2, "member_user": {"user_id": ids[0]}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.text.is_empty());
    let alice = mid(&r);
    assert_eq!(r.header("location").unwrap(), format!("/api/v2.0/projects/team/members/{alice}"));
    let r = add(&t, &pid.to_string(), ADMIN, json!({"role_id": 4, "member_user": {"username": "bob"}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let bob = mid(&r);
    assert_eq!(r.header("location").unwrap(), format!("/api/v2.0/projects/{pid}/members/{bob}"));
    for (name, role) in [("carol", 3), ("dave", 5), ("erin", 1)] {
        let r = add(&t, "team", ADMIN, json!({"role_id": role, "member_user": {"username": name}})).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    // One member.
    let r = api(&t, "GET", ONE, &format!("/projects/team/members/{alice}"), ADMIN, None).await;
    assert_eq!(
        r.body,
        json!({"id": alice, "project_id": pid, "entity_name": "alice", "role_name": "developer", "role_id": 2, "entity_id": ids[0], "entity_type": "u"})
    );
    // The list: by name, with every role's name.
    let r = api(&t, "GET", LIST, "/projects/team/members", ADMIN, None).await;
    assert_eq!(r.header("x-total-count").unwrap(), "6");
    let got: Vec<(String, String, i64)> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["entity_name"].as_str().unwrap().into(), m["role_name"].as_str().unwrap().into(), m["role_id"].as_i64().unwrap()))
        .collect();
    let want: Vec<(String, String, i64)> = [
        ("admin", "projectAdmin", 1),
        ("alice", "developer", 2),
        ("bob", "maintainer", 4),
        ("carol", "guest", 3),
        ("dave", "limitedGuest", 5),
        ("erin", "projectAdmin", 1),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
    .collect();
    assert_eq!(got, want);
    // entityname is an exact name, as in Harbor.
    let r = api(&t, "GET", LIST, "/projects/team/members?entityname=bob", ADMIN, None).await;
    assert_eq!(r.header("x-total-count").unwrap(), "1");
    assert_eq!(r.body[0]["id"], bob);
    let r = api(&t, "GET", LIST, "/projects/team/members?entityname=bo", ADMIN, None).await;
    assert_eq!(r.body, json!([]));
    // Paging.
    let r = api(&t, "GET", LIST, "/projects/team/members?page=2&page_size=4", ADMIN, None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    assert_eq!(r.header("x-total-count").unwrap(), "6");
    assert_eq!(r.header("link").unwrap(), r#"</api/v2.0/projects/team/members?page=1&page_size=4>; rel="prev""#);
    let r = api(&t, "GET", LIST, "/projects/team/members?page_size=101", ADMIN, None).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.message(), "page_size in query should be less than or equal to 100");
    // Duplicates, bad roles, unknown users, groups, empty requests.
    let r = add(&t, "team", ADMIN, json!({"role_id": 3, "member_user": {"username": "alice"}})).await;
    assert_eq!(r.status, 409, "{}", r.text);
    for (body, needle) in [
        (json!({"role_id": 6, "member_user": {"username": "nobody-yet"}}), "nobody-yet"),
        (json!({"role_id": 9, "member_user": {"user_id": 99999}}), "99999"),
        (json!({"member_user": {"username": "alice"}}), "role"),
        (json!({"role_id": 0, "member_user": {"username": "alice"}}), "role"),
        (json!({"role_id": 2, "member_group": {"group_name": "devs", "group_type": 1}}), "groups are not supported yet"),
        (json!({"role_id": 2}), "member_user"),
    ] {
        let r = add(&t, "team", ADMIN, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert!(r.message().contains(needle), "{body}: {}", r.message());
    }
    let users_now = users(&t, &["frank"]).await;
    let r = add(&t, "team", ADMIN, json!({"role_id": 6, "member_user": {"user_id": users_now[0]}})).await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("1 (projectAdmin)"), "{}", r.message());
    // Role changes.
    let r = api(&t, "PUT", ONE, &format!("/projects/team/members/{alice}"), ADMIN, Some(json!({"role_id": 4}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api(&t, "GET", ONE, &format!("/projects/team/members/{alice}"), ADMIN, None).await;
    assert_eq!((r.body["role_id"].clone(), r.body["role_name"].clone()), (json!(4), json!("maintainer")));
    for body in [json!({"role_id": 0}), json!({"role_id": 7}), json!({})] {
        let r = api(&t, "PUT", ONE, &format!("/projects/team/members/{alice}"), ADMIN, Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
    }
    let r = api(&t, "PUT", ONE, "/projects/team/members/99999", ADMIN, Some(json!({"role_id": 2}))).await;
    assert_eq!(r.status, 404);
    let r = api(&t, "GET", ONE, "/projects/team/members/abc", ADMIN, None).await;
    assert_eq!(r.status, 400);
    // A member of another project is not a member of this one.
    new_project(&t, "elsewhere", false).await;
    let r = api(&t, "GET", ONE, &format!("/projects/elsewhere/members/{alice}"), ADMIN, None).await;
    assert_eq!(r.status, 404);
    let r = api(&t, "DELETE", ONE, &format!("/projects/elsewhere/members/{alice}"), ADMIN, None).await;
    assert_eq!(r.status, 404);
    // Removal.
    let r = api(&t, "DELETE", ONE, &format!("/projects/team/members/{bob}"), ADMIN, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api(&t, "GET", ONE, &format!("/projects/team/members/{bob}"), ADMIN, None).await;
    assert_eq!(r.status, 404);
    let r = api(&t, "DELETE", ONE, &format!("/projects/team/members/{bob}"), ADMIN, None).await;
    assert_eq!(r.status, 404);
    // Audit: every change, with the member's name, in the project.
    let log = t.app.meta.project_audit_log(pid).await.unwrap();
    let members: Vec<ProjectAuditRow> = log.into_iter().filter(|r| r.resource_type == "member").collect();
    let row = |resource: &str, operation: &str| ProjectAuditRow {
        operator: "admin".into(),
        resource: resource.into(),
        resource_type: "member".into(),
        operation: operation.into(),
        success: true,
    };
    assert_eq!(
        members,
        vec![
            row("alice", "create"),
            row("bob", "create"),
            row("carol", "create"),
            row("dave", "create"),
            row("erin", "create"),
            row("alice", "update"),
            row("bob", "delete"),
        ]
    );
    t.shutdown().await;
}

/// Starts an upload in team/app as `dev` with Basic credentials; the status.
async fn push(t: &TestApp) -> u16 {
    let r = t.http.post(format!("{}/v2/team/app/blobs/uploads/", t.url)).basic_auth("dev", Some(PW)).send().await.unwrap();
    r.status().as_u16()
}

/// Membership is what grants access, at once (the credential cache does not keep old roles).
async fn membership_grants_access(db: Db) {
    let t = TestApp::start(db).await;
    users(&t, &["dev"]).await;
    new_project(&t, "team", false).await;
    let dev = as_user("dev");
    let r = api(&t, "GET", "/projects/{project_name_or_id}", "/projects/team", dev, None).await;
    assert_eq!(r.status, 404);
    let r = add(&t, "team", ADMIN, json!({"role_id": 3, "member_user": {"username": "dev"}})).await;
    let m = mid(&r);
    let r = api(&t, "GET", "/projects/{project_name_or_id}", "/projects/team", dev, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["current_user_role_id"], 3);
    assert_eq!(push(&t).await, 403, "a guest may not push");
    api(&t, "PUT", ONE, &format!("/projects/team/members/{m}"), ADMIN, Some(json!({"role_id": 2}))).await;
    assert_eq!(push(&t).await, 202, "a developer may push");
    let r = api(&t, "GET", "/projects", "/projects", dev, None).await;
    let team = r.body.as_array().unwrap().iter().find(|p| p["name"] == "team").unwrap().clone();
    assert_eq!(team["current_user_role_ids"], json!([2]));
    api(&t, "DELETE", ONE, &format!("/projects/team/members/{m}"), ADMIN, None).await;
    let r = api(&t, "GET", "/projects/{project_name_or_id}", "/projects/team", dev, None).await;
    assert_eq!(r.status, 404);
    assert_eq!(push(&t).await, 403);
    t.shutdown().await;
}

const ROLES: [(&str, i64); 5] = [("pa", 1), ("ma", 4), ("dev", 2), ("gu", 3), ("lg", 5)];
const CALLERS: [&str; 8] = ["admin", "pa", "ma", "dev", "gu", "lg", "out", "anon"];

fn who(caller: &str) -> Who {
    match caller {
        "admin" => ADMIN,
        "anon" => None,
        "pa" => as_user("pa"),
        "ma" => as_user("ma"),
        "dev" => as_user("dev"),
        "gu" => as_user("gu"),
        "lg" => as_user("lg"),
        "out" => as_user("out"),
        _ => unreachable!(),
    }
}

/// The matrix's answer for `caller` on an operation `holders` may do; 404 for callers who
/// may not read the project (no `member` permission is granted by a project being public).
fn expected(caller: &str, public: bool, holders: &[&str], ok: u16) -> u16 {
    if caller == "admin" || holders.contains(&caller) {
        ok
    } else if ROLES.iter().any(|(r, _)| *r == caller) || (public && caller == "out") {
        403
    } else if public {
        401
    } else {
        404
    }
}

async fn role_matrix(db: Db) {
    let t = TestApp::start(db).await;
    users(&t, &["pa", "ma", "dev", "gu", "lg", "out", "cand"]).await;
    for (project, public) in [("priv", false), ("pub", true)] {
        new_project(&t, project, public).await;
        let mut ids = Vec::new();
        for (user, role) in ROLES {
            let r = add(&t, project, ADMIN, json!({"role_id": role, "member_user": {"username": user}})).await;
            assert_eq!(r.status, 201);
            ids.push(mid(&r));
        }
        let dev_member = ids[2];
        for caller in CALLERS {
            let w = who(caller);
            let ctx = format!("{caller} on {project}");
            let r = api(&t, "GET", LIST, &format!("/projects/{project}/members"), w, None).await;
            assert_eq!(r.status, expected(caller, public, &["pa", "ma", "dev", "gu"], 200), "list, {ctx}: {}", r.text);
            if r.status == 200 {
                assert_eq!(r.header("x-total-count").unwrap(), "6", "{ctx}");
            }
            let r = api(&t, "GET", ONE, &format!("/projects/{project}/members/{dev_member}"), w, None).await;
            assert_eq!(r.status, expected(caller, public, &["pa", "ma", "dev", "gu"], 200), "get, {ctx}: {}", r.text);
            let r = api(&t, "PUT", ONE, &format!("/projects/{project}/members/{dev_member}"), w, Some(json!({"role_id": 2}))).await;
            assert_eq!(r.status, expected(caller, public, &["pa"], 200), "update, {ctx}: {}", r.text);
            if !["admin", "pa"].contains(&caller) {
                let r = add(&t, project, w, json!({"role_id": 3, "member_user": {"username": "cand"}})).await;
                assert_eq!(r.status, expected(caller, public, &["pa"], 201), "create, {ctx}: {}", r.text);
                let r = api(&t, "DELETE", ONE, &format!("/projects/{project}/members/{dev_member}"), w, None).await;
                assert_eq!(r.status, expected(caller, public, &["pa"], 200), "delete, {ctx}: {}", r.text);
            }
        }
        // The project admin adds and removes members.
        let r = add(&t, project, who("pa"), json!({"role_id": 3, "member_user": {"username": "cand"}})).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let r = api(&t, "DELETE", ONE, &format!("/projects/{project}/members/{}", mid(&r)), who("pa"), None).await;
        assert_eq!(r.status, 200);
        let r = api(&t, "DELETE", ONE, &format!("/projects/{project}/members/{dev_member}"), ADMIN, None).await;
        assert_eq!(r.status, 200);
        let r = api(&t, "GET", LIST, &format!("/projects/{project}/members"), who("pa"), None).await;
        assert_eq!(r.header("x-total-count").unwrap(), "5");
    }
    t.shutdown().await;
}

/// Outsiders and anonymous callers get the same answer for a private project as for a
/// missing one, on every member endpoint.
async fn discovery_safety(db: Db) {
    let t = TestApp::start(db).await;
    users(&t, &["out", "cand"]).await;
    let id = new_project(&t, "secret", false).await;
    let r = add(&t, "secret", ADMIN, json!({"role_id": 2, "member_user": {"username": "cand"}})).await;
    let m = mid(&r);
    let endpoints: &[(&str, &str, Option<Value>)] = &[
        ("GET", LIST, None),
        ("POST", LIST, Some(json!({"role_id": 1, "member_user": {"username": "out"}}))),
        ("GET", ONE, None),
        ("PUT", ONE, Some(json!({"role_id": 1}))),
        ("DELETE", ONE, None),
    ];
    for w in [as_user("out"), None] {
        for (method, template, body) in endpoints {
            for (existing, missing) in [("secret".to_string(), "nosuch".to_string()), (id.to_string(), (id + 1000).to_string())] {
                let path = |p: &str| template.replace("{project_name_or_id}", p).replace("{mid}", &m.to_string());
                let a = api(&t, method, template, &path(&existing), w, body.clone()).await;
                let b = api(&t, method, template, &path(&missing), w, body.clone()).await;
                assert_eq!(a.status, 404, "{method} {} as {w:?}: {}", path(&existing), a.text);
                assert_eq!(b.status, 404);
                assert_eq!(a.text, b.text.replace(&missing, &existing), "{method} {template} as {w:?}");
            }
        }
    }
    // Nothing changed.
    let r = api(&t, "GET", LIST, "/projects/secret/members", ADMIN, None).await;
    assert_eq!(r.header("x-total-count").unwrap(), "2");
    let r = api(&t, "GET", ONE, &format!("/projects/secret/members/{m}"), ADMIN, None).await;
    assert_eq!(r.body["role_id"], 2);
    t.shutdown().await;
}

on_both_backends! {
    lifecycle => member_lifecycle;
    access => membership_grants_access;
    matrix => role_matrix;
    discovery => discovery_safety;
}
