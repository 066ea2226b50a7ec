//! Harbor's project role matrix (RBAC.md §2), walked row by row through real HTTP.
//!
//! The matrix and the robot catalogue are written here as RBAC.md prints them, not taken
//! from `auth::policy`, so a wrong policy row fails this test. For every row that has an
//! operation, every principal — the five roles, a non-member, anonymous, a system admin, a
//! project robot holding exactly that permission (and what the operation hands on: the role
//! a member is given, the robot deleted) and one without it — calls it on a private
//! and on a public project, and the exact status is asserted:
//! - the permission is held: the operation's success status;
//! - not held, and the caller may neither read the project nor do the operation: 404, as for
//!   a project that does not exist;
//! - not held otherwise: 401 when anonymous, 403 when logged in.
//!
//! Repository pull, push and delete are also checked on `/v2` (Basic credentials and bearer
//! tokens) and on `/service/token` (the granted actions in the token's `access` claim).
//!
//! Rows whose operations Berth does not serve yet are kept with their requests and listed as
//! pending; each must still answer `501 NOT_IMPLEMENTED`, so once one is served the test fails
//! until its row is switched on and checked like the others, with its setup written
//! (`Setup::Later` until then). A call that deletes or retags acts on things made for it (a
//! fresh image, tag, repository, label or project), so the fixture image `{p}/img:v1` that other
//! rows and the `/v2` checks read stays as pushed (it only gains tags and labels).

mod common;

use berth::meta::{Audit, accounts_role as role};
use common::{ADMIN_PASSWORD, Db, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

/// RBAC.md §2: resource, action, projectAdmin, maintainer, developer, guest, limitedGuest, public-project grant.
const MATRIX: &str = r"
| `(self)` | read | ✔ | ✔ | ✔ | ✔ | ✔ | ✔ |
| `(self)` | update | ✔ | · | · | · | · | · |
| `(self)` | delete | ✔ | · | · | · | · | · |
| `member` | create | ✔ | · | · | · | · | · |
| `member` | read | ✔ | ✔ | ✔ | ✔ | · | · |
| `member` | update | ✔ | · | · | · | · | · |
| `member` | delete | ✔ | · | · | · | · | · |
| `member` | list | ✔ | ✔ | ✔ | ✔ | · | · |
| `metadata` | create | ✔ | · | · | · | · | · |
| `metadata` | read | ✔ | ✔ | · | · | · | · |
| `metadata` | update | ✔ | · | · | · | · | · |
| `metadata` | delete | ✔ | · | · | · | · | · |
| `log` | list | ✔ | · | · | · | · | · |
| `configuration` | read | ✔ | ✔ | ✔ | ✔ | ✔ | · |
| `configuration` | update | ✔ | · | · | · | · | · |
| `quota` | read | ✔ | ✔ | ✔ | ✔ | ✔ | · |
| `label` | create | ✔ | ✔ | · | · | · | · |
| `label` | read | ✔ | ✔ | ✔ | ✔ | · | ✔ |
| `label` | update | ✔ | ✔ | · | · | · | · |
| `label` | delete | ✔ | ✔ | · | · | · | · |
| `label` | list | ✔ | ✔ | ✔ | ✔ | · | ✔ |
| `repository` | create | ✔ | ✔ | ✔ | · | · | · |
| `repository` | read | ✔ | ✔ | ✔ | ✔ | ✔ | · |
| `repository` | update | ✔ | ✔ | ✔ | · | · | · |
| `repository` | delete | ✔ | ✔ | · | · | · | · |
| `repository` | list | ✔ | ✔ | ✔ | ✔ | ✔ | ✔ |
| `repository` | pull | ✔ | ✔ | ✔ | ✔ | ✔ | ✔ |
| `repository` | push | ✔ | ✔ | ✔ | · | · | · |
| `artifact` | create | ✔ | ✔ | ✔ | · | · | · |
| `artifact` | read | ✔ | ✔ | ✔ | ✔ | ✔ | ✔ |
| `artifact` | delete | ✔ | ✔ | · | · | · | · |
| `artifact` | list | ✔ | ✔ | ✔ | ✔ | ✔ | ✔ |
| `tag` | create | ✔ | ✔ | ✔ | · | · | · |
| `tag` | delete | ✔ | ✔ | · | · | · | · |
| `tag` | list | ✔ | ✔ | ✔ | ✔ | ✔ | ✔ |
| `accessory` | list | ✔ | ✔ | ✔ | ✔ | ✔ | ✔ |
| `artifact-addition` | read | ✔ | ✔ | ✔ | ✔ | ✔ | ✔ |
| `artifact-label` | create | ✔ | ✔ | ✔ | · | · | · |
| `artifact-label` | delete | ✔ | ✔ | ✔ | · | · | · |
| `scan` | create | ✔ | ✔ | · | · | · | · |
| `scan` | read | ✔ | ✔ | ✔ | ✔ | ✔ | ✔ |
| `scan` | stop | ✔ | ✔ | · | · | · | · |
| `sbom` | create | ✔ | ✔ | · | · | · | · |
| `sbom` | read | ✔ | ✔ | ✔ | ✔ | ✔ | · |
| `sbom` | stop | ✔ | ✔ | · | · | · | · |
| `scanner` | create | ✔ | · | · | · | · | · |
| `scanner` | read | ✔ | ✔ | ✔ | ✔ | ✔ | ✔ |
| `export-cve` | create | ✔ | ✔ | ✔ | · | · | · |
| `export-cve` | read | ✔ | ✔ | ✔ | · | · | · |
| `export-cve` | list | ✔ | ✔ | ✔ | · | · | · |
| `tag-retention` | create | ✔ | ✔ | ✔ | · | · | · |
| `tag-retention` | read | ✔ | ✔ | ✔ | · | · | · |
| `tag-retention` | update | ✔ | ✔ | ✔ | · | · | · |
| `tag-retention` | delete | ✔ | ✔ | ✔ | · | · | · |
| `tag-retention` | list | ✔ | ✔ | ✔ | · | · | · |
| `tag-retention` | operate | ✔ | ✔ | ✔ | · | · | · |
| `immutable-tag` | create | ✔ | ✔ | · | · | · | · |
| `immutable-tag` | update | ✔ | ✔ | · | · | · | · |
| `immutable-tag` | delete | ✔ | ✔ | · | · | · | · |
| `immutable-tag` | list | ✔ | ✔ | · | · | · | · |
| `robot` | create | ✔ | · | · | · | · | · |
| `robot` | read | ✔ | ✔ | ✔ | ✔ | · | · |
| `robot` | update | ✔ | · | · | · | · | · |
| `robot` | delete | ✔ | · | · | · | · | · |
| `robot` | list | ✔ | ✔ | ✔ | ✔ | · | · |
| `notification-policy` | create | ✔ | · | · | · | · | · |
| `notification-policy` | read | ✔ | ✔ | · | · | · | · |
| `notification-policy` | update | ✔ | · | · | · | · | · |
| `notification-policy` | delete | ✔ | · | · | · | · | · |
| `notification-policy` | list | ✔ | ✔ | · | · | · | · |
| `preheat-policy` | create | ✔ | · | · | · | · | · |
| `preheat-policy` | read | ✔ | · | · | · | · | · |
| `preheat-policy` | update | ✔ | · | · | · | · | · |
| `preheat-policy` | delete | ✔ | · | · | · | · | · |
| `preheat-policy` | list | ✔ | · | · | · | · | · |
";

/// RBAC.md §4.3: what a project robot may be granted. `project` there is not the project
/// itself (`(self)`): Harbor scopes it as `/project/<id>/project`.
const ROBOT_CATALOGUE: &str = r"
| `log` | list |
| `project` | read, delete, update |
| `metadata` | read, create, delete, list, update |
| `repository` | read, update, delete, list, pull, push |
| `artifact` | read, create, list, delete |
| `scan` | create, read, stop |
| `sbom` | create, stop, read |
| `tag` | create, list, delete |
| `accessory` | list |
| `artifact-addition` | read |
| `artifact-label` | create, delete |
| `scanner` | create, read |
| `preheat-policy` | read, create, delete, list, update |
| `immutable-tag` | create, delete, list, update |
| `notification-policy` | read, create, delete, list, update |
| `tag-retention` | read, create, delete, list, update |
| `label` | read, create, delete, list, update |
| `quota` | read |
| `robot` ⁺ | create, read, list, delete |
| `export-cve` ⁺ | create, read |
| `member` ⁺ | create, read, update, list, delete |
";

fn cells(line: &str) -> Vec<String> {
    line.trim().trim_matches('|').split('|').map(|c| c.trim().trim_end_matches('⁺').trim().trim_matches('`').to_string()).collect()
}

/// The matrix row of (resource, action): the five role columns and the public grant.
fn matrix_row(resource: &str, action: &str) -> [bool; 6] {
    let resource = if resource.is_empty() { "(self)" } else { resource };
    for line in MATRIX.lines().filter(|l| l.starts_with('|')) {
        let c = cells(line);
        if c[0] == resource && c[1] == action {
            let mut out = [false; 6];
            for (i, v) in c[2..8].iter().enumerate() {
                out[i] = match v.as_str() {
                    "✔" => true,
                    "·" => false,
                    other => panic!("bad cell {other:?} in {line}"),
                };
            }
            return out;
        }
    }
    panic!("({resource}, {action}) is not a row of RBAC.md's matrix")
}

fn matrix_rows() -> Vec<(String, String)> {
    MATRIX
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            let c = cells(l);
            (if c[0] == "(self)" { String::new() } else { c[0].clone() }, c[1].clone())
        })
        .collect()
}

