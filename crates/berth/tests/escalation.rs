//! No principal gains a permission it does not hold. Every kind of caller (the system admin,
//! each project role, system and project robots with the permissions that manage accounts,
//! limited and full personal access tokens) tries every account-changing operation: create,
//! change, refresh, disable and delete robots, the admin flag, passwords, profiles, users,
//! members and access tokens. After each operation, everything the caller controls (its own
//! credentials, an ordinary user whose password it knows, robots whose secrets it holds, and
//! every credential an operation handed it) may do nothing that all of it could not do
//! before. Each operation's outcome is also checked against the rules (`docs/api.md`).

mod common;

use berth::auth::LoginThrottle;
use berth::meta::{Audit, accounts_role as role};
use common::{ADMIN_PASSWORD, Db, TestApp};
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const USER_PW: &str = "User-Pass-1";
const PUPPET_PW: &str = "Puppet-Pass-1";
const VICTIM_PW: &str = "Victim-Secret-9";
const ATTACK_PW: &str = "Attack-Pass-1";

/// A name and a password (or a robot's secret, or an access token).
type Cred = (String, String);

/// Who tries: a label, how it is made, and the operations it is expected to succeed at.
struct Case {
    label: &'static str,
    kind: Kind,
    succeeds: &'static [&'static str],
}

