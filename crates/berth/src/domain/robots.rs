//! Robot accounts as Harbor has them: system-level robots (any mix of system
//! permissions and project permissions over named projects or `*`) and
//! project-level robots (exactly one project), named `robot$<name>` and
//! `robot$<project>+<name>`, with a secret shown once and stored as SHA-256,
//! expiry in days or never, disable/enable, secret refresh, and allow/deny
//! access lists checked against Harbor's catalogue of grantable permissions.
//! A robot may create robots only with a subset of its own permissions.
//!
//! Changing a robot (permissions, disable, secret refresh) needs Harbor's `robot:update` in
//! the robot's scope (a project admin for a project robot, a system admin for a system
//! robot), deleting it `robot:delete`. Harbor's robot catalogue holds no `robot:update`, so a
//! robot holding `robot:create` in that scope may change the robots it could have created:
//! a robot changes, refreshes or deletes only robots whose permissions are within its own
//! (the check of creation), and grants nothing it does not hold. An access token limited to
//! projects or actions manages no robots.

use crate::app::App;
use crate::auth::policy::{self, Principal, RobotGrant, Scope};
use crate::error::{Error, Result};
use crate::meta::{Audit, RobotAccess, RobotRow, now_ms};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;

/// Harbor's grantable permissions at system scope.
pub const SYSTEM_CATALOGUE: &[(&str, &[&str])] = &[
    ("audit-log", &["list"]),
    ("preheat-instance", &["read", "create", "delete", "list", "update"]),
    ("project", &["list", "create"]),
    ("replication-policy", &["read", "create", "delete", "list", "update"]),
    ("replication", &["read", "create", "list"]),
    ("replication-adapter", &["list"]),
    ("registry", &["read", "create", "delete", "list", "update"]),
    ("scan-all", &["read", "update", "stop", "create"]),
    ("system-volumes", &["read"]),
    ("garbage-collection", &["read", "create", "list", "update", "stop"]),
    ("purge-audit", &["read", "create", "list", "update", "stop"]),
    ("jobservice-monitor", &["list", "stop"]),
    ("scanner", &["read", "create", "delete", "list", "update"]),
    ("label", &["read", "create", "delete", "update"]),
    ("security-hub", &["read", "list"]),
    ("catalog", &["read"]),
    ("quota", &["read", "list", "update"]),
    ("robot", &["create", "read", "list", "delete"]),
    ("user", &["create", "read", "update", "list", "delete"]),
    ("ldap-user", &["create", "list"]),
    ("user-group", &["create", "read", "update", "list", "delete"]),
];

/// Harbor's grantable permissions at project scope.
pub const PROJECT_CATALOGUE: &[(&str, &[&str])] = &[
    ("log", &["list"]),
    ("project", &["read", "delete", "update"]),
    ("metadata", &["read", "create", "delete", "list", "update"]),
    ("repository", &["read", "update", "delete", "list", "pull", "push"]),
    ("artifact", &["read", "create", "list", "delete"]),
    ("scan", &["create", "read", "stop"]),
    ("sbom", &["create", "stop", "read"]),
    ("tag", &["create", "list", "delete"]),
    ("accessory", &["list"]),
    ("artifact-addition", &["read"]),
    ("artifact-label", &["create", "delete"]),
    ("scanner", &["create", "read"]),
    ("preheat-policy", &["read", "create", "delete", "list", "update"]),
    ("immutable-tag", &["create", "delete", "list", "update"]),
    ("notification-policy", &["read", "create", "delete", "list", "update"]),
    ("tag-retention", &["read", "create", "delete", "list", "update"]),
    ("label", &["read", "create", "delete", "list", "update"]),
    ("quota", &["read"]),
    ("robot", &["create", "read", "list", "delete"]),
    ("export-cve", &["create", "read"]),
    ("member", &["create", "read", "update", "list", "delete"]),
];

