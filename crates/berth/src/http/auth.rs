//! Credentials on requests, and the Docker token service (`/service/token`).

use super::ClientAddr;
use crate::app::{App, AppState};
use crate::auth::LoginFrom;
use crate::auth::policy::{self, Action, Principal, Scope};
use crate::auth::token::{Access, Claims, TokenHolder};
use crate::auth::versions::Holder;
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
/// Wrong credentials are an error, never silently anonymous; so is a token whose holder's
/// access was changed since it was issued (or that names no holder). `peer`: the connection's
/// address, which credential guessing is slowed by.
pub async fn credentials(app: &App, headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<Credentials> {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return Ok(Credentials::None) };
    if let Some(t) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) {
        let claims = app.auth.tokens.verify(t.trim()).ok_or(Error::BadCredentials)?;
        return if still_held(app, &claims).await? { Ok(Credentials::Token(claims)) } else { Err(Error::BadCredentials) };
    }
    let (user, password) = basic_pair(value).ok_or(Error::BadCredentials)?;
    verify_basic(app, &user, &password, headers, peer).await.map(|(p, _)| Credentials::Principal(p))
}

/// Whether a token's holder still has the access version the token was issued with.
async fn still_held(app: &App, claims: &Claims) -> Result<bool> {
    let (holder, version) = match claims.holder {
        None => return Ok(false),
        Some(TokenHolder::Anonymous) => return Ok(true),
        Some(TokenHolder::User { id, version }) => (Holder::User(id), version),
        Some(TokenHolder::Robot { id, version }) => (Holder::Robot(id), version),
    };
    Ok(app.auth.versions.current(&app.meta, holder).await? == Some(version))
}

/// Checks a username with a password, a robot secret or a personal access token; returns the
/// principal and what a token issued for it names as its holder. Every check is first
/// admitted by the throttle (per client address, and per name and address); a refused one is
/// answered like a wrong credential, unchecked. A checked failure is recorded in the audit log
/// (one insert; the secret never is).
async fn verify_basic(
    app: &App,
    user: &str,
    password: &str,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<(Principal, TokenHolder)> {
    let (client_ip, user_agent) = super::client(headers, peer);
    let from = LoginFrom { client_ip, user_agent };
    let robot = user.starts_with(&app.config.robot_prefix);
    if !robot && !password.starts_with(crate::domain::tokens::PREFIX) {
        // Admits, counts and records its own failures.
        let (p, version) = app.auth.verify_password_from(&app.meta, user, password, &from).await?.ok_or(Error::BadCredentials)?;
        let id = p.user_id().ok_or_else(|| Error::internal("a password names no user"))?;
        return Ok((p, TokenHolder::User { id, version }));
    }
    if !app.auth.admit(&from, user) {
        return Err(Error::BadCredentials);
    }
    // The version is read before the credential, so that any change after it makes a token stale.
    let before = app.meta.access_version_by_name(robot, user).await?;
    let found = if robot {
        crate::domain::robots::verify(app, user, password).await?
    } else {
        crate::domain::tokens::verify(app, user, password).await?
    };
    let holder = match (&found, before) {
        (Some(Principal::Robot { id, .. }), Some((vid, version))) if *id == vid => Some(TokenHolder::Robot { id: vid, version }),
        (Some(p @ Principal::Token { .. }), Some((vid, version))) if p.user_id() == Some(vid) => {
            Some(TokenHolder::User { id: vid, version })
        }
        _ => None,
    };
    match (found, holder) {
        (Some(p), Some(holder)) => {
            app.auth.login_succeeded(&from, user);
            Ok((p, holder))
        }
        _ => {
            app.auth.login_failed(&app.meta, user, &from).await;
            Err(Error::BadCredentials)
        }
    }
}

/// Principal from Basic credentials only (the token service), and the holder its token names.
async fn basic_principal(app: &App, headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<(Principal, TokenHolder)> {
    match headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        None => Ok((Principal::Anonymous, TokenHolder::Anonymous)),
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
    let (principal, holder) = basic_principal(app, headers, peer).await?;
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
    let (token, issued) = app.auth.tokens.issue(principal.name(), access, holder)?;
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