enum Kind {
    Admin,
    User(&'static str),
    SystemRobot(fn() -> Value),
    ProjectRobot(fn() -> Value),
    Token { owner: &'static str, password: &'static str, limits: fn() -> Value },
}

/// Every operation, in the order each caller tries them.
const OPS: &[&str] = &[
    "robot.create.system_big",
    "robot.create.q_push",
    "robot.create.p_pull",
    "robot.update.poor",
    "robot.update.poorp",
    "robot.refresh.rich",
    "robot.refresh.richq",
    "robot.refresh.poorp",
    "user.sysadmin.puppet",
    "user.sysadmin.self",
    "user.password.victim",
    "user.profile.victim",
    "user.profile.self",
    "user.create",
    "member.add.q",
    "member.update.p",
    "token.create",
    "token.revoke",
    "robot.disable.rich",
    "robot.delete.richq",
    "robot.delete.poorp",
    "robot.delete.poor",
    "member.remove.p",
    "user.delete.doomed",
];

const USER_OPS: &[&str] = &["user.profile.self", "token.create", "token.revoke"];

fn access(pairs: &[(&str, &str)]) -> Value {
    pairs.iter().map(|(r, a)| json!({"resource": r, "action": a})).collect()
}

fn cases() -> Vec<Case> {
    vec![
        Case { label: "system admin", kind: Kind::Admin, succeeds: OPS },
        Case {
            label: "project admin",
            kind: Kind::User("pa"),
            succeeds: &[
                "robot.create.p_pull",
                "robot.update.poorp",
                "robot.refresh.poorp",
                "robot.delete.poorp",
                "user.profile.self",
                "member.update.p",
                "member.remove.p",
                "token.create",
                "token.revoke",
            ],
        },
        Case { label: "maintainer", kind: Kind::User("ma"), succeeds: USER_OPS },
        Case { label: "developer", kind: Kind::User("dev"), succeeds: USER_OPS },
        Case { label: "guest", kind: Kind::User("gu"), succeeds: USER_OPS },
        Case {
            label: "system robot with robot:create",
            kind: Kind::SystemRobot(|| json!([{"kind": "system", "namespace": "/", "access": access(&[("robot", "create")])}])),
            succeeds: &[],
        },
        Case {
            label: "system robot with robot:delete and pull everywhere",
            kind: Kind::SystemRobot(|| {
                json!([
                    {"kind": "system", "namespace": "/", "access": access(&[("robot", "delete")])},
                    {"kind": "project", "namespace": "*", "access": access(&[("repository", "pull")])}
                ])
            }),
            succeeds: &["robot.delete.poor"],
        },
        Case {
            label: "system robot with robot:create and pull in every project",
            kind: Kind::SystemRobot(
                || json!([{"kind": "project", "namespace": "*", "access": access(&[("robot", "create"), ("repository", "pull")])}]),
            ),
            succeeds: &["robot.create.p_pull", "robot.refresh.poorp"],
        },
        Case {
            label: "system robot with user:*",
            kind: Kind::SystemRobot(|| {
                json!([{"kind": "system", "namespace": "/", "access": access(&[
                    ("user", "create"), ("user", "read"), ("user", "update"), ("user", "list"), ("user", "delete")
                ])}])
            }),
            succeeds: &["user.profile.victim", "user.profile.self", "user.delete.doomed"],
        },
        Case {
            label: "project robot with robot:*, member:* and push",
            kind: Kind::ProjectRobot(|| {
                json!([{"kind": "project", "namespace": "p", "access": access(&[
                    ("robot", "create"), ("robot", "delete"), ("robot", "read"), ("robot", "list"),
                    ("member", "create"), ("member", "update"), ("member", "delete"), ("member", "list"), ("member", "read"),
                    ("repository", "push")
                ])}])
            }),
            succeeds: &["robot.create.p_pull", "robot.refresh.poorp", "robot.delete.poorp", "member.remove.p"],
        },
        Case {
            label: "project robot with push",
            kind: Kind::ProjectRobot(|| json!([{"kind": "project", "namespace": "p", "access": access(&[("repository", "push")])}])),
            succeeds: &[],
        },
        Case {
            label: "project admin's token limited to p and pull",
            kind: Kind::Token { owner: "pa", password: USER_PW, limits: || json!({"projects": ["p"], "actions": ["pull"]}) },
            succeeds: &[],
        },
        Case {
            label: "system admin's token limited to create, update and delete",
            kind: Kind::Token { owner: "admin", password: ADMIN_PASSWORD, limits: || json!({"actions": ["create", "update", "delete"]}) },
            succeeds: &["member.remove.p"],
        },
        Case {
            label: "developer's full token",
            kind: Kind::Token { owner: "dev", password: USER_PW, limits: || json!({}) },
            succeeds: &["user.profile.self", "token.revoke"],
        },
        Case {
            label: "system admin's full token",
            kind: Kind::Token { owner: "admin", password: ADMIN_PASSWORD, limits: || json!({}) },
            succeeds: &[
                "robot.create.system_big",
                "robot.create.q_push",
                "robot.create.p_pull",
                "robot.update.poor",
                "robot.update.poorp",
                "robot.refresh.rich",
                "robot.refresh.richq",
                "robot.refresh.poorp",
                "user.sysadmin.puppet",
                "user.sysadmin.self",
                "user.password.victim",
                "user.profile.victim",
                "user.profile.self",
                "user.create",
                "member.add.q",
                "member.update.p",
                "token.revoke",
                "robot.disable.rich",
                "robot.delete.richq",
                "robot.delete.poorp",
                "robot.delete.poor",
                "member.remove.p",
                "user.delete.doomed",
            ],
        },
    ]
}

/// Sends a request with Basic credentials; returns the status and the JSON body (Null if none).
async fn send(t: &TestApp, method: &str, path: &str, who: &Cred, body: Option<Value>) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = t.http.request(m, format!("{}{path}", t.url)).basic_auth(&who.0, Some(&who.1));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn admin() -> Cred {
    ("admin".into(), ADMIN_PASSWORD.into())
}

fn big_system_permissions() -> Value {
    json!([
        {"kind": "system", "namespace": "/", "access": access(&[("user", "update"), ("robot", "create")])},
        {"kind": "project", "namespace": "*", "access": access(&[("repository", "push"), ("repository", "pull"), ("repository", "delete")])}
    ])
}

/// What a set of credentials may do, each probe asked without changing anything (`registry`:
/// the repository actions the token service grants on p/app and q/app, the decision `/v2` makes).
const PROBES: &[&str] = &["registry", "sysadmin", "list users", "create big robot", "create project", "members of q"];

async fn probe(t: &TestApp, who: &Cred, what: &str) -> Vec<String> {
    let yes = |ok: bool| if ok { vec![what.to_string()] } else { vec![] };
    match what {
        "registry" => {
            let path =
                "/service/token?service=harbor-registry&scope=repository:p/app:pull,push,delete&scope=repository:q/app:pull,push,delete";
            let (s, v) = send(t, "GET", path, who, None).await;
            let Some(token) = v["token"].as_str().filter(|_| s == 200) else { return vec![] };
            let claims = t.app.auth.tokens.verify(token).unwrap();
            claims.access.iter().flat_map(|a| a.actions.iter().map(move |x| format!("{x} {}", a.name))).collect()
        }
        "sysadmin" => {
            let (s, v) = send(t, "GET", "/api/v2.0/users/current", who, None).await;
            yes(s == 200 && v["sysadmin_flag"] == true)
        }
        "list users" => yes(send(t, "GET", "/api/v2.0/users", who, None).await.0 == 200),
        // Allowed callers get past every permission check to the invalid duration (400).
        "create big robot" => {
            let body = json!({"name": "probe", "level": "system", "duration": 0, "permissions": big_system_permissions()});
            yes(send(t, "POST", "/api/v2.0/robots", who, Some(body)).await.0 == 400)
        }
        // Allowed callers get past every permission check to the invalid name (400).
        "create project" => yes(send(t, "POST", "/api/v2.0/projects", who, Some(json!({"project_name": "Not Valid"}))).await.0 == 400),
        "members of q" => yes(send(t, "GET", "/api/v2.0/projects/q/members", who, None).await.0 == 200),
        other => unreachable!("{other}"),
    }
}

async fn power(t: &TestApp, creds: &[Cred]) -> BTreeSet<String> {
    let checks = creds.iter().flat_map(|c| PROBES.iter().map(move |p| probe(t, c, p)));
    join_all(checks).await.into_iter().flatten().collect()
}

/// Creates a robot as the admin; returns its id and credentials.
async fn robot(t: &TestApp, name: &str, level: &str, permissions: Value) -> (i64, Cred) {
    let body = json!({"name": name, "level": level, "duration": -1, "permissions": permissions});
    let (s, v) = send(t, "POST", "/api/v2.0/robots", &admin(), Some(body)).await;
    assert_eq!(s, 201, "{name}: {v}");
    (v["id"].as_i64().unwrap(), (v["name"].as_str().unwrap().to_string(), v["secret"].as_str().unwrap().to_string()))
}

async fn token(t: &TestApp, owner: &Cred, name: &str, limits: Value) -> (i64, Cred) {
    let mut body = limits;
    body["name"] = json!(name);
    let (s, v) = send(t, "POST", "/api/berth/v1/users/current/tokens", owner, Some(body)).await;
    assert_eq!(s, 201, "{v}");
    (v["id"].as_i64().unwrap(), (owner.0.clone(), v["token"].as_str().unwrap().to_string()))
}

/// What one caller works on: its own ordinary user (`puppet`, guest of p), a user above it
/// (`victim`, admin of q) and one to delete, robots it holds the secrets of (`poor`: pull on
/// p, system; `poorp`: pull on p, project) and robots above it (`rich`, `richq`).
struct Targets {
    puppet: i64,
    puppet_member: i64,
    victim: i64,
    doomed: i64,
    poor: (i64, Cred),
    poorp: (i64, Cred),
    rich: i64,
    richq: i64,
}

/// The argon2 hashes of the puppet's and the victims' passwords (hashed once).
struct Hashes {
    puppet: String,
    victim: String,
}

async fn targets(t: &TestApp, i: usize, h: &Hashes) -> Targets {
    let meta = &t.app.meta;
    let a = Audit { operator: "admin".into(), resource: "setup".into(), resource_type: "test", operation: "create", ..Default::default() };
    let p = meta.project_by_name("p").await.unwrap().unwrap().id;
    let q = meta.project_by_name("q").await.unwrap().unwrap().id;
    let puppet = meta.create_user(&format!("puppet{i}"), &h.puppet, false, &a).await.unwrap();
    meta.set_member(p, puppet, role::GUEST, &a).await.unwrap();
    let victim = meta.create_user(&format!("victim{i}"), &h.victim, false, &a).await.unwrap();
    meta.set_member(q, victim, role::PROJECT_ADMIN, &a).await.unwrap();
    let doomed = meta.create_user(&format!("doomed{i}"), &h.victim, false, &a).await.unwrap();
    let (_, v) = send(t, "GET", &format!("/api/v2.0/projects/p/members?entityname=puppet{i}"), &admin(), None).await;
    let puppet_member = v[0]["id"].as_i64().unwrap();
    let pull_p = json!([{"kind": "project", "namespace": "p", "access": access(&[("repository", "pull")])}]);
    let poor = robot(t, &format!("poor{i}"), "system", pull_p.clone()).await;
    let poorp = robot(t, &format!("poorp{i}"), "project", pull_p).await;
    let rich = robot(t, &format!("rich{i}"), "system", big_system_permissions()).await.0;
    let q_push = json!([{"kind": "project", "namespace": "q", "access": access(&[("repository", "push"), ("repository", "delete")])}]);
    let richq = robot(t, &format!("richq{i}"), "project", q_push).await.0;
    Targets { puppet, puppet_member, victim, doomed, poor, poorp, rich, richq }
}

/// Runs one operation; returns its status and any credentials it handed out.
async fn operate(t: &TestApp, op: &str, i: usize, who: &Cred, me: Option<i64>, x: &Targets, spare: Option<i64>) -> (u16, Option<Cred>) {
    let robot_secret = |v: &Value, name: String| v["secret"].as_str().map(|s| (name, s.to_string()));
    let p_pull = json!([{"kind": "project", "namespace": "p", "access": access(&[("repository", "pull")])}]);
    let p_all = json!([{"kind": "project", "namespace": "p", "access": access(&[("repository", "pull"), ("repository", "push"), ("repository", "delete")])}]);
    let q_push = json!([{"kind": "project", "namespace": "q", "access": access(&[("repository", "push"), ("repository", "delete")])}]);
    let create =
        |name: String, level: &str, permissions: Value| json!({"name": name, "level": level, "duration": -1, "permissions": permissions});
    let self_id = me.unwrap_or(x.puppet);
    let (status, body, cred) = match op {
        "robot.create.system_big" | "robot.create.q_push" | "robot.create.p_pull" => {
            let (name, level, perms) = match op {
                "robot.create.system_big" => (format!("esc{i}a"), "system", big_system_permissions()),
                "robot.create.q_push" => (format!("esc{i}b"), "project", q_push),
                _ => (format!("esc{i}c"), "project", p_pull),
            };
            let (s, v) = send(t, "POST", "/api/v2.0/robots", who, Some(create(name, level, perms))).await;
            let c = v["name"].as_str().and_then(|n| robot_secret(&v, n.to_string()));
            (s, v, c)
        }
        "robot.update.poor" => {
            let body = create(format!("poor{i}"), "system", big_system_permissions());
            let (s, v) = send(t, "PUT", &format!("/api/v2.0/robots/{}", x.poor.0), who, Some(body)).await;
            (s, v, None)
        }
        "robot.update.poorp" => {
            let body = create(format!("poorp{i}"), "project", p_all);
            let (s, v) = send(t, "PUT", &format!("/api/v2.0/robots/{}", x.poorp.0), who, Some(body)).await;
            (s, v, None)
        }
        "robot.refresh.rich" | "robot.refresh.richq" | "robot.refresh.poorp" => {
            let (id, name) = match op {
                "robot.refresh.rich" => (x.rich, format!("robot$rich{i}")),
                "robot.refresh.richq" => (x.richq, format!("robot$q+richq{i}")),
                _ => (x.poorp.0, x.poorp.1.0.clone()),
            };
            let (s, v) = send(t, "PATCH", &format!("/api/v2.0/robots/{id}"), who, Some(json!({}))).await;
            let c = robot_secret(&v, name);
            (s, v, c)
        }
        "user.sysadmin.puppet" | "user.sysadmin.self" => {
            let id = if op == "user.sysadmin.self" { self_id } else { x.puppet };
            let (s, v) = send(t, "PUT", &format!("/api/v2.0/users/{id}/sysadmin"), who, Some(json!({"sysadmin_flag": true}))).await;
            (s, v, None)
        }
        "user.password.victim" => {
            let body = json!({"old_password": "", "new_password": ATTACK_PW});
            let (s, v) = send(t, "PUT", &format!("/api/v2.0/users/{}/password", x.victim), who, Some(body)).await;
            (s, v, Some((format!("victim{i}"), ATTACK_PW.to_string())))
        }
        "user.profile.victim" | "user.profile.self" => {
            let id = if op == "user.profile.self" { self_id } else { x.victim };
            let body = json!({"email": format!("{op}{i}@example.com"), "realname": "Changed", "comment": ""});
            let (s, v) = send(t, "PUT", &format!("/api/v2.0/users/{id}"), who, Some(body)).await;
            (s, v, None)
        }
        "user.create" => {
            let body =
                json!({"username": format!("new{i}"), "email": format!("new{i}@example.com"), "realname": "New", "password": ATTACK_PW});
            let (s, v) = send(t, "POST", "/api/v2.0/users", who, Some(body)).await;
            (s, v, Some((format!("new{i}"), ATTACK_PW.to_string())))
        }
        "member.add.q" => {
            let body = json!({"role_id": role::PROJECT_ADMIN, "member_user": {"user_id": x.puppet}});
            let (s, v) = send(t, "POST", "/api/v2.0/projects/q/members", who, Some(body)).await;
            (s, v, None)
        }
        "member.update.p" => {
            let path = format!("/api/v2.0/projects/p/members/{}", x.puppet_member);
            let (s, v) = send(t, "PUT", &path, who, Some(json!({"role_id": role::PROJECT_ADMIN}))).await;
            (s, v, None)
        }
        "member.remove.p" => {
            let (s, v) = send(t, "DELETE", &format!("/api/v2.0/projects/p/members/{}", x.puppet_member), who, None).await;
            (s, v, None)
        }
        "token.create" => {
            let (s, v) = send(t, "POST", "/api/berth/v1/users/current/tokens", who, Some(json!({"name": format!("esc{i}")}))).await;
            let c = v["token"].as_str().map(|s| (who.0.clone(), s.to_string()));
            (s, v, c)
        }
        "token.revoke" => {
            let id = spare.unwrap_or(i64::MAX);
            let (s, v) = send(t, "DELETE", &format!("/api/berth/v1/users/current/tokens/{id}"), who, None).await;
            (s, v, None)
        }
        "robot.disable.rich" => {
            let mut body = create(format!("rich{i}"), "system", big_system_permissions());
            body["disable"] = json!(true);
            let (s, v) = send(t, "PUT", &format!("/api/v2.0/robots/{}", x.rich), who, Some(body)).await;
            (s, v, None)
        }
        "robot.delete.richq" | "robot.delete.poorp" | "robot.delete.poor" => {
            let id = match op {
                "robot.delete.richq" => x.richq,
                "robot.delete.poorp" => x.poorp.0,
                _ => x.poor.0,
            };
            let (s, v) = send(t, "DELETE", &format!("/api/v2.0/robots/{id}"), who, None).await;
            (s, v, None)
        }
        "user.delete.doomed" => {
            let (s, v) = send(t, "DELETE", &format!("/api/v2.0/users/{}", x.doomed), who, None).await;
            (s, v, None)
        }
        other => unreachable!("{other}"),
    };
    assert!(status < 500, "{op}: {status} {body}");
    (status, if status < 300 { cred } else { None })
}

async fn user_id(t: &TestApp, name: &str) -> i64 {
    t.app.meta.user_by_name(name).await.unwrap().unwrap().id
}

async fn setup(t: &TestApp) {
    let meta = &t.app.meta;
    let a = Audit { operator: "admin".into(), resource: "setup".into(), resource_type: "test", operation: "create", ..Default::default() };
    let admin_id = meta.user_by_name("admin").await.unwrap().unwrap().id;
    let p = meta.create_project("p", admin_id, false, &a).await.unwrap();
    meta.create_project("q", admin_id, false, &a).await.unwrap();
    let hash = berth::auth::hash_password(USER_PW).await.unwrap();
    for (name, r) in [("pa", role::PROJECT_ADMIN), ("ma", role::MAINTAINER), ("dev", role::DEVELOPER), ("gu", role::GUEST)] {
        let id = meta.create_user(name, &hash, false, &a).await.unwrap();
        meta.set_member(p, id, r, &a).await.unwrap();
    }
    for repo in ["p/app", "q/app"] {
        let tok = t.admin_token(repo).await;
        t.push_image(&tok, repo, "v1", &[b"layer"]).await;
    }
}

async fn nobody_gains_power(db: Db) {
    let t = TestApp::start(db).await;
    // The probes try credentials that operations have just changed, hundreds of times from one
    // address: the login slow-down (tests/login_throttle.rs) would answer the next right ones
    // 401 and hide what each caller holds, so it is out of the way here.
    t.app.auth.set_login_throttle(LoginThrottle { max_failures: usize::MAX, address_burst: u32::MAX, ..LoginThrottle::default() });
    setup(&t).await;
    let everything = power(&t, &[admin()]).await;
    assert_eq!(everything.len(), PROBES.len() - 1 + 6, "the admin passes every probe: {everything:?}");
    let hashes = Hashes {
        puppet: berth::auth::hash_password(PUPPET_PW).await.unwrap(),
        victim: berth::auth::hash_password(VICTIM_PW).await.unwrap(),
    };
    let mut failures = Vec::new();
    for (i, case) in cases().into_iter().enumerate() {
        let x = targets(&t, i, &hashes).await;
        // The caller's credentials, its user (if any) and a spare token of that user to revoke.
        let (who, me, spare) = match &case.kind {
            Kind::Admin => (admin(), Some(user_id(&t, "admin").await), Some(token(&t, &admin(), &format!("spare{i}"), json!({})).await.0)),
            Kind::User(name) => {
                let c: Cred = (name.to_string(), USER_PW.into());
                let spare = token(&t, &c, &format!("spare{i}"), json!({})).await.0;
                (c, Some(user_id(&t, name).await), Some(spare))
            }
            Kind::SystemRobot(perms) => (robot(&t, &format!("caller{i}"), "system", perms()).await.1, None, None),
            Kind::ProjectRobot(perms) => (robot(&t, &format!("caller{i}"), "project", perms()).await.1, None, None),
            Kind::Token { owner, password, limits } => {
                let c: Cred = (owner.to_string(), password.to_string());
                let spare = token(&t, &c, &format!("spare{i}"), json!({})).await.0;
                (token(&t, &c, &format!("caller{i}"), limits()).await.1, Some(user_id(&t, owner).await), Some(spare))
            }
        };
        let mut controlled = vec![who.clone(), (format!("puppet{i}"), PUPPET_PW.into()), x.poor.1.clone(), x.poorp.1.clone()];
        let before = power(&t, &controlled).await;
        // A caller that may already do everything the probes ask cannot gain (and asking again
        // after each of its operations would only spend password hashes).
        let unbounded = before == everything;
        for op in OPS {
            let (status, cred) = operate(&t, op, i, &who, me, &x, spare).await;
            let expected = case.succeeds.contains(op);
            if (status < 300) != expected {
                failures.push(format!("{}: {op} answered {status}, expected {}", case.label, if expected { "success" } else { "refusal" }));
            }
            if let Some(c) = cred {
                controlled.retain(|(name, _)| *name != c.0 || c.0 == who.0);
                controlled.push(c);
            }
            if unbounded {
                continue;
            }
            let after = power(&t, &controlled).await;
            let gained: Vec<_> = after.difference(&before).collect();
            if !gained.is_empty() {
                failures.push(format!("{}: after {op} it can also {gained:?}", case.label));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    t.shutdown().await;
}

on_both_backends! {
    nobody_gains_power => nobody_gains_power;
}