/// One entry of a robot's `permissions`, as the API carries it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Permission {
    pub kind: String,
    pub namespace: String,
    #[serde(default)]
    pub access: Vec<Access>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Access {
    pub resource: String,
    pub action: String,
    #[serde(default)]
    pub effect: Option<String>,
}

/// A create request (Harbor's RobotCreate).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct RobotCreate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub secret: Option<String>,
    pub level: Option<String>,
    pub disable: Option<bool>,
    pub duration: Option<i64>,
    pub permissions: Option<Vec<Permission>>,
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 255
        && alnum(b[0])
        && alnum(b[b.len() - 1])
        && b.windows(2).all(|w| alnum(w[0]) || alnum(w[1]))
        && b.iter().all(|&c| alnum(c) || matches!(c, b'.' | b'_' | b'-'))
}

/// Harbor's character classes for caller-chosen secrets, with at least 16 characters
/// (Harbor allows 8, too few for a secret that is checked without a slow hash).
fn valid_secret(s: &str) -> bool {
    (16..=128).contains(&s.len())
        && s.bytes().any(|c| c.is_ascii_uppercase())
        && s.bytes().any(|c| c.is_ascii_lowercase())
        && s.bytes().any(|c| c.is_ascii_digit())
}

fn flatten(perms: &[Permission]) -> Result<Vec<RobotAccess>> {
    let mut out = Vec::new();
    for p in perms {
        let catalogue = match p.kind.as_str() {
            "system" => SYSTEM_CATALOGUE,
            "project" => PROJECT_CATALOGUE,
            k => return Err(Error::Invalid(format!("permission kind must be system or project, not {k:?}"))),
        };
        if p.kind == "system" && p.namespace != "/" {
            return Err(Error::Invalid("a system permission's namespace must be \"/\"".into()));
        }
        for a in &p.access {
            let allowed = catalogue.iter().any(|(r, acts)| *r == a.resource && (acts.contains(&a.action.as_str()) || a.action == "*"));
            if !allowed {
                return Err(Error::Invalid(format!("{} permission {}:{} cannot be granted to a robot", p.kind, a.resource, a.action)));
            }
            let effect = a.effect.clone().unwrap_or_else(|| "allow".into());
            if effect != "allow" && effect != "deny" {
                return Err(Error::Invalid(format!("effect must be allow or deny, not {effect:?}")));
            }
            out.push(RobotAccess {
                kind: p.kind.clone(),
                namespace: p.namespace.clone(),
                resource: a.resource.clone(),
                action: a.action.clone(),
                effect,
            });
        }
    }
    Ok(out)
}

/// Groups flat rows back into Harbor's `permissions` shape.
pub fn group(rows: &[RobotAccess]) -> Vec<Permission> {
    let mut out: Vec<Permission> = Vec::new();
    for r in rows {
        let access = Access { resource: r.resource.clone(), action: r.action.clone(), effect: Some(r.effect.clone()) };
        match out.iter_mut().find(|p| p.kind == r.kind && p.namespace == r.namespace) {
            Some(p) => p.access.push(access),
            None => out.push(Permission { kind: r.kind.clone(), namespace: r.namespace.clone(), access: vec![access] }),
        }
    }
    out
}

/// May `caller` manage robots at the level and project of `rows`? (`action`: create, read, list, update, delete)
async fn may_manage(app: &App, caller: &Principal, project: Option<&str>, action: &str) -> Result<bool> {
    match project {
        None => Ok(policy::allows(caller, Scope::System, "robot", action)),
        Some(name) => {
            let facts = crate::domain::projects::facts(app, name, caller).await?;
            Ok(policy::allows(caller, Scope::Project(facts.as_ref().map(|(_, f)| f)), "robot", action))
        }
    }
}

