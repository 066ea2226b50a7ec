//! Harbor API group `configure`: `GET/PUT /configurations`, system admins only.
//!
//! `GET` answers Harbor's `ConfigurationsResponse` (`{"<name>": {"value": .., "editable": ..}}`)
//! with three kinds of settings:
//! - **Berth's settings**, editable: `self_registration`, `project_creation_restriction`
//!   (`everyone` or `adminonly`) and Berth's own `project_limit_per_user` (the most projects
//!   a non-admin may own, -1 for no limit; not one of Harbor's names).
//! - **Fixed settings**, `editable: false`: what Berth is and does not let change here
//!   (`auth_mode` `db_auth`, `read_only` false, `robot_name_prefix` and `token_expiration`
//!   from the command line, ...).
//! - Harbor's other settings (LDAP, OIDC, UAA, auth proxy, audit log forwarding, ...) are
//!   for features Berth does not have and are not listed.
//!
//! `PUT` takes Harbor's flat `Configurations` (any subset; `null` means not given) and applies
//! all of it or none:
//! values of Harbor's settings must have Harbor's types (400 otherwise); Berth's settings are
//! validated (400 with the allowed values) and stored in one transaction with an audit
//! record each; a fixed setting may be sent with its current value and is refused with 403
//! otherwise, as Harbor refuses read-only configuration; a setting for a feature Berth lacks
//! is accepted only when it is empty (`null`, `""`, `false` or `0`: the feature stays off),
//! 403 otherwise; keys Harbor does not define are ignored, as Harbor ignores them.

use super::projects::{Req, json_body};
use super::{ApiError, ApiResult};
use crate::app::{App, AppState};
use crate::auth::policy::{self, Scope};
use crate::domain::projects as dprojects;
use crate::meta::Audit;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

pub fn routes() -> Router<AppState> {
    Router::new().route("/configurations", get(read).put(update))
}

const SELF_REGISTRATION: &str = "self_registration";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Str,
    Int,
}

/// Every setting of Harbor's `Configurations`, with its type.
const HARBOR_SETTINGS: &[(&str, Kind)] = &[
    ("audit_log_forward_endpoint", Kind::Str),
    ("auth_mode", Kind::Str),
    ("banner_message", Kind::Str),
    ("disabled_audit_log_event_types", Kind::Str),
    ("http_authproxy_admin_groups", Kind::Str),
    ("http_authproxy_admin_usernames", Kind::Str),
    ("http_authproxy_endpoint", Kind::Str),
    ("http_authproxy_server_certificate", Kind::Str),
    ("http_authproxy_skip_search", Kind::Bool),
    ("http_authproxy_tokenreview_endpoint", Kind::Str),
    ("http_authproxy_verify_cert", Kind::Bool),
    ("ldap_base_dn", Kind::Str),
    ("ldap_filter", Kind::Str),
    ("ldap_group_admin_dn", Kind::Str),
    ("ldap_group_attach_parallel", Kind::Bool),
    ("ldap_group_attribute_name", Kind::Str),
    ("ldap_group_base_dn", Kind::Str),
    ("ldap_group_membership_attribute", Kind::Str),
    ("ldap_group_search_filter", Kind::Str),
    ("ldap_group_search_scope", Kind::Int),
    ("ldap_scope", Kind::Int),
    ("ldap_search_dn", Kind::Str),
    ("ldap_search_password", Kind::Str),
    ("ldap_timeout", Kind::Int),
    ("ldap_uid", Kind::Str),
    ("ldap_url", Kind::Str),
    ("ldap_verify_cert", Kind::Bool),
    ("notification_enable", Kind::Bool),
    ("oidc_admin_group", Kind::Str),
    ("oidc_auto_onboard", Kind::Bool),
    ("oidc_client_id", Kind::Str),
    ("oidc_client_secret", Kind::Str),
    ("oidc_endpoint", Kind::Str),
    ("oidc_extra_redirect_parms", Kind::Str),
    ("oidc_group_filter", Kind::Str),
    ("oidc_groups_claim", Kind::Str),
    ("oidc_logout", Kind::Bool),
    ("oidc_name", Kind::Str),
    ("oidc_scope", Kind::Str),
    ("oidc_user_claim", Kind::Str),
    ("oidc_verify_cert", Kind::Bool),
    ("primary_auth_mode", Kind::Bool),
    ("project_creation_restriction", Kind::Str),
    ("quota_per_project_enable", Kind::Bool),
    ("read_only", Kind::Bool),
    ("robot_name_prefix", Kind::Str),
    ("robot_token_duration", Kind::Int),
    ("scanner_skip_update_pulltime", Kind::Bool),
    ("self_registration", Kind::Bool),
    ("session_timeout", Kind::Int),
    ("skip_audit_log_database", Kind::Bool),
    ("storage_per_project", Kind::Int),
    ("token_expiration", Kind::Int),
    ("uaa_client_id", Kind::Str),
    ("uaa_client_secret", Kind::Str),
    ("uaa_endpoint", Kind::Str),
    ("uaa_verify_cert", Kind::Bool),
];

