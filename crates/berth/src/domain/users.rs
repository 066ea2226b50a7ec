//! Users: accounts, passwords, the system-admin flag, and what a caller may do in a scope.
//!
//! The rules are Harbor's (`src/server/v2.0/handler/user.go`): a user name is 1 to 255
//! characters without `,"~#$%` (nor `:`, which Basic credentials cannot carry, nor control
//! characters); a password is 8 to 128 characters with an upper-case letter, a lower-case
//! letter and a digit; an e-mail is required and well formed; the real name is 1 to 255
//! characters without `,~#$%`; the comment is at most 30 characters. Passwords are stored as
//! argon2 hashes only, and every change that affects a credential or a role drops the
//! credential cache.

use crate::app::App;
use crate::auth::policy::{self, PROJECT_MATRIX, Principal, Scope};
use crate::domain::projects::ProjectKey;
use crate::error::{Error, Result};
use crate::meta::{Audit, NewUserRow, UserListQuery, UserProfileRow};

/// Characters Harbor refuses in user names (plus `:`, which cannot be sent in Basic credentials).
pub const USERNAME_FORBIDDEN: &[char] = &[',', '"', '~', '#', '$', '%', ':'];
/// Characters Harbor refuses in real names.
const REALNAME_FORBIDDEN: &[char] = &[',', '~', '#', '$', '%'];
const MAX_NAME: usize = 255;
const MAX_COMMENT: usize = 30;
const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 128;

/// Harbor's message for a password that breaks the rule.
pub const PASSWORD_RULE: &str =
    "the password must be 8 to 128 characters long with at least 1 uppercase letter, 1 lowercase letter and 1 number";

/// A user to create, as the caller sent it. Not `Debug`: it holds a password.
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub realname: String,
    pub comment: String,
    pub password: String,
}

/// The editable part of a user.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    pub email: String,
    pub realname: String,
    pub comment: String,
}

pub fn validate_username(name: &str) -> Result<()> {
    crate::text::check("username", name)?;
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME || name.chars().any(|c| USERNAME_FORBIDDEN.contains(&c) || c.is_control()) || name.trim() != name {
        return Err(Error::Invalid(
            "invalid username: it must be 1 to 255 characters, without leading or trailing spaces, control characters \
             or any of the characters , \" ~ # $ % :"
                .into(),
        ));
    }
    Ok(())
}

pub fn validate_password(password: &str) -> Result<()> {
    let n = password.chars().count();
    let ok = (MIN_PASSWORD..=MAX_PASSWORD).contains(&n)
        && password.chars().any(|c| c.is_ascii_uppercase())
        && password.chars().any(|c| c.is_ascii_lowercase())
        && password.chars().any(|c| c.is_ascii_digit());
    if ok { Ok(()) } else { Err(Error::Invalid(PASSWORD_RULE.into())) }
}

pub fn validate_profile(p: &Profile) -> Result<()> {
    crate::text::check("email", &p.email)?;
    crate::text::check("realname", &p.realname)?;
    crate::text::check("comment", &p.comment)?;
    if p.email.is_empty() {
        return Err(Error::Invalid("email can't be empty".into()));
    }
    if p.email.chars().count() > MAX_NAME || !valid_email(&p.email) {
        return Err(Error::Invalid(format!("email {:?} is not a valid e-mail address (like name@example.com)", p.email)));
    }
    let n = p.realname.chars().count();
    if n == 0 || n > MAX_NAME {
        return Err(Error::Invalid("realname must be 1 to 255 characters".into()));
    }
    if p.realname.chars().any(|c| REALNAME_FORBIDDEN.contains(&c) || c.is_control()) {
        return Err(Error::Invalid("realname must not contain control characters or any of the characters , ~ # $ %".into()));
    }
    if p.comment.chars().count() > MAX_COMMENT {
        return Err(Error::Invalid("comment must be at most 30 characters".into()));
    }
    Ok(())
}