/// A robot may grant only what it holds itself; denials restrict and are always allowed.
/// `project_level`: the permissions are a project robot's, whose push implies pull, so
/// granting push there needs pull too.
fn within(caller: &Principal, wanted: &[RobotAccess], project_level: bool) -> bool {
    let Principal::Robot { grants, project_level: caller_project_level, .. } = caller else { return true };
    let holds = |kind: &str, namespace: &str, resource: &str, action: &str| {
        let granted = |action: &str| {
            grants.iter().any(|g| {
                g.allow
                    && g.kind == kind
                    && (g.namespace == namespace || g.namespace == "*")
                    && g.resource == resource
                    && (g.action == action || g.action == "*")
            })
        };
        let implied = *caller_project_level && resource == "repository" && action == "pull" && granted("push");
        (granted(action) || implied)
            && !grants.iter().any(|g| !g.allow && g.resource == resource && (g.action == action || g.action == "*"))
    };
    wanted.iter().filter(|w| w.effect == "allow").all(|w| {
        let implies_pull = project_level && w.resource == "repository" && (w.action == "push" || w.action == "*");
        holds(&w.kind, &w.namespace, &w.resource, &w.action) && (!implies_pull || holds(&w.kind, &w.namespace, "repository", "pull"))
    })
}

/// May `caller` do `action` (`update`: permissions, disable, secret; `delete`) on the robot
/// `row` of `project`, which holds `target`? See the module's rules.
async fn may_change(
    app: &App,
    caller: &Principal,
    row: &RobotRow,
    project: Option<&str>,
    target: &[RobotAccess],
    action: &str,
) -> Result<bool> {
    if caller.is_limited() {
        return Ok(false);
    }
    let robot = matches!(caller, Principal::Robot { .. });
    let held = may_manage(app, caller, project, action).await?
        || (robot && action == "update" && may_manage(app, caller, project, "create").await?);
    Ok(held && within(caller, target, row.level == "project"))
}

/// A robot may not give a robot a longer life than its own: `expires_at` (Unix seconds, -1
/// never) must not outlast the calling robot's expiry.
async fn within_lifetime(app: &App, caller: &Principal, expires_at: i64) -> Result<()> {
    let Principal::Robot { id, .. } = caller else { return Ok(()) };
    let own = app.meta.robot(*id).await?.map(|r| r.expires_at).unwrap_or(0);
    if own == -1 || (expires_at != -1 && expires_at <= own) {
        return Ok(());
    }
    Err(Error::Forbidden("a robot may not give a robot a later expiry than its own".into()))
}

/// The project a project-level robot is bound to, from its single permission.
fn project_of(level: &str, access: &[RobotAccess], perms: &[Permission]) -> Result<Option<String>> {
    match level {
        "system" => Ok(None),
        "project" => {
            if perms.len() != 1 || perms[0].kind != "project" || perms[0].namespace == "*" {
                return Err(Error::Invalid("a project robot needs exactly one permission, of kind project, naming its project".into()));
            }
            let _ = access;
            Ok(Some(perms[0].namespace.clone()))
        }
        l => Err(Error::Invalid(format!("level must be system or project, not {l:?}"))),
    }
}

