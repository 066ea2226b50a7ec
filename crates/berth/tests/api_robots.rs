//! Robot accounts through the Harbor API: create (secret shown once), log in
//! with `robot$` names, exactly the granted permissions (deny wins, push implies
//! pull for project robots), disable, refresh, subset rule for robots that
//! create robots, list and delete.

mod common;
mod contract;

use berth::meta::{Audit, accounts_role as role};
use common::{ADMIN_PASSWORD, Db, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Fails the test when a body does not match Harbor's contract for the operation.
fn conforms(method: &str, template: &str, status: u16, body: &Value) {
    if let Err(errors) = contract::validate_response(method, template, status, body) {
        panic!("{method} {template} {status} does not match Harbor's contract: {errors:?}\n{body}");
    }
}

async fn setup(t: &TestApp) -> i64 {
    let meta = &t.app.meta;
    let a = Audit { operator: "admin".into(), resource: "setup".into(), resource_type: "test", operation: "create", ..Default::default() };
    let admin = meta.user_by_name("admin").await.unwrap().unwrap().id;
    let team = meta.create_project("team", admin, false, &a).await.unwrap();
    meta.create_project("other", admin, false, &a).await.unwrap();
    for (name, r) in [("guest", role::GUEST), ("padmin", role::PROJECT_ADMIN)] {
        let hash = berth::auth::hash_password("Pass-word-1").await.unwrap();
        let id = meta.create_user(name, &hash, false, &a).await.unwrap();
        meta.set_member(team, id, r, &a).await.unwrap();
    }
    team
}

async fn post(t: &TestApp, who: (&str, &str), body: Value) -> reqwest::Response {
    t.http.post(format!("{}/api/v2.0/robots", t.url)).basic_auth(who.0, Some(who.1)).json(&body).send().await.unwrap()
}

fn project_robot(name: &str, project: &str, actions: &[&str]) -> Value {
    let access: Vec<Value> = actions.iter().map(|a| json!({"resource": "repository", "action": a})).collect();
    json!({"name": name, "level": "project", "duration": -1, "permissions": [{"kind": "project", "namespace": project, "access": access}]})
}

async fn granted(t: &TestApp, user: &str, secret: &str, scope: &str) -> Result<Vec<String>, StatusCode> {
    let r = t
        .http
        .get(format!("{}/service/token", t.url))
        .query(&[("service", "harbor-registry"), ("scope", scope)])
        .basic_auth(user, Some(secret))
        .send()
        .await
        .unwrap();
    if r.status() != StatusCode::OK {
        return Err(r.status());
    }
    let v: Value = r.json().await.unwrap();
    let claims = t.app.auth.tokens.verify(v["token"].as_str().unwrap()).unwrap();
    Ok(claims.access.first().map(|a| a.actions.clone()).unwrap_or_default())
}

async fn robots_end_to_end(db: Db) {
    let t = TestApp::start(db).await;
    let team = setup(&t).await;
    let admin = ("admin", ADMIN_PASSWORD);

    // Who may create project robots: project admins and system admins, not guests.
    assert_eq!(post(&t, ("guest", "Pass-word-1"), project_robot("g", "team", &["pull"])).await.status(), StatusCode::FORBIDDEN);
    let r = post(&t, ("padmin", "Pass-word-1"), project_robot("ci", "team", &["push"])).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/api/v2.0/robots/"));
    let v: Value = r.json().await.unwrap();
    conforms("POST", "/robots", 201, &v);
    assert_eq!(v["name"], "robot$team+ci");
    assert_eq!(v["expires_at"], -1);
    let secret = v["secret"].as_str().unwrap().to_string();
    let id = v["id"].as_i64().unwrap();
    assert_eq!(post(&t, admin, project_robot("ci", "team", &["push"])).await.status(), StatusCode::CONFLICT);
    assert_eq!(post(&t, admin, project_robot("Bad+Name", "team", &["push"])).await.status(), StatusCode::BAD_REQUEST);
    let bad = json!({"name": "x", "level": "project", "permissions": [{"kind": "project", "namespace": "team", "access": [{"resource": "configuration", "action": "update"}]}]});
    assert_eq!(post(&t, admin, bad).await.status(), StatusCode::BAD_REQUEST);

    // The robot logs in and gets exactly its grants; push implies pull for project robots.
    assert_eq!(granted(&t, "robot$team+ci", &secret, "repository:team/app:pull,push,delete").await.unwrap(), vec!["pull", "push"]);
    assert_eq!(granted(&t, "robot$team+ci", &secret, "repository:other/app:pull").await.unwrap(), Vec::<String>::new());
    assert_eq!(granted(&t, "robot$team+ci", "wrong-secret", "repository:team/app:pull").await, Err(StatusCode::UNAUTHORIZED));
    let tok = t.token(Some(("robot$team+ci", &secret)), &["repository:team/app:pull,push"]).await;
    t.push_image(&tok, "team/app", "v1", &[b"robot layer"]).await;

    // Listing shows the robot without its secret.
    let r = t
        .http
        .get(format!("{}/api/v2.0/robots?q=Level=project,ProjectID={team}", t.url))
        .basic_auth(admin.0, Some(admin.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-total-count"], "1");
    let list: Value = r.json().await.unwrap();
    conforms("GET", "/robots", 200, &list);
    assert_eq!(list[0]["name"], "robot$team+ci");
    let one: Value = t
        .http
        .get(format!("{}/api/v2.0/robots/{id}", t.url))
        .basic_auth(admin.0, Some(admin.1))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    conforms("GET", "/robots/{robot_id}", 200, &one);
    assert_eq!(one, list[0]);
    assert!(list[0].get("secret").is_none());
    assert_eq!(list[0]["permissions"][0]["namespace"], "team");

    // Disable, then enable.
    let mut body = project_robot("ci", "team", &["push"]);
    body["disable"] = json!(true);
    let r = t.http.put(format!("{}/api/v2.0/robots/{id}", t.url)).basic_auth(admin.0, Some(admin.1)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(granted(&t, "robot$team+ci", &secret, "repository:team/app:pull").await, Err(StatusCode::UNAUTHORIZED));
    body["disable"] = json!(false);
    t.http.put(format!("{}/api/v2.0/robots/{id}", t.url)).basic_auth(admin.0, Some(admin.1)).json(&body).send().await.unwrap();
    assert!(granted(&t, "robot$team+ci", &secret, "repository:team/app:pull").await.is_ok());

    // Refresh: the old secret stops working, the new one works.
    let r =
        t.http.patch(format!("{}/api/v2.0/robots/{id}", t.url)).basic_auth(admin.0, Some(admin.1)).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let sec: Value = r.json().await.unwrap();
    conforms("PATCH", "/robots/{robot_id}", 200, &sec);
    let fresh = sec["secret"].as_str().unwrap().to_string();
    assert_ne!(fresh, secret);
    assert_eq!(granted(&t, "robot$team+ci", &secret, "repository:team/app:pull").await, Err(StatusCode::UNAUTHORIZED));
    assert!(granted(&t, "robot$team+ci", &fresh, "repository:team/app:pull").await.is_ok());

    // A system robot over every project, with a denial and the catalog.
    let sys = json!({"name": "fleet", "level": "system", "duration": 30, "permissions": [
        {"kind": "system", "namespace": "/", "access": [{"resource": "catalog", "action": "read"}, {"resource": "robot", "action": "create"}]},
        {"kind": "project", "namespace": "*", "access": [{"resource": "repository", "action": "pull"}, {"resource": "repository", "action": "push"}]},
        {"kind": "project", "namespace": "other", "access": [{"resource": "repository", "action": "push", "effect": "deny"}]}
    ]});
    assert_eq!(post(&t, ("padmin", "Pass-word-1"), sys.clone()).await.status(), StatusCode::FORBIDDEN, "system robots need a system admin");
    let v: Value = post(&t, admin, sys).await.json().await.unwrap();
    let fleet = v["secret"].as_str().unwrap().to_string();
    assert_eq!(v["name"], "robot$fleet");
    assert_eq!(granted(&t, "robot$fleet", &fleet, "repository:team/x:pull,push").await.unwrap(), vec!["pull", "push"]);
    assert_eq!(granted(&t, "robot$fleet", &fleet, "repository:other/x:pull,push").await.unwrap(), vec!["pull"], "deny wins");
    let cat = t.token(Some(("robot$fleet", &fleet)), &["registry:catalog:*"]).await;
    assert_eq!(t.get(Some(&cat), "/v2/_catalog").await.status(), StatusCode::OK);

    // A robot creating robots: a subset of its own grants only.
    let sub = json!({"name": "child", "level": "system", "permissions": [{"kind": "project", "namespace": "team", "access": [{"resource": "repository", "action": "pull"}]}]});
    assert_eq!(post(&t, ("robot$fleet", &fleet), sub).await.status(), StatusCode::CREATED);
    let sup = json!({"name": "child2", "level": "system", "permissions": [{"kind": "project", "namespace": "team", "access": [{"resource": "repository", "action": "delete"}]}]});
    assert_eq!(post(&t, ("robot$fleet", &fleet), sup).await.status(), StatusCode::FORBIDDEN);

    // Delete.
    let r = t.http.delete(format!("{}/api/v2.0/robots/{id}", t.url)).basic_auth(admin.0, Some(admin.1)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = t.http.get(format!("{}/api/v2.0/robots/{id}", t.url)).basic_auth(admin.0, Some(admin.1)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(granted(&t, "robot$team+ci", &fresh, "repository:team/app:pull").await, Err(StatusCode::UNAUTHORIZED));
    // The catalogue of grantable permissions.
    let r = t.http.get(format!("{}/api/v2.0/permissions", t.url)).basic_auth(admin.0, Some(admin.1)).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    conforms("GET", "/permissions", 200, &v);
    assert!(v["system"].as_array().unwrap().len() > 50 && v["project"].as_array().unwrap().len() > 50);
    t.shutdown().await;
}

/// A robot that manages robots and members hands on neither a longer life than its own nor the
/// project admin role (which holds the project itself, beyond anything a robot may be granted).
async fn robots_hand_on_no_more_life_or_ownership(db: Db) {
    let t = TestApp::start(db).await;
    setup(&t).await;
    let admin = ("admin", ADMIN_PASSWORD);
    let maker = json!({"name": "maker", "level": "system", "duration": 10, "permissions": [
        {"kind": "system", "namespace": "/", "access": [{"resource": "robot", "action": "create"}]},
        {"kind": "project", "namespace": "*", "access": [{"resource": "repository", "action": "pull"}]}]});
    let r = post(&t, admin, maker).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let maker = ("robot$maker", v["secret"].as_str().unwrap().to_string());
    let child = |name: &str, duration: i64| {
        json!({"name": name, "level": "system", "duration": duration, "permissions": [
            {"kind": "project", "namespace": "*", "access": [{"resource": "repository", "action": "pull"}]}]})
    };
    let as_maker = (maker.0, maker.1.as_str());
    for (duration, want) in [(-1, StatusCode::FORBIDDEN), (20, StatusCode::FORBIDDEN), (5, StatusCode::CREATED)] {
        assert_eq!(post(&t, as_maker, child(&format!("c{}", duration + 1), duration)).await.status(), want, "duration {duration}");
    }
    let id = t.app.meta.robot_by_name("robot$c6").await.unwrap().unwrap().id;
    let put =
        |body: Value| t.http.put(format!("{}/api/v2.0/robots/{id}", t.url)).basic_auth(as_maker.0, Some(as_maker.1)).json(&body).send();
    assert_eq!(put(child("c6", -1)).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(put(child("c6", 8)).await.unwrap().status(), StatusCode::OK);
    assert_eq!(t.app.meta.robot(id).await.unwrap().unwrap().duration, 8);

    // A project robot holding every permission a robot may hold in the project still cannot
    // make anyone project admin; it may give lesser roles.
    let access: Vec<Value> = berth::domain::robots::PROJECT_CATALOGUE
        .iter()
        .flat_map(|(r, acts)| acts.iter().map(move |a| json!({"resource": r, "action": a})))
        .collect();
    let boss = json!({"name": "boss", "level": "project", "duration": -1,
        "permissions": [{"kind": "project", "namespace": "team", "access": access}]});
    let r = post(&t, admin, boss).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let secret = r.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_string();
    let hash = berth::auth::hash_password("Pass-word-1").await.unwrap();
    let a = Audit { operator: "admin".into(), resource: "setup".into(), resource_type: "test", operation: "create", ..Default::default() };
    t.app.meta.create_user("newbie", &hash, false, &a).await.unwrap();
    let add = |role_id: i64| {
        t.http
            .post(format!("{}/api/v2.0/projects/team/members", t.url))
            .basic_auth("robot$team+boss", Some(secret.as_str()))
            .json(&json!({"role_id": role_id, "member_user": {"username": "newbie"}}))
            .send()
    };
    assert_eq!(add(role::PROJECT_ADMIN).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(add(role::DEVELOPER).await.unwrap().status(), StatusCode::CREATED);
}

on_both_backends! {
    robots => robots_end_to_end;
    robots_hand_on_no_more => robots_hand_on_no_more_life_or_ownership;
}
