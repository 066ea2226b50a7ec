//! Search, statistics, project summary quota, system info, health, configurations and the
//! Prometheus metrics over HTTP, on SQLite and PostgreSQL: who sees what (admin, member,
//! non-member, anonymous, robot, limited access token), that private projects never leak,
//! configuration round trips and refusals, the metrics exposition after real pushes and
//! pulls, and health turning unhealthy when the blob store or the database really fails.
//! Every JSON body is checked against Harbor's swagger contract.

mod common;
mod contract;
mod harbor;

use berth::meta::Audit;
use common::{ADMIN_PASSWORD, Db, TestApp, random_bytes};
use harbor::{Creds, Resp, Who, api, call, check};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const PW: &str = "Member-Passw0rd";
const ADMIN: Who = Some(("admin", ADMIN_PASSWORD));
const DEV: Who = Some(("dev", PW));
const OUT: Who = Some(("out", PW));

fn audit() -> Audit {
    Audit { operator: "test".into(), resource: "setup".into(), resource_type: "test", operation: "create", ..Default::default() }
}

/// Sizes of the files under the blob store's `blobs/` directory.
fn blob_files(t: &TestApp) -> Vec<(String, u64)> {
    let berth::config::Storage::Fs { root } = &t.app.config.storage else { panic!("tests use fs storage") };
    let mut out = Vec::new();
    let mut dirs = vec![root.join("blobs")];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                dirs.push(e.path());
            } else {
                out.push((format!("sha256:{}", e.file_name().to_string_lossy()), meta.len()));
            }
        }
    }
    out
}

fn storage_root(t: &TestApp) -> std::path::PathBuf {
    match &t.app.config.storage {
        berth::config::Storage::Fs { root } => root.clone(),
        _ => panic!("tests use fs storage"),
    }
}

/// The digests (config and layers) a pushed manifest references, with their sizes.
fn referenced(manifest: &[u8]) -> Vec<(String, u64)> {
    let m: Value = serde_json::from_slice(manifest).unwrap();
    let mut out = vec![(m["config"]["digest"].as_str().unwrap().to_string(), m["config"]["size"].as_u64().unwrap())];
    for l in m["layers"].as_array().unwrap() {
        out.push((l["digest"].as_str().unwrap().to_string(), l["size"].as_u64().unwrap()));
    }
    out
}

/// The fixture: users `dev` (developer of `secret`) and `out` (member of nothing); projects
/// `library` (public, bootstrapped), `open` (public), `secret` (private) and `hidden`
/// (private, no member but the admin), each with an `app-*` repository; `secret` holds two
/// images sharing a layer. Returns the blobs (digest, size) referenced by `secret`.
async fn fixture(t: &TestApp) -> Vec<(String, u64)> {
    let hash = berth::auth::hash_password(PW).await.unwrap();
    let admin = t.app.meta.user_by_name("admin").await.unwrap().unwrap().id;
    let dev = t.app.meta.create_user("dev", &hash, false, &audit()).await.unwrap();
    t.app.meta.create_user("out", &hash, false, &audit()).await.unwrap();
    let secret = t.app.meta.create_project("secret", admin, false, &audit()).await.unwrap();
    t.app.meta.create_project("open", admin, true, &audit()).await.unwrap();
    t.app.meta.create_project("hidden", admin, false, &audit()).await.unwrap();
    t.app.meta.set_member(secret, dev, 2, &audit()).await.unwrap();
    let shared: &[u8] = b"a layer both images share";
    let tok = t.admin_token("secret/app-one").await;
    let (_, m1) = t.push_image(&tok, "secret/app-one", "v1", &[shared, b"first image's own layer"]).await;
    let (_, m2) = t.push_image(&tok, "secret/app-one", "v2", &[shared, b"second image"]).await;
    let tok = t.admin_token("open/app-two").await;
    t.push_image(&tok, "open/app-two", "v1", &[shared]).await;
    let tok = t.admin_token("hidden/app-three").await;
    t.push_image(&tok, "hidden/app-three", "v1", &[b"hidden layer"]).await;
    let mut blobs: Vec<(String, u64)> = referenced(&m1).into_iter().chain(referenced(&m2)).collect();
    blobs.sort();
    blobs.dedup();
    blobs
}

