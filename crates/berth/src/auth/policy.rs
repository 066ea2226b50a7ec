//! The one decision function: may this principal do this action on this resource?
//!
//! Every surface (`/v2`, `/service/token`, the Harbor API) asks `allows`. It is
//! pure: callers load the facts (project visibility, the principal's roles) first.
//! Resource and action names are Harbor's (`repository`/`pull`, `member`/`list`,
//! `""` for the project itself), and the project-role matrix below is Harbor's,
//! row for row.

use crate::meta::accounts_role as role;

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    User {
        id: i64,
        name: String,
        sysadmin: bool,
    },
    /// A user acting through a personal access token, within its limits.
    Token {
        id: i64,
        name: String,
        sysadmin: bool,
        limits: std::sync::Arc<TokenLimits>,
    },
    /// A robot account with its access list (never a system admin).
    Robot {
        id: i64,
        name: String,
        project_level: bool,
        grants: std::sync::Arc<Vec<RobotGrant>>,
    },
}

/// One entry of a robot's access list: namespace `/` (system), `*` (every project) or a project name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RobotGrant {
    pub kind: String,
    pub namespace: String,
    pub resource: String,
    pub action: String,
    pub allow: bool,
}

/// What a personal access token is limited to (None: no limit beyond the user's own rights).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenLimits {
    pub token_id: i64,
    pub projects: Option<Vec<String>>,
    pub actions: Option<Vec<String>>,
}

impl Principal {
    pub fn name(&self) -> &str {
        match self {
            Principal::Anonymous => "anonymous",
            Principal::User { name, .. } | Principal::Token { name, .. } | Principal::Robot { name, .. } => name,
        }
    }
    /// A system admin, with nothing limiting it (a limited token of an admin is not).
    pub fn is_sysadmin(&self) -> bool {
        match self {
            Principal::User { sysadmin, .. } => *sysadmin,
            Principal::Token { sysadmin, limits, .. } => *sysadmin && limits.projects.is_none() && limits.actions.is_none(),
            Principal::Anonymous | Principal::Robot { .. } => false,
        }
    }
    /// The user behind the call (robots are not users).
    pub fn user_id(&self) -> Option<i64> {
        match self {
            Principal::User { id, .. } | Principal::Token { id, .. } => Some(*id),
            Principal::Anonymous | Principal::Robot { .. } => None,
        }
    }
    /// A personal access token limited to some projects or actions. It acts only inside its
    /// limits: never at system scope, and never on accounts (its user's profile, password and
    /// tokens, robots, new projects).
    pub fn is_limited(&self) -> bool {
        matches!(self, Principal::Token { limits, .. } if limits.projects.is_some() || limits.actions.is_some())
    }
    pub fn token_limits(&self) -> Option<&TokenLimits> {
        match self {
            Principal::Token { limits, .. } => Some(limits),
            _ => None,
        }
    }
}

/// Registry actions on a project's repositories, named as in token scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Pull, Action::Push, Action::Delete];
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }
}

/// What the caller's access to a project depends on.
#[derive(Clone, Debug, Default)]
pub struct ProjectFacts {
    pub name: String,
    pub public: bool,
    /// The principal's roles in the project (Harbor role ids); a user's roles are a union.
    pub roles: Vec<i64>,
}

/// Where a resource lives.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// A project's resource; `None` when the project does not exist.
    Project(Option<&'a ProjectFacts>),
    /// A system resource (`catalog`, `user`, `audit-log`, ...).
    System,
}

const PA: u8 = 1 << 0;
const MA: u8 = 1 << 1;
const DE: u8 = 1 << 2;
const GU: u8 = 1 << 3;
const LG: u8 = 1 << 4;

