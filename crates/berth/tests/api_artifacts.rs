//! Repositories, artifacts, tags, accessories, additions and copy through the Harbor API,
//! over content pushed through /v2; pull accounting; every response checked against Harbor's
//! contract.

mod common;
mod contract;

use berth::meta::{Audit, accounts_role as role};
use common::{ADMIN_PASSWORD, Db, TestApp, sha256};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PW: &str = "Pass-word-1";
const ADMIN: (&str, &str) = ("admin", ADMIN_PASSWORD);

fn conforms(method: &str, template: &str, status: u16, body: &Value) {
    if let Err(errors) = contract::validate_response(method, template, status, body) {
        panic!("{method} {template} {status} does not match Harbor's contract: {errors:?}\n{body}");
    }
}

/// Projects `team` (private) and `open` (public), users guest/dev/padmin members of team,
/// and `outsider` a member of nothing.
async fn setup(t: &TestApp) {
    let meta = &t.app.meta;
    let a = Audit { operator: "admin".into(), resource: "setup".into(), resource_type: "test", operation: "create", ..Default::default() };
    let admin = meta.user_by_name("admin").await.unwrap().unwrap().id;
    let team = meta.create_project("team", admin, false, &a).await.unwrap();
    meta.create_project("open", admin, true, &a).await.unwrap();
    meta.create_project("other", admin, false, &a).await.unwrap();
    for (name, r) in
        [("guest", Some(role::GUEST)), ("dev", Some(role::DEVELOPER)), ("padmin", Some(role::PROJECT_ADMIN)), ("outsider", None)]
    {
        let hash = berth::auth::hash_password(PW).await.unwrap();
        let id = meta.create_user(name, &hash, false, &a).await.unwrap();
        if let Some(r) = r {
            meta.set_member(team, id, r, &a).await.unwrap();
        }
    }
}