/// Creates a robot; returns its row and the secret (shown once).
pub async fn create(app: &App, caller: &Principal, req: RobotCreate, audit: Audit) -> Result<(RobotRow, String)> {
    let short = req.name.clone().unwrap_or_default();
    if !valid_name(&short) {
        return Err(Error::Invalid("robot name must match ^[a-z0-9]+(?:[._-][a-z0-9]+)*$".into()));
    }
    let level = req.level.clone().unwrap_or_else(|| "system".into());
    let perms = req.permissions.clone().unwrap_or_default();
    let access = flatten(&perms)?;
    let project = project_of(&level, &access, &perms)?;
    if caller.is_limited() || !may_manage(app, caller, project.as_deref(), "create").await? || !within(caller, &access, level == "project")
    {
        return Err(Error::Forbidden("you may not create this robot (or grant it these permissions)".into()));
    }
    let project_row = match &project {
        Some(p) => Some(app.meta.project_by_name(p).await?.ok_or_else(|| Error::NotFound(format!("project {p} not found")))?),
        None => None,
    };
    for p in perms.iter().filter(|p| p.kind == "project" && p.namespace != "*") {
        if app.meta.project_by_name(&p.namespace).await?.is_none() {
            return Err(Error::NotFound(format!("project {} not found", p.namespace)));
        }
    }
    let secret = match req.secret {
        Some(s) if !valid_secret(&s) => {
            return Err(Error::Invalid(
                "secret must be 16 to 128 characters with an upper-case letter, a lower-case letter and a digit".into(),
            ));
        }
        Some(s) => s,
        None => crate::auth::random_secret(24)?,
    };
    let duration = req.duration.unwrap_or(30);
    if duration == 0 || duration < -1 {
        return Err(Error::Invalid("duration must be -1 (never expires) or a number of days".into()));
    }
    let now = now_ms();
    let expires_at = if duration == -1 { -1 } else { now / 1000 + duration * 86_400 };
    within_lifetime(app, caller, expires_at).await?;
    let prefix = &app.config.robot_prefix;
    let name = match &project {
        Some(p) => format!("{prefix}{p}+{short}"),
        None => format!("{prefix}{short}"),
    };
    let (creator_type, creator_ref) = match caller {
        Principal::Robot { id, .. } => ("robot", *id),
        p => ("local", p.user_id().unwrap_or(0)),
    };
    let mut row = RobotRow {
        id: 0,
        name: name.clone(),
        description: req.description.unwrap_or_default(),
        level,
        project_id: project_row.map(|p| p.id),
        secret_hash: hash_secret(&secret),
        disabled: req.disable.unwrap_or(false),
        duration,
        expires_at,
        creator_type: creator_type.into(),
        creator_ref,
        creation_time: now,
        update_time: now,
    };
    let audit = Audit { resource: name.clone(), resource_type: "robot", operation: "create", project_id: row.project_id, ..audit };
    let Some(id) = app.meta.create_robot(&row, &access, &audit).await? else {
        return Err(Error::Conflict(format!("a robot named {name} already exists")));
    };
    row.id = id;
    Ok((row, secret))
}

/// A robot the caller may see (`read`), with its permissions.
pub async fn get(app: &App, caller: &Principal, id: i64) -> Result<(RobotRow, Vec<RobotAccess>)> {
    let t = target(app, caller, id, None).await?;
    Ok((t.row, t.access))
}

/// A robot, its permissions and the name of its project (project robots).
struct Target {
    row: RobotRow,
    access: Vec<RobotAccess>,
    project: Option<String>,
}

/// The robot `id` if the caller may read it (`action` None) or do `action` on it (`update`,
/// `delete`). A robot the caller may not read is answered as a missing one; one it may read
/// but not change is refused.
async fn target(app: &App, caller: &Principal, id: i64, action: Option<&str>) -> Result<Target> {
    let not_found = || Error::NotFound(format!("robot {id} not found"));
    let row = app.meta.robot(id).await?.ok_or_else(not_found)?;
    let project = match row.project_id {
        Some(pid) => Some(project_name(app, pid).await?),
        None => None,
    };
    let access: Vec<RobotAccess> = app.meta.robot_permissions(&[id]).await?.into_iter().map(|(_, a)| a).collect();
    let readable = may_manage(app, caller, project.as_deref(), "read").await?;
    let allowed = match action {
        None => readable,
        Some(action) => may_change(app, caller, &row, project.as_deref(), &access, action).await?,
    };
    match (allowed, readable) {
        (true, _) => Ok(Target { row, access, project }),
        (false, true) => Err(Error::Forbidden(format!("you may not {} robot {id}", action.unwrap_or("read")))),
        (false, false) => Err(not_found()),
    }
}

async fn project_name(app: &App, project_id: i64) -> Result<String> {
    app.meta.project_name(project_id).await?.ok_or_else(|| Error::internal("robot of a missing project"))
}

