//! Harbor API group `label` over HTTP, on SQLite and PostgreSQL: global and project labels
//! created, listed (paging, `name`, `q`, `sort`), read, updated and deleted; duplicate names,
//! bad input, the permission matrix for every kind of caller on private and public projects,
//! audit records, labels going with their project; and the store's label-on-artifact
//! functions over a pushed image. Every body is checked against Harbor's swagger contract.

mod common;
mod contract;
mod harbor;

use berth::error::Error;
use berth::meta::{Audit, accounts_role as role};
use common::{ADMIN_PASSWORD, Db, TestApp};
use harbor::{Resp, Who, api};
use serde_json::{Value, json};

const PW: &str = "Label-Passw0rd";
const ADMIN: Who = Some(("admin", ADMIN_PASSWORD));

async fn post_label(t: &TestApp, who: Who, body: Value) -> Resp {
    api(t, "POST", "/labels", "/labels", who, Some(body)).await
}

async fn get_label(t: &TestApp, who: Who, id: i64) -> Resp {
    api(t, "GET", "/labels/{label_id}", &format!("/labels/{id}"), who, None).await
}

async fn put_label(t: &TestApp, who: Who, id: i64, body: Value) -> Resp {
    api(t, "PUT", "/labels/{label_id}", &format!("/labels/{id}"), who, Some(body)).await
}

async fn delete_label(t: &TestApp, who: Who, id: i64) -> Resp {
    api(t, "DELETE", "/labels/{label_id}", &format!("/labels/{id}"), who, None).await
}

async fn list_labels(t: &TestApp, who: Who, query: &str) -> Resp {
    api(t, "GET", "/labels", &format!("/labels?{query}"), who, None).await
}

/// Creates a label as `who`, expecting 201; returns its id (from `Location`).
async fn new_label(t: &TestApp, who: Who, body: Value) -> i64 {
    let r = post_label(t, who, body.clone()).await;
    assert_eq!(r.status, 201, "create {body}: {}", r.text);
    assert!(r.body.is_null(), "201 has no body");
    let loc = r.header("location").expect("Location");
    loc.strip_prefix("/api/v2.0/labels/").unwrap_or_else(|| panic!("Location {loc}")).parse().unwrap()
}

fn names(r: &Resp) -> Vec<String> {
    r.body.as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap().to_string()).collect()
}

fn setup_audit() -> Audit {
    Audit { operator: "test".into(), resource: "setup".into(), resource_type: "test", operation: "create", ..Default::default() }
}

/// Users with the password `PW`; returns their ids.
async fn users(t: &TestApp, names: &[&str]) -> Vec<i64> {
    let hash = berth::auth::hash_password(PW).await.unwrap();
    let mut ids = Vec::new();
    for n in names {
        ids.push(t.app.meta.create_user(n, &hash, false, &setup_audit()).await.unwrap());
    }
    ids
}

/// Runs one query on the test's own database (the server's SQLite file or PostgreSQL database).
async fn rows<T>(t: &TestApp, sql: &'static str, arg: &str) -> Vec<T>
where
    T: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    let url = &t.app.config.database;
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let out = sqlx::query_as::<_, T>(sql).bind(arg).fetch_all(&pool).await.unwrap();
        pool.close().await;
        out
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let out = sqlx::query_as::<_, T>(sql).bind(arg).fetch_all(&pool).await.unwrap();
        pool.close().await;
        out
    }
}

/// (operator, operation, resource, project_id) of the audit records of `resource_type`, oldest first.
async fn audit_rows(t: &TestApp, resource_type: &str) -> Vec<(String, String, String, Option<i64>)> {
    rows(t, "SELECT operator, operation, resource, project_id FROM audit_log WHERE resource_type = $1 ORDER BY id", resource_type).await
}