/// Settings Berth reports but does not let change, with their values and why.
fn fixed(app: &App) -> Vec<(&'static str, Value, &'static str)> {
    vec![
        ("auth_mode", json!("db_auth"), "Berth authenticates against its own database"),
        ("primary_auth_mode", json!(false), "Berth authenticates against its own database"),
        ("read_only", json!(false), "Berth has no read-only mode"),
        ("notification_enable", json!(false), "Berth has no webhooks yet"),
        ("quota_per_project_enable", json!(true), "project summaries report storage used against an unlimited quota"),
        ("storage_per_project", json!(-1), "quotas are not enforced yet"),
        ("robot_name_prefix", json!(app.config.robot_prefix), "it is set by the robot_prefix option"),
        ("robot_token_duration", json!(30), "a robot's duration is given when it is created (30 days when not)"),
        ("token_expiration", json!(app.config.token_expiry / 60), "it is set by the token_expiry option (in seconds)"),
    ]
}

/// `{"value": v, "editable": e}`.
fn item(value: Value, editable: bool) -> Value {
    json!({"value": value, "editable": editable})
}

fn require_admin(req: &Req, action: &str) -> ApiResult<()> {
    if policy::allows(&req.principal, Scope::System, "configuration", action) { Ok(()) } else { Err(super::projects::denied(req)) }
}

/// `GET /configurations`.
async fn read(State(app): State<AppState>, req: Req) -> ApiResult<Response> {
    require_admin(&req, "read")?;
    let mut out = Map::new();
    for (name, value, _) in fixed(&app) {
        out.insert(name.into(), item(value, false));
    }
    // Berth's settings in one query, read as the code that applies them reads them.
    let stored = app.meta.settings(&[SELF_REGISTRATION, dprojects::CREATION_RESTRICTION, dprojects::LIMIT_PER_USER]).await?;
    let value = |name: &str| stored.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim().trim_matches('"'));
    let restriction = if value(dprojects::CREATION_RESTRICTION) == Some("adminonly") { "adminonly" } else { "everyone" };
    let limit = value(dprojects::LIMIT_PER_USER).and_then(|v| v.parse::<i64>().ok()).unwrap_or(-1);
    out.insert(dprojects::CREATION_RESTRICTION.into(), item(json!(restriction), true));
    out.insert(SELF_REGISTRATION.into(), item(json!(value(SELF_REGISTRATION) == Some("true")), true));
    out.insert(dprojects::LIMIT_PER_USER.into(), item(json!(limit), true));
    Ok(axum::Json(Value::Object(out)).into_response())
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Bool => "a boolean (true or false)",
        Kind::Str => "a string",
        Kind::Int => "an integer",
    }
}

/// Whether `v` is an empty value of its kind: the feature it configures stays off.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        _ => false,
    }
}

/// `PUT /configurations`: the settings to change; all are applied or none.
async fn update(State(app): State<AppState>, req: Req, body: Bytes) -> ApiResult<Response> {
    require_admin(&req, "update")?;
    let Value::Object(body) = json_body::<Value>(&body)? else {
        return Err(ApiError::bad_request("the body must be a JSON object of settings, like {\"self_registration\": false}"));
    };
    let fixed = fixed(&app);
    let mut changes: Vec<(&'static str, String)> = Vec::new();
    for (key, value) in &body {
        let harbor = HARBOR_SETTINGS.iter().find(|(k, _)| k == key).map(|(_, kind)| *kind);
        // Harbor's own type check comes first, as its body parsing does.
        if let Some(kind) = harbor {
            let typed = match (kind, value) {
                (_, Value::Null) => true,
                (Kind::Bool, v) => v.is_boolean(),
                (Kind::Str, v) => v.is_string(),
                (Kind::Int, v) => v.is_i64(),
            };
            if !typed {
                return Err(ApiError::bad_request(format!("invalid value {value} for {key}: expected {}", kind_name(kind))));
            }
        }
        if value.is_null() {
            continue; // not given, as Harbor reads a null setting
        }
        match key.as_str() {
            SELF_REGISTRATION => match value {
                Value::Bool(b) => changes.push((SELF_REGISTRATION, b.to_string())),
                _ => return Err(ApiError::bad_request("self_registration must be true or false")),
            },
            dprojects::CREATION_RESTRICTION => match value.as_str() {
                Some(v @ ("everyone" | "adminonly")) => changes.push((dprojects::CREATION_RESTRICTION, v.to_string())),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "invalid value {value} for project_creation_restriction: expected \"everyone\" or \"adminonly\""
                    )));
                }
            },
            dprojects::LIMIT_PER_USER => match value.as_i64() {
                Some(n) if n >= -1 => changes.push((dprojects::LIMIT_PER_USER, n.to_string())),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "invalid value {value} for project_limit_per_user: expected -1 (no limit) or a number of projects (0 or more)"
                    )));
                }
            },
            _ => {
                if let Some((name, current, why)) = fixed.iter().find(|(k, _, _)| k == key) {
                    if value != current {
                        return Err(ApiError::new(
                            StatusCode::FORBIDDEN,
                            "FORBIDDEN",
                            format!("{name} cannot be changed in Berth ({why}); its value is {current}"),
                        ));
                    }
                } else if harbor.is_some() && !is_empty(value) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "FORBIDDEN",
                        format!(
                            "Berth does not have the setting {key} (the feature it configures is not supported); \
                             only an empty value (null, \"\", false or 0) is accepted for it"
                        ),
                    ));
                }
                // Anything else is not a Harbor setting: ignored, as Harbor ignores it.
            }
        }
    }
    if !changes.is_empty() {
        let audit = Audit { resource_type: "configuration", operation: "update", ..req.audit() };
        app.meta.set_settings(&changes, &audit).await.map_err(ApiError::from)?;
    }
    Ok(super::projects::ok())
}