/// Harbor's e-mail pattern: `local@domain`, where local is dot-separated atoms (or a quoted
/// string) and domain is `[a.b.c.d]` or at least two labels ending in a 2+ letter one.
fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.rsplit_once('@') else { return false };
    let special = |c: char| "<>()[]\\.,;:@\"".contains(c) || c.is_whitespace();
    let local_ok = if local.len() >= 3 && local.starts_with('"') && local.ends_with('"') {
        true
    } else {
        !local.is_empty() && local.split('.').all(|atom| !atom.is_empty() && !atom.chars().any(special))
    };
    let domain_ok = if let Some(ip) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let parts: Vec<&str> = ip.split('.').collect();
        parts.len() == 4 && parts.iter().all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    } else {
        let labels: Vec<&str> = domain.split('.').collect();
        labels.len() >= 2
            && labels.iter().all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()))
    };
    local_ok && domain_ok
}

/// Creates a local user; returns its id. The caller has been allowed to create users.
pub async fn create(app: &App, u: NewUser, audit: &Audit) -> Result<i64> {
    validate_username(&u.username)?;
    validate_password(&u.password)?;
    let profile = Profile { email: u.email, realname: u.realname, comment: u.comment };
    validate_profile(&profile)?;
    let hash = crate::auth::hash_password(&u.password).await?;
    let row = NewUserRow {
        username: &u.username,
        email: &profile.email,
        realname: &profile.realname,
        comment: &profile.comment,
        password_hash: &hash,
    };
    app.meta.insert_user(&row, audit).await
}

/// A user that exists (and is not deleted).
pub async fn get(app: &App, id: i64) -> Result<UserProfileRow> {
    app.meta.user_profile(id).await?.ok_or_else(|| Error::NotFound(format!("user {id} not found")))
}

/// One page of users and the total.
pub async fn list(app: &App, query: &UserListQuery) -> Result<(Vec<UserProfileRow>, i64)> {
    app.meta.list_users(query).await
}

/// Replaces a user's e-mail, real name and comment.
pub async fn update_profile(app: &App, id: i64, p: &Profile, audit: &Audit) -> Result<()> {
    validate_profile(p)?;
    app.meta.update_user_profile(id, &p.email, &p.realname, &p.comment, audit).await
}

/// Sets a user's password. `current`: the caller changes its own password and must prove the
/// one it has (a wrong one counts as a failed login); `None`: a system admin resets it.
pub async fn change_password(app: &App, id: i64, current: Option<(&str, &str)>, new_password: &str, audit: &Audit) -> Result<()> {
    if let Some((username, old)) = current {
        let from = crate::auth::LoginFrom { client_ip: audit.client_ip.clone(), user_agent: audit.user_agent.clone() };
        let proven =
            !old.is_empty() && app.auth.verify_password(&app.meta, username, old, &from).await?.is_some_and(|p| p.user_id() == Some(id));
        if !proven {
            return Err(Error::Forbidden("the current password is incorrect".into()));
        }
    }
    validate_password(new_password)?;
    if let Some((_, old)) = current
        && old == new_password
    {
        return Err(Error::Invalid("the new password must differ from the current password".into()));
    }
    // Not found before spending an argon2 hash on it.
    get(app, id).await?;
    let hash = crate::auth::hash_password(new_password).await?;
    app.meta.set_user_password_hash(id, &hash, audit).await?;
    app.auth.forget_credentials();
    Ok(())
}

/// Grants or revokes the system-admin role.
pub async fn set_sysadmin(app: &App, id: i64, sysadmin: bool, audit: &Audit) -> Result<()> {
    app.meta.set_user_sysadmin(id, sysadmin, audit).await?;
    app.auth.forget_credentials();
    Ok(())
}

/// Deletes a user (kept as a removed record, as Harbor does) and its project memberships.
pub async fn delete(app: &App, id: i64, audit: &Audit) -> Result<()> {
    app.meta.delete_user(id, audit).await?;
    app.auth.forget_credentials();
    Ok(())
}

/// Whether self-registration is on (anyone may then create an account).
pub async fn self_registration(app: &App) -> Result<bool> {
    app.meta.self_registration().await
}

/// One (resource, action) the caller holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    pub resource: String,
    pub action: &'static str,
}