fn names(list: &Value, key: &str) -> BTreeSet<String> {
    list.as_array().unwrap().iter().map(|p| p[key].as_str().unwrap().to_string()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

async fn robot(t: &TestApp) -> (String, String) {
    let body = json!({"name": "reader", "level": "project", "duration": -1, "permissions": [
        {"kind": "project", "namespace": "secret", "access": [{"resource": "repository", "action": "pull"}]}]});
    let r = api(t, "POST", "/robots", "/robots", ADMIN, Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    (r.body["name"].as_str().unwrap().to_string(), r.body["secret"].as_str().unwrap().to_string())
}

/// A personal access token of `dev` limited to the project `open`.
async fn open_only_token(t: &TestApp) -> String {
    let r = call(t, "POST", "/api/berth/v1/users/current/tokens", DEV, Some(json!({"name": "open-only", "projects": ["open"]}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["token"].as_str().unwrap().to_string()
}

async fn search_and_statistics(db: Db) {
    let t = TestApp::start(db).await;
    let secret_blobs = fixture(&t).await;
    let (robot_name, robot_secret) = robot(&t).await;
    let token = open_only_token(&t).await;
    let robot_who: Creds = Some((&robot_name, &robot_secret));
    let token_who: Creds = Some(("dev", &token));

    // Search: projects and repositories by name fragment, as each caller may see them.
    let cases: [(&str, Creds, &[&str], &[&str]); 6] = [
        ("admin", ADMIN, &["hidden", "open", "secret"], &["hidden/app-three", "open/app-two", "secret/app-one"]),
        ("member", DEV, &["open", "secret"], &["open/app-two", "secret/app-one"]),
        ("non-member", OUT, &["open"], &["open/app-two"]),
        ("anonymous", None, &["open"], &["open/app-two"]),
        ("robot of secret", robot_who, &["open"], &["open/app-two"]),
        ("token limited to open", token_who, &["open"], &["open/app-two"]),
    ];
    for (who_name, who, projects, repos) in cases {
        let r = api(&t, "GET", "/search", "/search?q=e", who, None).await;
        assert_eq!(r.status, 200, "{who_name}: {}", r.text);
        assert_eq!(names(&r.body["project"], "name"), set(projects), "{who_name}");
        let r = api(&t, "GET", "/search", "/search?q=APP-", who, None).await;
        assert_eq!(names(&r.body["repository"], "repository_name"), set(repos), "{who_name}");
        if who_name != "admin" {
            assert!(!r.text.contains("hidden"), "{who_name} learns of a private project: {}", r.text);
            let r = api(&t, "GET", "/search", "/search?q=hidden", who, None).await;
            assert_eq!(r.body, json!({"project": [], "repository": []}), "{who_name}");
        }
    }
    // Fields: counts, publicity, the caller's role.
    let r = api(&t, "GET", "/search", "/search?q=secret", DEV, None).await;
    let repo = &r.body["repository"][0];
    assert_eq!(repo["project_name"], "secret");
    assert_eq!(repo["project_public"], false);
    assert_eq!(repo["artifact_count"], 2);
    assert_eq!(repo["pull_count"], 0);
    assert_eq!(repo["project_id"], r.body["project"][0]["project_id"]);
    assert_eq!(r.body["project"][0]["repo_count"], 1);
    assert_eq!(r.body["project"][0]["current_user_role_id"], 2);
    // q is required.
    for path in ["/search", "/search?q="] {
        let r = api(&t, "GET", "/search", path, ADMIN, None).await;
        assert_eq!(r.status, 422, "{path}: {}", r.text);
    }

    // Statistics: admins get totals and storage; others what they can see; anonymous 401.
    let stored: u64 = blob_files(&t).iter().map(|(_, n)| n).sum();
    let r = api(&t, "GET", "/statistics", "/statistics", ADMIN, None).await;
    assert_eq!(
        r.body,
        json!({"private_project_count": 2, "private_repo_count": 2, "public_project_count": 2, "public_repo_count": 1,
               "total_project_count": 4, "total_repo_count": 3, "total_storage_consumption": stored})
    );
    let r = api(&t, "GET", "/statistics", "/statistics", DEV, None).await;
    assert_eq!(
        r.body,
        json!({"private_project_count": 1, "private_repo_count": 1, "public_project_count": 2, "public_repo_count": 1,
               "total_project_count": 0, "total_repo_count": 0, "total_storage_consumption": 0})
    );
    for (who_name, who) in [("non-member", OUT), ("robot", robot_who), ("token limited to open", token_who)] {
        let r = api(&t, "GET", "/statistics", "/statistics", who, None).await;
        assert_eq!(r.status, 200, "{who_name}");
        assert_eq!(r.body["private_project_count"], 0, "{who_name}");
        assert_eq!(r.body["private_repo_count"], 0, "{who_name}");
        assert_eq!(r.body["total_project_count"], 0, "{who_name}");
        assert_eq!(r.body["public_project_count"], 2, "{who_name}");
    }
    let r = api(&t, "GET", "/statistics", "/statistics", None, None).await;
    assert_eq!(r.status, 401);

    // Project summary: members see the quota (distinct blobs of the project's repositories);
    // non-members of a public project and anonymous callers do not.
    let used: u64 = secret_blobs.iter().map(|(_, n)| n).sum();
    let on_disk: std::collections::HashMap<String, u64> = blob_files(&t).into_iter().collect();
    assert!(secret_blobs.iter().all(|(d, n)| on_disk.get(d) == Some(n)), "every referenced blob is stored with its size");
    for who in [ADMIN, DEV] {
        let r = api(&t, "GET", "/projects/{project_name_or_id}/summary", "/projects/secret/summary", who, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["quota"], json!({"hard": {"storage": -1}, "used": {"storage": used}}));
        assert_eq!(r.body["repo_count"], 1);
        assert_eq!(r.body["project_admin_count"], 1);
        assert_eq!(r.body["developer_count"], 1);
    }
    for who in [OUT, None] {
        let r = api(&t, "GET", "/projects/{project_name_or_id}/summary", "/projects/open/summary", who, None).await;
        assert_eq!(r.status, 200);
        assert!(r.body.get("quota").is_none() && r.body.get("project_admin_count").is_none(), "{}", r.text);
        let r = api(&t, "GET", "/projects/{project_name_or_id}/summary", "/projects/secret/summary", who, None).await;
        assert!(r.status == 404 || r.status == 401, "{}", r.status);
    }
    let r = api(&t, "GET", "/projects/{project_name_or_id}/summary", "/projects/open/summary", ADMIN, None).await;
    assert!(r.body["quota"]["used"]["storage"].as_u64().unwrap() > 0);
    t.shutdown().await;
}

async fn systeminfo_and_health(db: Db) {
    let t = TestApp::start(db).await;
    fixture(&t).await;

    // Anonymous callers get Harbor's reduced set; signed-in ones the protected part as well.
    let r = api(&t, "GET", "/systeminfo", "/systeminfo", None, None).await;
    let keys: BTreeSet<String> = r.body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, set(&["auth_mode", "banner_message", "oidc_provider_name", "primary_auth_mode", "self_registration"]));
    assert_eq!(r.body["auth_mode"], "db_auth");
    assert_eq!(r.body["self_registration"], false);
    for who in [ADMIN, OUT] {
        let r = call(&t, "GET", "/api/v2.0/systeminfo", who, None).await;
        check("GET", "/systeminfo", &r);
        assert_eq!(r.body.as_object().unwrap().len(), 14, "{}", r.text);
        let host = t.url.strip_prefix("http://").unwrap();
        assert_eq!(r.body["external_url"], t.url);
        assert_eq!(r.body["registry_url"], host);
        assert_eq!(r.body["project_creation_restriction"], "everyone");
        assert_eq!(r.body["has_ca_root"], false);
        assert_eq!(r.body["registry_storage_provider_name"], "filesystem");
        assert!(r.body["harbor_version"].as_str().unwrap().contains("berth"));
    }

    // Volumes: admins only; the numbers are the blob volume's.
    let r = api(&t, "GET", "/systeminfo/volumes", "/systeminfo/volumes", ADMIN, None).await;
    assert_eq!(r.status, 200);
    let st = rustix::fs::statvfs(storage_root(&t)).unwrap();
    let (total, free) = (r.body["storage"][0]["total"].as_u64().unwrap(), r.body["storage"][0]["free"].as_u64().unwrap());
    assert_eq!(total, st.f_blocks * st.f_frsize);
    assert!(free <= total && free.abs_diff(st.f_bavail * st.f_frsize) < 1 << 30, "free {free}");
    assert_eq!(api(&t, "GET", "/systeminfo/volumes", "/systeminfo/volumes", OUT, None).await.status, 403);
    assert_eq!(api(&t, "GET", "/systeminfo/volumes", "/systeminfo/volumes", None, None).await.status, 401);

    // No CA certificate: 404 as Harbor answers without one.
    for who in [ADMIN, None] {
        let r = call(&t, "GET", "/api/v2.0/systeminfo/getcert", who, None).await;
        assert_eq!(r.status, 404);
        contract::validate("Errors", &r.body).unwrap();
    }

    // Health: every component healthy, sorted by name, no authentication needed.
    let r = api(&t, "GET", "/health", "/health", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"status": "healthy", "components": [
            {"name": "core", "status": "healthy"}, {"name": "database", "status": "healthy"}, {"name": "registry", "status": "healthy"}]})
    );
    // The blob store's directory disappears: the registry is unhealthy (still 200, as Harbor).
    let root = storage_root(&t);
    let aside = root.with_extension("aside");
    std::fs::rename(&root, &aside).unwrap();
    let r = api(&t, "GET", "/health", "/health", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "unhealthy");
    assert_eq!(r.body["components"][2]["name"], "registry");
    assert_eq!(r.body["components"][2]["status"], "unhealthy");
    assert!(!r.body["components"][2]["error"].as_str().unwrap().is_empty());
    assert_eq!(r.body["components"][1]["status"], "healthy");
    // A file where the directory was: unhealthy too.
    std::fs::write(&root, b"not a directory").unwrap();
    assert_eq!(api(&t, "GET", "/health", "/health", None, None).await.body["components"][2]["status"], "unhealthy");
    std::fs::remove_file(&root).unwrap();
    std::fs::rename(&aside, &root).unwrap();
    assert_eq!(api(&t, "GET", "/health", "/health", None, None).await.body["status"], "healthy");
    // The database goes away: the database component is unhealthy.
    t.app.meta.close().await;
    let r = api(&t, "GET", "/health", "/health", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "unhealthy");
    assert_eq!(
        r.body["components"][1],
        json!({"name": "database", "status": "unhealthy", "error": "the metadata database does not answer"})
    );
    assert_eq!(r.body["components"][2]["status"], "healthy");
    t.shutdown().await;
}

/// `GET /configurations` checked against the contract, with Berth's own setting (which
/// Harbor does not define) taken out first and returned.
async fn configurations(t: &TestApp) -> (Value, Value) {
    let r = call(t, "GET", "/api/v2.0/configurations", ADMIN, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut body = r.body;
    let limit = body.as_object_mut().unwrap().remove("project_limit_per_user").expect("Berth's per-user project limit is listed");
    contract::validate_response("GET", "/configurations", 200, &body).unwrap_or_else(|e| panic!("{e:?}\n{body}"));
    (body, limit)
}

async fn put_config(t: &TestApp, who: Creds<'_>, body: Value) -> Resp {
    api(t, "PUT", "/configurations", "/configurations", who, Some(body)).await
}

async fn configurations_round_trip(db: Db) {
    let t = TestApp::start(db).await;
    fixture(&t).await;
    let (c, limit) = configurations(&t).await;
    assert_eq!(c["self_registration"], json!({"value": false, "editable": true}));
    assert_eq!(c["project_creation_restriction"], json!({"value": "everyone", "editable": true}));
    assert_eq!(limit, json!({"value": -1, "editable": true}));
    assert_eq!(c["auth_mode"], json!({"value": "db_auth", "editable": false}));
    assert_eq!(c["robot_name_prefix"], json!({"value": "robot$", "editable": false}));
    assert_eq!(c["token_expiration"], json!({"value": 30, "editable": false}));
    assert!(c.get("ldap_url").is_none());

    // Admins only.
    assert_eq!(api(&t, "GET", "/configurations", "/configurations", DEV, None).await.status, 403);
    assert_eq!(api(&t, "GET", "/configurations", "/configurations", None, None).await.status, 401);
    assert_eq!(put_config(&t, DEV, json!({"self_registration": true})).await.status, 403);
    assert_eq!(put_config(&t, None, json!({"self_registration": true})).await.status, 401);

    // A round trip, and the settings take effect.
    let r =
        put_config(&t, ADMIN, json!({"self_registration": true, "project_creation_restriction": "adminonly", "project_limit_per_user": 3}))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (c, limit) = configurations(&t).await;
    assert_eq!(c["self_registration"]["value"], true);
    assert_eq!(c["project_creation_restriction"]["value"], "adminonly");
    assert_eq!(limit["value"], 3);
    let r = api(&t, "GET", "/systeminfo", "/systeminfo", None, None).await;
    assert_eq!(r.body["self_registration"], true);
    let r = api(&t, "GET", "/systeminfo", "/systeminfo", DEV, None).await;
    assert_eq!(r.body["project_creation_restriction"], "adminonly");
    let r = api(&t, "POST", "/projects", "/projects", DEV, Some(json!({"project_name": "mine"}))).await;
    assert_eq!(r.status, 403, "adminonly creation: {}", r.text);
    let r = call(&t, "GET", "/api/berth/v1/settings/project_limit_per_user", ADMIN, None).await;
    assert_eq!(r.body["project_limit_per_user"], 3);
    let r = put_config(&t, ADMIN, json!({"project_creation_restriction": "everyone"})).await;
    assert_eq!(r.status, 200);
    let r = api(&t, "POST", "/projects", "/projects", DEV, Some(json!({"project_name": "mine"}))).await;
    assert_eq!(r.status, 201, "{}", r.text);

    // Validation: clear 400s; nothing is written.
    for (body, says) in [
        (json!({"self_registration": "yes"}), "self_registration"),
        (json!({"project_creation_restriction": "nobody"}), "\"everyone\" or \"adminonly\""),
        (json!({"project_creation_restriction": 1}), "project_creation_restriction"),
        (json!({"project_limit_per_user": -2}), "-1 (no limit)"),
        (json!({"project_limit_per_user": "3"}), "project_limit_per_user"),
        (json!({"token_expiration": "30"}), "integer"),
        (json!(["self_registration"]), "JSON object"),
    ] {
        let r = put_config(&t, ADMIN, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert!(r.message().contains(says), "{body}: {}", r.message());
    }
    // Fixed settings: the current value is accepted, another one refused as read-only.
    assert_eq!(put_config(&t, ADMIN, json!({"read_only": false, "auth_mode": "db_auth", "token_expiration": 30})).await.status, 200);
    let r = put_config(&t, ADMIN, json!({"self_registration": false, "read_only": true})).await;
    assert_eq!(r.status, 403);
    assert!(r.message().contains("read_only"), "{}", r.message());
    assert_eq!(configurations(&t).await.0["self_registration"]["value"], true, "a refused update writes nothing");
    // Settings of features Berth lacks: only empty values; keys Harbor lacks: ignored.
    let r = put_config(&t, ADMIN, json!({"ldap_url": "ldap://ldap.example"})).await;
    assert_eq!(r.status, 403);
    assert!(r.message().contains("ldap_url"));
    assert_eq!(put_config(&t, ADMIN, json!({"ldap_url": "", "oidc_verify_cert": false, "no_such_setting": 1})).await.status, 200);
    assert_eq!(put_config(&t, ADMIN, json!({"self_registration": null, "project_limit_per_user": null})).await.status, 200);
    let (c, limit) = configurations(&t).await;
    assert_eq!((c["self_registration"]["value"].clone(), limit["value"].clone()), (json!(true), json!(3)), "null means not given");
    let r = put_config(&t, ADMIN, json!({"self_registration": false})).await;
    assert_eq!(r.status, 200);
    assert_eq!(configurations(&t).await.0["self_registration"]["value"], false);
    t.shutdown().await;
}

/// The value of the first exposition line that starts with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
}

async fn metrics(db: Db) {
    let t = TestApp::start_with(db, |c| c.metrics_token = Some("scrape-secret-1".into())).await;
    fixture(&t).await;
    // Project names are per backend: the registry of metrics is shared by the whole process.
    let project = match db {
        Db::Sqlite => "mx-sqlite",
        Db::Postgres => "mx-postgres",
    };
    let admin = t.app.meta.user_by_name("admin").await.unwrap().unwrap().id;
    t.app.meta.create_project(project, admin, false, &audit()).await.unwrap();
    let repo = format!("{project}/app");
    let tok = t.admin_token(&repo).await;
    t.push_image(&tok, &repo, "v1", &[b"metrics layer"]).await;
    // A blob pulled from the local store goes out with sendfile.
    let big = random_bytes(5 << 20);
    let big_digest = t.push_blob(&tok, &repo, &big).await;
    let r = t.http.get(format!("{}/v2/{repo}/blobs/{big_digest}", t.url)).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), big.as_slice());
    for _ in 0..3 {
        let r = t
            .http
            .get(format!("{}/v2/{repo}/manifests/v1", t.url))
            .bearer_auth(&tok)
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = t.http.head(format!("{}/v2/{repo}/manifests/v1", t.url)).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The three pulls are written now rather than at the next tick.
    berth::domain::pulls::flush(&t.app).await.unwrap();
    assert_eq!(
        api(&t, "GET", "/projects/{project_name_or_id}/summary", &format!("/projects/{project}/summary"), ADMIN, None).await.status,
        200
    );
    assert_eq!(call(&t, "GET", "/api/v2.0/no-such-thing", ADMIN, None).await.status, 404);

    // Who may read it.
    assert_eq!(call(&t, "GET", "/metrics", None, None).await.status, 401);
    assert_eq!(call(&t, "GET", "/metrics", OUT, None).await.status, 403);
    let wrong = t.http.get(format!("{}/metrics", t.url)).bearer_auth("scrape-secret-2").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let r = call(&t, "GET", "/metrics", ADMIN, None).await;
    assert_eq!(r.status, 200);
    let scraped = t.http.get(format!("{}/metrics", t.url)).bearer_auth("scrape-secret-1").send().await.unwrap();
    assert_eq!(scraped.status(), 200);
    assert_eq!(scraped.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = scraped.text().await.unwrap();
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/plain"));

    // Pushes and pulls per project: one manifest push, three GETs (HEAD is not a pull).
    assert_eq!(sample(&text, &format!("berth_project_pushes_total{{project=\"{project}\"}}")), Some(1.0), "{text}");
    assert_eq!(sample(&text, &format!("berth_project_pulls_total{{project=\"{project}\"}}")), Some(3.0), "{text}");
    // Batched pull accounting reports its own cost (counters are process-wide: other tests add).
    assert!(sample(&text, "berth_pull_accounting_pulls_total").unwrap() >= 3.0, "{text}");
    assert!(sample(&text, "berth_pull_accounting_writes_total").unwrap() >= 1.0, "{text}");
    assert!(sample(&text, "berth_pull_accounting_write_duration_seconds_total").unwrap() > 0.0, "{text}");
    // So does the group commit of blobs: the image's config and layer at least, in at most as
    // many transactions as blobs.
    let (blobs, writes) =
        (sample(&text, "berth_blob_commit_blobs_total").unwrap(), sample(&text, "berth_blob_commit_writes_total").unwrap());
    assert!(blobs >= 2.0 && writes >= 1.0 && writes <= blobs, "{text}");
    assert!(sample(&text, "berth_blob_sendfile_bytes_total").unwrap() >= (5 << 20) as f64, "{text}");
    // Requests per route template and status; /v2 grouped by operation, never by repository.
    let manifests_get = r#"berth_http_requests_total{method="GET",route="/v2/{name}/manifests/{reference}",status="200"}"#;
    assert!(sample(&text, manifests_get).unwrap() >= 3.0, "{text}");
    assert!(
        sample(&text, r#"berth_http_requests_total{method="PUT",route="/v2/{name}/manifests/{reference}",status="201"}"#).unwrap() >= 1.0
    );
    let summary = r#"berth_http_requests_total{method="GET",route="/api/v2.0/projects/{project_name_or_id}/summary",status="200"}"#;
    assert!(sample(&text, summary).unwrap() >= 1.0, "{text}");
    assert!(sample(&text, r#"berth_http_requests_total{method="GET",route="unmatched",status="404"}"#).unwrap() >= 1.0, "{text}");
    assert!(!text.contains(&repo), "repository names are not labels");
    let count = r#"berth_http_request_duration_seconds_count{method="GET",route="/v2/{name}/manifests/{reference}"}"#;
    assert!(sample(&text, count).unwrap() >= 3.0);
    assert!(text.contains("# TYPE berth_http_request_duration_seconds histogram"));
    // Storage used: the bytes in the blob store.
    let stored: u64 = blob_files(&t).iter().map(|(_, n)| n).sum();
    assert_eq!(sample(&text, "berth_storage_used_bytes"), Some(stored as f64), "{text}");
    t.shutdown().await;
}

on_both_backends! {
    search_and_statistics => search_and_statistics;
    systeminfo_and_health => systeminfo_and_health;
    configurations_round_trip => configurations_round_trip;
    metrics => metrics;
}