async fn global_labels(db: Db) {
    let t = TestApp::start(db).await;
    users(&t, &["alice"]).await;
    let alice: Who = Some(("alice", PW));

    // Create: 201 with Location, no body; a global label belongs to no project.
    let id =
        new_label(&t, ADMIN, json!({"name": "release", "description": "ready to ship", "color": "#61717D", "scope": "g", "project_id": 9}))
            .await;
    let r = get_label(&t, ADMIN, id).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let l = &r.body;
    assert_eq!(
        (l["id"].as_i64(), &l["name"], &l["description"], &l["color"]),
        (Some(id), &json!("release"), &json!("ready to ship"), &json!("#61717D"))
    );
    assert_eq!((&l["scope"], &l["project_id"]), (&json!("g"), &json!(0)));
    assert_eq!(l["creation_time"], l["update_time"]);
    // Any logged-in user reads global labels; an anonymous caller is told nothing.
    let r = get_label(&t, alice, id).await;
    assert_eq!((r.status, &r.body), (200, l));
    let r = get_label(&t, None, id).await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND".to_string()));
    assert_eq!(r.text, get_label(&t, None, id + 100).await.text.replace(&(id + 100).to_string(), &id.to_string()), "invisible is missing");
    assert_eq!(get_label(&t, ADMIN, 999_999).await.status, 404);
    assert_eq!(api(&t, "GET", "/labels/{label_id}", "/labels/abc", ADMIN, None).await.status, 400);

    // Duplicate names: 409, also when only the project_id (ignored for global labels) differs.
    let r = post_label(&t, ADMIN, json!({"name": "release", "scope": "g"})).await;
    assert_eq!((r.status, r.code()), (409, "CONFLICT".to_string()));
    assert!(r.message().contains("release"), "{}", r.message());
    assert_eq!(post_label(&t, ADMIN, json!({"name": "Release", "scope": "g"})).await.status, 201, "names are case-sensitive");

    // Only system admins manage global labels.
    assert_eq!(post_label(&t, alice, json!({"name": "mine", "scope": "g"})).await.status, 403);
    assert_eq!(post_label(&t, None, json!({"name": "mine", "scope": "g"})).await.status, 401);
    assert_eq!(put_label(&t, alice, id, json!({"name": "x"})).await.status, 403);
    // An anonymous caller may not read global labels: changing one answers as for a missing label.
    assert_eq!(put_label(&t, None, id, json!({"name": "x"})).await.status, 404);
    assert_eq!(delete_label(&t, alice, id).await.status, 403);
    assert_eq!(delete_label(&t, None, id).await.status, 404);

    // Bad input: 400 with a message that says what is allowed.
    for (body, says) in [
        (json!({"scope": "g"}), "name is required"),
        (json!({"name": "", "scope": "g"}), "name is required"),
        (json!({"name": "x".repeat(129), "scope": "g"}), "at most 128"),
        (json!({"name": "a"}), "scope is required"),
        (json!({"name": "a", "scope": "x"}), "scope must be g (global) or p (project)"),
        (json!({"name": "a", "scope": "p"}), "project_id is required"),
        (json!({"name": "a", "scope": "p", "project_id": -1}), "project_id must be"),
        (json!({"name": "a", "scope": "g", "color": "#".repeat(17)}), "color must be at most 16"),
        (json!({"name": 5, "scope": "g"}), "invalid request body"),
    ] {
        let r = post_label(&t, ADMIN, body.clone()).await;
        assert_eq!((r.status, r.code()), (400, "BAD_REQUEST".to_string()), "{body}: {}", r.text);
        assert!(r.message().contains(says), "{body}: {}", r.message());
    }
    let r = t.http.post(format!("{}/api/v2.0/labels", t.url)).basic_auth("admin", Some(ADMIN_PASSWORD)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "no body");

    // Update: name, description and color; scope and project stay.
    let r =
        put_label(&t, ADMIN, id, json!({"name": "released", "description": "shipped", "color": "#000000", "scope": "p", "project_id": 3}))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body.is_null());
    let r = get_label(&t, alice, id).await;
    assert_eq!((&r.body["name"], &r.body["description"], &r.body["color"]), (&json!("released"), &json!("shipped"), &json!("#000000")));
    assert_eq!((&r.body["scope"], &r.body["project_id"], &r.body["creation_time"]), (&json!("g"), &json!(0), &l["creation_time"]));
    assert!(r.body["update_time"].as_str().unwrap() >= l["update_time"].as_str().unwrap());
    let r = put_label(&t, ADMIN, id, json!({"name": "Release"})).await;
    assert_eq!((r.status, r.code()), (409, "CONFLICT".to_string()), "{}", r.text);
    let r = put_label(&t, ADMIN, id, json!({"description": "no name"})).await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("name is required"), "{}", r.message());
    assert_eq!(put_label(&t, ADMIN, 999_999, json!({"name": "x"})).await.status, 404);
    // As in Harbor, PUT replaces: a description or color left out becomes empty.
    assert_eq!(put_label(&t, ADMIN, id, json!({"name": "released"})).await.status, 200);
    let r = get_label(&t, ADMIN, id).await;
    assert_eq!((&r.body["name"], &r.body["description"], &r.body["color"]), (&json!("released"), &json!(""), &json!("")));

    // List: scope is required; paging with X-Total-Count and Link.
    for i in 0..10 {
        new_label(&t, ADMIN, json!({"name": format!("bulk-{i:02}"), "description": if i % 2 == 0 { "even" } else { "odd" }, "scope": "g"}))
            .await;
    }
    let r = list_labels(&t, alice, "scope=g&page_size=5").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-total-count").as_deref(), Some("12"));
    assert_eq!(names(&r), ["released", "Release", "bulk-00", "bulk-01", "bulk-02"], "oldest first by default");
    let first_ids: Vec<i64> = r.body.as_array().unwrap().iter().map(|l| l["id"].as_i64().unwrap()).collect();
    let link = r.header("link").unwrap();
    assert!(link.contains("rel=\"next\"") && !link.contains("rel=\"prev\""), "{link}");
    assert!(link.starts_with("</api/v2.0/labels?") && link.contains("scope=g") && link.contains("page=2"), "{link}");
    let r = list_labels(&t, alice, "scope=g&page_size=5&page=2").await;
    let link = r.header("link").unwrap();
    assert!(link.contains("rel=\"next\"") && link.contains("rel=\"prev\""), "{link}");
    let r = list_labels(&t, alice, "scope=g&page_size=5&page=3").await;
    assert_eq!(names(&r), ["bulk-08", "bulk-09"]);
    assert!(!r.header("link").unwrap().contains("rel=\"next\""));
    let r = list_labels(&t, alice, "scope=g&page=9").await;
    assert_eq!((r.status, r.body.as_array().unwrap().len(), r.header("x-total-count").as_deref()), (200, 0, Some("12")));
    assert_eq!(list_labels(&t, alice, "scope=g&page_size=101").await.status, 422);

    // Filters: name (substring, any case), q (exact, fuzzy, any-of, id range), sort.
    let r = list_labels(&t, alice, "scope=g&name=ELEAS").await;
    assert_eq!(names(&r), ["released", "Release"]);
    assert_eq!(r.header("x-total-count").as_deref(), Some("2"));
    assert_eq!(names(&list_labels(&t, alice, "scope=g&q=name%3DRelease").await), ["Release"]);
    assert_eq!(names(&list_labels(&t, alice, "scope=g&q=name%3D~k-0").await).len(), 10);
    assert_eq!(names(&list_labels(&t, alice, "scope=g&q=name%3D%7Bbulk-03%20released%7D").await), ["released", "bulk-03"]);
    let r = list_labels(&t, alice, "scope=g&q=description%3Dodd&sort=-name&page_size=2").await;
    assert_eq!((names(&r), r.header("x-total-count")), (vec!["bulk-09".to_string(), "bulk-07".into()], Some("5".into())));
    let r = list_labels(&t, alice, &format!("scope=g&q=id%3D%5B{}~{}%5D", first_ids[1], first_ids[3])).await;
    assert_eq!(names(&r), ["Release", "bulk-00", "bulk-01"]);
    let r = list_labels(&t, alice, &format!("scope=g&q=id%3D%7B{}%20{}%7D", first_ids[4], id)).await;
    assert_eq!(names(&r), ["released", "bulk-02"]);
    let r = list_labels(&t, alice, "scope=g&name=bulk&sort=-description,name&page_size=3").await;
    assert_eq!(names(&r), ["bulk-01", "bulk-03", "bulk-05"]);
    let r = list_labels(&t, alice, "scope=g&name=%25").await;
    assert_eq!(r.body.as_array().unwrap().len(), 0, "LIKE wildcards are taken literally");

    // List errors.
    for (q, status, says) in [
        ("", 400, "scope is required"),
        ("scope=x", 400, "scope must be g (global) or p (project)"),
        ("scope=p", 400, "project_id is required"),
        ("scope=p&project_id=abc", 400, "project_id must be an integer"),
        ("scope=g&q=secret%3D1", 400, "unsupported query key"),
        ("scope=g&q=color%3D~a", 400, "unsupported condition"),
        ("scope=g&sort=secret", 400, "unsupported sort field"),
    ] {
        let r = list_labels(&t, alice, q).await;
        assert_eq!(r.status, status, "{q}: {}", r.text);
        assert!(r.message().contains(says), "{q}: {}", r.message());
    }
    assert_eq!(list_labels(&t, None, "scope=g").await.status, 401, "global labels are for logged-in callers");

    // Delete, then it is gone.
    assert_eq!(delete_label(&t, ADMIN, id).await.status, 200);
    assert_eq!(get_label(&t, ADMIN, id).await.status, 404);
    assert_eq!(delete_label(&t, ADMIN, id).await.status, 404);
    assert_eq!(list_labels(&t, alice, "scope=g").await.header("x-total-count").as_deref(), Some("11"));

    // Every change left an audit record, by the admin, on no project.
    let audit = audit_rows(&t, "label").await;
    let ops: Vec<&str> = audit.iter().map(|(_, op, _, _)| op.as_str()).collect();
    assert_eq!(ops.iter().filter(|o| **o == "create").count(), 12, "{audit:?}");
    assert_eq!(&ops[ops.len() - 1..], ["delete"]);
    assert!(audit.contains(&("admin".into(), "update".into(), "released".into(), None)), "{audit:?}");
    assert!(audit.contains(&("admin".into(), "delete".into(), "released".into(), None)), "{audit:?}");
    assert!(audit.iter().all(|(who, _, _, p)| who == "admin" && p.is_none()));
    t.shutdown().await;
}