/// Robots of a project (by id) or system robots, for a caller allowed to list them.
pub async fn list(
    app: &App,
    caller: &Principal,
    project_id: Option<i64>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<(RobotRow, Vec<RobotAccess>)>, i64)> {
    let project = match project_id {
        Some(pid) => Some(app.meta.project_name(pid).await?.ok_or_else(|| Error::NotFound(format!("project {pid} not found")))?),
        None => None,
    };
    if !may_manage(app, caller, project.as_deref(), "list").await? {
        // A project the caller may not read is answered as a missing one; a reader is refused.
        let visible = match &project {
            Some(name) => crate::domain::projects::facts(app, name, caller)
                .await?
                .is_some_and(|(_, f)| policy::allows(caller, Scope::Project(Some(&f)), "", "read")),
            None => true,
        };
        return Err(if visible { Error::Denied } else { Error::NotFound(format!("project {} not found", project_id.unwrap_or_default())) });
    }
    let (rows, total) = app.meta.robots(project_id, offset, limit).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let perms = app.meta.robot_permissions(&ids).await?;
    let out = rows.into_iter().map(|r| {
        let a = perms.iter().filter(|(id, _)| *id == r.id).map(|(_, a)| a.clone()).collect();
        (r, a)
    });
    Ok((out.collect(), total))
}

/// Updates description, disable, duration and permissions (level and name stay).
pub async fn update(app: &App, caller: &Principal, id: i64, req: RobotCreate, audit: Audit) -> Result<()> {
    let Target { mut row, project, .. } = target(app, caller, id, Some("update")).await?;
    if req.level.as_deref().is_some_and(|l| l != row.level) {
        return Err(Error::Invalid("a robot's level cannot be changed".into()));
    }
    let perms = req.permissions.clone().unwrap_or_default();
    let access = flatten(&perms)?;
    if row.level == "project" && project_of("project", &access, &perms)? != project {
        return Err(Error::Invalid("a project robot's project cannot be changed".into()));
    }
    if !within(caller, &access, row.level == "project") {
        return Err(Error::Forbidden("you may not grant these permissions".into()));
    }
    if let Some(d) = req.description {
        row.description = d;
    }
    if let Some(d) = req.disable {
        row.disabled = d;
    }
    if let Some(d) = req.duration
        && d != row.duration
    {
        if d == 0 || d < -1 {
            return Err(Error::Invalid("duration must be -1 (never expires) or a number of days".into()));
        }
        row.duration = d;
        row.expires_at = if d == -1 { -1 } else { row.creation_time / 1000 + d * 86_400 };
        within_lifetime(app, caller, row.expires_at).await?;
    }
    let audit = Audit { resource: row.name.clone(), resource_type: "robot", operation: "update", project_id: row.project_id, ..audit };
    app.meta.update_robot(&row, &access, &audit).await?;
    app.auth.forget_credentials();
    Ok(())
}

/// Sets a new secret (given, or generated); returns it.
pub async fn refresh(app: &App, caller: &Principal, id: i64, secret: Option<String>, audit: Audit) -> Result<String> {
    let Target { row, .. } = target(app, caller, id, Some("update")).await?;
    let secret = match secret {
        Some(s) if !valid_secret(&s) => {
            return Err(Error::Invalid(
                "secret must be 16 to 128 characters with an upper-case letter, a lower-case letter and a digit".into(),
            ));
        }
        Some(s) => s,
        None => crate::auth::random_secret(24)?,
    };
    let audit = Audit { resource: row.name.clone(), resource_type: "robot", operation: "update", project_id: row.project_id, ..audit };
    app.meta.set_robot_secret(id, &hash_secret(&secret), &audit).await?;
    app.auth.forget_credentials();
    Ok(secret)
}

pub async fn delete(app: &App, caller: &Principal, id: i64, audit: Audit) -> Result<()> {
    let Target { row, .. } = target(app, caller, id, Some("delete")).await?;
    let audit = Audit { resource: row.name.clone(), resource_type: "robot", operation: "delete", project_id: row.project_id, ..audit };
    app.meta.delete_robot(id, &audit).await?;
    app.auth.forget_credentials();
    Ok(())
}

