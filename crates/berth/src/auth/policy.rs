//! The one decision function: may this principal do this action on this resource?
//!
//! Every surface (`/v2`, `/service/token`, the Harbor API) asks `allows`. It is pure:
//! callers load the facts (project visibility, the principal's roles) first.

use crate::meta::accounts_role as role;

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    User { id: i64, name: String, sysadmin: bool },
}

impl Principal {
    pub fn name(&self) -> &str {
        match self {
            Principal::Anonymous => "anonymous",
            Principal::User { name, .. } => name,
        }
    }
    pub fn is_sysadmin(&self) -> bool {
        matches!(self, Principal::User { sysadmin: true, .. })
    }
    pub fn user_id(&self) -> Option<i64> {
        match self {
            Principal::User { id, .. } => Some(*id),
            Principal::Anonymous => None,
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
    pub public: bool,
    /// The principal's roles in the project (Harbor role ids); a user's roles are a union.
    pub roles: Vec<i64>,
}

/// The resource an action is asked on.
#[derive(Clone, Copy, Debug)]
pub enum Resource<'a> {
    /// A project's repositories; `None` when the project does not exist.
    Repository(Option<&'a ProjectFacts>),
    /// The registry-wide catalog.
    Catalog,
}

fn role_allows(role: i64, action: Action) -> bool {
    match action {
        Action::Pull => matches!(role, role::PROJECT_ADMIN | role::MAINTAINER | role::DEVELOPER | role::GUEST | role::LIMITED_GUEST),
        Action::Push => matches!(role, role::PROJECT_ADMIN | role::MAINTAINER | role::DEVELOPER),
        Action::Delete => matches!(role, role::PROJECT_ADMIN | role::MAINTAINER),
    }
}

/// Whether `principal` may do `action` on `resource`.
pub fn allows(principal: &Principal, resource: Resource<'_>, action: Action) -> bool {
    if principal.is_sysadmin() {
        return true;
    }
    match resource {
        Resource::Catalog => false,
        Resource::Repository(None) => false,
        Resource::Repository(Some(p)) => {
            if action == Action::Pull && p.public {
                return true;
            }
            principal != &Principal::Anonymous && p.roles.iter().any(|&r| role_allows(r, action))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Principal {
        Principal::User { id: 2, name: "u".into(), sysadmin: false }
    }

    #[test]
    fn roles_and_public_projects() {
        let private = ProjectFacts { public: false, roles: vec![] };
        let public = ProjectFacts { public: true, roles: vec![] };
        assert!(!allows(&Principal::Anonymous, Resource::Repository(Some(&private)), Action::Pull));
        assert!(allows(&Principal::Anonymous, Resource::Repository(Some(&public)), Action::Pull));
        assert!(!allows(&Principal::Anonymous, Resource::Repository(Some(&public)), Action::Push));
        assert!(!allows(&user(), Resource::Repository(Some(&public)), Action::Push));
        let dev = ProjectFacts { public: false, roles: vec![role::DEVELOPER] };
        assert!(allows(&user(), Resource::Repository(Some(&dev)), Action::Push));
        assert!(!allows(&user(), Resource::Repository(Some(&dev)), Action::Delete));
        let union = ProjectFacts { public: false, roles: vec![role::GUEST, role::MAINTAINER] };
        assert!(allows(&user(), Resource::Repository(Some(&union)), Action::Delete));
        let guest = ProjectFacts { public: false, roles: vec![role::LIMITED_GUEST] };
        assert!(allows(&user(), Resource::Repository(Some(&guest)), Action::Pull));
        assert!(!allows(&user(), Resource::Repository(Some(&guest)), Action::Push));
        assert!(!allows(&user(), Resource::Repository(None), Action::Pull));
        assert!(!allows(&user(), Resource::Catalog, Action::Pull));
        let admin = Principal::User { id: 1, name: "admin".into(), sysadmin: true };
        assert!(allows(&admin, Resource::Catalog, Action::Pull));
        assert!(allows(&admin, Resource::Repository(None), Action::Push));
    }
}