/// Members pa, ma, dev, gu, lg of the private project `priv` and the public project `pub`
/// with those roles, and `out`, a member of neither. Returns the two project ids.
async fn role_fixture(t: &TestApp) -> (i64, i64) {
    let ids = users(t, &["pa", "ma", "dev", "gu", "lg", "out"]).await;
    let meta = &t.app.meta;
    let admin = meta.user_by_name("admin").await.unwrap().unwrap().id;
    let roles = [role::PROJECT_ADMIN, role::MAINTAINER, role::DEVELOPER, role::GUEST, role::LIMITED_GUEST];
    let mut out = Vec::new();
    for (name, public) in [("priv", false), ("pub", true)] {
        let pid = meta.create_project(name, admin, public, &setup_audit()).await.unwrap();
        for (uid, r) in ids.iter().zip(roles) {
            meta.set_member(pid, *uid, r, &setup_audit()).await.unwrap();
        }
        out.push(pid);
    }
    (out[0], out[1])
}

const CALLERS: [&str; 8] = ["admin", "pa", "ma", "dev", "gu", "lg", "out", "anon"];

fn who(caller: &str) -> Who {
    match caller {
        "admin" => ADMIN,
        "anon" => None,
        "pa" => Some(("pa", PW)),
        "ma" => Some(("ma", PW)),
        "dev" => Some(("dev", PW)),
        "gu" => Some(("gu", PW)),
        "lg" => Some(("lg", PW)),
        "out" => Some(("out", PW)),
        _ => unreachable!(),
    }
}