/// Harbor's project-role matrix: (resource, action, roles holding it, granted to anyone on a public project).
/// `""` is the project itself.
pub const PROJECT_MATRIX: &[(&str, &str, u8, bool)] = &[
    ("", "read", PA | MA | DE | GU | LG, true),
    ("", "update", PA, false),
    ("", "delete", PA, false),
    ("member", "create", PA, false),
    ("member", "read", PA | MA | DE | GU, false),
    ("member", "update", PA, false),
    ("member", "delete", PA, false),
    ("member", "list", PA | MA | DE | GU, false),
    ("metadata", "create", PA, false),
    ("metadata", "read", PA | MA, false),
    ("metadata", "update", PA, false),
    ("metadata", "delete", PA, false),
    ("log", "list", PA, false),
    ("configuration", "read", PA | MA | DE | GU | LG, false),
    ("configuration", "update", PA, false),
    ("quota", "read", PA | MA | DE | GU | LG, false),
    ("label", "create", PA | MA, false),
    ("label", "read", PA | MA | DE | GU, true),
    ("label", "update", PA | MA, false),
    ("label", "delete", PA | MA, false),
    ("label", "list", PA | MA | DE | GU, true),
    ("repository", "create", PA | MA | DE, false),
    ("repository", "read", PA | MA | DE | GU | LG, false),
    ("repository", "update", PA | MA | DE, false),
    ("repository", "delete", PA | MA, false),
    ("repository", "list", PA | MA | DE | GU | LG, true),
    ("repository", "pull", PA | MA | DE | GU | LG, true),
    ("repository", "push", PA | MA | DE, false),
    ("artifact", "create", PA | MA | DE, false),
    ("artifact", "read", PA | MA | DE | GU | LG, true),
    ("artifact", "delete", PA | MA, false),
    ("artifact", "list", PA | MA | DE | GU | LG, true),
    ("tag", "create", PA | MA | DE, false),
    ("tag", "delete", PA | MA, false),
    ("tag", "list", PA | MA | DE | GU | LG, true),
    ("accessory", "list", PA | MA | DE | GU | LG, true),
    ("artifact-addition", "read", PA | MA | DE | GU | LG, true),
    ("artifact-label", "create", PA | MA | DE, false),
    ("artifact-label", "delete", PA | MA | DE, false),
    ("scan", "create", PA | MA, false),
    ("scan", "read", PA | MA | DE | GU | LG, true),
    ("scan", "stop", PA | MA, false),
    ("sbom", "create", PA | MA, false),
    ("sbom", "read", PA | MA | DE | GU | LG, false),
    ("sbom", "stop", PA | MA, false),
    ("scanner", "create", PA, false),
    ("scanner", "read", PA | MA | DE | GU | LG, true),
    ("export-cve", "create", PA | MA | DE, false),
    ("export-cve", "read", PA | MA | DE, false),
    ("export-cve", "list", PA | MA | DE, false),
    ("tag-retention", "create", PA | MA | DE, false),
    ("tag-retention", "read", PA | MA | DE, false),
    ("tag-retention", "update", PA | MA | DE, false),
    ("tag-retention", "delete", PA | MA | DE, false),
    ("tag-retention", "list", PA | MA | DE, false),
    ("tag-retention", "operate", PA | MA | DE, false),
    ("immutable-tag", "create", PA | MA, false),
    ("immutable-tag", "update", PA | MA, false),
    ("immutable-tag", "delete", PA | MA, false),
    ("immutable-tag", "list", PA | MA, false),
    ("robot", "create", PA, false),
    ("robot", "read", PA | MA | DE | GU, false),
    ("robot", "update", PA, false),
    ("robot", "delete", PA, false),
    ("robot", "list", PA | MA | DE | GU, false),
    ("notification-policy", "create", PA, false),
    ("notification-policy", "read", PA | MA, false),
    ("notification-policy", "update", PA, false),
    ("notification-policy", "delete", PA, false),
    ("notification-policy", "list", PA | MA, false),
    ("preheat-policy", "create", PA, false),
    ("preheat-policy", "read", PA, false),
    ("preheat-policy", "update", PA, false),
    ("preheat-policy", "delete", PA, false),
    ("preheat-policy", "list", PA, false),
];

fn role_bit(role: i64) -> u8 {
    match role {
        role::PROJECT_ADMIN => PA,
        role::MAINTAINER => MA,
        role::DEVELOPER => DE,
        role::GUEST => GU,
        role::LIMITED_GUEST => LG,
        _ => 0,
    }
}