async fn api(t: &TestApp, method: reqwest::Method, who: Option<(&str, &str)>, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut r = t.http.request(method, format!("{}/api/v2.0{path}", t.url));
    if let Some((u, p)) = who {
        r = r.basic_auth(u, Some(p));
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

async fn get_json(t: &TestApp, who: Option<(&str, &str)>, path: &str) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let r = api(t, reqwest::Method::GET, who, path, None).await;
    let status = r.status();
    let headers = r.headers().clone();
    let v = r.json().await.unwrap_or(Value::Null);
    (status, v, headers)
}

/// The kept artifact count of a repository equals a count of its listed artifacts (a filter that
/// matches everything makes the list count instead of reading the kept total).
async fn counts_agree(t: &TestApp, project: &str, repo: &str) {
    let (_, v, _) = get_json(t, Some(ADMIN), &format!("/projects/{project}/repositories/{repo}")).await;
    let kept = v["artifact_count"].as_i64().unwrap();
    let (_, _, h) = get_json(t, Some(ADMIN), &format!("/projects/{project}/repositories/{repo}/artifacts?q=push_time%3D%5B1~%5D")).await;
    let counted: i64 = h["x-total-count"].to_str().unwrap().parse().unwrap();
    let (_, _, h) = get_json(t, Some(ADMIN), &format!("/projects/{project}/repositories/{repo}/artifacts")).await;
    let total: i64 = h["x-total-count"].to_str().unwrap().parse().unwrap();
    assert_eq!((kept, total), (counted, counted), "kept artifact_count and list total must equal the counted total for {project}/{repo}");
}

const ARTIFACTS: &str = "/projects/{project_name}/repositories/{repository_name}/artifacts";
const ARTIFACT: &str = "/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}";

async fn content_api(db: Db) {
    let t = TestApp::start(db).await;
    setup(&t).await;
    let tok = t.admin_token("team/app").await;
    let (d1, _) = t.push_image(&tok, "team/app", "v1", &[b"layer-one"]).await;
    let (d2, _) = t.push_image(&tok, "team/app", "v2", &[b"layer-two", b"layer-three"]).await;
    let (d3, _) = t.push_image(&tok, "team/app", "v3", &[b"layer-four"]).await;
    let tok_nested = t.admin_token("team/a/b").await;
    t.push_image(&tok_nested, "team/a/b", "latest", &[b"nested"]).await;

    // Repositories of a project, with counts; Harbor's headers.
    let (s, v, h) = get_json(&t, Some(ADMIN), "/projects/team/repositories").await;
    assert_eq!(s, StatusCode::OK);
    conforms("GET", "/projects/{project_name}/repositories", 200, &v);
    assert_eq!(h["x-total-count"], "2");
    let app = v.as_array().unwrap().iter().find(|r| r["name"] == "team/app").unwrap();
    assert_eq!(app["artifact_count"], 3);
    assert_eq!(app["pull_count"], 0);
    let (_, v, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories?q=name%3D~nope").await;
    assert_eq!(v.as_array().unwrap().len(), 0);
    let (_, v, h) = get_json(&t, Some(ADMIN), "/projects/team/repositories?page_size=1&sort=name").await;
    assert_eq!(v[0]["name"], "team/a/b");
    assert!(h["link"].to_str().unwrap().contains("rel=\"next\""));

    // A nested repository named with its slash encoded twice, as Harbor clients send it.
    let (s, v, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/a%252Fb").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    conforms("GET", "/projects/{project_name}/repositories/{repository_name}", 200, &v);
    assert_eq!(v["name"], "team/a/b");
    let r = api(&t, reqwest::Method::PUT, Some(("dev", PW)), "/projects/team/repositories/a%252Fb", Some(json!({"description": "nested"})))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, v, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/a%252Fb").await;
    assert_eq!(v["description"], "nested");

    // Visibility: a non-member learns nothing of a private project; the cross-project list hides it.
    let (s, _, _) = get_json(&t, Some(("outsider", PW)), "/projects/team/repositories/app").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v, _) = get_json(&t, Some(("outsider", PW)), "/repositories").await;
    assert_eq!(s, StatusCode::OK);
    conforms("GET", "/repositories", 200, &v);
    assert!(v.as_array().unwrap().iter().all(|r| !r["name"].as_str().unwrap().starts_with("team/")));
    let (_, v, h) = get_json(&t, Some(ADMIN), "/repositories").await;
    assert_eq!(h["x-total-count"], "2", "{v}");

    // Artifacts: newest first, tags included by default, Harbor's fields.
    let (s, v, h) = get_json(&t, Some(("guest", PW)), "/projects/team/repositories/app/artifacts").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    conforms("GET", ARTIFACTS, 200, &v);
    assert_eq!(h["x-total-count"], "3");
    let list = v.as_array().unwrap();
    assert_eq!(list[0]["digest"], d3);
    assert_eq!(list[2]["digest"], d1);
    assert_eq!(list[0]["type"], "IMAGE");
    assert_eq!(list[0]["tags"][0]["name"], "v3");
    assert_eq!(list[0]["extra_attrs"]["architecture"], "amd64");
    assert_eq!(list[0]["extra_attrs"]["os"], "linux");
    assert_eq!(list[0]["manifest_media_type"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(list[0]["media_type"], "application/vnd.oci.image.config.v1+json");
    assert_eq!(list[0]["pull_time"], "0001-01-01T00:00:00.000Z");
    assert!(list[0]["addition_links"]["build_history"]["href"].as_str().unwrap().ends_with(&format!("{d3}/additions/build_history")));
    // Size: the manifest, its config and its layers.
    let manifest_len = t.get(Some(&tok), &format!("/v2/team/app/manifests/{d2}")).await.bytes().await.unwrap().len() as i64;
    let d2_row = list.iter().find(|a| a["digest"] == d2).unwrap();
    assert!(d2_row["size"].as_i64().unwrap() > manifest_len + "layer-twolayer-three".len() as i64);

    // Filters, sorting and paging.
    let (_, v, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/app/artifacts?q=tags%3Dv2").await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["digest"], d2);
    let (_, v, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/app/artifacts?q=tags%3D~v").await;
    assert_eq!(v.as_array().unwrap().len(), 3);
    let (_, v, _) = get_json(&t, Some(ADMIN), &format!("/projects/team/repositories/app/artifacts?q=digest%3D{d1}")).await;
    assert_eq!(v[0]["digest"], d1);
    let (_, v, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/app/artifacts?sort=push_time").await;
    assert_eq!(v[0]["digest"], d1);
    let (_, v, h) = get_json(&t, Some(ADMIN), "/projects/team/repositories/app/artifacts?page=2&page_size=2&with_tag=false").await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert!(v[0].get("tags").is_none());
    assert!(h["link"].to_str().unwrap().contains("rel=\"prev\""));
    let (s, _, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/app/artifacts?q=bogus%3D1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/app/artifacts?with_tag=maybe").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Across a project's repositories; latest_in_repository keeps each repository's newest.
    let (s, v, h) = get_json(&t, Some(("guest", PW)), "/projects/team/artifacts?with_tag=true").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    conforms("GET", "/projects/{project_name_or_id}/artifacts", 200, &v);
    assert_eq!(h["x-total-count"], "4");
    let (_, v, h) = get_json(&t, Some(ADMIN), "/projects/team/artifacts?latest_in_repository=true&q=type%3DIMAGE").await;
    assert_eq!(h["x-total-count"], "2", "{v}");
    let latest: Vec<&str> = v.as_array().unwrap().iter().map(|a| a["repository_name"].as_str().unwrap()).collect();
    assert!(latest.contains(&"team/app") && latest.contains(&"team/a/b"));
    assert!(v.as_array().unwrap().iter().any(|a| a["digest"] == d3));
    let (s, _, _) = get_json(&t, Some(("outsider", PW)), "/projects/team/artifacts").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Read by tag and by digest; unknown ones are 404 with Harbor's body.
    let (s, v, _) = get_json(
        &t,
        Some(ADMIN),
        "/projects/team/repositories/app/artifacts/v2?with_label=true&with_accessory=true&with_scan_overview=true",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    conforms("GET", ARTIFACT, 200, &v);
    assert_eq!(v["digest"], d2);
    let (_, v, _) = get_json(&t, Some(ADMIN), &format!("/projects/team/repositories/app/artifacts/{d2}")).await;
    assert_eq!(v["tags"][0]["name"], "v2");
    let (s, v, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/app/artifacts/nosuch").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["errors"][0]["code"], "NOT_FOUND");
    let (s, _, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/app/artifacts/sha256:zz").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Build history comes from the config.
    let (s, v, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/app/artifacts/v1/additions/build_history").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!([]));
    let (s, _, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/app/artifacts/v1/additions/readme.md").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Tags: create, conflict, bad name, list, delete.
    let tags = "/projects/team/repositories/app/artifacts/v1/tags";
    let r = api(&t, reqwest::Method::POST, Some(("dev", PW)), tags, Some(json!({"name": "stable"}))).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(r.headers()["location"].to_str().unwrap().ends_with("/tags/stable"));
    let r = api(&t, reqwest::Method::POST, Some(("dev", PW)), tags, Some(json!({"name": "stable"}))).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = api(&t, reqwest::Method::POST, Some(("dev", PW)), tags, Some(json!({"name": "-bad"}))).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = api(&t, reqwest::Method::POST, Some(("guest", PW)), tags, Some(json!({"name": "g"}))).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (s, v, h) = get_json(&t, Some(("guest", PW)), tags).await;
    assert_eq!(s, StatusCode::OK);
    conforms("GET", "/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}/tags", 200, &v);
    assert_eq!(h["x-total-count"], "2");
    let r = t.get(Some(&tok), "/v2/team/app/manifests/stable").await;
    assert_eq!(r.headers()["docker-content-digest"].to_str().unwrap(), d1);
    let r = api(&t, reqwest::Method::DELETE, Some(("dev", PW)), &format!("{tags}/stable"), None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "developers may not delete tags");
    let r = api(&t, reqwest::Method::DELETE, Some(("padmin", PW)), &format!("{tags}/stable"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = api(&t, reqwest::Method::DELETE, Some(("padmin", PW)), &format!("{tags}/stable"), None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Labels: a global label and a project label on an artifact; filter by label.
    let r =
        api(&t, reqwest::Method::POST, Some(ADMIN), "/labels", Some(json!({"name": "release", "scope": "g", "color": "#00ff00"}))).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let global: i64 = r.headers()["location"].to_str().unwrap().rsplit('/').next().unwrap().parse().unwrap();
    let (_, p, _) = get_json(&t, Some(ADMIN), "/projects/other").await;
    let r = api(
        &t,
        reqwest::Method::POST,
        Some(ADMIN),
        "/labels",
        Some(json!({"name": "foreign", "scope": "p", "project_id": p["project_id"]})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let foreign: i64 = r.headers()["location"].to_str().unwrap().rsplit('/').next().unwrap().parse().unwrap();
    let labels = "/projects/team/repositories/app/artifacts/v1/labels";
    let r = api(&t, reqwest::Method::POST, Some(("guest", PW)), labels, Some(json!({"id": global}))).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = api(&t, reqwest::Method::POST, Some(("dev", PW)), labels, Some(json!({"id": global}))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = api(&t, reqwest::Method::POST, Some(("dev", PW)), labels, Some(json!({"id": global}))).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = api(&t, reqwest::Method::POST, Some(("dev", PW)), labels, Some(json!({"id": foreign}))).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "a label of another project does not apply");
    let r = api(&t, reqwest::Method::POST, Some(("dev", PW)), labels, Some(json!({}))).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (_, v, _) =
        get_json(&t, Some(ADMIN), &format!("/projects/team/repositories/app/artifacts?with_label=true&q=labels%3D{global}")).await;
    conforms("GET", ARTIFACTS, 200, &v);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["digest"], d1);
    assert_eq!(v[0]["labels"][0]["name"], "release");
    let (_, v, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/app/artifacts/v2?with_label=true").await;
    assert_eq!(v["labels"], json!([]));
    let r = api(&t, reqwest::Method::DELETE, Some(("dev", PW)), &format!("{labels}/{global}"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = api(&t, reqwest::Method::DELETE, Some(("dev", PW)), &format!("{labels}/{global}"), None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (_, v, _) = get_json(&t, Some(ADMIN), &format!("/projects/team/repositories/app/artifacts?q=labels%3D{global}")).await;
    assert_eq!(v.as_array().unwrap().len(), 0);

    // Copy into another project: no bytes move, the copy pulls through /v2.
    let r =
        api(&t, reqwest::Method::POST, Some(ADMIN), "/projects/other/repositories/copy%252Fhere/artifacts?from=team/app:v2", None).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
    let (_, v, _) = get_json(&t, Some(ADMIN), "/projects/other/repositories/copy%252Fhere/artifacts/v2").await;
    assert_eq!(v["digest"], d2);
    let other_tok = t.admin_token("other/copy/here").await;
    let r = t.get(Some(&other_tok), &format!("/v2/other/copy/here/manifests/{d2}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = api(&t, reqwest::Method::POST, Some(("dev", PW)), "/projects/other/repositories/x/artifacts?from=team/app:v2", None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "dev is not a member of other");
    let r = api(&t, reqwest::Method::POST, Some(ADMIN), "/projects/other/repositories/x/artifacts?from=nonsense", None).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Delete an artifact: its tags go with it; guests and developers may not.
    let path = format!("/projects/team/repositories/app/artifacts/{d3}");
    assert_eq!(api(&t, reqwest::Method::DELETE, Some(("dev", PW)), &path, None).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(api(&t, reqwest::Method::DELETE, Some(("padmin", PW)), &path, None).await.status(), StatusCode::OK);
    assert_eq!(t.get(Some(&tok), "/v2/team/app/manifests/v3").await.status(), StatusCode::NOT_FOUND);
    counts_agree(&t, "team", "app").await;
    counts_agree(&t, "other", "copy%252Fhere").await;

    // Delete a repository with its artifacts.
    assert_eq!(
        api(&t, reqwest::Method::DELETE, Some(("dev", PW)), "/projects/team/repositories/a%252Fb", None).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api(&t, reqwest::Method::DELETE, Some(("padmin", PW)), "/projects/team/repositories/a%252Fb", None).await.status(),
        StatusCode::OK
    );
    assert_eq!(t.get(Some(&tok_nested), "/v2/team/a/b/tags/list").await.status(), StatusCode::NOT_FOUND);
    let (s, _, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/a%252Fb").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    t.shutdown().await;
}

async fn index_and_accessories(db: Db) {
    let t = TestApp::start(db).await;
    setup(&t).await;
    let tok = t.admin_token("team/multi").await;
    let (amd, amd_body) = t.push_image(&tok, "team/multi", "amd", &[b"amd64 layer"]).await;
    let (arm, arm_body) = t.push_image(&tok, "team/multi", "arm", &[b"arm64 layer"]).await;
    // Children pushed by tag are listed until an index takes them in; untag them first.
    for tag in ["amd", "arm"] {
        let path = format!("/projects/team/repositories/multi/artifacts/{tag}/tags/{tag}");
        assert_eq!(api(&t, reqwest::Method::DELETE, Some(ADMIN), &path, None).await.status(), StatusCode::OK);
    }
    let index = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd, "size": amd_body.len(), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm, "size": arm_body.len(), "platform": {"architecture": "arm64", "os": "linux"}}
        ]
    });
    let index_body = serde_json::to_vec(&index).unwrap();
    let index_digest = sha256(&index_body);
    let r = t.put_manifest(&tok, "team/multi", "latest", "application/vnd.oci.image.index.v1+json", &index_body).await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // The index is listed alone, with its children as references.
    let (_, v, h) = get_json(&t, Some(ADMIN), "/projects/team/repositories/multi/artifacts").await;
    conforms("GET", ARTIFACTS, 200, &v);
    assert_eq!(h["x-total-count"], "1", "{v}");
    assert_eq!(v[0]["digest"], index_digest);
    assert_eq!(v[0]["type"], "IMAGE");
    let refs = v[0]["references"].as_array().unwrap();
    assert_eq!(refs.len(), 2);
    assert_eq!(refs[0]["child_digest"], amd);
    assert_eq!(refs[0]["platform"]["architecture"], "amd64");
    assert!(refs[0]["child_id"].as_i64().is_some());
    let (_, v, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/multi").await;
    assert_eq!(v["artifact_count"], 1);
    counts_agree(&t, "team", "multi").await;
    // A child is still readable by digest.
    let (s, _, _) = get_json(&t, Some(ADMIN), &format!("/projects/team/repositories/multi/artifacts/{arm}")).await;
    assert_eq!(s, StatusCode::OK);

    // A referrer (subject) and a cosign-style signature tag become accessories of the index.
    let empty = t.push_blob(&tok, "team/multi", b"{}").await;
    let sbom_layer = t.push_blob(&tok, "team/multi", br#"{"spdxVersion":"SPDX-2.3"}"#).await;
    let referrer = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": sbom_layer, "size": 26}],
        "subject": {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": index_digest, "size": index_body.len()}
    });
    let referrer_body = serde_json::to_vec(&referrer).unwrap();
    let referrer_digest = sha256(&referrer_body);
    let r = t.put_manifest(&tok, "team/multi", &referrer_digest, "application/vnd.oci.image.manifest.v1+json", &referrer_body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let sig_layer = t.push_blob(&tok, "team/multi", b"{\"critical\":{}}").await;
    let sig = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": sig_layer, "size": 15,
                    "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ"}}]
    });
    let sig_body = serde_json::to_vec(&sig).unwrap();
    let sig_tag = format!("{}.sig", index_digest.replace(':', "-"));
    let r = t.put_manifest(&tok, "team/multi", &sig_tag, "application/vnd.oci.image.manifest.v1+json", &sig_body).await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let (_, v, h) = get_json(&t, Some(ADMIN), "/projects/team/repositories/multi/artifacts?with_accessory=true").await;
    conforms("GET", ARTIFACTS, 200, &v);
    assert_eq!(h["x-total-count"], "1", "accessories are not listed on their own: {v}");
    let acc = v[0]["accessories"].as_array().unwrap();
    let types: Vec<&str> = acc.iter().map(|a| a["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["harbor.sbom", "signature.cosign"]);
    assert_eq!(acc[0]["subject_artifact_digest"], index_digest);
    let path = format!("/projects/team/repositories/multi/artifacts/{index_digest}/accessories");
    let (s, v, h) = get_json(&t, Some(("guest", PW)), &path).await;
    assert_eq!(s, StatusCode::OK);
    conforms("GET", "/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}/accessories", 200, &v);
    assert_eq!(h["x-total-count"], "2");
    counts_agree(&t, "team", "multi").await;
    let (_, v, _) = get_json(&t, Some(ADMIN), &format!("/projects/team/repositories/multi/artifacts/{sig_tag}")).await;
    assert_eq!(v["type"], "SIGNATURE");
    let (_, v, _) = get_json(&t, Some(ADMIN), &format!("/projects/team/repositories/multi/artifacts/{referrer_digest}")).await;
    assert_eq!(v["type"], "SBOM");

    // Deleting the index deletes its accessories and lists its children again.
    let r =
        api(&t, reqwest::Method::DELETE, Some(ADMIN), &format!("/projects/team/repositories/multi/artifacts/{index_digest}"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, v, h) = get_json(&t, Some(ADMIN), "/projects/team/repositories/multi/artifacts").await;
    assert_eq!(h["x-total-count"], "2", "{v}");
    let listed: Vec<&str> = v.as_array().unwrap().iter().map(|a| a["digest"].as_str().unwrap()).collect();
    assert!(listed.contains(&amd.as_str()) && listed.contains(&arm.as_str()));
    counts_agree(&t, "team", "multi").await;
    let (s, _, _) = get_json(&t, Some(ADMIN), &format!("/projects/team/repositories/multi/artifacts/{referrer_digest}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    t.shutdown().await;
}

/// A gzipped tar of a chart directory.
fn chart_archive() -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    for (path, body) in [
        ("mychart/Chart.yaml", "apiVersion: v2\nname: mychart\nversion: 1.2.3\n"),
        ("mychart/README.md", "# My chart\n"),
        ("mychart/values.yaml", "replicas: 2\n"),
        ("mychart/templates/deploy.yaml", "kind: Deployment\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, path, body.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

async fn charts(db: Db) {
    let t = TestApp::start(db).await;
    setup(&t).await;
    let tok = t.admin_token("open/mychart").await;
    let config = json!({"apiVersion": "v2", "name": "mychart", "version": "1.2.3",
        "dependencies": [{"name": "redis", "version": "17.0.0", "repository": "oci://example/charts"}]});
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = t.push_blob(&tok, "open/mychart", &config_bytes).await;
    let archive = chart_archive();
    let archive_digest = t.push_blob(&tok, "open/mychart", &archive).await;
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": config_digest, "size": config_bytes.len()},
        "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "digest": archive_digest, "size": archive.len()}]
    });
    let r = t
        .put_manifest(&tok, "open/mychart", "1.2.3", "application/vnd.oci.image.manifest.v1+json", &serde_json::to_vec(&manifest).unwrap())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // Anyone may list a public project's artifacts; reading the repository itself takes a role.
    let (s, v, _) = get_json(&t, None, "/projects/open/repositories/mychart/artifacts").await;
    assert_eq!(s, StatusCode::OK);
    conforms("GET", ARTIFACTS, 200, &v);
    assert_eq!(v[0]["type"], "CHART");
    assert_eq!(v[0]["extra_attrs"]["name"], "mychart");
    assert_eq!(v[0]["extra_attrs"]["version"], "1.2.3");
    let links = v[0]["addition_links"].as_object().unwrap();
    assert!(links.contains_key("readme.md") && links.contains_key("values.yaml") && links.contains_key("dependencies"));
    let (s, _, _) = get_json(&t, None, "/projects/open/repositories/mychart").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = get_json(&t, None, "/projects/open/repositories").await;
    assert_eq!(s, StatusCode::OK);

    let base = "/projects/open/repositories/mychart/artifacts/1.2.3/additions";
    let r = api(&t, reqwest::Method::GET, None, &format!("{base}/readme.md"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "# My chart\n");
    let r = api(&t, reqwest::Method::GET, None, &format!("{base}/values.yaml"), None).await;
    assert_eq!(r.text().await.unwrap(), "replicas: 2\n");
    let (_, v, _) = get_json(&t, None, &format!("{base}/dependencies")).await;
    assert_eq!(v[0]["name"], "redis");
    let (s, _, _) = get_json(&t, None, &format!("{base}/build_history")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    t.shutdown().await;
}

async fn pull_accounting(db: Db) {
    let mut t = TestApp::start(db).await;
    setup(&t).await;
    let tok = t.admin_token("team/app").await;
    let (digest, _) = t.push_image(&tok, "team/app", "v1", &[b"x"]).await;
    for _ in 0..3 {
        assert_eq!(t.get(Some(&tok), "/v2/team/app/manifests/v1").await.status(), StatusCode::OK);
    }
    assert_eq!(t.get(Some(&tok), &format!("/v2/team/app/manifests/{digest}")).await.status(), StatusCode::OK);
    // HEAD is not a pull.
    let r = t.http.head(format!("{}/v2/team/app/manifests/v1", t.url)).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    berth::domain::pulls::flush(&t.app).await.unwrap();
    let (_, v, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/app").await;
    assert_eq!(v["pull_count"], 4);
    let (_, v, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/app/artifacts/v1").await;
    assert_ne!(v["pull_time"], "0001-01-01T00:00:00.000Z");
    assert_ne!(v["tags"][0]["pull_time"], "0001-01-01T00:00:00.000Z");
    let pulls = t.app.meta.project_audit_log(v["project_id"].as_i64().unwrap()).await.unwrap();
    let pulls: Vec<_> = pulls.iter().filter(|r| r.operation == "pull").collect();
    assert_eq!(pulls.len(), 4);
    assert!(pulls.iter().any(|r| r.resource == "team/app:v1" && r.resource_type == "artifact" && r.operator == "admin"));
    // Pulls still waiting when the server stops are written on the way out.
    assert_eq!(t.get(Some(&tok), "/v2/team/app/manifests/v1").await.status(), StatusCode::OK);
    t.stop().await;
    let meta = berth::meta::Meta::connect(&t.app.config.database).await.unwrap();
    assert_eq!(meta.repository("team/app").await.unwrap().unwrap().pull_count, 5);
    meta.close().await;
}

/// One batch spanning several repositories, artifacts and tags, more rows than one statement
/// takes, and a pull time older than the stored one, which must not move it back.
async fn pull_accounting_batches(db: Db) {
    let t = TestApp::start(db).await;
    setup(&t).await;
    let tok_a = t.admin_token("team/a").await;
    let tok_b = t.admin_token("team/b").await;
    t.push_image(&tok_a, "team/a", "a1", &[b"a1"]).await;
    t.push_image(&tok_a, "team/a", "a2", &[b"a2"]).await;
    t.push_image(&tok_b, "team/b", "b1", &[b"b1"]).await;
    for _ in 0..600 {
        assert_eq!(t.get(Some(&tok_a), "/v2/team/a/manifests/a1").await.status(), StatusCode::OK);
        assert_eq!(t.get(Some(&tok_b), "/v2/team/b/manifests/b1").await.status(), StatusCode::OK);
    }
    assert_eq!(t.get(Some(&tok_a), "/v2/team/a/manifests/a2").await.status(), StatusCode::OK);
    berth::domain::pulls::flush(&t.app).await.unwrap();
    let (_, v, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/a").await;
    assert_eq!(v["pull_count"], 601);
    let (_, v, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/b").await;
    assert_eq!(v["pull_count"], 600);
    let r = api(&t, reqwest::Method::GET, Some(ADMIN), "/audit-logs?q=operation%3Dpull&page_size=1", None).await;
    assert_eq!(r.headers()["x-total-count"], "1201");
    let (_, a2, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/a/artifacts/a2").await;
    assert_ne!(a2["pull_time"], "0001-01-01T00:00:00.000Z");
    assert_ne!(a2["tags"][0]["pull_time"], "0001-01-01T00:00:00.000Z");

    // A late batch carrying an older time (another node's, say) counts but keeps the newer time.
    let m = t.app.meta.manifest_by_tag("team/a", "a2").await.unwrap().unwrap();
    let mut late = berth::domain::pulls::PendingPulls::default();
    late.manifests.insert(m.id, 1_000);
    late.tags.insert(m.tag_id.unwrap(), 1_000);
    late.repositories.insert(m.repository_id, 2);
    t.app.meta.record_pulls(&late).await.unwrap();
    let (_, again, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/a/artifacts/a2").await;
    assert_eq!(again["pull_time"], a2["pull_time"]);
    assert_eq!(again["tags"][0]["pull_time"], a2["tags"][0]["pull_time"]);
    let (_, v, _) = get_json(&t, Some(ADMIN), "/projects/team/repositories/a").await;
    assert_eq!(v["pull_count"], 603);
    t.shutdown().await;
}

/// A manifest push checks every reference in one query: the error names the first reference
/// missing, nothing is stored until all are present, and a reference named twice counts once.
async fn repeated_and_missing_references(db: Db) {
    let t = TestApp::start(db).await;
    let tok = t.admin_token("library/refs").await;
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let config_digest = t.push_blob(&tok, "library/refs", config).await;
    let (a, b) = (b"layer a".as_slice(), b"layer b".as_slice());
    let a_digest = t.push_blob(&tok, "library/refs", a).await;
    let b_digest = sha256(b);
    let layer = |d: &str, n: usize| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n});
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [layer(&a_digest, a.len()), layer(&b_digest, b.len()), layer(&a_digest, a.len())],
    }))
    .unwrap();
    let r = t.put_manifest(&tok, "library/refs", "v1", "application/vnd.oci.image.manifest.v1+json", &manifest).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert!(v["errors"][0]["message"].as_str().unwrap().contains(&b_digest), "{v}");
    assert_eq!(t.get(Some(&tok), "/v2/library/refs/tags/list").await.status(), StatusCode::NOT_FOUND, "nothing was stored");

    t.push_blob(&tok, "library/refs", b).await;
    let r = t.put_manifest(&tok, "library/refs", "v1", "application/vnd.oci.image.manifest.v1+json", &manifest).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let image = sha256(&manifest);
    let r = t.get(Some(&tok), "/v2/library/refs/manifests/v1").await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), manifest.as_slice());

    // An index naming one child twice and one that is missing; then the child twice only.
    let child = |d: &str| json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": manifest.len()});
    let missing = sha256(b"no such manifest");
    let index = |children: Vec<Value>| {
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": children}))
            .unwrap()
    };
    let bad = index(vec![child(&image), child(&missing), child(&image)]);
    let r = t.put_manifest(&tok, "library/refs", "multi", "application/vnd.oci.image.index.v1+json", &bad).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "MANIFEST_UNKNOWN");
    assert!(v["errors"][0]["message"].as_str().unwrap().contains(&missing), "{v}");
    let (_, v, _) = get_json(&t, Some(ADMIN), "/projects/library/repositories/refs").await;
    assert_eq!(v["artifact_count"], 1, "the refused index changed nothing");

    // Untagged, the image is listed only until the index takes it in.
    let path = "/projects/library/repositories/refs/artifacts/v1/tags/v1";
    assert_eq!(api(&t, reqwest::Method::DELETE, Some(ADMIN), path, None).await.status(), StatusCode::OK);
    let good = index(vec![child(&image), child(&image)]);
    let r = t.put_manifest(&tok, "library/refs", "multi", "application/vnd.oci.image.index.v1+json", &good).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, v, h) = get_json(&t, Some(ADMIN), "/projects/library/repositories/refs/artifacts").await;
    assert_eq!(h["x-total-count"], "1", "{v}");
    assert_eq!(v[0]["digest"], sha256(&good));
    counts_agree(&t, "library", "refs").await;
    // Deleting the index lists the image again: it was referenced once, not twice.
    let r = t.http.delete(format!("{}/v2/library/refs/manifests/{}", t.url, sha256(&good))).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let (_, v, _) = get_json(&t, Some(ADMIN), "/projects/library/repositories/refs/artifacts").await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["digest"], image);
    counts_agree(&t, "library", "refs").await;
    t.shutdown().await;
}

on_both_backends! {
    references => repeated_and_missing_references;
    content => content_api;
    index_and_accessories => index_and_accessories;
    charts => charts;
    pull_accounting => pull_accounting;
    pull_accounting_batches => pull_accounting_batches;
}
