//! Harbor API groups `project` and `projectMetadata` over HTTP, on SQLite and PostgreSQL:
//! create/check/list/read/update/delete, deletability, summary, metadata, the role matrix on
//! private and public projects, discovery safety, paging, the per-user project limit, the
//! creation restriction, repositories created ahead of a push, and audit records. Every JSON
//! body is checked against Harbor's swagger contract.

mod common;
mod contract;
mod harbor;

use berth::meta::{Audit, ProjectAuditRow};
use common::{ADMIN_PASSWORD, Db, TestApp};
use harbor::{Resp, Who, api, call, call_with};
use serde_json::{Value, json};

const PW: &str = "Member-Passw0rd";
const ADMIN: Who = Some(("admin", ADMIN_PASSWORD));

fn audit() -> Audit {
    Audit { operator: "test".into(), resource: "setup".into(), resource_type: "test", operation: "create", ..Default::default() }
}

/// Creates users (all with the password `PW`); returns their ids.
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

async fn create_project(t: &TestApp, who: Who, body: Value) -> Resp {
    api(t, "POST", "/projects", "/projects", who, Some(body)).await
}

/// Creates a project as `who` and returns its id (from `Location`).
async fn new_project(t: &TestApp, who: Who, name: &str, public: bool) -> i64 {
    let r = create_project(t, who, json!({"project_name": name, "metadata": {"public": public.to_string()}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.header("location").unwrap().rsplit('/').next().unwrap().parse().unwrap()
}

/// The roles of the matrix and their Harbor ids.
const ROLES: [(&str, i64); 5] = [("pa", 1), ("ma", 4), ("dev", 2), ("gu", 3), ("lg", 5)];

/// Users pa/ma/dev/gu/lg holding those roles in the private project `priv` and the public
/// project `pub` (both created by the admin), and `out`, a member of neither.
async fn role_fixture(t: &TestApp) {
    users(t, &["pa", "ma", "dev", "gu", "lg", "out"]).await;
    for (name, public) in [("priv", false), ("pub", true)] {
        new_project(t, ADMIN, name, public).await;
        for (user, role) in ROLES {
            let r = api(
                t,
                "POST",
                "/projects/{project_name_or_id}/members",
                &format!("/projects/{name}/members"),
                ADMIN,
                Some(json!({"role_id": role, "member_user": {"username": user}})),
            )
            .await;
            assert_eq!(r.status, 201, "{}", r.text);
        }
    }
}

/// Every caller of the matrix.
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

/// The status Harbor's matrix gives `caller` for an operation that `holders` may do (and
/// anyone when `public_grant` on a public project), succeeding with `ok`; a caller who
/// cannot read the project sees 404.
fn expected(caller: &str, public: bool, holders: &[&str], public_grant: bool, ok: u16) -> u16 {
    let member = ROLES.iter().any(|(r, _)| *r == caller);
    if caller == "admin" || holders.contains(&caller) || (public && public_grant) {
        return ok;
    }
    if member || (public && caller == "out") {
        403
    } else if public {
        401
    } else {
        404
    }
}

const EVERY_ROLE: &[&str] = &["pa", "ma", "dev", "gu", "lg"];

async fn role_matrix(db: Db) {
    let t = TestApp::start(db).await;
    role_fixture(&t).await;
    for (project, public) in [("priv", false), ("pub", true)] {
        for caller in CALLERS {
            let w = who(caller);
            let ctx = format!("{caller} on {project}");
            // Read the project and its summary: every member; anyone on a public project.
            let r = api(&t, "GET", "/projects/{project_name_or_id}", &format!("/projects/{project}"), w, None).await;
            assert_eq!(r.status, expected(caller, public, EVERY_ROLE, true, 200), "GET project, {ctx}: {}", r.text);
            if r.status == 200 {
                // The admin created both projects, which made it their project admin.
                let role = if caller == "admin" { 1 } else { ROLES.iter().find(|(n, _)| *n == caller).map(|(_, r)| *r).unwrap_or(0) };
                assert_eq!(r.body["current_user_role_id"], json!(role), "{ctx}");
                assert_eq!(r.body["current_user_role_ids"], if role > 0 { json!([role]) } else { json!([]) }, "{ctx}");
                assert_eq!(r.body["metadata"]["public"], json!(public.to_string()), "{ctx}");
            }
            let r = api(&t, "GET", "/projects/{project_name_or_id}/summary", &format!("/projects/{project}/summary"), w, None).await;
            assert_eq!(r.status, expected(caller, public, EVERY_ROLE, true, 200), "summary, {ctx}: {}", r.text);
            if r.status == 200 {
                let sees_members = ["admin", "pa", "ma", "dev", "gu"].contains(&caller);
                assert_eq!(r.body.get("project_admin_count").is_some(), sees_members, "summary, {ctx}: {}", r.text);
                if sees_members {
                    // The admin created the project, so it is a project admin besides pa.
                    assert_eq!(r.body["project_admin_count"], 2, "{ctx}");
                    for k in ["maintainer_count", "developer_count", "guest_count", "limited_guest_count"] {
                        assert_eq!(r.body[k], 1, "{k}, {ctx}");
                    }
                }
                assert_eq!(r.body["repo_count"], 0);
            }
            // HEAD answers 200 exactly to those who may read the project.
            let r = call(&t, "HEAD", &format!("/api/v2.0/projects?project_name={project}"), w, None).await;
            let can_read = expected(caller, public, EVERY_ROLE, true, 200) == 200;
            assert_eq!(r.status, if can_read { 200 } else { 404 }, "HEAD, {ctx}");
            // Update and the deletability check: project admins only.
            let r = api(
                &t,
                "PUT",
                "/projects/{project_name_or_id}",
                &format!("/projects/{project}"),
                w,
                Some(json!({"metadata": {"auto_scan": "true"}})),
            )
            .await;
            assert_eq!(r.status, expected(caller, public, &["pa"], false, 200), "PUT project, {ctx}: {}", r.text);
            let r = api(&t, "GET", "/projects/{project_name_or_id}/_deletable", &format!("/projects/{project}/_deletable"), w, None).await;
            assert_eq!(r.status, expected(caller, public, &["pa"], false, 200), "_deletable, {ctx}: {}", r.text);
            if r.status == 200 {
                assert_eq!(r.body, json!({"deletable": true}));
            }
            // Metadata: read by project admins and maintainers, written by project admins.
            let r = api(&t, "GET", "/projects/{project_name_or_id}/metadatas/", &format!("/projects/{project}/metadatas/"), w, None).await;
            assert_eq!(r.status, expected(caller, public, &["pa", "ma"], false, 200), "list metadata, {ctx}: {}", r.text);
            let r = api(
                &t,
                "GET",
                "/projects/{project_name_or_id}/metadatas/{meta_name}",
                &format!("/projects/{project}/metadatas/public"),
                w,
                None,
            )
            .await;
            assert_eq!(r.status, expected(caller, public, &["pa", "ma"], false, 200), "get metadata, {ctx}: {}", r.text);
            if r.status == 200 {
                assert_eq!(r.body, json!({"public": public.to_string()}));
            }
            let r = api(
                &t,
                "PUT",
                "/projects/{project_name_or_id}/metadatas/{meta_name}",
                &format!("/projects/{project}/metadatas/severity"),
                w,
                Some(json!({"severity": "high"})),
            )
            .await;
            assert_eq!(r.status, expected(caller, public, &["pa"], false, 200), "put metadata, {ctx}: {}", r.text);
            // Refusals only: adding and deleting metadata, deleting the project.
            if !["admin", "pa"].contains(&caller) {
                let r = api(
                    &t,
                    "POST",
                    "/projects/{project_name_or_id}/metadatas/",
                    &format!("/projects/{project}/metadatas/"),
                    w,
                    Some(json!({"prevent_vul": "true"})),
                )
                .await;
                assert_eq!(r.status, expected(caller, public, &["pa"], false, 200), "add metadata, {ctx}: {}", r.text);
                let r = api(
                    &t,
                    "DELETE",
                    "/projects/{project_name_or_id}/metadatas/{meta_name}",
                    &format!("/projects/{project}/metadatas/severity"),
                    w,
                    None,
                )
                .await;
                assert_eq!(r.status, expected(caller, public, &["pa"], false, 200), "delete metadata, {ctx}: {}", r.text);
                let r = api(&t, "DELETE", "/projects/{project_name_or_id}", &format!("/projects/{project}"), w, None).await;
                assert_eq!(r.status, expected(caller, public, &["pa"], false, 200), "DELETE project, {ctx}: {}", r.text);
            }
        }
        // The writes that were allowed took effect.
        let r = api(&t, "GET", "/projects/{project_name_or_id}", &format!("/projects/{project}"), ADMIN, None).await;
        assert_eq!(r.body["metadata"]["auto_scan"], "true");
        assert_eq!(r.body["metadata"]["severity"], "high");
        // The project admin adds and deletes metadata, then deletes the (empty) project.
        let pa = who("pa");
        let r = api(
            &t,
            "POST",
            "/projects/{project_name_or_id}/metadatas/",
            &format!("/projects/{project}/metadatas/"),
            pa,
            Some(json!({"prevent_vul": "true"})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = api(
            &t,
            "DELETE",
            "/projects/{project_name_or_id}/metadatas/{meta_name}",
            &format!("/projects/{project}/metadatas/prevent_vul"),
            pa,
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = api(&t, "DELETE", "/projects/{project_name_or_id}", &format!("/projects/{project}"), pa, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = api(&t, "GET", "/projects/{project_name_or_id}", &format!("/projects/{project}"), ADMIN, None).await;
        assert_eq!(r.status, 404);
    }
    t.shutdown().await;
}

async fn create_rules(db: Db) {
    let t = TestApp::start(db).await;
    users(&t, &["dev"]).await;
    let dev = as_user("dev");
    // Anonymous callers cannot create projects.
    let r = create_project(&t, None, json!({"project_name": "anon"})).await;
    assert_eq!(r.status, 401);
    // The name rule, stated in the refusal.
    for bad in ["Upper", "a..b", "-a", "a-", "a b", "a/b", "ä", "a__b", &"a".repeat(256)] {
        let r = create_project(&t, dev, json!({"project_name": bad})).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert!(r.message().contains("^[a-z0-9]+(?:[._-][a-z0-9]+)*$"), "{bad}: {}", r.message());
    }
    let r = create_project(&t, dev, json!({"public": true})).await;
    assert_eq!(r.status, 400, "a name is required: {}", r.text);
    let long = "b".repeat(255);
    for good in ["a", "a.b_c-d9", long.as_str()] {
        let r = create_project(&t, dev, json!({"project_name": good})).await;
        assert_eq!(r.status, 201, "{good}: {}", r.text);
        assert!(r.body.is_null() && r.text.is_empty(), "create answers with an empty body");
    }
    // Duplicates are refused.
    let r = create_project(&t, dev, json!({"project_name": "a"})).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["errors"][0]["code"], "CONFLICT");
    let r = create_project(&t, ADMIN, json!({"project_name": "library"})).await;
    assert_eq!(r.status, 409);
    // Location: the id, or the name on request.
    let r = create_project(&t, dev, json!({"project_name": "byid"})).await;
    let loc = r.header("location").unwrap();
    let id: i64 = loc.strip_prefix("/api/v2.0/projects/").unwrap().parse().unwrap();
    let r = call_with(
        &t,
        "POST",
        "/api/v2.0/projects",
        dev,
        Some(json!({"project_name": "byname"})),
        &[("X-Resource-Name-In-Location", "true")],
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location").unwrap(), "/api/v2.0/projects/byname");
    // The creator owns the project and is its project admin; by id and by name.
    let r = api(&t, "GET", "/projects/{project_name_or_id}", &format!("/projects/{id}"), dev, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "byid");
    assert_eq!(r.body["project_id"], id);
    assert_eq!(r.body["owner_name"], "dev");
    assert_eq!(r.body["current_user_role_id"], 1);
    assert_eq!(r.body["current_user_role_ids"], json!([1]));
    assert_eq!(r.body["repo_count"], 0);
    assert_eq!(r.body["metadata"], json!({"public": "false"}));
    assert_eq!(r.body["cve_allowlist"]["items"], json!([]));
    assert_eq!(r.body["cve_allowlist"]["project_id"], id);
    assert!(r.body["creation_time"].as_str().unwrap().ends_with('Z'));
    let r = api(&t, "GET", "/projects/{project_name_or_id}/members", "/projects/byid/members", dev, None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(r.body[0]["entity_name"], "dev");
    assert_eq!(r.body[0]["role_name"], "projectAdmin");
    // A numeric name is a name with X-Is-Resource-Name.
    create_project(&t, dev, json!({"project_name": "2024"})).await;
    let r = call_with(&t, "GET", "/api/v2.0/projects/2024", dev, None, &[("X-Is-Resource-Name", "true")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], "2024");
    // Everything a ProjectReq carries.
    let r = create_project(
        &t,
        dev,
        json!({
            "project_name": "full",
            "metadata": {"public": "true", "auto_scan": "true", "severity": "Critical", "enable_content_trust": "false", "reuse_sys_cve_allowlist": "false"},
            "cve_allowlist": {"items": [{"cve_id": "CVE-2024-0001"}, {"cve_id": "CVE-2024-0002"}], "expires_at": 1900000000},
            "storage_limit": -1,
        }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = api(&t, "GET", "/projects/{project_name_or_id}", "/projects/full", None, None).await;
    assert_eq!(r.status, 200, "public, so anonymous callers read it");
    assert_eq!(
        r.body["metadata"],
        json!({"public": "true", "auto_scan": "true", "severity": "critical", "enable_content_trust": "false", "reuse_sys_cve_allowlist": "false"})
    );
    assert_eq!(r.body["cve_allowlist"]["items"], json!([{"cve_id": "CVE-2024-0001"}, {"cve_id": "CVE-2024-0002"}]));
    assert_eq!(r.body["cve_allowlist"]["expires_at"], 1900000000);
    assert_eq!(r.body["current_user_role_ids"], json!([]));
    // The deprecated top-level `public` is honoured when metadata.public is absent.
    create_project(&t, dev, json!({"project_name": "legacy", "public": true})).await;
    let r = api(&t, "GET", "/projects/{project_name_or_id}", "/projects/legacy", None, None).await;
    assert_eq!(r.status, 200);
    // Bad metadata and unsupported features are refused.
    for (body, needle) in [
        (json!({"project_name": "x1", "metadata": {"public": "yes"}}), "metadata.public"),
        (json!({"project_name": "x1", "metadata": {"colour": "red"}}), "colour"),
        (json!({"project_name": "x1", "metadata": {"severity": "severe"}}), "severity"),
        (json!({"project_name": "x1", "metadata": {"auto_scan": true}}), "auto_scan"),
        (json!({"project_name": "x1", "metadata": {"retention_id": "7"}}), "retention_id"),
        (json!({"project_name": "x1", "registry_id": 3}), "proxy cache"),
        (json!({"project_name": "x1", "storage_limit": -7}), "storage_limit"),
        (json!({"project_name": "x1", "cve_allowlist": {"items": [{"cve_id": "CVE-1"}, {"cve_id": "CVE-1"}]}}), "CVE-1"),
    ] {
        let r = create_project(&t, dev, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert!(r.message().contains(needle), "{body}: {}", r.message());
    }
    let r = call_with(&t, "POST", "/api/v2.0/projects", dev, None, &[("content-type", "application/json")]).await;
    assert_eq!(r.status, 400);
    t.shutdown().await;
}

async fn creation_restriction_and_limit(db: Db) {
    let t = TestApp::start(db).await;
    users(&t, &["dev", "other"]).await;
    let dev = as_user("dev");
    let limit_path = "/api/berth/v1/settings/project_limit_per_user";
    // The limit: unlimited by default, read and changed by system admins only.
    let r = call(&t, "GET", limit_path, ADMIN, None).await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"project_limit_per_user": -1})));
    assert_eq!(call(&t, "GET", limit_path, dev, None).await.status, 403);
    assert_eq!(call(&t, "GET", limit_path, None, None).await.status, 401);
    assert_eq!(call(&t, "PUT", limit_path, dev, Some(json!({"project_limit_per_user": 100}))).await.status, 403);
    assert_eq!(call(&t, "PUT", limit_path, None, Some(json!({"project_limit_per_user": 100}))).await.status, 401);
    let r = call(&t, "PUT", limit_path, ADMIN, Some(json!({"project_limit_per_user": -5}))).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = call(&t, "PUT", limit_path, ADMIN, Some(json!({"project_limit_per_user": 2}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = call(&t, "GET", limit_path, ADMIN, None).await;
    assert_eq!(r.body, json!({"project_limit_per_user": 2}));
    // A user creates two projects, then is refused a third with a message that says why.
    new_project(&t, dev, "d1", false).await;
    new_project(&t, dev, "d2", false).await;
    let r = create_project(&t, dev, json!({"project_name": "d3"})).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.message().contains("at most 2 projects"), "{}", r.message());
    // Another user has a limit of their own; system admins have none.
    new_project(&t, as_user("other"), "o1", false).await;
    for n in ["a1", "a2", "a3"] {
        new_project(&t, ADMIN, n, false).await;
    }
    // Raising the limit (a bare integer works too) lets the user create again.
    let r = call(&t, "PUT", limit_path, ADMIN, Some(json!(-1))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    new_project(&t, dev, "d3", false).await;
    // Creation restricted to system admins.
    let a = Audit {
        operator: "admin".into(),
        resource: "project_creation_restriction".into(),
        resource_type: "configuration",
        operation: "update",
        ..Default::default()
    };
    t.app.meta.set_setting("project_creation_restriction", "adminonly", &a).await.unwrap();
    let r = create_project(&t, dev, json!({"project_name": "d4"})).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.message(), "Only system admin can create project");
    new_project(&t, ADMIN, "a4", false).await;
    t.app.meta.set_setting("project_creation_restriction", "everyone", &a).await.unwrap();
    new_project(&t, dev, "d4", false).await;
    t.shutdown().await;
}

async fn list_visibility_and_paging(db: Db) {
    let t = TestApp::start(db).await;
    users(&t, &["dev", "out"]).await;
    for i in 0..12 {
        new_project(&t, ADMIN, &format!("page-{i:02}"), i % 2 == 0).await;
    }
    let dev_project = new_project(&t, as_user("dev"), "devs-own", false).await;
    // The admin sees everything: 12 + library + devs-own.
    let r = api(&t, "GET", "/projects", "/projects?page_size=100", ADMIN, None).await;
    assert_eq!(r.header("x-total-count").unwrap(), "14");
    assert_eq!(r.body.as_array().unwrap().len(), 14);
    // Sorted by name by default.
    let names: Vec<&str> = r.body.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    // An outsider sees the public projects only; the developer also its own private project.
    let r = api(&t, "GET", "/projects", "/projects?page_size=100", as_user("out"), None).await;
    assert_eq!(r.header("x-total-count").unwrap(), "7", "6 public page-* and library");
    assert!(r.body.as_array().unwrap().iter().all(|p| p["metadata"]["public"] == "true"));
    let r = api(&t, "GET", "/projects", "/projects?page_size=100", as_user("dev"), None).await;
    assert_eq!(r.header("x-total-count").unwrap(), "8");
    let own = r.body.as_array().unwrap().iter().find(|p| p["name"] == "devs-own").unwrap();
    assert_eq!(own["project_id"], dev_project);
    assert_eq!(own["current_user_role_ids"], json!([1]));
    let r = api(&t, "GET", "/projects", "/projects?public=false", as_user("dev"), None).await;
    assert_eq!(r.header("x-total-count").unwrap(), "1");
    assert_eq!(r.body[0]["name"], "devs-own");
    // A personal access token limited to one project lists that project only.
    let r =
        call(&t, "POST", "/api/berth/v1/users/current/tokens", as_user("dev"), Some(json!({"name": "ci", "projects": ["devs-own"]}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let secret: &'static str = Box::leak(r.body["token"].as_str().unwrap().to_string().into_boxed_str());
    let r = api(&t, "GET", "/projects", "/projects?page_size=100", Some(("dev", secret)), None).await;
    assert_eq!(r.header("x-total-count").unwrap(), "1", "{}", r.text);
    assert_eq!(r.body[0]["name"], "devs-own");
    // Anonymous callers: public ones only, and nothing when asking for private ones.
    let r = api(&t, "GET", "/projects", "/projects?page_size=100", None, None).await;
    assert_eq!(r.header("x-total-count").unwrap(), "7");
    let r = api(&t, "GET", "/projects", "/projects?public=false", None, None).await;
    assert_eq!(r.header("x-total-count").unwrap(), "0");
    assert_eq!(r.body, json!([]));
    // Filters: name (fuzzy), owner, q, sort.
    let r = api(&t, "GET", "/projects", "/projects?name=age-0&page_size=100", ADMIN, None).await;
    assert_eq!(r.header("x-total-count").unwrap(), "10");
    let r = api(&t, "GET", "/projects", "/projects?owner=dev", ADMIN, None).await;
    assert_eq!(r.header("x-total-count").unwrap(), "1");
    assert_eq!(r.body[0]["owner_name"], "dev");
    let r = api(&t, "GET", "/projects", "/projects?q=name%3D~page-1,public%3Dtrue&sort=-name", ADMIN, None).await;
    let names: Vec<&str> = r.body.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["page-10"]);
    let r = api(&t, "GET", "/projects", "/projects?q=name%3D%7Bpage-01%20page-03%20nosuch%7D&sort=-name", ADMIN, None).await;
    let names: Vec<&str> = r.body.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["page-03", "page-01"]);
    let r = api(&t, "GET", "/projects", &format!("/projects?q=project_id%3D{dev_project}"), ADMIN, None).await;
    assert_eq!(r.body[0]["name"], "devs-own");
    let r = api(&t, "GET", "/projects", "/projects?q=password%3Dx", ADMIN, None).await;
    assert_eq!(r.status, 400);
    let r = api(&t, "GET", "/projects", "/projects?sort=password", ADMIN, None).await;
    assert_eq!(r.status, 400);
    // with_detail=false leaves out the owner's name, metadata and allowlist.
    let r = api(&t, "GET", "/projects", "/projects?name=devs&with_detail=false", ADMIN, None).await;
    assert!(r.body[0].get("owner_name").is_none() && r.body[0].get("metadata").is_none(), "{}", r.text);
    assert_eq!(r.body[0]["name"], "devs-own");
    // Paging: X-Total-Count and Link.
    let r = api(&t, "GET", "/projects", "/projects?name=page&page=1&page_size=5", ADMIN, None).await;
    assert_eq!(r.header("x-total-count").unwrap(), "12");
    assert_eq!(r.body.as_array().unwrap().len(), 5);
    assert_eq!(r.header("link").unwrap(), r#"</api/v2.0/projects?name=page&page=2&page_size=5>; rel="next""#);
    let r = api(&t, "GET", "/projects", "/projects?name=page&page=2&page_size=5", ADMIN, None).await;
    assert_eq!(
        r.header("link").unwrap(),
        r#"</api/v2.0/projects?name=page&page=1&page_size=5>; rel="prev" , </api/v2.0/projects?name=page&page=3&page_size=5>; rel="next""#
    );
    let r = api(&t, "GET", "/projects", "/projects?name=page&page=3&page_size=5", ADMIN, None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    assert_eq!(r.body[1]["name"], "page-11");
    assert_eq!(r.header("link").unwrap(), r#"</api/v2.0/projects?name=page&page=2&page_size=5>; rel="prev""#);
    let r = api(&t, "GET", "/projects", "/projects?page_size=101", ADMIN, None).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["code"], "UNPROCESSABLE_ENTITY");
    assert_eq!(r.message(), "page_size in query should be less than or equal to 100");
    let r = api(&t, "GET", "/projects", "/projects?public=maybe", ADMIN, None).await;
    assert_eq!(r.status, 422);
    t.shutdown().await;
}

async fn update_and_metadata(db: Db) {
    let t = TestApp::start(db).await;
    users(&t, &["out"]).await;
    let id = new_project(&t, ADMIN, "proj", false).await;
    let out = as_user("out");
    assert_eq!(api(&t, "GET", "/projects/{project_name_or_id}", "/projects/proj", out, None).await.status, 404);
    // PUT merges metadata and can make the project public.
    let r = api(
        &t,
        "PUT",
        "/projects/{project_name_or_id}",
        &format!("/projects/{id}"),
        ADMIN,
        Some(json!({"metadata": {"public": "true", "auto_scan": "true"}, "cve_allowlist": {"items": [{"cve_id": "CVE-2023-1"}]}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.is_empty());
    let r = api(&t, "PUT", "/projects/{project_name_or_id}", "/projects/proj", ADMIN, Some(json!({"metadata": {"severity": "low"}}))).await;
    assert_eq!(r.status, 200);
    let r = api(&t, "GET", "/projects/{project_name_or_id}", "/projects/proj", out, None).await;
    assert_eq!(r.status, 200, "public now: {}", r.text);
    assert_eq!(r.body["metadata"], json!({"public": "true", "auto_scan": "true", "severity": "low"}));
    assert_eq!(r.body["cve_allowlist"]["items"], json!([{"cve_id": "CVE-2023-1"}]));
    let created = r.body["creation_time"].clone();
    assert!(r.body["update_time"].as_str().unwrap() >= created.as_str().unwrap());
    // Refusals: bad values, unknown keys, someone else's allowlist.
    for (body, needle) in [
        (json!({"metadata": {"public": "1"}}), "metadata.public"),
        (json!({"metadata": {"nope": "1"}}), "nope"),
        (json!({"metadata": {"retention_id": "12"}}), "retention_id"),
        (json!({"cve_allowlist": {"project_id": id + 100, "items": []}}), "project_id in cve_allowlist"),
    ] {
        let r = api(&t, "PUT", "/projects/{project_name_or_id}", "/projects/proj", ADMIN, Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert!(r.message().contains(needle), "{body}: {}", r.message());
    }
    // Metadata endpoints: values are strings, booleans normalised, unknown keys refused.
    let base = "/projects/{project_name_or_id}/metadatas/";
    let one = "/projects/{project_name_or_id}/metadatas/{meta_name}";
    let r = api(&t, "POST", base, "/projects/proj/metadatas/", ADMIN, Some(json!({"enable_content_trust": "TRUE"}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api(&t, "POST", base, "/projects/proj/metadatas/", ADMIN, Some(json!({"enable_content_trust": "false"}))).await;
    assert_eq!(r.status, 409, "{}", r.text);
    for body in [json!({"colour": "red"}), json!({"auto_scan": "maybe"}), json!({"auto_scan": true}), json!({"severity": "extreme"})] {
        let r = api(&t, "POST", base, "/projects/proj/metadatas/", ADMIN, Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
    }
    let r = api(&t, "GET", one, "/projects/proj/metadatas/enable_content_trust", ADMIN, None).await;
    assert_eq!(r.body, json!({"enable_content_trust": "true"}));
    let r = api(&t, "PUT", one, "/projects/proj/metadatas/enable_content_trust", ADMIN, Some(json!({"enable_content_trust": "0"}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api(&t, "PUT", one, "/projects/proj/metadatas/enable_content_trust", ADMIN, Some(json!({"auto_scan": "true"}))).await;
    assert_eq!(r.status, 400, "the body must carry the key of the path: {}", r.text);
    let r = api(&t, "GET", base, "/projects/proj/metadatas/", ADMIN, None).await;
    assert_eq!(r.body, json!({"public": "true", "auto_scan": "true", "severity": "low", "enable_content_trust": "false"}));
    let r = api(&t, "DELETE", one, "/projects/proj/metadatas/auto_scan", ADMIN, None).await;
    assert_eq!(r.status, 200);
    let r = api(&t, "GET", one, "/projects/proj/metadatas/auto_scan", ADMIN, None).await;
    assert_eq!(r.status, 404);
    let r = api(&t, "DELETE", one, "/projects/proj/metadatas/auto_scan", ADMIN, None).await;
    assert_eq!(r.status, 404);
    // `public` through the metadata API changes the visibility.
    let r = api(&t, "PUT", one, "/projects/proj/metadatas/public", ADMIN, Some(json!({"public": "false"}))).await;
    assert_eq!(r.status, 200);
    assert_eq!(api(&t, "GET", "/projects/{project_name_or_id}", "/projects/proj", out, None).await.status, 404);
    let r = api(&t, "GET", "/projects", "/projects?public=true", ADMIN, None).await;
    assert!(r.body.as_array().unwrap().iter().all(|p| p["name"] != "proj"));
    let r = api(&t, "DELETE", one, "/projects/proj/metadatas/public", ADMIN, None).await;
    assert_eq!(r.status, 200);
    let r = api(&t, "POST", base, "/projects/proj/metadatas/", ADMIN, Some(json!({"public": "true"}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(api(&t, "GET", "/projects/{project_name_or_id}", "/projects/proj", out, None).await.status, 200);
    // Berth's own key is listed by the metadata API but not in Harbor's Project.
    let r = api(&t, "POST", base, "/projects/proj/metadatas/", ADMIN, Some(json!({"auto_create_repository": "false"}))).await;
    assert_eq!(r.status, 200);
    let r = api(&t, "GET", base, "/projects/proj/metadatas/", ADMIN, None).await;
    assert_eq!(r.body["auto_create_repository"], "false");
    let r = api(&t, "GET", "/projects/{project_name_or_id}", "/projects/proj", ADMIN, None).await;
    assert!(r.body["metadata"].get("auto_create_repository").is_none());
    t.shutdown().await;
}

async fn delete_needs_an_empty_project(db: Db) {
    let t = TestApp::start(db).await;
    let id = new_project(&t, ADMIN, "full", false).await;
    let tok = t.admin_token("full/app").await;
    t.push_image(&tok, "full/app", "v1", &[b"layer"]).await;
    let r = api(&t, "DELETE", "/projects/{project_name_or_id}", "/projects/full", ADMIN, None).await;
    assert_eq!(r.status, 412, "{}", r.text);
    assert_eq!(r.body["errors"][0]["code"], "PRECONDITION");
    assert!(r.message().contains("contains 1 repository"), "{}", r.message());
    let r = api(&t, "GET", "/projects/{project_name_or_id}/_deletable", "/projects/full/_deletable", ADMIN, None).await;
    assert_eq!(r.body["deletable"], false);
    assert!(r.body["message"].as_str().unwrap().contains("repositor"));
    let r = api(&t, "GET", "/projects/{project_name_or_id}/summary", &format!("/projects/{id}/summary"), ADMIN, None).await;
    assert_eq!(r.body["repo_count"], 1);
    let r = api(&t, "GET", "/projects/{project_name_or_id}", "/projects/full", ADMIN, None).await;
    assert_eq!(r.body["repo_count"], 1);
    // Still there, and pullable.
    let r = t.http.get(format!("{}/v2/full/app/manifests/v1", t.url)).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // An empty project goes, and its name can be used again.
    new_project(&t, ADMIN, "empty", false).await;
    let r = api(&t, "DELETE", "/projects/{project_name_or_id}", "/projects/empty", ADMIN, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = call(&t, "HEAD", "/api/v2.0/projects?project_name=empty", ADMIN, None).await;
    assert_eq!(r.status, 404);
    let r = api(&t, "DELETE", "/projects/{project_name_or_id}", "/projects/empty", ADMIN, None).await;
    assert_eq!(r.status, 404);
    new_project(&t, ADMIN, "empty", false).await;
    t.shutdown().await;
}

/// Everything a caller who may not read a project sees of it equals what it sees of a
/// project that does not exist.
async fn discovery_safety(db: Db) {
    let t = TestApp::start(db).await;
    users(&t, &["out"]).await;
    let id = new_project(&t, ADMIN, "secret", false).await;
    let missing_id = id + 1000;
    let endpoints: &[(&str, &str, Option<Value>)] = &[
        ("GET", "/projects/{project_name_or_id}", None),
        ("PUT", "/projects/{project_name_or_id}", Some(json!({"metadata": {"public": "true"}}))),
        ("DELETE", "/projects/{project_name_or_id}", None),
        ("GET", "/projects/{project_name_or_id}/_deletable", None),
        ("GET", "/projects/{project_name_or_id}/summary", None),
        ("GET", "/projects/{project_name_or_id}/metadatas/", None),
        ("POST", "/projects/{project_name_or_id}/metadatas/", Some(json!({"auto_scan": "true"}))),
        ("GET", "/projects/{project_name_or_id}/metadatas/{meta_name}", None),
        ("PUT", "/projects/{project_name_or_id}/metadatas/{meta_name}", Some(json!({"public": "true"}))),
        ("DELETE", "/projects/{project_name_or_id}/metadatas/{meta_name}", None),
    ];
    for who in [as_user("out"), None] {
        for (method, template, body) in endpoints {
            for (existing, missing) in [("secret".to_string(), "nosuch".to_string()), (id.to_string(), missing_id.to_string())] {
                let path = |p: &str| template.replace("{project_name_or_id}", p).replace("{meta_name}", "public");
                let a = api(&t, method, template, &path(&existing), who, body.clone()).await;
                let b = api(&t, method, template, &path(&missing), who, body.clone()).await;
                assert_eq!(a.status, 404, "{method} {} as {who:?}: {}", path(&existing), a.text);
                assert_eq!(a.status, b.status);
                assert_eq!(a.text, b.text.replace(&missing, &existing), "{method} {template} as {who:?}");
            }
        }
        let a = call(&t, "HEAD", "/api/v2.0/projects?project_name=secret", who, None).await;
        let b = call(&t, "HEAD", "/api/v2.0/projects?project_name=nosuch", who, None).await;
        assert_eq!((a.status, b.status), (404, 404));
        let r = call(&t, "POST", "/api/berth/v1/projects/secret/repositories", who, Some(json!({"name": "app"}))).await;
        let m = call(&t, "POST", "/api/berth/v1/projects/nosuch/repositories", who, Some(json!({"name": "app"}))).await;
        assert_eq!((r.status, m.status), (404, 404));
        assert_eq!(r.text, m.text.replace("nosuch", "secret"));
    }
    // Nothing changed.
    let r = api(&t, "GET", "/projects/{project_name_or_id}", "/projects/secret", ADMIN, None).await;
    assert_eq!(r.body["metadata"], json!({"public": "false"}));
    // The system admin is told that a project is missing.
    let r = api(&t, "GET", "/projects/{project_name_or_id}", "/projects/nosuch", ADMIN, None).await;
    assert_eq!((r.status, r.message()), (404, "project nosuch not found".to_string()));
    t.shutdown().await;
}

/// A manifest (over a fresh config blob) for a push expected to fail.
async fn try_push(t: &TestApp, token: &str, repo: &str) -> reqwest::Response {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","n":"{repo}"}}"#);
    let digest = t.push_blob(token, repo, config.as_bytes()).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": config.len()},
        "layers": [],
    });
    t.put_manifest(token, repo, "v1", "application/vnd.oci.image.manifest.v1+json", &serde_json::to_vec(&manifest).unwrap()).await
}

async fn auto_create_repository(db: Db) {
    let t = TestApp::start(db).await;
    users(&t, &["dev", "gu"]).await;
    new_project(&t, ADMIN, "strict", false).await;
    for (user, role) in [("dev", 2), ("gu", 3)] {
        let r = api(
            &t,
            "POST",
            "/projects/{project_name_or_id}/members",
            "/projects/strict/members",
            ADMIN,
            Some(json!({"role_id": role, "member_user": {"username": user}})),
        )
        .await;
        assert_eq!(r.status, 201);
    }
    let dev_token = t.token(Some(("dev", PW)), &["repository:strict/app:pull,push", "repository:strict/team/tool:pull,push"]).await;
    // On by default: a push creates its repository.
    t.push_image(&dev_token, "strict/app", "v0", &[b"l0"]).await;
    // Off: a push into a repository that was not created first is refused, with the reason.
    let r = api(
        &t,
        "POST",
        "/projects/{project_name_or_id}/metadatas/",
        "/projects/strict/metadatas/",
        ADMIN,
        Some(json!({"auto_create_repository": "false"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = try_push(&t, &dev_token, "strict/team/tool").await;
    assert_eq!(r.status().as_u16(), 403);
    let v: Value = r.json().await.unwrap();
    let msg = v["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("must be created first") && msg.contains("strict/team/tool"), "{msg}");
    // Existing repositories still take pushes.
    t.push_image(&dev_token, "strict/app", "v1", &[b"l1"]).await;
    // Creating the repository: developers may, guests may not, outsiders do not see the project.
    let create = |who: Who, name: &str| {
        let body = json!({"name": name});
        let t = &t;
        async move { call(t, "POST", "/api/berth/v1/projects/strict/repositories", who, Some(body)).await }
    };
    assert_eq!(create(as_user("gu"), "team/tool").await.status, 403);
    assert_eq!(create(None, "team/tool").await.status, 404);
    let r = create(as_user("dev"), "Team/Tool").await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = create(as_user("dev"), "team/tool").await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("location").unwrap(), "/api/v2.0/projects/strict/repositories/team%252Ftool");
    assert!(r.text.is_empty());
    assert_eq!(create(as_user("dev"), "team/tool").await.status, 409);
    assert_eq!(create(ADMIN, "app").await.status, 409, "a pushed repository exists too");
    // Now the push goes through, and the project counts the repository.
    t.push_image(&dev_token, "strict/team/tool", "v1", &[b"tool layer"]).await;
    let r = api(&t, "GET", "/projects/{project_name_or_id}", "/projects/strict", as_user("dev"), None).await;
    assert_eq!(r.body["repo_count"], 2);
    // Back on: pushes create repositories again.
    let r = api(
        &t,
        "PUT",
        "/projects/{project_name_or_id}/metadatas/{meta_name}",
        "/projects/strict/metadatas/auto_create_repository",
        ADMIN,
        Some(json!({"auto_create_repository": "true"})),
    )
    .await;
    assert_eq!(r.status, 200);
    let other = t.token(Some(("dev", PW)), &["repository:strict/other:pull,push"]).await;
    t.push_image(&other, "strict/other", "v1", &[b"other"]).await;
    t.shutdown().await;
}

async fn audit_records(db: Db) {
    let t = TestApp::start(db).await;
    users(&t, &["dev"]).await;
    let id = new_project(&t, as_user("dev"), "audited", false).await;
    api(&t, "PUT", "/projects/{project_name_or_id}", "/projects/audited", as_user("dev"), Some(json!({"metadata": {"auto_scan": "true"}})))
        .await;
    api(&t, "POST", "/projects/{project_name_or_id}/metadatas/", "/projects/audited/metadatas/", ADMIN, Some(json!({"severity": "low"})))
        .await;
    api(&t, "DELETE", "/projects/{project_name_or_id}/metadatas/{meta_name}", "/projects/audited/metadatas/severity", ADMIN, None).await;
    // A refused change leaves no record.
    api(&t, "PUT", "/projects/{project_name_or_id}", "/projects/audited", as_user("dev"), Some(json!({"metadata": {"public": "x"}}))).await;
    let r = call(&t, "POST", "/api/berth/v1/projects/audited/repositories", as_user("dev"), Some(json!({"name": "app"}))).await;
    assert_eq!(r.status, 201);
    let r = api(&t, "DELETE", "/projects/{project_name_or_id}", "/projects/audited", as_user("dev"), None).await;
    assert_eq!(r.status, 412);
    let log = t.app.meta.project_audit_log(id).await.unwrap();
    let row = |operator: &str, resource: &str, resource_type: &str, operation: &str| ProjectAuditRow {
        operator: operator.into(),
        resource: resource.into(),
        resource_type: resource_type.into(),
        operation: operation.into(),
        success: true,
    };
    assert_eq!(
        log,
        vec![
            row("dev", "audited", "project", "create"),
            row("dev", "audited", "project", "update"),
            row("admin", "audited", "project", "update"),
            row("admin", "audited", "project", "update"),
            row("dev", "audited/app", "repository", "create"),
        ]
    );
    let empty = new_project(&t, as_user("dev"), "gone", false).await;
    api(&t, "DELETE", "/projects/{project_name_or_id}", "/projects/gone", as_user("dev"), None).await;
    let log = t.app.meta.project_audit_log(empty).await.unwrap();
    assert_eq!(log, vec![row("dev", "gone", "project", "create"), row("dev", "gone", "project", "delete")]);
    t.shutdown().await;
}

on_both_backends! {
    matrix => role_matrix;
    create => create_rules;
    restriction_and_limit => creation_restriction_and_limit;
    list => list_visibility_and_paging;
    update_metadata => update_and_metadata;
    delete => delete_needs_an_empty_project;
    discovery => discovery_safety;
    auto_create => auto_create_repository;
    audit => audit_records;
}