/// Whether `principal` may do `action` on `resource` in `scope`.
pub fn allows(principal: &Principal, scope: Scope<'_>, resource: &str, action: &str) -> bool {
    if principal.is_sysadmin() {
        return true;
    }
    if let Principal::Robot { grants, project_level, .. } = principal {
        return robot_allows(grants, *project_level, scope, resource, action);
    }
    if let Principal::Token { sysadmin, limits, .. } = principal {
        if limits.actions.as_ref().is_some_and(|a| !a.iter().any(|x| x == action)) {
            return false;
        }
        if let Scope::Project(Some(p)) = scope {
            if limits.projects.as_ref().is_some_and(|names| !names.contains(&p.name)) {
                return false;
            }
            if *sysadmin {
                return true;
            }
        } else if principal.is_limited() {
            // Limits name projects and actions: nothing outside a project is within them.
            return false;
        }
    }
    match scope {
        Scope::System => false,
        Scope::Project(None) => false,
        Scope::Project(Some(p)) => {
            let held = p.roles.iter().fold(0u8, |m, r| m | role_bit(*r));
            PROJECT_MATRIX
                .iter()
                .any(|(res, act, roles, public)| *res == resource && *act == action && ((p.public && *public) || roles & held != 0))
        }
    }
}

fn robot_allows(grants: &[RobotGrant], project_level: bool, scope: Scope<'_>, resource: &str, action: &str) -> bool {
    let (kind, public, project) = match scope {
        Scope::System => ("system", false, None),
        Scope::Project(None) => return false,
        Scope::Project(Some(p)) => ("project", p.public, Some(p.name.as_str())),
    };
    let matches = |g: &RobotGrant, action: &str| {
        g.kind == kind
            && match project {
                None => g.namespace == "/",
                Some(name) => g.namespace == name || g.namespace == "*",
            }
            && g.resource == resource
            && (g.action == action || g.action == "*")
    };
    if grants.iter().any(|g| !g.allow && matches(g, action)) {
        return false;
    }
    let public_grant = public && PROJECT_MATRIX.iter().any(|(r, a, _, p)| *p && *r == resource && *a == action);
    // For project robots, push implies pull.
    let implied = project_level && resource == "repository" && action == "pull" && grants.iter().any(|g| g.allow && matches(g, "push"));
    public_grant || implied || grants.iter().any(|g| g.allow && matches(g, action))
}

/// Every (resource, action) the role `role` holds in a project (nothing for an unknown role).
pub fn role_permissions(role: i64) -> impl Iterator<Item = (&'static str, &'static str)> {
    let bit = role_bit(role);
    PROJECT_MATRIX.iter().filter(move |(_, _, roles, _)| roles & bit != 0).map(|(r, a, _, _)| (*r, *a))
}