/// The robot `name` logging in with `secret`, if enabled, unexpired and the secret matches.
pub async fn verify(app: &App, name: &str, secret: &str) -> Result<Option<Principal>> {
    let Some(row) = app.meta.robot_by_name(name).await? else { return Ok(None) };
    let ok = subtle::ConstantTimeEq::ct_eq(row.secret_hash.as_bytes(), hash_secret(secret).as_bytes());
    if !bool::from(ok) || row.disabled || (row.expires_at != -1 && row.expires_at <= now_ms() / 1000) {
        return Ok(None);
    }
    let access = app.meta.robot_permissions(&[row.id]).await?;
    let grants = access
        .into_iter()
        .map(|(_, a)| RobotGrant {
            kind: a.kind,
            namespace: a.namespace,
            resource: a.resource,
            action: a.action,
            allow: a.effect == "allow",
        })
        .collect();
    Ok(Some(Principal::Robot { id: row.id, name: row.name, project_level: row.level == "project", grants: Arc::new(grants) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_secrets_and_catalogue() {
        assert!(valid_name("ci-bot.1"));
        assert!(!valid_name("CI"));
        assert!(!valid_name("a+b"));
        assert!(!valid_name("-a"));
        assert!(valid_secret("Abcdefg1Abcdefg1"));
        assert!(!valid_secret("Abcdefg1Abcdefg"), "15 characters are too few");
        assert!(!valid_secret("Abcdefg1"));
        assert!(!valid_secret("abcdefg1abcdefg1"));
        assert!(!valid_secret("Abc1"));
        let perms = vec![Permission {
            kind: "project".into(),
            namespace: "p".into(),
            access: vec![Access { resource: "repository".into(), action: "pull".into(), effect: None }],
        }];
        assert_eq!(flatten(&perms).unwrap()[0].effect, "allow");
        let bad = vec![Permission {
            kind: "project".into(),
            namespace: "p".into(),
            access: vec![Access { resource: "configuration".into(), action: "update".into(), effect: None }],
        }];
        assert!(flatten(&bad).is_err());
        assert_eq!(group(&flatten(&perms).unwrap()).len(), 1);
        let total: usize =
            SYSTEM_CATALOGUE.iter().map(|(_, a)| a.len()).sum::<usize>() + PROJECT_CATALOGUE.iter().map(|(_, a)| a.len()).sum::<usize>();
        assert!(total > 100);
    }

    #[test]
    fn robots_hand_on_only_what_they_hold() {
        let grant = |ns: &str, res: &str, act: &str| policy::RobotGrant {
            kind: "project".into(),
            namespace: ns.into(),
            resource: res.into(),
            action: act.into(),
            allow: true,
        };
        let row = |ns: &str, res: &str, act: &str| RobotAccess {
            kind: "project".into(),
            namespace: ns.into(),
            resource: res.into(),
            action: act.into(),
            effect: "allow".into(),
        };
        let robot = |project_level: bool, grants: Vec<policy::RobotGrant>| Principal::Robot {
            id: 1,
            name: "robot$r".into(),
            project_level,
            grants: Arc::new(grants),
        };
        let pusher = robot(true, vec![grant("p", "repository", "push"), grant("p", "robot", "create")]);
        assert!(within(&pusher, &[row("p", "repository", "pull")], true), "a project robot's push holds pull");
        assert!(within(&pusher, &[row("p", "repository", "push")], true));
        assert!(!within(&pusher, &[row("p", "repository", "delete")], true));
        assert!(!within(&pusher, &[row("q", "repository", "push")], true));
        let fleet_push = robot(false, vec![grant("*", "repository", "push")]);
        assert!(within(&fleet_push, &[row("p", "repository", "push")], false));
        assert!(!within(&fleet_push, &[row("p", "repository", "push")], true), "push to a project robot hands on pull, which it lacks");
        assert!(!within(&fleet_push, &[row("*", "repository", "pull")], false));
        let user = Principal::User { id: 2, name: "u".into(), sysadmin: false };
        assert!(within(&user, &[row("*", "repository", "delete")], false), "people are checked by their roles instead");
    }
}