/// The permissions of a role, by RBAC.md, that a project robot can be granted.
fn role_grants(role_id: i64) -> Vec<(String, String)> {
    let column = match role_id {
        role::PROJECT_ADMIN => 0,
        role::MAINTAINER => 1,
        role::DEVELOPER => 2,
        role::GUEST => 3,
        _ => 4,
    };
    matrix_rows().into_iter().filter(|(r, a)| matrix_row(r, a)[column] && robot_grantable(r, a)).collect()
}

/// Whether a project robot can be granted (resource, action) at all.
fn robot_grantable(resource: &str, action: &str) -> bool {
    ROBOT_CATALOGUE.lines().filter(|l| l.starts_with('|')).any(|l| {
        let c = cells(l);
        c[0] == resource && c[1].split(',').any(|a| a.trim() == action)
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    ProjectAdmin,
    Maintainer,
    Developer,
    Guest,
    LimitedGuest,
    NonMember,
    Anonymous,
    SysAdmin,
    /// A project robot holding exactly the row's permission.
    RobotWith,
    /// A project robot of the same project holding another permission.
    RobotWithout,
}

const EVERYONE: [Who; 10] = [
    Who::ProjectAdmin,
    Who::Maintainer,
    Who::Developer,
    Who::Guest,
    Who::LimitedGuest,
    Who::NonMember,
    Who::Anonymous,
    Who::SysAdmin,
    Who::RobotWith,
    Who::RobotWithout,
];

const PASSWORD: &str = "Rbac-Pass-1";

impl Who {
    fn column(self) -> Option<usize> {
        match self {
            Who::ProjectAdmin => Some(0),
            Who::Maintainer => Some(1),
            Who::Developer => Some(2),
            Who::Guest => Some(3),
            Who::LimitedGuest => Some(4),
            _ => None,
        }
    }
    /// The user behind a human principal (the role users are members of both projects).
    fn user(self) -> Option<&'static str> {
        match self {
            Who::ProjectAdmin => Some("padmin"),
            Who::Maintainer => Some("maint"),
            Who::Developer => Some("dev"),
            Who::Guest => Some("guest"),
            Who::LimitedGuest => Some("lguest"),
            Who::NonMember => Some("outsider"),
            Who::SysAdmin => Some("admin"),
            _ => None,
        }
    }
}

/// Whether `who` holds (resource, action) in a project, by RBAC.md.
fn holds(who: Who, resource: &str, action: &str, public: bool) -> bool {
    let row = matrix_row(resource, action);
    let public_grant = public && row[5];
    match who {
        Who::SysAdmin => true,
        Who::RobotWith => robot_grantable(resource, action) || public_grant,
        w => w.column().is_some_and(|c| row[c]) || public_grant,
    }
}

/// Whether `who` knows the project exists: it may read it, or do the operation.
fn sees(who: Who, resource: &str, action: &str, public: bool) -> bool {
    public || who.column().is_some() || who == Who::SysAdmin || holds(who, resource, action, public)
}

/// How an operation refuses a caller without the permission.
#[derive(Clone, Copy, Debug)]
enum Deny {
    /// Project-scoped: 404 when the caller does not see the project, else 401/403.
    Project,
    /// 401 when anonymous, else 403, wherever the project is (robot creation).
    Login,
    /// A project's robot by id: 401 when anonymous; 404 when the caller may neither read the
    /// project's robots nor do the operation; else 403.
    RobotById,
    /// A project's robot list: 401 when anonymous; 404 when the caller does not see the project; else 403.
    RobotList,
    /// Always 404 (`HEAD /projects`: the project is not there for the caller).
    Missing,
}

/// State a request needs before each call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setup {
    Plain,
    /// A new project with the same members, for operations that remove it.
    FreshProject,
    /// The spare user is a member ({spare_mid}).
    SpareMember,
    /// The spare user is not a member.
    NoSpareMember,
    /// Metadata key `reuse_sys_cve_allowlist` is present / absent.
    MetadataKey,
    NoMetadataKey,
    /// A fresh robot of the project to act on ({robot_id}).
    TargetRobot,
    /// A fresh image tagged `t{n}` in `{p}/img` ({fresh_digest}).
    FreshImage,
    /// A fresh repository `{p}/fresh{n}` holding one image.
    FreshRepo,
    /// A fresh label of the project ({label_id}).
    FreshLabel,
    /// A fresh label of the project put on `{p}/img:v1` ({label_id}).
    AttachedLabel,
    /// Scans, retention and the rest are set up when their operations are served.
    Later,
}