/// Every (resource, action) a set of roles holds in a project (for `/users/current/permissions`).
pub fn project_permissions(facts: &ProjectFacts) -> Vec<(&'static str, &'static str)> {
    let user = Principal::User { id: 0, name: String::new(), sysadmin: false };
    PROJECT_MATRIX.iter().filter(|(r, a, _, _)| allows(&user, Scope::Project(Some(facts)), r, a)).map(|(r, a, _, _)| (*r, *a)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Principal {
        Principal::User { id: 2, name: "u".into(), sysadmin: false }
    }

    #[test]
    fn matrix_totals_are_harbors() {
        let count = |bit: u8| PROJECT_MATRIX.iter().filter(|(_, _, r, _)| r & bit != 0).count();
        assert_eq!([count(PA), count(MA), count(DE), count(GU), count(LG)], [75, 53, 36, 20, 14]);
        assert_eq!(PROJECT_MATRIX.iter().filter(|(_, _, _, p)| *p).count(), 12);
    }

    #[test]
    fn roles_and_public_projects() {
        let private = ProjectFacts { public: false, roles: vec![], ..Default::default() };
        let public = ProjectFacts { public: true, roles: vec![], ..Default::default() };
        let repo = |p: &Principal, f: &ProjectFacts, a: &str| allows(p, Scope::Project(Some(f)), "repository", a);
        assert!(!repo(&Principal::Anonymous, &private, "pull"));
        assert!(repo(&Principal::Anonymous, &public, "pull"));
        assert!(!repo(&Principal::Anonymous, &public, "push"));
        assert!(!repo(&user(), &public, "push"));
        let dev = ProjectFacts { public: false, roles: vec![role::DEVELOPER], ..Default::default() };
        assert!(repo(&user(), &dev, "push"));
        assert!(!repo(&user(), &dev, "delete"));
        let union = ProjectFacts { public: false, roles: vec![role::GUEST, role::MAINTAINER], ..Default::default() };
        assert!(repo(&user(), &union, "delete"));
        let limited = ProjectFacts { public: false, roles: vec![role::LIMITED_GUEST], ..Default::default() };
        assert!(repo(&user(), &limited, "pull"));
        assert!(!repo(&user(), &limited, "push"));
        assert!(!allows(&user(), Scope::Project(Some(&limited)), "member", "list"));
        assert!(allows(&user(), Scope::Project(Some(&dev)), "tag-retention", "operate"));
        assert!(!allows(&user(), Scope::Project(None), "repository", "pull"));
        assert!(!allows(&user(), Scope::System, "catalog", "read"));
        let admin = Principal::User { id: 1, name: "admin".into(), sysadmin: true };
        assert!(allows(&admin, Scope::System, "catalog", "read"));
        assert!(allows(&admin, Scope::Project(None), "repository", "push"));
        let limited_token = |projects: Option<Vec<String>>, actions: Option<Vec<String>>, sysadmin: bool| Principal::Token {
            id: 3,
            name: "t".into(),
            sysadmin,
            limits: std::sync::Arc::new(TokenLimits { token_id: 1, projects, actions }),
        };
        let team = ProjectFacts { name: "team".into(), public: false, roles: vec![role::DEVELOPER] };
        let other = ProjectFacts { name: "other".into(), public: false, roles: vec![role::DEVELOPER] };
        let pull_only = limited_token(None, Some(vec!["pull".into()]), false);
        assert!(allows(&pull_only, Scope::Project(Some(&team)), "repository", "pull"));
        assert!(!allows(&pull_only, Scope::Project(Some(&team)), "repository", "push"));
        let team_only = limited_token(Some(vec!["team".into()]), None, true);
        assert!(!team_only.is_sysadmin());
        assert!(
            allows(&team_only, Scope::Project(Some(&team)), "repository", "delete"),
            "an admin's token acts as admin inside its projects"
        );
        assert!(!allows(&team_only, Scope::Project(Some(&other)), "repository", "pull"));
        assert!(!allows(&team_only, Scope::System, "catalog", "read"));
        let admin_updates = limited_token(None, Some(vec!["update".into()]), true);
        assert!(admin_updates.is_limited() && !admin_updates.is_sysadmin());
        assert!(!allows(&admin_updates, Scope::System, "user", "update"), "a limited token acts at no system scope");
        assert!(allows(&admin_updates, Scope::Project(Some(&other)), "", "update"));
        assert!(!limited_token(None, None, false).is_limited());
        assert!(limited_token(None, None, true).is_sysadmin());
        let grant = |kind: &str, ns: &str, res: &str, act: &str, allow: bool| RobotGrant {
            kind: kind.into(),
            namespace: ns.into(),
            resource: res.into(),
            action: act.into(),
            allow,
        };
        let robot = Principal::Robot {
            id: 1,
            name: "robot$team+ci".into(),
            project_level: true,
            grants: std::sync::Arc::new(vec![
                grant("project", "team", "repository", "push", true),
                grant("project", "team", "artifact", "delete", false),
            ]),
        };
        assert!(allows(&robot, Scope::Project(Some(&team)), "repository", "push"));
        assert!(allows(&robot, Scope::Project(Some(&team)), "repository", "pull"), "push implies pull for project robots");
        assert!(!allows(&robot, Scope::Project(Some(&team)), "artifact", "delete"));
        assert!(!allows(&robot, Scope::Project(Some(&other)), "repository", "pull"));
        assert!(!allows(&robot, Scope::System, "catalog", "read"));
        let fleet = Principal::Robot {
            id: 2,
            name: "robot$fleet".into(),
            project_level: false,
            grants: std::sync::Arc::new(vec![
                grant("project", "*", "repository", "*", true),
                grant("project", "other", "repository", "push", false),
                grant("system", "/", "catalog", "read", true),
            ]),
        };
        assert!(allows(&fleet, Scope::Project(Some(&team)), "repository", "push"));
        assert!(allows(&fleet, Scope::Project(Some(&other)), "repository", "pull"));
        assert!(!allows(&fleet, Scope::Project(Some(&other)), "repository", "push"), "deny wins");
        assert!(allows(&fleet, Scope::System, "catalog", "read"));
        assert!(!fleet.is_sysadmin() && fleet.user_id().is_none());
        assert_eq!(project_permissions(&ProjectFacts { public: false, roles: vec![role::GUEST], ..Default::default() }).len(), 20);
        assert_eq!(role_permissions(role::GUEST).count(), 20);
        assert_eq!(role_permissions(role::PROJECT_ADMIN).count(), 75);
        assert_eq!(role_permissions(0).count(), 0);
    }
}