/// What `principal` may do in `scope` (`/project/<id>`, as Harbor names it), with resources
/// absolute (`/project/1/repository`) or relative to the scope (`repository`; `.` for the
/// project itself). Other scopes hold nothing.
pub async fn permissions(app: &App, principal: &Principal, scope: &str, relative: bool) -> Result<Vec<Permission>> {
    let Some(project_id) = project_scope(scope) else { return Ok(Vec::new()) };
    let facts = crate::domain::projects::lookup(app, ProjectKey::Id(project_id), principal).await?.map(|(_, f)| f);
    // Harbor's project policies, each asked of the one decision function: for a user this is
    // `policy::project_permissions` (its roles, or the public share); it also applies robot
    // grants and token limits, and gives a system admin everything, even on a missing project.
    let held: Vec<(&'static str, &'static str)> = PROJECT_MATRIX
        .iter()
        .map(|(r, a, _, _)| (*r, *a))
        .filter(|(r, a)| policy::allows(principal, Scope::Project(facts.as_ref()), r, a))
        .collect();
    let namespace = format!("/project/{project_id}");
    Ok(held
        .into_iter()
        .filter_map(|(resource, action)| {
            let absolute = if resource.is_empty() { namespace.clone() } else { format!("{namespace}/{resource}") };
            let resource = if relative {
                let rest = absolute.strip_prefix(scope)?.trim_start_matches('/');
                if rest.is_empty() { ".".to_string() } else { rest.to_string() }
            } else {
                absolute
            };
            Some(Permission { resource, action })
        })
        .collect())
}

/// The project id of a `/project/<id>[/...]` scope.
fn project_scope(scope: &str) -> Option<i64> {
    let rest = scope.strip_prefix("/project/")?;
    rest.split('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["a", "alice", "alice.smith-1_x", "Ünïcode", &"x".repeat(255), "robot-like"] {
            assert!(validate_username(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a,b", "a\"b", "a~b", "a#b", "a$b", "robot$ci", "a%b", "a:b", " a", "a ", &"x".repeat(256)] {
            let e = validate_username(bad).unwrap_err().to_string();
            assert!(e.contains("1 to 255 characters"), "{bad}: {e}");
        }
        for bad in ["a\nb", "a\u{202e}b", "a\0b"] {
            let e = validate_username(bad).unwrap_err().to_string();
            assert!(e.contains("control characters"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn passwords() {
        for ok in ["Abcdefg1", "Harbor12345", &format!("Aa1{}", "x".repeat(125))] {
            assert!(validate_password(ok).is_ok(), "{ok}");
        }
        for bad in ["Abcdef1", "abcdefg1", "ABCDEFG1", "Abcdefgh", &format!("Aa1{}", "x".repeat(126))] {
            assert_eq!(validate_password(bad).unwrap_err().to_string(), PASSWORD_RULE, "{bad}");
        }
    }

    #[test]
    fn profiles_and_emails() {
        let p = |email: &str, realname: &str, comment: &str| Profile {
            email: email.into(),
            realname: realname.into(),
            comment: comment.into(),
        };
        assert!(validate_profile(&p("a@example.com", "A B", "")).is_ok());
        assert!(validate_profile(&p("a.b+c@sub.example.io", "A", &"c".repeat(30))).is_ok());
        assert!(validate_profile(&p("\"a b\"@example.com", "A", "")).is_ok());
        assert!(validate_profile(&p("a@[10.0.0.1]", "A", "")).is_ok());
        for bad in ["", "a", "a@b", "a@b.c", "a@@b.io", "a b@c.io", "a..b@c.io", "a@b_c.io", "@b.io"] {
            assert!(validate_profile(&p(bad, "A", "")).is_err(), "{bad}");
        }
        assert!(validate_profile(&p("a@b.io", "", "")).is_err());
        assert!(validate_profile(&p("a@b.io", "a,b", "")).is_err());
        assert!(validate_profile(&p("a@b.io", "A", &"c".repeat(31))).is_err());
    }

    #[test]
    fn scopes() {
        assert_eq!(project_scope("/project/12"), Some(12));
        assert_eq!(project_scope("/project/12/repository"), Some(12));
        assert_eq!(project_scope("/project/library"), None);
        assert_eq!(project_scope("/system"), None);
        assert_eq!(project_scope(""), None);
    }
}