struct Request {
    method: &'static str,
    /// With `{p}` (project name), `{pid}` (project id), `{mid}` (the guest's member id),
    /// `{spare_mid}`, `{robot_id}`, `{n}` (a number unique to the call).
    path: &'static str,
    body: Option<&'static str>,
    ok: u16,
    deny: Deny,
    setup: Setup,
    pending: bool,
}

const fn live(method: &'static str, path: &'static str, body: Option<&'static str>, ok: u16, deny: Deny, setup: Setup) -> Request {
    Request { method, path, body, ok, deny, setup, pending: false }
}

/// An operation Berth does not serve yet; it must answer 501 NOT_IMPLEMENTED until its row is switched on.
const fn pending(method: &'static str, path: &'static str, body: Option<&'static str>, ok: u16) -> Request {
    Request { method, path, body, ok, deny: Deny::Project, setup: Setup::Later, pending: true }
}

const ART: &str = "/api/v2.0/projects/{p}/repositories/img/artifacts/v1";

/// The operations of each matrix row. A row with no operation in Harbor's API has none.
fn operations(resource: &str, action: &str) -> Vec<Request> {
    use Deny::*;
    use Setup::*;
    let robot_body = Some(
        r#"{"name":"made{n}","level":"project","duration":-1,"permissions":[{"kind":"project","namespace":"{p}","access":[{"resource":"robot","action":"create"}]}]}"#,
    );
    match (resource, action) {
        ("", "read") => vec![
            live("GET", "/api/v2.0/projects/{pid}", None, 200, Project, Plain),
            live("GET", "/api/v2.0/projects/{pid}/summary", None, 200, Project, Plain),
            live("HEAD", "/api/v2.0/projects?project_name={p}", None, 200, Missing, Plain),
        ],
        ("", "update") => vec![live("PUT", "/api/v2.0/projects/{pid}", Some("{}"), 200, Project, Plain)],
        ("", "delete") => vec![
            live("GET", "/api/v2.0/projects/{pid}/_deletable", None, 200, Project, Plain),
            live("DELETE", "/api/v2.0/projects/{pid}", None, 200, Project, FreshProject),
        ],
        ("member", "create") => vec![live(
            "POST",
            "/api/v2.0/projects/{pid}/members",
            Some(r#"{"role_id":3,"member_user":{"username":"spare"}}"#),
            201,
            Project,
            NoSpareMember,
        )],
        ("member", "read") => vec![live("GET", "/api/v2.0/projects/{pid}/members/{mid}", None, 200, Project, Plain)],
        ("member", "update") => {
            vec![live("PUT", "/api/v2.0/projects/{pid}/members/{spare_mid}", Some(r#"{"role_id":2}"#), 200, Project, SpareMember)]
        }
        ("member", "delete") => vec![live("DELETE", "/api/v2.0/projects/{pid}/members/{spare_mid}", None, 200, Project, SpareMember)],
        ("member", "list") => vec![live("GET", "/api/v2.0/projects/{pid}/members", None, 200, Project, Plain)],
        ("metadata", "create") => vec![live(
            "POST",
            "/api/v2.0/projects/{pid}/metadatas/",
            Some(r#"{"reuse_sys_cve_allowlist":"true"}"#),
            200,
            Project,
            NoMetadataKey,
        )],
        ("metadata", "read") => vec![
            live("GET", "/api/v2.0/projects/{pid}/metadatas/", None, 200, Project, Plain),
            live("GET", "/api/v2.0/projects/{pid}/metadatas/public", None, 200, Project, Plain),
        ],
        ("metadata", "update") => vec![live(
            "PUT",
            "/api/v2.0/projects/{pid}/metadatas/reuse_sys_cve_allowlist",
            Some(r#"{"reuse_sys_cve_allowlist":"false"}"#),
            200,
            Project,
            MetadataKey,
        )],
        ("metadata", "delete") => {
            vec![live("DELETE", "/api/v2.0/projects/{pid}/metadatas/reuse_sys_cve_allowlist", None, 200, Project, MetadataKey)]
        }
        ("log", "list") => vec![
            live("GET", "/api/v2.0/projects/{p}/logs", None, 200, Project, Plain),
            live("GET", "/api/v2.0/projects/{p}/auditlog-exts", None, 200, Project, Plain),
        ],
        ("configuration", _) => vec![],
        ("quota", "read") => vec![pending("GET", "/api/v2.0/quotas?reference=project&reference_id={pid}", None, 200)],
        ("label", "create") => {
            vec![live("POST", "/api/v2.0/labels", Some(r#"{"name":"l{n}","scope":"p","project_id":{pid}}"#), 201, Project, Plain)]
        }
        ("label", "read") => vec![live("GET", "/api/v2.0/labels/{label_id}", None, 200, Project, FreshLabel)],
        ("label", "update") => {
            vec![live("PUT", "/api/v2.0/labels/{label_id}", Some(r#"{"name":"u{n}","description":"x"}"#), 200, Project, FreshLabel)]
        }
        ("label", "delete") => vec![live("DELETE", "/api/v2.0/labels/{label_id}", None, 200, Project, FreshLabel)],
        ("label", "list") => vec![live("GET", "/api/v2.0/labels?scope=p&project_id={pid}", None, 200, Project, Plain)],
        ("repository", "create") => {
            vec![live("POST", "/api/berth/v1/projects/{p}/repositories", Some(r#"{"name":"made{n}"}"#), 201, Project, Plain)]
        }
        ("repository", "read") => vec![live("GET", "/api/v2.0/projects/{p}/repositories/img", None, 200, Project, Plain)],
        ("repository", "update") => {
            vec![live("PUT", "/api/v2.0/projects/{p}/repositories/img", Some(r#"{"description":"x"}"#), 200, Project, Plain)]
        }
        ("repository", "delete") => vec![live("DELETE", "/api/v2.0/projects/{p}/repositories/fresh{n}", None, 200, Project, FreshRepo)],
        ("repository", "list") => vec![live("GET", "/api/v2.0/projects/{p}/repositories", None, 200, Project, Plain)],
        // Served on /v2 and /service/token, checked by `walk_registry` (delete is also checked on /v2 there).
        ("repository", "pull" | "push") => vec![],
        ("artifact", "create") => {
            // The source is the public project's image, which every caller may pull, so only the
            // target's `artifact:create` decides (a robot holding only that may not pull a private source).
            vec![live("POST", "/api/v2.0/projects/{p}/repositories/copy{n}/artifacts?from=rbac-public/img:v1", None, 201, Project, Plain)]
        }
        ("artifact", "read") => vec![live("GET", ART, None, 200, Project, Plain)],
        ("artifact", "delete") => {
            vec![live("DELETE", "/api/v2.0/projects/{p}/repositories/img/artifacts/{fresh_digest}", None, 200, Project, FreshImage)]
        }
        ("artifact", "list") => vec![
            live("GET", "/api/v2.0/projects/{p}/repositories/img/artifacts", None, 200, Project, Plain),
            live("GET", "/api/v2.0/projects/{pid}/artifacts", None, 200, Project, Plain),
        ],
        ("tag", "create") => {
            vec![live("POST", "/api/v2.0/projects/{p}/repositories/img/artifacts/v1/tags", Some(r#"{"name":"t{n}"}"#), 201, Project, Plain)]
        }
        ("tag", "delete") => {
            vec![live("DELETE", "/api/v2.0/projects/{p}/repositories/img/artifacts/t{n}/tags/t{n}", None, 200, Project, FreshImage)]
        }
        ("tag", "list") => vec![live("GET", "/api/v2.0/projects/{p}/repositories/img/artifacts/v1/tags", None, 200, Project, Plain)],
        ("accessory", "list") => {
            vec![live("GET", "/api/v2.0/projects/{p}/repositories/img/artifacts/v1/accessories", None, 200, Project, Plain)]
        }
        ("artifact-addition", "read") => {
            vec![live("GET", "/api/v2.0/projects/{p}/repositories/img/artifacts/v1/additions/build_history", None, 200, Project, Plain)]
        }
        ("artifact-label", "create") => {
            vec![live(
                "POST",
                "/api/v2.0/projects/{p}/repositories/img/artifacts/v1/labels",
                Some(r#"{"id":{label_id}}"#),
                200,
                Project,
                FreshLabel,
            )]
        }
        ("artifact-label", "delete") => {
            vec![live(
                "DELETE",
                "/api/v2.0/projects/{p}/repositories/img/artifacts/v1/labels/{label_id}",
                None,
                200,
                Project,
                AttachedLabel,
            )]
        }
        ("scan", "create") => vec![pending("POST", "/api/v2.0/projects/{p}/repositories/img/artifacts/v1/scan", None, 202)],
        ("scan", "read") => vec![pending("GET", "/api/v2.0/projects/{p}/repositories/img/artifacts/v1/scan/1/log", None, 200)],
        ("scan", "stop") => vec![pending("POST", "/api/v2.0/projects/{p}/repositories/img/artifacts/v1/scan/stop", None, 202)],
        ("sbom", "create") => {
            vec![pending("POST", "/api/v2.0/projects/{p}/repositories/img/artifacts/v1/scan", Some(r#"{"scan_type":"sbom"}"#), 202)]
        }
        ("sbom", "read") => vec![pending("GET", "/api/v2.0/projects/{p}/repositories/img/artifacts/v1/additions/sbom", None, 200)],
        ("sbom", "stop") => {
            vec![pending("POST", "/api/v2.0/projects/{p}/repositories/img/artifacts/v1/scan/stop", Some(r#"{"scan_type":"sbom"}"#), 202)]
        }
        ("scanner", "create") => vec![pending("PUT", "/api/v2.0/projects/{pid}/scanner", Some(r#"{"uuid":"x"}"#), 200)],
        ("scanner", "read") => vec![
            pending("GET", "/api/v2.0/projects/{pid}/scanner", None, 200),
            pending("GET", "/api/v2.0/projects/{pid}/scanner/candidates", None, 200),
        ],
        ("export-cve", "create") => vec![pending("POST", "/api/v2.0/export/cve", Some(r#"{"projects":[{pid}]}"#), 200)],
        ("export-cve", "read") => vec![pending("GET", "/api/v2.0/export/cve/execution/1", None, 200)],
        ("export-cve", "list") => vec![pending("GET", "/api/v2.0/export/cve/executions", None, 200)],
        ("tag-retention", "create") => {
            vec![pending("POST", "/api/v2.0/retentions", Some(r#"{"scope":{"level":"project","ref":{pid}}}"#), 201)]
        }
        ("tag-retention", "read") => vec![pending("GET", "/api/v2.0/retentions/{retention_id}", None, 200)],
        ("tag-retention", "update") => vec![pending("PUT", "/api/v2.0/retentions/{retention_id}", Some("{}"), 200)],
        ("tag-retention", "delete") => vec![pending("DELETE", "/api/v2.0/retentions/{retention_id}", None, 200)],
        ("tag-retention", "list") => vec![pending("GET", "/api/v2.0/retentions/{retention_id}/executions", None, 200)],
        ("tag-retention", "operate") => vec![
            pending("POST", "/api/v2.0/retentions/{retention_id}/executions", Some(r#"{"dry_run":true}"#), 200),
            pending("PATCH", "/api/v2.0/retentions/{retention_id}/executions/1", Some(r#"{"action":"stop"}"#), 200),
        ],
        ("immutable-tag", "create") => vec![pending("POST", "/api/v2.0/projects/{pid}/immutabletagrules", Some("{}"), 201)],
        ("immutable-tag", "update") => vec![pending("PUT", "/api/v2.0/projects/{pid}/immutabletagrules/1", Some("{}"), 200)],
        ("immutable-tag", "delete") => vec![pending("DELETE", "/api/v2.0/projects/{pid}/immutabletagrules/1", None, 200)],
        ("immutable-tag", "list") => vec![pending("GET", "/api/v2.0/projects/{pid}/immutabletagrules", None, 200)],
        ("robot", "create") => vec![live("POST", "/api/v2.0/robots", robot_body, 201, Login, Plain)],
        ("robot", "read") => vec![live("GET", "/api/v2.0/robots/{robot_id}", None, 200, RobotById, TargetRobot)],
        ("robot", "update") => vec![live(
            "PUT",
            "/api/v2.0/robots/{robot_id}",
            Some(
                r#"{"description":"changed","level":"project","duration":-1,"permissions":[{"kind":"project","namespace":"{p}","access":[{"resource":"repository","action":"pull"}]}]}"#,
            ),
            200,
            RobotById,
            TargetRobot,
        )],
        ("robot", "delete") => vec![live("DELETE", "/api/v2.0/robots/{robot_id}", None, 200, RobotById, TargetRobot)],
        ("robot", "list") => vec![live("GET", "/api/v2.0/robots?q=Level%3Dproject%2CProjectID%3D{pid}", None, 200, RobotList, Plain)],
        ("notification-policy", "create") => vec![pending("POST", "/api/v2.0/projects/{pid}/webhook/policies", Some("{}"), 201)],
        ("notification-policy", "read") => vec![pending("GET", "/api/v2.0/projects/{pid}/webhook/policies/1", None, 200)],
        ("notification-policy", "update") => vec![pending("PUT", "/api/v2.0/projects/{pid}/webhook/policies/1", Some("{}"), 200)],
        ("notification-policy", "delete") => vec![pending("DELETE", "/api/v2.0/projects/{pid}/webhook/policies/1", None, 200)],
        ("notification-policy", "list") => vec![pending("GET", "/api/v2.0/projects/{pid}/webhook/policies", None, 200)],
        ("preheat-policy", "create") => vec![pending("POST", "/api/v2.0/projects/{p}/preheat/policies", Some("{}"), 201)],
        ("preheat-policy", "read") => vec![pending("GET", "/api/v2.0/projects/{p}/preheat/policies/pre", None, 200)],
        ("preheat-policy", "update") => vec![pending("PUT", "/api/v2.0/projects/{p}/preheat/policies/pre", Some("{}"), 200)],
        ("preheat-policy", "delete") => vec![pending("DELETE", "/api/v2.0/projects/{p}/preheat/policies/pre", None, 200)],
        ("preheat-policy", "list") => vec![pending("GET", "/api/v2.0/projects/{p}/preheat/policies", None, 200)],
        (r, a) => panic!("no operations written down for ({r}, {a}): add them (or an empty list if Harbor has none)"),
    }
}

fn audit() -> Audit {
    Audit { operator: "rbac-test".into(), resource: "setup".into(), resource_type: "test", operation: "create", ..Default::default() }
}

/// A project of the walk, with its members.
#[derive(Clone, Debug)]
struct Project {
    name: String,
    id: i64,
    public: bool,
    guest_mid: i64,
}

struct World {
    t: TestApp,
    spare: i64,
    seq: AtomicUsize,
}

impl World {
    fn next(&self) -> usize {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    async fn project(&self, name: &str, public: bool) -> Project {
        let meta = &self.t.app.meta;
        let admin = meta.user_by_name("admin").await.unwrap().unwrap().id;
        let id = meta.create_project(name, admin, public, &audit()).await.unwrap();
        for (user, r) in [
            ("padmin", role::PROJECT_ADMIN),
            ("maint", role::MAINTAINER),
            ("dev", role::DEVELOPER),
            ("guest", role::GUEST),
            ("lguest", role::LIMITED_GUEST),
        ] {
            let uid = meta.user_by_name(user).await.unwrap().unwrap().id;
            meta.set_member(id, uid, r, &audit()).await.unwrap();
        }
        let (_, members) = meta.list_members(id, Some("guest"), 0, 10).await.unwrap();
        let guest_mid = members.iter().find(|m| m.entity_name == "guest").unwrap().id;
        Project { name: name.into(), id, public, guest_mid }
    }

    /// A project robot with exactly one permission; returns its name and secret.
    async fn robot(&self, project: &Project, resource: &str, action: &str) -> (String, String, i64) {
        self.robot_with(project, &[(resource, action)]).await
    }

    /// A project robot with exactly these permissions; returns its name and secret.
    async fn robot_with(&self, project: &Project, permissions: &[(&str, &str)]) -> (String, String, i64) {
        let access: Vec<Value> = permissions.iter().map(|(r, a)| json!({"resource": r, "action": a})).collect();
        let body = json!({
            "name": format!("r{}", self.next()),
            "level": "project",
            "duration": -1,
            "permissions": [{"kind": "project", "namespace": project.name, "access": access}],
        });
        let r = self
            .t
            .http
            .post(format!("{}/api/v2.0/robots", self.t.url))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "robot setup failed");
        let v: Value = r.json().await.unwrap();
        (v["name"].as_str().unwrap().to_string(), v["secret"].as_str().unwrap().to_string(), v["id"].as_i64().unwrap())
    }

    /// A fresh label of `project`, made by the system admin; returns its id.
    async fn label(&self, project: &Project, n: usize) -> i64 {
        let body = format!(r#"{{"name":"setup{n}","scope":"p","project_id":{}}}"#, project.id);
        let admin = ("admin".to_string(), ADMIN_PASSWORD.to_string());
        let r = self.send("POST", "/api/v2.0/labels", Some(body), Some(&admin)).await;
        assert_eq!(r.status(), StatusCode::CREATED, "label setup failed");
        let location = r.headers()["location"].to_str().unwrap().to_string();
        location.rsplit('/').next().unwrap().parse().unwrap()
    }

    /// The credentials of `who` for a row on `project` (robots are made for the row).
    async fn credentials(&self, who: Who, project: &Project, resource: &str, action: &str) -> Option<(String, String)> {
        match who {
            Who::Anonymous => None,
            Who::SysAdmin => Some(("admin".into(), ADMIN_PASSWORD.into())),
            Who::RobotWith => {
                // A robot hands on only what it holds: one that gives a role also holds the
                // role's grantable permissions, one that deletes a robot holds that robot's.
                let handed_on: Vec<(String, String)> = match (resource, action) {
                    ("member", "create") => role_grants(role::GUEST),
                    ("member", "update") => role_grants(role::DEVELOPER),
                    ("robot", "delete") => vec![("repository".into(), "pull".into())],
                    _ => vec![],
                };
                let mut permissions = vec![(resource, action)];
                permissions.extend(handed_on.iter().map(|(r, a)| (r.as_str(), a.as_str())));
                let (n, s, _) = self.robot_with(project, &permissions).await;
                Some((n, s))
            }
            Who::RobotWithout => {
                let other = if (resource, action) == ("metadata", "read") { ("log", "list") } else { ("metadata", "read") };
                let (n, s, _) = self.robot(project, other.0, other.1).await;
                Some((n, s))
            }
            w => Some((w.user().unwrap().into(), PASSWORD.into())),
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<String>, who: Option<&(String, String)>) -> reqwest::Response {
        let mut r = self.t.http.request(Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", self.t.url));
        if let Some((u, p)) = who {
            r = r.basic_auth(u, Some(p));
        }
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b);
        }
        r.send().await.unwrap()
    }
}

fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let mut s = template.to_string();
    for (k, v) in vars {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

/// 404 as for a missing project, 401 for anonymous, 403 otherwise — by the operation's rule.
fn refusal(deny: Deny, who: Who, resource: &str, action: &str, public: bool) -> u16 {
    let anonymous = who == Who::Anonymous;
    match deny {
        Deny::Missing => 404,
        Deny::Project if !sees(who, resource, action, public) => 404,
        Deny::Project | Deny::Login => {
            if anonymous {
                401
            } else {
                403
            }
        }
        Deny::RobotById if anonymous => 401,
        Deny::RobotById if !holds(who, "robot", "read", public) && !holds(who, resource, action, public) => 404,
        Deny::RobotById => 403,
        Deny::RobotList if anonymous => 401,
        Deny::RobotList if !sees(who, "", "read", public) => 404,
        Deny::RobotList => 403,
    }
}

/// Walks every row with operations served under /api; returns the pending ones and the failures.
async fn walk_api(w: &World, projects: &[Project]) -> (Vec<String>, Vec<String>) {
    let mut checked = 0;
    let mut pending_rows = Vec::new();
    let mut failures = Vec::new();
    let admin = ("admin".to_string(), ADMIN_PASSWORD.to_string());
    for (resource, action) in matrix_rows() {
        let label = format!("{}:{action}", if resource.is_empty() { "(self)" } else { &resource });
        let ops = operations(&resource, &action);
        if ops.is_empty() && resource != "repository" {
            println!("{label:<28} no operation in Harbor's API");
        }
        for op in &ops {
            let p0 = &projects[0];
            // Ids of things that do not exist yet: the fallback answers before any lookup.
            let vars0 = [("p", p0.name.clone()), ("pid", p0.id.to_string()), ("n", w.next().to_string()), ("retention_id", "1".into())];
            if op.pending {
                let path = fill(op.path, &vars0);
                let r = w.send(op.method, &path, op.body.map(|b| fill(b, &vars0)), Some(&admin)).await;
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                let code = body["errors"][0]["code"].as_str().unwrap_or("").to_string();
                if status == 501 && code == "NOT_IMPLEMENTED" {
                    pending_rows.push(format!("{label:<28} pending  {} {}", op.method, op.path));
                } else {
                    failures.push(format!(
                        "{label}: {} {} is listed as pending but answers {status} {code}: switch its row on (pending: false) with its setup",
                        op.method, op.path
                    ));
                }
                continue;
            }
            for project in projects {
                for who in EVERYONE {
                    if who == Who::RobotWith && !robot_grantable(&resource, &action) {
                        continue;
                    }
                    let target = match op.setup {
                        Setup::FreshProject => w.project(&format!("fresh{}", w.next()), project.public).await,
                        _ => project.clone(),
                    };
                    let creds = w.credentials(who, &target, &resource, &action).await;
                    let n = w.next();
                    let mut vars = vec![
                        ("p", target.name.clone()),
                        ("pid", target.id.to_string()),
                        ("mid", target.guest_mid.to_string()),
                        ("n", n.to_string()),
                    ];
                    let meta = &w.t.app.meta;
                    let spare_mid = |m: &[berth::meta::MemberRow]| m.iter().find(|m| m.entity_id == w.spare).map(|m| m.id);
                    match op.setup {
                        Setup::SpareMember | Setup::NoSpareMember => {
                            let (_, members) = meta.list_members(target.id, Some("spare"), 0, 10).await.unwrap();
                            if let Some(mid) = spare_mid(&members) {
                                meta.delete_member(target.id, mid, &audit()).await.unwrap();
                            }
                            if op.setup == Setup::SpareMember {
                                let mid = meta.add_member(target.id, w.spare, role::GUEST, &audit()).await.unwrap().unwrap();
                                vars.push(("spare_mid", mid.to_string()));
                            }
                        }
                        Setup::MetadataKey => {
                            meta.set_project_metadata(target.id, "reuse_sys_cve_allowlist", "true", &audit()).await.unwrap();
                        }
                        Setup::NoMetadataKey => {
                            meta.delete_project_metadata(target.id, "reuse_sys_cve_allowlist", &audit()).await.unwrap();
                        }
                        Setup::TargetRobot => {
                            let (_, _, id) = w.robot(&target, "repository", "pull").await;
                            vars.push(("robot_id", id.to_string()));
                        }
                        Setup::FreshImage | Setup::FreshRepo => {
                            let path = if op.setup == Setup::FreshRepo { format!("fresh{n}") } else { "img".into() };
                            let repo = format!("{}/{path}", target.name);
                            let token = w.t.admin_token(&repo).await;
                            let (digest, _) = w.t.push_image(&token, &repo, &format!("t{n}"), &[]).await;
                            vars.push(("fresh_digest", digest));
                        }
                        Setup::FreshLabel | Setup::AttachedLabel => {
                            let id = w.label(&target, n).await;
                            if op.setup == Setup::AttachedLabel {
                                let path = format!("/api/v2.0/projects/{}/repositories/img/artifacts/v1/labels", target.name);
                                let r = w.send("POST", &path, Some(format!(r#"{{"id":{id}}}"#)), Some(&admin)).await;
                                assert_eq!(r.status(), StatusCode::OK, "label attach setup failed");
                            }
                            vars.push(("label_id", id.to_string()));
                        }
                        Setup::Plain | Setup::FreshProject => {}
                        Setup::Later => unreachable!("a served row needs its setup written"),
                    }
                    let path = fill(op.path, &vars);
                    let expected = if holds(who, &resource, &action, target.public) {
                        op.ok
                    } else {
                        refusal(op.deny, who, &resource, &action, target.public)
                    };
                    let r = w.send(op.method, &path, op.body.map(|b| fill(b, &vars)), creds.as_ref()).await;
                    checked += 1;
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    if status != expected {
                        failures.push(format!(
                            "{label} {who:?} on {} project: {} {path} answered {status}, RBAC.md says {expected} ({text})",
                            if target.public { "public" } else { "private" },
                            op.method
                        ));
                    } else if status >= 400 && op.method != "HEAD" {
                        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                        if v["errors"][0]["code"].as_str().is_none() || v["errors"][0]["message"].as_str().is_none() {
                            failures.push(format!("{label} {who:?}: {} {path} {status} without Harbor's error body: {text}", op.method));
                        }
                    }
                }
            }
        }
    }
    println!("/api: {checked} calls checked against RBAC.md");
    (pending_rows, failures)
}

/// Repository pull, push and delete on /v2 (Basic and bearer) and on /service/token.
async fn walk_registry(w: &World, projects: &[Project]) -> Vec<String> {
    let t = &w.t;
    let mut failures = Vec::new();
    for project in projects {
        let repo = format!("{}/img", project.name);
        for action in ["pull", "push", "delete"] {
            for who in EVERYONE {
                let creds = w.credentials(who, project, "repository", action).await;
                let held = holds(who, "repository", action, project.public);
                let vis = if project.public { "public" } else { "private" };
                // /service/token: the action is granted exactly when held.
                let mut req = t
                    .http
                    .get(format!("{}/service/token", t.url))
                    .query(&[("service", "harbor-registry"), ("scope", &format!("repository:{repo}:pull,push,delete"))]);
                if let Some((u, p)) = &creds {
                    req = req.basic_auth(u, Some(p));
                }
                let r = req.send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK, "token for {who:?}");
                let v: Value = r.json().await.unwrap();
                let token = v["token"].as_str().unwrap().to_string();
                let claims = t.app.auth.tokens.verify(&token).expect("a token Berth signed");
                let granted: BTreeSet<String> = claims.access.iter().filter(|a| a.name == repo).flat_map(|a| a.actions.clone()).collect();
                if granted.contains(action) != held {
                    failures.push(format!("/service/token {who:?} on {vis} {repo}: {action} granted={}, RBAC.md says {held}", !held));
                }
                if !matches!(who, Who::RobotWith | Who::RobotWithout) {
                    let want: BTreeSet<String> = ["pull", "push", "delete"]
                        .iter()
                        .filter(|a| holds(who, "repository", a, project.public))
                        .map(|a| a.to_string())
                        .collect();
                    if granted != want {
                        failures.push(format!("/service/token {who:?} on {vis} {repo}: granted {granted:?}, RBAC.md says {want:?}"));
                    }
                } else if who == Who::RobotWith && action == "push" && !granted.contains("pull") {
                    failures.push(format!("/service/token project robot with push on {vis} {repo}: push implies pull, got {granted:?}"));
                }
                // /v2 with Basic credentials (401 anonymous, 403 logged in) and with the bearer token (401).
                for bearer in [false, true] {
                    let (method, path, ok) = match action {
                        "pull" => ("GET", format!("/v2/{repo}/manifests/v1"), 200),
                        "push" => ("POST", format!("/v2/{repo}/blobs/uploads/"), 202),
                        _ => {
                            let admin = t.admin_token(&repo).await;
                            let (digest, _) = t.push_image(&admin, &repo, &format!("d{}", w.next()), &[]).await;
                            ("DELETE", format!("/v2/{repo}/manifests/{digest}"), 202)
                        }
                    };
                    let mut req = t.http.request(Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", t.url));
                    let refused = match (&creds, bearer) {
                        (_, true) => {
                            req = req.bearer_auth(&token);
                            401
                        }
                        (Some((u, p)), false) => {
                            req = req.basic_auth(u, Some(p));
                            403
                        }
                        (None, false) => 401,
                    };
                    let expected = if held { ok } else { refused };
                    let status = req.send().await.unwrap().status().as_u16();
                    if status != expected {
                        let how = if bearer { "bearer" } else { "basic" };
                        failures.push(format!("/v2 {who:?} ({how}) on {vis}: {method} {path} answered {status}, RBAC.md says {expected}"));
                    }
                }
            }
        }
    }
    failures
}

async fn matrix(db: Db) {
    let started = std::time::Instant::now();
    let t = TestApp::start(db).await;
    let meta = &t.app.meta;
    let hash = berth::auth::hash_password(PASSWORD).await.unwrap();
    let mut spare = 0;
    for user in ["padmin", "maint", "dev", "guest", "lguest", "outsider", "spare"] {
        let id = meta.create_user(user, &hash, false, &audit()).await.unwrap();
        if user == "spare" {
            spare = id;
        }
    }
    let w = World { t, spare, seq: AtomicUsize::new(0) };
    let private = w.project("rbac-private", false).await;
    let public = w.project("rbac-public", true).await;
    let projects = [private, public];
    for p in &projects {
        let repo = format!("{}/img", p.name);
        let token = w.t.admin_token(&repo).await;
        w.t.push_image(&token, &repo, "v1", &[b"layer"]).await;
    }
    let (pending_rows, mut failures) = walk_api(&w, &projects).await;
    failures.extend(walk_registry(&w, &projects).await);
    println!("rows Berth does not serve yet ({}):", pending_rows.len());
    for p in &pending_rows {
        println!("  {p}");
    }
    println!("walked in {:?} ({db:?})", started.elapsed());
    w.t.shutdown().await;
    assert!(failures.is_empty(), "{} cells disagree with RBAC.md:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_matrix_row_has_its_operations_written_down() {
    assert_eq!(matrix_rows().len(), 75);
    for (r, a) in matrix_rows() {
        let _ = operations(&r, &a);
    }
    // The table's totals as RBAC.md states them.
    let count = |c: usize| matrix_rows().iter().filter(|(r, a)| matrix_row(r, a)[c]).count();
    assert_eq!([count(0), count(1), count(2), count(3), count(4), count(5)], [75, 53, 36, 20, 14, 12]);
}

on_both_backends! {
    rbac_matrix => matrix;
}
