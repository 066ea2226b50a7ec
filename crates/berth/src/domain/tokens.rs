//! Personal access tokens: a user creates, lists and revokes secrets for the
//! command line (`docker login`, `podman login`, the API), each optionally limited
//! to some projects and some actions, shown once and stored as a SHA-256 digest.
//! Tokens are made with the password only (no token mints tokens); a limited token cannot
//! list or revoke tokens either. Naming a project the user cannot see is answered exactly
//! as naming a missing one.

use crate::app::App;
use crate::auth::policy::{self, Principal, Scope, TokenLimits};
use crate::error::{Error, Result};
use crate::meta::{AccessTokenRow, Audit, NewAccessToken, now_ms};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;

/// Every token starts with this, so that leaked tokens can be recognised by scanners.
pub const PREFIX: &str = "berth_pat_";
/// Actions a token may be limited to.
pub const ACTIONS: &[&str] = &["pull", "push", "delete", "read", "list", "create", "update"];
const MAX_DAYS: i64 = 3650;

/// What a user asks for.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub name: String,
    /// Days until expiry; -1 for never. Default 90.
    pub expires_in_days: Option<i64>,
    pub projects: Option<Vec<String>>,
    pub actions: Option<Vec<String>>,
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 64 && n.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Creates a token for the calling user; returns its row and the secret (shown once).
pub async fn create(app: &App, caller: &Principal, req: TokenRequest, audit: Audit) -> Result<(AccessTokenRow, String)> {
    let Some(user_id) = caller.user_id() else { return Err(Error::Unauthenticated) };
    if caller.token_limits().is_some() {
        return Err(Error::Forbidden("an access token cannot create access tokens; log in with your password".into()));
    }
    if !valid_name(&req.name) {
        return Err(Error::Invalid("token name must be 1 to 64 letters, digits, '.', '_' or '-'".into()));
    }
    let days = req.expires_in_days.unwrap_or(90);
    if days != -1 && !(1..=MAX_DAYS).contains(&days) {
        return Err(Error::Invalid(format!("expires_in_days must be -1 (never) or 1 to {MAX_DAYS}")));
    }
    if let Some(actions) = &req.actions
        && let Some(bad) = actions.iter().find(|a| !ACTIONS.contains(&a.as_str()))
    {
        return Err(Error::Invalid(format!("unknown action {bad:?}; use {}", ACTIONS.join(", "))));
    }
    if let Some(projects) = &req.projects {
        for p in projects {
            // One query either way, and the same answer for a project the user cannot see.
            let visible = crate::domain::projects::facts(app, p, caller)
                .await?
                .is_some_and(|(_, f)| policy::allows(caller, Scope::Project(Some(&f)), "", "read"));
            if !visible {
                return Err(Error::Invalid(format!("project {p} not found")));
            }
        }
    }
    let secret = format!("{PREFIX}{}", crate::auth::random_secret(32)?);
    let hash = digest(&secret);
    let now = now_ms();
    let expires_at = (days != -1).then(|| now + days * 86_400_000);
    let new = NewAccessToken {
        user_id,
        name: &req.name,
        token_hash: &hash,
        projects: req.projects.as_ref().map(|p| serde_json::to_string(p).expect("json")),
        actions: req.actions.as_ref().map(|a| serde_json::to_string(a).expect("json")),
        expires_at,
    };
    let audit = Audit { resource: format!("{}/{}", caller.name(), req.name), resource_type: "access_token", operation: "create", ..audit };
    let Some(id) = app.meta.create_access_token(&new, &audit).await? else {
        return Err(Error::Conflict(format!("you already have an access token named {}", req.name)));
    };
    let row = app.meta.access_tokens(user_id).await?.into_iter().find(|t| t.id == id).ok_or_else(|| Error::internal("token vanished"))?;
    Ok((row, secret))
}

/// Refuses tokens limited to projects or actions: managing tokens is outside every limit.
fn unlimited(caller: &Principal) -> Result<()> {
    if caller.is_limited() {
        return Err(Error::Forbidden("an access token limited to projects or actions cannot manage access tokens".into()));
    }
    Ok(())
}

/// The caller's tokens (never their secrets).
pub async fn list(app: &App, caller: &Principal) -> Result<Vec<AccessTokenRow>> {
    let Some(user_id) = caller.user_id() else { return Err(Error::Unauthenticated) };
    unlimited(caller)?;
    app.meta.access_tokens(user_id).await
}

/// Revokes one of the caller's tokens.
pub async fn revoke(app: &App, caller: &Principal, id: i64, audit: Audit) -> Result<()> {
    let Some(user_id) = caller.user_id() else { return Err(Error::Unauthenticated) };
    unlimited(caller)?;
    let audit = Audit { resource: format!("{}/{id}", caller.name()), resource_type: "access_token", operation: "delete", ..audit };
    if app.meta.delete_access_token(user_id, id, &audit).await? {
        app.auth.forget_credentials();
        Ok(())
    } else {
        Err(Error::NotFound(format!("access token {id} not found")))
    }
}

/// The principal a token stands for, if `username` owns the unexpired token `secret`.
pub async fn verify(app: &App, username: &str, secret: &str) -> Result<Option<Principal>> {
    let Some((t, user)) = app.meta.access_token_by_hash(&digest(secret)).await? else { return Ok(None) };
    // Constant-time comparison of the name: the secret's digest already matched in the index.
    if !bool::from(subtle::ConstantTimeEq::ct_eq(user.username.as_bytes(), username.as_bytes())) {
        return Ok(None);
    }
    if t.expires_at.is_some_and(|e| e <= now_ms()) {
        return Ok(None);
    }
    let parse = |s: &Option<String>| s.as_deref().and_then(|j| serde_json::from_str::<Vec<String>>(j).ok());
    let limits = TokenLimits { token_id: t.id, projects: parse(&t.projects), actions: parse(&t.actions) };
    Ok(Some(Principal::Token { id: user.id, name: user.username, sysadmin: user.sysadmin, limits: Arc::new(limits) }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert!(super::valid_name("ci-token_1.x"));
        assert!(!super::valid_name(""));
        assert!(!super::valid_name("a b"));
        assert!(!super::valid_name(&"a".repeat(65)));
    }
}