/// RBAC.md's `label` rows: who holds each action, and whether anyone holds it on a public project.
const MANAGERS: &[&str] = &["pa", "ma"];
const READERS: &[&str] = &["pa", "ma", "dev", "gu"];

/// The status `caller` gets: `ok` when it holds the action; 404 when it may not read the project
/// (anonymous callers too, for reads and writes alike); 403 (401 anonymous) otherwise.
fn expected(caller: &str, public: bool, holders: &[&str], public_grant: bool, ok: u16) -> u16 {
    let member = ["pa", "ma", "dev", "gu", "lg"].contains(&caller);
    if caller == "admin" || holders.contains(&caller) || (public && public_grant) {
        ok
    } else if caller == "anon" {
        if public { 401 } else { 404 }
    } else if member || public {
        403
    } else {
        404
    }
}

async fn project_labels(db: Db) {
    let t = TestApp::start(db).await;
    let (priv_id, pub_id) = role_fixture(&t).await;
    let global = new_label(&t, ADMIN, json!({"name": "shared", "scope": "g"})).await;

    for (project, pid, public) in [("priv", priv_id, false), ("pub", pub_id, true)] {
        let probe =
            new_label(&t, ADMIN, json!({"name": "probe", "description": "d", "color": "#fff", "scope": "p", "project_id": pid})).await;
        let r = get_label(&t, ADMIN, probe).await;
        assert_eq!((&r.body["scope"], r.body["project_id"].as_i64()), (&json!("p"), Some(pid)));
        for caller in CALLERS {
            let w = who(caller);
            let ctx = format!("{caller} on {project}");
            // Create.
            let r = post_label(&t, w, json!({"name": format!("by-{caller}"), "scope": "p", "project_id": pid})).await;
            assert_eq!(r.status, expected(caller, public, MANAGERS, false, 201), "create, {ctx}: {}", r.text);
            // List and read.
            let r = list_labels(&t, w, &format!("scope=p&project_id={pid}")).await;
            assert_eq!(r.status, expected(caller, public, READERS, true, 200), "list, {ctx}: {}", r.text);
            if r.status == 200 {
                assert!(names(&r).contains(&"probe".to_string()), "{ctx}");
                assert!(!names(&r).contains(&"shared".to_string()), "global labels are not project labels");
            }
            let r = get_label(&t, w, probe).await;
            assert_eq!(r.status, expected(caller, public, READERS, true, 200), "read, {ctx}: {}", r.text);
            if r.status == 404 {
                assert_eq!(r.message(), format!("label {probe} not found"), "invisible is missing, {ctx}");
            }
            // Update and delete (each caller on a label of its own).
            let r = put_label(&t, w, probe, json!({"name": "probe", "description": caller, "color": "#fff"})).await;
            assert_eq!(r.status, expected(caller, public, MANAGERS, false, 200), "update, {ctx}: {}", r.text);
            let victim = new_label(&t, ADMIN, json!({"name": format!("victim-{caller}"), "scope": "p", "project_id": pid})).await;
            let r = delete_label(&t, w, victim).await;
            assert_eq!(r.status, expected(caller, public, MANAGERS, false, 200), "delete, {ctx}: {}", r.text);
            let gone = get_label(&t, ADMIN, victim).await.status == 404;
            assert_eq!(gone, r.status == 200, "delete took effect only when allowed, {ctx}");
            if !gone {
                assert_eq!(delete_label(&t, ADMIN, victim).await.status, 200);
            }
        }
        // Names are unique within the project only.
        let r = post_label(&t, ADMIN, json!({"name": "probe", "scope": "p", "project_id": pid})).await;
        assert_eq!((r.status, r.code()), (409, "CONFLICT".to_string()), "{}", r.text);
        new_label(&t, ADMIN, json!({"name": "shared", "scope": "p", "project_id": pid})).await;
        let r = list_labels(&t, Some(("pa", PW)), &format!("scope=p&project_id={pid}&sort=name")).await;
        assert_eq!(names(&r), ["by-admin", "by-ma", "by-pa", "probe", "shared"], "{project}");
        assert_eq!(r.header("x-total-count").as_deref(), Some("5"));
    }
    // The global label is untouched by the project labels of the same name.
    let r = list_labels(&t, Some(("out", PW)), "scope=g").await;
    assert_eq!(names(&r), ["shared"]);
    assert_eq!(get_label(&t, Some(("out", PW)), global).await.status, 200);

    // A project that does not exist is answered like one the caller may not read.
    let missing = priv_id + pub_id + 100;
    let r = post_label(&t, ADMIN, json!({"name": "x", "scope": "p", "project_id": missing})).await;
    assert_eq!((r.status, r.message()), (404, format!("project {missing} not found")));
    let r = list_labels(&t, ADMIN, &format!("scope=p&project_id={missing}")).await;
    assert_eq!((r.status, r.message()), (404, format!("project {missing} not found")));
    let hidden = list_labels(&t, Some(("out", PW)), &format!("scope=p&project_id={priv_id}")).await;
    let absent = list_labels(&t, Some(("out", PW)), &format!("scope=p&project_id={missing}")).await;
    assert_eq!(
        (hidden.status, hidden.text.replace(&priv_id.to_string(), "N")),
        (absent.status, absent.text.replace(&missing.to_string(), "N"))
    );
    let hidden = post_label(&t, Some(("out", PW)), json!({"name": "x", "scope": "p", "project_id": priv_id})).await;
    assert_eq!(hidden.status, 404);

    // Robots: exactly their grants, on project labels and on global ones.
    let access = |acts: &[&str]| acts.iter().map(|a| json!({"resource": "label", "action": a})).collect::<Vec<_>>();
    let robot = |name: &str, perms: Value| json!({"name": name, "level": "system", "duration": -1, "permissions": perms});
    let body = robot("labeler", json!([{"kind": "project", "namespace": "priv", "access": access(&["list", "read", "create"])}]));
    let r = api(&t, "POST", "/robots", "/robots", ADMIN, Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let secret = Box::leak(r.body["secret"].as_str().unwrap().to_string().into_boxed_str());
    let bot: Who = Some(("robot$labeler", secret));
    assert_eq!(list_labels(&t, bot, &format!("scope=p&project_id={priv_id}")).await.status, 200);
    let mine = new_label(&t, bot, json!({"name": "by-robot", "scope": "p", "project_id": priv_id})).await;
    assert_eq!(get_label(&t, bot, mine).await.status, 200);
    assert_eq!(put_label(&t, bot, mine, json!({"name": "renamed"})).await.status, 403, "it sees the label, but may not change it");
    assert_eq!(list_labels(&t, bot, &format!("scope=p&project_id={pub_id}")).await.status, 200, "public project");
    assert_eq!(post_label(&t, bot, json!({"name": "x", "scope": "p", "project_id": pub_id})).await.status, 403);
    assert_eq!(post_label(&t, bot, json!({"name": "x", "scope": "g"})).await.status, 403);
    assert_eq!(get_label(&t, bot, global).await.status, 200, "global labels are read by any logged-in caller");
    let body = robot("curator", json!([{"kind": "system", "namespace": "/", "access": access(&["create", "update", "delete"])}]));
    let r = api(&t, "POST", "/robots", "/robots", ADMIN, Some(body)).await;
    let secret = Box::leak(r.body["secret"].as_str().unwrap().to_string().into_boxed_str());
    let curator: Who = Some(("robot$curator", secret));
    let made = new_label(&t, curator, json!({"name": "curated", "scope": "g"})).await;
    assert_eq!(put_label(&t, curator, made, json!({"name": "curated", "color": "#fff"})).await.status, 200);
    assert_eq!(delete_label(&t, curator, made).await.status, 200);
    assert_eq!(post_label(&t, curator, json!({"name": "x", "scope": "p", "project_id": pub_id})).await.status, 403);
    assert_eq!(delete_label(&t, ADMIN, mine).await.status, 200);

    // Audit records of project labels name their project.
    let audit = audit_rows(&t, "label").await;
    assert!(audit.contains(&("pa".into(), "create".into(), "by-pa".into(), Some(priv_id))), "{audit:?}");
    assert!(audit.contains(&("ma".into(), "delete".into(), "victim-ma".into(), Some(pub_id))), "{audit:?}");
    assert!(audit.contains(&("pa".into(), "update".into(), "probe".into(), Some(pub_id))), "{audit:?}");
    assert!(
        !audit.iter().any(|(who, _, _, _)| ["dev", "gu", "lg", "out", "anonymous"].contains(&who.as_str())),
        "refused calls change nothing"
    );

    // Deleting a project deletes its labels.
    let tmp = new_label(&t, ADMIN, json!({"name": "doomed", "scope": "p", "project_id": priv_id})).await;
    let r = api(&t, "DELETE", "/projects/{project_name_or_id}", "/projects/priv", ADMIN, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(get_label(&t, ADMIN, tmp).await.status, 404);
    let left: Vec<(i64,)> = rows(&t, "SELECT project_id FROM labels WHERE scope = $1", "p").await;
    assert_eq!(left, vec![(pub_id,); 5], "pub's labels are left, nothing of priv");
    t.shutdown().await;
}

async fn manifest_id(t: &TestApp, digest: &str) -> i64 {
    let r: Vec<(i64,)> = rows(t, "SELECT id FROM manifests WHERE digest = $1", digest).await;
    r[0].0
}

/// The functions the artifact API calls: attach, detach, list per manifest, applicability.
async fn artifact_labels(db: Db) {
    let t = TestApp::start(db).await;
    let meta = &t.app.meta;
    let admin = meta.user_by_name("admin").await.unwrap().unwrap().id;
    let team = meta.create_project("team", admin, false, &setup_audit()).await.unwrap();
    let other = meta.create_project("other", admin, false, &setup_audit()).await.unwrap();
    let token = t.admin_token("team/app").await;
    let (d1, _) = t.push_image(&token, "team/app", "v1", &[b"layer one"]).await;
    let (d2, _) = t.push_image(&token, "team/app", "v2", &[b"layer two"]).await;
    let (m1, m2) = (manifest_id(&t, &d1).await, manifest_id(&t, &d2).await);

    let g = new_label(&t, ADMIN, json!({"name": "approved", "scope": "g"})).await;
    let p = new_label(&t, ADMIN, json!({"name": "qa", "scope": "p", "project_id": team})).await;
    let o = new_label(&t, ADMIN, json!({"name": "qa", "scope": "p", "project_id": other})).await;
    let (g, p, o) = (meta.label(g).await.unwrap().unwrap(), meta.label(p).await.unwrap().unwrap(), meta.label(o).await.unwrap().unwrap());
    assert!(meta.label(o.id + 100).await.unwrap().is_none());

    // Which labels fit an artifact of `team`.
    assert!(berth::domain::labels::applicable(&g, team).is_ok());
    assert!(berth::domain::labels::applicable(&p, team).is_ok());
    let e = berth::domain::labels::applicable(&o, team).unwrap_err();
    assert!(matches!(&e, Error::NotFound(m) if m.contains("global labels")), "{e:?}");

    let a = |op: &'static str| Audit {
        operator: "admin".into(),
        project_id: Some(team),
        resource: format!("team/app@{d1}"),
        resource_type: "artifact-label",
        operation: op,
        ..Default::default()
    };
    assert!(meta.attach_label(m1, g.id, &a("create")).await.unwrap());
    assert!(!meta.attach_label(m1, g.id, &a("create")).await.unwrap(), "already attached");
    assert!(meta.attach_label(m1, p.id, &a("create")).await.unwrap());
    assert!(meta.attach_label(m2, p.id, &a("create")).await.unwrap());
    let e = meta.attach_label(m1, o.id + 100, &a("create")).await.unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");

    let pairs = |v: Vec<(i64, berth::meta::LabelRow)>| v.into_iter().map(|(m, l)| (m, l.id)).collect::<Vec<_>>();
    assert_eq!(pairs(meta.labels_of_artifacts(&[m1, m2]).await.unwrap()), [(m1, g.id), (m1, p.id), (m2, p.id)]);
    assert_eq!(pairs(meta.labels_of_artifacts(&[m2]).await.unwrap()), [(m2, p.id)]);
    assert!(meta.labels_of_artifacts(&[]).await.unwrap().is_empty());
    let full = meta.labels_of_artifacts(&[m1]).await.unwrap();
    assert_eq!((full[0].1.name.as_str(), full[0].1.scope.as_str(), full[0].1.project_id), ("approved", "g", 0));

    assert!(meta.detach_label(m1, g.id, &a("delete")).await.unwrap());
    assert!(!meta.detach_label(m1, g.id, &a("delete")).await.unwrap(), "not attached");
    assert_eq!(pairs(meta.labels_of_artifacts(&[m1, m2]).await.unwrap()), [(m1, p.id), (m2, p.id)]);
    let audit = audit_rows(&t, "artifact-label").await;
    let ops: Vec<&str> = audit.iter().map(|(_, op, _, _)| op.as_str()).collect();
    assert_eq!(ops, ["create", "create", "create", "delete"], "one record per change, none for no-ops");

    // Deleting a label takes it off every artifact; deleting a manifest drops its labels.
    assert_eq!(delete_label(&t, ADMIN, p.id).await.status, 200);
    assert!(meta.labels_of_artifacts(&[m1, m2]).await.unwrap().is_empty());
    assert!(meta.attach_label(m1, g.id, &a("create")).await.unwrap());
    let r = t.http.delete(format!("{}/v2/team/app/manifests/{d1}", t.url)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    assert!(meta.labels_of_artifacts(&[m1]).await.unwrap().is_empty());
    let left: Vec<(i64,)> =
        rows(&t, "SELECT COUNT(*) FROM artifact_labels a JOIN labels l ON l.id = a.label_id WHERE l.name = $1", "approved").await;
    assert_eq!(left, [(0,)]);
    t.shutdown().await;
}

on_both_backends! {
    global => global_labels;
    project => project_labels;
    artifacts => artifact_labels;
}
