//! Credentials on requests, and the Docker token service (`/service/token`).

use super::ClientAddr;
use crate::app::{App, AppState};
use crate::auth::policy::{self, Action, Principal, Scope};
use crate::auth::token::{Access, Claims};
use crate::error::{Error, Result};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;
use std::net::SocketAddr;

/// What the Authorization header proved.
pub enum Credentials {
    None,
    Token(Claims),
    Principal(Principal),
}

fn basic_pair(value: &str) -> Option<(String, String)> {
    let b64 = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Reads the Authorization header: a registry token, Basic credentials, or nothing.
/// Wrong credentials are an error, never silently anonymous.
pub async fn credentials(app: &App, headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<Credentials> {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return Ok(Credentials::None) };
    if let Some(t) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) {
        return app.auth.tokens.verify(t.trim()).map(Credentials::Token).ok_or(Error::BadCredentials);
    }
    let (user, password) = basic_pair(value).ok_or(Error::BadCredentials)?;
    verify_basic(app, &user, &password, headers, peer).await.map(Credentials::Principal)
}

/// Checks a username with a password or a personal access token. A failure is recorded in the
/// audit log (one insert; the password never is).
async fn verify_basic(app: &App, user: &str, password: &str, headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<Principal> {
    let (client_ip, user_agent) = super::client(headers, peer);
    let from = crate::auth::LoginFrom { client_ip, user_agent };
    let found = if user.starts_with(&app.config.robot_prefix) {
        crate::domain::robots::verify(app, user, password).await?
    } else if password.starts_with(crate::domain::tokens::PREFIX) {
        crate::domain::tokens::verify(app, user, password).await?
    } else {
        // Counts and records its own failures (with the lock-out after repeated ones).
        return app.auth.verify_password_from(&app.meta, user, password, &from).await?.ok_or(Error::BadCredentials);
    };
    if found.is_none() {
        let name: String = user.chars().take(255).collect();
        let a = crate::meta::Audit {
            operator: name.clone(),
            resource: name,
            resource_type: "user",
            operation: "login",
            client_ip: from.client_ip,
            user_agent: from.user_agent,
            ..Default::default()
        };
        if let Err(e) = app.meta.record(&a, false).await {
            tracing::error!("cannot record a failed login: {e}");
        }
    }
    found.ok_or(Error::BadCredentials)
}

/// Principal from Basic credentials only (the token service).
async fn basic_principal(app: &App, headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<Principal> {
    match headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        None => Ok(Principal::Anonymous),
        Some(v) => {
            let (user, password) = basic_pair(v).ok_or(Error::BadCredentials)?;
            verify_basic(app, &user, &password, headers, peer).await
        }
    }
}

/// The actions of `wanted` that `principal` holds on repository `name`.
pub async fn granted(app: &App, principal: &Principal, name: &oci::RepoName, wanted: &[Action]) -> Result<Vec<Action>> {
    let facts = crate::domain::projects::facts(app, name.project(), principal).await?;
    let facts = facts.as_ref().map(|(_, f)| f);
    Ok(wanted.iter().copied().filter(|a| policy::allows(principal, Scope::Project(facts), "repository", a.as_str())).collect())
}

fn parse_scope(scope: &str) -> Option<(&str, &str, Vec<&str>)> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some((kind, name, actions.split(',').filter(|a| !a.is_empty()).collect()))
}

/// `GET /service/token?service=...&scope=...`: a registry token carrying exactly
/// the requested actions the caller holds (scopes it holds nothing of are left out).
pub async fn token(State(app): State<AppState>, ClientAddr(peer): ClientAddr, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    match issue(&app, &headers, peer, query.as_deref().unwrap_or("")).await {
        Ok(body) => ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response(),
        Err(Error::BadCredentials) => {
            (StatusCode::UNAUTHORIZED, axum::Json(json!({"errors": [{"code": "UNAUTHORIZED", "message": "invalid username or password"}]})))
                .into_response()
        }
        Err(e) => {
            tracing::error!("token service: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"errors": [{"code": "UNKNOWN", "message": "internal error"}]})))
                .into_response()
        }
    }
}

async fn issue(app: &App, headers: &HeaderMap, peer: Option<SocketAddr>, query: &str) -> Result<serde_json::Value> {
    let principal = basic_principal(app, headers, peer).await?;
    let mut access = Vec::new();
    for (k, v) in form_pairs(query) {
        if k != "scope" {
            continue;
        }
        for scope in v.split(' ') {
            let Some((kind, name, actions)) = parse_scope(scope) else { continue };
            match kind {
                "repository" => {
                    let Ok(repo) = name.parse::<oci::RepoName>() else { continue };
                    let wanted: Vec<Action> = if actions.contains(&"*") {
                        Action::ALL.to_vec()
                    } else {
                        actions.iter().filter_map(|a| Action::parse(a)).collect()
                    };
                    let held = granted(app, &principal, &repo, &wanted).await?;
                    if !held.is_empty() {
                        access.push(Access {
                            kind: "repository".into(),
                            name: repo.to_string(),
                            actions: held.iter().map(|a| a.as_str().to_string()).collect(),
                        });
                    }
                }
                "registry" if name == "catalog" && policy::allows(&principal, Scope::System, "catalog", "read") => {
                    access.push(Access { kind: "registry".into(), name: "catalog".into(), actions: vec!["*".into()] });
                }
                _ => {}
            }
        }
    }
    let (token, issued) = app.auth.tokens.issue(principal.name(), access)?;
    Ok(json!({
        "token": token,
        "access_token": token,
        "expires_in": app.auth.tokens.expiry,
        "issued_at": crate::time_fmt::rfc3339(issued),
    }))
}

/// Decoded `key=value` pairs of a query string (repeated keys kept).
pub fn form_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}
